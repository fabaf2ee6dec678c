#!/usr/bin/env bash
# Pushes the images `make images` built (conveyor-serve, conveyor-pipeline, conveyor-mlflow,
# tagged with the package version) to $REGISTRY (e.g. ghcr.io/conveyor-mlops), tagged with
# the version and with sha-$COMMIT, and writes each pushed image as NAME@sha256:DIGEST, one
# per line, to the file given as the argument (what the deploy workflow sets and cosign
# signs). Logs in with $REGISTRY_USER and $REGISTRY_TOKEN (read from the environment, never
# from the command line).
set -euo pipefail
out="${1:?usage: push-images.sh OUTPUT_FILE}"
: "${REGISTRY:?set REGISTRY, e.g. ghcr.io/conveyor-mlops}" "${COMMIT:?set COMMIT}"
: "${REGISTRY_USER:?set REGISTRY_USER}" "${REGISTRY_TOKEN:?set REGISTRY_TOKEN}"
cd "$(dirname "$0")/../.."
version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' src/conveyor/__init__.py)"
printf '%s' "$REGISTRY_TOKEN" | podman login "${REGISTRY%%/*}" -u "$REGISTRY_USER" --password-stdin
: > "$out"
for image in serve pipeline mlflow; do
    local_tag="localhost/conveyor-$image:$version"
    podman image exists "$local_tag" || { echo "no image $local_tag: run make images" >&2; exit 1; }
    remote="$REGISTRY/conveyor-$image"
    digest_file="$(mktemp)"
    podman tag "$local_tag" "$remote:$version" "$remote:sha-$COMMIT"
    podman push --digestfile "$digest_file" "$remote:sha-$COMMIT"
    podman push "$remote:$version"
    echo "$remote@$(cat "$digest_file")" >> "$out"
    rm -f "$digest_file"
    echo "pushed $remote@$(tail -1 "$out" | cut -d@ -f2)"
done
