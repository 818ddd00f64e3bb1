/*
 * The vfio transport: mbxd as the user-space driver of a CXL mailbox, for
 * devices no kernel driver should own (a switch CCI, a BMC's view of a
 * memory device). open() runs before the privilege drop and does every
 * privileged step: the VFIO group and container (or the cdev and
 * iommufd), the device fd, the PCI config walk to the CXL Register
 * Locator, the BAR mapping. submit() is
 * then plain loads and stores on the mapped mailbox (vfio-mailbox.c), so
 * the sandbox needs no VFIO ioctl and no capability.
 *
 * Two ways to the device fd: the group/container API (Linux 6.1 has only
 * this one), and where the kernel offers it (CONFIG_VFIO_DEVICE_CDEV and
 * CONFIG_IOMMUFD, Linux 6.6+) the device's own node
 * /dev/vfio/devices/vfioN bound to an iommufd address space. The option
 * vfio_api (auto, group, cdev) picks one; auto prefers the cdev.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "../policy/catalog.h" /* opcode numbers and return codes only */
#include "mmio.h"
#include "transport.h"
#include "vfio-mailbox.h"

/* PCI config space (PCIe r6.0 7.5, 7.9): what the walk needs. */
#define VFIO_CFG_SIZE      4096
#define VFIO_CFG_EXT_START 0x100
#define VFIO_CFG_COMMAND   0x04
#define VFIO_CFG_MEMORY    0x0002 /* command: memory space enable */
#define VFIO_EXT_DSN       0x0003 /* Device Serial Number */
#define VFIO_EXT_DVSEC     0x0023
#define VFIO_EXT_CAPS_MAX  (VFIO_CFG_SIZE / 4) /* a loop in the list ends here */
/* CXL r3.1 8.1.9: the Register Locator DVSEC and its Device Registers block. */
#define VFIO_CXL_VENDOR    0x1e98
#define VFIO_DVSEC_REGLOC  0x0008
#define VFIO_REGLOC_BLOCKS 0x0c
#define VFIO_BLOCK_DEVICE  0x03
/* Class codes: CXL memory device 0502h; the switch CCI is 0C0Bh ("CXL Fabric Management"). */
#define VFIO_CLASS_CXL_MEM 0x0502
#define VFIO_BDF_LEN       12 /* "dddd:bb:dd.f" */

/*
 * The iommufd and VFIO cdev uapi (Linux 6.6 include/uapi/linux/iommufd.h
 * and vfio.h), under names of our own: Debian 12's headers (6.1) have
 * neither. The kernel accepts these first fields of structs later kernels
 * extended (attach's pasid, bind's token): it reads argsz/size.
 */
