#!/bin/sh
# The mctp transport against the kernel's real MCTP stack: boots a test
# kernel built from Debian's linux-source-6.1 with CONFIG_MCTP and the
# mctp-serial line discipline (build-mctp-kernel.sh; built once per machine
# and cached), where the project's MCTP endpoint emulator serves the far end
# of a pty-backed mctpserial link with the sim's memory device and switch.
# The guest (guest-mctp.sh) routes to it over rtnetlink, runs mbxd with the
# mctp transport and checks what an unprivileged mbxctl user gets.
# Exits non-zero on any failure, including "QEMU cannot start".
#
# Usage: tests/qemu/run-mctp.sh BUILD_DIR
# Root is needed only to install missing packages. The kernel and its build
# tree are cached in $MBX_QEMU_CACHE (default /var/cache/mbxd-qemu).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:?usage: run-mctp.sh BUILD_DIR}" && pwd)
boot_timeout=${MBX_QEMU_TIMEOUT:-300}
qemu=${MBX_QEMU_BIN:-qemu-system-x86_64}
bins="$build/broker/mbxd:/usr/sbin/mbxd $build/clients/mbxctl:/usr/bin/mbxctl
$build/tests/qemu/mctp-endpoint:/usr/bin/mctp-endpoint $build/tests/qemu/mctp-setup:/usr/bin/mctp-setup"

# shellcheck source=lib-host.sh
. "$here/lib-host.sh"

for b in $bins; do
	[ -x "${b%%:*}" ] || fail "${b%%:*} is not built"
done

start_work /tmp/mbxd-qemu-mctp-XXXXXX

# The guest's root: busybox, jq, this build's programs, the test, its helpers and config.
prepare_initramfs() {
	r="$work/root"
	busybox_root "$r" etc/mbxd usr/sbin mbx
	for b in $bins; do
		stage_elf "$r" "${b%%:*}" "${b#*:}"
	done
	stage_elf "$r" "$(command -v jq)" /usr/bin/jq
	cp "$here/guest-mctp.sh" "$r/init"
	chmod 755 "$r/init"
	cp "$here/guest-lib.sh" "$r/mbx/lib.sh"
	cp "$here/mctp-policy.yaml" "$r/etc/mbxd/policy.yaml"
	chmod 644 "$r/etc/mbxd/policy.yaml"
	pack_cpio "$r" "$work/initramfs" initramfs
}

# Boots the guest; the serial console goes to $log. Fails with QEMU's reason.
boot() {
	log="$build/tests/qemu/mctp-console.log"
	boot_qemu "$qemu" -accel tcg -M q35 -smp 2 -m 512M -display none -no-reboot \
		-serial "file:$log" -monitor none -kernel "$kernel" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 loglevel=4'
}

need_pkgs qemu-system-x86 busybox-static jq
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
kernel=$("$here/build-mctp-kernel.sh" | tail -n1) || fail "the MCTP test kernel did not build"
[ -f "$kernel" ] || fail "build-mctp-kernel.sh gave no kernel"
prepare_initramfs
say "booting $(basename "$kernel") under QEMU $(qemu_version) (TCG)"
boot
verdict "^MBX-TEST " -A12
