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

#define CCI_HEADER_SIZE 12
#define CCI_PAYLOAD_MAX ((1u << 20) - 1) /* 20-bit length field */
#define CCI_CATEGORY_REQUEST 0
#define CCI_CATEGORY_RESPONSE 1

/* Tunnel Management Command (5300h): header before the inner message. */
#define CCI_TUNNEL_REQ_HEADER 4 /* u8 port or LD id, u8 target type, le16 size */
#define CCI_TUNNEL_REP_HEADER 4 /* le16 size, 2 reserved */
#define CCI_TUNNEL_TARGET_PORT_OR_LD 0

struct cci_msg {
	uint8_t category; /* CCI_CATEGORY_* */
	uint8_t tag;
	uint16_t opcode;  /* command set << 8 | command */
	bool background;  /* BO bit of a response */
	uint16_t rc;
	uint16_t vendor_status;
	const uint8_t *payload; /* points into the decoded buffer */
	uint32_t payload_len;
};

struct cci_tunnel_req {
	uint8_t target;      /* port or LD id */
	uint8_t target_type;
	const uint8_t *msg;  /* the inner CCI message, msg_len bytes */
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

#endif
