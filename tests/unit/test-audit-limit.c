/*
 * The refusal limiter (broker/audit-limit.c) over a real audit file: the
 * bucket per user, what "the same kind" is, the mixed count past
 * AUDIT_LIMIT_KEYS kinds, and counts kept across a failed write. The
 * writer's .c is included so a write can be made to fail.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/audit.c"
#include "../../broker/audit-limit.c"

static char dir[64], path[128];
static struct audit *a;
static struct audit_limit *l;
static const struct audit_limit_config cfg = {.burst = 3, .per_minute = 60, .window_ms = 1000};

static void setup(void)
{
	char err[256];

	audit_sys_write = write;
	snprintf(dir, sizeof(dir), "/tmp/test-audit-limit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	ck_assert_int_eq(audit_open(path, &a, err, sizeof(err)), 0);
	l = audit_limit_new(a, &cfg);
	ck_assert_ptr_nonnull(l);
}

static void teardown(void)
{
	char cmd[128];

	audit_limit_free(l, 0);
	audit_close(a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A denial of opcode on dev by uid. */
static struct audit_record denial(uid_t uid, const char *dev, uint16_t opcode)
{
	return (struct audit_record){
	    .kind = AUDIT_DECISION,
	    .uid = uid,
	    .user = "u",
	    .device = dev,
	    .transport = "sim",
	    .opcode = opcode,
	    .opcode_name = "X",
	    .cls = MBX_CLASS_CONFIG,
	    .decision = MBX_DECISION_DENY,
	    .status = MBX_STATUS_DENIED,
	};
}

/* The audit file's records, as JSON, into v (at most max); returns the count. */
static size_t lines(json_t **v, size_t max)
{
	FILE *f = fopen(path, "r");
	char buf[8192];
	size_t n = 0;

	ck_assert_ptr_nonnull(f);
	while (n < max && fgets(buf, sizeof(buf), f))
		v[n++] = json_loads(buf, 0, NULL);
	fclose(f);
	return n;
}

static void lines_free(json_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
}

START_TEST(test_burst_then_counted_per_kind)
{
	struct audit_record r = denial(1001, "mem0", 0x0301);
	json_t *v[64], *sup;
	uint64_t seq;
	size_t n;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(audit_limit_write(l, &r, 0, &seq), 0);
	ck_assert_uint_eq(seq, 3);
	for (int i = 0; i < 7; i++) {
		ck_assert_int_eq(audit_limit_write(l, &r, 0, &seq), AUDIT_LIMIT_COUNTED);
		ck_assert_uint_eq(seq, 0);
	}
	/* Another user is not held back by the first one's flood. */
	r = denial(1002, "mem0", 0x0301);
	ck_assert_int_eq(audit_limit_write(l, &r, 0, &seq), 0);
	ck_assert_uint_eq(seq, 4);
	/* One second later one token came back. */
	r = denial(1001, "mem0", 0x0301);
	ck_assert_int_eq(audit_limit_write(l, &r, 1000, &seq), 0);
	ck_assert_uint_eq(audit_limit_pending(l), 7);
	ck_assert_int_eq(audit_limit_flush(l, 1000), 1);
	ck_assert_uint_eq(audit_limit_pending(l), 0);
	n = lines(v, 64);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(json_string_value(json_object_get(v[5], "kind")), "suppressed");
	sup = json_object_get(v[5], "suppressed");
	ck_assert_int_eq(json_integer_value(json_object_get(sup, "count")), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(sup, "like_seq")), 5);
	ck_assert_str_eq(json_string_value(json_object_get(v[5], "opcode")), "0x0301");
	ck_assert_str_eq(json_string_value(json_object_get(v[5], "status")), "denied");
	ck_assert(json_is_null(json_object_get(v[5], "pid")));
	ck_assert(json_is_null(json_object_get(v[0], "suppressed")));
	lines_free(v, n);
	/* An empty window writes nothing. */
	ck_assert_int_eq(audit_limit_flush(l, 2000), 0);
}
END_TEST

