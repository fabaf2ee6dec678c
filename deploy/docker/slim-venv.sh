#!/bin/sh
# Shrinks an installed virtualenv for an image, then compiles bytecode for the modules the
# image's command imports (the root filesystem is read-only at run time, so nothing
# compiles later):
#   1. `pip check` (the pinned set is consistent), then pip/setuptools/wheel go;
#   2. the distributions in SLIM_DROP go (space-separated; packages that a dependency
#      declares but the image's command never imports);
#   3. the paths in SLIM_PRUNE go (space-separated, relative to site-packages: parts of a
#      distribution that the image's command never imports, e.g. a library's tooling);
#   4. test suites, bytecode, C sources and headers, type stubs go;
#   5. debug symbols are stripped from extension modules, if `strip` is on the PATH
#      (libraries vendored under *.libs are left alone: their headers were rewritten by
#      auditwheel and strip can break them).
#   slim-venv.sh VENV MODULE...
set -eu
venv="$1"; shift
"$venv/bin/python" -m pip check
# shellcheck disable=SC2086
[ -z "${SLIM_DROP:-}" ] || "$venv/bin/python" -m pip uninstall --quiet --yes ${SLIM_DROP}
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel 2>/dev/null || true
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for path in ${SLIM_PRUNE:-}; do
    [ -e "$site/$path" ] || { echo "slim-venv: SLIM_PRUNE: $site/$path does not exist" >&2; exit 1; }
    rm -rf "${site:?}/$path"
done
find "$site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +
find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c' \
    -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \) -delete
if command -v strip >/dev/null 2>&1; then
    find "$site" -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} +
fi
for module in "$@"; do
    "$venv/bin/python" -c "import importlib, sys; importlib.import_module(sys.argv[1])" "$module"
done
