/*
 * The sim's CXL Type 3 memory device: a 16 GiB device with event logs, a
 * poison list, health and alert state, a timestamp, three Features, a timed
 * Sanitize and firmware slots updated by Transfer FW and Activate FW.
 * Payload layouts follow CXL r3.1 section 8.2.9 (as encoded in Linux
 * drivers/cxl/cxlmem.h and QEMU hw/cxl/cxl-mailbox-utils.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim-model.h"

const char sim_memdev_model_name[] = "mbxd-sim CXL Type 3 memory device";

#define SIM_MD_VENDOR 0x1b36 /* the PCI vendor id of emulated devices */
#define SIM_MD_DEVICE 0x5a01
#define SIM_MD_FW     "SIM-1.4.2"
#define SIM_MD_FW_OLD "SIM-1.3.9"

/* Firmware update (CXL r3.1 8.2.9.3). */
#define SIM_OP_TRANSFER_FW     0x0201
#define SIM_FW_INFO_SIZE       0x50
#define SIM_FW_HEADER          128  /* Transfer FW's header before the image bytes */
#define SIM_FW_UNIT            128u /* offsets are in units of 128 bytes */
#define SIM_FW_REV_SIZE        16
#define SIM_FW_PART_TIMEOUT_NS (30ull * 1000000000u) /* held parts are dropped after */
#define SIM_FW_FULL            0x00
#define SIM_FW_INITIATE        0x01
#define SIM_FW_CONTINUE        0x02
#define SIM_FW_END             0x03
#define SIM_FW_ABORT           0x04

/* Capacities are in multiples of 256 MiB (CXL r3.1 Table 8-127). */
#define SIM_CAP_UNIT       (256ull << 20)
#define SIM_MD_CAP_UNITS   64ull /* 16 GiB */
#define SIM_MD_BYTES       (SIM_MD_CAP_UNITS * SIM_CAP_UNIT)
#define SIM_MD_ALIGN_UNITS 4ull /* partition alignment: 1 GiB */

/* Event logs: informational, warning, failure, fatal (CXL r3.1 Table 8-51). */
#define SIM_EVENT_LOGS          4
#define SIM_EVENT_LOG_CAP       8
#define SIM_EVENT_RECORD        128
#define SIM_EVENT_HEADER        48
#define SIM_EVENTS_OUT_HEADER   32
#define SIM_CLEAR_EVENTS_HEADER 6

/* Poison list (CXL r3.1 8.2.9.9.4). */
#define SIM_POISON_MAX             256
#define SIM_POISON_INJECT_LIMIT    64
#define SIM_POISON_OUT_HEADER      32
#define SIM_POISON_RECORD          16
#define SIM_POISON_SOURCE_INTERNAL 1
#define SIM_POISON_SOURCE_INJECTED 3
#define SIM_CACHELINE              64u

/* Features (CXL r3.1 8.2.9.6). */
#define SIM_FEATURE_ENTRY       48
#define SIM_FEATURES_OUT_HEADER 8
#define SIM_SET_FEATURE_HEADER  32
#define SIM_FEATURE_CHANGEABLE  (1u << 0)
#define SIM_FEATURE_DEFAULT_SEL (1u << 5)
#define SIM_N_FEATURES          3u

struct sim_event_log {
	unsigned n;
	uint8_t rec[SIM_EVENT_LOG_CAP][SIM_EVENT_RECORD];
};

struct sim_poison {
	uint64_t dpa;
	uint8_t source;
};

/* Programmable warning thresholds (CXL r3.1 Table 8-131). */
struct sim_alerts {
	uint8_t valid; /* which programmable warnings are set */
	uint8_t life_used_warn;
	uint16_t over_temp_warn;
	uint16_t under_temp_warn;
	uint16_t cvme_warn; /* corrected volatile memory errors */
	uint16_t cpme_warn; /* corrected persistent memory errors */
};

/* Firmware slots, and the transfer held between Initiate and End or running. */
struct sim_fw {
	uint8_t slots;
	uint8_t active;
	uint8_t staged; /* activated for the next cold reset; 0: none */
	char rev[SIM_FW_SLOTS_MAX][SIM_FW_REV_SIZE];
	uint64_t transfer_ms;
	bool held; /* parts received since an Initiate */
	uint64_t held_bytes;
	uint64_t last_part_ns;
	uint8_t head[SIM_FW_REV_SIZE]; /* the image's first bytes */
	uint8_t target;                /* the slot the running transfer writes */
	char target_rev[SIM_FW_REV_SIZE];
	unsigned transfers; /* images handed over, for "SIM FW <n>" */
};

#define SIM_MEMDEV_CMDS 24 /* entries of sim_memdev_cmds, checked below */

struct sim_memdev {
	struct sim_cci cci;
	struct sim_cmd cmds[SIM_MEMDEV_CMDS]; /* the table without omit_opcode, when set */
	struct sim_fw fw;
	uint64_t sanitize_ms;
	bool ts_set;
	uint64_t ts_value;  /* ns since the epoch, as last set */
	uint64_t ts_set_at; /* monotonic ns when set */
	struct sim_event_log logs[SIM_EVENT_LOGS];
	uint16_t next_handle;
	struct sim_poison poison[SIM_POISON_MAX];
	unsigned n_poison;
	unsigned n_injected;
	struct sim_alerts alerts;
	uint8_t scrub_cycle_hr;
	uint8_t scrub_flags;
	uint8_t refresh_mode;
	uint8_t refresh_mode_next; /* applied at the next cold reset */
	uint32_t fill_pattern;
	uint32_t fill_count;
	/* Get Supported Features' list: each Feature once, or twice (features_twice). */
	size_t n_feature_entries;
	uint16_t feature_effects[2 * SIM_N_FEATURES]; /* what each entry reports */
};

/* Health the device reports; fixed, as the media never ages here. */
#define SIM_MD_LIFE_USED       3
#define SIM_MD_TEMP_C          34
#define SIM_MD_CVME            2
#define SIM_MD_CPME            0
#define SIM_MD_LIFE_CRIT       75
#define SIM_MD_OVER_TEMP_CRIT  85
#define SIM_MD_UNDER_TEMP_CRIT ((uint16_t)-5)

static struct sim_memdev *sim_md(struct sim_cci *cci)
{
	return cci->model;
}

/* ---- events ---- */

