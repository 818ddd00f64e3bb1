/*
 * The CCI message and Tunnel Management codec (transports/cci.c): exact
 * bytes, round trips, and every length the decoders must refuse.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cci.h"

static uint8_t buf[CCI_HEADER_SIZE + CCI_PAYLOAD_MAX + 16];
static uint8_t payload[CCI_PAYLOAD_MAX + 1];

/* Fills the shared payload with a pattern that differs byte to byte. */
static void fill_payload(size_t n)
{
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 7 + 3);
}

START_TEST(encode_request_bytes)
{
	static const uint8_t want[] = {
	    0x00, 0x5c, 0x00, 0x01, 0x42, 0x05, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5,
	};
	static const uint8_t pl[] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5};
	struct cci_msg m = {
	    .category = CCI_CATEGORY_REQUEST,
	    .tag = 0x5c,
	    .opcode = 0x4201,
	    .payload = pl,
	    .payload_len = sizeof(pl),
	};

	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), (int)sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(encode_response_bytes)
{
	static const uint8_t want[] = {
	    0x01, 0x07, 0x00, 0x00, 0x44, 0x00, 0x00, 0x80, 0x01, 0x00, 0x34, 0x12,
	};
	struct cci_msg m = {
	    .category = CCI_CATEGORY_RESPONSE,
	    .tag = 7,
	    .opcode = 0x4400,
	    .background = true,
	    .rc = 1,
	    .vendor_status = 0x1234,
	};

	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), CCI_HEADER_SIZE);
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

/* Encodes m, decodes it back, and checks every field survived. */
static void round_trip(const struct cci_msg *m)
{
	struct cci_msg d;
	int n = cci_encode(buf, sizeof(buf), m);

	ck_assert_int_eq(n, CCI_HEADER_SIZE + (int)m->payload_len);
	memset(&d, 0xee, sizeof(d));
	ck_assert_int_eq(cci_decode(buf, (size_t)n, &d), 0);
	ck_assert_uint_eq(d.category, m->category);
	ck_assert_uint_eq(d.tag, m->tag);
	ck_assert_uint_eq(d.opcode, m->opcode);
	ck_assert_int_eq(d.background, m->background);
	ck_assert_uint_eq(d.rc, m->rc);
	ck_assert_uint_eq(d.vendor_status, m->vendor_status);
	ck_assert_uint_eq(d.payload_len, m->payload_len);
	if (m->payload_len) {
		ck_assert_ptr_eq(d.payload, buf + CCI_HEADER_SIZE);
		ck_assert_mem_eq(d.payload, m->payload, m->payload_len);
	} else {
		ck_assert_ptr_null(d.payload);
	}
}

START_TEST(round_trips)
{
	static const uint32_t lens[] = {0, 1, 255, 256, 65535, 65536, 0x12345, CCI_PAYLOAD_MAX};
	struct cci_msg m = {.payload = payload};

	fill_payload(CCI_PAYLOAD_MAX);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		m.category = (uint8_t)(i & 1);
		m.tag = (uint8_t)(0xf0 + i);
		m.opcode = (uint16_t)(0x5300 + i * 0x101);
		m.background = i & 2;
		m.rc = (uint16_t)(i * 3);
		m.vendor_status = (uint16_t)(0xbeef + i);
		m.payload_len = lens[i];
		round_trip(&m);
	}
}
END_TEST

START_TEST(encode_20bit_length)
{
	struct cci_msg m = {.opcode = 0x0401, .payload = payload, .payload_len = 0x12345};

	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), CCI_HEADER_SIZE + 0x12345);
	ck_assert_uint_eq(buf[5], 0x45);
	ck_assert_uint_eq(buf[6], 0x23);
	ck_assert_uint_eq(buf[7], 0x01); /* length bits 19:16; BO clear */
	m.background = true;
	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), CCI_HEADER_SIZE + 0x12345);
	ck_assert_uint_eq(buf[7], 0x81);
}
END_TEST

START_TEST(encode_too_big)
{
	struct cci_msg m = {.payload = payload, .payload_len = 10};

	/* one byte short, then exactly enough */
	ck_assert_int_eq(cci_encode(buf, CCI_HEADER_SIZE + 9, &m), -EMSGSIZE);
	ck_assert_int_eq(cci_encode(buf, CCI_HEADER_SIZE + 10, &m), CCI_HEADER_SIZE + 10);
	ck_assert_int_eq(cci_encode(buf, CCI_HEADER_SIZE - 1, &(struct cci_msg){0}), -EMSGSIZE);
	ck_assert_int_eq(cci_encode(buf, 0, &(struct cci_msg){0}), -EMSGSIZE);
	/* over the 20-bit length field, whatever the room */
	m.payload_len = CCI_PAYLOAD_MAX + 1;
	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), -EMSGSIZE);
	m.payload_len = UINT32_MAX;
	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), -EMSGSIZE);
}
END_TEST

