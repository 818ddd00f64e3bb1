/*
 * The chardev transport: a CXL memory device driven by the Linux kernel,
 * reached through its character device /dev/cxl/memN.
 *
 * The kernel does not pass opcodes through: it offers a table of named
 * commands (CXL_MEM_QUERY_COMMANDS), each bound to one opcode, plus a RAW
 * command that distro kernels disable (CONFIG_CXL_MEM_RAW_COMMANDS, kernel
 * lockdown). Each opcode therefore goes by its named id when the running
 * kernel reports one, and by RAW otherwise; the kernel's refusals come back
 * as what they are (EPERM: raw disabled, EBUSY: the kernel owns the command,
 * ENOTTY: the device does not support it), never as a generic I/O error.
 *
 * A memdev's name changes across rebinds and boots, so the device is best
 * configured by serial number, found under /sys/bus/cxl/devices/memN/serial.
 *
 * Sanitize and Secure Erase never pass the chardev: the kernel offers them
 * as sysfs attributes (security/sanitize, security/erase, from 6.5). They
 * are routed there, and while a routed Sanitize runs this transport answers
 * Background Operation Status (0002h, RAW-only) from security/state, so the
 * broker follows it like any background operation. The attributes are
 * root-only: they are opened at open(), before mbxd drops its privileges.
 * Transfer FW goes to the firmware upload class where the device allows it
 * (chardev-fw.c).
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
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/cxl_mem.h>

#include "chardev-fw.h"
#include "transport.h"

#define CHARDEV_VARIABLE    0xffffffffu /* the kernel's "variable size" in size_in/size_out */
#define CHARDEV_IDS         64u         /* ids we keep query results for */
#define CHARDEV_QUERY_MAX   256u        /* more entries than any kernel has: a broken answer */
#define CHARDEV_PAYLOAD_MIN 256u        /* the smallest mailbox the spec allows (8.2.8.4.3) */
#define CHARDEV_DEV_DIR     "/dev/cxl"
#define CHARDEV_SYSFS_ROOT  "/sys"

#define CHARDEV_OP_IDENTIFY          0x0001 /* generic Identify: RAW only */
#define CHARDEV_OP_IDENTIFY_MEMDEV   0x4000
#define CHARDEV_IDENTIFY_SIZE        18   /* CXL r3.1 Table 8-37 */
#define CHARDEV_IDENTIFY_MEMDEV_SIZE 0x43 /* CXL r3.1 Table 8-127 */
#define CHARDEV_FW_REVISION_SIZE     16

#define CHARDEV_OP_BG_STATUS     0x0002 /* Background Operation Status */
#define CHARDEV_OP_REQUEST_ABORT 0x0005
#define CHARDEV_OP_FW_INFO       0x0200
#define CHARDEV_FW_INFO_SIZE     0x50   /* CXL r3.1 Table 8-56 */
#define CHARDEV_BG_STATUS_SIZE   8      /* CXL r3.1 Table 8-37 */
#define CHARDEV_RC_BACKGROUND    0x0001 /* Background Command Started */
#define CHARDEV_RC_BUSY          0x0006
#define CHARDEV_ESTIMATE_HALF_S  30 /* the estimate says 50% after this long */

#define CHARDEV_MSG_RAW                                                                            \
	"raw commands disabled in this kernel (CONFIG_CXL_MEM_RAW_COMMANDS / lockdown)"
#define CHARDEV_MSG_OWNED       "command owned by the kernel driver"
#define CHARDEV_MSG_UNSUPPORTED "not supported by this device"

/*
 * The kernel's named commands: id (the enum order of include/uapi/linux/
 * cxl_mem.h) and the opcode the kernel binds it to (drivers/cxl/core/mbox.c).
 * Which of them the running kernel offers is learnt at open.
 */
struct chardev_named {
	uint32_t id;
	uint16_t opcode;
	const char *name;
};

static const struct chardev_named chardev_named[] = {
    {CXL_MEM_COMMAND_ID_IDENTIFY, 0x4000, "Identify Memory Device"},
    {CXL_MEM_COMMAND_ID_GET_SUPPORTED_LOGS, 0x0400, "Get Supported Logs"},
    {CXL_MEM_COMMAND_ID_GET_FW_INFO, 0x0200, "Get FW Info"},
    {CXL_MEM_COMMAND_ID_GET_PARTITION_INFO, 0x4100, "Get Partition Info"},
    {CXL_MEM_COMMAND_ID_GET_LSA, 0x4102, "Get LSA"},
    {CXL_MEM_COMMAND_ID_GET_HEALTH_INFO, 0x4200, "Get Health Info"},
    {CXL_MEM_COMMAND_ID_GET_LOG, 0x0401, "Get Log"},
    {CXL_MEM_COMMAND_ID_SET_PARTITION_INFO, 0x4101, "Set Partition Info"},
    {CXL_MEM_COMMAND_ID_SET_LSA, 0x4103, "Set LSA"},
    {CXL_MEM_COMMAND_ID_GET_ALERT_CONFIG, 0x4201, "Get Alert Configuration"},
    {CXL_MEM_COMMAND_ID_SET_ALERT_CONFIG, 0x4202, "Set Alert Configuration"},
    {CXL_MEM_COMMAND_ID_GET_SHUTDOWN_STATE, 0x4203, "Get Shutdown State"},
    {CXL_MEM_COMMAND_ID_SET_SHUTDOWN_STATE, 0x4204, "Set Shutdown State"},
    {CXL_MEM_COMMAND_ID_GET_POISON, 0x4300, "Get Poison List"},
    {CXL_MEM_COMMAND_ID_INJECT_POISON, 0x4301, "Inject Poison"},
    {CXL_MEM_COMMAND_ID_CLEAR_POISON, 0x4302, "Clear Poison"},
    {CXL_MEM_COMMAND_ID_GET_SCAN_MEDIA_CAPS, 0x4303, "Get Scan Media Capabilities"},
    {CXL_MEM_COMMAND_ID_SCAN_MEDIA, 0x4304, "Scan Media"},
    {CXL_MEM_COMMAND_ID_GET_SCAN_MEDIA, 0x4305, "Get Scan Media Results"},
};