/* Event record UUIDs (CXL r3.1 Tables 8-45, 8-46, 8-47). */
static const uint8_t sim_uuid_gen_media[SIM_UUID_SIZE] = {
    0xfb, 0xcd, 0x0a, 0x77, 0xc2, 0x60, 0x41, 0x7f, 0x85, 0xa9, 0x08, 0x8b, 0x16, 0x21, 0xeb, 0xa6,
};
static const uint8_t sim_uuid_dram[SIM_UUID_SIZE] = {
    0x60, 0x1d, 0xcb, 0xb3, 0x9c, 0x06, 0x4e, 0xab, 0xb8, 0xaf, 0x4e, 0x9b, 0xfb, 0x5c, 0x96, 0x24,
};
static const uint8_t sim_uuid_mem_module[SIM_UUID_SIZE] = {
    0xfe, 0x92, 0x74, 0x75, 0xdd, 0x59, 0x43, 0x39, 0xa5, 0x86, 0x79, 0xba, 0xb1, 0x13, 0xb7, 0x74,
};

/* Event record flags byte 0 (CXL r3.1 Table 8-43): severity in bits 1:0. */
#define SIM_EVENT_SEV_INFO     0
#define SIM_EVENT_SEV_WARN     1
#define SIM_EVENT_MAINT_NEEDED (1u << 3)

/* 2024-06-01T00:00:00Z in ns: seeded records predate any Set Timestamp. */
#define SIM_SEED_TIME 1717200000000000000ull

/* Appends a record to log with the common header; returns its body or NULL when full. */
static uint8_t *sim_event_add(struct sim_memdev *md, unsigned log, const uint8_t *uuid,
			      uint8_t flags, uint64_t timestamp)
{
	struct sim_event_log *l = &md->logs[log];
	uint8_t *rec;

	if (l->n == SIM_EVENT_LOG_CAP)
		return NULL;
	rec = l->rec[l->n++];
	memset(rec, 0, SIM_EVENT_RECORD);
	memcpy(rec, uuid, SIM_UUID_SIZE);
	rec[16] = SIM_EVENT_RECORD;
	rec[17] = flags;
	sim_put_le16(rec + 20, md->next_handle++);
	sim_put_le64(rec + 24, timestamp);
	return rec + SIM_EVENT_HEADER;
}

/* Writes the 18-byte Get Health Info payload (also part of Memory Module events). */
static void sim_health_encode(const struct sim_memdev *md, uint8_t *o);

/* Seeds the logs with what a device that has run a while would hold. */
static void sim_events_seed(struct sim_memdev *md)
{
	uint8_t *b;

	/* Memory Module Event: temperature change, with the health snapshot. */
	b = sim_event_add(md, 0, sim_uuid_mem_module, SIM_EVENT_SEV_INFO, SIM_SEED_TIME);
	b[0] = 0x03; /* device event type: temperature change */
	sim_health_encode(md, b + 1);
	/* General Media Event: a corrected ECC error found by patrol scrub. */
	b = sim_event_add(md, 0, sim_uuid_gen_media, SIM_EVENT_SEV_INFO,
			  SIM_SEED_TIME + 3600000000000ull);
	sim_put_le64(b, 0x1000040);
	b[8] = 0x00;                  /* descriptor: corrected, not a threshold event */
	b[9] = 0x00;                  /* memory event type: ECC error */
	b[10] = 0x05;                 /* transaction: internal media scrub */
	sim_put_le16(b + 11, 0x0003); /* channel and rank valid */
	b[13] = 1;                    /* channel */
	b[14] = 0;                    /* rank */
	/* DRAM Event: corrected errors on one row crossed the threshold. */
	b = sim_event_add(md, 1, sim_uuid_dram, SIM_EVENT_SEV_WARN | SIM_EVENT_MAINT_NEEDED,
			  SIM_SEED_TIME + 7200000000000ull);
	sim_put_le64(b, 0x2000080);
	b[8] = 0x02;                  /* descriptor: threshold event */
	b[9] = 0x00;                  /* ECC error */
	b[10] = 0x05;                 /* internal media scrub */
	sim_put_le16(b + 11, 0x007b); /* channel, rank, bank group, bank, row, column valid */
	b[13] = 1;
	b[14] = 0;
	b[18] = 2;    /* bank group */
	b[19] = 5;    /* bank */
	b[20] = 0x34; /* row, 24 bits */
	b[21] = 0x12;
	sim_put_le16(b + 23, 512); /* column */
}

/* Get Event Records (0100h): as many records as fit, oldest first, CXL r3.1 Table 8-50. */
static uint16_t sim_cmd_get_events(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);
	const struct sim_event_log *l;
	unsigned fit, n;

	if (r->in[0] >= SIM_EVENT_LOGS) /* 4 is the Dynamic Capacity log: not modelled */
		return CXL_RC_INVALID_INPUT;
	l = &md->logs[r->in[0]];
	fit = (unsigned)((r->out_cap - SIM_EVENTS_OUT_HEADER) / SIM_EVENT_RECORD);
	n = l->n < fit ? l->n : fit;
	memset(r->out, 0, SIM_EVENTS_OUT_HEADER);
	r->out[0] = n < l->n ? 0x02 : 0x00; /* bit 1: more event records */
	sim_put_le16(r->out + 20, (uint16_t)n);
	memcpy(r->out + SIM_EVENTS_OUT_HEADER, l->rec, (size_t)n * SIM_EVENT_RECORD);
	r->out_len = SIM_EVENTS_OUT_HEADER + (size_t)n * SIM_EVENT_RECORD;
	return CXL_RC_SUCCESS;
}

/* Index of the record with handle in l, or -1. */
static int sim_event_find(const struct sim_event_log *l, uint16_t handle)
{
	for (unsigned i = 0; i < l->n; i++)
		if (sim_get_le16(l->rec[i] + 20) == handle)
			return (int)i;
	return -1;
}

