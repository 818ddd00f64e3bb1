#!/bin/sh
# Sourced by the host side of the QEMU tests (run-chardev.sh, run-vfio.sh,
# run-mctp.sh, build-mctp-kernel.sh): messages, packages, Debian's kernel in
# the download cache, the initramfs pieces, booting QEMU and reading the
# guest's verdict. Defines functions only, besides $cache and $host_me.
#
# Uses from the caller, where a function needs them: $here (this folder),
# $work (start_work), $mbxd, $mbxctl, $guest_test,
# $kpkg, $kver, $kdir, $log, $boot_timeout, $qemu; $apt_bpo (non-empty: apt
# on the private bookworm-backports list of lib-qemu10.sh) and $stage_tools
# (extracted packages whose libraries stage_elf may copy).

# The settings listed above are assigned by the caller, not here.
# shellcheck disable=SC2154

cache=${MBX_QEMU_CACHE:-/var/cache/mbxd-qemu}
host_me=$(basename "$0" .sh)

say() { printf '%s: %s\n' "$host_me" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# Makes the run's scratch folder $work from TEMPLATE; removed (and QEMU killed) on exit.
start_work() {
	work=$(mktemp -d "$1")
	qpid=""
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

# Kills a QEMU still running and removes $work (kept with MBX_QEMU_KEEP).
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill -TERM "$qpid" 2>/dev/null || true
		sleep 1
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	[ -n "${MBX_QEMU_KEEP:-}" ] && say "kept $work" || rm -rf "$work"
}

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

# One preparer at a time: other build folders share the cache (released with flock -u 9).
lock_cache() {
	mkdir -p "$cache" || fail "cannot create the cache $cache"
	exec 9>"$cache/.prepare.lock"
	flock 9 || fail "cannot lock $cache/.prepare.lock"
}

# apt-get/apt-cache on the host's sources, or ($apt_bpo) on the private
# bookworm-backports list with its own state folder in the cache.
apt_run() {
	tool=$1
	shift
	if [ -n "${apt_bpo:-}" ]; then
		"$tool" -o Dir::Etc::sourcelist="$cache/bpo/sources.list" -o Dir::Etc::sourceparts=- \
			-o Dir::State::Lists="$cache/bpo/lists" -o Dir::Cache="$cache/bpo/cache" "$@"
	else
		"$tool" "$@"
	fi
}

# Where downloaded packages of the current suite are kept.
debs_dir() {
	if [ -n "${apt_bpo:-}" ]; then echo "$cache/bpo/debs"; else echo "$cache/debs"; fi
}

# Downloads one package's .deb into the cache once; prints its path.
fetch_deb() {
	debs=$(debs_dir)
	mkdir -p "$debs"
	f=$(ls "$debs/$1"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$f" ]; then
		(cd "$debs" && apt_run apt-get download -q "$1" >/dev/null 2>&1) ||
			(apt_run apt-get update -qq >/dev/null 2>&1 && cd "$debs" &&
				apt_run apt-get download -q "$1" >/dev/null) ||
			fail "apt-get download $1${apt_bpo:+ (bookworm-backports)} failed"
		f=$(ls "$debs/$1"_*.deb | head -n1)
	fi
	echo "$f"
}

# The kernel image package linux-image-amd64 points at today (or the one cached).
kernel_pkg() {
	[ -n "${MBX_QEMU_KERNEL:-}" ] && { echo "$MBX_QEMU_KERNEL"; return 0; }
	p=$(apt_run apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	if [ -z "$p" ]; then
		apt_run apt-get update -qq >/dev/null 2>&1 || true
		p=$(apt_run apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1)
	fi
	if [ -z "$p" ]; then # offline: the one already cached
		p=$(ls "$(debs_dir)" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*\)_.*/\1/p' | tail -n1)
	fi
	[ -n "$p" ] || fail "cannot resolve linux-image-amd64 (apt-cache depends) and nothing cached"
	echo "$p"
}

# Extracts the kernel $kpkg once: vmlinuz and its modules in $cache/kernel/PKG
# (shared by every test); sets $kdir, $kver and $vmlinuz.
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

# Copies an ELF program and every library ldd lists into ROOT at the same
# paths; libraries found in $stage_tools land where the host would have them.
stage_elf() {
	root=$1 bin=$2 dest=$3
	mkdir -p "$root$(dirname "$dest")"
	cp -L "$bin" "$root$dest"
	strip --strip-debug "$root$dest" 2>/dev/null || true
	if [ -n "${stage_tools:-}" ]; then
		libs=$(LD_LIBRARY_PATH="$stage_tools/usr/lib/x86_64-linux-gnu:$stage_tools/lib/x86_64-linux-gnu" \
			ldd "$bin") || fail "ldd $bin failed"
	else
		libs=$(ldd "$bin") || fail "ldd $bin failed"
	fi
	echo "$libs" | grep -q "not found" && fail "ldd $bin: $(echo "$libs" | grep "not found")"
	for lib in $(echo "$libs" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		target=${lib#"${stage_tools:-}"}
		[ -f "$root$target" ] && continue
		mkdir -p "$root$(dirname "$target")"
		cp -L "$lib" "$root$target"
	done
}

# Modules and their dependencies, from MODDIR's modules.dep.
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

# A root folder ROOT with busybox and its applets, plus the extra folders named.
busybox_root() {
	r=$1
	shift
	for d in bin sbin etc proc sys dev run tmp usr/bin var/log "$@"; do
		mkdir -p "$r/$d"
	done
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$r/bin/$a" # a self-link fails /init with ELOOP
	done
}

# Copies the modules named (with their dependencies) of $kdir's kernel into
# ROOT, decompressed, with their modules.dep.
stage_modules() {
	r=$1
	shift
	kmods="$kdir/lib/modules/$kver"
	[ -f "$kmods/modules.dep" ] || /bin/busybox depmod -b "$kdir" "$kver" ||
		fail "depmod for $kver failed"
	for f in $(module_closure "$kmods" "$@"); do
		mkdir -p "$r/lib/modules/$kver/$(dirname "$f")"
		cp "$kmods/$f" "$r/lib/modules/$kver/$f"
	done
	# busybox's modprobe reads plain ELF only; newer kernels ship .ko.xz or .ko.zst.
	find "$r/lib/modules" -name '*.ko.xz' -exec /bin/busybox unxz {} + ||
		fail "cannot decompress the .ko.xz modules"
	find "$r/lib/modules" -name '*.ko.gz' -exec gzip -d {} + ||
		fail "cannot decompress the .ko.gz modules"
	find "$r/lib/modules" -name '*.ko.zst' -exec zstd -q -d --rm {} + ||
		fail "cannot decompress the .ko.zst modules (install zstd)"
	/bin/busybox depmod -b "$r" "$kver" || fail "depmod of the initramfs modules failed"
}

# Packs ROOT into the gzip'd cpio archive OUT; WHAT names it in the failure.
pack_cpio() {
	(cd "$1" && find . | /bin/busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1) \
		>"$2" || fail "cpio of the $3 failed"
}

# The base initramfs $cache/PREFIX-$kver-STAMP.cpio.gz, built once per kernel
# and stamp (WHAT names it): busybox, guest-init.sh as /init, the MODULES and
# what the caller's base_extra ROOT stages. Sets $base; drops older stamps.
prepare_base_cpio() {
	prefix=$1 what=$2 stamp=$3
	shift 3
	base="$cache/$prefix-$kver-$stamp.cpio.gz"
	[ -f "$base" ] && return 0
	say "building the $what for $kver"
	r="$work/base"
	busybox_root "$r" "lib/modules/$kver"
	cp "$here/guest-init.sh" "$r/init"
	chmod 755 "$r/init"
	stage_modules "$r" "$@"
	base_extra "$r"
	pack_cpio "$r" "$base.tmp" "base initramfs"
	mv "$base.tmp" "$base"
	for old in "$cache/$prefix-$kver"-*.cpio.gz; do
		[ "$old" = "$base" ] || rm -f "$old"
	done
}

# The per-run root $work/run (set in $r): this build's $mbxd and $mbxctl,
# $guest_test as /mbx/test.sh and guest-lib.sh as /mbx/lib.sh; the caller
# adds mbxd's configuration in $r/etc/mbxd.
run_root() {
	r="$work/run"
	mkdir -p "$r/mbx" "$r/etc/mbxd"
	stage_elf "$r" "$mbxd" /usr/sbin/mbxd
	stage_elf "$r" "$mbxctl" /usr/bin/mbxctl
	cp "$here/$guest_test" "$r/mbx/test.sh"
	cp "$here/guest-lib.sh" "$r/mbx/lib.sh"
}

# The initramfs the guest boots: the base one, then ROOT (compressed too: an
# uncompressed archive after a gzip one must start 4-byte aligned).
finish_initramfs() {
	pack_cpio "$1" "$work/run.cpio.gz" "test files"
	cat "$base" "$work/run.cpio.gz" >"$work/initramfs"
}

# The QEMU version $qemu reports.
qemu_version() {
	"$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'
}

# Runs QEMU (the command line given) until the guest powers off, at most
# $boot_timeout s; the serial console goes to $log. Fails with QEMU's reason.
boot_qemu() {
	mkdir -p "$(dirname "$log")"
	: >"$log"
	"$@" </dev/null >"$work/qemu.out" 2>&1 &
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

# Reads the guest's verdict from $log: shows the lines matching SHOW, and on
# failure each MBX-TEST FAIL line with the grep CONTEXT options.
verdict() {
	grep -a "$1" "$log" >&2 || true
	line=$(grep -a "^MBX-QEMU-DONE " "$log" | tail -n1)
	if [ -z "$line" ]; then
		tail -n 60 "$log" >&2
		fail "the guest stopped before its tests finished (console: $log)"
	fi
	case "$line" in
	*" fail=0"*) say "${line#MBX-QEMU-DONE }: all passed" ;;
	*)
		grep -a $2 "^MBX-TEST FAIL" "$log" >&2 || true
		fail "${line#MBX-QEMU-DONE } (console: $log)"
		;;
	esac
}

# Configures the unpacked kernel source SRC as tinyconfig plus $options
# (each of $required must stay enabled), builds its bzImage with -j$jobs and
# installs it as $cache/NAME-kernel-KEY.bzImage (with its .config), removing
# NAME's images of older configurations; prints the image path.
build_tiny_kernel() {
	name=$1 src=$2 key=$3
	image="$cache/$name-kernel-$key.bzImage"
	start=$(date +%s)
	cd "$src" || fail "cannot enter $src"
	say "configuring (tinyconfig + $(echo $options | wc -w) options)"
	make -s tinyconfig >/dev/null || fail "make tinyconfig failed"
	en=""
	for o in $options; do en="$en --enable $o"; done
	./scripts/config $en || fail "scripts/config failed"
	make -s olddefconfig >/dev/null || fail "make olddefconfig failed"
	for o in $required; do
		grep -q "^CONFIG_$o=y" .config || fail "CONFIG_$o did not stay enabled after olddefconfig"
	done
	say "building the $name kernel's bzImage with -j$jobs (log: $src/build.log)"
	make -j"$jobs" bzImage >"$src/build.log" 2>&1 || {
		tail -n 30 "$src/build.log" >&2
		fail "make bzImage failed (log: $src/build.log)"
	}
	cp arch/x86/boot/bzImage "$image.tmp"
	cp .config "$cache/$name-kernel-$key.config"
	mv "$image.tmp" "$image"
	say "built in $(($(date +%s) - start)) s: $image"
	# An older configuration's image is dead weight now.
	for old in "$cache/$name"-kernel-*.bzImage; do
		[ "$old" = "$image" ] || rm -f "$old" "${old%.bzImage}.config"
	done
	echo "$image"
}
