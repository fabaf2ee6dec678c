"""Serving benchmark: conveyor serve vs mlflow models serve, MLServer and a bare ASGI app."""
