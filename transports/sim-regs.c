/*
 * The sim device's Device Registers block (CXL r3.1 8.2.8) with the
 * mailbox's doorbell semantics, backed by the sim models through
 * sim_transport_ops. Laid out as QEMU's cxl-type3 lays it out: the
 * capabilities array at 0, device status at 80h, the mailbox at 88h, memory
 * device status right after the mailbox's payload.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../policy/catalog.h" /* enum cxl_rc and opcode numbers only */
#include "sim-model.h"
#include "sim-regs.h"
#include "transport.h"
#include "vfio-mailbox.h"

extern const struct mbx_transport_ops sim_transport_ops;

#define SIM_REGS_DEVSTATUS 0x80
#define SIM_REGS_MBOX      0x88
#define SIM_REGS_BUSY_PCT  50 /* percent a stuck background operation stays at */

struct sim_regs {
	struct sim_regs_config cfg;
	bool is_switch;
	void *sim; /* sim_transport_ops private state */
	bool sim_open;
	uint8_t *mem; /* the register file's backing bytes */
	size_t size;
	size_t memdev_status; /* 0 on a switch */
	uint8_t *in, *out;    /* payload_size bytes each */
	unsigned busy_left;   /* control reads before the doorbell clears */
	bool held;            /* sim_regs_hold_doorbell */
	bool bg_stuck;        /* SIM_REGS_STUCK_BACKGROUND after a background start */
	uint16_t bg_stuck_opcode;
	unsigned not_ready;
	struct sim_regs_stats stats;
	struct mmio mmio;
};

static uint64_t sim_regs_get(const struct sim_regs *r, size_t off, size_t width)
{
	uint64_t v = 0;

	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)r->mem[off + i] << (8 * i);
	return v;
}

static void sim_regs_put(struct sim_regs *r, size_t off, size_t width, uint64_t v)
{
	for (size_t i = 0; i < width; i++)
		r->mem[off + i] = (uint8_t)(v >> (8 * i));
}

/* Runs one command on the model, outside the register protocol. */
static uint16_t sim_regs_model(struct sim_regs *r, uint16_t opcode, const uint8_t *in,
			       size_t in_len, size_t *out_len)
{
	struct mbx_transport_cmd c = {
	    .opcode = opcode,
	    .in = in,
	    .in_len = in_len,
	    .out = r->out,
	    .out_cap = r->cfg.payload_size,
	    .timeout_ms = 2000,
	};

	*out_len = 0;
	if (sim_transport_ops.submit(r->sim, &c) != MBX_XPORT_OK)
		return CXL_RC_INTERNAL_ERROR;
	*out_len = c.out_len;
	return c.cxl_rc;
}

/* Refreshes the status and Background Command Status registers from the model's 0002h. */
static void sim_regs_bg_refresh(struct sim_regs *r)
{
	size_t st = SIM_REGS_MBOX + VMBOX_REG_STATUS, bgr = SIM_REGS_MBOX + VMBOX_REG_BG, n;
	uint64_t status = sim_regs_get(r, st, 8) & ~VMBOX_STATUS_BG, bg;
	bool running;

	if (r->bg_stuck) {
		sim_regs_put(r, st, 8, status | VMBOX_STATUS_BG);
		sim_regs_put(r, bgr, 8, r->bg_stuck_opcode | (uint64_t)SIM_REGS_BUSY_PCT << 16);
		return;
	}
	if (sim_regs_model(r, CXL_OP_BG_STATUS, NULL, 0, &n) != CXL_RC_SUCCESS || n < 8)
		return;
	running = r->out[0] & 1;
	bg = sim_get_le16(r->out + 2) | (uint64_t)(r->out[0] >> 1) << 16 |
	     (uint64_t)sim_get_le16(r->out + 4) << 32 | (uint64_t)sim_get_le16(r->out + 6) << 48;
	sim_regs_put(r, st, 8, status | (running ? VMBOX_STATUS_BG : 0));
	sim_regs_put(r, bgr, 8, bg);
}

/* Get Supported Logs with the CEL's size grown by every reset (QEMU 7.2's duplicates). */
static uint16_t sim_regs_dup_logs(struct sim_regs *r, size_t *out_len)
{
	uint16_t rc = sim_regs_model(r, CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, out_len);
	uint8_t *size = r->out + SIM_SUPPORTED_LOGS_HEADER + SIM_UUID_SIZE;

	if (rc == CXL_RC_SUCCESS && *out_len >= SIM_SUPPORTED_LOGS_HEADER + SIM_SUPPORTED_LOG_ENTRY)
		sim_put_le32(size, sim_get_le32(size) * (uint32_t)(r->stats.resets + 1));
	return rc;
}