/* Clear Event Records (0101h): all or by handle, all-or-nothing, CXL r3.1 Table 8-52. */
static uint16_t sim_cmd_clear_events(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);
	uint8_t log = r->in[0], flags = r->in[1], n = r->in[2];
	struct sim_event_log *l;

	if (r->in_len != SIM_CLEAR_EVENTS_HEADER + 2u * n)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	if (log >= SIM_EVENT_LOGS || (flags & ~1u) || (flags & 1u ? n != 0 : n == 0))
		return CXL_RC_INVALID_INPUT;
	l = &md->logs[log];
	if (flags & 1u) {
		l->n = 0;
		return CXL_RC_SUCCESS;
	}
	for (unsigned i = 0; i < n; i++)
		if (sim_event_find(l, sim_get_le16(r->in + SIM_CLEAR_EVENTS_HEADER + 2 * i)) < 0)
			return CXL_RC_INVALID_HANDLE;
	for (unsigned i = 0; i < n; i++) {
		int k = sim_event_find(l, sim_get_le16(r->in + SIM_CLEAR_EVENTS_HEADER + 2 * i));

		if (k < 0) /* the same handle named twice */
			continue;
		memmove(l->rec[k], l->rec[k + 1],
			(size_t)(l->n - (unsigned)k - 1) * SIM_EVENT_RECORD);
		l->n--;
	}
	return CXL_RC_SUCCESS;
}

/* ---- firmware and timestamp ---- */

/* Get FW Info (0200h): slots, active and staged slot, each slot's revision, Table 8-56. */
static uint16_t sim_cmd_fw_info(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_fw *fw = &sim_md(cci)->fw;

	memset(r->out, 0, SIM_FW_INFO_SIZE);
	r->out[0] = fw->slots;
	r->out[1] = (uint8_t)(fw->active | fw->staged << 3); /* bits 2:0 active, 5:3 staged */
	r->out[2] = 0x01;                                    /* online activation supported */
	for (unsigned i = 0; i < fw->slots; i++)
		memcpy(r->out + 0x10 + SIM_FW_REV_SIZE * i, fw->rev[i], SIM_FW_REV_SIZE);
	r->out_len = SIM_FW_INFO_SIZE;
	return CXL_RC_SUCCESS;
}

/* Whether slot may receive an image: a slot the device has, and not the running one. */
static bool sim_fw_slot_writable(const struct sim_fw *fw, uint8_t slot)
{
	return slot >= 1 && slot <= fw->slots && slot != fw->active;
}

/* Keeps the image's first bytes, at offset in it, for the revision it will carry. */
static void sim_fw_keep_head(struct sim_fw *fw, uint64_t offset, const uint8_t *data, size_t len)
{
	size_t n;

	if (offset >= SIM_FW_REV_SIZE)
		return;
	n = SIM_FW_REV_SIZE - (size_t)offset;
	memcpy(fw->head + offset, data, len < n ? len : n);
}

/*
 * The revision an image carries: its leading printable ASCII bytes (up to
 * 16), or "SIM FW <n>" for an image that does not start with text.
 */
static void sim_fw_revision(struct sim_fw *fw, uint64_t image_len, char rev[SIM_FW_REV_SIZE])
{
	size_t n = 0, max = image_len < SIM_FW_REV_SIZE ? (size_t)image_len : SIM_FW_REV_SIZE;

	memset(rev, 0, SIM_FW_REV_SIZE);
	while (n < max && fw->head[n] >= 0x20 && fw->head[n] < 0x7f)
		n++;
	fw->transfers++;
	if (n > 0)
		memcpy(rev, fw->head, n);
	else
		snprintf(rev, SIM_FW_REV_SIZE, "SIM FW %u", fw->transfers);
}

/* The transfer done: the target slot holds the new image. */
static void sim_fw_transfer_complete(struct sim_cci *cci)
{
	struct sim_fw *fw = &sim_md(cci)->fw;

	memcpy(fw->rev[fw->target - 1], fw->target_rev, SIM_FW_REV_SIZE);
}

/* Hands a whole image of image_len bytes to slot: a background operation. */
static uint16_t sim_fw_start(struct sim_cci *cci, uint8_t slot, uint64_t image_len)
{
	struct sim_fw *fw = &sim_md(cci)->fw;

	fw->target = slot;
	sim_fw_revision(fw, image_len, fw->target_rev);
	sim_bg_start(cci, SIM_OP_TRANSFER_FW, fw->transfer_ms, false, sim_fw_transfer_complete);
	return CXL_RC_BACKGROUND_STARTED;
}

/* Drops parts held longer than SIM_FW_PART_TIMEOUT_NS without a next one. */
static void sim_fw_expire(struct sim_fw *fw)
{
	if (fw->held && sim_now_ns() - fw->last_part_ns > SIM_FW_PART_TIMEOUT_NS)
		fw->held = false;
}

/* Full Transfer (00h): the whole image in one message. */
static uint16_t sim_fw_full(struct sim_cci *cci, uint8_t slot, const uint8_t *data, size_t len)
{
	struct sim_fw *fw = &sim_md(cci)->fw;

	if (fw->held)
		return CXL_RC_FW_TRANSFER_IN_PROGRESS;
	if (!sim_fw_slot_writable(fw, slot))
		return CXL_RC_INVALID_SLOT;
	if (len == 0)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	memset(fw->head, 0, SIM_FW_REV_SIZE);
	sim_fw_keep_head(fw, 0, data, len);
	return sim_fw_start(cci, slot, len);
}

/* Initiate (01h): the first part, at offset 0, a multiple of 128 bytes. */
static uint16_t sim_fw_initiate(struct sim_fw *fw, uint32_t offset, const uint8_t *data, size_t len)
{
	if (fw->held)
		return CXL_RC_FW_TRANSFER_IN_PROGRESS;
	if (offset != 0)
		return CXL_RC_INVALID_INPUT;
	if (len == 0 || len % SIM_FW_UNIT)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	memset(fw->head, 0, SIM_FW_REV_SIZE);
	sim_fw_keep_head(fw, 0, data, len);
	fw->held = true;
	fw->held_bytes = len;
	fw->last_part_ns = sim_now_ns();
	return CXL_RC_SUCCESS;
}

/*
 * Continue (02h) and End (03h): the part must start where the last one
 * ended, or the whole transfer is dropped (09h); End names the slot and
 * hands the image over in the background.
 */