START_TEST(decode_short)
{
	struct cci_msg m;

	memset(buf, 0, CCI_HEADER_SIZE);
	for (size_t len = 0; len < CCI_HEADER_SIZE; len++)
		ck_assert_int_eq(cci_decode(buf, len, &m), -EPROTO);
	ck_assert_int_eq(cci_decode(buf, CCI_HEADER_SIZE, &m), 0);
}
END_TEST

START_TEST(decode_length_mismatch)
{
	struct cci_msg m = {.payload = payload, .payload_len = 100};
	int n = cci_encode(buf, sizeof(buf), &m);
	struct cci_msg d;

	/* the buffer is longer or shorter than the length field says */
	ck_assert_int_eq(cci_decode(buf, (size_t)n + 1, &d), -EPROTO);
	ck_assert_int_eq(cci_decode(buf, (size_t)n - 1, &d), -EPROTO);
	ck_assert_int_eq(cci_decode(buf, CCI_HEADER_SIZE, &d), -EPROTO);
	/* the length field lies in its high bits */
	buf[7] |= 0x01;
	ck_assert_int_eq(cci_decode(buf, (size_t)n, &d), -EPROTO);
	buf[7] &= (uint8_t)~0x01;
	buf[6] = 1;
	ck_assert_int_eq(cci_decode(buf, (size_t)n, &d), -EPROTO);
	buf[6] = 0;
	ck_assert_int_eq(cci_decode(buf, (size_t)n, &d), 0);
	/* the BO bit is not part of the length */
	buf[7] |= 0x80;
	ck_assert_int_eq(cci_decode(buf, (size_t)n, &d), 0);
	ck_assert(d.background);
	ck_assert_uint_eq(d.payload_len, 100);
}
END_TEST

START_TEST(decode_reserved_category)
{
	struct cci_msg m = {0}, d;

	ck_assert_int_eq(cci_encode(buf, sizeof(buf), &m), CCI_HEADER_SIZE);
	for (unsigned c = 2; c < 16; c++) {
		buf[0] = (uint8_t)c;
		ck_assert_int_eq(cci_decode(buf, CCI_HEADER_SIZE, &d), -EPROTO);
	}
	buf[0] = CCI_CATEGORY_RESPONSE;
	ck_assert_int_eq(cci_decode(buf, CCI_HEADER_SIZE, &d), 0);
	ck_assert_uint_eq(d.category, CCI_CATEGORY_RESPONSE);
}
END_TEST

/* An encoded CCI Identify request to tunnel. */
static int inner_msg(uint8_t *dst, size_t cap, uint32_t pl_len)
{
	struct cci_msg m = {
	    .category = CCI_CATEGORY_REQUEST,
	    .tag = 9,
	    .opcode = 0x0001,
	    .payload = payload,
	    .payload_len = pl_len,
	};

	fill_payload(pl_len);
	return cci_encode(dst, cap, &m);
}

START_TEST(tunnel_req_round_trip)
{
	static uint8_t inner[64], out[128];
	struct cci_tunnel_req t = {.target = 3, .target_type = 0, .msg = inner}, d;
	struct cci_msg m;
	int n = inner_msg(inner, sizeof(inner), 8);

	t.msg_len = (uint16_t)n;
	ck_assert_int_eq(cci_tunnel_req_encode(out, sizeof(out), &t), CCI_TUNNEL_REQ_HEADER + n);
	ck_assert_uint_eq(out[0], 3);
	ck_assert_uint_eq(out[1], 0);
	ck_assert_uint_eq(out[2], n);
	ck_assert_uint_eq(out[3], 0);
	ck_assert_mem_eq(out + 4, inner, (size_t)n);
	ck_assert_int_eq(cci_tunnel_req_decode(out, CCI_TUNNEL_REQ_HEADER + (size_t)n, &d), 0);
	ck_assert_uint_eq(d.target, 3);
	ck_assert_uint_eq(d.target_type, 0);
	ck_assert_uint_eq(d.msg_len, n);
	ck_assert_ptr_eq(d.msg, out + CCI_TUNNEL_REQ_HEADER);
	ck_assert_int_eq(cci_decode(d.msg, d.msg_len, &m), 0);
	ck_assert_uint_eq(m.opcode, 0x0001);
	ck_assert_uint_eq(m.tag, 9);
	/* the target type travels as given, for the caller to judge */
	t.target_type = 1;
	ck_assert_int_eq(cci_tunnel_req_encode(out, sizeof(out), &t), CCI_TUNNEL_REQ_HEADER + n);
	ck_assert_int_eq(cci_tunnel_req_decode(out, CCI_TUNNEL_REQ_HEADER + (size_t)n, &d), 0);
	ck_assert_uint_eq(d.target_type, 1);
}
END_TEST

