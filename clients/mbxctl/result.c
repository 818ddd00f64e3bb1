/* A RESULT for humans and for JSON, and the exit code it means. */
#include <inttypes.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"

/* The exit code of each broker status (index: enum mbx_status). */
static const int result_status_exit[MBX_STATUS_COUNT] = {
    [MBX_STATUS_OK] = CTL_EXIT_OK,
    [MBX_STATUS_DENIED] = CTL_EXIT_DENIED,
    [MBX_STATUS_INVALID] = CTL_EXIT_INVALID,
    [MBX_STATUS_BUSY] = CTL_EXIT_DEVICE,
    [MBX_STATUS_TIMEOUT] = CTL_EXIT_DEVICE,
    [MBX_STATUS_DEVICE_ERROR] = CTL_EXIT_DEVICE,
    [MBX_STATUS_NO_DEVICE] = CTL_EXIT_INVALID,
    [MBX_STATUS_UNSUPPORTED] = CTL_EXIT_INVALID,
    [MBX_STATUS_AUDIT_UNAVAILABLE] = CTL_EXIT_DAEMON,
    [MBX_STATUS_RATE_LIMITED] = CTL_EXIT_DENIED,
    [MBX_STATUS_SHUTTING_DOWN] = CTL_EXIT_DAEMON,
    [MBX_STATUS_KERNEL_OWNED] = CTL_EXIT_DENIED,
    [MBX_STATUS_RAW_DISABLED] = CTL_EXIT_DENIED,
    [MBX_STATUS_CANCELLED] = CTL_EXIT_DAEMON,
};

/* A status added to proto.h needs its exit code above (and in docs/mbxctl.md). */
_Static_assert(MBX_STATUS_COUNT == 14, "map every broker status to an exit code");

/* The exit code of an answer: the broker's verdict, then the device's return code. */
int result_exit_code(const struct ctl_answer *a)
{
	uint16_t status = a->reply.result.status;

	if (status >= MBX_STATUS_COUNT)
		return CTL_EXIT_DAEMON;
	if (status != MBX_STATUS_OK)
		return result_status_exit[status];
	if (a->rc == CXL_RC_SUCCESS || a->rc == CXL_RC_BACKGROUND_STARTED)
		return CTL_EXIT_OK;
	return CTL_EXIT_DEVICE;
}

/* " (rule NAME at FILE:LINE)" or " (default deny)" for a decision. */
static void result_rule(const struct mbx_result *res, char *buf, size_t cap)
{
	if (res->rule[0])
		snprintf(buf, cap, "rule %s at %s", res->rule, res->source[0] ? res->source : "?");
	else
		snprintf(buf, cap, "no rule allows it: default deny");
}

/*
 * Says on standard error why an answer is not a success, naming the cause
 * (a denial names the daemon's message and the rule at its file:line), and
 * returns the exit code; 0 and silence for a success.
 */
int result_check(struct ctl *ctl, const struct ctl_answer *a, uint16_t opcode)
{
	const struct mbx_result *res = &a->reply.result;
	int code = result_exit_code(a);
	char rule[MBX_RULE_MAX + MBX_SOURCE_MAX + 16];

	if (code == CTL_EXIT_OK)
		return 0;
	result_rule(res, rule, sizeof(rule));
	if (res->status == MBX_STATUS_OK) {
		out_err("%s: %s (%04xh)%s failed: %s (%02xh)", ctl->device, out_opcode_name(opcode),
			opcode, a->tunnelled ? " through the tunnel" : "", out_rc_name(a->rc),
			a->rc);
		if (a->vendor_status)
			fprintf(stderr, "mbxctl: vendor status %04xh\n", a->vendor_status);
	} else if (res->status == MBX_STATUS_DENIED || res->status == MBX_STATUS_RATE_LIMITED) {
		/* The daemon's message usually names the rule already: say it once. */
		bool named = res->source[0] && strstr(res->message, res->source);

		out_err("%s: %s (%04xh) %s, class %s: %s%s%s%s", ctl->device,
			out_opcode_name(opcode), opcode, mbx_status_name(res->status),
			mbx_class_name(res->cls),
			res->message[0] ? res->message : "denied by policy", named ? "" : " (",
			named ? "" : rule, named ? "" : ")");
	} else {
		out_err("%s: %s (%04xh): %s%s%s", ctl->device, out_opcode_name(opcode), opcode,
			mbx_status_name(res->status), res->message[0] ? ": " : "", res->message);
	}
	if (res->retry_after_ms)
		fprintf(stderr, "mbxctl: retry after %" PRIu32 " ms\n", res->retry_after_ms);
	return code;
}

