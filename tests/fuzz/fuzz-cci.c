/*
 * libFuzzer target: the CCI message and Tunnel Management decoders
 * (transports/cci.c), which read bytes from devices and, through tunnels,
 * from clients. Whatever decodes is encoded again: the bytes must come back
 * equal except for reserved bits the decoder ignores, and a second decode
 * must give the same message. Tunnels are followed inward as mbxd does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_DEPTH_MAX 8
#define CCI_OP_TUNNEL  0x5300

static uint8_t scratch[CCI_HEADER_SIZE + CCI_PAYLOAD_MAX];

/* The header bits cci_decode ignores: category's upper nibble, byte 2, byte 7 bits 4-6. */
static uint8_t fuzz_cci_mask(size_t i)
{
	static const uint8_t mask[CCI_HEADER_SIZE] = {0x0f, 0xff, 0x00, 0xff, 0xff, 0xff,
						      0xff, 0x8f, 0xff, 0xff, 0xff, 0xff};

	return i < CCI_HEADER_SIZE ? mask[i] : 0xff;
}

/* Checks a decoded message against its bytes; returns its payload via m. */
static void fuzz_cci_roundtrip(const uint8_t *buf, size_t len, const struct cci_msg *m)
{
	struct cci_msg again;
	int n = cci_encode(scratch, sizeof(scratch), m);

	if (n < 0 || (size_t)n != len)
		abort();
	for (size_t i = 0; i < len; i++)
		if ((scratch[i] ^ buf[i]) & fuzz_cci_mask(i))
			abort();
	if (cci_decode(scratch, len, &again) != 0 || again.opcode != m->opcode ||
	    again.category != m->category || again.tag != m->tag || again.rc != m->rc ||
	    again.background != m->background || again.payload_len != m->payload_len)
		abort();
}

static void fuzz_tunnel(const uint8_t *in, size_t len, int depth);

/* Decodes a message and, if it is a tunnel request, what it carries. */
static void fuzz_msg(const uint8_t *buf, size_t len, int depth)
{
	struct cci_msg m;

	if (cci_decode(buf, len, &m) != 0)
		return;
	if (m.payload_len != len - CCI_HEADER_SIZE || (m.payload_len && m.payload != buf + 12))
		abort();
	fuzz_cci_roundtrip(buf, len, &m);
	if (m.opcode == CCI_OP_TUNNEL && m.category == CCI_CATEGORY_REQUEST &&
	    depth < FUZZ_DEPTH_MAX)
		fuzz_tunnel(m.payload, m.payload_len, depth + 1);
}

/* Decodes a tunnel request and a tunnel response payload from the same bytes. */
static void fuzz_tunnel(const uint8_t *in, size_t len, int depth)
{
	struct cci_tunnel_req tq;
	struct cci_tunnel_rep tr;
	int n;

	if (cci_tunnel_req_decode(in, len, &tq) == 0) {
		if (tq.msg != in + CCI_TUNNEL_REQ_HEADER ||
		    (size_t)tq.msg_len + CCI_TUNNEL_REQ_HEADER != len)
			abort();
		n = cci_tunnel_req_encode(scratch, sizeof(scratch), &tq);
		if (n < 0 || (size_t)n != len || memcmp(scratch, in, len) != 0)
			abort();
		fuzz_msg(tq.msg, tq.msg_len, depth);
	}
	if (cci_tunnel_rep_decode(in, len, &tr) == 0) {
		if ((size_t)tr.msg_len + CCI_TUNNEL_REP_HEADER != len)
			abort();
		n = cci_tunnel_rep_encode(scratch, sizeof(scratch), &tr);
		if (n < 0 || (size_t)n != len || memcmp(scratch + 4, in + 4, len - 4) != 0)
			abort();
		fuzz_msg(tr.msg, tr.msg_len, depth);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_msg(data, size, 0);
	fuzz_tunnel(data, size, 0);
	return 0;
}
