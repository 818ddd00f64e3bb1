/*
 * The sim transport through its ops struct, as the broker drives it: every
 * command of both models, their Command Effects Logs against what they
 * actually answer, background Sanitize over time, tunnels, faults, options.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cci.h"
#include "transport.h"

extern const struct mbx_transport_ops sim_transport_ops;

static const struct mbx_transport_ops *ops = &sim_transport_ops;

static const uint8_t cel_uuid[16] = {
    0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78, 0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17,
};
static const uint8_t scrub_uuid[16] = {
    0x96, 0xda, 0xd7, 0xd6, 0xfd, 0xe8, 0x48, 0x2b, 0xa7, 0x33, 0x75, 0x77, 0x4e, 0x06, 0xdb, 0x8a,
};
static const uint8_t refresh_uuid[16] = {
    0x4b, 0x9c, 0x7e, 0x5a, 0x2f, 0x31, 0x4d, 0x0e, 0x9a, 0x61, 0x5c, 0x3b, 0x8e, 0x27, 0xd1, 0x40,
};
static const uint8_t fill_uuid[16] = {
    0x7d, 0x2e, 0x91, 0xc4, 0x83, 0xb5, 0x4f, 0x6a, 0xb0, 0xd2, 0x1e, 0x6f, 0x4a, 0x9c, 0x3b, 0x85,
};

#define OUT_CAP (1u << 20)

static uint8_t out[OUT_CAP];
static size_t out_len;
static char err[256];

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Opens a sim device from "key", "value", ... NULL; open's result, the device in *pp. */
static int open_ap(void **pp, const char *first, va_list ap)
{
	static struct mbx_transport_option opts[16];
	struct mbx_transport_config cfg = {
	    .device_name = "dev0", .config_file = "test.yaml", .options = opts};
	int rc;

	for (const char *k = first; k; k = va_arg(ap, const char *)) {
		opts[cfg.n_options].key = k;
		opts[cfg.n_options].value = va_arg(ap, const char *);
		opts[cfg.n_options].line = (int)cfg.n_options + 10;
		cfg.n_options++;
	}
	*pp = calloc(1, ops->priv_size);
	ck_assert_ptr_nonnull(*pp);
	err[0] = '\0';
	rc = ops->open(*pp, &cfg, err, sizeof(err));
	if (rc < 0) {
		free(*pp);
		*pp = NULL;
	}
	return rc;
}

/* Opens a device that must open. */
static void *dev_open(const char *first, ...)
{
	va_list ap;
	void *p;
	int rc;

	va_start(ap, first);
	rc = open_ap(&p, first, ap);
	va_end(ap);
	ck_assert_msg(rc == 0, "open failed: %s", err);
	return p;
}

/* Expects open to fail with -EINVAL and a message naming file:line and needle. */
static void open_fails(const char *needle, const char *first, ...)
{
	va_list ap;
	void *p;
	int rc;

	va_start(ap, first);
	rc = open_ap(&p, first, ap);
	va_end(ap);
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_msg(strstr(err, "test.yaml:1") != NULL, "no file:line in \"%s\"", err);
	ck_assert_msg(strstr(err, needle) != NULL, "\"%s\" not in \"%s\"", needle, err);
}

static void dev_close(void *p)
{
	ops->close(p);
	free(p);
}

/* Runs a command that the transport must deliver; returns the CXL return code. */
static uint16_t run(void *p, uint16_t opcode, const void *in, size_t in_len)
{
	struct mbx_transport_cmd cmd = {
	    .opcode = opcode,
	    .in = in,
	    .in_len = in_len,
	    .out = out,
	    .out_cap = OUT_CAP,
	    .timeout_ms = 2000,
	};
	int x = ops->submit(p, &cmd);

	ck_assert_msg(x == MBX_XPORT_OK, "opcode %04x: transport rc %d (%s)", opcode, x, cmd.error);
	out_len = cmd.out_len;
	return cmd.cxl_rc;
}

/* ---- memory device ---- */

START_TEST(memdev_identify)
{
	void *p = dev_open("serial", "0x1234abcd", NULL);

	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), CXL_RC_SUCCESS);
	ck_assert_uint_eq(out_len, 18);
	ck_assert_uint_eq(le16(out), 0x1b36);
	ck_assert_uint_eq(le16(out + 2), 0x5a01);
	ck_assert_uint_eq(le64(out + 8), 0x1234abcd);
	ck_assert_uint_eq(out[16], 12); /* 2^12 = 4096, the default mailbox */
	ck_assert_uint_eq(out[17], 0x03);
	dev_close(p);
}
END_TEST

START_TEST(memdev_describe)
{
	struct mbx_transport_info info;
	void *p = dev_open("serial", "0xabc", "payload_max", "2048", NULL);

	ops->describe(p, &info);
	ck_assert_str_eq(info.kind, "memdev");
	ck_assert_str_eq(info.serial, "0x0000000000000abc");
	ck_assert_uint_eq(info.payload_max, 2048);
	ck_assert(!info.kernel_owned);
	ck_assert(strlen(info.model) > 0);
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_eq(out[16], 11);
	dev_close(p);
}
END_TEST

