/*
 * Unit tests of the wire codec (clients/libmbx/proto.c, names.c): every
 * message round-trips, and every malformation a peer could send is refused.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/proto.h>

/* A frame encoded into a fresh buffer, split into header and body. */
struct frame {
	struct mbx_wbuf w;
	struct mbx_header h;
	const uint8_t *body;
	size_t len;
};

/* Checks the header of the frame in f->w and points f->body at its body. */
static void frame_split(struct frame *f, uint16_t type, uint32_t tag)
{
	ck_assert_uint_ge(f->w.len, MBX_HEADER_SIZE);
	ck_assert_int_eq(mbx_decode_header(f->w.data, &f->h), 0);
	ck_assert_uint_eq(f->h.type, type);
	ck_assert_uint_eq(f->h.tag, tag);
	ck_assert_uint_eq(f->h.flags, 0);
	ck_assert_uint_eq(f->h.length, f->w.len - MBX_HEADER_SIZE);
	f->body = f->w.data + MBX_HEADER_SIZE;
	f->len = f->h.length;
}

/* A copy of body with room for one more byte, so ASan sees every over-read. */
static uint8_t *dup_body(const uint8_t *body, size_t len, size_t extra)
{
	uint8_t *p = malloc(len + extra + 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, body, len);
	memset(p + len, 0xAB, extra + 1);
	return p;
}

static const uint8_t sample_payload[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};

static void sample_submit(struct mbx_submit *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->device, "mem0");
	m->opcode = 0x4400;
	m->timeout_ms = 12345;
	strcpy(m->reason, "CHG-1234 decommission");
	m->payload = sample_payload;
	m->payload_len = sizeof(sample_payload);
}

static void sample_result(struct mbx_result *m)
{
	memset(m, 0, sizeof(*m));
	m->status = MBX_STATUS_DENIED;
	m->cxl_rc = 0x16;
	m->vendor_status = 0xbeef;
	m->cls = MBX_CLASS_FABRIC;
	m->decision = MBX_DECISION_DENY;
	m->audit_seq = 0x0102030405060708ull;
	m->duration_us = 4242;
	m->retry_after_ms = 1500;
	strcpy(m->rule, "never-sanitize-the-switch");
	strcpy(m->source, "/etc/mbxd/policy.yaml:27");
	strcpy(m->message, "denied by rule never-sanitize-the-switch");
	m->n_inner = 2;
	m->inner[0] =
	    (struct mbx_inner){.opcode = 0x5300, .cls = MBX_CLASS_DATA, .depth = 1, .target = 3};
	m->inner[1] = (struct mbx_inner){
	    .opcode = 0x4400, .cls = MBX_CLASS_DATA, .depth = 2, .target = 0x0102};
	m->payload = sample_payload;
	m->payload_len = sizeof(sample_payload);
}

static void sample_device(struct mbx_device_desc *d, int i)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "mem%d", i);
	strcpy(d->transport, "sim");
	strcpy(d->kind, i % 2 ? "switch" : "memdev");
	strcpy(d->model, "mbxd simulated CXL Type 3 device");
	snprintf(d->serial, sizeof(d->serial), "SIM-%08d", i);
	d->state = (uint8_t)(i % 3);
	d->bg_percent = (uint8_t)(i * 10 % 101);
	d->bg_opcode = 0x4400;
	d->payload_max = 1u << (8 + i);
}

static const char sample_metrics[] = "# TYPE mbxd_up gauge\nmbxd_up 1\n";

static void sample_event(struct mbx_event *m)
{
	memset(m, 0, sizeof(*m));
	strcpy(m->device, "mem0");
	m->opcode = 0x4400;
	m->kind = MBX_EVENT_COMPLETE;
	m->percent = 100;
	m->cxl_rc = 0;
	m->vendor_status = 7;
	m->audit_seq = 99;
}

START_TEST(test_hello_req_roundtrip)
{
	struct mbx_hello_req in = {.version_min = 1, .version_max = 3}, out;
	struct frame f;

	strcpy(in.software, "mbxctl 0.1");
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_hello_req(&f.w, 0, &in), 0);
	frame_split(&f, MBX_MSG_HELLO, 0);
	memset(&out, 0x55, sizeof(out));
	ck_assert_int_eq(mbx_decode_hello_req(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.version_min, 1);
	ck_assert_uint_eq(out.version_max, 3);
	ck_assert_str_eq(out.software, "mbxctl 0.1");
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_hello_rep_roundtrip)
{
	struct mbx_hello_rep in = {.version = 1, .max_payload = 1u << 20, .max_inflight = 64}, out;
	struct frame f;

	strcpy(in.software, "mbxd 0.1.0");
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_hello_rep(&f.w, 0xfffffffe, &in), 0);
	frame_split(&f, MBX_MSG_HELLO, 0xfffffffe);
	ck_assert_int_eq(mbx_decode_hello_rep(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.version, 1);
	ck_assert_uint_eq(out.max_payload, 1u << 20);
	ck_assert_uint_eq(out.max_inflight, 64);
	ck_assert_str_eq(out.software, "mbxd 0.1.0");
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_devices_req_is_empty)
{
	struct frame f;

	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_devices_req(&f.w, 7), 0);
	frame_split(&f, MBX_MSG_DEVICES, 7);
	ck_assert_uint_eq(f.len, 0);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_devices_rep_roundtrip)
{
	struct mbx_device_desc in[3], out[4];
	struct frame f;
	size_t n = 99;

	for (int i = 0; i < 3; i++)
		sample_device(&in[i], i);
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_devices_rep(&f.w, 8, in, 3), 0);
	frame_split(&f, MBX_MSG_DEVICES, 8);
	ck_assert_int_eq(mbx_decode_devices_rep(f.body, f.len, out, 4, &n), 0);
	ck_assert_uint_eq(n, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_str_eq(out[i].name, in[i].name);
		ck_assert_str_eq(out[i].transport, in[i].transport);
		ck_assert_str_eq(out[i].kind, in[i].kind);
		ck_assert_str_eq(out[i].model, in[i].model);
		ck_assert_str_eq(out[i].serial, in[i].serial);
		ck_assert_uint_eq(out[i].state, in[i].state);
		ck_assert_uint_eq(out[i].bg_percent, in[i].bg_percent);
		ck_assert_uint_eq(out[i].bg_opcode, in[i].bg_opcode);
		ck_assert_uint_eq(out[i].payload_max, in[i].payload_max);
	}
	/* A list longer than the caller's array is -EMSGSIZE, not a truncation. */
	ck_assert_int_eq(mbx_decode_devices_rep(f.body, f.len, out, 2, &n), -EMSGSIZE);
	ck_assert_uint_eq(n, 0);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_devices_rep_empty_list)
{
	struct mbx_device_desc out[1];
	struct frame f;
	size_t n = 5;

	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_devices_rep(&f.w, 1, NULL, 0), 0);
	frame_split(&f, MBX_MSG_DEVICES, 1);
	ck_assert_uint_eq(f.len, 2);
	ck_assert_int_eq(mbx_decode_devices_rep(f.body, f.len, out, 1, &n), 0);
	ck_assert_uint_eq(n, 0);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_submit_roundtrip)
{
	static const uint16_t types[] = {MBX_MSG_SUBMIT, MBX_MSG_EXPLAIN};
	struct mbx_submit in, out;
	struct frame f;

	sample_submit(&in);
	for (size_t t = 0; t < 2; t++) {
		mbx_wbuf_init(&f.w);
		ck_assert_int_eq(mbx_encode_submit(&f.w, types[t], 42, &in), 0);
		frame_split(&f, types[t], 42);
		memset(&out, 0, sizeof(out));
		ck_assert_int_eq(mbx_decode_submit(f.body, f.len, &out), 0);
		ck_assert_str_eq(out.device, "mem0");
		ck_assert_uint_eq(out.opcode, 0x4400);
		ck_assert_uint_eq(out.flags, 0);
		ck_assert_uint_eq(out.timeout_ms, 12345);
		ck_assert_str_eq(out.reason, "CHG-1234 decommission");
		ck_assert_uint_eq(out.payload_len, sizeof(sample_payload));
		/* The payload is borrowed from the body, not copied. */
		ck_assert(out.payload >= f.body && out.payload < f.body + f.len);
		ck_assert_mem_eq(out.payload, sample_payload, sizeof(sample_payload));
		mbx_wbuf_free(&f.w);
	}
}
END_TEST

