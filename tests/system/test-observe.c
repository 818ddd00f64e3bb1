/*
 * Observation needs permission: a device, its background operations'
 * EVENTs and its metrics are shown only to users the policy lets use it
 * (policy_may_see_device). Every observation path (DEVICES, WATCH and its
 * EVENTs, METRICS) is tried by a user with no rules, a user with rights on
 * one device only and an administrator; a reload that takes a right away
 * ends that user's WATCH.
 */
#include <errno.h>
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

static const char devices_yaml[] =
    "  - name: mem0\n"
    "    transport: sim\n"
    "    options: { model: memdev, serial: 0x1111, sanitize_ms: 600 }\n"
    "  - name: mem1\n"
    "    transport: sim\n"
    "    options: { model: memdev, serial: 0x2222, sanitize_ms: 600 }\n";

/* The operator may read mem1 only; the outsider has no rule; the admin has mem*. */
#define POLICY_HEAD                                                                                \
	"version: 1\n"                                                                             \
	"rules:\n"                                                                                 \
	"  - name: admin-data\n"                                                                   \
	"    who: { users: [" H_ADMIN "] }\n"                                                      \
	"    devices: [\"mem*\"]\n"                                                                \
	"    allow: [read, log, config, data]\n"                                                   \
	"  - name: no-sanitize-for-outsiders\n"                                                    \
	"    who: { users: [" H_OUTSIDER "] }\n"                                                   \
	"    devices: [\"mem*\"]\n"                                                                \
	"    deny_opcodes: [0x4400]\n"
static const char policy_yaml[] = POLICY_HEAD "  - name: operators-mem1\n"
					      "    who: { groups: [" H_OPS_GROUP "] }\n"
					      "    devices: [mem1]\n"
					      "    allow_opcodes: [0x4000, 0x4200]\n";
/* After the reload: the operator's rule is gone. */
static const char policy_without_operator[] = POLICY_HEAD;

static struct harness h;

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	harness_start(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* What a user should see: a bit per device (1: mem0, 2: mem1). */
struct sight {
	unsigned devices;
};

/* As a user: exit with the DEVICES bits, +4 when the list has anything else, 100+ on failure. */
static int devices_seen(const char *socket, void *arg)
{
	struct mbx_device_desc *list;
	struct mbx_client *cl;
	size_t n;
	int bits = 0;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_devices(cl, &list, &n) < 0)
		return 100;
	for (size_t i = 0; i < n; i++)
		bits |= !strcmp(list[i].name, "mem0") ? 1 : !strcmp(list[i].name, "mem1") ? 2 : 4;
	free(list);
	mbx_close(cl);
	return bits;
}

/* As a user: exit with a bit per device that METRICS has series of (+4: mbxd_devices wrong). */
static int metrics_seen(const char *socket, void *arg)
{
	struct mbx_client *cl;
	char *text, want[64];
	int bits = 0, n = 0;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_metrics(cl, &text) < 0)
		return 100;
	bits |= strstr(text, "device=\"mem0\"") ? 1 : 0;
	bits |= strstr(text, "device=\"mem1\"") ? 2 : 0;
	n = (bits & 1) + (bits >> 1 & 1);
	snprintf(want, sizeof(want), "\nmbxd_devices %d\n", n);
	if (!strstr(text, want))
		bits |= 4;
	free(text);
	mbx_close(cl);
	return bits;
}

/* As a user: exit with a bit per device WATCH accepts, 4+ on anything but ok or denied. */
static int watch_accepted(const char *socket, void *arg)
{
	static const char *const names[] = {"mem0", "mem1"};
	struct mbx_client *cl;
	int bits = 0;

	(void)arg;
	for (int i = 0; i < 2; i++) {
		uint32_t tag;
		int rc;

		if (mbx_open(socket, &cl) < 0)
			return 100;
		rc = mbx_watch(cl, names[i], &tag);
		if (rc == 0)
			bits |= 1 << i;
		else if (rc != -EACCES)
			bits |= 4;
		mbx_close(cl);
	}
	return bits;
}

START_TEST(test_devices_metrics_watch_follow_the_policy)
{
	static const struct {
		const char *user;
		int bits;
	} who[] = {{H_OUTSIDER, 0}, {H_OPERATOR, 2}, {H_ADMIN, 3}};

	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		ck_assert_msg(
		    harness_as_user(who[i].user, devices_seen, h.socket, NULL) == who[i].bits,
		    "%s: DEVICES shows bits %d, want %d", who[i].user,
		    harness_as_user(who[i].user, devices_seen, h.socket, NULL), who[i].bits);
		ck_assert_msg(
		    harness_as_user(who[i].user, metrics_seen, h.socket, NULL) == who[i].bits,
		    "%s: METRICS shows bits %d, want %d", who[i].user,
		    harness_as_user(who[i].user, metrics_seen, h.socket, NULL), who[i].bits);
		ck_assert_msg(
		    harness_as_user(who[i].user, watch_accepted, h.socket, NULL) == who[i].bits,
		    "%s: WATCH accepted bits %d, want %d", who[i].user,
		    harness_as_user(who[i].user, watch_accepted, h.socket, NULL), who[i].bits);
	}
}
END_TEST

/* As the admin: Sanitize on the device in arg, then wait for its completion. */
static int sanitize(const char *socket, void *arg)
{
	struct mbx_request req = {.device = arg, .opcode = 0x4400, .reason = "CHG-1"};
	struct mbx_client *cl;
	struct mbx_reply rep;
	struct mbx_event ev;
	uint32_t tag;

	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 100;
	if (rep.result.status != MBX_STATUS_OK || rep.result.cxl_rc != 1)
		return 101;
	mbx_reply_free(&rep);
	do {
		if (mbx_next_event(cl, 10000, &ev, &tag) < 0)
			return 102;
	} while (ev.kind != MBX_EVENT_COMPLETE);
	mbx_close(cl);
	return 0;
}