struct vfio_cdev_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};
struct vfio_cdev_bind {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
};
struct vfio_cdev_attach {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pt_id;
};
#define VFIO_CDEV_IOAS_ALLOC _IO(';', 0x81)                 /* IOMMU_IOAS_ALLOC */
#define VFIO_CDEV_BIND       _IO(VFIO_TYPE, VFIO_BASE + 18) /* VFIO_DEVICE_BIND_IOMMUFD */
#define VFIO_CDEV_ATTACH     _IO(VFIO_TYPE, VFIO_BASE + 19) /* VFIO_DEVICE_ATTACH_IOMMUFD_PT */
_Static_assert(sizeof(struct vfio_cdev_ioas_alloc) == 12, "iommu_ioas_alloc is 12 bytes");
_Static_assert(sizeof(struct vfio_cdev_bind) == 16, "vfio_device_bind_iommufd starts with 16");
_Static_assert(sizeof(struct vfio_cdev_attach) == 12, "vfio_device_attach_iommufd_pt: 12");
#if __has_include(<linux/iommufd.h>) /* newer headers: the numbers must agree */
#include <linux/iommufd.h>
_Static_assert(VFIO_CDEV_IOAS_ALLOC == IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC");
#endif
#ifdef VFIO_DEVICE_BIND_IOMMUFD
_Static_assert(VFIO_CDEV_BIND == VFIO_DEVICE_BIND_IOMMUFD, "VFIO_DEVICE_BIND_IOMMUFD");
_Static_assert(VFIO_CDEV_ATTACH == VFIO_DEVICE_ATTACH_IOMMUFD_PT, "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
#endif

/* Which API opens the device (option vfio_api). */
enum vfio_api { VFIO_USE_AUTO, VFIO_USE_GROUP, VFIO_USE_CDEV };

struct vfio {
	char sysfs[PATH_MAX / 4]; /* sysfs mount, "/sys" unless a test says otherwise */
	char devroot[PATH_MAX / 4];
	char bdf[VFIO_BDF_LEN + 1];
	uint8_t cfg[VFIO_CFG_SIZE];
	size_t cfg_len;
	int container, group, device, iommufd; /* -1 when not open */
	void *map;
	size_t map_len;
	struct mmio mmio;
	struct vfio_mbox mb;
	struct mbx_transport_info info;
};

static const char *const vfio_options[] = {
    "bdf",      "serial", "sysfs_root", "dev_root", "ready_timeout_ms", "background_timeout_s",
    "vfio_api", NULL,
};

static uint16_t vfio_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t vfio_le32(const uint8_t *p)
{
	return vfio_le16(p) | (uint32_t)vfio_le16(p + 2) << 16;
}

/* Whether s is a PCI address as sysfs spells it: dddd:bb:dd.f in lower-case hex. */
static bool vfio_bdf_valid(const char *s)
{
	static const char shape[] = "xxxx:xx:xx.x";

	if (strlen(s) != VFIO_BDF_LEN)
		return false;
	for (size_t i = 0; i < VFIO_BDF_LEN; i++)
		if (shape[i] == 'x' ? !strchr("0123456789abcdef", s[i]) || !s[i] : s[i] != shape[i])
			return false;
	return s[11] <= '7';
}

/* Reads a device's config space from sysfs: vfio-pci hides DVSECs in its own view. */
static int vfio_cfg_read(const char *sysfs, const char *bdf, uint8_t *cfg, size_t *len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/config", sysfs, bdf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, cfg, VFIO_CFG_SIZE, 0);
	close(fd);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

/*
 * Finds the next extended capability with id after offset from (0: the
 * first); returns its offset or 0. Bounded: a looping list ends.
 */
static size_t vfio_cfg_ext_find(const uint8_t *cfg, size_t len, uint16_t id, size_t from)
{
	size_t off = VFIO_CFG_EXT_START;
	bool past = from == 0;

	for (unsigned n = 0; n < VFIO_EXT_CAPS_MAX && off >= VFIO_CFG_EXT_START && off + 4 <= len;
	     n++) {
		uint32_t h = vfio_le32(cfg + off);

		if (h == 0 || h == UINT32_MAX)
			return 0;
		if (past && (h & 0xffff) == id)
			return off;
		if (off == from)
			past = true;
		off = (h >> 20) & 0xffc;
	}
	return 0;
}

/* The PCIe Device Serial Number, if the device has the capability. */
static bool vfio_cfg_serial(const uint8_t *cfg, size_t len, uint64_t *serial)
{
	size_t off = vfio_cfg_ext_find(cfg, len, VFIO_EXT_DSN, 0);

	if (!off || off + 12 > len)
		return false;
	*serial = vfio_le32(cfg + off + 4) | (uint64_t)vfio_le32(cfg + off + 8) << 32;
	return true;
}

/* Finds the Device Registers block in the CXL Register Locator DVSEC: its BAR and offset. */
static int vfio_cfg_regloc(const uint8_t *cfg, size_t len, unsigned *bir, uint64_t *offset)
{
	for (size_t off = vfio_cfg_ext_find(cfg, len, VFIO_EXT_DVSEC, 0); off;
	     off = vfio_cfg_ext_find(cfg, len, VFIO_EXT_DVSEC, off)) {
		uint32_t h1, dlen;

		if (off + VFIO_REGLOC_BLOCKS > len)
			break;
		h1 = vfio_le32(cfg + off + 4);
		dlen = h1 >> 20;
		if ((h1 & 0xffff) != VFIO_CXL_VENDOR ||
		    vfio_le16(cfg + off + 8) != VFIO_DVSEC_REGLOC)
			continue;
		if (dlen < VFIO_REGLOC_BLOCKS || off + dlen > len)
			return -EPROTO;
		for (size_t b = off + VFIO_REGLOC_BLOCKS; b + 8 <= off + dlen; b += 8) {
			uint32_t lo = vfio_le32(cfg + b), hi = vfio_le32(cfg + b + 4);

			if (((lo >> 8) & 0xff) != VFIO_BLOCK_DEVICE)
				continue;
			*bir = lo & 7;
			*offset = (lo & 0xffff0000u) | (uint64_t)hi << 32;
			return *bir <= 5 ? 0 : -EPROTO;
		}
		return -ENOENT;
	}
	return -ENODEV;
}

/* The last path element of a symlink under sysfs (a driver or group name); "" if none. */
static void vfio_link_name(const char *path, char *out, size_t outlen)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	char *slash;

	out[0] = '\0';
	if (n <= 0)
		return;
	target[n] = '\0';
	slash = strrchr(target, '/');
	slash = slash ? slash + 1 : target;
	n = (ssize_t)strlen(slash);
	if ((size_t)n >= outlen)
		n = (ssize_t)outlen - 1;
	memcpy(out, slash, (size_t)n);
	out[n] = '\0';
}

/* The driver bound to a PCI device, "" when none. */
static void vfio_driver(const char *sysfs, const char *bdf, char *out, size_t outlen)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/driver", sysfs, bdf);
	vfio_link_name(path, out, outlen);
}

/* Drivers that leave an IOMMU group viable for VFIO (as the kernel's vfio core judges). */
static bool vfio_driver_harmless(const char *drv)
{
	return !drv[0] || !strcmp(drv, "vfio-pci") || !strcmp(drv, "pcieport") ||
	       !strcmp(drv, "pci-stub");
}

/* Names the devices of group that keep it from being viable: "0000:0e:00.0 (cxl_pci)". */
static void vfio_group_blockers(const char *sysfs, const char *group, char *out, size_t outlen)
{
	char path[PATH_MAX], drv[64];
	struct dirent *e;
	size_t used = 0;
	DIR *d;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/kernel/iommu_groups/%s/devices", sysfs, group);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) && used < outlen) {
		if (!vfio_bdf_valid(e->d_name))
			continue;
		vfio_driver(sysfs, e->d_name, drv, sizeof(drv));
		if (vfio_driver_harmless(drv))
			continue;
		used += (size_t)snprintf(out + used, outlen - used, "%s%s (%s)", used ? ", " : "",
					 e->d_name, drv);
	}
	closedir(d);
}

