/*
 * The YAML loader: policy.yaml and users.d/<user>.yaml into a struct policy.
 *
 * Uses libyaml's document API, whose nodes keep their marks, so every error
 * names its file:line. A load never stops at the first error: it collects
 * them all, and only a load without any yields a policy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "policy-internal.h"
#include "readfile.h"

#define YAML_NAME_MAX 255
#define RATE_MAX      1000000u

/* One file being loaded. */
struct policy_yaml {
	struct policy *p;
	struct policy_errors *errs;
	const char *file;
	const char *owner; /* the user of a users.d file; NULL for the main file */
	yaml_document_t *doc;
	struct policy_strmap *names; /* rule name -> index, across all files */
	int users_dir_line;
};

/* Appends one error; out of memory drops it rather than failing the caller. */
void policy_errors_add(struct policy_errors *errs, const char *file, int line, const char *fmt, ...)
{
	struct policy_error *v = realloc(errs->v, (errs->n + 1) * sizeof(*v));
	va_list ap;

	if (!v)
		return;
	errs->v = v;
	snprintf(v[errs->n].file, sizeof(v[errs->n].file), "%s", file);
	v[errs->n].line = line;
	va_start(ap, fmt);
	vsnprintf(v[errs->n].message, sizeof(v[errs->n].message), fmt, ap);
	va_end(ap);
	errs->n++;
}

/* Frees the errors of a load. */
void policy_errors_free(struct policy_errors *errs)
{
	if (!errs)
		return;
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

/* Formats one error as "file:line: message", or "file: message" for the whole file. */
const char *policy_error_text(const struct policy_error *e, char *buf, size_t len)
{
	if (e->line > 0)
		snprintf(buf, len, "%s:%d: %s", e->file, e->line, e->message);
	else
		snprintf(buf, len, "%s: %s", e->file, e->message);
	return buf;
}

/* Prints every error of a load to f, one line each. */
void policy_errors_print(FILE *f, const struct policy_errors *errs)
{
	char text[sizeof(errs->v->file) + sizeof(errs->v->message) + 16];

	for (size_t i = 0; i < errs->n; i++)
		fprintf(f, "%s\n", policy_error_text(&errs->v[i], text, sizeof(text)));
}

/* Reports an error at a node's line. */
static void policy_yaml_err(struct policy_yaml *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void policy_yaml_err(struct policy_yaml *y, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	policy_errors_add(y->errs, y->file, n ? (int)n->start_mark.line + 1 : 0, "%s", msg);
}

/* Returns a scalar node's text, or NULL for sequences and mappings. */
static const char *policy_yaml_scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Returns a node's scalar text or reports that a scalar was expected. */
static const char *policy_yaml_want_scalar(struct policy_yaml *y, const yaml_node_t *n,
					   const char *what)
{
	const char *s = policy_yaml_scalar(n);

	if (!s)
		policy_yaml_err(y, n, "%s must be a single value", what);
	return s;
}

/* Checks that a node is a mapping with no repeated key. */
static bool policy_yaml_mapping(struct policy_yaml *y, yaml_node_t *n, const char *what)
{
	yaml_node_pair_t *a, *b;

	if (!n || n->type != YAML_MAPPING_NODE) {
		policy_yaml_err(y, n, "%s must be a mapping", what);
		return false;
	}
	for (a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++) {
		const char *ka = policy_yaml_scalar(yaml_document_get_node(y->doc, a->key));

		for (b = n->data.mapping.pairs.start; ka && b < a; b++) {
			const char *kb = policy_yaml_scalar(yaml_document_get_node(y->doc, b->key));

			if (kb && strcmp(ka, kb) == 0)
				policy_yaml_err(y, yaml_document_get_node(y->doc, a->key),
						"duplicate key \"%s\" in %s", ka, what);
		}
	}
	return true;
}

/* Checks that a node is a sequence. */
static bool policy_yaml_sequence(struct policy_yaml *y, yaml_node_t *n, const char *what)
{
	if (!n || n->type != YAML_SEQUENCE_NODE) {
		policy_yaml_err(y, n, "%s must be a list", what);
		return false;
	}
	return true;
}

/* Parses a class name. */
static int policy_yaml_class(struct policy_yaml *y, yaml_node_t *n)
{
	const char *s = policy_yaml_want_scalar(y, n, "a class");
	int c;

	if (!s)
		return -1;
	c = mbx_class_from_name(s);
	if (c < 0)
		policy_yaml_err(y, n,
				"unknown class \"%s\" (read, log, config, data, security, fabric "
				"or vendor)",
				s);
	return c;
}

/* Parses a list of class names into a mask. */
static void policy_yaml_classes(struct policy_yaml *y, yaml_node_t *n, const char *what,
				uint8_t *mask)
{
	yaml_node_item_t *it;

	if (!policy_yaml_sequence(y, n, what))
		return;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		int c = policy_yaml_class(y, yaml_document_get_node(y->doc, *it));

		if (c >= 0)
			*mask |= (uint8_t)POLICY_CLASS_BIT(c);
	}
}

/* Parses an opcode written as a number (0x4400, 17408). */
static bool policy_yaml_opcode(struct policy_yaml *y, yaml_node_t *n, uint16_t *op)
{
	const char *s = policy_yaml_want_scalar(y, n, "an opcode");
	unsigned long v;
	char *end;

	if (!s)
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *end || errno || v > 0xffff || s[0] == '-' || s[0] == '+') {
		policy_yaml_err(y, n, "bad opcode \"%s\" (expected 0x0000 to 0xFFFF)", s);
		return false;
	}
	*op = (uint16_t)v;
	return true;
}

