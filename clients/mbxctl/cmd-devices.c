/* mbxctl devices: the daemon's devices with transport, model, serial and state. */
#include <stdlib.h>

#include "mbxctl.h"

static const char *devices_state(uint8_t state)
{
	switch (state) {
	case MBX_DEVICE_READY:
		return "ready";
	case MBX_DEVICE_BACKGROUND:
		return "background";
	case MBX_DEVICE_FAILED:
		return "failed";
	default:
		return "unknown";
	}
}

/* One device as JSON. */
static json_t *devices_json_one(const struct mbx_device_desc *d)
{
	json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:I}", "name", out_jstr(d->name),
			      "transport", out_jstr(d->transport), "kind", out_jstr(d->kind),
			      "model", out_jstr(d->model), "serial", out_jstr(d->serial), "state",
			      devices_state(d->state), "payload_max", (json_int_t)d->payload_max);

	if (o && d->state == MBX_DEVICE_BACKGROUND) {
		json_object_set_new(o, "background_opcode", out_opcode_json(d->bg_opcode));
		json_object_set_new(o, "background_percent", json_integer(d->bg_percent));
	}
	return o;
}

/* Prints the list as JSON. */
static int devices_json(const struct mbx_device_desc *list, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, devices_json_one(&list[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return out_json(arr ? json_pack("{s:o}", "devices", arr) : NULL);
}

/* Prints the list as a table. */
static void devices_table(const struct mbx_device_desc *list, size_t n)
{
	char size[32];

	printf("%-12s %-9s %-8s %-9s %-10s %-20s %s\n", "NAME", "TRANSPORT", "KIND", "STATE",
	       "MAILBOX", "SERIAL", "MODEL");
	for (size_t i = 0; i < n; i++) {
		const struct mbx_device_desc *d = &list[i];

		out_size(size, sizeof(size), d->payload_max);
		printf("%-12s %-9s %-8s %-9s %-10s %-20s %s\n", d->name, d->transport, d->kind,
		       devices_state(d->state), size, d->serial, d->model);
		if (d->state == MBX_DEVICE_BACKGROUND)
			printf("%-12s background: %s (%04xh) %u%%\n", "",
			       out_opcode_name(d->bg_opcode), d->bg_opcode, d->bg_percent);
	}
	if (n == 0)
		printf("(mbxd has no devices)\n");
}

int cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	struct mbx_device_desc *list;
	size_t n;
	int r;

	r = ctl_args_parse(ctl, argc, argv, 0, CTL_OPT_NAMES, "devices [--names]");
	if (r)
		return r;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = mbx_devices(ctl->client, &list, &n);
	if (r < 0)
		return ctl_failed(ctl, r);
	if (ctl->names)
		for (size_t i = 0; i < n; i++)
			printf("%s\n", list[i].name);
	else if (ctl->json)
		r = devices_json(list, n);
	else
		devices_table(list, n);
	free(list);
	return r;
}
