#!/bin/sh
# The vfio transport against the real kernel: boots Debian's own kernel
# under QEMU (TCG) with an emulated IOMMU (q35 kernel-irqchip=split,
# intel-iommu intremap=on caching-mode=on, intel_iommu=on), binds a CXL
# device to vfio-pci in the guest and runs mbxd as its user-space driver,
# with an unprivileged mbxctl user as the client.
#
# Usage: tests/qemu/run-vfio.sh BUILD_DIR memdev|switch
#   memdev: QEMU 7.2 (bookworm): the cxl-type3 device (serial 0x1111)
#           unbound from cxl_pci and bound to vfio-pci (guest-vfio.sh).
#   switch: QEMU 10 (bookworm-backports, run extracted, see lib-qemu10.sh):
#           a switch whose CCI (cxl-switch-mailbox-cci, no kernel driver) is
#           bound to vfio-pci, a type3 (0x3333) behind it, and a second type3
#           (0x1111) the kernel keeps: one mbxd serves the CCI through vfio
#           and the kernel-owned type3 through chardev (guest-vfio-switch.sh).
# Root is needed to install missing packages and, for switch, unshare -m.
# Downloads are cached in $MBX_QEMU_CACHE (default /var/cache/mbxd-qemu).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run-vfio.sh BUILD_DIR memdev|switch}" && pwd)
mode=${2:?usage: run-vfio.sh BUILD_DIR memdev|switch}
cache=${MBX_QEMU_CACHE:-/var/cache/mbxd-qemu}
boot_timeout=${MBX_QEMU_TIMEOUT:-600}
case $mode in
memdev) guest_test=guest-vfio.sh ;;
switch) guest_test=guest-vfio-switch.sh ;;
*) echo "run-vfio: unknown mode \"$mode\" (memdev or switch)" >&2; exit 2 ;;
esac
log="$build/tests/qemu/vfio-$mode-console.log"
mbxd="$build/broker/mbxd"
mbxctl="$build/clients/mbxctl"

say() { printf 'run-vfio: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

[ -x "$mbxd" ] || fail "$mbxd is not built"
[ -x "$mbxctl" ] || fail "$mbxctl is not built"

work=$(mktemp -d /tmp/mbxd-vfio-XXXXXX)
qpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		sleep 1
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	[ -n "${MBX_QEMU_KEEP:-}" ] && say "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

. "$here/lib-qemu10.sh"

# Installs Debian packages the host lacks (needs root only when one is missing).
need_pkgs() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || fail "missing packages:$missing (run as root to install them)"
	say "installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	} || fail "apt-get install$missing failed"
}

# The kernel image package linux-image-amd64 points at (or the one cached).
kernel_pkg() {
	[ -n "${MBX_QEMU_KERNEL:-}" ] && { echo "$MBX_QEMU_KERNEL"; return 0; }
	p=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	[ -n "$p" ] || p=$(ls "$cache/debs" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*\)_.*/\1/p' | tail -n1)
	[ -n "$p" ] || fail "cannot resolve linux-image-amd64 (apt-cache depends) and nothing cached"
	echo "$p"
}

# Downloads and extracts the kernel once into $cache/kernel/PKG (shared with run-chardev.sh).
prepare_kernel() {
	kdir="$cache/kernel/$kpkg"
	if [ ! -f "$kdir/.done" ]; then
		mkdir -p "$cache/debs"
		deb=$(ls "$cache/debs/$kpkg"_*.deb 2>/dev/null | head -n1 || true)
		if [ -z "$deb" ]; then
			(cd "$cache/debs" && apt-get download -q "$kpkg" >/dev/null 2>&1) ||
				fail "apt-get download $kpkg failed"
			deb=$(ls "$cache/debs/$kpkg"_*.deb | head -n1)
		fi
		rm -rf "$kdir"
		mkdir -p "$kdir"
		dpkg-deb -x "$deb" "$kdir" || fail "dpkg-deb -x $deb failed"
		touch "$kdir/.done"
	fi
	kver=$(ls "$kdir/lib/modules" | head -n1)
	vmlinuz="$kdir/boot/vmlinuz-$kver"
	[ -f "$vmlinuz" ] || fail "$kpkg has no /boot/vmlinuz-$kver"
}

