/*
 * mbx-bench: starts its own mbxd on sim devices and measures it next to the
 * alternatives, in one run on one machine. Usage:
 *   mbx-bench [--quick] [--json FILE] [--mbxd PATH] [--mbxctl PATH]
 * Exits 0 when every required figure was measured (and the JSON written),
 * whatever the figures are: a noisy machine must not fail a build.
 */
#include <errno.h>
#include <sched.h>
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mbx/mbx.h>

#include "bench.h"

#define RTT_ROUNDS 4 /* mbxd and the floor alternate, so drift hits both alike */

static const struct bench_sizes bench_quick = {
    .warmup = 500,
    .rtt = 4000,
    .dbus = 2000,
    .exec = 200,
    .pipe = 30000,
    .idle = 10000,
    .active = 10,
    .active_each = 300,
    .decide = 200000,
    .policy_e2e = 2000,
    .fair = 500,
    .flood = 500,
    .audit = 20000,
};

static const struct bench_sizes bench_full = {
    .warmup = 2000,
    .rtt = 40000,
    .dbus = 10000,
    .exec = 1000,
    .pipe = 500000,
    .idle = 10000,
    .active = 10,
    .active_each = 2000,
    .decide = 2000000,
    .policy_e2e = 10000,
    .fair = 10000,
    .flood = 10000,
    .audit = 200000,
};

struct bench_args {
	bool quick;
	const char *json;
	const char *mbxd;
	const char *mbxctl;
	const char *only; /* comma-separated stage names, NULL: all */
	bool no_pin;      /* latency stages on whatever CPUs the scheduler picks */
	char command[512];
};

static void bench_usage(void)
{
	fprintf(stderr, "usage: mbx-bench [--quick] [--json FILE] [--mbxd PATH] [--mbxctl PATH]\n"
			"                 [--only rtt,dbus,exec,pipe,idle,fair,flood,audit,policy] "
			"[--no-pin]\n");
	exit(2);
}

static void bench_parse_args(int argc, char **argv, struct bench_args *a)
{
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, 'q'},        {"no-pin", no_argument, NULL, 'P'},
	    {"json", required_argument, NULL, 'j'},   {"mbxd", required_argument, NULL, 'd'},
	    {"mbxctl", required_argument, NULL, 'c'}, {"only", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	int ch;

	a->mbxd = MBXD_PATH;
	a->mbxctl = MBXCTL_PATH;
	while ((ch = getopt_long(argc, argv, "qj:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			a->quick = true;
			break;
		case 'P':
			a->no_pin = true;
			break;
		case 'j':
			a->json = optarg;
			break;
		case 'd':
			a->mbxd = optarg;
			break;
		case 'c':
			a->mbxctl = optarg;
			break;
		case 'o':
			a->only = optarg;
			break;
		default:
			bench_usage();
		}
	}
	if (optind != argc)
		bench_usage();
	for (int i = 0; i < argc; i++)
		snprintf(a->command + strlen(a->command), sizeof(a->command) - strlen(a->command),
			 "%s%s", i ? " " : "", i ? argv[i] : "mbx-bench");
}

/* Room for the idle clients: mbxd raises its own limit, the bench must raise its own. */
static int bench_raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max < want)
		rl.rlim_max = want; /* root may raise the hard limit too */
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		fprintf(stderr,
			"mbx-bench: descriptor limit %llu is below %llu: the scale stage "
			"will fail (ulimit -n)\n",
			(unsigned long long)rl.rlim_cur, (unsigned long long)want);
		return -EMFILE;
	}
	return 0;
}

/* Sets the p50/p99/p99.9/rps fields of one series under prefix. */
static void bench_set_series(const char *prefix, struct stats *st)
{
	char key[48];

	snprintf(key, sizeof(key), "%s_p50_us", prefix);
	bench_report_set(key, stats_pct_us(st, 50));
	snprintf(key, sizeof(key), "%s_p99_us", prefix);
	bench_report_set(key, stats_pct_us(st, 99));
	snprintf(key, sizeof(key), "%s_p999_us", prefix);
	bench_report_set(key, stats_pct_us(st, 99.9));
	snprintf(key, sizeof(key), "%s_rps", prefix);
	bench_report_set(key, 1e6 / stats_mean_us(st));
}

/*
 * mbxd and the echo floor, one request at a time, in alternating rounds on
 * two open clients. Fills result/submit with the captured frames for the
 * D-Bus stage.
 */
