#!/bin/sh
# In-guest tests of the chardev transport's sysfs routes (run by guest-init.sh
# as /mbx/test.sh under Debian's bookworm-backports kernel with QEMU 10's
# cxl-type3 device, serial 0x1111). Distro kernels disable RAW, so Sanitize
# and Secure Erase reach the device only through security/sanitize and
# security/erase: mbxd routes them there, after its policy and audit, and
# follows a routed Sanitize through security/state.
. /mbx/lib.sh

sec=/sys/bus/cxl/devices/mem0/security

# What this kernel shows for the device: the security/ group and its routes.
check_routes_shown() {
	ls -l "$sec" >"$out" 2>&1 || true
	echo "security/: $(ls "$sec" 2>/dev/null | tr '\n' ' ')state=$(cat "$sec/state" 2>/dev/null)"
	if [ -e "$sec/sanitize" ] && [ -e "$sec/state" ]; then
		ok "kernel-shows-security-sanitize"
	else
		bad "kernel-shows-security-sanitize" "no $sec/sanitize or state"
	fi
}

check_cel() {
	as_tester --json cel mem0
	n=$(json '.cel | length')
	san=$(json '[.cel[].opcode] | index("0x4400") != null')
	erase=$(json '[.cel[].opcode] | index("0x4401") != null')
	echo "CEL: $n entries; Sanitize listed: $san; Secure Erase listed: $erase"
	if [ $rc = 0 ] && [ "$san" = true ]; then
		ok "cel-lists-sanitize ($n entries)"
	else
		bad "cel-lists-sanitize" "exit $rc, $n entries"
	fi
}

# The admin may run data-class commands, but only with a reason.
check_sanitize_needs_reason() {
	as_user admin --json send mem0 0x4400
	st=$(json .status)
	if [ $rc = 3 ] && [ "$st" = denied ] && grep -q "reason is required" "$out" &&
		[ "$(cat "$sec/state")" != sanitize ]; then
		ok "sanitize-without-reason-denied"
	else
		bad "sanitize-without-reason-denied" "exit $rc status $st"
	fi
}

# The admin with a reason: the policy allows it, it goes to security/sanitize,
# and mbxctl --wait follows it (mbxd polls 0002h, which the transport answers
# from security/state) to its completion.
check_sanitize_runs() {
	(
		i=0
		while [ $i -lt 1200 ]; do
			cat "$sec/state"
			sleep 0.05
			i=$((i + 1))
		done
	) >/tmp/states 2>&1 &
	watch=$!
	as_user admin --json send mem0 0x4400 --reason INC-42-decommission --wait
	kill $watch 2>/dev/null
	wait $watch 2>/dev/null
	sed 's/^/    > /' "$out"
	started=$(grep '^{' "$out" | head -n1 | jq -r '"\(.status) \(.return_code)"')
	progress=$(grep -c '"event":"progress"' "$out" || true)
	done_line=$(grep '"event":"complete"' "$out" | tail -n1)
	end=$(echo "$done_line" | jq -r '"\(.return_code) \(.percent)"')
	seen=$(grep -c '^sanitize$' /tmp/states || true)
	echo "result: $started; $progress progress events; complete: $end; security/state read \"sanitize\" $seen times, then \"$(tail -n1 /tmp/states)\""
	if [ $rc = 0 ] && [ "$started" = "ok 0x01" ] && [ "$end" = "0x00 100" ] && [ "$seen" -ge 1 ] &&
		[ "$(cat "$sec/state")" != sanitize ]; then
		ok "sanitize-through-sysfs-completes"
	else
		bad "sanitize-through-sysfs-completes" "exit $rc; result $started; complete $end; state sanitize seen $seen times"
	fi
	if [ "$progress" -ge 1 ]; then
		ok "sanitize-progress-events ($progress)"
	else
		bad "sanitize-progress-events" "no progress event"
	fi
}

# The audit log: intent (with the reason), result "started", background "completed".
check_sanitize_audit() {
	a=/var/log/mbxd/audit.jsonl
	sel='select(.opcode == "0x4400" and .user == "admin")'
	jq -c "$sel" "$a" >"$out"
	sed 's/^/    > /' "$out"
	intent=$(jq -r "$sel"' | select(.kind == "intent") | "\(.seq) \(.reason)"' "$a" | tail -n1)
	result=$(jq -r "$sel"' | select(.kind == "result") | "\(.intent_seq) \(.background) \(.cxl_rc)"' "$a" | tail -n1)
	bg=$(jq -r "$sel"' | select(.kind == "background") | "\(.intent_seq) \(.background) \(.cxl_rc)"' "$a" | tail -n1)
	seq=${intent%% *}
	if [ "$intent" = "$seq INC-42-decommission" ] && [ "$result" = "$seq started 1" ] &&
		[ "$bg" = "$seq completed 0" ]; then
		ok "sanitize-audited-intent-started-completed"
	else
		bad "sanitize-audited-intent-started-completed" "intent \"$intent\" result \"$result\" background \"$bg\""
	fi
}

# The device still answers after its Sanitize.
check_device_after() {
	as_tester --json send mem0 identify-memory-device
	if [ $rc = 0 ] && [ "$(json .status)" = ok ]; then
		ok "device-answers-after-sanitize"
	else
		bad "device-answers-after-sanitize" "exit $rc"
	fi
}

# Secure Erase: through security/erase where the kernel shows it (the device's
# CEL lists 4401h), else refused naming the missing route. Either way, what
# the kernel answered is printed.
check_secure_erase() {
	as_user admin --json send mem0 0x4401 --reason INC-43-erase
	st=$(json .status)
	msg=$(json .message)
	kinds=$(audit_kinds 0x4401 admin)
	echo "Secure Erase: exit $rc status $st rc $(json .return_code): $msg"
	if [ -e "$sec/erase" ]; then
		if [ $rc = 0 ] && [ "$st" = ok ] && [ "$kinds" = "intent result " ]; then
			ok "secure-erase-through-sysfs"
		else
			bad "secure-erase-through-sysfs" "exit $rc status $st, audit kinds: $kinds"
		fi
	elif [ $rc = 4 ] && [ "$st" = unsupported ] &&
		echo "$msg" | grep -q "secure erase through sysfs is not offered" &&
		[ "$kinds" = "intent result " ]; then
		ok "secure-erase-refused-naming-the-missing-route"
	else
		bad "secure-erase-refused-naming-the-missing-route" "exit $rc status $st, audit kinds: $kinds"
	fi
}

setup_users
start_mbxd
check_routes_shown
check_cel
check_sanitize_denied
check_sanitize_needs_reason
check_sanitize_runs
check_sanitize_audit
check_device_after
check_secure_erase
stop_mbxd
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
