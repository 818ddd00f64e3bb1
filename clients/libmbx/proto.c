/*
 * The wire codec: one encoder and one decoder per message of proto.h.
 *
 * Decoders are the daemon's edge for untrusted bytes: they check every
 * length, every enumeration and every string, and consume a body exactly.
 * Past them, code may trust the decoded structs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/proto.h>

struct writer {
	struct mbx_wbuf *w;
	size_t start; /* where this frame began, to roll back on error */
	int err;
};

struct reader {
	const uint8_t *p;
	size_t left;
	int err;
};

/* Prepares an empty buffer. */
void mbx_wbuf_init(struct mbx_wbuf *w)
{
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
}

/* Releases a buffer's memory. */
void mbx_wbuf_free(struct mbx_wbuf *w)
{
	free(w->data);
	mbx_wbuf_init(w);
}

/* Makes room for n more bytes, doubling to keep appends cheap. */
static int wbuf_reserve(struct mbx_wbuf *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 256;
	uint8_t *p;

	if (w->len + n <= w->cap)
		return 0;
	while (cap < w->len + n)
		cap *= 2;
	p = realloc(w->data, cap);
	if (!p)
		return -ENOMEM;
	w->data = p;
	w->cap = cap;
	return 0;
}

static void w_bytes(struct writer *wr, const void *src, size_t n)
{
	if (wr->err || n == 0)
		return;
	wr->err = wbuf_reserve(wr->w, n);
	if (wr->err)
		return;
	memcpy(wr->w->data + wr->w->len, src, n);
	wr->w->len += n;
}

static void w_u8(struct writer *wr, uint8_t v)
{
	w_bytes(wr, &v, 1);
}

static void w_u16(struct writer *wr, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	w_bytes(wr, b, sizeof(b));
}

static void w_u32(struct writer *wr, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(wr, b, sizeof(b));
}

static void w_u64(struct writer *wr, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	w_bytes(wr, b, sizeof(b));
}

/* Writes a string from a field of cap bytes; an unterminated field is an error. */
static void w_str(struct writer *wr, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap) {
		if (!wr->err)
			wr->err = -EMSGSIZE;
		return;
	}
	w_u16(wr, (uint16_t)n);
	w_bytes(wr, s, n);
}

/* Starts a frame: room for the header, filled in by w_end. */
static void w_begin(struct writer *wr, struct mbx_wbuf *w)
{
	static const uint8_t zero[MBX_HEADER_SIZE];

	wr->w = w;
	wr->start = w->len;
	wr->err = 0;
	w_bytes(wr, zero, sizeof(zero));
}

/* Finishes a frame, or rolls the buffer back to where the frame began. */
static int w_end(struct writer *wr, uint16_t type, uint32_t tag)
{
	size_t body = wr->w->len - wr->start - MBX_HEADER_SIZE;
	uint8_t *h = wr->w->data + wr->start;

	if (!wr->err && body > MBX_BODY_MAX)
		wr->err = -EMSGSIZE;
	if (wr->err) {
		wr->w->len = wr->start;
		return wr->err;
	}
	for (int i = 0; i < 4; i++)
		h[i] = (uint8_t)(body >> (8 * i));
	h[4] = (uint8_t)type;
	h[5] = (uint8_t)(type >> 8);
	h[6] = 0;
	h[7] = 0;
	for (int i = 0; i < 4; i++)
		h[8 + i] = (uint8_t)(tag >> (8 * i));
	return 0;
}

static void r_fail(struct reader *r)
{
	if (!r->err)
		r->err = -EPROTO;
}

