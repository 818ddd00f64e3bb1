/*
 * Reliability: hostile input under load. One client sends 10,000 malformed
 * frames (random lengths and types, truncated payloads, lies about sizes,
 * messages out of order), each on a new connection since mbxd closes it,
 * while four well-behaved clients of four users pipeline 10,000 valid
 * requests each. mbxd must stay up, answer every valid request correctly,
 * disconnect the malformed client every time, and end with the descriptors
 * and (near enough) the memory it started with. The figures go to the
 * test's output and to figures/load.txt.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
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

#define VALID_PER_CLIENT 10000
#define MALFORMED_FRAMES 10000
#define WINDOW           16
/* Memory may settle a little above where it began (allocator caches): this much. */
#define RSS_SLACK_KIB 4096

static struct harness h;

/* Every request writes a record (audit.all_decisions), the daemon's heaviest audit load. */
static void setup(void)
{
	char *cfg, *at, *fixed;
	FILE *f;

	rel_users();
	harness_init(&h, rel_devices_yaml, rel_policy_yaml);
	cfg = harness_read_file(h.config);
	at = strstr(cfg, "audit: { path: ");
	ck_assert(at && strchr(at, '}'));
	*strchr(at, '}') = '\0';
	ck_assert(asprintf(&fixed, "%s, all_decisions: true }%s", cfg, strchr(at, '\0') + 1) > 0);
	f = fopen(h.config, "w");
	ck_assert(f && fputs(fixed, f) >= 0);
	fclose(f);
	free(fixed);
	free(cfg);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* What one client process reports through its pipe. */
struct tally {
	long sent, answered, correct, wrong, disconnected, with_error, not_closed;
	double seconds;
	long kinds[12];
};

/* Becomes user (groups, gid, uid) in a child. */
static void become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw || initgroups(user, pw->pw_gid) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		_exit(126);
}

/* The two valid requests, alternating: each has one right answer. */
static const struct mbx_request valid_req[2] = {
    {.device = "mem0", .opcode = 0x4000},    /* Identify Memory Device */
    {.device = "switch0", .opcode = 0x5100}, /* Identify Switch Device */
};

struct expect {
	uint8_t *payload;
	size_t len;
};

/* Learns the right answer of each request once, synchronously. */
static bool valid_learn(struct mbx_client *cl, struct expect ex[2])
{
	for (int k = 0; k < 2; k++) {
		struct mbx_reply rep;

		if (mbx_submit(cl, &valid_req[k], &rep) < 0 || rep.result.status != MBX_STATUS_OK ||
		    rep.result.cxl_rc != 0 || !rep.result.payload_len)
			return false;
		ex[k].len = rep.result.payload_len;
		ex[k].payload = malloc(ex[k].len);
		memcpy(ex[k].payload, rep.result.payload, ex[k].len);
		mbx_reply_free(&rep);
	}
	return true;
}

/* Whether a RESULT is exactly what request kind k must get. */
static bool valid_check(const struct mbx_reply *rep, const struct expect *ex)
{
	const struct mbx_result *r = &rep->result;

	return r->status == MBX_STATUS_OK && r->cxl_rc == 0 && r->cls == MBX_CLASS_READ &&
	       r->decision == MBX_DECISION_ALLOW && r->payload_len == ex->len &&
	       memcmp(r->payload, ex->payload, ex->len) == 0;
}

