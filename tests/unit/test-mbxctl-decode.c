/*
 * Unit tests of mbxctl's payload decoders, argument parsers, tunnel wrapping
 * and exit codes. The .c files are included so static helpers are reachable.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../clients/mbxctl/output.c"
#include "../../clients/mbxctl/args.c"
#include "../../clients/mbxctl/tunnel.c"
#include "../../clients/mbxctl/result.c"
#include "../../clients/mbxctl/decode-identify.c"
#include "../../clients/mbxctl/decode-health.c"
#include "../../clients/mbxctl/decode-cel.c"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

START_TEST(test_identify_generic)
{
	uint8_t b[DECODE_IDENTIFY_SIZE] = {0};
	struct decode_identify id;

	put16(b, 0x8086);
	put16(b + 2, 0x0d93);
	put16(b + 4, 0x1af4);
	put16(b + 6, 0x1100);
	put64(b + 8, 0x0123456789abcdefull);
	b[16] = 20;
	b[17] = DECODE_COMPONENT_TYPE3;
	ck_assert_int_eq(decode_identify_generic(b, sizeof(b), &id), 0);
	ck_assert_uint_eq(id.vendor_id, 0x8086);
	ck_assert_uint_eq(id.device_id, 0x0d93);
	ck_assert_uint_eq(id.subsys_vendor_id, 0x1af4);
	ck_assert_uint_eq(id.subsys_id, 0x1100);
	ck_assert(id.serial == 0x0123456789abcdefull);
	ck_assert_uint_eq(id.max_msg_size, 20);
	ck_assert_str_eq(decode_identify_component(id.component_type), "CXL Type 3 memory device");
	ck_assert_str_eq(decode_identify_component(DECODE_COMPONENT_SWITCH), "CXL switch");
	ck_assert_str_eq(decode_identify_component(9), "unknown component type");
	ck_assert_int_eq(decode_identify_generic(b, sizeof(b) - 1, &id), -EPROTO);
	ck_assert_int_eq(decode_identify_generic(NULL, 0, &id), -EPROTO);
}
END_TEST

/* Builds an Identify Memory Device payload of len bytes. */
static void memdev_payload(uint8_t *b, size_t len)
{
	memset(b, 0, len);
	memcpy(b, "FW 1.2\0\0\0\0\0\0\0\0\0\0", 16);
	put64(b + 0x10, 16); /* 16 x 256 MiB = 4 GiB */
	put64(b + 0x18, 6);  /* 1.5 GiB */
	put64(b + 0x20, 10);
	put64(b + 0x28, 1);
	put16(b + 0x30, 1);
	put16(b + 0x32, 2);
	put16(b + 0x34, 3);
	put16(b + 0x36, 4);
	put32(b + 0x38, 128 * 1024);
	b[0x3c] = 0x03;
	b[0x3d] = 0x02;
	b[0x3e] = 0x01;
	put16(b + 0x3f, 10);
	b[0x41] = 0x03;
	b[0x42] = 0x02;
	if (len >= DECODE_MEMDEV_SIZE_DC)
		put16(b + 0x43, 77);
}

START_TEST(test_identify_memdev)
{
	uint8_t b[DECODE_MEMDEV_SIZE_DC + 8];
	struct decode_memdev m;
	json_t *j;

	memdev_payload(b, DECODE_MEMDEV_SIZE_DC);
	ck_assert_int_eq(decode_identify_memdev(b, DECODE_MEMDEV_SIZE_DC, &m), 0);
	ck_assert_str_eq(m.fw_revision, "FW 1.2");
	ck_assert(m.total_bytes == 4ull << 30);
	ck_assert(m.volatile_bytes == 1536ull << 20);
	ck_assert(m.persistent_bytes == 2560ull << 20);
	ck_assert(m.partition_align_bytes == 256ull << 20);
	ck_assert_uint_eq(m.event_log_size[0], 1);
	ck_assert_uint_eq(m.event_log_size[3], 4);
	ck_assert_uint_eq(m.lsa_size, 128 * 1024);
	ck_assert_uint_eq(m.poison_list_max, 0x010203);
	ck_assert_uint_eq(m.inject_poison_limit, 10);
	ck_assert_uint_eq(m.poison_caps, 3);
	ck_assert_uint_eq(m.qos_caps, 2);
	ck_assert(m.have_dc);
	ck_assert_uint_eq(m.dc_event_log_size, 77);
	j = decode_identify_json_memdev(&m);
	ck_assert_ptr_nonnull(j);
	ck_assert(json_integer_value(json_object_get(j, "total_capacity_bytes")) == 4ll << 30);
	ck_assert(json_is_true(json_object_get(j, "scan_media_supported")));
	ck_assert(json_is_false(json_object_get(j, "qos_egress_port_congestion")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "dc_event_log_size")), 77);
	json_decref(j);

	/* A r3.0 device without the DC field; one byte shorter is malformed. */
	memdev_payload(b, DECODE_MEMDEV_SIZE);
	ck_assert_int_eq(decode_identify_memdev(b, DECODE_MEMDEV_SIZE, &m), 0);
	ck_assert(!m.have_dc);
	ck_assert_int_eq(decode_identify_memdev(b, DECODE_MEMDEV_SIZE - 1, &m), -EPROTO);

	/* A firmware revision with control bytes and space padding. */
	memcpy(b,
	       "A\x01"
	       "B             ",
	       16);
	ck_assert_int_eq(decode_identify_memdev(b, DECODE_MEMDEV_SIZE, &m), 0);
	ck_assert_str_eq(m.fw_revision, "A.B");
}
END_TEST