static uint16_t sim_fw_next(struct sim_cci *cci, bool end, uint8_t slot, uint32_t offset,
			    const uint8_t *data, size_t len)
{
	struct sim_fw *fw = &sim_md(cci)->fw;

	if (!fw->held)
		return CXL_RC_INVALID_INPUT;
	if ((uint64_t)offset * SIM_FW_UNIT != fw->held_bytes) {
		fw->held = false;
		return CXL_RC_FW_TRANSFER_OUT_OF_ORDER;
	}
	if (len == 0 || (!end && len % SIM_FW_UNIT))
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	if (end && !sim_fw_slot_writable(fw, slot))
		return CXL_RC_INVALID_SLOT;
	sim_fw_keep_head(fw, fw->held_bytes, data, len);
	fw->held_bytes += len;
	fw->last_part_ns = sim_now_ns();
	if (!end)
		return CXL_RC_SUCCESS;
	fw->held = false;
	return sim_fw_start(cci, slot, fw->held_bytes);
}

/* Transfer FW (0201h): a 128-byte header, then image bytes, CXL r3.1 Table 8-57. */
static uint16_t sim_cmd_transfer_fw(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_fw *fw = &sim_md(cci)->fw;
	uint8_t action = r->in[0], slot = r->in[1];
	uint32_t offset = sim_get_le32(r->in + 4);
	const uint8_t *data = r->in + SIM_FW_HEADER;
	size_t len = r->in_len - SIM_FW_HEADER;

	sim_fw_expire(fw);
	switch (action) {
	case SIM_FW_FULL:
		return sim_fw_full(cci, slot, data, len);
	case SIM_FW_INITIATE:
		return sim_fw_initiate(fw, offset, data, len);
	case SIM_FW_CONTINUE:
	case SIM_FW_END:
		return sim_fw_next(cci, action == SIM_FW_END, slot, offset, data, len);
	case SIM_FW_ABORT:
		fw->held = false; /* with nothing held it is a no-op */
		return CXL_RC_SUCCESS;
	default:
		return CXL_RC_INVALID_INPUT;
	}
}

/*
 * Activate FW (0202h), CXL r3.1 Table 8-58: online (00h) the slot runs now;
 * offline (01h) it is staged for the next cold reset. The slot must hold an
 * image and not be the active one; not while a transfer runs.
 */
static uint16_t sim_cmd_activate_fw(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_fw *fw = &sim_md(cci)->fw;
	uint8_t action = r->in[0], slot = r->in[1];

	if (cci->bg.running && cci->bg.opcode == SIM_OP_TRANSFER_FW)
		return CXL_RC_BUSY;
	if (action > 1)
		return CXL_RC_INVALID_INPUT;
	if (!sim_fw_slot_writable(fw, slot) || fw->rev[slot - 1][0] == '\0')
		return CXL_RC_INVALID_SLOT;
	if (action == 0) {
		fw->active = slot;
		if (fw->staged == slot)
			fw->staged = 0;
	} else {
		fw->staged = slot;
	}
	return CXL_RC_SUCCESS;
}

/* Get Timestamp (0300h): 0 until set, then the set value advancing in ns. */
static uint16_t sim_cmd_get_timestamp(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);
	uint64_t ts = md->ts_set ? md->ts_value + (sim_now_ns() - md->ts_set_at) : 0;

	sim_put_le64(r->out, ts);
	r->out_len = 8;
	return CXL_RC_SUCCESS;
}

/* Set Timestamp (0301h). */
static uint16_t sim_cmd_set_timestamp(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);

	md->ts_set = true;
	md->ts_value = sim_get_le64(r->in);
	md->ts_set_at = sim_now_ns();
	return CXL_RC_SUCCESS;
}

/* ---- identify, partitions, health, alerts ---- */

/* Identify Memory Device (4000h), CXL r3.1 Table 8-127. */
static uint16_t sim_cmd_identify_memdev(struct sim_cci *cci, struct sim_req *r)
{
	uint8_t *o = r->out;

	const struct sim_memdev *md = sim_md(cci);

	memset(o, 0, 0x45);
	memcpy(o, md->fw.rev[md->fw.active - 1], SIM_FW_REV_SIZE);
	sim_put_le64(o + 0x10, SIM_MD_CAP_UNITS); /* total */
	sim_put_le64(o + 0x18, 0);                /* volatile only */
	sim_put_le64(o + 0x20, 0);                /* persistent only */
	sim_put_le64(o + 0x28, SIM_MD_ALIGN_UNITS);
	for (unsigned i = 0; i < SIM_EVENT_LOGS; i++) /* event log sizes, in records */
		sim_put_le16(o + 0x30 + 2 * i, SIM_EVENT_LOG_CAP);
	sim_put_le32(o + 0x38, 0);         /* no label storage area */
	o[0x3c] = (uint8_t)SIM_POISON_MAX; /* poison list max media error records, 24 bits */
	o[0x3d] = (uint8_t)(SIM_POISON_MAX >> 8);
	sim_put_le16(o + 0x3f, SIM_POISON_INJECT_LIMIT);
	r->out_len = 0x45;
	return CXL_RC_SUCCESS;
}

/* Get Partition Info (4100h): 8 GiB volatile, 8 GiB persistent, no change pending. */
static uint16_t sim_cmd_partition_info(struct sim_cci *cci, struct sim_req *r)
{
	(void)cci;
	memset(r->out, 0, 32);
	sim_put_le64(r->out, SIM_MD_CAP_UNITS / 2);
	sim_put_le64(r->out + 8, SIM_MD_CAP_UNITS / 2);
	r->out_len = 32;
	return CXL_RC_SUCCESS;
}

/* Additional status (CXL r3.1 Table 8-133): warnings the programmed thresholds raise. */
static uint8_t sim_health_additional(const struct sim_memdev *md)
{
	const struct sim_alerts *a = &md->alerts;
	uint8_t s = 0;

	if ((a->valid & 0x01) && SIM_MD_LIFE_USED >= a->life_used_warn)
		s |= 0x01;
	if ((a->valid & 0x02) && SIM_MD_TEMP_C >= (int16_t)a->over_temp_warn)
		s |= 0x01 << 2;
	if ((a->valid & 0x04) && SIM_MD_TEMP_C <= (int16_t)a->under_temp_warn)
		s |= 0x01 << 2;
	if ((a->valid & 0x08) && SIM_MD_CVME >= a->cvme_warn)
		s |= 0x10;
	if ((a->valid & 0x10) && SIM_MD_CPME >= a->cpme_warn)
		s |= 0x20;
	return s;
}

