/*
 * Background operations (Sanitize, Transfer FW, Scan Media...) at every
 * target of a device: the device itself and each tunnel target behind it.
 * background.h describes the model. An operation is tracked from its queue
 * on; once the target says Background Command Started, its Background
 * Operation Status (0002h, tunnelled like the operation) is polled from the
 * device's worker, progress and completion EVENTs go to the requester and
 * the watchers, and the audit record is closed when the target says it is
 * done. The origin job keeps the requester's identity for that last record
 * even if the client left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit.h"
#include "background.h"
#include "broker.h"
#include "catalog.h"
#include "cci.h"
#include "device.h"
#include "log.h"
#include "request.h"
#include "session.h"

#define BG_POLL_MS 250
/* Background Operation Status output (CXL r3.1 Table 8-38). */
#define BG_STATUS_LEN     8
#define BG_STATUS_RUNNING 0x01
/* Give up following after this many polls fail in a row. */
#define BG_POLL_FAILURES_MAX 20
/* The tag mbxd puts on the CCI messages it tunnels itself. */
#define BG_CCI_TAG 0x42

static void background_poll_cb(evutil_socket_t fd, short what, void *arg);
static void background_abort_recheck(struct device *d, const struct bg_op *op);

/* ---- targets: where a command runs ---- */

/* Walks the Tunnel Management wrappers of a request down to its innermost command. */
int bg_target_of(uint16_t opcode, const uint8_t *in, size_t len, struct bg_target *t,
		 uint16_t *inner_opcode)
{
	struct cci_tunnel_req tr;
	struct cci_msg m;

	memset(t, 0, sizeof(*t));
	while (opcode == CXL_OP_TUNNEL) {
		if (t->depth >= BG_DEPTH_MAX || cci_tunnel_req_decode(in, len, &tr) < 0 ||
		    cci_decode(tr.msg, tr.msg_len, &m) < 0 || m.category != CCI_CATEGORY_REQUEST)
			return -EPROTO;
		t->hop[t->depth].type = tr.target_type;
		t->hop[t->depth].id = tr.target;
		t->depth++;
		opcode = m.opcode;
		in = m.payload;
		len = m.payload_len;
	}
	*inner_opcode = opcode;
	return 0;
}

/* Whether two targets are the same path of hops. */
bool bg_target_eq(const struct bg_target *a, const struct bg_target *b)
{
	if (a->depth != b->depth)
		return false;
	for (uint8_t i = 0; i < a->depth; i++)
		if (a->hop[i].type != b->hop[i].type || a->hop[i].id != b->hop[i].id)
			return false;
	return true;
}

/* Names a target: "the device", or its hops ("port 1", "LD pool 0"), outermost first. */
void bg_target_name(const struct bg_target *t, char *buf, size_t cap)
{
	size_t off = 0;
	int n;

	if (!cap)
		return;
	buf[0] = '\0';
	if (t->depth == 0) {
		snprintf(buf, cap, "the device");
		return;
	}
	for (uint8_t i = 0; i < t->depth && off < cap; i++) {
		n = snprintf(buf + off, cap - off, "%s%s %u", i ? " / " : "tunnel to ",
			     t->hop[i].type == CCI_TUNNEL_TARGET_PORT_OR_LD ? "port or LD"
									    : "LD pool CCI",
			     t->hop[i].id);
		if (n < 0)
			return;
		off += (size_t)n;
	}
}

/* Wraps a command without payload in the tunnels of t, innermost first. */
int bg_wrap(const struct bg_target *t, uint16_t opcode, uint8_t *buf, size_t cap,
	    uint16_t *outer_opcode)
{
	uint8_t msg[CCI_HEADER_SIZE + BG_DEPTH_MAX * (CCI_TUNNEL_REQ_HEADER + CCI_HEADER_SIZE)];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST, .tag = BG_CCI_TAG, .opcode = opcode};
	uint8_t tmp[sizeof(msg)];
	size_t len = 0;
	int n;

	*outer_opcode = opcode;
	if (t->depth == 0)
		return 0;
	for (int i = t->depth - 1; i >= 0; i--) {
		struct cci_tunnel_req tr = {.target = t->hop[i].id, .target_type = t->hop[i].type};

		/* The level below becomes the payload of a CCI message... */
		m.payload = len ? tmp : NULL;
		m.payload_len = (uint32_t)len;
		n = cci_encode(msg, sizeof(msg), &m);
		if (n < 0)
			return n;
		/* ...carried by this level's Tunnel Management request. */
		tr.msg = msg;
		tr.msg_len = (uint16_t)n;
		n = cci_tunnel_req_encode(tmp, sizeof(tmp), &tr);
		if (n < 0)
			return n;
		len = (size_t)n;
		m.opcode = CXL_OP_TUNNEL;
	}
	if (len > cap)
		return -EMSGSIZE;
	memcpy(buf, tmp, len);
	*outer_opcode = CXL_OP_TUNNEL;
	return (int)len;
}