/* Parses a list of opcodes. */
static void policy_yaml_opcodes(struct policy_yaml *y, yaml_node_t *n, const char *what,
				uint16_t **v, size_t *count)
{
	yaml_node_item_t *it;

	/* A repeated key was reported by policy_yaml_mapping(); keep the first. */
	if (*v || !policy_yaml_sequence(y, n, what))
		return;
	*v = calloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
		    sizeof(**v));
	if (!*v)
		return;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
		if (policy_yaml_opcode(y, yaml_document_get_node(y->doc, *it), &(*v)[*count]))
			(*count)++;
}

/* Checks a device glob: not empty, brackets closed, no dangling escape. */
static const char *policy_yaml_glob_problem(const char *g)
{
	if (!*g)
		return "empty";
	if (strlen(g) >= YAML_NAME_MAX)
		return "too long";
	for (const char *c = g; *c; c++) {
		if (*c == '\\') {
			if (!*++c)
				return "ends with a lone backslash";
		} else if (*c == '[') {
			const char *e = c + 1;

			if (*e == '!' || *e == '^')
				e++;
			if (*e == ']')
				e++; /* a leading ] is literal */
			while (*e && *e != ']')
				e++;
			if (!*e)
				return "has an unterminated [";
			c = e;
		}
	}
	return NULL;
}

/* Checks a user or group name: printable, no blanks, not too long. */
static const char *policy_yaml_name_problem(const char *s)
{
	if (!*s)
		return "empty";
	if (strlen(s) >= YAML_NAME_MAX)
		return "too long";
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c == 0x7f || *c == ':' || *c == '/')
			return "contains a blank, ':', '/' or a control character";
	/* Devices take patterns; people do not, and "*" read as a name would match no one. */
	if (strpbrk(s, "*?[]"))
		return "is a pattern, but user and group names are exact (for everyone: who: any)";
	return NULL;
}

/* Parses a list of strings, each checked by problem(). */
static void policy_yaml_strings(struct policy_yaml *y, yaml_node_t *n, const char *what,
				const char *(*problem)(const char *), char ***v, size_t *count)
{
	yaml_node_item_t *it;

	/* A repeated key was reported by policy_yaml_mapping(); keep the first. */
	if (*v || !policy_yaml_sequence(y, n, what))
		return;
	*v = calloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
		    sizeof(**v));
	if (!*v)
		return;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(y->doc, *it);
		const char *s = policy_yaml_want_scalar(y, e, what);
		const char *why = s ? problem(s) : NULL;

		if (!s)
			continue;
		if (why) {
			policy_yaml_err(y, e, "bad %s entry \"%s\": %s", what, s, why);
			continue;
		}
		(*v)[*count] = strdup(s);
		if ((*v)[*count])
			(*count)++;
	}
}