static void sim_health_encode(const struct sim_memdev *md, uint8_t *o)
{
	memset(o, 0, 18);
	o[0] = 0; /* health status: no maintenance needed, not degraded */
	o[1] = 0; /* media status: normal */
	o[2] = sim_health_additional(md);
	o[3] = SIM_MD_LIFE_USED;
	sim_put_le16(o + 4, SIM_MD_TEMP_C);
	sim_put_le32(o + 6, 0); /* dirty shutdown count */
	sim_put_le32(o + 10, SIM_MD_CVME);
	sim_put_le32(o + 14, SIM_MD_CPME);
}

/* Get Health Info (4200h), CXL r3.1 Table 8-130. */
static uint16_t sim_cmd_health(struct sim_cci *cci, struct sim_req *r)
{
	sim_health_encode(sim_md(cci), r->out);
	r->out_len = 18;
	return CXL_RC_SUCCESS;
}

/* Get Alert Configuration (4201h), CXL r3.1 Table 8-131. */
static uint16_t sim_cmd_get_alerts(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_alerts *a = &sim_md(cci)->alerts;
	uint8_t *o = r->out;

	memset(o, 0, 16);
	o[0] = a->valid;
	o[1] = 0x1f; /* every warning threshold is programmable */
	o[2] = SIM_MD_LIFE_CRIT;
	o[3] = a->life_used_warn;
	sim_put_le16(o + 4, SIM_MD_OVER_TEMP_CRIT);
	sim_put_le16(o + 6, SIM_MD_UNDER_TEMP_CRIT);
	sim_put_le16(o + 8, a->over_temp_warn);
	sim_put_le16(o + 10, a->under_temp_warn);
	sim_put_le16(o + 12, a->cvme_warn);
	sim_put_le16(o + 14, a->cpme_warn);
	r->out_len = 16;
	return CXL_RC_SUCCESS;
}

/* Whether the warning thresholds in a Set Alert Configuration input are sane. */
static bool sim_alerts_valid(const uint8_t *in, uint8_t apply)
{
	int16_t over = (int16_t)sim_get_le16(in + 4), under = (int16_t)sim_get_le16(in + 6);

	if ((apply & 0x01) && in[2] >= SIM_MD_LIFE_CRIT)
		return false;
	if ((apply & 0x02) && over >= SIM_MD_OVER_TEMP_CRIT)
		return false;
	if ((apply & 0x04) && under <= (int16_t)SIM_MD_UNDER_TEMP_CRIT)
		return false;
	return true;
}

/* Set Alert Configuration (4202h): enable or disable each warning, CXL r3.1 Table 8-132. */
static uint16_t sim_cmd_set_alerts(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_alerts *a = &sim_md(cci)->alerts;
	uint8_t act = r->in[0], en = r->in[1];

	if ((act | en) & 0xe0 || (en & ~act) || !sim_alerts_valid(r->in, act & en))
		return CXL_RC_INVALID_INPUT;
	a->valid = (uint8_t)((a->valid & ~act) | (act & en));
	if (act & en & 0x01)
		a->life_used_warn = r->in[2];
	if (act & en & 0x02)
		a->over_temp_warn = sim_get_le16(r->in + 4);
	if (act & en & 0x04)
		a->under_temp_warn = sim_get_le16(r->in + 6);
	if (act & en & 0x08)
		a->cvme_warn = sim_get_le16(r->in + 8);
	if (act & en & 0x10)
		a->cpme_warn = sim_get_le16(r->in + 10);
	return CXL_RC_SUCCESS;
}

/* ---- poison ---- */

/* Index of the poisoned cacheline at dpa, or -1. */
static int sim_poison_find(const struct sim_memdev *md, uint64_t dpa)
{
	for (unsigned i = 0; i < md->n_poison; i++)
		if (md->poison[i].dpa == dpa)
			return (int)i;
	return -1;
}

/* Checks a device physical address: cacheline aligned and on the media. */
static uint16_t sim_dpa_check(uint64_t dpa)
{
	if (dpa & (SIM_CACHELINE - 1))
		return CXL_RC_INVALID_INPUT;
	if (dpa >= SIM_MD_BYTES)
		return CXL_RC_INVALID_PHYSICAL_ADDRESS;
	return CXL_RC_SUCCESS;
}

/* Get Poison List (4300h): records in [address, address + length * 64), CXL r3.1 Table 8-138. */
static uint16_t sim_cmd_get_poison(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_memdev *md = sim_md(cci);
	uint64_t start = sim_get_le64(r->in), units = sim_get_le64(r->in + 8);
	unsigned fit = (unsigned)((r->out_cap - SIM_POISON_OUT_HEADER) / SIM_POISON_RECORD), n = 0;
	bool more = false;

	if ((start & (SIM_CACHELINE - 1)) || units == 0 || start >= SIM_MD_BYTES ||
	    units > (SIM_MD_BYTES - start) / SIM_CACHELINE)
		return CXL_RC_INVALID_INPUT;
	for (unsigned i = 0; i < md->n_poison; i++) {
		const struct sim_poison *p = &md->poison[i];
		uint8_t *rec;

		if (p->dpa < start || p->dpa - start >= units * SIM_CACHELINE)
			continue;
		if (n == fit) {
			more = true;
			break;
		}
		rec = r->out + SIM_POISON_OUT_HEADER + (size_t)n++ * SIM_POISON_RECORD;
		memset(rec, 0, SIM_POISON_RECORD);
		sim_put_le64(rec, p->dpa | p->source); /* source in bits 2:0 */
		sim_put_le32(rec + 8, 1);              /* one cacheline */
	}
	memset(r->out, 0, SIM_POISON_OUT_HEADER);
	r->out[0] = more ? 0x01 : 0x00; /* bit 0: more media error records */
	sim_put_le16(r->out + 10, (uint16_t)n);
	r->out_len = SIM_POISON_OUT_HEADER + (size_t)n * SIM_POISON_RECORD;
	return CXL_RC_SUCCESS;
}

