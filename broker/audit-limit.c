/*
 * Coalescing of refusal records (audit-limit.h). A token bucket per uid
 * decides whether a refusal is written in full; what is not is counted
 * under its key, and the counts become SUPPRESSED records on each flush.
 * A user's flood spends only that user's tokens and fills only that user's
 * keys, so it never holds back another user's records; and nothing counted
 * is dropped: a count whose record cannot be written waits for the next
 * flush.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/strcopy.h>

#include "audit-limit.h"
#include "bucket.h"

/* One kind of refusal of one user: what it was, and how many were counted. */
struct audit_limit_key {
	bool used;
	bool active; /* written or counted since the last flush */
	uint16_t opcode;
	enum mbx_class cls;
	enum mbx_decision decision;
	enum mbx_status status;
	char device[MBX_NAME_MAX];
	char transport[32];
	char name[64];
	char rule[MBX_RULE_MAX];
	char source[MBX_SOURCE_MAX];
	struct audit_suppressed sup;
};

struct audit_limit_user {
	uid_t uid;
	gid_t gid;
	char user[64];
	struct bucket bucket;
	struct audit_limit_key keys[AUDIT_LIMIT_KEYS];
	struct audit_limit_key mixed; /* kinds past AUDIT_LIMIT_KEYS */
};

struct audit_limit {
	struct audit *a;
	struct audit_limit_config cfg;
	struct audit_limit_user **users;
	size_t n_users;
	uint64_t pending;
};

/* Makes a limiter for log a. */
struct audit_limit *audit_limit_new(struct audit *a, const struct audit_limit_config *cfg)
{
	struct audit_limit *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->users = calloc(AUDIT_LIMIT_USERS, sizeof(*l->users));
	if (!l->users) {
		free(l);
		return NULL;
	}
	l->a = a;
	l->cfg = *cfg;
	return l;
}

/* Flushes, then frees. */
void audit_limit_free(struct audit_limit *l, uint64_t now_ms)
{
	if (!l)
		return;
	audit_limit_flush(l, now_ms);
	for (size_t i = 0; i < l->n_users; i++)
		free(l->users[i]);
	free(l->users);
	free(l);
}

/* NULL and "" are the same missing name. */
static bool audit_limit_streq(const char *held, const char *s)
{
	return strcmp(held, s ? s : "") == 0;
}

/* Whether record r is of key k's kind. */
static bool audit_limit_same(const struct audit_limit_key *k, const struct audit_record *r)
{
	return k->used && k->opcode == r->opcode && k->cls == r->cls &&
	       k->decision == r->decision && k->status == r->status &&
	       audit_limit_streq(k->device, r->device) && audit_limit_streq(k->rule, r->rule) &&
	       audit_limit_streq(k->source, r->source);
}

/* Fills a free key from record r. */
static void audit_limit_key_set(struct audit_limit_key *k, const struct audit_record *r)
{
	memset(k, 0, sizeof(*k));
	k->used = true;
	k->opcode = r->opcode;
	k->cls = r->cls;
	k->decision = r->decision;
	k->status = r->status;
	mbx_strcopy(k->device, sizeof(k->device), r->device ? r->device : "");
	mbx_strcopy(k->transport, sizeof(k->transport), r->transport ? r->transport : "");
	mbx_strcopy(k->name, sizeof(k->name), r->opcode_name ? r->opcode_name : "");
	mbx_strcopy(k->rule, sizeof(k->rule), r->rule ? r->rule : "");
	mbx_strcopy(k->source, sizeof(k->source), r->source ? r->source : "");
}

/* The key of r's kind for user u, taking a free one if needed; NULL when all are in use. */
static struct audit_limit_key *audit_limit_key(struct audit_limit_user *u,
					       const struct audit_record *r)
{
	struct audit_limit_key *free_key = NULL;

	for (size_t i = 0; i < AUDIT_LIMIT_KEYS; i++) {
		if (audit_limit_same(&u->keys[i], r))
			return &u->keys[i];
		if (!u->keys[i].used && !free_key)
			free_key = &u->keys[i];
	}
	if (free_key)
		audit_limit_key_set(free_key, r);
	return free_key;
}

/* Adds the tokens earned since the user's last refusal, up to the burst. */
static void audit_limit_refill(const struct audit_limit *l, struct audit_limit_user *u,
			       uint64_t now_ms)
{
	bucket_refill(&u->bucket, l->cfg.per_minute / 60000.0, l->cfg.burst, now_ms);
}

/* The state of r's user, made with a full bucket if new; NULL when the table is full. */
static struct audit_limit_user *audit_limit_user(struct audit_limit *l,
						 const struct audit_record *r, uint64_t now_ms)
{
	struct audit_limit_user *u;

	for (size_t i = 0; i < l->n_users; i++)
		if (l->users[i]->uid == r->uid)
			return l->users[i];
	if (l->n_users == AUDIT_LIMIT_USERS || !(u = calloc(1, sizeof(*u))))
		return NULL;
	u->uid = r->uid;
	u->bucket.tokens = l->cfg.burst;
	u->bucket.last_ms = now_ms;
	l->users[l->n_users++] = u;
	return u;
}

