/*
 * Following a background operation (Sanitize, Transfer FW, Scan Media...):
 * poll Background Operation Status (0002h) from the device's worker, send
 * progress and completion EVENTs to the requester, and close the audit
 * record when the device says it is done. The operation's origin job keeps
 * the requester's identity for that last record even if the client left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit.h"
#include "broker.h"
#include "catalog.h"
#include "device.h"
#include "log.h"
#include "request.h"
#include "session.h"

#define BG_POLL_MS 250
/* Background Operation Status output (CXL r3.1 Table 8-37). */
#define BG_STATUS_LEN 8
#define BG_STATUS_RUNNING 0x01
/* Give up following after this many polls fail in a row. */
#define BG_POLL_FAILURES_MAX 20

static void background_poll_cb(evutil_socket_t fd, short what, void *arg);

/* The EVENT describing the device's background operation now. */
static void background_event_fill(const struct device *d, struct mbx_event *ev, uint8_t kind,
				  uint16_t rc, uint16_t vendor)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->device, sizeof(ev->device), "%s", d->name);
	ev->opcode = d->bg.opcode;
	ev->kind = kind;
	ev->percent = d->bg.percent;
	ev->cxl_rc = rc;
	ev->vendor_status = vendor;
	ev->audit_seq = d->bg.origin ? d->bg.origin->audit_seq : 0;
}

/* Sends an EVENT to the sessions watching the device. */
static void background_event_watchers(struct device *d, const struct mbx_event *ev)
{
	struct watch *w;

	TAILQ_FOREACH(w, &d->watchers, dentry)
		session_send_event(w->session, w->tag, ev);
}

/* Sends an EVENT to the requester, if it is still connected, and to the watchers. */
static void background_event(struct device *d, uint8_t kind, uint16_t rc, uint16_t vendor)
{
	struct job *o = d->bg.origin;
	struct mbx_event ev;

	background_event_fill(d, &ev, kind, rc, vendor);
	if (o->session)
		session_send_event(o->session, o->tag, &ev);
	background_event_watchers(d, &ev);
}

/* Follows a device for a session. */
int background_watch(struct session *s, struct device *d, uint32_t tag)
{
	struct watch *w;

	TAILQ_FOREACH(w, &s->watches, sentry)
		if (w->dev == d)
			return -EALREADY;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->dev = d;
	w->session = s;
	w->tag = tag;
	TAILQ_INSERT_TAIL(&d->watchers, w, dentry);
	TAILQ_INSERT_TAIL(&s->watches, w, sentry);
	return 0;
}

/* Tells one session how the running operation is doing, if one runs. */
void background_report(struct session *s, struct device *d, uint32_t tag)
{
	struct mbx_event ev;

	if (!d->bg.active)
		return;
	background_event_fill(d, &ev, MBX_EVENT_PROGRESS, 0, 0);
	session_send_event(s, tag, &ev);
}

/* Removes a leaving session from every device it watches. */
void background_unwatch_all(struct session *s)
{
	struct watch *w;

	while ((w = TAILQ_FIRST(&s->watches))) {
		TAILQ_REMOVE(&s->watches, w, sentry);
		TAILQ_REMOVE(&w->dev->watchers, w, dentry);
		free(w);
	}
}

static void background_arm(struct device *d)
{
	struct timeval tv = {0, BG_POLL_MS * 1000};

	evtimer_add(d->bg.poll_ev, &tv);
}

/* Marks the device busy with an operation and starts polling it. */
void background_start(struct device *d, struct job *origin)
{
	if (d->bg.active) {
		/* The device accepted a second one: follow the newer, as the device does. */
		log_warnx("device %s: a second background operation started", d->name);
		struct job *old = d->bg.origin;

		if (old->session)
			session_remove_job(old->session, old);
		device_job_free(old);
	}
	if (!d->bg.poll_ev)
		d->bg.poll_ev = evtimer_new(d->broker->base, background_poll_cb, d);
	d->bg.active = true;
	d->bg.opcode = origin->cmd.opcode;
	d->bg.percent = 0;
	d->bg.origin = origin;
	d->bg.failures = 0;
	d->state = MBX_DEVICE_BACKGROUND;
	log_info("device %s: background operation 0x%04x started by %s (audit %llu)", d->name,
		 d->bg.opcode, origin->user, (unsigned long long)origin->audit_seq);
	metrics_background(d, METRICS_BG_STARTED);
	if (!TAILQ_EMPTY(&d->watchers)) {
		struct mbx_event ev;

		/* The requester has its RESULT; watchers learn of the start here. */
		background_event_fill(d, &ev, MBX_EVENT_PROGRESS, 0, 0);
		background_event_watchers(d, &ev);
	}
	background_arm(d);
}