/* A watcher's plan: the device, and pipes to say it is ready and what it saw. */
struct watcher {
	const char *device;
	int ready;  /* write end: one byte once the WATCH is answered */
	int go;     /* read end: one byte per phase to end */
	int report; /* write end: events seen in each phase */
};

/*
 * As a user: WATCHes the device (exit 200 when refused), then for each byte
 * on go counts the EVENTs that came meanwhile (waiting 1 s after the byte
 * for late ones) and writes the count to report. Exits 0 at EOF on go.
 */
static int watch_and_count(const char *socket, void *arg)
{
	const struct watcher *w = arg;
	struct mbx_client *cl;
	struct mbx_event ev;
	uint32_t tag;
	char c = 0;
	int rc;

	if (mbx_open(socket, &cl) < 0)
		return 100;
	rc = mbx_watch(cl, w->device, &tag);
	c = rc == 0 ? 'y' : 'n';
	if (write(w->ready, &c, 1) != 1)
		return 101;
	while (read(w->go, &c, 1) == 1) {
		unsigned char n = 0;

		while (mbx_next_event(cl, 1000, &ev, &tag) == 0)
			n++;
		if (write(w->report, &n, 1) != 1)
			return 102;
	}
	mbx_close(cl);
	return rc == 0 ? 0 : 200;
}

/* A running watcher, as the test drives it. */
struct watching {
	pid_t pid;
	int ready, go, report; /* the parent's ends */
};

/* The parent's ends of the watchers started so far, which later watchers must not hold. */
static int open_fds[32];
static int n_open;

static void watching_start(struct watching *x, const char *user, const char *device)
{
	int r[2], g[2], p[2];
	char c;

	ck_assert(pipe(r) == 0 && pipe(g) == 0 && pipe(p) == 0);
	x->pid = fork();
	ck_assert(x->pid >= 0);
	if (x->pid == 0) {
		struct watcher w = {device, r[1], g[0], p[1]};

		/* Only its own ends: an earlier watcher's go must reach EOF when the parent closes
		 * it. */
		for (int fd = 3; fd < 1024; fd++)
			if (fd != r[1] && fd != g[0] && fd != p[1])
				close(fd);
		_exit(harness_as_user(user, watch_and_count, h.socket, &w));
	}
	close(r[1]);
	close(g[0]);
	close(p[1]);
	open_fds[n_open++] = r[0];
	open_fds[n_open++] = g[1];
	open_fds[n_open++] = p[0];
	x->ready = r[0];
	x->go = g[1];
	x->report = p[0];
	ck_assert(read(x->ready, &c, 1) == 1);
}

/* Ends a phase: how many EVENTs the watcher saw in it. */
static int watching_count(struct watching *x)
{
	unsigned char n;

	ck_assert(write(x->go, "g", 1) == 1);
	ck_assert(read(x->report, &n, 1) == 1);
	return n;
}

static int watching_stop(struct watching *x)
{
	int status;

	close(x->go);
	ck_assert(waitpid(x->pid, &status, 0) == x->pid);
	close(x->ready);
	close(x->report);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The administrator's Sanitize of mem0 reaches its own watcher only. */
START_TEST(test_events_only_to_users_who_may_see_the_device)
{
	struct watching outsider, operator, admin;

	watching_start(&outsider, H_OUTSIDER, "mem0");
	watching_start(&operator, H_OPERATOR, "mem0");
	watching_start(&admin, H_ADMIN, "mem0");
	ck_assert_int_eq(harness_as_user(H_ADMIN, sanitize, h.socket, "mem0"), 0);
	ck_assert_int_eq(watching_count(&outsider), 0);
	ck_assert_int_eq(watching_count(&operator), 0);
	ck_assert_int_ge(watching_count(&admin), 2); /* at least the start and the end */
	ck_assert_int_eq(watching_stop(&outsider), 200);
	ck_assert_int_eq(watching_stop(&operator), 200);
	ck_assert_int_eq(watching_stop(&admin), 0);
}
END_TEST

/* A reload that takes the operator's rule away ends its watch; its connection goes on. */
START_TEST(test_reload_that_removes_the_right_ends_the_watch)
{
	struct watching operator;

	watching_start(&operator, H_OPERATOR, "mem1");
	ck_assert_int_eq(harness_as_user(H_ADMIN, sanitize, h.socket, "mem1"), 0);
	ck_assert_int_ge(watching_count(&operator), 2);
	harness_write_policy(&h, policy_without_operator);
	harness_signal(&h, SIGHUP);
	for (int i = 0; i < 250; i++) {
		char *log = harness_read_file(h.log);
		bool ended = log && strstr(log, "see mem1: watch ended");

		free(log);
		if (ended)
			break;
		ck_assert_msg(i < 249, "mbxd never ended the operator's watch");
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	}
	ck_assert_int_eq(harness_as_user(H_ADMIN, sanitize, h.socket, "mem1"), 0);
	ck_assert_int_eq(watching_count(&operator), 0);
	ck_assert_int_eq(watching_stop(&operator), 0);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, devices_seen, h.socket, NULL), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("observe");
	TCase *tc = tcase_create("observe");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_devices_metrics_watch_follow_the_policy);
	tcase_add_test(tc, test_events_only_to_users_who_may_see_the_device);
	tcase_add_test(tc, test_reload_that_removes_the_right_ends_the_watch);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