/* Unwraps a tunnelled answer level by level: each must succeed and answer its request. */
int bg_unwrap(const struct bg_target *t, uint16_t opcode, uint16_t outer_rc, const uint8_t *out,
	      size_t len, uint16_t *rc, const uint8_t **payload, size_t *payload_len)
{
	struct cci_tunnel_rep tr;
	struct cci_msg m;

	*rc = outer_rc;
	*payload = out;
	*payload_len = len;
	for (uint8_t i = 0; i < t->depth; i++) {
		/* A tunnel that failed says nothing about the target. */
		if (*rc != CXL_RC_SUCCESS)
			return -EPROTO;
		if (cci_tunnel_rep_decode(*payload, *payload_len, &tr) < 0 ||
		    cci_decode(tr.msg, tr.msg_len, &m) < 0 || m.category != CCI_CATEGORY_RESPONSE ||
		    m.opcode != (i + 1 == t->depth ? opcode : CXL_OP_TUNNEL))
			return -EPROTO;
		*rc = m.rc;
		/* The background bit says the command went on in the background. */
		if (m.background && m.rc == CXL_RC_SUCCESS)
			*rc = CXL_RC_BACKGROUND_STARTED;
		*payload = m.payload;
		*payload_len = m.payload_len;
	}
	return 0;
}

/* ---- the operations of a device ---- */

/* The state of an operation: started, or where its job is. */
enum bg_state bg_op_state(const struct bg_op *op)
{
	enum job_state js;

	if (op->started)
		return BG_STARTED;
	pthread_mutex_lock(&op->dev->lock);
	js = op->origin->state;
	pthread_mutex_unlock(&op->dev->lock);
	return js == JOB_QUEUED ? BG_QUEUED : BG_RUNNING;
}

/* Finds the operation at a target, whatever its state. */
struct bg_op *bg_find(struct bg_ops *ops, const struct bg_target *t)
{
	struct bg_op *op;

	TAILQ_FOREACH(op, ops, entry)
	if (bg_target_eq(&op->target, t))
		return op;
	return NULL;
}

/* The started operation DEVICES and metrics show: the device's own first. */
const struct bg_op *background_current(const struct device *d)
{
	const struct bg_op *op, *best = NULL;

	TAILQ_FOREACH(op, &d->bg_ops, entry)
	if (op->started && (!best || op->target.depth < best->target.depth))
		best = op;
	return best;
}

/* Keeps the device's state in step: busy while any target runs an operation. */
static void background_device_state(struct device *d)
{
	bool busy = background_current(d) != NULL;

	if (busy && d->state == MBX_DEVICE_READY)
		d->state = MBX_DEVICE_BACKGROUND;
	else if (!busy && d->state == MBX_DEVICE_BACKGROUND)
		d->state = MBX_DEVICE_READY;
}

/* Removes an operation; its origin job, if any, is the caller's. */
static void background_op_free(struct bg_op *op)
{
	struct device *d = op->dev;

	TAILQ_REMOVE(&d->bg_ops, op, entry);
	if (op->origin)
		op->origin->bg = NULL;
	if (op->poll_ev)
		event_free(op->poll_ev);
	free(op);
	background_device_state(d);
}

/* Tracks a job that may start an operation at t, and decides queued aborts there again. */
struct bg_op *background_track(struct job *j, const struct bg_target *t, uint16_t opcode)
{
	struct device *d = j->dev;
	struct bg_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->dev = d;
	op->id = ++d->bg_next_id;
	op->target = *t;
	op->opcode = opcode;
	op->origin = j;
	j->bg = op;
	TAILQ_INSERT_TAIL(&d->bg_ops, op, entry);
	background_abort_recheck(d, op);
	return op;
}

/* Forgets the operation of a job that did not start one. */
void background_untrack(struct job *j)
{
	if (j->bg)
		background_op_free(j->bg);
}

