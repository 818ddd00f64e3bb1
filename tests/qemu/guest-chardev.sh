#!/bin/sh
# In-guest tests of the chardev transport (run by guest-init.sh as /mbx/test.sh
# under Debian's kernel with QEMU's cxl-type3 device, serial 0x1111).
#
# mbxd owns /dev/cxl/memN, found by serial; the unprivileged user "tester"
# talks to it with mbxctl; Debian's `cxl list` (ndctl, a client no one here
# wrote) is the cross-check. Sanitize, which 6.1 offers no sysfs route for,
# is refused naming the missing route (the routes themselves are tested on
# 6.12 by guest-chardev-routes.sh). Each check prints "MBX-TEST ok NAME" or
# "MBX-TEST FAIL NAME: why"; the last line is "MBX-QEMU-DONE pass=N fail=M".
# shellcheck source=guest-lib.sh
. /mbx/lib.sh

# A serial no device has is refused at start-up with the cause.
check_unknown_serial() {
	sed -e 's/serial: 0x1111/serial: 0x2222/' -e 's#/run/mbxd/mbxd.sock#/run/mbxd/other.sock#' \
		/etc/mbxd/mbxd.yaml >/etc/mbxd/other.yaml
	rc=0
	timeout 20 mbxd -d -f /etc/mbxd/other.yaml >"$out" 2>&1 || rc=$?
	if [ $rc != 0 ] && grep -q "no memory device with serial 0x2222" "$out"; then
		ok "unknown-serial-refused"
	else
		bad "unknown-serial-refused" "mbxd exit $rc"
	fi
}

# Debian's ndctl view of the same device: serial, firmware, capacity. ndctl
# 76.1 (bookworm) does not print firmware_version yet (later versions do);
# then the firmware is the kernel's own sysfs attribute, which libcxl reads.
cxl_facts() {
	cxl list -m mem0 -I >/tmp/cxl.json 2>/tmp/cxl.err || true
	cxl_serial=$(jq -r '.[0].serial // empty' /tmp/cxl.json)
	cxl_fw=$(jq -r '.[0].firmware_version // empty' /tmp/cxl.json)
	[ -n "$cxl_fw" ] || cxl_fw=$(cat /sys/bus/cxl/devices/mem0/firmware_version 2>/dev/null)
	cxl_total=$(jq -r '((.[0].ram_size // 0) + (.[0].pmem_size // 0))' /tmp/cxl.json)
	cxl_lsa=$(cat /sys/bus/cxl/devices/mem0/label_storage_size 2>/dev/null)
	echo "cxl list -m mem0 -I: serial=$cxl_serial firmware=$cxl_fw capacity=$cxl_total"
	cp /tmp/cxl.json "$out"
	if [ -n "$cxl_serial" ] && [ -n "$cxl_fw" ] && [ "$cxl_total" -gt 0 ]; then
		ok "cxl-list-sees-the-device"
	else
		bad "cxl-list-sees-the-device" "cxl list gave no serial/firmware/capacity"
	fi
}

check_devices() {
	as_tester --json devices
	t=$(json '.devices[0].transport') k=$(json '.devices[0].kind') s=$(json '.devices[0].serial')
	if [ $rc = 0 ] && [ "$t" = chardev ] && [ "$k" = memdev ] && [ $((s)) = "$cxl_serial" ]; then
		ok "devices-serial-equals-cxl-list"
	else
		bad "devices-serial-equals-cxl-list" "transport=$t kind=$k serial=$s, cxl list: $cxl_serial"
	fi
}

check_identify() {
	as_tester --json identify mem0
	fw=$(json '.memory_device.firmware_revision // empty')
	total=$(json '.memory_device.total_capacity_bytes // empty')
	if [ $rc = 0 ] && [ "$fw" = "$cxl_fw" ] && [ "$total" = "$cxl_total" ]; then
		ok "identify-decoded-equals-cxl-list"
	else
		bad "identify-decoded-equals-cxl-list" \
			"mbxctl identify exit $rc: fw \"$fw\" capacity $total; cxl list: \"$cxl_fw\" $cxl_total"
	fi
}

