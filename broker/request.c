/*
 * The path of one request: decide, audit ahead for audited classes, queue
 * for the device, then answer and close the audit record. DESIGN.md
 * "The path of one request" is the map of this file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mbx/strcopy.h>

#include "audit-limit.h"
#include "audit.h"
#include "broker.h"
#include "catalog.h"
#include "config.h"
#include "device.h"
#include "log.h"
#include "policy.h"
#include "request.h"
#include "session.h"

#define BUSY_RETRY_MS 100

/* Copies a decision into the RESULT fields that report it. */
static void request_result_from_decision(struct mbx_result *r, const struct policy_decision *d)
{
	memset(r, 0, sizeof(*r));
	r->status = (uint16_t)d->status;
	r->cls = (uint8_t)d->cls;
	r->decision = (uint8_t)d->decision;
	r->retry_after_ms = d->retry_after_ms;
	mbx_strcopy(r->rule, sizeof(r->rule), d->rule);
	mbx_strcopy(r->source, sizeof(r->source), d->source);
	mbx_strcopy(r->message, sizeof(r->message), d->message);
	r->n_inner = (uint16_t)(d->n_inner < MBX_INNER_MAX ? d->n_inner : MBX_INNER_MAX);
	memcpy(r->inner, d->inner, r->n_inner * sizeof(r->inner[0]));
}

/* Writes one audit record about a job; returns 0 or -errno. */
static int request_audit(struct job *j, enum audit_kind kind, const struct mbx_result *r,
			 const char *background, uint64_t *seq)
{
	struct audit_record rec = {
	    .kind = kind,
	    .intent_seq = j->audit_seq,
	    .uid = j->uid,
	    .gid = j->gid,
	    .pid = j->pid,
	    .user = j->user,
	    .device = j->dev->name,
	    .transport = j->dev->transport_name,
	    .opcode = j->cmd.opcode,
	    .opcode_name = j->decision.name,
	    .inner = j->decision.inner,
	    .n_inner = j->decision.n_inner,
	    .cls = j->decision.cls,
	    .decision = j->decision.decision,
	    .status = r ? (enum mbx_status)r->status : j->decision.status,
	    .rule = j->decision.rule[0] ? j->decision.rule : NULL,
	    .source = j->decision.source[0] ? j->decision.source : NULL,
	    .reason = j->reason[0] ? j->reason : NULL,
	    .payload = j->in,
	    .payload_len = j->in_len,
	    .have_rc = r && r->status == MBX_STATUS_OK,
	    .cxl_rc = r ? r->cxl_rc : 0,
	    .vendor_status = r ? r->vendor_status : 0,
	    .duration_us = r ? r->duration_us : 0,
	    .background = background,
	};
	struct broker *b = j->dev->broker;
	uint64_t dummy;
	int rc;

	/* An intent holds room for its result, and for its background record if it may start one.
	 */
	if (kind == AUDIT_INTENT)
		rec.reserve = j->decision.background ? 2 : 1;
	/* A result gives it all back, but one held for the background record it started. */
	if (kind == AUDIT_RESULT)
		rec.release = background && j->audit_held > 1 ? j->audit_held - 1 : j->audit_held;
	/* Refusals are the records one user can produce without limit: coalesced per user. */
	if (kind == AUDIT_DECISION && rec.decision != MBX_DECISION_ALLOW && b->audit_limit)
		rc = audit_limit_write(b->audit_limit, &rec, broker_now_us() / 1000,
				       seq ? seq : &dummy);
	else
		rc = audit_write(b->audit, &rec, seq ? seq : &dummy);
	if (rc < 0) {
		metrics_audit_error(j->dev);
		return rc;
	}
	j->audit_held += rec.reserve;
	j->audit_held -= rec.release;
	return 0;
}

/*
 * Whether a refusal leaves a record. A command the device does not support,
 * of a class that is not audited, is no more news than an allowed read
 * (which leaves none): a monitoring agent polling one would write a record
 * per poll. audit.all_decisions records it too.
 */
static bool request_refusal_recorded(const struct broker *b, const struct policy_decision *dec)
{
	if (dec->status == MBX_STATUS_UNSUPPORTED && !dec->audited)
		return b->cfg->audit_all_decisions;
	return true;
}

/*
 * Answers a request at once with a status and a message, touching nothing
 * else. cls is the request's class: the decision's, or before one is made
 * the opcode's own (policy_opcode_class), never a made-up read.
 */
