/*
 * Coalescing of refusal records: each user's denied, invalid and
 * unsupported requests may write refused_burst records at once and
 * refused_per_minute after that; past it, records are counted per key (same
 * user, device, opcode, class, decision, status and rule) and one
 * SUPPRESSED record per key and window says how many like record S were
 * not written, first and last time. Every client still gets its answer;
 * only the log's copy is coalesced. docs/audit.md "Coalesced refusals".
 *
 * Only the event-loop thread calls these functions.
 */
#ifndef MBX_AUDIT_LIMIT_H
#define MBX_AUDIT_LIMIT_H

#include <stdint.h>

#include "audit.h"

/* Kinds a user may have counted at once; more fall into one mixed count. */
#define AUDIT_LIMIT_KEYS 16
/* Users with counts or spent tokens held at once; past it records are written in full. */
#define AUDIT_LIMIT_USERS 1024

struct audit_limit_config {
	uint32_t burst;      /* records written at once per user; 0: no limit */
	uint32_t per_minute; /* records per minute per user after the burst */
	uint32_t window_ms;  /* how often counts are flushed as SUPPRESSED records */
};

struct audit_limit;

/* A limiter writing to a (not owned); NULL when out of memory. */
struct audit_limit *audit_limit_new(struct audit *a, const struct audit_limit_config *cfg);
/* Flushes what is counted, then frees the limiter. */
void audit_limit_free(struct audit_limit *l, uint64_t now_ms);

/*
 * Writes r (the DECISION record of a refused request) in full while its
 * user has tokens, else counts it. Returns 0 when written (*seq set),
 * AUDIT_LIMIT_COUNTED when counted (*seq 0), -errno when the write failed.
 */
#define AUDIT_LIMIT_COUNTED 1
int audit_limit_write(struct audit_limit *l, const struct audit_record *r, uint64_t now_ms,
		      uint64_t *seq);

/*
 * Writes one SUPPRESSED record per key with a count and forgets idle keys
 * and users. A count whose record cannot be written is kept for the next
 * flush. Returns the records written, or -errno of the first failure.
 */
int audit_limit_flush(struct audit_limit *l, uint64_t now_ms);

/* Records counted and not yet written in a SUPPRESSED record. */
uint64_t audit_limit_pending(const struct audit_limit *l);

#endif