/* Inject Poison (4301h): poisons one cacheline, CXL r3.1 Table 8-139. */
static uint16_t sim_cmd_inject_poison(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);
	uint64_t dpa = sim_get_le64(r->in);
	uint16_t rc = sim_dpa_check(dpa);

	if (rc != CXL_RC_SUCCESS || sim_poison_find(md, dpa) >= 0)
		return rc;
	if (md->n_injected >= SIM_POISON_INJECT_LIMIT || md->n_poison >= SIM_POISON_MAX)
		return CXL_RC_INJECT_POISON_LIMIT;
	md->poison[md->n_poison++] = (struct sim_poison){dpa, SIM_POISON_SOURCE_INJECTED};
	md->n_injected++;
	return CXL_RC_SUCCESS;
}

/* Clear Poison (4302h): writes the 64 bytes given, which clears the poison. */
static uint16_t sim_cmd_clear_poison(struct sim_cci *cci, struct sim_req *r)
{
	struct sim_memdev *md = sim_md(cci);
	uint64_t dpa = sim_get_le64(r->in);
	uint16_t rc = sim_dpa_check(dpa);
	int k;

	if (rc != CXL_RC_SUCCESS)
		return rc;
	k = sim_poison_find(md, dpa);
	if (k < 0) /* clearing a clean line is a plain write */
		return CXL_RC_SUCCESS;
	if (md->poison[k].source == SIM_POISON_SOURCE_INJECTED)
		md->n_injected--;
	md->poison[k] = md->poison[--md->n_poison];
	return CXL_RC_SUCCESS;
}

/* ---- sanitize ---- */

/* Sanitize done: user data, and with it every poisoned line, is gone. */
static void sim_sanitize_complete(struct sim_cci *cci)
{
	struct sim_memdev *md = sim_md(cci);

	md->n_poison = 0;
	md->n_injected = 0;
	md->fill_pattern = 0;
}

/* Sanitize (4400h): a background operation of sanitize_ms, CXL r3.1 8.2.9.9.5.1. */
static uint16_t sim_cmd_sanitize(struct sim_cci *cci, struct sim_req *r)
{
	(void)r;
	sim_bg_start(cci, CXL_OP_SANITIZE, sim_md(cci)->sanitize_ms, true, sim_sanitize_complete);
	return CXL_RC_BACKGROUND_STARTED;
}

/* ---- features ---- */

struct sim_feature {
	uint8_t uuid[SIM_UUID_SIZE];
	uint16_t get_size;
	uint16_t set_size;
	uint32_t flags;
	uint8_t version; /* of both Get and Set Feature data */
	uint16_t effects;
	/* Writes get_size bytes: current values, or defaults when dflt. */
	void (*get)(const struct sim_memdev *md, uint8_t *o, bool dflt);
	/* Applies set_size bytes; a CXL return code. */
	uint16_t (*set)(struct sim_memdev *md, const uint8_t *in);
};

#define SIM_SCRUB_DEFAULT_HR 12
#define SIM_SCRUB_MIN_HR     1

/* Device Patrol Scrub Control readable attributes, CXL r3.1 Table 8-222. */
static void sim_feat_scrub_get(const struct sim_memdev *md, uint8_t *o, bool dflt)
{
	o[0] = 0x01; /* scrub cycle changeable */
	o[1] = dflt ? SIM_SCRUB_DEFAULT_HR : md->scrub_cycle_hr;
	o[2] = SIM_SCRUB_MIN_HR;
	o[3] = dflt ? 0x01 : md->scrub_flags; /* bit 0: enabled */
}

/* Patrol Scrub writable attributes: cycle in hours, enable flag. */
static uint16_t sim_feat_scrub_set(struct sim_memdev *md, const uint8_t *in)
{
	if (in[0] < SIM_SCRUB_MIN_HR || (in[1] & ~1u))
		return CXL_RC_INVALID_INPUT;
	md->scrub_cycle_hr = in[0];
	md->scrub_flags = in[1];
	return CXL_RC_SUCCESS;
}

/* Media Refresh Mode (vendor): the current mode, and the one the next cold reset applies. */
static void sim_feat_refresh_get(const struct sim_memdev *md, uint8_t *o, bool dflt)
{
	o[0] = dflt ? 0 : md->refresh_mode;
	o[1] = dflt ? 0 : md->refresh_mode_next;
	o[2] = 0;
	o[3] = 0;
}

/* Refresh mode 0 (1x), 1 (2x) or 2 (4x); takes effect only after a cold reset. */
static uint16_t sim_feat_refresh_set(struct sim_memdev *md, const uint8_t *in)
{
	if (in[0] > 2)
		return CXL_RC_INVALID_INPUT;
	md->refresh_mode_next = in[0];
	return CXL_RC_SUCCESS;
}

/* Media Pattern Fill (vendor): the last pattern written and how many fills ran. */
static void sim_feat_fill_get(const struct sim_memdev *md, uint8_t *o, bool dflt)
{
	sim_put_le32(o, dflt ? 0 : md->fill_pattern);
	sim_put_le32(o + 4, dflt ? 0 : md->fill_count);
}

/* Writes the pattern over the whole media at once: data changes, poison clears. */
static uint16_t sim_feat_fill_set(struct sim_memdev *md, const uint8_t *in)
{
	if (md->cci.bg.running && md->cci.bg.media_disabled)
		return CXL_RC_MEDIA_DISABLED;
	md->fill_pattern = sim_get_le32(in);
	md->fill_count++;
	md->n_poison = 0;
	md->n_injected = 0;
	return CXL_RC_SUCCESS;
}