static void request_refuse(struct session *s, uint32_t tag, enum mbx_class cls,
			   enum mbx_status status, uint32_t retry_ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void request_refuse(struct session *s, uint32_t tag, enum mbx_class cls,
			   enum mbx_status status, uint32_t retry_ms, const char *fmt, ...)
{
	struct mbx_result r = {
	    .status = (uint16_t)status, .cls = (uint8_t)cls, .retry_after_ms = retry_ms};
	va_list ap;

	r.decision = status == MBX_STATUS_INVALID ? MBX_DECISION_INVALID : MBX_DECISION_DENY;
	va_start(ap, fmt);
	vsnprintf(r.message, sizeof(r.message), fmt, ap);
	va_end(ap);
	session_send_refusal(s, tag, &r);
}

/* A new job carrying the requester's identity and the decision. */
static struct job *request_job(struct session *s, struct device *d, uint32_t tag,
			       const struct mbx_submit *m, const struct policy_decision *dec)
{
	struct job *j = device_job_new(d, m->payload, m->payload_len);

	if (!j)
		return NULL;
	j->tag = tag;
	j->uid = s->who.uid;
	j->gid = s->who.gid;
	j->pid = s->who.pid;
	mbx_strcopy(j->user, sizeof(j->user), s->who.user);
	mbx_strcopy(j->reason, sizeof(j->reason), m->reason);
	j->decision = *dec;
	j->cmd.opcode = m->opcode;
	/*
	 * cmd.timeout_ms stays the device's: it drives the transport and the
	 * watchdog, so no client can mark a device failed (a short timeout) or
	 * keep a hung one in service (a long one). A shorter timeout of the
	 * client's ends only its own wait (request_client_timeout); a longer one
	 * changes nothing, the device's ends the command first.
	 */
	if (m->timeout_ms && m->timeout_ms < d->timeout_ms)
		j->client_timeout_ms = m->timeout_ms;
	return j;
}

/*
 * Refuses a client timeout outside limits.client_timeout_min_ms..max_ms
 * (0, the device's own, is always fine). Refused rather than clamped: a
 * client that asked for a wait it will not get is told so, not surprised.
 */
static bool request_timeout_ok(struct session *s, uint32_t tag, const struct mbx_submit *m,
			       const struct device *d)
{
	const struct config *c = s->broker->cfg;

	if (m->timeout_ms == 0 || (m->timeout_ms >= c->client_timeout_min_ms &&
				   m->timeout_ms <= c->client_timeout_max_ms))
		return true;
	request_refuse(s, tag, policy_opcode_class(s->broker->policy, m->opcode),
		       MBX_STATUS_INVALID, 0,
		       "timeout_ms %u refused, not clamped: outside this server's range of %u to "
		       "%u ms (0: the "
		       "device's timeout, %u ms for %s)",
		       m->timeout_ms, c->client_timeout_min_ms, c->client_timeout_max_ms,
		       d->timeout_ms, d->name);
	return false;
}

/* Refuses what the device cannot take right now: failed, or its target busy with an operation. */
static bool request_device_ready(struct session *s, uint32_t tag, struct device *d,
				 const struct policy_decision *dec, const struct bg_target *t)
{
	static const char *const states[] = {"queued", "in the worker", "running"};
	const struct bg_op *op;
	char name[64], where[96];

	if (d->state == MBX_DEVICE_FAILED) {
		request_refuse(s, tag, dec->cls, MBX_STATUS_DEVICE_ERROR, 0,
			       "device %s has failed and is being probed again", d->name);
		return false;
	}
	if (dec->background && t && (op = bg_find(&d->bg_ops, t))) {
		policy_opcode_name(s->broker->policy, op->opcode, name, sizeof(name));
		bg_target_name(t, where, sizeof(where));
		request_refuse(s, tag, dec->cls, MBX_STATUS_BUSY, 1000,
			       "device %s: %s (0x%04x) is %s at %s, %u%% done: one background "
			       "operation at a time per target",
			       d->name, name, op->opcode, states[bg_op_state(op)], where,
			       op->percent);
		return false;
	}
	return true;
}

/* Answers busy when every queue together already holds max_queued_kib of input. */
static bool request_over_byte_limit(struct session *s, struct job *j)
{
	struct broker *b = s->broker;
	uint64_t limit = (uint64_t)b->cfg->max_queued_kib << 10;
	struct mbx_result r;

	if (b->queued_bytes + j->in_len <= limit)
		return false;
	request_result_from_decision(&r, &j->decision);
	r.status = MBX_STATUS_BUSY;
	r.retry_after_ms = BUSY_RETRY_MS;
	snprintf(r.message, sizeof(r.message),
		 "mbxd holds %llu bytes of queued requests (limit %u KiB); retry later",
		 (unsigned long long)b->queued_bytes, b->cfg->max_queued_kib);
	if (j->decision.audited)
		request_audit(j, AUDIT_RESULT, &r, NULL, NULL);
	session_send_refusal(s, j->tag, &r);
	device_job_free(j);
	return true;
}

static void request_drop_as(struct job *j, enum mbx_status status, const char *why);

/*
 * The requester's own, shorter timeout passed: only its wait ends. A job
 * still queued is taken back (it never reaches the device); one in the
 * device runs on, and its result is audited when it comes. The device's
 * state and its other users' commands are not touched.
 */
static void request_client_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	struct session *s = j->session;
	struct mbx_result r;

	(void)fd;
	(void)what;
	if (!s)
		return;
	request_result_from_decision(&r, &j->decision);
	r.status = MBX_STATUS_TIMEOUT;
	r.audit_seq = j->audit_seq;
	if (device_dequeue(j->dev, j)) {
		snprintf(r.message, sizeof(r.message),
			 "still queued for device %s when your timeout of %u ms passed: not sent "
			 "to the device",
			 j->dev->name, j->client_timeout_ms);
		session_send_result(s, j->tag, &r);
		session_remove_job(s, j);
		request_drop_as(j, MBX_STATUS_TIMEOUT, r.message);
		return;
	}
	snprintf(r.message, sizeof(r.message),
		 "no answer from device %s within your timeout of %u ms; the command was not "
		 "stopped and may still complete in the device%s",
		 j->dev->name, j->client_timeout_ms,
		 j->decision.audited ? ", with its result in the audit log" : "");
	session_send_result(s, j->tag, &r);
	session_remove_job(s, j); /* completes unattended, as if the client had left */
}

