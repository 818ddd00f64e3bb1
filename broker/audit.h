/*
 * The audit log: JSON Lines, one record per decision, write-ahead for
 * audited classes (an "intent" record fsync'ed before the command reaches
 * the device, a "result" record after). Each record carries the SHA-256 of
 * the previous line, so the file is a hash chain.
 *
 * Only the event-loop thread calls these functions.
 */
#ifndef MBX_AUDIT_H
#define MBX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mbx/proto.h>

struct audit;

enum audit_kind {
	AUDIT_DECISION, /* a request decided without reaching the device (deny, invalid, read) */
	AUDIT_INTENT,   /* about to send an audited command: fsync'ed first */
	AUDIT_RESULT,   /* the device answered an audited command */
	AUDIT_BACKGROUND, /* a background operation completed */
};

/* Everything one record says. Strings may be NULL (written as null). */
struct audit_record {
	enum audit_kind kind;
	uint64_t intent_seq; /* RESULT and BACKGROUND: the INTENT they close */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *user;
	const char *device;
	const char *transport;
	uint16_t opcode;
	const char *opcode_name;
	const struct mbx_inner *inner;
	size_t n_inner;
	enum mbx_class cls;
	enum mbx_decision decision;
	enum mbx_status status;
	const char *rule;
	const char *source;
	const char *reason;
	const uint8_t *payload; /* hashed, never written */
	size_t payload_len;
	bool have_rc;
	uint16_t cxl_rc;
	uint16_t vendor_status;
	uint32_t duration_us;
	const char *background; /* "started", "completed", "aborted" or NULL */
};

/* Opens (creating, mode 0600) the log at path, continuing its chain. */
int audit_open(const char *path, struct audit **out, char *err, size_t errlen);
void audit_close(struct audit *a);

/*
 * Appends one record; INTENT records are fsync'ed before this returns.
 * *seq gets the record's sequence number. Returns 0 or -errno; after a
 * failure the log is unusable until audit_healthy() says otherwise, and the
 * caller must refuse audited commands.
 */
int audit_write(struct audit *a, const struct audit_record *r, uint64_t *seq);

/* Whether the last write succeeded (a failed log retries on the next write). */
bool audit_healthy(const struct audit *a);

#endif
