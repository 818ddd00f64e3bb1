/*
 * Decisions, compiled: rules are indexed by principal ("subject": any, a
 * user, a group) and, per device name seen, by class and opcode, so one
 * request costs a few lookups per subject of the asking principal whatever
 * the number of rules. Precedence: explicit deny > allow > default deny;
 * among rules of one kind the first in file order is named.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/strcopy.h>

#include "cci.h"
#include "policy-internal.h"

#define SUBJECT_ANY 0
#define DEVTABS_MAX 256 /* device names cached before the cache starts over */
/* Subjects of one principal: any, its user, and every group (policy_decide refuses more). */
#define SUBJECTS_MAX (POLICY_PRINCIPAL_GROUPS_MAX + 2)

/* Hashes a string (FNV-1a). */
static uint64_t decide_hash(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

#define DECIDE_HASH_SEED 0xcbf29ce484222325ull

/* Finds key's slot in a string map: its own, or the empty one it would take. */
static size_t decide_strmap_slot(const struct policy_strmap *m, const char *key)
{
	size_t i = decide_hash(key, DECIDE_HASH_SEED) & (m->cap - 1);

	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* Doubles a string map. */
static int decide_strmap_grow(struct policy_strmap *m)
{
	struct policy_strmap n = {.cap = m->cap ? m->cap * 2 : 64};

	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = decide_strmap_slot(&n, m->keys[i]);

		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
	}
	n.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

/* Sets key -> val, copying the key. */
int policy_strmap_put(struct policy_strmap *m, const char *key, uint32_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && decide_strmap_grow(m) < 0)
		return -ENOMEM;
	i = decide_strmap_slot(m, key);
	if (!m->keys[i]) {
		m->keys[i] = strdup(key);
		if (!m->keys[i])
			return -ENOMEM;
		m->n++;
	}
	m->vals[i] = val;
	return 0;
}

/* Looks key up. */
bool policy_strmap_get(const struct policy_strmap *m, const char *key, uint32_t *val)
{
	size_t i;

	if (!m->cap)
		return false;
	i = decide_strmap_slot(m, key);
	if (!m->keys[i])
		return false;
	*val = m->vals[i];
	return true;
}

/* Frees a string map. */
void policy_strmap_free(struct policy_strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Returns the subject id of "u:name" / "g:name", creating it when asked. */
static int decide_subject(struct policy *p, char kind, const char *name, bool create, uint32_t *id)
{
	char key[300];
	size_t len = strnlen(name, sizeof(key) - 3);

	key[0] = kind;
	key[1] = ':';
	memcpy(key + 2, name, len);
	key[2 + len] = '\0';
	if (policy_strmap_get(&p->subjects, key, id))
		return 0;
	if (!create)
		return -ENOENT;
	*id = p->n_subjects;
	if (policy_strmap_put(&p->subjects, key, *id) < 0)
		return -ENOMEM;
	p->n_subjects++;
	return 0;
}

/* Gives each rule the ids of the subjects it applies to. */
int policy_compile(struct policy *p)
{
	p->n_subjects = 1; /* SUBJECT_ANY */
	for (size_t i = 0; i < p->n_rules; i++) {
		struct policy_rule *r = &p->rules[i];
		size_t n = 0;

		r->subjects = calloc(1 + r->n_users + r->n_groups, sizeof(*r->subjects));
		if (!r->subjects)
			return -ENOMEM;
		if (r->any)
			r->subjects[n++] = SUBJECT_ANY;
		for (size_t j = 0; j < r->n_users; j++)
			if (decide_subject(p, 'u', r->users[j], true, &r->subjects[n++]) < 0)
				return -ENOMEM;
		for (size_t j = 0; j < r->n_groups; j++)
			if (decide_subject(p, 'g', r->groups[j], true, &r->subjects[n++]) < 0)
				return -ENOMEM;
		r->n_subjects = n;
	}
	return 0;
}

/* Frees the strings and arrays of one rule. */
static void decide_rule_free(struct policy_rule *r)
{
	for (size_t i = 0; i < r->n_users; i++)
		free(r->users[i]);
	for (size_t i = 0; i < r->n_groups; i++)
		free(r->groups[i]);
	for (size_t i = 0; i < r->n_devices; i++)
		free(r->devices[i]);
	free(r->users);
	free(r->groups);
	free(r->devices);
	free(r->allow_ops);
	free(r->deny_ops);
	free(r->subjects);
	free(r->name);
	free(r->owner);
}

/* Frees one device table. */
static void decide_devtab_free(struct policy_devtab *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->first_allow);
	free(t->first_deny);
	free(t->ops);
	free(t);
}

/* Forgets every cached device table. */
static void decide_devtabs_clear(struct policy *p)
{
	for (size_t i = 0; i < p->n_devtabs; i++)
		decide_devtab_free(p->devtabs[i]);
	free(p->devtabs);
	p->devtabs = NULL;
	p->n_devtabs = 0;
}

/* Frees a policy and everything it owns. */
void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++)
		decide_rule_free(&p->rules[i]);
	free(p->rules);
	free(p->ovr);
	free(p->users_dir);
	policy_strmap_free(&p->subjects);
	decide_devtabs_clear(p);
	for (size_t i = 0; i < p->buckets_cap; i++)
		free(p->buckets[i].user);
	free(p->buckets);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Finds the slot of (subject, opcode) in a device table's opcode index. */