/* The device's VFIO cdev name ("vfio3") from sysfs; -ENOENT when the kernel made none. */
static int vfio_cdev_find(const char *sysfs, const char *bdf, char *name, size_t namelen)
{
	char path[PATH_MAX];
	struct dirent *e;
	int rc = -ENOENT;
	DIR *d;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/vfio-dev", sysfs, bdf);
	d = opendir(path);
	if (!d)
		return -ENOENT;
	while ((e = readdir(d))) {
		const char *n = e->d_name;

		if (strncmp(n, "vfio", 4) != 0 || !n[4] || strlen(n) >= namelen ||
		    strspn(n + 4, "0123456789") != strlen(n + 4))
			continue;
		snprintf(name, namelen, "%s", n);
		rc = 0;
		break;
	}
	closedir(d);
	return rc;
}

/* The command name of process pid ("mbxd"), or "?". */
static void vfio_comm(const char *pid, char *out, size_t outlen)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%.20s/comm", pid);
	snprintf(out, outlen, "?");
	f = fopen(path, "re");
	if (f && fgets(out, (int)outlen, f))
		out[strcspn(out, "\n")] = '\0';
	if (f)
		fclose(f);
}

/* Appends "pid N (comm)" for each process with path open (procfs, read as root before the drop). */
static void vfio_holders(const char *path, char *out, size_t outlen)
{
	char fdpath[64], target[PATH_MAX], comm[32];
	struct dirent *p, *f;
	size_t used = strlen(out);
	DIR *procs, *fds;

	procs = opendir("/proc");
	while (procs && (p = readdir(procs)) && used + 1 < outlen) {
		bool held = false;

		if (strspn(p->d_name, "0123456789") != strlen(p->d_name))
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/%.20s/fd", p->d_name);
		fds = opendir(fdpath);
		while (fds && !held && (f = readdir(fds))) {
			ssize_t n;

			snprintf(fdpath, sizeof(fdpath), "/proc/%.20s/fd/%.20s", p->d_name,
				 f->d_name);
			n = readlink(fdpath, target, sizeof(target) - 1);
			held = n > 0 && (target[n] = '\0', !strcmp(target, path));
		}
		if (fds)
			closedir(fds);
		if (!held)
			continue;
		vfio_comm(p->d_name, comm, sizeof(comm));
		used += (size_t)snprintf(out + used, outlen - used, "%spid %s (%s)",
					 used ? ", " : "", p->d_name, comm);
	}
	if (procs)
		closedir(procs);
}

/*
 * Fills err for an open refused because another process holds the device:
 * VFIO gives a device to one user at a time, and while a device is bound
 * through its cdev its group cannot be opened (and the other way round).
 * The kernel says "Device or resource busy" or, binding a cdev bound
 * elsewhere, "Invalid argument"; this names the holder where procfs shows it.
 */