#define CHARDEV_N_NAMED (sizeof(chardev_named) / sizeof(chardev_named[0]))

/*
 * The kernel's sysfs routes for operations it keeps off the chardev. attr is
 * under the memdev's sysfs folder; writing "1" starts the operation. The
 * kernel shows an attribute only when the device's CEL lists the opcode.
 */
struct chardev_sysfs {
	uint16_t opcode;
	const char *name;
	const char *attr;
	const char *what; /* for messages: "sanitize through sysfs ..." */
	bool background;  /* the write returns at once; security/state says "sanitize" until done */
};

static const struct chardev_sysfs chardev_sysfs[] = {
    {0x4400, "Sanitize", "security/sanitize", "sanitize", true},
    {0x4401, "Secure Erase", "security/erase", "secure erase", false},
};

#define CHARDEV_N_SYSFS    (sizeof(chardev_sysfs) / sizeof(chardev_sysfs[0]))
#define CHARDEV_STATE_ATTR "security/state"

/* What the running kernel said about one command id. */
struct chardev_kcmd {
	bool present;
	uint32_t flags; /* 0 on 6.1; from 6.3 bit 0 enabled, bit 1 exclusive (EBUSY) */
	uint32_t size_in;
	uint32_t size_out;
};

/* How one opcode reaches the kernel. */
struct chardev_route {
	uint32_t id;      /* a named id, or CXL_MEM_COMMAND_ID_RAW */
	const char *name; /* the named command, or "RAW" */
	uint32_t size_in; /* CHARDEV_VARIABLE unless the kernel fixes it */
};

struct chardev {
	int fd;
	char path[PATH_MAX];
	char sysdir[PATH_MAX]; /* the memdev's sysfs folder; "" if not found */
	struct chardev_kcmd kcmd[CHARDEV_IDS];
	struct mbx_transport_info info;
	int sysfs_fd[CHARDEV_N_SYSFS];  /* each route's attribute, opened for writing; -1 */
	int sysfs_err[CHARDEV_N_SYSFS]; /* why not: the errno of that open */
	bool security_dir;              /* the kernel has the security/ group at all */
	int state_fd;                   /* security/state; -1 */
	uint16_t bg_opcode;             /* the routed background operation running; 0 none */
	struct timespec bg_start;
	struct chardev_fw fw; /* Transfer FW by the firmware upload class */
};

static const char *const chardev_options[] = {"path", "serial", "sysfs_root", "firmware_upload",
					      NULL};

static const unsigned long chardev_ioctls[] = {CXL_MEM_QUERY_COMMANDS, CXL_MEM_SEND_COMMAND};

/* Parses a true/false option; a missing one is false. */
static int chardev_option_bool(const struct mbx_transport_config *cfg, const char *key, bool *out,
			       char *err, size_t errlen)
{
	const char *v = transport_option(cfg, key);

	*out = false;
	if (!v || strcmp(v, "false") == 0)
		return 0;
	if (strcmp(v, "true") == 0) {
		*out = true;
		return 0;
	}
	return transport_option_error(cfg, key, err, errlen, "\"%s\" is not true or false", v);
}

/* Reads a small sysfs attribute into buf without its trailing newline. */
static int chardev_read_attr(const char *dir, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, attr) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* Reads a sysfs attribute holding one unsigned number (decimal or 0x). */
static int chardev_read_u64(const char *dir, const char *attr, uint64_t *out)
{
	char buf[64], *end;
	int rc = chardev_read_attr(dir, attr, buf, sizeof(buf));

	if (rc < 0)
		return rc;
	errno = 0;
	*out = strtoull(buf, &end, 0);
	if (errno || end == buf || *end || buf[0] == '-')
		return -EINVAL;
	return 0;
}