static struct policy_opslot *decide_opslot(const struct policy_devtab *t, uint32_t key)
{
	size_t i;

	if (!t->ops_cap)
		return NULL;
	i = (key * 2654435761u) & (t->ops_cap - 1);
	while (t->ops[i].key != UINT32_MAX && t->ops[i].key != key)
		i = (i + 1) & (t->ops_cap - 1);
	return &t->ops[i];
}

/* Records rule i as allowing or denying an opcode for a subject, if first. */
static void decide_devtab_op(struct policy_devtab *t, uint32_t s, uint16_t op, int32_t i, bool deny)
{
	struct policy_opslot *slot = decide_opslot(t, s << 16 | op);

	if (slot->key == UINT32_MAX) {
		slot->key = s << 16 | op;
		slot->allow = POLICY_NO_RULE;
		slot->deny = POLICY_NO_RULE;
	}
	if (deny && slot->deny > i)
		slot->deny = i;
	if (!deny && slot->allow > i)
		slot->allow = i;
}

/* Tells whether a rule's device globs match a device name. */
static bool decide_rule_device(const struct policy_rule *r, const char *dev)
{
	if (!r->n_devices)
		return true;
	for (size_t i = 0; i < r->n_devices; i++)
		if (fnmatch(r->devices[i], dev, 0) == 0)
			return true;
	return false;
}

/* Sizes a device table's opcode index for the rules that match the device. */
static int decide_devtab_alloc(const struct policy *p, struct policy_devtab *t, const char *dev)
{
	size_t n_ops = 0;

	for (size_t i = 0; i < p->n_rules; i++)
		if (decide_rule_device(&p->rules[i], dev))
			n_ops += (p->rules[i].n_allow_ops + p->rules[i].n_deny_ops) *
				 p->rules[i].n_subjects;
	t->ops_cap = 16;
	while (t->ops_cap < n_ops * 2)
		t->ops_cap *= 2;
	t->name = strdup(dev);
	t->first_allow = malloc(p->n_subjects * sizeof(*t->first_allow));
	t->first_deny = malloc(p->n_subjects * sizeof(*t->first_deny));
	t->ops = malloc(t->ops_cap * sizeof(*t->ops));
	if (!t->name || !t->first_allow || !t->first_deny || !t->ops)
		return -ENOMEM;
	for (size_t s = 0; s < p->n_subjects; s++)
		for (int c = 0; c < MBX_CLASS_COUNT; c++)
			t->first_allow[s][c] = t->first_deny[s][c] = POLICY_NO_RULE;
	for (size_t i = 0; i < t->ops_cap; i++)
		t->ops[i].key = UINT32_MAX;
	return 0;
}

/* Compiles the rules that match one device name into its table. */
static struct policy_devtab *decide_devtab_build(const struct policy *p, const char *dev)
{
	struct policy_devtab *t = calloc(1, sizeof(*t));

