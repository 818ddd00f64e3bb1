/* MCTP packetisation and reassembly, as the Linux 6.1 MCTP core does them. */
#include <errno.h>
#include <string.h>

#include "mctp-packet.h"

/* Splits a message into packets: SOM on the first, EOM on the last, sequence mod 4. */
int mctp_packet_split(const struct mctp_packet_addr *a, const uint8_t *msg, size_t len,
		      mctp_packet_emit_fn emit, void *ctx)
{
	uint8_t pkt[MCTP_PACKET_HEADER + MCTP_PACKET_BODY];
	size_t off = 0;
	unsigned seq = 0;
	int rc;

	if (len == 0 || len > MCTP_MESSAGE_MAX)
		return -EMSGSIZE;
	while (off < len) {
		size_t n = len - off < MCTP_PACKET_BODY ? len - off : MCTP_PACKET_BODY;
		uint8_t flags = (uint8_t)((seq & 3) << 4 | (a->tag & MCTP_PACKET_TAG));

		if (off == 0)
			flags |= MCTP_PACKET_SOM;
		if (off + n == len)
			flags |= MCTP_PACKET_EOM;
		if (a->tag_owner)
			flags |= MCTP_PACKET_TO;
		pkt[0] = MCTP_PACKET_VERSION;
		pkt[1] = a->dest;
		pkt[2] = a->src;
		pkt[3] = flags;
		memcpy(pkt + MCTP_PACKET_HEADER, msg + off, n);
		if ((rc = emit(ctx, pkt, MCTP_PACKET_HEADER + n)) < 0)
			return rc;
		off += n;
		seq++;
	}
	return 0;
}

/* Resets the reassembler. */
void mctp_packet_reasm_init(struct mctp_packet_reasm *r)
{
	memset(r, 0, sizeof(*r));
}

/* Drops the message being reassembled. */
static int mctp_packet_drop(struct mctp_packet_reasm *r)
{
	r->active = false;
	r->len = 0;
	r->dropped++;
	return 0;
}

/* Feeds one packet into the message being reassembled. */
int mctp_packet_push(struct mctp_packet_reasm *r, const uint8_t *pkt, size_t len)
{
	struct mctp_packet_addr a;
	uint8_t flags, seq;
	size_t body;

	if (len <= MCTP_PACKET_HEADER || (pkt[0] & 0x0f) != MCTP_PACKET_VERSION)
		return mctp_packet_drop(r);
	flags = pkt[3];
	seq = (flags >> 4) & 3;
	a = (struct mctp_packet_addr){.dest = pkt[1],
				      .src = pkt[2],
				      .tag = flags & MCTP_PACKET_TAG,
				      .tag_owner = (flags & MCTP_PACKET_TO) != 0};
	body = len - MCTP_PACKET_HEADER;
	if (flags & MCTP_PACKET_SOM) {
		if (r->active)
			r->dropped++; /* a new message abandons the unfinished one */
		r->active = true;
		r->addr = a;
		r->len = 0;
	} else if (!r->active || a.src != r->addr.src || a.dest != r->addr.dest ||
		   a.tag != r->addr.tag || a.tag_owner != r->addr.tag_owner || seq != r->next_seq)
		return mctp_packet_drop(r);
	if (r->len + body > MCTP_MESSAGE_MAX)
		return mctp_packet_drop(r);
	memcpy(r->buf + r->len, pkt + MCTP_PACKET_HEADER, body);
	r->len += body;
	r->next_seq = (uint8_t)((seq + 1) & 3);
	if (!(flags & MCTP_PACKET_EOM))
		return 0;
	r->active = false;
	return 1;
}
