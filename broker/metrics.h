/*
 * The daemon's counters, per device and per class, and their rendering in
 * the Prometheus text exposition format (docs/metrics.md). Counted on the
 * loop thread only, at the places the events happen.
 */
#ifndef MBX_METRICS_H
#define MBX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <mbx/proto.h>

struct broker;
struct device;

/* What became of a request the policy decided. */
enum metrics_outcome {
	METRICS_ALLOWED = 0, /* the policy allowed it */
	METRICS_DENIED,      /* the policy denied it (rules, rate limits, reasons) */
	METRICS_INVALID,     /* the policy found it malformed */
	METRICS_FAILED,      /* allowed, then not done: broker status or device return code */
	METRICS_OUTCOME_COUNT
};

/* How background operations went. */
enum metrics_bg {
	METRICS_BG_STARTED = 0,
	METRICS_BG_COMPLETED,
	METRICS_BG_ABORTED,
	METRICS_BG_LOST, /* the device stopped answering status polls */
	METRICS_BG_COUNT
};

struct metrics_device {
	uint64_t requests[MBX_CLASS_COUNT][METRICS_OUTCOME_COUNT];
	uint64_t background[METRICS_BG_COUNT];
	uint64_t audit_errors; /* audit records about this device that could not be written */
};

/* Counts a decision of the policy (enum mbx_decision) for a class. */
void metrics_decision(struct device *d, unsigned cls, unsigned decision);
/* Counts an allowed request that did not get done. */
void metrics_failed(struct device *d, unsigned cls);
/* Counts a background operation's start or end. */
void metrics_background(struct device *d, enum metrics_bg what);
/* Counts an audit record that could not be written. */
void metrics_audit_error(struct device *d);
/* Renders every counter and gauge; *text is NUL-terminated, freed by the caller. */
int metrics_render(const struct broker *b, const bool *shown, char **text, size_t *len);

#endif
