/*
 * The MCTP endpoint emulator's wire layers (tests/qemu/mctp-endpoint/):
 * serial framing as Linux 6.1's mctp-serial driver sends and reads it
 * (exact bytes, FCS, escaping, frames split anywhere, corrupt frames
 * dropped) and packetisation at the 64-byte body with reassembly.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mctp-packet.h"
#include "mctp-serial.h"

/* Feeds bytes; collects completed packets back to back into got. */
static size_t feed(struct mctp_serial_rx *rx, const uint8_t *b, size_t n, uint8_t *got,
		   size_t *count)
{
	size_t used = 0;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *pkt;
		size_t len;

		if (mctp_serial_push(rx, b[i], &pkt, &len)) {
			memcpy(got + used, pkt, len);
			used += len;
			(*count)++;
		}
	}
	return used;
}

START_TEST(test_fcs_is_crc16_ccitt_reflected_without_final_xor)
{
	/* CRC-16/MCRF4XX (poly 8408h reflected, init FFFFh, no xorout): check value 6F91h. */
	ck_assert_uint_eq(mctp_serial_fcs(MCTP_SERIAL_FCS_INIT, (const uint8_t *)"123456789", 9),
			  0x6f91);
}
END_TEST

START_TEST(test_encode_exact_bytes)
{
	static const uint8_t pkt[] = {0x01, 0x0a, 0x08, 0xc8, 0x08};
	uint8_t out[MCTP_SERIAL_FRAME_MAX], fcs_in[2 + sizeof(pkt)] = {0x01, sizeof(pkt)};
	uint16_t fcs;
	int n = mctp_serial_encode(pkt, sizeof(pkt), out, sizeof(out));

	memcpy(fcs_in + 2, pkt, sizeof(pkt));
	fcs = mctp_serial_fcs(0xffff, fcs_in, sizeof(fcs_in));
	ck_assert_int_eq(n, 3 + (int)sizeof(pkt) + 3);
	ck_assert_uint_eq(out[0], 0x7e);
	ck_assert_uint_eq(out[1], 0x01);
	ck_assert_uint_eq(out[2], sizeof(pkt));
	ck_assert_mem_eq(out + 3, pkt, sizeof(pkt));
	ck_assert_uint_eq(out[8], fcs >> 8); /* high byte first */
	ck_assert_uint_eq(out[9], fcs & 0xff);
	ck_assert_uint_eq(out[10], 0x7e);
}
END_TEST

START_TEST(test_flag_and_escape_bytes_are_escaped)
{
	static const uint8_t pkt[] = {0x7e, 0x41, 0x7d, 0x5e};
	static const uint8_t body[] = {0x7d, 0x5e, 0x41, 0x7d, 0x5d, 0x5e};
	uint8_t out[MCTP_SERIAL_FRAME_MAX];
	int n = mctp_serial_encode(pkt, sizeof(pkt), out, sizeof(out));

	ck_assert_int_eq(n, 3 + (int)sizeof(body) + 3);
	ck_assert_uint_eq(out[2], sizeof(pkt)); /* the count is of unescaped bytes */
	ck_assert_mem_eq(out + 3, body, sizeof(body));
}
END_TEST

START_TEST(test_round_trip_every_byte_value_split_anywhere)
{
	uint8_t pkt[MCTP_SERIAL_MTU], wire[4 * MCTP_SERIAL_FRAME_MAX], got[4 * MCTP_SERIAL_MTU];
	struct mctp_serial_rx rx;
	size_t w = 0, count = 0, used = 0;

	for (int f = 0; f < 4; f++) {
		for (size_t i = 0; i < sizeof(pkt); i++)
			pkt[i] = (uint8_t)(f * 68 + i + 0x40); /* covers 7Dh and 7Eh */
		w += (size_t)mctp_serial_encode(pkt, sizeof(pkt), wire + w, sizeof(wire) - w);
	}
	for (size_t step = 1; step <= 7; step++) {
		mctp_serial_rx_init(&rx);
		count = used = 0;
		for (size_t off = 0; off < w; off += step)
			used += feed(&rx, wire + off, off + step <= w ? step : w - off, got + used,
				     &count);
		ck_assert_uint_eq(count, 4);
		ck_assert_uint_eq(used, 4 * sizeof(pkt));
		for (size_t i = 0; i < used; i++)
			ck_assert_uint_eq(got[i], (uint8_t)(i + 0x40));
	}
	ck_assert_uint_eq(rx.bad_fcs, 0);
	ck_assert_uint_eq(rx.errors, 0);
}
END_TEST

