/* Get Supported Logs (0400h) and the Command Effects Log it leads to (CXL r3.1 8.2.9.5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "mbxctl.h"

/* The CEL's UUID, 0da9c0b5-bf41-4b78-8f79-96b1623b3f17, in wire byte order. */
const uint8_t decode_cel_uuid[DECODE_UUID_SIZE] = {
    0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78, 0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17,
};

/* Names of effects bits 0-6 (CXL r3.1 Table 8-75); later bits differ between sources. */
static const char *const decode_cel_effect_names[7] = {
    "config change after cold reset", "immediate config change", "immediate data change",
    "immediate policy change",        "immediate log change",    "security state change",
    "background operation",
};

/* Decodes Get Supported Logs: le16 count, 6 reserved, entries {uuid, le32 size}; *logs malloc'ed.
 */
int decode_cel_logs(const uint8_t *p, size_t len, struct decode_log **logs, size_t *n)
{
	size_t count;

	*logs = NULL;
	*n = 0;
	if (!p || len < DECODE_LOGS_HEADER)
		return -EPROTO;
	count = decode_le16(p);
	if (count > (len - DECODE_LOGS_HEADER) / DECODE_LOG_ENTRY_SIZE)
		return -EPROTO;
	if (count == 0)
		return 0;
	*logs = calloc(count, sizeof(**logs));
	if (!*logs)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const uint8_t *e = p + DECODE_LOGS_HEADER + i * DECODE_LOG_ENTRY_SIZE;

		memcpy((*logs)[i].uuid, e, DECODE_UUID_SIZE);
		(*logs)[i].size = decode_le32(e + DECODE_UUID_SIZE);
	}
	*n = count;
	return 0;
}

/* Finds the CEL in a supported-logs list; -ENOENT when the device has none. */
int decode_cel_find(const struct decode_log *logs, size_t n, uint32_t *size)
{
	for (size_t i = 0; i < n; i++) {
		if (memcmp(logs[i].uuid, decode_cel_uuid, DECODE_UUID_SIZE) == 0) {
			*size = logs[i].size;
			return 0;
		}
	}
	return -ENOENT;
}

/* Formats a UUID as 8-4-4-4-12 hex. */
void decode_cel_uuid_str(const uint8_t uuid[DECODE_UUID_SIZE], char out[37])
{
	size_t o = 0;

	for (int i = 0; i < DECODE_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		snprintf(out + o, 3, "%02x", uuid[i]);
		o += 2;
	}
	out[o] = '\0';
}

/* Fills names[] with one name per set effects bit; returns how many. */
size_t decode_cel_effects(uint16_t effects, const char *names[16], char unknown[16][16])
{
	size_t n = 0;

	for (int b = 0; b < 16; b++) {
		if (!(effects & (1u << b)))
			continue;
		if (b < 7) {
			names[n++] = decode_cel_effect_names[b];
		} else {
			snprintf(unknown[n], sizeof(unknown[n]), "unknown bit %d", b);
			names[n] = unknown[n];
			n++;
		}
	}
	return n;
}

/* Prints the CEL: one line per opcode with its catalog name and effects by name. */
void decode_cel_print(FILE *f, const uint8_t *cel, size_t len)
{
	fprintf(f, "  %zu commands\n", len / DECODE_CEL_ENTRY_SIZE);
	fprintf(f, "  %-6s  %-40s  %s\n", "opcode", "name", "effects");
	for (size_t i = 0; i + DECODE_CEL_ENTRY_SIZE <= len; i += DECODE_CEL_ENTRY_SIZE) {
		uint16_t op = decode_le16(cel + i), eff = decode_le16(cel + i + 2);
		const char *names[16];
		char unknown[16][16];
		size_t n = decode_cel_effects(eff, names, unknown);

		fprintf(f, "  %04xh   %-40s  ", op, out_opcode_name(op));
		if (n == 0)
			fputs("none", f);
		for (size_t k = 0; k < n; k++)
			fprintf(f, "%s%s", k ? ", " : "", names[k]);
		fputc('\n', f);
	}
}

/* The CEL as a JSON array of {opcode, name, effects, effects_names}. */
json_t *decode_cel_json(const uint8_t *cel, size_t len)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i + DECODE_CEL_ENTRY_SIZE <= len; i += DECODE_CEL_ENTRY_SIZE) {
		uint16_t op = decode_le16(cel + i), eff = decode_le16(cel + i + 2);
		json_t *o = out_opcode_json(op), *names = json_array();
		const char *v[16];
		char unknown[16][16];
		size_t n = decode_cel_effects(eff, v, unknown);

		if (!o || !names) {
			json_decref(o);
			json_decref(names);
			json_decref(arr);
			return NULL;
		}
		for (size_t k = 0; k < n; k++)
			json_array_append_new(names, json_string(v[k]));
		/* The *_new calls take the reference even when they fail. */
		json_object_set_new(o, "effects", json_integer(eff));
		json_object_set_new(o, "effects_names", names);
		if (json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}
