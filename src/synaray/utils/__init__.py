"""Small shared utilities (tracing, progress)."""