	if (!t || decide_devtab_alloc(p, t, dev) < 0) {
		decide_devtab_free(t);
		return NULL;
	}
	/* Walk backwards so the first rule in file order is the one left standing. */
	for (size_t k = p->n_rules; k-- > 0;) {
		const struct policy_rule *r = &p->rules[k];
		int32_t i = (int32_t)k;

		if (!decide_rule_device(r, dev))
			continue;
		for (size_t j = 0; j < r->n_subjects; j++) {
			uint32_t s = r->subjects[j];

			for (int c = 0; c < MBX_CLASS_COUNT; c++) {
				if (r->allow_cls & POLICY_CLASS_BIT(c))
					t->first_allow[s][c] = i;
				if (r->deny_cls & POLICY_CLASS_BIT(c))
					t->first_deny[s][c] = i;
			}
			for (size_t o = 0; o < r->n_allow_ops; o++)
				decide_devtab_op(t, s, r->allow_ops[o], i, false);
			for (size_t o = 0; o < r->n_deny_ops; o++)
				decide_devtab_op(t, s, r->deny_ops[o], i, true);
		}
	}
	return t;
}

/* Returns the compiled table for a device name, building it on first use. */
static const struct policy_devtab *decide_devtab(struct policy *p, const char *dev)
{
	struct policy_devtab *t, **v;

	for (size_t i = 0; i < p->n_devtabs; i++)
		if (strcmp(p->devtabs[i]->name, dev) == 0)
			return p->devtabs[i];
	if (p->n_devtabs >= DEVTABS_MAX)
		decide_devtabs_clear(p);
	t = decide_devtab_build(p, dev);
	if (!t)
		return NULL;
	v = realloc(p->devtabs, (p->n_devtabs + 1) * sizeof(*v));
	if (!v) {
		decide_devtab_free(t);
		return NULL;
	}
	p->devtabs = v;
	p->devtabs[p->n_devtabs++] = t;
	return t;
}

/* The subjects a principal is: any, its user, each of its groups the policy names. */
static size_t decide_subjects(struct policy *p, const struct policy_principal *who, uint32_t *subs)
{
	size_t n = 0;

	subs[n++] = SUBJECT_ANY;
	if (!who)
		return n;
	if (who->user && decide_subject(p, 'u', who->user, false, &subs[n]) == 0)
		n++;
	for (size_t i = 0; i < who->n_groups && n < SUBJECTS_MAX; i++)
		if (who->groups[i] && decide_subject(p, 'g', who->groups[i], false, &subs[n]) == 0)
			n++;
	return n;
}

/* One lookup context: the device's table and the principal's subjects. */
struct decide_ctx {
	const struct policy_devtab *t;
	const uint32_t *subs;
	size_t n_subs;
};

/* First rule (by file order) allowing or denying a class for any subject. */
static int32_t decide_by_class(const struct decide_ctx *c, enum mbx_class cls, bool deny)
{
	int32_t best = POLICY_NO_RULE;

	for (size_t i = 0; i < c->n_subs; i++) {
		int32_t r =
		    deny ? c->t->first_deny[c->subs[i]][cls] : c->t->first_allow[c->subs[i]][cls];

		if (r < best)
			best = r;
	}
	return best;
}

/* First rule allowing or denying an opcode for any subject. */
static int32_t decide_by_opcode(const struct decide_ctx *c, uint16_t op, bool deny)
{
	int32_t best = POLICY_NO_RULE;

	for (size_t i = 0; i < c->n_subs; i++) {
		const struct policy_opslot *s = decide_opslot(c->t, c->subs[i] << 16 | op);
		int32_t r;

		if (!s || s->key == UINT32_MAX)
			continue;
		r = deny ? s->deny : s->allow;
		if (r < best)
			best = r;
	}
	return best;
}

