#!/bin/sh
# In-guest tests of the vfio transport on QEMU 10's switch CCI
# (cxl-switch-mailbox-cci, PCI class 0C0Bh, no kernel driver), run by
# guest-init.sh as /mbx/test.sh with an emulated IOMMU. Behind the switch: a
# type3 (serial 0x3333); on another root port: a type3 (0x1111) the kernel
# keeps. One mbxd serves the CCI through vfio and the kernel-owned type3
# through chardev at the same time. Verdict lines as in guest-vfio.sh.
# shellcheck source=guest-lib.sh
. /mbx/lib.sh

# The PCI address of the first device of class $1 (e.g. 0x0c0b00).
pci_by_class() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = "$1" ] && { basename "$d"; return 0; }
	done
	return 1
}

# The PCI address of the memdev with serial $1.
pci_by_serial() {
	for m in /sys/bus/cxl/devices/mem*; do
		[ $(($(cat "$m/serial"))) = $(($1)) ] && { basename "$(dirname "$(readlink -f "$m")")"; return 0; }
	done
	return 1
}

find_devices() {
	i=0
	while [ ! -e /sys/bus/cxl/devices/mem1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	cci=$(pci_by_class 0x0c0b00 || true)
	below=$(pci_by_serial 0x3333 || true)
	kept=$(pci_by_serial 0x1111 || true)
	group=$(basename "$(readlink /sys/bus/pci/devices/$cci/iommu_group)")
	echo "MBX-NOTE switch CCI $cci (group $group: $(ls /sys/kernel/iommu_groups/$group/devices | tr '\n' ' '))"
	echo "MBX-NOTE type3 0x3333 behind the switch: $below; kernel-owned type3 0x1111: $kept (group $(basename "$(readlink /sys/bus/pci/devices/$kept/iommu_group)"))"
	if [ -n "$cci" ] && [ -n "$below" ] && [ -n "$kept" ] && [ -z "$(readlink /sys/bus/pci/devices/$cci/driver)" ]; then
		ok "switch-cci-found-without-a-driver ($cci)"
	else
		bad "switch-cci-found-without-a-driver" "cci \"$cci\" below \"$below\" kept \"$kept\""
	fi
}

# mbxd's config: the kernel-owned type3 through chardev, the CCI through vfio.
write_config() {
	write_mbxd_yaml <<-EOC
	  - name: mem0
	    transport: chardev
	    timeout_ms: 2000
	    options: { serial: 0x1111 }
	  - name: switch0
	    transport: vfio
	    timeout_ms: 2000
	    options: { bdf: $cci }
	EOC
}

to_vfio() {
	[ -e /sys/bus/pci/devices/$1/driver ] && echo "$1" >/sys/bus/pci/devices/$1/driver/unbind
	echo vfio-pci >/sys/bus/pci/devices/$1/driver_override
	echo "$1" >/sys/bus/pci/drivers_probe
}

# The CCI shares its IOMMU group with the type3 below the switch (no ACS):
# while cxl_pci drives that one, mbxd names it as the blocker.
check_group_not_viable() {
	modprobe vfio_iommu_type1 # a soft dependency of vfio, which busybox modprobe skips
	modprobe vfio-pci
	to_vfio "$cci"
	rc=0
	timeout 30 mbxd -d -f /etc/mbxd/mbxd.yaml >"$out" 2>&1 || rc=$?
	grep "not viable" "$out" | sed 's/^/MBX-NOTE /'
	if [ $rc != 0 ] && grep -q "IOMMU group $group of $cci is not viable: .*$below (cxl_pci)" "$out"; then
		ok "group-not-viable-names-the-blocker"
	else
		bad "group-not-viable-names-the-blocker" "mbxd exit $rc"
	fi
	to_vfio "$below"
}

start_both() {
	mbxd -d -f /etc/mbxd/mbxd.yaml 2>/tmp/mbxd.log &
	mbxd_pid=$!
	i=0
	while ! grep -q "device switch0: " /tmp/mbxd.log && [ $i -lt 300 ] && kill -0 $mbxd_pid 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 1
	cp /tmp/mbxd.log "$out"
	grep "device " /tmp/mbxd.log | sed 's/^/MBX-NOTE /'
	as_tester --json devices
	t0=$(json '.devices[] | select(.name == "mem0") | .transport')
	t1=$(json '.devices[] | select(.name == "switch0") | .transport')
	k1=$(json '.devices[] | select(.name == "switch0") | .kind')
	if [ "$t0" = chardev ] && [ "$t1" = vfio ] && [ "$k1" = switch ]; then
		ok "one-mbxd-chardev-memdev-and-vfio-switch"
	else
		bad "one-mbxd-chardev-memdev-and-vfio-switch" "mem0 $t0, switch0 $t1 $k1"
	fi
}

check_identify_switch() {
	as_tester --json send switch0 0x5100
	h=$(json '.output_hex // empty')
	ports=$(hex_le "$h" 2 1)
	echo "MBX-NOTE Identify Switch Device: $h"
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$ports" -ge 2 ]; then
		ok "identify-switch-device ($ports physical ports)"
	else
		bad "identify-switch-device" "exit $rc, ports \"$ports\""
	fi
}

# Get Physical Port State (5101h) of ports 0 and 1: input count, then the ids.
check_port_state() {
	as_tester --json send switch0 0x5101 --hex 020001
	h=$(json '.output_hex // empty')
	n=$(hex_le "$h" 0 1)
	echo "MBX-NOTE Get Physical Port State: $h"
	if [ $rc = 0 ] && [ "$n" = 2 ]; then
		ok "get-physical-port-state (2 ports)"
	else
		bad "get-physical-port-state" "exit $rc, $n ports"
	fi
}

# Tunnel Management (5300h) to the type3 behind port 0. QEMU 10 forwards
# generic Identify (0001h) to it; Identify Memory Device (4000h) through the
# tunnel it answers Unsupported (03h): shown, not required.
check_tunnel() {
	as_tester --json send switch0 identify-memory-device --tunnel 0
	echo "MBX-NOTE tunnel 4000h to port 0: status $(json .status) return code $(json .return_code)"
	as_tester --json send switch0 0x0001 --tunnel 0
	h=$(json '.output_hex // empty')
	echo "MBX-NOTE tunnel 0001h to port 0: $h"
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$(hex_le "$h" 8 8)" = $((0x3333)) ] &&
		[ "$(hex_le "$h" 17 1)" = 3 ]; then
		ok "tunnel-identify-reaches-the-type3-behind-the-switch (serial 0x3333)"
	else
		bad "tunnel-identify-reaches-the-type3-behind-the-switch" "exit $rc: $h"
	fi
}

# Physical Port Control (5102h), fabric class. QEMU 10's CCI does not list it
# in its CEL, so mbxd refuses it as unsupported for everyone and sends
# nothing. Through a tunnel it is classified by its inner command: refused
# to tester (no fabric class), to fmadmin without a reason, and allowed to
# fmadmin with one (QEMU's answer: Unsupported).
check_port_control() {
	as_user fmadmin --json send switch0 0x5102 --hex 0102 --reason INC-9
	st0=$(json .status) rc0=$rc
	grep -q "its Command Effects Log does not list it" "$out" || st0="$st0(no CEL reason)"
	as_tester --json send switch0 0x5102 --hex 0102 --tunnel 0
	st1=$(json .status) rc1=$rc
	as_user fmadmin --json send switch0 0x5102 --hex 0102 --tunnel 0
	st2=$(json .status) rc2=$rc
	grep -q "a reason is required for fabric-class" "$out" || st2="$st2(no reason message)"
	as_user fmadmin --json send switch0 0x5102 --hex 0102 --tunnel 0 --reason INC-9-reset-port-1
	st3=$(json .status) rule=$(json .rule) ret=$(json .return_code)
	dec=$(jq -r 'select(.user == "fmadmin" and .reason == "INC-9-reset-port-1") | .decision' \
		/var/log/mbxd/audit.jsonl | sort -u | tr '\n' ' ')
	echo "MBX-NOTE port control: direct $st0 ($rc0); tunnelled: tester $st1 ($rc1), fmadmin without reason $st2 ($rc2), with reason $st3 rule $rule device rc $ret, audit $dec"
	if [ $rc0 = 4 ] && [ "$st0" = unsupported ] && [ $rc1 = 3 ] && [ "$st1" = denied ] &&
		[ $rc2 = 3 ] && [ "$st2" = denied ] && [ "$st3" = ok ] && [ "$rule" = fabric-admins ] &&
		[ "$dec" = "allow " ]; then
		ok "port-control-fabric-denied-to-tester-allowed-with-reason-to-fmadmin"
	else
		bad "port-control-fabric-denied-to-tester-allowed-with-reason-to-fmadmin" \
			"$st0 $st1 $st2 $st3 $rule \"$dec\""
	fi
}

# Both devices at once: two clients in parallel, each answered.
check_concurrent() {
	i=0
	while [ $i -lt 5 ]; do
		su -s /bin/sh tester -c "mbxctl send mem0 identify-memory-device" >/tmp/a.$i 2>&1 &
		su -s /bin/sh tester -c "mbxctl send switch0 0x5100" >/tmp/b.$i 2>&1 &
		i=$((i + 1))
	done
	wait_rc=0
	for j in $(jobs -p); do [ "$j" = "$mbxd_pid" ] || wait "$j" || wait_rc=1; done
	if [ $wait_rc = 0 ]; then
		ok "concurrent-chardev-and-vfio-clients"
	else
		cat /tmp/a.* /tmp/b.* >"$out"
		bad "concurrent-chardev-and-vfio-clients" "a client failed"
	fi
}

check_memdev_chardev() {
	as_tester --json send mem0 identify-memory-device
	fw=$(hex_ascii "$(json '.output_hex // empty')" 0 16)
	if [ $rc = 0 ] && [ "$fw" = "$(cat /sys/bus/cxl/devices/mem0/firmware_version 2>/dev/null || cat /sys/bus/cxl/devices/mem*/firmware_version | head -n1)" ]; then
		ok "kernel-owned-type3-through-chardev ($fw)"
	else
		bad "kernel-owned-type3-through-chardev" "exit $rc fw \"$fw\""
	fi
}

# The iommufd/cdev API (Linux 6.6+, CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV):
# where the guest kernel offers it, one mbxd opens the CCI with vfio_api cdev
# and Identify Switch Device works; where it does not, the earlier auto run
# took the group API and the evidence is shown.
check_cdev() {
	cdev=$(ls /sys/bus/pci/devices/$cci/vfio-dev 2>/dev/null | head -n1)
	echo "MBX-NOTE cdev API on $(uname -r): /sys/bus/pci/devices/$cci/vfio-dev: ${cdev:-absent}; /dev/vfio/devices: $(ls /dev/vfio/devices 2>&1 | tr '\n' ' '); /dev/iommu: $(ls -l /dev/iommu 2>&1); /sys/module/iommufd: $(ls -d /sys/module/iommufd 2>/dev/null || echo absent)"
	if [ -z "$cdev" ] || [ ! -e "/dev/vfio/devices/$cdev" ] || [ ! -e /dev/iommu ]; then
		if grep -q "device switch0: switch .*, vfio group $group serial" /tmp/mbxd.log; then
			ok "vfio-api-auto-takes-the-group-without-iommufd (group $group)"
		else
			bad "vfio-api-auto-takes-the-group-without-iommufd" "$(grep 'device switch0' /tmp/mbxd.log)"
		fi
		write_mbxd_yaml <<-EOC
		  - name: switch0
		    transport: vfio
		    options: { bdf: $cci, vfio_api: cdev }
		EOC
		rc=0
		timeout 30 mbxd -d -f /etc/mbxd/mbxd.yaml >"$out" 2>&1 || rc=$?
		grep "vfio_api cdev" "$out" | sed 's/^/MBX-NOTE /'
		if [ $rc != 0 ] && grep -q "vfio_api cdev: .* does not exist" "$out"; then
			ok "vfio-api-cdev-refused-naming-what-the-kernel-lacks"
		else
			bad "vfio-api-cdev-refused-naming-what-the-kernel-lacks" "mbxd exit $rc"
		fi
		return 0
	fi
	write_mbxd_yaml <<-EOC
	  - name: switch0
	    transport: vfio
	    timeout_ms: 2000
	    options: { bdf: $cci, vfio_api: cdev }
	EOC
	spawn_mbxd ""
	grep "device switch0" /tmp/mbxd.log | sed 's/^/MBX-NOTE /'
	as_tester --json send switch0 0x5100
	ports=$(hex_le "$(json '.output_hex // empty')" 2 1)
	if [ $rc = 0 ] && [ "$(json .status)" = ok ] && [ "$ports" -ge 2 ] &&
		grep -q "device switch0: switch .*, vfio cdev vfio" /tmp/mbxd.log; then
		ok "identify-switch-device-through-the-iommufd-cdev ($ports physical ports)"
	else
		cp /tmp/mbxd.log "$out"
		bad "identify-switch-device-through-the-iommufd-cdev" "exit $rc, ports \"$ports\""
	fi
	stop_mbxd
}

setup_users
echo "fmadmin:x:1002:1002:fmadmin:/tmp:/bin/sh" >>/etc/passwd
echo "fmadmin:x:1002:" >>/etc/group
find_devices
write_config
check_group_not_viable
start_both
check_memdev_chardev
check_identify_switch
check_port_state
check_tunnel
check_port_control
check_concurrent
stop_mbxd
check_cdev
echo "MBX-QEMU-DONE pass=$pass fail=$failed"