# Identify Memory Device (4000h) through the kernel's named command.
check_identify_memdev() {
	as_tester --json send mem0 identify-memory-device
	h=$(json '.output_hex // empty')
	fw=$(hex_ascii "$h" 0 16)
	total=$(($(hex_le "$h" 16 8) * 256 * 1024 * 1024)) # in 256 MiB units (CXL r3.1 Table 8-127)
	lsa=$(hex_le "$h" 56 4)
	if [ $rc = 0 ] && [ "$fw" = "$cxl_fw" ] && [ "$total" = "$cxl_total" ] && [ "$lsa" = "$cxl_lsa" ]; then
		ok "identify-memdev-equals-cxl-list"
	else
		bad "identify-memdev-equals-cxl-list" \
			"exit $rc: fw \"$fw\" capacity $total lsa $lsa; cxl: \"$cxl_fw\" $cxl_total $cxl_lsa"
	fi
}

check_cel() {
	as_tester --json cel mem0
	n=$(json '.cel | length')
	has=$(json '[.cel[].opcode] | (index("0x4000") != null and index("0x4102") != null)')
	if [ $rc = 0 ] && [ "${n:-0}" -ge 13 ] && [ "$has" = true ]; then
		ok "cel-decoded ($n entries)"
	else
		bad "cel-decoded" "exit $rc, $n entries"
	fi
}

# Get FW Info (0200h): the active slot's revision. QEMU 7.2 itself is not
# consistent: slot 1 says "BWFW VERSION 0" where Identify says "BWFW VERSION
# 00", so the check is that one is a prefix of the other.
check_fw_info() {
	as_tester --json send mem0 0x0200
	h=$(json '.output_hex // empty')
	slots=$(hex_le "$h" 0 1)
	active=$(($(hex_le "$h" 1 1) & 7))
	fw=""
	[ "$active" -ge 1 ] && [ "$active" -le 4 ] && fw=$(hex_ascii "$h" $((16 * active)) 16)
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$slots" -ge 1 ] && [ -n "$fw" ] &&
		case "$cxl_fw" in "$fw"*) true ;; *) false ;; esac; then
		ok "fw-info-equals-cxl-list"
	else
		bad "fw-info-equals-cxl-list" "exit $rc: slot $active \"$fw\", cxl list: \"$cxl_fw\""
	fi
}

# Get Partition Info (4100h): active volatile + persistent capacity, in 256 MiB units.
check_partition_info() {
	as_tester --json send mem0 0x4100
	h=$(json '.output_hex // empty')
	total=$((($(hex_le "$h" 0 8) + $(hex_le "$h" 8 8)) * 256 * 1024 * 1024))
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$total" = "$cxl_total" ]; then
		ok "partition-info-equals-cxl-list"
	else
		bad "partition-info-equals-cxl-list" "exit $rc: $total bytes, cxl list: $cxl_total"
	fi
}

# Get LSA (4102h) of 64 bytes at offset 0: input is le32 offset, le32 length.
check_lsa() {
	as_tester --json send mem0 0x4102 --hex 0000000040000000
	n=$(json '.output_length // empty')
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$n" = 64 ]; then
		ok "get-lsa"
	else
		bad "get-lsa" "exit $rc, $n bytes"
	fi
}

