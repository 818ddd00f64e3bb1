/*
 * mbxctl identify DEV: Identify (0001h), then by component type Identify
 * Memory Device (4000h) or Identify Switch Device (5100h), decoded. A
 * device without generic Identify (an EXPLAIN says so) is identified as a
 * memory device alone.
 */
#include "decode.h"
#include "mbxctl.h"
#include "catalog.h"

/* Asks and prints Identify Memory Device. */
static int identify_memdev(struct ctl *ctl, json_t *doc)
{
	struct decode_memdev m;
	struct ctl_answer a;
	int r = ctl_query(ctl, CXL_OP_IDENTIFY_MEMDEV, NULL, 0, &a);

	if (r)
		return r;
	if (decode_identify_memdev(a.out, a.out_len, &m) < 0) {
		out_err("%s: Identify Memory Device answered %zu bytes, expected at least %d",
			ctl->device, a.out_len, DECODE_MEMDEV_SIZE);
		ctl_answer_free(&a);
		return CTL_EXIT_DEVICE;
	}
	ctl_answer_free(&a);
	if (doc)
		json_object_set_new(doc, "memory_device", decode_identify_json_memdev(&m));
	else
		decode_identify_print_memdev(stdout, &m);
	return 0;
}

/* Asks and prints Identify Switch Device. */
static int identify_switch(struct ctl *ctl, json_t *doc)
{
	struct decode_switch s;
	struct ctl_answer a;
	int r = ctl_query(ctl, CXL_OP_IDENTIFY_SWITCH, NULL, 0, &a);

	if (r)
		return r;
	if (decode_identify_switch(a.out, a.out_len, &s) < 0) {
		out_err("%s: Identify Switch Device answered %zu bytes, expected at least %d",
			ctl->device, a.out_len, DECODE_SWITCH_SIZE);
		ctl_answer_free(&a);
		return CTL_EXIT_DEVICE;
	}
	ctl_answer_free(&a);
	if (doc)
		json_object_set_new(doc, "switch", decode_identify_json_switch(&s));
	else
		decode_identify_print_switch(stdout, &s);
	return 0;
}

/*
 * A memory device owned by the Linux driver may not offer generic Identify
 * (RAW-only on distro kernels, absent from QEMU's CEL): say so and identify
 * it as a memory device alone.
 */
static bool identify_generic_missing(const struct ctl_answer *a)
{
	const struct mbx_result *res = &a->reply.result;

	return res->status == MBX_STATUS_UNSUPPORTED || res->status == MBX_STATUS_RAW_DISABLED ||
	       (res->status == MBX_STATUS_OK && a->rc == CXL_RC_UNSUPPORTED);
}

static int identify_memdev_only(struct ctl *ctl, const struct ctl_answer *a)
{
	json_t *doc = NULL;
	char target[64];
	int r;

	out_target(ctl, target, sizeof(target));
	if (ctl->json)
		doc = out_target_json(ctl);
	else
		printf("%s: generic Identify (0001h) not available here (%s); identifying as a "
		       "memory device\n",
		       target, a->reply.result.message);
	r = identify_memdev(ctl, doc);
	if (r) {
		json_decref(doc);
		return r;
	}
	return ctl->json ? out_json(doc) : 0;
}

int cmd_identify(struct ctl *ctl, int argc, char **argv)
{
	struct decode_identify id;
	struct ctl_answer a;
	json_t *doc = NULL;
	char target[64];
	int r;

	r = ctl_args_parse(ctl, argc, argv, 1, CTL_OPT_TUNNEL, "identify DEV [--tunnel PORT]");
	if (r || (r = ctl_connect(ctl)) ||
	    (r = ctl_call(ctl, MBX_MSG_EXPLAIN, CXL_OP_IDENTIFY, NULL, 0, &a)))
		return r;
	/*
	 * Asked first as a dry run: a device without generic Identify is found
	 * out without sending it, so a monitoring agent's identify costs no
	 * refusal, no audit record and no round trip to the device.
	 */
	if (!identify_generic_missing(&a)) {
		ctl_answer_free(&a);
		r = ctl_call(ctl, MBX_MSG_SUBMIT, CXL_OP_IDENTIFY, NULL, 0, &a);
		if (r)
			return r;
	}
	if (identify_generic_missing(&a)) {
		r = identify_memdev_only(ctl, &a);
		ctl_answer_free(&a);
		return r;
	}
	r = result_check(ctl, &a, CXL_OP_IDENTIFY);
	if (r) {
		ctl_answer_free(&a);
		return r;
	}
	if (decode_identify_generic(a.out, a.out_len, &id) < 0) {
		out_err("%s: Identify answered %zu bytes, expected at least %d", ctl->device,
			a.out_len, DECODE_IDENTIFY_SIZE);
		ctl_answer_free(&a);
		return CTL_EXIT_DEVICE;
	}
	ctl_answer_free(&a);
	out_target(ctl, target, sizeof(target));
	if (ctl->json) {
		doc = out_target_json(ctl);
		if (doc)
			json_object_set_new(doc, "identify", decode_identify_json_generic(&id));
	} else {
		printf("%s: %s\n", target, decode_identify_component(id.component_type));
		decode_identify_print_generic(stdout, &id);
	}
	if (id.component_type == DECODE_COMPONENT_TYPE3)
		r = identify_memdev(ctl, doc);
	else if (id.component_type == DECODE_COMPONENT_SWITCH)
		r = identify_switch(ctl, doc);
	if (r) {
		json_decref(doc);
		return r;
	}
	return ctl->json ? out_json(doc) : 0;
}
