/*
 * A token bucket: holds up to a cap of tokens and earns them at a steady
 * rate. The refusal limits share it: the audit's coalescing
 * (audit-limit.c) and the pacing of a user's refused requests
 * (refusal-pace.c).
 */
#ifndef MBX_BUCKET_H
#define MBX_BUCKET_H

#include <stdint.h>

struct bucket {
	double tokens;
	uint64_t last_ms; /* when tokens were last earned */
};

/* Adds the tokens earned since the last refill at per_ms a millisecond, up to cap. */
static inline void bucket_refill(struct bucket *b, double per_ms, double cap, uint64_t now_ms)
{
	if (now_ms > b->last_ms)
		b->tokens += (double)(now_ms - b->last_ms) * per_ms;
	if (b->tokens > cap)
		b->tokens = cap;
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
}

#endif