/* Get Log of a CEL that repeats the model's once per reset. */
static uint16_t sim_regs_dup_cel(struct sim_regs *r, const uint8_t *in, size_t in_len,
				 size_t *out_len)
{
	uint8_t q[SIM_GET_LOG_IN_SIZE], base[SIM_PAYLOAD_MIN * 4];
	uint32_t size, offset, length, total;
	size_t n;

	*out_len = 0;
	if (in_len != SIM_GET_LOG_IN_SIZE || memcmp(in, sim_cel_uuid, SIM_UUID_SIZE) != 0)
		return sim_regs_model(r, CXL_OP_GET_LOG, in, in_len, out_len);
	if (sim_regs_model(r, CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, &n) != CXL_RC_SUCCESS)
		return CXL_RC_INTERNAL_ERROR;
	size = sim_get_le32(r->out + SIM_SUPPORTED_LOGS_HEADER + SIM_UUID_SIZE);
	memcpy(q, sim_cel_uuid, SIM_UUID_SIZE);
	sim_put_le32(q + 16, 0);
	sim_put_le32(q + 20, size);
	if (size == 0 || size > sizeof(base) ||
	    sim_regs_model(r, CXL_OP_GET_LOG, q, sizeof(q), &n) != CXL_RC_SUCCESS || n != size)
		return CXL_RC_INTERNAL_ERROR;
	memcpy(base, r->out, size);
	offset = sim_get_le32(in + 16);
	length = sim_get_le32(in + 20);
	total = size * (uint32_t)(r->stats.resets + 1);
	if (length > r->cfg.payload_size || offset > total || length > total - offset)
		return CXL_RC_INVALID_INPUT;
	for (uint32_t i = 0; i < length; i++)
		r->out[i] = base[(offset + i) % size];
	*out_len = length;
	return CXL_RC_SUCCESS;
}

/* The quirks that answer in place of the model; false when the model should answer. */
static bool sim_regs_quirk(struct sim_regs *r, uint16_t opcode, uint16_t *rc, uint16_t *vendor)
{
	uint32_t q = r->cfg.quirks;

	if (q & SIM_REGS_FORCE_RC) {
		*rc = r->cfg.force_rc;
		*vendor = r->cfg.force_vendor;
		return true;
	}
	if (((q & SIM_REGS_NO_IDENTIFY) && opcode == CXL_OP_IDENTIFY) ||
	    ((q & SIM_REGS_NO_BG_STATUS) && opcode == CXL_OP_BG_STATUS)) {
		*rc = CXL_RC_UNSUPPORTED;
		return true;
	}
	return false;
}

/* The doorbell was rung: runs the command in the registers and writes the answer back. */
static void sim_regs_execute(struct sim_regs *r)
{
	size_t m = SIM_REGS_MBOX;
	uint64_t cmd = sim_regs_get(r, m + VMBOX_REG_COMMAND, 8);
	uint16_t opcode = (uint16_t)cmd, rc = CXL_RC_SUCCESS, vendor = 0;
	size_t len = (size_t)(cmd >> VMBOX_LEN_SHIFT & VMBOX_LEN_MASK), out_len = 0;
	uint64_t reported;

	r->stats.doorbells++;
	if (len > r->cfg.payload_size)
		rc = CXL_RC_INVALID_PAYLOAD_LENGTH;
	else if (!sim_regs_quirk(r, opcode, &rc, &vendor)) {
		memcpy(r->in, r->mem + m + VMBOX_REG_PAYLOAD, len);
		if ((r->cfg.quirks & SIM_REGS_CEL_DUPLICATES) &&
		    opcode == CXL_OP_GET_SUPPORTED_LOGS)
			rc = sim_regs_dup_logs(r, &out_len);
		else if ((r->cfg.quirks & SIM_REGS_CEL_DUPLICATES) && opcode == CXL_OP_GET_LOG)
			rc = sim_regs_dup_cel(r, r->in, len, &out_len);
		else
			rc = sim_regs_model(r, opcode, r->in, len, &out_len);
	}
	memcpy(r->mem + m + VMBOX_REG_PAYLOAD, r->out, out_len);
	reported = (r->cfg.quirks & SIM_REGS_OVERLONG_OUTPUT) ? r->cfg.payload_size + 4u : out_len;
	sim_regs_put(r, m + VMBOX_REG_COMMAND, 8, opcode | reported << VMBOX_LEN_SHIFT);
	sim_regs_put(r, m + VMBOX_REG_STATUS, 8, (uint64_t)rc << 32 | (uint64_t)vendor << 48);
	if (rc == CXL_RC_BACKGROUND_STARTED && (r->cfg.quirks & SIM_REGS_STUCK_BACKGROUND)) {
		r->bg_stuck = true;
		r->bg_stuck_opcode = opcode;
	}
	sim_regs_bg_refresh(r);
}

