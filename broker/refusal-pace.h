/*
 * Pacing of refused requests per user: a user (uid) whose requests are
 * refused faster than limits.max_refusals_per_s has its connections' reading
 * paused for a short while (session.c), so its refusals cost mbxd a bounded
 * share of the loop. Every request still gets its answer, in order; only
 * when mbxd reads the next one changes. docs/config.md.
 *
 * Only the event-loop thread calls these functions.
 */
#ifndef MBX_REFUSAL_PACE_H
#define MBX_REFUSAL_PACE_H

#include <stdint.h>
#include <sys/types.h>

/* Users paced at once; past it a new user's refusals are not paced. */
#define REFUSAL_PACE_USERS 1024

struct refusal_pace;

/* A pacer letting each user per_s refusals a second (a burst of as many); NULL: no memory. */
struct refusal_pace *refusal_pace_new(uint32_t per_s);
void refusal_pace_free(struct refusal_pace *p);

/*
 * Counts one refusal of uid at now_ms. Returns how many ms the refused
 * connection should not be read (0: go on). When this starts an episode
 * (the user's first pause since its bucket was last full) *rate is the
 * refusals/s the user reached, else 0: the caller logs once per episode.
 */
uint32_t refusal_pace_note(struct refusal_pace *p, uid_t uid, uint64_t now_ms, uint32_t *rate);

#endif
