/*
 * The audit flood: one user (a child under its own uid, no rules) sends
 * Set Timestamp on mem0, denied, FLOOD_DEPTH in flight as fast as mbxd
 * answers; a quiet user (this process, allowed to read) sends Identify one
 * at a time, alone and next to the flood, in alternating rounds so that a
 * slow moment of the shared machine lands in both. Reported: the quiet
 * user's p50/p99 both ways, the flood's rate, the audit log's growth per
 * second while the flood ran, and the growth the coalescing rule allows
 * (docs/audit.md "Coalesced refusals", mbxd's default limits). A second
 * set of flood rounds runs the flooding client at nice 19: on a machine
 * with two CPUs it shows how much of the quiet user's p99 is the flooding
 * client's CPU rather than mbxd's work.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"

#define FLOOD_UID    60002 /* no passwd entry needed: mbxd names it "#60002" */
#define FLOOD_DEPTH  64
#define FLOOD_ROUNDS 10
#define FLOOD_MIN_S  0.9 /* each round's flood, at least */
/* mbxd's defaults (broker/config.c): the bound below follows them. */
#define FLOOD_BURST      20
#define FLOOD_PER_MINUTE 60
#define FLOOD_WINDOW_S   5.0

static const uint8_t flood_ts[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};

/* The quiet side of one round: its samples, and the log's size around them. */
struct flood_quiet {
	const char *socket;
	size_t n;
	struct stats *st;
	double min_s;   /* keep the flood going this long (then idle) */
	double seconds; /* of flooding */
};

static off_t flood_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Reads alone, or (as bench_under_flood's quiet side) next to the flood. */
static int flood_quiet_cb(void *arg)
{
	struct flood_quiet *q = arg;
	uint64_t t0 = stats_now_ns();
	int rc = bench_rtt_run(q->socket, BENCH_DEVICE, 20, q->n, q->st);
	double took = (double)(stats_now_ns() - t0) / 1e9;

	/* A flood of a second or more: the burst is spent, the steady rate shows. */
	if (rc == 0 && took < q->min_s) {
		struct timespec rest = {0, (long)((q->min_s - took) * 1e9)};

		nanosleep(&rest, NULL);
	}
	q->seconds += (double)(stats_now_ns() - t0) / 1e9;
	return rc;
}

/* The flood's records in the log: full ones, suppressed ones, and the refusals they count. */
static void flood_count(const char *audit, double *full, double *suppressed, double *counted,
			double *longest)
{
	char *line = NULL, *p;
	size_t cap = 0;
	ssize_t len;
	FILE *f = fopen(audit, "r");

	*full = *suppressed = *counted = *longest = 0;
	if (!f)
		return;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (!strstr(line, "\"uid\":60002,"))
			continue;
		if ((double)len > *longest)
			*longest = (double)len;
		if (strstr(line, "\"kind\":\"decision\""))
			(*full)++;
		if (strstr(line, "\"kind\":\"suppressed\"") && (p = strstr(line, "\"count\":"))) {
			(*suppressed)++;
			*counted += strtod(p + 8, NULL);
		}
	}
	free(line);
	fclose(f);
}

/* Records the figures and the bound the coalescing rule sets on the log's growth. */
static void flood_report(struct stats *alone, struct stats *quiet, double rps,
			 const struct flood_quiet *q, const char *audit, off_t bytes, double wall)
{
	double full, suppressed, counted, longest, bound_records;

	flood_count(audit, &full, &suppressed, &counted, &longest);
	bench_report_set("flood_alone_p50_us", stats_pct_us(alone, 50));
	bench_report_set("flood_alone_p99_us", stats_pct_us(alone, 99));
	bench_report_set("flood_quiet_p50_us", stats_pct_us(quiet, 50));
	bench_report_set("flood_quiet_p99_us", stats_pct_us(quiet, 99));
	bench_report_set("flood_quiet_p99_ratio",
			 stats_pct_us(quiet, 99) / stats_pct_us(alone, 99));
	bench_report_set("flood_rps", rps);
	bench_report_set("flood_seconds", q->seconds);
	bench_report_set("flood_audit_bytes_per_s", (double)bytes / q->seconds);
	/*
	 * Over the stage's wall time: the burst, the refill, and one suppressed
	 * record per window (one kind here) and one more at the end.
	 */
	bound_records = FLOOD_BURST + FLOOD_PER_MINUTE / 60.0 * wall + (wall / FLOOD_WINDOW_S + 2);
	bench_report_set("flood_audit_bound_bytes_per_s",
			 bound_records * (longest > 0 ? longest : 800) / q->seconds);
	bench_report_set("flood_uncoalesced_bytes_per_s", rps * (longest > 0 ? longest : 800));
	bench_report_set("flood_records_full", full);
	bench_report_set("flood_records_suppressed", suppressed);
	bench_report_set("flood_refusals_counted", counted);
}