START_TEST(test_identify_switch)
{
	uint8_t b[DECODE_SWITCH_SIZE] = {0};
	struct decode_switch s;
	char bits[128];
	json_t *j;

	b[0] = 2;
	b[2] = 9;
	b[3] = 1;
	b[4] = 0x8f;  /* ports 0-3 and 7 */
	b[5] = 0x01;  /* port 8 */
	b[35] = 0x80; /* port 255 */
	b[0x24] = 0x01;
	put16(b + 0x44, 9);
	put16(b + 0x46, 4);
	b[0x48] = 4;
	ck_assert_int_eq(decode_identify_switch(b, sizeof(b), &s), 0);
	ck_assert_uint_eq(s.ingress_port, 2);
	ck_assert_uint_eq(s.n_ports, 9);
	ck_assert_uint_eq(s.n_vcs, 1);
	ck_assert_uint_eq(s.total_vppbs, 9);
	ck_assert_uint_eq(s.bound_vppbs, 4);
	ck_assert_uint_eq(s.hdm_decoders, 4);
	decode_identify_bits(s.active_ports, bits, sizeof(bits));
	ck_assert_str_eq(bits, "0-3, 7-8, 255");
	decode_identify_bits(s.active_vcs, bits, sizeof(bits));
	ck_assert_str_eq(bits, "0");
	memset(s.active_vcs, 0, sizeof(s.active_vcs));
	decode_identify_bits(s.active_vcs, bits, sizeof(bits));
	ck_assert_str_eq(bits, "none");
	j = decode_identify_json_switch(&s);
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(json_array_size(json_object_get(j, "active_ports")), 7);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(j, "active_ports"), 6)),
			 255);
	json_decref(j);
	ck_assert_int_eq(decode_identify_switch(b, sizeof(b) - 1, &s), -EPROTO);
}
END_TEST

