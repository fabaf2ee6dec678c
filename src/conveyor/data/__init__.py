"""Data pipeline: sources, cleaning, validation (GX), versioning (DVC), split, demo data."""
