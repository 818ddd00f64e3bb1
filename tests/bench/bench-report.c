/* The report: every figure by name, printed as a table and written as JSON. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define REPORT_MAX 128

static struct {
	char key[48];
	double value;
} report_fields[REPORT_MAX];
static size_t report_n;
static char report_notes[2048];

/* The fields issue 8 names: the JSON always holds them, quick or full. */
static const char *const report_required[] = {
    "rtt_p50_us",
    "rtt_p99_us",
    "floor_p50_us",
    "floor_p99_us",
    "dbus_p50_us",
    "exec_p50_us",
    "pipelined_rps",
    "idle10k_rss_mib",
    "idle10k_active_p99_us",
    "decide_ns_10k_rules",
    "fair_alone_p99_us",
    "fair_quiet_p99_us",
    "device_service_us",
    "flood_alone_p99_us",
    "flood_quiet_p99_us",
    "flood_rps",
    "flood_audit_bytes_per_s",
};

/* One line of the table: a label and up to three fields shown together. */
struct report_row {
	const char *label;
	const char *keys[3];
	const char *unit;
};

static const struct report_row report_rows[] = {
    {"mbxd round trip p50 / p99 / p99.9", {"rtt_p50_us", "rtt_p99_us", "rtt_p999_us"}, "us"},
    {"echo floor p50 / p99 / p99.9", {"floor_p50_us", "floor_p99_us", "floor_p999_us"}, "us"},
    {"D-Bus p50 / p99", {"dbus_p50_us", "dbus_p99_us"}, "us"},
    {"exec mbxctl p50 / p99", {"exec_p50_us", "exec_p99_us"}, "us"},
    {"mbxd / floor ratio p50 / p99", {"rtt_floor_p50_ratio", "rtt_floor_p99_ratio"}, "x"},
    {"D-Bus / mbxd, exec / mbxd (p50)", {"dbus_vs_mbxd", "exec_vs_mbxd"}, "x"},
    {"mbxd / floor / D-Bus requests/s", {"rtt_rps", "floor_rps", "dbus_rps"}, "req/s"},
    {"pipelined 1 client x 64", {"pipelined_rps_1x64"}, "req/s"},
    {"pipelined 4 clients x 64", {"pipelined_rps_4x64"}, "req/s"},
    {"pipelined best", {"pipelined_rps"}, "req/s"},
    {"CPU/request mbxd / clients (4x64)",
     {"pipelined_mbxd_cpu_us", "pipelined_client_cpu_us"},
     "us"},
    {"mbxd RSS: no idle / 10k idle", {"idle0_rss_mib", "idle10k_rss_mib"}, "MiB"},
    {"active p99: no idle / 10k idle", {"idle0_active_p99_us", "idle10k_active_p99_us"}, "us"},
    {"decide() 10 / 1k / 10k rules",
     {"decide_ns_10_rules", "decide_ns_1k_rules", "decide_ns_10k_rules"},
     "ns"},
    {"end to end p50 10 / 1k / 10k rules",
     {"policy_e2e_p50_us_10_rules", "policy_e2e_p50_us_1k_rules", "policy_e2e_p50_us_10k_rules"},
     "us"},
    {"end to end 1x64 10 / 1k / 10k rules",
     {"policy_e2e_rps_10_rules", "policy_e2e_rps_1k_rules", "policy_e2e_rps_10k_rules"},
     "req/s"},
    {"audit_write() DECISION / SHA-256", {"audit_decision_us", "audit_sha256_us"}, "us"},
    {"fairness: service time set / measured p50 / p99",
     {"device_service_us", "fair_service_p50_us", "fair_service_p99_us"},
     "us"},
    {"quiet p50 / p99 alone", {"fair_alone_p50_us", "fair_alone_p99_us"}, "us"},
    {"quiet p50 / p99 under flood", {"fair_quiet_p50_us", "fair_quiet_p99_us"}, "us"},
    {"quiet p99 bound (set / measured service), flood rate",
     {"fair_bound_us", "fair_bound_measured_us", "fair_flood_rps"},
     "us, req/s"},
    {"audit flood: reads p50 / p99 alone", {"flood_alone_p50_us", "flood_alone_p99_us"}, "us"},
    {"audit flood: reads p50 / p99 under flood",
     {"flood_quiet_p50_us", "flood_quiet_p99_us", "flood_quiet_p99_ratio"},
     "us, x"},
    {"audit flood: denials/s, audit B/s, bound B/s",
     {"flood_rps", "flood_audit_bytes_per_s", "flood_audit_bound_bytes_per_s"},
     "req/s, B/s"},
    {"audit flood: records full / suppressed / counted",
     {"flood_records_full", "flood_records_suppressed", "flood_refusals_counted"},
     ""},
    {"audit flood: uncoalesced it would be", {"flood_uncoalesced_bytes_per_s"}, "B/s"},
    {"audit flood, flooder at nice 19: p99 alone / under / ratio",
     {"flood_nice_alone_p99_us", "flood_nice_quiet_p99_us", "flood_nice_quiet_p99_ratio"},
     "us, x"},
    {"audit flood, flooder at nice 19: denials/s", {"flood_nice_rps"}, "req/s"},
};

