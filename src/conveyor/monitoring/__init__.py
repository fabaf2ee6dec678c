"""Monitoring: reference profiles, drift statistics and windows, online metrics, pipeline
metrics and retraining triggers."""
