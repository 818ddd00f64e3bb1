/*
 * Decoders of CXL output payloads that mbxctl shows: each parses bytes a
 * device returned (untrusted: every length checked) into a struct, and
 * renders the struct for humans or as JSON.
 */
#ifndef MBXCTL_DECODE_H
#define MBXCTL_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Little-endian readers for payload fields. */
static inline uint16_t decode_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t decode_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t decode_le64(const uint8_t *p)
{
	return (uint64_t)decode_le32(p) | (uint64_t)decode_le32(p + 4) << 32;
}

/* Identify (0001h) output, CXL r3.1 8.2.9.1.1. */
#define DECODE_IDENTIFY_SIZE    18
#define DECODE_COMPONENT_SWITCH 0x00
#define DECODE_COMPONENT_TYPE3  0x03

struct decode_identify {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint64_t serial;
	uint8_t max_msg_size; /* 2^n bytes */
	uint8_t component_type;
};

/* Identify Memory Device (4000h) output, CXL r3.1 8.2.9.9.1.1. */
#define DECODE_MEMDEV_SIZE    0x43 /* up to the QoS telemetry capabilities */
#define DECODE_MEMDEV_SIZE_DC 0x45 /* with the DC event log size (r3.1) */
#define DECODE_CAPACITY_UNIT  (256ull << 20)

struct decode_memdev {
	char fw_revision[17];
	uint64_t total_bytes;
	uint64_t volatile_bytes;
	uint64_t persistent_bytes;
	uint64_t partition_align_bytes;
	uint16_t event_log_size[4]; /* informational, warning, failure, fatal */
	uint32_t lsa_size;
	uint32_t poison_list_max; /* 24-bit field */
	uint16_t inject_poison_limit;
	uint8_t poison_caps;
	uint8_t qos_caps;
	bool have_dc;
	uint16_t dc_event_log_size;
};

/* Identify Switch Device (5100h) output, CXL r3.1 7.6.7.1.1. */
#define DECODE_SWITCH_SIZE 0x49

struct decode_switch {
	uint8_t ingress_port;
	uint8_t n_ports;
	uint8_t n_vcs;
	uint8_t active_ports[32]; /* bitmask */
	uint8_t active_vcs[32];
	uint16_t total_vppbs;
	uint16_t bound_vppbs;
	uint8_t hdm_decoders;
};

int decode_identify_generic(const uint8_t *p, size_t len, struct decode_identify *id);
int decode_identify_memdev(const uint8_t *p, size_t len, struct decode_memdev *m);
int decode_identify_switch(const uint8_t *p, size_t len, struct decode_switch *s);
const char *decode_identify_component(uint8_t type);
void decode_identify_print_generic(FILE *f, const struct decode_identify *id);
void decode_identify_print_memdev(FILE *f, const struct decode_memdev *m);
void decode_identify_print_switch(FILE *f, const struct decode_switch *s);
json_t *decode_identify_json_generic(const struct decode_identify *id);
json_t *decode_identify_json_memdev(const struct decode_memdev *m);
json_t *decode_identify_json_switch(const struct decode_switch *s);

/* Get Health Info (4200h) output, CXL r3.1 8.2.9.9.3.1. */
#define DECODE_HEALTH_SIZE  18
#define DECODE_TEMP_UNKNOWN 0xffff
#define DECODE_LIFE_UNKNOWN 0xff

struct decode_health {
	uint8_t health_status; /* bit 0 maintenance, 1 performance, 2 replacement */
	uint8_t media_status;
	uint8_t additional_status;
	uint8_t life_used;   /* percent, 0xff: not implemented */
	int16_t temperature; /* degrees Celsius; raw 0xffff: not implemented */
	bool temperature_known;
	uint32_t dirty_shutdowns;
	uint32_t corrected_volatile;
	uint32_t corrected_persistent;
};

int decode_health_parse(const uint8_t *p, size_t len, struct decode_health *h);
const char *decode_health_media(uint8_t media_status);
const char *decode_health_alert(uint8_t additional_status, int which);
void decode_health_print(FILE *f, const struct decode_health *h);
json_t *decode_health_json(const struct decode_health *h);

/* Get Supported Logs (0400h) and the Command Effects Log, CXL r3.1 8.2.9.5. */
#define DECODE_UUID_SIZE      16
#define DECODE_LOG_ENTRY_SIZE 20
#define DECODE_LOGS_HEADER    8
#define DECODE_CEL_ENTRY_SIZE 4
#define DECODE_EFFECTS_KNOWN  0x7f /* bits 0-6: what implementations agree on */

extern const uint8_t decode_cel_uuid[DECODE_UUID_SIZE];

struct decode_log {
	uint8_t uuid[DECODE_UUID_SIZE];
	uint32_t size;
};

int decode_cel_logs(const uint8_t *p, size_t len, struct decode_log **logs, size_t *n);
int decode_cel_find(const struct decode_log *logs, size_t n, uint32_t *size);
void decode_cel_uuid_str(const uint8_t uuid[DECODE_UUID_SIZE], char out[37]);
/* Names of the effects bits: one string per set bit, "unknown bit N" above bit 6. */
size_t decode_cel_effects(uint16_t effects, const char *names[16], char unknown[16][16]);
void decode_cel_print(FILE *f, const uint8_t *cel, size_t len);
json_t *decode_cel_json(const uint8_t *cel, size_t len);

#endif