START_TEST(memdev_fixed_outputs)
{
	void *p = dev_open(NULL);

	ck_assert_uint_eq(run(p, 0x0002, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 8);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(out[i], 0); /* no background operation ever ran */

	ck_assert_uint_eq(run(p, 0x0200, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 0x50);
	ck_assert_uint_eq(out[0], 2);
	ck_assert_uint_eq(out[1] & 7, 1);
	ck_assert_str_eq((char *)out + 0x10, "SIM-1.4.2");

	ck_assert_uint_eq(run(p, 0x4000, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 0x45);
	ck_assert_str_eq((char *)out, "SIM-1.4.2");
	ck_assert_uint_eq(le64(out + 0x10), 64); /* 16 GiB in 256 MiB units */
	ck_assert_uint_eq(le64(out + 0x28), 4);
	ck_assert_uint_eq(le16(out + 0x30), 8);
	ck_assert_uint_eq(out[0x3c] | out[0x3d] << 8 | out[0x3e] << 16, 256);
	ck_assert_uint_eq(le16(out + 0x3f), 64);

	ck_assert_uint_eq(run(p, 0x4100, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 32);
	ck_assert_uint_eq(le64(out), 32);
	ck_assert_uint_eq(le64(out + 8), 32);
	ck_assert_uint_eq(le64(out + 16), 0);

	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 18);
	ck_assert_uint_eq(out[3], 3);
	ck_assert_uint_eq(le16(out + 4), 34);
	ck_assert_uint_eq(le32(out + 10), 2);

	ck_assert_uint_eq(run(p, 0x4201, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 16);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 0x1f);
	ck_assert_uint_eq(out[2], 75);
	ck_assert_uint_eq(le16(out + 4), 85);
	dev_close(p);
}
END_TEST

START_TEST(memdev_timestamp)
{
	uint8_t in[8];
	void *p = dev_open(NULL);
	uint64_t t;

	ck_assert_uint_eq(run(p, 0x0300, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 8);
	ck_assert_uint_eq(le64(out), 0); /* never set */
	put64(in, 1700000000000000000ull);
	ck_assert_uint_eq(run(p, 0x0301, in, 8), 0);
	ck_assert_uint_eq(out_len, 0);
	sleep_ms(20);
	ck_assert_uint_eq(run(p, 0x0300, NULL, 0), 0);
	t = le64(out);
	ck_assert_uint_ge(t, 1700000000000000000ull + 20000000ull);
	ck_assert_uint_lt(t, 1700000000000000000ull + 2000000000ull);
	ck_assert_uint_eq(run(p, 0x0301, in, 7), CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

/* Reads the whole CEL through Get Supported Logs and Get Log. */
static size_t read_cel(void *p, uint8_t *cel)
{
	uint8_t in[24];
	uint32_t size;

	ck_assert_uint_eq(run(p, 0x0400, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 8 + 20);
	ck_assert_uint_eq(le16(out), 1);
	ck_assert_mem_eq(out + 8, cel_uuid, 16);
	size = le32(out + 24);
	ck_assert_uint_eq(size % 4, 0);
	memcpy(in, cel_uuid, 16);
	put32(in + 16, 0);
	put32(in + 20, size);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), 0);
	ck_assert_uint_eq(out_len, size);
	memcpy(cel, out, size);
	return size / 4;
}

/* The opcodes a model answers with anything but Unsupported, found by trying them all. */
static size_t sweep_opcodes(void *p, uint16_t *ops_found)
{
	size_t n = 0;

	for (uint32_t op = 0; op <= 0xffff; op++) {
		uint16_t rc = run(p, (uint16_t)op, NULL, 0);

		if (rc != CXL_RC_UNSUPPORTED)
			ops_found[n++] = (uint16_t)op;
		else
			ck_assert_uint_eq(out_len, 0);
	}
	return n;
}

/* The CEL lists exactly the opcodes the model answers, each once. */
static void check_cel_exact(void *p)
{
	static uint8_t cel[4096];
	static uint16_t found[65536];
	size_t n = read_cel(p, cel), m = sweep_opcodes(p, found);

	ck_assert_uint_eq(n, m);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(le16(cel + 4 * i) == found[i],
			      "CEL entry %zu is %04x, device answers %04x", i, le16(cel + 4 * i),
			      found[i]);
}

START_TEST(memdev_cel_exact)
{
	void *p = dev_open(NULL);

	check_cel_exact(p);
	dev_close(p);
}
END_TEST

/* Expected effects: bit 0 cold reset, 1 config, 2 data, 3 policy, 4 log, 6 background. */
START_TEST(memdev_cel_effects)
{
	static const struct {
		uint16_t op, eff;
	} want[] = {
	    {0x0001, 0}, {0x0002, 0},    {0x0005, 0},    {0x0100, 0},    {0x0101, 0x10},
	    {0x0200, 0}, {0x0201, 0x40}, {0x0202, 0x03}, {0x0300, 0},    {0x0301, 0x02},
	    {0x0400, 0}, {0x0401, 0},    {0x0500, 0},    {0x0501, 0},    {0x0502, 0x07},
	    {0x4000, 0}, {0x4100, 0},    {0x4200, 0},    {0x4201, 0},    {0x4202, 0x08},
	    {0x4300, 0}, {0x4301, 0x04}, {0x4302, 0x04}, {0x4400, 0x44},
	};
	uint8_t cel[256];
	void *p = dev_open(NULL);
	size_t n = read_cel(p, cel);

	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(le16(cel + 4 * i), want[i].op);
		ck_assert_msg(le16(cel + 4 * i + 2) == want[i].eff, "%04x effects %04x", want[i].op,
			      le16(cel + 4 * i + 2));
	}
	dev_close(p);
}
END_TEST

START_TEST(memdev_get_log_window)
{
	uint8_t in[24], cel[256];
	void *p = dev_open(NULL);
	size_t n = read_cel(p, cel);

	memcpy(in, cel_uuid, 16);
	put32(in + 16, 6);
	put32(in + 20, 5);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), 0);
	ck_assert_uint_eq(out_len, 5);
	ck_assert_mem_eq(out, cel + 6, 5);
	/* past the end */
	put32(in + 16, (uint32_t)(4 * n - 2));
	put32(in + 20, 4);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), CXL_RC_INVALID_INPUT);
	put32(in + 16, 0xfffffff0u);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), CXL_RC_INVALID_INPUT);
	/* more than the mailbox */
	put32(in + 16, 0);
	put32(in + 20, 4097);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), CXL_RC_INVALID_INPUT);
	/* unknown log: the vendor debug log UUID */
	static const uint8_t vdl[16] = {0x5e, 0x18, 0x19, 0xd9, 0x11, 0xa9, 0x40, 0x0c,
					0x81, 0x1f, 0xd6, 0x07, 0x19, 0x40, 0x3d, 0x86};
	memcpy(in, vdl, 16);
	put32(in + 20, 4);
	ck_assert_uint_eq(run(p, 0x0401, in, 24), 0x17);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_uint_eq(run(p, 0x0401, in, 23), CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

START_TEST(memdev_lengths)
{
	static const struct {
		uint16_t op;
		size_t bad;
	} cases[] = {
	    {0x0001, 1},  {0x0002, 4},  {0x0100, 0},  {0x0100, 2},  {0x0101, 5},   {0x0200, 1},
	    {0x0300, 8},  {0x0301, 9},  {0x0400, 1},  {0x0401, 25}, {0x0500, 7},   {0x0500, 9},
	    {0x0501, 20}, {0x0501, 22}, {0x0502, 31}, {0x4000, 1},  {0x4100, 1},   {0x4200, 2},
	    {0x4201, 1},  {0x4202, 11}, {0x4202, 13}, {0x4300, 15}, {0x4300, 17},  {0x4301, 7},
	    {0x4301, 9},  {0x4302, 71}, {0x4302, 73}, {0x4400, 1},  {0x0201, 127}, {0x0202, 1},
	    {0x0202, 3},
	};
	static uint8_t zeros[128];
	void *p = dev_open(NULL);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t rc = run(p, cases[i].op, zeros, cases[i].bad);

		ck_assert_msg(rc == CXL_RC_INVALID_PAYLOAD_LENGTH, "%04x with %zu bytes: rc %02x",
			      cases[i].op, cases[i].bad, rc);
		ck_assert_uint_eq(out_len, 0);
	}
	dev_close(p);
}
END_TEST

START_TEST(memdev_unsupported)
{
	static const uint16_t unsupported[] = {0x0000, 0x0003, 0x0004, 0x0203, 0x0210,
					       0x4101, 0x4102, 0x4303, 0x4401, 0x4500,
					       0x5100, 0x5300, 0xc000, 0xffff};
	void *p = dev_open(NULL);

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		ck_assert_uint_eq(run(p, unsupported[i], NULL, 0), CXL_RC_UNSUPPORTED);
	dev_close(p);
}
END_TEST

START_TEST(memdev_events)
{
	uint8_t in[16], log;
	void *p = dev_open(NULL);
	uint16_t h0, h1;

	log = 0;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(out_len, 32 + 2 * 128);
	ck_assert_uint_eq(le16(out + 20), 2);
	ck_assert_uint_eq(out[0], 0);           /* no overflow, no more records */
	ck_assert_uint_eq(out[32 + 16], 128);   /* record length */
	ck_assert_uint_eq(out[32 + 17] & 3, 0); /* informational */
	ck_assert_uint_eq(out[32], 0xfe);       /* Memory Module Event */
	ck_assert_uint_eq(out[32 + 128], 0xfb); /* General Media Event */
	h0 = le16(out + 32 + 20);
	h1 = le16(out + 32 + 128 + 20);
	ck_assert_uint_ne(h0, 0);
	ck_assert_uint_ne(h0, h1);
	log = 1;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(le16(out + 20), 1);
	ck_assert_uint_eq(out[32], 0x60);       /* DRAM Event */
	ck_assert_uint_eq(out[32 + 17] & 3, 1); /* warning */
	log = 2;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(out_len, 32);
	ck_assert_uint_eq(le16(out + 20), 0);
	log = 4;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), CXL_RC_INVALID_INPUT);

	/* a wrong handle clears nothing */
	memset(in, 0, sizeof(in));
	in[0] = 0;
	in[2] = 2;
	put16(in + 6, h1);
	put16(in + 8, 0x7777);
	ck_assert_uint_eq(run(p, 0x0101, in, 10), CXL_RC_INVALID_HANDLE);
	/* the count disagrees with the length */
	ck_assert_uint_eq(run(p, 0x0101, in, 8), CXL_RC_INVALID_PAYLOAD_LENGTH);
	/* no handles without "clear all" */
	in[2] = 0;
	ck_assert_uint_eq(run(p, 0x0101, in, 6), CXL_RC_INVALID_INPUT);
	/* "clear all" with handles */
	in[1] = 1;
	in[2] = 1;
	ck_assert_uint_eq(run(p, 0x0101, in, 8), CXL_RC_INVALID_INPUT);
	/* reserved flag bits, bad log */
	in[1] = 2;
	ck_assert_uint_eq(run(p, 0x0101, in, 8), CXL_RC_INVALID_INPUT);
	in[1] = 0;
	in[0] = 5;
	ck_assert_uint_eq(run(p, 0x0101, in, 8), CXL_RC_INVALID_INPUT);
	/* clear one by handle */
	in[0] = 0;
	ck_assert_uint_eq(run(p, 0x0101, in, 8), 0);
	log = 0;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(le16(out + 20), 1);
	ck_assert_uint_eq(le16(out + 32 + 20), h0);
	/* clear all of the warning log */
	memset(in, 0, sizeof(in));
	in[0] = 1;
	in[1] = 1;
	ck_assert_uint_eq(run(p, 0x0101, in, 6), 0);
	log = 1;
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(le16(out + 20), 0);
	dev_close(p);
}
END_TEST

START_TEST(memdev_events_small_mailbox)
{
	uint8_t log = 0;
	void *p = dev_open("payload_max", "256", NULL);

	/* 256 bytes hold the header and one record: the device says there are more. */
	ck_assert_uint_eq(run(p, 0x0100, &log, 1), 0);
	ck_assert_uint_eq(out_len, 32 + 128);
	ck_assert_uint_eq(le16(out + 20), 1);
	ck_assert_uint_eq(out[0] & 2, 2);
	dev_close(p);
}
END_TEST

