#!/bin/sh
# Runs once, on the first start of an empty data folder (the official image's
# /docker-entrypoint-initdb.d): one database per name in CONVEYOR_DATABASES, owned by
# POSTGRES_USER.
set -eu
for database in ${CONVEYOR_DATABASES:-}; do
    echo "creating database $database"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\""
done