START_TEST(test_health)
{
	uint8_t b[DECODE_HEALTH_SIZE] = {0};
	struct decode_health h;
	json_t *j;

	b[0] = 0x05;                      /* maintenance needed, replacement needed */
	b[1] = 2;                         /* write persistency lost */
	b[2] = 0x01 | 0x02 << 2 | 1 << 5; /* life warning, temp critical, persistent warning */
	b[3] = 42;
	put16(b + 4, (uint16_t)-5);
	put32(b + 6, 3);
	put32(b + 10, 7);
	put32(b + 14, 0xffffffff);
	ck_assert_int_eq(decode_health_parse(b, sizeof(b), &h), 0);
	ck_assert_uint_eq(h.life_used, 42);
	ck_assert(h.temperature_known);
	ck_assert_int_eq(h.temperature, -5);
	ck_assert_uint_eq(h.dirty_shutdowns, 3);
	ck_assert_uint_eq(h.corrected_volatile, 7);
	ck_assert_uint_eq(h.corrected_persistent, 0xffffffff);
	ck_assert_str_eq(decode_health_media(h.media_status), "write persistency lost");
	ck_assert_str_eq(decode_health_media(9), "all data loss imminent");
	ck_assert_str_eq(decode_health_media(10), "reserved value");
	ck_assert_str_eq(decode_health_alert(h.additional_status, 0), "warning");
	ck_assert_str_eq(decode_health_alert(h.additional_status, 1), "critical");
	ck_assert_str_eq(decode_health_alert(h.additional_status, 2), "normal");
	ck_assert_str_eq(decode_health_alert(h.additional_status, 3), "warning");
	j = decode_health_json(&h);
	ck_assert_ptr_nonnull(j);
	ck_assert(json_is_true(
	    json_object_get(json_object_get(j, "health_status"), "maintenance_needed")));
	ck_assert(json_is_false(
	    json_object_get(json_object_get(j, "health_status"), "performance_degraded")));
	ck_assert_int_eq(json_integer_value(json_object_get(j, "temperature_celsius")), -5);
	ck_assert(json_integer_value(json_object_get(j, "corrected_persistent_errors")) ==
		  0xffffffffll);
	json_decref(j);

	/* Values the device does not implement become "not reported" / null. */
	put16(b + 4, 0xffff);
	b[3] = 0xff;
	ck_assert_int_eq(decode_health_parse(b, sizeof(b), &h), 0);
	ck_assert(!h.temperature_known);
	j = decode_health_json(&h);
	ck_assert(json_is_null(json_object_get(j, "temperature_celsius")));
	ck_assert(json_is_null(json_object_get(j, "life_used_percent")));
	json_decref(j);
	ck_assert_int_eq(decode_health_parse(b, sizeof(b) - 1, &h), -EPROTO);
}
END_TEST

