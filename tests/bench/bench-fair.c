/*
 * Fairness: on slow0 (BENCH_SERVICE_US per command), a quiet user (this
 * process) sends one request at a time, alone and while another user (a
 * child under a different uid) keeps 64 requests in flight. The per-user
 * round-robin queue should cost the quiet user at most one service time
 * (the flood's command already in the device) plus a little broker time.
 *
 * The two cases alternate in FAIR_ROUNDS rounds, so a slow moment of the
 * (shared, virtual) machine lands in both rather than in one. The device's
 * service time is reported as configured and as mbxd measured it around
 * the transport call for the quiet user's own commands: a sleep of 100 us
 * takes longer in a virtual machine, with a long tail.
 */
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbx/mbx.h>

#include "bench.h"

#define FAIR_FLOOD_UID   60001 /* no passwd entry needed: mbxd names it "#60001" */
#define FAIR_FLOOD_DEPTH 64
#define FAIR_ROUNDS      10

/* The quiet user's samples: round trips, and the device time of each. */
struct fair_quiet {
	struct stats rtt;
	struct stats service;
};

/* Whether the parent has asked the flood to stop. */
static bool fair_stop_asked(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

/* The flooding child: its own uid, depth requests in flight until told to stop. */
static void fair_flood(const char *socket, const struct bench_flooder *f, int ready_fd, int stop_fd)
{
	struct mbx_client *c;
	struct mbx_reply reply;
	uint64_t done = 0, t0;
	size_t inflight = 0;
	uint32_t tag;
	double rps;

	if ((f->nice && nice(f->nice) == -1) || setgroups(0, NULL) < 0 ||
	    setresgid(f->uid, f->uid, f->uid) < 0 || setresuid(f->uid, f->uid, f->uid) < 0 ||
	    bench_rtt_open(socket, &c) < 0)
		_exit(1);
	t0 = stats_now_ns();
	while (done % 16 != 0 || !fair_stop_asked(stop_fd)) {
		while (inflight < f->depth && mbx_send(c, &f->req, &tag) == 0)
			inflight++;
		if (mbx_receive(c, 30000, &reply, &tag) < 0)
			_exit(2);
		mbx_reply_free(&reply);
		inflight--;
		if (++done == f->depth && write(ready_fd, "r", 1) != 1)
			_exit(3);
	}
	rps = (double)done / ((double)(stats_now_ns() - t0) / 1e9);
	if (write(ready_fd, &rps, sizeof(rps)) != sizeof(rps))
		_exit(3);
	mbx_close(c);
	_exit(0);
}

/* n round trips of the quiet user after a warm-up, each with its device time. */
static int fair_quiet_run(const char *socket, size_t n, struct fair_quiet *q)
{
	struct mbx_client *c;
	int rc = bench_rtt_open(socket, &c);

	if (rc < 0)
		return rc;
	rc = bench_rtt_timed(c, BENCH_SLOW, 20, n, &q->rtt, &q->service);
	mbx_close(c);
	return rc;
}

/* Runs quiet(arg) while a child floods as f says; the flood's rate in *flood_rps. */
int bench_under_flood(const char *socket, const struct bench_flooder *f, int (*quiet)(void *),
		      void *arg, double *flood_rps)
{
	int ready[2], stop[2], status, rc;
	char c;
	pid_t pid;

	if (pipe(ready) < 0)
		return -errno;
	if (pipe(stop) < 0) {
		close(ready[0]);
		close(ready[1]);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(stop[1]);
		fair_flood(socket, f, ready[1], stop[0]);
	}
	close(ready[1]);
	close(stop[0]);
	rc = pid > 0 && read(ready[0], &c, 1) == 1 ? 0 : -ECHILD;
	if (rc == 0)
		rc = quiet(arg);
	close(stop[1]);
	if (pid > 0 && read(ready[0], flood_rps, sizeof(*flood_rps)) != sizeof(*flood_rps))
		*flood_rps = NAN;
	close(ready[0]);
	if (pid > 0) {
		waitpid(pid, &status, 0);
		if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
			fprintf(stderr, "mbx-bench: the flooding client failed (status 0x%x)\n",
				status);
			rc = -ECHILD;
		}
	}
	return rc;
}

