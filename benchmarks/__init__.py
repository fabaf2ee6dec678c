"""Reproducible performance measurements of Conveyor against named baselines."""
