/*
 * Tests of decisions by generation: thousands of random policies (class
 * rules, allow_opcodes, denies, device globs, users and groups, tunnel_targets
 * with ports, LDs and the LD Pool CCI) and requests (direct, and tunnels 1 to
 * 4 deep to random targets of both target types) are decided by the compiled
 * tables and by a plain reading of docs/policy.md written here; the decision,
 * status and rule must agree. In particular every rule an allow rests on
 * must let the tunnel go where it goes (tunnel_targets), not only the one
 * that is named.
 */
#include <check.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cci.h"
#include "policy-internal.h"

#define GEN_POLICIES 300
#define GEN_REQUESTS 20 /* per policy */
#define GEN_RULES    6
#define GEN_TARGETS  5 /* port or LD ids 0..4 */

static uint64_t rng = 0x243f6a8885a308d3ull;

/* xorshift64*: a fixed sequence, so a failure repeats. */
static uint32_t gen(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* Opcodes the requests use, with a payload length the catalog accepts. */
static const struct {
	uint16_t op;
	uint8_t len;
} gen_ops[] = {
    {0x0001, 0}, {0x0301, 8}, {0x4200, 0}, {0x4202, 12}, {0x4301, 8},
    {0x4400, 0}, {0x5100, 0}, {0x5102, 2}, {0xc001, 0},
};
#define GEN_N_OPS (sizeof(gen_ops) / sizeof(gen_ops[0]))

static const char *const gen_devices[] = {"switch0", "mem0"};
static const char *const gen_globs[] = {"switch*", "mem0", "switch0", "x*"};

/* Appends a YAML flow list of random classes (at least one when must). */
static size_t gen_classes(char *buf, size_t cap, bool must)
{
	size_t off = 0;
	bool any = false;

	off += (size_t)snprintf(buf + off, cap - off, "[");
	for (int c = 0; c < MBX_CLASS_COUNT; c++) {
		if (gen(3) != 0 && !(must && !any && c == MBX_CLASS_COUNT - 1))
			continue;
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", any ? ", " : "",
					mbx_class_name(c));
		any = true;
	}
	off += (size_t)snprintf(buf + off, cap - off, "]");
	return off;
}

/* Appends a YAML flow list of random opcodes from gen_ops (at least one). */
static size_t gen_opcodes(char *buf, size_t cap)
{
	size_t off = 0, n = 1 + gen(3);

	off += (size_t)snprintf(buf + off, cap - off, "[");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s0x%04X", i ? ", " : "",
					gen_ops[gen(GEN_N_OPS)].op);
	off += (size_t)snprintf(buf + off, cap - off, "]");
	return off;
}

/* Appends one random rule. */
static size_t gen_rule(char *buf, size_t cap, int k)
{
	static const char *const who[] = {"any", "{ users: [alice] }", "{ groups: [ops] }",
					  "{ users: [bob], groups: [ops] }"};
	size_t off = 0;
	bool something = false;

	off +=
	    (size_t)snprintf(buf + off, cap - off, "  - name: r%d\n    who: %s\n", k, who[gen(4)]);
	if (gen(3) == 0)
		off += (size_t)snprintf(buf + off, cap - off, "    devices: [\"%s\"]\n",
					gen_globs[gen(4)]);
	if (gen(3) != 0) {
		off += (size_t)snprintf(buf + off, cap - off, "    allow: ");
		off += gen_classes(buf + off, cap - off, true);
		off += (size_t)snprintf(buf + off, cap - off, "\n");
		something = true;
	}
	if (gen(2) == 0 || !something) {
		off += (size_t)snprintf(buf + off, cap - off, "    allow_opcodes: ");
		off += gen_opcodes(buf + off, cap - off);
		off += (size_t)snprintf(buf + off, cap - off, "\n");
	}
	if (gen(8) == 0) {
		off += (size_t)snprintf(buf + off, cap - off, "    deny: ");
		off += gen_classes(buf + off, cap - off, true);
		off += (size_t)snprintf(buf + off, cap - off, "\n");
	}
	if (gen(8) == 0) {
		off += (size_t)snprintf(buf + off, cap - off, "    deny_opcodes: ");
		off += gen_opcodes(buf + off, cap - off);
		off += (size_t)snprintf(buf + off, cap - off, "\n");
	}
	if (gen(2) == 0) {
		off += (size_t)snprintf(buf + off, cap - off, "    tunnel_targets: [%u",
					gen(GEN_TARGETS));
		for (int t = 0; t < GEN_TARGETS; t++)
			if (gen(3) == 0)
				off += (size_t)snprintf(buf + off, cap - off, ", %d", t);
		if (gen(3) == 0)
			off += (size_t)snprintf(buf + off, cap - off, ", ld-pool");
		off += (size_t)snprintf(buf + off, cap - off, "]\n");
	}
	return off;
}

