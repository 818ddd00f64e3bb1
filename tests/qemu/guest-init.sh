#!/bin/sh
# /init of the QEMU test guest: mounts, loads the CXL drivers, waits for the
# memdev, runs /mbx/test.sh, prints its verdict on the console, powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
echo "MBX-GUEST-START $(uname -r)"
# The test kernels built here (MCTP, cdev) have their drivers built in and no modules.
if [ -d "/lib/modules/$(uname -r)" ]; then
	for m in cxl_acpi cxl_pci cxl_mem libnvdimm cxl_pmem; do
		modprobe "$m" 2>/dev/null || [ -d "/sys/module/$m" ] || echo "MBX-GUEST: modprobe $m failed"
	done
else
	echo "MBX-GUEST: no modules for $(uname -r): its drivers are built in"
fi
i=0
while [ ! -c /dev/cxl/mem0 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
[ -c /dev/cxl/mem0 ] || { echo "MBX-GUEST: no /dev/cxl/mem0 after 120 s"; dmesg | grep -i cxl; }
if [ -x /mbx/test.sh ] || [ -f /mbx/test.sh ]; then
	sh /mbx/test.sh
	echo "MBX-GUEST-EXIT $?"
else
	echo "MBX-QEMU-DONE pass=0 fail=1 (no /mbx/test.sh in the initramfs)"
fi
sync
poweroff -f
