#!/bin/sh
# cmake --install into a DESTDIR: the tree is complete, libmbx.pc answers
# pkg-config, and a program compiles and links against the installed libmbx,
# shared and static, and runs.
# usage: test-install.sh BUILD PREFIX LIBDIR SYSCONFDIR
set -eu
build=$1 prefix=$2 libdir=$3 sysconfdir=$4
dest=$(mktemp -d /tmp/mbxd-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$dest cmake --install "$build" >/dev/null
for f in "$prefix/sbin/mbxd" "$prefix/bin/mbxctl" "$libdir/libmbx.a" "$libdir/libmbx.so" \
	"$prefix/include/mbx/mbx.h" "$prefix/include/mbx/proto.h" "$libdir/pkgconfig/libmbx.pc" \
	"$sysconfdir/mbxd/mbxd.yaml" "$sysconfdir/mbxd/policy.yaml" \
	"$prefix/lib/systemd/system/mbxd.service" "$prefix/lib/systemd/system/mbxd.socket" \
	"$prefix/lib/sysusers.d/mbxd.conf" "$prefix/lib/tmpfiles.d/mbxd.conf" \
	"$prefix/share/man/man8/mbxd.8" "$prefix/share/man/man1/mbxctl.1" \
	"$prefix/share/man/man5/mbxd.yaml.5" "$prefix/share/man/man5/mbxd-policy.5" \
	"$prefix/share/bash-completion/completions/mbxctl" \
	"$prefix/share/doc/mbxd/examples/mbxd.yaml" "$prefix/share/doc/mbxd/protocol.md"; do
	[ -e "$dest$f" ] || fail "$f is not installed"
done
[ -x "$dest$prefix/sbin/mbxd" ] || fail "mbxd is not executable"
# The soname carries the ABI version; the .so link is for the linker only.
soname=$(objdump -p "$dest$libdir/libmbx.so" | awk '/SONAME/ {print $2}')
[ "$soname" = libmbx.so.0 ] || fail "soname is \"$soname\", want libmbx.so.0"
[ -e "$dest$libdir/$soname" ] || fail "$soname is not installed"
objdump -T "$dest$libdir/libmbx.so" | grep -q ' mbx_metrics$' || fail "mbx_metrics not exported"

export PKG_CONFIG_PATH="$dest$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
pkg-config --exists libmbx || fail "pkg-config does not find libmbx"
[ "$(pkg-config --modversion libmbx)" = "$(sed -n 's/^Version: //p' "$dest$libdir/pkgconfig/libmbx.pc")" ]
cat >"$dest/prog.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <mbx/mbx.h>

int main(void)
{
	struct mbx_client *c;
	int r = mbx_open("/nonexistent/mbxd.sock", &c);

	printf("%s %s\n", mbx_class_name(MBX_CLASS_DATA), mbx_strerror(r));
	return r == -ENOENT ? 0 : 1;
}
C
# shellcheck disable=SC2046
cc -Wall -Werror -o "$dest/prog" "$dest/prog.c" $(pkg-config --cflags --libs libmbx)
out=$(LD_LIBRARY_PATH="$dest$libdir" "$dest/prog") || fail "program against libmbx.so: $out"
[ "$out" = "data No such file or directory" ] || fail "program printed \"$out\""
ldd_out=$(LD_LIBRARY_PATH="$dest$libdir" ldd "$dest/prog")
echo "$ldd_out" | grep -q "libmbx.so.0 => $dest" || fail "not linked to the installed libmbx.so.0"
# shellcheck disable=SC2046
cc -Wall -Werror -o "$dest/prog-static" "$dest/prog.c" $(pkg-config --cflags libmbx) \
	"$dest$libdir/libmbx.a"
"$dest/prog-static" >/dev/null || fail "program against libmbx.a"
echo "install tree, libmbx.pc, shared and static linking: OK"
