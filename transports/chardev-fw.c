/*
 * Transfer FW through the kernel's firmware upload class: see chardev-fw.h
 * for the mapping. Everything here is file I/O on the class's attributes,
 * opened at open() because they are root-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chardev-fw.h"

#define FW_ACTION_FULL     0x00
#define FW_ACTION_INITIATE 0x01
#define FW_ACTION_CONTINUE 0x02
#define FW_ACTION_END      0x03
#define FW_ACTION_ABORT    0x04
#define FW_ALIGN           128u /* offsets are in units of 128 bytes */

#define FW_RC_SUCCESS        0x00
#define FW_RC_BACKGROUND     0x01
#define FW_RC_INVALID_INPUT  0x02
#define FW_RC_INTERNAL       0x04
#define FW_RC_BUSY           0x06
#define FW_RC_IN_PROGRESS    0x08
#define FW_RC_OUT_OF_ORDER   0x09
#define FW_RC_VERIFY_FAILED  0x0a
#define FW_RC_INVALID_SLOT   0x0b
#define FW_RC_ABORTED        0x12
#define FW_RC_PAYLOAD_LENGTH 0x16
#define FW_BG_STATUS_SIZE    8

/* The class's attributes, and whether mbxd writes or reads each. */
static const struct {
	const char *name;
	int flags;
} fw_attrs[CHARDEV_FW_N_ATTRS] = {
    [CHARDEV_FW_LOADING] = {"loading", O_WRONLY},
    [CHARDEV_FW_DATA] = {"data", O_WRONLY},
    [CHARDEV_FW_STATUS] = {"status", O_RDONLY},
    [CHARDEV_FW_REMAINING] = {"remaining_size", O_RDONLY},
    [CHARDEV_FW_ERROR] = {"error", O_RDONLY},
    [CHARDEV_FW_CANCEL] = {"cancel", O_WRONLY},
};

/* The kernel's upload errors (drivers/base/firmware_loader/sysfs_upload.c) as CXL codes. */
static const struct {
	const char *error;
	uint16_t rc;
} fw_errors[] = {
    {"none", FW_RC_SUCCESS},
    {"hw-error", FW_RC_INTERNAL},
    {"timeout", FW_RC_INTERNAL},
    {"user-abort", FW_RC_ABORTED},
    {"device-busy", FW_RC_BUSY},
    {"invalid-file-size", FW_RC_PAYLOAD_LENGTH},
    {"read-write-error", FW_RC_INTERNAL},
    {"flash-wearout", FW_RC_INTERNAL},
    {"firmware-invalid", FW_RC_VERIFY_FAILED},
};

/* Sets every descriptor to -1, the route to missing (ENODEV), nothing held. */
void chardev_fw_reset(struct chardev_fw *fw, const char *memdev)
{
	bool enabled = fw->enabled;

	memset(fw, 0, sizeof(*fw));
	fw->enabled = enabled;
	fw->memdev = memdev;
	fw->open_err = ENODEV;
	for (int i = 0; i < CHARDEV_FW_N_ATTRS; i++)
		fw->fd[i] = -1;
}

/*
 * Opens <sysdir>/firmware/<memN>/: the class device the kernel registers
 * under the memdev, named as the memdev (the last part of /dev/cxl/memN).
 */
void chardev_fw_open(struct chardev_fw *fw, const char *sysdir)
{
	const char *slash = strrchr(fw->memdev, '/');
	const char *name = slash ? slash + 1 : fw->memdev;
	char path[PATH_MAX];
	struct stat st;

	if (!sysdir[0])
		return; /* stays missing with ENODEV */
	if ((size_t)snprintf(fw->dir, sizeof(fw->dir), "%s/firmware/%s", sysdir, name) >=
	    sizeof(fw->dir)) {
		fw->open_err = ENAMETOOLONG;
		return;
	}
	if (stat(fw->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fw->open_err = ENOENT;
		return;
	}
	for (int i = 0; i < CHARDEV_FW_N_ATTRS; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", fw->dir, fw_attrs[i].name) >=
		    sizeof(path)) {
			fw->open_err = ENAMETOOLONG;
			chardev_fw_close(fw);
			return;
		}
		fw->fd[i] = open(path, fw_attrs[i].flags | O_CLOEXEC);
		if (fw->fd[i] < 0) {
			fw->open_err = errno;
			chardev_fw_close(fw);
			return;
		}
	}
	fw->open_err = 0;
}