/* The deny rule that applies: to the request's class, or to any level's class or opcode. */
static int32_t decide_deny(const struct decide_ctx *c, const struct policy_class *pc)
{
	int32_t best = decide_by_class(c, pc->cls, true);

	for (size_t l = 0; l < pc->n_levels; l++) {
		int32_t a = decide_by_class(c, pc->level[l].cls, true);
		int32_t b = decide_by_opcode(c, pc->level[l].opcode, true);

		if (a < best)
			best = a;
		if (b < best)
			best = b;
	}
	return best;
}

/* The rules an allow rests on: one for the whole request, or one per level. */
struct decide_allowers {
	int32_t named; /* the rule the answer names */
	size_t n;
	int32_t rule[1 + POLICY_TUNNEL_DEPTH_MAX];
};

/*
 * The allow rules that apply: one allowing the request's class, or else one
 * per level (the first allowing its class or opcode), naming the rule that
 * allowed the most dangerous level. False when no rule allows it.
 */
static bool decide_allow(const struct decide_ctx *c, const struct policy_class *pc,
			 struct decide_allowers *a)
{
	int worst = -1;

	a->named = decide_by_class(c, pc->cls, false);
	a->n = 0;
	if (a->named != POLICY_NO_RULE) {
		a->rule[a->n++] = a->named;
		return true;
	}
	for (size_t l = 0; l < pc->n_levels; l++) {
		int32_t r = decide_by_class(c, pc->level[l].cls, false);
		int32_t o = decide_by_opcode(c, pc->level[l].opcode, false);

		if (o < r)
			r = o;
		if (r == POLICY_NO_RULE)
			return false;
		a->rule[a->n++] = r;
		if ((int)pc->level[l].cls >= worst) {
			worst = (int)pc->level[l].cls;
			a->named = r;
		}
	}
	return true;
}

/* Finds the slot of (rule, user) in the bucket table: its own or an empty one. */
static struct policy_bucket *decide_bucket_slot(const struct policy *p, uint32_t rule,
						const char *user)
{
	size_t i = decide_hash(user, DECIDE_HASH_SEED ^ rule) & (p->buckets_cap - 1);

	while (p->buckets[i].rule != UINT32_MAX &&
	       (p->buckets[i].rule != rule || strcmp(p->buckets[i].user, user) != 0))
		i = (i + 1) & (p->buckets_cap - 1);
	return &p->buckets[i];
}

/* Doubles the bucket table, moving every bucket over. */
static int decide_buckets_grow(struct policy *p)
{
	size_t cap = p->buckets_cap ? p->buckets_cap * 2 : 64, old_cap = p->buckets_cap;
	struct policy_bucket *v = calloc(cap, sizeof(*v)), *old = p->buckets;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		v[i].rule = UINT32_MAX;
	p->buckets = v;
	p->buckets_cap = cap;
	for (size_t k = 0; k < old_cap; k++)
		if (old[k].rule != UINT32_MAX)
			*decide_bucket_slot(p, old[k].rule, old[k].user) = old[k];
	free(old);
	return 0;
}

/* Finds or makes the bucket of (rule, user), full; NULL when out of memory. */
static struct policy_bucket *decide_bucket(struct policy *p, uint32_t rule, const char *user)
{
	struct policy_bucket *b;

	if ((p->n_buckets + 1) * 2 > p->buckets_cap && decide_buckets_grow(p) < 0)
		return NULL;
	b = decide_bucket_slot(p, rule, user);
	if (b->rule == UINT32_MAX) {
		b->user = strdup(user);
		if (!b->user)
			return NULL;
		b->rule = rule;
		b->tokens = p->rules[rule].rate_n;
		b->last_ms = 0;
		b->seen = false;
		p->n_buckets++;
	}
	return b;
}

/* The milliseconds until a bucket holding `tokens` has a whole one again. */
static uint32_t decide_rate_wait(const struct policy_rule *r, double tokens)
{
	double per_ms = (double)r->rate_n / (double)r->rate_period_ms;
	double wait = (1.0 - tokens) / per_ms;

	return wait < 1.0 ? 1 : (uint32_t)(wait + 0.999);
}