/* Whether name is "mem" followed by digits only: a memdev, not a port or decoder. */
static bool chardev_is_memdev_name(const char *name)
{
	if (strncmp(name, "mem", 3) != 0 || !name[3])
		return false;
	for (const char *p = name + 3; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/* Finds the memdev whose serial attribute equals serial; its name goes to name. */
static int chardev_find_serial(const char *sysfs_root, uint64_t serial, char *name, size_t len,
			       char *err, size_t errlen)
{
	char devices[PATH_MAX], dir[PATH_MAX];
	struct dirent *e;
	unsigned seen = 0, found = 0;
	DIR *d;

	if ((size_t)snprintf(devices, sizeof(devices), "%s/bus/cxl/devices", sysfs_root) >=
	    sizeof(devices)) {
		transport_msg(err, errlen, "sysfs_root: \"%s\" is too long", sysfs_root);
		return -ENAMETOOLONG;
	}
	d = opendir(devices);
	if (!d) {
		int rc = -errno;

		transport_msg(err, errlen, "%s: %s (is the cxl_mem driver loaded?)", devices,
			      strerror(-rc));
		return rc;
	}
	while ((e = readdir(d))) {
		uint64_t s;

		if (!chardev_is_memdev_name(e->d_name))
			continue;
		seen++;
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", devices, e->d_name) >=
			sizeof(dir) ||
		    chardev_read_u64(dir, "serial", &s) < 0 || s != serial)
			continue;
		if (found++ == 0 && (size_t)snprintf(name, len, "%s", e->d_name) >= len)
			found = 0; /* longer than any name we could open */
	}
	closedir(d);
	if (found == 1)
		return 0;
	if (found > 1)
		transport_msg(err, errlen,
			      "%s: %u memory devices report serial 0x%" PRIx64 "; use path:",
			      devices, found, serial);
	else
		transport_msg(err, errlen,
			      "%s: no memory device with serial 0x%" PRIx64 " (%u seen)", devices,
			      serial, seen);
	return found > 1 ? -EEXIST : -ENODEV;
}

/* Finds the sysfs folder of the open character device through /sys/dev/char/MAJ:MIN. */
static void chardev_find_sysdir(struct chardev *c, const char *sysfs_root, dev_t rdev)
{
	char dir[PATH_MAX], buf[32];

	if ((size_t)snprintf(dir, sizeof(dir), "%s/dev/char/%u:%u", sysfs_root, major(rdev),
			     minor(rdev)) < sizeof(dir) &&
	    chardev_read_attr(dir, "serial", buf, sizeof(buf)) == 0)
		memcpy(c->sysdir, dir, sizeof(dir));
}

/* Reads path: or serial: (exactly one names the device) and firmware_upload:. */
static int chardev_read_options(const struct mbx_transport_config *cfg, const char **path,
				uint64_t *serial, bool *firmware_upload, char *err, size_t errlen)
{
	int rc;

	*path = transport_option(cfg, "path");
	*serial = 0;
	if ((rc = chardev_option_bool(cfg, "firmware_upload", firmware_upload, err, errlen)) < 0)
		return rc;
	if (!*path == !transport_option(cfg, "serial"))
		return transport_option_error(cfg, NULL, err, errlen,
					      "chardev needs exactly one of path: or serial:");
	if (*path && ((*path)[0] != '/' || strlen(*path) >= PATH_MAX))
		return transport_option_error(cfg, "path", err, errlen,
					      "\"%s\" is not an absolute device path", *path);
	return transport_option_u64(cfg, "serial", 0, UINT64_MAX, serial, err, errlen);
}

/* Checks the options as chardev_open reads them, opening nothing. */
static int chardev_check(const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	const char *path;
	uint64_t serial;
	bool fw;

	return chardev_read_options(cfg, &path, &serial, &fw, err, errlen);
}

/* Resolves the device path from path: or serial:, per the config. */
static int chardev_resolve(struct chardev *c, const struct mbx_transport_config *cfg,
			   const char *sysfs_root, char *err, size_t errlen)
{
	const char *path;
	char name[64];
	uint64_t sn;
	int rc;

	rc = chardev_read_options(cfg, &path, &sn, &c->fw.enabled, err, errlen);
	if (rc < 0)
		return rc;
	if (path) {
		/* chardev_read_options bounds it by PATH_MAX, the size of c->path. */
		memcpy(c->path, path, strlen(path) + 1);
		return 0;
	}
	rc = chardev_find_serial(sysfs_root, sn, name, sizeof(name), err, errlen);
	if (rc < 0)
		return rc;
	if ((size_t)snprintf(c->path, sizeof(c->path), "%s/%s", CHARDEV_DEV_DIR, name) >=
	    sizeof(c->path)) {
		transport_msg(err, errlen, "%s/%s: name too long", CHARDEV_DEV_DIR, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Records one query entry; ids past our table (newer kernels) are ignored. */
static void chardev_note_command(struct chardev *c, const struct cxl_command_info *ci)
{
	if (ci->id == CXL_MEM_COMMAND_ID_INVALID || ci->id >= CHARDEV_IDS)
		return; /* 6.1 reports unused table slots as id 0 */
	c->kcmd[ci->id].present = true;
	c->kcmd[ci->id].flags = ci->flags;
	c->kcmd[ci->id].size_in = ci->size_in;
	c->kcmd[ci->id].size_out = ci->size_out;
}

/* Asks the kernel which commands it offers (CXL_MEM_QUERY_COMMANDS): count, then table. */
static int chardev_query(struct chardev *c, char *err, size_t errlen)
{
	struct cxl_mem_query_commands head = {.n_commands = 0};
	struct cxl_mem_query_commands *q;
	uint32_t n;

	if (ioctl(c->fd, CXL_MEM_QUERY_COMMANDS, &head) < 0) {
		int rc = -errno;

		transport_msg(err, errlen, "%s: CXL_MEM_QUERY_COMMANDS: %s", c->path,
			      strerror(-rc));
		return rc;
	}
	n = head.n_commands;
	if (n == 0 || n > CHARDEV_QUERY_MAX) {
		transport_msg(err, errlen, "%s: the kernel reports %u commands", c->path, n);
		return -EPROTO;
	}
	q = calloc(1, sizeof(*q) + n * sizeof(q->commands[0]));
	if (!q)
		return -ENOMEM;
	q->n_commands = n;
	if (ioctl(c->fd, CXL_MEM_QUERY_COMMANDS, q) < 0) {
		int rc = -errno;

		transport_msg(err, errlen, "%s: CXL_MEM_QUERY_COMMANDS: %s", c->path,
			      strerror(-rc));
		free(q);
		return rc;
	}
	for (uint32_t i = 0; i < q->n_commands && i < n; i++)
		chardev_note_command(c, &q->commands[i]);
	free(q);
	return 0;
}

/* Picks the kernel command for opcode: its named id if this kernel has one, else RAW. */
static struct chardev_route chardev_route_for(const struct chardev *c, uint16_t opcode)
{
	for (size_t i = 0; i < CHARDEV_N_NAMED; i++) {
		const struct chardev_named *n = &chardev_named[i];

		if (n->opcode == opcode && c->kcmd[n->id].present)
			return (struct chardev_route){n->id, n->name, c->kcmd[n->id].size_in};
	}
	return (struct chardev_route){CXL_MEM_COMMAND_ID_RAW, "RAW", CHARDEV_VARIABLE};
}

/* Describes a failed ioctl: the kernel's refusals by name, anything else as I/O. */
static int chardev_errno_rc(const struct chardev *c, const struct chardev_route *r, uint16_t opcode,
			    int err, char *msg, size_t len)
{
	bool raw = r->id == CXL_MEM_COMMAND_ID_RAW;

	switch (err) {
	case EPERM:
		if (raw) {
			transport_msg(msg, len,
				      "%s: opcode 0x%04x has no named command in %s's kernel",
				      CHARDEV_MSG_RAW, opcode, c->path);
			return MBX_XPORT_RAW_DISABLED;
		}
		transport_msg(msg, len, "%s: the kernel refused %s (0x%04x) with EPERM",
			      CHARDEV_MSG_OWNED, r->name, opcode);
		return MBX_XPORT_KERNEL_OWNED;
	case EBUSY:
		transport_msg(msg, len, "%s: %s answered EBUSY to %s (0x%04x)", CHARDEV_MSG_OWNED,
			      c->path, r->name, opcode);
		return MBX_XPORT_KERNEL_OWNED;
	case ENOTTY:
		transport_msg(msg, len, "%s: %s answered ENOTTY to %s (0x%04x)",
			      CHARDEV_MSG_UNSUPPORTED, c->path, r->name, opcode);
		return MBX_XPORT_UNSUPPORTED;
	case ENOMEM:
	case EINVAL:
		transport_msg(msg, len, "%s refused the sizes of %s (0x%04x): %s", c->path, r->name,
			      opcode, strerror(err));
		return MBX_XPORT_TOO_BIG;
	case ETIMEDOUT:
		transport_msg(msg, len, "%s: the kernel's mailbox timed out on %s (0x%04x)",
			      c->path, r->name, opcode);
		return MBX_XPORT_TIMEOUT;
	default:
		transport_msg(msg, len, "%s: CXL_MEM_SEND_COMMAND %s (0x%04x): %s", c->path,
			      r->name, opcode, strerror(err));
		return MBX_XPORT_IO;
	}
}

/* Checks the input against what the kernel accepts, before the ioctl. */
static int chardev_check_sizes(const struct chardev *c, const struct chardev_route *r,
			       struct mbx_transport_cmd *cmd)
{
	if (cmd->in_len > c->info.payload_max) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%zu input bytes exceed %s's %u-byte mailbox", cmd->in_len, c->path,
			      c->info.payload_max);
		return MBX_XPORT_TOO_BIG;
	}
	if (r->size_in != CHARDEV_VARIABLE && cmd->in_len != r->size_in) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "the kernel's %s (0x%04x) takes exactly %u input bytes, not %zu",
			      r->name, cmd->opcode, r->size_in, cmd->in_len);
		return MBX_XPORT_TOO_BIG;
	}
	return MBX_XPORT_OK;
}