/*
 * Drops every operation of a device that is closing. A started one owns its
 * origin job and frees it; the others' jobs belong to the queue or a session.
 */
void background_close(struct device *d)
{
	struct bg_op *op;
	struct job *o;

	while ((op = TAILQ_FIRST(&d->bg_ops))) {
		o = op->started ? op->origin : NULL;
		background_op_free(op);
		if (o && o->session)
			session_remove_job(o->session, o);
		device_job_free(o);
	}
}

/* ---- Request Abort: decided as running what it would abort ---- */

/* Rewrites the tunnel levels a decision reports as the abort's own: 5300h down to 0005h. */
static void background_abort_levels(const struct bg_target *t, struct policy_decision *dec)
{
	dec->n_inner = t->depth < MBX_INNER_MAX ? t->depth : MBX_INNER_MAX;
	for (size_t l = 0; l < dec->n_inner; l++) {
		dec->inner[l].opcode = l + 1 == t->depth ? CXL_OP_REQUEST_ABORT : CXL_OP_TUNNEL;
		dec->inner[l].cls = (uint8_t)dec->cls;
		dec->inner[l].depth = (uint8_t)(l + 1);
		dec->inner[l].target = t->hop[l].id;
	}
}

/* Decides an abort of op as the request that started op, sent by the aborter (abort). */
static void background_decide_as(struct device *d, const struct bg_op *op,
				 const struct policy_request *abort, struct policy_decision *dec)
{
	static const char *const states[] = {"queued", "in the worker", "running"};
	const struct job *o = op->origin;
	struct policy_request pr = *abort;
	char name[64], where[96], why[MBX_MESSAGE_MAX + 256];

	pr.opcode = o->cmd.opcode;
	pr.payload = o->in;
	pr.payload_len = o->in_len;
	policy_decide(d->broker->policy, &pr, dec);
	policy_opcode_name(d->broker->policy, op->opcode, name, sizeof(name));
	bg_target_name(&op->target, where, sizeof(where));
	snprintf(why, sizeof(why), "aborting %s (0x%04x, %s at %s) is decided as running it: %s",
		 name, op->opcode, states[bg_op_state(op)], where, dec->message);
	snprintf(dec->message, sizeof(dec->message), "%.*s", (int)sizeof(dec->message) - 1, why);
	snprintf(dec->name, sizeof(dec->name), "Request Abort Background Operation");
	dec->background = false;
	background_abort_levels(&op->target, dec);
}

/* Decides a Request Abort to t against the operation there, if there is one. */
bool background_decide_abort(struct device *d, const struct bg_target *t,
			     const struct policy_request *pr, struct policy_decision *dec)
{
	struct bg_op *op = bg_find(&d->bg_ops, t);

	if (!op)
		return false;
	background_decide_as(d, op, pr, dec);
	return true;
}

/* Remembers an allowed abort until it leaves the queue, to decide it again if need be. */
void background_abort_track(struct job *j, const struct bg_target *t)
{
	j->abort_target = *t;
	j->abort_tracked = true;
	TAILQ_INSERT_TAIL(&j->dev->aborts, j, aentry);
}

/* Forgets an abort job (it ran, or is being freed). */
void background_abort_untrack(struct job *j)
{
	if (!j->abort_tracked)
		return;
	TAILQ_REMOVE(&j->dev->aborts, j, aentry);
	j->abort_tracked = false;
}

/*
 * A new operation is queued at op's target: every abort still queued for
 * that target was decided against something else (or nothing) and would
 * reach this one, so it is decided again, as running this one.
 */
static void background_abort_recheck(struct device *d, const struct bg_op *op)
{
	struct policy_request pr = {.dev = &d->pdev, .opcode = CXL_OP_REQUEST_ABORT};
	struct job *j, *next;
	struct policy_decision dec;

	for (j = TAILQ_FIRST(&d->aborts); j; j = next) {
		next = TAILQ_NEXT(j, aentry);
		/* One the worker has taken runs before op is queued: it cannot reach op. */
		if (!bg_target_eq(&j->abort_target, &op->target) || !j->session ||
		    !device_job_queued(d, j))
			continue;
		pr.who = &j->session->who.principal;
		pr.reason = j->reason;
		pr.now_ms = broker_now_us() / 1000;
		background_decide_as(d, op, &pr, &dec);
		request_redecide(j, &dec);
	}
}

/* ---- following a started operation ---- */

