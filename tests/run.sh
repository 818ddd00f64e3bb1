#!/bin/sh
# Installs what the tests need, builds with warnings as errors, and runs the
# whole suite (every CTest label); then rebuilds with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs the unit and system tests again.
# Run as root: the system tests create test users and run clients under
# their uids.  Usage: sudo tests/run.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (sudo tests/run.sh)" >&2; exit 2; }
"$top/conf/install-deps.sh"

echo "== build (warnings are errors) and every test label"
"$top/conf/build.sh" "$top/build"
(cd "$top/build" && ctest --output-on-failure --timeout 900)

echo "== ASan + UBSan build: unit and system tests"
"$top/conf/build.sh" "$top/build-asan" -DMBX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd "$top/build-asan" && ctest --output-on-failure -L 'unit|system')
