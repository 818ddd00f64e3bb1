/*
 * The sim device's mailbox as a register file (CXL r3.1 8.2.8): a Device
 * Registers block with a Device Capabilities Array, device status, the
 * primary mailbox and (for a memory device) memory device status, with the
 * spec's doorbell semantics. Commands rung in run on the sim models through
 * sim_transport_ops, so the vfio transport's mailbox driver can be tested
 * on every path without hardware: quirks imitate what real and emulated
 * devices do wrong.
 */
#ifndef MBX_SIM_REGS_H
#define MBX_SIM_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmio.h"

#define SIM_REGS_STUCK_DOORBELL   (1u << 0) /* the doorbell never clears once rung */
#define SIM_REGS_STUCK_BACKGROUND (1u << 1) /* the background bit never clears once set */
#define SIM_REGS_OVERLONG_OUTPUT  (1u << 2) /* answers report more output than the mailbox holds */
#define SIM_REGS_FORCE_RC         (1u << 3) /* every command answers force_rc / force_vendor */
#define SIM_REGS_NO_IDENTIFY      (1u << 4) /* 0001h unsupported (QEMU's cxl-type3) */
#define SIM_REGS_NO_BG_STATUS     (1u << 5) /* 0002h unsupported: only the register tells */
#define SIM_REGS_CEL_DUPLICATES   (1u << 6) /* each reset appends the CEL again (QEMU 7.2) */
#define SIM_REGS_SPLIT_COMMAND                                                                     \
	(1u << 7) /* a 32-bit write zeroes the command register (QEMU 7.2)                         \
		   */

struct sim_regs_config {
	const char *model;     /* "memdev" (default) or "switch" */
	uint32_t payload_size; /* power of two; default 2048, as QEMU's type3 */
	uint32_t quirks;       /* SIM_REGS_* */
	unsigned busy_polls;   /* control register reads before the doorbell clears */
	uint16_t force_rc;
	uint16_t force_vendor;
	uint64_t sanitize_ms; /* of the memory device model */
};

/* What the device saw: tests assert on these. */
struct sim_regs_stats {
	unsigned long doorbells; /* commands rung */
	unsigned long
	    writes_while_busy;      /* payload, command or control writes with the doorbell set */
	unsigned long split_writes; /* 32-bit writes to the command register */
	unsigned long resets;
};

struct sim_regs;

/* Builds the register file and its model; -EINVAL/-ENOMEM with err. */
int sim_regs_new(const struct sim_regs_config *cfg, struct sim_regs **out, char *err,
		 size_t errlen);
void sim_regs_free(struct sim_regs *r);
/* The Device Registers block, valid until sim_regs_free. */
const struct mmio *sim_regs_mmio(struct sim_regs *r);
const struct sim_regs_stats *sim_regs_stats(const struct sim_regs *r);
/*
 * A device reset: the model starts over (a running background operation is
 * gone), the mailbox registers clear, and "mailbox interface ready" stays
 * low for not_ready_reads reads of the memory device status.
 */
int sim_regs_reset(struct sim_regs *r, unsigned not_ready_reads);
/* Sets the doorbell as if another driver had rung it and the device were busy. */
void sim_regs_hold_doorbell(struct sim_regs *r, bool held);

#endif