/* Parses a rate: "10/minute" and the like. */
static void policy_yaml_rate(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	    {"second", 1000}, {"sec", 1000},     {"s", 1000},    {"minute", 60000}, {"min", 60000},
	    {"m", 60000},     {"hour", 3600000}, {"h", 3600000}, {"day", 86400000}, {"d", 86400000},
	};
	const char *s = policy_yaml_want_scalar(y, n, "rate");
	unsigned long v;
	char *end;

	if (!s)
		return;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (end != s && *end == '/' && !errno && v >= 1 && v <= RATE_MAX && s[0] != '-') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end + 1, units[i].unit) != 0)
				continue;
			r->rate_n = (uint32_t)v;
			r->rate_period_ms = units[i].ms;
			snprintf(r->rate_text, sizeof(r->rate_text), "%s", s);
			return;
		}
	}
	policy_yaml_err(y, n,
			"bad rate \"%s\" (expected N/second, N/minute, N/hour or N/day, N from 1 "
			"to %u)",
			s, RATE_MAX);
}

/* Parses `tunnel_targets: [1, 3, ld-pool]`: the ports or LDs (or LD Pool CCI) tunnels may reach. */
static void policy_yaml_targets(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	yaml_node_item_t *it;

	if (r->has_targets || !policy_yaml_sequence(y, n, "tunnel_targets"))
		return;
	r->has_targets = true;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(y->doc, *it);
		const char *s = policy_yaml_want_scalar(y, e, "a tunnel target");
		unsigned long v;
		char *end;

		if (!s)
			continue;
		if (strcmp(s, "ld-pool") == 0) {
			r->targets_ld_pool = true;
			continue;
		}
		errno = 0;
		v = strtoul(s, &end, 0);
		if (!*s || *end || errno || v > 255 || s[0] == '-' || s[0] == '+') {
			policy_yaml_err(y, e,
					"bad tunnel target \"%s\" (a port or LD id, 0 to 255, or "
					"ld-pool)",
					s);
			continue;
		}
		r->targets[v / 8] |= (uint8_t)(1u << (v % 8));
	}
}

/* Parses `who:` of a main-file rule: any, or {users: [...], groups: [...]}. */
static void policy_yaml_who(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	const char *s = policy_yaml_scalar(n);
	yaml_node_pair_t *pr;

	if (s) {
		if (strcmp(s, "any") == 0)
			r->any = true;
		else
			policy_yaml_err(y, n,
					"who must be \"any\" or {users: [...], groups: [...]}, "
					"not \"%s\"",
					s);
		return;
	}
	if (!policy_yaml_mapping(y, n, "who"))
		return;
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(y->doc, pr->value);
		const char *key = policy_yaml_scalar(k);

		if (key && strcmp(key, "users") == 0 && !r->users)
			policy_yaml_strings(y, v, "users", policy_yaml_name_problem, &r->users,
					    &r->n_users);
		else if (key && strcmp(key, "groups") == 0 && !r->groups)
			policy_yaml_strings(y, v, "groups", policy_yaml_name_problem, &r->groups,
					    &r->n_groups);
		else if (key && strcmp(key, "users") && strcmp(key, "groups"))
			policy_yaml_err(y, k, "unknown key \"%s\" in who (users, groups)", key);
	}
	if (!r->n_users && !r->n_groups)
		policy_yaml_err(y, n, "who names no user and no group");
}

/* Checks `who:` of a users.d rule: absent, or naming exactly the file's user. */
static void policy_yaml_who_user(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	if (n) {
		policy_yaml_who(y, n, r);
		if (r->any)
			policy_yaml_err(y, n, "who: any in %s's file; its rules apply only to %s",
					y->owner, y->owner);
		for (size_t i = 0; i < r->n_users; i++)
			if (strcmp(r->users[i], y->owner) != 0)
				policy_yaml_err(y, n,
						"rule \"%s\" names user \"%s\" in %s's file; a "
						"per-user file applies only to its user",
						r->name ? r->name : "", r->users[i], y->owner);
		if (r->n_groups)
			policy_yaml_err(y, n,
					"rule \"%s\" names groups in %s's file; a per-user "
					"file applies only to its user",
					r->name ? r->name : "", y->owner);
	}
	for (size_t i = 0; i < r->n_users; i++)
		free(r->users[i]);
	free(r->users);
	for (size_t i = 0; i < r->n_groups; i++)
		free(r->groups[i]);
	free(r->groups);
	r->any = false;
	r->groups = NULL;
	r->n_groups = 0;
	r->users = calloc(1, sizeof(char *));
	r->n_users = 0;
	if (r->users && (r->users[0] = strdup(y->owner)))
		r->n_users = 1;
	r->owner = strdup(y->owner);
}

