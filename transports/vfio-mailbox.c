/*
 * The CXL mailbox protocol (CXL r3.1 8.2.8.4) driven from user space: the
 * doorbell handshake, the 64-bit command register written in one store,
 * polling with backoff under the spec's 2 s timeout, return code and vendor
 * status, output length checked against the mailbox, and the Background
 * Command Status register standing in for Background Operation Status
 * (0002h) on devices that do not implement it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../policy/catalog.h" /* enum cxl_rc and opcode numbers only */
#include "vfio-mailbox.h"

#define VMBOX_SPIN_POLLS   64 /* polls before the first sleep: emulated devices answer at once */
#define VMBOX_SLEEP_MAX_NS 1000000 /* backoff ceiling: 1 ms */

/* CLOCK_MONOTONIC in nanoseconds. */
static uint64_t vfio_mbox_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One step of the poll backoff: spin a little, then sleep 1 us doubling to 1 ms. */
static void vfio_mbox_backoff(unsigned *polls, uint64_t *sleep_ns)
{
	struct timespec ts;

	if (++*polls <= VMBOX_SPIN_POLLS)
		return;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)*sleep_ns;
	nanosleep(&ts, NULL);
	if (*sleep_ns < VMBOX_SLEEP_MAX_NS)
		*sleep_ns *= 2;
}

/* Reads one 16-byte capability header of the array. */
static void vfio_mbox_cap(const struct mmio *regs, unsigned i, uint16_t *id, uint32_t *off,
			  uint32_t *len)
{
	size_t h = VMBOX_CAPS_HEADER + (size_t)i * VMBOX_CAP_HEADER_SIZE;

	*id = (uint16_t)mmio_read32(regs, h);
	*off = mmio_read32(regs, h + 4);
	*len = mmio_read32(regs, h + 8);
}

/* Checks the mailbox capability's size and reads its payload size. */
static int vfio_mbox_payload(struct vfio_mbox *mb, char *err, size_t errlen)
{
	uint32_t caps = mmio_read32(mb->regs, mb->mbox + VMBOX_REG_CAPS);
	unsigned n = caps & 0x1f;

	if (caps == UINT32_MAX || n < VMBOX_PAYLOAD_LOG2_MIN || n > VMBOX_PAYLOAD_LOG2_MAX) {
		snprintf(err, errlen,
			 "mailbox capabilities register reads 0x%08" PRIx32
			 ": payload size 2^%u is outside 2^8..2^20",
			 caps, n);
		return -EPROTO;
	}
	if (VMBOX_REG_PAYLOAD + ((size_t)1 << n) > mb->mbox_len) {
		snprintf(err, errlen,
			 "mailbox payload of %u bytes overruns its %zu-byte capability", 1u << n,
			 mb->mbox_len);
		return -EPROTO;
	}
	mb->payload_size = 1u << n;
	return 0;
}

/* Walks the Device Capabilities Array to the primary mailbox and memory device status. */
int vfio_mbox_probe(struct vfio_mbox *mb, const struct mmio *regs, char *err, size_t errlen)
{
	uint64_t head = mmio_read64(regs, 0);
	unsigned count = (unsigned)(head >> 32) & 0xffff;

	memset(mb, 0, sizeof(*mb));
	mb->regs = regs;
	mb->ready_timeout_ms = 10000;
	mb->bg_timeout_ms = 24ull * 3600 * 1000;
	if (head == UINT64_MAX || (head & 0xffff) != 0 || count == 0 || count > VMBOX_CAPS_MAX ||
	    VMBOX_CAPS_HEADER + (size_t)count * VMBOX_CAP_HEADER_SIZE > regs->size) {
		snprintf(
		    err, errlen,
		    "no Device Capabilities Array at the start of the device registers (header "
		    "0x%016" PRIx64 ", %zu-byte block)",
		    head, regs->size);
		return -EPROTO;
	}
	for (unsigned i = 0; i < count; i++) {
		uint16_t id;
		uint32_t off, len;

		vfio_mbox_cap(regs, i, &id, &off, &len);
		if (id != VMBOX_CAP_MAILBOX && id != VMBOX_CAP_MEMDEV_STATUS)
			continue;
		if (off < VMBOX_CAPS_HEADER || off % 8 || off > regs->size ||
		    len > regs->size - off) {
			snprintf(err, errlen,
				 "capability %04xh at 0x%" PRIx32 " (+0x%" PRIx32
				 ") lies outside the %zu-byte device registers",
				 id, off, len, regs->size);
			return -EPROTO;
		}
		if (id == VMBOX_CAP_MAILBOX && !mb->mbox) {
			mb->mbox = off;
			mb->mbox_len = len;
		} else if (id == VMBOX_CAP_MEMDEV_STATUS && !mb->memdev_status && len >= 8)
			mb->memdev_status = off;
	}
	if (!mb->mbox) {
		snprintf(err, errlen,
			 "the device lists %u capabilities but no primary mailbox (0002h)", count);
		return -ENODEV;
	}
	return vfio_mbox_payload(mb, err, errlen);
}

