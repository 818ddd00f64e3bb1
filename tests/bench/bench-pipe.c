/*
 * Pipelined throughput: each client thread keeps depth requests in flight
 * (mbx_send / mbx_receive), sending a new one as each RESULT arrives.
 * Requests per second over the wall time of all clients, and the CPU mbxd
 * and the clients spent per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/mbx.h>

#include "bench.h"

struct pipe_client {
	const char *socket;
	unsigned depth;
	size_t count;
	pthread_barrier_t *start;
	struct mbx_client *c;
	int rc;
};

/* Takes one RESULT; it must be an OK Identify. */
static int pipe_take(struct mbx_client *c)
{
	struct mbx_reply reply;
	uint32_t tag;
	int rc = mbx_receive(c, 30000, &reply, &tag);

	if (rc < 0) {
		fprintf(stderr, "mbx-bench: pipelined receive: %s\n", mbx_strerror(rc));
		return rc;
	}
	if (reply.result.status != MBX_STATUS_OK) {
		fprintf(stderr, "mbx-bench: pipelined Identify answered %s: %s\n",
			mbx_status_name(reply.result.status), reply.result.message);
		rc = -EPROTO;
	}
	mbx_reply_free(&reply);
	return rc;
}

/* Fills the window, then one send per receive until count are answered. */
static void *pipe_client_main(void *arg)
{
	struct pipe_client *pc = arg;
	struct mbx_request req;
	size_t sent = 0, done = 0;
	uint32_t tag;
	int rc = 0;

	bench_rtt_request(&req, BENCH_DEVICE);
	pthread_barrier_wait(pc->start);
	while (rc == 0 && done < pc->count) {
		while (rc == 0 && sent < pc->count && sent - done < pc->depth) {
			rc = mbx_send(pc->c, &req, &tag);
			sent++;
		}
		if (rc == 0 && (rc = pipe_take(pc->c)) == 0)
			done++;
	}
	if (rc < 0 && rc != -EPROTO)
		fprintf(stderr, "mbx-bench: pipelined client: %s\n", mbx_strerror(rc));
	pc->rc = rc;
	return NULL;
}

/* Opens every client before the clock starts, so connection set-up is not counted. */
static int pipe_open_all(struct pipe_client *pcs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (bench_rtt_open(pcs[i].socket, &pcs[i].c) < 0)
			return -1;
	return 0;
}

/* Runs clients x depth over total requests. */
int bench_pipe_run(const char *socket, pid_t mbxd, unsigned clients, unsigned depth, size_t total,
		   struct bench_pipe_result *out)
{
	struct pipe_client *pcs = calloc(clients, sizeof(*pcs));
	pthread_t *threads = calloc(clients, sizeof(*threads));
	uint64_t t0, t1, d0, d1, c0, c1;
	pthread_barrier_t start;
	int rc = 0;

	if (!pcs || !threads) {
		free(pcs);
		free(threads);
		return -ENOMEM;
	}
	pthread_barrier_init(&start, NULL, clients + 1);
	for (unsigned i = 0; i < clients; i++)
		pcs[i] = (struct pipe_client){socket, depth, total / clients, &start, NULL, 0};
	if (pipe_open_all(pcs, clients) < 0) {
		rc = -ECONNREFUSED;
		goto out;
	}
	for (unsigned i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, pipe_client_main, &pcs[i]);
	pthread_barrier_wait(&start);
	t0 = stats_now_ns();
	d0 = stats_proc_cpu_ns(mbxd);
	c0 = stats_self_cpu_ns();
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(threads[i], NULL);
		if (pcs[i].rc < 0)
			rc = pcs[i].rc;
	}
	t1 = stats_now_ns();
	d1 = stats_proc_cpu_ns(mbxd);
	c1 = stats_self_cpu_ns();
	total = (total / clients) * clients;
	out->rps = (double)total / ((double)(t1 - t0) / 1e9);
	out->mbxd_cpu_us = (double)(d1 - d0) / 1000.0 / (double)total;
	out->client_cpu_us = (double)(c1 - c0) / 1000.0 / (double)total;
out:
	for (unsigned i = 0; i < clients; i++)
		mbx_close(pcs[i].c);
	pthread_barrier_destroy(&start);
	free(pcs);
	free(threads);
	return rc;
}
