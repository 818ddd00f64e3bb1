#!/bin/sh
# In-guest tests of the chardev transport's sysfs routes (run by guest-init.sh
# as /mbx/test.sh under Debian's bookworm-backports kernel with QEMU 10's
# cxl-type3 device, serial 0x1111). Distro kernels disable RAW, so Sanitize
# and Secure Erase reach the device only through security/sanitize and
# security/erase: mbxd routes them there, after its policy and audit, and
# follows a routed Sanitize through security/state. Transfer FW goes to the
# kernel's firmware upload class (firmware/mem0), which also stages the slot.
# shellcheck source=guest-lib.sh
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

# The kernel's firmware upload class under the memdev, and mbxd keeping the
# one capability the kernel checks on each write of the image.
check_fw_route_shown() {
	fwdir=/sys/bus/cxl/devices/mem0/firmware/mem0
	echo "firmware/mem0: $(ls "$fwdir" 2>/dev/null | tr '\n' ' ')status=$(cat "$fwdir/status" 2>/dev/null)"
	caps=$(grep '^CapEff' /proc/$mbxd_pid/status | awk '{print $2}')
	rawio=$(((0x$caps >> 17) & 1))
	echo "mbxd CapEff $caps (CAP_SYS_RAWIO: $rawio)"
	if [ -e "$fwdir/loading" ] && [ -e "$fwdir/data" ] && [ "$(cat "$fwdir/status")" = idle ] &&
		[ "$rawio" = 1 ]; then
		ok "kernel-shows-firmware-upload-and-mbxd-keeps-cap-sys-rawio"
	else
		bad "kernel-shows-firmware-upload-and-mbxd-keeps-cap-sys-rawio" "CapEff $caps"
	fi
}

# Writes a Transfer FW input: action $1, slot $2, offset $3 (128-byte units),
# then $5 128-byte blocks of /tmp/fw.img from block $4 (all the rest if empty).
fw_part() {
	{
		printf "\\$(printf %03o $1)\\$(printf %03o $2)\\000\\000\\$(printf %03o $3)\\000\\000\\000"
		dd if=/dev/zero bs=120 count=1 2>/dev/null
		if [ -n "$5" ]; then
			dd if=/tmp/fw.img bs=128 skip=$4 count=$5 2>/dev/null
		else
			dd if=/tmp/fw.img bs=128 skip=$4 2>/dev/null
		fi
	} >"$6"
}

# Get FW Info through mbxd: "active staged slot-2-revision".
fw_info() {
	as_tester --json send mem0 0x0200
	h=$(json '.output_hex // empty')
	info=$(hex_le "$h" 1 1)
	echo "$((info & 7)) $(((info >> 3) & 7)) $(hex_ascii "$h" 32 16)"
}

# Who may not, and a slot the kernel would not write: nothing reaches the kernel.
check_fw_refusals() {
	dd if=/dev/urandom of=/tmp/fw.img bs=1000 count=5 2>/dev/null
	fw_part 0 2 0 0 8 /tmp/fw-full
	as_tester --json send mem0 0x0201 --in /tmp/fw-full
	st=$(json .status)
	if [ $rc = 3 ] && [ "$st" = denied ] && [ "$(cat $fwdir/status)" = idle ]; then
		ok "transfer-fw-denied-to-tester"
	else
		bad "transfer-fw-denied-to-tester" "exit $rc status $st"
	fi
	fw_part 0 1 0 0 8 /tmp/fw-slot1
	as_user admin --json send mem0 0x0201 --in /tmp/fw-slot1 --reason CHG-7-wrong-slot
	echo "slot 1: exit $rc rc $(json .return_code): $(json .message)"
	if [ $rc = 1 ] && [ "$(json .return_code)" = 0x0b ] &&
		json .message | grep -q "writes slot 2 (the one after active slot 1 of 2), not slot 1" &&
		[ "$(fw_info)" = "1 0 " ]; then
		ok "transfer-fw-to-another-slot-is-invalid-slot"
	else
		bad "transfer-fw-to-another-slot-is-invalid-slot" "exit $rc, fw info $(fw_info)"
	fi
}

