#!/bin/sh
# The vfio transport against the real kernel: boots Debian's own kernel
# under QEMU (TCG) with an emulated IOMMU (q35 kernel-irqchip=split,
# intel-iommu intremap=on caching-mode=on, intel_iommu=on), binds a CXL
# device to vfio-pci in the guest and runs mbxd as its user-space driver,
# with an unprivileged mbxctl user as the client.
#
# Usage: tests/qemu/run-vfio.sh BUILD_DIR memdev|switch|cdev
#   memdev: QEMU 7.2 (bookworm): the cxl-type3 device (serial 0x1111)
#           unbound from cxl_pci and bound to vfio-pci (guest-vfio.sh).
#   cdev:   the switch topology, but the test kernel of
#           build-cdev-kernel.sh (Linux 6.12 with IOMMUFD and the VFIO device
#           cdev, drivers built in; built once per machine and cached) under
#           QEMU 10 (QEMU 7.2's type3 answers Get Event Interrupt Policy
#           with zeros, and cxl_pci of Linux 6.3+ then fails its probe:
#           "Failed to get interrupt for event Info log"): mbxd opens the
#           type3 0x1111, then the switch CCI, through /dev/vfio/devices/vfioN
#           and /dev/iommu (guest-vfio-cdev.sh).
#   switch: QEMU 10 (bookworm-backports, run extracted, see lib-qemu10.sh):
#           a switch whose CCI (cxl-switch-mailbox-cci, no kernel driver) is
#           bound to vfio-pci, a type3 (0x3333) behind it, and a second type3
#           (0x1111) the kernel keeps: one mbxd serves the CCI through vfio
#           and the kernel-owned type3 through chardev (guest-vfio-switch.sh).
# Root is needed to install missing packages and, for switch and cdev,
# unshare -m (and for cdev to build the kernel the first time). Downloads are cached in
# $MBX_QEMU_CACHE (default /var/cache/mbxd-qemu).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run-vfio.sh BUILD_DIR memdev|switch|cdev}" && pwd)
mode=${2:?usage: run-vfio.sh BUILD_DIR memdev|switch|cdev}
boot_timeout=${MBX_QEMU_TIMEOUT:-600}
case $mode in
memdev) guest_test=guest-vfio.sh ;;
switch) guest_test=guest-vfio-switch.sh ;;
cdev) guest_test=guest-vfio-cdev.sh ;;
*) echo "run-vfio: unknown mode \"$mode\" (memdev, switch or cdev)" >&2; exit 2 ;;
esac
log="$build/tests/qemu/vfio-$mode-console.log"
mbxd="$build/broker/mbxd"
mbxctl="$build/clients/mbxctl"

# shellcheck source=lib-host.sh
. "$here/lib-host.sh"
# shellcheck source=lib-qemu10.sh
. "$here/lib-qemu10.sh"

[ -x "$mbxd" ] || fail "$mbxd is not built"
[ -x "$mbxctl" ] || fail "$mbxctl is not built"

start_work /tmp/mbxd-vfio-XXXXXX

# The host's jq in the base initramfs.
base_extra() {
	stage_elf "$1" /usr/bin/jq /usr/bin/jq
}

# The base initramfs: busybox, the CXL and VFIO modules, jq; cached per kernel and script.
prepare_base() {
	stamp=$(cat "$here/guest-init.sh" "$0" "$here/lib-host.sh" /bin/busybox /usr/bin/jq | md5sum | cut -c1-12)
	prepare_base_cpio initramfs-vfio "vfio base initramfs" "$stamp" \
		cxl_acpi cxl_pci cxl_port cxl_mem libnvdimm cxl_pmem \
		vfio vfio_iommu_type1 vfio-pci vfio-pci-core vfio_virqfd irqbypass
}

# The cdev kernel's base initramfs, in $work (seconds to make): no modules,
# every driver is built in.
prepare_cdev_base() {
	r="$work/base"
	busybox_root "$r"
	cp "$here/guest-init.sh" "$r/init"
	chmod 755 "$r/init"
	base_extra "$r"
	base="$work/base.cpio.gz"
	pack_cpio "$r" "$base" "base initramfs"
}