START_TEST(test_submit_empty_payload_and_reason)
{
	struct mbx_submit in, out;
	struct frame f;

	sample_submit(&in);
	in.reason[0] = '\0';
	in.payload = NULL;
	in.payload_len = 0;
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_submit(&f.w, MBX_MSG_SUBMIT, 1, &in), 0);
	frame_split(&f, MBX_MSG_SUBMIT, 1);
	ck_assert_int_eq(mbx_decode_submit(f.body, f.len, &out), 0);
	ck_assert_str_eq(out.reason, "");
	ck_assert_uint_eq(out.payload_len, 0);
	ck_assert_ptr_null(out.payload);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_submit_max_payload)
{
	struct mbx_submit in, out;
	uint8_t *big = malloc(MBX_PAYLOAD_MAX);
	struct frame f;

	ck_assert_ptr_nonnull(big);
	for (size_t i = 0; i < MBX_PAYLOAD_MAX; i++)
		big[i] = (uint8_t)(i * 7);
	sample_submit(&in);
	memset(in.reason, 'r', MBX_REASON_MAX - 1);
	in.reason[MBX_REASON_MAX - 1] = '\0';
	memset(in.device, 'd', MBX_NAME_MAX - 1);
	in.device[MBX_NAME_MAX - 1] = '\0';
	in.payload = big;
	in.payload_len = MBX_PAYLOAD_MAX;
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_submit(&f.w, MBX_MSG_SUBMIT, 3, &in), 0);
	frame_split(&f, MBX_MSG_SUBMIT, 3);
	ck_assert_int_eq(mbx_decode_submit(f.body, f.len, &out), 0);
	ck_assert_uint_eq(strlen(out.device), MBX_NAME_MAX - 1);
	ck_assert_uint_eq(strlen(out.reason), MBX_REASON_MAX - 1);
	ck_assert_uint_eq(out.payload_len, MBX_PAYLOAD_MAX);
	ck_assert_mem_eq(out.payload, big, MBX_PAYLOAD_MAX);
	mbx_wbuf_free(&f.w);
	free(big);
}
END_TEST

START_TEST(test_result_roundtrip)
{
	struct mbx_result in, out;
	struct frame f;

	sample_result(&in);
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_result(&f.w, 77, &in), 0);
	frame_split(&f, MBX_MSG_RESULT, 77);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(mbx_decode_result(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.status, MBX_STATUS_DENIED);
	ck_assert_uint_eq(out.cxl_rc, 0x16);
	ck_assert_uint_eq(out.vendor_status, 0xbeef);
	ck_assert_uint_eq(out.cls, MBX_CLASS_FABRIC);
	ck_assert_uint_eq(out.decision, MBX_DECISION_DENY);
	ck_assert(out.audit_seq == 0x0102030405060708ull);
	ck_assert_uint_eq(out.duration_us, 4242);
	ck_assert_uint_eq(out.retry_after_ms, 1500);
	ck_assert_str_eq(out.rule, "never-sanitize-the-switch");
	ck_assert_str_eq(out.source, "/etc/mbxd/policy.yaml:27");
	ck_assert_str_eq(out.message, "denied by rule never-sanitize-the-switch");
	ck_assert_uint_eq(out.n_inner, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(out.inner[i].opcode, in.inner[i].opcode);
		ck_assert_uint_eq(out.inner[i].cls, in.inner[i].cls);
		ck_assert_uint_eq(out.inner[i].depth, in.inner[i].depth);
		ck_assert_uint_eq(out.inner[i].target, in.inner[i].target);
	}
	ck_assert_uint_eq(out.payload_len, sizeof(sample_payload));
	ck_assert_mem_eq(out.payload, sample_payload, sizeof(sample_payload));
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_result_full_inner)
{
	struct mbx_result in, out;
	struct frame f;

	sample_result(&in);
	in.n_inner = MBX_INNER_MAX;
	for (int i = 0; i < MBX_INNER_MAX; i++)
		in.inner[i] = (struct mbx_inner){.opcode = (uint16_t)(0x5300 + i),
						 .cls = MBX_CLASS_READ,
						 .depth = (uint8_t)(i + 1),
						 .target = (uint16_t)i};
	in.payload = NULL;
	in.payload_len = 0;
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_result(&f.w, 1, &in), 0);
	frame_split(&f, MBX_MSG_RESULT, 1);
	ck_assert_int_eq(mbx_decode_result(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.n_inner, MBX_INNER_MAX);
	ck_assert_uint_eq(out.inner[MBX_INNER_MAX - 1].opcode, 0x5300 + MBX_INNER_MAX - 1);
	ck_assert_ptr_null(out.payload);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_event_roundtrip)
{
	struct mbx_event in, out;
	struct frame f;

	sample_event(&in);
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_event(&f.w, 5, &in), 0);
	frame_split(&f, MBX_MSG_EVENT, 5);
	ck_assert_int_eq(mbx_decode_event(f.body, f.len, &out), 0);
	ck_assert_str_eq(out.device, "mem0");
	ck_assert_uint_eq(out.opcode, 0x4400);
	ck_assert_uint_eq(out.kind, MBX_EVENT_COMPLETE);
	ck_assert_uint_eq(out.percent, 100);
	ck_assert_uint_eq(out.cxl_rc, 0);
	ck_assert_uint_eq(out.vendor_status, 7);
	ck_assert(out.audit_seq == 99);
	mbx_wbuf_free(&f.w);
}
END_TEST

START_TEST(test_error_roundtrip)
{
	struct mbx_error in = {.code = MBX_ERROR_VERSION}, out;
	struct frame f;

	strcpy(in.message, "no common protocol version: client speaks 2..3, server 1..1");
	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_error(&f.w, 0, &in), 0);
	frame_split(&f, MBX_MSG_ERROR, 0);
	ck_assert_int_eq(mbx_decode_error(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.code, MBX_ERROR_VERSION);
	ck_assert_str_eq(out.message, in.message);
	mbx_wbuf_free(&f.w);
}
END_TEST

