#!/usr/bin/env bash
# Builds build/wheelhouse on the host: a wheel of every pinned package in requirements.lock
# (PyTorch aside: no image needs it) and of Conveyor itself. Image builds install from it
# with --no-index, so nothing is fetched inside a build.
#   deploy/docker/wheelhouse.sh PYTHON
set -euo pipefail
python="${1:-python3}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/wheelhouse"
mkdir -p "$out"
grep -v '^torch==' "$root/requirements.lock" > "$root/build/wheelhouse.lock"
"$python" -m pip wheel -qq --no-deps -r "$root/build/wheelhouse.lock" -w "$out"
rm -f "$out"/conveyor_mlops-*.whl
# Zip timestamps from the last commit: the same sources give the same wheel, so the image
# layers that install it stay cached between builds.
SOURCE_DATE_EPOCH="$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 315532800)" \
    "$python" -m pip wheel -qq --no-deps "$root" -w "$out"
echo "wheelhouse: $(ls "$out" | wc -l) wheels in build/wheelhouse"
