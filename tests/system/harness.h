/*
 * System-test harness: a real mbxd on a temporary socket, and real clients
 * running as real, different uids. Tests run as root (as CI does) so they
 * can create the test users and switch to them with setresuid.
 */
#ifndef MBX_HARNESS_H
#define MBX_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct harness {
	char dir[256]; /* temporary folder holding config, policy, socket, audit */
	char config[320];
	char policy[320];
	char socket[320];
	char audit[320];
	char log[320]; /* mbxd's stderr */
	pid_t mbxd;
	const char *devices_yaml;
	const char *limits_yaml; /* NULL: the harness's defaults */
	const char *audit_yaml;  /* more keys of the audit mapping ("refused_burst: 5"), or NULL */
};

/* Test users and the group they are in; created on first use. */
#define H_OPERATOR  "mbxtest-op" /* in group H_OPS_GROUP */
#define H_ADMIN     "mbxtest-admin"
#define H_OUTSIDER  "mbxtest-nobody"
#define H_OPS_GROUP "mbxtest-ops"

/* Creates the users and group if missing; aborts the test with a reason if not root. */
void harness_users(void);
/* Writes config and policy into a new temporary folder. device_yaml: the devices: list. */
void harness_init(struct harness *h, const char *devices_yaml, const char *policy_yaml);
/* Rewrites the config, e.g. after changing h->audit. */
void harness_write_config(struct harness *h);
/* Starts mbxd -d and waits until its socket accepts. */
void harness_start(struct harness *h);
/*
 * Fails the test when mbxd died of SIGSYS (a system call outside its
 * sandbox), naming the call as mbxd's SIGSYS handler wrote it to h->log;
 * leaves it unreaped. h NULL: the daemon last started. The harness checks
 * after every client it runs, before signals, and at stop and cleanup.
 */
void harness_check_sandbox(struct harness *h);
/* Makes h the daemon harness_check_sandbox(NULL) checks (harness_start does). */
void harness_track(struct harness *h);
/* Sends sig to mbxd. */
void harness_signal(struct harness *h, int sig);
/* SIGTERM, waits; returns mbxd's exit status (-1 if killed by a signal). */
int harness_stop(struct harness *h);
/* Removes the temporary folder. */
void harness_cleanup(struct harness *h);
/* Replaces the policy file's contents. */
void harness_write_policy(struct harness *h, const char *policy_yaml);

/*
 * Runs fn(arg) in a child process as user (groups from the user database),
 * returns the child's exit code.
 */
int harness_as_user(const char *user, int (*fn)(const char *socket, void *arg), const char *socket,
		    void *arg);
/*
 * Runs mbxctl --socket SOCK ARGS... as user; returns its exit code and fills
 * out (NUL-terminated, truncated to outlen) with stdout and stderr.
 */
int harness_mbxctl(struct harness *h, const char *user, char *out, size_t outlen, ...);
/* One command for harness_submit_status (strings NUL-terminated, reason may be NULL). */
struct harness_call {
	const char *device;
	uint16_t opcode;
	const void *payload;
	size_t payload_len;
	const char *reason;
};

/*
 * For harness_as_user: opens a client, submits the harness_call in arg and
 * exits with the broker status; 50 + the CXL return code when the device
 * said no; 100 and up when the client itself failed.
 */
int harness_submit_status(const char *socket, void *arg);
/* Reads a whole file into a malloc'ed string (NULL if absent). */
char *harness_read_file(const char *path);
/* How many times needle stands in text (0 for a NULL text). */
int harness_count(const char *text, const char *needle);
/* How many times needle stands in the file at path (0 if it is absent). */
int harness_file_count(const char *path, const char *needle);
/* Waits up to 10 s for needle to appear in the file at path; fails the test if it does not. */
void harness_wait_file(const char *path, const char *needle);

#endif
