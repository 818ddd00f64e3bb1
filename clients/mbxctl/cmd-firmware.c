/*
 * mbxctl firmware-update DEV IMAGE: Get FW Info (0200h) for the slot, then
 * Transfer FW (0201h) as one Full Transfer or Initiate/Continue.../End parts
 * that fit the device's mailbox, each through the policy and the audit log;
 * with --wait (or --activate) follows the transfer to its end, then Activate
 * FW (0202h) when asked. CXL r3.1 8.2.9.3, Tables 8-56 to 8-58.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"

#define FW_USAGE                                                                                   \
	"firmware-update DEV IMAGE [--slot N] [--activate online|offline|none] --reason TEXT "     \
	"[--wait]"

#define FW_OP_INFO       0x0200
#define FW_OP_TRANSFER   0x0201
#define FW_OP_ACTIVATE   0x0202
#define FW_INFO_SIZE     0x50
#define FW_REV_SIZE      16
#define FW_HEADER        128u /* Transfer FW's header before the image bytes */
#define FW_UNIT          128u /* offsets are in units of 128 bytes */
#define FW_IMAGE_MAX     (256u << 20)
#define FW_ACTION_FULL   0x00
#define FW_ACTION_INIT   0x01
#define FW_ACTION_CONT   0x02
#define FW_ACTION_END    0x03
#define FW_ACTION_ABORT  0x04
#define FW_ACTIVATE_NONE (-1)

/* One firmware update: the command line, what the device said, what was sent. */
struct fw_update {
	struct ctl *ctl;
	const char *path;
	uint8_t *image;
	size_t len;
	unsigned slot_opt; /* --slot; 0: the kernel's rule */
	int activate;      /* 0 online, 1 offline, FW_ACTIVATE_NONE */
	uint8_t slots, active, slot;
	char rev_before[FW_REV_SIZE + 1];
	char rev_after[FW_REV_SIZE + 1];
	size_t chunk; /* image bytes per part */
	unsigned parts, accepted;
	uint32_t tag; /* of the part that started the background transfer */
	bool background, aborted;
	bool kernel_owned; /* the chardev transport: the kernel driver owns the device */
	json_t *doc;       /* with --json */
};

static const char *const fw_action_names[] = {"Full Transfer", "Initiate", "Continue", "End",
					      "Abort"};

/* Parses "online", "offline" or "none". */
static int fw_parse_activate(const char *s, int *activate)
{
	if (strcmp(s, "online") == 0)
		*activate = 0;
	else if (strcmp(s, "offline") == 0)
		*activate = 1;
	else if (strcmp(s, "none") == 0)
		*activate = FW_ACTIVATE_NONE;
	else
		return -EINVAL;
	return 0;
}

/* Applies one option; 0 or an exit code after saying why. */
static int fw_option(struct fw_update *fw, int opt, const char *arg)
{
	char *end;

	switch (opt) {
	case 's':
		errno = 0;
		fw->slot_opt = (unsigned)strtoul(arg, &end, 10);
		if (errno || !*arg || *end || fw->slot_opt < 1 || fw->slot_opt > 7) {
			out_err("--slot: \"%s\" is not a slot number (1-7)", arg);
			return CTL_EXIT_USAGE;
		}
		return 0;
	case 'a':
		if (fw_parse_activate(arg, &fw->activate) < 0) {
			out_err("--activate: \"%s\" is not online, offline or none", arg);
			return CTL_EXIT_USAGE;
		}
		return 0;
	case 'r':
		if (strlen(arg) >= MBX_REASON_MAX) {
			out_err("--reason: longer than %d bytes", MBX_REASON_MAX - 1);
			return CTL_EXIT_USAGE;
		}
		fw->ctl->reason = arg;
		return 0;
	case 'w':
		fw->ctl->wait = true;
		return 0;
	case 'j':
		fw->ctl->json = true;
		return 0;
	case 'S':
		fw->ctl->socket = arg;
		return 0;
	}
	fprintf(stderr, "usage: mbxctl %s\n", FW_USAGE);
	return CTL_EXIT_USAGE;
}

