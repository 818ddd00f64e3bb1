/* Reading a device's Command Effects Log at open (CXL r3.1 8.2.9.5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "device.h"
#include "log.h"

/* CEL UUID 0da9c0b5-bf41-4b78-8f79-96b1623b3f17, in the byte order the spec sends. */
static const uint8_t cel_uuid[16] = {0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78,
				     0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17};

#define SUPPORTED_LOGS_HEADER 8  /* le16 count, 6 reserved */
#define SUPPORTED_LOG_ENTRY   20 /* uuid[16], le32 size */
#define GET_LOG_INPUT         24 /* uuid[16], le32 offset, le32 length */
#define CEL_SIZE_MAX          (64u * 1024)
/* Get Supported Features (CXL r3.1 Tables 8-95..8-97). */
#define FEATURES_INPUT  8 /* le32 count, le16 start index, 2 reserved */
#define FEATURES_HEADER 8 /* le16 entries here, le16 device total, 4 reserved */
#define FEATURES_MAX    1024

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Runs one command synchronously, at start-up only. Returns the CXL rc or -errno. */
static int probe_command(struct device *d, uint16_t opcode, const uint8_t *in, size_t in_len,
			 size_t *out_len, char *err, size_t errlen)
{
	struct mbx_transport_cmd cmd = {
	    .opcode = opcode,
	    .in = in,
	    .in_len = in_len,
	    .out = d->outbuf,
	    .out_cap = d->info.payload_max,
	    .timeout_ms = d->timeout_ms,
	};
	int xrc = d->ops->submit(d->priv, &cmd);

	/* A command the kernel will not pass (RAW disabled) is, for the probe, one the device
	 * lacks. */
	if (xrc == MBX_XPORT_UNSUPPORTED || xrc == MBX_XPORT_RAW_DISABLED)
		return CXL_RC_UNSUPPORTED;
	if (xrc != MBX_XPORT_OK) {
		snprintf(err, errlen, "device %s: opcode 0x%04x failed at open: %s", d->name,
			 opcode, cmd.error[0] ? cmd.error : "transport error");
		return -EIO;
	}
	if (cmd.out_len > cmd.out_cap) {
		snprintf(err, errlen, "device %s: opcode 0x%04x: output longer than the mailbox",
			 d->name, opcode);
		return -EIO;
	}
	*out_len = cmd.out_len;
	return cmd.cxl_rc;
}

/* Finds the CEL's size in the Get Supported Logs output; 0 if absent. */
static uint32_t probe_cel_size(const uint8_t *out, size_t len)
{
	size_t n;

	if (len < SUPPORTED_LOGS_HEADER)
		return 0;
	n = out[0] | out[1] << 8;
	if (n > (len - SUPPORTED_LOGS_HEADER) / SUPPORTED_LOG_ENTRY)
		n = (len - SUPPORTED_LOGS_HEADER) /
		    SUPPORTED_LOG_ENTRY; /* believe only what arrived */
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = out + SUPPORTED_LOGS_HEADER + i * SUPPORTED_LOG_ENTRY;

		if (memcmp(e, cel_uuid, 16) == 0)
			return le32(e + 16);
	}
	return 0;
}

/* Reads the whole CEL in chunks that fit the mailbox. */
static int probe_read_cel(struct device *d, uint32_t size, uint8_t *cel, char *err, size_t errlen)
{
	uint32_t chunk = d->info.payload_max, off = 0;
	uint8_t in[GET_LOG_INPUT];

	while (off < size) {
		uint32_t want = size - off < chunk ? size - off : chunk;
		size_t got = 0;
		int rc;

		memcpy(in, cel_uuid, 16);
		put_le32(in + 16, off);
		put_le32(in + 20, want);
		rc = probe_command(d, CXL_OP_GET_LOG, in, sizeof(in), &got, err, errlen);
		if (rc > 0)
			snprintf(err, errlen, "device %s: Get Log (CEL) answered %s", d->name,
				 cxl_rc_name((uint16_t)rc));
		else if (rc == 0 && got != want)
			snprintf(err, errlen,
				 "device %s: Get Log (CEL) returned %zu bytes, asked %u", d->name,
				 got, want);
		if (rc != 0 || got != want)
			return rc < 0 ? rc : -EIO;
		memcpy(cel + off, d->outbuf, want);
		off += want;
	}
	return 0;
}

static bool probe_cel_lists(const struct device_caps *c, uint16_t opcode)
{
	for (size_t i = 0; i < c->n_cel; i++)
		if (c->cel[i].opcode == opcode)
			return true;
	return false;
}