/* METRICS: an empty request, and the text back byte for byte. */
START_TEST(test_metrics_roundtrip)
{
	struct mbx_metrics in = {.text = sample_metrics, .len = sizeof(sample_metrics) - 1}, out;
	struct frame f;

	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_metrics_req(&f.w, 4), 0);
	frame_split(&f, MBX_MSG_METRICS, 4);
	ck_assert_uint_eq(f.len, 0);
	mbx_wbuf_free(&f.w);
	ck_assert_int_eq(mbx_encode_metrics_rep(&f.w, 5, &in), 0);
	frame_split(&f, MBX_MSG_METRICS, 5);
	ck_assert_uint_eq(f.len, 4 + in.len);
	ck_assert_int_eq(mbx_decode_metrics_rep(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.len, in.len);
	ck_assert(memcmp(out.text, sample_metrics, in.len) == 0);
	mbx_wbuf_free(&f.w);
	in.len = 0;
	ck_assert_int_eq(mbx_encode_metrics_rep(&f.w, 6, &in), 0);
	frame_split(&f, MBX_MSG_METRICS, 6);
	ck_assert_int_eq(mbx_decode_metrics_rep(f.body, f.len, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	mbx_wbuf_free(&f.w);
	/* A NUL in the text is refused by the encoder too. */
	in.text = "a\0b";
	in.len = 3;
	ck_assert_int_eq(mbx_encode_metrics_rep(&f.w, 7, &in), -EMSGSIZE);
	ck_assert_uint_eq(f.w.len, 0);
	mbx_wbuf_free(&f.w);
}
END_TEST

/* WATCH: the device name, which may not be empty or too long. */
START_TEST(test_watch_roundtrip)
{
	struct mbx_watch in = {.device = "switch0"}, out;
	uint8_t empty[2] = {0, 0};
	struct frame f;

	mbx_wbuf_init(&f.w);
	ck_assert_int_eq(mbx_encode_watch(&f.w, 9, &in), 0);
	frame_split(&f, MBX_MSG_WATCH, 9);
	ck_assert_int_eq(mbx_decode_watch(f.body, f.len, &out), 0);
	ck_assert_str_eq(out.device, "switch0");
	mbx_wbuf_free(&f.w);
	ck_assert_int_eq(mbx_decode_watch(empty, sizeof(empty), &out), -EPROTO);
	memset(in.device, 'm', sizeof(in.device));
	ck_assert_int_eq(mbx_encode_watch(&f.w, 9, &in), -EMSGSIZE);
	mbx_wbuf_free(&f.w);
}
END_TEST

/* Frames append: a buffer can hold several, each decodable in turn. */
START_TEST(test_frames_append)
{
	struct mbx_event ev;
	struct mbx_header h;
	struct mbx_wbuf w;
	size_t first;

	sample_event(&ev);
	mbx_wbuf_init(&w);
	ck_assert_int_eq(mbx_encode_devices_req(&w, 1), 0);
	first = w.len;
	ck_assert_int_eq(mbx_encode_event(&w, 2, &ev), 0);
	ck_assert_int_eq(mbx_decode_header(w.data, &h), 0);
	ck_assert_uint_eq(h.tag, 1);
	ck_assert_int_eq(mbx_decode_header(w.data + first, &h), 0);
	ck_assert_uint_eq(h.tag, 2);
	ck_assert_uint_eq(h.type, MBX_MSG_EVENT);
	ck_assert_int_eq(mbx_decode_event(w.data + first + MBX_HEADER_SIZE, h.length, &ev), 0);
	mbx_wbuf_free(&w);
}
END_TEST

/* Builds a raw header. */
static void raw_header(uint8_t *b, uint32_t len, uint16_t type, uint16_t flags, uint32_t tag)
{
	for (int i = 0; i < 4; i++) {
		b[i] = (uint8_t)(len >> (8 * i));
		b[8 + i] = (uint8_t)(tag >> (8 * i));
	}
	b[4] = (uint8_t)type;
	b[5] = (uint8_t)(type >> 8);
	b[6] = (uint8_t)flags;
	b[7] = (uint8_t)(flags >> 8);
}

START_TEST(test_header_rejects)
{
	uint8_t b[MBX_HEADER_SIZE];
	struct mbx_header h;

	raw_header(b, 0, 0, 0, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, 0, MBX_MSG_WATCH + 1, 0, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, 0, 0x0105, 0, 1); /* a valid type in the low byte only */
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, 0, 0xffff, 0, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, 0, MBX_MSG_SUBMIT, 1, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, 0, MBX_MSG_SUBMIT, 0x8000, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EPROTO);
	raw_header(b, MBX_BODY_MAX + 1, MBX_MSG_SUBMIT, 0, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EMSGSIZE);
	raw_header(b, 0xffffffff, MBX_MSG_SUBMIT, 0, 1);
	ck_assert_int_eq(mbx_decode_header(b, &h), -EMSGSIZE);
	raw_header(b, MBX_BODY_MAX, MBX_MSG_SUBMIT, 0, 0xabcdef01);
	ck_assert_int_eq(mbx_decode_header(b, &h), 0);
	ck_assert_uint_eq(h.length, MBX_BODY_MAX);
	ck_assert_uint_eq(h.tag, 0xabcdef01);
	for (uint16_t t = MBX_MSG_HELLO; t <= MBX_MSG_WATCH; t++) {
		raw_header(b, 3, t, 0, 9);
		ck_assert_int_eq(mbx_decode_header(b, &h), 0);
		ck_assert_uint_eq(h.type, t);
	}
}
END_TEST

/* One message kind: a way to encode a sample and to decode a body. */
struct kind {
	const char *name;
	int (*encode)(struct mbx_wbuf *w);
	int (*decode)(const uint8_t *body, size_t len);
};

static int enc_hello_req(struct mbx_wbuf *w)
{
	struct mbx_hello_req m = {.version_min = 1, .version_max = 1};

	strcpy(m.software, "x");
	return mbx_encode_hello_req(w, 0, &m);
}

static int dec_hello_req(const uint8_t *b, size_t n)
{
	struct mbx_hello_req m;

	return mbx_decode_hello_req(b, n, &m);
}

static int enc_hello_rep(struct mbx_wbuf *w)
{
	struct mbx_hello_rep m = {.version = 1, .max_payload = 4096, .max_inflight = 8};

	strcpy(m.software, "mbxd");
	return mbx_encode_hello_rep(w, 0, &m);
}

static int dec_hello_rep(const uint8_t *b, size_t n)
{
	struct mbx_hello_rep m;

	return mbx_decode_hello_rep(b, n, &m);
}

static int enc_devices(struct mbx_wbuf *w)
{
	struct mbx_device_desc d[2];

	sample_device(&d[0], 0);
	sample_device(&d[1], 1);
	return mbx_encode_devices_rep(w, 0, d, 2);
}

static int dec_devices(const uint8_t *b, size_t n)
{
	struct mbx_device_desc d[4];
	size_t count;

	return mbx_decode_devices_rep(b, n, d, 4, &count);
}

static int enc_submit(struct mbx_wbuf *w)
{
	struct mbx_submit m;

	sample_submit(&m);
	return mbx_encode_submit(w, MBX_MSG_SUBMIT, 0, &m);
}

static int dec_submit(const uint8_t *b, size_t n)
{
	struct mbx_submit m;

	return mbx_decode_submit(b, n, &m);
}

static int enc_result(struct mbx_wbuf *w)
{
	struct mbx_result m;

	sample_result(&m);
	return mbx_encode_result(w, 0, &m);
}

static int dec_result(const uint8_t *b, size_t n)
{
	struct mbx_result m;

	return mbx_decode_result(b, n, &m);
}

static int enc_event(struct mbx_wbuf *w)
{
	struct mbx_event m;

	sample_event(&m);
	return mbx_encode_event(w, 0, &m);
}

static int dec_event(const uint8_t *b, size_t n)
{
	struct mbx_event m;

	return mbx_decode_event(b, n, &m);
}

static int enc_error(struct mbx_wbuf *w)
{
	struct mbx_error m = {.code = 1};

	strcpy(m.message, "bad frame");
	return mbx_encode_error(w, 0, &m);
}

static int dec_error(const uint8_t *b, size_t n)
{
	struct mbx_error m;

	return mbx_decode_error(b, n, &m);
}

static int enc_metrics(struct mbx_wbuf *w)
{
	struct mbx_metrics m = {.text = sample_metrics, .len = sizeof(sample_metrics) - 1};

	return mbx_encode_metrics_rep(w, 0, &m);
}

static int dec_metrics(const uint8_t *b, size_t n)
{
	struct mbx_metrics m;

	return mbx_decode_metrics_rep(b, n, &m);
}

static int enc_watch(struct mbx_wbuf *w)
{
	struct mbx_watch m = {.device = "mem0"};

	return mbx_encode_watch(w, 0, &m);
}

static int dec_watch(const uint8_t *b, size_t n)
{
	struct mbx_watch m;

	return mbx_decode_watch(b, n, &m);
}

static const struct kind kinds[] = {
    {"hello_req", enc_hello_req, dec_hello_req},
    {"hello_rep", enc_hello_rep, dec_hello_rep},
    {"devices", enc_devices, dec_devices},
    {"submit", enc_submit, dec_submit},
    {"result", enc_result, dec_result},
    {"event", enc_event, dec_event},
    {"error", enc_error, dec_error},
    {"metrics", enc_metrics, dec_metrics},
    {"watch", enc_watch, dec_watch},
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Every strict prefix of a valid body is refused: truncated fields and strings. */
START_TEST(test_truncated_bodies)
{
	const struct kind *k = &kinds[_i];
	struct mbx_wbuf w;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(k->encode(&w), 0);
	for (size_t n = 0; n < w.len - MBX_HEADER_SIZE; n++) {
		uint8_t *b = dup_body(w.data + MBX_HEADER_SIZE, n, 0);

		ck_assert_msg(k->decode(b, n) == -EPROTO, "%s: prefix of %zu bytes accepted",
			      k->name, n);
		free(b);
	}
	mbx_wbuf_free(&w);
}
END_TEST

/* A valid body followed by anything is refused: no trailing bytes. */
START_TEST(test_trailing_bytes)
{
	const struct kind *k = &kinds[_i];
	size_t len;
	struct mbx_wbuf w;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(k->encode(&w), 0);
	len = w.len - MBX_HEADER_SIZE;
	for (size_t extra = 1; extra <= 4; extra++) {
		uint8_t *b = dup_body(w.data + MBX_HEADER_SIZE, len, extra);

		ck_assert_int_eq(k->decode(b, len), 0);
		ck_assert_msg(k->decode(b, len + extra) == -EPROTO,
			      "%s: %zu trailing bytes accepted", k->name, extra);
		free(b);
	}
	mbx_wbuf_free(&w);
}
END_TEST

/*
 * Offset of the first string of a body: the le16 length, then its bytes.
 * Writes the offset of the string's bytes into *at.
 */
static size_t first_string(const char *kind, const uint8_t *body, size_t *at)
{
	size_t off = 0;

	if (!strcmp(kind, "metrics")) { /* the one string with a le32 length */
		*at = 4;
		return (size_t)body[0] | (size_t)body[1] << 8 | (size_t)body[2] << 16 |
		       (size_t)body[3] << 24;
	}
	if (!strcmp(kind, "hello_req"))
		off = 4;
	else if (!strcmp(kind, "hello_rep"))
		off = 12;
	else if (!strcmp(kind, "devices"))
		off = 2;
	else if (!strcmp(kind, "result"))
		off = 24;
	else if (!strcmp(kind, "error"))
		off = 2;
	*at = off + 2;
	return (size_t)(body[off] | body[off + 1] << 8);
}

/* A NUL inside a string is refused wherever the string is. */
START_TEST(test_embedded_nul)
{
	const struct kind *k = &kinds[_i];
	struct mbx_wbuf w;
	size_t at, n, len;
	uint8_t *b;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(k->encode(&w), 0);
	len = w.len - MBX_HEADER_SIZE;
	b = dup_body(w.data + MBX_HEADER_SIZE, len, 0);
	n = first_string(k->name, b, &at);
	ck_assert_uint_gt(n, 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t saved = b[at + i];

		b[at + i] = '\0';
		ck_assert_msg(k->decode(b, len) == -EPROTO, "%s: NUL at %zu accepted", k->name, i);
		b[at + i] = saved;
	}
	ck_assert_int_eq(k->decode(b, len), 0);
	free(b);
	mbx_wbuf_free(&w);
}
END_TEST

/* Appends a wire string of n bytes of c. */
static size_t put_str(uint8_t *p, size_t n, char c)
{
	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	memset(p + 2, c, n);
	return n + 2;
}

static size_t put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return (size_t)bytes;
}

/* Builds a SUBMIT body by hand, so each field can be made wrong. */
static size_t raw_submit(uint8_t *b, size_t dev_len, uint16_t flags, size_t reason_len,
			 uint32_t claimed_payload, size_t real_payload)
{
	size_t o = 0;

	o += put_str(b + o, dev_len, 'm');
	o += put_le(b + o, 0x0001, 2);
	o += put_le(b + o, flags, 2);
	o += put_le(b + o, 0, 4);
	o += put_str(b + o, reason_len, 'r');
	o += put_le(b + o, claimed_payload, 4);
	memset(b + o, 0x5a, real_payload);
	return o + real_payload;
}

START_TEST(test_submit_rejects)
{
	static uint8_t b[4096];
	struct mbx_submit m;
	size_t n;

	n = raw_submit(b, 4, 0, 0, 3, 3);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), 0);
	ck_assert_str_eq(m.device, "mmmm");
	/* Device name: longest that fits, one too long, far too long, empty. */
	n = raw_submit(b, MBX_NAME_MAX - 1, 0, 0, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), 0);
	n = raw_submit(b, MBX_NAME_MAX, 0, 0, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	n = raw_submit(b, 1000, 0, 0, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	n = raw_submit(b, 0, 0, 0, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	/* Reason: longest that fits, one too long. */
	n = raw_submit(b, 4, 0, MBX_REASON_MAX - 1, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), 0);
	n = raw_submit(b, 4, 0, MBX_REASON_MAX, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	/* Reserved flags. */
	n = raw_submit(b, 4, 1, 0, 0, 0);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	/* Payload length lies: more than present, less than present, absurd. */
	n = raw_submit(b, 4, 0, 0, 10, 9);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	n = raw_submit(b, 4, 0, 0, 8, 9);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	n = raw_submit(b, 4, 0, 0, 0xffffffff, 16);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
	n = raw_submit(b, 4, 0, 0, MBX_PAYLOAD_MAX + 1, 16);
	ck_assert_int_eq(mbx_decode_submit(b, n, &m), -EPROTO);
}
END_TEST

/* A string length that runs past the end of the body. */
START_TEST(test_string_length_past_end)
{
	uint8_t b[16];
	struct mbx_error e;

	put_le(b, 1, 2);
	put_le(b + 2, 200, 2);
	memset(b + 4, 'x', 12);
	ck_assert_int_eq(mbx_decode_error(b, sizeof(b), &e), -EPROTO);
	put_le(b + 2, 12, 2);
	ck_assert_int_eq(mbx_decode_error(b, sizeof(b), &e), 0);
	ck_assert_uint_eq(strlen(e.message), 12);
}
END_TEST

/* Fields of a RESULT body at fixed offsets (see proto.c, docs/protocol.md). */
#define RES_STATUS   0
#define RES_CLS      6
#define RES_DECISION 7

/* Encodes the sample RESULT with one field changed after encoding. */
static int result_with_byte(size_t off, uint8_t v)
{
	struct mbx_result m;
	struct mbx_wbuf w;
	int r;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(enc_result(&w), 0);
	w.data[MBX_HEADER_SIZE + off] = v;
	r = mbx_decode_result(w.data + MBX_HEADER_SIZE, w.len - MBX_HEADER_SIZE, &m);
	mbx_wbuf_free(&w);
	return r;
}

START_TEST(test_result_rejects_enums)
{
	struct mbx_result m;

	ck_assert_int_eq(result_with_byte(RES_STATUS, MBX_STATUS_COUNT - 1), 0);
	ck_assert_int_eq(result_with_byte(RES_STATUS, MBX_STATUS_COUNT), -EPROTO);
	ck_assert_int_eq(result_with_byte(RES_STATUS + 1, 1), -EPROTO); /* status 256+ */
	ck_assert_int_eq(result_with_byte(RES_CLS, MBX_CLASS_VENDOR), 0);
	ck_assert_int_eq(result_with_byte(RES_CLS, MBX_CLASS_COUNT), -EPROTO);
	ck_assert_int_eq(result_with_byte(RES_DECISION, MBX_DECISION_INVALID), 0);
	ck_assert_int_eq(result_with_byte(RES_DECISION, MBX_DECISION_INVALID + 1), -EPROTO);

	/* n_inner above the maximum, and a bad class in an inner level. */
	sample_result(&m);
	{
		struct mbx_wbuf w;
		size_t inner_at;
		uint8_t *b;
		size_t len;

		mbx_wbuf_init(&w);
		ck_assert_int_eq(mbx_encode_result(&w, 0, &m), 0);
		len = w.len - MBX_HEADER_SIZE;
		b = w.data + MBX_HEADER_SIZE;
		/* n_inner follows the three strings. */
		inner_at = 24 + 2 + strlen(m.rule) + 2 + strlen(m.source) + 2 + strlen(m.message);
		ck_assert_uint_eq(b[inner_at], 2);
		b[inner_at] = MBX_INNER_MAX + 1;
		ck_assert_int_eq(mbx_decode_result(b, len, &m), -EPROTO);
		b[inner_at] = 2;
		ck_assert_int_eq(mbx_decode_result(b, len, &m), 0);
		b[inner_at + 2 + 2] = MBX_CLASS_COUNT; /* cls of inner[0] */
		ck_assert_int_eq(mbx_decode_result(b, len, &m), -EPROTO);
		mbx_wbuf_free(&w);
	}
}
END_TEST

START_TEST(test_event_rejects)
{
	struct mbx_event m;
	struct mbx_wbuf w;
	size_t kind_at;
	uint8_t *b;
	size_t len;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(enc_event(&w), 0);
	b = w.data + MBX_HEADER_SIZE;
	len = w.len - MBX_HEADER_SIZE;
	kind_at = 2 + strlen("mem0") + 2;
	ck_assert_uint_eq(b[kind_at], MBX_EVENT_COMPLETE);
	b[kind_at] = 0;
	ck_assert_int_eq(mbx_decode_event(b, len, &m), -EPROTO);
	b[kind_at] = 3;
	ck_assert_int_eq(mbx_decode_event(b, len, &m), -EPROTO);
	b[kind_at] = MBX_EVENT_PROGRESS;
	ck_assert_int_eq(mbx_decode_event(b, len, &m), 0);
	b[kind_at + 1] = 101;
	ck_assert_int_eq(mbx_decode_event(b, len, &m), -EPROTO);
	mbx_wbuf_free(&w);
}
END_TEST

START_TEST(test_hello_rejects)
{
	struct mbx_hello_req q = {.version_min = 2, .version_max = 1};
	struct mbx_hello_rep p;
	struct mbx_wbuf w;

	/* A client range whose minimum is above its maximum. */
	mbx_wbuf_init(&w);
	ck_assert_int_eq(mbx_encode_hello_req(&w, 0, &q), 0);
	ck_assert_int_eq(
	    mbx_decode_hello_req(w.data + MBX_HEADER_SIZE, w.len - MBX_HEADER_SIZE, &q), -EPROTO);
	mbx_wbuf_free(&w);
	/* The server HELLO's reserved bytes must be zero. */
	mbx_wbuf_init(&w);
	ck_assert_int_eq(enc_hello_rep(&w), 0);
	w.data[MBX_HEADER_SIZE + 2] = 1;
	ck_assert_int_eq(
	    mbx_decode_hello_rep(w.data + MBX_HEADER_SIZE, w.len - MBX_HEADER_SIZE, &p), -EPROTO);
	mbx_wbuf_free(&w);
}
END_TEST

START_TEST(test_devices_rejects)
{
	struct mbx_device_desc d[2];
	struct mbx_wbuf w;
	size_t n, len, state_at;
	uint8_t *b;

	sample_device(&d[0], 0);
	mbx_wbuf_init(&w);
	ck_assert_int_eq(mbx_encode_devices_rep(&w, 0, d, 1), 0);
	b = w.data + MBX_HEADER_SIZE;
	len = w.len - MBX_HEADER_SIZE;
	state_at = 2 + 2 + strlen(d[0].name) + 2 + strlen(d[0].transport) + 2 + strlen(d[0].kind) +
		   2 + strlen(d[0].model) + 2 + strlen(d[0].serial);
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), 0);
	b[state_at] = MBX_DEVICE_FAILED + 1;
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), -EPROTO);
	b[state_at] = MBX_DEVICE_BACKGROUND;
	b[state_at + 1] = 101;
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), -EPROTO);
	b[state_at + 1] = 100;
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), 0);
	/* A count that claims more devices than the body holds. */
	b[0] = 2;
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), -EPROTO);
	/* A count over the protocol maximum, whatever the caller's array. */
	put_le(b, MBX_DEVICES_MAX + 1, 2);
	ck_assert_int_eq(mbx_decode_devices_rep(b, len, d, 2, &n), -EMSGSIZE);
	mbx_wbuf_free(&w);
}
END_TEST

