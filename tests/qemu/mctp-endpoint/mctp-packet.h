/*
 * MCTP packets (DSP0236): a 4-byte header, then up to 64 bytes of message
 * body (the serial link's MTU); the first packet's body begins with the
 * message type. A message longer than one packet goes as SOM ... EOM with
 * 2-bit sequence numbers, and is reassembled here as Linux 6.1 does it
 * (net/mctp/route.c): a SOM starts a message, each later packet must come
 * from the same source with the same tag and the next sequence number, and
 * anything out of order drops the message.
 */
#ifndef MCTP_PACKET_H
#define MCTP_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCTP_PACKET_HEADER  4
#define MCTP_PACKET_BODY    64 /* baseline transmission unit */
#define MCTP_PACKET_VERSION 0x01
#define MCTP_PACKET_SOM     0x80
#define MCTP_PACKET_EOM     0x40
#define MCTP_PACKET_TO      0x08
#define MCTP_PACKET_TAG     0x07
#define MCTP_MESSAGE_MAX    (64u * 1024) /* the kernel's reassembly limit */

/* Who a message is from and to, and its tag. */
struct mctp_packet_addr {
	uint8_t dest;
	uint8_t src;
	uint8_t tag;    /* 0-7 */
	bool tag_owner; /* set on requests */
};

struct mctp_packet_reasm {
	bool active;
	struct mctp_packet_addr addr;
	uint8_t next_seq;
	size_t len;
	unsigned long dropped;
	uint8_t buf[MCTP_MESSAGE_MAX];
};

/* Called for each packet a message splits into; a negative return stops the split. */
typedef int (*mctp_packet_emit_fn)(void *ctx, const uint8_t *pkt, size_t len);

/* Splits a message (type byte first) into packets of at most 64 body bytes. */
int mctp_packet_split(const struct mctp_packet_addr *a, const uint8_t *msg, size_t len,
		      mctp_packet_emit_fn emit, void *ctx);
void mctp_packet_reasm_init(struct mctp_packet_reasm *r);
/*
 * Feeds one packet. Returns 1 when it completes a message: then r->buf holds
 * r->len bytes (type byte first) and r->addr says who sent it. Else 0.
 */
int mctp_packet_push(struct mctp_packet_reasm *r, const uint8_t *pkt, size_t len);

#endif