START_TEST(test_supported_logs)
{
	uint8_t b[DECODE_LOGS_HEADER + 2 * DECODE_LOG_ENTRY_SIZE] = {0};
	struct decode_log *logs;
	uint32_t size = 0;
	char uuid[37];
	size_t n;

	put16(b, 2);
	memset(b + 8, 0x11, 16); /* some other log */
	put32(b + 8 + 16, 512);
	memcpy(b + 28, decode_cel_uuid, 16);
	put32(b + 28 + 16, 84);
	ck_assert_int_eq(decode_cel_logs(b, sizeof(b), &logs, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(decode_cel_find(logs, n, &size), 0);
	ck_assert_uint_eq(size, 84);
	ck_assert_int_eq(decode_cel_find(logs, 1, &size), -ENOENT);
	free(logs);
	decode_cel_uuid_str(decode_cel_uuid, uuid);
	ck_assert_str_eq(uuid, "0da9c0b5-bf41-4b78-8f79-96b1623b3f17");

	/* A count that claims more entries than the payload holds. */
	put16(b, 3);
	ck_assert_int_eq(decode_cel_logs(b, sizeof(b), &logs, &n), -EPROTO);
	ck_assert_ptr_null(logs);
	ck_assert_int_eq(decode_cel_logs(b, DECODE_LOGS_HEADER - 1, &logs, &n), -EPROTO);
	put16(b, 0);
	ck_assert_int_eq(decode_cel_logs(b, DECODE_LOGS_HEADER, &logs, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(test_cel_entries)
{
	uint8_t cel[12];
	const char *names[16];
	char unknown[16][16];
	json_t *j, *e;

	put16(cel, 0x4400);
	put16(cel + 2, 0x44);
	put16(cel + 4, 0x0001);
	put16(cel + 6, 0);
	put16(cel + 8, 0xc001);
	put16(cel + 10, 0x0201); /* bit 0 and bit 9 */
	ck_assert_uint_eq(decode_cel_effects(0x44, names, unknown), 2);
	ck_assert_str_eq(names[0], "immediate data change");
	ck_assert_str_eq(names[1], "background operation");
	ck_assert_uint_eq(decode_cel_effects(0x0201, names, unknown), 2);
	ck_assert_str_eq(names[0], "config change after cold reset");
	ck_assert_str_eq(names[1], "unknown bit 9");
	ck_assert_uint_eq(decode_cel_effects(0, names, unknown), 0);
	ck_assert_uint_eq(decode_cel_effects(0xffff, names, unknown), 16);
	ck_assert_str_eq(names[15], "unknown bit 15");

	j = decode_cel_json(cel, sizeof(cel));
	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(json_array_size(j), 3);
	e = json_array_get(j, 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "opcode")), "0x4400");
	ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "Sanitize");
	ck_assert_int_eq(json_integer_value(json_object_get(e, "effects")), 0x44);
	ck_assert_uint_eq(json_array_size(json_object_get(e, "effects_names")), 2);
	e = json_array_get(j, 2);
	ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "vendor specific");
	json_decref(j);
}
END_TEST

START_TEST(test_sizes)
{
	char buf[32];

	out_size(buf, sizeof(buf), 4ull << 30);
	ck_assert_str_eq(buf, "4 GiB");
	out_size(buf, sizeof(buf), 1536ull << 20);
	ck_assert_str_eq(buf, "1536 MiB");
	out_size(buf, sizeof(buf), 0);
	ck_assert_str_eq(buf, "0 bytes");
	out_size(buf, sizeof(buf), 1000);
	ck_assert_str_eq(buf, "1000 bytes");
	out_size(buf, sizeof(buf), 128 * 1024);
	ck_assert_str_eq(buf, "128 KiB");
	out_size(buf, sizeof(buf), 1ull << 50);
	ck_assert_str_eq(buf, "1 PiB");
}
END_TEST

START_TEST(test_args_opcode)
{
	uint16_t op = 0;

	ck_assert_int_eq(ctl_args_opcode("4400h", &op), 0);
	ck_assert_uint_eq(op, 0x4400);
	ck_assert_int_eq(ctl_args_opcode("0x4200", &op), 0);
	ck_assert_uint_eq(op, 0x4200);
	ck_assert_int_eq(ctl_args_opcode("c001", &op), 0);
	ck_assert_uint_eq(op, 0xc001);
	ck_assert_int_eq(ctl_args_opcode("1", &op), 0);
	ck_assert_uint_eq(op, 0x0001);
	ck_assert_int_eq(ctl_args_opcode("sanitize", &op), 0);
	ck_assert_uint_eq(op, 0x4400);
	ck_assert_int_eq(ctl_args_opcode("get-health-info", &op), 0);
	ck_assert_uint_eq(op, 0x4200);
	ck_assert_int_eq(ctl_args_opcode("Identify Switch Device", &op), 0);
	ck_assert_uint_eq(op, 0x5100);
	ck_assert_int_eq(ctl_args_opcode("12345", &op), -EINVAL);
	ck_assert_int_eq(ctl_args_opcode("0x", &op), -EINVAL);
	ck_assert_int_eq(ctl_args_opcode("h", &op), -EINVAL);
	ck_assert_int_eq(ctl_args_opcode("sanitize-please", &op), -EINVAL);
	ck_assert_int_eq(ctl_args_opcode("", &op), -EINVAL);
}
END_TEST

START_TEST(test_args_hex)
{
	uint8_t *p;
	size_t n;

	ck_assert_int_eq(ctl_args_hex("01 02 0a", &p, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(p[2], 0x0a);
	free(p);
	ck_assert_int_eq(ctl_args_hex("0xDEADbeef", &p, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(p[0], 0xde);
	ck_assert_uint_eq(p[3], 0xef);
	free(p);
	ck_assert_int_eq(ctl_args_hex("00:11:22", &p, &n), 0);
	ck_assert_uint_eq(n, 3);
	free(p);
	ck_assert_int_eq(ctl_args_hex("", &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(p);
	ck_assert_int_eq(ctl_args_hex("012", &p, &n), -EINVAL);
	ck_assert_int_eq(ctl_args_hex("0 1", &p, &n), -EINVAL); /* a separator inside a byte */
	ck_assert_int_eq(ctl_args_hex("zz", &p, &n), -EINVAL);
}
END_TEST

START_TEST(test_tunnel_roundtrip)
{
	static const uint8_t in[3] = {1, 2, 3};
	static const uint8_t out_payload[4] = {9, 8, 7, 6};
	struct cci_tunnel_req treq;
	struct cci_msg inner;
	uint8_t *w, rep[64], msg[32];
	const uint8_t *out;
	size_t wlen, out_len;
	uint16_t rc, vs;
	int n;

	ck_assert_int_eq(tunnel_wrap(3, 0x4200, in, sizeof(in), &w, &wlen), 0);
	ck_assert_int_eq(cci_tunnel_req_decode(w, wlen, &treq), 0);
	ck_assert_uint_eq(treq.target, 3);
	ck_assert_int_eq(cci_decode(treq.msg, treq.msg_len, &inner), 0);
	ck_assert_uint_eq(inner.category, CCI_CATEGORY_REQUEST);
	ck_assert_uint_eq(inner.opcode, 0x4200);
	ck_assert_uint_eq(inner.payload_len, 3);
	ck_assert_mem_eq(inner.payload, in, 3);
	free(w);

	/* A response from the device behind the port. */
	inner = (struct cci_msg){.category = CCI_CATEGORY_RESPONSE,
				 .opcode = 0x4200,
				 .rc = 0x16,
				 .vendor_status = 0x55,
				 .payload = out_payload,
				 .payload_len = 4};
	n = cci_encode(msg, sizeof(msg), &inner);
	ck_assert_int_gt(n, 0);
	n = cci_tunnel_rep_encode(rep, sizeof(rep),
				  &(struct cci_tunnel_rep){.msg = msg, .msg_len = (uint16_t)n});
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(tunnel_unwrap(rep, (size_t)n, 0x4200, &rc, &vs, &out, &out_len), 0);
	ck_assert_uint_eq(rc, 0x16);
	ck_assert_uint_eq(vs, 0x55);
	ck_assert_uint_eq(out_len, 4);
	ck_assert_mem_eq(out, out_payload, 4);
	/* The answer must be a response to the command that was sent. */
	ck_assert_int_eq(tunnel_unwrap(rep, (size_t)n, 0x4000, &rc, &vs, &out, &out_len), -EPROTO);
	ck_assert_int_eq(tunnel_unwrap(rep, (size_t)n - 1, 0x4200, &rc, &vs, &out, &out_len),
			 -EPROTO);
	ck_assert_int_eq(tunnel_unwrap(NULL, 0, 0x4200, &rc, &vs, &out, &out_len), -EPROTO);
	/* The 16-bit tunnel size bounds the inner payload. */
	ck_assert_int_eq(tunnel_wrap(1, 1, in, 65536, &w, &wlen), -EMSGSIZE);
}
END_TEST

START_TEST(test_exit_codes)
{
	struct ctl_answer a;

	memset(&a, 0, sizeof(a));
	a.reply.result.status = MBX_STATUS_OK;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_OK);
	a.rc = CXL_RC_BACKGROUND_STARTED;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_OK);
	a.rc = CXL_RC_INVALID_PAYLOAD_LENGTH;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DEVICE);
	a.reply.result.status = MBX_STATUS_DENIED;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DENIED);
	a.reply.result.status = MBX_STATUS_RATE_LIMITED;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DENIED);
	a.reply.result.status = MBX_STATUS_INVALID;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_INVALID);
	a.reply.result.status = MBX_STATUS_NO_DEVICE;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_INVALID);
	a.reply.result.status = MBX_STATUS_TIMEOUT;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DEVICE);
	a.reply.result.status = MBX_STATUS_AUDIT_UNAVAILABLE;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DAEMON);
	a.reply.result.status = MBX_STATUS_CANCELLED;
	ck_assert_int_eq(result_exit_code(&a), CTL_EXIT_DAEMON);
	/* Every status has a code, and none is 2 (reserved for usage errors). */
	for (uint16_t s = 0; s < MBX_STATUS_COUNT; s++) {
		a.reply.result.status = s;
		a.rc = 0;
		ck_assert_int_ne(result_exit_code(&a), CTL_EXIT_USAGE);
		ck_assert_int_eq(result_exit_code(&a) == CTL_EXIT_OK, s == MBX_STATUS_OK);
	}
}
END_TEST

START_TEST(test_jstr_invalid_utf8)
{
	json_t *j = out_jstr("caf\xc3\xa9");

	ck_assert_str_eq(json_string_value(j), "caf\xc3\xa9");
	json_decref(j);
	j = out_jstr("bad\xff\xfe.");
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(j), "bad??.");
	json_decref(j);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mbxctl-decode");
	TCase *tc = tcase_create("decode");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_identify_generic);
	tcase_add_test(tc, test_identify_memdev);
	tcase_add_test(tc, test_identify_switch);
	tcase_add_test(tc, test_health);
	tcase_add_test(tc, test_supported_logs);
	tcase_add_test(tc, test_cel_entries);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_args_opcode);
	tcase_add_test(tc, test_args_hex);
	tcase_add_test(tc, test_tunnel_roundtrip);
	tcase_add_test(tc, test_exit_codes);
	tcase_add_test(tc, test_jstr_invalid_utf8);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
