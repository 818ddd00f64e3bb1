/* Client sessions: framing, HELLO, dispatch, and orderly teardown. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "refusal-pace.h"
#include "request.h"
#include "session.h"

/*
 * What one open request may cost beyond its payloads, for the pending bound:
 * the job and its decision, and the RESULT frame's fixed fields and strings.
 */
#define SESSION_JOB_COST 4096u
/* The most EVENTs held for a client over its bound, per device (watch and own). */
#define SESSION_HELD_PER_DEVICE 2
/* How long a closing session's ERROR may wait for a client that does not read. */
#define SESSION_CLOSE_MS 2000

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_arm(struct session *s, enum session_deadline what, uint32_t ms);
static void session_flow(struct session *s);
static bool session_full(const struct session *s);
static size_t session_pending(const struct session *s);

/* Bytes held for this client: answers it has not read, and what its open requests hold. */
static size_t session_pending(const struct session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev)) + s->reserved;
}

/*
 * Whether the client is at its bound (limits.max_pending_kib): then mbxd
 * reads none of its requests until it reads its answers (backpressure), so
 * a client that never reads costs the bound, not what it could ask for.
 */
static bool session_full(const struct session *s)
{
	return session_pending(s) >= (size_t)s->broker->cfg->max_pending_kib << 10;
}

static void session_flush_held(struct session *s);

/*
 * Pauses reading a client at its bound, resumes it below; held EVENTs go
 * out first. Resuming only schedules the read callback: this may run inside
 * it (an answer written while dispatching), which must not be re-entered.
 */
static void session_flow(struct session *s)
{
	bool full;

	if (s->closing || s->flowing)
		return;
	s->flowing = true;
	if (s->n_held && !session_full(s))
		session_flush_held(s);
	s->flowing = false;
	full = session_full(s) || s->paced;
	if (full && !s->throttled) {
		s->throttled = true;
		bufferevent_disable(s->bev, EV_READ);
	} else if (!full && s->throttled && !s->closing) {
		s->throttled = false;
		bufferevent_enable(s->bev, EV_READ);
		bufferevent_trigger(s->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	}
}

/*
 * Sends an encoded frame. With nothing queued before it and no further
 * request already read (a client waiting for this answer), the frame goes to
 * the socket at once: queueing it would cost a loop pass and two epoll
 * changes per answer. A pipelining client's answers are queued and leave
 * together. Whatever the socket does not take is queued, in order. A
 * closing session always queues, so its write callback sees the ERROR out.
 */
static void session_write_raw(struct session *s, struct mbx_wbuf *w, int rc)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t sent = 0;

	if (rc == 0 && !s->closing && !s->more_input && evbuffer_get_length(out) == 0) {
		ssize_t n =
		    send(bufferevent_getfd(s->bev), w->data, w->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0)
			sent = (size_t)n; /* errors: the read side sees the client go */
	}
	if (rc == 0 && sent < w->len)
		bufferevent_write(s->bev, w->data + sent, w->len - sent);
	else if (rc != 0)
		log_warnx("session %llu: cannot encode a frame: %s", (unsigned long long)s->id,
			  strerror(-rc));
	mbx_wbuf_free(w);
}

/* Sends a frame, then reconsiders whether to read more of this client. */
static void session_write(struct session *s, struct mbx_wbuf *w, int rc)
{
	session_write_raw(s, w, rc);
	session_flow(s);
}

/* Sends a RESULT. */
void session_send_result(struct session *s, uint32_t tag, const struct mbx_result *r)
{
	struct mbx_wbuf w;

	if (s->closing)
		return;
	mbx_wbuf_init(&w);
	session_write(s, &w, mbx_encode_result(&w, tag, r));
}

/* The pause is over: the client is read again (unless at its pending bound). */
static void session_pace_end(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	s->paced = false;
	session_flow(s);
}

/*
 * Counts a refusal against the user's limits.max_refusals_per_s and, past
 * it, stops reading this connection for the pause refusal_pace_note asks
 * (backpressure: what is already read is answered, nothing is dropped or
 * reordered, the rest waits in the socket). Logged once per episode.
 */
static void session_pace(struct session *s)
{
	struct broker *b = s->broker;
	struct timeval tv;
	uint32_t rate, ms;

	ms = refusal_pace_note(b->refusal_pace, s->who.uid, broker_now_us() / 1000, &rate);
	if (rate)
		log_warnx("user %s (uid %u): %u refusals/s, reading paused (limits."
			  "max_refusals_per_s is %u)",
			  s->who.user, (unsigned)s->who.uid, rate, b->cfg->max_refusals_per_s);
	if (ms == 0 || s->closing || s->paced)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(s->pace_timer, &tv) < 0)
		return; /* not paced: better than never read again */
	s->paced = true;
}