/* Counts r under key k (or the user's mixed count). */
static void audit_limit_count(struct audit_limit *l, struct audit_limit_user *u,
			      struct audit_limit_key *k)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!k) {
		k = &u->mixed;
		k->used = true;
		k->sup.mixed = true;
	}
	if (k->sup.count++ == 0)
		k->sup.first = now;
	k->sup.last = now;
	k->active = true;
	l->pending++;
}

/* Writes r in full while its user has tokens, else counts it. */
int audit_limit_write(struct audit_limit *l, const struct audit_record *r, uint64_t now_ms,
		      uint64_t *seq)
{
	struct audit_limit_user *u = NULL;
	struct audit_limit_key *k;
	int rc;

	*seq = 0;
	/* A full table writes in full: it costs bytes, never a record. */
	if (l->cfg.burst == 0 || !(u = audit_limit_user(l, r, now_ms)))
		return audit_write(l->a, r, seq);
	audit_limit_refill(l, u, now_ms);
	u->gid = r->gid;
	mbx_strcopy(u->user, sizeof(u->user), r->user ? r->user : "");
	k = audit_limit_key(u, r);
	if (u->bucket.tokens < 1.0) {
		audit_limit_count(l, u, k);
		return AUDIT_LIMIT_COUNTED;
	}
	u->bucket.tokens -= 1.0;
	rc = audit_write(l->a, r, seq);
	if (rc == 0 && k) {
		k->sup.like_seq = *seq;
		k->active = true;
	}
	return rc;
}

/* Writes the SUPPRESSED record of key k of user u; 0 or -errno. */
static int audit_limit_emit(struct audit_limit *l, const struct audit_limit_user *u,
			    struct audit_limit_key *k)
{
	struct audit_record rec = {
	    .kind = AUDIT_SUPPRESSED,
	    .uid = u->uid,
	    .gid = u->gid,
	    .user = u->user,
	    .device = k->sup.mixed || !k->device[0] ? NULL : k->device,
	    .transport = k->sup.mixed || !k->transport[0] ? NULL : k->transport,
	    .opcode = k->opcode,
	    .opcode_name = k->sup.mixed || !k->name[0] ? NULL : k->name,
	    .cls = k->cls,
	    .decision = k->decision,
	    .status = k->status,
	    .rule = k->sup.mixed || !k->rule[0] ? NULL : k->rule,
	    .source = k->sup.mixed || !k->source[0] ? NULL : k->source,
	    .suppressed = &k->sup,
	};
	uint64_t seq;
	int rc = audit_write(l->a, &rec, &seq);

	if (rc < 0)
		return rc;
	l->pending -= k->sup.count;
	k->sup.count = 0;
	return 0;
}

/* Flushes one key: its count as a record, or the key itself when it stayed idle. */
static int audit_limit_flush_key(struct audit_limit *l, const struct audit_limit_user *u,
				 struct audit_limit_key *k, int *written)
{
	int rc = 0;

	if (k->sup.count) {
		rc = audit_limit_emit(l, u, k);
		if (rc == 0)
			(*written)++;
	} else if (!k->active) {
		k->used = false; /* idle for a whole window: its like_seq is forgotten */
	}
	k->active = false;
	return rc;
}

/* Whether a user holds nothing worth keeping: no keys, no counts, a full bucket. */
static bool audit_limit_user_idle(const struct audit_limit *l, const struct audit_limit_user *u)
{
	if (u->mixed.sup.count || u->bucket.tokens < l->cfg.burst)
		return false;
	for (size_t i = 0; i < AUDIT_LIMIT_KEYS; i++)
		if (u->keys[i].used)
			return false;
	return true;
}

/* Writes every count as a SUPPRESSED record; forgets idle keys and users. */
int audit_limit_flush(struct audit_limit *l, uint64_t now_ms)
{
	int written = 0, first_rc = 0;

	for (size_t i = 0; i < l->n_users;) {
		struct audit_limit_user *u = l->users[i];

		for (size_t k = 0; k <= AUDIT_LIMIT_KEYS; k++) {
			struct audit_limit_key *key =
			    k < AUDIT_LIMIT_KEYS ? &u->keys[k] : &u->mixed;
			int rc = audit_limit_flush_key(l, u, key, &written);

			if (rc < 0 && first_rc == 0)
				first_rc = rc;
		}
		audit_limit_refill(l, u, now_ms);
		if (audit_limit_user_idle(l, u)) {
			free(u);
			l->users[i] = l->users[--l->n_users];
			continue;
		}
		i++;
	}
	return first_rc < 0 ? first_rc : written;
}

/* Records counted and not yet written. */
uint64_t audit_limit_pending(const struct audit_limit *l)
{
	return l->pending;
}