static void fw_discard(struct chardev_fw *fw);

/* Closes the class; held parts are dropped so the kernel keeps no half image. */
void chardev_fw_close(struct chardev_fw *fw)
{
	if (fw->state == CHARDEV_FW_RECEIVING && fw->fd[CHARDEV_FW_LOADING] >= 0)
		fw_discard(fw);
	for (int i = 0; i < CHARDEV_FW_N_ATTRS; i++) {
		if (fw->fd[i] >= 0)
			close(fw->fd[i]);
		fw->fd[i] = -1;
	}
	fw->state = CHARDEV_FW_IDLE;
}

/* Writes a whole control value ("1", "0", "-1") to an attribute; 0 or -errno. */
static int fw_write_control(struct chardev_fw *fw, enum chardev_fw_attr a, const char *value)
{
	size_t len = strlen(value);
	ssize_t n;

	do
		n = pwrite(fw->fd[a], value, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* Writes image bytes at offset into `data`; sysfs takes at most a page per write. */
static int fw_write_data(struct chardev_fw *fw, const uint8_t *data, size_t len, uint32_t offset)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fw->fd[CHARDEV_FW_DATA], data + done, len - done,
			   (off_t)offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Reads an open sysfs attribute from its start, without its newline; 0 or -errno. */
int chardev_pread_attr(int fd, char *buf, size_t len)
{
	ssize_t n;

	if (fd < 0)
		return -ENOENT;
	do
		n = pread(fd, buf, len - 1, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

/* The CXL return code for a kernel upload error ("none", "hw-error", ...). */
uint16_t chardev_fw_error_rc(const char *error)
{
	for (size_t i = 0; i < sizeof(fw_errors) / sizeof(fw_errors[0]); i++)
		if (strcmp(fw_errors[i].error, error) == 0)
			return fw_errors[i].rc;
	return FW_RC_INTERNAL;
}

/* Names why the route cannot be used for this device. */
static int fw_missing(const struct chardev_fw *fw, struct mbx_transport_cmd *cmd)
{
	if (!fw->enabled)
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "firmware update through the kernel's firmware upload class is off for %s: "
		    "set \"firmware_upload: true\" on the device (mbxd then keeps CAP_SYS_RAWIO, "
		    "which the kernel checks on every write of the image)",
		    fw->memdev);
	else if (fw->open_err == ENOENT)
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "firmware update through the kernel is not offered for %s: its sysfs folder "
		    "has no firmware/ upload class (Linux 6.5+, with Get FW Info)",
		    fw->memdev);
	else if (fw->open_err == ENODEV)
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "firmware update through the kernel cannot be reached: %s has no sysfs folder",
		    fw->memdev);
	else
		transport_msg(
		    cmd->error, sizeof(cmd->error),
		    "firmware update through the kernel: %s could not be opened when mbxd "
		    "started: %s",
		    fw->dir, strerror(fw->open_err));
	return MBX_XPORT_UNSUPPORTED;
}

/* Describes a write the kernel refused. */
static int fw_errno(const struct chardev_fw *fw, const char *attr, int err,
		    struct mbx_transport_cmd *cmd)
{
	if (err == EPERM)
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s/%s: the kernel refused the write: mbxd lacks CAP_SYS_RAWIO",
			      fw->dir, attr);
	else
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s/%s: the kernel refused the write: %s", fw->dir, attr,
			      strerror(err));
	return err == EBUSY ? MBX_XPORT_KERNEL_OWNED : MBX_XPORT_IO;
}