/* Finds the sysfs route of an opcode, or NULL. */
static const struct chardev_sysfs *chardev_sysfs_find(uint16_t opcode)
{
	for (size_t i = 0; i < CHARDEV_N_SYSFS; i++)
		if (chardev_sysfs[i].opcode == opcode)
			return &chardev_sysfs[i];
	return NULL;
}

/* Names a route this kernel, or this device under it, does not offer. */
static int chardev_sysfs_missing(const struct chardev *c, const struct chardev_sysfs *r, int err,
				 struct mbx_transport_cmd *cmd)
{
	if (err == ENOENT && !c->security_dir) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s through sysfs is not offered by this kernel (no %s)", r->what,
			      r->attr);
		return MBX_XPORT_UNSUPPORTED;
	}
	if (err == ENOENT) {
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "%s through sysfs is not offered for %s (no %s: the kernel shows it only "
		    "when the device's CEL lists %s)",
		    r->what, c->path, r->attr, r->name);
		return MBX_XPORT_UNSUPPORTED;
	}
	if (err == ENODEV) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s through sysfs cannot be reached: %s has no sysfs folder", r->what,
			      c->path);
		return MBX_XPORT_UNSUPPORTED;
	}
	transport_msg(
	    cmd->error, sizeof(cmd->error),
	    "%s through sysfs: %s's %s could not be opened for writing when mbxd started: %s",
	    r->what, c->path, r->attr, strerror(err));
	return MBX_XPORT_IO;
}