/* One well-behaved client: n requests, WINDOW in flight, every answer checked. */
static void valid_client(const char *socket, long n, struct tally *t)
{
	static int8_t kind_of[1 << 16]; /* tags are 32-bit, but libmbx counts up from 1 */
	struct mbx_client *cl;
	struct expect ex[2];
	double t0 = rel_now();
	long inflight = 0;

	memset(kind_of, -1, sizeof(kind_of));
	if (mbx_open(socket, &cl) < 0 || !valid_learn(cl, ex))
		_exit(110);
	while (t->answered < n) {
		struct mbx_reply rep;
		uint32_t tag;

		while (t->sent < n && inflight < WINDOW) {
			int k = (int)(t->sent & 1);

			if (mbx_send(cl, &valid_req[k], &tag) < 0)
				_exit(111);
			kind_of[tag & 0xffff] = (int8_t)k;
			t->sent++;
			inflight++;
		}
		if (mbx_receive(cl, 30000, &rep, &tag) < 0)
			_exit(112);
		inflight--;
		t->answered++;
		if (kind_of[tag & 0xffff] >= 0 && valid_check(&rep, &ex[kind_of[tag & 0xffff]]))
			t->correct++;
		else
			t->wrong++;
		kind_of[tag & 0xffff] = -1;
		mbx_reply_free(&rep);
	}
	t->seconds = rel_now() - t0;
	mbx_close(cl);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A frame header into f. */
static void frame_header(uint8_t *f, uint32_t len, uint16_t type, uint16_t flags, uint32_t tag)
{
	put_le32(f, len);
	put_le16(f + 4, type);
	put_le16(f + 6, flags);
	put_le32(f + 8, tag);
}

/* A SUBMIT body for mem0 Identify with a payload of plen bytes (claimed: claim). */
static size_t submit_body(uint8_t *b, uint32_t plen, uint32_t claim)
{
	size_t n = 0;

	put_le16(b + n, 4);
	memcpy(b + n + 2, "mem0", 4);
	n += 6;
	put_le16(b + n, 0x4000); /* opcode */
	put_le16(b + n + 2, 0);  /* flags */
	put_le32(b + n + 4, 0);  /* timeout */
	put_le16(b + n + 8, 0);  /* no reason */
	put_le32(b + n + 10, claim);
	n += 14;
	memset(b + n, 0xa5, plen);
	return n + plen;
}

enum bad_kind {
	BAD_TYPE,      /* unknown message type, random length and body */
	BAD_FLAGS,     /* reserved flags set */
	BAD_HUGE,      /* header claims more than the protocol allows */
	BAD_NO_HELLO,  /* SUBMIT before HELLO */
	BAD_NAME_LIE,  /* a string longer than the body holding it */
	BAD_TRUNCATED, /* payload length larger than the bytes that follow */
	BAD_TRAILING,  /* bytes after the message's last field */
	BAD_HELLO_TWICE,
	BAD_VERSIONS,   /* HELLO with min > max */
	BAD_SERVER_MSG, /* a RESULT sent by a client */
	BAD_GARBAGE,    /* random bytes */
	BAD_HALF_FRAME, /* half a body, then the client stops sending */
	BAD_KINDS
};

/* Builds one malformed frame of kind k into f; returns its length; *hello: HELLO first. */
static size_t malformed(enum bad_kind k, uint8_t *f, unsigned *seed, bool *hello)
{
	uint32_t r = (uint32_t)rand_r(seed);
	size_t n;

	*hello = k != BAD_NO_HELLO && k != BAD_VERSIONS;
	switch (k) {
	case BAD_TYPE:
		n = r % 64;
		/* 0, or far above the highest type (the protocol grows: 8 and 9 came later). */
		frame_header(f, (uint32_t)n, (uint16_t)(r & 1 ? 0 : 256 + r % 60000), 0, r);
		memset(f + 12, (int)r, n);
		return 12 + n;
	case BAD_FLAGS:
		n = submit_body(f + 12, 0, 0);
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, (uint16_t)(1 + r % 0xfffe), 1);
		return 12 + n;
	case BAD_HUGE:
		frame_header(f, MBX_BODY_MAX + 1 + r % (1u << 30), MBX_MSG_SUBMIT, 0, 1);
		return 12;
	case BAD_NO_HELLO:
		n = submit_body(f + 12, 0, 0);
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, 0, 1);
		return 12 + n;
	case BAD_NAME_LIE:
		n = submit_body(f + 12, 0, 0);
		put_le16(f + 12, (uint16_t)(n + 1 + r % 1000));
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, 0, 1);
		return 12 + n;
	case BAD_TRUNCATED:
		n = submit_body(f + 12, r % 32, r % 32 + 1 + r % 4096);
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, 0, 1);
		return 12 + n;
	case BAD_TRAILING:
		n = submit_body(f + 12, 4, 4) + 1 + r % 16;
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, 0, 1);
		return 12 + n;
	case BAD_HELLO_TWICE:
	case BAD_VERSIONS:
		put_le16(f + 12, k == BAD_VERSIONS ? 2 : 1);
		put_le16(f + 14, 1);
		put_le16(f + 16, 0);
		frame_header(f, 6, MBX_MSG_HELLO, 0, 1);
		return 18;
	case BAD_SERVER_MSG:
		memset(f + 12, 0, 40);
		frame_header(f, 40, MBX_MSG_RESULT, 0, 1);
		return 52;
	case BAD_GARBAGE:
		n = 12 + r % 200;
		for (size_t i = 0; i < n; i++)
			f[i] = (uint8_t)rand_r(seed);
		f[6] |= 1; /* keep it garbage: a valid header would wait for its body */
		return n;
	case BAD_HALF_FRAME:
	default:
		n = submit_body(f + 12, 64, 64);
		frame_header(f, (uint32_t)n, MBX_MSG_SUBMIT, 0, 1);
		return 12 + n / 2;
	}
}