/* Whether the mailbox can take a command: registers decode, and memory devices say ready. */
static bool vfio_mbox_is_ready(const struct vfio_mbox *mb)
{
	uint64_t md;

	if (mmio_read32(mb->regs, mb->mbox + VMBOX_REG_CAPS) == UINT32_MAX)
		return false;
	if (!mb->memdev_status)
		return true;
	md = mmio_read64(mb->regs, mb->memdev_status);
	return md != UINT64_MAX && (md & VMBOX_MEMDEV_MBOX_READY);
}

/* Waits until deadline for the doorbell to read clear. */
static bool vfio_mbox_wait_doorbell(const struct vfio_mbox *mb, uint64_t deadline)
{
	uint64_t sleep_ns = 1000;
	unsigned polls = 0;

	for (;;) {
		uint32_t ctl = mmio_read32(mb->regs, mb->mbox + VMBOX_REG_CONTROL);

		if (ctl != UINT32_MAX && !(ctl & VMBOX_DOORBELL))
			return true;
		if (vfio_mbox_now_ns() >= deadline)
			return false;
		vfio_mbox_backoff(&polls, &sleep_ns);
	}
}

/* Waits for a ready mailbox (after a reset, for instance) and an idle doorbell. */
int vfio_mbox_wait_ready(struct vfio_mbox *mb, uint32_t timeout_ms, char *err, size_t errlen)
{
	uint64_t deadline = vfio_mbox_now_ns() + (uint64_t)timeout_ms * 1000000u;
	uint64_t sleep_ns = 1000;
	unsigned polls = 0;

	while (!vfio_mbox_is_ready(mb)) {
		if (vfio_mbox_now_ns() >= deadline) {
			snprintf(err, errlen,
				 "mailbox not ready within %" PRIu32
				 " ms (memory device status 0x%016" PRIx64 ")",
				 timeout_ms,
				 mb->memdev_status ? mmio_read64(mb->regs, mb->memdev_status) : 0);
			return -ETIMEDOUT;
		}
		vfio_mbox_backoff(&polls, &sleep_ns);
	}
	/* A reset may bring back another payload size (after a firmware change). */
	if (vfio_mbox_payload(mb, err, errlen) < 0)
		return -EPROTO;
	if (!vfio_mbox_wait_doorbell(mb, deadline)) {
		snprintf(err, errlen, "mailbox doorbell still set after %" PRIu32 " ms",
			 timeout_ms);
		return -ETIMEDOUT;
	}
	return 0;
}

/* Copies in to the payload registers, 32 bits at a time, the last word zero-padded. */
static void vfio_mbox_put_payload(const struct vfio_mbox *mb, const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < len; i += 4) {
		uint32_t w = 0;

		for (size_t b = 0; b < 4 && i + b < len; b++)
			w |= (uint32_t)in[i + b] << (8 * b);
		mmio_write32(mb->regs, mb->mbox + VMBOX_REG_PAYLOAD + i, w);
	}
}

static void vfio_mbox_get_payload(const struct vfio_mbox *mb, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i += 4) {
		uint32_t w = mmio_read32(mb->regs, mb->mbox + VMBOX_REG_PAYLOAD + i);

		for (size_t b = 0; b < 4 && i + b < len; b++)
			out[i + b] = (uint8_t)(w >> (8 * b));
	}
}

