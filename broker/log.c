/* Daemon logging to stderr (foreground) or syslog. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "syslog-dgram.h"

static bool log_to_stderr = true;
static int log_verbose;

/* Chooses where log lines go: stderr, or syslog datagrams that never block. */
void log_init(bool foreground, int verbose)
{
	log_to_stderr = foreground;
	log_verbose = verbose;
}

static void log_vwrite(int prio, const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_to_stderr) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "mbxd %s.%03ld %s%s%s\n", when, ts.tv_nsec / 1000000, line,
			suffix ? ": " : "", suffix ? suffix : "");
	} else {
		char full[1200];
		int n = snprintf(full, sizeof(full), "%s%s%s", line, suffix ? ": " : "",
				 suffix ? suffix : "");

		/* A log line that cannot go now is lost rather than stall the daemon. */
		if (n > 0)
			syslog_dgram_send(LOG_DAEMON | prio, full,
					  (size_t)n < sizeof(full) ? (size_t)n : sizeof(full) - 1);
	}
}

/* Logs an informational line. */
void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

/* Logs a line only with -v. */
void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

/* Logs a warning with the text of errno. */
void log_warn(const char *fmt, ...)
{
	const char *why = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, why);
	va_end(ap);
}

/* Logs a warning that is complete in itself. */
void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

/* Logs with errno's text and exits: start-up failures only. */
void fatal(const char *fmt, ...)
{
	const char *why = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, why);
	va_end(ap);
	exit(1);
}

/* Logs and exits: start-up failures only. */
void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