static void vfio_in_use_error(const char *sysfs, const char *devroot, const char *bdf,
			      const char *what, int e, char *err, size_t errlen)
{
	char path[PATH_MAX], name[32], who[160] = "";

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/iommu_group", sysfs, bdf);
	vfio_link_name(path, name, sizeof(name));
	if (name[0]) {
		snprintf(path, sizeof(path), "%s/vfio/%s", devroot, name);
		vfio_holders(path, who, sizeof(who));
	}
	if (vfio_cdev_find(sysfs, bdf, name, sizeof(name)) == 0) {
		snprintf(path, sizeof(path), "%s/vfio/devices/%s", devroot, name);
		vfio_holders(path, who, sizeof(who));
	}
	snprintf(err, errlen,
		 "%s is in use by %s (VFIO gives a device to one process at a time, through its "
		 "group or its cdev): %s: %s",
		 bdf, who[0] ? who : "another process", what, strerror(e));
}

/* Finds the PCI device whose Device Serial Number is serial. */
static int vfio_find_serial(struct vfio *v, uint64_t serial, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/bus/pci/devices", v->sysfs);
	d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d))) {
		uint64_t s;

		if (!vfio_bdf_valid(e->d_name) ||
		    vfio_cfg_read(v->sysfs, e->d_name, v->cfg, &v->cfg_len) < 0 ||
		    !vfio_cfg_serial(v->cfg, v->cfg_len, &s) || s != serial)
			continue;
		/* vfio_bdf_valid accepted it: exactly DDDD:BB:DD.F, so it fits. */
		snprintf(v->bdf, sizeof(v->bdf), "%.*s", (int)sizeof(v->bdf) - 1, e->d_name);
		closedir(d);
		return 0;
	}
	closedir(d);
	snprintf(err, errlen,
		 "no PCI device with serial 0x%" PRIx64
		 " under %s (none has that Device Serial Number)",
		 serial, path);
	return -ENODEV;
}

/* Reads bdf or serial (exactly one names the device) without looking either up. */
static int vfio_read_target(const struct mbx_transport_config *cfg, const char **bdf,
			    uint64_t *serial, char *err, size_t errlen)
{
	*bdf = transport_option(cfg, "bdf");
	*serial = 0;
	if (!*bdf == !transport_option(cfg, "serial"))
		return transport_option_error(
		    cfg, NULL, err, errlen,
		    "the vfio transport needs exactly one of bdf and serial");
	if (*bdf && !vfio_bdf_valid(*bdf))
		return transport_option_error(
		    cfg, "bdf", err, errlen, "\"%s\" is not a PCI address like 0000:0d:00.0", *bdf);
	return transport_option_u64(cfg, "serial", 0, UINT64_MAX, serial, err, errlen);
}

/* Finds the device that bdf or serial names and reads its config space. */
static int vfio_open_target(struct vfio *v, const struct mbx_transport_config *cfg, char *err,
			    size_t errlen)
{
	const char *bdf = transport_option(cfg, "bdf");
	uint64_t serial = 0;
	int rc;

	if ((rc = vfio_read_target(cfg, &bdf, &serial, err, errlen)) < 0)
		return rc;
	if (!bdf)
		return vfio_find_serial(v, serial, err, errlen);
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	rc = vfio_cfg_read(v->sysfs, v->bdf, v->cfg, &v->cfg_len);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot read %s/bus/pci/devices/%s/config: %s",
			 cfg->device_name, v->sysfs, v->bdf, strerror(-rc));
		return rc;
	}
	return 0;
}

/* Checks the device is a CXL component bound to vfio-pci; reads what describe() reports. */
static int vfio_check_device(struct vfio *v, char *err, size_t errlen)
{
	char drv[64];
	uint64_t serial;
	uint16_t cls;

	if (v->cfg_len <= VFIO_CFG_EXT_START) {
		snprintf(err, errlen,
			 "%s: only %zu bytes of config space readable (extended config space needs "
			 "root)",
			 v->bdf, v->cfg_len);
		return -EACCES;
	}
	vfio_driver(v->sysfs, v->bdf, drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci") != 0) {
		snprintf(err, errlen,
			 "%s is bound to %s, not vfio-pci (unbind it, write vfio-pci to its "
			 "driver_override, then write %s to /sys/bus/pci/drivers_probe)",
			 v->bdf, drv[0] ? drv : "no driver", v->bdf);
		return -EBUSY;
	}
	cls = vfio_le16(v->cfg + 0x0a);
	snprintf(v->info.kind, sizeof(v->info.kind), "%s",
		 cls == VFIO_CLASS_CXL_MEM ? "memdev" : "switch");
	snprintf(v->info.model, sizeof(v->info.model), "PCI %04x:%04x class %04x",
		 vfio_le16(v->cfg), vfio_le16(v->cfg + 2), cls);
	if (vfio_cfg_serial(v->cfg, v->cfg_len, &serial))
		snprintf(v->info.serial, sizeof(v->info.serial), "0x%016" PRIx64, serial);
	return 0;
}

