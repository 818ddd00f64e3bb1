#!/bin/sh
# Builds the test kernel for the MCTP QEMU test: Debian's linux-source-6.1,
# tinyconfig plus the options below (CONFIG_MCTP and the mctp-serial line
# discipline, which Debian's own kernels leave out, the CXL drivers with RAW
# commands, VFIO no-IOMMU). The bzImage is cached outside the repository in
# $MBX_QEMU_CACHE (default /var/cache/mbxd-qemu) under a name keyed by a hash
# of the source package version and this option list, so a machine builds it
# once (about 7 minutes on 2 cores) and reuses it afterwards.
#
# Usage: tests/qemu/build-mctp-kernel.sh        prints the bzImage path
# Root is needed only to install missing packages. Concurrent runs wait for
# each other (flock) instead of building twice.
set -eu

jobs=${MBX_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 2)}
options="64BIT PRINTK EARLY_PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE
BLK_DEV_INITRD RD_GZIP DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS TMPFS BINFMT_ELF
BINFMT_SCRIPT NET UNIX INET PACKET NETDEVICES PCI PCIEPORTBUS PCI_MSI
PCI_MMCONFIG ACPI MULTIUSER FUTEX EPOLL EVENTFD SIGNALFD TIMERFD SHMEM
UNIX98_PTYS SECCOMP SECCOMP_FILTER FILE_LOCKING POSIX_TIMERS MCTP MCTP_SERIAL
CXL_BUS CXL_PCI CXL_MEM CXL_ACPI CXL_PORT CXL_MEM_RAW_COMMANDS VFIO VFIO_PCI
VFIO_NOIOMMU SPARSEMEM_MANUAL MEMORY_HOTPLUG BUG"
# Must come out of olddefconfig enabled, or the kernel is useless for the test.
required="MCTP MCTP_SERIAL UNIX98_PTYS SECCOMP_FILTER SERIAL_8250_CONSOLE BLK_DEV_INITRD"

# shellcheck source=lib-host.sh
. "$(cd "$(dirname "$0")" && pwd)/lib-host.sh"

# Without root and without the source package, the cached kernel still serves.
if [ "$(id -u)" != 0 ] &&
	! dpkg-query -W -f='${Status}' linux-source-6.1 2>/dev/null | grep -q "install ok installed"; then
	cached=$(ls "$cache"/mctp-kernel-*.bzImage 2>/dev/null | head -n1 || true)
	if [ -n "$cached" ]; then
		say "linux-source-6.1 is not installed: using the cached $cached"
		echo "$cached"
		exit 0
	fi
fi
need_pkgs linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || fail "$tarball is missing after installing linux-source-6.1"
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
key=$(printf '%s\n%s\n' "$srcver" "$options" | md5sum | cut -c1-12)
image="$cache/mctp-kernel-$key.bzImage"
mkdir -p "$cache" || fail "cannot create the cache $cache"

exec 9>"$cache/mctp-kernel.lock"
flock 9 || fail "cannot lock $cache/mctp-kernel.lock"
if [ -f "$image" ]; then
	echo "$image"
	exit 0
fi

src="$cache/mctp-kernel-src"
if [ ! -f "$src/.unpacked-$srcver" ]; then
	say "unpacking $tarball ($srcver)"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1 || fail "cannot unpack $tarball"
	touch "$src/.unpacked-$srcver"
fi
build_tiny_kernel mctp "$src" "$key"
