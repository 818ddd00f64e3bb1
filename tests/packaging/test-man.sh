#!/bin/sh
# The man pages format without a groff warning, and every policy example in
# mbxd-policy(5) (between "example-begin" and "example-end") passes
# `mbxctl policy check`: the page cannot show a policy the daemon refuses.
# usage: test-man.sh SOURCE MBXCTL
set -eu
src=$1 mbxctl=$2
dir=$(mktemp -d /tmp/mbxd-man-XXXXXX)
trap 'rm -rf "$dir"' EXIT
for page in "$src"/docs/man/*.[1-8]; do
	out=$(groff -man -ww -z "$page" 2>&1)
	[ -z "$out" ] || { echo "FAIL: $page: $out"; exit 1; }
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" >/dev/null 2>&1 || { echo "FAIL: man -l $page"; exit 1; }
done
n=0
for name in $(sed -n 's/^\.\\" example-begin //p' "$src/docs/man/mbxd-policy.5"); do
	sed -n "/^\.\\\\\" example-begin $name\$/,/^\.\\\\\" example-end/p" \
		"$src/docs/man/mbxd-policy.5" |
		sed '/^\./d; s/\\-/-/g; s/\\e/\\/g; s/\\(dq/"/g' >"$dir/$name.yaml"
	grep -q '^version: 1$' "$dir/$name.yaml" || { echo "FAIL: example $name not extracted"; exit 1; }
	"$mbxctl" policy check "$dir/$name.yaml" >/dev/null || {
		echo "FAIL: example $name in mbxd-policy(5):"; "$mbxctl" policy check "$dir/$name.yaml"
		cat "$dir/$name.yaml"; exit 1; }
	n=$((n + 1))
done
[ "$n" -ge 3 ] || { echo "FAIL: only $n policy examples found"; exit 1; }
echo "man pages format cleanly; $n policy examples load: OK"