/* Answers like a device: a CXL return code, with a sentence for the client. */
__attribute__((format(printf, 3, 4))) static int fw_answer(struct mbx_transport_cmd *cmd,
							   uint16_t rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd->error, sizeof(cmd->error), fmt, ap);
	va_end(ap);
	cmd->cxl_rc = rc;
	return MBX_XPORT_OK;
}

/* Drops parts held in the kernel's buffer (`loading` -1). */
static void fw_discard(struct chardev_fw *fw)
{
	if (fw->state == CHARDEV_FW_RECEIVING)
		(void)fw_write_control(fw, CHARDEV_FW_LOADING, "-1");
	fw->state = CHARDEV_FW_IDLE;
	fw->received = 0;
}

/* Whether held parts were left silent for longer than the spec's devices wait. */
static bool fw_parts_stale(const struct chardev_fw *fw)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - fw->last_part.tv_sec > CHARDEV_FW_PART_IDLE_S;
}

/* Checks the client's slot against the one the kernel writes: the one after the active slot. */
static int fw_check_slot(struct chardev_fw *fw, uint8_t slot, chardev_fw_slots_fn slots, void *ctx,
			 struct mbx_transport_cmd *cmd, bool *ok)
{
	struct chardev_fw_slots s;
	uint8_t next;
	int rc;

	*ok = false;
	rc = slots(ctx, &s, cmd->error, sizeof(cmd->error));
	if (rc < 0)
		return MBX_XPORT_IO;
	if (s.n == 0 || s.active == 0 || s.active > s.n) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "%s: Get FW Info reports active slot %u of %u slots", fw->memdev,
			      s.active, s.n);
		return MBX_XPORT_BAD_RESPONSE;
	}
	next = (uint8_t)(s.active % s.n + 1);
	if (slot != next)
		return fw_answer(
		    cmd, FW_RC_INVALID_SLOT,
		    "the kernel's firmware upload writes slot %u (the one after active "
		    "slot %u of %u), not slot %u",
		    next, s.active, s.n, slot);
	fw->slot = slot;
	*ok = true;
	return MBX_XPORT_OK;
}

/* Writes one part at offset; the first part opens a fresh load (`loading` 1). */
static int fw_put(struct chardev_fw *fw, const uint8_t *data, size_t len, uint32_t offset,
		  struct mbx_transport_cmd *cmd)
{
	int rc;

	if ((uint64_t)offset + len > UINT32_MAX) { /* the kernel counts the image in 32 bits */
		fw_discard(fw);
		return fw_answer(cmd, FW_RC_INVALID_INPUT, "the image would pass 4 GiB");
	}
	if (offset == 0 && (rc = fw_write_control(fw, CHARDEV_FW_LOADING, "1")) < 0)
		return fw_errno(fw, "loading", -rc, cmd);
	fw->state = CHARDEV_FW_RECEIVING;
	if ((rc = fw_write_data(fw, data, len, offset)) < 0) {
		fw_discard(fw);
		return fw_errno(fw, "data", -rc, cmd);
	}
	fw->received = offset + (uint32_t)len;
	clock_gettime(CLOCK_MONOTONIC, &fw->last_part);
	cmd->cxl_rc = FW_RC_SUCCESS;
	return MBX_XPORT_OK;
}

/* Hands the image to the kernel (`loading` 0): it transfers, then activates, in the background. */
static int fw_start(struct chardev_fw *fw, struct mbx_transport_cmd *cmd)
{
	int rc = fw_write_control(fw, CHARDEV_FW_LOADING, "0");

	if (rc < 0) {
		fw_discard(fw);
		if (rc == -EBUSY)
			return fw_answer(cmd, FW_RC_IN_PROGRESS,
					 "the kernel is already running a firmware upload on %s",
					 fw->memdev);
		return fw_errno(fw, "loading", -rc, cmd);
	}
	fw->size = fw->received;
	fw->state = CHARDEV_FW_RUNNING;
	return fw_answer(
	    cmd, FW_RC_BACKGROUND,
	    "the kernel transfers the %u-byte image to slot %u, then activates slot %u "
	    "for the next cold reset",
	    fw->size, fw->slot, fw->slot);
}

