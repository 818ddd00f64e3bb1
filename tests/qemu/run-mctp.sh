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

say() { printf 'run-mctp: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

for b in $bins; do
	[ -x "${b%%:*}" ] || fail "${b%%:*} is not built"
done

work=$(mktemp -d /tmp/mbxd-qemu-mctp-XXXXXX)
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

# The guest's root: busybox, jq, this build's programs, the test and its config.
prepare_initramfs() {
	r="$work/root"
	mkdir -p "$r/bin" "$r/sbin" "$r/etc/mbxd" "$r/proc" "$r/sys" "$r/dev" "$r/run" "$r/tmp" \
		"$r/usr/bin" "$r/usr/sbin" "$r/var/log" "$r/mbx"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bin/$a" # a self-link fails /init with ELOOP
	done
	for b in $bins; do
		stage_elf "$r" "${b%%:*}" "${b#*:}"
	done
	stage_elf "$r" "$(command -v jq)" /usr/bin/jq
	cp "$here/guest-mctp.sh" "$r/init"
	chmod 755 "$r/init"
	cp "$here/mctp-policy.yaml" "$r/etc/mbxd/policy.yaml"
	chmod 644 "$r/etc/mbxd/policy.yaml"
	(cd "$r" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$work/initramfs" || fail "cpio of the initramfs failed"
}

# Boots the guest; the serial console goes to $log. Fails with QEMU's reason.
boot() {
	log="$build/tests/qemu/mctp-console.log"
	mkdir -p "$(dirname "$log")"
	: >"$log"
	"$qemu" -accel tcg -M q35 -smp 2 -m 512M -display none -no-reboot \
		-serial "file:$log" -monitor none -kernel "$kernel" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 loglevel=4' </dev/null >"$work/qemu.out" 2>&1 &
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
	grep -a "^MBX-TEST " "$log" >&2 || true
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
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
kernel=$("$here/build-mctp-kernel.sh" | tail -n1) || fail "the MCTP test kernel did not build"
[ -f "$kernel" ] || fail "build-mctp-kernel.sh gave no kernel"
prepare_initramfs
say "booting $(basename "$kernel") under QEMU $("$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') (TCG)"
boot
verdict