/* Encoders refuse what cannot be sent, and leave the buffer as it was. */
START_TEST(test_encoders_refuse)
{
	struct mbx_device_desc *many;
	struct mbx_submit s;
	struct mbx_result res;
	struct mbx_hello_req h = {.version_min = 1, .version_max = 1};
	struct mbx_wbuf w;
	size_t before;

	mbx_wbuf_init(&w);
	ck_assert_int_eq(mbx_encode_devices_req(&w, 1), 0);
	before = w.len;

	sample_submit(&s);
	memset(s.device, 'x', sizeof(s.device)); /* unterminated field */
	ck_assert_int_eq(mbx_encode_submit(&w, MBX_MSG_SUBMIT, 2, &s), -EMSGSIZE);
	ck_assert_uint_eq(w.len, before);

	sample_submit(&s);
	s.payload_len = MBX_PAYLOAD_MAX + 1;
	ck_assert_int_eq(mbx_encode_submit(&w, MBX_MSG_SUBMIT, 2, &s), -EMSGSIZE);
	ck_assert_uint_eq(w.len, before);

	sample_submit(&s);
	ck_assert_int_lt(mbx_encode_submit(&w, MBX_MSG_RESULT, 2, &s), 0);
	ck_assert_uint_eq(w.len, before);

	sample_result(&res);
	res.n_inner = MBX_INNER_MAX + 1;
	ck_assert_int_eq(mbx_encode_result(&w, 2, &res), -EMSGSIZE);
	ck_assert_uint_eq(w.len, before);

	memset(h.software, 's', sizeof(h.software));
	ck_assert_int_eq(mbx_encode_hello_req(&w, 0, &h), -EMSGSIZE);
	ck_assert_uint_eq(w.len, before);

	many = calloc(MBX_DEVICES_MAX + 1, sizeof(*many));
	ck_assert_ptr_nonnull(many);
	for (int i = 0; i <= MBX_DEVICES_MAX; i++)
		sample_device(&many[i], i % 8);
	ck_assert_int_eq(mbx_encode_devices_rep(&w, 2, many, MBX_DEVICES_MAX + 1), -EMSGSIZE);
	ck_assert_uint_eq(w.len, before);
	ck_assert_int_eq(mbx_encode_devices_rep(&w, 2, many, MBX_DEVICES_MAX), 0);
	ck_assert_uint_gt(w.len, before);
	free(many);

	/* The frame that was there first is intact. */
	{
		struct mbx_header hd;

		ck_assert_int_eq(mbx_decode_header(w.data, &hd), 0);
		ck_assert_uint_eq(hd.type, MBX_MSG_DEVICES);
		ck_assert_uint_eq(hd.length, 0);
	}
	mbx_wbuf_free(&w);
}
END_TEST