/* The hostile client: one malformed frame per connection, MALFORMED_FRAMES times. */
static void malformed_client(const char *socket, long n, struct tally *t)
{
	static uint8_t frame[4096];
	unsigned seed = 20261121;
	double t0 = rel_now();

	for (long i = 0; i < n; i++) {
		enum bad_kind k = (enum bad_kind)(rand_r(&seed) % BAD_KINDS);
		bool hello, saw_error;
		size_t len = malformed(k, frame, &seed, &hello);
		int fd = rel_connect(socket, hello);

		if (write(fd, frame, len) != (ssize_t)len)
			_exit(113);
		if (k == BAD_HALF_FRAME)
			shutdown(fd, SHUT_WR); /* the rest never comes */
		t->sent++;
		t->kinds[k]++;
		if (rel_drain_to_eof(fd, 5000, &saw_error)) {
			t->disconnected++;
			t->with_error += saw_error;
		} else {
			t->not_closed++;
		}
		close(fd);
	}
	t->seconds = rel_now() - t0;
}

/* Forks a client as user; its tally comes back through *pipe_out. */
static pid_t spawn(const char *user, bool hostile, long n, int *pipe_out)
{
	int p[2];
	pid_t pid;

	ck_assert(pipe(p) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct tally t = {0};

		close(p[0]);
		become(user);
		if (hostile)
			malformed_client(h.socket, n, &t);
		else
			valid_client(h.socket, n, &t);
		if (write(p[1], &t, sizeof(t)) != sizeof(t))
			_exit(114);
		_exit(0);
	}
	close(p[1]);
	*pipe_out = p[0];
	return pid;
}

/* Waits for a client and reads its tally. */
static void collect(pid_t pid, int fd, struct tally *t)
{
	int status;

	ck_assert(read(fd, t, sizeof(*t)) == sizeof(*t));
	close(fd);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client ended 0x%x", status);
}

/* A short round of both kinds of traffic, so the baseline includes warmed caches. */
static void warm_up(void)
{
	static const char *const users[] = {H_OPERATOR, H_ADMIN, REL_USER3, REL_USER4};
	struct tally t;
	pid_t pid[5];
	int fd[5];

	for (int i = 0; i < 4; i++)
		pid[i] = spawn(users[i], false, 500, &fd[i]);
	pid[4] = spawn(H_OUTSIDER, true, 500, &fd[4]);
	for (int i = 0; i < 5; i++)
		collect(pid[i], fd[i], &t);
}