/* Checks a part's place in the sequence; false with the device's answer set. */
static bool fw_in_order(struct chardev_fw *fw, uint8_t action, uint32_t offset,
			struct mbx_transport_cmd *cmd)
{
	if (fw->state == CHARDEV_FW_RECEIVING && fw_parts_stale(fw))
		fw_discard(fw);
	if (action == FW_ACTION_FULL || action == FW_ACTION_INITIATE) {
		if (fw->state == CHARDEV_FW_RECEIVING) {
			fw_answer(cmd, FW_RC_IN_PROGRESS,
				  "a multi-part transfer holds %u bytes; end or abort it first",
				  fw->received);
			return false;
		}
		if (action == FW_ACTION_INITIATE && offset != 0) {
			fw_answer(cmd, FW_RC_INVALID_INPUT, "Initiate must have offset 0");
			return false;
		}
		return true;
	}
	if (fw->state != CHARDEV_FW_RECEIVING) {
		fw_answer(cmd, FW_RC_INVALID_INPUT, "no multi-part transfer was initiated");
		return false;
	}
	if ((uint64_t)offset * FW_ALIGN != fw->received) {
		fw_answer(cmd, FW_RC_OUT_OF_ORDER,
			  "part at byte %llu; the next part starts at byte %u",
			  (unsigned long long)offset * FW_ALIGN, fw->received);
		return false;
	}
	return true;
}

/* Runs Transfer FW (0201h) by the kernel's route; returns enum mbx_xport_rc. */
int chardev_fw_transfer(struct chardev_fw *fw, chardev_fw_slots_fn slots, void *ctx,
			struct mbx_transport_cmd *cmd)
{
	const uint8_t *in = cmd->in;
	uint32_t offset;
	uint8_t action;
	bool ok = true;
	int rc;

	cmd->out_len = 0;
	if (!fw->enabled || fw->open_err)
		return fw_missing(fw, cmd);
	if (cmd->in_len < CHARDEV_FW_HEADER)
		return fw_answer(cmd, FW_RC_PAYLOAD_LENGTH, "Transfer FW needs a %u-byte header",
				 CHARDEV_FW_HEADER);
	action = in[0];
	offset =
	    (uint32_t)in[4] | (uint32_t)in[5] << 8 | (uint32_t)in[6] << 16 | (uint32_t)in[7] << 24;
	if (action == FW_ACTION_ABORT)
		return chardev_fw_abort(fw, cmd);
	if (fw->state == CHARDEV_FW_RUNNING)
		return fw_answer(cmd, FW_RC_IN_PROGRESS, "the kernel's firmware upload is running");
	if (action > FW_ACTION_END)
		return fw_answer(cmd, FW_RC_INVALID_INPUT, "unknown Transfer FW action %u", action);
	if (action == FW_ACTION_FULL)
		offset = 0; /* the spec ignores it */
	if (action == FW_ACTION_FULL && cmd->in_len == CHARDEV_FW_HEADER)
		return fw_answer(cmd, FW_RC_INVALID_INPUT, "a Full Transfer without image data");
	if (!fw_in_order(fw, action, offset, cmd))
		return MBX_XPORT_OK;
	if ((action == FW_ACTION_FULL || action == FW_ACTION_END) &&
	    ((rc = fw_check_slot(fw, in[1], slots, ctx, cmd, &ok)) != MBX_XPORT_OK || !ok)) {
		fw_discard(fw); /* as a device ends a transfer with a bad slot */
		return rc;
	}
	rc = fw_put(fw, in + CHARDEV_FW_HEADER, cmd->in_len - CHARDEV_FW_HEADER,
		    (uint32_t)((uint64_t)offset * FW_ALIGN), cmd);
	if (rc != MBX_XPORT_OK || action == FW_ACTION_INITIATE || action == FW_ACTION_CONTINUE)
		return rc;
	return fw_start(fw, cmd);
}

