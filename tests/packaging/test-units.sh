#!/bin/sh
# The systemd units pass `systemd-analyze verify` without a single warning:
# unknown keys and bad values only warn, so any output fails the test. The
# units name /usr/sbin/mbxd, which verify wants to exist: a copy points at
# the build's mbxd instead.
# usage: test-units.sh SOURCE MBXD
set -eu
src=$1 mbxd=$2
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze missing (conf/install-deps.sh)"; exit 1; }
dir=$(mktemp -d /tmp/mbxd-units-XXXXXX)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/sbin/mbxd|$mbxd|g" "$src/conf/systemd/mbxd.service" >"$dir/mbxd.service"
cp "$src/conf/systemd/mbxd.socket" "$dir/"
out=$(systemd-analyze verify --man=no "$dir/mbxd.socket" "$dir/mbxd.service" 2>&1) || {
	echo "FAIL: systemd-analyze verify: $out"; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify warns: $out"; exit 1; }
grep -q '^Type=notify$' "$dir/mbxd.service"
grep -q '^ListenStream=/run/mbxd/mbxd.sock$' "$dir/mbxd.socket"
# sysusers and tmpfiles entries parse, and make what the service expects.
root=$(mktemp -d /tmp/mbxd-root-XXXXXX)
trap 'rm -rf "$dir" "$root"' EXIT
mkdir -p "$root/etc"
cp /etc/passwd /etc/group /etc/shadow /etc/gshadow "$root/etc/" 2>/dev/null || true
sed -i '/^_mbxd:/d; /^cxl-users:/d' "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" \
	"$root/etc/gshadow" 2>/dev/null || true
systemd-sysusers --root="$root" "$src/conf/systemd/mbxd.sysusers"
grep -q '^_mbxd:' "$root/etc/passwd" || { echo "FAIL: sysusers made no _mbxd"; exit 1; }
grep -q '^cxl-users:' "$root/etc/group" || { echo "FAIL: sysusers made no cxl-users"; exit 1; }
systemd-tmpfiles --root="$root" --create "$src/conf/systemd/mbxd.tmpfiles"
[ -d "$root/run/mbxd" ] && [ -d "$root/var/log/mbxd" ] || { echo "FAIL: tmpfiles"; exit 1; }
echo "units, sysusers, tmpfiles: OK"