/* Writes and loads a random policy; text keeps its YAML for failure messages. */
static struct policy *gen_policy(char *text, size_t cap)
{
	char path[] = "/tmp/test-decide-XXXXXX";
	size_t off = 0, n = 1 + gen(GEN_RULES);
	struct policy_errors errs;
	struct policy *p;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	off += (size_t)snprintf(text + off, cap - off, "version: 1\nrules:\n");
	for (size_t k = 0; k < n; k++)
		off += gen_rule(text + off, cap - off, (int)k);
	ck_assert_int_eq(write(fd, text, off), (ssize_t)off);
	close(fd);
	if (policy_load(path, NULL, false, &p, &errs) < 0)
		ck_abort_msg("generated policy does not load (line %d: %s):\n%s",
			     errs.n ? errs.v[0].line : 0, errs.n ? errs.v[0].message : "", text);
	unlink(path);
	return p;
}

/* Builds a tunnel `depth` deep (random targets and target types) to a random opcode. */
static size_t gen_tunnel(uint8_t *out, size_t cap, int depth)
{
	uint8_t msg[512], tmp[512], pl[16] = {0};
	size_t i = gen(GEN_N_OPS);
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST,
			    .opcode = gen_ops[i].op,
			    .payload = pl,
			    .payload_len = gen_ops[i].len};
	int n = cci_encode(msg, sizeof(msg), &m);

	for (int k = 0; k < depth; k++) {
		struct cci_tunnel_req t = {.target = (uint8_t)gen(GEN_TARGETS),
					   .target_type = gen(4) == 0
							      ? CCI_TUNNEL_TARGET_LD_POOL
							      : CCI_TUNNEL_TARGET_PORT_OR_LD,
					   .msg = msg,
					   .msg_len = (uint16_t)n};
		int tn = cci_tunnel_req_encode(tmp, sizeof(tmp), &t);

		ck_assert_int_gt(tn, 0);
		if (k == depth - 1) {
			ck_assert_uint_le((size_t)tn, cap);
			memcpy(out, tmp, (size_t)tn);
			return (size_t)tn;
		}
		m = (struct cci_msg){.category = CCI_CATEGORY_REQUEST,
				     .opcode = CXL_OP_TUNNEL,
				     .payload = tmp,
				     .payload_len = (uint32_t)tn};
		n = cci_encode(msg, sizeof(msg), &m);
	}
	return 0;
}

/* Whether a rule applies to the principal and device, read from its words. */
static bool want_applies(const struct policy_rule *r, const char *user, bool ops, const char *dev)
{
	bool who = r->any, where = r->n_devices == 0;

	for (size_t i = 0; i < r->n_users; i++)
		who = who || strcmp(r->users[i], user) == 0;
	for (size_t i = 0; i < r->n_groups; i++)
		who = who || (ops && strcmp(r->groups[i], "ops") == 0);
	for (size_t i = 0; i < r->n_devices; i++)
		where = where || fnmatch(r->devices[i], dev, 0) == 0;
	return who && where;
}

static bool want_has_op(const uint16_t *v, size_t n, uint16_t op)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == op)
			return true;
	return false;
}

/* Whether the rule lets every tunnel level go where it goes. */
static bool want_targets(const struct policy_rule *r, const struct policy_class *pc)
{
	for (size_t l = 1; r->has_targets && l < pc->n_levels; l++) {
		unsigned t = pc->level[l].target;

		if (pc->level[l].target_type == CCI_TUNNEL_TARGET_LD_POOL
			? !r->targets_ld_pool
			: !(r->targets[t / 8] >> (t % 8) & 1))
			return false;
	}
	return true;
}

/*
 * docs/policy.md "Decisions", read literally: a deny of any level's class or
 * opcode wins (first in file order); else the first rule allowing the
 * request's class, or one rule per level (first allowing its class or
 * opcode) naming the one of the most dangerous level; every rule the allow
 * rests on must accept the tunnel's targets. Returns the rule index or -1.
 */