/* Opens the container and the device's group; names the devices that block a group. */
static int vfio_open_group(struct vfio *v, char *err, size_t errlen)
{
	struct vfio_group_status gs = {.argsz = sizeof(gs)};
	char path[PATH_MAX], group[32], blockers[256];

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/iommu_group", v->sysfs, v->bdf);
	vfio_link_name(path, group, sizeof(group));
	if (!group[0]) {
		snprintf(err, errlen,
			 "%s has no IOMMU group: the kernel runs without an IOMMU "
			 "(intel_iommu=on, or a vIOMMU under QEMU); no-IOMMU VFIO is not supported",
			 v->bdf);
		return -ENODEV;
	}
	snprintf(path, sizeof(path), "%s/vfio/vfio", v->devroot);
	v->container = open(path, O_RDWR | O_CLOEXEC);
	if (v->container < 0) {
		snprintf(err, errlen, "%s: %s (is the vfio module loaded?)", path, strerror(errno));
		return -errno;
	}
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		snprintf(err, errlen, "%s: not VFIO API version %d", path, VFIO_API_VERSION);
		return -ENOTSUP;
	}
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
		snprintf(err, errlen, "%s: no type1v2 IOMMU backend (is vfio_iommu_type1 loaded?)",
			 path);
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "%s/vfio/%s", v->devroot, group);
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0) {
		int e = errno;

		if (e == EBUSY)
			vfio_in_use_error(v->sysfs, v->devroot, v->bdf, path, e, err, errlen);
		else
			snprintf(err, errlen, "%s (IOMMU group of %s): %s", path, v->bdf,
				 strerror(e));
		return -e;
	}
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &gs) < 0 ||
	    !(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		vfio_group_blockers(v->sysfs, group, blockers, sizeof(blockers));
		snprintf(err, errlen, "IOMMU group %s of %s is not viable: %s", group, v->bdf,
			 blockers[0] ? blockers : "a device in it is bound to a host driver");
		return -EBUSY;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0 ||
	    ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
		snprintf(err, errlen, "IOMMU group %s: cannot attach a type1v2 container: %s",
			 group, strerror(errno));
		return -errno;
	}
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->device < 0) {
		snprintf(err, errlen, "VFIO_GROUP_GET_DEVICE_FD %s: %s", v->bdf, strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * Decides the API: the cdev when the device has a vfio-dev entry with a
 * node under /dev/vfio/devices (Linux 6.1 has the sysfs entry but no node)
 * and /dev/iommu exists (auto or cdev), else the group (auto or group); a
 * forced cdev that is missing is refused naming what is missing.
 */
static int vfio_pick_api(const char *sysfs, const char *devroot, const char *bdf,
			 enum vfio_api want, char *cdev, size_t cdevlen, char *err, size_t errlen)
{
	char node[PATH_MAX], iommu[PATH_MAX];
	bool has_name, has_node, has_iommufd;

	if (want == VFIO_USE_GROUP)
		return VFIO_USE_GROUP;
	has_name = vfio_cdev_find(sysfs, bdf, cdev, cdevlen) == 0;
	snprintf(node, sizeof(node), "%s/vfio/devices/%s", devroot, has_name ? cdev : "vfioN");
	snprintf(iommu, sizeof(iommu), "%s/iommu", devroot);
	has_node = has_name && access(node, F_OK) == 0;
	has_iommufd = access(iommu, F_OK) == 0;
	if (has_node && has_iommufd)
		return VFIO_USE_CDEV;
	if (want == VFIO_USE_AUTO)
		return VFIO_USE_GROUP;
	if (!has_name)
		snprintf(err, errlen,
			 "vfio_api cdev: %s/bus/pci/devices/%s/vfio-dev names no vfioN", sysfs,
			 bdf);
	else if (!has_node)
		snprintf(err, errlen,
			 "vfio_api cdev: %s does not exist (a kernel without "
			 "CONFIG_VFIO_DEVICE_CDEV)",
			 node);
	else
		snprintf(err, errlen,
			 "vfio_api cdev: %s does not exist (a kernel without CONFIG_IOMMUFD, or "
			 "the iommufd module not loaded)",
			 iommu);
	return -ENOENT;
}

/*
 * Fills err for a failed VFIO_DEVICE_BIND_IOMMUFD, naming the devices that
 * block the group (Linux 6.12 says EPERM then) or the process that holds the
 * device; both return -EBUSY, as the group API does.
 */
static int vfio_cdev_bind_error(struct vfio *v, const char *path, int e, char *err, size_t errlen)
{
	char gpath[PATH_MAX], group[32], blockers[256] = "";

	snprintf(gpath, sizeof(gpath), "%s/bus/pci/devices/%s/iommu_group", v->sysfs, v->bdf);
	vfio_link_name(gpath, group, sizeof(group));
	if (group[0])
		vfio_group_blockers(v->sysfs, group, blockers, sizeof(blockers));
	if (blockers[0]) {
		snprintf(err, errlen, "IOMMU group %s of %s is not viable: %s (%s: %s)", group,
			 v->bdf, blockers, path, strerror(e));
		return -EBUSY;
	}
	if (e == EBUSY || e == EINVAL) {
		vfio_in_use_error(v->sysfs, v->devroot, v->bdf, path, e, err, errlen);
		return -EBUSY;
	}
	snprintf(err, errlen, "%s: VFIO_DEVICE_BIND_IOMMUFD: %s", path, strerror(e));
	return -e;
}

/* Opens the device's cdev, binds it to a new iommufd address space (no DMA is ever mapped). */
static int vfio_open_cdev(struct vfio *v, const char *cdev, char *err, size_t errlen)
{
	struct vfio_cdev_ioas_alloc ioas = {.size = sizeof(ioas)};
	struct vfio_cdev_bind bind = {.argsz = sizeof(bind)};
	struct vfio_cdev_attach at = {.argsz = sizeof(at)};
	char path[PATH_MAX], ipath[PATH_MAX];
	int e;

	snprintf(path, sizeof(path), "%s/vfio/devices/%s", v->devroot, cdev);
	snprintf(ipath, sizeof(ipath), "%s/iommu", v->devroot);
	v->device = open(path, O_RDWR | O_CLOEXEC);
	if (v->device < 0) {
		snprintf(err, errlen, "%s (VFIO cdev of %s): %s", path, v->bdf, strerror(errno));
		return -errno;
	}
	v->iommufd = open(ipath, O_RDWR | O_CLOEXEC);
	if (v->iommufd < 0 || ioctl(v->iommufd, VFIO_CDEV_IOAS_ALLOC, &ioas) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s: %s", ipath,
			 v->iommufd < 0 ? "open" : "IOMMU_IOAS_ALLOC", strerror(e));
		return -e;
	}
	bind.iommufd = v->iommufd;
	if (ioctl(v->device, VFIO_CDEV_BIND, &bind) < 0) {
		e = errno;
		close(v->device); /* not to be named among the holders */
		v->device = -1;
		return vfio_cdev_bind_error(v, path, e, err, errlen);
	}
	at.pt_id = ioas.out_ioas_id;
	if (ioctl(v->device, VFIO_CDEV_ATTACH, &at) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT (IOAS %u): %s", path,
			 ioas.out_ioas_id, strerror(e));
		return -e;
	}
	return 0;
}