/* A target of issue 8: a field (or a ratio of two) against a limit. */
struct report_target {
	const char *what;
	const char *num;
	const char *den; /* NULL: the field itself */
	bool at_most;
	double limit;
	const char *limit_key; /* instead of limit, when set */
};

static const struct report_target report_targets[] = {
    {"mbxd p50 <= 1.5x floor", "rtt_p50_us", "floor_p50_us", true, 1.5, NULL},
    {"mbxd p99 <= 3x floor", "rtt_p99_us", "floor_p99_us", true, 3, NULL},
    {">= 5x faster than D-Bus", "dbus_p50_us", "rtt_p50_us", false, 5, NULL},
    {">= 50x faster than exec", "exec_p50_us", "rtt_p50_us", false, 50, NULL},
    {">= 100,000 req/s pipelined", "pipelined_rps", NULL, false, 100000, NULL},
    {"10k idle: RSS <= 64 MiB", "idle10k_rss_mib", NULL, true, 64, NULL},
    {"10k idle: active p99 <= 1.5x", "idle10k_active_p99_us", "idle0_active_p99_us", true, 1.5,
     NULL},
    {"decide <= 1 us at 10k rules", "decide_ns_10k_rules", NULL, true, 1000, NULL},
    {"quiet p99 <= bound", "fair_quiet_p99_us", NULL, true, 0, "fair_bound_us"},
    {"quiet p99 <= bound, measured service", "fair_quiet_p99_us", NULL, true, 0,
     "fair_bound_measured_us"},
    {"audit flood: reads p99 <= 2x alone", "flood_quiet_p99_us", "flood_alone_p99_us", true, 2,
     NULL},
    {"audit flood: log growth <= coalescing bound", "flood_audit_bytes_per_s", NULL, true, 0,
     "flood_audit_bound_bytes_per_s"},
};

/* Records (or replaces) a figure. */
void bench_report_set(const char *key, double value)
{
	for (size_t i = 0; i < report_n; i++) {
		if (strcmp(report_fields[i].key, key) == 0) {
			report_fields[i].value = value;
			return;
		}
	}
	if (report_n == REPORT_MAX)
		return;
	snprintf(report_fields[report_n].key, sizeof(report_fields[0].key), "%s", key);
	report_fields[report_n++].value = value;
}

double bench_report_get(const char *key)
{
	for (size_t i = 0; i < report_n; i++)
		if (strcmp(report_fields[i].key, key) == 0)
			return report_fields[i].value;
	return NAN;
}

/* Adds a sentence printed under the table and kept in the JSON. */
void bench_report_note(const char *fmt, ...)
{
	size_t len = strlen(report_notes);
	va_list ap;

	if (len + 2 >= sizeof(report_notes))
		return;
	if (len)
		report_notes[len++] = '\n';
	va_start(ap, fmt);
	vsnprintf(report_notes + len, sizeof(report_notes) - len, fmt, ap);
	va_end(ap);
}

void bench_log(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mbx-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The 1-minute load average: how shared the machine is. */
double bench_report_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double load = NAN;

	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = NAN;
		fclose(f);
	}
	return load;
}

