/* Identify (0001h), Identify Memory Device (4000h) and Identify Switch Device (5100h). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "decode.h"
#include "mbxctl.h"

/* Decodes the generic Identify every CCI answers. */
int decode_identify_generic(const uint8_t *p, size_t len, struct decode_identify *id)
{
	if (!p || len < DECODE_IDENTIFY_SIZE)
		return -EPROTO;
	id->vendor_id = decode_le16(p);
	id->device_id = decode_le16(p + 2);
	id->subsys_vendor_id = decode_le16(p + 4);
	id->subsys_id = decode_le16(p + 6);
	id->serial = decode_le64(p + 8);
	id->max_msg_size = p[16];
	id->component_type = p[17];
	return 0;
}

/* Names the component type of Identify. */
const char *decode_identify_component(uint8_t type)
{
	switch (type) {
	case DECODE_COMPONENT_SWITCH:
		return "CXL switch";
	case 0x01:
		return "CXL Type 1 device";
	case 0x02:
		return "CXL Type 2 device";
	case DECODE_COMPONENT_TYPE3:
		return "CXL Type 3 memory device";
	default:
		return "unknown component type";
	}
}

/* Copies the ASCII firmware revision, trimming NUL/space padding and hiding control bytes. */
static void decode_identify_fw(const uint8_t *p, char out[17])
{
	size_t n = 16;

	for (size_t i = 0; i < 16; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
		n--;
	out[n] = '\0';
}

/* Decodes Identify Memory Device; capacities become bytes. */
int decode_identify_memdev(const uint8_t *p, size_t len, struct decode_memdev *m)
{
	if (!p || len < DECODE_MEMDEV_SIZE)
		return -EPROTO;
	memset(m, 0, sizeof(*m));
	decode_identify_fw(p, m->fw_revision);
	m->total_bytes = decode_le64(p + 0x10) * DECODE_CAPACITY_UNIT;
	m->volatile_bytes = decode_le64(p + 0x18) * DECODE_CAPACITY_UNIT;
	m->persistent_bytes = decode_le64(p + 0x20) * DECODE_CAPACITY_UNIT;
	m->partition_align_bytes = decode_le64(p + 0x28) * DECODE_CAPACITY_UNIT;
	for (int i = 0; i < 4; i++)
		m->event_log_size[i] = decode_le16(p + 0x30 + 2 * i);
	m->lsa_size = decode_le32(p + 0x38);
	m->poison_list_max = (uint32_t)p[0x3c] | (uint32_t)p[0x3d] << 8 | (uint32_t)p[0x3e] << 16;
	m->inject_poison_limit = decode_le16(p + 0x3f);
	m->poison_caps = p[0x41];
	m->qos_caps = p[0x42];
	if (len >= DECODE_MEMDEV_SIZE_DC) {
		m->have_dc = true;
		m->dc_event_log_size = decode_le16(p + 0x43);
	}
	return 0;
}

/* Decodes Identify Switch Device. */
int decode_identify_switch(const uint8_t *p, size_t len, struct decode_switch *s)
{
	if (!p || len < DECODE_SWITCH_SIZE)
		return -EPROTO;
	s->ingress_port = p[0];
	s->n_ports = p[2];
	s->n_vcs = p[3];
	memcpy(s->active_ports, p + 4, 32);
	memcpy(s->active_vcs, p + 0x24, 32);
	s->total_vppbs = decode_le16(p + 0x44);
	s->bound_vppbs = decode_le16(p + 0x46);
	s->hdm_decoders = p[0x48];
	return 0;
}

/* Writes the set bits of a 256-bit mask as ranges: "0-3, 7". */
static void decode_identify_bits(const uint8_t mask[32], char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 256; i++) {
		int j = i;

		if (!(mask[i / 8] & (1u << (i % 8))))
			continue;
		while (j + 1 < 256 && (mask[(j + 1) / 8] & (1u << ((j + 1) % 8))))
			j++;
		if (used < cap)
			used += (size_t)snprintf(buf + used, cap - used, j > i ? "%s%d-%d" : "%s%d",
						 used ? ", " : "", i, j);
		i = j;
	}
	if (!buf[0])
		snprintf(buf, cap, "none");
}

static json_t *decode_identify_bits_json(const uint8_t mask[32])
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < 256; i++)
		if (mask[i / 8] & (1u << (i % 8)))
			json_array_append_new(arr, json_integer(i));
	return arr;
}

/* Prints the generic Identify. */
void decode_identify_print_generic(FILE *f, const struct decode_identify *id)
{
	char size[32];

	fprintf(f, "  component:           %s\n", decode_identify_component(id->component_type));
	fprintf(f, "  PCI vendor:device:   %04x:%04x\n", id->vendor_id, id->device_id);
	fprintf(f, "  PCI subsystem:       %04x:%04x\n", id->subsys_vendor_id, id->subsys_id);
	fprintf(f, "  serial number:       0x%016" PRIx64 "\n", id->serial);
	if (id->max_msg_size < 64) {
		out_size(size, sizeof(size), 1ull << id->max_msg_size);
		fprintf(f, "  max message size:    %s\n", size);
	}
}

/* Names the QoS telemetry capabilities (bit 0 egress congestion, bit 1 throughput reduction). */
static const char *decode_identify_qos(uint8_t caps)
{
	static const char *const names[4] = {
	    "none",
	    "egress port congestion",
	    "temporary throughput reduction",
	    "egress port congestion, temporary throughput reduction",
	};

	return names[caps & 3];
}