# The per-run part: this build's mbxd and mbxctl, the guest test and its policy.
prepare_run() {
	run_root
	[ "$mode" = cdev ] && cp "$here/guest-vfio.sh" "$r/mbx/vfio.sh"
	cp "$here/vfio-policy.yaml" "$r/etc/mbxd/policy.yaml"
	chmod 644 "$r/etc/mbxd/"*
	finish_initramfs "$r"
}

# The CXL topology of each mode.
cxl_devices() {
	truncate -s 256M "$work/mem1.raw" "$work/lsa1.raw"
	set -- -object memory-backend-file,id=cxl-mem1,share=on,mem-path="$work/mem1.raw",size=256M \
		-object memory-backend-file,id=cxl-lsa1,share=on,mem-path="$work/lsa1.raw",size=256M \
		-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1
	if [ "$mode" = memdev ]; then
		set -- "$@" -device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \
			-device cxl-type3,bus=rp0,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0,sn=0x1111
	else
		truncate -s 256M "$work/mem2.raw" "$work/lsa2.raw"
		set -- "$@" -object memory-backend-file,id=cxl-mem2,share=on,mem-path="$work/mem2.raw",size=256M \
			-object memory-backend-file,id=cxl-lsa2,share=on,mem-path="$work/lsa2.raw",size=256M \
			-device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \
			-device cxl-rp,port=1,bus=cxl.1,id=rp1,chassis=0,slot=3 \
			-device cxl-upstream,port=2,sn=0x5678,bus=rp0,id=us0,addr=0.0,multifunction=on \
			-device cxl-switch-mailbox-cci,bus=rp0,addr=0.1,target=us0 \
			-device cxl-downstream,port=0,bus=us0,id=swport0,chassis=0,slot=4 \
			-device cxl-downstream,port=1,bus=us0,id=swport1,chassis=0,slot=5 \
			-device cxl-type3,bus=swport0,memdev=cxl-mem2,lsa=cxl-lsa2,id=cxl-pmem2,sn=0x3333 \
			-device cxl-type3,bus=rp1,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0,sn=0x1111
	fi
	set -- "$@" -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G
	printf '%s\n' "$@" >"$work/cxl.args"
}

# Boots the guest with the vIOMMU; the serial console goes to $log.
boot() {
	cxl_devices
	# One argument per line in cxl.args (no spaces in any), read back as words.
	# shellcheck disable=SC2046
	boot_qemu "$qemu" $qemu_data -accel tcg -cpu max -M q35,cxl=on,kernel-irqchip=split -smp 2 \
		-m 2G,maxmem=4G,slots=8 -device intel-iommu,intremap=on,caching-mode=on \
		-display none -no-reboot -serial "file:$log" -monitor none -nic none \
		-kernel "$vmlinuz" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 quiet loglevel=4 intel_iommu=on' \
		$(cat "$work/cxl.args")
}

need_pkgs qemu-system-x86 busybox-static jq
qemu=${MBX_QEMU_BIN:-qemu-system-x86_64}
qemu_data=""
if [ "$mode" = cdev ]; then
	vmlinuz=$("$here/build-cdev-kernel.sh") || fail "the cdev test kernel did not build"
	vmlinuz=$(echo "$vmlinuz" | tail -n1)
	[ -f "$vmlinuz" ] || fail "build-cdev-kernel.sh gave no kernel"
	kpkg="the cdev test kernel $(basename "$vmlinuz")"
	prepare_cdev_base
	lock_cache
	prepare_qemu10
	flock -u 9
else
	lock_cache
	kpkg=$(kernel_pkg)
	prepare_kernel
	prepare_base
	[ "$mode" = switch ] && prepare_qemu10
	flock -u 9
fi
prepare_run
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
say "booting $kpkg under QEMU $(qemu_version) (TCG, vIOMMU)"
boot
verdict "^MBX-TEST \|^MBX-NOTE " -A12
