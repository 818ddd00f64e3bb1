/*
 * What the daemon answers, beyond allow and deny: EXPLAIN takes no
 * rate-limit token and a reload keeps the buckets of unchanged rules; a user
 * the policy does not allow a command learns nothing of what the device
 * supports; a request refused before it is classified reports its opcode's
 * class; a reason that is not UTF-8 is refused, and one that is is kept
 * exactly. mbxd runs sandboxed, each client under its own test uid.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <mbx/mbx.h>

#include "harness.h"

static struct harness h;

/* One request and how to send it. */
struct ask {
	const char *device;
	uint16_t opcode;
	const char *reason;
	bool explain;
	uint32_t timeout_ms;
};

/* As a user: sends the request; exits with status * 8 + class (100+ if the client failed). */
static int ask_fn(const char *socket, void *arg)
{
	const struct ask *a = arg;
	struct mbx_request req = {.device = a->device,
				  .opcode = a->opcode,
				  .reason = a->reason,
				  .timeout_ms = a->timeout_ms};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int rc;

	if (mbx_open(socket, &cl) < 0)
		return 100;
	rc = a->explain ? mbx_explain(cl, &req, &rep) : mbx_submit(cl, &req, &rep);
	if (rc < 0)
		return 101;
	rc = rep.result.status * 8 + rep.result.cls;
	mbx_reply_free(&rep);
	mbx_close(cl);
	return rc;
}

/* Sends as user; returns the broker status (the class goes to *cls when not NULL). */
static int ask(const char *user, struct ask a, int *cls)
{
	int rc = harness_as_user(user, ask_fn, h.socket, &a);

	ck_assert_int_lt(rc, 100);
	if (cls)
		*cls = rc % 8;
	return rc / 8;
}

/* How many times mbxd's log holds needle. */
static int log_count(const char *needle)
{
	return harness_file_count(h.log, needle);
}

/* Installs a policy and waits for mbxd to have reloaded it. */
static void reload(const char *policy)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	int before = log_count("policy reloaded");

	harness_write_policy(&h, policy);
	harness_signal(&h, SIGHUP);
	for (int i = 0; i < 500 && log_count("policy reloaded") == before; i++)
		nanosleep(&pause, NULL);
	ck_assert_int_gt(log_count("policy reloaded"), before);
}

static const char *const limited =
    "version: 1\n"
    "rules:\n"
    "  - name: ops-identify\n    who: { users: [" H_OPERATOR "] }\n    devices: [mem0]\n"
    "    allow_opcodes: [0x4000]\n    rate: 2/hour\n";

/* Starts mbxd on two memory devices, mem1 without Get Health Info. */
static void setup(void)
{
	harness_users();
	harness_init(&h,
		     "  - name: mem0\n    transport: sim\n"
		     "  - name: mem1\n    transport: sim\n    options: { omit_opcode: 0x4200 }\n",
		     limited);
	harness_start(&h);
}

static void teardown(void)
{
	harness_stop(&h);
	harness_cleanup(&h);
}

/* EXPLAINs take no token; a reload keeps an unchanged rule's bucket and resets a changed one. */
START_TEST(test_explain_and_reload_keep_the_bucket)
{
	struct ask id = {.device = "mem0", .opcode = 0x4000};
	struct ask ex = {.device = "mem0", .opcode = 0x4000, .explain = true};

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(ask(H_OPERATOR, ex, NULL), MBX_STATUS_OK);
	ck_assert_int_eq(ask(H_OPERATOR, id, NULL), MBX_STATUS_OK);
	ck_assert_int_eq(ask(H_OPERATOR, id, NULL), MBX_STATUS_OK);
	ck_assert_int_eq(ask(H_OPERATOR, id, NULL), MBX_STATUS_RATE_LIMITED);
	/* EXPLAIN says what a SUBMIT would get now, still taking nothing. */
	ck_assert_int_eq(ask(H_OPERATOR, ex, NULL), MBX_STATUS_RATE_LIMITED);

	/* Another rule added above it: the rule is unchanged, its bucket stays empty. */
	reload("version: 1\nrules:\n"
	       "  - name: admin-reads\n    who: { users: [" H_ADMIN "] }\n    allow: [read]\n"
	       "  - name: ops-identify\n    who: { users: [" H_OPERATOR "] }\n"
	       "    devices: [mem0]\n    allow_opcodes: [0x4000]\n    rate: 2/hour\n");
	ck_assert_int_eq(ask(H_OPERATOR, id, NULL), MBX_STATUS_RATE_LIMITED);
	/* The rule itself changed (its rate): it starts over with a full bucket. */
	reload("version: 1\nrules:\n"
	       "  - name: ops-identify\n    who: { users: [" H_OPERATOR "] }\n"
	       "    devices: [mem0]\n    allow_opcodes: [0x4000]\n    rate: 3/hour\n");
	ck_assert_int_eq(ask(H_OPERATOR, id, NULL), MBX_STATUS_OK);
}
END_TEST

