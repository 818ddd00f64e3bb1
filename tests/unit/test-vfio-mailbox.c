/*
 * The vfio transport's mailbox driver on the sim device's register file
 * (sim-regs): every path of the protocol, the quirks real and emulated
 * devices have, and the transport's PCI config walk and group checks on a
 * fake sysfs. The VFIO ioctls themselves run against the real kernel in
 * tests/qemu/run-vfio.sh.
 */
#include <check.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "../../policy/policy.h"
#include "../../transports/sim-model.h"
#include "../../transports/sim-regs.h"
#include "../../transports/vfio.c"

static struct sim_regs *regs;
static struct vfio_mbox mb;
static uint8_t out[4096];

/* A register file with the given quirks and a probed driver on it. */
static void dev_new(const char *model, uint32_t quirks, unsigned busy_polls)
{
	struct sim_regs_config c = {
	    .model = model, .quirks = quirks, .busy_polls = busy_polls, .sanitize_ms = 200};
	char err[160];

	ck_assert_int_eq(sim_regs_new(&c, &regs, err, sizeof(err)), 0);
	ck_assert_int_eq(vfio_mbox_probe(&mb, sim_regs_mmio(regs), err, sizeof(err)), 0);
}

static void dev_free(void)
{
	sim_regs_free(regs);
	regs = NULL;
}

/* Runs one command; returns the transport code. */
static int run(uint16_t opcode, const void *in, size_t in_len, struct mbx_transport_cmd *c,
	       uint32_t timeout_ms)
{
	*c = (struct mbx_transport_cmd){.opcode = opcode,
					.in = in,
					.in_len = in_len,
					.out = out,
					.out_cap = sizeof(out),
					.timeout_ms = timeout_ms};
	return vfio_mbox_submit(&mb, c);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

START_TEST(probe_memdev_and_switch)
{
	dev_new("memdev", 0, 0);
	ck_assert_uint_eq(mb.payload_size, 2048);
	ck_assert_uint_eq(mb.mbox, 0x88);
	ck_assert_uint_eq(mb.memdev_status, 0x88 + 0x20 + 2048);
	dev_free();
	dev_new("switch", 0, 0);
	ck_assert_uint_eq(mb.memdev_status, 0);
	ck_assert_uint_eq(mb.payload_size, 2048);
	dev_free();
}
END_TEST

/* Malformed capability arrays in plain memory: each refused with its cause. */
START_TEST(probe_refuses_malformed_arrays)
{
	uint8_t buf[0x200] = {0};
	struct mmio_mem mem = {.buf = buf, .size = sizeof(buf)};
	struct mmio m;
	char err[160];

	mmio_mem_init(&m, &mem);
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "no Device Capabilities Array"));
	buf[4] = 1; /* one capability: device status only */
	buf[0x10] = 0x01;
	buf[0x14] = 0x80;
	buf[0x18] = 8;
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), -ENODEV);
	ck_assert_ptr_nonnull(strstr(err, "no primary mailbox"));
	buf[0x10] = 0x02; /* a mailbox running past the block */
	buf[0x18] = 0;
	buf[0x19] = 0x10;
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "outside"));
	buf[0x19] = 0;
	buf[0x18] = 0x20 + 0x10;
	buf[0x80] = 4; /* payload 2^4: below the spec's 256 bytes */
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "2^4"));
	buf[0x80] = 8; /* 256 bytes, but the capability is only 48 long */
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "overruns"));
	buf[0x18] = 0x20;
	buf[0x19] = 0x01;
	ck_assert_int_eq(vfio_mbox_probe(&mb, &m, err, sizeof(err)), 0);
	ck_assert_uint_eq(mb.payload_size, 256);
	ck_assert_uint_eq(mb.memdev_status, 0);
}
END_TEST