static const struct sim_feature sim_features[SIM_N_FEATURES] = {
    {
	/* Device Patrol Scrub Control 96dad7d6-fde8-482b-a733-75774e06db8a */
	.uuid = {0x96, 0xda, 0xd7, 0xd6, 0xfd, 0xe8, 0x48, 0x2b, 0xa7, 0x33, 0x75, 0x77, 0x4e, 0x06,
		 0xdb, 0x8a},
	.get_size = 4,
	.set_size = 2,
	.version = 1,
	.flags = SIM_FEATURE_CHANGEABLE | SIM_FEATURE_DEFAULT_SEL,
	.effects = SIM_EFFECT_IMMEDIATE_CONFIG,
	.get = sim_feat_scrub_get,
	.set = sim_feat_scrub_set,
    },
    {
	/* mbxd-sim Media Refresh Mode 4b9c7e5a-2f31-4d0e-9a61-5c3b8e27d140 */
	.uuid = {0x4b, 0x9c, 0x7e, 0x5a, 0x2f, 0x31, 0x4d, 0x0e, 0x9a, 0x61, 0x5c, 0x3b, 0x8e, 0x27,
		 0xd1, 0x40},
	.get_size = 4,
	.set_size = 1,
	.version = 1,
	.flags = SIM_FEATURE_CHANGEABLE | SIM_FEATURE_DEFAULT_SEL,
	.effects = SIM_EFFECT_COLD_RESET_CONFIG,
	.get = sim_feat_refresh_get,
	.set = sim_feat_refresh_set,
    },
    {
	/* mbxd-sim Media Pattern Fill 7d2e91c4-83b5-4f6a-b0d2-1e6f4a9c3b85 */
	.uuid = {0x7d, 0x2e, 0x91, 0xc4, 0x83, 0xb5, 0x4f, 0x6a, 0xb0, 0xd2, 0x1e, 0x6f, 0x4a, 0x9c,
		 0x3b, 0x85},
	.get_size = 8,
	.set_size = 4,
	.version = 1,
	.flags = SIM_FEATURE_CHANGEABLE | SIM_FEATURE_DEFAULT_SEL,
	.effects = SIM_EFFECT_IMMEDIATE_DATA,
	.get = sim_feat_fill_get,
	.set = sim_feat_fill_set,
    },
};

/* The Feature named by uuid, or NULL. */
static const struct sim_feature *sim_feature_find(const uint8_t *uuid)
{
	for (size_t i = 0; i < SIM_N_FEATURES; i++)
		if (memcmp(sim_features[i].uuid, uuid, SIM_UUID_SIZE) == 0)
			return &sim_features[i];
	return NULL;
}

/* Writes one Supported Feature Entry, CXL r3.1 Table 8-97, reporting effects. */
static void sim_feature_entry(uint8_t *e, const struct sim_feature *f, uint16_t index,
			      uint16_t effects)
{
	memset(e, 0, SIM_FEATURE_ENTRY);
	memcpy(e, f->uuid, SIM_UUID_SIZE);
	sim_put_le16(e + 16, index);
	sim_put_le16(e + 18, f->get_size);
	sim_put_le16(e + 20, f->set_size);
	sim_put_le32(e + 22, f->flags);
	e[26] = f->version; /* Get Feature version */
	e[27] = f->version; /* Set Feature version */
	sim_put_le16(e + 28, effects);
}

/* Get Supported Features (0500h): entries from start_idx that fit count bytes, Table 8-96. */
static uint16_t sim_cmd_supported_features(struct sim_cci *cci, struct sim_req *r)
{
	uint32_t count = sim_get_le32(r->in);
	uint16_t start = sim_get_le16(r->in + 4);
	const struct sim_memdev *md = sim_md(cci);
	size_t room, n, total = md->n_feature_entries;

	if (count < SIM_FEATURES_OUT_HEADER || start >= total || r->in[6] || r->in[7])
		return CXL_RC_INVALID_INPUT;
	room = count < r->out_cap ? count : r->out_cap;
	n = (room - SIM_FEATURES_OUT_HEADER) / SIM_FEATURE_ENTRY;
	if (n > total - start)
		n = total - start;
	memset(r->out, 0, SIM_FEATURES_OUT_HEADER);
	sim_put_le16(r->out, (uint16_t)n);
	sim_put_le16(r->out + 2, (uint16_t)total);
	for (size_t i = 0; i < n; i++)
		sim_feature_entry(r->out + SIM_FEATURES_OUT_HEADER + i * SIM_FEATURE_ENTRY,
				  &sim_features[(start + i) % SIM_N_FEATURES],
				  (uint16_t)(start + i), md->feature_effects[start + i]);
	r->out_len = SIM_FEATURES_OUT_HEADER + n * SIM_FEATURE_ENTRY;
	return CXL_RC_SUCCESS;
}

/* Get Feature (0501h): count bytes from offset of the current or default data, Table 8-99. */
static uint16_t sim_cmd_get_feature(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_feature *f = sim_feature_find(r->in);
	uint16_t offset = sim_get_le16(r->in + 16), count = sim_get_le16(r->in + 18);
	uint8_t sel = r->in[20], data[16];

	if (!f)
		return CXL_RC_UNSUPPORTED;
	if (sel > 1) /* 0 current, 1 default; saved values are not supported */
		return SIM_RC_FEATURE_SELECTION;
	if (count == 0 || offset >= f->get_size || count > r->out_cap)
		return CXL_RC_INVALID_INPUT;
	f->get(sim_md(cci), data, sel == 1);
	if (count > f->get_size - offset)
		count = (uint16_t)(f->get_size - offset);
	memcpy(r->out, data + offset, count);
	r->out_len = count;
	return CXL_RC_SUCCESS;
}

/* Set Feature (0502h): a full data transfer of exactly set_size bytes, Table 8-101. */
static uint16_t sim_cmd_set_feature(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_feature *f = sim_feature_find(r->in);
	uint32_t flags = sim_get_le32(r->in + 16);
	uint16_t offset = sim_get_le16(r->in + 20);

	if (!f || !(f->flags & SIM_FEATURE_CHANGEABLE))
		return CXL_RC_UNSUPPORTED;
	/* Only full transfers (bits 2:0 zero) and no "saved across reset" (bit 3). */
	if (flags != 0 || offset != 0)
		return CXL_RC_INVALID_INPUT;
	if (r->in[22] != f->version)
		return SIM_RC_FEATURE_VERSION;
	if (r->in_len - SIM_SET_FEATURE_HEADER != f->set_size)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	return f->set(sim_md(cci), r->in + SIM_SET_FEATURE_HEADER);
}

/* ---- the model ---- */

#define ANY  UINT32_MAX
#define CFG  SIM_EFFECT_IMMEDIATE_CONFIG
#define DATA SIM_EFFECT_IMMEDIATE_DATA

/*
 * Every command the memory device answers, in CEL order. Set Feature's effects
 * are the union of its Features' (the classifier looks at the Feature itself);
 * Inject/Clear Poison report their data change, unlike QEMU's zero.
 */
