/* mbxctl explain DEV OPCODE: would this be allowed, and why (nothing reaches the device). */
#include "mbxctl.h"

#define EXPLAIN_USAGE "explain DEV OPCODE [--hex HEX | --in FILE] [--reason TEXT] [--tunnel PORT]"

/* 0 when allowed, 3 when denied, 4 when invalid; other statuses as for send. */
static int explain_exit(const struct ctl_answer *a)
{
	const struct mbx_result *res = &a->reply.result;

	if (res->decision == MBX_DECISION_INVALID)
		return CTL_EXIT_INVALID;
	if (res->status != MBX_STATUS_OK)
		return result_exit_code(a);
	return res->decision == MBX_DECISION_ALLOW ? CTL_EXIT_OK : CTL_EXIT_DENIED;
}

int cmd_explain(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_answer a;
	json_t *doc;
	int r, code;

	r = ctl_args_parse(ctl, argc, argv, 2,
			   CTL_OPT_TUNNEL | CTL_OPT_HEX | CTL_OPT_IN | CTL_OPT_REASON,
			   EXPLAIN_USAGE);
	if (r || (r = ctl_connect(ctl)))
		return r;
	r = ctl_call(ctl, MBX_MSG_EXPLAIN, ctl->opcode, ctl->payload, ctl->payload_len, &a);
	if (r)
		return r;
	code = explain_exit(&a);
	if (ctl->json) {
		doc = result_json(ctl, &a, ctl->opcode);
		if (doc) {
			json_object_del(doc, "return_code");
			json_object_del(doc, "return_code_name");
			json_object_del(doc, "vendor_status");
			json_object_set_new(doc, "exit_code", json_integer(code));
		}
		r = out_json(doc);
	} else {
		printf("%s: %s (%04xh)%s\n", ctl->device, out_opcode_name(ctl->opcode), ctl->opcode,
		       a.tunnelled ? " through Tunnel Management (5300h)" : "");
		printf("status:      %s\n", mbx_status_name(a.reply.result.status));
		result_print_decision(stdout, &a.reply.result);
	}
	ctl_answer_free(&a);
	return code ? code : r;
}
