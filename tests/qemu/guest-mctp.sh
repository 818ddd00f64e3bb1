#!/bin/sh
# /init of the MCTP test guest (tests/qemu/run-mctp.sh): a kernel with
# CONFIG_MCTP and mctp-serial, no modules. The endpoint emulator owns a pty
# pair whose slave side carries the N_MCTP line discipline (mctpserial0) and
# answers as EID 10 (memory device), 11 (switch, memory device on port 1)
# and 12 (memory device, reached with no route, by interface). mbxd runs as
# root with --no-sandbox for the fault checks, then in its sandbox (as
# _mbxd, keeping CAP_NET_RAW alone: AF_MCTP sends need it); the
# unprivileged users "tester" and "operator" talk to it with mbxctl. Each check prints "MBX-TEST ok NAME" or "MBX-TEST FAIL
# NAME: why"; the last line is "MBX-QEMU-DONE pass=N fail=M".
# shellcheck source=guest-lib.sh
. /mbx/lib.sh

# Runs mbxctl as the operator, whom the policy allows data-class commands on mem0.
as_operator() { as_user operator "$@"; }

# Mounts what the guest needs (with the ptys the endpoint emulator uses) and
# sets up the users.
boot() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	mkdir -p /dev/pts
	mount -t devpts -o ptmxmode=666 devpts /dev/pts
	[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
	mount -t tmpfs -o mode=755 tmpfs /run
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	echo "MBX-GUEST-START $(uname -r)"
	setup_users operator
}

# Starts the endpoint emulator and routes to it; sets $ifname and $ep_pid.
start_link() {
	mctp-endpoint -v --ready /run/ep.ready --late-ms 3000 \
		--eid 10:memdev --eid 11:switch --eid 12:memdev 2>/tmp/ep.log &
	ep_pid=$!
	i=0
	while [ ! -s /run/ep.ready ] && [ $i -lt 50 ] && kill -0 $ep_pid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	ifname=$(cat /run/ep.ready 2>/dev/null)
	cp /tmp/ep.log "$out"
	case "$ifname" in
	mctpserial*) ok "n_mctp-makes-$ifname" ;;
	*)
		bad "n_mctp-makes-an-interface" "no mctpserial interface"
		return 1
		;;
	esac
	rc=0
	mctp-setup "$ifname" 8 10 11 >"$out" 2>&1 || rc=$?
	if [ $rc = 0 ] && [ "$(cat /sys/class/net/$ifname/operstate)" != down ]; then
		ok "rtnetlink-link-up-eid-8-routes-10-11"
	else
		bad "rtnetlink-link-up-eid-8-routes-10-11" "mctp-setup exit $rc"
		return 1
	fi
}

# Writes mbxd's config for the three endpoints.
write_config() {
	write_mbxd_yaml <<-EOF
	  - name: mem0
	    transport: mctp
	    timeout_ms: 2000
	    options: { net: 1, eid: 10 }
	  - name: sw0
	    transport: mctp
	    options: { eid: 11 }
	  - name: mem1
	    transport: mctp
	    options: { eid: 12, interface: $ifname }
	EOF
}

# Starts mbxd (extra flags in $1; in place of lib.sh's); waits for its socket.
start_mbxd() {
	write_config
	spawn_mbxd "$1"
}

# Stops mbxd (in place of lib.sh's, which checks its exit status).
stop_mbxd() {
	kill $mbxd_pid 2>/dev/null
	wait $mbxd_pid 2>/dev/null
	rm -f /run/mbxd/mbxd.sock
}

check_devices() {
	as_tester --json devices
	k0=$(json '.devices[] | select(.name=="mem0") | .kind')
	s0=$(json '.devices[] | select(.name=="mem0") | .serial')
	k1=$(json '.devices[] | select(.name=="sw0") | .kind')
	t1=$(json '.devices[] | select(.name=="sw0") | .transport')
	k2=$(json '.devices[] | select(.name=="mem1") | .kind')
	if [ $rc = 0 ] && [ "$k0" = memdev ] && [ "$k1" = switch ] && [ "$t1" = mctp ] &&
		[ "$k2" = memdev ] && [ "$s0" = 0x5a5a000000000001 ]; then
		ok "devices-kind-serial-from-identify"
	else
		bad "devices-kind-serial-from-identify" "mem0 $k0 $s0, sw0 $k1 $t1, mem1 $k2"
	fi
}