/* Parses DEV IMAGE and the options; 0 or an exit code after saying why. */
static int fw_args(struct fw_update *fw, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"slot", required_argument, NULL, 's'},
	    {"activate", required_argument, NULL, 'a'},
	    {"reason", required_argument, NULL, 'r'},
	    {"wait", no_argument, NULL, 'w'},
	    {"json", no_argument, NULL, 'j'},
	    {"socket", required_argument, NULL, 'S'},
	    {NULL, 0, NULL, 0},
	};
	int opt, r;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			out_err("%s: %s %s", argv[0],
				opt == ':' ? "option needs an argument:" : "unknown option",
				argv[optind - 1]);
			opt = 0; /* fw_option() prints the usage */
		}
		if ((r = fw_option(fw, opt, optarg)))
			return r;
	}
	if (argc - optind != 2) {
		out_err("%s: expected 2 arguments (DEV IMAGE), got %d", argv[0], argc - optind);
		fprintf(stderr, "usage: mbxctl %s\n", FW_USAGE);
		return CTL_EXIT_USAGE;
	}
	fw->ctl->device = argv[optind];
	fw->path = argv[optind + 1];
	if (!*fw->ctl->device || strlen(fw->ctl->device) >= MBX_NAME_MAX) {
		out_err("\"%s\" is not a device name", fw->ctl->device);
		return CTL_EXIT_USAGE;
	}
	/* Activation needs the transfer finished: --activate waits. */
	if (fw->activate != FW_ACTIVATE_NONE)
		fw->ctl->wait = true;
	return 0;
}

/* Reads the image file ("-": standard input): not empty, at most FW_IMAGE_MAX bytes. */
static int fw_read_image(struct fw_update *fw)
{
	FILE *f = strcmp(fw->path, "-") ? fopen(fw->path, "rb") : stdin;
	size_t cap = 0;
	int err = 0;

	if (!f) {
		out_err("%s: %s", fw->path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	while (!err && !feof(f) && fw->len <= FW_IMAGE_MAX) {
		uint8_t *p;

		if (fw->len == cap) {
			/* One byte past the maximum is enough to tell the image is too big. */
			cap = cap ? 2 * cap : 65536;
			if (cap > FW_IMAGE_MAX + 1)
				cap = FW_IMAGE_MAX + 1;
			p = realloc(fw->image, cap);
			if (!p) {
				err = ENOMEM;
				break;
			}
			fw->image = p;
		}
		fw->len += fread(fw->image + fw->len, 1, cap - fw->len, f);
		if (ferror(f))
			err = errno ? errno : EIO;
	}
	if (f != stdin)
		fclose(f);
	if (err)
		out_err("%s: cannot read the image: %s", fw->path, strerror(err));
	else if (fw->len == 0)
		out_err("%s: the image is empty", fw->path);
	else if (fw->len > FW_IMAGE_MAX)
		out_err("%s: larger than the %u MiB mbxctl sends", fw->path, FW_IMAGE_MAX >> 20);
	else
		return 0;
	return CTL_EXIT_USAGE;
}

/* The device's mailbox size and whether the kernel owns it, from the daemon's list. */
static int fw_device(struct fw_update *fw, uint32_t *max)
{
	struct mbx_device_desc *list;
	size_t n;
	int r = mbx_devices(fw->ctl->client, &list, &n);

	if (r < 0)
		return ctl_failed(fw->ctl, r);
	*max = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, fw->ctl->device) == 0) {
			*max = list[i].payload_max ? list[i].payload_max : 256;
			fw->kernel_owned = strcmp(list[i].transport, "chardev") == 0;
		}
	free(list);
	if (*max == 0) {
		out_err("%s: no such device (see mbxctl devices)", fw->ctl->device);
		return CTL_EXIT_INVALID;
	}
	return 0;
}