/* QEMU's type3: no generic Identify, while Identify Memory Device answers. */
START_TEST(identify_unsupported_memdev_works)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", SIM_REGS_NO_IDENTIFY, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_UNSUPPORTED);
	ck_assert_uint_eq(c.out_len, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_ge(c.out_len, 64);
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 2);
	dev_free();
}
END_TEST

/* A device that drops 32-bit halves of the command register still runs the right opcode. */
START_TEST(command_register_in_one_store)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", SIM_REGS_SPLIT_COMMAND, 3);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_eq(c.out_len, 18);
	ck_assert_uint_eq(sim_regs_stats(regs)->split_writes, 0);
	ck_assert_uint_eq(sim_regs_stats(regs)->writes_while_busy, 0);
	dev_free();
}
END_TEST

/* Input reaches the device byte for byte, with a length not a multiple of 4. */
START_TEST(payload_round_trip)
{
	uint8_t q[24] = {0};
	struct mbx_transport_cmd c;

	dev_new("memdev", 0, 0);
	memcpy(q, sim_cel_uuid, 16);
	q[20] = 8; /* the first two CEL entries */
	ck_assert_int_eq(run(CXL_OP_GET_LOG, q, sizeof(q), &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_eq(c.out_len, 8);
	/* One byte short: the device sees the length the command register says. */
	ck_assert_int_eq(run(CXL_OP_GET_LOG, q, sizeof(q) - 1, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_free();
}
END_TEST

START_TEST(stuck_doorbell_times_out_and_blocks_the_next)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", SIM_REGS_STUCK_DOORBELL, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 50), MBX_XPORT_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(c.error, "no answer to opcode 4000h within 50 ms"));
	ck_assert_int_eq(run(CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, &c, 50), MBX_XPORT_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(c.error, "not sent: the doorbell of an earlier command"));
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 1);
	ck_assert_uint_eq(sim_regs_stats(regs)->writes_while_busy, 0);
	dev_free();
}
END_TEST

/* The spec's 2 s when the caller gives no timeout. */
START_TEST(default_timeout_is_two_seconds)
{
	struct mbx_transport_cmd c;
	uint64_t t0;

	dev_new("memdev", 0, 0);
	sim_regs_hold_doorbell(regs, true);
	t0 = now_ns();
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_TIMEOUT);
	ck_assert_uint_ge(now_ns() - t0, 2000000000ull);
	ck_assert_uint_lt(now_ns() - t0, 3000000000ull);
	ck_assert_ptr_nonnull(strstr(c.error, "after 2000 ms"));
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 0);
	sim_regs_hold_doorbell(regs, false);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 1);
	dev_free();
}
END_TEST

/* A slow device: the doorbell clears only after 500 polls; backoff keeps polling. */
START_TEST(slow_doorbell_is_polled)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", 0, 500);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	dev_free();
}
END_TEST

START_TEST(payload_lengths_over_the_mailbox)
{
	static uint8_t big[2049];
	struct mbx_transport_cmd c;

	dev_new("memdev", 0, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, big, sizeof(big), &c, 0), MBX_XPORT_TOO_BIG);
	ck_assert_ptr_nonnull(strstr(c.error, "2049-byte input exceeds the 2048-byte mailbox"));
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 0);
	/* The caller's buffer is smaller than the answer. */
	c = (struct mbx_transport_cmd){.opcode = CXL_OP_IDENTIFY_MEMDEV, .out = out, .out_cap = 16};
	ck_assert_int_eq(vfio_mbox_submit(&mb, &c), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(c.error, "do not fit the 16-byte buffer"));
	dev_free();
	/* The device claims more output than its mailbox holds. */
	dev_new("memdev", SIM_REGS_OVERLONG_OUTPUT, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(c.error, "2052 output bytes, over its 2048-byte mailbox"));
	ck_assert_uint_eq(c.out_len, 0);
	dev_free();
}
END_TEST

