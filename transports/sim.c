/*
 * The sim transport: an emulated CXL Type 3 memory device or switch CCI, in
 * process, with configurable latency and fault injection. The demo and the
 * tests run on it; the models live in sim-memdev.c and sim-switch.c.
 *
 * This file also holds what every emulated component shares: the command
 * dispatcher, Identify (0001h), Background Operation Status (0002h), Get
 * Supported Logs (0400h) and Get Log (0401h) with a Command Effects Log
 * built from the model's command table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim-model.h"
#include "transport.h"

const uint8_t sim_cel_uuid[SIM_UUID_SIZE] = {
    0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78, 0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17,
};

/* Returns CLOCK_MONOTONIC in nanoseconds: background progress ignores wall-clock steps. */
uint64_t sim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Finds opcode in the component's command table. */
static const struct sim_cmd *sim_cmd_find(const struct sim_cci *cci, uint16_t opcode)
{
	for (size_t i = 0; i < cci->n_cmds; i++)
		if (cci->cmds[i].opcode == opcode)
			return &cci->cmds[i];
	return NULL;
}

/* Runs one command: the table decides support and input sizes before any handler runs. */
uint16_t sim_dispatch(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_cmd *c;

	r->out_len = 0;
	sim_bg_poll(cci);
	c = sim_cmd_find(cci, r->opcode);
	if (!c)
		return CXL_RC_UNSUPPORTED;
	if (r->in_len < c->min_in || r->in_len > c->max_in || r->in_len > cci->payload_max)
		return CXL_RC_INVALID_PAYLOAD_LENGTH;
	/* One background operation at a time (CXL r3.1 8.2.8.4.6). */
	if (cci->bg.running && (c->effects & SIM_EFFECT_BACKGROUND))
		return CXL_RC_BUSY;
	if (cci->bg.running && cci->bg.media_disabled && (c->flags & SIM_CMD_MEDIA))
		return CXL_RC_MEDIA_DISABLED;
	return c->run(cci, r);
}

/* Starts a timed background operation; complete() runs when its time is up. */
void sim_bg_start(struct sim_cci *cci, uint16_t opcode, uint64_t duration_ms, bool media_disabled,
		  void (*complete)(struct sim_cci *cci))
{
	cci->bg.running = true;
	cci->bg.media_disabled = media_disabled;
	cci->bg.opcode = opcode;
	cci->bg.rc = CXL_RC_SUCCESS;
	cci->bg.start_ns = sim_now_ns();
	cci->bg.duration_ns = duration_ms * 1000000u;
	cci->bg.complete = complete;
}

/* Completes the running background operation once its duration has passed. */
void sim_bg_poll(struct sim_cci *cci)
{
	if (!cci->bg.running || sim_now_ns() - cci->bg.start_ns < cci->bg.duration_ns)
		return;
	cci->bg.running = false;
	cci->bg.media_disabled = false;
	cci->bg.rc = CXL_RC_SUCCESS;
	if (cci->bg.complete)
		cci->bg.complete(cci);
}

/*
 * Request Abort Background Operation (0005h): the running operation stops
 * without its effect and reports Aborted; with none running it is a no-op.
 */
uint16_t sim_cmd_request_abort(struct sim_cci *cci, struct sim_req *r)
{
	(void)r;
	if (cci->bg.running) {
		cci->bg.running = false;
		cci->bg.media_disabled = false;
		cci->bg.rc = CXL_RC_ABORTED;
	}
	return CXL_RC_SUCCESS;
}

/* Percent complete: never 100 while running, so a poller sees completion only once. */
unsigned sim_bg_percent(const struct sim_cci *cci)
{
	uint64_t done;

	if (!cci->bg.running)
		return 100;
	if (cci->bg.duration_ns == 0)
		return 99;
	done = (sim_now_ns() - cci->bg.start_ns) * 100 / cci->bg.duration_ns;
	return done > 99 ? 99 : (unsigned)done;
}

