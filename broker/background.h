/*
 * Background operations, one model for every target: the device itself
 * (depth 0) and each tunnel target behind it (a switch port, an LD, at any
 * tunnel depth), named by its path of tunnel hops.
 *
 * An operation is tracked from the moment it is queued: queued (its job in
 * the device queue), running (its job in the worker), started (the target
 * said Background Command Started; followed by polling that target's
 * Background Operation Status until it ends). A target holds at most one
 * operation in any of these states; a Request Abort to a target is decided
 * as running every operation there, and decided again if one arrives while
 * the abort still waits in the queue. Loop thread only.
 */
#ifndef MBX_BACKGROUND_H
#define MBX_BACKGROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#define BG_DEPTH_MAX 4 /* as the classifier: deeper tunnels are invalid */

struct device;
struct job;
struct event;
struct policy_request;
struct policy_decision;

/* One tunnel hop: Tunnel Management's target type and port or LD id. */
struct bg_hop {
	uint8_t type;
	uint8_t id;
};

/* Where a command runs: the device (depth 0) or the end of a tunnel path. */
struct bg_target {
	uint8_t depth;
	struct bg_hop hop[BG_DEPTH_MAX];
};

enum bg_state {
	BG_QUEUED,  /* its job waits in the device queue */
	BG_RUNNING, /* its job is in the worker */
	BG_STARTED, /* the target runs it in the background */
};

/* One background operation, from queue to completion. */
struct bg_op {
	TAILQ_ENTRY(bg_op) entry; /* in the device's ops */
	struct device *dev;
	uint64_t id; /* poll jobs name their op by id: it may end first */
	struct bg_target target;
	uint16_t opcode; /* the command at the target (the innermost one) */
	bool started;    /* BG_STARTED; else the origin job's state says */
	uint8_t percent;
	struct job *origin; /* requester, audit identity, the request itself */
	bool poll_pending;
	unsigned failures; /* polls that failed in a row */
	struct event *poll_ev;
};

TAILQ_HEAD(bg_ops, bg_op);

/*
 * Finds where a request runs and what runs there: walks its Tunnel
 * Management wrappers (5300h) down to the innermost command. Returns 0, or
 * -EPROTO for a malformed or too deep tunnel (the classifier refuses those).
 */
int bg_target_of(uint16_t opcode, const uint8_t *in, size_t len, struct bg_target *t,
		 uint16_t *inner_opcode);
/* Whether two targets are the same. */
bool bg_target_eq(const struct bg_target *a, const struct bg_target *b);
/* Writes a target for people: "the device" or "port 1 / LD 0". */
void bg_target_name(const struct bg_target *t, char *buf, size_t cap);
/*
 * Wraps a command with no payload for target t in its tunnels: the opcode
 * and payload to send to the device. Returns the payload length or -EMSGSIZE.
 */
int bg_wrap(const struct bg_target *t, uint16_t opcode, uint8_t *buf, size_t cap,
	    uint16_t *outer_opcode);
/*
 * Unwraps the device's answer to a command sent to target t: the target's
 * return code and payload. Returns 0, or -EPROTO when a tunnel level failed
 * or the answer is malformed (*rc then holds the failing level's code).
 */
int bg_unwrap(const struct bg_target *t, uint16_t opcode, uint16_t outer_rc, const uint8_t *out,
	      size_t len, uint16_t *rc, const uint8_t **payload, size_t *payload_len);

/* The state of an operation now. */
enum bg_state bg_op_state(const struct bg_op *op);
/* The operation at target t of the device, in any state, or NULL. */
struct bg_op *bg_find(struct bg_ops *ops, const struct bg_target *t);
/* The first started operation, direct ones first, for DEVICES and metrics; NULL if none. */
const struct bg_op *background_current(const struct device *d);

/* Starts tracking a job that may start a background operation at target t (queued). */
struct bg_op *background_track(struct job *j, const struct bg_target *t, uint16_t opcode);
/* Forgets the operation of a job that ended without starting one (or never ran). */
void background_untrack(struct job *j);
/* Whether a job's answer says its target started a background operation. */
bool background_started(const struct job *j);
/*
 * Follows the operation a job started (tracked or not): polls its target,
 * sends EVENTs, and closes the audit record at the end. The job lives on as
 * the operation's origin.
 */
void background_start(struct job *j);
/* Handles the answer to one Background Operation Status poll. */
void background_on_poll(struct job *j);
/* Ends every operation of a closing device without touching the audit. */
void background_close(struct device *d);

struct session;
/* Adds s to the device's watchers; -EALREADY when it watches it already. */
int background_watch(struct session *s, struct device *d, uint32_t tag);
/* Sends s an EVENT with the progress of each started operation of the device. */
void background_report(struct session *s, struct device *d, uint32_t tag);
/* Removes every watch of a session that is going away. */
void background_unwatch_all(struct session *s);

/*
 * Decides a Request Abort to target t as running the operation there: pr
 * is the abort's request (principal, reason, clock), its opcode and payload
 * replaced by the operation's. False (dec untouched) when none is there.
 */
bool background_decide_abort(struct device *d, const struct bg_target *t,
			     const struct policy_request *pr, struct policy_decision *dec);
/* Remembers an allowed abort job until it leaves the queue. */
void background_abort_track(struct job *j, const struct bg_target *t);
/* Forgets an abort job (it left the queue, or is being freed). */
void background_abort_untrack(struct job *j);

#endif