/* Describes a write to a route the kernel refused, by what the kernel means by it. */
static int chardev_sysfs_errno(const struct chardev *c, const struct chardev_sysfs *r, int err,
			       struct mbx_transport_cmd *cmd)
{
	switch (err) {
	case EBUSY:
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "%s: the kernel refused %s with EBUSY (%s's %s): the memory is in use "
		    "(committed decoders) or another operation is running",
		    CHARDEV_MSG_OWNED, r->what, c->path, r->attr);
		return MBX_XPORT_KERNEL_OWNED;
	case ETIMEDOUT:
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s: the kernel's mailbox timed out on %s (%s)", c->path, r->what,
			      r->attr);
		return MBX_XPORT_TIMEOUT;
	case ENOTTY:
	case EOPNOTSUPP:
		transport_msg(cmd->error, sizeof(cmd->error), "%s: %s's %s answered %s",
			      CHARDEV_MSG_UNSUPPORTED, c->path, r->attr, strerror(err));
		return MBX_XPORT_UNSUPPORTED;
	default:
		transport_msg(cmd->error, sizeof(cmd->error), "%s's %s: the kernel refused %s: %s",
			      c->path, r->attr, r->what, strerror(err));
		return MBX_XPORT_IO;
	}
}

/* Starts a routed operation: the kernel runs it when "1" is written to its attribute. */
static int chardev_sysfs_submit(struct chardev *c, const struct chardev_sysfs *r,
				struct mbx_transport_cmd *cmd)
{
	size_t i = (size_t)(r - chardev_sysfs);
	ssize_t n;

	cmd->out_len = 0;
	if (cmd->in_len) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "the kernel's %s route (%s) takes no input, not %zu bytes", r->what,
			      r->attr, cmd->in_len);
		return MBX_XPORT_TOO_BIG;
	}
	if (c->sysfs_fd[i] < 0)
		return chardev_sysfs_missing(c, r, c->sysfs_err[i], cmd);
	if (c->bg_opcode || c->fw.state == CHARDEV_FW_RUNNING) {
		cmd->cxl_rc = CHARDEV_RC_BUSY; /* as the device answers during a background op */
		return MBX_XPORT_OK;
	}
	/* sysfs ignores the offset; a regular file (the unit tests) is rewritten. */
	(void)lseek(c->sysfs_fd[i], 0, SEEK_SET);
	do
		n = write(c->sysfs_fd[i], "1\n", 2);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return chardev_sysfs_errno(c, r, errno, cmd);
	if (n != 2) {
		transport_msg(cmd->error, sizeof(cmd->error), "%s's %s took %zd of 2 bytes",
			      c->path, r->attr, n);
		return MBX_XPORT_IO;
	}
	cmd->cxl_rc = 0;
	if (r->background) {
		c->bg_opcode = r->opcode;
		clock_gettime(CLOCK_MONOTONIC, &c->bg_start);
		cmd->cxl_rc = CHARDEV_RC_BACKGROUND;
	}
	return MBX_XPORT_OK;
}

/* Reads security/state without its newline: "sanitize" while the kernel's Sanitize runs. */
static int chardev_state(const struct chardev *c, char *buf, size_t len)
{
	return chardev_pread_attr(c->state_fd, buf, len);
}

/*
 * The percentage reported while the kernel's Sanitize runs. The kernel does
 * not show the device's own figure, so this is an estimate from elapsed
 * time: 50% after CHARDEV_ESTIMATE_HALF_S, never 100% before the end.
 */
static uint8_t chardev_estimate(const struct chardev *c)
{
	struct timespec now;
	uint64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < c->bg_start.tv_sec)
		return 0;
	ms = (uint64_t)(now.tv_sec - c->bg_start.tv_sec) * 1000 +
	     (uint64_t)((now.tv_nsec - c->bg_start.tv_nsec) / 1000000);
	return (uint8_t)(99 * ms / (ms + CHARDEV_ESTIMATE_HALF_S * 1000));
}