/* Reads the answer: return code, vendor status, output checked against mailbox and buffer. */
static int vfio_mbox_answer(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd)
{
	uint64_t st = mmio_read64(mb->regs, mb->mbox + VMBOX_REG_STATUS);
	uint64_t len =
	    mmio_read64(mb->regs, mb->mbox + VMBOX_REG_COMMAND) >> VMBOX_LEN_SHIFT & VMBOX_LEN_MASK;

	if (st == UINT64_MAX) {
		snprintf(
		    cmd->error, sizeof(cmd->error),
		    "vfio: mailbox status reads all ones after opcode %04xh: device reset or gone",
		    cmd->opcode);
		return MBX_XPORT_IO;
	}
	cmd->cxl_rc = (uint16_t)(st >> 32);
	cmd->vendor_status = (uint16_t)(st >> 48);
	/* Only a successful answer carries output; an error's payload is not data. */
	if (cmd->cxl_rc != CXL_RC_SUCCESS && cmd->cxl_rc != CXL_RC_BACKGROUND_STARTED)
		return MBX_XPORT_OK;
	if (len > mb->payload_size) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: opcode %04xh: the device reports %" PRIu64
			 " output bytes, over its %" PRIu32 "-byte mailbox",
			 cmd->opcode, len, mb->payload_size);
		return MBX_XPORT_BAD_RESPONSE;
	}
	if (len > cmd->out_cap) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: opcode %04xh: %" PRIu64
			 " output bytes do not fit the %zu-byte buffer",
			 cmd->opcode, len, cmd->out_cap);
		return MBX_XPORT_BAD_RESPONSE;
	}
	vfio_mbox_get_payload(mb, cmd->out, (size_t)len);
	cmd->out_len = (size_t)len;
	if (cmd->cxl_rc == CXL_RC_BACKGROUND_STARTED) {
		mb->bg_running = true;
		mb->bg_opcode = cmd->opcode;
		mb->bg_start_ns = vfio_mbox_now_ns();
	}
	return MBX_XPORT_OK;
}

/* The handshake: ready, idle doorbell, payload, one 64-bit command store, doorbell, poll. */
static int vfio_mbox_run(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd, uint32_t timeout_ms)
{
	uint64_t deadline = vfio_mbox_now_ns() + (uint64_t)timeout_ms * 1000000u;
	char why[128];

	if (!vfio_mbox_is_ready(mb)) {
		mb->stats.not_ready++;
		if (vfio_mbox_wait_ready(mb, timeout_ms, why, sizeof(why)) < 0) {
			snprintf(cmd->error, sizeof(cmd->error), "vfio: opcode %04xh not sent: %s",
				 cmd->opcode, why);
			return MBX_XPORT_TIMEOUT;
		}
		if (cmd->in_len > mb->payload_size) {
			snprintf(cmd->error, sizeof(cmd->error),
				 "vfio: %zu-byte input exceeds the %" PRIu32 "-byte mailbox",
				 cmd->in_len, mb->payload_size);
			return MBX_XPORT_TOO_BIG;
		}
	}
	/* Writing payload or command while the doorbell is set would corrupt the running command.
	 */
	if (!vfio_mbox_wait_doorbell(mb, deadline)) {
		snprintf(
		    cmd->error, sizeof(cmd->error),
		    "vfio: opcode %04xh not sent: the doorbell of an earlier command is still set "
		    "after %" PRIu32 " ms (device busy or hung)",
		    cmd->opcode, timeout_ms);
		return MBX_XPORT_TIMEOUT;
	}
	vfio_mbox_put_payload(mb, cmd->in, cmd->in_len);
	mmio_write64(mb->regs, mb->mbox + VMBOX_REG_COMMAND,
		     cmd->opcode | (uint64_t)cmd->in_len << VMBOX_LEN_SHIFT);
	mmio_write32(mb->regs, mb->mbox + VMBOX_REG_CONTROL,
		     mmio_read32(mb->regs, mb->mbox + VMBOX_REG_CONTROL) | VMBOX_DOORBELL);
	mb->stats.doorbells++;
	if (!vfio_mbox_wait_doorbell(mb, deadline)) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: no answer to opcode %04xh within %" PRIu32
			 " ms (doorbell still set)",
			 cmd->opcode, timeout_ms);
		return MBX_XPORT_TIMEOUT;
	}
	return vfio_mbox_answer(mb, cmd);
}

/*
 * Follows what the device says of its background operation: forgets a
 * finished one, reports one that outlives bg_timeout_ms as stuck (the
 * device never cleared the bit), and one lost to a reset as lost.
 */
static int vfio_mbox_bg_seen(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd, bool running,
			     uint16_t opcode)
{
	uint64_t now = vfio_mbox_now_ns();

	if (!running) {
		bool lost = mb->bg_running && opcode != mb->bg_opcode;
		uint16_t was = mb->bg_opcode;

		mb->bg_running = false;
		if (lost) {
			snprintf(
			    cmd->error, sizeof(cmd->error),
			    "vfio: background operation %04xh vanished (the device was reset?): "
			    "its outcome is unknown",
			    was);
			return MBX_XPORT_IO;
		}
		return MBX_XPORT_OK;
	}
	if (!mb->bg_running || opcode != mb->bg_opcode) { /* started before us, or by another */
		mb->bg_running = true;
		mb->bg_opcode = opcode;
		mb->bg_start_ns = now;
	}
	if ((now - mb->bg_start_ns) / 1000000u >= mb->bg_timeout_ms) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: background operation %04xh still running after %" PRIu64
			 " ms: the device never cleared its background bit",
			 opcode, (now - mb->bg_start_ns) / 1000000u);
		return MBX_XPORT_TIMEOUT;
	}
	return MBX_XPORT_OK;
}