/* Reads the poison list over the whole device; returns the record count. */
static unsigned poison_count(void *p)
{
	uint8_t in[16];

	put64(in, 0);
	put64(in + 8, (16ull << 30) / 64);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), 0);
	ck_assert_uint_eq(out_len, 32 + 16u * le16(out + 10));
	return le16(out + 10);
}

/* Whether the last poison list output holds dpa with the given source. */
static bool poison_has(uint64_t dpa, unsigned source)
{
	for (unsigned i = 0; i < le16(out + 10); i++) {
		uint64_t a = le64(out + 32 + 16 * i);

		if ((a & ~0x3full) == dpa && (a & 7) == source && le32(out + 32 + 16 * i + 8) == 1)
			return true;
	}
	return false;
}

START_TEST(memdev_poison)
{
	uint8_t in[72] = {0};
	void *p = dev_open(NULL);

	ck_assert_uint_eq(poison_count(p), 1);
	ck_assert(poison_has(0x40000000, 1)); /* found internally before we came */
	put64(in, 0x1000);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), 0);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), 0); /* again: no duplicate */
	ck_assert_uint_eq(poison_count(p), 2);
	ck_assert(poison_has(0x1000, 3));
	/* a window that excludes the injected line */
	put64(in, 0x2000);
	put64(in + 8, 1);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), 0);
	ck_assert_uint_eq(le16(out + 10), 0);
	put64(in, 0x1000);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), 0);
	ck_assert_uint_eq(le16(out + 10), 1);
	/* bad windows */
	put64(in + 8, 0);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), CXL_RC_INVALID_INPUT);
	put64(in, 0x1001);
	put64(in + 8, 1);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), CXL_RC_INVALID_INPUT);
	put64(in, 0);
	put64(in + 8, (16ull << 30) / 64 + 1);
	ck_assert_uint_eq(run(p, 0x4300, in, 16), CXL_RC_INVALID_INPUT);
	/* bad addresses */
	put64(in, 0x1010);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(run(p, 0x4302, in, 72), CXL_RC_INVALID_INPUT);
	put64(in, 16ull << 30);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), CXL_RC_INVALID_PHYSICAL_ADDRESS);
	ck_assert_uint_eq(run(p, 0x4302, in, 72), CXL_RC_INVALID_PHYSICAL_ADDRESS);
	/* clear */
	put64(in, 0x1000);
	ck_assert_uint_eq(run(p, 0x4302, in, 72), 0);
	ck_assert_uint_eq(poison_count(p), 1);
	ck_assert(!poison_has(0x1000, 3));
	put64(in, 0x40000000);
	ck_assert_uint_eq(run(p, 0x4302, in, 72), 0);
	ck_assert_uint_eq(poison_count(p), 0);
	ck_assert_uint_eq(run(p, 0x4302, in, 72), 0); /* a clean line */
	dev_close(p);
}
END_TEST

START_TEST(memdev_poison_limit)
{
	uint8_t in[8];
	void *p = dev_open(NULL);

	for (unsigned i = 0; i < 64; i++) {
		put64(in, 0x100000 + 64ull * i);
		ck_assert_uint_eq(run(p, 0x4301, in, 8), 0);
	}
	put64(in, 0x900000);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), CXL_RC_INJECT_POISON_LIMIT);
	ck_assert_uint_eq(poison_count(p), 65);
	dev_close(p);
}
END_TEST

START_TEST(memdev_alerts)
{
	uint8_t in[12] = {0};
	void *p = dev_open(NULL);

	/* over-temperature warning at 30 C: the 34 C device now warns */
	in[0] = 0x02;
	in[1] = 0x02;
	put16(in + 4, 30);
	ck_assert_uint_eq(run(p, 0x4202, in, 12), 0);
	ck_assert_uint_eq(run(p, 0x4201, NULL, 0), 0);
	ck_assert_uint_eq(out[0], 0x02);
	ck_assert_uint_eq(le16(out + 8), 30);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0);
	ck_assert_uint_eq((out[2] >> 2) & 3, 1);
	/* life used warning at 50 %: not reached */
	memset(in, 0, sizeof(in));
	in[0] = 0x01;
	in[1] = 0x01;
	in[2] = 50;
	ck_assert_uint_eq(run(p, 0x4202, in, 12), 0);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0);
	ck_assert_uint_eq(out[2] & 3, 0);
	ck_assert_uint_eq(run(p, 0x4201, NULL, 0), 0);
	ck_assert_uint_eq(out[0], 0x03);
	ck_assert_uint_eq(out[3], 50);
	/* disable the temperature warning */
	memset(in, 0, sizeof(in));
	in[0] = 0x02;
	ck_assert_uint_eq(run(p, 0x4202, in, 12), 0);
	ck_assert_uint_eq(run(p, 0x4201, NULL, 0), 0);
	ck_assert_uint_eq(out[0], 0x01);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0);
	ck_assert_uint_eq(out[2], 0);
	/* invalid: warning at or above the critical threshold, reserved bits, enable without valid
	 */
	memset(in, 0, sizeof(in));
	in[0] = 0x01;
	in[1] = 0x01;
	in[2] = 75;
	ck_assert_uint_eq(run(p, 0x4202, in, 12), CXL_RC_INVALID_INPUT);
	in[0] = 0x02;
	in[1] = 0x02;
	put16(in + 4, 90);
	ck_assert_uint_eq(run(p, 0x4202, in, 12), CXL_RC_INVALID_INPUT);
	in[0] = 0x20;
	in[1] = 0x00;
	ck_assert_uint_eq(run(p, 0x4202, in, 12), CXL_RC_INVALID_INPUT);
	in[0] = 0x00;
	in[1] = 0x01;
	ck_assert_uint_eq(run(p, 0x4202, in, 12), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(run(p, 0x4201, NULL, 0), 0);
	ck_assert_uint_eq(out[0], 0x01); /* unchanged */
	dev_close(p);
}
END_TEST

/* Get Supported Features input. */
static uint16_t supported_features(void *p, uint32_t count, uint16_t start)
{
	uint8_t in[8] = {0};

	put32(in, count);
	put16(in + 4, start);
	return run(p, 0x0500, in, 8);
}