/*
 * Answers Background Operation Status (0002h) for a routed Sanitize from
 * security/state. The kernel keeps the device's final return code to
 * itself: the end is reported as success, as the kernel's state shows it.
 */
static int chardev_bg_status(struct chardev *c, struct mbx_transport_cmd *cmd)
{
	char state[32];
	bool running;
	uint8_t pct;
	int rc;

	cmd->out_len = 0;
	if (cmd->out_cap < CHARDEV_BG_STATUS_SIZE) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "Background Operation Status needs %u output bytes, not %zu",
			      CHARDEV_BG_STATUS_SIZE, cmd->out_cap);
		return MBX_XPORT_TOO_BIG;
	}
	rc = chardev_state(c, state, sizeof(state));
	if (rc < 0) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s: cannot read %s to follow opcode 0x%04x: %s", c->path,
			      CHARDEV_STATE_ATTR, c->bg_opcode, strerror(-rc));
		return MBX_XPORT_IO;
	}
	running = strcmp(state, "sanitize") == 0;
	pct = running ? chardev_estimate(c) : 100;
	memset(cmd->out, 0, CHARDEV_BG_STATUS_SIZE);
	cmd->out[0] = (uint8_t)(pct << 1 | (running ? 1 : 0));
	cmd->out[2] = (uint8_t)c->bg_opcode;
	cmd->out[3] = (uint8_t)(c->bg_opcode >> 8);
	cmd->out_len = CHARDEV_BG_STATUS_SIZE;
	cmd->cxl_rc = 0;
	if (!running)
		c->bg_opcode = 0;
	return MBX_XPORT_OK;
}

/* Runs one command through CXL_MEM_SEND_COMMAND; blocks until the kernel answers. */
static int chardev_submit_ioctl(struct chardev *c, struct mbx_transport_cmd *cmd)
{
	struct chardev_route r = chardev_route_for(c, cmd->opcode);
	size_t cap = cmd->out_cap < c->info.payload_max ? cmd->out_cap : c->info.payload_max;
	struct cxl_send_command s;
	int rc;

	cmd->out_len = 0;
	rc = chardev_check_sizes(c, &r, cmd);
	if (rc != MBX_XPORT_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	s.id = r.id;
	if (r.id == CXL_MEM_COMMAND_ID_RAW)
		s.raw.opcode = cmd->opcode;
	s.in.size = (uint32_t)cmd->in_len;
	s.in.payload = (uint64_t)(uintptr_t)cmd->in;
	s.out.size = (uint32_t)cap;
	s.out.payload = (uint64_t)(uintptr_t)cmd->out;
	do
		rc = ioctl(c->fd, CXL_MEM_SEND_COMMAND, &s);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return chardev_errno_rc(c, &r, cmd->opcode, errno, cmd->error, sizeof(cmd->error));
	if (s.retval > UINT16_MAX) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s: return code %u is not a CXL code", c->path, s.retval);
		return MBX_XPORT_BAD_RESPONSE;
	}
	cmd->cxl_rc = (uint16_t)s.retval;
	/* On a failed command the kernel leaves out.size as the buffer size: nothing was read. */
	cmd->out_len = s.retval == 0 && s.out.size <= cap ? s.out.size : 0;
	return MBX_XPORT_OK;
}

static int chardev_fw_slots(void *ctx, struct chardev_fw_slots *out, char *err, size_t errlen);

/* Transfer FW by the firmware upload class; busy while a routed Sanitize runs. */
static int chardev_transfer_fw(struct chardev *c, struct mbx_transport_cmd *cmd)
{
	if (c->bg_opcode) {
		cmd->out_len = 0;
		cmd->cxl_rc = CHARDEV_RC_BUSY;
		return MBX_XPORT_OK;
	}
	return chardev_fw_transfer(&c->fw, chardev_fw_slots, c, cmd);
}

/*
 * Runs one command: by a sysfs route, from security/state or the upload
 * class while a routed operation runs, busy while the kernel's upload holds
 * the mailbox, or through the chardev.
 */
static int chardev_submit(void *priv, struct mbx_transport_cmd *cmd)
{
	struct chardev *c = priv;
	const struct chardev_sysfs *r = chardev_sysfs_find(cmd->opcode);
	bool fw_running = c->fw.state == CHARDEV_FW_RUNNING;

	if (r)
		return chardev_sysfs_submit(c, r, cmd);
	if (cmd->opcode == CHARDEV_FW_OP_TRANSFER && c->fw.enabled)
		return chardev_transfer_fw(c, cmd);
	if (cmd->opcode == CHARDEV_OP_BG_STATUS && fw_running)
		return chardev_fw_bg_status(&c->fw, cmd);
	if (cmd->opcode == CHARDEV_OP_REQUEST_ABORT && fw_running)
		return chardev_fw_abort(&c->fw, cmd);
	if (cmd->opcode == CHARDEV_OP_BG_STATUS && c->bg_opcode)
		return chardev_bg_status(c, cmd);
	if (chardev_fw_kernel_busy(&c->fw)) {
		/* Busy now, as a device answers, rather than an ioctl that waits seconds. */
		cmd->out_len = 0;
		cmd->cxl_rc = CHARDEV_RC_BUSY;
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "the kernel holds %s's mailbox for its firmware upload; retry when it "
		    "completes",
		    c->path);
		return MBX_XPORT_OK;
	}
	return chardev_submit_ioctl(c, cmd);
}