/* Starts the requester's own timeout, when it asked for one shorter than the device's. */
static void request_arm_client_timer(struct session *s, struct job *j)
{
	struct timeval tv = {j->client_timeout_ms / 1000, (j->client_timeout_ms % 1000) * 1000};

	if (!j->client_timeout_ms)
		return;
	j->client_timer = evtimer_new(s->broker->base, request_client_timeout, j);
	if (j->client_timer)
		evtimer_add(j->client_timer, &tv); /* without: the device's timeout still ends it */
}

/*
 * Answers a job that will not run (refused after its decision, or taken
 * back out of the queue) and closes its records: its intent if one was
 * written, else a decision record.
 */
static void request_pull(struct job *j, enum mbx_status status, const char *why)
{
	struct session *s = j->session;
	struct mbx_result r;

	metrics_failed(j->dev, j->decision.cls);
	request_result_from_decision(&r, &j->decision);
	r.status = (uint16_t)status;
	mbx_strcopy(r.message, sizeof(r.message), why);
	if (j->audit_seq && j->decision.audited) {
		r.audit_seq = j->audit_seq;
		request_audit(j, AUDIT_RESULT, &r, NULL, NULL);
	} else {
		request_audit(j, AUDIT_DECISION, &r, NULL, &r.audit_seq);
	}
	if (s) {
		session_send_refusal(s, j->tag, &r);
		session_remove_job(s, j);
	}
	device_job_free(j);
}

/* Applies a new decision to a queued Request Abort: out of the queue if denied now. */
void request_redecide(struct job *j, const struct policy_decision *dec)
{
	bool had_intent = j->decision.audited;
	uint64_t seq = j->audit_seq;

	if (dec->decision != MBX_DECISION_ALLOW) {
		/* Taken by the worker already: it runs before the new operation is queued. */
		if (!device_dequeue(j->dev, j))
			return;
		j->decision = *dec;
		j->decision.audited = had_intent; /* its intent, if any, is what gets closed */
		request_pull(j, dec->status, dec->message);
		return;
	}
	if (!device_job_queued(j->dev, j))
		return;
	j->decision = *dec;
	if (had_intent || !dec->audited)
		return;
	/* Newly audited as what it would abort: recorded ahead, or not run at all. */
	if (request_audit(j, AUDIT_INTENT, NULL, NULL, &j->audit_seq) < 0 &&
	    device_dequeue(j->dev, j)) {
		j->audit_seq = seq;
		j->decision.audited = false;
		request_pull(j, MBX_STATUS_AUDIT_UNAVAILABLE,
			     "audit log unavailable: the abort is refused until it can be written");
	}
}

