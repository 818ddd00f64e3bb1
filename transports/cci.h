/*
 * CCI messages (CXL r3.1 Figure 7-19) and Tunnel Management payloads.
 *
 * The one place their bytes are encoded and decoded: the MCTP transport, the
 * sim switch and the policy's tunnel classifier all use these functions.
 * Decoders treat their input as untrusted and check every length.
 */
#ifndef MBX_CCI_H
#define MBX_CCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CCI_HEADER_SIZE       12
#define CCI_PAYLOAD_MAX       ((1u << 20) - 1) /* 20-bit length field */
#define CCI_CATEGORY_REQUEST  0
#define CCI_CATEGORY_RESPONSE 1

/* Tunnel Management Command (5300h): header before the inner message. */
#define CCI_TUNNEL_REQ_HEADER        4 /* u8 port or LD id, u8 target type, le16 size */
#define CCI_TUNNEL_REP_HEADER        4 /* le16 size, 2 reserved */
#define CCI_TUNNEL_TARGET_PORT_OR_LD 0
#define CCI_TUNNEL_TARGET_LD_POOL    1 /* the LD Pool CCI of a multi-headed device */

struct cci_msg {
	uint8_t category; /* CCI_CATEGORY_* */
	uint8_t tag;
	uint16_t opcode; /* command set << 8 | command */
	bool background; /* BO bit of a response */
	bool reserved; /* a reserved header bit is set (byte 0 bits 7:4, byte 2, byte 7 bits 6:4) */
	uint16_t rc;
	uint16_t vendor_status;
	const uint8_t *payload; /* points into the decoded buffer */
	uint32_t payload_len;
};

struct cci_tunnel_req {
	uint8_t target; /* port or LD id */
	uint8_t target_type;
	const uint8_t *msg; /* the inner CCI message, msg_len bytes */
	uint16_t msg_len;
};

struct cci_tunnel_rep {
	const uint8_t *msg;
	uint16_t msg_len;
};

/* Writes header + payload into buf; returns bytes written or -EMSGSIZE. */
int cci_encode(uint8_t *buf, size_t cap, const struct cci_msg *m);
/* Decodes exactly len bytes: -EPROTO if the length field disagrees. */
int cci_decode(const uint8_t *buf, size_t len, struct cci_msg *m);

/* Tunnel request: -EPROTO if size disagrees with len or is below a header. */
int cci_tunnel_req_decode(const uint8_t *in, size_t len, struct cci_tunnel_req *t);
int cci_tunnel_req_encode(uint8_t *buf, size_t cap, const struct cci_tunnel_req *t);
int cci_tunnel_rep_decode(const uint8_t *in, size_t len, struct cci_tunnel_rep *t);
int cci_tunnel_rep_encode(uint8_t *buf, size_t cap, const struct cci_tunnel_rep *t);

/* What a received message is to the request that waits for an answer. */
enum cci_match {
	CCI_MATCH_OK = 0,    /* the answer to this request, decoded into m */
	CCI_MATCH_OTHER,     /* not an answer to it (a request, another tag): discard */
	CCI_MATCH_MALFORMED, /* carries this request's tag but fails validation */
};

/*
 * Checks len untrusted bytes as the response to the request with this tag
 * and opcode: header, category, tag, opcode, and the length field against
 * the bytes that arrived. On CCI_MATCH_MALFORMED, why (if not NULL) is set
 * to a static phrase naming the fault. A response with the background bit
 * and a Success or Background Command Started return code comes back with
 * rc CXL Background Command Started (01h), whichever of the two it said.
 */
enum cci_match cci_response_match(const uint8_t *buf, size_t len, uint8_t tag, uint16_t opcode,
				  struct cci_msg *m, const char **why);

#endif