/* Runs one command at open through the same path as submit; 0 only on success. */
static int chardev_open_command(struct chardev *c, uint16_t opcode, uint8_t *out, size_t cap,
				size_t *out_len)
{
	struct mbx_transport_cmd cmd = {.opcode = opcode, .out = out, .out_cap = cap};
	int rc = chardev_submit(c, &cmd);

	if (rc != MBX_XPORT_OK || cmd.cxl_rc != 0)
		return -EIO;
	*out_len = cmd.out_len;
	return 0;
}

/* Reads the slot count and the active slot with Get FW Info, for the upload route. */
static int chardev_fw_slots(void *ctx, struct chardev_fw_slots *out, char *err, size_t errlen)
{
	struct chardev *c = ctx;
	uint8_t info[CHARDEV_FW_INFO_SIZE];
	size_t n = 0;

	if (chardev_open_command(c, CHARDEV_OP_FW_INFO, info, sizeof(info), &n) < 0 || n < 2) {
		transport_msg(err, errlen,
			      "%s: Get FW Info failed, so the slot the kernel writes "
			      "is not known",
			      c->path);
		return -EIO;
	}
	out->n = info[0];
	out->active = info[1] & 0x7;
	return 0;
}

/* Copies the Identify Memory Device firmware revision: ASCII, NUL or space padded. */
static void chardev_fw_revision(const uint8_t *id, char *fw, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < CHARDEV_FW_REVISION_SIZE && id[i] && n + 1 < len; i++)
		fw[n++] = id[i] >= 0x20 && id[i] < 0x7f ? (char)id[i] : '?';
	while (n > 0 && fw[n - 1] == ' ')
		n--;
	fw[n] = '\0';
}

/* Reads the PCI vendor and device ids: generic Identify when RAW works, else sysfs. */
static bool chardev_pci_ids(struct chardev *c, uint16_t *vendor, uint16_t *device)
{
	uint8_t id[CHARDEV_PAYLOAD_MIN];
	uint64_t v, d;
	size_t n = 0;
	char dir[PATH_MAX];

	if (c->kcmd[CXL_MEM_COMMAND_ID_RAW].present &&
	    chardev_open_command(c, CHARDEV_OP_IDENTIFY, id, sizeof(id), &n) == 0 &&
	    n >= CHARDEV_IDENTIFY_SIZE) {
		*vendor = (uint16_t)(id[0] | id[1] << 8);
		*device = (uint16_t)(id[2] | id[3] << 8);
		return true;
	}
	if (!c->sysdir[0])
		return false;
	/* The memdev's parent is its PCI function. */
	if ((size_t)snprintf(dir, sizeof(dir), "%s/..", c->sysdir) >= sizeof(dir) ||
	    chardev_read_u64(dir, "vendor", &v) < 0 || chardev_read_u64(dir, "device", &d) < 0 ||
	    v > UINT16_MAX || d > UINT16_MAX)
		return false;
	*vendor = (uint16_t)v;
	*device = (uint16_t)d;
	return true;
}

/* Fills in what describe() reports: model, serial and mailbox size. */
static void chardev_learn(struct chardev *c)
{
	struct mbx_transport_info *info = &c->info;
	uint8_t id[CHARDEV_PAYLOAD_MIN];
	char fw[CHARDEV_FW_REVISION_SIZE + 1] = "";
	uint16_t vendor = 0, device = 0;
	uint64_t v;
	size_t n = 0;
	int len;

	snprintf(info->kind, sizeof(info->kind), "memdev");
	info->kernel_owned = true;
	for (size_t i = 0; i < CHARDEV_N_SYSFS && i < MBX_TRANSPORT_ROUTED_MAX; i++)
		info->routed[info->n_routed++] = chardev_sysfs[i].opcode;
	if (c->fw.enabled && info->n_routed < MBX_TRANSPORT_ROUTED_MAX) {
		info->routed[info->n_routed++] = CHARDEV_FW_OP_TRANSFER;
		info->caps |= 1ull << CAP_SYS_RAWIO; /* checked on every write of the image */
	}
	info->payload_max = CHARDEV_PAYLOAD_MIN;
	if (c->sysdir[0] && chardev_read_u64(c->sysdir, "payload_max", &v) == 0 &&
	    v >= CHARDEV_PAYLOAD_MIN && v <= MBX_PAYLOAD_MAX)
		info->payload_max = (uint32_t)v;
	if (c->sysdir[0] && chardev_read_u64(c->sysdir, "serial", &v) == 0)
		snprintf(info->serial, sizeof(info->serial), "0x%016" PRIx64, v);
	if (chardev_open_command(c, CHARDEV_OP_IDENTIFY_MEMDEV, id, sizeof(id), &n) == 0 &&
	    n >= CHARDEV_IDENTIFY_MEMDEV_SIZE)
		chardev_fw_revision(id, fw, sizeof(fw));
	len =
	    chardev_pci_ids(c, &vendor, &device)
		? snprintf(info->model, sizeof(info->model), "CXL memdev %04x:%04x", vendor, device)
		: snprintf(info->model, sizeof(info->model), "CXL memdev");
	if (fw[0] && len > 0 && (size_t)len < sizeof(info->model))
		transport_msg(info->model + len, sizeof(info->model) - (size_t)len, " fw %s", fw);
}