/* Sends the RESULT of a refused request, then paces its user. */
void session_send_refusal(struct session *s, uint32_t tag, const struct mbx_result *r)
{
	if (s->closing)
		return;
	session_pace(s);
	session_send_result(s, tag, r);
}

/*
 * Sends an EVENT, or holds it while the client is over its pending bound
 * (or has EVENTs held already, which go first): EVENTs come unasked, so a
 * client that does not read must not make them pile up. A held progress
 * EVENT is replaced by the next one of its tag and device, so at most a few
 * per device wait; a completion is never replaced, and a client so far
 * behind that no room is left is closed with ERROR limit.
 */
void session_send_event(struct session *s, uint32_t tag, const struct mbx_event *ev)
{
	struct session_held *h = NULL;
	struct mbx_wbuf w;

	if (s->closing)
		return;
	if (!s->n_held && !session_full(s)) {
		mbx_wbuf_init(&w);
		session_write(s, &w, mbx_encode_event(&w, tag, ev));
		return;
	}
	for (size_t i = s->n_held; i-- > 0 && !h;)
		if (s->held[i].tag == tag && !strcmp(s->held[i].ev.device, ev->device))
			h = s->held[i].ev.kind == MBX_EVENT_PROGRESS ? &s->held[i] : NULL;
	if (!h && s->n_held < s->cap_held)
		h = &s->held[s->n_held++];
	if (!h) {
		session_fail(s, MBX_ERROR_LIMIT,
			     "%zu EVENTs are waiting while %zu bytes of answers are unread: this "
			     "client does not read what it asked for",
			     s->n_held, session_pending(s));
		return;
	}
	h->tag = tag;
	h->ev = *ev;
}

/* Sends the held EVENTs, oldest first, while the client stays under its bound. */
static void session_flush_held(struct session *s)
{
	struct mbx_wbuf w;
	size_t i = 0;

	for (; i < s->n_held && !s->closing && !session_full(s); i++) {
		mbx_wbuf_init(&w);
		session_write_raw(s, &w, mbx_encode_event(&w, s->held[i].tag, &s->held[i].ev));
	}
	memmove(s->held, s->held + i, (s->n_held - i) * sizeof(*s->held));
	s->n_held -= i;
}

/* Sends an ERROR and closes once it is out; the daemon and other clients go on. */
void session_fail(struct session *s, uint16_t code, const char *fmt, ...)
{
	struct mbx_error e = {.code = code};
	struct mbx_wbuf w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	log_warnx("session %llu (uid %u pid %d): closing: %s", (unsigned long long)s->id,
		  (unsigned)s->who.uid, (int)s->who.pid, e.message);
	if (s->closing)
		return;
	s->closing = true; /* first: the ERROR is queued, so the write callback fires */
	mbx_wbuf_init(&w);
	session_write(s, &w, mbx_encode_error(&w, 0, &e));
	bufferevent_disable(s->bev, EV_READ);
	/* The write callback frees the session once the ERROR has left, or the timer. */
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	session_arm(s, SESSION_DEADLINE_CLOSE, SESSION_CLOSE_MS);
}

/* Answers HELLO with the highest common version and the server's limits. */
static void session_hello(struct session *s, uint32_t tag, const uint8_t *body, size_t len)
{
	struct mbx_hello_req req;
	struct mbx_hello_rep rep = {0};
	struct mbx_wbuf w;

	if (s->hello_done) {
		session_fail(s, MBX_ERROR_ORDER, "second HELLO");
		return;
	}
	if (mbx_decode_hello_req(body, len, &req) < 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "malformed HELLO");
		return;
	}
	if (req.version_min > MBX_PROTO_VERSION || req.version_max < MBX_PROTO_VERSION) {
		session_fail(s, MBX_ERROR_VERSION,
			     "no common protocol version: client speaks %u..%u, "
			     "server %u",
			     req.version_min, req.version_max, MBX_PROTO_VERSION);
		return;
	}
	session_arm(s, SESSION_DEADLINE_NONE, 0); /* the HELLO deadline is met */
	rep.version = MBX_PROTO_VERSION;
	rep.max_payload = MBX_PAYLOAD_MAX;
	rep.max_inflight = s->broker->cfg->max_inflight;
	snprintf(rep.software, sizeof(rep.software), "%s", MBX_SOFTWARE);
	s->hello_done = true;
	log_debug("session %llu: hello from uid %u (%s) pid %d, %s", (unsigned long long)s->id,
		  (unsigned)s->who.uid, s->who.user, (int)s->who.pid, req.software);
	mbx_wbuf_init(&w);
	session_write(s, &w, mbx_encode_hello_rep(&w, tag, &rep));
}