START_TEST(memdev_supported_features)
{
	static const struct {
		const uint8_t *uuid;
		uint16_t get, set, eff;
	} want[] = {
	    {scrub_uuid, 4, 2, 0x02},
	    {refresh_uuid, 4, 1, 0x01},
	    {fill_uuid, 8, 4, 0x04},
	};
	void *p = dev_open(NULL);

	ck_assert_uint_eq(supported_features(p, 8 + 3 * 48, 0), 0);
	ck_assert_uint_eq(out_len, 8 + 3 * 48);
	ck_assert_uint_eq(le16(out), 3);
	ck_assert_uint_eq(le16(out + 2), 3);
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *e = out + 8 + 48 * i;

		ck_assert_mem_eq(e, want[i].uuid, 16);
		ck_assert_uint_eq(le16(e + 16), i);
		ck_assert_uint_eq(le16(e + 18), want[i].get);
		ck_assert_uint_eq(le16(e + 20), want[i].set);
		ck_assert_uint_eq(le32(e + 22) & 1, 1); /* changeable */
		ck_assert_uint_eq(e[26], 1);
		ck_assert_uint_eq(e[27], 1);
		ck_assert_uint_eq(le16(e + 28), want[i].eff);
	}
	/* from index 1, and a count with room for one entry */
	ck_assert_uint_eq(supported_features(p, 4096, 1), 0);
	ck_assert_uint_eq(le16(out), 2);
	ck_assert_uint_eq(le16(out + 8 + 16), 1);
	ck_assert_uint_eq(supported_features(p, 8 + 48 + 47, 0), 0);
	ck_assert_uint_eq(out_len, 8 + 48);
	ck_assert_uint_eq(le16(out), 1);
	ck_assert_uint_eq(le16(out + 2), 3);
	ck_assert_uint_eq(supported_features(p, 8, 0), 0);
	ck_assert_uint_eq(out_len, 8);
	ck_assert_uint_eq(le16(out), 0);
	ck_assert_uint_eq(supported_features(p, 7, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(supported_features(p, 4096, 3), CXL_RC_INVALID_INPUT);
	dev_close(p);
}
END_TEST

static uint16_t get_feature(void *p, const uint8_t *uuid, uint16_t offset, uint16_t count,
			    uint8_t sel)
{
	uint8_t in[21];

	memcpy(in, uuid, 16);
	put16(in + 16, offset);
	put16(in + 18, count);
	in[20] = sel;
	return run(p, 0x0501, in, 21);
}

static uint16_t set_feature(void *p, const uint8_t *uuid, uint32_t flags, uint8_t version,
			    const void *data, size_t len)
{
	uint8_t in[64] = {0};

	memcpy(in, uuid, 16);
	put32(in + 16, flags);
	in[22] = version;
	memcpy(in + 32, data, len);
	return run(p, 0x0502, in, 32 + len);
}

START_TEST(memdev_features)
{
	static const uint8_t bogus[16] = {1, 2, 3};
	uint8_t data[8];
	void *p = dev_open(NULL);

	/* patrol scrub: 12 h cycle, minimum 1 h, enabled */
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 0, 4, 0), 0);
	ck_assert_uint_eq(out_len, 4);
	ck_assert_uint_eq(out[1], 12);
	ck_assert_uint_eq(out[2], 1);
	ck_assert_uint_eq(out[3], 1);
	data[0] = 24;
	data[1] = 0;
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 0, 1, data, 2), 0);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 0, 4, 0), 0);
	ck_assert_uint_eq(out[1], 24);
	ck_assert_uint_eq(out[3], 0);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 0, 4, 1), 0); /* default */
	ck_assert_uint_eq(out[1], 12);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 1, 100, 0), 0); /* window clipped */
	ck_assert_uint_eq(out_len, 3);
	ck_assert_uint_eq(out[0], 24);
	data[0] = 0;
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 0, 1, data, 2), CXL_RC_INVALID_INPUT);
	/* refresh mode: only the pending value moves */
	data[0] = 2;
	ck_assert_uint_eq(set_feature(p, refresh_uuid, 0, 1, data, 1), 0);
	ck_assert_uint_eq(get_feature(p, refresh_uuid, 0, 4, 0), 0);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 2);
	data[0] = 3;
	ck_assert_uint_eq(set_feature(p, refresh_uuid, 0, 1, data, 1), CXL_RC_INVALID_INPUT);
	/* pattern fill: the data changes at once, and poison goes with it */
	ck_assert_uint_eq(poison_count(p), 1);
	put32(data, 0xa5a5a5a5);
	ck_assert_uint_eq(set_feature(p, fill_uuid, 0, 1, data, 4), 0);
	ck_assert_uint_eq(poison_count(p), 0);
	ck_assert_uint_eq(get_feature(p, fill_uuid, 0, 8, 0), 0);
	ck_assert_uint_eq(le32(out), 0xa5a5a5a5);
	ck_assert_uint_eq(le32(out + 4), 1);
	/* errors */
	ck_assert_uint_eq(get_feature(p, bogus, 0, 4, 0), CXL_RC_UNSUPPORTED);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 0, 4, 2), 0x1a);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 4, 4, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(get_feature(p, scrub_uuid, 0, 0, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(set_feature(p, bogus, 0, 1, data, 2), CXL_RC_UNSUPPORTED);
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 0, 2, data, 2), 0x19);
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 1, 1, data, 2), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 8, 1, data, 2), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(set_feature(p, scrub_uuid, 0, 1, data, 3), CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

/* Background Operation Status: in-progress bit, percent, opcode, return code. */
static void bg_status(void *p, bool *running, unsigned *pct, uint16_t *op, uint16_t *rc)
{
	ck_assert_uint_eq(run(p, 0x0002, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 8);
	*running = out[0] & 1;
	*pct = out[0] >> 1;
	*op = le16(out + 2);
	*rc = le16(out + 4);
}

START_TEST(memdev_sanitize)
{
	uint8_t in[8];
	void *p = dev_open("sanitize_ms", "300", NULL);
	bool running;
	unsigned pct, pct2;
	uint16_t op, rc;
	uint64_t t0;

	put64(in, 0x8000);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), 0);
	ck_assert_uint_eq(poison_count(p), 2);
	t0 = now_ms();
	ck_assert_uint_eq(run(p, 0x4400, NULL, 0), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(out_len, 0);
	bg_status(p, &running, &pct, &op, &rc);
	ck_assert(running);
	ck_assert_uint_eq(op, 0x4400);
	ck_assert_uint_lt(pct, 50);
	/* a second background operation is refused; foreground commands go on */
	ck_assert_uint_eq(run(p, 0x4400, NULL, 0), CXL_RC_BUSY);
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0);
	/* the media is not reachable while it is being sanitized */
	put64(in, 0);
	ck_assert_uint_eq(run(p, 0x4301, in, 8), CXL_RC_MEDIA_DISABLED);
	sleep_ms(150);
	bg_status(p, &running, &pct2, &op, &rc);
	if (now_ms() - t0 < 280) {
		ck_assert(running);
		ck_assert_uint_gt(pct2, pct);
		ck_assert_uint_ge(pct2, 40);
		ck_assert_uint_le(pct2, 99);
	}
	sleep_ms(200);
	bg_status(p, &running, &pct, &op, &rc);
	ck_assert(!running);
	ck_assert_uint_eq(pct, 100);
	ck_assert_uint_eq(op, 0x4400);
	ck_assert_uint_eq(rc, 0);
	ck_assert_uint_eq(poison_count(p), 0);
	/* and it can run again */
	ck_assert_uint_eq(run(p, 0x4400, NULL, 0), CXL_RC_BACKGROUND_STARTED);
	dev_close(p);
}
END_TEST

/* ---- firmware update ---- */

/* Sends Transfer FW: the 128-byte header (action, slot, offset in 128-byte units), then data. */
static uint16_t fw_part(void *p, uint8_t action, uint8_t slot, uint32_t offset, const void *data,
			size_t len)
{
	static uint8_t in[128 + 8192];

	ck_assert_uint_le(len, sizeof(in) - 128);
	memset(in, 0, 128);
	in[0] = action;
	in[1] = slot;
	put32(in + 4, offset);
	if (len)
		memcpy(in + 128, data, len);
	return run(p, 0x0201, in, 128 + len);
}

static uint16_t fw_activate(void *p, uint8_t action, uint8_t slot)
{
	uint8_t in[2] = {action, slot};

	return run(p, 0x0202, in, 2);
}

/* Get FW Info: active and staged slot, and slot's revision copied NUL-terminated into rev. */
static void fw_info(void *p, unsigned *active, unsigned *staged, unsigned slot, char rev[17])
{
	ck_assert_uint_eq(run(p, 0x0200, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 0x50);
	ck_assert_uint_eq(out[0], 2);
	ck_assert_uint_eq(out[2] & 1, 1); /* online activation supported */
	*active = out[1] & 7;
	*staged = (out[1] >> 3) & 7;
	memcpy(rev, out + 0x10 + 16 * (slot - 1), 16);
	rev[16] = '\0';
}

/* Waits for the running background operation to end (at most 5 s); its return code. */
static uint16_t bg_wait(void *p, uint16_t want_op)
{
	uint64_t t0 = now_ms();
	bool running = true;
	unsigned pct;
	uint16_t op, rc;

	while (running) {
		ck_assert_msg(now_ms() - t0 < 5000, "background operation still running");
		sleep_ms(50);
		bg_status(p, &running, &pct, &op, &rc);
	}
	ck_assert_uint_eq(op, want_op);
	ck_assert_uint_eq(pct, 100);
	return rc;
}

START_TEST(memdev_fw_full)
{
	static uint8_t image[300];
	void *p = dev_open(NULL);
	unsigned active, staged, pct;
	bool running;
	uint16_t op, rc;
	char rev[17];

	fw_info(p, &active, &staged, 2, rev);
	ck_assert_uint_eq(active, 1);
	ck_assert_uint_eq(staged, 0);
	ck_assert_str_eq(rev, "SIM-1.3.9");
	memcpy(image, "SIM-2.0.0", 9); /* then a NUL: the revision stops there */
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, sizeof(image)), CXL_RC_BACKGROUND_STARTED);
	bg_status(p, &running, &pct, &op, &rc);
	ck_assert(running);
	ck_assert_uint_eq(op, 0x0201);
	/* the slot changes only when the transfer is done; one transfer at a time */
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "SIM-1.3.9");
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, sizeof(image)), CXL_RC_BUSY);
	ck_assert_uint_eq(fw_activate(p, 0, 2), CXL_RC_BUSY);
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_eq(bg_wait(p, 0x0201), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "SIM-2.0.0");
	ck_assert_uint_eq(active, 1);
	ck_assert_uint_eq(staged, 0);
	/* Identify Memory Device names the running firmware, still slot 1's */
	ck_assert_uint_eq(run(p, 0x4000, NULL, 0), 0);
	ck_assert_str_eq((char *)out, "SIM-1.4.2");
	/* an image that does not start with text gets a made-up revision */
	image[0] = 0x7f;
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, 5), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(bg_wait(p, 0x0201), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "SIM FW 2");
	dev_close(p);
}
END_TEST