/* The inner levels of a tunnelled request as a JSON array. */
static json_t *result_inner_json(const struct mbx_result *res)
{
	json_t *arr = json_array();

	for (uint16_t i = 0; arr && i < res->n_inner; i++) {
		const struct mbx_inner *in = &res->inner[i];
		json_t *o = out_opcode_json(in->opcode);

		if (!o) {
			json_decref(arr);
			return NULL;
		}
		json_object_set_new(o, "class", json_string(mbx_class_name(in->cls)));
		json_object_set_new(o, "depth", json_integer(in->depth));
		json_object_set_new(o, "target", json_integer(in->target));
		/* json_array_append_new takes the reference even when it fails. */
		if (json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The whole answer as a JSON object; the output payload as hex. */
json_t *result_json(const struct ctl *ctl, const struct ctl_answer *a, uint16_t opcode)
{
	const struct mbx_result *res = &a->reply.result;
	json_t *o = out_opcode_json(opcode);
	char rc[8];

	if (!o)
		return NULL;
	snprintf(rc, sizeof(rc), "0x%02x", a->rc);
	json_object_set_new(o, "device", out_jstr(ctl->device));
	if (a->tunnelled)
		json_object_set_new(o, "tunnel_port", json_integer(ctl->tunnel));
	json_object_set_new(o, "status", json_string(mbx_status_name(res->status)));
	json_object_set_new(o, "decision", json_string(mbx_decision_name(res->decision)));
	json_object_set_new(o, "class", json_string(mbx_class_name(res->cls)));
	json_object_set_new(o, "rule", out_jstr(res->rule));
	json_object_set_new(o, "source", out_jstr(res->source));
	json_object_set_new(o, "message", out_jstr(res->message));
	json_object_set_new(o, "return_code", json_string(rc));
	json_object_set_new(o, "return_code_name", json_string(out_rc_name(a->rc)));
	json_object_set_new(o, "vendor_status", json_integer(a->vendor_status));
	json_object_set_new(o, "audit_seq", json_integer((json_int_t)res->audit_seq));
	json_object_set_new(o, "duration_us", json_integer(res->duration_us));
	if (res->retry_after_ms)
		json_object_set_new(o, "retry_after_ms", json_integer(res->retry_after_ms));
	json_object_set_new(o, "inner", result_inner_json(res));
	json_object_set_new(o, "exit_code", json_integer(result_exit_code(a)));
	return o;
}

/* Prints the classification part of a RESULT: class, decision, rule, inner levels. */
void result_print_decision(FILE *f, const struct mbx_result *res)
{
	char rule[MBX_RULE_MAX + MBX_SOURCE_MAX + 16];

	result_rule(res, rule, sizeof(rule));
	fprintf(f, "class:       %s\n", mbx_class_name(res->cls));
	fprintf(f, "decision:    %s (%s)\n", mbx_decision_name(res->decision), rule);
	if (res->message[0])
		fprintf(f, "message:     %s\n", res->message);
	for (uint16_t i = 0; i < res->n_inner; i++)
		fprintf(f, "inner %u:     %s (%04xh) to port/LD %u, class %s\n",
			res->inner[i].depth, out_opcode_name(res->inner[i].opcode),
			res->inner[i].opcode, res->inner[i].target,
			mbx_class_name(res->inner[i].cls));
}

/* Prints an answer for humans: verdict, return code by name, class, rule, audit. */
void result_print(FILE *f, const struct ctl_answer *a, uint16_t opcode)
{
	const struct mbx_result *res = &a->reply.result;

	fprintf(f, "command:     %s (%04xh)%s\n", out_opcode_name(opcode), opcode,
		a->tunnelled ? " through Tunnel Management (5300h)" : "");
	fprintf(f, "status:      %s\n", mbx_status_name(res->status));
	if (res->status == MBX_STATUS_OK)
		fprintf(f, "return code: %s (%02xh)\n", out_rc_name(a->rc), a->rc);
	if (a->vendor_status)
		fprintf(f, "vendor:      %04xh\n", a->vendor_status);
	result_print_decision(f, res);
	if (res->audit_seq)
		fprintf(f, "audit seq:   %" PRIu64 "\n", res->audit_seq);
	if (res->duration_us)
		fprintf(f, "duration:    %" PRIu32 " us\n", res->duration_us);
}
