/*
 * The CXL mailbox protocol over a register block (CXL r3.1 8.2.8.4), for
 * the vfio transport: mbxd as the device's driver. Register access goes
 * through struct mmio, so unit tests run this code on the sim device's
 * register model (sim-regs.h).
 *
 * One command at a time: the caller (the device's worker thread) never
 * calls submit concurrently on one mailbox.
 */
#ifndef MBX_VFIO_MAILBOX_H
#define MBX_VFIO_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmio.h"
#include "transport.h"

/* Device Capabilities Array (CXL r3.1 8.2.8.1, 8.2.8.2): ids of the capabilities used here. */
#define VMBOX_CAP_DEVICE_STATUS 0x0001
#define VMBOX_CAP_MAILBOX       0x0002
#define VMBOX_CAP_MEMDEV_STATUS 0x4000
#define VMBOX_CAPS_HEADER       0x10 /* array header, then 16-byte capability headers */
#define VMBOX_CAP_HEADER_SIZE   0x10
#define VMBOX_CAPS_MAX          64 /* more than any device defines; bounds the walk */

/* Mailbox registers, relative to the mailbox capability (CXL r3.1 8.2.8.4.3-8.2.8.4.8). */
#define VMBOX_REG_CAPS    0x00 /* payload size 2^n in [4:0] */
#define VMBOX_REG_CONTROL 0x04 /* doorbell in [0] */
#define VMBOX_REG_COMMAND 0x08 /* 64-bit: opcode [15:0], payload length [36:16] */
#define VMBOX_REG_STATUS  0x10 /* background [0], return code [47:32], vendor [63:48] */
#define VMBOX_REG_BG      0x18 /* opcode [15:0], percent [22:16], rc [47:32], vendor [63:48] */
#define VMBOX_REG_PAYLOAD 0x20

#define VMBOX_DOORBELL          (1u << 0)
#define VMBOX_LEN_SHIFT         16
#define VMBOX_LEN_MASK          0x1fffffull /* 21 bits: up to 1 MiB */
#define VMBOX_STATUS_BG         (1ull << 0)
#define VMBOX_MEMDEV_MBOX_READY (1ull << 4) /* Memory Device Status, CXL r3.1 8.2.8.5.1.1 */
#define VMBOX_PAYLOAD_LOG2_MIN  8
#define VMBOX_PAYLOAD_LOG2_MAX  20
#define VMBOX_TIMEOUT_MS        2000u /* the spec's foreground command timeout */
#define VMBOX_BG_STATUS_SIZE    8     /* Background Operation Status output */

/* Where Background Operation Status (0002h) answers come from. */
enum vmbox_bg_source {
	VMBOX_BG_UNKNOWN = 0, /* not asked yet */
	VMBOX_BG_DEVICE,      /* the device implements 0002h: passed through */
	VMBOX_BG_REGISTER, /* it does not: answered from the Background Command Status register */
};

/* What the driver did, for tests and for the doorbell count mbxd may report. */
struct vmbox_stats {
	uint64_t doorbells; /* commands handed to the device */
	uint64_t not_ready; /* times the mailbox was found not ready (a reset) and waited for */
	uint64_t bg_synth;  /* 0002h answers built from the register */
};

struct vfio_mbox {
	const struct mmio *regs; /* the Device Registers block */
	size_t mbox;             /* offset of the primary mailbox capability */
	size_t mbox_len;
	size_t memdev_status; /* 0: no Memory Device Status capability (a switch CCI) */
	uint32_t payload_size;
	uint32_t ready_timeout_ms; /* how long open waits for "mailbox interface ready" */
	uint64_t bg_timeout_ms;    /* a background operation running longer is reported stuck */
	enum vmbox_bg_source bg_source;
	bool bg_running; /* as far as this driver knows */
	uint16_t bg_opcode;
	uint64_t bg_start_ns;
	struct vmbox_stats stats;
};

/*
 * Walks the Device Capabilities Array of regs to the primary mailbox and the
 * memory device status; reads the payload size. -ENODEV/-EPROTO with err.
 */
int vfio_mbox_probe(struct vfio_mbox *mb, const struct mmio *regs, char *err, size_t errlen);

/*
 * Waits up to timeout_ms for "mailbox interface ready" (memory devices) and
 * a register block that decodes (not all ones), then for an idle doorbell.
 */
int vfio_mbox_wait_ready(struct vfio_mbox *mb, uint32_t timeout_ms, char *err, size_t errlen);

/* Runs one command; returns enum mbx_xport_rc, with cmd->error naming any failure. */
int vfio_mbox_submit(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd);

#endif
