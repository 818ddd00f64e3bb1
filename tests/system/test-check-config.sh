#!/bin/sh
# mbxd -n refuses what a start would refuse, transport options included, and
# names the file, line and key; a good configuration is "configuration OK".
# Usage: test-check-config.sh MBXD SOURCE_DIR
set -eu
mbxd=$1 src=$2
work=$(mktemp -d /tmp/test-check-config-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$src/conf/demo/." "$work/"
fail() { echo "test-check-config: FAIL: $*" >&2; exit 1; }

out=$("$mbxd" -n -f "$work/mbxd.yaml" 2>&1) || fail "the demo configuration: $out"
[ "$out" = "configuration OK" ] || fail "the demo configuration said: $out"

line=$(grep -n 'model: memdev' "$work/mbxd.yaml" | head -n1 | cut -d: -f1)
sed -i 's/model: memdev/model: toaster/' "$work/mbxd.yaml"
rc=0
out=$("$mbxd" -n -f "$work/mbxd.yaml" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "model: toaster: exit $rc, not 1 ($out)"
want="$work/mbxd.yaml:$line: model: \"toaster\" is not memdev or switch"
[ "$out" = "$want" ] || fail "model: toaster: said \"$out\", not \"$want\""
echo "test-check-config: 2 passed, 0 failed"
