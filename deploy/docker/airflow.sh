#!/bin/sh
# The conveyor-airflow entrypoint: `airflow ARGS` (api-server, scheduler, dag-processor,
# db migrate, ...). With AIRFLOW_ADMIN_PASSWORD set (and no passwords file configured),
# the simple auth manager's passwords file is written to /tmp from the environment, so the
# password never sits in a file of the image or the repository.
set -eu
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] && [ -z "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}" ]; then
    umask 077
    passwords="$(mktemp /tmp/airflow-passwords.XXXXXX.json)"
    python3 -c 'import json, os, sys
user = os.environ.get("AIRFLOW_ADMIN_USERNAME", "admin")
json.dump({user: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, sys.stdout)' >"$passwords"
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$passwords"
    export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="${AIRFLOW_ADMIN_USERNAME:-admin}:admin"
fi
exec airflow "$@"
