/*
 * Fairness: on slow0 (BENCH_SERVICE_US per command), a quiet user (this
 * process) sends one request at a time, first alone, then while another
 * user (a child under a different uid) keeps 64 requests in flight. The
 * per-user round-robin queue should cost the quiet user at most one
 * service time (the flood's command already in the device) plus a little
 * broker time. The device's service time is reported twice: as configured
 * and as mbxd measured it around the transport call during the flood (a
 * sleep of 100 us takes longer in a virtual machine).
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
#define FAIR_SERVICE_SAMPLES 500000

/* What the flooding child reports when it stops. */
struct fair_flood_report {
	double rps;
	double service_p50_us; /* the device's service time, as mbxd timed it */
	double service_p99_us;
};

/* Whether the parent has asked the flood to stop. */
static bool fair_stop_asked(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

/* The flooding child: its own uid, depth requests in flight until told to stop. */
static void fair_flood(const char *socket, int ready_fd, int stop_fd)
{
	struct fair_flood_report rep;
	struct mbx_request req;
	struct mbx_client *c;
	struct mbx_reply reply;
	struct stats service;
	uint64_t done = 0, t0;
	size_t inflight = 0;
	uint32_t tag;

	if (stats_init(&service, FAIR_SERVICE_SAMPLES) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(FAIR_FLOOD_UID, FAIR_FLOOD_UID, FAIR_FLOOD_UID) < 0 ||
	    setresuid(FAIR_FLOOD_UID, FAIR_FLOOD_UID, FAIR_FLOOD_UID) < 0 ||
	    bench_rtt_open(socket, &c) < 0)
		_exit(1);
	bench_rtt_request(&req, BENCH_SLOW);
	t0 = stats_now_ns();
	while (done % 16 != 0 || !fair_stop_asked(stop_fd)) {
		while (inflight < FAIR_FLOOD_DEPTH && mbx_send(c, &req, &tag) == 0)
			inflight++;
		if (mbx_receive(c, 30000, &reply, &tag) < 0)
			_exit(2);
		stats_add(&service, (uint64_t)reply.result.duration_us * 1000);
		mbx_reply_free(&reply);
		inflight--;
		if (++done == FAIR_FLOOD_DEPTH && write(ready_fd, "r", 1) != 1)
			_exit(3);
	}
	rep.rps = (double)done / ((double)(stats_now_ns() - t0) / 1e9);
	rep.service_p50_us = stats_pct_us(&service, 50);
	rep.service_p99_us = stats_pct_us(&service, 99);
	if (write(ready_fd, &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
	mbx_close(c);
	_exit(0);
}

/* The quiet user's p99 with the flood running; the flood's own figures in *flood. */
static int fair_under_flood(const char *socket, size_t n, struct stats *st,
			    struct fair_flood_report *flood)
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
		fair_flood(socket, ready[1], stop[0]);
	}
	close(ready[1]);
	close(stop[0]);
	rc = pid > 0 && read(ready[0], &c, 1) == 1 ? 0 : -ECHILD;
	if (rc == 0)
		rc = bench_rtt_run(socket, BENCH_SLOW, 20, n, st);
	close(stop[1]);
	if (pid > 0 && read(ready[0], flood, sizeof(*flood)) != sizeof(*flood))
		*flood = (struct fair_flood_report){NAN, NAN, NAN};
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

int bench_fair_run(const struct bench_daemon *d, const struct bench_sizes *sz)
{
	struct fair_flood_report flood = {NAN, NAN, NAN};
	struct stats alone, quiet;
	double overhead, bound;
	int rc;

	if (stats_init(&alone, sz->fair) < 0 || stats_init(&quiet, sz->fair) < 0)
		return -ENOMEM;
	bench_log("fairness: quiet user alone on " BENCH_SLOW);
	rc = bench_rtt_run(d->socket, BENCH_SLOW, 20, sz->fair, &alone);
	if (rc == 0) {
		bench_log("fairness: quiet user next to a flood of %d in flight", FAIR_FLOOD_DEPTH);
		rc = fair_under_flood(d->socket, sz->fair, &quiet, &flood);
	}
	if (rc == 0) {
		/* The broker's own p99 overhead: its zero-latency p99 above the floor's. */
		overhead = bench_report_get("rtt_p99_us") - bench_report_get("floor_p99_us");
		if (!(overhead > 0))
			overhead = 0;
		bound = stats_pct_us(&alone, 99) + BENCH_SERVICE_US + 2 * overhead;
		bench_report_set("device_service_us", BENCH_SERVICE_US);
		bench_report_set("fair_alone_p50_us", stats_pct_us(&alone, 50));
		bench_report_set("fair_alone_p99_us", stats_pct_us(&alone, 99));
		bench_report_set("fair_quiet_p50_us", stats_pct_us(&quiet, 50));
		bench_report_set("fair_quiet_p99_us", stats_pct_us(&quiet, 99));
		bench_report_set("fair_bound_us", bound);
		bench_report_set("fair_flood_rps", flood.rps);
		bench_report_set("fair_service_p50_us", flood.service_p50_us);
		bench_report_set("fair_service_p99_us", flood.service_p99_us);
		/* The same bound with the service time the device really took. */
		bench_report_set("fair_bound_measured_us",
				 stats_pct_us(&alone, 99) + flood.service_p99_us + 2 * overhead);
	}
	stats_free(&alone);
	stats_free(&quiet);
	return rc;
}
