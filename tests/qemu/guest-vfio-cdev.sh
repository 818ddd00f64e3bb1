#!/bin/sh
# In-guest tests of the vfio transport's iommufd/cdev API, run by
# guest-init.sh as /mbx/test.sh on the test kernel of build-cdev-kernel.sh
# (Linux 6.12, CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV, every driver
# built in) under QEMU 10 with an emulated IOMMU, in the topology of
# guest-vfio-switch.sh: a type3 (serial 0x1111) on its own root port, and a
# switch with its CCI (cxl-switch-mailbox-cci) and a type3 (0x3333) below.
#
# The type3 0x1111 leaves the built-in cxl_pci for vfio-pci; then one mbxd
# after another opens it: with vfio_api cdev (the full read set for the
# unprivileged "tester", the denied command that never reaches the device,
# the sandbox, a second mbxd refused), with auto (which must take the cdev
# here) and with group (the container API still works on the same kernel).
# Then the switch CCI through its cdev: refused while cxl_pci drives the
# type3 in its IOMMU group, served once that one is on vfio-pci too. The
# checks of guest-vfio.sh (staged as /mbx/vfio.sh) are reused; verdict
# lines as there.
# shellcheck disable=SC2034 # read by the sourced guest-vfio.sh
MBX_VFIO_LIB=1
# shellcheck source=guest-vfio.sh
. /mbx/vfio.sh

# The device's VFIO cdev and /dev/iommu, which only a kernel with IOMMUFD and
# VFIO_DEVICE_CDEV makes.
check_cdev_nodes() {
	cdev=$(ls /sys/bus/pci/devices/$bdf/vfio-dev 2>/dev/null | head -n1)
	echo "MBX-NOTE cdev API on $(uname -r): /sys/bus/pci/devices/$bdf/vfio-dev: ${cdev:-absent}; /dev/vfio/devices: $(ls /dev/vfio/devices 2>&1 | tr '\n' ' '); /dev/iommu: $(ls -l /dev/iommu 2>&1)"
	if [ -n "$cdev" ] && [ -c "/dev/vfio/devices/$cdev" ] && [ -c /dev/iommu ]; then
		ok "dev-iommu-and-vfio-cdev-exist (/dev/vfio/devices/$cdev)"
	else
		bad "dev-iommu-and-vfio-cdev-exist" "vfio-dev \"$cdev\""
	fi
}

# mbxd's log names the API that opened the device: $1 is "cdev" or "group".
check_api_used() {
	want="vfio cdev $cdev"
	[ "$1" = group ] && want="vfio group $group"
	line=$(grep "device mem0: memdev " /tmp/mbxd.log | tail -n1)
	echo "MBX-NOTE $2: $line"
	if echo "$line" | grep -q ", $want serial"; then
		ok "$2-opens-through-$1 ($want)"
	else
		cp /tmp/mbxd.log "$out"
		bad "$2-opens-through-$1" "no \"$want\" in mbxd's device line"
	fi
}

# A second mbxd, with its own socket and audit log, asking for the device the
# running one holds through API $1: refused, its message in $out.
second_mbxd() {
	sed -e "s#/run/mbxd/mbxd.sock#/run/mbxd/second.sock#" -e "s#audit.jsonl#second.jsonl#" \
		-e "s#vfio_api: [a-z]*#vfio_api: $1#" /etc/mbxd/mbxd.yaml >/tmp/second.yaml
	rc=0
	timeout 20 mbxd -d -f /tmp/second.yaml >"$out" 2>&1 || rc=$?
	grep -i "mem0\|vfio" "$out" | sed "s/^/MBX-NOTE second mbxd ($1): /"
}

# While one mbxd holds the device (through API $1), a second one is refused
# through either API, naming the first as the holder. (The kernel's own
# answers: binding a cdev bound elsewhere "Invalid argument", opening the
# group of a cdev-bound device or binding the cdev of a group in use
# "Device or resource busy".)
check_in_use() {
	holder="$bdf is in use by pid $mbxd_pid (mbxd)"
	second_mbxd cdev
	c_rc=$rc c_msg=$(grep -c "$holder" "$out")
	second_mbxd group
	if [ $c_rc != 0 ] && [ "$c_msg" != 0 ] && [ $rc != 0 ] && grep -q "$holder" "$out"; then
		ok "$1-held-device-refused-to-a-second-mbxd"
	else
		bad "$1-held-device-refused-to-a-second-mbxd" "cdev: exit $c_rc; group: exit $rc"
	fi
}

