/* Latency samples, percentiles, and the clocks and /proc readings behind them. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Allocates room for cap samples; more are dropped, never reallocated mid-run. */
int stats_init(struct stats *s, size_t cap)
{
	memset(s, 0, sizeof(*s));
	s->ns = malloc((cap ? cap : 1) * sizeof(*s->ns));
	if (!s->ns)
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

/* Frees the samples. */
void stats_free(struct stats *s)
{
	free(s->ns);
	memset(s, 0, sizeof(*s));
}

/* Records one sample. */
void stats_add(struct stats *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
	s->sorted = false;
}

/* Appends src's samples to dst, as far as dst has room. */
void stats_merge(struct stats *dst, const struct stats *src)
{
	for (size_t i = 0; i < src->n; i++)
		stats_add(dst, src->ns[i]);
}

static int stats_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile: the smallest sample with at least pct% at or below it. */
double stats_pct_us(struct stats *s, double pct)
{
	size_t rank;

	if (!s->n)
		return 0;
	if (!s->sorted) {
		qsort(s->ns, s->n, sizeof(*s->ns), stats_cmp);
		s->sorted = true;
	}
	rank = (size_t)(pct / 100.0 * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return (double)s->ns[rank - 1] / 1000.0;
}

/* The mean in microseconds. */
double stats_mean_us(const struct stats *s)
{
	double sum = 0;

	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->ns[i];
	return s->n ? sum / (double)s->n / 1000.0 : 0;
}

/* The monotonic clock in nanoseconds. */
uint64_t stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* This process's CPU time, every thread included. */
uint64_t stats_self_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sums the run time of every thread of pid from /proc/PID/task/TID/schedstat (ns). */
uint64_t stats_proc_cpu_ns(pid_t pid)
{
	unsigned long long run, sum = 0;
	char path[300];
	struct dirent *e;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.32s/schedstat", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &run) == 1)
			sum += run;
		fclose(f);
	}
	closedir(dir);
	return sum;
}

/* VmRSS from /proc/PID/status. */
long stats_proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
