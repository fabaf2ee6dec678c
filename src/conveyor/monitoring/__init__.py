"""Monitoring: metrics, reference profiles, drift (see issue 4)."""