# A fresh mbxd on the device, the socket of the last one (which the dropped
# daemon cannot unlink) removed first.
restart_mbxd() {
	rm -f /run/mbxd/mbxd.sock
	write_config "$1"
	start_mbxd
}

# The PCI address of the first device of class $1 (e.g. 0x0c0b00).
pci_by_class() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = "$1" ] && { basename "$d"; return 0; }
	done
	return 1
}

# Moves PCI device $1 from its driver, if any, to vfio-pci.
to_vfio() {
	[ -e /sys/bus/pci/devices/$1/driver ] && echo "$1" >/sys/bus/pci/devices/$1/driver/unbind
	echo vfio-pci >/sys/bus/pci/devices/$1/driver_override
	echo "$1" >/sys/bus/pci/drivers_probe
}

# mbxd's config: the switch CCI through its cdev.
write_switch_config() {
	write_mbxd_yaml <<-EOC
	  - name: switch0
	    transport: vfio
	    timeout_ms: 2000
	    options: { bdf: $cci, vfio_api: cdev }
	EOC
}

# The switch CCI shares its IOMMU group with the type3 below the switch (no
# ACS): while cxl_pci drives that one, binding the CCI's cdev to an iommufd
# is refused and mbxd names the blocker; with both on vfio-pci, Identify
# Switch Device (5100h) is served through the cdev.
check_switch_cci() {
	cci=$(pci_by_class 0x0c0b00 || true)
	below=$(basename "$(dirname "$(readlink -f "$(memdev_by_serial 0x3333)")")")
	sgroup=$(basename "$(readlink /sys/bus/pci/devices/$cci/iommu_group)")
	echo "MBX-NOTE switch CCI $cci (group $sgroup: $(ls /sys/kernel/iommu_groups/$sgroup/devices | tr '\n' ' ')), type3 0x3333 below: $below"
	to_vfio "$cci"
	write_switch_config
	rc=0
	timeout 30 mbxd -d -f /etc/mbxd/mbxd.yaml >"$out" 2>&1 || rc=$?
	grep "not viable" "$out" | sed 's/^/MBX-NOTE /'
	if [ $rc != 0 ] &&
		grep -q "IOMMU group $sgroup of $cci is not viable: .*$below (cxl_pci) (/dev/vfio/devices/vfio[0-9]*: " "$out"; then
		ok "cci-cdev-bind-refused-naming-the-blocker"
	else
		bad "cci-cdev-bind-refused-naming-the-blocker" "mbxd exit $rc"
	fi
	to_vfio "$below"
	rm -f /run/mbxd/mbxd.sock
	spawn_mbxd ""
	mbxd_pid=$!
	grep "device switch0" /tmp/mbxd.log | sed 's/^/MBX-NOTE /'
	as_tester --json send switch0 0x5100
	ports=$(hex_le "$(json '.output_hex // empty')" 2 1)
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "${ports:-0}" -ge 2 ] &&
		grep -q "device switch0: switch .*, vfio cdev vfio[0-9]* serial" /tmp/mbxd.log; then
		ok "identify-switch-device-through-the-cci-cdev ($ports physical ports)"
	else
		cp /tmp/mbxd.log "$out"
		bad "identify-switch-device-through-the-cci-cdev" "exit $rc, ports \"$ports\""
	fi
	stop_mbxd
}

setup_users
kernel_facts
check_refused_while_kernel_owned
bind_vfio
check_cdev_nodes
restart_mbxd "serial: 0x1111, vfio_api: cdev"
check_api_used cdev vfio-api-cdev
check_sandbox "/dev/iommu\|/dev/vfio/devices/vfio[0-9]"
check_devices
check_identify_memdev
check_identify
check_supported_logs
check_cel first-open
check_fw_info
check_partition_info
check_denied_never_reaches_device
check_unsupported
check_in_use cdev
stop_mbxd
restart_mbxd "bdf: $bdf"
check_api_used cdev vfio-api-auto
check_cel after-reset
check_identify_memdev
stop_mbxd
restart_mbxd "bdf: $bdf, vfio_api: group"
check_api_used group vfio-api-group
check_identify_memdev
check_in_use group
stop_mbxd
check_switch_cci
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