/* Whether this session's principal may see device d (policy_may_see_device). */
static bool session_may_see(const struct session *s, const struct device *d)
{
	return policy_may_see_device(s->broker->policy, &s->who.principal, d->name);
}

/* Answers DEVICES with what each device the client may see is and how it is doing. */
static void session_devices(struct session *s, uint32_t tag, size_t len)
{
	struct broker *b = s->broker;
	struct mbx_device_desc *d;
	struct mbx_wbuf w;
	size_t n = 0;

	if (len != 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "DEVICES request with a body");
		return;
	}
	d = calloc(b->n_devices ? b->n_devices : 1, sizeof(*d));
	if (!d) {
		session_fail(s, MBX_ERROR_PROTOCOL, "out of memory");
		return;
	}
	for (size_t i = 0; i < b->n_devices; i++) {
		struct device *dev = b->devices[i];
		struct mbx_device_desc *o = &d[n];
		const struct bg_op *op;

		if (!session_may_see(s, dev))
			continue;
		n++;
		snprintf(o->name, sizeof(o->name), "%s", dev->name);
		snprintf(o->transport, sizeof(o->transport), "%s", dev->transport_name);
		snprintf(o->kind, sizeof(o->kind), "%s", dev->info.kind);
		snprintf(o->model, sizeof(o->model), "%s", dev->info.model);
		snprintf(o->serial, sizeof(o->serial), "%s", dev->info.serial);
		o->state = (uint8_t)dev->state;
		op = background_current(dev);
		o->bg_opcode = op ? op->opcode : 0;
		o->bg_percent = op ? op->percent : 0;
		o->payload_max = dev->info.payload_max;
	}
	mbx_wbuf_init(&w);
	session_write(s, &w, mbx_encode_devices_rep(&w, tag, d, n));
	free(d);
}

/* Answers METRICS with the counters in the Prometheus text format, of devices it may see. */
static void session_metrics(struct session *s, uint32_t tag, size_t len)
{
	struct broker *b = s->broker;
	struct mbx_metrics m;
	struct mbx_wbuf w;
	char *text = NULL;
	bool *shown;
	size_t n = 0;
	int rc;

	if (len != 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "METRICS request with a body");
		return;
	}
	shown = calloc(b->n_devices ? b->n_devices : 1, sizeof(*shown));
	for (size_t i = 0; shown && i < b->n_devices; i++)
		shown[i] = session_may_see(s, b->devices[i]);
	rc = shown ? metrics_render(b, shown, &text, &n) : -ENOMEM;
	free(shown);
	if (rc < 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "out of memory");
		return;
	}
	m.text = text;
	m.len = (uint32_t)n;
	mbx_wbuf_init(&w);
	session_write(s, &w, mbx_encode_metrics_rep(&w, tag, &m));
	free(text);
}

/* Adds the session to a device's watchers; a RESULT says whether it worked. */
static void session_watch(struct session *s, uint32_t tag, const uint8_t *body, size_t len)
{
	struct mbx_result r = {.status = MBX_STATUS_OK};
	struct mbx_watch m;
	struct device *d;
	int rc;

	if (mbx_decode_watch(body, len, &m) < 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "malformed WATCH");
		return;
	}
	d = broker_find_device(s->broker, m.device);
	rc = !d ? -ENODEV : !session_may_see(s, d) ? -EACCES : background_watch(s, d, tag);
	if (rc == -EACCES) {
		r.status = MBX_STATUS_DENIED;
		r.decision = MBX_DECISION_DENY;
		snprintf(r.message, sizeof(r.message),
			 "no rule lets %s use device %s, so its events are not shown to %s",
			 s->who.user, d->name, s->who.user);
	} else if (rc == -ENODEV) {
		r.status = MBX_STATUS_NO_DEVICE;
		r.decision = MBX_DECISION_DENY;
		snprintf(r.message, sizeof(r.message), "no device named \"%s\"", m.device);
	} else if (rc < 0) {
		r.status = MBX_STATUS_INVALID;
		r.decision = MBX_DECISION_INVALID;
		snprintf(r.message, sizeof(r.message), "%s",
			 rc == -EALREADY ? "this connection watches the device already"
					 : strerror(-rc));
	} else {
		snprintf(r.message, sizeof(r.message), "watching %s", d->name);
	}
	if (rc == 0)
		session_send_result(s, tag, &r);
	else
		session_send_refusal(s, tag, &r);
	/* After the RESULT: EVENTs with this tag follow it. */
	if (rc == 0)
		background_report(s, d, tag);
}