/* Samples mbxd's RSS until every client has exited (not reaping them); returns the peak. */
static long sample_until_exited(const pid_t *pid, int n, long peak)
{
	struct timespec pause = {0, 20 * 1000 * 1000};

	for (int i = 0; i < n;) {
		siginfo_t si = {0};
		long rss = rel_rss_kib(h.mbxd);

		if (rss > peak)
			peak = rss;
		if (waitid(P_PID, (id_t)pid[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid)
			i++;
		else
			nanosleep(&pause, NULL);
	}
	return peak;
}

static void settle(void)
{
	struct timespec pause = {0, 500 * 1000 * 1000};

	nanosleep(&pause, NULL);
}

START_TEST(test_hostile_client_under_load)
{
	static const char *const users[] = {H_OPERATOR, H_ADMIN, REL_USER3, REL_USER4};
	struct tally v[4], bad, sum = {0};
	long rss0, rss_peak, rss1;
	int fd[5], fds0, fds1;
	long kmin = MALFORMED_FRAMES, kmax = 0;
	pid_t pid[5];
	double t0, secs;
	char out[4096];

	rel_start(&h, NULL, NULL);
	warm_up();
	settle();
	rss0 = rss_peak = rel_rss_kib(h.mbxd);
	fds0 = rel_fd_count(h.mbxd);

	t0 = rel_now();
	for (int i = 0; i < 4; i++)
		pid[i] = spawn(users[i], false, VALID_PER_CLIENT, &fd[i]);
	pid[4] = spawn(H_OUTSIDER, true, MALFORMED_FRAMES, &fd[4]);
	rss_peak = sample_until_exited(pid, 5, rss_peak);
	for (int i = 0; i < 4; i++) {
		collect(pid[i], fd[i], &v[i]);
		sum.sent += v[i].sent;
		sum.answered += v[i].answered;
		sum.correct += v[i].correct;
		sum.wrong += v[i].wrong;
	}
	collect(pid[4], fd[4], &bad);
	secs = rel_now() - t0;
	harness_check_sandbox(&h);
	ck_assert_msg(kill(h.mbxd, 0) == 0, "mbxd died under load");
	settle();
	rss1 = rel_rss_kib(h.mbxd);
	fds1 = rel_fd_count(h.mbxd);

	rel_figure("load.txt", "valid_clients",
		   "4 (users " H_OPERATOR ", " H_ADMIN ", " REL_USER3 ", " REL_USER4 "), window %d",
		   WINDOW);
	rel_figure("load.txt", "valid_requests_sent", "%ld", sum.sent);
	rel_figure("load.txt", "valid_requests_answered_correctly", "%ld of %ld", sum.correct,
		   sum.sent);
	rel_figure("load.txt", "valid_requests_answered_wrongly", "%ld", sum.wrong);
	for (int i = 0; i < 4; i++)
		rel_figure("load.txt", "valid_client_seconds", "%s %.2f s (%.0f requests/s)",
			   users[i], v[i].seconds, (double)v[i].sent / v[i].seconds);
	for (int k = 0; k < BAD_KINDS; k++) {
		kmin = bad.kinds[k] < kmin ? bad.kinds[k] : kmin;
		kmax = bad.kinds[k] > kmax ? bad.kinds[k] : kmax;
	}
	rel_figure("load.txt", "malformed_frames_sent", "%ld (%d kinds, %ld to %ld of each)",
		   bad.sent, (int)BAD_KINDS, kmin, kmax);
	rel_figure("load.txt", "malformed_client_disconnected", "%ld of %ld", bad.disconnected,
		   bad.sent);
	rel_figure("load.txt", "malformed_with_error_frame_first",
		   "%ld of %ld (half frames end "
		   "without one: the client stopped sending)",
		   bad.with_error, bad.sent);
	rel_figure("load.txt", "elapsed_seconds", "%.2f", secs);
	rel_figure("load.txt", "rss_kib", "baseline %ld, peak %ld, after %ld", rss0, rss_peak,
		   rss1);
	rel_figure("load.txt", "descriptors", "baseline %d, after %d", fds0, fds1);

	ck_assert_int_eq(sum.sent, 4 * VALID_PER_CLIENT);
	ck_assert_int_eq(sum.correct, sum.sent);
	ck_assert_int_eq(bad.disconnected, MALFORMED_FRAMES);
	ck_assert_int_eq(bad.with_error, MALFORMED_FRAMES - bad.kinds[BAD_HALF_FRAME]);
	ck_assert_int_eq(fds1, fds0);
#ifndef REL_SANITIZER
	/* AddressSanitizer keeps freed memory in quarantine: RSS says nothing there. */
	ck_assert_msg(rss1 <= rss0 + RSS_SLACK_KIB, "RSS %ld KiB after, %ld KiB before", rss1,
		      rss0);
#endif
	/* Still serving, and the log under load is one intact chain. */
	ck_assert_int_eq(harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL),
			 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", h.audit, NULL) == 0,
	    "%s", out);
	rel_figure("load.txt", "audit_chain_after_load", "%s", strtok(out, "\n"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-load");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	rel_figures_reset("load.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_hostile_client_under_load);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