START_TEST(tunnel_req_large)
{
	static uint8_t inner[65535], out[65535 + 4];
	struct cci_tunnel_req t = {.target = 1, .msg = inner}, d;
	int n = inner_msg(inner, sizeof(inner), 65535 - CCI_HEADER_SIZE);

	/* the biggest message the le16 size field can carry */
	ck_assert_int_eq(n, 65535);
	t.msg_len = 65535;
	ck_assert_int_eq(cci_tunnel_req_encode(out, sizeof(out), &t), 65539);
	ck_assert_uint_eq(out[2], 0xff);
	ck_assert_uint_eq(out[3], 0xff);
	ck_assert_int_eq(cci_tunnel_req_decode(out, sizeof(out), &d), 0);
	ck_assert_uint_eq(d.msg_len, 65535);
}
END_TEST

START_TEST(tunnel_req_malformed)
{
	static uint8_t inner[64], out[128];
	struct cci_tunnel_req t = {.target = 1, .msg = inner}, d;
	int n = inner_msg(inner, sizeof(inner), 4);
	size_t len;

	t.msg_len = (uint16_t)n;
	len = (size_t)cci_tunnel_req_encode(out, sizeof(out), &t);
	/* shorter than a tunnel header and a CCI header */
	for (size_t l = 0; l < CCI_TUNNEL_REQ_HEADER + CCI_HEADER_SIZE; l++)
		ck_assert_int_eq(cci_tunnel_req_decode(out, l, &d), -EPROTO);
	/* the size field disagrees with the payload, both ways */
	ck_assert_int_eq(cci_tunnel_req_decode(out, len - 1, &d), -EPROTO);
	ck_assert_int_eq(cci_tunnel_req_decode(out, len + 1, &d), -EPROTO);
	out[2] = (uint8_t)(n + 1);
	ck_assert_int_eq(cci_tunnel_req_decode(out, len, &d), -EPROTO);
	out[2] = (uint8_t)(n - 1);
	ck_assert_int_eq(cci_tunnel_req_decode(out, len, &d), -EPROTO);
	out[2] = (uint8_t)n;
	out[3] = 1;
	ck_assert_int_eq(cci_tunnel_req_decode(out, len, &d), -EPROTO);
	/* a size below a CCI header, consistent with the length */
	out[2] = 11;
	out[3] = 0;
	ck_assert_int_eq(cci_tunnel_req_decode(out, 15, &d), -EPROTO);
	/* encode: no room */
	ck_assert_int_eq(cci_tunnel_req_encode(out, len - 1, &t), -EMSGSIZE);
	ck_assert_int_eq(cci_tunnel_req_encode(out, 3, &t), -EMSGSIZE);
	ck_assert_int_eq(cci_tunnel_req_encode(out, len, &t), (int)len);
}
END_TEST

START_TEST(tunnel_rep_round_trip)
{
	static uint8_t inner[64], out[128];
	struct cci_msg m = {
	    .category = CCI_CATEGORY_RESPONSE,
	    .tag = 4,
	    .opcode = 0x4200,
	    .rc = 0,
	    .payload = payload,
	    .payload_len = 18,
	};
	struct cci_tunnel_rep t = {.msg = inner}, d;
	struct cci_msg dm;
	int n;

	fill_payload(18);
	n = cci_encode(inner, sizeof(inner), &m);
	t.msg_len = (uint16_t)n;
	memset(out, 0xff, sizeof(out));
	ck_assert_int_eq(cci_tunnel_rep_encode(out, sizeof(out), &t), CCI_TUNNEL_REP_HEADER + n);
	ck_assert_uint_eq(out[0], n);
	ck_assert_uint_eq(out[1], 0);
	ck_assert_uint_eq(out[2], 0); /* reserved */
	ck_assert_uint_eq(out[3], 0);
	ck_assert_int_eq(cci_tunnel_rep_decode(out, CCI_TUNNEL_REP_HEADER + (size_t)n, &d), 0);
	ck_assert_uint_eq(d.msg_len, n);
	ck_assert_ptr_eq(d.msg, out + CCI_TUNNEL_REP_HEADER);
	ck_assert_int_eq(cci_decode(d.msg, d.msg_len, &dm), 0);
	ck_assert_uint_eq(dm.opcode, 0x4200);
	ck_assert_uint_eq(dm.payload_len, 18);
	ck_assert_mem_eq(dm.payload, payload, 18);
}
END_TEST