static int want_decide(const struct policy *p, const struct policy_class *pc, const char *user,
		       bool ops, const char *dev, enum mbx_status *st)
{
	int on[1 + POLICY_TUNNEL_DEPTH_MAX], named = -1, level_named = -1, worst = -1;
	size_t n_on = 0;

	*st = MBX_STATUS_DENIED;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!want_applies(r, user, ops, dev))
			continue;
		if (r->deny_cls & POLICY_CLASS_BIT(pc->cls))
			return (int)i;
		for (size_t l = 0; l < pc->n_levels; l++)
			if ((r->deny_cls & POLICY_CLASS_BIT(pc->level[l].cls)) ||
			    want_has_op(r->deny_ops, r->n_deny_ops, pc->level[l].opcode))
				return (int)i;
	}
	for (size_t i = 0; i < p->n_rules && named < 0; i++)
		if (want_applies(&p->rules[i], user, ops, dev) &&
		    (p->rules[i].allow_cls & POLICY_CLASS_BIT(pc->cls)))
			on[n_on++] = named = (int)i;
	for (size_t l = 0; named < 0 && l < pc->n_levels; l++) {
		int found = -1;

		for (size_t i = 0; i < p->n_rules && found < 0; i++) {
			const struct policy_rule *r = &p->rules[i];

			if (want_applies(r, user, ops, dev) &&
			    ((r->allow_cls & POLICY_CLASS_BIT(pc->level[l].cls)) ||
			     want_has_op(r->allow_ops, r->n_allow_ops, pc->level[l].opcode)))
				found = (int)i;
		}
		if (found < 0)
			return -1;
		on[n_on++] = found;
		if ((int)pc->level[l].cls >= worst) {
			worst = (int)pc->level[l].cls;
			level_named = found;
		}
	}
	if (named < 0)
		named = level_named;
	if (named < 0)
		return -1;
	for (size_t k = 0; k < n_on; k++)
		if (!want_targets(&p->rules[on[k]], pc))
			return on[k];
	*st = MBX_STATUS_OK;
	return named;
}

