/* Output helpers: error messages, JSON documents, hex dumps, names and sizes. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"

/* Prints "mbxctl: <message>" on standard error. */
void out_err(const char *fmt, ...)
{
	va_list ap;

	fputs("mbxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Prints one JSON document on one line of standard output and frees it. */
int out_json(json_t *doc)
{
	int r;

	if (!doc) {
		out_err("out of memory building JSON output");
		return CTL_EXIT_DAEMON;
	}
	r = json_dumpf(doc, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(doc);
	fputc('\n', stdout);
	if (r < 0) {
		out_err("cannot write JSON output");
		return CTL_EXIT_DAEMON;
	}
	return CTL_EXIT_OK;
}

/*
 * A JSON string of text that came from the daemon or a device: invalid
 * UTF-8 is not JSON, so such text has its non-ASCII bytes replaced by '?'.
 */
json_t *out_jstr(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* Prints a hex dump: offset, 16 bytes, and their printable characters. */
void out_hexdump(FILE *f, const uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += 16) {
		fprintf(f, "  %06zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (off + i < len)
				fprintf(f, " %02x", p[off + i]);
			else
				fputs("   ", f);
		}
		fputs("  |", f);
		for (size_t i = 0; i < 16 && off + i < len; i++)
			fputc(isprint(p[off + i]) ? p[off + i] : '.', f);
		fputs("|\n", f);
	}
}

/* The catalog's name of an opcode, or a generic description. */
const char *out_opcode_name(uint16_t opcode)
{
	const struct catalog_entry *e = catalog_lookup(opcode);

	if (e && e->name)
		return e->name;
	return opcode >= 0xc000 ? "vendor specific" : "unknown opcode";
}

/* The spec's name of a return code. */
const char *out_rc_name(uint16_t rc)
{
	return cxl_rc_name(rc);
}

/* Formats a byte count in the largest binary unit that keeps it exact, or one decimal. */
void out_size(char *buf, size_t cap, uint64_t bytes)
{
	static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
	unsigned u = 0;
	uint64_t v = bytes;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (v < 10240 || u + 1 == sizeof(units) / sizeof(units[0])) {
		snprintf(buf, cap, "%" PRIu64 " %s", v, units[u]);
		return;
	}
	/* Not a round number of the next unit: show it with one decimal. */
	snprintf(buf, cap, "%.1f %s", (double)v / 1024.0, units[u + 1]);
}

/* {"opcode": "0x4400", "name": "Sanitize"} as a JSON object. */
json_t *out_opcode_json(uint16_t opcode)
{
	char hex[8];

	snprintf(hex, sizeof(hex), "0x%04x", opcode);
	return json_pack("{s:s, s:s}", "opcode", hex, "name", out_opcode_name(opcode));
}

/* A background EVENT as JSON: the same document for send --wait and watch. */
json_t *out_event_json(const struct mbx_event *ev)
{
	json_t *o = out_opcode_json(ev->opcode);
	char rc[8];

	if (!o)
		return NULL;
	snprintf(rc, sizeof(rc), "0x%02x", ev->cxl_rc);
	json_object_set_new(o, "event",
			    json_string(ev->kind == MBX_EVENT_COMPLETE ? "complete" : "progress"));
	json_object_set_new(o, "device", out_jstr(ev->device));
	json_object_set_new(o, "percent", json_integer(ev->percent));
	if (ev->kind == MBX_EVENT_COMPLETE) {
		json_object_set_new(o, "return_code", json_string(rc));
		json_object_set_new(o, "return_code_name", json_string(out_rc_name(ev->cxl_rc)));
		json_object_set_new(o, "vendor_status", json_integer(ev->vendor_status));
	}
	json_object_set_new(o, "audit_seq", json_integer((json_int_t)ev->audit_seq));
	return o;
}

/* Names what a command reached: "mem0", or "switch0 port 1" through a tunnel. */
void out_target(const struct ctl *ctl, char *buf, size_t cap)
{
	if (ctl->tunnel >= 0)
		snprintf(buf, cap, "%s port %d", ctl->device, ctl->tunnel);
	else
		snprintf(buf, cap, "%s", ctl->device);
}

/* {"device": ..., "tunnel_port": ...} to which a command adds its decoded fields. */
json_t *out_target_json(const struct ctl *ctl)
{
	json_t *o = json_pack("{s:o}", "device", out_jstr(ctl->device));

	if (o && ctl->tunnel >= 0)
		json_object_set_new(o, "tunnel_port", json_integer(ctl->tunnel));
	return o;
}