START_TEST(tunnel_rep_malformed)
{
	static uint8_t inner[64], out[128];
	struct cci_msg m = {.category = CCI_CATEGORY_RESPONSE, .opcode = 0x0001};
	struct cci_tunnel_rep t = {.msg = inner}, d;
	size_t len;
	int n;

	n = cci_encode(inner, sizeof(inner), &m);
	t.msg_len = (uint16_t)n;
	len = (size_t)cci_tunnel_rep_encode(out, sizeof(out), &t);
	ck_assert_uint_eq(len, 16);
	for (size_t l = 0; l < CCI_TUNNEL_REP_HEADER + CCI_HEADER_SIZE; l++)
		ck_assert_int_eq(cci_tunnel_rep_decode(out, l, &d), -EPROTO);
	ck_assert_int_eq(cci_tunnel_rep_decode(out, len + 1, &d), -EPROTO);
	out[0] = 13;
	ck_assert_int_eq(cci_tunnel_rep_decode(out, len, &d), -EPROTO);
	out[0] = 12;
	out[1] = 1;
	ck_assert_int_eq(cci_tunnel_rep_decode(out, len, &d), -EPROTO);
	out[1] = 0;
	ck_assert_int_eq(cci_tunnel_rep_decode(out, len, &d), 0);
	ck_assert_int_eq(cci_tunnel_rep_encode(out, len - 1, &t), -EMSGSIZE);
	ck_assert_int_eq(cci_tunnel_rep_encode(out, 0, &t), -EMSGSIZE);
}
END_TEST

/* A tunnel inside a tunnel: each level decodes to the next. */
START_TEST(tunnel_nested)
{
	static uint8_t l2[64], l1[128], l0[256], m1[128];
	struct cci_tunnel_req t;
	struct cci_msg outer = {.category = CCI_CATEGORY_REQUEST, .opcode = 0x5300}, dm;
	int n2 = inner_msg(l2, sizeof(l2), 0), n1, n0;

	t = (struct cci_tunnel_req){.target = 2, .msg = l2, .msg_len = (uint16_t)n2};
	n1 = cci_tunnel_req_encode(m1, sizeof(m1), &t);
	outer.payload = m1;
	outer.payload_len = (uint32_t)n1;
	n1 = cci_encode(l1, sizeof(l1), &outer);
	t = (struct cci_tunnel_req){.target = 1, .msg = l1, .msg_len = (uint16_t)n1};
	n0 = cci_tunnel_req_encode(l0, sizeof(l0), &t);

	ck_assert_int_eq(cci_tunnel_req_decode(l0, (size_t)n0, &t), 0);
	ck_assert_uint_eq(t.target, 1);
	ck_assert_int_eq(cci_decode(t.msg, t.msg_len, &dm), 0);
	ck_assert_uint_eq(dm.opcode, 0x5300);
	ck_assert_int_eq(cci_tunnel_req_decode(dm.payload, dm.payload_len, &t), 0);
	ck_assert_uint_eq(t.target, 2);
	ck_assert_int_eq(cci_decode(t.msg, t.msg_len, &dm), 0);
	ck_assert_uint_eq(dm.opcode, 0x0001);
}
END_TEST

static Suite *cci_suite(void)
{
	Suite *s = suite_create("cci");
	TCase *msg = tcase_create("message"), *tun = tcase_create("tunnel");

	tcase_add_test(msg, encode_request_bytes);
	tcase_add_test(msg, encode_response_bytes);
	tcase_add_test(msg, round_trips);
	tcase_add_test(msg, encode_20bit_length);
	tcase_add_test(msg, encode_too_big);
	tcase_add_test(msg, decode_short);
	tcase_add_test(msg, decode_length_mismatch);
	tcase_add_test(msg, decode_reserved_category);
	suite_add_tcase(s, msg);
	tcase_add_test(tun, tunnel_req_round_trip);
	tcase_add_test(tun, tunnel_req_large);
	tcase_add_test(tun, tunnel_req_malformed);
	tcase_add_test(tun, tunnel_rep_round_trip);
	tcase_add_test(tun, tunnel_rep_malformed);
	tcase_add_test(tun, tunnel_nested);
	suite_add_tcase(s, tun);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cci_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