/* Prints Identify Memory Device with capacities in binary units. */
void decode_identify_print_memdev(FILE *f, const struct decode_memdev *m)
{
	char a[32], b[32], c[32];

	fprintf(f, "  firmware revision:   %s\n", m->fw_revision[0] ? m->fw_revision : "(empty)");
	out_size(a, sizeof(a), m->total_bytes);
	fprintf(f, "  total capacity:      %s\n", a);
	out_size(a, sizeof(a), m->volatile_bytes);
	out_size(b, sizeof(b), m->persistent_bytes);
	fprintf(f, "  volatile only:       %s\n  persistent only:     %s\n", a, b);
	if (m->partition_align_bytes) {
		out_size(c, sizeof(c), m->partition_align_bytes);
		fprintf(f, "  partition alignment: %s\n", c);
	} else {
		fprintf(f, "  partition alignment: not partitionable\n");
	}
	fprintf(f, "  event log sizes:     informational %u, warning %u, failure %u, fatal %u\n",
		m->event_log_size[0], m->event_log_size[1], m->event_log_size[2],
		m->event_log_size[3]);
	out_size(a, sizeof(a), m->lsa_size);
	fprintf(f, "  label storage area:  %s\n", a);
	fprintf(f, "  poison list:         up to %" PRIu32 " media error records\n",
		m->poison_list_max);
	fprintf(f, "  inject poison limit: %u%s\n", m->inject_poison_limit,
		m->inject_poison_limit ? "" : " (no limit reported)");
	fprintf(f, "  poison handling:     %s poison injection%s\n",
		m->poison_caps & 1 ? "persistent" : "non-persistent",
		m->poison_caps & 2 ? ", scan media" : "");
	fprintf(f, "  QoS telemetry:       %s\n", decode_identify_qos(m->qos_caps));
	if (m->have_dc)
		fprintf(f, "  DC event log size:   %u\n", m->dc_event_log_size);
}

/* Prints Identify Switch Device. */
void decode_identify_print_switch(FILE *f, const struct decode_switch *s)
{
	char bits[512];

	fprintf(f, "  ingress port:        %u\n", s->ingress_port);
	decode_identify_bits(s->active_ports, bits, sizeof(bits));
	fprintf(f, "  physical ports:      %u (active: %s)\n", s->n_ports, bits);
	decode_identify_bits(s->active_vcs, bits, sizeof(bits));
	fprintf(f, "  virtual CXL switches: %u (active: %s)\n", s->n_vcs, bits);
	fprintf(f, "  vPPBs:               %u total, %u bound\n", s->total_vppbs, s->bound_vppbs);
	fprintf(f, "  HDM decoders per USP: %u\n", s->hdm_decoders);
}

/* The generic Identify as JSON. */
json_t *decode_identify_json_generic(const struct decode_identify *id)
{
	char serial[24];

	snprintf(serial, sizeof(serial), "0x%016" PRIx64, id->serial);
	return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:I}", "component",
			 decode_identify_component(id->component_type), "component_type",
			 id->component_type, "vendor_id", id->vendor_id, "device_id", id->device_id,
			 "subsystem_vendor_id", id->subsys_vendor_id, "subsystem_id", id->subsys_id,
			 "serial", serial, "max_message_bytes",
			 (json_int_t)(id->max_msg_size < 63 ? 1ll << id->max_msg_size : 0));
}

/* Identify Memory Device as JSON, sizes in bytes. */
json_t *decode_identify_json_memdev(const struct decode_memdev *m)
{
	json_t *o = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:{s:i, s:i, s:i, s:i}, s:I, s:I, s:i, s:b, s:b, s:b, s:b}",
	    "firmware_revision", m->fw_revision, "total_capacity_bytes", (json_int_t)m->total_bytes,
	    "volatile_capacity_bytes", (json_int_t)m->volatile_bytes, "persistent_capacity_bytes",
	    (json_int_t)m->persistent_bytes, "partition_alignment_bytes",
	    (json_int_t)m->partition_align_bytes, "event_log_sizes", "informational",
	    m->event_log_size[0], "warning", m->event_log_size[1], "failure", m->event_log_size[2],
	    "fatal", m->event_log_size[3], "lsa_size_bytes", (json_int_t)m->lsa_size,
	    "poison_list_max_records", (json_int_t)m->poison_list_max, "inject_poison_limit",
	    m->inject_poison_limit, "injects_persistent_poison", (m->poison_caps & 1) != 0,
	    "scan_media_supported", (m->poison_caps & 2) != 0, "qos_egress_port_congestion",
	    (m->qos_caps & 1) != 0, "qos_temporary_throughput_reduction", (m->qos_caps & 2) != 0);

	if (o && m->have_dc)
		json_object_set_new(o, "dc_event_log_size", json_integer(m->dc_event_log_size));
	return o;
}

/* Identify Switch Device as JSON. */
json_t *decode_identify_json_switch(const struct decode_switch *s)
{
	return json_pack("{s:i, s:i, s:o, s:i, s:o, s:i, s:i, s:i}", "ingress_port",
			 s->ingress_port, "physical_ports", s->n_ports, "active_ports",
			 decode_identify_bits_json(s->active_ports), "vcs_count", s->n_vcs,
			 "active_vcs", decode_identify_bits_json(s->active_vcs), "total_vppbs",
			 s->total_vppbs, "bound_vppbs", s->bound_vppbs, "hdm_decoders_per_usp",
			 s->hdm_decoders);
}