/* Parses the rule's name and checks it is new. */
static void policy_yaml_rule_name(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	const char *s = policy_yaml_want_scalar(y, n, "name");
	uint32_t first;

	if (!s || r->name)
		return; /* a repeated key was reported by policy_yaml_mapping() */
	if (!*s || strlen(s) >= MBX_RULE_MAX) {
		policy_yaml_err(y, n, "rule name must be 1 to %d characters", MBX_RULE_MAX - 1);
		return;
	}
	if (strcmp(s, POLICY_RULE_UNRESOLVED) == 0)
		policy_yaml_err(y, n,
				"rule name \"%s\" is reserved: audit records name mbxd's "
				"refusal of a client it cannot identify so",
				s);
	r->name = strdup(s);
	if (policy_strmap_get(y->names, s, &first))
		policy_yaml_err(y, n, "duplicate rule name \"%s\" (first at %s)", s,
				y->p->rules[first].source);
	else
		policy_strmap_put(y->names, s, (uint32_t)y->p->n_rules);
}

/* Dispatches one key of a rule mapping. */
static void policy_yaml_rule_key(struct policy_yaml *y, const char *key, yaml_node_t *k,
				 yaml_node_t *v, struct policy_rule *r, yaml_node_t **who)
{
	if (strcmp(key, "name") == 0)
		policy_yaml_rule_name(y, v, r);
	else if (strcmp(key, "who") == 0)
		*who = v;
	else if (strcmp(key, "devices") == 0)
		policy_yaml_strings(y, v, "devices", policy_yaml_glob_problem, &r->devices,
				    &r->n_devices);
	else if (strcmp(key, "allow") == 0)
		policy_yaml_classes(y, v, "allow", &r->allow_cls);
	else if (strcmp(key, "deny") == 0)
		policy_yaml_classes(y, v, "deny", &r->deny_cls);
	else if (strcmp(key, "allow_opcodes") == 0)
		policy_yaml_opcodes(y, v, "allow_opcodes", &r->allow_ops, &r->n_allow_ops);
	else if (strcmp(key, "deny_opcodes") == 0)
		policy_yaml_opcodes(y, v, "deny_opcodes", &r->deny_ops, &r->n_deny_ops);
	else if (strcmp(key, "rate") == 0)
		policy_yaml_rate(y, v, r);
	else if (strcmp(key, "tunnel_targets") == 0)
		policy_yaml_targets(y, v, r);
	else
		policy_yaml_err(y, k,
				"unknown key \"%s\" in rule (name, who, devices, allow, deny, "
				"allow_opcodes, deny_opcodes, rate, tunnel_targets)",
				key);
}

/* Refuses a users.d rule that grants above user_files_max_class. */
static void policy_yaml_ceiling(struct policy_yaml *y, yaml_node_t *n, struct policy_rule *r)
{
	enum mbx_class max = y->p->user_max;

	for (int c = max + 1; c < MBX_CLASS_COUNT; c++)
		if (r->allow_cls & POLICY_CLASS_BIT(c))
			policy_yaml_err(
			    y, n, "rule \"%s\" allows %s, above user_files_max_class %s",
			    r->name ? r->name : "", mbx_class_name(c), mbx_class_name(max));
	for (size_t i = 0; i < r->n_allow_ops; i++) {
		enum mbx_class c = policy_classify_base(y->p, r->allow_ops[i]);

		if (c > max)
			policy_yaml_err(y, n,
					"rule \"%s\" allows opcode 0x%04x (%s class), above "
					"user_files_max_class %s",
					r->name ? r->name : "", r->allow_ops[i], mbx_class_name(c),
					mbx_class_name(max));
	}
}

