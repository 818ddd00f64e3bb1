#!/bin/sh
# The chardev transport against the real Linux CXL driver: boots Debian's own
# kernel under QEMU (TCG) with an emulated CXL Type 3 device (serial 0x1111),
# runs mbxd on /dev/cxl/memN found by serial, and checks what an unprivileged
# mbxctl user gets (guest-chardev.sh), cross-checked against Debian's
# `cxl list -m`. Exits non-zero on any failure, including "QEMU cannot start".
#
# Usage: tests/qemu/run-chardev.sh BUILD_DIR [routes]
# Root is needed only to install missing packages (qemu-system-x86,
# busybox-static). Downloads are cached in $MBX_QEMU_CACHE (default
# /var/cache/mbxd-qemu): Debian's kernel image and ndctl/jq packages are
# downloaded and extracted there, never installed.
#
# With "routes": the kernel's sysfs routes (Sanitize, Secure Erase) on
# Debian's bookworm-backports kernel (6.12) and QEMU 10 from the same suite,
# both downloaded with a private apt sources list and state folder (never
# the host's) and run extracted: QEMU in a private mount namespace where the
# host's QEMU module folder is hidden, -L at the backports SeaBIOS and data.
# That needs root (unshare -m, mount --bind).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run-chardev.sh BUILD_DIR [routes]}" && pwd)
mode=${2:-base}
boot_timeout=${MBX_QEMU_TIMEOUT:-420}
qemu=${MBX_QEMU_BIN:-qemu-system-x86_64}
qemu_data="" # routes: -L at the backports SeaBIOS and QEMU data
case $mode in
base) guest_test=guest-chardev.sh log_name=chardev-console.log ;;
routes) guest_test=guest-chardev-routes.sh log_name=chardev-routes-console.log ;;
*) echo "run-chardev: unknown mode \"$mode\" (base or routes)" >&2; exit 2 ;;
esac
mbxd="$build/broker/mbxd"
mbxctl="$build/clients/mbxctl"
# Guest tools from Debian packages: ndctl's cxl (the cross-check) and jq.
guest_pkgs="ndctl jq"

# shellcheck source=lib-host.sh
. "$here/lib-host.sh"
# shellcheck source=lib-qemu10.sh
. "$here/lib-qemu10.sh"
[ "$mode" = routes ] && apt_bpo=1
# Guest libraries the host lacks come from the extracted packages.
stage_tools="$cache/tools"

[ -x "$mbxd" ] || fail "$mbxd is not built"
[ -x "$mbxctl" ] || fail "$mbxctl is not built"

start_work /tmp/mbxd-qemu-XXXXXX

# Packages a guest package needs that the host does not have, one level at a time.
deb_closure() {
	todo="$*"
	seen=""
	while [ -n "$todo" ]; do
		next=""
		for p in $todo; do
			case " $seen " in *" $p "*) continue ;; esac
			seen="$seen $p"
			for d in $(apt-cache depends "$p" 2>/dev/null | sed -n 's/^ *\(Pre\)\{0,1\}Depends: \([a-z0-9][a-z0-9.+-]*\).*/\2/p'); do
				dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" ||
					next="$next $d"
			done
		done
		todo=$next
	done
	echo "$seen"
}

# Extracts ndctl and jq (and the libraries the host lacks) once into $cache/tools.
prepare_tools() {
	tools="$cache/tools"
	[ -f "$tools/.done" ] && return 0
	rm -rf "$tools"
	mkdir -p "$tools"
	for p in $(deb_closure $guest_pkgs); do
		dpkg-deb -x "$(fetch_deb "$p")" "$tools" || fail "dpkg-deb -x $p failed"
	done
	[ -x "$tools/usr/bin/cxl" ] || fail "ndctl did not provide usr/bin/cxl"
	touch "$tools/.done"
}

# ndctl's cxl and jq in the base initramfs.
base_extra() {
	stage_elf "$1" "$cache/tools/usr/bin/cxl" /usr/bin/cxl
	stage_elf "$1" "$cache/tools/usr/bin/jq" /usr/bin/jq
}

# The base initramfs (busybox, CXL modules, ndctl, jq), cached per kernel and script.
prepare_base() {
	stamp=$(cat "$here/guest-init.sh" "$0" "$here/lib-host.sh" /bin/busybox | md5sum | cut -c1-12)
	prepare_base_cpio initramfs "base initramfs" "$stamp" \
		cxl_acpi cxl_pci cxl_port cxl_mem libnvdimm cxl_pmem
}

# The per-run part: this build's mbxd and mbxctl, the guest test and its config.
prepare_run() {
	run_root
	cp "$here/mbxd.yaml" "$here/policy.yaml" "$r/etc/mbxd/"
	chmod 644 "$r/etc/mbxd/"*
	finish_initramfs "$r"
}

# Boots the guest; the serial console goes to $log. Fails with QEMU's reason.
boot() {
	log="$build/tests/qemu/$log_name"
	truncate -s 256M "$work/cxl-mem.raw" "$work/cxl-lsa.raw"
	boot_qemu "$qemu" $qemu_data -accel tcg -cpu max -M q35,cxl=on -smp 2 -m 2G,maxmem=4G,slots=8 \
		-display none -no-reboot -serial "file:$log" -monitor none -nic none \
		-kernel "$vmlinuz" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 quiet loglevel=4' \
		-object memory-backend-file,id=cxl-mem1,share=on,mem-path="$work/cxl-mem.raw",size=256M \
		-object memory-backend-file,id=cxl-lsa1,share=on,mem-path="$work/cxl-lsa.raw",size=256M \
		-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \
		-device cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2 \
		-device cxl-type3,bus=root_port13,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0,sn=0x1111 \
		-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G
}

need_pkgs qemu-system-x86 busybox-static
lock_cache
[ "$mode" = routes ] && bpo_sources
kpkg=$(kernel_pkg)
prepare_kernel
prepare_tools
prepare_base
[ "$mode" = routes ] && prepare_qemu10
flock -u 9
prepare_run
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
say "booting $kpkg under QEMU $(qemu_version) (TCG)"
boot
verdict "^MBX-TEST " "-B2 -A12"
