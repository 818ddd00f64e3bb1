/*
 * Clients cannot choose a device's health. A SUBMIT's timeout_ms outside
 * limits.client_timeout_min_ms..max_ms is refused; within it, a short one
 * ends only that client's wait (the device keeps its command, its other
 * users are served, the audit records how the command ended), and a long
 * one does not keep a hung device in service: the device's configured
 * timeout alone drives the watchdog.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "harness.h"

/*
 * slow: Get Health Info takes 1.5 s, well inside the device's 3 s timeout.
 * slowts: the same for Set Timestamp (config: audited). hung: Get Health
 * Info hangs 3 s on a device whose timeout is 300 ms.
 */
static const char devices_yaml[] =
    "  - name: slow\n"
    "    transport: sim\n"
    "    timeout_ms: 3000\n"
    "    options: { model: memdev, fault_opcode: 0x4200, fault: hang, hang_ms: 1500 }\n"
    "  - name: slowts\n"
    "    transport: sim\n"
    "    timeout_ms: 3000\n"
    "    options: { model: memdev, fault_opcode: 0x0301, fault: hang, hang_ms: 1500 }\n"
    "  - name: hung\n"
    "    transport: sim\n"
    "    timeout_ms: 300\n"
    "    options: { model: memdev, fault_opcode: 0x4200, fault: hang, hang_ms: 3000 }\n";

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n"
				  "  - name: admin-config\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read, log, config]\n";

static struct harness h;

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	h.limits_yaml = "{ max_inflight: 64, client_timeout_min_ms: 20, "
			"client_timeout_max_ms: 60000 }";
	harness_write_config(&h);
	harness_start(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One timed command and what its answer must be. */
struct call {
	const char *device;
	uint16_t opcode;
	uint32_t timeout_ms;
	unsigned delay_ms; /* before connecting */
	int want_status;
	double max_ms;        /* the answer within this, from sending */
	const char *want_msg; /* in the answer's message, or NULL */
};

static const uint8_t timestamp[8] = {1, 2, 3, 4, 5, 6, 7, 0};

/* As a test user: runs the call; 0 when the answer is as wanted, else 1 with why on stderr. */
static int timed_call(const char *socket, void *arg)
{
	const struct call *c = arg;
	struct timespec delay = {c->delay_ms / 1000, (long)(c->delay_ms % 1000) * 1000000L};
	struct mbx_request req = {
	    .device = c->device, .opcode = c->opcode, .timeout_ms = c->timeout_ms};
	struct mbx_client *cl;
	struct mbx_reply rep;
	double t0, ms;
	int rc;

	if (c->opcode == 0x0301) {
		req.payload = timestamp;
		req.payload_len = sizeof(timestamp);
	}
	nanosleep(&delay, NULL);
	if (mbx_open(socket, &cl) < 0)
		return 100;
	t0 = now_ms();
	rc = mbx_submit(cl, &req, &rep);
	ms = now_ms() - t0;
	mbx_close(cl);
	if (rc < 0)
		return 101;
	rc = rep.result.status != c->want_status || ms > c->max_ms ||
	     (c->want_msg && !strstr(rep.result.message, c->want_msg));
	if (rc)
		fprintf(stderr,
			"%s 0x%04x timeout %u: status %s after %.0f ms (want %s within "
			"%.0f ms): %s\n",
			c->device, c->opcode, c->timeout_ms, mbx_status_name(rep.result.status), ms,
			mbx_status_name(c->want_status), c->max_ms, rep.result.message);
	mbx_reply_free(&rep);
	return rc;
}

/* Runs calls[i] as users[i], all at once; true when every one answered as wanted. */
static bool run_together(const char *const *users, const struct call *calls, size_t n)
{
	pid_t pids[8];
	bool ok = true;
	int status;

	for (size_t i = 0; i < n; i++) {
		struct call c = calls[i];

		pids[i] = fork();
		ck_assert(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(harness_as_user(users[i], timed_call, h.socket, &c));
	}
	for (size_t i = 0; i < n; i++) {
		ck_assert(waitpid(pids[i], &status, 0) == pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "call %zu (%s on %s) failed: status 0x%x\n", i, users[i],
				calls[i].device, status);
			ok = false;
		}
	}
	return ok;
}

/* How many lines of the log hold every one of the needles (NULL-terminated). */
static int count_lines(const char *path, const char *const *needles)
{
	char *text = harness_read_file(path), *save = NULL;
	int n = 0;

	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		bool all = true;

		for (size_t i = 0; needles[i]; i++)
			all = all && strstr(line, needles[i]);
		n += all;
	}
	free(text);
	return n;
}

