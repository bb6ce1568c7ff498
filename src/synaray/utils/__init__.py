"""Small shared utilities (tracing, progress, atomic file writes)."""