/* The image bytes one part carries: what fits the mailbox after the header, in 128s. */
static int fw_part_room(struct fw_update *fw)
{
	uint32_t max = 0, server = mbx_server(fw->ctl->client)->max_payload;
	int r = fw_device(fw, &max);

	if (r)
		return r;
	if (server && server < max)
		max = server;
	if (max < FW_HEADER + FW_UNIT) {
		out_err("%s: a mailbox of %" PRIu32 " bytes has no room for a Transfer FW part",
			fw->ctl->device, max);
		return CTL_EXIT_INVALID;
	}
	fw->chunk = max - FW_HEADER;
	if (fw->len > fw->chunk)
		fw->chunk -= fw->chunk % FW_UNIT;
	fw->parts = fw->len <= fw->chunk ? 1 : (unsigned)((fw->len + fw->chunk - 1) / fw->chunk);
	return 0;
}

/* Says why --activate cannot be used on a kernel-owned device. */
static int fw_kernel_owned(const struct fw_update *fw)
{
	out_err("%s: the kernel owns this memory device: its firmware upload activates the "
		"image itself (offline, for the next cold reset) and it refuses Activate FW "
		"(0202h); run again with --activate none (nothing was sent)",
		fw->ctl->device);
	return CTL_EXIT_DENIED;
}

/*
 * Refuses --activate before anything is sent when Activate FW would be
 * refused: on a kernel-owned device (the chardev transport, or the daemon's
 * EXPLAIN says kernel-owned: the kernel activates by itself), or when the
 * policy denies it.
 */
static int fw_check_activate(struct fw_update *fw)
{
	/* Classification does not depend on the slot, which is not known yet. */
	uint8_t in[2] = {(uint8_t)fw->activate, (uint8_t)fw->slot_opt};
	struct ctl_answer a;
	uint16_t status;
	int r;

	if (fw->activate == FW_ACTIVATE_NONE)
		return 0;
	if (fw->kernel_owned)
		return fw_kernel_owned(fw);
	r = ctl_call(fw->ctl, MBX_MSG_EXPLAIN, FW_OP_ACTIVATE, in, sizeof(in), &a);
	if (r)
		return r;
	status = a.reply.result.status;
	if (status == MBX_STATUS_KERNEL_OWNED) {
		r = fw_kernel_owned(fw);
	} else if (status != MBX_STATUS_OK) {
		r = result_check(fw->ctl, &a, FW_OP_ACTIVATE);
		fprintf(stderr, "mbxctl: --activate would be refused: nothing was sent\n");
	}
	ctl_answer_free(&a);
	return r;
}

/* Copies a 16-byte revision field, printable ASCII only, NUL-terminated. */
static void fw_rev_copy(char *dst, const uint8_t *src)
{
	size_t n = 0;

	while (n < FW_REV_SIZE && src[n]) {
		dst[n] = src[n] >= 0x20 && src[n] < 0x7f ? (char)src[n] : '?';
		n++;
	}
	dst[n] = '\0';
}

/* Get FW Info: slots, active slot, and the revision of slot (0: none) into rev. */
static int fw_info(struct fw_update *fw, uint8_t slot, char *rev)
{
	struct ctl_answer a;
	int r = ctl_query(fw->ctl, FW_OP_INFO, NULL, 0, &a);

	if (r)
		return r;
	if (a.out_len < FW_INFO_SIZE || a.out[0] < 1 || a.out[0] > 4 || (a.out[1] & 7) < 1 ||
	    (a.out[1] & 7) > a.out[0]) {
		out_err("%s: malformed Get FW Info answer (%zu bytes)", fw->ctl->device, a.out_len);
		ctl_answer_free(&a);
		return CTL_EXIT_DEVICE;
	}
	fw->slots = a.out[0];
	fw->active = a.out[1] & 7;
	if (slot >= 1 && slot <= fw->slots)
		fw_rev_copy(rev, a.out + 0x10 + FW_REV_SIZE * (slot - 1u));
	ctl_answer_free(&a);
	return 0;
}