/* Whether off falls in the mailbox's writable registers: command and payload. */
static bool sim_regs_mbox_data(const struct sim_regs *r, size_t off)
{
	size_t m = SIM_REGS_MBOX;

	return (off >= m + VMBOX_REG_COMMAND && off < m + VMBOX_REG_STATUS) ||
	       (off >= m + VMBOX_REG_PAYLOAD && off < m + VMBOX_REG_PAYLOAD + r->cfg.payload_size);
}

static bool sim_regs_doorbell(const struct sim_regs *r)
{
	return sim_regs_get(r, SIM_REGS_MBOX + VMBOX_REG_CONTROL, 4) & VMBOX_DOORBELL;
}

/* Reads with side effects: the doorbell clears after busy_polls reads, ready after a reset. */
static uint64_t sim_regs_read(struct sim_regs *r, size_t off, size_t width)
{
	size_t m = SIM_REGS_MBOX;

	if (r->memdev_status && off == r->memdev_status) {
		if (r->not_ready) {
			r->not_ready--;
			return 0;
		}
		return VMBOX_MEMDEV_MBOX_READY | 1u << 2; /* media ready */
	}
	if (off == m + VMBOX_REG_CONTROL && sim_regs_doorbell(r) && !r->held &&
	    !(r->cfg.quirks & SIM_REGS_STUCK_DOORBELL)) {
		if (r->busy_left)
			r->busy_left--;
		else
			sim_regs_put(r, off, 4, sim_regs_get(r, off, 4) & ~VMBOX_DOORBELL);
	}
	if (off == m + VMBOX_REG_STATUS || off == m + VMBOX_REG_BG)
		sim_regs_bg_refresh(r);
	return sim_regs_get(r, off, width);
}

/* Writes: the control register rings, data registers are ignored while the doorbell is set. */
static void sim_regs_write(struct sim_regs *r, size_t off, size_t width, uint64_t v)
{
	size_t ctl = SIM_REGS_MBOX + VMBOX_REG_CONTROL;

	if (off == ctl) {
		if (sim_regs_doorbell(r)) {
			r->stats.writes_while_busy++;
			return;
		}
		sim_regs_put(r, off, 4, v);
		if (v & VMBOX_DOORBELL) {
			r->busy_left = r->cfg.busy_polls;
			sim_regs_execute(r);
		}
		return;
	}
	if (!sim_regs_mbox_data(r, off))
		return; /* capability headers and status registers are read-only */
	if (sim_regs_doorbell(r)) {
		r->stats.writes_while_busy++;
		return;
	}
	if (off >= SIM_REGS_MBOX + VMBOX_REG_COMMAND && off < SIM_REGS_MBOX + VMBOX_REG_STATUS &&
	    width == 4) {
		r->stats.split_writes++;
		if (r->cfg.quirks & SIM_REGS_SPLIT_COMMAND) {
			sim_regs_put(r, SIM_REGS_MBOX + VMBOX_REG_COMMAND, 8, 0);
			return;
		}
	}
	sim_regs_put(r, off, width, v);
}

static uint32_t sim_regs_read32(void *ctx, size_t off)
{
	return (uint32_t)sim_regs_read(ctx, off, 4);
}

static uint64_t sim_regs_read64(void *ctx, size_t off)
{
	return sim_regs_read(ctx, off, 8);
}

static void sim_regs_write32(void *ctx, size_t off, uint32_t v)
{
	sim_regs_write(ctx, off, 4, v);
}

static void sim_regs_write64(void *ctx, size_t off, uint64_t v)
{
	sim_regs_write(ctx, off, 8, v);
}

static const struct mmio_ops sim_regs_ops = {
    .read32 = sim_regs_read32,
    .read64 = sim_regs_read64,
    .write32 = sim_regs_write32,
    .write64 = sim_regs_write64,
};

/* Opens a fresh model: at creation and at every reset. */
static int sim_regs_open_model(struct sim_regs *r, char *err, size_t errlen)
{
	char payload[16], sanitize[24];
	struct mbx_transport_option opts[] = {
	    {.key = "model", .value = r->is_switch ? "switch" : "memdev", .line = 1},
	    {.key = "payload_max", .value = payload, .line = 2},
	    {.key = "sanitize_ms", .value = sanitize, .line = 3},
	};
	struct mbx_transport_config tc = {
	    .device_name = "sim-regs",
	    .config_file = "sim-regs",
	    .options = opts,
	    .n_options = 3,
	};
	int rc;

	snprintf(payload, sizeof(payload), "%u", r->cfg.payload_size);
	snprintf(sanitize, sizeof(sanitize), "%llu", (unsigned long long)r->cfg.sanitize_ms);
	if (r->sim_open)
		sim_transport_ops.close(r->sim);
	memset(r->sim, 0, sim_transport_ops.priv_size);
	rc = sim_transport_ops.open(r->sim, &tc, err, errlen);
	r->sim_open = rc == 0;
	return rc;
}

