/* The MCTP serial binding's framing, byte for byte as Linux 6.1 sends and reads it. */
#include <errno.h>
#include <string.h>

#include "mctp-serial.h"

/* Adds one byte to the FCS: CRC-16/CCITT, reflected (8408h), no final XOR. */
static uint16_t mctp_serial_fcs_byte(uint16_t fcs, uint8_t c)
{
	fcs ^= c;
	for (int i = 0; i < 8; i++)
		fcs = (fcs & 1) ? (uint16_t)(fcs >> 1 ^ 0x8408) : (uint16_t)(fcs >> 1);
	return fcs;
}

/* Adds n bytes to a running FCS. */
uint16_t mctp_serial_fcs(uint16_t fcs, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fcs = mctp_serial_fcs_byte(fcs, p[i]);
	return fcs;
}

/* Frames one packet: flag, revision, count, escaped packet, raw FCS, flag. */
int mctp_serial_encode(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap)
{
	uint8_t head[2] = {MCTP_SERIAL_REVISION, (uint8_t)len};
	uint16_t fcs;
	size_t o = 0;

	if (len == 0 || len > MCTP_SERIAL_MTU || cap < MCTP_SERIAL_FRAME_MAX)
		return -EMSGSIZE;
	fcs = mctp_serial_fcs(MCTP_SERIAL_FCS_INIT, head, sizeof(head));
	fcs = mctp_serial_fcs(fcs, pkt, len);
	out[o++] = MCTP_SERIAL_FLAG;
	out[o++] = head[0];
	out[o++] = head[1];
	for (size_t i = 0; i < len; i++) {
		if (pkt[i] == MCTP_SERIAL_FLAG || pkt[i] == MCTP_SERIAL_ESC) {
			out[o++] = MCTP_SERIAL_ESC;
			out[o++] = pkt[i] & (uint8_t)~0x20;
		} else
			out[o++] = pkt[i];
	}
	out[o++] = (uint8_t)(fcs >> 8); /* high byte first, unescaped, as the driver sends */
	out[o++] = (uint8_t)fcs;
	out[o++] = MCTP_SERIAL_FLAG;
	return (int)o;
}

/* Resets a receiver. */
void mctp_serial_rx_init(struct mctp_serial_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	rx->state = MCTP_SERIAL_IDLE;
}

/* Drops the frame in progress; the next 7Eh starts over. */
static void mctp_serial_error(struct mctp_serial_rx *rx)
{
	rx->errors++;
	rx->state = MCTP_SERIAL_ERROR;
}

/* Header bytes: start flag, revision 1, a byte count the driver would accept. */
static void mctp_serial_header(struct mctp_serial_rx *rx, uint8_t c)
{
	if (rx->pos == 0) {
		if (c != MCTP_SERIAL_FLAG)
			return mctp_serial_error(rx);
		rx->pos++;
	} else if (rx->pos == 1) {
		if (c != MCTP_SERIAL_REVISION)
			return mctp_serial_error(rx);
		rx->fcs = mctp_serial_fcs_byte(MCTP_SERIAL_FCS_INIT, c);
		rx->pos++;
	} else {
		if (c > MCTP_SERIAL_RX_MAX)
			return mctp_serial_error(rx);
		rx->len = c;
		rx->pos = 0;
		rx->fcs = mctp_serial_fcs_byte(rx->fcs, c);
		rx->state = c ? MCTP_SERIAL_DATA : MCTP_SERIAL_TRAILER;
	}
}

/* Trailer bytes: FCS high, FCS low (both raw), end flag. Returns 1 on a good frame. */
static int mctp_serial_trailer(struct mctp_serial_rx *rx, uint8_t c)
{
	if (rx->pos == 0) {
		rx->fcs_rcvd = (uint16_t)(c << 8);
		rx->pos++;
		return 0;
	}
	if (rx->pos == 1) {
		rx->fcs_rcvd |= c;
		rx->pos++;
		return 0;
	}
	if (c != MCTP_SERIAL_FLAG) {
		mctp_serial_error(rx);
		return 0;
	}
	rx->state = MCTP_SERIAL_IDLE;
	rx->pos = 0;
	if (rx->fcs != rx->fcs_rcvd) {
		rx->bad_fcs++;
		return 0;
	}
	rx->frames++;
	return rx->len > 0;
}

/* Feeds one byte through the receive state machine. */
int mctp_serial_push(struct mctp_serial_rx *rx, uint8_t c, const uint8_t **pkt, size_t *len)
{
	switch (rx->state) {
	case MCTP_SERIAL_IDLE:
		rx->state = MCTP_SERIAL_HEADER;
		rx->pos = 0;
		/* fall through */
	case MCTP_SERIAL_HEADER:
		mctp_serial_header(rx, c);
		return 0;
	case MCTP_SERIAL_DATA:
		if (c == MCTP_SERIAL_ESC) {
			rx->state = MCTP_SERIAL_ESCAPE;
			return 0;
		}
		break;
	case MCTP_SERIAL_ESCAPE:
		c |= 0x20;
		rx->state = MCTP_SERIAL_DATA;
		break;
	case MCTP_SERIAL_TRAILER:
		if (!mctp_serial_trailer(rx, c))
			return 0;
		*pkt = rx->buf;
		*len = rx->len;
		return 1;
	case MCTP_SERIAL_ERROR:
		if (c == MCTP_SERIAL_FLAG)
			rx->state = MCTP_SERIAL_IDLE;
		return 0;
	}
	rx->fcs = mctp_serial_fcs_byte(rx->fcs, c);
	rx->buf[rx->pos++] = c;
	if (rx->pos == rx->len) {
		rx->pos = 0;
		rx->state = MCTP_SERIAL_TRAILER;
	}
	return 0;
}
