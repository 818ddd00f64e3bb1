/* CCI message and tunnel payload codec (CXL r3.1 7.6.3, 7.6.7.3.1). */
#include <errno.h>
#include <string.h>

#include "cci.h"

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Encodes a CCI message: 12-byte header then the payload. */
int cci_encode(uint8_t *buf, size_t cap, const struct cci_msg *m)
{
	uint32_t len = m->payload_len;

	if (len > CCI_PAYLOAD_MAX || cap < CCI_HEADER_SIZE + (size_t)len)
		return -EMSGSIZE;
	buf[0] = m->category & 0x0f;
	buf[1] = m->tag;
	buf[2] = 0;
	buf[3] = (uint8_t)(m->opcode & 0xff);
	buf[4] = (uint8_t)(m->opcode >> 8);
	buf[5] = (uint8_t)len;
	buf[6] = (uint8_t)(len >> 8);
	buf[7] = (uint8_t)((len >> 16) & 0x0f) | (m->background ? 0x80 : 0);
	put_le16(buf + 8, m->rc);
	put_le16(buf + 10, m->vendor_status);
	if (len)
		memcpy(buf + CCI_HEADER_SIZE, m->payload, len);
	return (int)(CCI_HEADER_SIZE + len);
}

/* Decodes a CCI message that must fill exactly len bytes. */
int cci_decode(const uint8_t *buf, size_t len, struct cci_msg *m)
{
	uint32_t plen;

	if (len < CCI_HEADER_SIZE)
		return -EPROTO;
	plen = buf[5] | buf[6] << 8 | (uint32_t)(buf[7] & 0x0f) << 16;
	if ((size_t)plen != len - CCI_HEADER_SIZE)
		return -EPROTO;
	/* Category values above 1 are reserved: refuse rather than guess. */
	if ((buf[0] & 0x0f) > CCI_CATEGORY_RESPONSE)
		return -EPROTO;
	m->category = buf[0] & 0x0f;
	m->tag = buf[1];
	m->opcode = (uint16_t)(buf[4] << 8 | buf[3]);
	m->background = (buf[7] & 0x80) != 0;
	m->reserved = (buf[0] & 0xf0) || buf[2] || (buf[7] & 0x70);
	m->rc = get_le16(buf + 8);
	m->vendor_status = get_le16(buf + 10);
	m->payload = plen ? buf + CCI_HEADER_SIZE : NULL;
	m->payload_len = plen;
	return 0;
}

/* Decodes a Tunnel Management request payload; the inner message is not decoded. */
int cci_tunnel_req_decode(const uint8_t *in, size_t len, struct cci_tunnel_req *t)
{
	uint16_t size;

	if (len < CCI_TUNNEL_REQ_HEADER + CCI_HEADER_SIZE)
		return -EPROTO;
	size = get_le16(in + 2);
	if ((size_t)size != len - CCI_TUNNEL_REQ_HEADER)
		return -EPROTO;
	t->target = in[0];
	t->target_type = in[1];
	t->msg = in + CCI_TUNNEL_REQ_HEADER;
	t->msg_len = size;
	return 0;
}

/* Encodes a Tunnel Management request around an encoded inner message. */
int cci_tunnel_req_encode(uint8_t *buf, size_t cap, const struct cci_tunnel_req *t)
{
	if (cap < CCI_TUNNEL_REQ_HEADER + (size_t)t->msg_len)
		return -EMSGSIZE;
	buf[0] = t->target;
	buf[1] = t->target_type;
	put_le16(buf + 2, t->msg_len);
	memcpy(buf + CCI_TUNNEL_REQ_HEADER, t->msg, t->msg_len);
	return CCI_TUNNEL_REQ_HEADER + t->msg_len;
}

/* Decodes a Tunnel Management response payload. */
int cci_tunnel_rep_decode(const uint8_t *in, size_t len, struct cci_tunnel_rep *t)
{
	uint16_t size;

	if (len < CCI_TUNNEL_REP_HEADER + CCI_HEADER_SIZE)
		return -EPROTO;
	size = get_le16(in);
	if ((size_t)size != len - CCI_TUNNEL_REP_HEADER)
		return -EPROTO;
	t->msg = in + CCI_TUNNEL_REP_HEADER;
	t->msg_len = size;
	return 0;
}

/* Encodes a Tunnel Management response around an encoded inner message. */
int cci_tunnel_rep_encode(uint8_t *buf, size_t cap, const struct cci_tunnel_rep *t)
{
	if (cap < CCI_TUNNEL_REP_HEADER + (size_t)t->msg_len)
		return -EMSGSIZE;
	put_le16(buf, t->msg_len);
	buf[2] = 0;
	buf[3] = 0;
	memcpy(buf + CCI_TUNNEL_REP_HEADER, t->msg, t->msg_len);
	return CCI_TUNNEL_REP_HEADER + t->msg_len;
}

#define CCI_RC_SUCCESS            0x0000
#define CCI_RC_BACKGROUND_STARTED 0x0001

/* Sets the reason a response that carries our tag is refused. */
static enum cci_match cci_malformed(const char **why, const char *what)
{
	if (why)
		*why = what;
	return CCI_MATCH_MALFORMED;
}

/*
 * Matches a response to its request. The tag decides whose message it is:
 * a device that answers with our tag and then gets the rest wrong has
 * answered this request badly, which fails it now rather than at timeout.
 */
enum cci_match cci_response_match(const uint8_t *buf, size_t len, uint8_t tag, uint16_t opcode,
				  struct cci_msg *m, const char **why)
{
	uint8_t category;

	if (len < 2 || buf[1] != tag)
		return CCI_MATCH_OTHER;
	category = buf[0] & 0x0f;
	if (category == CCI_CATEGORY_REQUEST)
		return CCI_MATCH_OTHER;
	if (len < CCI_HEADER_SIZE)
		return cci_malformed(why, "shorter than the 12-byte CCI header");
	if (category != CCI_CATEGORY_RESPONSE)
		return cci_malformed(why, "reserved message category");
	if ((uint16_t)(buf[4] << 8 | buf[3]) != opcode)
		return cci_malformed(why, "answers another opcode");
	if (cci_decode(buf, len, m) != 0)
		return cci_malformed(why, "payload length field disagrees with the message size");
	/* The background bit means the command went on in the background: say so in rc. */
	if (m->background && (m->rc == CCI_RC_SUCCESS || m->rc == CCI_RC_BACKGROUND_STARTED))
		m->rc = CCI_RC_BACKGROUND_STARTED;
	return CCI_MATCH_OK;
}
