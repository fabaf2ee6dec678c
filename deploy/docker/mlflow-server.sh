#!/bin/sh
# The conveyor-mlflow entrypoint: `mlflow server` on $MLFLOW_HOST:$MLFLOW_PORT, plus the
# arguments given (the image's CMD, e.g. --workers 2 --app-name basic-auth).
# With MLFLOW_AUTH_DATABASE_URI set (and no MLFLOW_AUTH_CONFIG_PATH), the basic-auth app's
# configuration is written to /tmp from the environment, so its database credentials never
# sit in a file of the image or the repository.
set -eu
if [ -n "${MLFLOW_AUTH_DATABASE_URI:-}" ] && [ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]; then
    umask 077
    config="$(mktemp /tmp/basic_auth.XXXXXX.ini)"
    cat >"$config" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}
database_uri = ${MLFLOW_AUTH_DATABASE_URI}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
INI
    export MLFLOW_AUTH_CONFIG_PATH="$config"
fi
exec mlflow server --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" "$@"
