/*
 * mbxd wire protocol, shared by mbxd, libmbx and any other client.
 *
 * Bump MBX_PROTO_VERSION if anything in this file changes the bytes on the
 * wire. docs/protocol.md describes the same format in prose; keep them in step.
 *
 * Every message is a frame: a 12-byte header followed by a body of
 * header.length bytes. All integers are little-endian; there are no pointers
 * and no padding on the wire. A string is a le16 length followed by that many
 * bytes, without a terminating NUL and never containing one.
 */
#ifndef MBX_PROTO_H
#define MBX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MBX_PROTO_VERSION 1

#define MBX_HEADER_SIZE 12
/* The CXL mailbox payload maximum (2^20, CXL r3.1 8.2.8.4.3). */
#define MBX_PAYLOAD_MAX (1u << 20)
/* Room for every fixed field and string of the largest message. */
#define MBX_BODY_MAX (MBX_PAYLOAD_MAX + 4096u)

/* Field sizes in decoded structs, NUL included. */
#define MBX_NAME_MAX      32 /* device name */
#define MBX_TRANSPORT_MAX 16 /* transport name */
#define MBX_KIND_MAX      16 /* "memdev", "switch" */
#define MBX_MODEL_MAX     64
#define MBX_SERIAL_MAX    32
#define MBX_REASON_MAX    256
#define MBX_RULE_MAX      64
#define MBX_SOURCE_MAX    256 /* "file:line" */
#define MBX_MESSAGE_MAX   512
#define MBX_SOFTWARE_MAX  64
#define MBX_DEVICES_MAX   256
#define MBX_INNER_MAX     8 /* tunnel levels reported in a RESULT */

enum mbx_msg_type {
	MBX_MSG_HELLO = 1,   /* both ways, first message of a connection */
	MBX_MSG_DEVICES = 2, /* request: empty body; reply: device list */
	MBX_MSG_SUBMIT = 3,  /* client -> server: run a command */
	MBX_MSG_EXPLAIN = 4, /* client -> server: decide only, never sent */
	MBX_MSG_RESULT = 5,  /* server -> client: answer to SUBMIT/EXPLAIN */
	MBX_MSG_EVENT = 6,   /* server -> client: background progress */
	MBX_MSG_ERROR = 7,   /* server -> client: protocol error, then close */
	MBX_MSG_METRICS = 8, /* request: empty body; reply: Prometheus text */
	MBX_MSG_WATCH = 9,   /* client -> server: follow a device's background operations */
};

/* Broker status in a RESULT. OK means the device answered: see cxl_rc. */
enum mbx_status {
	MBX_STATUS_OK = 0,
	MBX_STATUS_DENIED = 1,
	MBX_STATUS_INVALID = 2,
	MBX_STATUS_BUSY = 3,
	MBX_STATUS_TIMEOUT = 4,
	MBX_STATUS_DEVICE_ERROR = 5,
	MBX_STATUS_NO_DEVICE = 6,
	MBX_STATUS_UNSUPPORTED = 7,
	MBX_STATUS_AUDIT_UNAVAILABLE = 8,
	MBX_STATUS_RATE_LIMITED = 9,
	MBX_STATUS_SHUTTING_DOWN = 10,
	MBX_STATUS_KERNEL_OWNED = 11,
	MBX_STATUS_RAW_DISABLED = 12,
	MBX_STATUS_CANCELLED = 13, /* dropped before it ran (client left, daemon stopping) */
	MBX_STATUS_COUNT
};

/* Blast-radius classes, least to most dangerous; vendor is unordered. */
enum mbx_class {
	MBX_CLASS_READ = 0,
	MBX_CLASS_LOG = 1,
	MBX_CLASS_CONFIG = 2,
	MBX_CLASS_DATA = 3,
	MBX_CLASS_SECURITY = 4,
	MBX_CLASS_FABRIC = 5,
	MBX_CLASS_VENDOR = 6,
	MBX_CLASS_COUNT
};

enum mbx_decision {
	MBX_DECISION_ALLOW = 0,
	MBX_DECISION_DENY = 1,
	MBX_DECISION_INVALID = 2,
};