/* The EVENT describing an operation now. */
static void background_event_fill(const struct bg_op *op, struct mbx_event *ev, uint8_t kind,
				  uint16_t rc, uint16_t vendor)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->device, sizeof(ev->device), "%s", op->dev->name);
	ev->opcode = op->opcode;
	ev->kind = kind;
	ev->percent = op->percent;
	ev->cxl_rc = rc;
	ev->vendor_status = vendor;
	ev->audit_seq = op->origin ? op->origin->audit_seq : 0;
}

/* Sends an EVENT to the sessions watching the device. */
static void background_event_watchers(struct device *d, const struct mbx_event *ev)
{
	struct watch *w;

	TAILQ_FOREACH(w, &d->watchers, dentry)
	session_send_event(w->session, w->tag, ev);
}

/* Sends an EVENT to the requester, if it is still connected, and to the watchers. */
static void background_event(struct bg_op *op, uint8_t kind, uint16_t rc, uint16_t vendor)
{
	struct job *o = op->origin;
	struct mbx_event ev;

	background_event_fill(op, &ev, kind, rc, vendor);
	if (o->session)
		session_send_event(o->session, o->tag, &ev);
	background_event_watchers(op->dev, &ev);
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

/* Tells one session how each started operation of the device is doing. */
void background_report(struct session *s, struct device *d, uint32_t tag)
{
	struct mbx_event ev;
	struct bg_op *op;

	TAILQ_FOREACH(op, &d->bg_ops, entry)
	{
		if (!op->started)
			continue;
		background_event_fill(op, &ev, MBX_EVENT_PROGRESS, 0, 0);
		session_send_event(s, tag, &ev);
	}
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

static void background_arm(struct bg_op *op)
{
	struct timeval tv = {0, BG_POLL_MS * 1000};

	evtimer_add(op->poll_ev, &tv);
}

/* Whether a job's answer says its target started a background operation. */
bool background_started(const struct job *j)
{
	struct bg_target t;
	const uint8_t *p;
	uint16_t rc, inner;
	size_t n;

	if (j->xrc != MBX_XPORT_OK)
		return false;
	if (j->bg) {
		t = j->bg->target;
		inner = j->bg->opcode;
	} else if (bg_target_of(j->cmd.opcode, j->in, j->in_len, &t, &inner) < 0) {
		return false;
	}
	if (bg_unwrap(&t, inner, j->cmd.cxl_rc, j->out, j->cmd.out_len, &rc, &p, &n) < 0)
		return false;
	return rc == CXL_RC_BACKGROUND_STARTED;
}

/* The metrics event for how an operation ended. */
static enum metrics_bg background_outcome(const char *how)
{
	if (!strcmp(how, "completed"))
		return METRICS_BG_COMPLETED;
	return !strcmp(how, "aborted") ? METRICS_BG_ABORTED : METRICS_BG_LOST;
}

/* Writes the record that closes an operation's intent. */
static void background_audit(struct bg_op *op, uint16_t rc, uint16_t vendor, const char *how)
{
	struct job *o = op->origin;
	struct device *d = op->dev;
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
	    .inner = o->decision.inner,
	    .n_inner = o->decision.n_inner,
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
}

/* Ends an operation: audit record, final EVENT, and the target is free again. */
static void background_finish(struct bg_op *op, uint16_t rc, uint16_t vendor, const char *how)
{
	struct job *o = op->origin;
	struct device *d = op->dev;
	char where[96];

	background_audit(op, rc, vendor, how);
	bg_target_name(&op->target, where, sizeof(where));
	log_info("device %s: background operation 0x%04x at %s %s: %s", d->name, op->opcode, where,
		 how, cxl_rc_name(rc));
	metrics_background(d, background_outcome(how));
	if (!strcmp(how, "completed"))
		op->percent = 100;
	background_event(op, MBX_EVENT_COMPLETE, rc, vendor);
	background_op_free(op);
	if (o->session)
		session_remove_job(o->session, o);
	device_job_free(o);
}

/* Tracks, late, an operation a command started without being flagged background. */
static struct bg_op *background_adopt(struct job *j)
{
	struct device *d = j->dev;
	struct bg_target t;
	struct bg_op *old;
	uint16_t inner;

	if (bg_target_of(j->cmd.opcode, j->in, j->in_len, &t, &inner) < 0)
		return NULL;
	old = bg_find(&d->bg_ops, &t);
	if (old) {
		/* The target accepted a second one: it follows the newer, and so do we. */
		log_warnx("device %s: a second background operation started at one target",
			  d->name);
		background_finish(old, CXL_RC_INTERNAL_ERROR, 0, "lost");
	}
	return background_track(j, &t, inner);
}

/* Marks an operation started and begins polling its target. */
void background_start(struct job *j)
{
	struct device *d = j->dev;
	struct bg_op *op = j->bg ? j->bg : background_adopt(j);
	struct mbx_event ev;
	char where[96];

	if (op && !op->poll_ev)
		op->poll_ev = evtimer_new(d->broker->base, background_poll_cb, op);
	if (!op || !op->poll_ev) {
		log_warnx("device %s: out of memory following a background operation", d->name);
		if (op)
			background_op_free(op);
		if (j->session)
			session_remove_job(j->session, j);
		device_job_free(j);
		return;
	}
	op->started = true;
	op->percent = 0;
	op->failures = 0;
	background_device_state(d);
	bg_target_name(&op->target, where, sizeof(where));
	log_info("device %s: background operation 0x%04x started at %s by %s (audit %llu)", d->name,
		 op->opcode, where, j->user, (unsigned long long)j->audit_seq);
	metrics_background(d, METRICS_BG_STARTED);
	/* The requester has its RESULT; watchers learn of the start here. */
	background_event_fill(op, &ev, MBX_EVENT_PROGRESS, 0, 0);
	background_event_watchers(d, &ev);
	background_arm(op);
}

/* Timer: queue one status poll of the operation's target ahead of users' commands. */
static void background_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bg_op *op = arg;
	struct device *d = op->dev;
	uint8_t in[128];
	uint16_t opcode;
	struct job *j;
	int n;

	(void)fd;
	(void)what;
	if (op->poll_pending)
		return;
	n = bg_wrap(&op->target, CXL_OP_BG_STATUS, in, sizeof(in), &opcode);
	j = n < 0 ? NULL : device_job_new(d, in, (size_t)n);
	if (!j) {
		background_arm(op);
		return;
	}
	j->internal = true;
	j->cmd.opcode = opcode;
	j->poll_op = op->id;
	snprintf(j->user, sizeof(j->user), "mbxd");
	if (device_enqueue(d, j) < 0) {
		device_job_free(j);
		background_arm(op);
		return;
	}
	op->poll_pending = true;
}

/* The operation a poll job asked about, if it is still followed. */
static struct bg_op *background_polled(struct job *j)
{
	struct bg_op *op;

	TAILQ_FOREACH(op, &j->dev->bg_ops, entry)
	if (op->id == j->poll_op)
		return op->started ? op : NULL;
	return NULL;
}

/* Counts a failed poll; after too many in a row the operation is lost. */
static void background_poll_failed(struct bg_op *op)
{
	if (++op->failures >= BG_POLL_FAILURES_MAX)
		background_finish(op, CXL_RC_INTERNAL_ERROR, 0, "lost");
	else
		background_arm(op);
}

/* Reads one status answer: progress, completion, or a failed poll. */
void background_on_poll(struct job *j)
{
	struct bg_op *op = background_polled(j);
	const uint8_t *o;
	uint8_t percent;
	uint16_t rc;
	size_t n;

	if (!op) {
		device_job_free(j);
		return;
	}
	op->poll_pending = false;
	if (j->xrc != MBX_XPORT_OK ||
	    bg_unwrap(&op->target, CXL_OP_BG_STATUS, j->cmd.cxl_rc, j->out, j->cmd.out_len, &rc, &o,
		      &n) < 0 ||
	    rc != CXL_RC_SUCCESS || n < BG_STATUS_LEN) {
		background_poll_failed(op);
		device_job_free(j);
		return;
	}
	op->failures = 0;
	percent = o[0] >> 1;
	if (percent > 100)
		percent = 100; /* the device's number, clamped to what the protocol can say */
	if (!(o[0] & BG_STATUS_RUNNING)) {
		rc = (uint16_t)(o[4] | o[5] << 8);
		background_finish(op, rc, (uint16_t)(o[6] | o[7] << 8),
				  rc == CXL_RC_ABORTED ? "aborted" : "completed");
	} else {
		if (percent != op->percent) {
			op->percent = percent;
			background_event(op, MBX_EVENT_PROGRESS, 0, 0);
		}
		background_arm(op);
	}
	device_job_free(j);
}