/* Grows the rule array by one zeroed rule. */
static struct policy_rule *policy_yaml_new_rule(struct policy *p)
{
	if (p->n_rules == p->cap_rules) {
		size_t cap = p->cap_rules ? p->cap_rules * 2 : 16;
		struct policy_rule *v = realloc(p->rules, cap * sizeof(*v));

		if (!v)
			return NULL;
		p->rules = v;
		p->cap_rules = cap;
	}
	memset(&p->rules[p->n_rules], 0, sizeof(p->rules[0]));
	return &p->rules[p->n_rules];
}

/* Parses one rule; it is kept (even with errors) so that all are reported. */
static void policy_yaml_rule(struct policy_yaml *y, yaml_node_t *n)
{
	struct policy_rule *r;
	yaml_node_t *who = NULL;
	yaml_node_pair_t *pr;
	size_t errs = y->errs->n;

	if (!policy_yaml_mapping(y, n, "a rule"))
		return;
	r = policy_yaml_new_rule(y->p);
	if (!r)
		return;
	snprintf(r->source, sizeof(r->source), "%s:%d", y->file, (int)n->start_mark.line + 1);
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
		const char *key = policy_yaml_want_scalar(y, k, "a key");

		if (key)
			policy_yaml_rule_key(y, key, k, yaml_document_get_node(y->doc, pr->value),
					     r, &who);
	}
	y->p->n_rules++; /* counted now: policy_free releases what it holds */
	if (!r->name)
		policy_yaml_err(y, n, "rule without a name");
	if (y->owner)
		policy_yaml_who_user(y, who, r);
	else if (who)
		policy_yaml_who(y, who, r);
	else
		policy_yaml_err(y, n, "rule \"%s\" has no who (any, or users/groups)",
				r->name ? r->name : "");
	/* Only when nothing else was wrong: a bad list already explains an empty rule. */
	if (errs == y->errs->n && !r->allow_cls && !r->deny_cls && !r->n_allow_ops &&
	    !r->n_deny_ops)
		policy_yaml_err(y, n, "rule \"%s\" neither allows nor denies anything",
				r->name ? r->name : "");
	if (y->owner)
		policy_yaml_ceiling(y, n, r);
}

/* Parses the rules list. */
static void policy_yaml_rules(struct policy_yaml *y, yaml_node_t *n)
{
	yaml_node_item_t *it;

	if (!policy_yaml_sequence(y, n, "rules"))
		return;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
		policy_yaml_rule(y, yaml_document_get_node(y->doc, *it));
}

/* Parses `defaults: {audit: [...], require_reason: [...]}`. */
static void policy_yaml_defaults(struct policy_yaml *y, yaml_node_t *n)
{
	yaml_node_pair_t *pr;

	if (!policy_yaml_mapping(y, n, "defaults"))
		return;
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(y->doc, pr->value);
		const char *key = policy_yaml_want_scalar(y, k, "a key");

		if (!key)
			continue;
		if (strcmp(key, "audit") == 0) {
			y->p->audit_mask = 0;
			policy_yaml_classes(y, v, "audit", &y->p->audit_mask);
		} else if (strcmp(key, "require_reason") == 0) {
			policy_yaml_classes(y, v, "require_reason", &y->p->reason_mask);
		} else {
			policy_yaml_err(
			    y, k, "unknown key \"%s\" in defaults (audit, require_reason)", key);
		}
	}
}

/* Parses one `opcodes:` entry: {name: ..., class: ...}. */
static void policy_yaml_override(struct policy_yaml *y, yaml_node_t *k, yaml_node_t *v,
				 struct policy_override *o)
{
	const struct catalog_entry *e;
	yaml_node_pair_t *pr;
	int cls = -1;

	if (!policy_yaml_opcode(y, k, &o->opcode) || !policy_yaml_mapping(y, v, "an opcode entry"))
		return;
	for (pr = v->data.mapping.pairs.start; pr < v->data.mapping.pairs.top; pr++) {
		yaml_node_t *kk = yaml_document_get_node(y->doc, pr->key);
		yaml_node_t *vv = yaml_document_get_node(y->doc, pr->value);
		const char *key = policy_yaml_want_scalar(y, kk, "a key");
		const char *s;

		if (key && strcmp(key, "class") == 0) {
			cls = policy_yaml_class(y, vv);
		} else if (key && strcmp(key, "name") == 0) {
			if ((s = policy_yaml_want_scalar(y, vv, "name")))
				snprintf(o->name, sizeof(o->name), "%s", s);
		} else if (key) {
			policy_yaml_err(y, kk, "unknown key \"%s\" in opcode entry (name, class)",
					key);
		}
	}
	if (cls < 0) {
		if (!policy_yaml_scalar(v))
			policy_yaml_err(y, v, "opcode 0x%04x has no valid class", o->opcode);
		return;
	}
	o->cls = (enum mbx_class)cls;
	e = catalog_lookup(o->opcode);
	if (e && o->cls < e->cls)
		policy_yaml_err(
		    y, k,
		    "opcode 0x%04x (%s) is %s in the catalog; an override may raise it, "
		    "never lower it to %s",
		    o->opcode, e->name, mbx_class_name(e->cls), mbx_class_name(o->cls));
}

