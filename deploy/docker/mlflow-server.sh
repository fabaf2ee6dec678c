#!/bin/sh
# The conveyor-mlflow entrypoint: `mlflow server` on $MLFLOW_HOST:$MLFLOW_PORT, plus the
# arguments given (the image's CMD, e.g. --workers 2 --app-name basic-auth).
exec mlflow server --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" "$@"