check_identify() {
	as_tester --json identify mem0
	s=$(json '.identify.serial') fw=$(json '.memory_device.firmware_revision // empty')
	if [ $rc = 0 ] && [ "$s" = 0x5a5a000000000001 ] && [ -n "$fw" ]; then
		ok "identify-memdev-over-mctp"
	else
		bad "identify-memdev-over-mctp" "exit $rc serial $s fw \"$fw\""
	fi
}

# The CEL is longer than one 64-byte MCTP packet: it comes back reassembled.
check_cel() {
	as_tester --json cel mem0
	n=$(json '.cel | length') h=$(json '[.cel[] | select(.opcode=="0x4200")] | length')
	if [ $rc = 0 ] && [ "${n:-0}" -gt 16 ] && [ "$h" = 1 ]; then
		ok "cel-$n-entries-reassembled"
	else
		bad "cel-reassembled" "exit $rc, $n entries, 4200h listed $h"
	fi
}

check_health() {
	as_tester --json health mem0
	t=$(json '.health.temperature_celsius // empty')
	if [ $rc = 0 ] && [ -n "$t" ]; then
		ok "health-over-mctp"
	else
		bad "health-over-mctp" "exit $rc"
	fi
}

check_switch() {
	as_tester --json identify sw0
	p=$(json '.switch.physical_ports // empty')
	if [ $rc = 0 ] && [ "$p" = 4 ] && grep -q "type 07h opcode 5100h" /tmp/ep.log; then
		ok "identify-switch-device-as-fmapi-type-7"
	else
		bad "identify-switch-device-as-fmapi-type-7" "exit $rc, ports $p"
	fi
	as_tester --json send sw0 get-physical-port-state --hex 020001
	h=$(json '.output_hex // empty')
	# Two 16-byte port blocks after a 4-byte header; port 1 is a downstream port (03h).
	if [ $rc = 0 ] && [ ${#h} = 72 ] && [ "$(echo "$h" | cut -c41-44)" = 0103 ]; then
		ok "get-physical-port-state"
	else
		bad "get-physical-port-state" "exit $rc output $h"
	fi
}

check_tunnel() {
	as_tester --json health sw0 --tunnel 1
	t=$(json '.health.temperature_celsius // empty')
	if [ $rc = 0 ] && [ -n "$t" ] && grep -q "type 07h opcode 5300h" /tmp/ep.log; then
		ok "tunnelled-health-through-the-switch"
	else
		bad "tunnelled-health-through-the-switch" "exit $rc"
	fi
}

# Physical Port Control is fabric class: denied, and never reaches the endpoint.
check_denied() {
	as_tester --json send sw0 5102 --hex 0100 --reason test
	s=$(json '.status')
	if [ $rc = 3 ] && [ "$s" = denied ] && ! grep -q "opcode 5102h" /tmp/ep.log; then
		ok "fabric-command-denied-never-sent"
	else
		bad "fabric-command-denied-never-sent" "exit $rc status $s"
	fi
}

check_direct() {
	as_tester --json identify mem1
	s=$(json '.identify.serial')
	if [ $rc = 0 ] && [ "$s" = 0x5a5a000000000001 ] && grep -q "EID 12 <- EID 8" /tmp/ep.log; then
		ok "direct-addressing-by-interface"
	else
		bad "direct-addressing-by-interface" "exit $rc serial $s"
	fi
}

# The emulator stays silent once: that request times out, the next is answered.
check_timeout() {
	kill -USR1 $ep_pid
	as_tester --json send mem0 get-health-info
	s=$(json '.status') msg=$(json '.message')
	as_tester --json health mem0
	if [ "$s" = timeout ] && echo "$msg" | grep -q "no answer from MCTP net 1 EID 10" && [ $rc = 0 ]; then
		ok "silent-endpoint-times-out-that-request-only"
	else
		bad "silent-endpoint-times-out-that-request-only" "status $s \"$msg\", next exit $rc"
	fi
}

# The emulator lies about a length once: that request fails as malformed, the next works.
check_malformed() {
	kill -USR2 $ep_pid
	as_tester --json send mem0 get-health-info
	s=$(json '.status') msg=$(json '.message') first=$rc
	as_tester --json health mem0
	if [ $first = 1 ] && [ "$s" = device-error ] &&
		echo "$msg" | grep -q "malformed answer.*length field disagrees" && [ $rc = 0 ]; then
		ok "length-lie-fails-that-request-only"
	else
		bad "length-lie-fails-that-request-only" "exit $first status $s \"$msg\", next exit $rc"
	fi
}

# An answer that arrives after its request timed out is discarded and counted.
check_late() {
	kill -HUP $ep_pid
	as_tester --json send mem0 identify
	s=$(json '.status')
	sleep 2 # the late answer goes out 3 s after its request
	as_tester --json health mem0
	r2=$rc
	kill -USR1 $ep_pid
	as_tester --json send mem0 get-health-info
	msg=$(json '.message')
	if [ "$s" = timeout ] && [ $r2 = 0 ] && echo "$msg" | grep -q "1 late or unmatched"; then
		ok "late-answer-discarded-and-counted"
	else
		bad "late-answer-discarded-and-counted" "first $s, next exit $r2, then \"$msg\""
	fi
}

# Sanitize answers with the background bit: reported as Background Command
# Started, then the broker polls Background Operation Status over MCTP to the end.
check_background() {
	as_operator --json send mem0 sanitize --reason mctp-test --wait
	first=$(grep '^{' "$out" | head -n1 | jq -r '.return_code')
	polls=$(grep -c "EID 10 <- EID 8 type 08h opcode 0002h" /tmp/ep.log)
	if [ $rc = 0 ] && [ "$first" = 0x01 ] && [ "$polls" -ge 1 ]; then
		ok "background-sanitize-followed-to-completion"
	else
		bad "background-sanitize-followed-to-completion" "exit $rc first rc $first, $polls status polls"
	fi
}

# In its sandbox mbxd runs as _mbxd and keeps CAP_NET_RAW alone, which AF_MCTP sends need.
check_sandboxed() {
	if ! start_mbxd ""; then
		cp /tmp/mbxd.log "$out"
		bad "sandboxed-mbxd-over-mctp" "mbxd did not start in its sandbox"
		return
	fi
	caps=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/$mbxd_pid/status)
	uid=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' /proc/$mbxd_pid/status)
	as_tester --json health sw0 --tunnel 1
	t=$(json '.health.temperature_celsius // empty')
	if [ $rc = 0 ] && [ -n "$t" ] && [ "$uid" = 101 ] && [ "$caps" = 0000000000002000 ]; then
		ok "sandboxed-mbxd-over-mctp-keeps-only-cap_net_raw"
	else
		cp /tmp/mbxd.log "$out"
		bad "sandboxed-mbxd-over-mctp-keeps-only-cap_net_raw" "exit $rc uid $uid CapEff $caps"
	fi
	stop_mbxd
}

check_all() {
	check_devices
	check_identify
	check_cel
	check_health
	check_switch
	check_tunnel
	check_denied
	check_direct
	check_timeout
	check_malformed
	check_late
	check_background
}

boot
if start_link; then
	if start_mbxd --no-sandbox; then
		ok "mbxd-opens-three-mctp-endpoints"
		check_all
	else
		cp /tmp/mbxd.log "$out"
		bad "mbxd-opens-three-mctp-endpoints" "mbxd did not start"
	fi
	stop_mbxd
	check_sandboxed
fi
echo "--- endpoint log"
tail -n 30 /tmp/ep.log
echo "--- mbxd log"
tail -n 30 /tmp/mbxd.log
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
sync
poweroff -f