/* The tokens a bucket would hold at now, refilled, without changing it. */
static double decide_rate_level(const struct policy_rule *r, const struct policy_bucket *b,
				uint64_t now)
{
	double tokens = b->tokens;

	if (b->seen && now > b->last_ms)
		tokens +=
		    (double)(now - b->last_ms) * (double)r->rate_n / (double)r->rate_period_ms;
	return tokens > r->rate_n ? r->rate_n : tokens;
}

/*
 * Looks at the (rule, user) bucket for an EXPLAIN: 0 when a SUBMIT now would
 * get a token, else the milliseconds until it would. Takes nothing, makes
 * no bucket: asking what would happen leaves the answer unchanged.
 */
static uint32_t decide_rate_peek(const struct policy *p, uint32_t rule, const char *user,
				 uint64_t now)
{
	const struct policy_rule *r = &p->rules[rule];
	const struct policy_bucket *b;
	double tokens;

	if (!p->buckets_cap)
		return 0;
	b = decide_bucket_slot(p, rule, user ? user : "");
	if (b->rule == UINT32_MAX)
		return 0; /* never used: full */
	tokens = decide_rate_level(r, b, now);
	return tokens >= 1.0 ? 0 : decide_rate_wait(r, tokens);
}

/*
 * Takes a token from the (rule, user) bucket; returns 0, or the milliseconds
 * until one is back. A full bucket holds rate_n tokens (a burst of rate_n).
 */
static uint32_t decide_rate(struct policy *p, uint32_t rule, const char *user, uint64_t now)
{
	const struct policy_rule *r = &p->rules[rule];
	struct policy_bucket *b = decide_bucket(p, rule, user ? user : "");

	if (!b)
		return 1000; /* no memory for the bucket: fail closed, briefly */
	b->tokens = decide_rate_level(r, b, now);
	if (!b->seen || now > b->last_ms)
		b->last_ms = now;
	b->seen = true;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	return decide_rate_wait(r, b->tokens);
}

/* Tells whether two string lists hold the same strings in the same order. */
static bool decide_same_strings(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* Tells whether two opcode lists are the same (either may be NULL when empty). */
static bool decide_same_ops(const uint16_t *a, size_t na, const uint16_t *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

/* Tells whether a rule of a reloaded policy is the same rule as before (its line may move). */
static bool decide_same_rule(const struct policy_rule *a, const struct policy_rule *b)
{
	return strcmp(a->name, b->name) == 0 && a->any == b->any &&
	       (a->owner == NULL) == (b->owner == NULL) &&
	       (!a->owner || strcmp(a->owner, b->owner) == 0) &&
	       decide_same_strings(a->users, a->n_users, b->users, b->n_users) &&
	       decide_same_strings(a->groups, a->n_groups, b->groups, b->n_groups) &&
	       decide_same_strings(a->devices, a->n_devices, b->devices, b->n_devices) &&
	       a->allow_cls == b->allow_cls && a->deny_cls == b->deny_cls &&
	       decide_same_ops(a->allow_ops, a->n_allow_ops, b->allow_ops, b->n_allow_ops) &&
	       decide_same_ops(a->deny_ops, a->n_deny_ops, b->deny_ops, b->n_deny_ops) &&
	       a->rate_n == b->rate_n && a->rate_period_ms == b->rate_period_ms &&
	       a->has_targets == b->has_targets && a->targets_ld_pool == b->targets_ld_pool &&
	       memcmp(a->targets, b->targets, sizeof(a->targets)) == 0;
}

/* Finds the rule of p named name, or -1 (names are unique in a policy). */
static int32_t decide_rule_named(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].name, name) == 0)
			return (int32_t)i;
	return -1;
}

/* Carries the buckets of unchanged rules over to a reloaded policy. */
void policy_keep_buckets(struct policy *to, struct policy *from)
{
	if (!to || !from)
		return;
	pthread_mutex_lock(&from->lock);
	for (size_t k = 0; k < from->buckets_cap; k++) {
		const struct policy_bucket *old = &from->buckets[k];
		struct policy_bucket *b;
		int32_t ri;

		if (old->rule == UINT32_MAX)
			continue;
		ri = decide_rule_named(to, from->rules[old->rule].name);
		if (ri < 0 || !decide_same_rule(&to->rules[ri], &from->rules[old->rule]))
			continue;
		b = decide_bucket(to, (uint32_t)ri, old->user);
		if (!b)
			break; /* out of memory: the rest start full, as after a restart */
		b->tokens = old->tokens;
		b->last_ms = old->last_ms;
		b->seen = old->seen;
	}
	pthread_mutex_unlock(&from->lock);
}

