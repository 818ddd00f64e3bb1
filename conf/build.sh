#!/bin/sh
# Configures and builds mbxd in ./build (or $1) with warnings as errors.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
shift 2>/dev/null || true
cmake -S "$top" -B "$build" -DMBX_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