/* Lays out the capabilities array and the mailbox's capabilities register. */
static void sim_regs_layout(struct sim_regs *r)
{
	unsigned count = r->memdev_status ? 3 : 2, log2 = 0;
	const struct {
		uint16_t id;
		size_t off, len;
	} caps[3] = {
	    {VMBOX_CAP_DEVICE_STATUS, SIM_REGS_DEVSTATUS, 8},
	    {VMBOX_CAP_MAILBOX, SIM_REGS_MBOX, VMBOX_REG_PAYLOAD + r->cfg.payload_size},
	    {VMBOX_CAP_MEMDEV_STATUS, r->memdev_status, 8},
	};

	while ((1u << log2) < r->cfg.payload_size)
		log2++;
	/* Array header: capability id 0, version 1, count in [47:32]. */
	sim_regs_put(r, 0, 8, 1u << 16 | (uint64_t)count << 32);
	for (unsigned i = 0; i < count; i++) {
		size_t h = VMBOX_CAPS_HEADER + i * VMBOX_CAP_HEADER_SIZE;

		sim_regs_put(r, h, 4, caps[i].id | 1u << 16);
		sim_regs_put(r, h + 4, 4, caps[i].off);
		sim_regs_put(r, h + 8, 4, caps[i].len);
	}
	sim_regs_put(r, SIM_REGS_MBOX + VMBOX_REG_CAPS, 4, log2);
}

/* Builds the register file. */
int sim_regs_new(const struct sim_regs_config *cfg, struct sim_regs **out, char *err, size_t errlen)
{
	struct sim_regs *r = calloc(1, sizeof(*r));
	size_t end;
	int rc;

	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	if (!r->cfg.payload_size)
		r->cfg.payload_size = 2048;
	r->is_switch = cfg->model && strcmp(cfg->model, "switch") == 0;
	end = SIM_REGS_MBOX + VMBOX_REG_PAYLOAD + r->cfg.payload_size;
	if (!r->is_switch)
		r->memdev_status = end;
	r->size = end + (r->is_switch ? 0 : 8);
	r->mem = calloc(1, r->size);
	r->in = malloc(r->cfg.payload_size);
	r->out = malloc(r->cfg.payload_size);
	r->sim = calloc(1, sim_transport_ops.priv_size);
	if (!r->mem || !r->in || !r->out || !r->sim) {
		sim_regs_free(r);
		return -ENOMEM;
	}
	if ((rc = sim_regs_open_model(r, err, errlen)) < 0) {
		sim_regs_free(r);
		return rc;
	}
	sim_regs_layout(r);
	r->mmio = (struct mmio){.ops = &sim_regs_ops, .ctx = r, .size = r->size};
	*out = r;
	return 0;
}

void sim_regs_free(struct sim_regs *r)
{
	if (!r)
		return;
	if (r->sim_open)
		sim_transport_ops.close(r->sim);
	free(r->sim);
	free(r->mem);
	free(r->in);
	free(r->out);
	free(r);
}

const struct mmio *sim_regs_mmio(struct sim_regs *r)
{
	return &r->mmio;
}

const struct sim_regs_stats *sim_regs_stats(const struct sim_regs *r)
{
	return &r->stats;
}

/* Resets the device: a new model, clear mailbox registers, not ready for a while. */
int sim_regs_reset(struct sim_regs *r, unsigned not_ready_reads)
{
	char err[160];
	int rc = sim_regs_open_model(r, err, sizeof(err));

	memset(r->mem + SIM_REGS_MBOX + VMBOX_REG_CONTROL, 0,
	       VMBOX_REG_PAYLOAD - VMBOX_REG_CONTROL + r->cfg.payload_size);
	r->busy_left = 0;
	r->held = false;
	r->bg_stuck = false;
	r->not_ready = not_ready_reads;
	r->stats.resets++;
	return rc;
}

/* Holds the doorbell set, as a device busy with another driver's command. */
void sim_regs_hold_doorbell(struct sim_regs *r, bool held)
{
	size_t ctl = SIM_REGS_MBOX + VMBOX_REG_CONTROL;
	uint64_t v = sim_regs_get(r, ctl, 4);

	r->held = held;
	sim_regs_put(r, ctl, 4, held ? v | VMBOX_DOORBELL : v & ~(uint64_t)VMBOX_DOORBELL);
}
