#!/bin/sh
# Configures and builds mbxd in ./build (or $1) with warnings as errors;
# further arguments go to cmake's configure step.
# Usage: conf/build.sh [BUILD_DIR [CMAKE_ARGS...]]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
# dash exits on a failing shift (a special built-in), so shift only what is there.
if [ $# -gt 0 ]; then shift; fi
mkdir -p "$build"
if ! cmake -S "$top" -B "$build" -DMBX_WERROR=ON "$@" >"$build/configure.log" 2>&1; then
	cat "$build/configure.log" >&2
	echo "build.sh: cmake could not configure $build (log above)" >&2
	exit 1
fi
if ! cmake --build "$build" -j"$(nproc)"; then
	echo "build.sh: the build in $build failed (errors above)" >&2
	exit 1
fi