/* Gets the device fd through the API vfio_api asks for; the model says which one served. */
static int vfio_open_device(struct vfio *v, enum vfio_api want, char *err, size_t errlen)
{
	char cdev[32] = "", group[32], path[PATH_MAX];
	size_t used = strlen(v->info.model);
	int api =
	    vfio_pick_api(v->sysfs, v->devroot, v->bdf, want, cdev, sizeof(cdev), err, errlen);
	int rc;

	if (api < 0)
		return api;
	if (api == VFIO_USE_CDEV) {
		rc = vfio_open_cdev(v, cdev, err, errlen);
		snprintf(v->info.model + used, sizeof(v->info.model) - used, ", vfio cdev %s",
			 cdev);
		return rc;
	}
	rc = vfio_open_group(v, err, errlen);
	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/iommu_group", v->sysfs, v->bdf);
	vfio_link_name(path, group, sizeof(group));
	snprintf(v->info.model + used, sizeof(v->info.model) - used, ", vfio group %s", group);
	return rc;
}

/* Reads vfio_api: auto (the cdev where the kernel offers it), group or cdev. */
static int vfio_open_api(const struct mbx_transport_config *cfg, enum vfio_api *api, char *err,
			 size_t errlen)
{
	static const char *const names[] = {"auto", "group", "cdev"};
	const char *s = transport_option(cfg, "vfio_api");

	*api = VFIO_USE_AUTO;
	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*api = (enum vfio_api)i;
			return 0;
		}
	return transport_option_error(cfg, "vfio_api", err, errlen,
				      "\"%s\" is not auto, group or cdev", s);
}

