"""Tests of the run layer (synaray.runs)."""