enum mbx_device_state {
	MBX_DEVICE_READY = 0,
	MBX_DEVICE_BACKGROUND = 1, /* a background operation is running */
	MBX_DEVICE_FAILED = 2,
};

enum mbx_event_kind {
	MBX_EVENT_PROGRESS = 1,
	MBX_EVENT_COMPLETE = 2,
};

enum mbx_error_code {
	MBX_ERROR_PROTOCOL = 1, /* malformed frame or body */
	MBX_ERROR_VERSION = 2,  /* no common protocol version */
	MBX_ERROR_ORDER = 3,    /* message out of order (e.g. before HELLO) */
	MBX_ERROR_TOO_BIG = 4,  /* frame over MBX_BODY_MAX */
	MBX_ERROR_SHUTDOWN = 5, /* daemon is stopping */
	MBX_ERROR_TIMEOUT = 6,  /* a deadline passed: HELLO, or a frame left unfinished */
	MBX_ERROR_LIMIT = 7,    /* a per-user limit: too many connections, EVENTs unread */
};

struct mbx_header {
	uint32_t length; /* body bytes after the header */
	uint16_t type;   /* enum mbx_msg_type */
	uint16_t flags;  /* reserved, must be 0 */
	uint32_t tag;    /* chosen by the client, echoed in answers */
};

/* HELLO from the client: the range of versions it speaks. */
struct mbx_hello_req {
	uint16_t version_min;
	uint16_t version_max;
	char software[MBX_SOFTWARE_MAX];
};

/* HELLO from the server: the chosen version and the server's limits. */
struct mbx_hello_rep {
	uint16_t version;
	uint32_t max_payload;  /* largest SUBMIT payload accepted */
	uint32_t max_inflight; /* tagged requests one connection may have open */
	char software[MBX_SOFTWARE_MAX];
};

/* One entry of the DEVICES reply. */
struct mbx_device_desc {
	char name[MBX_NAME_MAX];
	char transport[MBX_TRANSPORT_MAX];
	char kind[MBX_KIND_MAX];
	char model[MBX_MODEL_MAX];
	char serial[MBX_SERIAL_MAX];
	uint8_t state;        /* enum mbx_device_state */
	uint8_t bg_percent;   /* when state is BACKGROUND */
	uint16_t bg_opcode;   /* when state is BACKGROUND */
	uint32_t payload_max; /* the device's mailbox payload size */
};

/* SUBMIT and EXPLAIN share one body. payload points into the decoded frame. */
struct mbx_submit {
	char device[MBX_NAME_MAX];
	uint16_t opcode;
	uint16_t flags;              /* reserved, must be 0 */
	uint32_t timeout_ms;         /* 0: the device's default */
	char reason[MBX_REASON_MAX]; /* empty: no reason given */
	const uint8_t *payload;
	uint32_t payload_len;
};

/* One level of a decoded tunnel, outermost first. */
struct mbx_inner {
	uint16_t opcode;
	uint8_t cls;     /* enum mbx_class */
	uint8_t depth;   /* 1 for the first inner message */
	uint16_t target; /* port or LD id the level is sent to */
};

struct mbx_result {
	uint16_t status;             /* enum mbx_status */
	uint16_t cxl_rc;             /* the device's return code */
	uint16_t vendor_status;      /* the device's vendor status */
	uint8_t cls;                 /* enum mbx_class */
	uint8_t decision;            /* enum mbx_decision */
	uint64_t audit_seq;          /* 0 when not audited */
	uint32_t duration_us;        /* time in the device */
	uint32_t retry_after_ms;     /* with BUSY and RATE_LIMITED */
	char rule[MBX_RULE_MAX];     /* deciding rule, "" for default deny */
	char source[MBX_SOURCE_MAX]; /* its file:line, "" for default deny */
	char message[MBX_MESSAGE_MAX];
	uint16_t n_inner;
	struct mbx_inner inner[MBX_INNER_MAX];
	const uint8_t *payload; /* device output; points into the frame */
	uint32_t payload_len;
};

struct mbx_event {
	char device[MBX_NAME_MAX];
	uint16_t opcode;
	uint8_t kind;    /* enum mbx_event_kind */
	uint8_t percent; /* 0..100 */
	uint16_t cxl_rc; /* final return code with COMPLETE */
	uint16_t vendor_status;
	uint64_t audit_seq;
};