/* Orders overrides by opcode. */
static int policy_yaml_ovr_cmp(const void *a, const void *b)
{
	return (int)((const struct policy_override *)a)->opcode -
	       (int)((const struct policy_override *)b)->opcode;
}

/* Parses the `opcodes:` map and sorts it for lookups. */
static void policy_yaml_overrides(struct policy_yaml *y, yaml_node_t *n)
{
	yaml_node_pair_t *pr;
	size_t max;

	if (y->p->ovr || !policy_yaml_mapping(y, n, "opcodes"))
		return;
	max = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	y->p->ovr = calloc(max + 1, sizeof(*y->p->ovr));
	if (!y->p->ovr)
		return;
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		struct policy_override *o = &y->p->ovr[y->p->n_ovr];
		size_t errs = y->errs->n;

		policy_yaml_override(y, yaml_document_get_node(y->doc, pr->key),
				     yaml_document_get_node(y->doc, pr->value), o);
		for (size_t i = 0; errs == y->errs->n && i < y->p->n_ovr; i++)
			if (y->p->ovr[i].opcode == o->opcode)
				policy_yaml_err(y, yaml_document_get_node(y->doc, pr->key),
						"opcode 0x%04x is listed twice", o->opcode);
		if (errs == y->errs->n)
			y->p->n_ovr++;
	}
	qsort(y->p->ovr, y->p->n_ovr, sizeof(*y->p->ovr), policy_yaml_ovr_cmp);
}

/* Checks `version: 1`. */
static void policy_yaml_version(struct policy_yaml *y, yaml_node_t *n)
{
	const char *s = policy_yaml_want_scalar(y, n, "version");

	if (s && strcmp(s, "1") != 0)
		policy_yaml_err(y, n, "unsupported version \"%s\" (this mbxd reads version 1)", s);
}

/* Parses users_dir, resolved against the policy file's folder when relative. */
static void policy_yaml_users_dir(struct policy_yaml *y, yaml_node_t *n)
{
	const char *s = policy_yaml_want_scalar(y, n, "users_dir");
	const char *slash = strrchr(y->file, '/');

	if (!s)
		return;
	if (!*s) {
		policy_yaml_err(y, n, "users_dir is empty");
		return;
	}
	free(y->p->users_dir);
	if (s[0] == '/' || !slash) {
		y->p->users_dir = strdup(s);
	} else if (asprintf(&y->p->users_dir, "%.*s/%s", (int)(slash - y->file), y->file, s) < 0) {
		y->p->users_dir = NULL;
	}
	y->users_dir_line = (int)n->start_mark.line + 1;
}

/* Dispatches one top-level key of the main file. */
static void policy_yaml_main_key(struct policy_yaml *y, const char *key, yaml_node_t *k,
				 yaml_node_t *v, bool *version)
{
	int c;

	if (strcmp(key, "version") == 0) {
		*version = true;
		policy_yaml_version(y, v);
	} else if (strcmp(key, "defaults") == 0) {
		policy_yaml_defaults(y, v);
	} else if (strcmp(key, "users_dir") == 0) {
		policy_yaml_users_dir(y, v);
	} else if (strcmp(key, "user_files_max_class") == 0) {
		if ((c = policy_yaml_class(y, v)) >= 0)
			y->p->user_max = (enum mbx_class)c;
	} else if (strcmp(key, "opcodes") == 0) {
		policy_yaml_overrides(y, v);
	} else if (strcmp(key, "rules") == 0) {
		policy_yaml_rules(y, v);
	} else {
		policy_yaml_err(y, k,
				"unknown key \"%s\" (version, defaults, users_dir, "
				"user_files_max_class, opcodes, rules)",
				key);
	}
}