/* Timer: queue one status poll ahead of users' commands. */
static void background_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	struct job *j;

	(void)fd;
	(void)what;
	if (!d->bg.active || d->bg.poll_pending)
		return;
	j = device_job_new(d, NULL, 0);
	if (!j) {
		background_arm(d);
		return;
	}
	j->internal = true;
	j->cmd.opcode = CXL_OP_BG_STATUS;
	snprintf(j->user, sizeof(j->user), "mbxd");
	if (device_enqueue(d, j) < 0) {
		device_job_free(j);
		background_arm(d);
		return;
	}
	d->bg.poll_pending = true;
}

/* The metrics event for how an operation ended. */
static enum metrics_bg background_outcome(const char *how)
{
	if (!strcmp(how, "completed"))
		return METRICS_BG_COMPLETED;
	return !strcmp(how, "aborted") ? METRICS_BG_ABORTED : METRICS_BG_LOST;
}

/* Ends the operation: final EVENT, audit record, device ready again. */
static void background_finish(struct device *d, uint16_t rc, uint16_t vendor, const char *how)
{
	struct job *o = d->bg.origin;
	struct audit_record rec = {
		.kind = AUDIT_BACKGROUND,
		.intent_seq = o->audit_seq,
		.uid = o->uid,
		.gid = o->gid,
		.pid = o->pid,
		.user = o->user,
		.device = d->name,
		.transport = d->transport_name,
		.opcode = o->cmd.opcode,
		.opcode_name = o->decision.name,
		.cls = o->decision.cls,
		.decision = o->decision.decision,
		.status = MBX_STATUS_OK,
		.rule = o->decision.rule,
		.source = o->decision.source,
		.reason = o->reason[0] ? o->reason : NULL,
		.payload = o->in,
		.payload_len = o->in_len,
		.have_rc = true,
		.cxl_rc = rc,
		.vendor_status = vendor,
		.duration_us = (uint32_t)(broker_now_us() - o->started_us),
		.background = how,
		.release = o->audit_held, /* the room its intent held for this record */
	};
	uint64_t seq;

	if (audit_write(d->broker->audit, &rec, &seq) < 0) {
		metrics_audit_error(d);
		log_warnx("device %s: cannot record the end of background operation (intent %llu)",
			  d->name, (unsigned long long)o->audit_seq);
	} else {
		o->audit_held = 0;
	}
	log_info("device %s: background operation 0x%04x %s: %s", d->name, d->bg.opcode, how,
		 cxl_rc_name(rc));
	metrics_background(d, background_outcome(how));
	if (!strcmp(how, "completed"))
		d->bg.percent = 100;
	background_event(d, MBX_EVENT_COMPLETE, rc, vendor);
	if (o->session)
		session_remove_job(o->session, o);
	device_job_free(o);
	d->bg.active = false;
	d->bg.origin = NULL;
	if (d->state == MBX_DEVICE_BACKGROUND)
		d->state = MBX_DEVICE_READY;
}

/* Reads one status answer: progress, completion, or a failed poll. */
void background_on_poll(struct job *j)
{
	struct device *d = j->dev;
	const uint8_t *o = j->out;
	uint8_t percent;

	d->bg.poll_pending = false;
	if (!d->bg.active) {
		device_job_free(j);
		return;
	}
	if (j->xrc != MBX_XPORT_OK || j->cmd.cxl_rc != CXL_RC_SUCCESS ||
	    j->cmd.out_len < BG_STATUS_LEN) {
		if (++d->bg.failures >= BG_POLL_FAILURES_MAX)
			background_finish(d, CXL_RC_INTERNAL_ERROR, 0, "lost");
		else
			background_arm(d);
		device_job_free(j);
		return;
	}
	d->bg.failures = 0;
	percent = o[0] >> 1;
	if (percent > 100)
		percent = 100; /* the device's number, clamped to what the protocol can say */
	if (!(o[0] & BG_STATUS_RUNNING)) {
		uint16_t rc = (uint16_t)(o[4] | o[5] << 8);

		background_finish(d, rc, (uint16_t)(o[6] | o[7] << 8),
				  rc == CXL_RC_ABORTED ? "aborted" : "completed");
	} else {
		if (percent != d->bg.percent) {
			d->bg.percent = percent;
			background_event(d, MBX_EVENT_PROGRESS, 0, 0);
		}
		background_arm(d);
	}
	device_job_free(j);
}