START_TEST(test_names)
{
	for (int i = 0; i < MBX_STATUS_COUNT; i++)
		ck_assert_str_ne(mbx_status_name(i), "unknown");
	ck_assert_str_eq(mbx_status_name(MBX_STATUS_DENIED), "denied");
	ck_assert_str_eq(mbx_status_name(MBX_STATUS_COUNT), "unknown");
	ck_assert_str_eq(mbx_status_name(-1), "unknown");
	for (int i = 0; i < MBX_CLASS_COUNT; i++)
		ck_assert_int_eq(mbx_class_from_name(mbx_class_name(i)), i);
	ck_assert_str_eq(mbx_class_name(MBX_CLASS_FABRIC), "fabric");
	ck_assert_str_eq(mbx_class_name(MBX_CLASS_COUNT), "unknown");
	ck_assert_int_eq(mbx_class_from_name("reed"), -1);
	ck_assert_int_eq(mbx_class_from_name(""), -1);
	ck_assert_str_eq(mbx_decision_name(MBX_DECISION_ALLOW), "allow");
	ck_assert_str_eq(mbx_decision_name(MBX_DECISION_DENY), "deny");
	ck_assert_str_eq(mbx_decision_name(MBX_DECISION_INVALID), "invalid");
	ck_assert_str_eq(mbx_decision_name(3), "unknown");
	ck_assert_str_eq(mbx_decision_name(-1), "unknown");
}
END_TEST

