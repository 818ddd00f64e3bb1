/*
 * The built-in opcode catalog: every opcode of the CXL generic, memory
 * device and FM-API command sets, with what it does to the world.
 */
#ifndef MBX_CATALOG_H
#define MBX_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbx/proto.h>

#define CATALOG_SIZE_VARIABLE UINT32_MAX

struct catalog_entry {
	uint16_t opcode;
	const char *name; /* "Get Health Info" */
	enum mbx_class cls;
	bool background;   /* may run as a background operation */
	bool kernel_owned; /* the Linux driver reserves it when bound */
	uint32_t min_in;   /* input payload bounds in bytes */
	uint32_t max_in;   /* CATALOG_SIZE_VARIABLE: up to the mailbox size */
};

/* The entry for opcode, or NULL when the catalog does not know it. */
const struct catalog_entry *catalog_lookup(uint16_t opcode);
size_t catalog_count(void);
const struct catalog_entry *catalog_at(size_t i);

/* Well-known opcodes the broker itself sends. */
#define CXL_OP_IDENTIFY               0x0001
#define CXL_OP_BG_STATUS              0x0002
#define CXL_OP_REQUEST_ABORT          0x0005
#define CXL_OP_GET_SUPPORTED_LOGS     0x0400
#define CXL_OP_GET_LOG                0x0401
#define CXL_OP_GET_SUPPORTED_FEATURES 0x0500
#define CXL_OP_SET_FEATURE            0x0502
#define CXL_OP_IDENTIFY_MEMDEV        0x4000
#define CXL_OP_GET_HEALTH_INFO        0x4200
#define CXL_OP_SANITIZE               0x4400
#define CXL_OP_IDENTIFY_SWITCH        0x5100
#define CXL_OP_TUNNEL                 0x5300

/* CXL return codes (CXL r3.1 Table 8-34), named in one place. */
enum cxl_rc {
	CXL_RC_SUCCESS = 0x00,
	CXL_RC_BACKGROUND_STARTED = 0x01,
	CXL_RC_INVALID_INPUT = 0x02,
	CXL_RC_UNSUPPORTED = 0x03,
	CXL_RC_INTERNAL_ERROR = 0x04,
	CXL_RC_RETRY_REQUIRED = 0x05,
	CXL_RC_BUSY = 0x06,
	CXL_RC_MEDIA_DISABLED = 0x07,
	CXL_RC_FW_TRANSFER_IN_PROGRESS = 0x08,
	CXL_RC_FW_TRANSFER_OUT_OF_ORDER = 0x09,
	CXL_RC_FW_VERIFICATION_FAILED = 0x0a,
	CXL_RC_INVALID_SLOT = 0x0b,
	CXL_RC_ACTIVATION_FAILED_ROLLED_BACK = 0x0c,
	CXL_RC_ACTIVATION_FAILED_RESET = 0x0d,
	CXL_RC_INVALID_HANDLE = 0x0e,
	CXL_RC_INVALID_PHYSICAL_ADDRESS = 0x0f,
	CXL_RC_INJECT_POISON_LIMIT = 0x10,
	CXL_RC_PERMANENT_MEDIA_FAILURE = 0x11,
	CXL_RC_ABORTED = 0x12,
	CXL_RC_INVALID_SECURITY_STATE = 0x13,
	CXL_RC_INCORRECT_PASSPHRASE = 0x14,
	CXL_RC_UNSUPPORTED_MAILBOX = 0x15,
	CXL_RC_INVALID_PAYLOAD_LENGTH = 0x16,
};

/* The spec's name for a return code ("Invalid Payload Length"); never NULL. */
const char *cxl_rc_name(uint16_t rc);

#endif