/* Audits ahead, then queues; answers the client itself on any failure. */
static void request_dispatch(struct session *s, struct job *j)
{
	struct bg_target t;
	struct mbx_result r;
	uint16_t inner;
	bool at;
	int rc;

	if (j->decision.audited) {
		rc = request_audit(j, AUDIT_INTENT, NULL, NULL, &j->audit_seq);
		if (rc < 0) {
			/* Fail closed: no audited command reaches a device unrecorded. */
			metrics_failed(j->dev, j->decision.cls);
			request_refuse(s, j->tag, j->decision.cls, MBX_STATUS_AUDIT_UNAVAILABLE, 0,
				       "audit log unavailable (%s): %s-class commands are refused "
				       "until it can be written",
				       strerror(-rc), mbx_class_name(j->decision.cls));
			device_job_free(j);
			return;
		}
	} else if (j->dev->broker->cfg->audit_all_decisions) {
		/* Recorded on request, but never held up by the log. */
		if (request_audit(j, AUDIT_DECISION, NULL, NULL, &j->audit_seq) < 0)
			j->audit_seq = 0;
	}
	if (request_over_byte_limit(s, j))
		return;
	/* Tracked before it can run, so an abort at its target is decided against it. */
	at = bg_target_of(j->cmd.opcode, j->in, j->in_len, &t, &inner) == 0;
	if (at && j->decision.background && !background_track(j, &t, inner)) {
		session_add_job(s, j);
		request_pull(j, MBX_STATUS_BUSY, "mbxd is out of memory");
		return;
	}
	if (device_run_inline(j->dev, j)) {
		session_add_job(s, j);
		request_complete(j);
		return;
	}
	rc = device_enqueue(j->dev, j);
	if (rc < 0) {
		request_result_from_decision(&r, &j->decision);
		r.status = MBX_STATUS_BUSY;
		r.retry_after_ms = BUSY_RETRY_MS;
		metrics_failed(j->dev, j->decision.cls);
		snprintf(r.message, sizeof(r.message),
			 "device %s: your queue is full (%u requests); retry later", j->dev->name,
			 j->dev->max_queue_per_user);
		if (j->decision.audited)
			request_audit(j, AUDIT_RESULT, &r, NULL, NULL);
		session_send_refusal(s, j->tag, &r);
		device_job_free(j);
		return;
	}
	session_add_job(s, j);
	request_arm_client_timer(s, j);
	if (at && inner == CXL_OP_REQUEST_ABORT)
		background_abort_track(j, &t);
}

/*
 * Request Abort (0005h), direct or tunnelled, stops the operation at its
 * target, queued, in the worker or running: it is decided as running that
 * operation, so only someone allowed to run it may stop it.
 */
static void request_decide(struct broker *b, struct device *d, const struct policy_request *pr,
			   const struct bg_target *t, uint16_t inner, struct policy_decision *dec)
{
	if (!t || inner != CXL_OP_REQUEST_ABORT || !background_decide_abort(d, t, pr, dec))
		policy_decide(b->policy, pr, dec);
}