/* Parses the main file's top level; `opcodes:` first so rules can use it. */
static void policy_yaml_main(struct policy_yaml *y, yaml_node_t *root)
{
	yaml_node_pair_t *pr;
	bool version = false;

	if (!policy_yaml_mapping(y, root, "the policy"))
		return;
	for (int pass = 0; pass < 2; pass++) {
		for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
			const char *key = policy_yaml_scalar(k);

			if (!key) {
				if (pass == 0)
					policy_yaml_err(y, k, "a key must be a single value");
				continue;
			}
			if ((strcmp(key, "opcodes") == 0) != (pass == 0))
				continue;
			policy_yaml_main_key(y, key, k, yaml_document_get_node(y->doc, pr->value),
					     &version);
		}
	}
	if (!version)
		policy_yaml_err(y, root, "missing \"version: 1\"");
}

/* Parses a users.d file: optional version, and rules for its user only. */
static void policy_yaml_user(struct policy_yaml *y, yaml_node_t *root)
{
	yaml_node_pair_t *pr;

	if (!policy_yaml_mapping(y, root, "a per-user file"))
		return;
	for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(y->doc, pr->value);
		const char *key = policy_yaml_want_scalar(y, k, "a key");

		if (!key)
			continue;
		if (strcmp(key, "version") == 0)
			policy_yaml_version(y, v);
		else if (strcmp(key, "rules") == 0)
			policy_yaml_rules(y, v);
		else
			policy_yaml_err(
			    y, k, "unknown key \"%s\" in a per-user file (version, rules)", key);
	}
}

/* Refuses a file or folder not owned by root or writable by others, as sudo does. */
static bool policy_yaml_owner_ok(const char *path, const struct stat *st,
				 struct policy_errors *errs)
{
	if (st->st_uid != 0) {
		policy_errors_add(errs, path, 0, "refusing %s: owned by uid %u, not by root", path,
				  (unsigned)st->st_uid);
		return false;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		policy_errors_add(errs, path, 0,
				  "refusing %s: writable by group or others (mode %04o)", path,
				  (unsigned)(st->st_mode & 07777));
		return false;
	}
	return true;
}

/*
 * Reads a policy file through readfile (never blocking, regular files
 * only), checking its owner before a byte of it is read. NULL on error.
 */
static char *policy_yaml_read(const char *path, bool check_owner, size_t *len,
			      struct policy_errors *errs)
{
	char err[512], *text;
	struct stat st;
	int fd = readfile_open(path, &st, err, sizeof(err));

	if (fd < 0) {
		policy_errors_add(errs, path, 0, "%s", err);
		return NULL;
	}
	if (check_owner && !policy_yaml_owner_ok(path, &st, errs)) {
		close(fd);
		return NULL;
	}
	if (readfile_read(fd, path, READFILE_MAX, &text, len, err, sizeof(err)) < 0) {
		policy_errors_add(errs, path, 0, "%s", err);
		return NULL;
	}
	return text;
}

/* Loads one file into the policy; owner is NULL for the main file. */
static void policy_yaml_file(struct policy *p, const char *path, const char *owner,
			     bool check_owner, struct policy_strmap *names,
			     struct policy_errors *errs, int *users_dir_line)
{
	struct policy_yaml y = {.p = p, .errs = errs, .file = path, .owner = owner, .names = names};
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	size_t len;
	char *text = policy_yaml_read(path, check_owner, &len, errs);

	if (!text)
		return;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		policy_errors_add(errs, path, (int)parser.problem_mark.line + 1, "YAML: %s%s%s",
				  parser.problem ? parser.problem : "syntax error",
				  parser.context ? " " : "", parser.context ? parser.context : "");
		goto out;
	}
	y.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root && !owner)
		policy_errors_add(errs, path, 1, "the policy is empty");
	else if (root && owner)
		policy_yaml_user(&y, root);
	else if (root)
		policy_yaml_main(&y, root);
	if (users_dir_line)
		*users_dir_line = y.users_dir_line;
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&parser);
	free(text);
}