/* Background Operation Status (0002h) built from the Background Command Status register. */
static int vfio_mbox_bg_register(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd)
{
	uint64_t st = mmio_read64(mb->regs, mb->mbox + VMBOX_REG_STATUS);
	uint64_t bg = mmio_read64(mb->regs, mb->mbox + VMBOX_REG_BG);
	bool running = st & VMBOX_STATUS_BG;
	uint16_t opcode = (uint16_t)bg;
	uint8_t *o = cmd->out;
	int rc;

	if (st == UINT64_MAX || bg == UINT64_MAX) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: background status registers read all ones: device reset or gone");
		return MBX_XPORT_IO;
	}
	if (cmd->out_cap < VMBOX_BG_STATUS_SIZE) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: Background Operation Status needs 8 output bytes, %zu offered",
			 cmd->out_cap);
		return MBX_XPORT_BAD_RESPONSE;
	}
	if ((rc = vfio_mbox_bg_seen(mb, cmd, running, opcode)) != MBX_XPORT_OK)
		return rc;
	mb->stats.bg_synth++;
	/* CXL r3.1 Table 8-38: [0] running, [7:1] percent; opcode, return code, vendor status. */
	memset(o, 0, VMBOX_BG_STATUS_SIZE);
	o[0] = (uint8_t)((running ? 1 : 0) | ((bg >> 16) & 0x7f) << 1);
	o[2] = (uint8_t)opcode;
	o[3] = (uint8_t)(opcode >> 8);
	if (!running) {
		o[4] = (uint8_t)(bg >> 32);
		o[5] = (uint8_t)(bg >> 40);
		o[6] = (uint8_t)(bg >> 48);
		o[7] = (uint8_t)(bg >> 56);
	}
	cmd->out_len = VMBOX_BG_STATUS_SIZE;
	cmd->cxl_rc = CXL_RC_SUCCESS;
	return MBX_XPORT_OK;
}

/*
 * Background Operation Status: the device's own answer when it implements
 * 0002h (learnt from the first ask), the register otherwise.
 */
static int vfio_mbox_bg_status(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd,
			       uint32_t timeout_ms)
{
	int rc;

	if (mb->bg_source == VMBOX_BG_REGISTER)
		return vfio_mbox_bg_register(mb, cmd);
	rc = vfio_mbox_run(mb, cmd, timeout_ms);
	if (rc != MBX_XPORT_OK)
		return rc;
	if (mb->bg_source == VMBOX_BG_UNKNOWN) {
		if (cmd->cxl_rc == CXL_RC_UNSUPPORTED) {
			mb->bg_source = VMBOX_BG_REGISTER;
			cmd->cxl_rc = 0;
			cmd->vendor_status = 0;
			return vfio_mbox_bg_register(mb, cmd);
		}
		mb->bg_source = VMBOX_BG_DEVICE;
	}
	if (cmd->cxl_rc != CXL_RC_SUCCESS || cmd->out_len < VMBOX_BG_STATUS_SIZE)
		return MBX_XPORT_OK;
	return vfio_mbox_bg_seen(mb, cmd, cmd->out[0] & 1,
				 (uint16_t)(cmd->out[2] | cmd->out[3] << 8));
}

/* Runs one command. */
int vfio_mbox_submit(struct vfio_mbox *mb, struct mbx_transport_cmd *cmd)
{
	uint32_t timeout_ms = cmd->timeout_ms ? cmd->timeout_ms : VMBOX_TIMEOUT_MS;

	cmd->out_len = 0;
	cmd->cxl_rc = 0;
	cmd->vendor_status = 0;
	cmd->error[0] = '\0';
	/* Checked before any register access: the mailbox cannot hold it. */
	if (cmd->in_len > mb->payload_size) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "vfio: %zu-byte input exceeds the %" PRIu32 "-byte mailbox", cmd->in_len,
			 mb->payload_size);
		return MBX_XPORT_TOO_BIG;
	}
	if (cmd->in_len && !cmd->in) {
		snprintf(cmd->error, sizeof(cmd->error), "vfio: %zu input bytes but no buffer",
			 cmd->in_len);
		return MBX_XPORT_IO;
	}
	if (cmd->opcode == CXL_OP_BG_STATUS)
		return vfio_mbox_bg_status(mb, cmd, timeout_ms);
	return vfio_mbox_run(mb, cmd, timeout_ms);
}