/* Turns memory decoding on through VFIO's config region if the reset left it off. */
static int vfio_enable_memory(struct vfio *v, char *err, size_t errlen)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX};
	uint16_t cmd;

	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 ||
	    pread(v->device, &cmd, 2, (off_t)(ri.offset + VFIO_CFG_COMMAND)) != 2) {
		snprintf(err, errlen, "%s: cannot read the command register: %s", v->bdf,
			 strerror(errno));
		return -EIO;
	}
	if (cmd & VFIO_CFG_MEMORY)
		return 0;
	cmd |= VFIO_CFG_MEMORY;
	if (pwrite(v->device, &cmd, 2, (off_t)(ri.offset + VFIO_CFG_COMMAND)) != 2) {
		snprintf(err, errlen, "%s: cannot enable memory decoding: %s", v->bdf,
			 strerror(errno));
		return -EIO;
	}
	return 0;
}

/* Maps the BAR holding the Device Registers block; points the mmio at the block. */
static int vfio_map_registers(struct vfio *v, char *err, size_t errlen)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri)};
	long page = sysconf(_SC_PAGESIZE);
	uint64_t off, start;
	unsigned bir;
	int rc = vfio_cfg_regloc(v->cfg, v->cfg_len, &bir, &off);

	if (rc < 0) {
		snprintf(
		    err, errlen, "%s: %s", v->bdf,
		    rc == -ENODEV   ? "no CXL Register Locator DVSEC (1E98h, id 8) in config space"
		    : rc == -ENOENT ? "the Register Locator names no Device Registers block (03h)"
				    : "malformed CXL Register Locator DVSEC");
		return rc;
	}
	ri.index = VFIO_PCI_BAR0_REGION_INDEX + bir;
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0) {
		snprintf(err, errlen, "%s: BAR%u region info: %s", v->bdf, bir, strerror(errno));
		return -errno;
	}
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP) || off >= ri.size) {
		snprintf(err, errlen,
			 "%s: BAR%u (%llu bytes, flags 0x%x) cannot map the device registers at "
			 "0x%" PRIx64,
			 v->bdf, bir, (unsigned long long)ri.size, ri.flags, off);
		return -ENODEV;
	}
	start = off & ~(uint64_t)(page - 1);
	v->map_len = (size_t)(ri.size - start);
	v->map = mmap(NULL, v->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, v->device,
		      (off_t)(ri.offset + start));
	if (v->map == MAP_FAILED) {
		v->map = NULL;
		snprintf(err, errlen, "%s: mmap of BAR%u: %s", v->bdf, bir, strerror(errno));
		return -errno;
	}
	mmio_map_init(&v->mmio, (volatile uint8_t *)v->map + (off - start),
		      v->map_len - (off - start));
	return 0;
}

/* The serial from generic Identify when config space has none; Identify may be unsupported. */
static void vfio_identify(struct vfio *v)
{
	uint8_t out[VMBOX_PAYLOAD_LOG2_MIN * 32];
	struct mbx_transport_cmd c = {
	    .opcode = CXL_OP_IDENTIFY, .out = out, .out_cap = sizeof(out)};

	if (v->info.serial[0])
		return;
	if (vfio_mbox_submit(&v->mb, &c) == MBX_XPORT_OK && c.cxl_rc == CXL_RC_SUCCESS &&
	    c.out_len >= 16)
		snprintf(v->info.serial, sizeof(v->info.serial), "0x%016" PRIx64,
			 vfio_le32(out + 8) | (uint64_t)vfio_le32(out + 12) << 32);
}

static void vfio_close(void *priv);

