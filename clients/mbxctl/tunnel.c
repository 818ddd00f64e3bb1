/*
 * --tunnel: a command wrapped in Tunnel Management (5300h) to one port of a
 * switch, and its answer unwrapped (CXL r3.1 7.6.7.3.1, transports/cci.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "mbxctl.h"
#include "cci.h"

/* Encodes a CCI request for opcode, then the tunnel request around it; *out is malloc'ed. */
int tunnel_wrap(uint8_t port, uint16_t opcode, const void *in, size_t in_len, uint8_t **out,
		size_t *out_len)
{
	struct cci_msg m = {
	    .category = CCI_CATEGORY_REQUEST,
	    .opcode = opcode,
	    .payload = in,
	    .payload_len = (uint32_t)in_len,
	};
	size_t inner_len = CCI_HEADER_SIZE + in_len;
	uint8_t *inner, *buf;
	int n;

	/* The tunnel's size field is 16 bits: the whole inner message must fit. */
	if (in_len > UINT16_MAX - CCI_HEADER_SIZE)
		return -EMSGSIZE;
	inner = malloc(inner_len);
	buf = malloc(CCI_TUNNEL_REQ_HEADER + inner_len);
	if (!inner || !buf) {
		free(inner);
		free(buf);
		return -ENOMEM;
	}
	n = cci_encode(inner, inner_len, &m);
	if (n >= 0) {
		struct cci_tunnel_req t = {
		    .target = port,
		    .target_type = CCI_TUNNEL_TARGET_PORT_OR_LD,
		    .msg = inner,
		    .msg_len = (uint16_t)n,
		};

		n = cci_tunnel_req_encode(buf, CCI_TUNNEL_REQ_HEADER + inner_len, &t);
	}
	free(inner);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	*out_len = (size_t)n;
	return 0;
}

/*
 * Decodes a tunnel response and the CCI response inside it, which must answer
 * opcode; yields the inner return code and output (pointing into in).
 */
int tunnel_unwrap(const uint8_t *in, size_t len, uint16_t opcode, uint16_t *rc,
		  uint16_t *vendor_status, const uint8_t **out, size_t *out_len)
{
	struct cci_tunnel_rep t;
	struct cci_msg m;

	if (!in || cci_tunnel_rep_decode(in, len, &t) < 0 || cci_decode(t.msg, t.msg_len, &m) < 0)
		return -EPROTO;
	if (m.category != CCI_CATEGORY_RESPONSE || m.opcode != opcode)
		return -EPROTO;
	*rc = m.rc;
	*vendor_status = m.vendor_status;
	*out = m.payload;
	*out_len = m.payload_len;
	return 0;
}