/* The flood rounds again with the flooding client at nice 19, next to fresh alone rounds. */
static int flood_niced(const struct bench_daemon *d, size_t each, struct stats *alone)
{
	struct bench_flooder f = {.uid = FLOOD_UID, .depth = FLOOD_DEPTH, .nice = 19};
	struct stats quiet;
	struct flood_quiet qa = {d->socket, each, alone, 0, 0};
	struct flood_quiet qq = {d->socket, each, &quiet, 0, 0};
	double rps, rps_sum = 0;
	int rc = stats_init(&quiet, each * FLOOD_ROUNDS);

	f.req = (struct mbx_request){.device = BENCH_DEVICE,
				     .opcode = 0x0301,
				     .payload = flood_ts,
				     .payload_len = sizeof(flood_ts)};
	alone->n = 0;
	for (int r = 0; r < FLOOD_ROUNDS && rc == 0; r++) {
		rc = flood_quiet_cb(&qa);
		if (rc == 0)
			rc = bench_under_flood(d->socket, &f, flood_quiet_cb, &qq, &rps);
		rps_sum += rps;
	}
	if (rc == 0) {
		bench_report_set("flood_nice_alone_p99_us", stats_pct_us(alone, 99));
		bench_report_set("flood_nice_quiet_p99_us", stats_pct_us(&quiet, 99));
		bench_report_set("flood_nice_quiet_p99_ratio",
				 stats_pct_us(&quiet, 99) / stats_pct_us(alone, 99));
		bench_report_set("flood_nice_rps", rps_sum / FLOOD_ROUNDS);
	}
	stats_free(&quiet);
	return rc;
}

int bench_flood_run(const struct bench_daemon *d, const struct bench_sizes *sz)
{
	size_t each = (sz->flood + FLOOD_ROUNDS - 1) / FLOOD_ROUNDS;
	struct bench_flooder f = {.uid = FLOOD_UID, .depth = FLOOD_DEPTH};
	struct stats alone, quiet;
	struct flood_quiet qa = {d->socket, each, &alone, 0, 0};
	struct flood_quiet qq = {d->socket, each, &quiet, FLOOD_MIN_S, 0};
	struct timespec flush = {(time_t)FLOOD_WINDOW_S + 1, 0};
	off_t size0 = flood_size(d->audit);
	double rps, rps_sum = 0;
	uint64_t t0 = stats_now_ns();
	int rc = stats_init(&alone, each * FLOOD_ROUNDS);

	if (rc == 0)
		rc = stats_init(&quiet, each * FLOOD_ROUNDS);
	f.req = (struct mbx_request){.device = BENCH_DEVICE,
				     .opcode = 0x0301,
				     .payload = flood_ts,
				     .payload_len = sizeof(flood_ts)};
	bench_log("flood: on " BENCH_DEVICE ", %d rounds of %zu reads alone, then next to %d "
		  "denied requests in flight",
		  FLOOD_ROUNDS, each, FLOOD_DEPTH);
	for (int r = 0; r < FLOOD_ROUNDS && rc == 0; r++) {
		rc = flood_quiet_cb(&qa);
		if (rc == 0)
			rc = bench_under_flood(d->socket, &f, flood_quiet_cb, &qq, &rps);
		rps_sum += rps;
	}
	/* The counts reach the log on mbxd's timer: wait for it, then count it all. */
	if (rc == 0)
		nanosleep(&flush, NULL);
	if (rc == 0)
		flood_report(&alone, &quiet, rps_sum / FLOOD_ROUNDS, &qq, d->audit,
			     flood_size(d->audit) - size0, (double)(stats_now_ns() - t0) / 1e9);
	if (rc == 0)
		rc = flood_niced(d, each, &alone);
	stats_free(&alone);
	stats_free(&quiet);
	return rc;
}
