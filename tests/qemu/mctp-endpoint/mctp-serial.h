/*
 * The MCTP serial binding (DSP0253) as Linux 6.1's mctp-serial line
 * discipline speaks it (drivers/net/mctp/mctp-serial.c):
 *
 *   7Eh | 01h revision | byte count | packet (escaped) | FCS high | FCS low | 7Eh
 *
 * Every frame has its own start and end flag. In the packet, 7Eh and 7Dh go
 * as 7Dh then the byte with bit 5 cleared; the two FCS bytes go unescaped,
 * so a decoder finds the end by the byte count, never by searching for 7Eh.
 * The FCS is CRC-16/CCITT in its reflected form (polynomial 8408h), started
 * at FFFFh with no final XOR, over the revision, the byte count and the
 * unescaped packet.
 */
#ifndef MCTP_SERIAL_H
#define MCTP_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#define MCTP_SERIAL_MTU      68 /* the driver's fixed MTU: 4-byte header + 64-byte body */
#define MCTP_SERIAL_RX_MAX   74 /* the driver accepts byte counts up to MTU + 6 */
#define MCTP_SERIAL_REVISION 0x01
#define MCTP_SERIAL_FLAG     0x7e
#define MCTP_SERIAL_ESC      0x7d
#define MCTP_SERIAL_FCS_INIT 0xffff
/* Worst case on the wire: 3 header bytes, every packet byte escaped, FCS, end flag. */
#define MCTP_SERIAL_FRAME_MAX (3 + 2 * MCTP_SERIAL_MTU + 3)

enum mctp_serial_state {
	MCTP_SERIAL_IDLE,   /* waiting for a start flag */
	MCTP_SERIAL_HEADER, /* revision, then byte count */
	MCTP_SERIAL_DATA,
	MCTP_SERIAL_ESCAPE, /* the byte after 7Dh */
	MCTP_SERIAL_TRAILER,
	MCTP_SERIAL_ERROR, /* skipping to the next 7Eh */
};

/* A receiver: feed it bytes in any split, it hands out whole packets. */
struct mctp_serial_rx {
	enum mctp_serial_state state;
	size_t pos; /* within the header, packet or trailer */
	size_t len; /* the frame's byte count */
	uint16_t fcs, fcs_rcvd;
	uint8_t buf[MCTP_SERIAL_RX_MAX];
	unsigned long frames, bad_fcs, errors;
};

/* Adds bytes to a running FCS. */
uint16_t mctp_serial_fcs(uint16_t fcs, const uint8_t *p, size_t n);
/* Frames one packet (1 to MCTP_SERIAL_MTU bytes); returns bytes written or -EMSGSIZE. */
int mctp_serial_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);
/* Resets a receiver to wait for a start flag. */
void mctp_serial_rx_init(struct mctp_serial_rx *rx);
/*
 * Feeds one byte. Returns 1 when it completes a frame with a good FCS:
 * then *pkt (valid until the next call) and *len are the packet. Else 0.
 */
int mctp_serial_push(struct mctp_serial_rx *rx, uint8_t c, const uint8_t **pkt, size_t *len);

#endif
