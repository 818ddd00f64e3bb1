/*
 * Internals of the policy library: the loaded policy, its compiled lookup
 * tables, and the classifier's answer. Not for use outside policy/.
 */
#ifndef MBX_POLICY_INTERNAL_H
#define MBX_POLICY_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#include "catalog.h"
#include "policy.h"

/*
 * Tunnel levels the classifier follows: a switch tunnels to an MLD, which
 * tunnels to one of its LDs (two tunnels, three messages); one more level is
 * tolerated for a multi-headed device in the path. Deeper is invalid.
 */
#define POLICY_TUNNEL_DEPTH_MAX 4

/* Command Effects Log bits (CXL r3.1 Table 8-75) the implementations agree on. */
#define CEL_CONFIG_COLD_RESET (1u << 0)
#define CEL_CONFIG_IMMEDIATE  (1u << 1)
#define CEL_DATA_IMMEDIATE    (1u << 2)
#define CEL_POLICY_IMMEDIATE  (1u << 3)
#define CEL_LOG_IMMEDIATE     (1u << 4)
#define CEL_SECURITY          (1u << 5)
#define CEL_BACKGROUND        (1u << 6)
#define CEL_KNOWN_MASK        0x7fu

#define POLICY_NO_RULE      INT32_MAX
#define POLICY_CLASS_BIT(c) (1u << (c))

/* An `opcodes:` entry: a name and class the admin gave an opcode. */
struct policy_override {
	uint16_t opcode;
	enum mbx_class cls;
	char name[64];
};

/* One compiled rule, in file order (main file first, then users.d by name). */
struct policy_rule {
	char *name;
	char source[MBX_SOURCE_MAX]; /* "file:line" */
	char *owner;                 /* user of a users.d file, else NULL */
	bool any;
	char **users;
	size_t n_users;
	char **groups;
	size_t n_groups;
	char **devices; /* fnmatch(3) globs; none means every device */
	size_t n_devices;
	uint8_t allow_cls; /* POLICY_CLASS_BIT masks */
	uint8_t deny_cls;
	uint16_t *allow_ops;
	size_t n_allow_ops;
	uint16_t *deny_ops;
	size_t n_deny_ops;
	uint32_t rate_n; /* 0: no limit */
	uint64_t rate_period_ms;
	char rate_text[32];
	bool has_targets;     /* tunnel_targets: given */
	uint8_t targets[32];  /* bitmap of port/LD ids tunnels may go to */
	bool targets_ld_pool; /* ...and whether they may go to the LD Pool CCI */
	uint32_t *subjects;   /* subject ids this rule applies to */
	size_t n_subjects;
};

/* A string -> id map (open addressing), for principal names. */
struct policy_strmap {
	char **keys;
	uint32_t *vals;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

/* First allow/deny rule per (subject, opcode), within one device's table. */
struct policy_opslot {
	uint32_t key; /* subject << 16 | opcode; UINT32_MAX when empty */
	int32_t allow;
	int32_t deny;
};

/*
 * The rules that match one device name, compiled so that a request costs a
 * constant number of lookups per subject, whatever the number of rules.
 */
struct policy_devtab {
	char *name;
	int32_t (*first_allow)[MBX_CLASS_COUNT]; /* [subject][class] */
	int32_t (*first_deny)[MBX_CLASS_COUNT];
	struct policy_opslot *ops;
	size_t ops_cap;
};

/* A token bucket for one (rule, user). */
struct policy_bucket {
	uint32_t rule; /* UINT32_MAX when empty */
	char *user;
	double tokens;
	uint64_t last_ms;
	bool seen; /* last_ms is meaningful */
};

struct policy {
	char *users_dir;
	uint8_t audit_mask;
	uint8_t reason_mask;
	enum mbx_class user_max;
	struct policy_override *ovr; /* sorted by opcode */
	size_t n_ovr;
	struct policy_rule *rules;
	size_t n_rules;
	size_t cap_rules;
	struct policy_strmap subjects; /* "u:name" / "g:name" -> id; id 0 is "any" */
	uint32_t n_subjects;

	pthread_mutex_t lock; /* guards devtabs and buckets below */
	struct policy_devtab **devtabs;
	size_t n_devtabs;
	struct policy_bucket *buckets;
	size_t buckets_cap;
	size_t n_buckets;
};

/* One level of a classified request: level 0 is the request itself. */
struct policy_level {
	uint16_t opcode;
	enum mbx_class cls;
	uint16_t target;     /* port or LD id it was tunnelled to (levels >= 1) */
	uint8_t target_type; /* CCI_TUNNEL_TARGET_*: a port or LD, or the LD Pool CCI */
	char name[64];
};

/* What the classifier found. */
struct policy_class {
	enum mbx_status status; /* OK or INVALID: a fault of the request itself */
	/* What the device says against it: OK, UNSUPPORTED, KERNEL_OWNED or INVALID
	   (beyond its mailbox); answered only to whom the policy allows the request. */
	enum mbx_status dev_status;
	char dev_message[MBX_MESSAGE_MAX];
	enum mbx_class cls; /* the most dangerous level */
	bool background;
	char message[MBX_MESSAGE_MAX]; /* why, when status is not OK */
	size_t n_levels;
	struct policy_level level[1 + POLICY_TUNNEL_DEPTH_MAX];
};

/* classify.c */
void policy_classify(const struct policy *p, const struct policy_device *dev, uint16_t opcode,
		     const uint8_t *payload, size_t len, struct policy_class *out);
const struct policy_override *policy_classify_override(const struct policy *p, uint16_t opcode);
/* The class an opcode has before any device effects (catalog + overrides). */
enum mbx_class policy_classify_base(const struct policy *p, uint16_t opcode);

/* cel.c */
const struct cel_entry *policy_cel_find(const struct cel_entry *cel, size_t n, uint16_t opcode);
/* The class effects bits call for, or -1 when they name no class. */
int policy_cel_effects_class(uint16_t effects);

/* policy-yaml.c helpers shared with decide.c */
void policy_errors_add(struct policy_errors *errs, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* decide.c */
int policy_compile(struct policy *p);
void policy_strmap_free(struct policy_strmap *m);
int policy_strmap_put(struct policy_strmap *m, const char *key, uint32_t val);
bool policy_strmap_get(const struct policy_strmap *m, const char *key, uint32_t *val);

#endif
