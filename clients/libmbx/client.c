/*
 * libmbx: a connection to mbxd.
 *
 * The socket is non-blocking and every wait is a poll() with a deadline, so
 * a short read or write, EINTR, or a timeout mid-frame never loses bytes: the
 * partial frame stays in the client until the rest arrives. While a request
 * is being written, whatever the server sends is read and queued, so a
 * client and a server that both write large frames cannot deadlock.
 *
 * Every frame from the server is decoded (and so fully checked) as soon as
 * it is complete; RESULTs and DEVICES replies must answer a tag that is in
 * flight. Any violation, an ERROR frame, or a lost connection makes the
 * client unusable: every later call returns the same error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <mbx/mbx.h>

#define CLIENT_SOFTWARE "libmbx"

/* One decoded frame waiting to be handed to the caller. */
struct client_msg {
	struct client_msg *next;
	uint16_t type;
	uint32_t tag;
	uint8_t *frame; /* owned; result.payload points into it */
	struct mbx_result result;
	struct mbx_event event;
	struct mbx_device_desc *devices; /* owned */
	size_t n_devices;
	char *text; /* owned: a METRICS reply, NUL-terminated */
};

struct client_queue {
	struct client_msg *head;
	struct client_msg **tail;
};

/* A request sent and not yet answered. */
struct client_inflight {
	uint32_t tag;
	uint16_t type; /* the type of the request */
};

struct mbx_client {
	int fd;
	int err; /* sticky: nonzero once the connection is unusable */
	bool hello_done;
	uint32_t next_tag;
	struct mbx_hello_rep server;

	/* The frame being read. */
	uint8_t hdr[MBX_HEADER_SIZE];
	size_t hdr_got;
	struct mbx_header h;
	uint8_t *body;
	size_t body_got;

	struct client_inflight *inflight;
	size_t n_inflight;
	size_t cap_inflight;

	struct client_queue results;
	struct client_queue events;
	struct client_queue replies; /* DEVICES and METRICS answers */

	struct mbx_wbuf out;
	char last_error[MBX_MESSAGE_MAX + 128];
};

/* Records why the connection failed, for mbx_last_error(). */
__attribute__((format(printf, 2, 3))) static void client_diag(struct mbx_client *c, const char *fmt,
							      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
}

/* Makes the connection unusable with err and returns err. */
static int client_fail(struct mbx_client *c, int err)
{
	if (!c->err)
		c->err = err;
	return c->err;
}

/* Milliseconds on the monotonic clock. */
static int64_t client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline for a timeout in ms (-1: none). */
static int64_t client_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : client_now_ms() + timeout_ms;
}