/* What fair_under_flood's quiet side needs. */
struct fair_quiet_arg {
	const char *socket;
	size_t n;
	struct fair_quiet *q;
};

static int fair_quiet_cb(void *arg)
{
	struct fair_quiet_arg *qa = arg;

	return fair_quiet_run(qa->socket, qa->n, qa->q);
}

/* The quiet user's round trips with the flood running; the flood's rate in *flood_rps. */
static int fair_under_flood(const char *socket, size_t n, struct fair_quiet *q, double *flood_rps)
{
	struct bench_flooder f = {.uid = FAIR_FLOOD_UID, .depth = FAIR_FLOOD_DEPTH};
	struct fair_quiet_arg qa = {socket, n, q};

	bench_rtt_request(&f.req, BENCH_SLOW);
	return bench_under_flood(socket, &f, fair_quiet_cb, &qa, flood_rps);
}

static int fair_quiet_init(struct fair_quiet *q, size_t n)
{
	memset(q, 0, sizeof(*q));
	return stats_init(&q->rtt, n) < 0 || stats_init(&q->service, n) < 0 ? -ENOMEM : 0;
}

static void fair_quiet_free(struct fair_quiet *q)
{
	stats_free(&q->rtt);
	stats_free(&q->service);
}

/* Records the figures; the bound is the issue's, with the service time set and measured. */
static void fair_report(struct fair_quiet *alone, struct fair_quiet *quiet, double flood_rps)
{
	double overhead, service_p99;
	struct stats service;

	/* The broker's own p99 overhead: its zero-latency p99 above the floor's. */
	overhead = bench_report_get("rtt_p99_us") - bench_report_get("floor_p99_us");
	if (!(overhead > 0))
		overhead = 0;
	service_p99 = NAN;
	if (stats_init(&service, alone->service.n + quiet->service.n) == 0) {
		stats_merge(&service, &alone->service);
		stats_merge(&service, &quiet->service);
		bench_report_set("fair_service_p50_us", stats_pct_us(&service, 50));
		service_p99 = stats_pct_us(&service, 99);
		stats_free(&service);
	}
	bench_report_set("device_service_us", BENCH_SERVICE_US);
	bench_report_set("fair_service_p99_us", service_p99);
	bench_report_set("fair_alone_p50_us", stats_pct_us(&alone->rtt, 50));
	bench_report_set("fair_alone_p99_us", stats_pct_us(&alone->rtt, 99));
	bench_report_set("fair_quiet_p50_us", stats_pct_us(&quiet->rtt, 50));
	bench_report_set("fair_quiet_p99_us", stats_pct_us(&quiet->rtt, 99));
	bench_report_set("fair_bound_us",
			 stats_pct_us(&alone->rtt, 99) + BENCH_SERVICE_US + 2 * overhead);
	bench_report_set("fair_bound_measured_us",
			 stats_pct_us(&alone->rtt, 99) + service_p99 + 2 * overhead);
	bench_report_set("fair_flood_rps", flood_rps);
}

int bench_fair_run(const struct bench_daemon *d, const struct bench_sizes *sz)
{
	size_t each = (sz->fair + FAIR_ROUNDS - 1) / FAIR_ROUNDS;
	struct fair_quiet alone, quiet;
	double rps, rps_sum = 0;
	int rc = fair_quiet_init(&alone, each * FAIR_ROUNDS);

	if (rc == 0)
		rc = fair_quiet_init(&quiet, each * FAIR_ROUNDS);
	bench_log("fairness: on " BENCH_SLOW ", %d rounds of %zu requests alone, then %zu next to "
		  "a flood of %d in flight",
		  FAIR_ROUNDS, each, each, FAIR_FLOOD_DEPTH);
	for (int r = 0; r < FAIR_ROUNDS && rc == 0; r++) {
		rc = fair_quiet_run(d->socket, each, &alone);
		if (rc == 0)
			rc = fair_under_flood(d->socket, each, &quiet, &rps);
		rps_sum += rps;
	}
	if (rc == 0)
		fair_report(&alone, &quiet, rps_sum / FAIR_ROUNDS);
	fair_quiet_free(&alone);
	fair_quiet_free(&quiet);
	return rc;
}
