#!/bin/sh
# The Debian packages: build them with dpkg-buildpackage from a copy of the
# tracked tree, install them on this machine, start the installed mbxd on a
# test configuration, send one request with the installed mbxctl, compile
# against libmbx-dev, then purge and check nothing is left. Needs root.
# usage: test-deb.sh SOURCE
set -eu
src=$1
fail() { echo "FAIL: $*" >&2; [ -n "${log:-}" ] && [ -f "$log" ] && cat "$log" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root: it installs and purges packages"
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null ||
	fail "dpkg-dev and debhelper are missing (conf/install-deps.sh)"
work=$(mktemp -d /tmp/mbxd-deb-XXXXXX)
chmod 755 "$work"
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	dpkg --purge mbxd mbxctl libmbx-dev libmbx0 >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/mbxd-0.1.0"
(cd "$src" && git ls-files -z | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$work/mbxd-0.1.0"
(cd "$work/mbxd-0.1.0" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
	{ tail -40 "$work/build.log"; fail "dpkg-buildpackage"; }
for p in mbxd mbxctl libmbx0 libmbx-dev; do
	ls "$work"/${p}_0.1.0_*.deb >/dev/null 2>&1 || fail "no $p package built"
done
dpkg-deb -c "$work"/mbxd_0.1.0_*.deb >"$work/mbxd.list"
grep -q './lib/systemd/system/mbxd.socket' "$work/mbxd.list" || fail "mbxd.socket is not in mbxd"
dpkg-deb -c "$work"/libmbx0_0.1.0_*.deb >"$work/libmbx0.list"
grep -q 'libmbx.so.0' "$work/libmbx0.list" || fail "libmbx0 lacks the library"

dpkg -i "$work"/mbxd_0.1.0_*.deb "$work"/mbxctl_0.1.0_*.deb "$work"/libmbx0_0.1.0_*.deb \
	"$work"/libmbx-dev_0.1.0_*.deb >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
getent passwd _mbxd >/dev/null || fail "postinst did not create _mbxd"
getent group cxl-users >/dev/null || fail "postinst did not create cxl-users"
[ -d /var/log/mbxd ] || fail "postinst did not create /var/log/mbxd"
[ "$(stat -c %U /var/log/mbxd)" = _mbxd ] || fail "/var/log/mbxd is not _mbxd's"
/usr/sbin/mbxd -n -f /etc/mbxd/mbxd.yaml >/dev/null || fail "the installed configuration does not check"
man -w mbxd >/dev/null 2>&1 || fail "man mbxd not found"

t="$work/run"
mkdir "$t" && chmod 755 "$t"
cat >"$t/policy.yaml" <<'YAML'
version: 1
rules:
  - name: root-reads
    who: { users: [root] }
    allow: [read]
YAML
cat >"$t/mbxd.yaml" <<YAML
socket: { path: $t/mbxd.sock, mode: "0660" }
policy: $t/policy.yaml
audit: { path: $t/audit.jsonl }
devices:
  - name: mem0
    transport: sim
    options: { model: memdev, serial: 0x1111 }
YAML
log="$t/mbxd.log"
/usr/sbin/mbxd -d -f "$t/mbxd.yaml" 2>"$log" &
pid=$!
i=0
until /usr/bin/mbxctl --socket "$t/mbxd.sock" devices >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null || fail "installed mbxd did not start"
	sleep 0.1
done
out=$(/usr/bin/mbxctl --socket "$t/mbxd.sock" --json health mem0) || fail "mbxctl health: $out"
echo "$out" | grep -q '"device":"mem0","health":{' || fail "health answer: $out"
/usr/bin/mbxctl --socket "$t/mbxd.sock" metrics | grep -q '^mbxd_requests_total{device="mem0",class="read",outcome="allowed"} 1$' ||
	fail "metrics do not count the request"
kill "$pid"
wait "$pid" || fail "installed mbxd did not exit 0"
pid=""

cat >"$work/prog.c" <<'C'
#include <mbx/mbx.h>
int main(void) { return mbx_class_from_name("fabric") == MBX_CLASS_FABRIC ? 0 : 1; }
C
# shellcheck disable=SC2046
cc -o "$work/prog" "$work/prog.c" $(pkg-config --cflags --libs libmbx) && "$work/prog" ||
	fail "a program against the installed libmbx-dev"

dpkg --purge mbxd mbxctl libmbx-dev libmbx0 >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
for f in /usr/sbin/mbxd /usr/bin/mbxctl /etc/mbxd /var/log/mbxd /lib/systemd/system/mbxd.service \
	/usr/include/mbx; do
	[ ! -e "$f" ] || fail "$f is left after purge"
done
echo "packages built, installed, ran, purged: OK"
