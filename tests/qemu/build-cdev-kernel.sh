#!/bin/sh
# Builds the test kernel for the VFIO iommufd/cdev QEMU test (run-vfio.sh
# cdev): Debian's linux-source-6.12 from bookworm-backports (downloaded, never
# installed: the tarball is taken out of the .deb with dpkg-deb -x), tinyconfig
# plus the options below, all built in (no modules): the vIOMMU (Intel VT-d with
# interrupt remapping), IOMMUFD and VFIO with the device cdev
# (/dev/vfio/devices/vfioN), which none of Debian's kernels has (6.1 predates
# it; the backports 6.12 kernel leaves CONFIG_IOMMUFD unset), the CXL drivers,
# and what mbxd needs (unix sockets, seccomp). The bzImage is cached in
# $MBX_QEMU_CACHE (default /var/cache/mbxd-qemu) under a name keyed by a hash
# of the source package version and this option list, so a machine builds it
# once and reuses it afterwards.
#
# Usage: tests/qemu/build-cdev-kernel.sh        prints the bzImage path
# Root is needed to download the source and install missing build packages;
# without root the cached kernel still serves. Concurrent runs wait for each
# other (flock) instead of building twice.
set -eu

jobs=${MBX_KERNEL_JOBS:-$(nproc 2>/dev/null || echo 2)}
options="64BIT PRINTK EARLY_PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE
BLK_DEV_INITRD RD_GZIP DEVTMPFS DEVTMPFS_MOUNT PROC_FS SYSFS TMPFS BINFMT_ELF
BINFMT_SCRIPT NET UNIX PCI PCIEPORTBUS PCI_MSI PCI_MMCONFIG ACPI MULTIUSER
FUTEX EPOLL EVENTFD SIGNALFD TIMERFD SHMEM SECCOMP SECCOMP_FILTER
FILE_LOCKING POSIX_TIMERS CXL_BUS CXL_PCI CXL_MEM CXL_ACPI CXL_PORT
CXL_MEM_RAW_COMMANDS SPARSEMEM_MANUAL MEMORY_HOTPLUG BUG
IOMMU_SUPPORT INTEL_IOMMU IRQ_REMAP X86_X2APIC IOMMUFD VFIO VFIO_GROUP
VFIO_CONTAINER VFIO_DEVICE_CDEV VFIO_PCI"
# Must come out of olddefconfig enabled, or the kernel is useless for the test.
required="IOMMUFD VFIO_DEVICE_CDEV VFIO_GROUP VFIO_CONTAINER INTEL_IOMMU IRQ_REMAP
VFIO_PCI CXL_PCI SECCOMP_FILTER SERIAL_8250_CONSOLE BLK_DEV_INITRD UNIX"
srcpkg=linux-source-6.12

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib-host.sh
. "$here/lib-host.sh"
# shellcheck source=lib-qemu10.sh
. "$here/lib-qemu10.sh"

mkdir -p "$cache" || fail "cannot create the cache $cache"
exec 8>"$cache/cdev-kernel.lock"
flock 8 || fail "cannot lock $cache/cdev-kernel.lock"

# Without root (no download, no packages), the cached kernel still serves.
if [ "$(id -u)" != 0 ]; then
	cached=$(ls "$cache"/cdev-kernel-*.bzImage 2>/dev/null | head -n1 || true)
	[ -n "$cached" ] || fail "no cached cdev kernel and not root: cannot download $srcpkg"
	say "not root: using the cached $cached"
	echo "$cached"
	exit 0
fi
need_pkgs build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils
# The backports apt state is shared with lib-qemu10.sh's users: one at a time.
lock_cache
apt_bpo=1
bpo_sources
deb=$(fetch_deb "$srcpkg")
flock -u 9
srcver=$(dpkg-deb -f "$deb" Version) || fail "cannot read the version of $deb"
key=$(printf '%s\n%s\n' "$srcver" "$options" | md5sum | cut -c1-12)
image="$cache/cdev-kernel-$key.bzImage"
if [ -f "$image" ]; then
	echo "$image"
	exit 0
fi

src="$cache/cdev-kernel-src"
if [ ! -f "$src/.unpacked-$srcver" ]; then
	say "unpacking $(basename "$deb")"
	rm -rf "$src" "$cache/cdev-kernel-deb"
	mkdir -p "$src"
	dpkg-deb -x "$deb" "$cache/cdev-kernel-deb" || fail "dpkg-deb -x $deb failed"
	tarball=$(ls "$cache"/cdev-kernel-deb/usr/src/linux-source-*.tar.xz 2>/dev/null | head -n1)
	[ -n "$tarball" ] || fail "$deb has no usr/src/linux-source-*.tar.xz"
	tar -xJf "$tarball" -C "$src" --strip-components=1 || fail "cannot unpack $tarball"
	rm -rf "$cache/cdev-kernel-deb"
	touch "$src/.unpacked-$srcver"
fi
build_tiny_kernel cdev "$src" "$key"
