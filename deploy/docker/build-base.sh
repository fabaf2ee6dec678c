#!/usr/bin/env bash
# Builds a local stand-in for the official slim Python image from Debian packages, offline
# (mmdebstrap uses the host's apt sources): Debian bookworm with python3, python3-venv,
# ca-certificates and the C++ and OpenMP runtimes that the model libraries load; no docs,
# no manuals. Idempotent: an existing image is kept.
#
#   deploy/docker/build-base.sh [IMAGE [PACKAGE...]]
# IMAGE defaults to localhost/conveyor-python:3.11-bookworm; extra Debian packages go in too
# (the images' build stage adds binutils, to strip debug symbols).
set -euo pipefail
image="${1:-localhost/conveyor-python:3.11-bookworm}"
shift || true
extra=""
for package in "$@"; do extra="$extra,$package"; done
: "${CONTAINERS_CONF:=$(cd "$(dirname "$0")/../podman" && pwd)/containers.conf}"
export CONTAINERS_CONF

if podman image exists "$image"; then
    exit 0
fi
echo "building base image $image from Debian packages (mmdebstrap, ~30 s)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mmdebstrap --quiet --variant=essential \
    --include=python3,python3-venv,ca-certificates,libstdc++6,libgomp1"$extra" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$work/base.tar" >"$work/mmdebstrap.log" 2>&1 \
    || { tail -40 "$work/mmdebstrap.log" >&2; exit 1; }
podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$work/base.tar" "$image" >/dev/null
echo "built $image"
