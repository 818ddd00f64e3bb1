/*
 * Counters and gauges for monitoring, rendered in the Prometheus text
 * exposition format 0.0.4. Device names need no label escaping: the
 * configuration allows only A-Z a-z 0-9 _ . - in them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "device.h"
#include "metrics.h"

static const char *const metrics_outcome_names[METRICS_OUTCOME_COUNT] = {
    [METRICS_ALLOWED] = "allowed",
    [METRICS_DENIED] = "denied",
    [METRICS_INVALID] = "invalid",
    [METRICS_FAILED] = "failed",
};

static const char *const metrics_bg_names[METRICS_BG_COUNT] = {
    [METRICS_BG_STARTED] = "started",
    [METRICS_BG_COMPLETED] = "completed",
    [METRICS_BG_ABORTED] = "aborted",
    [METRICS_BG_LOST] = "lost",
};

static const char *const metrics_state_names[] = {
    [MBX_DEVICE_READY] = "ready",
    [MBX_DEVICE_BACKGROUND] = "background",
    [MBX_DEVICE_FAILED] = "failed",
};

/* Counts a policy decision; an out-of-range class or decision is a bug, not counted. */
void metrics_decision(struct device *d, unsigned cls, unsigned decision)
{
	static const enum metrics_outcome outcome[] = {
	    [MBX_DECISION_ALLOW] = METRICS_ALLOWED,
	    [MBX_DECISION_DENY] = METRICS_DENIED,
	    [MBX_DECISION_INVALID] = METRICS_INVALID,
	};

	if (cls < MBX_CLASS_COUNT && decision < sizeof(outcome) / sizeof(outcome[0]))
		d->metrics.requests[cls][outcome[decision]]++;
}

/* Counts an allowed request that was not done. */
void metrics_failed(struct device *d, unsigned cls)
{
	if (cls < MBX_CLASS_COUNT)
		d->metrics.requests[cls][METRICS_FAILED]++;
}

/* Counts a background operation's start or end. */
void metrics_background(struct device *d, enum metrics_bg what)
{
	d->metrics.background[what]++;
}

/* Counts an audit record that could not be written. */
void metrics_audit_error(struct device *d)
{
	d->metrics.audit_errors++;
}

/* Writes a metric family's HELP and TYPE lines. */
static void metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The per-class request counters of every device. */
static void metrics_requests(FILE *f, const struct broker *b, const bool *shown)
{
	metrics_family(f, "mbxd_requests_total", "counter",
		       "Requests by device, class and outcome (allowed, denied, invalid: the "
		       "policy's decision; failed: allowed, then not done).");
	for (size_t i = 0; i < b->n_devices; i++) {
		const struct device *d = b->devices[i];

		if (!shown[i])
			continue;
		for (unsigned c = 0; c < MBX_CLASS_COUNT; c++)
			for (unsigned o = 0; o < METRICS_OUTCOME_COUNT; o++)
				fprintf(f,
					"mbxd_requests_total{device=\"%s\",class=\"%s\","
					"outcome=\"%s\"} %llu\n",
					d->name, mbx_class_name((int)c), metrics_outcome_names[o],
					(unsigned long long)d->metrics.requests[c][o]);
	}
}

/* Background operations: how many started and ended how, and what runs now. */
static void metrics_background_ops(FILE *f, const struct broker *b, const bool *shown)
{
	metrics_family(f, "mbxd_background_operations_total", "counter",
		       "Background operations (Sanitize, Scan Media, Transfer FW...) by device "
		       "and event: started, completed, aborted, lost.");
	for (size_t i = 0; i < b->n_devices; i++)
		for (unsigned e = 0; shown[i] && e < METRICS_BG_COUNT; e++)
			fprintf(
			    f,
			    "mbxd_background_operations_total{device=\"%s\",event=\"%s\"} %llu\n",
			    b->devices[i]->name, metrics_bg_names[e],
			    (unsigned long long)b->devices[i]->metrics.background[e]);
	metrics_family(f, "mbxd_background_active", "gauge",
		       "1 while a background operation runs on the device.");
	for (size_t i = 0; i < b->n_devices; i++)
		if (shown[i])
			fprintf(f, "mbxd_background_active{device=\"%s\"} %d\n",
				b->devices[i]->name, background_current(b->devices[i]) ? 1 : 0);
	metrics_family(f, "mbxd_background_percent", "gauge",
		       "Progress of the running background operation, 0 to 100.");
	for (size_t i = 0; i < b->n_devices; i++) {
		const struct bg_op *op = background_current(b->devices[i]);

		if (shown[i])
			fprintf(f, "mbxd_background_percent{device=\"%s\"} %u\n",
				b->devices[i]->name, op ? op->percent : 0);
	}
}

/* Per-device gauges and the audit error counter. */
static void metrics_devices(FILE *f, const struct broker *b, const bool *shown)
{
	metrics_family(f, "mbxd_queue_depth", "gauge",
		       "Commands queued for or running in the device.");
	for (size_t i = 0; i < b->n_devices; i++)
		if (shown[i])
			fprintf(f, "mbxd_queue_depth{device=\"%s\"} %zu\n", b->devices[i]->name,
				b->devices[i]->queued);
	metrics_family(f, "mbxd_device_state", "gauge",
		       "1 for the device's current state (ready, background, failed), else 0.");
	for (size_t i = 0; i < b->n_devices; i++)
		for (unsigned s = 0;
		     shown[i] && s < sizeof(metrics_state_names) / sizeof(metrics_state_names[0]);
		     s++)
			fprintf(f, "mbxd_device_state{device=\"%s\",state=\"%s\"} %d\n",
				b->devices[i]->name, metrics_state_names[s],
				b->devices[i]->state == s ? 1 : 0);
	metrics_family(f, "mbxd_audit_errors_total", "counter",
		       "Audit records about the device that could not be written (audited "
		       "commands are refused meanwhile).");
	for (size_t i = 0; i < b->n_devices; i++)
		if (shown[i])
			fprintf(f, "mbxd_audit_errors_total{device=\"%s\"} %llu\n",
				b->devices[i]->name,
				(unsigned long long)b->devices[i]->metrics.audit_errors);
}

/*
 * Renders the exposition with the series of the devices shown[i] marks:
 * those the asking client may see (docs/policy.md); the daemon-wide gauges
 * say nothing about any device.
 */
int metrics_render(const struct broker *b, const bool *shown, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);
	size_t n_shown = 0;

	if (!f)
		return -errno;
	for (size_t i = 0; i < b->n_devices; i++)
		n_shown += shown[i];
	metrics_family(f, "mbxd_up", "gauge", "1: the daemon answers.");
	fprintf(f, "mbxd_up 1\n");
	metrics_family(f, "mbxd_clients", "gauge", "Client connections open now.");
	fprintf(f, "mbxd_clients %zu\n", b->n_sessions);
	metrics_family(f, "mbxd_devices", "gauge", "Devices the daemon owns that you may see.");
	fprintf(f, "mbxd_devices %zu\n", n_shown);
	metrics_requests(f, b, shown);
	metrics_background_ops(f, b, shown);
	metrics_devices(f, b, shown);
	if (ferror(f)) {
		fclose(f);
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	if (fclose(f) != 0) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}
