/* Round trips: one client, one Identify at a time, through libmbx. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbx/mbx.h>

#include "bench.h"

/* Identify Memory Device (4000h): a read-class command with no input payload. */
void bench_rtt_request(struct mbx_request *req, const char *device)
{
	memset(req, 0, sizeof(*req));
	req->device = device;
	req->opcode = BENCH_IDENTIFY;
}

/* Opens a client; a server that has just started may need a moment. */
int bench_rtt_open(const char *socket, struct mbx_client **out)
{
	struct timespec pause = {0, 5 * 1000 * 1000};
	int rc = -ENOENT;

	for (int i = 0; i < 400; i++) {
		rc = mbx_open(socket, out);
		if (rc != -ENOENT && rc != -ECONNREFUSED)
			break;
		nanosleep(&pause, NULL);
	}
	if (rc < 0)
		fprintf(stderr, "mbx-bench: cannot connect to %s: %s\n", socket, mbx_strerror(rc));
	return rc;
}

/*
 * One submit; anything but OK with CXL success means the stage measures the
 * wrong thing. *service_us: mbxd's time in the transport.
 */
static int bench_rtt_one(struct mbx_client *c, const struct mbx_request *req, uint32_t *service_us)
{
	struct mbx_reply reply;
	int rc = mbx_submit(c, req, &reply);

	if (rc < 0) {
		fprintf(stderr, "mbx-bench: submit to %s: %s\n", req->device, mbx_strerror(rc));
		return rc;
	}
	if (reply.result.status != MBX_STATUS_OK || reply.result.cxl_rc != 0) {
		fprintf(stderr, "mbx-bench: Identify on %s answered %s (rc %u): %s\n", req->device,
			mbx_status_name(reply.result.status), reply.result.cxl_rc,
			reply.result.message);
		mbx_reply_free(&reply);
		return -EPROTO;
	}
	*service_us = reply.result.duration_us;
	mbx_reply_free(&reply);
	return 0;
}

/* Times n round trips after warmup untimed ones; service (or NULL) gets mbxd's device time. */
int bench_rtt_timed(struct mbx_client *c, const char *device, size_t warmup, size_t n,
		    struct stats *st, struct stats *service)
{
	struct mbx_request req;
	uint32_t service_us;
	uint64_t t0;
	int rc;

	bench_rtt_request(&req, device);
	for (size_t i = 0; i < warmup; i++)
		if ((rc = bench_rtt_one(c, &req, &service_us)) < 0)
			return rc;
	for (size_t i = 0; i < n; i++) {
		t0 = stats_now_ns();
		if ((rc = bench_rtt_one(c, &req, &service_us)) < 0)
			return rc;
		stats_add(st, stats_now_ns() - t0);
		if (service)
			stats_add(service, (uint64_t)service_us * 1000);
	}
	return 0;
}

/* Times n round trips after warmup untimed ones. */
int bench_rtt_loop(struct mbx_client *c, const char *device, size_t warmup, size_t n,
		   struct stats *st)
{
	return bench_rtt_timed(c, device, warmup, n, st, NULL);
}

/* Connects, times, disconnects. */
int bench_rtt_run(const char *socket, const char *device, size_t warmup, size_t n, struct stats *st)
{
	struct mbx_client *c;
	int rc = bench_rtt_open(socket, &c);

	if (rc < 0)
		return rc;
	rc = bench_rtt_loop(c, device, warmup, n, st);
	mbx_close(c);
	return rc;
}

/* Encodes the SUBMIT libmbx sends and the RESULT mbxd answers, both with tag 0. */
int bench_rtt_capture(const char *socket, uint8_t **submit, size_t *submit_len, uint8_t **result,
		      size_t *result_len)
{
	struct mbx_submit m = {.opcode = BENCH_IDENTIFY};
	struct mbx_wbuf ws, wr;
	struct mbx_request req;
	struct mbx_client *c;
	struct mbx_reply reply;
	int rc = bench_rtt_open(socket, &c);

	if (rc < 0)
		return rc;
	bench_rtt_request(&req, BENCH_DEVICE);
	rc = mbx_submit(c, &req, &reply);
	mbx_close(c);
	if (rc < 0)
		return rc;
	snprintf(m.device, sizeof(m.device), "%s", BENCH_DEVICE);
	mbx_wbuf_init(&ws);
	mbx_wbuf_init(&wr);
	rc = mbx_encode_submit(&ws, MBX_MSG_SUBMIT, 0, &m);
	if (rc == 0)
		rc = mbx_encode_result(&wr, 0, &reply.result);
	mbx_reply_free(&reply);
	if (rc < 0) {
		mbx_wbuf_free(&ws);
		mbx_wbuf_free(&wr);
		return rc;
	}
	*submit = ws.data;
	*submit_len = ws.len;
	*result = wr.data;
	*result_len = wr.len;
	return 0;
}
