#!/bin/sh
# In-guest tests of the vfio transport on QEMU 7.2's cxl-type3 (serial
# 0x1111), run by guest-init.sh as /mbx/test.sh with an emulated IOMMU.
#
# The kernel's cxl_pci driver reads the device first (its sysfs is the
# cross-check), then the device is moved to vfio-pci and mbxd drives its
# mailbox registers itself, serving the unprivileged user "tester". Each
# check prints "MBX-TEST ok NAME" or "MBX-TEST FAIL NAME: why"; the last line
# is "MBX-QEMU-DONE pass=N fail=M". guest-vfio-cdev.sh sources it with
# MBX_VFIO_LIB=1 for its checks, without running them here.
# shellcheck source=guest-lib.sh
. /mbx/lib.sh

# The kernel's memdev (/sys/bus/cxl/devices/memN) with serial $1, waiting up
# to 30 s for it (with several, mem0 need not be the one, nor probed first).
memdev_by_serial() {
	i=0
	while [ $i -lt 300 ]; do
		for d in /sys/bus/cxl/devices/mem*; do
			[ -f "$d/serial" ] && [ $(($(cat "$d/serial"))) = $(($1)) ] && { echo "$d"; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# What the kernel driver saw of the type3 0x1111, before the device leaves it.
kernel_facts() {
	m=$(memdev_by_serial 0x1111 || echo /sys/bus/cxl/devices/mem0)
	bdf=$(basename "$(dirname "$(readlink -f $m)")")
	k_serial=$(($(cat $m/serial)))
	k_fw=$(cat $m/firmware_version)
	k_total=$(($(cat $m/ram/size) + $(cat $m/pmem/size)))
	group=$(basename "$(readlink /sys/bus/pci/devices/$bdf/iommu_group)")
	echo "MBX-NOTE kernel: $bdf serial $k_serial fw \"$k_fw\" capacity $k_total, IOMMU group $group"
	if [ -n "$bdf" ] && [ "$k_serial" = 4369 ] && [ -n "$group" ]; then
		ok "type3-in-an-iommu-group ($bdf, group $group)"
	else
		bad "type3-in-an-iommu-group" "bdf \"$bdf\" serial $k_serial group \"$group\""
	fi
}

# mbxd's config: the type3 through vfio, found by the option given.
write_config() {
	write_mbxd_yaml <<-EOC
	  - name: mem0
	    transport: vfio
	    timeout_ms: 2000
	    options: { $1 }
	EOC
}

# While cxl_pci still owns the device, mbxd refuses it and says how to move it.
check_refused_while_kernel_owned() {
	write_config "bdf: $bdf"
	rc=0
	timeout 20 mbxd -d -f /etc/mbxd/mbxd.yaml >"$out" 2>&1 || rc=$?
	if [ $rc != 0 ] && grep -q "$bdf is bound to cxl_pci, not vfio-pci" "$out"; then
		ok "refused-while-cxl_pci-owns-it"
	else
		bad "refused-while-cxl_pci-owns-it" "mbxd exit $rc"
	fi
}

# Loads a module unless the kernel has it built in (the cdev test kernel).
load_module() {
	[ -d "/sys/module/$(echo "$1" | tr - _)" ] || modprobe "$1"
}

bind_vfio() {
	load_module vfio_iommu_type1 # a soft dependency of vfio, which busybox modprobe skips
	load_module vfio-pci
	echo "$bdf" >/sys/bus/pci/drivers/cxl_pci/unbind
	echo vfio-pci >/sys/bus/pci/devices/$bdf/driver_override
	echo "$bdf" >/sys/bus/pci/drivers_probe
	drv=$(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")
	if [ "$drv" = vfio-pci ] && [ -c /dev/vfio/$group ]; then
		ok "bound-to-vfio-pci (/dev/vfio/$group)"
	else
		dmesg | tail -n 20 >"$out"
		bad "bound-to-vfio-pci" "driver \"$drv\", /dev/vfio: $(ls /dev/vfio 2>&1)"
	fi
}

# After start-up mbxd runs as _mbxd (uid 101) with no_new_privs and its
# seccomp filter, still holding the two VFIO files matching $1 (the cdev and
# the iommufd, or the container and the group).
check_sandbox() {
	st=/proc/$mbxd_pid/status
	sc=$(sed -n 's/^Seccomp:[[:space:]]*//p' $st)
	nnp=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' $st)
	uid=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' $st)
	held=$(ls -l /proc/$mbxd_pid/fd 2>/dev/null | sed -n 's/.* -> //p' | grep "$1" | sort | tr '\n' ' ' | sed 's/ $//')
	echo "MBX-NOTE mbxd $mbxd_pid: Seccomp $sc, NoNewPrivs $nnp, uid $uid, holds $held"
	if [ "$sc" = 2 ] && [ "$nnp" = 1 ] && [ "$uid" = 101 ] && [ "$(echo $held | wc -w)" = 2 ]; then
		ok "sandboxed-after-start-up (seccomp filter, uid 101, holds $held)"
	else
		bad "sandboxed-after-start-up" "Seccomp \"$sc\" NoNewPrivs \"$nnp\" uid \"$uid\" holds \"$held\""
	fi
}

check_devices() {
	as_tester --json devices
	t=$(json '.devices[0].transport') k=$(json '.devices[0].kind') s=$(json '.devices[0].serial')
	p=$(json '.devices[0].payload_max // empty')
	echo "MBX-NOTE devices: transport $t kind $k serial $s payload ${p:-?}"
	if [ $rc = 0 ] && [ "$t" = vfio ] && [ "$k" = memdev ] && [ $((s)) = "$k_serial" ]; then
		ok "devices-vfio-memdev-serial-from-config-space"
	else
		bad "devices-vfio-memdev-serial-from-config-space" "transport=$t kind=$k serial=$s"
	fi
}

# Identify Memory Device (4000h) decoded against what the kernel driver read.
check_identify_memdev() {
	as_tester --json send mem0 identify-memory-device
	h=$(json '.output_hex // empty')
	fw=$(hex_ascii "$h" 0 16)
	total=$(($(hex_le "$h" 16 8) * 256 * 1024 * 1024))
	if [ $rc = 0 ] && [ "$fw" = "$k_fw" ] && [ "$total" = "$k_total" ]; then
		ok "identify-memdev-equals-kernel ($fw, $total bytes)"
	else
		bad "identify-memdev-equals-kernel" "exit $rc: \"$fw\" $total; kernel \"$k_fw\" $k_total"
	fi
}

# QEMU's type3 has no generic Identify (0001h): mbxctl identify still works.
check_identify() {
	as_tester --json send mem0 0x0001
	st=$(json .status)
	as_tester --json identify mem0
	fw=$(json '.memory_device.firmware_revision // empty')
	if [ "$st" = unsupported ] && [ $rc = 0 ] && [ "$fw" = "$k_fw" ]; then
		ok "identify-0001h-unsupported-identify-memdev-works"
	else
		bad "identify-0001h-unsupported-identify-memdev-works" "0001h: $st; identify exit $rc fw \"$fw\""
	fi
}

check_supported_logs() {
	as_tester --json send mem0 0x0400
	h=$(json '.output_hex // empty')
	n=$(hex_le "$h" 0 2)
	cel_size=$(hex_le "$h" 24 4)
	if [ $rc = 0 ] && [ "$n" -ge 1 ] && [ "$(echo "$h" | cut -c17-48)" = 0da9c0b5bf414b788f7996b1623b3f17 ]; then
		ok "get-supported-logs (CEL $cel_size bytes)"
	else
		bad "get-supported-logs" "exit $rc: $h"
	fi
}

# The CEL as the device returns it, and how many distinct commands mbxd kept.
check_cel() {
	as_tester --json cel mem0
	raw=$(json '.cel | length')
	uniq=$(json '[.cel[].opcode] | unique | length')
	kept=$(sed -n 's/.*device mem0: .* \([0-9]*\) commands in its CEL.*/\1/p' /tmp/mbxd.log | tail -n1)
	echo "MBX-NOTE CEL ($1): $raw entries from the device, $uniq distinct, mbxd kept $kept"
	if [ $rc = 0 ] && [ "${uniq:-0}" -ge 13 ] && [ "$kept" = "$uniq" ] &&
		[ "$(json '[.cel[].opcode] | index("0x4000") != null')" = true ]; then
		ok "cel-$1 ($raw entries, $kept distinct)"
	else
		bad "cel-$1" "exit $rc: $raw entries, $uniq distinct, mbxd kept \"$kept\""
	fi
}

check_fw_info() {
	as_tester --json send mem0 0x0200
	h=$(json '.output_hex // empty')
	active=$(($(hex_le "$h" 1 1) & 7))
	fw=""
	[ "$active" -ge 1 ] && [ "$active" -le 4 ] && fw=$(hex_ascii "$h" $((16 * active)) 16)
	if [ $rc = 0 ] && [ -n "$fw" ] && case "$k_fw" in "$fw"*) true ;; *) false ;; esac; then
		ok "fw-info ($fw)"
	else
		bad "fw-info" "exit $rc: slot $active \"$fw\", kernel \"$k_fw\""
	fi
}

check_partition_info() {
	as_tester --json send mem0 0x4100
	h=$(json '.output_hex // empty')
	total=$((($(hex_le "$h" 0 8) + $(hex_le "$h" 8 8)) * 256 * 1024 * 1024))
	if [ $rc = 0 ] && [ "$total" = "$k_total" ]; then
		ok "partition-info-equals-kernel"
	else
		bad "partition-info-equals-kernel" "exit $rc: $total, kernel $k_total"
	fi
}

# The device's timestamp (Get Timestamp 0300h), as a hex string.
timestamp() {
	as_tester --json send mem0 0x0300
	json '.output_hex // empty'
}

# The timestamp hex string $1 as a number of nanoseconds.
timestamp_ns() { hex_le "$1" 0 8; }

# Set Timestamp (0301h) denied to tester never reaches the registers: the
# device's own timestamp stays unset (0), or where the kernel driver set it
# at probe (Linux 6.3+) keeps counting from there, never jumping back to
# the denied value (2^56 ns, about 2.3 years); the same command from admin,
# who is allowed it, does change it, so the check can tell.
check_denied_never_reaches_device() {
	t0=$(timestamp)
	as_tester --json send mem0 0x0301 --hex 0000000000000001
	st=$(json .status) drc=$rc
	kinds=$(audit_kinds 0x0301 tester)
	t1=$(timestamp)
	as_user admin --json send mem0 0x0301 --hex 0000000000000001 --reason CHG-7-clock
	ast=$(json .status)
	t2=$(timestamp)
	echo "MBX-NOTE timestamps: before $t0, after the denied set $t1, after admin's set $t2"
	if [ "$t0" = 0000000000000000 ]; then
		same=$([ "$t1" = 0000000000000000 ] && echo yes)
	else
		same=$([ -n "$t1" ] && [ "$(timestamp_ns "$t1")" -ge "$(timestamp_ns "$t0")" ] && echo yes)
	fi
	if [ $drc = 3 ] && [ "$st" = denied ] && [ "$kinds" = "decision " ] && [ -n "$t0" ] &&
		[ "$same" = yes ] && [ "$ast" = ok ] && [ "$(echo "$t2" | cut -c15-16)" = 01 ]; then
		ok "denied-set-timestamp-never-reaches-the-device"
	else
		bad "denied-set-timestamp-never-reaches-the-device" \
			"tester exit $drc $st, audit \"$kinds\", admin $ast, t $t0 $t1 $t2"
	fi
}

# Health Info (4200h) is not in QEMU 7.2's CEL: refused as unsupported, not sent.
check_unsupported() {
	as_tester --json send mem0 0x4200
	st=$(json .status)
	if [ $rc = 4 ] && [ "$st" = unsupported ]; then
		ok "health-not-in-cel-unsupported"
	else
		bad "health-not-in-cel-unsupported" "exit $rc status $st"
	fi
}

[ -n "${MBX_VFIO_LIB:-}" ] && return 0
setup_users
kernel_facts
check_refused_while_kernel_owned
bind_vfio
write_config "serial: 0x1111"
start_mbxd
check_sandbox "/dev/vfio/"
check_devices
check_identify_memdev
check_identify
check_supported_logs
check_cel first-open
check_fw_info
check_partition_info
check_denied_never_reaches_device
check_unsupported
stop_mbxd
# Every VFIO open and close resets the device; QEMU 7.2 then appends its CEL again.
rm -f /run/mbxd/mbxd.sock # left by the first run (the dropped daemon cannot unlink it)
start_mbxd
check_cel after-reset
check_identify_memdev
stop_mbxd
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
