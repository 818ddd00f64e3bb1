#!/bin/sh
# Shared by the in-guest tests (sourced as /mbx/lib.sh): the verdict lines,
# running mbxctl as a user, reading its JSON, the users, starting mbxd.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
pass=0
failed=0
out=/tmp/out

ok() {
	echo "MBX-TEST ok $1"
	pass=$((pass + 1))
}

bad() {
	echo "MBX-TEST FAIL $1: $2"
	[ -s "$out" ] && sed 's/^/    | /' "$out" | head -n 20
	failed=$((failed + 1))
}

# Runs mbxctl as user $1; output (both streams) in $out, exit code in $rc.
as_user() {
	u=$1
	shift
	rc=0
	su -s /bin/sh "$u" -c "mbxctl $*" >"$out" 2>&1 || rc=$?
}

# Runs mbxctl as the unprivileged user tester.
as_tester() { as_user tester "$@"; }

# The JSON line of the last mbxctl --json run (errors go to the same file).
json() { grep '^{' "$out" | tail -n1 | jq -r "$1"; }

# Decodes bytes [off, off+len) of a hex string as NUL-padded ASCII.
hex_ascii() { echo "$1" | cut -c$(($2 * 2 + 1))-$((($2 + $3) * 2)) | xxd -r -p | tr -d '\000'; }

# Decodes a little-endian unsigned integer of len bytes at off of a hex string.
hex_le() {
	h=$(echo "$1" | cut -c$(($2 * 2 + 1))-$((($2 + $3) * 2)))
	v=""
	while [ -n "$h" ]; do
		v="$(echo "$h" | cut -c1-2)$v"
		h=$(echo "$h" | cut -c3-)
	done
	printf '%d' "0x${v:-0}"
}

# The users: root runs mbxd; tester is nobody special; admin (or the name
# given: guest-mctp.sh's operator) may run data-class commands with a reason
# (policy.yaml).
setup_users() {
	u2=${1:-admin}
	cat >/etc/passwd <<-EOF
	root:x:0:0:root:/root:/bin/sh
	_mbxd:x:101:101:mbxd:/nonexistent:/bin/false
	tester:x:1000:1000:tester:/tmp:/bin/sh
	$u2:x:1001:1001:$u2:/tmp:/bin/sh
	EOF
	cat >/etc/group <<-EOF
	root:x:0:
	_mbxd:x:101:
	tester:x:1000:
	$u2:x:1001:
	EOF
	mkdir -p /var/log/mbxd /run/mbxd
}

# Writes /etc/mbxd/mbxd.yaml: the socket, policy and audit log every test
# uses, then the devices list read from stdin.
write_mbxd_yaml() {
	{
		cat <<-EOF
		socket:
		  path: /run/mbxd/mbxd.sock
		  mode: "0666"
		policy: /etc/mbxd/policy.yaml
		audit: { path: /var/log/mbxd/audit.jsonl }
		devices:
		EOF
		cat
	} >/etc/mbxd/mbxd.yaml
}

# Starts mbxd (extra flags in $1) with its log in /tmp/mbxd.log; waits up to
# 10 s for its socket, whose presence it returns.
spawn_mbxd() {
	mbxd -d $1 -f /etc/mbxd/mbxd.yaml 2>/tmp/mbxd.log &
	mbxd_pid=$!
	i=0
	while [ ! -S /run/mbxd/mbxd.sock ] && [ $i -lt 100 ] && kill -0 $mbxd_pid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -S /run/mbxd/mbxd.sock ]
}

# Starts mbxd on the device found by serial; waits for its socket.
start_mbxd() {
	spawn_mbxd ""
	cp /tmp/mbxd.log "$out"
	if [ -S /run/mbxd/mbxd.sock ] && grep -q "device mem0: memdev .*serial 0x0*1111" /tmp/mbxd.log; then
		ok "mbxd-opens-memdev-by-serial"
	else
		bad "mbxd-opens-memdev-by-serial" "mbxd did not start on the memdev with serial 0x1111"
	fi
}

stop_mbxd() {
	kill -TERM $mbxd_pid
	rc=0
	wait $mbxd_pid || rc=$?
	cp /tmp/mbxd.log "$out"
	if [ $rc = 0 ]; then
		ok "mbxd-stops-cleanly"
	else
		bad "mbxd-stops-cleanly" "exit $rc"
	fi
}

# The audit record kinds (sorted, space-separated) of opcode $1 by user $2.
audit_kinds() {
	jq -r --arg op "$1" --arg u "$2" 'select(.opcode == $op and .user == $u) | .kind' \
		/var/log/mbxd/audit.jsonl | sort | tr '\n' ' '
}

# Sanitize by tester, who has no data class: refused by the policy, before any
# transport: a decision record only, and the kernel's state untouched.
check_sanitize_denied() {
	before=$(cat /sys/bus/cxl/devices/mem0/security/state 2>/dev/null || echo none)
	as_tester --json send mem0 0x4400
	st=$(json .status)
	kinds=$(audit_kinds 0x4400 tester)
	after=$(cat /sys/bus/cxl/devices/mem0/security/state 2>/dev/null || echo none)
	if [ $rc = 3 ] && [ "$st" = denied ] && [ "$kinds" = "decision " ] && [ "$before" = "$after" ]; then
		ok "sanitize-denied-by-policy (tester, state $after)"
	else
		bad "sanitize-denied-by-policy" "exit $rc status $st, audit kinds: $kinds, state $before -> $after"
	fi
}