START_TEST(test_fcs_bytes_are_raw_even_when_flag_valued)
{
	uint8_t pkt[3] = {0x01, 0x00, 0x00}, wire[MCTP_SERIAL_FRAME_MAX], got[8];
	struct mctp_serial_rx rx;
	size_t count = 0;
	int n = 0, found = 0;

	/* Find a packet whose FCS contains 7Eh or 7Dh: the decoder must read it by count. */
	for (unsigned v = 0; v < 65536 && !found; v++) {
		pkt[1] = (uint8_t)v;
		pkt[2] = (uint8_t)(v >> 8);
		n = mctp_serial_encode(pkt, sizeof(pkt), wire, sizeof(wire));
		found = wire[n - 3] == 0x7e || wire[n - 2] == 0x7e || wire[n - 3] == 0x7d;
	}
	ck_assert(found);
	mctp_serial_rx_init(&rx);
	ck_assert_uint_eq(feed(&rx, wire, (size_t)n, got, &count), sizeof(pkt));
	ck_assert_mem_eq(got, pkt, sizeof(pkt));
}
END_TEST

START_TEST(test_corrupt_frames_are_dropped_and_the_next_one_read)
{
	static const uint8_t pkt[] = {0x01, 0x08, 0x0a, 0xc0, 0x08, 0x55};
	uint8_t wire[3 * MCTP_SERIAL_FRAME_MAX], got[64];
	struct mctp_serial_rx rx;
	size_t count = 0, w, used;
	int n = mctp_serial_encode(pkt, sizeof(pkt), wire, sizeof(wire));

	w = (size_t)n;
	wire[5] ^= 0x01; /* a bit flipped in the first frame's packet */
	w += (size_t)mctp_serial_encode(pkt, sizeof(pkt), wire + w, sizeof(wire) - w);
	mctp_serial_rx_init(&rx);
	used = feed(&rx, wire, w, got, &count);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(used, sizeof(pkt));
	ck_assert_uint_eq(rx.bad_fcs, 1);
	/* A wrong revision, then a good frame after the next flag. */
	wire[1] = 0x02;
	count = 0;
	mctp_serial_rx_init(&rx);
	used = feed(&rx, wire, w, got, &count);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(rx.errors, 1);
}
END_TEST

START_TEST(test_encode_refuses_what_the_driver_would)
{
	uint8_t pkt[MCTP_SERIAL_MTU + 1] = {0}, out[MCTP_SERIAL_FRAME_MAX + 8];

	ck_assert_int_eq(mctp_serial_encode(pkt, sizeof(pkt), out, sizeof(out)), -EMSGSIZE);
	ck_assert_int_eq(mctp_serial_encode(pkt, 0, out, sizeof(out)), -EMSGSIZE);
	ck_assert_int_eq(mctp_serial_encode(pkt, 4, out, 10), -EMSGSIZE);
}
END_TEST

struct sink {
	uint8_t pkts[64][MCTP_PACKET_HEADER + MCTP_PACKET_BODY];
	size_t lens[64];
	size_t n;
};

/* Collects the packets a split emits. */
static int sink_emit(void *ctx, const uint8_t *pkt, size_t len)
{
	struct sink *s = ctx;

	ck_assert_uint_lt(s->n, 64);
	memcpy(s->pkts[s->n], pkt, len);
	s->lens[s->n++] = len;
	return 0;
}

START_TEST(test_split_at_64_bytes_with_som_eom_and_sequence)
{
	static struct mctp_packet_reasm r;
	static struct sink s;
	struct mctp_packet_addr a = {.dest = 8, .src = 10, .tag = 3, .tag_owner = false};
	uint8_t msg[200];

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(mctp_packet_split(&a, msg, sizeof(msg), sink_emit, &s), 0);
	ck_assert_uint_eq(s.n, 4); /* 64 + 64 + 64 + 8 */
	ck_assert_uint_eq(s.lens[0], 68);
	ck_assert_uint_eq(s.lens[3], 4 + 8);
	ck_assert_uint_eq(s.pkts[0][0], 0x01);
	ck_assert_uint_eq(s.pkts[0][1], 8);
	ck_assert_uint_eq(s.pkts[0][2], 10);
	ck_assert_uint_eq(s.pkts[0][3], 0x80 | 0x00 | 3); /* SOM, seq 0, tag 3 */
	ck_assert_uint_eq(s.pkts[1][3], 0x10 | 3);
	ck_assert_uint_eq(s.pkts[2][3], 0x20 | 3);
	ck_assert_uint_eq(s.pkts[3][3], 0x40 | 0x30 | 3); /* EOM, seq 3 */
	mctp_packet_reasm_init(&r);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(mctp_packet_push(&r, s.pkts[i], s.lens[i]), 0);
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[3], s.lens[3]), 1);
	ck_assert_uint_eq(r.len, sizeof(msg));
	ck_assert_mem_eq(r.buf, msg, sizeof(msg));
	ck_assert_uint_eq(r.addr.src, 10);
	ck_assert_uint_eq(r.addr.tag, 3);
	ck_assert(!r.addr.tag_owner);
}
END_TEST

