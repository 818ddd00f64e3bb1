/*
 * Pacing of refused requests (refusal-pace.h). Each user has a token
 * bucket (bucket.h) of per_s tokens earning per_s a second; a refusal takes
 * one. With none left the refused connection pauses until the bucket holds
 * a batch again, so over any while the user gets at most about per_s
 * refusals a second plus one burst. The batch doubles with every pause of
 * an episode (from 1 ms of tokens up to 100 ms): a long flood costs a few
 * pauses a second, not one per refusal. The episode ends, and the batch
 * starts small again, once the user's bucket has filled up.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "bucket.h"
#include "refusal-pace.h"

/* The first batch a pause waits for, and the largest, in ms of tokens. */
#define REFUSAL_PACE_FIRST_MS 1
#define REFUSAL_PACE_MAX_MS   100

struct refusal_pace_user {
	uid_t uid;
	struct bucket bucket;
	uint32_t batch_ms; /* the last pause's batch; 0: no episode */
	uint64_t since_ms; /* when the bucket was last full: the rate is counted from it */
	uint64_t count;    /* refusals since then */
};

struct refusal_pace {
	uint32_t per_s;
	struct refusal_pace_user *users;
	size_t n_users;
};

/* Makes a pacer; per_s 0 paces no one. */
struct refusal_pace *refusal_pace_new(uint32_t per_s)
{
	struct refusal_pace *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->per_s = per_s;
	p->users = calloc(REFUSAL_PACE_USERS, sizeof(*p->users));
	if (!p->users) {
		free(p);
		return NULL;
	}
	return p;
}

/* Frees the pacer. */
void refusal_pace_free(struct refusal_pace *p)
{
	if (!p)
		return;
	free(p->users);
	free(p);
}

/* Refills u's bucket; a full one ends its episode and restarts its count. */
static void refusal_pace_refill(const struct refusal_pace *p, struct refusal_pace_user *u,
				uint64_t now_ms)
{
	bucket_refill(&u->bucket, p->per_s / 1000.0, p->per_s, now_ms);
	if (u->bucket.tokens >= p->per_s) {
		u->batch_ms = 0;
		u->since_ms = now_ms;
		u->count = 0;
	}
}

/* uid's state, new with a full bucket, or an idle user's slot reused; NULL when all are busy. */
static struct refusal_pace_user *refusal_pace_user(struct refusal_pace *p, uid_t uid,
						   uint64_t now_ms)
{
	struct refusal_pace_user *u = NULL;

	for (size_t i = 0; i < p->n_users; i++)
		if (p->users[i].uid == uid)
			return &p->users[i];
	if (p->n_users < REFUSAL_PACE_USERS)
		u = &p->users[p->n_users++];
	for (size_t i = 0; !u && i < p->n_users; i++) {
		refusal_pace_refill(p, &p->users[i], now_ms);
		if (p->users[i].bucket.tokens >= p->per_s)
			u = &p->users[i];
	}
	if (!u)
		return NULL;
	*u = (struct refusal_pace_user){
	    .uid = uid, .bucket = {.tokens = p->per_s, .last_ms = now_ms}, .since_ms = now_ms};
	return u;
}

/* Counts a refusal; the pause it calls for, and the rate when an episode starts. */
uint32_t refusal_pace_note(struct refusal_pace *p, uid_t uid, uint64_t now_ms, uint32_t *rate)
{
	struct refusal_pace_user *u;
	double per_ms = p->per_s / 1000.0, batch;
	uint64_t elapsed;

	*rate = 0;
	if (p->per_s == 0 || !(u = refusal_pace_user(p, uid, now_ms)))
		return 0;
	refusal_pace_refill(p, u, now_ms);
	u->count++;
	u->bucket.tokens -= 1.0; /* answered anyway: what it cost is paid back by waiting */
	if (u->bucket.tokens >= 0.0)
		return 0;
	if (u->batch_ms == 0) {
		elapsed = now_ms > u->since_ms ? now_ms - u->since_ms : 1;
		*rate = (uint32_t)(u->count * 1000 / elapsed);
		u->batch_ms = REFUSAL_PACE_FIRST_MS;
	} else if (u->batch_ms < REFUSAL_PACE_MAX_MS) {
		u->batch_ms =
		    u->batch_ms * 2 > REFUSAL_PACE_MAX_MS ? REFUSAL_PACE_MAX_MS : u->batch_ms * 2;
	}
	batch = u->batch_ms * per_ms < 1.0 ? 1.0 : u->batch_ms * per_ms;
	return (uint32_t)((batch - u->bucket.tokens) / per_ms) + 1;
}
