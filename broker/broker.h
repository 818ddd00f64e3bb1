/*
 * The daemon's shared state. Everything here belongs to the event-loop
 * thread; device worker threads touch only their own device's locked queue.
 */
#ifndef MBX_BROKER_H
#define MBX_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event_base;
struct event;
struct config;
struct policy;
struct audit;
struct audit_limit;
struct refusal_pace;
struct device;
struct session;

#define MBX_SOFTWARE "mbxd 0.1.0"

struct broker {
	struct event_base *base;
	struct config *cfg;
	struct policy *policy;
	struct audit *audit;
	struct audit_limit *audit_limit;   /* coalesces refusal records (audit-limit.h) */
	struct event *audit_timer;         /* flushes its counts every audit.coalesce_ms */
	struct refusal_pace *refusal_pace; /* pauses a user refused too fast (refusal-pace.h) */
	struct audit_anchor *anchor;       /* checkpoints and seals (audit-anchor.c) */
	struct device **devices;
	size_t n_devices;
	int listen_fd;
	struct event *accept_ev;
	TAILQ_HEAD(, session) sessions;
	size_t n_sessions;
	uint64_t next_session_id;
	uint64_t queued_bytes; /* input payloads of jobs queued or running */
	bool stopping;
	struct event *stop_check; /* while stopping: exit once devices are idle */
	uint64_t stop_deadline_us;
};

/* The device called name, or NULL. */
struct device *broker_find_device(struct broker *b, const char *name);
/* Monotonic time in microseconds. */
uint64_t broker_now_us(void);
/* Reloads the policy from the configured file; keeps the old one on error. */
void broker_reload_policy(struct broker *b);
/* Begins an orderly stop: no new requests, in-flight ones finish, then exit. */
void broker_stop(struct broker *b);

#endif