START_TEST(return_code_with_vendor_status)
{
	struct sim_regs_config cfg = {
	    .quirks = SIM_REGS_FORCE_RC, .force_rc = CXL_RC_INTERNAL_ERROR, .force_vendor = 0xbeef};
	struct mbx_transport_cmd c;
	char err[160];

	ck_assert_int_eq(sim_regs_new(&cfg, &regs, err, sizeof(err)), 0);
	ck_assert_int_eq(vfio_mbox_probe(&mb, sim_regs_mmio(regs), err, sizeof(err)), 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_INTERNAL_ERROR);
	ck_assert_uint_eq(c.vendor_status, 0xbeef);
	ck_assert_uint_eq(c.out_len, 0);
	dev_free();
}
END_TEST

/* 0002h answered from the register when the device lacks it, through to completion. */
START_TEST(background_status_from_the_register)
{
	struct mbx_transport_cmd c;
	int i;

	dev_new("memdev", SIM_REGS_NO_BG_STATUS, 0);
	ck_assert_int_eq(run(CXL_OP_SANITIZE, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_BACKGROUND_STARTED);
	ck_assert(mb.bg_running);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(mb.bg_source, VMBOX_BG_REGISTER);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_eq(c.out_len, 8);
	ck_assert_uint_eq(out[0] & 1, 1);
	ck_assert_uint_eq(out[2] | out[3] << 8, CXL_OP_SANITIZE);
	for (i = 0; i < 100 && (out[0] & 1); i++) {
		sleep_ms(10);
		ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	}
	ck_assert_uint_eq(out[0] & 1, 0);
	ck_assert_uint_eq(out[0] >> 1, 100);
	ck_assert_uint_eq(out[4] | out[5] << 8, CXL_RC_SUCCESS);
	ck_assert(!mb.bg_running);
	ck_assert_uint_ge(mb.stats.bg_synth, 2);
	dev_free();
}
END_TEST

/* A device that implements 0002h is asked itself. */
START_TEST(background_status_passed_through)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", 0, 0);
	ck_assert_int_eq(run(CXL_OP_SANITIZE, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(mb.bg_source, VMBOX_BG_DEVICE);
	ck_assert_uint_eq(out[0] & 1, 1);
	ck_assert_uint_eq(mb.stats.bg_synth, 0);
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 2);
	dev_free();
}
END_TEST

START_TEST(background_bit_never_cleared)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", SIM_REGS_NO_BG_STATUS | SIM_REGS_STUCK_BACKGROUND, 0);
	mb.bg_timeout_ms = 100;
	ck_assert_int_eq(run(CXL_OP_SANITIZE, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(out[0], 1 | 50 << 1);
	sleep_ms(400); /* the model's 200 ms sanitize is long over */
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(c.error, "background operation 4400h still running after"));
	ck_assert_ptr_nonnull(strstr(c.error, "never cleared its background bit"));
	/* Foreground commands go on meanwhile. */
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	dev_free();
}
END_TEST

START_TEST(request_abort_ends_the_operation)
{
	struct sim_regs_config cfg = {.quirks = SIM_REGS_NO_BG_STATUS, .sanitize_ms = 60000};
	struct mbx_transport_cmd c;
	char err[160];

	ck_assert_int_eq(sim_regs_new(&cfg, &regs, err, sizeof(err)), 0);
	ck_assert_int_eq(vfio_mbox_probe(&mb, sim_regs_mmio(regs), err, sizeof(err)), 0);
	ck_assert_int_eq(run(CXL_OP_SANITIZE, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_BACKGROUND_STARTED);
	ck_assert_int_eq(run(CXL_OP_REQUEST_ABORT, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(out[0] & 1, 0);
	ck_assert_uint_eq(out[2] | out[3] << 8, CXL_OP_SANITIZE);
	ck_assert_uint_eq(out[4] | out[5] << 8, CXL_RC_ABORTED);
	dev_free();
}
END_TEST

/* Reads the whole CEL through the driver. */
static size_t read_cel(uint8_t *cel, size_t cap)
{
	uint8_t q[24] = {0};
	struct mbx_transport_cmd c;
	uint32_t size;

	ck_assert_int_eq(run(CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	size = vfio_le32(out + 8 + 16);
	ck_assert_uint_le(size, cap);
	memcpy(q, sim_cel_uuid, 16);
	q[20] = (uint8_t)size;
	q[21] = (uint8_t)(size >> 8);
	ck_assert_int_eq(run(CXL_OP_GET_LOG, q, sizeof(q), &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_eq(c.out_len, size);
	memcpy(cel, out, size);
	return size;
}

/* QEMU 7.2 appends its CEL again at every reset: the parser keeps one of each. */
START_TEST(duplicate_cel_entries)
{
	uint8_t cel[2048];
	struct cel_entry *e;
	size_t once, thrice, n;

	dev_new("memdev", SIM_REGS_CEL_DUPLICATES, 0);
	once = read_cel(cel, sizeof(cel));
	ck_assert_int_eq(sim_regs_reset(regs, 0), 0);
	ck_assert_int_eq(sim_regs_reset(regs, 0), 0);
	thrice = read_cel(cel, sizeof(cel));
	ck_assert_uint_eq(thrice, 3 * once);
	ck_assert_int_eq(policy_cel_parse(cel, thrice, &e, &n), 0);
	ck_assert_uint_eq(n, once / 4);
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			ck_assert_uint_ne(e[i].opcode, e[k].opcode);
	free(e);
	dev_free();
}
END_TEST

/* A reset after open: the mailbox is not ready for a while, then the command goes through. */
START_TEST(reset_after_open)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", 0, 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(sim_regs_reset(regs, 200), 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(c.cxl_rc, CXL_RC_SUCCESS);
	ck_assert_uint_eq(mb.stats.not_ready, 1);
	/* A reset that never comes back ready: the command is not sent. */
	ck_assert_int_eq(sim_regs_reset(regs, 1u << 30), 0);
	ck_assert_int_eq(run(CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &c, 50), MBX_XPORT_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(c.error, "not sent: mailbox not ready within 50 ms"));
	ck_assert_uint_eq(sim_regs_stats(regs)->doorbells, 2);
	dev_free();
}
END_TEST

/* A reset during a background operation: its end is reported unknown, not successful. */
START_TEST(reset_loses_the_background_operation)
{
	struct mbx_transport_cmd c;

	dev_new("memdev", SIM_REGS_NO_BG_STATUS, 0);
	ck_assert_int_eq(run(CXL_OP_SANITIZE, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_int_eq(sim_regs_reset(regs, 0), 0);
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_IO);
	ck_assert_ptr_nonnull(strstr(c.error, "background operation 4400h vanished"));
	ck_assert_int_eq(run(CXL_OP_BG_STATUS, NULL, 0, &c, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(out[0] & 1, 0);
	dev_free();
}
END_TEST

/* ---- the transport's config walk and sysfs checks ---- */

static char root[64];

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A config space as QEMU's cxl-type3: DSN at 100h, a foreign DVSEC, then the Register Locator. */
static void fake_config(uint8_t *cfg, uint64_t serial)
{
	memset(cfg, 0, VFIO_CFG_SIZE);
	put32(cfg, 0x0d931b36);     /* vendor 1b36, device 0d93 */
	put32(cfg + 8, 0x05021000); /* class 0502h, prog-if 10h */
	put32(cfg + 0x100, 0x0003 | 1u << 16 | 0x140u << 20);
	put32(cfg + 0x104, (uint32_t)serial);
	put32(cfg + 0x108, (uint32_t)(serial >> 32));
	put32(cfg + 0x140, 0x0023 | 1u << 16 | 0x180u << 20);
	put32(cfg + 0x144, 0x1e98 | 0x10u << 20); /* CXL, but another DVSEC id */
	put32(cfg + 0x148, 0x0000);
	put32(cfg + 0x180, 0x0023 | 1u << 16);
	put32(cfg + 0x184, 0x1e98 | 0x24u << 20);
	put32(cfg + 0x188, VFIO_DVSEC_REGLOC);
	put32(cfg + 0x18c, 0 | 0x01u << 8);               /* component registers in BAR0 */
	put32(cfg + 0x194, 2 | 0x03u << 8 | 0x00010000u); /* device registers: BAR2 + 0x10000 */
	put32(cfg + 0x198, 0x1);                          /* + 1 << 32 */
}

START_TEST(config_walk)
{
	static uint8_t cfg[VFIO_CFG_SIZE];
	uint64_t serial, off;
	unsigned bir;

	fake_config(cfg, 0x1111);
	ck_assert(vfio_cfg_serial(cfg, sizeof(cfg), &serial));
	ck_assert_uint_eq(serial, 0x1111);
	ck_assert_int_eq(vfio_cfg_regloc(cfg, sizeof(cfg), &bir, &off), 0);
	ck_assert_uint_eq(bir, 2);
	ck_assert_uint_eq(off, 0x100010000ull);
	/* Only the first 256 bytes: no extended capabilities at all. */
	ck_assert(!vfio_cfg_serial(cfg, 256, &serial));
	ck_assert_int_eq(vfio_cfg_regloc(cfg, 256, &bir, &off), -ENODEV);
	/* A Register Locator without a Device Registers block. */
	put32(cfg + 0x194, 2 | 0x04u << 8);
	ck_assert_int_eq(vfio_cfg_regloc(cfg, sizeof(cfg), &bir, &off), -ENOENT);
	/* A list whose last capability points back at the first ends. */
	put32(cfg + 0x180, 0x0023 | 1u << 16 | 0x100u << 20);
	ck_assert_int_eq(vfio_cfg_regloc(cfg, sizeof(cfg), &bir, &off), -ENOENT);
	ck_assert_uint_eq(vfio_cfg_ext_find(cfg, sizeof(cfg), 0x0001, 0), 0);
}
END_TEST

START_TEST(bdf_shape)
{
	ck_assert(vfio_bdf_valid("0000:0d:00.0"));
	ck_assert(vfio_bdf_valid("0000:0e:1f.7"));
	ck_assert(!vfio_bdf_valid("0000:0d:00.8"));
	ck_assert(!vfio_bdf_valid("0000:0D:00.0"));
	ck_assert(!vfio_bdf_valid("0d:00.0"));
	ck_assert(!vfio_bdf_valid("0000:0d:00.0/"));
	ck_assert(!vfio_bdf_valid("../../../x.0"));
}
END_TEST

static void fake_path(const char *rel, const uint8_t *data, size_t len)
{
	char path[PATH_MAX], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void fake_link(const char *rel, const char *target)
{
	char path[PATH_MAX];

	fake_path(rel, (const uint8_t *)"", 0);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	unlink(path);
	ck_assert_int_eq(symlink(target, path), 0);
}

/* Two devices in IOMMU group 7: the CCI on vfio-pci, a type3 still on cxl_pci. */
static void fake_sysfs(void)
{
	static uint8_t cfg[VFIO_CFG_SIZE];

	snprintf(root, sizeof(root), "/tmp/test-vfio-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	fake_config(cfg, 0x1111);
	fake_path("bus/pci/devices/0000:0d:00.0/config", cfg, sizeof(cfg));
	fake_link("bus/pci/devices/0000:0d:00.0/driver", "../../../bus/pci/drivers/cxl_pci");
	fake_config(cfg, 0x2222);
	put32(cfg + 8, 0x0c0b0000);
	fake_path("bus/pci/devices/0000:0e:00.1/config", cfg, sizeof(cfg));
	fake_link("bus/pci/devices/0000:0e:00.1/driver", "../../../bus/pci/drivers/vfio-pci");
	fake_link("bus/pci/devices/0000:0e:00.1/iommu_group", "../../../kernel/iommu_groups/7");
	fake_link("kernel/iommu_groups/7/devices/0000:0e:00.1",
		  "../../../../bus/pci/devices/0000:0e:00.1");
	fake_link("kernel/iommu_groups/7/devices/0000:0d:00.0",
		  "../../../../bus/pci/devices/0000:0d:00.0");
	fake_path("devvfio/vfio/.keep", (const uint8_t *)"", 0);
}

static void rm_fake_sysfs(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* Opens with the given options against the fake tree; returns open's code, err filled. */
static int open_with(const char *key, const char *value, char *err, size_t errlen)
{
	char devroot[128];
	struct mbx_transport_option opts[] = {
	    {.key = key, .value = value, .line = 7},
	    {.key = "sysfs_root", .value = root, .line = 8},
	    {.key = "dev_root", .value = devroot, .line = 9},
	};
	struct mbx_transport_config tc = {
	    .device_name = "sw0", .config_file = "mbxd.yaml", .options = opts, .n_options = 3};
	static struct vfio v;

	snprintf(devroot, sizeof(devroot), "%s/devvfio", root);
	return vfio_transport_ops.open(&v, &tc, err, errlen);
}

START_TEST(open_names_what_is_wrong)
{
	char err[256];

	fake_sysfs();
	ck_assert_int_eq(open_with("bdf", "0000:0d:00.0", err, sizeof(err)), -EBUSY);
	ck_assert_ptr_nonnull(strstr(err, "0000:0d:00.0 is bound to cxl_pci, not vfio-pci"));
	ck_assert_int_eq(open_with("serial", "0x1111", err, sizeof(err)), -EBUSY);
	ck_assert_ptr_nonnull(strstr(err, "0000:0d:00.0 is bound to cxl_pci"));
	ck_assert_int_eq(open_with("serial", "0x3333", err, sizeof(err)), -ENODEV);
	ck_assert_ptr_nonnull(strstr(err, "no PCI device with serial 0x3333"));
	ck_assert_int_eq(open_with("bdf", "0000:0d:00", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "is not a PCI address"));
	/* The CCI is on vfio-pci; the fake /dev has no container node. */
	ck_assert_int_lt(open_with("serial", "0x2222", err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "devvfio/vfio/vfio"));
	rm_fake_sysfs();
}
END_TEST

START_TEST(group_blockers_named)
{
	char names[256];

	fake_sysfs();
	vfio_group_blockers(root, "7", names, sizeof(names));
	ck_assert_str_eq(names, "0000:0d:00.0 (cxl_pci)");
	rm_fake_sysfs();
}
END_TEST

/*
 * The CCI's vfio-dev entry in sysfs (Linux 6.1 has it too), then its node
 * in /dev/vfio/devices (6.6+ with CONFIG_VFIO_DEVICE_CDEV), then /dev/iommu.
 */
static void fake_cdev(int step)
{
	fake_path("bus/pci/devices/0000:0e:00.1/vfio-dev/vfio0/uevent", (const uint8_t *)"", 0);
	fake_path("bus/pci/devices/0000:0e:00.1/vfio-dev/vfiox/uevent", (const uint8_t *)"", 0);
	if (step >= 2)
		fake_path("devvfio/vfio/devices/vfio0", (const uint8_t *)"", 0);
	if (step >= 3)
		fake_path("devvfio/iommu", (const uint8_t *)"", 0);
}

/* vfio_pick_api on the CCI of the fake tree; err filled on a refusal. */
static int pick(enum vfio_api want, char *name, char *err)
{
	char devroot[128];

	snprintf(devroot, sizeof(devroot), "%s/devvfio", root);
	return vfio_pick_api(root, devroot, "0000:0e:00.1", want, name, 32, err, 256);
}

START_TEST(cdev_found_and_chosen)
{
	char name[32], err[256] = "";

	fake_sysfs();
	/* No vfio-dev at all: auto takes the group, a forced cdev is refused. */
	ck_assert_int_eq(vfio_cdev_find(root, "0000:0e:00.1", name, sizeof(name)), -ENOENT);
	ck_assert_int_eq(pick(VFIO_USE_AUTO, name, err), VFIO_USE_GROUP);
	ck_assert_int_eq(pick(VFIO_USE_CDEV, name, err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "0000:0e:00.1/vfio-dev names no vfioN"));
	/* Linux 6.1: vfio-dev/vfio0 in sysfs but no node. */
	fake_cdev(1);
	ck_assert_int_eq(vfio_cdev_find(root, "0000:0e:00.1", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "vfio0");
	ck_assert_int_eq(pick(VFIO_USE_AUTO, name, err), VFIO_USE_GROUP);
	ck_assert_int_eq(pick(VFIO_USE_CDEV, name, err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "devvfio/vfio/devices/vfio0 does not exist"));
	/* The node without /dev/iommu: still the group; a forced cdev names /dev/iommu. */
	fake_cdev(2);
	ck_assert_int_eq(pick(VFIO_USE_AUTO, name, err), VFIO_USE_GROUP);
	ck_assert_int_eq(pick(VFIO_USE_CDEV, name, err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "devvfio/iommu does not exist"));
	/* Both: auto and cdev take the cdev, group stays on the group. */
	fake_cdev(3);
	ck_assert_int_eq(pick(VFIO_USE_AUTO, name, err), VFIO_USE_CDEV);
	ck_assert_int_eq(pick(VFIO_USE_CDEV, name, err), VFIO_USE_CDEV);
	ck_assert_int_eq(pick(VFIO_USE_GROUP, name, err), VFIO_USE_GROUP);
	rm_fake_sysfs();
}
END_TEST

START_TEST(open_follows_vfio_api)
{
	char err[256];

	fake_sysfs();
	ck_assert_int_eq(open_with("vfio_api", "iommufd", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "vfio_api: \"iommufd\" is not auto, group or cdev"));
	/* Auto on a tree with both: the cdev path is taken (the fake iommu is no iommufd). */
	fake_cdev(3);
	ck_assert_int_lt(open_with("serial", "0x2222", err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, "devvfio/iommu: IOMMU_IOAS_ALLOC: "));
	rm_fake_sysfs();
}
END_TEST

/* vfio_in_use_error for the CCI of the fake tree (group 7, cdev vfio0), refused with e. */
static void in_use(int e, char *err, size_t errlen)
{
	char devroot[128];

	snprintf(devroot, sizeof(devroot), "%s/devvfio", root);
	vfio_in_use_error(root, devroot, "0000:0e:00.1", "the-node", e, err, errlen);
}

/*
 * A device another process holds (seen on Linux 6.12: binding a cdev bound
 * elsewhere fails with EINVAL, opening the group of a cdev-bound device
 * with EBUSY): the refusal says so and names the holder of its cdev or its
 * group node, here this very process.
 */
START_TEST(in_use_names_the_holder)
{
	char err[512], me[64], path[PATH_MAX];
	int fd;

	fake_sysfs();
	fake_cdev(3);
	snprintf(me, sizeof(me), "in use by pid %d (", (int)getpid());
	in_use(EINVAL, err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, "0000:0e:00.1 is in use by another process (VFIO gives"));
	ck_assert_ptr_nonnull(strstr(err, "the-node: Invalid argument"));
	snprintf(path, sizeof(path), "%s/devvfio/vfio/devices/vfio0", root);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	in_use(EINVAL, err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, me));
	close(fd);
	fake_path("devvfio/vfio/7", (const uint8_t *)"", 0);
	snprintf(path, sizeof(path), "%s/devvfio/vfio/7", root);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	in_use(EBUSY, err, sizeof(err));
	ck_assert_ptr_nonnull(strstr(err, me));
	ck_assert_ptr_nonnull(strstr(err, "the-node: Device or resource busy"));
	close(fd);
	rm_fake_sysfs();
}
END_TEST

/*
 * A refused VFIO_DEVICE_BIND_IOMMUFD on the CCI of the fake tree, whose group
 * 7 holds a type3 that cxl_pci drives: Linux 6.12 answers EPERM there, and
 * the refusal names the blocker with -EBUSY, as the group API does; an
 * answer that is no refusal of the group passes through.
 */
START_TEST(cdev_bind_refusals)
{
	static struct vfio v;
	char err[512];

	fake_sysfs();
	snprintf(v.sysfs, sizeof(v.sysfs), "%s", root);
	snprintf(v.devroot, sizeof(v.devroot), "%s/devvfio", root);
	snprintf(v.bdf, sizeof(v.bdf), "0000:0e:00.1");
	ck_assert_int_eq(vfio_cdev_bind_error(&v, "vfio1", EPERM, err, sizeof(err)), -EBUSY);
	ck_assert_str_eq(err, "IOMMU group 7 of 0000:0e:00.1 is not viable: 0000:0d:00.0 "
			      "(cxl_pci) (vfio1: Operation not permitted)");
	/* The type3 moved to vfio-pci: the group is viable, the device is held elsewhere. */
	snprintf(err, sizeof(err), "%s/bus/pci/devices/0000:0d:00.0/driver", root);
	ck_assert_int_eq(unlink(err), 0);
	ck_assert_int_eq(symlink("../../../bus/pci/drivers/vfio-pci", err), 0);
	ck_assert_int_eq(vfio_cdev_bind_error(&v, "vfio1", EINVAL, err, sizeof(err)), -EBUSY);
	ck_assert_ptr_nonnull(strstr(err, "0000:0e:00.1 is in use by another process"));
	ck_assert_int_eq(vfio_cdev_bind_error(&v, "vfio1", ENOTTY, err, sizeof(err)), -ENOTTY);
	ck_assert_str_eq(err, "vfio1: VFIO_DEVICE_BIND_IOMMUFD: Inappropriate ioctl for device");
	rm_fake_sysfs();
}
END_TEST

static Suite *vfio_mailbox_suite(void)
{
	Suite *s = suite_create("vfio-mailbox");
	TCase *t = tcase_create("mailbox");

	tcase_set_timeout(t, 30);
	tcase_add_test(t, probe_memdev_and_switch);
	tcase_add_test(t, probe_refuses_malformed_arrays);
	tcase_add_test(t, identify_unsupported_memdev_works);
	tcase_add_test(t, command_register_in_one_store);
	tcase_add_test(t, payload_round_trip);
	tcase_add_test(t, stuck_doorbell_times_out_and_blocks_the_next);
	tcase_add_test(t, default_timeout_is_two_seconds);
	tcase_add_test(t, slow_doorbell_is_polled);
	tcase_add_test(t, payload_lengths_over_the_mailbox);
	tcase_add_test(t, return_code_with_vendor_status);
	tcase_add_test(t, background_status_from_the_register);
	tcase_add_test(t, background_status_passed_through);
	tcase_add_test(t, background_bit_never_cleared);
	tcase_add_test(t, request_abort_ends_the_operation);
	tcase_add_test(t, duplicate_cel_entries);
	tcase_add_test(t, reset_after_open);
	tcase_add_test(t, reset_loses_the_background_operation);
	suite_add_tcase(s, t);
	t = tcase_create("transport");
	tcase_add_test(t, config_walk);
	tcase_add_test(t, bdf_shape);
	tcase_add_test(t, open_names_what_is_wrong);
	tcase_add_test(t, group_blockers_named);
	tcase_add_test(t, cdev_found_and_chosen);
	tcase_add_test(t, open_follows_vfio_api);
	tcase_add_test(t, in_use_names_the_holder);
	tcase_add_test(t, cdev_bind_refusals);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vfio_mailbox_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
