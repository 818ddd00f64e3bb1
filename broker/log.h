/*
 * Daemon logging, after relayd: log_warn adds strerror(errno), log_warnx
 * does not; fatal/fatalx are for start-up and broken invariants only.
 */
#ifndef MBX_LOG_H
#define MBX_LOG_H

#include <stdbool.h>

/* foreground: to stderr; otherwise to syslog (daemon facility). */
void log_init(bool foreground, int verbose);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
