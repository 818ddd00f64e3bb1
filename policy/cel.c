/* The Command Effects Log: parsing (CXL r3.1 8.2.9.5.2.1) and its meaning for classes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"

#define CEL_ENTRY_SIZE  4
#define FEATURES_HEADER 8  /* le16 entries here, le16 device total, 4 reserved */
#define FEATURE_ENTRY   48 /* uuid[16] ... le16 Set Feature Effects at 28 */
#define FEATURE_EFFECTS 28

/* Parses a CEL; a repeated opcode keeps one entry with the union of its effects. */
int policy_cel_parse(const uint8_t *buf, size_t len, struct cel_entry **out, size_t *n)
{
	struct cel_entry *v;
	size_t count = 0;

	*out = NULL;
	*n = 0;
	if (len % CEL_ENTRY_SIZE != 0)
		return -EPROTO;
	if (len == 0)
		return 0;
	v = calloc(len / CEL_ENTRY_SIZE, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t off = 0; off < len; off += CEL_ENTRY_SIZE) {
		uint16_t op = (uint16_t)(buf[off] | buf[off + 1] << 8);
		uint16_t eff = (uint16_t)(buf[off + 2] | buf[off + 3] << 8);
		const struct cel_entry *dup = policy_cel_find(v, count, op);

		/* A device that lists an opcode twice gets the more dangerous reading. */
		if (dup) {
			v[dup - v].effects |= eff;
			continue;
		}
		v[count].opcode = op;
		v[count].effects = eff;
		count++;
	}
	*out = v;
	*n = count;
	return 0;
}

/* Finds an opcode's entry in a CEL; CELs are short (one per command). */
const struct cel_entry *policy_cel_find(const struct cel_entry *cel, size_t n, uint16_t opcode)
{
	for (size_t i = 0; i < n; i++)
		if (cel[i].opcode == opcode)
			return &cel[i];
	return NULL;
}

/*
 * Maps effects to the least class that covers them: security state beats
 * data, data beats configuration or policy, which beat log changes. The
 * background bit alone says how a command runs, not what it changes.
 */
int policy_cel_effects_class(uint16_t effects)
{
	if (effects & CEL_SECURITY)
		return MBX_CLASS_SECURITY;
	if (effects & CEL_DATA_IMMEDIATE)
		return MBX_CLASS_DATA;
	if (effects & (CEL_CONFIG_COLD_RESET | CEL_CONFIG_IMMEDIATE | CEL_POLICY_IMMEDIATE))
		return MBX_CLASS_CONFIG;
	if (effects & CEL_LOG_IMMEDIATE)
		return MBX_CLASS_LOG;
	return -1;
}

/* Appends the Features of one Get Supported Features output; returns the bytes it takes. */
int policy_features_parse(const uint8_t *buf, size_t len, struct policy_feature *v, size_t cap,
			  size_t *n, size_t *total)
{
	size_t count;

	if (len < FEATURES_HEADER)
		return -EPROTO;
	count = (size_t)(buf[0] | buf[1] << 8);
	if (total)
		*total = (size_t)(buf[2] | buf[3] << 8);
	if (count > (len - FEATURES_HEADER) / FEATURE_ENTRY)
		count = (len - FEATURES_HEADER) / FEATURE_ENTRY; /* believe only what arrived */
	for (size_t i = 0; i < count && *n < cap; i++) {
		const uint8_t *e = buf + FEATURES_HEADER + i * FEATURE_ENTRY;

		memcpy(v[*n].uuid, e, sizeof(v[*n].uuid));
		v[*n].set_effects = (uint16_t)(e[FEATURE_EFFECTS] | e[FEATURE_EFFECTS + 1] << 8);
		(*n)++;
	}
	return (int)(FEATURES_HEADER + count * FEATURE_ENTRY);
}