/* Handles SUBMIT and EXPLAIN: the edge checks, the decision, then dispatch. */
void request_submit(struct session *s, uint32_t tag, const struct mbx_submit *m, bool explain)
{
	struct broker *b = s->broker;
	struct policy_request pr = {0};
	struct policy_decision dec;
	struct bg_target t;
	struct mbx_result r;
	struct device *d;
	uint16_t inner = 0;
	struct job *j;
	enum mbx_class cls = policy_opcode_class(b->policy, m->opcode);
	bool at;
	size_t bad = 0;

	if (b->stopping && !explain) {
		request_refuse(s, tag, cls, MBX_STATUS_SHUTTING_DOWN, 0, "mbxd is shutting down");
		return;
	}
	d = broker_find_device(b, m->device);
	if (!d) {
		request_refuse(s, tag, cls, MBX_STATUS_NO_DEVICE, 0, "no device named \"%s\"",
			       m->device);
		return;
	}
	if (!explain && s->n_jobs >= b->cfg->max_inflight) {
		request_refuse(s, tag, cls, MBX_STATUS_BUSY, BUSY_RETRY_MS,
			       "%zu requests already in flight on this connection (limit %u)",
			       s->n_jobs, b->cfg->max_inflight);
		return;
	}
	/* A payload beyond the device's mailbox is refused by the classifier, as explain does. */
	if (!mbx_utf8_valid(m->reason, &bad)) {
		request_refuse(
		    s, tag, cls, MBX_STATUS_INVALID, 0,
		    "the reason is not valid UTF-8 (byte 0x%02x at offset %zu): resend it "
		    "as UTF-8; nothing was done",
		    (unsigned char)m->reason[bad], bad);
		return;
	}
	if (!request_timeout_ok(s, tag, m, d))
		return;
	pr.who = &s->who.principal;
	pr.dev = &d->pdev;
	pr.opcode = m->opcode;
	pr.payload = m->payload;
	pr.payload_len = m->payload_len;
	pr.reason = m->reason;
	pr.now_ms = broker_now_us() / 1000;
	pr.explain = explain; /* asking takes no rate-limit token */
	at = bg_target_of(m->opcode, m->payload, m->payload_len, &t, &inner) == 0;
	request_decide(b, d, &pr, at ? &t : NULL, inner, &dec);
	if (!explain)
		metrics_decision(d, dec.cls, dec.decision);

	if (explain || dec.decision != MBX_DECISION_ALLOW) {
		request_result_from_decision(&r, &dec);
		if (!explain && request_refusal_recorded(b, &dec)) {
			j = request_job(s, d, tag, m, &dec);
			if (j) {
				request_audit(j, AUDIT_DECISION, &r, NULL, &r.audit_seq);
				device_job_free(j);
			}
		}
		if (explain)
			session_send_result(s, tag, &r);
		else
			session_send_refusal(s, tag, &r);
		return;
	}
	if (!request_device_ready(s, tag, d, &dec, at ? &t : NULL)) {
		metrics_failed(d, dec.cls);
		return;
	}
	j = request_job(s, d, tag, m, &dec);
	if (!j) {
		request_refuse(s, tag, dec.cls, MBX_STATUS_BUSY, BUSY_RETRY_MS,
			       "mbxd is out of memory");
		return;
	}
	request_dispatch(s, j);
}

/* Maps what the transport said to the broker's status and a sentence. */
static void request_result_from_job(struct mbx_result *r, const struct job *j)
{
	static const enum mbx_status xport_status[] = {
	    [MBX_XPORT_OK] = MBX_STATUS_OK,
	    [MBX_XPORT_TIMEOUT] = MBX_STATUS_TIMEOUT,
	    [MBX_XPORT_IO] = MBX_STATUS_DEVICE_ERROR,
	    [MBX_XPORT_UNSUPPORTED] = MBX_STATUS_UNSUPPORTED,
	    [MBX_XPORT_KERNEL_OWNED] = MBX_STATUS_KERNEL_OWNED,
	    [MBX_XPORT_RAW_DISABLED] = MBX_STATUS_RAW_DISABLED,
	    [MBX_XPORT_TOO_BIG] = MBX_STATUS_INVALID,
	    [MBX_XPORT_BAD_RESPONSE] = MBX_STATUS_DEVICE_ERROR,
	};

	request_result_from_decision(r, &j->decision);
	r->audit_seq = j->audit_seq;
	if (j->xrc < 0) {
		r->status = (uint16_t)j->not_run_status;
		mbx_strcopy(r->message, sizeof(r->message), j->cmd.error);
		return;
	}
	if (j->xrc >= (int)(sizeof(xport_status) / sizeof(xport_status[0]))) {
		r->status = MBX_STATUS_DEVICE_ERROR;
		snprintf(r->message, sizeof(r->message), "transport returned unknown code %d",
			 j->xrc);
		return;
	}
	r->status = (uint16_t)xport_status[j->xrc];
	r->duration_us = (uint32_t)(j->ended_us - j->started_us);
	if (j->xrc != MBX_XPORT_OK) {
		snprintf(r->message, sizeof(r->message), "%s",
			 j->cmd.error[0] ? j->cmd.error : mbx_status_name(r->status));
		return;
	}
	r->cxl_rc = j->cmd.cxl_rc;
	r->vendor_status = j->cmd.vendor_status;
	/* A transport that answers for the device may say why (a kernel route, say). */
	if (j->cmd.error[0])
		snprintf(r->message, sizeof(r->message), "%s: %s", cxl_rc_name(j->cmd.cxl_rc),
			 j->cmd.error);
	else
		mbx_strcopy(r->message, sizeof(r->message), cxl_rc_name(j->cmd.cxl_rc));
	r->payload = j->out;
	r->payload_len = (uint32_t)j->cmd.out_len;
}

