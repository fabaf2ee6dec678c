"""Step composition and the local runner (cache, progress, run record)."""