/* A user with no rule for a command is denied; only one it would allow hears "unsupported". */
START_TEST(test_unsupported_only_after_the_policy)
{
	struct ask health = {.device = "mem1", .opcode = 0x4200};

	reload("version: 1\nrules:\n"
	       "  - name: ops-read\n    who: { users: [" H_OPERATOR "] }\n    allow: [read]\n"
	       "  - name: nobody-config\n    who: { users: [" H_OUTSIDER "] }\n"
	       "    allow: [config]\n");
	ck_assert_int_eq(ask(H_OPERATOR, health, NULL), MBX_STATUS_UNSUPPORTED);
	ck_assert_int_eq(ask(H_OUTSIDER, health, NULL), MBX_STATUS_DENIED);
	ck_assert_int_eq(ask(H_ADMIN, health, NULL), MBX_STATUS_DENIED);
	health.explain = true;
	ck_assert_int_eq(ask(H_OUTSIDER, health, NULL), MBX_STATUS_DENIED);
	ck_assert_int_eq(ask(H_OPERATOR, health, NULL), MBX_STATUS_UNSUPPORTED);
	/* Where the device has it, the same users get the policy's answer as before. */
	health.device = "mem0";
	ck_assert_int_eq(ask(H_OPERATOR, health, NULL), MBX_STATUS_OK);
	ck_assert_int_eq(ask(H_OUTSIDER, health, NULL), MBX_STATUS_DENIED);
}
END_TEST

/* Refused before classification (no device, a timeout out of range): the opcode's class. */
START_TEST(test_early_refusals_report_the_class)
{
	struct ask sanitize = {.device = "nosuch", .opcode = 0x4400, .reason = "t"};
	int cls = -1;

	ck_assert_int_eq(ask(H_ADMIN, sanitize, &cls), MBX_STATUS_NO_DEVICE);
	ck_assert_int_eq(cls, MBX_CLASS_DATA);
	sanitize.explain = true;
	ck_assert_int_eq(ask(H_ADMIN, sanitize, &cls), MBX_STATUS_NO_DEVICE);
	ck_assert_int_eq(cls, MBX_CLASS_DATA);
	sanitize.device = "mem0";
	sanitize.timeout_ms = 1; /* below the server's minimum */
	ck_assert_int_eq(ask(H_ADMIN, sanitize, &cls), MBX_STATUS_INVALID);
	ck_assert_int_eq(cls, MBX_CLASS_DATA);
	sanitize.opcode = 0x4502; /* Disable Passphrase: security */
	ck_assert_int_eq(ask(H_ADMIN, sanitize, &cls), MBX_STATUS_INVALID);
	ck_assert_int_eq(cls, MBX_CLASS_SECURITY);
}
END_TEST

/* A reason with a byte that is not UTF-8 is refused, naming it; a UTF-8 one is kept exactly. */
START_TEST(test_reason_must_be_utf8)
{
	struct ask ts = {.device = "mem0", .opcode = 0x4000, .reason = "caf\xc3\xa9 \xff ticket"};
	char *audit;
	int cls;

	reload("version: 1\nrules:\n"
	       "  - name: ops-read\n    who: { users: [" H_OPERATOR "] }\n    allow: [read]\n"
	       "defaults:\n  audit: [read]\n");
	ck_assert_int_eq(ask(H_OPERATOR, ts, &cls), MBX_STATUS_INVALID);
	ck_assert_int_eq(cls, MBX_CLASS_READ);
	ts.reason = "\xed\xa0\x80 surrogate";
	ck_assert_int_eq(ask(H_OPERATOR, ts, NULL), MBX_STATUS_INVALID);
	ts.reason = "caf\xc3\xa9 \xe2\x82\xac ticket";
	ck_assert_int_eq(ask(H_OPERATOR, ts, NULL), MBX_STATUS_OK);
	audit = harness_read_file(h.audit);
	ck_assert_ptr_nonnull(audit);
	ck_assert_ptr_nonnull(strstr(audit, "\"reason\":\"caf\xc3\xa9 \xe2\x82\xac ticket\""));
	ck_assert_ptr_null(strstr(audit, "surrogate"));
	free(audit);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy-answers");
	TCase *tc = tcase_create("daemon");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_explain_and_reload_keep_the_bucket);
	tcase_add_test(tc, test_unsupported_only_after_the_policy);
	tcase_add_test(tc, test_early_refusals_report_the_class);
	tcase_add_test(tc, test_reason_must_be_utf8);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
