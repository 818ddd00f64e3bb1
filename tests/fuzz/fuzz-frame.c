/*
 * libFuzzer target: the wire codec (clients/libmbx/proto.c) on a stream of
 * frames, as mbxd's session reads them. Every body is given to each decoder
 * its header type could mean (HELLO both ways); what decodes must encode
 * back to exactly the same bytes, since the codec has one spelling per
 * message and the decoders refuse every other.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/proto.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless w holds exactly the frame at [frame, frame + len). */
static void fuzz_same(struct mbx_wbuf *w, int rc, const uint8_t *frame, size_t len)
{
	if (rc != 0 || w->len != len || memcmp(w->data, frame, len) != 0)
		abort();
	mbx_wbuf_free(w);
	mbx_wbuf_init(w);
}

/* Decodes one body by its type and checks the round trip. */
static void fuzz_body(const struct mbx_header *h, const uint8_t *frame)
{
	static struct mbx_device_desc devs[MBX_DEVICES_MAX];
	const uint8_t *body = frame + MBX_HEADER_SIZE;
	size_t len = h->length, all = MBX_HEADER_SIZE + len, n;
	struct mbx_hello_req hq;
	struct mbx_hello_rep hr;
	struct mbx_submit s;
	struct mbx_result r;
	struct mbx_event e;
	struct mbx_error er;
	struct mbx_metrics mr;
	struct mbx_watch wa;
	struct mbx_wbuf w;

	mbx_wbuf_init(&w);
	switch (h->type) {
	case MBX_MSG_HELLO:
		if (mbx_decode_hello_req(body, len, &hq) == 0)
			fuzz_same(&w, mbx_encode_hello_req(&w, h->tag, &hq), frame, all);
		if (mbx_decode_hello_rep(body, len, &hr) == 0)
			fuzz_same(&w, mbx_encode_hello_rep(&w, h->tag, &hr), frame, all);
		break;
	case MBX_MSG_DEVICES:
		if (len == 0)
			fuzz_same(&w, mbx_encode_devices_req(&w, h->tag), frame, all);
		else if (mbx_decode_devices_rep(body, len, devs, MBX_DEVICES_MAX, &n) == 0)
			fuzz_same(&w, mbx_encode_devices_rep(&w, h->tag, devs, n), frame, all);
		break;
	case MBX_MSG_SUBMIT:
	case MBX_MSG_EXPLAIN:
		if (mbx_decode_submit(body, len, &s) == 0)
			fuzz_same(&w, mbx_encode_submit(&w, h->type, h->tag, &s), frame, all);
		break;
	case MBX_MSG_RESULT:
		if (mbx_decode_result(body, len, &r) == 0)
			fuzz_same(&w, mbx_encode_result(&w, h->tag, &r), frame, all);
		break;
	case MBX_MSG_EVENT:
		if (mbx_decode_event(body, len, &e) == 0)
			fuzz_same(&w, mbx_encode_event(&w, h->tag, &e), frame, all);
		break;
	case MBX_MSG_ERROR:
		if (mbx_decode_error(body, len, &er) == 0)
			fuzz_same(&w, mbx_encode_error(&w, h->tag, &er), frame, all);
		break;
	case MBX_MSG_METRICS:
		if (len == 0)
			fuzz_same(&w, mbx_encode_metrics_req(&w, h->tag), frame, all);
		else if (mbx_decode_metrics_rep(body, len, &mr) == 0)
			fuzz_same(&w, mbx_encode_metrics_rep(&w, h->tag, &mr), frame, all);
		break;
	case MBX_MSG_WATCH:
		if (mbx_decode_watch(body, len, &wa) == 0)
			fuzz_same(&w, mbx_encode_watch(&w, h->tag, &wa), frame, all);
		break;
	default:
		abort(); /* the header decoder let an unknown type through: cover it here */
	}
	mbx_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbx_header h;

	while (size >= MBX_HEADER_SIZE) {
		int rc = mbx_decode_header(data, &h);

		if (rc < 0) {
			if (rc == -EMSGSIZE && h.length <= MBX_BODY_MAX)
				abort(); /* too long, yet within the limit */
			return 0;
		}
		if (size - MBX_HEADER_SIZE < h.length)
			return 0; /* a truncated body: the session waits for more */
		fuzz_body(&h, data);
		data += MBX_HEADER_SIZE + h.length;
		size -= MBX_HEADER_SIZE + h.length;
	}
	return 0;
}