struct mbx_error {
	uint16_t code; /* enum mbx_error_code */
	char message[MBX_MESSAGE_MAX];
};

/*
 * WATCH: the device whose background operations to follow. Answered by a
 * RESULT (ok, or no-device), then EVENTs with the WATCH's tag until the
 * connection closes.
 */
struct mbx_watch {
	char device[MBX_NAME_MAX];
};

/* The METRICS reply: Prometheus text, not NUL-terminated; points into the frame. */
struct mbx_metrics {
	const char *text;
	uint32_t len;
};

/*
 * A growable output buffer. Encoders append one whole frame and return 0,
 * or -ENOMEM / -EMSGSIZE leaving the buffer as it was.
 */
struct mbx_wbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void mbx_wbuf_init(struct mbx_wbuf *w);
void mbx_wbuf_free(struct mbx_wbuf *w);

int mbx_encode_hello_req(struct mbx_wbuf *w, uint32_t tag, const struct mbx_hello_req *m);
int mbx_encode_hello_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_hello_rep *m);
int mbx_encode_devices_req(struct mbx_wbuf *w, uint32_t tag);
int mbx_encode_devices_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_device_desc *d,
			   size_t n);
/* type is MBX_MSG_SUBMIT or MBX_MSG_EXPLAIN. */
int mbx_encode_submit(struct mbx_wbuf *w, uint16_t type, uint32_t tag, const struct mbx_submit *m);

/*
 * Tells whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). When not, *bad (if not NULL) is the
 * offset of the first byte that is not. mbxd refuses a SUBMIT or EXPLAIN
 * whose reason is not: a reason is kept and audited exactly as given.
 */
bool mbx_utf8_valid(const char *s, size_t *bad);
int mbx_encode_result(struct mbx_wbuf *w, uint32_t tag, const struct mbx_result *m);
int mbx_encode_event(struct mbx_wbuf *w, uint32_t tag, const struct mbx_event *m);
int mbx_encode_error(struct mbx_wbuf *w, uint32_t tag, const struct mbx_error *m);
int mbx_encode_metrics_req(struct mbx_wbuf *w, uint32_t tag);
int mbx_encode_metrics_rep(struct mbx_wbuf *w, uint32_t tag, const struct mbx_metrics *m);
int mbx_encode_watch(struct mbx_wbuf *w, uint32_t tag, const struct mbx_watch *m);

/*
 * Decoders check everything: the header's type is known, flags are zero and
 * length is at most MBX_BODY_MAX; a body is consumed exactly (no trailing
 * bytes), strings fit their field and hold no NUL, payload lengths match.
 * They return 0 or -EPROTO (malformed) / -EMSGSIZE (too long).
 */
int mbx_decode_header(const uint8_t buf[MBX_HEADER_SIZE], struct mbx_header *h);
int mbx_decode_hello_req(const uint8_t *body, size_t len, struct mbx_hello_req *m);
int mbx_decode_hello_rep(const uint8_t *body, size_t len, struct mbx_hello_rep *m);
/* Fills at most max entries; a list longer than max is -EMSGSIZE. */
int mbx_decode_devices_rep(const uint8_t *body, size_t len, struct mbx_device_desc *d, size_t max,
			   size_t *n);
int mbx_decode_submit(const uint8_t *body, size_t len, struct mbx_submit *m);
int mbx_decode_result(const uint8_t *body, size_t len, struct mbx_result *m);
int mbx_decode_event(const uint8_t *body, size_t len, struct mbx_event *m);
int mbx_decode_error(const uint8_t *body, size_t len, struct mbx_error *m);
/* The text is borrowed from body; it holds no NUL. */
int mbx_decode_metrics_rep(const uint8_t *body, size_t len, struct mbx_metrics *m);
int mbx_decode_watch(const uint8_t *body, size_t len, struct mbx_watch *m);

/* Names for humans and for JSON; never NULL ("unknown" for bad values). */
const char *mbx_status_name(int status);
const char *mbx_class_name(int cls);
const char *mbx_decision_name(int decision);
/* Returns the class for a name, or -1. */
int mbx_class_from_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif
