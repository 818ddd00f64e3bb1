#!/bin/sh
# Sourced by run-vfio.sh: QEMU 10 from Debian's bookworm-backports suite,
# downloaded with a private apt sources list and state folder in the cache
# (never the host's sources) and run extracted: in a private mount namespace
# where the host's QEMU module folder is hidden, with -L at the backports
# SeaBIOS and QEMU data (bookworm's SeaBIOS spends 32 s in the BIOS).
# Same cache layout as run-chardev.sh's routes mode: the two share one
# extraction. Needs root (unshare -m, mount --bind).
#
# Uses from the caller: $cache, $work, say(), fail(). Sets $qemu10 (a wrapper
# script) and $qemu10_data (the -L options).

# apt-get/apt-cache on the private bookworm-backports list.
q10_apt() {
	tool=$1
	shift
	"$tool" -o Dir::Etc::sourcelist="$cache/bpo/sources.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$cache/bpo/lists" -o Dir::Cache="$cache/bpo/cache" "$@"
}

# The private sources list, from the archive URI the host already uses.
q10_sources() {
	[ -f "$cache/bpo/sources.list" ] && return 0
	uri=$(sed -n 's/^URIs: *\([^ ]*debian\)\/* *$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
	[ -n "$uri" ] || uri=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*debian\)\/* bookworm .*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | head -n1)
	[ -n "$uri" ] || fail "no Debian archive URI in the host's apt sources"
	mkdir -p "$cache/bpo/lists/partial" "$cache/bpo/cache/archives/partial" "$cache/bpo/debs"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" \
		>"$cache/bpo/sources.list"
	q10_apt apt-get update -qq >/dev/null 2>&1 || fail "apt-get update of bookworm-backports failed"
}

# Downloads one backports package once; prints its path.
q10_fetch() {
	d="$cache/bpo/debs"
	mkdir -p "$d"
	f=$(ls "$d/$1"_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$f" ]; then
		(cd "$d" && q10_apt apt-get download -q "$1" >/dev/null 2>&1) ||
			(q10_apt apt-get update -qq >/dev/null 2>&1 && cd "$d" &&
				q10_apt apt-get download -q "$1" >/dev/null) ||
			fail "apt-get download $1 (bookworm-backports) failed"
		f=$(ls "$d/$1"_*.deb | head -n1)
	fi
	echo "$f"
}

# Extracts QEMU, its data and SeaBIOS once; writes the wrapper that runs it.
prepare_qemu10() {
	[ "$(id -u)" = 0 ] || fail "QEMU 10 runs extracted under unshare -m: run as root"
	q10_sources
	qdeb=$(q10_fetch qemu-system-x86)
	qdir="$cache/qemu-bpo/$(basename "$qdeb" .deb)"
	if [ ! -f "$qdir/.done" ]; then
		rm -rf "$cache/qemu-bpo"
		mkdir -p "$qdir/empty"
		for p in qemu-system-x86 qemu-system-data seabios; do
			dpkg-deb -x "$(q10_fetch "$p")" "$qdir" || fail "dpkg-deb -x $p failed"
		done
		touch "$qdir/.done"
	fi
	missing=$(ldd "$qdir/usr/bin/qemu-system-x86_64" | grep "not found" || true)
	[ -z "$missing" ] || fail "QEMU 10 cannot start: it needs $missing"
	qemu10_data="-L $qdir/usr/share/seabios -L $qdir/usr/share/qemu"
	qemu10="$work/qemu10"
	# exec all the way down: the pid the caller kills is QEMU's own.
	cat >"$qemu10" <<-EOS
	#!/bin/sh
	exec unshare -m sh -c '[ ! -d "\$1" ] || mount --bind "\$0" "\$1" || exit 1; shift; exec "\$@"' \\
		"$qdir/empty" /usr/lib/x86_64-linux-gnu/qemu "$qdir/usr/bin/qemu-system-x86_64" "\$@"
	EOS
	chmod 755 "$qemu10"
}