/* A read-only user's 20 ms timeout ends its wait only: the device and the next user go on. */
START_TEST(test_short_client_timeout_ends_only_its_wait)
{
	const char *const users[] = {H_OPERATOR, H_ADMIN};
	const struct call calls[] = {
	    {"slow", 0x4200, 20, 0, MBX_STATUS_TIMEOUT, 400, "may still complete in the device"},
	    /* Queued behind the operator's command: served when it ends, by the device. */
	    {"slow", 0x4000, 0, 200, MBX_STATUS_OK, 2900, NULL},
	};
	const char *const failed[] = {"marked failed", NULL};
	char out[8192];
	int rc;

	ck_assert_msg(run_together(users, calls, 2), "see stderr");
	ck_assert_int_eq(count_lines(h.log, failed), 0);
	rc = harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "devices", NULL);
	ck_assert_msg(rc == 0 && strstr(out, "slow") && !strstr(out, "failed"),
		      "device state after a client's timeout: %s", out);
}
END_TEST

/* An audited command answered as timed out still gets its result record. */
START_TEST(test_short_timeout_of_audited_command_is_recorded)
{
	const char *const users[] = {H_ADMIN, H_OPERATOR};
	const struct call calls[] = {
	    {"slowts", 0x0301, 50, 0, MBX_STATUS_TIMEOUT, 400, "with its result in the audit log"},
	    {"slowts", 0x4000, 0, 200, MBX_STATUS_OK, 2900, NULL},
	};
	const char *const intent[] = {"\"kind\":\"intent\"", "\"opcode\":\"0x0301\"", NULL};
	const char *const result[] = {"\"kind\":\"result\"", "\"opcode\":\"0x0301\"", NULL};

	ck_assert_msg(run_together(users, calls, 2), "see stderr");
	ck_assert_int_eq(count_lines(h.audit, intent), 1);
	ck_assert_int_eq(count_lines(h.audit, result), 1);
}
END_TEST

/* As a test user: two pipelined reads; the second's timeout passes while it is queued. */
static int queued_then_timed_out(const char *socket, void *arg)
{
	struct mbx_request slow = {.device = "slow", .opcode = 0x4200};
	struct mbx_request quick = {.device = "slow", .opcode = 0x4000, .timeout_ms = 100};
	struct mbx_client *cl;
	struct mbx_reply rep;
	uint32_t t_slow, t_quick, tag;
	int seen = 0, bad = 0;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_send(cl, &slow, &t_slow) < 0 ||
	    mbx_send(cl, &quick, &t_quick) < 0)
		return 100;
	while (seen < 2 && mbx_receive(cl, 5000, &rep, &tag) == 0) {
		seen++;
		if (tag == t_quick && (seen != 1 || rep.result.status != MBX_STATUS_TIMEOUT ||
				       !strstr(rep.result.message, "not sent to the device")))
			bad = 1;
		/* The hang ends as the sim says: its own timeout after 1.5 s. */
		if (tag == t_slow && rep.result.status != MBX_STATUS_TIMEOUT)
			bad = 2;
		if (bad)
			fprintf(stderr, "answer %d (tag %u): %s: %s\n", seen, tag,
				mbx_status_name(rep.result.status), rep.result.message);
		mbx_reply_free(&rep);
	}
	mbx_close(cl);
	return seen == 2 ? bad : 3;
}

START_TEST(test_queued_command_past_client_timeout_never_runs)
{
	ck_assert_int_eq(harness_as_user(H_OPERATOR, queued_then_timed_out, h.socket, NULL), 0);
}
END_TEST

/* Out of range is refused as invalid, naming the range; nothing reaches the device. */
START_TEST(test_client_timeout_out_of_range_is_refused)
{
	const uint32_t bad[] = {1, 19, 60001, 0xFFFFFFFFu};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct call c = {"slow",
				 0x4000,
				 bad[i],
				 0,
				 MBX_STATUS_INVALID,
				 1000,
				 "outside this server's range of 20 to 60000 ms"};

		ck_assert_msg(harness_as_user(H_OPERATOR, timed_call, h.socket, &c) == 0,
			      "timeout_ms %u", bad[i]);
	}
	struct call ok = {"slow", 0x4000, 60000, 0, MBX_STATUS_OK, 1000, NULL};

	ck_assert_int_eq(harness_as_user(H_OPERATOR, timed_call, h.socket, &ok), 0);
}
END_TEST

/*
 * The longest allowed timeout does not keep a hung device in service: the
 * requester is answered at the device's 300 ms (plus the watchdog's grace),
 * and another user is told the device failed at once, not after the hang.
 */
START_TEST(test_long_client_timeout_does_not_keep_a_hung_device)
{
	const char *const users[] = {H_OPERATOR, H_ADMIN};
	const struct call calls[] = {
	    {"hung", 0x4200, 60000, 0, MBX_STATUS_TIMEOUT, 2500, "the device is marked failed"},
	    {"hung", 0x4000, 0, 1800, MBX_STATUS_DEVICE_ERROR, 500, NULL},
	};

	ck_assert_msg(run_together(users, calls, 2), "see stderr");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timeouts");
	TCase *tc = tcase_create("timeouts");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_short_client_timeout_ends_only_its_wait);
	tcase_add_test(tc, test_short_timeout_of_audited_command_is_recorded);
	tcase_add_test(tc, test_queued_command_past_client_timeout_never_runs);
	tcase_add_test(tc, test_client_timeout_out_of_range_is_refused);
	tcase_add_test(tc, test_long_client_timeout_does_not_keep_a_hung_device);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