# Set Timestamp: in the CEL, but no rule gives it to tester: refused before any ioctl.
check_denied() {
	as_tester --json send mem0 0x0301 --hex 0000000000000000
	st=$(json .status)
	rec=$(jq -c 'select(.opcode == "0x0301")' /var/log/mbxd/audit.jsonl | tail -n1)
	kinds=$(jq -r 'select(.opcode == "0x0301") | .kind' /var/log/mbxd/audit.jsonl | sort -u | tr '\n' ' ')
	if [ $rc = 3 ] && [ "$st" = denied ] && echo "$rec" | grep -q '"decision":"deny"' &&
		[ "$kinds" = "decision " ]; then
		ok "denied-by-policy-before-the-kernel"
	else
		bad "denied-by-policy-before-the-kernel" "exit $rc status $st, audit kinds: $kinds"
	fi
}

check_set_lsa() {
	as_tester --json send mem0 0x4103 --hex 00000000000000000000
	st=$(json .status)
	if [ $rc = 3 ] && [ "$st" = kernel-owned ] && grep -q "kernel" "$out"; then
		ok "set-lsa-kernel-owned"
	else
		bad "set-lsa-kernel-owned" "exit $rc status $st"
	fi
}

# Get Timestamp (0300h) has no named command in the kernel's table: RAW, which Debian disables.
check_raw_only() {
	as_tester --json send mem0 0x0300
	st=$(json .status)
	if [ $rc = 3 ] && [ "$st" = raw-disabled ] &&
		grep -q "raw commands disabled in this kernel (CONFIG_CXL_MEM_RAW_COMMANDS / lockdown)" "$out"; then
		ok "raw-only-opcode-raw-disabled"
	else
		bad "raw-only-opcode-raw-disabled" "exit $rc status $st"
	fi
}

check_health() {
	as_tester --json send mem0 0x4200
	st=$(json .status)
	if [ $rc = 4 ] && [ "$st" = unsupported ] && grep -q "not supported by this device" "$out"; then
		ok "health-not-supported-by-this-device"
	else
		bad "health-not-supported-by-this-device" "exit $rc status $st"
	fi
}

# Sanitize on 6.1: the admin's request passes the policy (audited, with its
# reason) and the transport refuses it naming the route this kernel lacks.
check_sanitize_route_missing() {
	as_user admin --json send mem0 0x4400 --reason INC-42-decommission
	st=$(json .status)
	kinds=$(audit_kinds 0x4400 admin)
	echo "Sanitize on $(uname -r): exit $rc status $st: $(json .message)"
	if [ $rc = 4 ] && [ "$st" = unsupported ] &&
		grep -q "sanitize through sysfs is not offered by this kernel (no security/sanitize)" "$out" &&
		[ "$kinds" = "intent result " ]; then
		ok "sanitize-refused-naming-the-missing-route"
	else
		bad "sanitize-refused-naming-the-missing-route" "exit $rc status $st, audit kinds: $kinds"
	fi
}

# Transfer FW with firmware_upload on: 6.1 has no firmware upload class for
# memdevs (6.5+), so the refusal names it, after policy and audit.
check_fw_route_missing() {
	dd if=/dev/zero of=/tmp/fw-full bs=256 count=1 2>/dev/null
	as_user admin --json send mem0 0x0201 --in /tmp/fw-full --reason CHG-7-fw
	st=$(json .status)
	kinds=$(audit_kinds 0x0201 admin)
	echo "Transfer FW on 6.1: exit $rc status $st: $(json .message)"
	if [ $rc = 4 ] && [ "$st" = unsupported ] &&
		json .message | grep -q "not offered for /dev/cxl/mem0: its sysfs folder has no firmware/" &&
		[ "$kinds" = "intent result " ]; then
		ok "transfer-fw-refused-naming-the-missing-upload-class"
	else
		bad "transfer-fw-refused-naming-the-missing-upload-class" "exit $rc status $st, audit: $kinds"
	fi
}

setup_users
cxl_facts
start_mbxd
check_unknown_serial
check_devices
check_identify
check_identify_memdev
check_cel
check_fw_info
check_partition_info
check_lsa
check_denied
check_set_lsa
check_raw_only
check_health
check_sanitize_denied
check_sanitize_route_missing
check_fw_route_missing
stop_mbxd
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