/*
 * Reads the device's Features and their Set Feature effects, so Set Feature
 * is classed by what the Feature does. A device without 0500h has none.
 */
static int probe_features(struct device *d, struct device_caps *c, char *err, size_t errlen)
{
	uint8_t in[FEATURES_INPUT] = {0};
	size_t have = 0, len, total = 1;
	int rc;

	c->features = calloc(FEATURES_MAX, sizeof(*c->features));
	if (!c->features)
		return -ENOMEM;
	while (have < total && have < FEATURES_MAX) {
		size_t got;

		put_le32(in, d->info.payload_max);
		in[4] = (uint8_t)have;
		in[5] = (uint8_t)(have >> 8);
		rc = probe_command(d, CXL_OP_GET_SUPPORTED_FEATURES, in, sizeof(in), &len, err,
				   errlen);
		if (rc < 0)
			return rc;
		if (rc > 0 || len < FEATURES_HEADER)
			return 0; /* no Features: Set Feature keeps its catalog class */
		got = have;
		policy_features_parse(d->outbuf, len, c->features, FEATURES_MAX, &have, &total);
		if (have == got)
			break;
	}
	c->n_features = have;
	c->have_features = true;
	return 0;
}

/*
 * Reads what the device supports (its CEL, then its Features) into c,
 * touching nothing the loop thread reads: at start-up and, from the worker,
 * when a device that stopped answering comes back. A device without a CEL is
 * accepted, unmarked.
 */
int device_probe_read(struct device *d, struct device_caps *c, char *err, size_t errlen)
{
	uint8_t *cel;
	uint32_t size;
	size_t len = 0;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = probe_command(d, CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, &len, err, errlen);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		log_warnx("device %s: Get Supported Logs answered %s: no CEL, opcodes not checked "
			  "against the device",
			  d->name, cxl_rc_name((uint16_t)rc));
		return 0;
	}
	size = probe_cel_size(d->outbuf, len);
	if (size == 0 || size > CEL_SIZE_MAX || size % 4) {
		log_warnx("device %s: no usable CEL (size %u)", d->name, size);
		return 0;
	}
	cel = malloc(size);
	if (!cel)
		return -ENOMEM;
	rc = probe_read_cel(d, size, cel, err, errlen);
	if (rc == 0)
		rc = policy_cel_parse(cel, size, &c->cel, &c->n_cel);
	free(cel);
	if (rc < 0) {
		if (!err[0])
			snprintf(err, errlen, "device %s: malformed CEL", d->name);
		device_caps_free(c);
		return rc;
	}
	c->have_cel = true;
	if (probe_cel_lists(c, CXL_OP_GET_SUPPORTED_FEATURES)) {
		rc = probe_features(d, c, err, errlen);
		if (rc < 0) {
			device_caps_free(c);
			return rc;
		}
	}
	return 0;
}

/* Releases what device_probe_read allocated. */
void device_caps_free(struct device_caps *c)
{
	free(c->cel);
	free(c->features);
	memset(c, 0, sizeof(*c));
}

/* Makes c what the policy knows of the device (loop thread); c is taken over. */
void device_caps_apply(struct device *d, struct device_caps *c)
{
	device_caps_free(&d->caps);
	d->caps = *c;
	memset(c, 0, sizeof(*c));
	d->pdev.have_cel = d->caps.have_cel;
	d->pdev.cel = d->caps.cel;
	d->pdev.n_cel = d->caps.n_cel;
	d->pdev.have_features = d->caps.have_features;
	d->pdev.features = d->caps.features;
	d->pdev.n_features = d->caps.n_features;
}

/* Reads the device's CEL and Features at open, before the worker starts. */
int device_probe(struct device *d, char *err, size_t errlen)
{
	struct device_caps c;
	int rc;

	d->pdev.name = d->name;
	d->pdev.kernel_owned = d->info.kernel_owned;
	d->pdev.routed = d->info.routed;
	d->pdev.n_routed = d->info.n_routed < MBX_TRANSPORT_ROUTED_MAX ? d->info.n_routed
								       : MBX_TRANSPORT_ROUTED_MAX;
	d->pdev.payload_max = d->info.payload_max;
	rc = device_probe_read(d, &c, err, errlen);
	if (rc < 0)
		return rc;
	device_caps_apply(d, &c);
	log_info("device %s: %s %s serial %s, %zu commands in its CEL, %zu features", d->name,
		 d->info.kind, d->info.model, d->info.serial, d->pdev.n_cel, d->pdev.n_features);
	return 0;
}
