/*
 * mbxctl cel DEV: Get Supported Logs (0400h), then the Command Effects Log
 * with Get Log (0401h) in chunks that fit the device's mailbox, decoded.
 */
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "mbxctl.h"
#include "catalog.h"

#define CEL_GET_LOG_IN 24 /* uuid, le32 offset, le32 length */
/* One entry per possible opcode is the most a CEL can hold. */
#define CEL_SIZE_MAX (65536u * DECODE_CEL_ENTRY_SIZE)

/* Asks Get Supported Logs and returns the CEL's size. */
static int cel_size(struct ctl *ctl, uint32_t *size)
{
	struct decode_log *logs;
	struct ctl_answer a;
	size_t n;
	int r = ctl_query(ctl, CXL_OP_GET_SUPPORTED_LOGS, NULL, 0, &a);

	if (r)
		return r;
	r = decode_cel_logs(a.out, a.out_len, &logs, &n);
	ctl_answer_free(&a);
	if (r < 0) {
		out_err("%s: malformed Get Supported Logs answer", ctl->device);
		return CTL_EXIT_DEVICE;
	}
	r = decode_cel_find(logs, n, size);
	free(logs);
	if (r < 0) {
		out_err("%s: the device lists no Command Effects Log among its %zu logs",
			ctl->device, n);
		return CTL_EXIT_DEVICE;
	}
	return 0;
}

static void cel_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads size bytes of the CEL, chunk bytes at a time, into *out (malloc'ed). */
static int cel_read(struct ctl *ctl, uint32_t size, uint32_t chunk, uint8_t **out)
{
	uint8_t in[CEL_GET_LOG_IN], *buf = malloc(size ? size : 1);
	uint32_t off = 0;
	int r = 0;

	if (!buf) {
		out_err("out of memory for a CEL of %u bytes", size);
		return CTL_EXIT_DAEMON;
	}
	memcpy(in, decode_cel_uuid, DECODE_UUID_SIZE);
	while (r == 0 && off < size) {
		uint32_t want = size - off < chunk ? size - off : chunk;
		struct ctl_answer a;

		cel_put_le32(in + 16, off);
		cel_put_le32(in + 20, want);
		r = ctl_query(ctl, CXL_OP_GET_LOG, in, sizeof(in), &a);
		if (r)
			break;
		/* A device that answers nothing would loop forever; more would overflow. */
		if (a.out_len == 0 || a.out_len > want) {
			out_err("%s: Get Log answered %zu bytes for %u asked at offset %u",
				ctl->device, a.out_len, want, off);
			r = CTL_EXIT_DEVICE;
		} else {
			memcpy(buf + off, a.out, a.out_len);
			off += (uint32_t)a.out_len;
		}
		ctl_answer_free(&a);
	}
	if (r) {
		free(buf);
		return r;
	}
	*out = buf;
	return 0;
}

int cmd_cel(struct ctl *ctl, int argc, char **argv)
{
	uint32_t size, max;
	uint8_t *cel;
	char target[64];
	json_t *doc;
	int r;

	r = ctl_args_parse(ctl, argc, argv, 1, CTL_OPT_TUNNEL, "cel DEV [--tunnel PORT]");
	if (r || (r = ctl_connect(ctl)) || (r = ctl_device_payload_max(ctl, &max)) ||
	    (r = cel_size(ctl, &size)))
		return r;
	if (size % DECODE_CEL_ENTRY_SIZE || size > CEL_SIZE_MAX) {
		out_err("%s: CEL size %u is not a multiple of %d up to %u", ctl->device, size,
			DECODE_CEL_ENTRY_SIZE, CEL_SIZE_MAX);
		return CTL_EXIT_DEVICE;
	}
	max -= max % DECODE_CEL_ENTRY_SIZE;
	if (max == 0) {
		out_err("%s: mailbox too small to read the CEL", ctl->device);
		return CTL_EXIT_DEVICE;
	}
	r = cel_read(ctl, size, max, &cel);
	if (r)
		return r;
	if (ctl->json) {
		doc = out_target_json(ctl);
		if (doc)
			json_object_set_new(doc, "cel", decode_cel_json(cel, size));
		free(cel);
		return out_json(doc);
	}
	out_target(ctl, target, sizeof(target));
	printf("%s: Command Effects Log\n", target);
	decode_cel_print(stdout, cel, size);
	free(cel);
	return 0;
}