START_TEST(memdev_fw_parts)
{
	static uint8_t image[612];
	void *p = dev_open(NULL);
	unsigned active, staged;
	bool running;
	unsigned pct;
	uint16_t op, rc;
	char rev[17];

	memset(image, 0xa5, sizeof(image));
	memcpy(image, "MULTIPART-FW-3.1+more", 21); /* the revision keeps the first 16 */
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 256), 0);
	ck_assert_uint_eq(fw_part(p, 0x02, 0, 2, image + 256, 256), 0);
	/* nothing runs in the background before End */
	bg_status(p, &running, &pct, &op, &rc);
	ck_assert(!running);
	ck_assert_uint_eq(op, 0);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 4, image + 512, 100), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(bg_wait(p, 0x0201), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "MULTIPART-FW-3.1");
	/* Request Abort stops a running transfer: the slot keeps what it had */
	memcpy(image, "ABORTED-IMAGE", 13);
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 128), 0);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 1, image + 128, 128), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(run(p, 0x0005, NULL, 0), 0);
	ck_assert_uint_eq(bg_wait(p, 0x0201), CXL_RC_ABORTED);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "MULTIPART-FW-3.1");
	dev_close(p);
}
END_TEST

/* Parts out of order, without an Initiate, or of a bad size are refused; nothing changes. */
START_TEST(memdev_fw_bad_sequence)
{
	static uint8_t image[512];
	void *p = dev_open(NULL);
	unsigned active, staged, pct;
	bool running;
	uint16_t op, rc;
	char rev[17];

	memcpy(image, "NEVER", 5);
	ck_assert_uint_eq(fw_part(p, 0x02, 0, 0, image, 128), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 0, image, 128), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 1, image, 128), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 100), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 0), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, 0), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(fw_part(p, 0x05, 2, 0, image, 128), CXL_RC_INVALID_INPUT);
	/* one transfer at a time */
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 256), 0);
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 256), CXL_RC_FW_TRANSFER_IN_PROGRESS);
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, 256), CXL_RC_FW_TRANSFER_IN_PROGRESS);
	/* a Continue that is not a multiple of 128 bytes is refused, the transfer kept */
	ck_assert_uint_eq(fw_part(p, 0x02, 0, 2, image, 100), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(fw_part(p, 0x02, 0, 2, image, 128), 0);
	/* a part that does not follow the last one drops the whole transfer */
	ck_assert_uint_eq(fw_part(p, 0x02, 0, 5, image, 128), CXL_RC_FW_TRANSFER_OUT_OF_ORDER);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 3, image, 128), CXL_RC_INVALID_INPUT);
	/* Abort drops held parts, and is harmless with none */
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 128), 0);
	ck_assert_uint_eq(fw_part(p, 0x04, 0, 0, NULL, 0), 0);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 1, image, 128), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(fw_part(p, 0x04, 0, 0, NULL, 0), 0);
	bg_status(p, &running, &pct, &op, &rc);
	ck_assert(!running);
	ck_assert_uint_eq(op, 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "SIM-1.3.9");
	ck_assert_uint_eq(active, 1);
	dev_close(p);
}
END_TEST

/* Slot 0, the active slot and a slot past the device's are Invalid Slot (0Bh). */
START_TEST(memdev_fw_bad_slot)
{
	static uint8_t image[256];
	void *p = dev_open(NULL);
	unsigned active, staged;
	char rev[17];

	memcpy(image, "SLOT-TEST", 9);
	for (uint8_t slot = 0; slot <= 3; slot += slot == 1 ? 2 : 1) {
		ck_assert_uint_eq(fw_part(p, 0x00, slot, 0, image, 200), CXL_RC_INVALID_SLOT);
		ck_assert_uint_eq(fw_activate(p, 0, slot), CXL_RC_INVALID_SLOT);
		ck_assert_uint_eq(fw_activate(p, 1, slot), CXL_RC_INVALID_SLOT);
	}
	ck_assert_uint_eq(fw_activate(p, 2, 2), CXL_RC_INVALID_INPUT);
	/* End to a bad slot is refused but keeps the parts: End again to a good one */
	ck_assert_uint_eq(fw_part(p, 0x01, 0, 0, image, 128), 0);
	ck_assert_uint_eq(fw_part(p, 0x03, 1, 1, image + 128, 64), CXL_RC_INVALID_SLOT);
	ck_assert_uint_eq(fw_part(p, 0x03, 2, 1, image + 128, 64), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(bg_wait(p, 0x0201), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_str_eq(rev, "SLOT-TEST");
	dev_close(p);
}
END_TEST

/* Activate FW offline stages a slot for the next cold reset; online makes it run now. */
START_TEST(memdev_fw_activate)
{
	static uint8_t image[200];
	void *p = dev_open(NULL);
	unsigned active, staged;
	char rev[17];

	ck_assert_uint_eq(fw_activate(p, 1, 2), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_uint_eq(active, 1);
	ck_assert_uint_eq(staged, 2);
	ck_assert_uint_eq(run(p, 0x4000, NULL, 0), 0);
	ck_assert_str_eq((char *)out, "SIM-1.4.2");
	ck_assert_uint_eq(fw_activate(p, 0, 2), 0);
	fw_info(p, &active, &staged, 2, rev);
	ck_assert_uint_eq(active, 2);
	ck_assert_uint_eq(staged, 0);
	ck_assert_uint_eq(run(p, 0x4000, NULL, 0), 0);
	ck_assert_str_eq((char *)out, "SIM-1.3.9");
	/* slot 2 now runs: it cannot be written, slot 1 can */
	ck_assert_uint_eq(fw_part(p, 0x00, 2, 0, image, sizeof(image)), CXL_RC_INVALID_SLOT);
	ck_assert_uint_eq(fw_activate(p, 0, 2), CXL_RC_INVALID_SLOT);
	ck_assert_uint_eq(fw_part(p, 0x00, 1, 0, image, sizeof(image)), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(bg_wait(p, 0x0201), 0);
	fw_info(p, &active, &staged, 1, rev);
	ck_assert_str_eq(rev, "SIM FW 1");
	dev_close(p);
}
END_TEST

START_TEST(memdev_too_big)
{
	static uint8_t big[4097];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x0502,
	    .in = big,
	    .in_len = sizeof(big),
	    .out = out,
	    .out_cap = OUT_CAP,
	};
	void *p = dev_open(NULL);

	memcpy(big, scrub_uuid, 16);
	big[22] = 1; /* version */
	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_TOO_BIG);
	ck_assert(strlen(cmd.error) > 0);
	/* exactly the mailbox size is delivered (and is the wrong length for 0502h here) */
	cmd.in_len = 4096;
	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, CXL_RC_INVALID_PAYLOAD_LENGTH);
	/* an output buffer too small for the answer */
	cmd.opcode = 0x0001;
	cmd.in_len = 0;
	cmd.out_cap = 10;
	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_IO);
	ck_assert(strstr(cmd.error, "18") != NULL);
	dev_close(p);
}
END_TEST

/* ---- latency and faults ---- */

START_TEST(fault_latency)
{
	void *p = dev_open("latency_us", "60000", NULL);
	uint64_t t0 = now_ms();

	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_ge(now_ms() - t0, 60);
	dev_close(p);
}
END_TEST

START_TEST(fault_busy_count)
{
	void *p = dev_open("fault", "busy", "fault_count", "2", NULL);

	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), CXL_RC_BUSY);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), CXL_RC_BUSY);
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 18);
	dev_close(p);
}
END_TEST

START_TEST(fault_opcode_only)
{
	void *p = dev_open("fault", "rc:0x14", "fault_opcode", "0x4200", NULL);

	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
		ck_assert_uint_eq(run(p, 0x4200, NULL, 0), 0x14);
	}
	dev_close(p);
}
END_TEST

START_TEST(fault_none)
{
	void *p = dev_open("fault", "none", "fault_opcode", "1", NULL);

	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	dev_close(p);
}
END_TEST

START_TEST(fault_timeout)
{
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x0001,
	    .out = out,
	    .out_cap = OUT_CAP,
	    .timeout_ms = 120,
	};
	void *p = dev_open("fault", "timeout", "fault_count", "1", NULL);
	uint64_t t0 = now_ms();

	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_TIMEOUT);
	ck_assert_uint_ge(now_ms() - t0, 120);
	ck_assert(strstr(cmd.error, "120 ms") != NULL);
	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	dev_close(p);
}
END_TEST