/* The slot to write: --slot, else the one after the active slot (the kernel's rule). */
static int fw_pick_slot(struct fw_update *fw)
{
	int r = fw_info(fw, 0, NULL);

	if (r)
		return r;
	if (fw->slots < 2) {
		out_err("%s: the device has one firmware slot, the active one: nothing to write",
			fw->ctl->device);
		return CTL_EXIT_INVALID;
	}
	fw->slot = fw->slot_opt ? (uint8_t)fw->slot_opt : (uint8_t)(fw->active % fw->slots + 1);
	if (fw->slot > fw->slots || fw->slot == fw->active) {
		out_err("%s: --slot %u: %s (active slot %u of %u)", fw->ctl->device, fw->slot,
			fw->slot == fw->active ? "the running firmware's slot cannot be written"
					       : "the device has no such slot",
			fw->active, fw->slots);
		return CTL_EXIT_USAGE;
	}
	return fw_info(fw, fw->slot, fw->rev_before);
}

/* Sends one Transfer FW message: header (action, slot, offset) then image bytes. */
static int fw_send(struct fw_update *fw, uint8_t action, size_t off, size_t n, struct ctl_answer *a)
{
	uint8_t *in = calloc(1, FW_HEADER + n);
	uint32_t units = (uint32_t)(off / FW_UNIT);
	int r;

	if (!in) {
		out_err("out of memory for a part of %zu bytes", n);
		return CTL_EXIT_DAEMON;
	}
	in[0] = action;
	in[1] = action == FW_ACTION_FULL || action == FW_ACTION_END ? fw->slot : 0;
	for (int i = 0; i < 4; i++)
		in[4 + i] = (uint8_t)(units >> (8 * i));
	if (n)
		memcpy(in + FW_HEADER, fw->image + off, n);
	r = ctl_call(fw->ctl, MBX_MSG_SUBMIT, FW_OP_TRANSFER, in, FW_HEADER + n, a);
	free(in);
	return r;
}

/* After a refused part: Abort (04h) so the device drops the parts it holds. */
static void fw_abort(struct fw_update *fw)
{
	struct ctl_answer a;

	if (fw_send(fw, FW_ACTION_ABORT, 0, 0, &a))
		return;
	if (result_check(fw->ctl, &a, FW_OP_TRANSFER) == 0) {
		fw->aborted = true;
		fprintf(
		    stderr,
		    "mbxctl: %s: sent Abort (04h): the device drops the %u part%s it accepted\n",
		    fw->ctl->device, fw->accepted, fw->accepted == 1 ? "" : "s");
	}
	ctl_answer_free(&a);
}

/* The action of part i (0-based) of fw->parts. */
static uint8_t fw_part_action(const struct fw_update *fw, unsigned i)
{
	if (fw->parts == 1)
		return FW_ACTION_FULL;
	if (i == 0)
		return FW_ACTION_INIT;
	return i + 1 == fw->parts ? FW_ACTION_END : FW_ACTION_CONT;
}

/* Says which part was refused (the cause is already printed), aborting held parts. */
static void fw_refused(struct fw_update *fw, unsigned i, size_t off, size_t n)
{
	out_err("%s: part %u of %u (%s, image bytes %zu-%zu) was refused; slot %u unchanged",
		fw->ctl->device, i + 1, fw->parts, fw_action_names[fw_part_action(fw, i)], off,
		off + n - 1, fw->slot);
	if (fw->accepted)
		fw_abort(fw);
}

/*
 * Sends every part, stopping at the first one refused. The last answer is
 * kept in *last (the caller frees it). Returns 0 or an exit code.
 */