/* Reads the paths and timeouts the options set. */
static int vfio_open_options(struct vfio *v, const struct mbx_transport_config *cfg,
			     uint64_t *ready_ms, uint64_t *bg_s, char *err, size_t errlen)
{
	const char *sysfs = transport_option(cfg, "sysfs_root");
	const char *dev = transport_option(cfg, "dev_root");
	int rc;

	if (sysfs && strlen(sysfs) >= sizeof(v->sysfs))
		return transport_option_error(cfg, "sysfs_root", err, errlen,
					      "longer than %zu characters", sizeof(v->sysfs) - 1);
	if (dev && strlen(dev) >= sizeof(v->devroot))
		return transport_option_error(cfg, "dev_root", err, errlen,
					      "longer than %zu characters", sizeof(v->devroot) - 1);
	snprintf(v->sysfs, sizeof(v->sysfs), "%s", sysfs ? sysfs : "/sys");
	snprintf(v->devroot, sizeof(v->devroot), "%s", dev ? dev : "/dev");
	*ready_ms = 10000;
	*bg_s = 24 * 3600;
	if ((rc = transport_option_u64(cfg, "ready_timeout_ms", 0, 300000, ready_ms, err, errlen)) <
		0 ||
	    (rc = transport_option_u64(cfg, "background_timeout_s", 1, 30 * 24 * 3600, bg_s, err,
				       errlen)) < 0)
		return rc;
	return 0;
}

/* Checks the options as vfio_open reads them, touching no device or file. */
static int vfio_check(const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	uint64_t ready_ms, bg_s, serial;
	enum vfio_api api;
	const char *bdf;
	struct vfio v;
	int rc;

	memset(&v, 0, sizeof(v));
	if ((rc = vfio_open_options(&v, cfg, &ready_ms, &bg_s, err, errlen)) < 0 ||
	    (rc = vfio_open_api(cfg, &api, err, errlen)) < 0)
		return rc;
	return vfio_read_target(cfg, &bdf, &serial, err, errlen);
}

/* Opens the device: everything privileged happens here, before the sandbox. */
static int vfio_open(void *priv, const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	struct vfio *v = priv;
	uint64_t ready_ms, bg_s;
	enum vfio_api api;
	char why[160];
	int rc;

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->device = v->iommufd = -1;
	if ((rc = vfio_open_options(v, cfg, &ready_ms, &bg_s, err, errlen)) < 0 ||
	    (rc = vfio_open_api(cfg, &api, err, errlen)) < 0 ||
	    (rc = vfio_open_target(v, cfg, err, errlen)) < 0 ||
	    (rc = vfio_check_device(v, err, errlen)) < 0 ||
	    (rc = vfio_open_device(v, api, err, errlen)) < 0 ||
	    (rc = vfio_enable_memory(v, err, errlen)) < 0 ||
	    (rc = vfio_map_registers(v, err, errlen)) < 0)
		goto fail;
	if ((rc = vfio_mbox_probe(&v->mb, &v->mmio, why, sizeof(why))) < 0 ||
	    (rc = vfio_mbox_wait_ready(&v->mb, (uint32_t)ready_ms, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "%s: %s", v->bdf, why);
		goto fail;
	}
	v->mb.ready_timeout_ms = (uint32_t)ready_ms;
	v->mb.bg_timeout_ms = bg_s * 1000;
	v->info.payload_max = v->mb.payload_size;
	vfio_identify(v);
	return 0;
fail:
	vfio_close(v);
	return rc;
}

/* Unmaps and closes, the device before its iommufd; the device release resets the function. */
static void vfio_close(void *priv)
{
	struct vfio *v = priv;

	if (v->map)
		munmap(v->map, v->map_len);
	v->map = NULL;
	if (v->device >= 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	if (v->iommufd >= 0)
		close(v->iommufd);
	v->device = v->group = v->container = v->iommufd = -1;
}

static void vfio_describe(void *priv, struct mbx_transport_info *info)
{
	struct vfio *v = priv;

	*info = v->info;
	info->payload_max = v->mb.payload_size;
	info->kernel_owned = false;
	info->never_blocks = false;
}

static int vfio_submit(void *priv, struct mbx_transport_cmd *cmd)
{
	struct vfio *v = priv;

	return vfio_mbox_submit(&v->mb, cmd);
}

/*
 * No ioctls and no capabilities after the drop: every VFIO ioctl runs in
 * open(), and submit only touches the mapping (see the top of this file).
 */
const struct mbx_transport_ops vfio_transport_ops = {
    .name = "vfio",
    .priv_size = sizeof(struct vfio),
    .options = vfio_options,
    .ioctls = NULL,
    .n_ioctls = 0,
    .caps = 0,
    .check = vfio_check,
    .open = vfio_open,
    .close = vfio_close,
    .describe = vfio_describe,
    .submit = vfio_submit,
};
