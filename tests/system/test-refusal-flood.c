/*
 * System test of refusal pacing: one user's flood of refused requests is
 * paced at limits.max_refusals_per_s (mbxd stops reading that user's
 * connection for a while), while every one of its requests still gets its
 * full answer, in order, and another user's requests during the flood are
 * answered. A real, sandboxed mbxd and clients under real, different uids.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "harness.h"

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev }\n";

/* The outsider has no rule: everything it sends is denied. */
static const char policy_yaml[] = "version: 1\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

#define BOUND    500  /* limits.max_refusals_per_s */
#define FLOOD_N  2000 /* the flood's requests: its burst of BOUND, then 3 s paced */
#define INFLIGHT 64
#define QUIET_N  20

/* What the flooding child reports: answers so far, and when each came (ns). */
struct flood_report {
	volatile int got;
	int bad_at; /* -1, or the first answer that was wrong or out of order */
	uint64_t at_ns[FLOOD_N];
};

static struct harness h;
static struct flood_report *rep;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	h.limits_yaml = "{ max_inflight: 64, max_queue_per_user: 32, max_refusals_per_s: 500 }";
	harness_write_config(&h);
	rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(rep != MAP_FAILED);
	rep->bad_at = -1;
}

static void teardown(void)
{
	harness_cleanup(&h);
	munmap(rep, sizeof(*rep));
}

/* As the flooder: FLOOD_N Identifys, INFLIGHT at a time; each answer denied and in order. */
static int flood(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x0001};
	static uint32_t tags[FLOOD_N];
	int sent = 0, got = 0;
	struct mbx_client *c;
	struct mbx_reply r;
	uint32_t tag;

	(void)arg;
	if (mbx_open(socket, &c) < 0)
		return 100;
	while (got < FLOOD_N) {
		while (sent - got < INFLIGHT && sent < FLOOD_N)
			if (mbx_send(c, &req, &tags[sent++]) < 0)
				return 101;
		if (mbx_receive(c, 30000, &r, &tag) < 0)
			return 102;
		rep->at_ns[got] = now_ns();
		if (rep->bad_at < 0 &&
		    (tag != tags[got] || r.result.status != MBX_STATUS_DENIED ||
		     r.result.decision != MBX_DECISION_DENY || !r.result.message[0]))
			rep->bad_at = got;
		mbx_reply_free(&r);
		rep->got = ++got;
	}
	mbx_close(c);
	return 0;
}

/* As the quiet user: QUIET_N Identifys, one at a time, each answered ok. */
static int quiet(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x0001};
	struct mbx_client *c;
	struct mbx_reply r;

	(void)arg;
	if (mbx_open(socket, &c) < 0)
		return 100;
	for (int i = 0; i < QUIET_N; i++) {
		if (mbx_submit(c, &req, &r) < 0)
			return 101;
		if (r.result.status != MBX_STATUS_OK)
			return 102;
		mbx_reply_free(&r);
	}
	mbx_close(c);
	return 0;
}

/* Times "reading paused" is in mbxd's log. */
static int paused_lines(void)
{
	char *log = harness_read_file(h.log);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, "refusals/s, reading paused")); p++)
		n++;
	free(log);
	return n;
}

/*
 * A flood of denied requests: every answer comes, in order; past its burst
 * the flooder is answered at about the bound (under 3x over the rest, with
 * no lower bound: the machine is shared); another user is answered during
 * it; one episode is logged once, not per refusal.
 */
START_TEST(test_flood_paced)
{
	uint64_t span_ns;
	double rate;
	pid_t pid;
	int st, n_q;

	harness_start(&h);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(harness_as_user(H_OUTSIDER, flood, h.socket, NULL));
	while (rep->got < BOUND + 100 && waitpid(pid, &st, WNOHANG) == 0)
		usleep(1000);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, quiet, h.socket, NULL), 0);
	n_q = rep->got;
	ck_assert(waitpid(pid, &st, 0) == pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "flooder exited %d",
		      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	ck_assert_msg(rep->bad_at < 0, "answer %d was wrong or out of order", rep->bad_at);
	ck_assert_int_eq(rep->got, FLOOD_N);
	span_ns = rep->at_ns[FLOOD_N - 1] - rep->at_ns[BOUND + 100];
	rate = (FLOOD_N - 1 - BOUND - 100) * 1e9 / (double)(span_ns ? span_ns : 1);
	fprintf(stderr,
		"flood: %d answers past the burst at %.0f/s (bound %d/s); the quiet "
		"user's %d reads done with %d flood answers in\n",
		FLOOD_N - 1 - BOUND - 100, rate, BOUND, QUIET_N, n_q);
	ck_assert_msg(rate < 3.0 * BOUND,
		      "the flood was answered at %.0f/s, over 3x the bound "
		      "of %d/s",
		      rate, BOUND);
	ck_assert_msg(n_q < FLOOD_N, "the quiet user was answered only after the flood");
	ck_assert_int_ge(paused_lines(), 1);
	ck_assert_int_le(paused_lines(), 3);
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("refusal-flood");
	TCase *tc = tcase_create("pace");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_flood_paced);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