START_TEST(test_kinds_are_user_device_opcode_status_rule)
{
	struct audit_record r = denial(1001, "mem0", 0x0301);
	json_t *v[64];
	uint64_t seq;
	size_t n;

	for (int i = 0; i < 3; i++)
		audit_limit_write(l, &r, 0, &seq);
	/* Each differs from r in one part of the key: five kinds, five counts. */
	r.device = "mem1";
	audit_limit_write(l, &r, 0, &seq);
	r = denial(1001, "mem0", 0x4400);
	audit_limit_write(l, &r, 0, &seq);
	r = denial(1001, "mem0", 0x0301);
	r.status = MBX_STATUS_RATE_LIMITED;
	audit_limit_write(l, &r, 0, &seq);
	r = denial(1001, "mem0", 0x0301);
	r.rule = "no-config";
	audit_limit_write(l, &r, 0, &seq);
	r = denial(1001, "mem0", 0x0301);
	r.pid = 99; /* pid and reason are not part of the kind */
	r.reason = "again";
	audit_limit_write(l, &r, 0, &seq);
	r.pid = 98;
	audit_limit_write(l, &r, 0, &seq);
	ck_assert_int_eq(audit_limit_flush(l, 0), 5);
	n = lines(v, 64);
	ck_assert_uint_eq(n, 8);
	/* The first kind's count holds both, like its last full record (seq 3). */
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(v[3], "suppressed"), "count")), 2);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(v[3], "suppressed"), "like_seq")),
	    3);
	/* Kinds never written in full have no like_seq. */
	ck_assert(json_is_null(json_object_get(json_object_get(v[4], "suppressed"), "like_seq")));
	ck_assert_str_eq(json_string_value(json_object_get(v[4], "device")), "mem1");
	lines_free(v, n);
}
END_TEST

START_TEST(test_mixed_past_the_key_table)
{
	struct audit_record r;
	json_t *v[64];
	uint64_t seq;
	size_t n;

	for (int i = 0; i < 3; i++) {
		r = denial(1001, "mem0", 0x0100);
		audit_limit_write(l, &r, 0, &seq);
	}
	/* The first kind holds a key; 15 more fill the table; 10 go to the mixed count. */
	for (int i = 0; i < AUDIT_LIMIT_KEYS - 1 + 10; i++) {
		r = denial(1001, "mem0", (uint16_t)(0x1000 + i));
		ck_assert_int_eq(audit_limit_write(l, &r, 0, &seq), AUDIT_LIMIT_COUNTED);
	}
	ck_assert_int_eq(audit_limit_flush(l, 0), AUDIT_LIMIT_KEYS);
	n = lines(v, 64);
	ck_assert_uint_eq(n, 3 + AUDIT_LIMIT_KEYS);
	ck_assert(json_is_null(json_object_get(v[n - 1], "opcode")));
	ck_assert(json_is_null(json_object_get(v[n - 1], "device")));
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(v[n - 1], "suppressed"), "count")),
	    10);
	lines_free(v, n);
}
END_TEST

static ssize_t fail_write(int fd, const void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	(void)len;
	errno = ENOSPC;
	return -1;
}

START_TEST(test_count_kept_when_its_record_fails)
{
	struct audit_record r = denial(1001, "mem0", 0x0301);
	uint64_t seq;

	for (int i = 0; i < 8; i++)
		audit_limit_write(l, &r, 0, &seq);
	audit_sys_write = fail_write;
	ck_assert_int_eq(audit_limit_flush(l, 0), -ENOSPC);
	ck_assert_uint_eq(audit_limit_pending(l), 5);
	audit_sys_write = write;
	ck_assert_int_eq(audit_limit_flush(l, 0), 1);
	ck_assert_uint_eq(audit_limit_pending(l), 0);
}
END_TEST

START_TEST(test_no_limit_when_burst_is_zero)
{
	const struct audit_limit_config off = {.burst = 0, .per_minute = 1, .window_ms = 1000};
	struct audit_limit *l0 = audit_limit_new(a, &off);
	struct audit_record r = denial(1001, "mem0", 0x0301);
	uint64_t seq;

	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(audit_limit_write(l0, &r, 0, &seq), 0);
	ck_assert_uint_eq(seq, 50);
	audit_limit_free(l0, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("audit-limit");
	TCase *tc = tcase_create("audit-limit");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_burst_then_counted_per_kind);
	tcase_add_test(tc, test_kinds_are_user_device_opcode_status_rule);
	tcase_add_test(tc, test_mixed_past_the_key_table);
	tcase_add_test(tc, test_count_kept_when_its_record_fails);
	tcase_add_test(tc, test_no_limit_when_burst_is_zero);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