# A 5000-byte image in three parts of at most the 2048-byte mailbox: the kernel
# takes it at the End, transfers it (in its own parts) and stages slot 2;
# mbxctl --wait follows the progress to the completion.
check_fw_update() {
	before=$(fw_info)
	fw_part 1 0 0 0 15 /tmp/fw-p1
	fw_part 2 0 15 15 15 /tmp/fw-p2
	fw_part 3 2 30 30 "" /tmp/fw-p3
	as_user admin --json send mem0 0x0201 --in /tmp/fw-p1 --reason CHG-7-fw-update
	r1="$rc $(json .return_code)"
	as_user admin --json send mem0 0x0201 --in /tmp/fw-p2 --reason CHG-7-fw-update
	r2="$rc $(json .return_code)"
	# The End starts the kernel's upload; meanwhile tester's Identify gets Busy at
	# once instead of waiting in the kernel (which holds the mailbox per part).
	su -s /bin/sh admin -c "mbxctl --json send mem0 0x0201 --in /tmp/fw-p3 --reason CHG-7-fw-update --wait" \
		>/tmp/fw-p3.out 2>&1 &
	upload=$!
	sleep 1
	as_tester --json send mem0 identify-memory-device
	during="$rc $(json .return_code) $(json .duration_us)"
	during_msg=$(json .message)
	rc=0
	wait $upload || rc=$?
	cp /tmp/fw-p3.out "$out"
	sed 's/^/    > /' "$out"
	started=$(grep '^{' "$out" | head -n1 | jq -r '"\(.status) \(.return_code)"')
	msg=$(grep '^{' "$out" | head -n1 | jq -r .message)
	pcts=$(grep '"event":"progress"' "$out" | jq -r .percent | tr '\n' ' ')
	end=$(grep '"event":"complete"' "$out" | tail -n1 | jq -r '"\(.return_code) \(.percent)"')
	after=$(fw_info)
	kernel="$(cat $fwdir/status) \"$(cat $fwdir/error)\" $(cat $fwdir/remaining_size)"
	echo "parts: \"$r1\" \"$r2\" then $started ($msg); progress: $pcts; complete: $end"
	echo "FW Info before: \"$before\", after: \"$after\"; the kernel's status, error, remaining: $kernel"
	if [ "$r1" = "0 0x00" ] && [ "$r2" = "0 0x00" ] && [ "$started" = "ok 0x01" ] &&
		echo "$msg" | grep -q "activates slot 2 for the next cold reset" &&
		[ "$end" = "0x00 100" ] && [ "$after" = "1 2 BWFW VERSION 1" ]; then
		ok "firmware-update-through-the-kernel-stages-slot-2"
	else
		bad "firmware-update-through-the-kernel-stages-slot-2" "exit $rc; $started; complete $end; after $after"
	fi
	if [ -n "$pcts" ]; then
		ok "firmware-update-progress-events ($pcts)"
	else
		bad "firmware-update-progress-events" "no progress event"
	fi
	# The kernel's own account of the upload (Debian's ndctl 76 cannot list firmware).
	# duration_us is mbxd's time in the transport: microseconds, not the seconds of a part.
	echo "Identify during the upload: exit, rc, us in the transport: $during: $during_msg"
	set -- $during
	if [ "$1 $2" = "1 0x06" ] && [ "${3:-999999}" -lt 100000 ]; then
		ok "identify-during-the-upload-is-busy-at-once ($3 us)"
	else
		bad "identify-during-the-upload-is-busy-at-once" "exit, rc, us: $during"
	fi
	as_tester --json send mem0 identify-memory-device
	if [ $rc = 0 ] && [ "$(json .status)" = ok ]; then
		ok "device-answers-after-the-upload"
	else
		bad "device-answers-after-the-upload" "exit $rc"
	fi
	if [ "$kernel" = 'idle "" 0' ]; then
		ok "firmware-update-kernel-reports-no-error"
	else
		bad "firmware-update-kernel-reports-no-error" "status, error, remaining: $kernel"
	fi
}

# The audit log: an intent with the reason for every part, results 0, 0,
# background started, and the background record of the completion.
check_fw_audit() {
	a=/var/log/mbxd/audit.jsonl
	sel='select(.opcode == "0x0201" and .user == "admin" and .reason == "CHG-7-fw-update")'
	intents=$(jq -r "$sel"' | select(.kind == "intent") | .seq' "$a" | tr '\n' ' ')
	results=$(jq -r 'select(.opcode == "0x0201" and .kind == "result") | "\(.cxl_rc // .status)/\(.background)"' "$a" | tail -n3 | tr '\n' ' ')
	bg=$(jq -r 'select(.opcode == "0x0201" and .kind == "background") | "\(.background) \(.cxl_rc)"' "$a" | tail -n1)
	echo "intents: $intents; results: $results; background: $bg"
	if [ "$(echo $intents | wc -w)" = 3 ] && [ "$results" = "0/null 0/null 1/started " ] &&
		[ "$bg" = "completed 0" ]; then
		ok "firmware-update-audited"
	else
		jq -c 'select(.opcode == "0x0201")' "$a" | sed 's/^/    > /'
		bad "firmware-update-audited" "intents $intents results $results background $bg"
	fi
}

# What an operator runs: mbxctl firmware-update picks the kernel's slot from
# Get FW Info and splits the image into parts that fit the mailbox; asking it
# to activate is refused before anything is sent (the kernel activates).
check_fw_update_with_mbxctl() {
	dd if=/dev/urandom of=/tmp/fw2.img bs=1000 count=3 2>/dev/null
	n=$(jq -s 'map(select(.opcode == "0x0201")) | length' /var/log/mbxd/audit.jsonl)
	as_user admin --json firmware-update mem0 /tmp/fw2.img --activate online --reason CHG-8
	st=$rc
	n2=$(jq -s 'map(select(.opcode == "0x0201")) | length' /var/log/mbxd/audit.jsonl)
	echo "--activate online: exit $st: $(grep -v '^{' "$out" | head -n1); Transfer FW records $n -> $n2"
	if [ $st != 0 ] && [ "$n" = "$n2" ]; then
		ok "mbxctl-firmware-update-activate-refused-up-front"
	else
		bad "mbxctl-firmware-update-activate-refused-up-front" "exit $st, records $n -> $n2"
	fi
	as_user admin firmware-update mem0 /tmp/fw2.img --reason CHG-8 --wait
	sed 's/^/    > /' "$out"
	after=$(fw_info)
	if [ $rc = 0 ] && [ "$after" = "1 2 BWFW VERSION 1" ] && [ "$(cat $fwdir/status)" = idle ] &&
		[ -z "$(cat $fwdir/error)" ]; then
		ok "mbxctl-firmware-update-through-the-kernel"
	else
		bad "mbxctl-firmware-update-through-the-kernel" "exit $rc, fw info $after, error $(cat $fwdir/error)"
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
check_fw_route_shown
check_fw_refusals
check_fw_update
check_fw_audit
check_fw_update_with_mbxctl
stop_mbxd
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
