/*
 * Scale: active clients doing one request at a time, first alone, then
 * next to 10,000 connected idle clients (each past HELLO, then silent).
 * mbxd's RSS with them connected, and the active clients' p99 in both cases.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/mbx.h>

#include "bench.h"

struct idle_active {
	const char *socket;
	size_t count;
	pthread_barrier_t *start;
	struct stats st;
	int rc;
};

/* One active client: connect, wait for the others, time its round trips. */
static void *idle_active_main(void *arg)
{
	struct idle_active *a = arg;
	struct mbx_client *c = NULL;

	a->rc = bench_rtt_open(a->socket, &c);
	pthread_barrier_wait(a->start);
	if (a->rc == 0)
		a->rc = bench_rtt_loop(c, BENCH_DEVICE, 0, a->count, &a->st);
	mbx_close(c);
	return NULL;
}

/* Runs n active clients at once; returns their merged p99 (us) or a negative errno. */
static int idle_active_p99(const char *socket, unsigned n, size_t each, double *p99)
{
	struct idle_active *as = calloc(n, sizeof(*as));
	pthread_t *t = calloc(n, sizeof(*t));
	pthread_barrier_t start;
	struct stats all;
	int rc = -ENOMEM;

	if (!as || !t || stats_init(&all, n * each) < 0)
		goto out;
	rc = 0;
	pthread_barrier_init(&start, NULL, n);
	for (unsigned i = 0; i < n; i++) {
		as[i] = (struct idle_active){.socket = socket, .count = each, .start = &start};
		stats_init(&as[i].st, each);
		pthread_create(&t[i], NULL, idle_active_main, &as[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		if (as[i].rc < 0)
			rc = as[i].rc;
		stats_merge(&all, &as[i].st);
		stats_free(&as[i].st);
	}
	pthread_barrier_destroy(&start);
	*p99 = stats_pct_us(&all, 99);
	stats_free(&all);
out:
	free(as);
	free(t);
	return rc;
}

/* Opens n idle clients; on failure closes the ones opened. */
static int idle_open(const char *socket, unsigned n, struct mbx_client ***out)
{
	struct mbx_client **v = calloc(n, sizeof(*v));
	int rc = 0;

	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < n && rc == 0; i++) {
		rc = mbx_open(socket, &v[i]);
		if (rc < 0)
			fprintf(stderr, "mbx-bench: idle client %u of %u: %s\n", i + 1, n,
				mbx_strerror(rc));
	}
	if (rc < 0) {
		for (unsigned i = 0; i < n; i++)
			mbx_close(v[i]);
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int bench_idle_run(const struct bench_daemon *d, const struct bench_sizes *sz)
{
	struct mbx_client **idle = NULL;
	double base_p99, idle_p99;
	long rss0, rss1;
	uint64_t t0;
	int rc;

	bench_log("scale: %u active clients alone", sz->active);
	rc = idle_active_p99(d->socket, sz->active, sz->active_each, &base_p99);
	if (rc < 0)
		return rc;
	rss0 = stats_proc_rss_kib(d->pid);
	bench_log("scale: connecting %u idle clients", sz->idle);
	t0 = stats_now_ns();
	rc = idle_open(d->socket, sz->idle, &idle);
	if (rc < 0)
		return rc;
	bench_report_set("idle10k_connect_s", (double)(stats_now_ns() - t0) / 1e9);
	rss1 = stats_proc_rss_kib(d->pid);
	bench_log("scale: %u active clients next to %u idle ones", sz->active, sz->idle);
	rc = idle_active_p99(d->socket, sz->active, sz->active_each, &idle_p99);
	for (unsigned i = 0; i < sz->idle; i++)
		mbx_close(idle[i]);
	free(idle);
	if (rc < 0)
		return rc;
	bench_report_set("idle0_rss_mib", (double)rss0 / 1024.0);
	bench_report_set("idle10k_rss_mib", (double)rss1 / 1024.0);
	bench_report_set("idle0_active_p99_us", base_p99);
	bench_report_set("idle10k_active_p99_us", idle_p99);
	bench_report_set("idle10k_active_p99_ratio", idle_p99 / base_p99);
	return 0;
}