START_TEST(fault_hang)
{
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200,
	    .out = out,
	    .out_cap = OUT_CAP,
	    .timeout_ms = 10,
	};
	void *p = dev_open("fault", "hang", "hang_ms", "250", "fault_opcode", "0x4200", NULL);
	uint64_t t0 = now_ms();

	/* the hang outlasts the command's own timeout */
	ck_assert_int_eq(ops->submit(p, &cmd), MBX_XPORT_TIMEOUT);
	ck_assert_uint_ge(now_ms() - t0, 250);
	ck_assert(strstr(cmd.error, "hung") != NULL);
	t0 = now_ms();
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_lt(now_ms() - t0, 100);
	dev_close(p);
}
END_TEST

/* ---- options ---- */

START_TEST(options_list)
{
	static const char *const keys[] = {
	    "model",           "serial",         "latency_us",     "sanitize_ms", "ports",
	    "tunnel_port",     "payload_max",    "fault_opcode",   "fault",       "fault_count",
	    "hang_ms",         "fw_slots",       "fw_transfer_ms", "omit_opcode", "cel_effects",
	    "feature_effects", "features_twice", "ld_count"};
	size_t n = 0;

	while (ops->options[n])
		n++;
	ck_assert_uint_eq(n, sizeof(keys) / sizeof(keys[0]));
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (size_t j = 0; j < n; j++)
			seen |= strcmp(ops->options[j], keys[i]) == 0;
		ck_assert_msg(seen, "option %s not listed", keys[i]);
	}
	ck_assert_str_eq(ops->name, "sim");
	ck_assert_uint_eq(ops->n_ioctls, 0);
}
END_TEST

START_TEST(options_errors)
{
	open_fails("model", "model", "tape", NULL);
	open_fails("power of two", "payload_max", "1000", NULL);
	open_fails("payload_max", "payload_max", "128", NULL);
	open_fails("payload_max", "payload_max", "2097152", NULL);
	open_fails("payload_max", "model", "switch", "payload_max", "256", NULL);
	open_fails("fault", "fault", "explode", NULL);
	open_fails("fault", "fault", "rc:70000", NULL);
	open_fails("fault", "fault", "rc:", NULL);
	open_fails("fault", "fault", "rc:-1", NULL);
	open_fails("fault_opcode", "fault_opcode", "0x10000", NULL);
	open_fails("fault_count", "fault_count", "many", NULL);
	open_fails("serial", "serial", "-1", NULL);
	open_fails("latency_us", "latency_us", "1e3", NULL);
	open_fails("ports", "ports", "4", NULL);
	open_fails("tunnel_port", "tunnel_port", "1", NULL);
	open_fails("ports", "model", "switch", "ports", "1", NULL);
	open_fails("tunnel_port", "model", "switch", "tunnel_port", "0", NULL);
	open_fails("tunnel_port", "model", "switch", "tunnel_port", "4", NULL);
	open_fails("tunnel_port", "model", "switch", "ports", "8", "tunnel_port", "8", NULL);
	open_fails("fw_slots", "fw_slots", "1", NULL);
	open_fails("fw_slots", "fw_slots", "5", NULL);
	open_fails("fw_transfer_ms", "fw_transfer_ms", "0", NULL);
	open_fails("fw_slots", "model", "switch", "fw_slots", "2", NULL);
	open_fails("cel_effects", "cel_effects", "0x4202", NULL);
	open_fails("cel_effects", "cel_effects", "0x4202:0x10000", NULL);
	open_fails("feature_effects", "feature_effects", "1:x", NULL);
	open_fails("feature_effects", "model", "switch", "feature_effects", "0:1", NULL);
	open_fails("features_twice", "features_twice", "2", NULL);
}
END_TEST

/* cel_effects changes what the CEL reports; feature_effects and features_twice the Features. */
START_TEST(options_reported_effects)
{
	void *p = dev_open("cel_effects", "0x4202:0x0020, 0x0001:0x0004", "feature_effects",
			   "1:0x0020 4:0x0004", "features_twice", "1", NULL);
	uint8_t login[24] = {0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78,
			     0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17};
	uint8_t fin[8] = {0, 0x10, 0, 0}; /* 4096 bytes of room, from entry 0 */
	size_t seen = 0;

	ck_assert_uint_eq(run(p, 0x0400, NULL, 0), CXL_RC_SUCCESS);
	login[20] = out[8 + 16];
	login[21] = out[8 + 17];
	ck_assert_uint_eq(run(p, 0x0401, login, sizeof(login)), CXL_RC_SUCCESS);
	for (size_t i = 0; i + 4 <= out_len; i += 4) {
		if (le16(out + i) == 0x4202 && ++seen)
			ck_assert_uint_eq(le16(out + i + 2), 0x0020);
		if (le16(out + i) == 0x0001 && ++seen)
			ck_assert_uint_eq(le16(out + i + 2), 0x0004);
		if (le16(out + i) == 0x4200)
			ck_assert_uint_eq(le16(out + i + 2), 0); /* untouched */
	}
	ck_assert_uint_eq(seen, 2);
	ck_assert_uint_eq(run(p, 0x0500, fin, sizeof(fin)), CXL_RC_SUCCESS);
	ck_assert_uint_eq(le16(out), 6); /* three Features, each twice */
	ck_assert_uint_eq(le16(out + 2), 6);
	ck_assert_int_eq(memcmp(out + 8, out + 8 + 3 * 48, 16), 0);
	ck_assert_uint_eq(le16(out + 8 + 1 * 48 + 28), 0x0020);
	ck_assert_uint_eq(le16(out + 8 + 4 * 48 + 28), 0x0004);
	ck_assert_uint_eq(le16(out + 8 + 0 * 48 + 28), le16(out + 8 + 3 * 48 + 28));
	dev_close(p);
}
END_TEST

/* ---- switch ---- */

