#!/bin/sh
# Installs what the tests need, builds with warnings as errors, and runs the
# whole suite (every CTest label). Run as root: the system tests create test
# users and run clients under their uids.  Usage: sudo tests/run.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (sudo tests/run.sh)" >&2; exit 2; }
"$top/conf/install-deps.sh"
"$top/conf/build.sh" "$top/build"
cd "$top/build"
ctest --output-on-failure --timeout 900