/*
 * libmbx against a scripted fake daemon: client.c is included so the test
 * reaches it without the shared library (one test program per module pair
 * of the wire protocol, its codec and its client end).
 */
#include "../../clients/libmbx/client.c"

#include <signal.h>
#include <sys/wait.h>

struct fake {
	char dir[64];
	char path[128];
	pid_t pid;
};

/* Reads exactly n bytes or exits the fake daemon. */
static void fake_read(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)buf + got, n - got);

		if (r <= 0)
			_exit(r == 0 ? 0 : 90);
		got += (size_t)r;
	}
}

/* Reads one frame from the client; *body is malloc'ed. */
static void fake_frame(int fd, struct mbx_header *h, uint8_t **body)
{
	uint8_t hdr[MBX_HEADER_SIZE];

	fake_read(fd, hdr, sizeof(hdr));
	if (mbx_decode_header(hdr, h) < 0)
		_exit(91);
	*body = malloc(h->length + 1);
	fake_read(fd, *body, h->length);
}

/* Sends a buffer, one byte per write when dribble, to exercise short reads. */
static void fake_send(int fd, struct mbx_wbuf *w, bool dribble)
{
	for (size_t off = 0; off < w->len;) {
		ssize_t r = write(fd, w->data + off, dribble ? 1 : w->len - off);

		if (r <= 0)
			_exit(92);
		off += (size_t)r;
	}
	w->len = 0;
}

/* Answers the client's HELLO with version. */
static void fake_hello(int fd, uint16_t version)
{
	struct mbx_hello_rep rep = {.version = version, .max_payload = 4096, .max_inflight = 4};
	struct mbx_header h;
	struct mbx_wbuf w;
	uint8_t *body;
	struct mbx_hello_req req;

	fake_frame(fd, &h, &body);
	if (h.type != MBX_MSG_HELLO || mbx_decode_hello_req(body, h.length, &req) < 0 ||
	    req.version_min != 1 || req.version_max != 1)
		_exit(93);
	free(body);
	strcpy(rep.software, "fake");
	mbx_wbuf_init(&w);
	mbx_encode_hello_rep(&w, h.tag, &rep);
	fake_send(fd, &w, false);
	mbx_wbuf_free(&w);
}

/* Reads a SUBMIT, returns its tag and opcode. */
static uint32_t fake_submit(int fd, uint16_t *opcode)
{
	struct mbx_header h;
	struct mbx_submit m;
	uint8_t *body;

	fake_frame(fd, &h, &body);
	if ((h.type != MBX_MSG_SUBMIT && h.type != MBX_MSG_EXPLAIN) ||
	    mbx_decode_submit(body, h.length, &m) < 0)
		_exit(94);
	*opcode = m.opcode;
	free(body);
	return h.tag;
}

/* Appends a RESULT whose cxl_rc is the opcode's low byte and whose payload is the opcode. */
static void fake_result(struct mbx_wbuf *w, uint32_t tag, uint16_t opcode)
{
	struct mbx_result r;
	uint8_t out[2] = {(uint8_t)opcode, (uint8_t)(opcode >> 8)};

	memset(&r, 0, sizeof(r));
	r.cxl_rc = opcode & 0xff;
	strcpy(r.rule, "ops");
	strcpy(r.source, "policy.yaml:3");
	r.payload = out;
	r.payload_len = 2;
	mbx_encode_result(w, tag, &r);
}

/* Starts a fake daemon running script on its first connection. */
static void fake_start(struct fake *f, void (*script)(int fd))
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int lfd;

	strcpy(f->dir, "/tmp/test-proto-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	strcpy(sun.sun_path, f->path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	f->pid = fork();
	ck_assert_int_ge(f->pid, 0);
	if (f->pid == 0) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			_exit(95);
		script(fd);
		close(fd);
		_exit(0);
	}
	close(lfd);
}