/* Decodes SUBMIT/EXPLAIN and hands it to the pipeline. */
static void session_submit(struct session *s, const struct mbx_header *h, const uint8_t *body)
{
	struct mbx_submit m;

	if (mbx_decode_submit(body, h->length, &m) < 0) {
		session_fail(s, MBX_ERROR_PROTOCOL, "malformed %s",
			     h->type == MBX_MSG_SUBMIT ? "SUBMIT" : "EXPLAIN");
		return;
	}
	request_submit(s, h->tag, &m, h->type == MBX_MSG_EXPLAIN);
}

/* Routes one complete frame; anything but the client's four messages closes it. */
static void session_dispatch(struct session *s, const struct mbx_header *h, const uint8_t *body)
{
	if (h->type != MBX_MSG_HELLO && !s->hello_done) {
		session_fail(s, MBX_ERROR_ORDER, "message type %u before HELLO", h->type);
		return;
	}
	switch (h->type) {
	case MBX_MSG_HELLO:
		session_hello(s, h->tag, body, h->length);
		break;
	case MBX_MSG_DEVICES:
		session_devices(s, h->tag, h->length);
		break;
	case MBX_MSG_SUBMIT:
	case MBX_MSG_EXPLAIN:
		session_submit(s, h, body);
		break;
	case MBX_MSG_METRICS:
		session_metrics(s, h->tag, h->length);
		break;
	case MBX_MSG_WATCH:
		session_watch(s, h->tag, body, h->length);
		break;
	default:
		session_fail(s, MBX_ERROR_PROTOCOL, "message type %u is not sent by clients",
			     h->type);
		break;
	}
}

/* Runs the session's timer for one deadline, ms from now; NONE stops it. */
static void session_arm(struct session *s, enum session_deadline what, uint32_t ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	s->deadline = what;
	evtimer_del(s->timer);
	if (what != SESSION_DEADLINE_NONE)
		evtimer_add(s->timer, &tv);
}

/*
 * Each frame must be whole within limits.frame_timeout_ms of its own first
 * byte: a client that sends half a frame and stops would otherwise hold its
 * session (and a descriptor) for ever. The deadline restarts at every frame
 * boundary, so a client streaming frames back to back, each one quick, is
 * never cut however long the stream. Called after the input was read: what
 * is left is the start of one frame (the read loop dispatches every whole
 * one), begun in this read if a frame ended in it. Between frames a client
 * may stay silent as long as it likes: monitoring agents keep connections
 * open. Input left unread while mbxd holds the client back (throttled) is
 * mbxd's delay, not the client's: no deadline runs then.
 */
static void session_frame_deadline(struct session *s, bool boundary)
{
	bool partial = !s->throttled && evbuffer_get_length(bufferevent_get_input(s->bev)) > 0;

	if (s->closing || !s->hello_done)
		return; /* the ERROR's or the HELLO deadline runs */
	if (!partial) {
		if (s->deadline == SESSION_DEADLINE_FRAME)
			session_arm(s, SESSION_DEADLINE_NONE, 0);
	} else if (boundary || s->deadline != SESSION_DEADLINE_FRAME) {
		session_arm(s, SESSION_DEADLINE_FRAME, s->broker->cfg->frame_timeout_ms);
	}
}

/* A deadline passed: the client is told which, then let go. */
static void session_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	const struct config *c = s->broker->cfg;

	(void)fd;
	(void)what;
	switch (s->deadline) {
	case SESSION_DEADLINE_HELLO:
		session_fail(s, MBX_ERROR_TIMEOUT, "no HELLO within %u ms of connecting",
			     c->hello_timeout_ms);
		break;
	case SESSION_DEADLINE_FRAME:
		session_fail(s, MBX_ERROR_TIMEOUT, "a frame was left unfinished for %u ms",
			     c->frame_timeout_ms);
		break;
	case SESSION_DEADLINE_CLOSE:
		log_debug("session %llu: the client did not read its ERROR in %u ms: closed",
			  (unsigned long long)s->id, SESSION_CLOSE_MS);
		session_free(s);
		break;
	case SESSION_DEADLINE_NONE:
		break;
	}
}