/* Returns n such that 2^n == v, v a power of two. */
static uint8_t sim_log2(uint32_t v)
{
	uint8_t n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* Identify (0001h), CXL r3.1 Table 8-37. */
uint16_t sim_cmd_identify(struct sim_cci *cci, struct sim_req *r)
{
	const struct sim_ident *id = &cci->ident;
	uint8_t *o = r->out;

	memset(o, 0, SIM_IDENTIFY_SIZE);
	sim_put_le16(o + 0, id->vendor_id);
	sim_put_le16(o + 2, id->device_id);
	sim_put_le16(o + 4, id->subsys_vendor_id);
	sim_put_le16(o + 6, id->subsys_id);
	sim_put_le64(o + 8, id->serial);
	o[16] = sim_log2(cci->payload_max); /* max supported message size, 2^n */
	o[17] = id->component_type;
	r->out_len = SIM_IDENTIFY_SIZE;
	return CXL_RC_SUCCESS;
}

/* Background Operation Status (0002h), CXL r3.1 Table 8-38. */
uint16_t sim_cmd_bg_status(struct sim_cci *cci, struct sim_req *r)
{
	uint8_t *o = r->out;
	bool ever = cci->bg.running || cci->bg.opcode != 0;

	memset(o, 0, SIM_BG_STATUS_SIZE);
	if (ever) {
		/* bit 0: operation in progress; bits 7:1 percent complete */
		o[0] = (uint8_t)((cci->bg.running ? 1 : 0) | sim_bg_percent(cci) << 1);
		sim_put_le16(o + 2, cci->bg.opcode);
		if (!cci->bg.running)
			sim_put_le16(o + 4, cci->bg.rc);
	}
	r->out_len = SIM_BG_STATUS_SIZE;
	return CXL_RC_SUCCESS;
}

/* Get Supported Logs (0400h): one log, the CEL, CXL r3.1 Table 8-75. */
uint16_t sim_cmd_supported_logs(struct sim_cci *cci, struct sim_req *r)
{
	uint8_t *o = r->out;

	memset(o, 0, SIM_SUPPORTED_LOGS_HEADER + SIM_SUPPORTED_LOG_ENTRY);
	sim_put_le16(o, 1);
	memcpy(o + SIM_SUPPORTED_LOGS_HEADER, sim_cel_uuid, SIM_UUID_SIZE);
	sim_put_le32(o + SIM_SUPPORTED_LOGS_HEADER + SIM_UUID_SIZE,
		     (uint32_t)(cci->n_cmds * SIM_CEL_ENTRY_SIZE));
	r->out_len = SIM_SUPPORTED_LOGS_HEADER + SIM_SUPPORTED_LOG_ENTRY;
	return CXL_RC_SUCCESS;
}

/* Copies the cel_effects of a model's config into its CCI. */
void sim_cci_set_cel_effects(struct sim_cci *cci, const struct sim_pair *v, size_t n)
{
	cci->n_cel_effects = n < SIM_PAIRS_MAX ? n : SIM_PAIRS_MAX;
	if (cci->n_cel_effects) /* v is NULL without the option: memcpy must not see it */
		memcpy(cci->cel_effects, v, cci->n_cel_effects * sizeof(*v));
}

/* The effects the CEL reports for a command: the cel_effects option's, or the table's. */
static uint16_t sim_cel_effects(const struct sim_cci *cci, const struct sim_cmd *c)
{
	for (size_t i = 0; i < cci->n_cel_effects; i++)
		if (cci->cel_effects[i].key == c->opcode)
			return cci->cel_effects[i].value;
	return (uint16_t)c->effects;
}

/* Get Log (0401h) of the CEL: the bytes [offset, offset + length) of the table's entries. */
uint16_t sim_cmd_get_log(struct sim_cci *cci, struct sim_req *r)
{
	uint32_t offset = sim_get_le32(r->in + 16), length = sim_get_le32(r->in + 20);
	uint32_t size = (uint32_t)(cci->n_cmds * SIM_CEL_ENTRY_SIZE);

	if (memcmp(r->in, sim_cel_uuid, SIM_UUID_SIZE) != 0)
		return SIM_RC_INVALID_LOG;
	if (length > r->out_cap || offset > size || length > size - offset)
		return CXL_RC_INVALID_INPUT;
	for (uint32_t i = 0; i < length; i++) {
		const struct sim_cmd *c = &cci->cmds[(offset + i) / SIM_CEL_ENTRY_SIZE];
		uint8_t entry[SIM_CEL_ENTRY_SIZE];

		sim_put_le16(entry, c->opcode);
		sim_put_le16(entry + 2, sim_cel_effects(cci, c));
		r->out[i] = entry[(offset + i) % SIM_CEL_ENTRY_SIZE];
	}
	r->out_len = length;
	return CXL_RC_SUCCESS;
}

/* ---- the transport ---- */

enum sim_kind { SIM_MEMDEV, SIM_SWITCH };

enum sim_fault_kind {
	SIM_FAULT_NONE,
	SIM_FAULT_BUSY,
	SIM_FAULT_TIMEOUT,
	SIM_FAULT_HANG,
	SIM_FAULT_RC
};

struct sim_fault {
	enum sim_fault_kind kind;
	uint16_t rc;     /* for SIM_FAULT_RC */
	bool any_opcode; /* fault_opcode absent */
	uint16_t opcode;
	bool unlimited; /* fault_count 0 */
	uint64_t remaining;
	uint64_t hang_ms;
};

struct sim {
	enum sim_kind kind;
	uint64_t serial;
	uint32_t payload_max;
	uint64_t latency_us;
	uint64_t sanitize_ms;
	struct sim_fault fault;
	struct sim_pair cel_effects[SIM_PAIRS_MAX];
	size_t n_cel_effects;
	struct sim_pair feature_effects[SIM_PAIRS_MAX]; /* the memdev config points here */
	struct sim_memdev *memdev;
	struct sim_switch *sw;
	uint8_t *buf; /* payload_max bytes: the model's output payload */
};

static const char *const sim_options[] = {
    "model",           "serial",         "latency_us",     "sanitize_ms", "ports",
    "tunnel_port",     "payload_max",    "fault_opcode",   "fault",       "fault_count",
    "hang_ms",         "fw_slots",       "fw_transfer_ms", "omit_opcode", "cel_effects",
    "feature_effects", "features_twice", "ld_count",       NULL,
};

#define SIM_DEFAULT_PAYLOAD       4096u
#define SIM_DEFAULT_SANITIZE_MS   3000u
#define SIM_DEFAULT_HANG_MS       30000u
#define SIM_DEFAULT_PORTS         4u
#define SIM_DEFAULT_TUNNEL_PORT   1u
#define SIM_DEFAULT_MEMDEV_SERIAL 0x5a5a000000000001ull
#define SIM_DEFAULT_SWITCH_SERIAL 0x5a5a000000000100ull

/* Parses "none", "busy", "timeout", "hang" or "rc:N" (N a return code up to FFFFh). */
static int sim_parse_fault(const struct mbx_transport_config *cfg, struct sim_fault *f, char *err,
			   size_t errlen)
{
	const char *v = transport_option(cfg, "fault");
	unsigned long n;
	char *end;

	if (!v || strcmp(v, "none") == 0)
		f->kind = SIM_FAULT_NONE;
	else if (strcmp(v, "busy") == 0)
		f->kind = SIM_FAULT_BUSY;
	else if (strcmp(v, "timeout") == 0)
		f->kind = SIM_FAULT_TIMEOUT;
	else if (strcmp(v, "hang") == 0)
		f->kind = SIM_FAULT_HANG;
	else if (strncmp(v, "rc:", 3) == 0 && v[3] >= '0' && v[3] <= '9') {
		errno = 0;
		n = strtoul(v + 3, &end, 0);
		if (errno || *end != '\0' || n > 0xffff)
			goto bad;
		f->kind = SIM_FAULT_RC;
		f->rc = (uint16_t)n;
	} else
		goto bad;
	return 0;
bad:
	return transport_option_error(
	    cfg, "fault", err, errlen,
	    "\"%s\" is not none, busy, timeout, hang or rc:N (N up to 0xffff)", v);
}

/* Reads the fault_* options. */
static int sim_fault_options(struct sim *s, const struct mbx_transport_config *cfg, char *err,
			     size_t errlen)
{
	struct sim_fault *f = &s->fault;
	uint64_t opcode = 0, count = 0;
	int rc;

	f->hang_ms = SIM_DEFAULT_HANG_MS;
	if ((rc = sim_parse_fault(cfg, f, err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "fault_opcode", 0, 0xffff, &opcode, err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "fault_count", 0, UINT32_MAX, &count, err, errlen)) <
		0 ||
	    (rc = transport_option_u64(cfg, "hang_ms", 0, 3600000, &f->hang_ms, err, errlen)) < 0)
		return rc;
	f->any_opcode = transport_option(cfg, "fault_opcode") == NULL;
	f->opcode = (uint16_t)opcode;
	f->unlimited = count == 0;
	f->remaining = count;
	return 0;
}

/* Refuses an option of the other model: it would silently do nothing. */
static int sim_refuse_option(const struct mbx_transport_config *cfg, const char *key,
			     const char *model, char *err, size_t errlen)
{
	if (!transport_option(cfg, key))
		return 0;
	return transport_option_error(cfg, key, err, errlen, "only applies to model %s", model);
}

/* Reads model and the options every model takes. */
static int sim_common_options(struct sim *s, const struct mbx_transport_config *cfg, char *err,
			      size_t errlen)
{
	const char *model = transport_option(cfg, "model");
	uint64_t payload = SIM_DEFAULT_PAYLOAD;
	int rc;

	if (!model || strcmp(model, "memdev") == 0)
		s->kind = SIM_MEMDEV;
	else if (strcmp(model, "switch") == 0)
		s->kind = SIM_SWITCH;
	else {
		return transport_option_error(cfg, "model", err, errlen,
					      "\"%s\" is not memdev or switch", model);
	}
	s->serial = s->kind == SIM_SWITCH ? SIM_DEFAULT_SWITCH_SERIAL : SIM_DEFAULT_MEMDEV_SERIAL;
	s->sanitize_ms = SIM_DEFAULT_SANITIZE_MS;
	if ((rc = transport_option_u64(cfg, "payload_max",
				       s->kind == SIM_SWITCH ? SIM_SWITCH_PAYLOAD_MIN
							     : SIM_PAYLOAD_MIN,
				       SIM_PAYLOAD_MAX, &payload, err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "serial", 0, UINT64_MAX, &s->serial, err, errlen)) <
		0 ||
	    (rc = transport_option_u64(cfg, "sanitize_ms", 0, 3600000, &s->sanitize_ms, err,
				       errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "latency_us", 0, 10000000, &s->latency_us, err,
				       errlen)) < 0)
		return rc;
	if (payload & (payload - 1)) {
		return transport_option_error(cfg, "payload_max", err, errlen,
					      "%" PRIu64 " is not a power of two", payload);
	}
	s->payload_max = (uint32_t)payload;
	return 0;
}

/*
 * Reads a list option "KEY:VALUE KEY:VALUE ..." (numbers in C notation,
 * 16 bits each, separated by spaces or commas); absent is an empty list.
 */
static int sim_option_pairs(const struct mbx_transport_config *cfg, const char *key,
			    struct sim_pair *v, size_t *n, char *err, size_t errlen)
{
	const char *s = transport_option(cfg, key);
	unsigned long k, val;
	char *end;

	*n = 0;
	while (s && *s) {
		if (*s == ' ' || *s == ',') {
			s++;
			continue;
		}
		errno = 0;
		k = strtoul(s, &end, 0);
		if (errno || end == s || *end != ':' || k > 0xffff || *n == SIM_PAIRS_MAX)
			goto bad;
		s = end + 1;
		val = strtoul(s, &end, 0);
		if (errno || end == s || (*end && *end != ' ' && *end != ',') || val > 0xffff)
			goto bad;
		v[*n].key = (uint16_t)k;
		v[(*n)++].value = (uint16_t)val;
		s = end;
	}
	return 0;
bad:
	return transport_option_error(cfg, key, err, errlen,
				      "\"%s\" is not a list of up to %d KEY:VALUE pairs of 16-bit "
				      "numbers",
				      transport_option(cfg, key), SIM_PAIRS_MAX);
}

/* Reads the memory device's own options into mc (its lists stay in s). */
static int sim_memdev_options(struct sim *s, const struct mbx_transport_config *cfg,
			      struct sim_memdev_config *mc, char *err, size_t errlen)
{
	uint64_t slots = SIM_FW_SLOTS_DEFAULT, transfer_ms = SIM_FW_TRANSFER_MS_DEFAULT, omit = 0;
	int rc;

	*mc = (struct sim_memdev_config){
	    .serial = s->serial,
	    .payload_max = s->payload_max,
	    .sanitize_ms = s->sanitize_ms,
	};
	uint64_t twice = 0;

	if ((rc = sim_option_pairs(cfg, "feature_effects", s->feature_effects,
				   &mc->n_feature_effects, err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "features_twice", 0, 1, &twice, err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "ports", "switch", err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "omit_opcode", 0, 0xffff, &omit, err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "tunnel_port", "switch", err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "ld_count", "switch", err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "fw_slots", 2, SIM_FW_SLOTS_MAX, &slots, err, errlen)) <
		0 ||
	    (rc = transport_option_u64(cfg, "fw_transfer_ms", 1, 3600000, &transfer_ms, err,
				       errlen)) < 0)
		return rc;
	mc->fw_slots = (unsigned)slots;
	mc->fw_transfer_ms = transfer_ms;
	mc->omit = transport_option(cfg, "omit_opcode") != NULL;
	mc->omit_opcode = (uint16_t)omit;
	mc->feature_effects = s->feature_effects;
	mc->features_twice = twice != 0;
	mc->cel_effects = s->cel_effects;
	mc->n_cel_effects = s->n_cel_effects;
	return 0;
}

/* Reads the switch's own options (ports, tunnel_port) into sc. */
static int sim_switch_options(const struct sim *s, const struct mbx_transport_config *cfg,
			      struct sim_switch_config *sc, char *err, size_t errlen)
{
	uint64_t ports = SIM_DEFAULT_PORTS, tport = SIM_DEFAULT_TUNNEL_PORT, lds = 0;
	int rc;

	if ((rc = sim_refuse_option(cfg, "fw_slots", "memdev", err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "feature_effects", "memdev", err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "features_twice", "memdev", err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "fw_transfer_ms", "memdev", err, errlen)) < 0 ||
	    (rc = sim_refuse_option(cfg, "omit_opcode", "memdev", err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "ports", SIM_SWITCH_PORTS_MIN, SIM_SWITCH_PORTS_MAX,
				       &ports, err, errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "tunnel_port", 1, ports - 1, &tport, err, errlen)) <
		0 ||
	    (rc = transport_option_u64(cfg, "ld_count", 0, SIM_MLD_LDS_MAX, &lds, err, errlen)) < 0)
		return rc;
	if (lds && (tport + 1 >= ports || s->payload_max < SIM_SWITCH_MLD_PAYLOAD_MIN))
		return transport_option_error(cfg, "ld_count", err, errlen,
					      "the multi-logical device needs port tunnel_port + 1 "
					      "(%" PRIu64 ") below ports (%" PRIu64
					      ") and payload_max of at least %u",
					      tport + 1, ports, SIM_SWITCH_MLD_PAYLOAD_MIN);
	*sc = (struct sim_switch_config){
	    .serial = s->serial,
	    .payload_max = s->payload_max,
	    .ports = (unsigned)ports,
	    .tunnel_port = (unsigned)tport,
	    .sanitize_ms = s->sanitize_ms,
	    .cel_effects = s->cel_effects,
	    .n_cel_effects = s->n_cel_effects,
	    .ld_count = (unsigned)lds,
	};
	return 0;
}

/* The model's configuration, as the options set it. */
struct sim_model_config {
	struct sim_memdev_config memdev;
	struct sim_switch_config sw;
};

/* Reads every option into s and mc; builds nothing. */
static int sim_read_options(struct sim *s, const struct mbx_transport_config *cfg,
			    struct sim_model_config *mc, char *err, size_t errlen)
{
	int rc;

	if ((rc = sim_fault_options(s, cfg, err, errlen)) < 0 ||
	    (rc = sim_common_options(s, cfg, err, errlen)) < 0 ||
	    (rc = sim_option_pairs(cfg, "cel_effects", s->cel_effects, &s->n_cel_effects, err,
				   errlen)) < 0)
		return rc;
	return s->kind == SIM_SWITCH ? sim_switch_options(s, cfg, &mc->sw, err, errlen)
				     : sim_memdev_options(s, cfg, &mc->memdev, err, errlen);
}

/* Checks the options as sim_open reads them, building no model. */
static int sim_check(const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	struct sim_model_config mc;
	struct sim s;

	memset(&s, 0, sizeof(s));
	return sim_read_options(&s, cfg, &mc, err, errlen);
}

static void sim_close(void *priv);

/* Opens an emulated device from the config's options. */
static int sim_open(void *priv, const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	struct sim_model_config mc;
	struct sim *s = priv;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((rc = sim_read_options(s, cfg, &mc, err, errlen)) < 0)
		return rc;
	if (s->kind == SIM_SWITCH)
		s->sw = sim_switch_new(&mc.sw);
	else
		s->memdev = sim_memdev_new(&mc.memdev);
	rc = s->sw || s->memdev ? 0 : -ENOMEM;
	if (rc < 0)
		goto fail;
	s->buf = malloc(s->payload_max);
	if (!s->buf) {
		rc = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "%s: out of memory building the sim device",
			 cfg->device_name);
	sim_close(s);
	return rc;
}

/* Frees the model; the broker frees priv itself. */
static void sim_close(void *priv)
{
	struct sim *s = priv;

	sim_memdev_free(s->memdev);
	sim_switch_free(s->sw);
	free(s->buf);
	s->memdev = NULL;
	s->sw = NULL;
	s->buf = NULL;
}

/* Describes the device for DEVICES and the policy. */
static void sim_describe(void *priv, struct mbx_transport_info *info)
{
	struct sim *s = priv;

	memset(info, 0, sizeof(*info));
	snprintf(info->kind, sizeof(info->kind), "%s", s->kind == SIM_SWITCH ? "switch" : "memdev");
	snprintf(info->model, sizeof(info->model), "%s",
		 s->kind == SIM_SWITCH ? sim_switch_model_name : sim_memdev_model_name);
	snprintf(info->serial, sizeof(info->serial), "0x%016" PRIx64, s->serial);
	info->payload_max = s->payload_max;
	info->kernel_owned = false;
	/* Without latency or a fault that sleeps, a command is a few microseconds of CPU. */
	info->never_blocks = s->latency_us == 0 && s->fault.kind == SIM_FAULT_NONE;
}

/* Sleeps us microseconds on the monotonic clock, resuming after signals. */
static void sim_sleep_us(uint64_t us)
{
	struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
			      .tv_nsec = (long)(us % 1000000) * 1000};

	if (us == 0) /* no syscall, and no timer slack, on the common path */
		return;
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/* Whether the configured fault hits this command; counts it if so. */
static bool sim_fault_hits(struct sim *s, uint16_t opcode)
{
	struct sim_fault *f = &s->fault;

	if (f->kind == SIM_FAULT_NONE || (!f->any_opcode && f->opcode != opcode))
		return false;
	if (f->unlimited)
		return true;
	if (f->remaining == 0)
		return false;
	f->remaining--;
	return true;
}

/* Plays the configured fault instead of running the command. */
static int sim_fault_play(struct sim *s, struct mbx_transport_cmd *cmd)
{
	switch (s->fault.kind) {
	case SIM_FAULT_BUSY:
		cmd->cxl_rc = CXL_RC_BUSY;
		return MBX_XPORT_OK;
	case SIM_FAULT_RC:
		cmd->cxl_rc = s->fault.rc;
		return MBX_XPORT_OK;
	case SIM_FAULT_TIMEOUT:
		sim_sleep_us((uint64_t)cmd->timeout_ms * 1000);
		snprintf(cmd->error, sizeof(cmd->error),
			 "sim: no answer to opcode %04xh within %" PRIu32 " ms (injected timeout)",
			 cmd->opcode, cmd->timeout_ms);
		return MBX_XPORT_TIMEOUT;
	case SIM_FAULT_HANG:
		/* A hung device ignores the command's timeout: the broker's watchdog must act. */
		sim_sleep_us(s->fault.hang_ms * 1000);
		snprintf(cmd->error, sizeof(cmd->error),
			 "sim: device hung for %" PRIu64 " ms on opcode %04xh (injected hang)",
			 s->fault.hang_ms, cmd->opcode);
		return MBX_XPORT_TIMEOUT;
	case SIM_FAULT_NONE:
		break;
	}
	return MBX_XPORT_OK;
}

/* Runs one command on the model. */
static int sim_submit(void *priv, struct mbx_transport_cmd *cmd)
{
	struct sim *s = priv;
	struct sim_req r = {
	    .opcode = cmd->opcode,
	    .in = cmd->in,
	    .in_len = cmd->in_len,
	    .out = s->buf,
	    .out_cap = s->payload_max,
	};
	uint16_t rc;

	cmd->out_len = 0;
	cmd->cxl_rc = 0;
	cmd->vendor_status = 0;
	cmd->error[0] = '\0';
	if (cmd->in_len > s->payload_max) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "sim: %zu-byte input payload exceeds the %" PRIu32 "-byte mailbox",
			 cmd->in_len, s->payload_max);
		return MBX_XPORT_TOO_BIG;
	}
	sim_sleep_us(s->latency_us);
	if (sim_fault_hits(s, cmd->opcode))
		return sim_fault_play(s, cmd);
	rc = s->kind == SIM_SWITCH ? sim_switch_run(s->sw, &r) : sim_memdev_run(s->memdev, &r);
	if (r.out_len > cmd->out_cap) {
		snprintf(cmd->error, sizeof(cmd->error),
			 "sim: %zu-byte output of opcode %04xh does not fit the %zu-byte buffer",
			 r.out_len, cmd->opcode, cmd->out_cap);
		return MBX_XPORT_IO;
	}
	if (r.out_len)
		memcpy(cmd->out, r.out, r.out_len);
	cmd->out_len = r.out_len;
	cmd->cxl_rc = rc;
	return MBX_XPORT_OK;
}

const struct mbx_transport_ops sim_transport_ops = {
    .name = "sim",
    .priv_size = sizeof(struct sim),
    .options = sim_options,
    .ioctls = NULL,
    .n_ioctls = 0,
    .check = sim_check,
    .open = sim_open,
    .close = sim_close,
    .describe = sim_describe,
    .submit = sim_submit,
};
