/*
 * Reliability: per-user limits. Clients of four users that send requests as
 * fast as the socket takes them and never read an answer keep mbxd's memory
 * under the bound docs/config.md computes from the limits (backpressure:
 * mbxd stops reading a client at limits.max_pending_kib); a user's
 * connections beyond limits.max_clients_per_user are refused with ERROR
 * limit while another user connects and is served; connections that never
 * say HELLO are closed with ERROR timeout. Figures go to figures/limits.txt.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "rel.h"

#if defined(__SANITIZE_ADDRESS__)
#define REL_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REL_SANITIZER 1
#endif
#endif

#define PER_USER    8
#define PENDING_KIB 256
#define N_USERS     4
#define FLOOD_MS    3000
/*
 * docs/config.md's bound for one connection with these limits and two 4 KiB
 * mailboxes: max_pending_kib, plus one request or answer past it (a METRICS
 * answer or one request's reservation, 12 KiB here), plus one input frame
 * (8 KiB), plus 64 KiB for the session, its buffers and the allocator.
 */
#define CONN_BOUND_KIB (PENDING_KIB + 12 + 8 + 64)
/* The allocator keeps some of what it was given; the load test allows as much. */
#define RSS_SLACK_KIB 4096

static struct harness h;

/* Anyone reads; the admin may also Sanitize (for a background operation to watch). */
static const char policy_yaml[] = "version: 1\n"
				  "rules:\n"
				  "  - name: everyone-reads\n"
				  "    who: any\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n"
				  "  - name: admin-data\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [mem0]\n"
				  "    allow: [data]\n";

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev, sanitize_ms: 1500 }\n"
				   "  - name: switch0\n"
				   "    transport: sim\n"
				   "    options: { model: switch }\n";

static void setup(void)
{
	rel_users();
	harness_init(&h, devices_yaml, policy_yaml);
	h.limits_yaml = "{ max_inflight: 64, max_clients: 200, max_clients_per_user: 8, "
			"max_pending_kib: 256, hello_timeout_ms: 500 }";
	harness_write_config(&h);
	rel_start(&h, NULL, NULL);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* Appends one request of the flood's mix, by number. */
static void flood_frame(struct mbx_wbuf *w, unsigned i)
{
	struct mbx_submit m = {.device = "mem0", .opcode = 0x4000};
	int rc;

	switch (i % 4) {
	case 0:
		rc = mbx_encode_metrics_req(w, i);
		break;
	case 1:
		rc = mbx_encode_submit(w, MBX_MSG_SUBMIT, i, &m);
		break;
	case 2:
		rc = mbx_encode_submit(w, MBX_MSG_EXPLAIN, i, &m);
		break;
	default:
		rc = mbx_encode_devices_req(w, i);
		break;
	}
	if (rc < 0)
		abort();
}

/* The first frame on fd within ms: its ERROR code, 0 for another frame, -1 for none. */
static int first_error(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint8_t hdr[MBX_HEADER_SIZE], body[1024];
	struct mbx_header hd;
	struct mbx_error e;

	if (poll(&p, 1, ms) <= 0 || recv(fd, hdr, sizeof(hdr), MSG_WAITALL) != sizeof(hdr) ||
	    mbx_decode_header(hdr, &hd) < 0)
		return -1;
	if (hd.type != MBX_MSG_ERROR)
		return 0;
	if (hd.length > sizeof(body) || recv(fd, body, hd.length, MSG_WAITALL) != hd.length ||
	    mbx_decode_error(body, hd.length, &e) < 0)
		return -1;
	fprintf(stderr, "ERROR %u: %s\n", e.code, e.message);
	return e.code;
}

/* What a flooding user's process reports back, through a pipe. */
struct flood_report {
	unsigned long frames; /* requests written */
	unsigned blocked;     /* connections whose writes mbxd stopped taking */
	int extra_error;      /* the ERROR code the connection past the limit got */
};

/* A flooding user: its pipes to the test. */
struct flood_arg {
	int report; /* write end */
	int hold;   /* read end: EOF means let go */
};

/*
 * As a user: opens PER_USER connections, says HELLO on each, then writes
 * requests on all of them for FLOOD_MS, never reading an answer; then tries
 * one connection more, reports, and holds everything open until told.
 */
static int flood_user(const char *socket, void *arg)
{
	const struct flood_arg *a = arg;
	struct flood_report rep = {0};
	struct mbx_wbuf w;
	size_t off[PER_USER] = {0};
	int fd[PER_USER], extra;
	struct timespec t0, t;
	unsigned n = 0;
	char c;

	signal(SIGPIPE, SIG_IGN);
	mbx_wbuf_init(&w);
	for (unsigned i = 0; i < 4096; i++)
		flood_frame(&w, i);
	for (int i = 0; i < PER_USER; i++) {
		fd[i] = rel_connect(socket, true);

		fcntl(fd[i], F_SETFL, O_NONBLOCK);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (int i = 0; i < PER_USER; i++) {
			ssize_t k = send(fd[i], w.data + off[i], w.len - off[i], MSG_DONTWAIT);

			if (k > 0) {
				off[i] = (off[i] + (size_t)k) % w.len;
				n += (unsigned)k;
			}
		}
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < FLOOD_MS);
	/* A connection whose writes still do not go through is held back by mbxd. */
	for (int i = 0; i < PER_USER; i++)
		rep.blocked += send(fd[i], w.data, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
	rep.frames = n / 12; /* about: most of the mix is 12-byte frames */
	extra = rel_connect(socket, false);
	rep.extra_error = first_error(extra, 2000);
	close(extra);
	if (write(a->report, &rep, sizeof(rep)) != sizeof(rep))
		return 1;
	(void)!read(a->hold, &c, 1);
	mbx_wbuf_free(&w);
	return 0;
}

/* As the outsider, while others flood: one Identify, answered in time. */
static int served(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4000};
	struct mbx_client *cl;
	struct mbx_reply rep;
	double t0 = rel_now();
	int rc;

	(void)arg;
	if (mbx_open(socket, &cl) < 0)
		return 100;
	rc = mbx_submit(cl, &req, &rep);
	mbx_close(cl);
	if (rc < 0)
		return 101;
	rc = rep.result.status;
	mbx_reply_free(&rep);
	return rc == 0 && rel_now() - t0 < 2.0 ? 0 : 102;
}

START_TEST(test_clients_that_never_read_stay_under_the_bound)
{
	static const char *const users[N_USERS] = {H_OPERATOR, H_ADMIN, REL_USER3, REL_USER4};
	struct flood_report rep[N_USERS];
	int report[N_USERS], hold[N_USERS];
	pid_t pid[N_USERS];
	long rss0, peak, bound;
	unsigned long frames = 0;

	rss0 = peak = rel_rss_kib(h.mbxd);
	for (int i = 0; i < N_USERS; i++) {
		int r[2], g[2];

		ck_assert(pipe(r) == 0 && pipe(g) == 0);
		pid[i] = fork();
		ck_assert(pid[i] >= 0);
		if (pid[i] == 0) {
			struct flood_arg a = {r[1], g[0]};

			/* Not the earlier floods' ends: their hold must reach EOF when closed. */
			for (int j = 0; j < i; j++) {
				close(report[j]);
				close(hold[j]);
			}
			close(r[0]);
			close(g[1]);
			_exit(harness_as_user(users[i], flood_user, h.socket, &a));
		}
		close(r[1]);
		close(g[0]);
		report[i] = r[0];
		hold[i] = g[1];
	}
	for (int i = 0; i < N_USERS; i++) {
		struct pollfd p = {.fd = report[i], .events = POLLIN};

		while (poll(&p, 1, 20) == 0) {
			long rss = rel_rss_kib(h.mbxd);

			peak = rss > peak ? rss : peak;
		}
		ck_assert(read(report[i], &rep[i], sizeof(rep[i])) == sizeof(rep[i]));
		frames += rep[i].frames;
	}
	/* Everyone's connections are open and full: another user is still served. */
	ck_assert_int_eq(harness_as_user(H_OUTSIDER, served, h.socket, NULL), 0);
	peak = rel_rss_kib(h.mbxd) > peak ? rel_rss_kib(h.mbxd) : peak;
	for (int i = 0; i < N_USERS; i++) {
		int status;

		close(hold[i]);
		ck_assert(waitpid(pid[i], &status, 0) == pid[i] && WIFEXITED(status) &&
			  WEXITSTATUS(status) == 0);
		close(report[i]);
	}
	bound = (long)N_USERS * PER_USER * CONN_BOUND_KIB;
	rel_figures_reset("limits.txt");
	rel_figure("limits.txt", "never_reading_clients", "%d (%d users x %d)", N_USERS * PER_USER,
		   N_USERS, PER_USER);
	rel_figure("limits.txt", "requests_written", "about %lu", frames);
	rel_figure("limits.txt", "rss_growth_kib", "%ld (documented bound %ld)", peak - rss0,
		   bound);
	printf("%d never-reading clients wrote about %lu requests; mbxd grew %ld KiB (bound "
	       "%ld KiB)\n",
	       N_USERS * PER_USER, frames, peak - rss0, bound);
	for (int i = 0; i < N_USERS; i++) {
		if (rep[i].extra_error != MBX_ERROR_LIMIT) {
			char *log = harness_read_file(h.log);
			fprintf(stderr, "%s\n", log);
		}
		ck_assert_msg(rep[i].extra_error == MBX_ERROR_LIMIT,
			      "%s's connection past the limit got %d, not ERROR limit", users[i],
			      rep[i].extra_error);
		ck_assert_msg(rep[i].blocked == PER_USER,
			      "%s: %u of %d connections held back by mbxd", users[i],
			      rep[i].blocked, PER_USER);
	}
#ifndef REL_SANITIZER
	ck_assert_msg(peak - rss0 <= bound + RSS_SLACK_KIB,
		      "mbxd grew %ld KiB for %d clients that never read (bound %ld KiB)",
		      peak - rss0, N_USERS * PER_USER, bound);
#endif
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

/*
 * Connections that never say HELLO: one user's beyond its limit are refused
 * with ERROR limit at once, the rest are closed with ERROR timeout at the
 * HELLO deadline, and then the user connects and is served again.
 */
START_TEST(test_silent_connections_are_limited_and_timed_out)
{
	int fd[PER_USER], extra;
	double t0 = rel_now();

	/* The start-up probe's connections may still be open for a moment. */
	nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
	/* As root (no exemption): raw connections that never say HELLO. */
	for (int i = 0; i < PER_USER; i++)
		fd[i] = rel_connect(h.socket, false);
	extra = rel_connect(h.socket, false);
	ck_assert_int_eq(first_error(extra, 1000), MBX_ERROR_LIMIT);
	close(extra);
	/* Another user is not affected by root's limit. */
	ck_assert_int_eq(harness_as_user(H_OUTSIDER, served, h.socket, NULL), 0);
	for (int i = 0; i < PER_USER; i++) {
		ck_assert_int_eq(first_error(fd[i], 3000), MBX_ERROR_TIMEOUT);
		close(fd[i]);
	}
	ck_assert_msg(rel_now() - t0 < 3.0, "the HELLO deadline of 500 ms took %.1f s",
		      rel_now() - t0);
	/* The slots are free again. */
	nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	extra = rel_connect(h.socket, true);
	close(extra);
}
END_TEST

/* As the admin: Sanitize mem0 and wait for its completion EVENT. */
static int sanitize(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4400, .reason = "CHG-2"};
	struct mbx_client *cl;
	struct mbx_reply rep;
	struct mbx_event ev;
	uint32_t tag;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0 ||
	    rep.result.status != MBX_STATUS_OK || rep.result.cxl_rc != 1)
		return 100;
	mbx_reply_free(&rep);
	do {
		if (mbx_next_event(cl, 10000, &ev, &tag) < 0)
			return 101;
	} while (ev.kind != MBX_EVENT_COMPLETE);
	mbx_close(cl);
	return 0;
}

/*
 * A watcher that stops reading (and keeps asking until mbxd stops reading
 * it) while an operation runs from start to end: its EVENTs wait, progress
 * replaced by progress, and once it reads again the completion is there.
 */
START_TEST(test_events_of_a_watcher_at_its_bound_keep_the_completion)
{
	struct mbx_watch m = {.device = "mem0"};
	uint8_t buf[1 << 16];
	struct mbx_wbuf w;
	size_t have = 0;
	int fd = rel_connect(h.socket, true), complete = 0, errors = 0, events = 0;
	double t0;

	mbx_wbuf_init(&w);
	ck_assert(mbx_encode_watch(&w, 7, &m) == 0);
	for (unsigned i = 0; i < 2048; i++)
		ck_assert(mbx_encode_metrics_req(&w, 100 + i) == 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* Write until mbxd has stopped reading us: no progress for 300 ms. */
	for (size_t off = 0, idle = 0; off < w.len && idle < 60;) {
		ssize_t k = send(fd, w.data + off, w.len - off, MSG_DONTWAIT);

		idle = k > 0 ? 0 : idle + 1;
		off += k > 0 ? (size_t)k : 0;
		nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
	}
	ck_assert_int_eq(harness_as_user(H_ADMIN, sanitize, h.socket, NULL), 0);
	/* Now read everything: answers, then the held EVENTs. */
	t0 = rel_now();
	while (!complete && rel_now() - t0 < 20) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct mbx_header hd;
		ssize_t k;

		if (poll(&p, 1, 1000) <= 0)
			continue;
		k = read(fd, buf + have, sizeof(buf) - have);
		if (k <= 0)
			break;
		have += (size_t)k;
		while (have >= MBX_HEADER_SIZE && mbx_decode_header(buf, &hd) == 0 &&
		       have >= MBX_HEADER_SIZE + hd.length) {
			struct mbx_event ev;

			if (hd.type == MBX_MSG_ERROR)
				errors++;
			if (hd.type == MBX_MSG_EVENT && hd.tag == 7 &&
			    mbx_decode_event(buf + MBX_HEADER_SIZE, hd.length, &ev) == 0) {
				events++;
				complete += ev.kind == MBX_EVENT_COMPLETE && ev.opcode == 0x4400;
			}
			memmove(buf, buf + MBX_HEADER_SIZE + hd.length,
				have - MBX_HEADER_SIZE - hd.length);
			have -= MBX_HEADER_SIZE + hd.length;
		}
	}
	rel_figure("limits.txt", "held_events_delivered", "%d, completion %s", events,
		   complete ? "delivered" : "lost");
	ck_assert_int_eq(errors, 0);
	ck_assert_msg(complete == 1, "the completion EVENT never came (%d EVENTs)", events);
	mbx_wbuf_free(&w);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("limits");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_clients_that_never_read_stay_under_the_bound);
	tcase_add_test(tc, test_silent_connections_are_limited_and_timed_out);
	tcase_add_test(tc, test_events_of_a_watcher_at_its_bound_keep_the_completion);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
