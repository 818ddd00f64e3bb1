/*
 * mbxctl watch DEV: follows the device's background operations (Sanitize,
 * Scan Media, Transfer FW...), whoever started them, one line per event.
 */
#include <errno.h>
#include <stdio.h>

#include "mbxctl.h"

/* One event as a line of text or a JSON document. */
static void watch_print(const struct ctl *ctl, const struct mbx_event *ev)
{
	bool done = ev->kind == MBX_EVENT_COMPLETE;

	if (ctl->json) {
		out_json(out_event_json(ev));
		fflush(stdout);
		return;
	}
	if (done)
		printf("%s: %s (%04xh) finished: %s (rc %04xh, vendor status %04xh), audit %llu\n",
		       ev->device, out_opcode_name(ev->opcode), ev->opcode, out_rc_name(ev->cxl_rc),
		       ev->cxl_rc, ev->vendor_status, (unsigned long long)ev->audit_seq);
	else
		printf("%s: %s (%04xh) %u%%\n", ev->device, out_opcode_name(ev->opcode), ev->opcode,
		       ev->percent);
	fflush(stdout);
}

/* mbxctl watch DEV [--until-complete] */
int cmd_watch(struct ctl *ctl, int argc, char **argv)
{
	struct mbx_event ev;
	uint32_t tag, etag;
	int r;

	r = ctl_args_parse(ctl, argc, argv, 1, CTL_OPT_UNTIL_COMPLETE,
			   "watch DEV [--until-complete]");
	if (r)
		return r;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = mbx_watch(ctl->client, ctl->device, &tag);
	if (r == -ENODEV) {
		out_err("no device named \"%s\"", ctl->device);
		return CTL_EXIT_INVALID;
	}
	if (r == -EACCES) {
		out_err("the policy does not let you see device \"%s\"", ctl->device);
		return CTL_EXIT_DENIED;
	}
	if (r < 0)
		return ctl_failed(ctl, r);
	for (;;) {
		r = mbx_next_event(ctl->client, -1, &ev, &etag);
		if (r < 0)
			return ctl_failed(ctl, r);
		if (etag != tag)
			continue;
		watch_print(ctl, &ev);
		if (ctl->until_complete && ev.kind == MBX_EVENT_COMPLETE)
			return ev.cxl_rc ? CTL_EXIT_DEVICE : CTL_EXIT_OK;
	}
}
