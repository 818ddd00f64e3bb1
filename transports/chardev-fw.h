/*
 * Firmware update of a kernel-owned memory device through the kernel's
 * firmware upload class (/sys/bus/cxl/devices/memN/firmware/memN/, Linux
 * 6.5+), for the chardev transport: distro kernels refuse Transfer FW on
 * the RAW path, and keep Activate FW to themselves.
 *
 * A client sends Transfer FW (0201h) as to any device: one Full Transfer,
 * or Initiate, Continue... End parts in order. The parts go into the
 * kernel's `data` file at their offsets; Full Transfer or End hands the
 * image to the kernel (`loading` 1, data, `loading` 0), which transfers it
 * to the next slot after the active one and then activates that slot for
 * the next cold reset (Activate FW, offline). That is one step more than
 * Transfer FW does on a mailbox, so the result says so, and the slot the
 * client names must be the one the kernel will write.
 *
 * The kernel checks CAP_SYS_RAWIO on every write of `data`: the route is
 * off unless the device sets `firmware_upload: true`, which makes mbxd keep
 * that capability after its privilege drop.
 */
#ifndef MBX_CHARDEV_FW_H
#define MBX_CHARDEV_FW_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "transport.h"

#define CHARDEV_FW_OP_TRANSFER 0x0201
#define CHARDEV_FW_HEADER      128u /* Transfer FW input before the data (CXL r3.1 Table 8-57) */
#define CHARDEV_FW_PART_IDLE_S 30   /* a multi-part transfer silent this long is dropped */

enum chardev_fw_attr {
	CHARDEV_FW_LOADING,
	CHARDEV_FW_DATA,
	CHARDEV_FW_STATUS,
	CHARDEV_FW_REMAINING,
	CHARDEV_FW_ERROR,
	CHARDEV_FW_CANCEL,
	CHARDEV_FW_N_ATTRS,
};

enum chardev_fw_state {
	CHARDEV_FW_IDLE,      /* nothing handed to the kernel, no parts held */
	CHARDEV_FW_RECEIVING, /* Initiate/Continue parts written into `data` */
	CHARDEV_FW_RUNNING,   /* the kernel transfers and activates the image */
};

/* The device's firmware slots, from Get FW Info (CXL r3.1 Table 8-56). */
struct chardev_fw_slots {
	uint8_t n;      /* slots supported */
	uint8_t active; /* 1-based */
};

/* Reads the device's slots through the chardev; 0 or a negative errno. */
typedef int (*chardev_fw_slots_fn)(void *ctx, struct chardev_fw_slots *out, char *err,
				   size_t errlen);

struct chardev_fw {
	bool enabled;               /* the device set firmware_upload: true */
	char dir[PATH_MAX];         /* the upload folder; "" if not found */
	const char *memdev;         /* /dev/cxl/memN, for messages */
	int fd[CHARDEV_FW_N_ATTRS]; /* opened at open(), before the drop; -1 */
	int open_err;               /* why the route is missing (errno); 0 if usable */
	enum chardev_fw_state state;
	uint32_t received; /* bytes of the image in `data` so far */
	uint32_t size;     /* the image handed to the kernel */
	uint8_t slot;      /* the slot it goes to */
	struct timespec last_part;
};

/* Sets every descriptor to -1, the route to missing (ENODEV), nothing held. */
void chardev_fw_reset(struct chardev_fw *fw, const char *memdev);
/* Opens the upload folder under the memdev's sysfs folder; a missing one is kept as open_err. */
void chardev_fw_open(struct chardev_fw *fw, const char *sysdir);
void chardev_fw_close(struct chardev_fw *fw);

/* Runs Transfer FW (0201h) by the kernel's route; returns enum mbx_xport_rc. */
int chardev_fw_transfer(struct chardev_fw *fw, chardev_fw_slots_fn slots, void *ctx,
			struct mbx_transport_cmd *cmd);
/* Answers Background Operation Status (0002h) while the kernel's upload runs. */
int chardev_fw_bg_status(struct chardev_fw *fw, struct mbx_transport_cmd *cmd);
/*
 * Whether the kernel's upload still holds the device's mailbox: the kernel
 * keeps its mailbox lock through each background Transfer FW part (seconds),
 * so a command sent through the chardev meanwhile would wait in the ioctl.
 */
bool chardev_fw_kernel_busy(const struct chardev_fw *fw);
/* Asks the kernel to stop a running upload, or drops held parts (Request Abort). */
int chardev_fw_abort(struct chardev_fw *fw, struct mbx_transport_cmd *cmd);

/* Reads an open sysfs attribute from its start, without its newline; 0 or -errno. */
int chardev_pread_attr(int fd, char *buf, size_t len);

/* The CXL return code for a kernel upload error ("none", "hw-error", ...). */
uint16_t chardev_fw_error_rc(const char *error);

#endif
