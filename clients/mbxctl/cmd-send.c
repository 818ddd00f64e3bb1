/*
 * mbxctl send DEV OPCODE: any command with a raw payload; prints the verdict
 * and the output, and with --wait follows a background operation to its end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"

#define SEND_USAGE                                                                                 \
	"send DEV OPCODE [--in FILE | --hex HEX] [--reason TEXT] [--wait] [--out FILE] "           \
	"[--timeout MS] [--tunnel PORT]"

/* Writes the output payload to path ("-": standard output). */
static int send_write_out(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;
	int bad;

	if (!f) {
		out_err("%s: %s", path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	bad = len && fwrite(p, 1, len, f) != len;
	if (f != stdout)
		bad |= fclose(f) != 0;
	else
		bad |= fflush(f) != 0;
	if (bad) {
		out_err("%s: cannot write the output: %s", path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	return 0;
}

/* The output payload as a hex string, for JSON. */
static json_t *send_hex_json(const uint8_t *p, size_t len)
{
	char *s = malloc(2 * len + 1);
	json_t *j;

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * len] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

/* Follows the background operation started by tag until its completion. */
static int send_wait(struct ctl *ctl, uint32_t tag)
{
	struct mbx_event ev;
	uint32_t evtag;
	int r;

	if (!ctl->json)
		printf("waiting for the background operation to complete...\n");
	for (;;) {
		r = mbx_next_event(ctl->client, -1, &ev, &evtag);
		if (r < 0)
			return ctl_failed(ctl, r);
		if (evtag != tag)
			continue;
		if (ctl->json)
			out_json(out_event_json(&ev));
		else if (ev.kind == MBX_EVENT_PROGRESS)
			printf("%s: %s (%04xh): %u%%\n", ev.device, out_opcode_name(ev.opcode),
			       ev.opcode, ev.percent);
		else
			printf("%s: %s (%04xh) complete: %s (%02xh)\n", ev.device,
			       out_opcode_name(ev.opcode), ev.opcode, out_rc_name(ev.cxl_rc),
			       ev.cxl_rc);
		fflush(stdout);
		if (ev.kind == MBX_EVENT_COMPLETE)
			break;
	}
	if (ev.cxl_rc != CXL_RC_SUCCESS) {
		out_err("%s: %s (%04xh) failed in the background: %s (%02xh)", ev.device,
			out_opcode_name(ev.opcode), ev.opcode, out_rc_name(ev.cxl_rc), ev.cxl_rc);
		return CTL_EXIT_DEVICE;
	}
	return 0;
}

/* Prints the answer: JSON, or the verdict and the output as a hex dump or to --out. */
static int send_show(struct ctl *ctl, const struct ctl_answer *a)
{
	FILE *human = ctl->out_path && !strcmp(ctl->out_path, "-") ? stderr : stdout;
	json_t *doc;

	if (ctl->out_path && a->out_len) {
		int r = send_write_out(ctl->out_path, a->out, a->out_len);

		if (r)
			return r;
	}
	if (ctl->json) {
		doc = result_json(ctl, a, ctl->opcode);
		if (doc)
			json_object_set_new(doc, "output_length",
					    json_integer((json_int_t)a->out_len));
		if (doc && !ctl->out_path)
			json_object_set_new(doc, "output_hex", send_hex_json(a->out, a->out_len));
		return out_json(doc);
	}
	/* With --out -, the payload owns standard output: the summary goes to stderr. */
	result_print(human, a, ctl->opcode);
	if (ctl->out_path)
		fprintf(human, "output:      %zu bytes written to %s\n", a->out_len,
			strcmp(ctl->out_path, "-") ? ctl->out_path : "standard output");
	else if (a->out_len) {
		printf("output:      %zu bytes\n", a->out_len);
		out_hexdump(stdout, a->out, a->out_len);
	}
	return 0;
}

int cmd_send(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_answer a;
	int r, code;

	r = ctl_args_parse(ctl, argc, argv, 2,
			   CTL_OPT_TUNNEL | CTL_OPT_HEX | CTL_OPT_IN | CTL_OPT_REASON |
			       CTL_OPT_WAIT | CTL_OPT_OUT | CTL_OPT_TIMEOUT,
			   SEND_USAGE);
	if (r || (r = ctl_connect(ctl)))
		return r;
	r = ctl_call(ctl, MBX_MSG_SUBMIT, ctl->opcode, ctl->payload, ctl->payload_len, &a);
	if (r)
		return r;
	code = result_check(ctl, &a, ctl->opcode);
	if (a.reply.result.status == MBX_STATUS_OK) {
		r = send_show(ctl, &a);
		code = code ? code : r;
	} else if (ctl->json) {
		out_json(result_json(ctl, &a, ctl->opcode));
	}
	if (code == 0 && ctl->wait && a.rc == CXL_RC_BACKGROUND_STARTED) {
		if (a.tunnelled)
			out_err("--wait: mbxd does not follow background operations behind a "
				"tunnel; poll Background Operation Status (0002h) instead");
		else
			code = send_wait(ctl, a.tag);
	}
	ctl_answer_free(&a);
	return code;
}
