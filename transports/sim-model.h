/*
 * The sim transport's device models, internal to transports/sim*.c.
 *
 * A model is a CXL component answering mailbox commands from a table: each
 * row names an opcode, its Command Effects Log effects, the input payload
 * sizes it accepts and its handler. The table is the single source of truth:
 * dispatch refuses what it does not list, and the CEL is built from it, so
 * the CEL lists exactly the opcodes the model answers.
 *
 * sim.c holds the transport glue (options, latency, faults) and the pieces
 * every CXL component shares (Identify, Background Operation Status, logs);
 * sim-memdev.c the Type 3 memory device; sim-switch.c the switch CCI.
 */
#ifndef MBX_SIM_MODEL_H
#define MBX_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../policy/catalog.h" /* enum cxl_rc and opcode names only */

/* Return codes past catalog.h's table (CXL r3.1 Table 8-34; Linux cxlmem.h). */
#define SIM_RC_INVALID_LOG       0x17
#define SIM_RC_FEATURE_VERSION   0x19 /* unsupported Feature version */
#define SIM_RC_FEATURE_SELECTION 0x1a /* unsupported Feature selection value */

/* Command Effects Log effects bits (CXL r3.1 Table 8-75, bits 0-6). */
#define SIM_EFFECT_COLD_RESET_CONFIG (1u << 0)
#define SIM_EFFECT_IMMEDIATE_CONFIG  (1u << 1)
#define SIM_EFFECT_IMMEDIATE_DATA    (1u << 2)
#define SIM_EFFECT_IMMEDIATE_POLICY  (1u << 3)
#define SIM_EFFECT_IMMEDIATE_LOG     (1u << 4)
#define SIM_EFFECT_SECURITY          (1u << 5)
#define SIM_EFFECT_BACKGROUND        (1u << 6)

/* Identify (0001h) component types (CXL r3.1 Table 8-37). */
#define SIM_COMPONENT_SWITCH 0x00
#define SIM_COMPONENT_TYPE3  0x03

#define SIM_UUID_SIZE             16
#define SIM_IDENTIFY_SIZE         18
#define SIM_BG_STATUS_SIZE        8
#define SIM_GET_LOG_IN_SIZE       24
#define SIM_SUPPORTED_LOGS_HEADER 8
#define SIM_SUPPORTED_LOG_ENTRY   20
#define SIM_CEL_ENTRY_SIZE        4

/* Mailbox payload sizes a device may report: 2^8 to 2^20 (CXL r3.1 8.2.8.4.3). */
#define SIM_PAYLOAD_MIN 256u
#define SIM_PAYLOAD_MAX (1u << 20)

/* Command Effects Log UUID 0da9c0b5-bf41-4b78-8f79-96b1623b3f17. */
extern const uint8_t sim_cel_uuid[SIM_UUID_SIZE];

/* One command in flight through a model. */
struct sim_req {
	uint16_t opcode;
	const uint8_t *in;
	size_t in_len;
	uint8_t *out; /* out_cap bytes, the model's mailbox payload size */
	size_t out_cap;
	size_t out_len; /* set by the handler */
};

struct sim_cci;

/* Flags of a command table row. */
#define SIM_CMD_MEDIA (1u << 0) /* touches media: refused while a sanitize runs */

struct sim_cmd {
	uint16_t opcode;
	uint16_t effects; /* SIM_EFFECT_*, reported in the CEL */
	uint32_t min_in;  /* accepted input sizes; others answer 16h */
	uint32_t max_in;
	uint32_t flags; /* SIM_CMD_* */
	uint16_t (*run)(struct sim_cci *cci, struct sim_req *r);
};

/* Identify (0001h) contents, common to every component. */
struct sim_ident {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint64_t serial;
	uint8_t component_type;
};

/* The one background operation a component may run at a time. */
struct sim_bg {
	bool running;
	bool media_disabled; /* media commands answer Media Disabled meanwhile */
	uint16_t opcode;     /* running or last completed */
	uint16_t rc;         /* of the last completed operation */
	uint64_t start_ns;   /* CLOCK_MONOTONIC */
	uint64_t duration_ns;
	void (*complete)(struct sim_cci *cci); /* applies the operation's effect */
};

/* The state every CXL component shares: its command table, identity, background op. */
/* A number for a number: an opcode's reported effects, a Feature entry's effects. */
struct sim_pair {
	uint16_t key;
	uint16_t value;
};

#define SIM_PAIRS_MAX 32

struct sim_cci {
	const struct sim_cmd *cmds;
	size_t n_cmds;
	/* Effects the CEL reports instead of the table's (option cel_effects). */
	struct sim_pair cel_effects[SIM_PAIRS_MAX];
	size_t n_cel_effects;
	struct sim_ident ident;
	uint32_t payload_max; /* this component's mailbox payload size */
	struct sim_bg bg;
	void *model; /* the sim_memdev or sim_switch owning this */
};