START_TEST(test_sequence_wraps_and_single_packet_messages)
{
	static struct mctp_packet_reasm r;
	static struct sink s;
	struct mctp_packet_addr a = {.dest = 10, .src = 8, .tag = 1, .tag_owner = true};
	static uint8_t msg[64 * 9 + 1];

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(mctp_packet_split(&a, msg, sizeof(msg), sink_emit, &s), 0);
	ck_assert_uint_eq(s.n, 10);
	ck_assert_uint_eq((s.pkts[4][3] >> 4) & 3, 0); /* 4 mod 4 */
	ck_assert_uint_eq(s.pkts[0][3] & 0x08, 0x08);  /* tag owner on every packet */
	mctp_packet_reasm_init(&r);
	for (size_t i = 0; i < s.n; i++)
		ck_assert_int_eq(mctp_packet_push(&r, s.pkts[i], s.lens[i]), i + 1 == s.n);
	ck_assert_uint_eq(r.len, sizeof(msg));
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(mctp_packet_split(&a, msg, 1, sink_emit, &s), 0);
	ck_assert_uint_eq(s.n, 1);
	ck_assert_uint_eq(s.pkts[0][3], 0xc0 | 0x08 | 1);
}
END_TEST

START_TEST(test_out_of_order_or_foreign_packets_drop_the_message)
{
	static struct mctp_packet_reasm r;
	static struct sink s;
	struct mctp_packet_addr a = {.dest = 8, .src = 10, .tag = 2};
	uint8_t msg[150] = {0}, bad[68];

	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(mctp_packet_split(&a, msg, sizeof(msg), sink_emit, &s), 0);
	ck_assert_uint_eq(s.n, 3);
	/* A lost middle packet: the last one's sequence is wrong. */
	mctp_packet_reasm_init(&r);
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[0], s.lens[0]), 0);
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[2], s.lens[2]), 0);
	ck_assert_uint_eq(r.dropped, 1);
	/* Another source's packet in the middle. */
	mctp_packet_reasm_init(&r);
	memcpy(bad, s.pkts[1], s.lens[1]);
	bad[2] = 11;
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[0], s.lens[0]), 0);
	ck_assert_int_eq(mctp_packet_push(&r, bad, s.lens[1]), 0);
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[2], s.lens[2]), 0);
	ck_assert_uint_ge(r.dropped, 1);
	/* A continuation with nothing started, and a wrong header version. */
	mctp_packet_reasm_init(&r);
	ck_assert_int_eq(mctp_packet_push(&r, s.pkts[2], s.lens[2]), 0);
	memcpy(bad, s.pkts[0], s.lens[0]);
	bad[0] = 0x02;
	ck_assert_int_eq(mctp_packet_push(&r, bad, s.lens[0]), 0);
	ck_assert_uint_eq(r.dropped, 2);
	/* A new SOM restarts cleanly. */
	for (size_t i = 0; i < s.n; i++)
		ck_assert_int_eq(mctp_packet_push(&r, s.pkts[i], s.lens[i]), i + 1 == s.n);
}
END_TEST

static Suite *mctp_serial_suite(void)
{
	Suite *s = suite_create("mctp-serial");
	TCase *tc = tcase_create("framing");
	TCase *tp = tcase_create("packets");

	tcase_add_test(tc, test_fcs_is_crc16_ccitt_reflected_without_final_xor);
	tcase_add_test(tc, test_encode_exact_bytes);
	tcase_add_test(tc, test_flag_and_escape_bytes_are_escaped);
	tcase_add_test(tc, test_round_trip_every_byte_value_split_anywhere);
	tcase_add_test(tc, test_fcs_bytes_are_raw_even_when_flag_valued);
	tcase_add_test(tc, test_corrupt_frames_are_dropped_and_the_next_one_read);
	tcase_add_test(tc, test_encode_refuses_what_the_driver_would);
	tcase_add_test(tp, test_split_at_64_bytes_with_som_eom_and_sequence);
	tcase_add_test(tp, test_sequence_wraps_and_single_packet_messages);
	tcase_add_test(tp, test_out_of_order_or_foreign_packets_drop_the_message);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tp);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mctp_serial_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