/* Reads every complete frame in the input buffer. */
static void session_read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct mbx_header h;
	bool boundary = false;
	uint8_t *p;
	int rc;

	while (!s->closing && !s->throttled && evbuffer_get_length(in) >= MBX_HEADER_SIZE) {
		p = evbuffer_pullup(in, MBX_HEADER_SIZE);
		rc = mbx_decode_header(p, &h);
		if (rc == -EMSGSIZE || (rc == 0 && h.length > s->body_max)) {
			session_fail(s, MBX_ERROR_TOO_BIG,
				     "frame of %u bytes exceeds the limit of %zu (the largest "
				     "mailbox here takes %zu bytes)",
				     h.length, s->body_max,
				     s->body_max - (MBX_BODY_MAX - MBX_PAYLOAD_MAX));
			break;
		}
		if (rc < 0) {
			session_fail(s, MBX_ERROR_PROTOCOL,
				     "malformed frame header (type %u, flags 0x%x)", h.type,
				     h.flags);
			break;
		}
		if (evbuffer_get_length(in) < MBX_HEADER_SIZE + (size_t)h.length)
			break; /* wait for the rest of the body */
		p = evbuffer_pullup(in, MBX_HEADER_SIZE + (ssize_t)h.length);
		s->more_input = evbuffer_get_length(in) > MBX_HEADER_SIZE + (size_t)h.length;
		session_dispatch(s, &h, p + MBX_HEADER_SIZE);
		s->more_input = false;
		evbuffer_drain(in, MBX_HEADER_SIZE + (size_t)h.length);
		boundary = true;
		session_flow(s); /* a client at its bound is read no further */
	}
	session_frame_deadline(s, boundary);
}

/* Output drained to the low mark: free a closing session, or reconsider reading. */
static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (s->closing) {
		session_free(s);
		return;
	}
	session_flow(s); /* the client read some answers: it may be read again */
}

/* EOF or error: the client is gone. */
static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("session %llu: client closed", (unsigned long long)s->id);
		session_free(s);
	}
}

/*
 * Turns a client away with an ERROR saying why, then closes its socket. The
 * socket is new, so its buffer takes the short frame at once; a client that
 * is gone already just misses it.
 */