/* Little-endian field access for payloads. */
static inline void sim_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void sim_put_le32(uint8_t *p, uint32_t v)
{
	sim_put_le16(p, (uint16_t)v);
	sim_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void sim_put_le64(uint8_t *p, uint64_t v)
{
	sim_put_le32(p, (uint32_t)v);
	sim_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t sim_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t sim_get_le32(const uint8_t *p)
{
	return sim_get_le16(p) | (uint32_t)sim_get_le16(p + 2) << 16;
}

static inline uint64_t sim_get_le64(const uint8_t *p)
{
	return sim_get_le32(p) | (uint64_t)sim_get_le32(p + 4) << 32;
}

/* sim.c: what every component shares. */
uint64_t sim_now_ns(void);
/* Runs one command through cci's table: unsupported, length, busy checks, then the handler. */
uint16_t sim_dispatch(struct sim_cci *cci, struct sim_req *r);
/* Starts a background operation; the caller answers CXL_RC_BACKGROUND_STARTED. */
void sim_bg_start(struct sim_cci *cci, uint16_t opcode, uint64_t duration_ms, bool media_disabled,
		  void (*complete)(struct sim_cci *cci));
/* Completes the running background operation if its time is up. */
void sim_bg_poll(struct sim_cci *cci);
/* Percent complete of the running operation, 0-99; 100 when idle. */
unsigned sim_bg_percent(const struct sim_cci *cci);
uint16_t sim_cmd_identify(struct sim_cci *cci, struct sim_req *r);
uint16_t sim_cmd_bg_status(struct sim_cci *cci, struct sim_req *r);
uint16_t sim_cmd_request_abort(struct sim_cci *cci, struct sim_req *r);
uint16_t sim_cmd_supported_logs(struct sim_cci *cci, struct sim_req *r);
uint16_t sim_cmd_get_log(struct sim_cci *cci, struct sim_req *r);

/* sim-memdev.c: the Type 3 memory device. */
struct sim_memdev;

/* Firmware slots (CXL r3.1 Table 8-56 has room for 4 revisions). */
#define SIM_FW_SLOTS_DEFAULT       2u
#define SIM_FW_SLOTS_MAX           4u
#define SIM_FW_TRANSFER_MS_DEFAULT 1000u

struct sim_memdev_config {
	uint64_t serial;
	uint32_t payload_max;
	uint64_t sanitize_ms;
	unsigned fw_slots;       /* 2 to SIM_FW_SLOTS_MAX; 0: SIM_FW_SLOTS_DEFAULT */
	uint64_t fw_transfer_ms; /* a Full Transfer or End in the background; 0: the default */
	bool omit;               /* the device lacks omit_opcode: not in its CEL, unsupported */
	uint16_t omit_opcode;
	const struct sim_pair *cel_effects; /* effects the CEL reports instead of the table's */
	size_t n_cel_effects;
	const struct sim_pair *feature_effects; /* Supported Feature entry index -> effects */
	size_t n_feature_effects;
	bool features_twice; /* Get Supported Features lists every Feature twice */
};

/* NULL when out of memory. */
struct sim_memdev *sim_memdev_new(const struct sim_memdev_config *cfg);
void sim_memdev_free(struct sim_memdev *md);
uint16_t sim_memdev_run(struct sim_memdev *md, struct sim_req *r);
/* The device's CCI, for a model that tunnels to it. */
struct sim_cci *sim_memdev_cci(struct sim_memdev *md);
extern const char sim_memdev_model_name[];

/* sim-switch.c: the switch CCI with a memory device behind one port. */
struct sim_switch;

#define SIM_SWITCH_PORTS_MIN 2
#define SIM_SWITCH_PORTS_MAX 64
/* The switch needs room for a tunnel's 16 bytes of headers around a 256-byte payload. */
#define SIM_SWITCH_PAYLOAD_MIN 512u

/* A multi-logical device behind the switch: at most this many LDs. */
#define SIM_MLD_LDS_MAX 16
/* Its LDs' answers travel in two tunnel levels inside the switch's mailbox. */
#define SIM_SWITCH_MLD_PAYLOAD_MIN 1024u

struct sim_switch_config {
	uint64_t serial;
	uint32_t payload_max;
	unsigned ports;                     /* physical ports; port 0 is the upstream port */
	unsigned tunnel_port;               /* the downstream port with the memory device */
	uint64_t sanitize_ms;               /* of the memory device behind it */
	const struct sim_pair *cel_effects; /* effects the switch's CEL reports instead */
	size_t n_cel_effects;
	unsigned ld_count; /* 0, or an MLD with this many LDs on port tunnel_port + 1 */
};

/* Copies the cel_effects of a model's config into its CCI. */
void sim_cci_set_cel_effects(struct sim_cci *cci, const struct sim_pair *v, size_t n);

struct sim_switch *sim_switch_new(const struct sim_switch_config *cfg);
void sim_switch_free(struct sim_switch *sw);
uint16_t sim_switch_run(struct sim_switch *sw, struct sim_req *r);
extern const char sim_switch_model_name[];

#endif
