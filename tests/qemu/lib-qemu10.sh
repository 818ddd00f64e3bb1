#!/bin/sh
# Sourced after lib-host.sh by run-vfio.sh (switch) and run-chardev.sh
# (routes): QEMU 10 from Debian's bookworm-backports suite, downloaded with a
# private apt sources list and state folder in the cache (never the host's
# sources; lib-host.sh's apt_run and fetch_deb use it while $apt_bpo is set)
# and run extracted: in a private mount namespace where the host's QEMU
# module folder is hidden, with -L at the backports SeaBIOS and QEMU data
# (bookworm's SeaBIOS spends 32 s in the BIOS). Needs root (unshare -m,
# mount --bind).
#
# Uses from the caller: $cache, $work. Sets $qemu (a wrapper script) and
# $qemu_data (the -L options).

# $cache and $work are the caller's; $qemu_data is read by the caller.
# shellcheck disable=SC2154,SC2034

# The private sources list, from the archive URI the host already uses (with $apt_bpo set).
bpo_sources() {
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

# Extracts QEMU, its data and SeaBIOS once; writes the wrapper that runs it.
prepare_qemu10() {
	[ "$(id -u)" = 0 ] || fail "QEMU 10 runs extracted under unshare -m: run as root"
	was_bpo=${apt_bpo:-}
	apt_bpo=1
	bpo_sources
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
	apt_bpo=$was_bpo
	missing=$(ldd "$qdir/usr/bin/qemu-system-x86_64" | grep "not found" || true)
	[ -z "$missing" ] || fail "QEMU 10 cannot start: it needs $missing"
	qemu_data="-L $qdir/usr/share/seabios -L $qdir/usr/share/qemu"
	qemu="$work/qemu10"
	# exec all the way down: the pid the caller kills is QEMU's own.
	cat >"$qemu" <<-EOS
	#!/bin/sh
	exec unshare -m sh -c '[ ! -d "\$1" ] || mount --bind "\$0" "\$1" || exit 1; shift; exec "\$@"' \\
		"$qdir/empty" /usr/lib/x86_64-linux-gnu/qemu "$qdir/usr/bin/qemu-system-x86_64" "\$@"
	EOS
	chmod 755 "$qemu"
}