void session_refuse_fd(int fd, uint16_t code, const char *fmt, ...)
{
	struct mbx_error e = {.code = code};
	struct mbx_wbuf w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	mbx_wbuf_init(&w);
	if (mbx_encode_error(&w, 0, &e) == 0 &&
	    send(fd, w.data, w.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refused client: %s", strerror(errno));
	mbx_wbuf_free(&w);
	close(fd);
}

/* The sessions of one uid; linear, since it runs once per accepted client. */
static size_t session_count_uid(const struct broker *b, uid_t uid)
{
	const struct session *o;
	size_t n = 0;

	TAILQ_FOREACH(o, &b->sessions, entry)
	n += o->who.uid == uid;
	return n;
}

/* The largest frame body a client may send: a SUBMIT with the largest mailbox's payload. */
static size_t session_body_max(const struct broker *b)
{
	uint32_t payload = 0;

	for (size_t i = 0; i < b->n_devices; i++)
		if (b->devices[i]->info.payload_max > payload)
			payload = b->devices[i]->info.payload_max;
	return MBX_BODY_MAX - MBX_PAYLOAD_MAX + payload;
}

/* Sets up a session's buffers, deadlines and bounds; false when memory ran out. */
static bool session_setup(struct broker *b, struct session *s, int fd)
{
	s->bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(b->base, session_timeout, s);
	s->pace_timer = evtimer_new(b->base, session_pace_end, s);
	s->cap_held = b->n_devices * SESSION_HELD_PER_DEVICE;
	s->held = calloc(s->cap_held ? s->cap_held : 1, sizeof(*s->held));
	if (!s->bev || !s->timer || !s->pace_timer || !s->held)
		return false;
	s->broker = b;
	s->id = ++b->next_session_id;
	s->body_max = session_body_max(b);
	TAILQ_INIT(&s->jobs);
	TAILQ_INIT(&s->watches);
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	/* Input holds at most one frame; output wakes us when half the bound is read. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, MBX_HEADER_SIZE + s->body_max);
	bufferevent_setwatermark(s->bev, EV_WRITE, (size_t)b->cfg->max_pending_kib << 9, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return true;
}

/* Accepts a client whose credentials the kernel can tell, within its uid's limit. */
int session_new(struct broker *b, int fd)
{
	struct session *s = calloc(1, sizeof(*s));
	uint32_t per_user = b->cfg->max_clients_per_user;
	int rc;

	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	rc = identity_from_socket(fd, &s->who);
	if (rc < 0) {
		log_warnx("refusing a client whose credentials cannot be read: %s", strerror(-rc));
		free(s);
		close(fd);
		return rc;
	}
	if (session_count_uid(b, s->who.uid) >= per_user) {
		log_warnx("refusing a client of uid %u (%s) pid %d: %u connections of that user "
			  "are open (limits.max_clients_per_user)",
			  (unsigned)s->who.uid, s->who.user, (int)s->who.pid, per_user);
		session_refuse_fd(fd, MBX_ERROR_LIMIT,
				  "%s has %u connections open, the most one user may have "
				  "(limits.max_clients_per_user): close one first",
				  s->who.user, per_user);
		identity_clear(&s->who);
		free(s);
		return -EUSERS;
	}
	if (!session_setup(b, s, fd)) {
		if (s->timer)
			event_free(s->timer);
		if (s->pace_timer)
			event_free(s->pace_timer);
		if (s->bev)
			bufferevent_free(s->bev); /* closes fd */
		else
			close(fd);
		free(s->held);
		identity_clear(&s->who);
		free(s);
		return -ENOMEM;
	}
	TAILQ_INSERT_TAIL(&b->sessions, s, entry);
	b->n_sessions++;
	session_arm(s, SESSION_DEADLINE_HELLO, b->cfg->hello_timeout_ms);
	log_debug("session %llu: uid %u (%s) gid %u pid %d connected", (unsigned long long)s->id,
		  (unsigned)s->who.uid, s->who.user, (unsigned)s->who.gid, (int)s->who.pid);
	return 0;
}

/*
 * After a policy reload: a watch whose session may no longer see its device
 * ends (no further EVENTs; the connection and its other requests go on).
 */
void session_policy_changed(struct broker *b)
{
	struct session *s;
	struct watch *w, *next;

	TAILQ_FOREACH(s, &b->sessions, entry)
	for (w = TAILQ_FIRST(&s->watches); w; w = next) {
		next = TAILQ_NEXT(w, sentry);
		if (session_may_see(s, w->dev))
			continue;
		log_info("session %llu (uid %u): the policy no longer lets %s see %s: "
			 "watch ended",
			 (unsigned long long)s->id, (unsigned)s->who.uid, s->who.user,
			 w->dev->name);
		TAILQ_REMOVE(&s->watches, w, sentry);
		TAILQ_REMOVE(&w->dev->watchers, w, dentry);
		free(w);
	}
}

/* Remembers an open request. */
void session_add_job(struct session *s, struct job *j)
{
	/* Its input, the largest answer it could get, and the rest: held against the bound. */
	j->reserve = j->in_len + j->dev->info.payload_max + SESSION_JOB_COST;
	s->reserved += j->reserve;
	j->session = s;
	TAILQ_INSERT_TAIL(&s->jobs, j, sentry);
	s->n_jobs++;
}

/* Forgets a finished request. */
void session_remove_job(struct session *s, struct job *j)
{
	if (j->client_timer)
		evtimer_del(j->client_timer); /* nobody is waiting any more */
	TAILQ_REMOVE(&s->jobs, j, sentry);
	s->n_jobs--;
	s->reserved -= j->reserve;
	j->reserve = 0;
	j->session = NULL;
	session_flow(s);
}

/* Frees a session: queued requests are dropped, running ones finish unattended. */
void session_free(struct session *s)
{
	struct broker *b = s->broker;
	struct job *j;

	s->closing = true; /* nothing more is written or read while it goes */
	while ((j = TAILQ_FIRST(&s->jobs))) {
		session_remove_job(s, j);
		if (device_dequeue(j->dev, j))
			request_drop(j);
		/* else: running, done, or a background origin: completes without us */
	}
	background_unwatch_all(s);
	TAILQ_REMOVE(&b->sessions, s, entry);
	b->n_sessions--;
	event_free(s->timer);
	event_free(s->pace_timer);
	bufferevent_free(s->bev);
	identity_clear(&s->who);
	free(s->held);
	free(s);
}
