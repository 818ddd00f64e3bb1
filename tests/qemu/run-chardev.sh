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
cache=${MBX_QEMU_CACHE:-/var/cache/mbxd-qemu}
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

say() { printf 'run-chardev: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

[ -x "$mbxd" ] || fail "$mbxd is not built"
[ -x "$mbxctl" ] || fail "$mbxctl is not built"

work=$(mktemp -d /tmp/mbxd-qemu-XXXXXX)
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

# apt-get/apt-cache on the host's sources, or (routes) on a private
# bookworm-backports list with its own state folder in the cache.
apt_run() {
	tool=$1
	shift
	if [ "$mode" = routes ]; then
		"$tool" -o Dir::Etc::sourcelist="$cache/bpo/sources.list" -o Dir::Etc::sourceparts=- \
			-o Dir::State::Lists="$cache/bpo/lists" -o Dir::Cache="$cache/bpo/cache" "$@"
	else
		"$tool" "$@"
	fi
}

# The private backports sources list, from the archive URI the host already uses.
prepare_bpo_sources() {
	[ -f "$cache/bpo/sources.list" ] && return 0
	uri=$(sed -n 's/^URIs: *\([^ ]*debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
	[ -n "$uri" ] || uri=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*debian\)\/* bookworm .*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | head -n1)
	[ -n "$uri" ] || fail "no Debian archive URI in the host's apt sources"
	mkdir -p "$cache/bpo/lists/partial" "$cache/bpo/cache/archives/partial" "$cache/bpo/debs"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" \
		>"$cache/bpo/sources.list"
	apt_run apt-get update -qq >/dev/null 2>&1 || fail "apt-get update of bookworm-backports failed"
}

# Downloads one package's .deb into the cache once; prints its path.
fetch_deb() {
	debs="$cache/debs"
	[ "$mode" = routes ] && debs="$cache/bpo/debs"
	mkdir -p "$debs"
	f=$(ls "$debs/$1"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$f" ]; then
		(cd "$debs" && apt_run apt-get download -q "$1" >/dev/null 2>&1) ||
			(apt_run apt-get update -qq >/dev/null 2>&1 && cd "$debs" &&
				apt_run apt-get download -q "$1" >/dev/null) ||
			fail "apt-get download $1 failed"
		f=$(ls "$debs/$1"_*.deb | head -n1)
	fi
	echo "$f"
}

# The kernel image package linux-image-amd64 points at today.
kernel_pkg() {
	[ -n "${MBX_QEMU_KERNEL:-}" ] && { echo "$MBX_QEMU_KERNEL"; return 0; }
	p=$(apt_run apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	if [ -z "$p" ]; then
		apt_run apt-get update -qq >/dev/null 2>&1 || true
		p=$(apt_run apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	fi
	if [ -z "$p" ]; then # offline: the one already cached
		d="$cache/debs"
		[ "$mode" = routes ] && d="$cache/bpo/debs"
		p=$(ls "$d" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*\)_.*/\1/p' | tail -n1)
	fi
	[ -n "$p" ] || fail "cannot resolve linux-image-amd64 (apt-cache depends) and nothing cached"
	echo "$p"
}

# Extracts the kernel once: vmlinuz and its modules in $cache/kernel/PKG.
prepare_kernel() {
	kdir="$cache/kernel/$kpkg"
	if [ ! -f "$kdir/.done" ]; then
		deb=$(fetch_deb "$kpkg")
		rm -rf "$kdir"
		mkdir -p "$kdir"
		dpkg-deb -x "$deb" "$kdir" || fail "dpkg-deb -x $deb failed"
		touch "$kdir/.done"
		# A new kernel ABI replaces the old one of its series (6.1, 6.12):
		# one cached kernel per boot configuration.
		series=$(echo "$kpkg" | sed 's/^\(linux-image-[0-9]*\.[0-9]*\)[.+-].*/\1/')
		for old in "$cache"/kernel/"$series".* "$cache"/kernel/"$series"-* "$cache"/kernel/"$series"+*; do
			[ -e "$old" ] && [ "$old" != "$kdir" ] && rm -rf "$old"
		done
		for old in "$cache"/debs/"$series"[.+-]*.deb "$cache"/bpo/debs/"$series"[.+-]*.deb; do
			[ -e "$old" ] && [ "$old" != "$deb" ] && rm -f "$old"
		done
	fi
	kver=$(ls "$kdir/lib/modules" | head -n1)
	vmlinuz="$kdir/boot/vmlinuz-$kver"
	[ -f "$vmlinuz" ] || fail "$kpkg has no /boot/vmlinuz-$kver"
}

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

# Copies an ELF program and every library ldd lists into ROOT at the same paths.
stage_elf() {
	root=$1 bin=$2 dest=$3
	mkdir -p "$root$(dirname "$dest")"
	cp -L "$bin" "$root$dest"
	strip --strip-debug "$root$dest" 2>/dev/null || true
	libs=$(LD_LIBRARY_PATH="$cache/tools/usr/lib/x86_64-linux-gnu:$cache/tools/lib/x86_64-linux-gnu" \
		ldd "$bin") || fail "ldd $bin failed"
	echo "$libs" | grep -q "not found" && fail "ldd $bin: $(echo "$libs" | grep "not found")"
	for lib in $(echo "$libs" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		target=${lib#"$cache/tools"}
		[ -f "$root$target" ] && continue
		mkdir -p "$root$(dirname "$target")"
		cp -L "$lib" "$root$target"
	done
}

# The modules the CXL stack needs, with their dependencies, from modules.dep.
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

# The base initramfs (busybox, CXL modules, ndctl, jq), cached per kernel and script.
prepare_base() {
	stamp=$(cat "$here/guest-init.sh" "$0" /bin/busybox | md5sum | cut -c1-12)
	base="$cache/initramfs-$kver-$stamp.cpio.gz"
	[ -f "$base" ] && return 0
	say "building the base initramfs for $kver"
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
	for f in $(module_closure "$kmods" cxl_acpi cxl_pci cxl_port cxl_mem libnvdimm cxl_pmem); do
		mkdir -p "$r/lib/modules/$kver/$(dirname "$f")"
		cp "$kmods/$f" "$r/lib/modules/$kver/$f"
	done
	# busybox's modprobe reads plain ELF only; newer kernels ship .ko.xz or .ko.zst.
	for f in $(find "$r/lib/modules" -name '*.ko.xz'); do /bin/busybox unxz "$f"; done
	for f in $(find "$r/lib/modules" -name '*.ko.gz'); do gzip -d "$f"; done
	for f in $(find "$r/lib/modules" -name '*.ko.zst'); do
		zstd -q -d --rm "$f" || fail "cannot decompress $f (install zstd)"
	done
	/bin/busybox depmod -b "$r" "$kver" || fail "depmod of the initramfs modules failed"
	stage_elf "$r" "$cache/tools/usr/bin/cxl" /usr/bin/cxl
	stage_elf "$r" "$cache/tools/usr/bin/jq" /usr/bin/jq
	(cd "$r" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$base.tmp" || fail "cpio of the base initramfs failed"
	mv "$base.tmp" "$base"
	rm -f $(ls "$cache"/initramfs-"$kver"-*.cpio.gz | grep -v "$base") 2>/dev/null || true
}

# The per-run part: this build's mbxd and mbxctl, the guest test and its config.
prepare_run() {
	r="$work/run"
	mkdir -p "$r/mbx" "$r/etc/mbxd"
	stage_elf "$r" "$mbxd" /usr/sbin/mbxd
	stage_elf "$r" "$mbxctl" /usr/bin/mbxctl
	cp "$here/$guest_test" "$r/mbx/test.sh"
	cp "$here/guest-lib.sh" "$r/mbx/lib.sh"
	cp "$here/mbxd.yaml" "$here/policy.yaml" "$r/etc/mbxd/"
	chmod 644 "$r/etc/mbxd/"*
	# Compressed too: an uncompressed archive after a gzip one must start 4-byte aligned.
	(cd "$r" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$work/run.cpio.gz" || fail "cpio of the test files failed"
	cat "$base" "$work/run.cpio.gz" >"$work/initramfs"
}

# Boots the guest; the serial console goes to $log. Fails with QEMU's reason.
boot() {
	log="$build/tests/qemu/$log_name"
	mkdir -p "$(dirname "$log")"
	: >"$log"
	truncate -s 256M "$work/cxl-mem.raw" "$work/cxl-lsa.raw"
	"$qemu" $qemu_data -accel tcg -cpu max -M q35,cxl=on -smp 2 -m 2G,maxmem=4G,slots=8 \
		-display none -no-reboot -serial "file:$log" -monitor none -nic none \
		-kernel "$vmlinuz" -initrd "$work/initramfs" \
		-append 'console=ttyS0 panic=-1 quiet loglevel=4' \
		-object memory-backend-file,id=cxl-mem1,share=on,mem-path="$work/cxl-mem.raw",size=256M \
		-object memory-backend-file,id=cxl-lsa1,share=on,mem-path="$work/cxl-lsa.raw",size=256M \
		-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \
		-device cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=2 \
		-device cxl-type3,bus=root_port13,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0,sn=0x1111 \
		-M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G \
		</dev/null >"$work/qemu.out" 2>&1 &
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
		grep -a -B2 -A12 "^MBX-TEST FAIL" "$log" >&2 || true
		fail "${line#MBX-QEMU-DONE } (console: $log)"
		;;
	esac
}

# Extracts QEMU and SeaBIOS from bookworm-backports once; QEMU then runs in
# a private mount namespace where the host's module folder is an empty one.
prepare_bpo_qemu() {
	[ "$(id -u)" = 0 ] || fail "the routes test runs the extracted QEMU under unshare -m: run as root"
	qdeb=$(fetch_deb qemu-system-x86)
	qdir="$cache/qemu-bpo/$(basename "$qdeb" .deb)"
	if [ ! -f "$qdir/.done" ]; then
		rm -rf "$cache/qemu-bpo"
		mkdir -p "$qdir/empty"
		for p in qemu-system-x86 qemu-system-data seabios; do
			dpkg-deb -x "$(fetch_deb "$p")" "$qdir" || fail "dpkg-deb -x $p failed"
		done
		touch "$qdir/.done"
	fi
	missing=$(ldd "$qdir/usr/bin/qemu-system-x86_64" | grep "not found" || true)
	[ -z "$missing" ] || fail "QEMU cannot start: the backports QEMU needs $missing"
	modules=/usr/lib/x86_64-linux-gnu/qemu
	qemu_data="-L $qdir/usr/share/seabios -L $qdir/usr/share/qemu"
	# exec all the way down: the pid cleanup() kills is QEMU's own.
	qemu="$work/qemu-bpo"
	cat >"$qemu" <<-EOF
	#!/bin/sh
	exec unshare -m sh -c '[ ! -d "\$1" ] || mount --bind "\$0" "\$1" || exit 1; shift; exec "\$@"' \\
		"$qdir/empty" "$modules" "$qdir/usr/bin/qemu-system-x86_64" "\$@"
	EOF
	chmod 755 "$qemu"
}

need_pkgs qemu-system-x86 busybox-static
mkdir -p "$cache" || fail "cannot create the cache $cache"
# One preparer at a time: other build folders share this cache.
exec 9>"$cache/.prepare.lock"
flock 9 || fail "cannot lock $cache/.prepare.lock"
[ "$mode" = routes ] && prepare_bpo_sources
kpkg=$(kernel_pkg)
prepare_kernel
prepare_tools
prepare_base
[ "$mode" = routes ] && prepare_bpo_qemu
flock -u 9
prepare_run
command -v "$qemu" >/dev/null || fail "QEMU cannot start: $qemu is not installed"
say "booting $kpkg under QEMU $("$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') (TCG)"
boot
verdict