static int fw_transfer(struct fw_update *fw, struct ctl_answer *last)
{
	int r = 0;

	memset(last, 0, sizeof(*last));
	for (unsigned i = 0; i < fw->parts; i++) {
		size_t off = (size_t)i * fw->chunk;
		size_t n = fw->len - off < fw->chunk ? fw->len - off : fw->chunk;
		uint8_t action = fw_part_action(fw, i);

		ctl_answer_free(last);
		r = fw_send(fw, action, off, n, last);
		if (r)
			return r;
		r = result_check(fw->ctl, last, FW_OP_TRANSFER);
		/* Only the part that hands the image over may start a background operation. */
		if (!r && last->rc == CXL_RC_BACKGROUND_STARTED && i + 1 < fw->parts) {
			out_err("%s: %s part unexpectedly started a background operation",
				fw->ctl->device, fw_action_names[action]);
			r = CTL_EXIT_DEVICE;
		}
		if (r) {
			fw_refused(fw, i, off, n);
			return r;
		}
		fw->accepted++;
	}
	fw->background = last->rc == CXL_RC_BACKGROUND_STARTED;
	fw->tag = last->tag;
	return 0;
}

/* Follows the transfer's EVENTs to its completion: progress on stderr (JSON: stdout). */
static int fw_wait(struct fw_update *fw)
{
	struct mbx_event ev;
	uint32_t evtag;
	int r;

	if (!fw->ctl->json)
		fprintf(stderr, "waiting for the transfer to complete...\n");
	do {
		r = mbx_next_event(fw->ctl->client, -1, &ev, &evtag);
		if (r < 0)
			return ctl_failed(fw->ctl, r);
		if (evtag != fw->tag)
			continue;
		if (fw->ctl->json)
			out_json(out_event_json(&ev));
		else if (ev.kind == MBX_EVENT_PROGRESS)
			fprintf(stderr, "%s: Transfer FW (0201h): %u%%\n", ev.device, ev.percent);
		else
			fprintf(stderr, "%s: Transfer FW (0201h) complete: %s (%02xh)\n", ev.device,
				out_rc_name(ev.cxl_rc), ev.cxl_rc);
	} while (evtag != fw->tag || ev.kind != MBX_EVENT_COMPLETE);
	if (fw->doc)
		json_object_set_new(fw->doc, "completion", out_event_json(&ev));
	if (ev.cxl_rc != CXL_RC_SUCCESS) {
		out_err("%s: Transfer FW (0201h) failed in the background: %s (%02xh); slot %u "
			"unchanged",
			ev.device, out_rc_name(ev.cxl_rc), ev.cxl_rc, fw->slot);
		return CTL_EXIT_DEVICE;
	}
	return 0;
}

/* Sends Activate FW for the written slot. */
static int fw_activate(struct fw_update *fw)
{
	uint8_t in[2] = {(uint8_t)fw->activate, fw->slot};
	struct ctl_answer a;
	int r = ctl_call(fw->ctl, MBX_MSG_SUBMIT, FW_OP_ACTIVATE, in, sizeof(in), &a);

	if (r)
		return r;
	r = result_check(fw->ctl, &a, FW_OP_ACTIVATE);
	if (fw->doc)
		json_object_set_new(fw->doc, "activate", result_json(fw->ctl, &a, FW_OP_ACTIVATE));
	else if (!r)
		printf("activate:    %s: slot %u %s (audit seq %" PRIu64 ")\n",
		       fw->activate ? "offline" : "online", fw->slot,
		       fw->activate ? "runs after the next cold reset" : "is running now",
		       a.reply.result.audit_seq);
	ctl_answer_free(&a);
	return r;
}