/* Tells whether a users.d file name is "<user>.yaml" for a plausible user name. */
static bool policy_yaml_user_file(const char *name, char *user, size_t cap)
{
	size_t len = strlen(name);

	if (len <= 5 || strcmp(name + len - 5, ".yaml") != 0 || name[0] == '.' || len - 5 >= cap)
		return false;
	memcpy(user, name, len - 5);
	user[len - 5] = '\0';
	return true;
}

/* Orders directory entries by name. */
static int policy_yaml_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the *.yaml files of users_dir, sorted, so errors come in a stable order. */
static char **policy_yaml_list(const char *dir, size_t *n, struct policy_errors *errs,
			       const char *from, int line)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL, **nv, user[YAML_NAME_MAX];

	*n = 0;
	if (!d) {
		policy_errors_add(errs, from, line, "cannot open users_dir %s: %s", dir,
				  strerror(errno));
		return NULL;
	}
	while ((de = readdir(d))) {
		if (!policy_yaml_user_file(de->d_name, user, sizeof(user)))
			continue;
		nv = realloc(v, (*n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		if ((v[*n] = strdup(de->d_name)))
			(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), policy_yaml_name_cmp);
	return v;
}

/* Loads every users.d/<user>.yaml. */
static void policy_yaml_users(struct policy *p, const char *dir, bool check_owner,
			      struct policy_strmap *names, struct policy_errors *errs,
			      const char *from, int line)
{
	struct stat st;
	size_t n;
	char **files;

	if (check_owner && stat(dir, &st) == 0 && !policy_yaml_owner_ok(dir, &st, errs))
		return;
	files = policy_yaml_list(dir, &n, errs, from, line);
	for (size_t i = 0; i < n; i++) {
		char user[YAML_NAME_MAX], *path;
		const char *why;

		policy_yaml_user_file(files[i], user, sizeof(user));
		if (asprintf(&path, "%s/%s", dir, files[i]) < 0)
			break;
		if ((why = policy_yaml_name_problem(user)))
			policy_errors_add(errs, path, 0, "\"%s\" is not a user name: %s", user,
					  why);
		else
			policy_yaml_file(p, path, user, check_owner, names, errs, NULL);
		free(path);
	}
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

/* Puts each file's errors in line order (files already come in load order). */
static void policy_yaml_sort_errors(struct policy_errors *errs)
{
	for (size_t i = 1; i < errs->n; i++) {
		struct policy_error e = errs->v[i];
		size_t j = i;

		while (j > 0 && strcmp(errs->v[j - 1].file, e.file) == 0 &&
		       errs->v[j - 1].line > e.line) {
			errs->v[j] = errs->v[j - 1];
			j--;
		}
		errs->v[j] = e;
	}
}

/* Loads and compiles a policy; on any error returns -EINVAL with all of them. */
int policy_load(const char *path, const char *users_dir_override, bool check_owner,
		struct policy **out, struct policy_errors *errs)
{
	struct policy_strmap names = {0};
	struct policy *p = calloc(1, sizeof(*p));
	int line = 0, rc;

	*out = NULL;
	errs->v = NULL;
	errs->n = 0;
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->audit_mask = POLICY_CLASS_BIT(MBX_CLASS_CONFIG) | POLICY_CLASS_BIT(MBX_CLASS_DATA) |
			POLICY_CLASS_BIT(MBX_CLASS_SECURITY) | POLICY_CLASS_BIT(MBX_CLASS_FABRIC) |
			POLICY_CLASS_BIT(MBX_CLASS_VENDOR);
	p->user_max = MBX_CLASS_READ;
	policy_yaml_file(p, path, NULL, check_owner, &names, errs, &line);
	if (users_dir_override) {
		free(p->users_dir);
		p->users_dir = strdup(users_dir_override);
		line = 0;
	}
	/* users.d is read even after errors in the main file: report everything. */
	if (p->users_dir)
		policy_yaml_users(p, p->users_dir, check_owner, &names, errs,
				  line ? path : p->users_dir, line);
	policy_strmap_free(&names);
	policy_yaml_sort_errors(errs);
	rc = errs->n ? -EINVAL : policy_compile(p);
	if (rc < 0) {
		policy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* The users_dir the policy uses, resolved; NULL when it names none. */
const char *policy_users_dir(const struct policy *p)
{
	return p ? p->users_dir : NULL;
}
