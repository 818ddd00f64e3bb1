/*
 * libFuzzer target: the Command Effects Log parser (policy/cel.c), which
 * reads what a device says about itself, then classification with that CEL.
 * Every opcode in the input must be found once, with at least the effects
 * each of its entries gave; a CEL may raise an opcode's class, never lower
 * it below what the device-less catalog says.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Each input entry is present exactly once, with its effects included. */
static void fuzz_cel_check(const uint8_t *data, size_t size, const struct cel_entry *cel, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++)
			if (cel[i].opcode == cel[k].opcode)
				abort();
	for (size_t off = 0; off + 4 <= size; off += 4) {
		uint16_t op = (uint16_t)(data[off] | data[off + 1] << 8);
		uint16_t eff = (uint16_t)(data[off + 2] | data[off + 3] << 8);
		const struct cel_entry *e = policy_cel_find(cel, n, op);

		if (!e || (e->effects & eff) != eff)
			abort();
	}
}

/* Classifies every opcode the CEL names, with and without it. */
static void fuzz_cel_classify(const struct cel_entry *cel, size_t n)
{
	struct policy_device with = {.name = "mem0", .have_cel = true, .cel = cel, .n_cel = n};
	struct policy_device without = {.name = "mem0"};
	struct policy_class a, b;

	for (size_t i = 0; i < n && i < 64; i++) {
		policy_classify(NULL, &with, cel[i].opcode, NULL, 0, &a);
		policy_classify(NULL, &without, cel[i].opcode, NULL, 0, &b);
		if (a.status == MBX_STATUS_OK && b.status == MBX_STATUS_OK &&
		    b.cls != MBX_CLASS_VENDOR && a.cls != MBX_CLASS_VENDOR && a.cls < b.cls)
			abort(); /* the device lowered a catalog class */
		(void)policy_cel_effects_class(cel[i].effects);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cel_entry *cel = NULL;
	size_t n = 0;
	int rc = policy_cel_parse(data, size, &cel, &n);

	if (size % 4 != 0) {
		if (rc != -EPROTO || cel || n)
			abort();
		return 0;
	}
	if (rc == 0) {
		fuzz_cel_check(data, size, cel, n);
		fuzz_cel_classify(cel, n);
	}
	free(cel);
	return 0;
}