/* Fills what the classification says, whatever the decision. */
static void decide_fill_class(const struct policy *p, const struct policy_class *pc,
			      struct policy_decision *out)
{
	out->cls = pc->cls;
	out->background = pc->background;
	mbx_strcopy(out->name, sizeof(out->name), pc->level[0].name);
	out->audited = (p->audit_mask & POLICY_CLASS_BIT(pc->cls)) != 0;
	out->reason_required = (p->reason_mask & POLICY_CLASS_BIT(pc->cls)) != 0;
	out->n_inner = 0;
	for (size_t l = 1; l < pc->n_levels && out->n_inner < MBX_INNER_MAX; l++) {
		struct mbx_inner *in = &out->inner[out->n_inner++];

		in->opcode = pc->level[l].opcode;
		in->cls = (uint8_t)pc->level[l].cls;
		in->depth = (uint8_t)l;
		in->target = pc->level[l].target;
	}
}

/* Refuses with the rule that decided (or none) and a sentence. */
static void decide_refuse(struct policy_decision *out, enum mbx_status st,
			  const struct policy_rule *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void decide_refuse(struct policy_decision *out, enum mbx_status st,
			  const struct policy_rule *r, const char *fmt, ...)
{
	va_list ap;

	out->decision = st == MBX_STATUS_INVALID ? MBX_DECISION_INVALID : MBX_DECISION_DENY;
	out->status = st;
	if (r) {
		mbx_strcopy(out->rule, sizeof(out->rule), r->name);
		mbx_strcopy(out->source, sizeof(out->source), r->source);
	}
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

/*
 * Tells whether every tunnel level goes where the rule lets tunnels go: a
 * port or LD id it lists (target type 0), or the LD Pool CCI (type 1) when
 * it lists ld-pool. A rule without tunnel_targets lets them go anywhere.
 */
static bool decide_targets_ok(const struct policy_rule *r, const struct policy_class *pc)
{
	if (!r->has_targets)
		return true;
	for (size_t l = 1; l < pc->n_levels; l++) {
		uint16_t t = pc->level[l].target;

		if (pc->level[l].target_type == CCI_TUNNEL_TARGET_LD_POOL) {
			if (!r->targets_ld_pool)
				return false;
		} else if (!(r->targets[t / 8] & (1u << (t % 8)))) {
			return false;
		}
	}
	return true;
}

/* The first rule an allow rests on whose tunnel_targets the request leaves, or NULL. */
static const struct policy_rule *decide_targets_refuser(const struct policy *p,
							const struct decide_allowers *a,
							const struct policy_class *pc)
{
	for (size_t i = 0; i < a->n; i++)
		if (!decide_targets_ok(&p->rules[a->rule[i]], pc))
			return &p->rules[a->rule[i]];
	return NULL;
}

/* Appends src at *off in a fixed buffer, truncating. */
static void decide_cat(char *buf, size_t cap, size_t *off, const char *src)
{
	size_t n = strlen(src);

	if (n > cap - 1 - *off)
		n = cap - 1 - *off;

	memcpy(buf + *off, src, n);
	*off += n;
	buf[*off] = '\0';
}

/*
 * Writes "<name> (0xNNNN, <class> class) on <dev> allowed by rule "<r>"
 * (<source>)" without printf: this is the one message every allowed request
 * carries, and printf would dominate the cost of a decision.
 */
static void decide_allowed_message(struct policy_decision *out, uint16_t op, const char *cls,
				   const char *dev, const struct policy_rule *r)
{
	static const char hex[] = "0123456789abcdef";
	char opbuf[] = " (0x0000, ";
	size_t off = 0, cap = sizeof(out->message);

	for (int i = 0; i < 4; i++)
		opbuf[4 + i] = hex[(op >> (12 - 4 * i)) & 0xf];
	out->message[0] = '\0';
	decide_cat(out->message, cap, &off, out->name);
	decide_cat(out->message, cap, &off, opbuf);
	decide_cat(out->message, cap, &off, cls);
	decide_cat(out->message, cap, &off, " class) on ");
	decide_cat(out->message, cap, &off, dev);
	decide_cat(out->message, cap, &off, " allowed by rule \"");
	decide_cat(out->message, cap, &off, r->name);
	decide_cat(out->message, cap, &off, "\" (");
	decide_cat(out->message, cap, &off, r->source);
	decide_cat(out->message, cap, &off, ")");
}

/* Decides a classified request under the lock: rules, reason, rate. */
static void decide_rules(struct policy *p, const struct policy_request *req,
			 const struct policy_class *pc, struct policy_decision *out)
{
	uint32_t
	    subs[SUBJECTS_MAX + 2]; /* per call: two policies may decide at once during a reload */
	const char *dev = req->dev && req->dev->name ? req->dev->name : "";
	const char *user = req->who && req->who->user ? req->who->user : "";
	struct decide_ctx c = {.t = decide_devtab(p, dev), .subs = subs};
	const char *cls = mbx_class_name(pc->cls);
	const struct policy_rule *r;
	struct decide_allowers a;
	int32_t ri;
	uint32_t wait;

	if (!c.t) {
		decide_refuse(out, MBX_STATUS_DENIED, NULL, "out of memory deciding; denied");
		return;
	}
	c.n_subs = decide_subjects(p, req->who, subs);
	if ((ri = decide_deny(&c, pc)) != POLICY_NO_RULE) {
		r = &p->rules[ri];
		decide_refuse(out, MBX_STATUS_DENIED, r,
			      "%s (0x%04x, %s class) on %s is denied to %s by rule \"%s\" (%s)",
			      out->name, req->opcode, cls, dev, user, r->name, r->source);
		return;
	}
	if (!decide_allow(&c, pc, &a)) {
		decide_refuse(
		    out, MBX_STATUS_DENIED, NULL,
		    "no rule allows %s (0x%04x, %s class) on %s for %s: denied by default",
		    out->name, req->opcode, cls, dev, user);
		return;
	}
	/* Every rule the allow rests on must let the tunnel go where it goes. */
	if ((r = decide_targets_refuser(p, &a, pc))) {
		decide_refuse(out, MBX_STATUS_DENIED, r,
			      "rule \"%s\" (%s) allows tunnelling only to some ports or LDs, and "
			      "this request goes to another",
			      r->name, r->source);
		return;
	}
	/* Only someone the policy allows learns what the device supports. */
	if (pc->dev_status != MBX_STATUS_OK) {
		decide_refuse(out, pc->dev_status, NULL, "%s", pc->dev_message);
		return;
	}
	ri = a.named;
	r = &p->rules[ri];
	if (out->reason_required && (!req->reason || !req->reason[0])) {
		decide_refuse(out, MBX_STATUS_DENIED, r,
			      "a reason is required for %s-class commands such as %s (rule \"%s\", "
			      "%s): resend with a reason, for example a ticket id",
			      cls, out->name, r->name, r->source);
		return;
	}
	wait = !r->rate_n     ? 0
	       : req->explain ? decide_rate_peek(p, (uint32_t)ri, user, req->now_ms)
			      : decide_rate(p, (uint32_t)ri, user, req->now_ms);
	if (wait) {
		decide_refuse(out, MBX_STATUS_RATE_LIMITED, r,
			      "rate limited by rule \"%s\" (%s, %s): retry in %u ms", r->name,
			      r->source, r->rate_text, wait);
		out->retry_after_ms = wait;
		return;
	}
	out->decision = MBX_DECISION_ALLOW;
	out->status = MBX_STATUS_OK;
	mbx_strcopy(out->rule, sizeof(out->rule), r->name);
	mbx_strcopy(out->source, sizeof(out->source), r->source);
	decide_allowed_message(out, req->opcode, cls, dev, r);
}

/*
 * Refuses a principal whose names are not all known: no rule may be applied
 * to it, since a deny naming the missing name would not match. The class is
 * already filled in; nothing about the device is revealed.
 */
static bool decide_unresolved(const struct policy_principal *who, struct policy_decision *out)
{
	if (!who || (!who->unresolved && who->n_groups <= POLICY_PRINCIPAL_GROUPS_MAX))
		return false;
	if (who->unresolved)
		decide_refuse(out, MBX_STATUS_DENIED, NULL,
			      "mbxd cannot tell who you are: %s; a rule naming that name could "
			      "not be applied, so every request is refused until the lookup works",
			      who->unresolved);
	else
		decide_refuse(
		    out, MBX_STATUS_DENIED, NULL,
		    "you are in %zu groups, more than the %u mbxd considers: a rule "
		    "naming one left out could not be applied, so every request is refused",
		    who->n_groups, POLICY_PRINCIPAL_GROUPS_MAX);
	mbx_strcopy(out->rule, sizeof(out->rule), POLICY_RULE_UNRESOLVED);
	mbx_strcopy(out->source, sizeof(out->source),
		    who->unresolved ? who->unresolved : "too many groups");
	return true;
}

/* Classifies and decides one request. */
void policy_decide(struct policy *p, const struct policy_request *req, struct policy_decision *out)
{
	struct policy_class pc;

	memset(out, 0, sizeof(*out));
	out->decision = MBX_DECISION_DENY;
	out->status = MBX_STATUS_DENIED;
	if (!p) {
		snprintf(out->message, sizeof(out->message), "no policy is loaded: denied");
		return;
	}
	policy_classify(p, req->dev, req->opcode, req->payload, req->payload_len, &pc);
	decide_fill_class(p, &pc, out);
	if (decide_unresolved(req->who, out))
		return;
	if (pc.status != MBX_STATUS_OK) {
		decide_refuse(out, pc.status, NULL, "%s", pc.message);
		return;
	}
	pthread_mutex_lock(&p->lock);
	decide_rules(p, req, &pc, out);
	pthread_mutex_unlock(&p->lock);
}

/* Whether a rule allows opcode op on the table's device and no rule denies it, as opcode or class.
 */
static bool decide_op_visible(struct policy *p, const struct decide_ctx *c, uint16_t op)
{
	return decide_by_opcode(c, op, false) != POLICY_NO_RULE &&
	       decide_by_opcode(c, op, true) == POLICY_NO_RULE &&
	       decide_by_class(c, policy_classify_base(p, op), true) == POLICY_NO_RULE;
}

/*
 * Whether a principal may see a device: its listing, its metrics, the
 * events of its background operations. It may when the policy lets it send
 * the device something: a class some rule allows it there and no rule
 * denies it, or an opcode allowed by opcode and denied neither by opcode
 * nor by its class. An unresolved principal sees no device.
 */
bool policy_may_see_device(struct policy *p, const struct policy_principal *who, const char *device)
{
	uint32_t subs[SUBJECTS_MAX + 2];
	struct decide_ctx c = {.subs = subs};
	bool may = false;

	if (!p || !who || who->unresolved || who->n_groups > POLICY_PRINCIPAL_GROUPS_MAX)
		return false;
	pthread_mutex_lock(&p->lock);
	c.t = decide_devtab(p, device);
	c.n_subs = c.t ? decide_subjects(p, who, subs) : 0;
	for (int cls = 0; c.t && cls < MBX_CLASS_COUNT && !may; cls++)
		may = decide_by_class(&c, (enum mbx_class)cls, false) != POLICY_NO_RULE &&
		      decide_by_class(&c, (enum mbx_class)cls, true) == POLICY_NO_RULE;
	for (size_t i = 0; c.t && i < p->n_rules && !may; i++) {
		const struct policy_rule *r = &p->rules[i];

		for (size_t o = 0; o < r->n_allow_ops && !may && decide_rule_device(r, device); o++)
			may = decide_op_visible(p, &c, r->allow_ops[o]);
	}
	pthread_mutex_unlock(&p->lock);
	return may;
}