static int bench_stage_rtt(const struct bench_daemon *d, const struct bench_sizes *sz,
			   uint8_t **submit, size_t *submit_len, uint8_t **result,
			   size_t *result_len)
{
	struct mbx_client *cm = NULL, *cf = NULL;
	struct stats sm, sf;
	char echo_sock[256];
	pid_t echo;
	int rc;

	bench_log("round trip: mbxd and the echo floor, %zu requests each", sz->rtt);
	rc = bench_rtt_capture(d->socket, submit, submit_len, result, result_len);
	if (rc < 0)
		return rc;
	snprintf(echo_sock, sizeof(echo_sock), "%s/echo.sock", d->dir);
	echo = bench_echo_start(echo_sock, *result, *result_len);
	if (echo < 0)
		return -EIO;
	stats_init(&sm, sz->rtt);
	stats_init(&sf, sz->rtt);
	rc = bench_rtt_open(d->socket, &cm);
	if (rc == 0)
		rc = bench_rtt_open(echo_sock, &cf);
	if (rc == 0)
		rc = bench_rtt_loop(cm, BENCH_DEVICE, sz->warmup, 0, &sm);
	if (rc == 0)
		rc = bench_rtt_loop(cf, BENCH_DEVICE, sz->warmup, 0, &sf);
	for (int r = 0; rc == 0 && r < RTT_ROUNDS; r++) {
		rc = bench_rtt_loop(cm, BENCH_DEVICE, 0, sz->rtt / RTT_ROUNDS, &sm);
		if (rc == 0)
			rc = bench_rtt_loop(cf, BENCH_DEVICE, 0, sz->rtt / RTT_ROUNDS, &sf);
	}
	mbx_close(cm);
	mbx_close(cf);
	bench_echo_stop(echo);
	if (rc == 0) {
		bench_set_series("rtt", &sm);
		bench_set_series("floor", &sf);
		bench_report_set("rtt_floor_p50_ratio",
				 stats_pct_us(&sm, 50) / stats_pct_us(&sf, 50));
		bench_report_set("rtt_floor_p99_ratio",
				 stats_pct_us(&sm, 99) / stats_pct_us(&sf, 99));
	}
	stats_free(&sm);
	stats_free(&sf);
	return rc;
}

static int bench_stage_dbus(const struct bench_daemon *d, const struct bench_sizes *sz,
			    const uint8_t *submit, size_t submit_len, const uint8_t *result,
			    size_t result_len)
{
	struct stats st;
	int rc;

	bench_log("D-Bus: %zu method calls through a private dbus-daemon", sz->dbus);
	stats_init(&st, sz->dbus);
	rc = bench_dbus_run(d->dir, submit, submit_len, result, result_len, sz->warmup, sz->dbus,
			    &st);
	if (rc == 0) {
		bench_set_series("dbus", &st);
		bench_report_set("dbus_vs_mbxd",
				 stats_pct_us(&st, 50) / bench_report_get("rtt_p50_us"));
	}
	stats_free(&st);
	return rc;
}

static int bench_stage_exec(const struct bench_daemon *d, const struct bench_sizes *sz,
			    const char *mbxctl)
{
	struct stats st;
	int rc;

	bench_log("exec: %zu runs of mbxctl identify", sz->exec);
	stats_init(&st, sz->exec);
	rc = bench_exec_run(mbxctl, d->socket, sz->exec, &st);
	if (rc == 0) {
		bench_set_series("exec", &st);
		bench_report_set("exec_vs_mbxd",
				 stats_pct_us(&st, 50) / bench_report_get("rtt_p50_us"));
	}
	stats_free(&st);
	return rc;
}

/* One client, then four, each with 64 in flight. */
static int bench_stage_pipe(const struct bench_daemon *d, const struct bench_sizes *sz)
{
	struct bench_pipe_result one, four;
	int rc;

	bench_log("pipelined: 1 and 4 clients x 64 in flight, %zu requests each", sz->pipe);
	rc = bench_pipe_run(d->socket, d->pid, 1, 64, sz->pipe, &one);
	if (rc == 0)
		rc = bench_pipe_run(d->socket, d->pid, 4, 64, sz->pipe, &four);
	if (rc < 0)
		return rc;
	bench_report_set("pipelined_rps_1x64", one.rps);
	bench_report_set("pipelined_rps_4x64", four.rps);
	bench_report_set("pipelined_rps", fmax(one.rps, four.rps));
	bench_report_set("pipelined_mbxd_cpu_us_1x64", one.mbxd_cpu_us);
	bench_report_set("pipelined_client_cpu_us_1x64", one.client_cpu_us);
	bench_report_set("pipelined_mbxd_cpu_us", four.mbxd_cpu_us);
	bench_report_set("pipelined_client_cpu_us", four.client_cpu_us);
	return 0;
}