/* Waits for the fake daemon; its exit status says whether the client behaved. */
static int fake_stop(struct fake *f)
{
	int status = 0;

	waitpid(f->pid, &status, 0);
	unlink(f->path);
	rmdir(f->dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void script_devices(int fd)
{
	struct mbx_device_desc d[2];
	struct mbx_header h;
	struct mbx_wbuf w;
	uint8_t *body;

	fake_hello(fd, 1);
	fake_frame(fd, &h, &body);
	if (h.type != MBX_MSG_DEVICES || h.length != 0)
		_exit(96);
	sample_device(&d[0], 0);
	sample_device(&d[1], 1);
	mbx_wbuf_init(&w);
	mbx_encode_devices_rep(&w, h.tag, d, 2);
	fake_send(fd, &w, true);
}

START_TEST(test_client_hello_and_devices)
{
	struct mbx_device_desc *list;
	struct mbx_client *c;
	struct fake f;
	size_t n;

	fake_start(&f, script_devices);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	ck_assert_uint_eq(mbx_server(c)->version, 1);
	ck_assert_uint_eq(mbx_server(c)->max_payload, 4096);
	ck_assert_str_eq(mbx_server(c)->software, "fake");
	ck_assert_int_eq(mbx_devices(c, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].name, "mem0");
	ck_assert_str_eq(list[1].kind, "switch");
	free(list);
	/* The fake has hung up: the next call fails, and says why. */
	ck_assert_int_lt(mbx_devices(c, &list, &n), 0);
	ck_assert_ptr_null(list);
	mbx_close(c);
	ck_assert_int_eq(fake_stop(&f), 0);
}
END_TEST

static void script_bad_version(int fd)
{
	fake_hello(fd, 2);
}

START_TEST(test_client_refuses_version)
{
	struct mbx_client *c = (struct mbx_client *)1;
	char msg[256];
	struct fake f;

	fake_start(&f, script_bad_version);
	ck_assert_int_eq(mbx_open_diag(f.path, &c, msg, sizeof(msg)), -EPROTO);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(msg, "version 2") != NULL, "diag: %s", msg);
	fake_stop(&f);
}
END_TEST

static void script_error(int fd)
{
	struct mbx_error e = {.code = MBX_ERROR_ORDER};
	struct mbx_wbuf w;
	uint16_t op;

	fake_hello(fd, 1);
	fake_submit(fd, &op);
	strcpy(e.message, "SUBMIT before HELLO");
	mbx_wbuf_init(&w);
	mbx_encode_error(&w, 0, &e);
	fake_send(fd, &w, false);
}

START_TEST(test_client_error_frame)
{
	struct mbx_request req = {.device = "mem0", .opcode = 1};
	struct mbx_reply reply;
	struct mbx_client *c;
	struct fake f;

	fake_start(&f, script_error);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	ck_assert_int_eq(mbx_submit(c, &req, &reply), -EPROTO);
	ck_assert_str_eq(mbx_last_error(c), "mbxd: SUBMIT before HELLO");
	ck_assert_ptr_null(reply.frame);
	/* The connection stays failed. */
	ck_assert_int_eq(mbx_submit(c, &req, &reply), -EPROTO);
	mbx_close(c);
	fake_stop(&f);
}
END_TEST

static void script_wrong_tag(int fd)
{
	struct mbx_wbuf w;
	uint16_t op;
	uint32_t tag;

	fake_hello(fd, 1);
	tag = fake_submit(fd, &op);
	mbx_wbuf_init(&w);
	fake_result(&w, tag + 100, op);
	fake_send(fd, &w, false);
}

START_TEST(test_client_unknown_tag)
{
	struct mbx_request req = {.device = "mem0", .opcode = 1};
	struct mbx_reply reply;
	struct mbx_client *c;
	struct fake f;

	fake_start(&f, script_wrong_tag);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	ck_assert_int_eq(mbx_submit(c, &req, &reply), -EPROTO);
	ck_assert_msg(strstr(mbx_last_error(c), "not in flight") != NULL, "%s", mbx_last_error(c));
	mbx_close(c);
	fake_stop(&f);
}
END_TEST

static void script_malformed(int fd)
{
	struct mbx_wbuf w;
	uint16_t op;
	uint32_t tag;

	fake_hello(fd, 1);
	tag = fake_submit(fd, &op);
	mbx_wbuf_init(&w);
	fake_result(&w, tag, op);
	w.data[MBX_HEADER_SIZE] = MBX_STATUS_COUNT; /* status out of range */
	fake_send(fd, &w, false);
	fake_hello(fd, 1);
}

START_TEST(test_client_malformed_result)
{
	struct mbx_request req = {.device = "mem0", .opcode = 1};
	struct mbx_reply reply;
	struct mbx_client *c;
	struct fake f;

	fake_start(&f, script_malformed);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	ck_assert_int_eq(mbx_explain(c, &req, &reply), -EPROTO);
	ck_assert_str_eq(mbx_last_error(c), "malformed RESULT from the server");
	mbx_close(c);
	fake_stop(&f);
}
END_TEST

static void script_pipeline(int fd)
{
	uint32_t tags[3];
	uint16_t ops[3];
	struct mbx_event ev;
	struct mbx_wbuf w;

	fake_hello(fd, 1);
	for (int i = 0; i < 3; i++)
		tags[i] = fake_submit(fd, &ops[i]);
	mbx_wbuf_init(&w);
	/* An event first, then the answers in reverse order, dribbled byte by byte. */
	sample_event(&ev);
	mbx_encode_event(&w, tags[1], &ev);
	for (int i = 2; i >= 0; i--)
		fake_result(&w, tags[i], ops[i]);
	fake_send(fd, &w, true);
	mbx_wbuf_free(&w);
	fake_hello(fd, 1); /* waits until the client closes */
}

START_TEST(test_client_pipelining)
{
	struct mbx_request req = {.device = "mem0"};
	uint32_t tags[3], tag, evtag;
	struct mbx_reply reply;
	struct mbx_event ev;
	struct mbx_client *c;
	struct fake f;

	fake_start(&f, script_pipeline);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	for (int i = 0; i < 3; i++) {
		req.opcode = (uint16_t)(0x4200 + i);
		ck_assert_int_eq(mbx_send(c, &req, &tags[i]), 0);
	}
	ck_assert(tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2]);
	for (int i = 2; i >= 0; i--) {
		ck_assert_int_eq(mbx_receive(c, 5000, &reply, &tag), 0);
		ck_assert_uint_eq(tag, tags[i]);
		ck_assert_uint_eq(reply.result.cxl_rc, i);
		ck_assert_uint_eq(reply.result.payload_len, 2);
		ck_assert_uint_eq(reply.result.payload[1], 0x42);
		ck_assert_str_eq(reply.result.source, "policy.yaml:3");
		mbx_reply_free(&reply);
	}
	/* Nothing is in flight any more: receive says so instead of waiting. */
	ck_assert_int_eq(mbx_receive(c, 5000, &reply, &tag), -ENOMSG);
	/* The event that came first was queued. */
	ck_assert_int_eq(mbx_next_event(c, 0, &ev, &evtag), 0);
	ck_assert_uint_eq(evtag, tags[1]);
	ck_assert_uint_eq(ev.kind, MBX_EVENT_COMPLETE);
	ck_assert_int_eq(mbx_next_event(c, 50, &ev, &evtag), -ETIMEDOUT);
	mbx_close(c);
	ck_assert_int_eq(fake_stop(&f), 0);
}
END_TEST

static void script_slow_event(int fd)
{
	struct mbx_event ev;
	struct mbx_wbuf w;
	uint16_t op;
	uint32_t tag;

	fake_hello(fd, 1);
	tag = fake_submit(fd, &op);
	mbx_wbuf_init(&w);
	fake_result(&w, tag, op);
	fake_send(fd, &w, false);
	usleep(300 * 1000);
	sample_event(&ev);
	ev.kind = MBX_EVENT_PROGRESS;
	ev.percent = 50;
	mbx_encode_event(&w, tag, &ev);
	/* Half a frame, a pause, then the rest: a timeout mid-frame must lose nothing. */
	if (write(fd, w.data, 7) != 7)
		_exit(97);
	usleep(800 * 1000);
	if (write(fd, w.data + 7, w.len - 7) != (ssize_t)(w.len - 7))
		_exit(97);
	mbx_wbuf_free(&w);
	fake_hello(fd, 1); /* waits until the client closes */
}

START_TEST(test_client_event_timeout)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4400};
	struct mbx_reply reply;
	struct mbx_event ev;
	struct mbx_client *c;
	struct fake f;
	uint32_t tag;
	int r;

	fake_start(&f, script_slow_event);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	ck_assert_int_eq(mbx_submit(c, &req, &reply), 0);
	ck_assert_uint_eq(reply.result.cxl_rc, 0);
	mbx_reply_free(&reply);
	ck_assert_int_eq(mbx_next_event(c, 100, &ev, &tag), -ETIMEDOUT);
	ck_assert_int_eq(mbx_next_event(c, 400, &ev, &tag), -ETIMEDOUT); /* half a frame */
	r = mbx_next_event(c, 5000, &ev, &tag);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(ev.kind, MBX_EVENT_PROGRESS);
	ck_assert_uint_eq(ev.percent, 50);
	mbx_close(c);
	fake_stop(&f);
}
END_TEST