static const struct sim_cmd sim_memdev_cmds[] = {
    {0x0001, 0, 0, 0, 0, sim_cmd_identify},
    {0x0002, 0, 0, 0, 0, sim_cmd_bg_status},
    {0x0005, 0, 0, 0, 0, sim_cmd_request_abort},
    {0x0100, 0, 1, 1, 0, sim_cmd_get_events},
    {0x0101, SIM_EFFECT_IMMEDIATE_LOG, 6, 6 + 2 * 255, 0, sim_cmd_clear_events},
    {0x0200, 0, 0, 0, 0, sim_cmd_fw_info},
    {0x0201, SIM_EFFECT_BACKGROUND, SIM_FW_HEADER, ANY, 0, sim_cmd_transfer_fw},
    {0x0202, SIM_EFFECT_COLD_RESET_CONFIG | CFG, 2, 2, 0, sim_cmd_activate_fw},
    {0x0300, 0, 0, 0, 0, sim_cmd_get_timestamp},
    {0x0301, CFG, 8, 8, 0, sim_cmd_set_timestamp},
    {0x0400, 0, 0, 0, 0, sim_cmd_supported_logs},
    {0x0401, 0, SIM_GET_LOG_IN_SIZE, SIM_GET_LOG_IN_SIZE, 0, sim_cmd_get_log},
    {0x0500, 0, 8, 8, 0, sim_cmd_supported_features},
    {0x0501, 0, 21, 21, 0, sim_cmd_get_feature},
    {0x0502, SIM_EFFECT_COLD_RESET_CONFIG | CFG | DATA, SIM_SET_FEATURE_HEADER, ANY, 0,
     sim_cmd_set_feature},
    {0x4000, 0, 0, 0, 0, sim_cmd_identify_memdev},
    {0x4100, 0, 0, 0, 0, sim_cmd_partition_info},
    {0x4200, 0, 0, 0, 0, sim_cmd_health},
    {0x4201, 0, 0, 0, 0, sim_cmd_get_alerts},
    {0x4202, SIM_EFFECT_IMMEDIATE_POLICY, 12, 12, 0, sim_cmd_set_alerts},
    {0x4300, 0, 16, 16, SIM_CMD_MEDIA, sim_cmd_get_poison},
    {0x4301, DATA, 8, 8, SIM_CMD_MEDIA, sim_cmd_inject_poison},
    {0x4302, DATA, 72, 72, SIM_CMD_MEDIA, sim_cmd_clear_poison},
    {0x4400, DATA | SIM_EFFECT_BACKGROUND, 0, 0, 0, sim_cmd_sanitize},
};

#undef ANY
#undef CFG
#undef DATA

/* Factory firmware: the current release active in slot 1, the previous one in slot 2. */
static void sim_fw_init(struct sim_fw *fw, const struct sim_memdev_config *cfg)
{
	fw->slots = cfg->fw_slots ? (uint8_t)cfg->fw_slots : SIM_FW_SLOTS_DEFAULT;
	if (fw->slots > SIM_FW_SLOTS_MAX)
		fw->slots = SIM_FW_SLOTS_MAX;
	fw->transfer_ms = cfg->fw_transfer_ms ? cfg->fw_transfer_ms : SIM_FW_TRANSFER_MS_DEFAULT;
	fw->active = 1;
	memcpy(fw->rev[0], SIM_MD_FW, sizeof(SIM_MD_FW) - 1);
	if (fw->slots > 1)
		memcpy(fw->rev[1], SIM_MD_FW_OLD, sizeof(SIM_MD_FW_OLD) - 1);
}

/* Builds a memory device in its factory state, with seeded events and one poisoned line. */
struct sim_memdev *sim_memdev_new(const struct sim_memdev_config *cfg)
{
	struct sim_memdev *md = calloc(1, sizeof(*md));

	if (!md)
		return NULL;
	md->cci.cmds = sim_memdev_cmds;
	md->cci.n_cmds = sizeof(sim_memdev_cmds) / sizeof(sim_memdev_cmds[0]);
	_Static_assert(sizeof(sim_memdev_cmds) / sizeof(sim_memdev_cmds[0]) == SIM_MEMDEV_CMDS,
		       "SIM_MEMDEV_CMDS");
	if (cfg->omit) {
		/* A device without one command, as kernel-owned devices lack generic Identify. */
		md->cci.n_cmds = 0;
		for (size_t i = 0; i < SIM_MEMDEV_CMDS; i++)
			if (sim_memdev_cmds[i].opcode != cfg->omit_opcode)
				md->cmds[md->cci.n_cmds++] = sim_memdev_cmds[i];
		md->cci.cmds = md->cmds;
	}
	md->cci.ident = (struct sim_ident){
	    .vendor_id = SIM_MD_VENDOR,
	    .device_id = SIM_MD_DEVICE,
	    .subsys_vendor_id = SIM_MD_VENDOR,
	    .subsys_id = SIM_MD_DEVICE,
	    .serial = cfg->serial,
	    .component_type = SIM_COMPONENT_TYPE3,
	};
	md->cci.payload_max = cfg->payload_max;
	md->cci.model = md;
	sim_cci_set_cel_effects(&md->cci, cfg->cel_effects, cfg->n_cel_effects);
	md->n_feature_entries = cfg->features_twice ? 2 * SIM_N_FEATURES : SIM_N_FEATURES;
	for (size_t i = 0; i < md->n_feature_entries; i++)
		md->feature_effects[i] = sim_features[i % SIM_N_FEATURES].effects;
	for (size_t i = 0; i < cfg->n_feature_effects; i++)
		if (cfg->feature_effects[i].key < md->n_feature_entries)
			md->feature_effects[cfg->feature_effects[i].key] =
			    cfg->feature_effects[i].value;
	md->sanitize_ms = cfg->sanitize_ms;
	sim_fw_init(&md->fw, cfg);
	md->next_handle = 1;
	md->scrub_cycle_hr = SIM_SCRUB_DEFAULT_HR;
	md->scrub_flags = 0x01;
	sim_events_seed(md);
	/* A line the patrol scrub found uncorrectable before we were opened. */
	md->poison[md->n_poison++] = (struct sim_poison){0x40000000, SIM_POISON_SOURCE_INTERNAL};
	return md;
}

void sim_memdev_free(struct sim_memdev *md)
{
	free(md);
}

/* Runs one command on the memory device. */
uint16_t sim_memdev_run(struct sim_memdev *md, struct sim_req *r)
{
	return sim_dispatch(&md->cci, r);
}

/* The memory device's CCI. */
struct sim_cci *sim_memdev_cci(struct sim_memdev *md)
{
	return &md->cci;
}
