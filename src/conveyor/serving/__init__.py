"""Model serving (see issue 3)."""