/* Whether the kernel's upload still holds the device's mailbox. */
bool chardev_fw_kernel_busy(const struct chardev_fw *fw)
{
	char status[32];

	if (fw->state != CHARDEV_FW_RUNNING)
		return false;
	/* Unreadable: assume it runs, as the next 0002h poll will say. */
	return chardev_pread_attr(fw->fd[CHARDEV_FW_STATUS], status, sizeof(status)) < 0 ||
	       strcmp(status, "idle") != 0;
}

/* Asks the kernel to stop a running upload, or drops held parts (Request Abort). */
int chardev_fw_abort(struct chardev_fw *fw, struct mbx_transport_cmd *cmd)
{
	int rc;

	cmd->out_len = 0;
	if (fw->state != CHARDEV_FW_RUNNING) {
		fw_discard(fw);
		cmd->cxl_rc = FW_RC_SUCCESS;
		return MBX_XPORT_OK;
	}
	rc = fw_write_control(fw, CHARDEV_FW_CANCEL, "1");
	if (rc < 0 && rc != -ENODEV) /* ENODEV: the kernel finished meanwhile */
		return fw_errno(fw, "cancel", -rc, cmd);
	return fw_answer(cmd, FW_RC_SUCCESS, "the kernel stops the upload at its next step");
}

/* The percentage while the kernel runs: bytes sent to the device, 99 at most. */
static uint8_t fw_percent(const struct chardev_fw *fw, const char *status)
{
	char buf[32];
	unsigned long remaining;

	if (strcmp(status, "programming") == 0)
		return 99;
	if (strcmp(status, "transferring") != 0 || fw->size == 0 ||
	    chardev_pread_attr(fw->fd[CHARDEV_FW_REMAINING], buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%lu", &remaining) != 1 || remaining > fw->size)
		return 0;
	return (uint8_t)((uint64_t)(fw->size - remaining) * 99 / fw->size);
}

/* The final return code: the kernel's `error` reads "progress:error", or nothing on success. */
static uint16_t fw_final_rc(const struct chardev_fw *fw)
{
	char buf[64];
	const char *colon;

	if (chardev_pread_attr(fw->fd[CHARDEV_FW_ERROR], buf, sizeof(buf)) < 0)
		return FW_RC_INTERNAL;
	if (!buf[0])
		return FW_RC_SUCCESS;
	colon = strchr(buf, ':');
	return chardev_fw_error_rc(colon ? colon + 1 : buf);
}

/* Answers Background Operation Status (0002h) while the kernel's upload runs. */
int chardev_fw_bg_status(struct chardev_fw *fw, struct mbx_transport_cmd *cmd)
{
	char status[32];
	uint16_t rc = 0;
	uint8_t pct = 100;
	bool running;
	int err;

	cmd->out_len = 0;
	if (cmd->out_cap < FW_BG_STATUS_SIZE) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "Background Operation Status needs %u output bytes, not %zu",
			      FW_BG_STATUS_SIZE, cmd->out_cap);
		return MBX_XPORT_TOO_BIG;
	}
	if ((err = chardev_pread_attr(fw->fd[CHARDEV_FW_STATUS], status, sizeof(status))) < 0) {
		transport_msg(cmd->error, sizeof(cmd->error), "%s/status: cannot read it: %s",
			      fw->dir, strerror(-err));
		return MBX_XPORT_IO;
	}
	running = strcmp(status, "idle") != 0;
	if (running)
		pct = fw_percent(fw, status);
	else
		rc = fw_final_rc(fw);
	memset(cmd->out, 0, FW_BG_STATUS_SIZE);
	cmd->out[0] = (uint8_t)(pct << 1 | (running ? 1 : 0));
	cmd->out[2] = (uint8_t)CHARDEV_FW_OP_TRANSFER;
	cmd->out[3] = (uint8_t)(CHARDEV_FW_OP_TRANSFER >> 8);
	cmd->out[4] = (uint8_t)rc;
	cmd->out[5] = (uint8_t)(rc >> 8);
	cmd->out_len = FW_BG_STATUS_SIZE;
	cmd->cxl_rc = 0;
	if (!running) {
		fw->state = CHARDEV_FW_IDLE;
		fw->received = 0;
	}
	return MBX_XPORT_OK;
}