/* Checks that the opened node is the memdev sysfs named (a stale /dev would lie). */
static int chardev_check_node(struct chardev *c, const char *sysfs_root, char *err, size_t errlen)
{
	struct stat st;
	char dev[32], want[32];

	if (fstat(c->fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		transport_msg(err, errlen, "%s: not a character device", c->path);
		return -ENODEV;
	}
	chardev_find_sysdir(c, sysfs_root, st.st_rdev);
	if (!c->sysdir[0] || chardev_read_attr(c->sysdir, "dev", dev, sizeof(dev)) < 0)
		return 0; /* no sysfs: describe() reports less, the device still works */
	snprintf(want, sizeof(want), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	if (strcmp(dev, want) != 0) {
		transport_msg(err, errlen, "%s: device %s does not match sysfs (%s)", c->path, want,
			      dev);
		return -ENODEV;
	}
	return 0;
}

/* Opens the kernel's sysfs routes now: they are root-only, and mbxd drops root later. */
static void chardev_open_sysfs(struct chardev *c)
{
	char path[PATH_MAX];
	struct stat st;

	if (!c->sysdir[0])
		return; /* every route stays missing with ENODEV */
	c->security_dir =
	    (size_t)snprintf(path, sizeof(path), "%s/security", c->sysdir) < sizeof(path) &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	for (size_t i = 0; i < CHARDEV_N_SYSFS; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->sysdir,
				     chardev_sysfs[i].attr) >= sizeof(path)) {
			c->sysfs_err[i] = ENAMETOOLONG;
			continue;
		}
		c->sysfs_fd[i] = open(path, O_WRONLY | O_CLOEXEC);
		c->sysfs_err[i] = c->sysfs_fd[i] < 0 ? errno : 0;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->sysdir, CHARDEV_STATE_ATTR) <
	    sizeof(path))
		c->state_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fw.enabled)
		chardev_fw_open(&c->fw, c->sysdir);
}

/* Empties the private state: no descriptor open, every route missing. */
static void chardev_reset(struct chardev *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state_fd = -1;
	chardev_fw_reset(&c->fw, c->path);
	for (size_t i = 0; i < CHARDEV_N_SYSFS; i++) {
		c->sysfs_fd[i] = -1;
		c->sysfs_err[i] = ENODEV;
	}
}

static void chardev_close(void *priv);

/* Opens the memdev, learns the kernel's command table and the device's identity. */
static int chardev_open(void *priv, const struct mbx_transport_config *cfg, char *err,
			size_t errlen)
{
	struct chardev *c = priv;
	const char *sysfs_root = transport_option(cfg, "sysfs_root");
	int rc;

	chardev_reset(c);
	if (!sysfs_root)
		sysfs_root = CHARDEV_SYSFS_ROOT;
	rc = chardev_resolve(c, cfg, sysfs_root, err, errlen);
	if (rc < 0)
		return rc;
	c->fd = open(c->path, O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		rc = -errno;
		transport_msg(err, errlen, "%s: %s", c->path, strerror(-rc));
		return rc;
	}
	if ((rc = chardev_check_node(c, sysfs_root, err, errlen)) < 0 ||
	    (rc = chardev_query(c, err, errlen)) < 0) {
		if (rc == -ENOMEM)
			transport_msg(err, errlen, "%s: out of memory", c->path);
		chardev_close(c);
		return rc;
	}
	chardev_open_sysfs(c);
	chardev_learn(c);
	return 0;
}

/* Closes the device; the broker frees priv itself. */
static void chardev_close(void *priv)
{
	struct chardev *c = priv;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (size_t i = 0; i < CHARDEV_N_SYSFS; i++) {
		if (c->sysfs_fd[i] >= 0)
			close(c->sysfs_fd[i]);
		c->sysfs_fd[i] = -1;
	}
	if (c->state_fd >= 0)
		close(c->state_fd);
	c->state_fd = -1;
	c->bg_opcode = 0;
	chardev_fw_close(&c->fw);
}

/* Describes the device for DEVICES and the policy: the kernel owns it. */
static void chardev_describe(void *priv, struct mbx_transport_info *info)
{
	struct chardev *c = priv;

	*info = c->info;
}

const struct mbx_transport_ops chardev_transport_ops = {
    .name = "chardev",
    .priv_size = sizeof(struct chardev),
    .options = chardev_options,
    .ioctls = chardev_ioctls,
    .n_ioctls = sizeof(chardev_ioctls) / sizeof(chardev_ioctls[0]),
    .check = chardev_check,
    .open = chardev_open,
    .close = chardev_close,
    .describe = chardev_describe,
    .submit = chardev_submit,
};