START_TEST(switch_identify)
{
	struct mbx_transport_info info;
	void *p = dev_open("model", "switch", "serial", "0x500", NULL);

	ops->describe(p, &info);
	ck_assert_str_eq(info.kind, "switch");
	ck_assert_str_eq(info.serial, "0x0000000000000500");
	ck_assert_uint_eq(info.payload_max, 4096);
	ck_assert_uint_eq(run(p, 0x0001, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 18);
	ck_assert_uint_eq(le16(out + 2), 0x5a02);
	ck_assert_uint_eq(le64(out + 8), 0x500);
	ck_assert_uint_eq(out[17], 0x00);
	ck_assert_uint_eq(run(p, 0x0002, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 8);
	ck_assert_uint_eq(out[0], 0);

	ck_assert_uint_eq(run(p, 0x5100, NULL, 0), 0);
	ck_assert_uint_eq(out_len, 0x49);
	ck_assert_uint_eq(out[2], 4);    /* physical ports */
	ck_assert_uint_eq(out[3], 1);    /* VCSs */
	ck_assert_uint_eq(out[4], 0x03); /* ports 0 and 1 are up */
	ck_assert_uint_eq(out[0x24], 0x01);
	ck_assert_uint_eq(le16(out + 0x44), 3);
	ck_assert_uint_eq(le16(out + 0x46), 1);
	ck_assert_uint_eq(run(p, 0x5100, out, 1), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(run(p, 0x4200, NULL, 0), CXL_RC_UNSUPPORTED);
	ck_assert_uint_eq(run(p, 0x4400, NULL, 0), CXL_RC_UNSUPPORTED);
	dev_close(p);
}
END_TEST

START_TEST(switch_cel_exact)
{
	static const struct {
		uint16_t op, eff;
	} want[] = {
	    {0x0001, 0}, {0x0002, 0}, {0x0005, 0},    {0x0400, 0}, {0x0401, 0},
	    {0x5100, 0}, {0x5101, 0}, {0x5102, 0x02}, {0x5300, 0},
	};
	uint8_t cel[64];
	void *p = dev_open("model", "switch", NULL);
	size_t n = read_cel(p, cel);

	ck_assert_uint_eq(n, 9);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(le16(cel + 4 * i), want[i].op);
		ck_assert_uint_eq(le16(cel + 4 * i + 2), want[i].eff);
	}
	check_cel_exact(p);
	dev_close(p);
}
END_TEST

/* Get Physical Port State for the listed ports. */
static uint16_t port_state(void *p, const uint8_t *ids, uint8_t n)
{
	uint8_t in[256];

	in[0] = n;
	memcpy(in + 1, ids, n);
	return run(p, 0x5101, in, 1u + n);
}

START_TEST(switch_ports)
{
	static const uint8_t ids[] = {0, 1, 2, 3, 9};
	void *p = dev_open("model", "switch", NULL);
	const uint8_t *b;

	ck_assert_uint_eq(port_state(p, ids, 5), 0);
	ck_assert_uint_eq(out_len, 4 + 5 * 16);
	ck_assert_uint_eq(out[0], 5);
	b = out + 4;
	ck_assert_uint_eq(b[0], 0);
	ck_assert_uint_eq(b[1], 0x04); /* USP */
	b += 16;
	ck_assert_uint_eq(b[0], 1);
	ck_assert_uint_eq(b[1], 0x03); /* DSP */
	ck_assert_uint_eq(b[4], 0x04); /* Type 3 SLD */
	ck_assert_uint_eq(b[6], 16);
	ck_assert_uint_eq(b[7], 16);
	ck_assert_uint_eq(b[10], 5);
	ck_assert_uint_eq(b[11], 0x04); /* L0 */
	ck_assert_uint_eq(le16(b + 13) & 2, 0);
	ck_assert_uint_eq(le16(b + 13) & 4, 4);
	b += 16;
	ck_assert_uint_eq(b[1], 0x03);
	ck_assert_uint_eq(b[4], 0x00); /* nothing attached */
	ck_assert_uint_eq(b[7], 0);
	ck_assert_uint_eq(b[11], 0x00); /* Detect */
	b += 32;
	ck_assert_uint_eq(b[0], 9);
	ck_assert_uint_eq(b[1], 0x0f); /* invalid port id */
	/* a count that disagrees with the list, an empty list */
	uint8_t in[4] = {3, 0, 1};
	ck_assert_uint_eq(run(p, 0x5101, in, 3), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(run(p, 0x5101, in, 4), 0);
	in[0] = 0;
	ck_assert_uint_eq(run(p, 0x5101, in, 1), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(run(p, 0x5101, in, 0), CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

START_TEST(switch_ports_small_mailbox)
{
	static uint8_t ids[255];
	void *p = dev_open("model", "switch", "payload_max", "512", NULL);

	/* 4 + 16 * 31 = 500 bytes fit; 32 ports do not */
	ck_assert_uint_eq(port_state(p, ids, 31), 0);
	ck_assert_uint_eq(port_state(p, ids, 32), CXL_RC_INVALID_INPUT);
	dev_close(p);
}
END_TEST

/* Encodes a CCI request and tunnels it to port; returns the outer return code. */
static uint16_t tunnel(void *p, uint8_t port, uint8_t tag, uint16_t opcode, const void *pl,
		       uint32_t pl_len)
{
	static uint8_t msg[70000], in[70000];
	struct cci_msg m = {
	    .category = CCI_CATEGORY_REQUEST,
	    .tag = tag,
	    .opcode = opcode,
	    .payload = pl,
	    .payload_len = pl_len,
	};
	struct cci_tunnel_req t = {.target = port, .target_type = 0, .msg = msg};
	int n = cci_encode(msg, sizeof(msg), &m);

	ck_assert_int_gt(n, 0);
	t.msg_len = (uint16_t)n;
	n = cci_tunnel_req_encode(in, sizeof(in), &t);
	ck_assert_int_gt(n, 0);
	return run(p, 0x5300, in, (size_t)n);
}

/* Decodes the tunnel response in out into *m; the inner payload stays in out. */
static void tunnel_reply(struct cci_msg *m)
{
	struct cci_tunnel_rep rep;

	ck_assert_int_eq(cci_tunnel_rep_decode(out, out_len, &rep), 0);
	ck_assert_int_eq(cci_decode(rep.msg, rep.msg_len, m), 0);
	ck_assert_uint_eq(m->category, CCI_CATEGORY_RESPONSE);
}

START_TEST(switch_tunnel)
{
	void *p = dev_open("model", "switch", "serial", "0x700", "sanitize_ms", "200", NULL);
	struct cci_msg m;
	uint8_t log = 0;

	ck_assert_uint_eq(tunnel(p, 1, 0x42, 0x0001, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.tag, 0x42);
	ck_assert_uint_eq(m.opcode, 0x0001);
	ck_assert_uint_eq(m.rc, 0);
	ck_assert(!m.background);
	ck_assert_uint_eq(m.payload_len, 18);
	ck_assert_uint_eq(m.payload[17], 0x03); /* a Type 3 device behind the port */
	ck_assert_uint_eq(le64(m.payload + 8), 0x701);
	ck_assert_uint_eq(m.payload[16], 11); /* half the switch's 4096-byte mailbox */

	ck_assert_uint_eq(tunnel(p, 1, 1, 0x4200, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, 0);
	ck_assert_uint_eq(m.payload_len, 18);
	ck_assert_uint_eq(m.payload[3], 3);

	ck_assert_uint_eq(tunnel(p, 1, 2, 0x0100, &log, 1), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.payload_len, 32 + 2 * 128);

	/* inner errors come back inside a successful tunnel */
	ck_assert_uint_eq(tunnel(p, 1, 3, 0x5100, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_UNSUPPORTED);
	ck_assert_uint_eq(m.payload_len, 0);
	ck_assert_uint_eq(tunnel(p, 1, 4, 0x4200, &log, 1), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_INVALID_PAYLOAD_LENGTH);

	/* a background operation behind the switch */
	ck_assert_uint_eq(tunnel(p, 1, 5, 0x4400, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_BACKGROUND_STARTED);
	ck_assert(m.background);
	ck_assert_uint_eq(tunnel(p, 1, 6, 0x0002, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.payload[0] & 1, 1);
	ck_assert_uint_eq(le16(m.payload + 2), 0x4400);
	ck_assert_uint_eq(tunnel(p, 1, 7, 0x4400, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_BUSY);
	/* the switch itself runs nothing in the background */
	ck_assert_uint_eq(run(p, 0x0002, NULL, 0), 0);
	ck_assert_uint_eq(out[0], 0);
	sleep_ms(250);
	ck_assert_uint_eq(tunnel(p, 1, 8, 0x0002, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.payload[0], 100 << 1);
	dev_close(p);
}
END_TEST

START_TEST(switch_tunnel_cel)
{
	static const uint8_t want[] = {0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
	uint8_t in[24];
	void *p = dev_open("model", "switch", NULL);
	struct cci_msg m;

	/* the device behind the switch has its own, memory device CEL */
	memcpy(in, cel_uuid, 16);
	put32(in + 16, 0);
	put32(in + 20, 24 * 4);
	ck_assert_uint_eq(tunnel(p, 1, 9, 0x0401, in, 24), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, 0);
	ck_assert_uint_eq(m.payload_len, 96);
	ck_assert_mem_eq(m.payload, want, 8);
	ck_assert_uint_eq(le16(m.payload + 92), 0x4400);
	dev_close(p);
}
END_TEST

START_TEST(switch_tunnel_malformed)
{
	uint8_t in[64] = {0}, resp[16] = {0};
	void *p = dev_open("model", "switch", NULL);
	struct cci_msg m = {.category = CCI_CATEGORY_RESPONSE, .opcode = 0x0001};

	/* wrong port, an empty port, a port that does not exist, another target type */
	ck_assert_uint_eq(tunnel(p, 2, 0, 0x0001, NULL, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(tunnel(p, 0, 0, 0x0001, NULL, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(tunnel(p, 200, 0, 0x0001, NULL, 0), CXL_RC_INVALID_INPUT);
	in[0] = 1;
	in[1] = 1;
	put16(in + 2, 12);
	ck_assert_uint_eq(run(p, 0x5300, in, 16), CXL_RC_INVALID_INPUT);
	/* shorter than a tunnel header and a CCI header */
	in[1] = 0;
	ck_assert_uint_eq(run(p, 0x5300, in, 15), CXL_RC_INVALID_PAYLOAD_LENGTH);
	ck_assert_uint_eq(run(p, 0x5300, in, 0), CXL_RC_INVALID_PAYLOAD_LENGTH);
	/* the size field disagrees with the payload */
	put16(in + 2, 13);
	ck_assert_uint_eq(run(p, 0x5300, in, 16), CXL_RC_INVALID_INPUT);
	put16(in + 2, 12);
	ck_assert_uint_eq(run(p, 0x5300, in, 17), CXL_RC_INVALID_INPUT);
	/* the inner length field disagrees with the inner message */
	ck_assert_uint_eq(run(p, 0x5300, in, 16), 0); /* all-zero inner: request 0000h */
	in[4 + 5] = 4;
	ck_assert_uint_eq(run(p, 0x5300, in, 16), CXL_RC_INVALID_INPUT);
	in[4 + 5] = 0;
	/* reserved category */
	in[4] = 2;
	ck_assert_uint_eq(run(p, 0x5300, in, 16), CXL_RC_INVALID_INPUT);
	/* a response in place of a request */
	ck_assert_int_eq(cci_encode(resp, sizeof(resp), &m), 12);
	memcpy(in + 4, resp, 12);
	ck_assert_uint_eq(run(p, 0x5300, in, 16), CXL_RC_INVALID_INPUT);
	dev_close(p);
}
END_TEST

START_TEST(switch_tunnel_nested)
{
	static uint8_t inner[64], mid[64];
	struct cci_msg im = {.category = CCI_CATEGORY_REQUEST, .opcode = 0x0001};
	struct cci_tunnel_req t = {.target = 1, .msg = inner};
	void *p = dev_open("model", "switch", NULL);
	struct cci_msg m;
	int n;

	/* a memory device does not tunnel further */
	n = cci_encode(inner, sizeof(inner), &im);
	t.msg_len = (uint16_t)n;
	n = cci_tunnel_req_encode(mid, sizeof(mid), &t);
	ck_assert_uint_eq(tunnel(p, 1, 3, 0x5300, mid, (uint32_t)n), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_UNSUPPORTED);
	dev_close(p);
}
END_TEST

START_TEST(switch_tunnel_inner_too_big)
{
	static uint8_t big[2049];
	void *p = dev_open("model", "switch", NULL);
	struct cci_msg m;

	/* over the inner device's 2048-byte mailbox */
	ck_assert_uint_eq(tunnel(p, 1, 1, 0x0502, big, sizeof(big)), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

START_TEST(switch_port_control)
{
	static const uint8_t one = 1;
	uint8_t in[2];
	void *p = dev_open("model", "switch", NULL);
	struct cci_msg m;

	in[0] = 1;
	in[1] = 0; /* assert PERST */
	ck_assert_uint_eq(run(p, 0x5102, in, 2), 0);
	ck_assert_uint_eq(out_len, 0);
	ck_assert_uint_eq(port_state(p, &one, 1), 0);
	ck_assert_uint_eq(le16(out + 4 + 13) & 2, 2);
	ck_assert_uint_eq(out[4 + 7], 0);  /* link down */
	ck_assert_uint_eq(out[4 + 11], 0); /* Detect */
	ck_assert_uint_eq(run(p, 0x5100, NULL, 0), 0);
	ck_assert_uint_eq(out[4], 0x01); /* only the upstream port is active */
	/* the device is held in reset: nothing reaches it */
	ck_assert_uint_eq(tunnel(p, 1, 0, 0x0001, NULL, 0), CXL_RC_INVALID_INPUT);
	/* a PPB reset with PERST still held leaves the link down */
	in[1] = 2;
	ck_assert_uint_eq(run(p, 0x5102, in, 2), 0);
	ck_assert_uint_eq(port_state(p, &one, 1), 0);
	ck_assert_uint_eq(out[4 + 11], 0);
	in[1] = 1; /* deassert PERST */
	ck_assert_uint_eq(run(p, 0x5102, in, 2), 0);
	ck_assert_uint_eq(port_state(p, &one, 1), 0);
	ck_assert_uint_eq(le16(out + 4 + 13) & 2, 0);
	ck_assert_uint_eq(out[4 + 7], 16);
	ck_assert_uint_eq(out[4 + 11], 4);
	ck_assert_uint_eq(tunnel(p, 1, 0, 0x0001, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.rc, 0);
	in[1] = 2; /* reset PPB */
	ck_assert_uint_eq(run(p, 0x5102, in, 2), 0);
	/* invalid: port opcode, the upstream port, a port that does not exist */
	in[1] = 3;
	ck_assert_uint_eq(run(p, 0x5102, in, 2), CXL_RC_INVALID_INPUT);
	in[0] = 0;
	in[1] = 0;
	ck_assert_uint_eq(run(p, 0x5102, in, 2), CXL_RC_INVALID_INPUT);
	in[0] = 4;
	ck_assert_uint_eq(run(p, 0x5102, in, 2), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(run(p, 0x5102, in, 1), CXL_RC_INVALID_PAYLOAD_LENGTH);
	dev_close(p);
}
END_TEST

START_TEST(switch_options)
{
	void *p = dev_open("model", "switch", "ports", "8", "tunnel_port", "5", "payload_max",
			   "65536", NULL);
	struct cci_msg m;

	ck_assert_uint_eq(run(p, 0x5100, NULL, 0), 0);
	ck_assert_uint_eq(out[2], 8);
	ck_assert_uint_eq(out[4], 0x21); /* ports 0 and 5 */
	ck_assert_uint_eq(tunnel(p, 1, 0, 0x0001, NULL, 0), CXL_RC_INVALID_INPUT);
	ck_assert_uint_eq(tunnel(p, 5, 0, 0x0001, NULL, 0), 0);
	tunnel_reply(&m);
	ck_assert_uint_eq(m.payload[16], 15); /* 32 KiB behind a 64 KiB switch mailbox */
	dev_close(p);
}
END_TEST

START_TEST(switch_faults)
{
	void *p = dev_open("model", "switch", "fault", "busy", "fault_opcode", "0x5300", NULL);

	ck_assert_uint_eq(run(p, 0x5100, NULL, 0), 0);
	ck_assert_uint_eq(tunnel(p, 1, 0, 0x0001, NULL, 0), CXL_RC_BUSY);
	dev_close(p);
}
END_TEST

/* Two devices on two threads share nothing: each keeps its own state. */
START_TEST(instances_independent)
{
	uint8_t in[8];
	void *a = dev_open(NULL), *b = dev_open(NULL);

	put64(in, 0x4000);
	ck_assert_uint_eq(run(a, 0x4301, in, 8), 0);
	ck_assert_uint_eq(poison_count(a), 2);
	ck_assert_uint_eq(poison_count(b), 1);
	dev_close(a);
	dev_close(b);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("sim");
	TCase *md = tcase_create("memdev"), *f = tcase_create("faults");
	TCase *o = tcase_create("options"), *sw = tcase_create("switch");

	tcase_set_timeout(md, 60);
	tcase_add_test(md, memdev_identify);
	tcase_add_test(md, memdev_describe);
	tcase_add_test(md, memdev_fixed_outputs);
	tcase_add_test(md, memdev_timestamp);
	tcase_add_test(md, memdev_cel_exact);
	tcase_add_test(md, memdev_cel_effects);
	tcase_add_test(md, memdev_get_log_window);
	tcase_add_test(md, memdev_lengths);
	tcase_add_test(md, memdev_unsupported);
	tcase_add_test(md, memdev_events);
	tcase_add_test(md, memdev_events_small_mailbox);
	tcase_add_test(md, memdev_poison);
	tcase_add_test(md, memdev_poison_limit);
	tcase_add_test(md, memdev_alerts);
	tcase_add_test(md, memdev_supported_features);
	tcase_add_test(md, memdev_features);
	tcase_add_test(md, memdev_sanitize);
	tcase_add_test(md, memdev_too_big);
	tcase_add_test(md, memdev_fw_full);
	tcase_add_test(md, memdev_fw_parts);
	tcase_add_test(md, memdev_fw_bad_sequence);
	tcase_add_test(md, memdev_fw_bad_slot);
	tcase_add_test(md, memdev_fw_activate);
	tcase_add_test(md, instances_independent);
	suite_add_tcase(s, md);
	tcase_set_timeout(f, 30);
	tcase_add_test(f, fault_latency);
	tcase_add_test(f, fault_busy_count);
	tcase_add_test(f, fault_opcode_only);
	tcase_add_test(f, fault_none);
	tcase_add_test(f, fault_timeout);
	tcase_add_test(f, fault_hang);
	suite_add_tcase(s, f);
	tcase_add_test(o, options_list);
	tcase_add_test(o, options_errors);
	tcase_add_test(o, options_reported_effects);
	suite_add_tcase(s, o);
	tcase_set_timeout(sw, 60);
	tcase_add_test(sw, switch_identify);
	tcase_add_test(sw, switch_cel_exact);
	tcase_add_test(sw, switch_ports);
	tcase_add_test(sw, switch_ports_small_mailbox);
	tcase_add_test(sw, switch_tunnel);
	tcase_add_test(sw, switch_tunnel_cel);
	tcase_add_test(sw, switch_tunnel_malformed);
	tcase_add_test(sw, switch_tunnel_nested);
	tcase_add_test(sw, switch_tunnel_inner_too_big);
	tcase_add_test(sw, switch_port_control);
	tcase_add_test(sw, switch_options);
	tcase_add_test(sw, switch_faults);
	suite_add_tcase(s, sw);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sim_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