/* The CPU model, core count, memory, kernel and the load before the run, in one line. */
static void report_machine(char *out, size_t len)
{
	char line[256], cpu[128] = "unknown CPU";
	long mem_kib = 0;
	struct utsname u;
	FILE *f;

	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && p) {
			snprintf(cpu, sizeof(cpu), "%s", p + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %ld kB", &mem_kib) == 1)
			break;
	if (f)
		fclose(f);
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	snprintf(out, len, "%s, %ld CPUs, %.1f GiB RAM, Linux %s, load average %.2f before the run",
		 cpu, sysconf(_SC_NPROCESSORS_ONLN), (double)mem_kib / (1024.0 * 1024.0), u.release,
		 bench_report_get("load_avg_before"));
}

/* A figure with sensible precision. */
static void report_format(char *out, size_t len, double v)
{
	if (isnan(v))
		snprintf(out, len, "-");
	else if (fabs(v) >= 1000)
		snprintf(out, len, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(out, len, "%.1f", v);
	else
		snprintf(out, len, "%.2f", v);
}

/* The measured value of a target, NAN if a field is missing. */
static double report_target_value(const struct report_target *t)
{
	double v = bench_report_get(t->num);

	return t->den ? v / bench_report_get(t->den) : v;
}

static double report_target_limit(const struct report_target *t)
{
	return t->limit_key ? bench_report_get(t->limit_key) : t->limit;
}

static void report_print_targets(void)
{
	char v[32], l[32];

	printf("\n%-34s %12s %12s  %s\n", "target", "measured", "limit", "");
	for (size_t i = 0; i < sizeof(report_targets) / sizeof(report_targets[0]); i++) {
		const struct report_target *t = &report_targets[i];
		double val = report_target_value(t), lim = report_target_limit(t);
		bool met = t->at_most ? val <= lim : val >= lim;

		report_format(v, sizeof(v), val);
		report_format(l, sizeof(l), lim);
		printf("%-34s %12s %12s  %s\n", t->what, v, l,
		       isnan(val) || isnan(lim) ? "not measured"
		       : met                    ? "met"
						: "MISSED");
	}
}

void bench_report_print(bool quick)
{
	char machine[320], cell[32], line[128];

	report_machine(machine, sizeof(machine));
	printf("mbx-bench%s on %s\n\n", quick ? " --quick" : "", machine);
	printf("%-38s %-30s %s\n", "measure", "value", "unit");
	for (size_t i = 0; i < sizeof(report_rows) / sizeof(report_rows[0]); i++) {
		const struct report_row *r = &report_rows[i];

		line[0] = '\0';
		for (size_t k = 0; k < 3 && r->keys[k]; k++) {
			report_format(cell, sizeof(cell), bench_report_get(r->keys[k]));
			snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s",
				 k ? " / " : "", cell);
		}
		printf("%-38s %-30s %s\n", r->label, line, r->unit);
	}
	report_print_targets();
	if (report_notes[0])
		printf("\n%s\n", report_notes);
}

/* Writes s as a JSON string. */
static void report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int bench_report_write_json(const char *path, bool quick, const char *command)
{
	char machine[320], date[32];
	time_t now = time(NULL);
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	report_machine(machine, sizeof(machine));
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n  \"machine\": ");
	report_json_string(f, machine);
	fprintf(f, ",\n  \"date\": \"%s\",\n  \"quick\": %s,\n  \"command\": ", date,
		quick ? "true" : "false");
	report_json_string(f, command);
	fprintf(f, ",\n  \"notes\": ");
	report_json_string(f, report_notes);
	for (size_t i = 0; i < report_n; i++) {
		fprintf(f, ",\n  \"%s\": ", report_fields[i].key);
		if (isfinite(report_fields[i].value))
			fprintf(f, "%.6g", report_fields[i].value);
		else
			fprintf(f, "null");
	}
	fprintf(f, "\n}\n");
	return fclose(f) == 0 ? 0 : -EIO;
}

int bench_report_check(const char **missing)
{
	for (size_t i = 0; i < sizeof(report_required) / sizeof(report_required[0]); i++) {
		if (!isfinite(bench_report_get(report_required[i]))) {
			*missing = report_required[i];
			return -ENOENT;
		}
	}
	return 0;
}