/* Whether --only names stage (every stage without --only). */
static bool bench_wanted(const struct bench_args *a, const char *stage)
{
	size_t len = strlen(stage);

	for (const char *p = a->only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, stage, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	return !a->only;
}

/* Reports a stage that failed; the others go on. */
static void bench_stage(const char *name, int rc, int *failures)
{
	if (rc < 0) {
		fprintf(stderr, "mbx-bench: stage %s failed: %s\n", name, strerror(-rc));
		bench_report_note("stage %s failed: %s", name, strerror(-rc));
		(*failures)++;
	}
}

/*
 * Latency stages (mbxd, the floor, D-Bus, exec: one request at a time) run
 * with the bench, its children and every mbxd thread on CPU 0. On the KVM
 * guests here a wake-up across vCPUs costs about 50 us (an IPI), ten times
 * the software path being measured, and which server the scheduler happens
 * to place on the other vCPU would decide the comparison. on false undoes it.
 */
static void bench_pin(pid_t mbxd, bool on)
{
	char path[64];
	struct dirent *e;
	cpu_set_t set;
	DIR *dir;

	CPU_ZERO(&set);
	if (on)
		CPU_SET(0, &set);
	else
		for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < CPU_SETSIZE; c++)
			CPU_SET((int)c, &set);
	sched_setaffinity(0, sizeof(set), &set);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)mbxd);
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.')
			sched_setaffinity((pid_t)atoi(e->d_name), sizeof(set), &set);
	closedir(dir);
}

/* Every stage against one daemon, in an order where each has what it needs. */
static int bench_run(const struct bench_args *a, struct bench_daemon *d)
{
	const struct bench_sizes *sz = a->quick ? &bench_quick : &bench_full;
	uint8_t *submit = NULL, *result = NULL;
	size_t submit_len = 0, result_len = 0;
	int failures = 0, rc;

	rc = bench_daemon_start(d, 10);
	if (rc < 0)
		return rc;
	bench_report_set("latency_stages_pinned", a->no_pin ? 0 : 1);
	if (!a->no_pin)
		bench_pin(d->pid, true);
	if (bench_wanted(a, "rtt") || bench_wanted(a, "dbus") || bench_wanted(a, "fair")) {
		rc = bench_stage_rtt(d, sz, &submit, &submit_len, &result, &result_len);
		bench_stage("round trip", rc, &failures);
	}
	if (submit && bench_wanted(a, "dbus"))
		bench_stage("D-Bus",
			    bench_stage_dbus(d, sz, submit, submit_len, result, result_len),
			    &failures);
	if (bench_wanted(a, "exec"))
		bench_stage("exec", bench_stage_exec(d, sz, a->mbxctl), &failures);
	if (!a->no_pin)
		bench_pin(d->pid, false);
	if (bench_wanted(a, "pipe"))
		bench_stage("pipelined", bench_stage_pipe(d, sz), &failures);
	/*
	 * The scale stage compares two p99s of ten one-at-a-time clients; unpinned,
	 * where the scheduler puts them across the two vCPUs (50 us per cross-vCPU
	 * wake-up) decides each p99, and runs of the same build gave ratios from
	 * 0.37x to 1.99x. Pinned like the latency stages, both cases see the
	 * same CPU and the ratio shows what the idle connections cost.
	 */
	if (bench_wanted(a, "idle")) {
		if (!a->no_pin)
			bench_pin(d->pid, true);
		bench_stage("scale", bench_idle_run(d, sz), &failures);
		if (!a->no_pin)
			bench_pin(d->pid, false);
	}
	if (bench_wanted(a, "fair"))
		bench_stage("fairness", bench_fair_run(d, sz), &failures);
	if (bench_wanted(a, "flood"))
		bench_stage("flood", bench_flood_run(d, sz), &failures);
	if (bench_wanted(a, "audit")) {
		bench_log("audit: %zu DECISION records through audit_write()", sz->audit);
		bench_stage("audit", bench_audit_run(d->dir, sz->audit), &failures);
	}
	if (bench_wanted(a, "policy"))
		bench_stage("policy", bench_policy_run(d, sz), &failures);
	free(submit);
	free(result);
	return failures ? -EIO : 0;
}

int main(int argc, char **argv)
{
	struct bench_args a = {0};
	struct bench_daemon d;
	const char *missing = NULL;
	int rc;

	bench_parse_args(argc, argv, &a);
	/* Taken before the bench adds its own load: what else the machine was doing. */
	bench_report_set("load_avg_before", bench_report_loadavg());
	signal(SIGPIPE, SIG_IGN);
	bench_raise_nofile((rlim_t)BENCH_MAX_CLIENTS + 256);
	rc = bench_daemon_init(&d, a.mbxd);
	if (rc < 0) {
		fprintf(stderr, "mbx-bench: cannot make a temporary folder: %s\n", strerror(-rc));
		return 1;
	}
	rc = bench_run(&a, &d);
	bench_daemon_cleanup(&d);
	bench_report_print(a.quick);
	if (a.json) {
		int wrc = bench_report_write_json(a.json, a.quick, a.command);

		if (wrc < 0) {
			fprintf(stderr, "mbx-bench: cannot write %s: %s\n", a.json, strerror(-wrc));
			return 1;
		}
	}
	if (bench_report_check(&missing) < 0) {
		fprintf(stderr, "mbx-bench: %s was not measured\n", missing);
		return 1;
	}
	return rc < 0 ? 1 : 0;
}
