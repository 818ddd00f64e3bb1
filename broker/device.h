/*
 * One mailbox: its transport, its worker thread, and the queue between.
 *
 * The loop thread decides and enqueues jobs; the device's worker thread runs
 * them one at a time through the transport (which may block for seconds)
 * and hands each back to the loop through an event. Users' jobs wait in
 * per-user FIFOs served round-robin, so one tenant's flood cannot starve
 * another; the broker's own jobs (background polling) go first.
 */
#ifndef MBX_DEVICE_H
#define MBX_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "background.h"
#include "metrics.h"
#include "policy.h"
#include "transport.h"

struct broker;
struct session;
struct config;
struct config_device;

/* What a device supports, as read from it: its CEL and its Features. */
struct device_caps {
	bool have_cel;
	struct cel_entry *cel;
	size_t n_cel;
	bool have_features;
	struct policy_feature *features;
	size_t n_features;
};

enum job_state {
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_DONE,
};

struct job {
	TAILQ_ENTRY(job) qentry; /* in a user queue, the internal queue or done */
	TAILQ_ENTRY(job) sentry; /* in its session's list */
	struct device *dev;
	struct session *session; /* NULL once the client has gone */
	enum job_state state;
	bool internal;           /* the broker's own command, not a client's */
	bool abandoned;          /* answered as timed out while the device still holds it */
	bool reprobe;            /* internal: read the device's CEL and Features again */
	struct device_caps caps; /* reprobe: what the worker read */
	uint32_t tag;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char user[64];
	char reason[MBX_REASON_MAX];
	struct policy_decision decision;
	uint64_t audit_seq;  /* its INTENT record, or its DECISION record with
				audit.all_decisions; 0 when none */
	unsigned audit_held; /* log room its INTENT holds for its closing records */
	uint8_t *in;         /* owned copy of the input payload */
	size_t in_len;
	uint8_t *out;                 /* owned output, set by the worker */
	struct mbx_transport_cmd cmd; /* cmd.timeout_ms: always the device's */
	uint32_t client_timeout_ms;   /* the requester's own wait, shorter; 0: none */
	struct event *client_timer;   /* ends that wait; never the device's health */
	size_t reserve;               /* held against its session's pending bound */
	int xrc;                      /* enum mbx_xport_rc, or -1: never ran */
	int not_run_status;           /* enum mbx_status when xrc is -1 */
	uint64_t started_us;
	uint64_t ended_us;
	struct bg_op *bg;   /* the background operation it may start or started */
	uint64_t poll_op;   /* internal: the id of the operation it polls */
	bool abort_tracked; /* a Request Abort in d->aborts, to abort_target */
	struct bg_target abort_target;
	TAILQ_ENTRY(job) aentry;
};

struct user_queue {
	uid_t uid;
	size_t depth;
	TAILQ_HEAD(, job) jobs;
	TAILQ_ENTRY(user_queue) ring;
};

/* A session following a device's background operations (WATCH). */
struct watch {
	TAILQ_ENTRY(watch) dentry; /* in the device's watchers */
	TAILQ_ENTRY(watch) sentry; /* in the session's watches */
	struct device *dev;
	struct session *session;
	uint32_t tag; /* the WATCH's tag, echoed in its EVENTs */
};

struct device {
	struct broker *broker;
	char name[MBX_NAME_MAX];
	const char *transport_name;
	const struct mbx_transport_ops *ops;
	void *priv;
	struct mbx_transport_info info;
	struct policy_device pdev;
	struct device_caps caps; /* what d->pdev points into */
	uint32_t timeout_ms;
	uint32_t max_queue_per_user;

	/* Shared with the worker thread, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool thread_started;
	bool stop;
	TAILQ_HEAD(, job) internal;
	TAILQ_HEAD(, user_queue) ring;
	/*
	 * The user whose job the worker took last, if it has more: left at the
	 * ring's head and moved behind the others at the next pick, so a user
	 * who queued while that job ran goes next (see device_next_job).
	 */
	struct user_queue *served;
	TAILQ_HEAD(, job) done;
	struct job *running;
	uint64_t running_since_us;
	uint8_t *outbuf; /* worker-only: payload_max bytes */

	/* Loop thread only. */
	struct event *done_ev;
	struct event *watchdog_ev;
	struct event *reprobe_ev; /* retries a failed re-probe */
	enum mbx_device_state state;
	struct bg_ops bg_ops; /* every target's operation, see background.h */
	uint64_t bg_next_id;
	TAILQ_HEAD(, job) aborts; /* allowed Request Aborts not yet run */
	size_t queued;            /* jobs queued or running, for orderly stop */
	TAILQ_HEAD(, watch) watchers;
	struct metrics_device metrics;
};

/* Checks every device's transport options as opening it would, opening nothing (mbxd -n). */
int device_check_config(const struct config *c, char *err, size_t errlen);

/* Opens the transport and reads the device's CEL. */
int device_open(struct broker *b, const struct config_device *cd, struct device **out, char *err,
		size_t errlen);
/* Starts the device's worker thread. */
int device_start(struct device *d, char *err, size_t errlen);
/*
 * Reads the device's Command Effects Log (Get Supported Logs, Get Log) into
 * d->pdev, so the policy knows what the device supports. Called before the
 * worker starts. A device without Get Supported Logs has no CEL (have_cel false).
 */
int device_probe(struct device *d, char *err, size_t errlen);
/* The steps of device_probe, for a re-probe from the worker. */
int device_probe_read(struct device *d, struct device_caps *c, char *err, size_t errlen);
void device_caps_apply(struct device *d, struct device_caps *c);
void device_caps_free(struct device_caps *c);
/*
 * A device that stopped answering is back: read its CEL and Features again
 * (a reset may have changed them) before it returns to service.
 */
void device_reprobe(struct device *d);
/* Handles the re-probe's outcome on the loop thread. */
void device_reprobe_done(struct job *j);
/* Stops the worker (after its current command) and closes the transport. */
void device_close(struct device *d);

/* A new job for this device, with a copy of the input payload. */
struct job *device_job_new(struct device *d, const uint8_t *in, size_t in_len);
void device_job_free(struct job *j);
/*
 * Queues a job for the worker. Returns 0, or -EBUSY when the user's FIFO is
 * full (the caller answers busy with a retry hint).
 */
int device_enqueue(struct device *d, struct job *j);
/*
 * Runs a job on the calling (loop) thread when the transport never blocks
 * and the device is idle; false when it must go through the queue instead.
 */
bool device_run_inline(struct device *d, struct job *j);
/* Removes a job that is still queued; false if the worker already took it. */
bool device_dequeue(struct device *d, struct job *j);
/* Whether the job still waits in the queue. */
bool device_job_queued(struct device *d, const struct job *j);
/* Fails every queued job (not the running one) through the completion path. */
void device_fail_queued(struct device *d, enum mbx_status status, const char *why);

#endif