/* Reads and ignores requests until the client closes. */
static void script_idle(int fd)
{
	struct mbx_header h;
	uint8_t *body;

	fake_hello(fd, 1);
	for (;;) {
		fake_frame(fd, &h, &body);
		free(body);
	}
}

START_TEST(test_client_limits_and_unreachable)
{
	struct mbx_request req = {.device = "mem0", .opcode = 1};
	static uint8_t big[8192];
	struct mbx_client *c;
	struct fake f;
	uint32_t tag;

	ck_assert_int_eq(mbx_open("/nonexistent/mbxd.sock", &c), -ENOENT);
	ck_assert_ptr_null(c);
	fake_start(&f, script_idle);
	ck_assert_int_eq(mbx_open(f.path, &c), 0);
	req.payload = big;
	req.payload_len = 4097; /* over the fake's max_payload */
	ck_assert_int_eq(mbx_send(c, &req, &tag), -EMSGSIZE);
	req.payload_len = 0;
	req.device = "";
	ck_assert_int_eq(mbx_send(c, &req, &tag), -EINVAL);
	req.device = "a-device-name-much-longer-than-32-bytes";
	ck_assert_int_eq(mbx_send(c, &req, &tag), -ENAMETOOLONG);
	/* The fake allows 4 SUBMITs in flight: the fifth is refused before it is sent. */
	req.device = "mem0";
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(mbx_send(c, &req, &tag), 0);
	ck_assert_int_eq(mbx_send(c, &req, &tag), -EBUSY);
	mbx_close(c);
	ck_assert_int_eq(fake_stop(&f), 0);
	ck_assert_str_eq(mbx_strerror(-ENOENT), "No such file or directory");
	setenv("MBX_SOCKET", "/tmp/from-env.sock", 1);
	ck_assert_str_eq(mbx_socket_path(NULL), "/tmp/from-env.sock");
	ck_assert_str_eq(mbx_socket_path("/x"), "/x");
	unsetenv("MBX_SOCKET");
	ck_assert_str_eq(mbx_socket_path(NULL), MBX_DEFAULT_SOCKET);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("libmbx");
	TCase *tc = tcase_create("client");

	tcase_add_test(tc, test_client_hello_and_devices);
	tcase_add_test(tc, test_client_refuses_version);
	tcase_add_test(tc, test_client_error_frame);
	tcase_add_test(tc, test_client_unknown_tag);
	tcase_add_test(tc, test_client_malformed_result);
	tcase_add_test(tc, test_client_pipelining);
	tcase_add_test(tc, test_client_event_timeout);
	tcase_add_test(tc, test_client_limits_and_unreachable);
	suite_add_tcase(s, tc);
	return s;
}

/* Encodes scalar value c as UTF-8 (RFC 3629) into out; returns the length. */
static size_t utf8_put(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/*
 * mbx_utf8_valid accepts exactly the encodings of the Unicode scalar values:
 * every scalar value's encoding is valid, and every 1- to 3-byte string (and
 * 4-byte strings with lead bytes F0-F7 and random tails) is valid iff it is
 * one; the first bad byte's offset is reported.
 */
START_TEST(test_utf8_valid_exactly_the_scalars)
{
	char buf[16];
	size_t bad, n;
	uint64_t rng = 88172645463325252ull;

	for (uint32_t c = 1; c <= 0x10ffff; c++) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		n = utf8_put(c, buf);
		buf[n] = '\0';
		if (!mbx_utf8_valid(buf, NULL))
			ck_abort_msg("U+%04X refused", c);
	}
	for (uint32_t v = 0; v < (1u << 24); v += (v < (1u << 16) ? 1 : 7)) {
		uint8_t b[4] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v, 0};
		const uint8_t *q = b[0] ? b : b[1] ? b + 1 : b + 2;
		size_t len = strlen((const char *)q), off = 0;
		bool want = true;

		if (len == 0)
			continue;
		/* Valid iff it splits into encodings of scalar values. */
		while (off < len && want) {
			uint32_t c = q[off], need = c < 0x80    ? 0
						    : c >= 0xf0 ? 3
						    : c >= 0xe0 ? 2
								: 1;
			char enc[4];

			if (c >= 0x80 && c < 0xc0)
				want = false;
			for (uint32_t k = 1; want && k <= need; k++) {
				if (off + k >= len || (q[off + k] & 0xc0) != 0x80)
					want = false;
				else
					c = (k == 1 ? c & (0x3f >> need) : c) << 6 |
					    (q[off + k] & 0x3f);
			}
			if (want && (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) ||
				     utf8_put(c, enc) != need + 1))
				want = false;
			off += need + 1;
		}
		if (mbx_utf8_valid((const char *)q, &bad) != want)
			ck_abort_msg("%02x %02x %02x: expected %s", b[0], b[1], b[2],
				     want ? "valid" : "invalid");
	}
	for (int i = 0; i < 200000; i++) {
		uint32_t c;
		char enc[8];

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		c = (uint32_t)(rng % 0x10ffff) + 1;
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		/* A valid prefix, then one bad byte: the offset names the bad byte. */
		n = utf8_put(c, enc);
		memcpy(buf, "ok ", 3);
		memcpy(buf + 3, enc, n);
		buf[3 + n] = (char)(rng >> 40 & 1 ? 0xff : 0x80);
		buf[4 + n] = 'x';
		buf[5 + n] = '\0';
		if (mbx_utf8_valid(buf, &bad) || bad != 3 + n)
			ck_abort_msg("U+%04X then a bad byte: offset %zu", c, bad);
	}
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *rt = tcase_create("roundtrip");
	TCase *rej = tcase_create("reject");

	tcase_add_test(rt, test_hello_req_roundtrip);
	tcase_add_test(rt, test_hello_rep_roundtrip);
	tcase_add_test(rt, test_devices_req_is_empty);
	tcase_add_test(rt, test_devices_rep_roundtrip);
	tcase_add_test(rt, test_devices_rep_empty_list);
	tcase_add_test(rt, test_submit_roundtrip);
	tcase_add_test(rt, test_submit_empty_payload_and_reason);
	tcase_add_test(rt, test_submit_max_payload);
	tcase_add_test(rt, test_result_roundtrip);
	tcase_add_test(rt, test_result_full_inner);
	tcase_add_test(rt, test_event_roundtrip);
	tcase_add_test(rt, test_error_roundtrip);
	tcase_add_test(rt, test_metrics_roundtrip);
	tcase_add_test(rt, test_watch_roundtrip);
	tcase_add_test(rt, test_frames_append);
	tcase_add_test(rt, test_names);
	suite_add_tcase(s, rt);

	tcase_add_test(rej, test_header_rejects);
	tcase_add_loop_test(rej, test_truncated_bodies, 0, N_KINDS);
	tcase_add_loop_test(rej, test_trailing_bytes, 0, N_KINDS);
	tcase_add_loop_test(rej, test_embedded_nul, 0, N_KINDS);
	tcase_add_test(rej, test_submit_rejects);
	tcase_add_test(rej, test_string_length_past_end);
	tcase_add_test(rej, test_result_rejects_enums);
	tcase_add_test(rej, test_event_rejects);
	tcase_add_test(rej, test_hello_rejects);
	tcase_add_test(rej, test_devices_rejects);
	tcase_add_test(rej, test_encoders_refuse);
	tcase_add_test(rej, test_utf8_valid_exactly_the_scalars);
	suite_add_tcase(s, rej);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_add_suite(sr, client_suite());

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
