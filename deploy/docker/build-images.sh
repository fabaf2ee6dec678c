#!/usr/bin/env bash
# Builds Conveyor's images with podman, offline, each tagged with the package version.
#   deploy/docker/build-images.sh PYTHON [IMAGE...]   (IMAGE: serve, pipeline, mlflow, airflow;
#                                                      all by default)
# BASE_IMAGE: "local" (default) builds a Debian base here (build-base.sh), and a build
# stage base with binutils; any other value is passed to the Dockerfiles, e.g. the official
# slim Python image by digest (BUILD_IMAGE, if set, is their build stage's base).
set -euo pipefail
python="${1:-python3}"; shift || true
images=("$@"); [ "${#images[@]}" -gt 0 ] || images=(serve pipeline mlflow airflow)
root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${CONTAINERS_CONF:=$root/deploy/podman/containers.conf}"
export CONTAINERS_CONF
cd "$root"

version="$("$python" -c 'import re,sys; print(re.search(r"__version__ = \"(.+?)\"", open("src/conveyor/__init__.py").read()).group(1))')"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
source_url="$(git config --get remote.origin.url 2>/dev/null || echo "file://$root")"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
base="${BASE_IMAGE:-local}"
build_base="${BUILD_IMAGE:-$base}"
if [ "$base" = local ]; then
    base=localhost/conveyor-python:3.11-bookworm
    build_base=localhost/conveyor-python:3.11-bookworm-build
    deploy/docker/build-base.sh "$base"
    deploy/docker/build-base.sh "$build_base" binutils
fi
mkdir -p build build/wheelhouse-airflow
# pip's notes about find-links folders this machine lacks are dropped; a failure shows all.
if ! deploy/docker/wheelhouse.sh "$python" 2>build/wheelhouse.log; then
    cat build/wheelhouse.log >&2
    echo "building the wheelhouse failed" >&2
    exit 1
fi
grep -v 'is ignored' build/wheelhouse.log >&2 || true
# The airflow image's own environment: wheels of every pin in airflow/requirements.lock.
if [[ " ${images[*]} " == *" airflow "* ]]; then
    if ! "$python" -m pip wheel -qq --no-deps -r airflow/requirements.lock \
            -w build/wheelhouse-airflow 2>build/wheelhouse-airflow.log; then
        cat build/wheelhouse-airflow.log >&2
        echo "building the Airflow wheelhouse failed" >&2
        exit 1
    fi
fi

for image in "${images[@]}"; do
    echo "building conveyor-$image:$version (base $base)"
    podman build --quiet --format docker --network=none --file deploy/docker/Dockerfile \
        --target "$image" \
        --build-arg "BASE_IMAGE=$base" --build-arg "BUILD_IMAGE=$build_base" \
        --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$revision" \
        --label "org.opencontainers.image.source=$source_url" \
        --label "org.opencontainers.image.created=$created" \
        --tag "conveyor-$image:$version" . >/dev/null
    podman image inspect --format "conveyor-$image:$version {{.Size}} bytes" "conveyor-$image:$version"
done
# Each commit supersedes the previous images and their build layers; drop this project's
# dangling ones so repeated builds do not fill the disk (other images are left alone).
podman image prune --force --filter label=org.opencontainers.image.vendor=Conveyor >/dev/null
