/*
 * Helpers shared by the reliability tests: starting mbxd with extra
 * arguments (or with /dev/log replaced by the test's own socket), reading
 * what /proc says about the running daemon, raw frames on the socket, and
 * the figures file that tests/reliability/report.sh turns into
 * docs/RELIABILITY.md. Built on the system tests' harness.
 */
#ifndef MBX_REL_H
#define MBX_REL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Users for the load test's third and fourth clients (created like the harness's). */
#define REL_USER3 "mbxtest-rel"
#define REL_USER4 "mbxtest-rel2"

/* The load and sandbox tests' devices (mem0, switch0) and read-for-anyone policy. */
extern const char rel_devices_yaml[];
extern const char rel_policy_yaml[];

/* Creates the harness users, REL_USER3 and REL_USER4. */
void rel_users(void);

/*
 * Starts mbxd -d -v -f CONFIG plus extra (NULL-terminated, may be NULL) and
 * waits until it logs "listening on" (after its sandbox is in place).
 * With devlog, mbxd runs in its own mount namespace where /dev/log is the
 * socket at devlog. Waits until the socket accepts; fails the test if mbxd
 * exits first.
 */
void rel_start(struct harness *h, const char *const *extra, const char *devlog);
/* Starts mbxd expecting it to fail: returns its exit status, output in out. */
int rel_start_fails(struct harness *h, const char *const *extra, char *out, size_t outlen);

/* The value of "Key:" in /proc/PID/status (or a task's), trimmed; false if absent. */
bool rel_proc_status(int pid, int tid, const char *key, char *out, size_t outlen);
/* VmRSS of pid in KiB. */
long rel_rss_kib(int pid);
/* Open descriptors of pid. */
int rel_fd_count(int pid);

/* A connected raw socket; with hello, HELLO exchanged. Returns the fd. */
int rel_connect(const char *path, bool hello);
/* Reads until EOF (timeout_ms at most); true at EOF, *saw_error when an ERROR frame came. */
bool rel_drain_to_eof(int fd, int timeout_ms, bool *saw_error);

/* Appends "name value" lines to the figures file for report.sh (MBX_FIGURES_DIR/<file>). */
void rel_figure(const char *file, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Empties a figures file at the start of a test. */
void rel_figures_reset(const char *file);

/* Seconds since some fixed point, for durations. */
double rel_now(void);

#endif