/* Decides one random request both ways and compares. */
static void gen_request(struct policy *p, const char *text, int n)
{
	static const char *const users[] = {"alice", "bob", "carol"};
	const char *user = users[gen(3)], *groups[] = {"ops"};
	bool ops = gen(2) == 0;
	struct policy_device dev = {.name = gen_devices[gen(2)]};
	struct policy_principal who = {.user = user, .groups = groups, .n_groups = ops ? 1 : 0};
	uint8_t pl[1024] = {0};
	struct policy_request req = {.who = &who, .dev = &dev, .payload = pl};
	struct policy_decision d;
	struct policy_class pc;
	enum mbx_status st;
	int want;

	if (gen(3) == 0) {
		size_t i = gen(GEN_N_OPS);

		req.opcode = gen_ops[i].op;
		req.payload_len = gen_ops[i].len;
	} else {
		req.opcode = CXL_OP_TUNNEL;
		req.payload_len = gen_tunnel(pl, sizeof(pl), 1 + (int)gen(POLICY_TUNNEL_DEPTH_MAX));
	}
	policy_classify(p, &dev, req.opcode, pl, req.payload_len, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	policy_decide(p, &req, &d);
	want = want_decide(p, &pc, user, ops, dev.name, &st);
	ck_assert_msg(d.status == st && strcmp(d.rule, want < 0 ? "" : p->rules[want].name) == 0,
		      "case %d: %s%s on %s, opcode %04x (%zu levels, class %s): mbxd says %s "
		      "rule \"%s\" (%s); expected %s rule \"%s\"\npolicy:\n%s",
		      n, user, ops ? " (ops)" : "", dev.name, req.opcode, pc.n_levels,
		      mbx_class_name(pc.cls), mbx_status_name(d.status), d.rule, d.message,
		      mbx_status_name(st), want < 0 ? "" : p->rules[want].name, text);
}

/* Thousands of generated policies and requests: compiled and literal readings agree. */
START_TEST(test_decide_generated_agrees)
{
	static char text[16384];

	for (int k = 0; k < GEN_POLICIES; k++) {
		struct policy *p = gen_policy(text, sizeof(text));

		for (int r = 0; r < GEN_REQUESTS; r++)
			gen_request(p, text, k * GEN_REQUESTS + r);
		policy_free(p);
	}
}
END_TEST

/* Loads a policy from text. */
static struct policy *load_text(const char *text)
{
	char path[] = "/tmp/test-decide-XXXXXX";
	struct policy_errors errs;
	struct policy *p;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_msg(policy_load(path, NULL, false, &p, &errs) == 0, "%s",
		      errs.n ? errs.v[0].message : "");
	unlink(path);
	return p;
}

/* Asks (or, explain false, submits) Identify on mem0 as user at now; returns the status. */
static enum mbx_status ask(struct policy *p, const char *user, uint64_t now, bool explain)
{
	struct policy_principal who = {.user = user};
	struct policy_device dev = {.name = "mem0"};
	struct policy_request req = {
	    .who = &who, .dev = &dev, .opcode = 0x0001, .now_ms = now, .explain = explain};
	struct policy_decision d;

	policy_decide(p, &req, &d);
	return d.status;
}

static const char *const rate_policy = "version: 1\nrules:\n"
				       "  - name: limited\n    who: any\n    allow: [read]\n"
				       "    rate: 3/second\n";

/*
 * Random interleavings of EXPLAIN and SUBMIT at random times: an EXPLAIN
 * answers what a SUBMIT at that moment would get, and takes nothing (a twin
 * policy that saw only the SUBMITs answers every SUBMIT the same).
 */
START_TEST(test_decide_explain_takes_no_token)
{
	for (int round = 0; round < 200; round++) {
		struct policy *p = load_text(rate_policy), *twin = load_text(rate_policy);
		uint64_t now = 1000;

		for (int i = 0; i < 40; i++) {
			const char *user = gen(2) ? "alice" : "bob";

			now += gen(3) == 0 ? gen(700) : gen(20);
			while (gen(2) == 0) {
				enum mbx_status e = ask(p, user, now, true);

				/* The answer of an EXPLAIN is the SUBMIT's, were it sent now. */
				ck_assert_int_eq(ask(p, user, now, true), e);
				ck_assert_int_eq(e, ask(twin, user, now, true));
			}
			ck_assert_int_eq(ask(p, user, now, false), ask(twin, user, now, false));
		}
		policy_free(p);
		policy_free(twin);
	}
}
END_TEST

/* A reload keeps the buckets of rules that did not change, wherever they moved. */
START_TEST(test_decide_reload_keeps_buckets)
{
	struct policy *old = load_text("version: 1\nrules:\n"
				       "  - name: same\n    who: any\n    devices: [mem0]\n"
				       "    allow: [read]\n    rate: 2/hour\n"
				       "  - name: changed\n    who: { users: [bob] }\n"
				       "    allow: [read]\n    rate: 2/hour\n");
	struct policy *new = load_text("version: 1\nrules:\n"
				       "  - name: added\n    who: { users: [carol] }\n"
				       "    allow: [log]\n"
				       "  - name: changed\n    who: { users: [bob] }\n"
				       "    allow: [read]\n    rate: 3/hour\n"
				       "  - name: same\n    who: any\n    devices: [mem0]\n"
				       "    allow: [read]\n    rate: 2/hour\n");

	/* alice is allowed by "same", bob by "changed" (first in file order of the new file). */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(ask(old, "alice", 1000, false), MBX_STATUS_OK);
	ck_assert_int_eq(ask(old, "alice", 1000, false), MBX_STATUS_RATE_LIMITED);
	policy_keep_buckets(new, old);
	policy_free(old);
	ck_assert_int_eq(ask(new, "alice", 1001, false), MBX_STATUS_RATE_LIMITED);
	ck_assert_int_eq(ask(new, "dave", 1001, false), MBX_STATUS_OK); /* his own bucket */
	policy_free(new);

	/* A rule whose rate changed starts over. */
	old = load_text("version: 1\nrules:\n  - name: r\n    who: any\n    allow: [read]\n"
			"    rate: 1/hour\n");
	new = load_text("version: 1\nrules:\n  - name: r\n    who: any\n    allow: [read]\n"
			"    rate: 2/hour\n");
	ck_assert_int_eq(ask(old, "alice", 1000, false), MBX_STATUS_OK);
	ck_assert_int_eq(ask(old, "alice", 1000, false), MBX_STATUS_RATE_LIMITED);
	policy_keep_buckets(new, old);
	policy_free(old);
	ck_assert_int_eq(ask(new, "alice", 1001, false), MBX_STATUS_OK);
	policy_free(new);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("decide");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_decide_generated_agrees);
	tcase_add_test(tc, test_decide_explain_takes_no_token);
	tcase_add_test(tc, test_decide_reload_keeps_buckets);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