/* Prints what the transfer did, for humans. */
static void fw_print_transfer(const struct fw_update *fw, const struct ctl_answer *last)
{
	const struct mbx_result *res = &last->reply.result;

	printf("%s: %s (%zu bytes) to slot %u (was \"%s\"; active slot %u of %u)\n",
	       fw->ctl->device, fw->path, fw->len, fw->slot, fw->rev_before, fw->active, fw->slots);
	if (fw->parts == 1)
		printf("transfer:    one Full Transfer\n");
	else if (fw->parts == 2)
		printf("transfer:    2 parts (Initiate, End) of up to %zu bytes\n", fw->chunk);
	else
		printf("transfer:    %u parts (Initiate, %u Continue, End) of up to %zu bytes\n",
		       fw->parts, fw->parts - 2, fw->chunk);
	printf("result:      %s (%02xh), class %s, audit seq %" PRIu64 "\n", out_rc_name(last->rc),
	       last->rc, mbx_class_name(res->cls), res->audit_seq);
	/* Through the kernel's firmware upload the message says what the kernel does. */
	if (res->message[0] && strcmp(res->message, out_rc_name(last->rc)) != 0)
		printf("message:     %s\n", res->message);
	if (fw->background && !fw->ctl->wait)
		printf("the transfer runs in the background: mbxctl watch %s follows it\n",
		       fw->ctl->device);
}

/* Starts the JSON document: what is written where, and how. */
static void fw_json_start(struct fw_update *fw)
{
	fw->doc =
	    json_pack("{s:s, s:o, s:o, s:I, s:i, s:o, s:i, s:i, s:s, s:i, s:I}", "command",
		      "firmware-update", "device", out_jstr(fw->ctl->device), "image",
		      out_jstr(fw->path), "image_bytes", (json_int_t)fw->len, "slot", fw->slot,
		      "slot_revision_before", out_jstr(fw->rev_before), "active_slot", fw->active,
		      "slots", fw->slots, "mode", fw->parts == 1 ? "full" : "parts", "parts",
		      fw->parts, "part_bytes", (json_int_t)fw->chunk);
}

/* Transfers, waits and activates as asked; fills the report. Returns the exit code. */
static int fw_run(struct fw_update *fw)
{
	struct ctl_answer last;
	int r;

	if (fw->ctl->json)
		fw_json_start(fw);
	r = fw_transfer(fw, &last);
	if (fw->doc) {
		json_object_set_new(fw->doc, "parts_accepted", json_integer(fw->accepted));
		if (last.reply.frame)
			json_object_set_new(fw->doc, "transfer",
					    result_json(fw->ctl, &last, FW_OP_TRANSFER));
		if (fw->aborted)
			json_object_set_new(fw->doc, "aborted", json_true());
	} else if (!r) {
		fw_print_transfer(fw, &last);
	}
	ctl_answer_free(&last);
	if (!r && fw->background && fw->ctl->wait)
		r = fw_wait(fw);
	if (!r && (fw->ctl->wait || !fw->background) && !fw_info(fw, fw->slot, fw->rev_after)) {
		if (fw->doc)
			json_object_set_new(fw->doc, "slot_revision", out_jstr(fw->rev_after));
		else
			printf("slot %u:      \"%s\"\n", fw->slot, fw->rev_after);
	}
	if (!r && fw->activate != FW_ACTIVATE_NONE)
		r = fw_activate(fw);
	return r;
}

int cmd_firmware_update(struct ctl *ctl, int argc, char **argv)
{
	struct fw_update fw = {.ctl = ctl, .activate = FW_ACTIVATE_NONE};
	int r;

	if (!(r = fw_args(&fw, argc, argv)) && !(r = fw_read_image(&fw)) &&
	    !(r = ctl_connect(ctl)) && !(r = fw_part_room(&fw)) && !(r = fw_check_activate(&fw)) &&
	    !(r = fw_pick_slot(&fw)))
		r = fw_run(&fw);
	if (fw.doc) {
		json_object_set_new(fw.doc, "exit_code", json_integer(r));
		out_json(fw.doc);
	}
	free(fw.image);
	return r;
}