# Copies an ELF program and every library ldd lists into ROOT at the same paths.
stage_elf() {
	root=$1 bin=$2 dest=$3
	mkdir -p "$root$(dirname "$dest")"
	cp -L "$bin" "$root$dest"
	strip --strip-debug "$root$dest" 2>/dev/null || true
	libs=$(ldd "$bin") || fail "ldd $bin failed"
	echo "$libs" | grep -q "not found" && fail "ldd $bin: $(echo "$libs" | grep "not found")"
	for lib in $(echo "$libs" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		[ -f "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# A module and its dependencies, from modules.dep.
module_closure() {
	moddir=$1
	shift
	want=""
	for m in "$@"; do
		f=$(sed -n "s#^\([^:]*/$m\.ko[^:]*\):.*#\1#p" "$moddir/modules.dep" | head -n1)
		[ -n "$f" ] && want="$want $f"
	done
	all=""
	while [ -n "$want" ]; do
		next=""
		for f in $want; do
			case " $all " in *" $f "*) continue ;; esac
			all="$all $f"
			next="$next $(grep "^$f:" "$moddir/modules.dep" | cut -d: -f2)"
		done
		want=$next
	done
	echo "$all"
}

# The base initramfs: busybox, the CXL and VFIO modules, jq; cached per kernel and script.
prepare_base() {
	stamp=$(cat "$here/guest-init.sh" "$0" /bin/busybox /usr/bin/jq | md5sum | cut -c1-12)
	base="$cache/initramfs-vfio-$kver-$stamp.cpio.gz"
	[ -f "$base" ] && return 0
	say "building the vfio base initramfs for $kver"
	r="$work/base"
	mkdir -p "$r/bin" "$r/sbin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/run" "$r/tmp" \
		"$r/lib/modules/$kver" "$r/usr/bin" "$r/var/log"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bin/$a" # a self-link fails /init with ELOOP
	done
	cp "$here/guest-init.sh" "$r/init"
	chmod 755 "$r/init"
	kmods="$kdir/lib/modules/$kver"
	[ -f "$kmods/modules.dep" ] || /bin/busybox depmod -b "$kdir" "$kver" ||
		fail "depmod for $kver failed"
	for f in $(module_closure "$kmods" cxl_acpi cxl_pci cxl_port cxl_mem libnvdimm cxl_pmem \
		vfio vfio_iommu_type1 vfio-pci vfio-pci-core vfio_virqfd irqbypass); do
		mkdir -p "$r/lib/modules/$kver/$(dirname "$f")"
		cp "$kmods/$f" "$r/lib/modules/$kver/$f"
	done
	for f in $(find "$r/lib/modules" -name '*.ko.xz'); do /bin/busybox unxz "$f"; done
	for f in $(find "$r/lib/modules" -name '*.ko.zst'); do
		zstd -q -d --rm "$f" || fail "cannot decompress $f (install zstd)"
	done
	/bin/busybox depmod -b "$r" "$kver" || fail "depmod of the initramfs modules failed"
	stage_elf "$r" /usr/bin/jq /usr/bin/jq
	(cd "$r" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$base.tmp" || fail "cpio of the base initramfs failed"
	mv "$base.tmp" "$base"
	rm -f $(ls "$cache"/initramfs-vfio-"$kver"-*.cpio.gz | grep -v "$base") 2>/dev/null || true
}

# The per-run part: this build's mbxd and mbxctl, the guest test and its policy.
prepare_run() {
	r="$work/run"
	mkdir -p "$r/mbx" "$r/etc/mbxd"
	stage_elf "$r" "$mbxd" /usr/sbin/mbxd
	stage_elf "$r" "$mbxctl" /usr/bin/mbxctl
	cp "$here/$guest_test" "$r/mbx/test.sh"
	cp "$here/guest-lib.sh" "$r/mbx/lib.sh"
	cp "$here/vfio-policy.yaml" "$r/etc/mbxd/policy.yaml"
	chmod 644 "$r/etc/mbxd/"*
	(cd "$r" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$work/run.cpio.gz" || fail "cpio of the test files failed"
	cat "$base" "$work/run.cpio.gz" >"$work/initramfs"
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
	mkdir -p "$(dirname "$log")"
	: >"$log"
	cxl_devices
	# One argument per line in cxl.args (no spaces in any), read back as words.
	# shellcheck disable=SC2046
	"$qemu" $qemu_data -accel tcg -cpu max -M q35,cxl=on,kernel-irqchip=split -smp 2 \
		-m 2G,maxmem=4G,slots=8 -device intel-iommu,intremap=on,caching-mode=on \
		-display none -no-reboot -serial "file:$log" -monitor none -nic none \
		-kernel "$vmlinuz" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 quiet loglevel=4 intel_iommu=on' \
		$(cat "$work/cxl.args") </dev/null >"$work/qemu.out" 2>&1 &
	qpid=$!
	waited=0
	while kill -0 "$qpid" 2>/dev/null; do
		if [ "$waited" -ge "$boot_timeout" ]; then
			tail -n 40 "$log" >&2
			fail "the guest did not finish within ${boot_timeout}s (console: $log)"
		fi
		sleep 1
		waited=$((waited + 1))
	done
	qrc=0
	wait "$qpid" || qrc=$?
	qpid=""
	if ! grep -q "MBX-GUEST-START" "$log"; then
		cat "$work/qemu.out" >&2
		tail -n 40 "$log" >&2
		fail "QEMU could not start the guest (exit $qrc): $(head -c 400 "$work/qemu.out")"
	fi
	say "guest ran for ${waited}s (QEMU exit $qrc)"
}

# Reads the guest's verdict from the console.
verdict() {
	grep -a "^MBX-TEST \|^MBX-NOTE " "$log" >&2 || true
	line=$(grep -a "^MBX-QEMU-DONE " "$log" | tail -n1)
	if [ -z "$line" ]; then
		tail -n 60 "$log" >&2
		fail "the guest stopped before its tests finished (console: $log)"
	fi
	case "$line" in
	*" fail=0"*) say "${line#MBX-QEMU-DONE }: all passed" ;;
	*)
		grep -a -A12 "^MBX-TEST FAIL" "$log" >&2 || true
		fail "${line#MBX-QEMU-DONE } (console: $log)"
		;;
	esac
}

need_pkgs qemu-system-x86 busybox-static jq
mkdir -p "$cache" || fail "cannot create the cache $cache"
exec 9>"$cache/.prepare.lock"
flock 9 || fail "cannot lock $cache/.prepare.lock"
kpkg=$(kernel_pkg)
prepare_kernel
prepare_base
qemu=${MBX_QEMU_BIN:-qemu-system-x86_64}
qemu_data=""
if [ "$mode" = switch ]; then
	prepare_qemu10
	qemu=$qemu10
	qemu_data=$qemu10_data
fi
flock -u 9
prepare_run
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
say "booting $kpkg under QEMU $("$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') (TCG, vIOMMU)"
boot
verdict
