/*
 * The policy: classify a command by its blast radius, then decide whether
 * this principal may send it to this device, naming the rule that decided.
 *
 * A struct policy is compiled from YAML once and never changes afterwards,
 * except for rate-limit buckets; reload builds a new one and swaps. Decisions
 * copy every string they report, so a policy may be freed while the answers
 * it gave are still in flight.
 */
#ifndef MBX_POLICY_H
#define MBX_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <mbx/proto.h>

struct policy;

/* One error found while loading: "file:line: message". */
struct policy_error {
	char file[256];
	int line;
	char message[256];
};

/* Every error of one load, in file order. */
struct policy_errors {
	struct policy_error *v;
	size_t n;
};

/*
 * Loads the main policy file and the per-user files of its users_dir (or of
 * users_dir_override when not NULL). On success *out is the compiled policy
 * and errs is empty; on failure returns -EINVAL with every error in errs.
 * check_owner: refuse files not owned by root or writable by group/others.
 */
int policy_load(const char *path, const char *users_dir_override, bool check_owner,
		struct policy **out, struct policy_errors *errs);
void policy_free(struct policy *p);
void policy_errors_free(struct policy_errors *errs);
/* Formats e as "file:line: message" ("file: message" when it is about the whole file). */
const char *policy_error_text(const struct policy_error *e, char *buf, size_t len);
/* Prints every error, one line each, formatted by policy_error_text. */
void policy_errors_print(FILE *f, const struct policy_errors *errs);
/* The users_dir the policy names, or NULL; owned by the policy. */
const char *policy_users_dir(const struct policy *p);

/* One Command Effects Log entry (CXL r3.1 Table 8-75). */
struct cel_entry {
	uint16_t opcode;
	uint16_t effects;
};

/*
 * Parses a CEL as Get Log returns it: le16 opcode, le16 effects per entry.
 * Duplicates are kept out; *out is malloc'ed. -EPROTO if len % 4 != 0.
 */
int policy_cel_parse(const uint8_t *buf, size_t len, struct cel_entry **out, size_t *n);

/*
 * One Feature a device reports in Get Supported Features (CXL r3.1 Table
 * 8-97): its UUID and the Set Feature Effects field.
 */
struct policy_feature {
	uint8_t uuid[16];
	uint16_t set_effects;
};

/*
 * Appends the entries of one Get Supported Features output payload (CXL
 * r3.1 Table 8-96: le16 entries, le16 device total, 4 reserved, then 48-byte
 * entries) to v, which has room for cap and holds *n; believes only the
 * entries that arrived. Returns the bytes the output takes (header and its
 * entries), or -EPROTO if len is shorter than the header. *total (if not
 * NULL) is the device's count of Features.
 */
int policy_features_parse(const uint8_t *buf, size_t len, struct policy_feature *v, size_t cap,
			  size_t *n, size_t *total);

/* What the policy knows of a device, from its transport at open. */
struct policy_device {
	const char *name;
	bool have_cel; /* false: no CEL read, nothing is marked unsupported */
	const struct cel_entry *cel;
	size_t n_cel;
	bool kernel_owned;      /* a kernel driver owns it: kernel-owned opcodes refused */
	const uint16_t *routed; /* ...except these, which the transport routes through */
	size_t n_routed;        /* the kernel's own interfaces (sysfs); see transport.h */
	uint32_t payload_max;   /* 0: no device limit beyond the catalog's */
	/*
	 * Set Feature (0502h) is raised by the effects of the Feature it sets
	 * (never lowered below its catalog class, data): with have_features,
	 * an unlisted Feature UUID is vendor class; a UUID listed twice gets
	 * the more dangerous entry.
	 */
	bool have_features;
	const struct policy_feature *features;
	size_t n_features;
};

/* The most groups (primary and supplementary) a decision considers. */
#define POLICY_PRINCIPAL_GROUPS_MAX 1024

/* The pseudo-rule that refuses an unresolved principal (docs/policy.md). */
#define POLICY_RULE_UNRESOLVED "unresolved-identity"

/*
 * Who is asking, as the kernel told the broker. A principal whose names
 * could not all be looked up is unresolved: a rule naming the name it lacks
 * could not be applied, so every request of it is refused, never matched
 * as if that name did not exist. So is one with more groups than
 * POLICY_PRINCIPAL_GROUPS_MAX.
 */
struct policy_principal {
	uid_t uid;
	gid_t gid;
	const char *user;          /* name of uid */
	const char *const *groups; /* names of gid and supplementary groups */
	size_t n_groups;
	const char *unresolved; /* NULL, or which lookup failed and why */
};

struct policy_request {
	const struct policy_principal *who;
	const struct policy_device *dev;
	uint16_t opcode;
	const uint8_t *payload;
	size_t payload_len;
	const char *reason; /* NULL or "": none given */
	uint64_t now_ms;    /* monotonic clock, for rate limits */
	bool explain;       /* only asked: a rate limit is looked at, no token taken */
};

struct policy_decision {
	enum mbx_decision decision;
	enum mbx_status status; /* OK when allowed; DENIED, INVALID, UNSUPPORTED,
				   KERNEL_OWNED or RATE_LIMITED otherwise */
	enum mbx_class cls;
	char name[64];                 /* the opcode's name */
	char rule[MBX_RULE_MAX];       /* "" for the default deny */
	char source[MBX_SOURCE_MAX];   /* "file:line", "" for the default deny */
	char message[MBX_MESSAGE_MAX]; /* a sentence for the person refused */
	bool audited;                  /* write-ahead audit before the device */
	bool reason_required;
	bool background; /* may start a background operation */
	uint32_t retry_after_ms;
	size_t n_inner;
	struct mbx_inner inner[MBX_INNER_MAX];
};

/*
 * Names an opcode as this policy does: its `opcodes:` name, the catalog's,
 * or "Vendor Command C001h" / "Unknown Command 1234h". p may be NULL.
 */
void policy_opcode_name(const struct policy *p, uint16_t opcode, char *buf, size_t cap);

/*
 * The class an opcode has before anything is known of the device or the
 * payload (catalog, override, FM-API floor): what a request refused before
 * it is classified reports. p may be NULL.
 */
enum mbx_class policy_opcode_class(const struct policy *p, uint16_t opcode);

/*
 * Carries the rate-limit buckets of `from` over to `to` (a reloaded policy,
 * not yet in use) for every rule that did not change: same name, same
 * principals, devices, classes, opcodes, rate and tunnel_targets. The
 * buckets of changed, new or removed rules start full, or go.
 */
void policy_keep_buckets(struct policy *to, struct policy *from);

/* Classifies and decides one request. Never fails: the worst answer is deny. */
void policy_decide(struct policy *p, const struct policy_request *req, struct policy_decision *out);

/*
 * Whether who may see the device named device (DEVICES, WATCH, METRICS):
 * some class or opcode is allowed it there and not denied (docs/policy.md,
 * "Who sees a device"). False for an unresolved principal or a NULL policy.
 */
bool policy_may_see_device(struct policy *p, const struct policy_principal *who,
			   const char *device);

#endif