static const uint8_t *r_bytes(struct reader *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err || n > r->left) {
		r_fail(r);
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint8_t r_u8(struct reader *r)
{
	const uint8_t *p = r_bytes(r, 1);

	return p ? p[0] : 0;
}

static uint16_t r_u16(struct reader *r)
{
	const uint8_t *p = r_bytes(r, 2);

	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t r_u32(struct reader *r)
{
	const uint8_t *p = r_bytes(r, 4);

	return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		       (uint32_t)p[3] << 24
		 : 0;
}

static uint64_t r_u64(struct reader *r)
{
	uint64_t lo = r_u32(r);

	return lo | (uint64_t)r_u32(r) << 32;
}

/* Reads a string into a field of cap bytes: it must fit with its NUL and hold none. */
static void r_str(struct reader *r, char *dst, size_t cap)
{
	uint16_t n = r_u16(r);
	const uint8_t *p;

	dst[0] = '\0';
	if (r->err)
		return;
	if ((size_t)n >= cap) {
		r_fail(r);
		return;
	}
	p = r_bytes(r, n);
	if (!p)
		return;
	if (memchr(p, '\0', n)) {
		r_fail(r);
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

/* Reads a le32 length and that many payload bytes, borrowed from the body. */
static void r_payload(struct reader *r, const uint8_t **payload, uint32_t *len)
{
	*len = r_u32(r);
	*payload = NULL;
	if (r->err)
		return;
	if (*len > MBX_PAYLOAD_MAX) {
		r_fail(r);
		return;
	}
	*payload = r_bytes(r, *len);
	if (*len == 0)
		*payload = NULL;
}

/* A body must be consumed exactly: trailing bytes are a lie about a length. */
static int r_end(struct reader *r)
{
	if (!r->err && r->left != 0)
		r_fail(r);
	return r->err;
}

static void r_init(struct reader *r, const uint8_t *body, size_t len)
{
	r->p = body;
	r->left = len;
	r->err = 0;
}

/* Decodes and checks a frame header. */
int mbx_decode_header(const uint8_t buf[MBX_HEADER_SIZE], struct mbx_header *h)
{
	struct reader r;

	r_init(&r, buf, MBX_HEADER_SIZE);
	h->length = r_u32(&r);
	h->type = r_u16(&r);
	h->flags = r_u16(&r);
	h->tag = r_u32(&r);
	if (h->length > MBX_BODY_MAX)
		return -EMSGSIZE;
	if (h->type < MBX_MSG_HELLO || h->type > MBX_MSG_WATCH || h->flags != 0)
		return -EPROTO;
	return 0;
}

/* Encodes the client's HELLO. */
int mbx_encode_hello_req(struct mbx_wbuf *w, uint32_t tag, const struct mbx_hello_req *m)
{
	struct writer wr;

	w_begin(&wr, w);
	w_u16(&wr, m->version_min);
	w_u16(&wr, m->version_max);
	w_str(&wr, m->software, sizeof(m->software));
	return w_end(&wr, MBX_MSG_HELLO, tag);
}

/* Decodes the client's HELLO. */
int mbx_decode_hello_req(const uint8_t *body, size_t len, struct mbx_hello_req *m)
{
	struct reader r;

	r_init(&r, body, len);
	m->version_min = r_u16(&r);
	m->version_max = r_u16(&r);
	r_str(&r, m->software, sizeof(m->software));
	if (!r.err && m->version_min > m->version_max)
		r_fail(&r);
	return r_end(&r);
}

/* Encodes the server's HELLO. */
int mbx_encode_hello_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_hello_rep *m)
{
	struct writer wr;

	w_begin(&wr, w);
	w_u16(&wr, m->version);
	w_u16(&wr, 0);
	w_u32(&wr, m->max_payload);
	w_u32(&wr, m->max_inflight);
	w_str(&wr, m->software, sizeof(m->software));
	return w_end(&wr, MBX_MSG_HELLO, tag);
}

/* Decodes the server's HELLO. */
int mbx_decode_hello_rep(const uint8_t *body, size_t len, struct mbx_hello_rep *m)
{
	struct reader r;

	r_init(&r, body, len);
	m->version = r_u16(&r);
	if (r_u16(&r) != 0)
		r_fail(&r);
	m->max_payload = r_u32(&r);
	m->max_inflight = r_u32(&r);
	r_str(&r, m->software, sizeof(m->software));
	return r_end(&r);
}

/* Encodes a DEVICES request: an empty body. */
int mbx_encode_devices_req(struct mbx_wbuf *w, uint32_t tag)
{
	struct writer wr;

	w_begin(&wr, w);
	return w_end(&wr, MBX_MSG_DEVICES, tag);
}

static void w_device(struct writer *wr, const struct mbx_device_desc *d)
{
	w_str(wr, d->name, sizeof(d->name));
	w_str(wr, d->transport, sizeof(d->transport));
	w_str(wr, d->kind, sizeof(d->kind));
	w_str(wr, d->model, sizeof(d->model));
	w_str(wr, d->serial, sizeof(d->serial));
	w_u8(wr, d->state);
	w_u8(wr, d->bg_percent);
	w_u16(wr, d->bg_opcode);
	w_u32(wr, d->payload_max);
}

/* Encodes the DEVICES reply. */
int mbx_encode_devices_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_device_desc *d,
			   size_t n)
{
	struct writer wr;

	w_begin(&wr, w);
	if (n > MBX_DEVICES_MAX)
		wr.err = -EMSGSIZE;
	w_u16(&wr, (uint16_t)n);
	for (size_t i = 0; i < n; i++)
		w_device(&wr, &d[i]);
	return w_end(&wr, MBX_MSG_DEVICES, tag);
}

static void r_device(struct reader *r, struct mbx_device_desc *d)
{
	r_str(r, d->name, sizeof(d->name));
	r_str(r, d->transport, sizeof(d->transport));
	r_str(r, d->kind, sizeof(d->kind));
	r_str(r, d->model, sizeof(d->model));
	r_str(r, d->serial, sizeof(d->serial));
	d->state = r_u8(r);
	d->bg_percent = r_u8(r);
	d->bg_opcode = r_u16(r);
	d->payload_max = r_u32(r);
	if (!r->err && (d->state > MBX_DEVICE_FAILED || d->bg_percent > 100))
		r_fail(r);
}

/* Decodes the DEVICES reply into at most max entries. */
int mbx_decode_devices_rep(const uint8_t *body, size_t len, struct mbx_device_desc *d, size_t max,
			   size_t *n)
{
	struct reader r;
	uint16_t count;

	r_init(&r, body, len);
	count = r_u16(&r);
	*n = 0;
	if (r.err)
		return r.err;
	if (count > max || count > MBX_DEVICES_MAX)
		return -EMSGSIZE;
	for (uint16_t i = 0; i < count && !r.err; i++)
		r_device(&r, &d[i]);
	if (r_end(&r))
		return r.err;
	*n = count;
	return 0;
}

/* Encodes SUBMIT or EXPLAIN. */
int mbx_encode_submit(struct mbx_wbuf *w, uint16_t type, uint32_t tag, const struct mbx_submit *m)
{
	struct writer wr;

	w_begin(&wr, w);
	if ((type != MBX_MSG_SUBMIT && type != MBX_MSG_EXPLAIN) || m->payload_len > MBX_PAYLOAD_MAX)
		wr.err = -EMSGSIZE;
	w_str(&wr, m->device, sizeof(m->device));
	w_u16(&wr, m->opcode);
	w_u16(&wr, m->flags);
	w_u32(&wr, m->timeout_ms);
	w_str(&wr, m->reason, sizeof(m->reason));
	w_u32(&wr, m->payload_len);
	w_bytes(&wr, m->payload, m->payload_len);
	return w_end(&wr, type, tag);
}

/* Decodes SUBMIT or EXPLAIN; the payload is borrowed from body. */
int mbx_decode_submit(const uint8_t *body, size_t len, struct mbx_submit *m)
{
	struct reader r;

	r_init(&r, body, len);
	r_str(&r, m->device, sizeof(m->device));
	m->opcode = r_u16(&r);
	m->flags = r_u16(&r);
	m->timeout_ms = r_u32(&r);
	r_str(&r, m->reason, sizeof(m->reason));
	r_payload(&r, &m->payload, &m->payload_len);
	if (!r.err && (m->flags != 0 || m->device[0] == '\0'))
		r_fail(&r);
	return r_end(&r);
}

/* Encodes a RESULT. */
int mbx_encode_result(struct mbx_wbuf *w, uint32_t tag, const struct mbx_result *m)
{
	struct writer wr;

	w_begin(&wr, w);
	if (m->n_inner > MBX_INNER_MAX || m->payload_len > MBX_PAYLOAD_MAX)
		wr.err = -EMSGSIZE;
	w_u16(&wr, m->status);
	w_u16(&wr, m->cxl_rc);
	w_u16(&wr, m->vendor_status);
	w_u8(&wr, m->cls);
	w_u8(&wr, m->decision);
	w_u64(&wr, m->audit_seq);
	w_u32(&wr, m->duration_us);
	w_u32(&wr, m->retry_after_ms);
	w_str(&wr, m->rule, sizeof(m->rule));
	w_str(&wr, m->source, sizeof(m->source));
	w_str(&wr, m->message, sizeof(m->message));
	w_u16(&wr, m->n_inner);
	for (uint16_t i = 0; i < m->n_inner && i < MBX_INNER_MAX; i++) {
		w_u16(&wr, m->inner[i].opcode);
		w_u8(&wr, m->inner[i].cls);
		w_u8(&wr, m->inner[i].depth);
		w_u16(&wr, m->inner[i].target);
	}
	w_u32(&wr, m->payload_len);
	w_bytes(&wr, m->payload, m->payload_len);
	return w_end(&wr, MBX_MSG_RESULT, tag);
}

/* Decodes a RESULT; the payload is borrowed from body. */
int mbx_decode_result(const uint8_t *body, size_t len, struct mbx_result *m)
{
	struct reader r;

	r_init(&r, body, len);
	m->status = r_u16(&r);
	m->cxl_rc = r_u16(&r);
	m->vendor_status = r_u16(&r);
	m->cls = r_u8(&r);
	m->decision = r_u8(&r);
	m->audit_seq = r_u64(&r);
	m->duration_us = r_u32(&r);
	m->retry_after_ms = r_u32(&r);
	r_str(&r, m->rule, sizeof(m->rule));
	r_str(&r, m->source, sizeof(m->source));
	r_str(&r, m->message, sizeof(m->message));
	m->n_inner = r_u16(&r);
	if (!r.err && (m->status >= MBX_STATUS_COUNT || m->cls >= MBX_CLASS_COUNT ||
		       m->decision > MBX_DECISION_INVALID || m->n_inner > MBX_INNER_MAX))
		r_fail(&r);
	for (uint16_t i = 0; i < m->n_inner && !r.err; i++) {
		m->inner[i].opcode = r_u16(&r);
		m->inner[i].cls = r_u8(&r);
		m->inner[i].depth = r_u8(&r);
		m->inner[i].target = r_u16(&r);
		if (!r.err && m->inner[i].cls >= MBX_CLASS_COUNT)
			r_fail(&r);
	}
	r_payload(&r, &m->payload, &m->payload_len);
	return r_end(&r);
}

/* Encodes an EVENT. */
int mbx_encode_event(struct mbx_wbuf *w, uint32_t tag, const struct mbx_event *m)
{
	struct writer wr;

	w_begin(&wr, w);
	w_str(&wr, m->device, sizeof(m->device));
	w_u16(&wr, m->opcode);
	w_u8(&wr, m->kind);
	w_u8(&wr, m->percent);
	w_u16(&wr, m->cxl_rc);
	w_u16(&wr, m->vendor_status);
	w_u64(&wr, m->audit_seq);
	return w_end(&wr, MBX_MSG_EVENT, tag);
}

/* Decodes an EVENT. */
int mbx_decode_event(const uint8_t *body, size_t len, struct mbx_event *m)
{
	struct reader r;

	r_init(&r, body, len);
	r_str(&r, m->device, sizeof(m->device));
	m->opcode = r_u16(&r);
	m->kind = r_u8(&r);
	m->percent = r_u8(&r);
	m->cxl_rc = r_u16(&r);
	m->vendor_status = r_u16(&r);
	m->audit_seq = r_u64(&r);
	if (!r.err &&
	    ((m->kind != MBX_EVENT_PROGRESS && m->kind != MBX_EVENT_COMPLETE) || m->percent > 100))
		r_fail(&r);
	return r_end(&r);
}

/* Encodes an ERROR. */
int mbx_encode_error(struct mbx_wbuf *w, uint32_t tag, const struct mbx_error *m)
{
	struct writer wr;

	w_begin(&wr, w);
	w_u16(&wr, m->code);
	w_str(&wr, m->message, sizeof(m->message));
	return w_end(&wr, MBX_MSG_ERROR, tag);
}

/* Decodes an ERROR. */
int mbx_decode_error(const uint8_t *body, size_t len, struct mbx_error *m)
{
	struct reader r;

	r_init(&r, body, len);
	m->code = r_u16(&r);
	r_str(&r, m->message, sizeof(m->message));
	return r_end(&r);
}

/* Encodes a METRICS request: an empty body. */
int mbx_encode_metrics_req(struct mbx_wbuf *w, uint32_t tag)
{
	struct writer wr;

	w_begin(&wr, w);
	return w_end(&wr, MBX_MSG_METRICS, tag);
}

/* Encodes the METRICS reply: the text as a le32 length and its bytes. */
int mbx_encode_metrics_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_metrics *m)
{
	struct writer wr;

	w_begin(&wr, w);
	if (m->len > MBX_BODY_MAX - 4 || (m->len && memchr(m->text, '\0', m->len)))
		wr.err = -EMSGSIZE;
	w_u32(&wr, m->len);
	w_bytes(&wr, m->text, m->len);
	return w_end(&wr, MBX_MSG_METRICS, tag);
}

/* Decodes the METRICS reply; the text is borrowed from body and holds no NUL. */
int mbx_decode_metrics_rep(const uint8_t *body, size_t len, struct mbx_metrics *m)
{
	struct reader r;
	const uint8_t *p;

	r_init(&r, body, len);
	m->len = r_u32(&r);
	m->text = NULL;
	p = r.err ? NULL : r_bytes(&r, m->len);
	if (p && memchr(p, '\0', m->len))
		r_fail(&r);
	if (!r.err)
		m->text = (const char *)p;
	return r_end(&r);
}

/* Encodes a WATCH: the device name. */
int mbx_encode_watch(struct mbx_wbuf *w, uint32_t tag, const struct mbx_watch *m)
{
	struct writer wr;

	w_begin(&wr, w);
	w_str(&wr, m->device, sizeof(m->device));
	return w_end(&wr, MBX_MSG_WATCH, tag);
}

/* Decodes a WATCH; the device name may not be empty. */
int mbx_decode_watch(const uint8_t *body, size_t len, struct mbx_watch *m)
{
	struct reader r;

	r_init(&r, body, len);
	r_str(&r, m->device, sizeof(m->device));
	if (!r.err && m->device[0] == '\0')
		r_fail(&r);
	return r_end(&r);
}

/* The length of the UTF-8 sequence starting at p (at most n bytes), or 0 if it is ill-formed. */
static size_t proto_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len = c < 0x80                 ? 1
		     : c >= 0xc2 && c <= 0xdf ? 2
		     : c >= 0xe0 && c <= 0xef ? 3
		     : c >= 0xf0 && c <= 0xf4 ? 4
					      : 0;
	/* The second byte's range rules out overlong forms, surrogates and > U+10FFFF. */
	unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;

	if (len == 0 || len > n)
		return 0;
	if (len > 1 && (p[1] < lo || p[1] > hi))
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Checks that a string is well-formed UTF-8; *bad is the first offending byte's offset. */
bool mbx_utf8_valid(const char *s, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), off = 0, len;

	while (off < n) {
		len = proto_utf8_seq(p + off, n - off);
		if (len == 0) {
			if (bad)
				*bad = off;
			return false;
		}
		off += len;
	}
	return true;
}
