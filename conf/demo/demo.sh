#!/bin/sh
# The mbxd demo: two emulated devices (a CXL memory device and a switch with
# a memory device behind port 1), two unprivileged users, one policy.
# Run as root from anywhere: sudo conf/demo/demo.sh [BUILD_DIR]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
mbxd="$build/broker/mbxd"
mbxctl="$build/clients/mbxctl"

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it creates two demo users)" >&2; exit 2; }
[ -x "$mbxd" ] && [ -x "$mbxctl" ] || { echo "demo.sh: build first ($mbxd missing)" >&2; exit 2; }

work=$(mktemp -d /tmp/mbxd-demo-XXXXXX)
created_users=""
created_group=""
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	for u in $created_users; do userdel "$u" 2>/dev/null || true; done
	[ -n "$created_group" ] && groupdel "$created_group" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The user mbxd drops to once its devices, socket and audit log are open
# (as packaging creates it; kept afterwards, like any system user).
if ! getent passwd _mbxd >/dev/null; then
	useradd --system --no-create-home --shell /usr/sbin/nologin _mbxd
fi

# Two unprivileged users: an operator (group cxl-operators) and an admin.
if ! getent group cxl-operators >/dev/null; then
	groupadd cxl-operators; created_group=cxl-operators
fi
for u in mbx-operator mbx-admin; do
	if ! getent passwd "$u" >/dev/null; then
		useradd -M -N -s /usr/sbin/nologin "$u"; created_users="$created_users $u"
	fi
done
usermod -a -G cxl-operators mbx-operator

cp -r "$top/conf/demo/." "$work/"
mkdir -p "$work/run"
chmod 755 "$work" "$work/run"
cd "$work"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as() {
	user=$1; shift
	printf '\033[2m$ (as %s) mbxctl %s\033[0m\n' "$user" "$*"
	rc=0; runuser -u "$user" -- "$mbxctl" --socket "$work/run/mbxd.sock" "$@" || rc=$?
	[ $rc = 0 ] || printf '\033[2m(mbxctl exit %s)\033[0m\n' "$rc"
}

say "mbxd checks its configuration and policy"
"$mbxd" -n -f "$work/mbxd.yaml"

say "starting mbxd on the sim devices (socket $work/run/mbxd.sock)"
"$mbxd" -d -f "$work/mbxd.yaml" 2>"$work/mbxd.log" &
pid=$!
i=0; while [ ! -S "$work/run/mbxd.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -S "$work/run/mbxd.sock" ] || { cat "$work/mbxd.log"; exit 1; }

say "the operator lists devices and reads identify and health (class read: allowed)"
as mbx-operator devices
as mbx-operator identify mem0
as mbx-operator health mem0

say "the operator tries Sanitize: class data, denied, and told by which rule"
as mbx-operator send mem0 0x4400 --reason "cleanup"
as mbx-operator explain mem0 0x4400

say "the admin tries Sanitize without a reason: refused, a reason is required"
as mbx-admin send mem0 0x4400

say "the admin sanitizes with a reason; mbxd follows the background operation"
as mbx-admin send mem0 0x4400 --reason "RITM-1042: decommission tenant" --wait

say "the operator reads the memory device behind the switch, through a tunnel"
as mbx-operator identify switch0 --tunnel 1

say "the decoded Command Effects Log of mem0"
as mbx-operator cel mem0

say "the audit log (JSON Lines, hash-chained): intent before the device, result after"
cat "$work/run/audit.jsonl"

say "stopping mbxd"
kill -TERM "$pid"; wait "$pid"; status=$?; pid=""
echo "mbxd exited with status $status"