/* The poll() timeout left until deadline. */
static int client_remaining(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - client_now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

static void client_queue_init(struct client_queue *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static void client_queue_push(struct client_queue *q, struct client_msg *m)
{
	m->next = NULL;
	*q->tail = m;
	q->tail = &m->next;
}

/* Unlinks and returns the first message with tag (any tag if !match_tag). */
static struct client_msg *client_queue_take(struct client_queue *q, bool match_tag, uint32_t tag)
{
	for (struct client_msg **pp = &q->head; *pp; pp = &(*pp)->next) {
		struct client_msg *m = *pp;

		if (match_tag && m->tag != tag)
			continue;
		*pp = m->next;
		if (q->tail == &m->next)
			q->tail = pp;
		m->next = NULL;
		return m;
	}
	return NULL;
}

static void client_msg_free(struct client_msg *m)
{
	if (!m)
		return;
	free(m->frame);
	free(m->devices);
	free(m->text);
	free(m);
}

static void client_queue_free(struct client_queue *q)
{
	struct client_msg *m;

	while ((m = client_queue_take(q, false, 0)))
		client_msg_free(m);
}

/* Finds a request in flight by tag; returns its index or -1. */
static ssize_t client_inflight_find(const struct mbx_client *c, uint32_t tag)
{
	for (size_t i = 0; i < c->n_inflight; i++)
		if (c->inflight[i].tag == tag)
			return (ssize_t)i;
	return -1;
}

/* Remembers a request as in flight. */
static int client_inflight_add(struct mbx_client *c, uint32_t tag, uint16_t type)
{
	if (c->n_inflight == c->cap_inflight) {
		size_t cap = c->cap_inflight ? c->cap_inflight * 2 : 8;
		struct client_inflight *v = realloc(c->inflight, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->inflight = v;
		c->cap_inflight = cap;
	}
	c->inflight[c->n_inflight++] = (struct client_inflight){.tag = tag, .type = type};
	return 0;
}

static void client_inflight_remove(struct mbx_client *c, size_t i)
{
	c->inflight[i] = c->inflight[--c->n_inflight];
}

/* Picks a tag no request in flight uses; 0 is kept for HELLO. */
static uint32_t client_new_tag(struct mbx_client *c)
{
	do {
		if (++c->next_tag == 0)
			c->next_tag = 1;
	} while (client_inflight_find(c, c->next_tag) >= 0);
	return c->next_tag;
}

static const char *client_type_name(uint16_t type)
{
	static const char *const names[] = {
	    [MBX_MSG_HELLO] = "HELLO",   [MBX_MSG_DEVICES] = "DEVICES",
	    [MBX_MSG_SUBMIT] = "SUBMIT", [MBX_MSG_EXPLAIN] = "EXPLAIN",
	    [MBX_MSG_RESULT] = "RESULT", [MBX_MSG_EVENT] = "EVENT",
	    [MBX_MSG_ERROR] = "ERROR",   [MBX_MSG_METRICS] = "METRICS",
	    [MBX_MSG_WATCH] = "WATCH",
	};

	if (type < sizeof(names) / sizeof(names[0]) && names[type])
		return names[type];
	return "unknown";
}

/* The type of the answer to a request: DEVICES and METRICS answer in kind, the rest with a RESULT.
 */
static uint16_t client_reply_type(uint16_t request)
{
	return request == MBX_MSG_DEVICES || request == MBX_MSG_METRICS ? request : MBX_MSG_RESULT;
}

/* Checks that an answer of type answers a request in flight, and retires it. */
static int client_match_reply(struct mbx_client *c, uint16_t type, uint32_t tag)
{
	ssize_t i = client_inflight_find(c, tag);
	uint16_t want;

	if (i < 0) {
		client_diag(c, "server sent a %s for tag %u, which is not in flight",
			    client_type_name(type), tag);
		return client_fail(c, -EPROTO);
	}
	want = c->inflight[i].type;
	if (type != client_reply_type(want)) {
		client_diag(c, "server answered the %s of tag %u with a %s", client_type_name(want),
			    tag, client_type_name(type));
		return client_fail(c, -EPROTO);
	}
	client_inflight_remove(c, (size_t)i);
	return 0;
}

/* Decodes the server's HELLO and checks it chose a version libmbx speaks. */
static int client_handle_hello(struct mbx_client *c, const uint8_t *body, size_t len)
{
	if (c->hello_done) {
		client_diag(c, "server sent a second HELLO");
		return client_fail(c, -EPROTO);
	}
	if (mbx_decode_hello_rep(body, len, &c->server) < 0) {
		client_diag(c, "malformed HELLO from the server");
		return client_fail(c, -EPROTO);
	}
	if (c->server.version != MBX_PROTO_VERSION) {
		client_diag(c, "server chose protocol version %u; libmbx speaks %u..%u",
			    c->server.version, MBX_PROTO_VERSION, MBX_PROTO_VERSION);
		return client_fail(c, -EPROTO);
	}
	c->hello_done = true;
	return 0;
}

/* Turns an ERROR frame into -EPROTO, keeping the server's message. */
static int client_handle_error(struct mbx_client *c, const uint8_t *body, size_t len)
{
	struct mbx_error e;

	if (mbx_decode_error(body, len, &e) < 0) {
		client_diag(c, "malformed ERROR from the server");
		return client_fail(c, -EPROTO);
	}
	client_diag(c, "mbxd: %s", e.message[0] ? e.message : "protocol error");
	return client_fail(c, -EPROTO);
}

/* Decodes a DEVICES reply into an exactly sized array. */
static int client_decode_devices(struct mbx_client *c, struct client_msg *m, const uint8_t *body,
				 size_t len)
{
	struct mbx_device_desc *v = calloc(MBX_DEVICES_MAX, sizeof(*v));
	int r;

	if (!v)
		return client_fail(c, -ENOMEM);
	r = mbx_decode_devices_rep(body, len, v, MBX_DEVICES_MAX, &m->n_devices);
	if (r < 0) {
		free(v);
		client_diag(c, "malformed DEVICES reply from the server");
		return client_fail(c, -EPROTO);
	}
	if (m->n_devices) {
		struct mbx_device_desc *s = realloc(v, m->n_devices * sizeof(*v));

		m->devices = s ? s : v;
	} else {
		free(v);
	}
	return 0;
}

/* Decodes a METRICS reply into a NUL-terminated copy. */
static int client_decode_metrics(struct mbx_client *c, struct client_msg *m, const uint8_t *body,
				 size_t len)
{
	struct mbx_metrics mm;

	if (mbx_decode_metrics_rep(body, len, &mm) < 0) {
		client_diag(c, "malformed METRICS reply from the server");
		return client_fail(c, -EPROTO);
	}
	m->text = malloc((size_t)mm.len + 1);
	if (!m->text)
		return client_fail(c, -ENOMEM);
	if (mm.len)
		memcpy(m->text, mm.text, mm.len);
	m->text[mm.len] = '\0';
	return 0;
}

/* Decodes one complete frame and queues it; takes ownership of body. */
static int client_dispatch(struct mbx_client *c, const struct mbx_header *h, uint8_t *body)
{
	struct client_msg *m;
	int r = 0;

	if (h->type == MBX_MSG_ERROR) {
		r = client_handle_error(c, body, h->length);
		free(body);
		return r;
	}
	if (!c->hello_done || h->type == MBX_MSG_HELLO) {
		if (h->type == MBX_MSG_HELLO)
			r = client_handle_hello(c, body, h->length);
		else {
			client_diag(c, "server sent a %s before HELLO", client_type_name(h->type));
			r = client_fail(c, -EPROTO);
		}
		free(body);
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		free(body);
		return client_fail(c, -ENOMEM);
	}
	m->type = h->type;
	m->tag = h->tag;
	switch (h->type) {
	case MBX_MSG_RESULT:
		if (mbx_decode_result(body, h->length, &m->result) < 0) {
			client_diag(c, "malformed RESULT from the server");
			r = client_fail(c, -EPROTO);
		} else if ((r = client_match_reply(c, h->type, h->tag)) == 0) {
			m->frame = body;
			body = NULL;
			client_queue_push(&c->results, m);
			m = NULL;
		}
		break;
	case MBX_MSG_EVENT:
		if (mbx_decode_event(body, h->length, &m->event) < 0) {
			client_diag(c, "malformed EVENT from the server");
			r = client_fail(c, -EPROTO);
		} else {
			client_queue_push(&c->events, m);
			m = NULL;
		}
		break;
	case MBX_MSG_DEVICES:
		if ((r = client_decode_devices(c, m, body, h->length)) == 0 &&
		    (r = client_match_reply(c, h->type, h->tag)) == 0) {
			client_queue_push(&c->replies, m);
			m = NULL;
		}
		break;
	case MBX_MSG_METRICS:
		if ((r = client_decode_metrics(c, m, body, h->length)) == 0 &&
		    (r = client_match_reply(c, h->type, h->tag)) == 0) {
			client_queue_push(&c->replies, m);
			m = NULL;
		}
		break;
	default:
		client_diag(c, "server sent a %s, which only clients send",
			    client_type_name(h->type));
		r = client_fail(c, -EPROTO);
		break;
	}
	client_msg_free(m);
	free(body);
	return r;
}

/* Reads into the header or body under construction; dispatches whole frames. */
static int client_read_step(struct mbx_client *c)
{
	uint8_t *dst, *body;
	size_t want;
	ssize_t n;

	if (c->hdr_got < MBX_HEADER_SIZE) {
		dst = c->hdr + c->hdr_got;
		want = MBX_HEADER_SIZE - c->hdr_got;
	} else {
		dst = c->body + c->body_got;
		want = c->h.length - c->body_got;
	}
	do
		n = read(c->fd, dst, want);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : client_fail(c, -errno);
	if (n == 0) {
		client_diag(c, "mbxd closed the connection");
		return client_fail(c, -ECONNRESET);
	}
	if (c->hdr_got < MBX_HEADER_SIZE) {
		c->hdr_got += (size_t)n;
		if (c->hdr_got < MBX_HEADER_SIZE)
			return 0;
		if (mbx_decode_header(c->hdr, &c->h) < 0) {
			client_diag(c, "malformed frame header from the server");
			return client_fail(c, -EPROTO);
		}
		/* One extra byte so an empty body is still a distinct allocation. */
		c->body = malloc((size_t)c->h.length + 1);
		if (!c->body)
			return client_fail(c, -ENOMEM);
		c->body_got = 0;
	} else {
		c->body_got += (size_t)n;
	}
	if (c->body_got < c->h.length)
		return 0;
	body = c->body;
	c->body = NULL;
	c->hdr_got = 0;
	return client_dispatch(c, &c->h, body);
}

/* Reads and dispatches everything available without blocking. */
static int client_read_available(struct mbx_client *c)
{
	int r;

	while ((r = client_read_step(c)) == 0)
		;
	return r == -EAGAIN ? 0 : r;
}

/* Waits for data until deadline, then reads it: 0, -ETIMEDOUT or a fatal error. */
static int client_pump(struct mbx_client *c, int64_t deadline)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	int n;

	if (c->err)
		return c->err;
	do
		n = poll(&pfd, 1, client_remaining(deadline));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return client_fail(c, -errno);
	if (n == 0)
		return -ETIMEDOUT;
	return client_read_available(c);
}

/*
 * One step of a wait loop: its caller checks its queue, then calls this.
 * A connection that failed after its last frames were queued is reported
 * only once the caller has found nothing more in its queue.
 */
static int client_wait(struct mbx_client *c, int64_t deadline)
{
	int r;

	if (c->err)
		return c->err;
	r = client_pump(c, deadline);
	return r == -ETIMEDOUT ? r : 0;
}

/* Writes the whole output buffer, reading the server meanwhile. */
static int client_flush(struct mbx_client *c)
{
	size_t off = 0;

	while (off < c->out.len) {
		ssize_t n =
		    send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			client_diag(c, "cannot write to mbxd: %s", strerror(errno));
			return client_fail(c, -errno);
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return client_fail(c, -errno);
		if (pfd.revents & (POLLIN | POLLHUP)) {
			int r = client_read_available(c);

			if (r < 0)
				return r;
		}
	}
	c->out.len = 0;
	return 0;
}

/* Returns $MBX_SOCKET or the default when path is NULL. */
const char *mbx_socket_path(const char *path)
{
	const char *env;

	if (path && *path)
		return path;
	env = getenv("MBX_SOCKET");
	if (env && *env)
		return env;
	return MBX_DEFAULT_SOCKET;
}

/* Connects a non-blocking, close-on-exec stream socket to path. */
static int client_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Connect blocking: a non-blocking AF_UNIX connect fails with EAGAIN on a full backlog. */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;

		if (e == EINTR)
			continue;
		close(fd);
		return -e;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Sends our HELLO and waits for the server's. */
static int client_hello(struct mbx_client *c)
{
	struct mbx_hello_req req = {
	    .version_min = MBX_PROTO_VERSION,
	    .version_max = MBX_PROTO_VERSION,
	};
	int r;

	snprintf(req.software, sizeof(req.software), "%s", CLIENT_SOFTWARE);
	r = mbx_encode_hello_req(&c->out, 0, &req);
	if (r < 0)
		return r;
	r = client_flush(c);
	while (r == 0 && !c->hello_done)
		r = client_wait(c, -1);
	return r;
}

int mbx_open_diag(const char *path, struct mbx_client **out, char *msg, size_t msg_len)
{
	struct mbx_client *c;
	int r;

	*out = NULL;
	if (msg && msg_len)
		msg[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	mbx_wbuf_init(&c->out);
	client_queue_init(&c->results);
	client_queue_init(&c->events);
	client_queue_init(&c->replies);
	c->fd = client_connect(mbx_socket_path(path));
	if (c->fd < 0) {
		r = c->fd;
		c->fd = -1;
		mbx_close(c);
		return r;
	}
	r = client_hello(c);
	if (r < 0) {
		if (msg && msg_len)
			snprintf(msg, msg_len, "%s", c->last_error);
		mbx_close(c);
		return r;
	}
	*out = c;
	return 0;
}

int mbx_open(const char *path, struct mbx_client **out)
{
	return mbx_open_diag(path, out, NULL, 0);
}

void mbx_close(struct mbx_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->body);
	free(c->inflight);
	client_queue_free(&c->results);
	client_queue_free(&c->events);
	client_queue_free(&c->replies);
	mbx_wbuf_free(&c->out);
	free(c);
}

const struct mbx_hello_rep *mbx_server(const struct mbx_client *c)
{
	return &c->server;
}

int mbx_fd(const struct mbx_client *c)
{
	return c->fd;
}

const char *mbx_last_error(const struct mbx_client *c)
{
	return c ? c->last_error : "";
}

/* Sends one already encoded request and marks its tag in flight. */
static int client_send_encoded(struct mbx_client *c, uint32_t tag, uint16_t type)
{
	int r = client_inflight_add(c, tag, type);

	if (r < 0) {
		c->out.len = 0;
		return r;
	}
	return client_flush(c);
}

/* Sends a request with an empty body (DEVICES, METRICS) and waits for its reply. */
static int client_ask_empty(struct mbx_client *c, uint16_t type,
			    int (*encode)(struct mbx_wbuf *w, uint32_t tag),
			    struct client_msg **reply)
{
	uint32_t tag;
	int r;

	*reply = NULL;
	if (c->err)
		return c->err;
	tag = client_new_tag(c);
	r = encode(&c->out, tag);
	if (r < 0)
		return r;
	r = client_send_encoded(c, tag, type);
	if (r < 0)
		return r;
	while (!(*reply = client_queue_take(&c->replies, true, tag)))
		if ((r = client_wait(c, -1)) < 0)
			return r;
	return 0;
}

int mbx_devices(struct mbx_client *c, struct mbx_device_desc **list, size_t *count)
{
	struct client_msg *m;
	int r;

	*list = NULL;
	*count = 0;
	r = client_ask_empty(c, MBX_MSG_DEVICES, mbx_encode_devices_req, &m);
	if (r < 0)
		return r;
	*list = m->devices;
	*count = m->n_devices;
	m->devices = NULL;
	client_msg_free(m);
	return 0;
}

int mbx_metrics(struct mbx_client *c, char **text)
{
	struct client_msg *m;
	int r;

	*text = NULL;
	r = client_ask_empty(c, MBX_MSG_METRICS, mbx_encode_metrics_req, &m);
	if (r < 0)
		return r;
	*text = m->text;
	m->text = NULL;
	client_msg_free(m);
	return 0;
}

/* Counts the SUBMITs in flight: the server's max_inflight limits those only. */
static size_t client_submits_inflight(const struct mbx_client *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_inflight; i++)
		n += c->inflight[i].type == MBX_MSG_SUBMIT;
	return n;
}

/* Checks a request against the protocol's and the server's limits. */
static int client_check_request(const struct mbx_client *c, uint16_t type,
				const struct mbx_request *req)
{
	if (!req->device || !*req->device || (!req->payload && req->payload_len))
		return -EINVAL;
	if (strlen(req->device) >= MBX_NAME_MAX)
		return -ENAMETOOLONG;
	if (req->reason && strlen(req->reason) >= MBX_REASON_MAX)
		return -E2BIG;
	if (req->payload_len > MBX_PAYLOAD_MAX ||
	    (c->server.max_payload && req->payload_len > c->server.max_payload))
		return -EMSGSIZE;
	if (type == MBX_MSG_SUBMIT && c->server.max_inflight &&
	    client_submits_inflight(c) >= c->server.max_inflight)
		return -EBUSY;
	return 0;
}

/* Encodes and sends a SUBMIT or EXPLAIN; returns its tag. */
static int client_send_request(struct mbx_client *c, uint16_t type, const struct mbx_request *req,
			       uint32_t *tag)
{
	struct mbx_submit m = {
	    .opcode = req->opcode,
	    .timeout_ms = req->timeout_ms,
	    .payload = req->payload,
	    .payload_len = (uint32_t)req->payload_len,
	};
	int r;

	if (c->err)
		return c->err;
	r = client_check_request(c, type, req);
	if (r < 0)
		return r;
	snprintf(m.device, sizeof(m.device), "%s", req->device);
	if (req->reason)
		snprintf(m.reason, sizeof(m.reason), "%s", req->reason);
	*tag = client_new_tag(c);
	r = mbx_encode_submit(&c->out, type, *tag, &m);
	if (r < 0)
		return r;
	return client_send_encoded(c, *tag, type);
}

/* Moves a queued RESULT into the caller's reply. */
static void client_give_reply(struct client_msg *m, struct mbx_reply *reply)
{
	reply->result = m->result;
	reply->frame = m->frame;
	m->frame = NULL;
	client_msg_free(m);
}

/* Waits for the RESULT of tag (any tag if !match) until deadline. */
static int client_wait_result(struct mbx_client *c, bool match, uint32_t *tag, int64_t deadline,
			      struct mbx_reply *reply)
{
	struct client_msg *m;
	int r;

	while (!(m = client_queue_take(&c->results, match, *tag))) {
		if (!match && c->n_inflight == 0)
			return c->err ? c->err : -ENOMSG;
		r = client_wait(c, deadline);
		if (r < 0)
			return r;
	}
	*tag = m->tag;
	client_give_reply(m, reply);
	return 0;
}

/* Sends a request of type and waits for its RESULT. */
static int client_call(struct mbx_client *c, uint16_t type, const struct mbx_request *req,
		       struct mbx_reply *reply)
{
	uint32_t tag;
	int r;

	memset(reply, 0, sizeof(*reply));
	r = client_send_request(c, type, req, &tag);
	if (r < 0)
		return r;
	return client_wait_result(c, true, &tag, -1, reply);
}

int mbx_submit(struct mbx_client *c, const struct mbx_request *req, struct mbx_reply *reply)
{
	return client_call(c, MBX_MSG_SUBMIT, req, reply);
}

int mbx_explain(struct mbx_client *c, const struct mbx_request *req, struct mbx_reply *reply)
{
	return client_call(c, MBX_MSG_EXPLAIN, req, reply);
}

int mbx_send(struct mbx_client *c, const struct mbx_request *req, uint32_t *tag)
{
	return client_send_request(c, MBX_MSG_SUBMIT, req, tag);
}

int mbx_receive(struct mbx_client *c, int timeout_ms, struct mbx_reply *reply, uint32_t *tag)
{
	uint32_t t = 0;
	int r;

	memset(reply, 0, sizeof(*reply));
	r = client_wait_result(c, false, &t, client_deadline(timeout_ms), reply);
	if (r == 0 && tag)
		*tag = t;
	return r;
}

int mbx_watch(struct mbx_client *c, const char *device, uint32_t *tag)
{
	struct mbx_watch m;
	struct mbx_reply reply;
	int r;

	if (c->err)
		return c->err;
	if (!device || !*device)
		return -EINVAL;
	if (strlen(device) >= sizeof(m.device))
		return -ENAMETOOLONG;
	snprintf(m.device, sizeof(m.device), "%s", device);
	*tag = client_new_tag(c);
	r = mbx_encode_watch(&c->out, *tag, &m);
	if (r == 0)
		r = client_send_encoded(c, *tag, MBX_MSG_WATCH);
	if (r == 0)
		r = client_wait_result(c, true, tag, -1, &reply);
	if (r < 0)
		return r;
	switch (reply.result.status) {
	case MBX_STATUS_OK:
		break;
	case MBX_STATUS_NO_DEVICE:
		r = -ENODEV;
		break;
	case MBX_STATUS_DENIED:
		r = -EACCES;
		break;
	default:
		r = -EALREADY;
		break;
	}
	mbx_reply_free(&reply);
	return r;
}

int mbx_next_event(struct mbx_client *c, int timeout_ms, struct mbx_event *ev, uint32_t *tag)
{
	int64_t deadline = client_deadline(timeout_ms);
	struct client_msg *m;
	int r;

	while (!(m = client_queue_take(&c->events, false, 0))) {
		r = client_wait(c, deadline);
		if (r < 0)
			return r;
	}
	*ev = m->event;
	if (tag)
		*tag = m->tag;
	client_msg_free(m);
	return 0;
}

void mbx_reply_free(struct mbx_reply *r)
{
	if (!r)
		return;
	free(r->frame);
	memset(r, 0, sizeof(*r));
}

const char *mbx_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EPROTO:
		return "protocol error (the peer is not a compatible mbxd, or it sent an ERROR)";
	case -ECONNRESET:
		return "mbxd closed the connection";
	case -ETIMEDOUT:
		return "timed out";
	case -ENOMSG:
		return "no request is in flight";
	case -EBUSY:
		return "too many requests in flight on this connection";
	case -EMSGSIZE:
		return "payload larger than the daemon accepts";
	case -ENAMETOOLONG:
		return "name too long";
	case -E2BIG:
		return "reason too long";
	case -ENODEV:
		return "no such device";
	}
	if (err < 0) {
		const char *s = strerrordesc_np(-err);

		if (s)
			return s;
	}
	return "unknown error";
}
