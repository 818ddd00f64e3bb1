/* mbxctl health DEV: Get Health Info (4200h), decoded. */
#include "decode.h"
#include "mbxctl.h"
#include "catalog.h"

int cmd_health(struct ctl *ctl, int argc, char **argv)
{
	struct decode_health h;
	struct ctl_answer a;
	char target[64];
	json_t *doc;
	int r;

	r = ctl_args_parse(ctl, argc, argv, 1, CTL_OPT_TUNNEL, "health DEV [--tunnel PORT]");
	if (r || (r = ctl_connect(ctl)) ||
	    (r = ctl_query(ctl, CXL_OP_GET_HEALTH_INFO, NULL, 0, &a)))
		return r;
	if (decode_health_parse(a.out, a.out_len, &h) < 0) {
		out_err("%s: Get Health Info answered %zu bytes, expected at least %d", ctl->device,
			a.out_len, DECODE_HEALTH_SIZE);
		ctl_answer_free(&a);
		return CTL_EXIT_DEVICE;
	}
	ctl_answer_free(&a);
	if (ctl->json) {
		doc = out_target_json(ctl);
		if (doc)
			json_object_set_new(doc, "health", decode_health_json(&h));
		return out_json(doc);
	}
	out_target(ctl, target, sizeof(target));
	printf("%s: health\n", target);
	decode_health_print(stdout, &h);
	return 0;
}
