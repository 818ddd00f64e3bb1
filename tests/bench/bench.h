/*
 * mbx-bench: mbxd side by side with the socket floor, a D-Bus path and
 * exec per command, plus pipelined throughput, idle scale, policy cost and
 * fairness. Every figure lands in the report (bench-report.c), which prints
 * the table and writes the JSON. Figures are printed, never asserted.
 */
#ifndef MBX_BENCH_H
#define MBX_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mbx/mbx.h>

#define BENCH_DEVICE      "mem0"  /* the zero-latency sim memory device */
#define BENCH_SLOW        "slow0" /* the sim device with a realistic service time */
#define BENCH_SERVICE_US  100     /* slow0's latency_us */
#define BENCH_IDENTIFY    0x4000  /* the read command every round trip sends */
#define BENCH_MAX_CLIENTS 10100   /* above 10,000 idle + 10 active + the bench's own */

/* Request counts: --quick keeps every stage, with fewer requests. */
struct bench_sizes {
	size_t warmup;
	size_t rtt; /* mbxd and the floor, one at a time */
	size_t dbus;
	size_t exec;
	size_t pipe;        /* requests per pipelined configuration */
	unsigned idle;      /* idle connections */
	unsigned active;    /* active clients next to them */
	size_t active_each; /* requests per active client */
	size_t decide;      /* policy_decide() calls per policy size */
	size_t policy_e2e;  /* round trips per policy size */
	size_t fair;        /* quiet requests, alone and under flood */
	size_t flood;       /* quiet reads, alone and next to a flood of refusals */
	size_t audit;       /* audit_write() calls */
};

/* Latency samples in nanoseconds. */
struct stats {
	uint64_t *ns;
	size_t n;
	size_t cap;
	bool sorted;
};

int stats_init(struct stats *s, size_t cap);
void stats_free(struct stats *s);
void stats_add(struct stats *s, uint64_t ns);
/* Appends every sample of src. */
void stats_merge(struct stats *dst, const struct stats *src);
/* The pct-th percentile (nearest rank) in microseconds; 0 with no samples. */
double stats_pct_us(struct stats *s, double pct);
double stats_mean_us(const struct stats *s);
uint64_t stats_now_ns(void);
/* CPU time of this process (all threads), user + system, in nanoseconds. */
uint64_t stats_self_cpu_ns(void);
/* CPU time of another process from /proc, in nanoseconds; 0 if unreadable. */
uint64_t stats_proc_cpu_ns(pid_t pid);
/* VmRSS of a process in KiB; 0 if unreadable. */
long stats_proc_rss_kib(pid_t pid);

/* A temporary mbxd: its folder, files and process. */
struct bench_daemon {
	const char *mbxd_path;
	char dir[128];
	char config[192];
	char policy[192];
	char socket[192];
	char audit[192];
	char log[192];
	pid_t pid;
};

/* Makes the temporary folder (reachable by other uids, for the fairness stage). */
int bench_daemon_init(struct bench_daemon *d, const char *mbxd_path);
/* Writes the config and a generated policy of n_rules, starts mbxd, waits for its socket. */
int bench_daemon_start(struct bench_daemon *d, unsigned n_rules);
/* Stops mbxd (SIGTERM) and removes its audit log, so runs do not pile up records. */
void bench_daemon_stop(struct bench_daemon *d);
/* Stops mbxd if running and removes the folder. */
void bench_daemon_cleanup(struct bench_daemon *d);

/* Writes a policy of n_rules rules (n_rules >= 1) whose last one lets anyone read. */
int bench_policy_write(const char *path, unsigned n_rules);
/* Measures policy_decide() at 10, 1,000 and 10,000 rules, and end to end. */
int bench_policy_run(struct bench_daemon *d, const struct bench_sizes *sz);

struct mbx_client;
struct mbx_request;

/* The Identify request every stage sends. */
void bench_rtt_request(struct mbx_request *req, const char *device);
/* Opens a libmbx client, retrying briefly while the server starts. */
int bench_rtt_open(const char *socket, struct mbx_client **out);
/* One request at a time: warmup, then n timed round trips into st. */
int bench_rtt_run(const char *socket, const char *device, size_t warmup, size_t n,
		  struct stats *st);
/* As bench_rtt_run on an open client. */
int bench_rtt_loop(struct mbx_client *c, const char *device, size_t warmup, size_t n,
		   struct stats *st);
/* As bench_rtt_loop, also recording each request's time in the device (ns) into service. */
int bench_rtt_timed(struct mbx_client *c, const char *device, size_t warmup, size_t n,
		    struct stats *st, struct stats *service);
/*
 * Captures the frames of one real exchange with mbxd: the SUBMIT frame sent
 * and the RESULT frame received (tag 0), so the baselines carry the same
 * bytes. Both are malloc'ed and owned by the caller.
 */
int bench_rtt_capture(const char *socket, uint8_t **submit, size_t *submit_len, uint8_t **result,
		      size_t *result_len);

/* The floor: a minimal server answering the same frames, in a child process. */
pid_t bench_echo_start(const char *socket, const uint8_t *result, size_t result_len);
void bench_echo_stop(pid_t pid);

/* The D-Bus path: a private dbus-daemon, an sd-bus server, an sd-bus client. */
int bench_dbus_run(const char *dir, const uint8_t *submit, size_t submit_len, const uint8_t *result,
		   size_t result_len, size_t warmup, size_t n, struct stats *st);

/* Exec per command: mbxctl identify run as a subprocess per request. */
int bench_exec_run(const char *mbxctl, const char *socket, size_t n, struct stats *st);

/* Pipelined throughput of clients x depth requests in flight. */
struct bench_pipe_result {
	double rps;
	double mbxd_cpu_us;   /* mbxd CPU per request */
	double client_cpu_us; /* the clients' CPU per request */
};
int bench_pipe_run(const char *socket, pid_t mbxd, unsigned clients, unsigned depth, size_t total,
		   struct bench_pipe_result *out);

/* audit_write() of the DECISION record every read costs mbxd, timed alone. */
int bench_audit_run(const char *dir, size_t n);

/* 10,000 idle clients next to active ones: RSS and the active clients' p99. */
int bench_idle_run(const struct bench_daemon *d, const struct bench_sizes *sz);

/* One user floods, another sends one at a time: the quiet user's p99. */
int bench_fair_run(const struct bench_daemon *d, const struct bench_sizes *sz);

/* A flooding client: under uid, depth copies of req in flight until stopped. */
struct bench_flooder {
	uid_t uid;
	size_t depth;
	int nice; /* added to the flooding child's nice value (0: as the bench) */
	struct mbx_request req;
};
/* Runs quiet(arg) while a child floods as f says; the flood's rate in *flood_rps. */
int bench_under_flood(const char *socket, const struct bench_flooder *f, int (*quiet)(void *),
		      void *arg, double *flood_rps);

/* One user floods denied requests, another reads: latency and audit growth. */
int bench_flood_run(const struct bench_daemon *d, const struct bench_sizes *sz);

/* The report: numeric fields in insertion order, then the table and the JSON. */
void bench_report_set(const char *key, double value);
/* The value of key, or NAN if it was not measured. */
double bench_report_get(const char *key);
void bench_report_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_report_print(bool quick);
int bench_report_write_json(const char *path, bool quick, const char *command);
/* The 1-minute load average (NAN if unreadable). */
double bench_report_loadavg(void);
/* Every field the issue requires is present and finite. Names the first missing one. */
int bench_report_check(const char **missing);

/* Progress on stderr, so stdout holds only the table. */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
