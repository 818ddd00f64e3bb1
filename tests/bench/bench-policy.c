/*
 * Policy cost: a generated policy of N rules (N-1 that do not apply to the
 * asker, then one that lets anyone read), timed two ways: policy_decide()
 * called in a loop, and end to end through mbxd loaded with that policy.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "policy.h"

static const unsigned policy_sizes[] = {10, 1000, 10000};
static const char *const policy_labels[] = {"10", "1k", "10k"};

/*
 * Filler rule i: other users and groups, other devices, classes and
 * opcodes, and every third one for anyone on devices that are not ours, so
 * the decision cannot skip them by subject alone.
 */
static void bench_policy_filler(FILE *f, unsigned i)
{
	fprintf(f, "  - name: filler-%u\n", i);
	if (i % 3 == 2)
		fprintf(f,
			"    who: any\n    devices: [\"rack%u-*\"]\n    deny_opcodes: [0x%04x]\n",
			i, 0x4400 + i % 3);
	else
		fprintf(f,
			"    who: { users: [tenant%u], groups: [team%u] }\n"
			"    devices: [\"mem%u\", \"rack%u-*\"]\n"
			"    allow: [read, log]\n"
			"    allow_opcodes: [0x%04x]\n",
			i, i % 100, i % 64 + 1, i % 50, 0x4000 + i % 256);
}

int bench_policy_write(const char *path, unsigned n_rules)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f,
		"# mbx-bench: %u rules; only the last applies to the benchmark's clients.\n"
		"version: 1\nrules:\n",
		n_rules);
	for (unsigned i = 0; i + 1 < n_rules; i++)
		bench_policy_filler(f, i);
	fprintf(f, "  - name: bench-read\n    who: any\n    devices: [\"*\"]\n    allow: [read]\n");
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Loads path, reporting every error. */
static struct policy *bench_policy_load(const char *path)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;

	if (policy_load(path, NULL, false, &p, &errs) == 0)
		return p;
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "mbx-bench: %s:%d: %s\n", errs.v[i].file, errs.v[i].line,
			errs.v[i].message);
	policy_errors_free(&errs);
	return NULL;
}

/* ns per policy_decide() of an allowed Identify; NAN on failure. */
static double bench_policy_decide_ns(struct policy *p, size_t n)
{
	static const char *const groups[] = {"bench", "users"};
	struct policy_principal who = {
	    .uid = 1000, .gid = 1000, .user = "bench", .groups = groups, .n_groups = 2};
	struct policy_device dev = {.name = BENCH_DEVICE};
	struct policy_request req = {.who = &who, .dev = &dev, .opcode = BENCH_IDENTIFY};
	struct policy_decision d;
	struct stats st;
	uint64_t t0;
	double ns;

	policy_decide(p, &req, &d); /* the first decision on a device builds its table */
	if (d.decision != MBX_DECISION_ALLOW || strcmp(d.rule, "bench-read") != 0) {
		fprintf(stderr,
			"mbx-bench: generated policy decided %s by \"%s\", not allow by "
			"bench-read\n",
			mbx_decision_name(d.decision), d.rule);
		return NAN;
	}
	if (stats_init(&st, 5) < 0)
		return NAN;
	/* The median of five batches: a shared machine steals whole time slices. */
	for (int b = 0; b < 5; b++) {
		t0 = stats_now_ns();
		for (size_t i = 0; i < n / 5; i++) {
			req.now_ms = i;
			policy_decide(p, &req, &d);
		}
		stats_add(&st, stats_now_ns() - t0);
	}
	ns = stats_pct_us(&st, 50) * 1000.0 / (double)(n / 5);
	stats_free(&st);
	return ns;
}

/* The micro-benchmark at one size. */
static int bench_policy_micro(const char *dir, unsigned i, size_t n)
{
	char path[256], key[64];
	struct policy *p;
	uint64_t t0;
	double ns;

	snprintf(path, sizeof(path), "%s/policy-micro.yaml", dir);
	if (bench_policy_write(path, policy_sizes[i]) < 0)
		return -EIO;
	t0 = stats_now_ns();
	p = bench_policy_load(path);
	if (!p)
		return -EINVAL;
	snprintf(key, sizeof(key), "policy_load_ms_%s_rules", policy_labels[i]);
	bench_report_set(key, (double)(stats_now_ns() - t0) / 1e6);
	ns = bench_policy_decide_ns(p, n);
	policy_free(p);
	if (isnan(ns))
		return -EPROTO;
	snprintf(key, sizeof(key), "decide_ns_%s_rules", policy_labels[i]);
	bench_report_set(key, ns);
	snprintf(key, sizeof(key), "decide_per_s_%s_rules", policy_labels[i]);
	bench_report_set(key, 1e9 / ns);
	return 0;
}

/* End to end at one size: mbxd restarted on the policy, round trips and pipelined rate. */
static int bench_policy_e2e(struct bench_daemon *d, unsigned i, size_t n)
{
	struct bench_pipe_result pr;
	struct stats st;
	char key[64];
	int rc;

	bench_daemon_stop(d);
	rc = bench_daemon_start(d, policy_sizes[i]);
	if (rc == 0)
		rc = stats_init(&st, n);
	if (rc < 0)
		return rc;
	rc = bench_rtt_run(d->socket, BENCH_DEVICE, n / 10, n, &st);
	if (rc == 0)
		rc = bench_pipe_run(d->socket, d->pid, 1, 64, n * 4, &pr);
	if (rc == 0) {
		snprintf(key, sizeof(key), "policy_e2e_p50_us_%s_rules", policy_labels[i]);
		bench_report_set(key, stats_pct_us(&st, 50));
		snprintf(key, sizeof(key), "policy_e2e_rps_%s_rules", policy_labels[i]);
		bench_report_set(key, pr.rps);
	}
	stats_free(&st);
	return rc;
}

/* Both measurements at 10, 1,000 and 10,000 rules; leaves mbxd running on the 10-rule policy. */
int bench_policy_run(struct bench_daemon *d, const struct bench_sizes *sz)
{
	int rc = 0;

	for (unsigned i = 0; rc == 0 && i < 3; i++) {
		bench_log("policy: %u rules", policy_sizes[i]);
		rc = bench_policy_micro(d->dir, i, sz->decide);
		if (rc == 0)
			rc = bench_policy_e2e(d, i, sz->policy_e2e);
	}
	bench_daemon_stop(d);
	if (rc == 0)
		rc = bench_daemon_start(d, policy_sizes[0]);
	return rc;
}