/* The broker's own commands: a re-probe, or a background status poll. */
static void request_complete_internal(struct job *j)
{
	if (j->reprobe)
		device_reprobe_done(j);
	else
		background_on_poll(j);
}

/* Answers the requester of a hung command; the job stays with the device. */
void request_abandon(struct job *j)
{
	struct session *s = j->session;
	struct mbx_result r;

	if (!s)
		return;
	metrics_failed(j->dev, j->decision.cls);
	request_result_from_decision(&r, &j->decision);
	r.status = MBX_STATUS_TIMEOUT;
	r.audit_seq = j->audit_seq;
	snprintf(r.message, sizeof(r.message),
		 "device %s did not answer opcode 0x%04x within %u ms; the device is marked failed",
		 j->dev->name, j->cmd.opcode, j->cmd.timeout_ms);
	session_send_result(s, j->tag, &r);
	session_remove_job(s, j);
}

/* A hung command finally returned: record what the device did, then re-probe it. */
static void request_late(struct job *j)
{
	struct device *d = j->dev;
	struct mbx_result r;

	request_result_from_job(&r, j);
	log_warnx("device %s: opcode 0x%04x returned after %llu ms (%s): probing it again", d->name,
		  j->cmd.opcode, (unsigned long long)((j->ended_us - j->started_us) / 1000),
		  r.message);
	if (j->decision.audited && !j->internal)
		request_audit(j, AUDIT_RESULT, &r, NULL, NULL);
	/* It may have been reset meanwhile: what it supports is read again first. */
	if (d->state == MBX_DEVICE_FAILED)
		device_reprobe(d);
	if (j->internal)
		request_complete_internal(j);
	else
		device_job_free(j);
}

/* Finishes a job: closes its audit record, follows a background start, answers. */
void request_complete(struct job *j)
{
	struct session *s = j->session;
	struct mbx_result r;
	bool started_bg;

	if (j->abandoned) {
		request_late(j);
		return;
	}
	if (j->internal) {
		request_complete_internal(j);
		return;
	}
	if (j->client_timer)
		evtimer_del(j->client_timer); /* answered in time */
	request_result_from_job(&r, j);
	started_bg = r.status == MBX_STATUS_OK && background_started(j);
	if (r.status != MBX_STATUS_OK || (r.cxl_rc != CXL_RC_SUCCESS && !started_bg))
		metrics_failed(j->dev, j->decision.cls);
	if (j->decision.audited &&
	    request_audit(j, AUDIT_RESULT, &r, started_bg ? "started" : NULL, NULL) < 0)
		log_warnx(
		    "device %s: cannot record the result of audited opcode 0x%04x (intent %llu)",
		    j->dev->name, j->cmd.opcode, (unsigned long long)j->audit_seq);
	if (s)
		session_send_result(s, j->tag, &r);
	if (started_bg) {
		background_start(j); /* the job lives on as the operation's origin */
		return;
	}
	if (s)
		session_remove_job(s, j);
	device_job_free(j);
}

/* A job taken out of its queue before it ran: its intent record is closed with why. */
static void request_drop_as(struct job *j, enum mbx_status status, const char *why)
{
	struct mbx_result r;

	metrics_failed(j->dev, j->decision.cls);
	if (j->decision.audited) {
		request_result_from_decision(&r, &j->decision);
		r.status = (uint16_t)status;
		snprintf(r.message, sizeof(r.message), "%s", why);
		request_audit(j, AUDIT_RESULT, &r, NULL, NULL);
	}
	device_job_free(j);
}

/* A queued job whose client left: close its intent record so the log tells the truth. */
void request_drop(struct job *j)
{
	request_drop_as(j, MBX_STATUS_CANCELLED, "dropped before it ran: the client left");
}
