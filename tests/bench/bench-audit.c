/*
 * The audit log's cost per read: every allowed read writes one DECISION
 * record (broker/request.c request_dispatch -> broker/audit.c audit_write)
 * on the event loop. Timed here alone, with the record mbxd writes for the
 * benchmark's Identify, so its share of a round trip can be read off.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "bench.h"

/* The record request_dispatch writes for an allowed Identify on mem0. */
static void bench_audit_record(struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = AUDIT_DECISION;
	r->uid = 0;
	r->user = "root";
	r->device = BENCH_DEVICE;
	r->transport = "sim";
	r->opcode = BENCH_IDENTIFY;
	r->opcode_name = "Identify Memory Device";
	r->cls = MBX_CLASS_READ;
	r->decision = MBX_DECISION_ALLOW;
	r->status = MBX_STATUS_OK;
	r->rule = "bench-read";
	r->source = "/tmp/mbx-bench-XXXXXX/policy.yaml:12";
}

/* Mean cost of n DECISION records, and of the SHA-256 each one needs for the chain. */
int bench_audit_run(const char *dir, size_t n)
{
	char path[256], err[256], hex[AUDIT_HASH_HEX], line[600];
	struct audit_record r;
	struct audit *a;
	uint64_t seq, t0;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/audit-micro.jsonl", dir);
	unlink(path);
	if (audit_open(path, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "mbx-bench: audit log %s: %s\n", path, err);
		return -EIO;
	}
	bench_audit_record(&r);
	t0 = stats_now_ns();
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = audit_write(a, &r, &seq);
	if (rc == 0)
		bench_report_set("audit_decision_us",
				 (double)(stats_now_ns() - t0) / 1e3 / (double)n);
	audit_close(a);
	unlink(path);
	/* The hash of one ~560-byte line, as audit_write computes for the chain. */
	memset(line, 'x', sizeof(line));
	t0 = stats_now_ns();
	for (size_t i = 0; i < n; i++)
		audit_sha256_hex(line, 560, hex);
	bench_report_set("audit_sha256_us", (double)(stats_now_ns() - t0) / 1e3 / (double)n);
	return rc;
}
