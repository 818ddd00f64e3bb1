/*
 * Tests of the classifier by generation: for thousands of random policies
 * (`opcodes:` overrides), devices (CELs with duplicates and undefined bits,
 * Feature lists with duplicate UUIDs) and requests (Set Feature payloads,
 * tunnels), the class is the maximum of the catalog, the override, the CEL
 * effects, the Feature effects and the FM-API floor, and nothing lowers it.
 * The expected class is computed here from the documented rule alone.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cci.h"
#include "policy-internal.h"

#define GEN_CASES    4000
#define GEN_UUIDS    4 /* Feature UUIDs a device may list; payloads may name one more */
#define GEN_FEATS    6
#define GEN_CEL      12
#define GEN_POLICIES 40 /* each classifies GEN_CASES / GEN_POLICIES requests */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* xorshift64*: a fixed sequence, so a failure repeats. */
static uint32_t gen(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* Opcodes the cases use: every class, FM-API, vendor, unknown, Set Feature. */
static const uint16_t gen_ops[] = {0x0001, 0x0101, 0x0301, 0x0502, 0x0502, 0x0502,
				   0x4200, 0x4202, 0x4301, 0x4400, 0x4500, 0x5100,
				   0x5102, 0x5201, 0xc001, 0xc002, 0x1234, 0x5300};
#define GEN_N_OPS (sizeof(gen_ops) / sizeof(gen_ops[0]))

static const uint16_t gen_effects[] = {0,
				       CEL_CONFIG_COLD_RESET,
				       CEL_CONFIG_IMMEDIATE,
				       CEL_DATA_IMMEDIATE,
				       CEL_POLICY_IMMEDIATE,
				       CEL_LOG_IMMEDIATE,
				       CEL_SECURITY,
				       CEL_BACKGROUND,
				       CEL_LOG_IMMEDIATE | CEL_BACKGROUND,
				       0x0100,
				       CEL_DATA_IMMEDIATE | CEL_SECURITY};
#define GEN_N_EFFECTS (sizeof(gen_effects) / sizeof(gen_effects[0]))

/* The class effects bits name, from docs/policy.md; -1 for none. */
static int want_effects(uint16_t e)
{
	if (e & CEL_SECURITY)
		return MBX_CLASS_SECURITY;
	if (e & CEL_DATA_IMMEDIATE)
		return MBX_CLASS_DATA;
	if (e & (CEL_CONFIG_COLD_RESET | CEL_CONFIG_IMMEDIATE | CEL_POLICY_IMMEDIATE))
		return MBX_CLASS_CONFIG;
	if (e & CEL_LOG_IMMEDIATE)
		return MBX_CLASS_LOG;
	return -1;
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

/* One generated policy: its overrides, as the oracle sees them. */
struct gen_policy {
	int ovr[GEN_N_OPS]; /* -1: no override */
	struct policy *p;
};

/* One generated device. */
struct gen_device {
	struct policy_device dev;
	struct cel_entry *cel;
	uint8_t raw_cel[GEN_CEL * 4];
	size_t n_raw;
	struct policy_feature feats[GEN_FEATS];
};

/* Writes and loads a policy with random `opcodes:` overrides (raising catalogued ones only). */
static void gen_policy(struct gen_policy *g)
{
	char path[] = "/tmp/test-classify-XXXXXX", text[4096];
	size_t off = 0;
	struct policy_errors errs;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	off += (size_t)snprintf(text + off, sizeof(text) - off, "version: 1\nopcodes:\n");
	for (size_t i = 0; i < GEN_N_OPS; i++) {
		const struct catalog_entry *e = catalog_lookup(gen_ops[i]);
		int lo = e ? (int)e->cls : 0;

		g->ovr[i] = -1;
		/* Only the first occurrence of an opcode may carry its override. */
		for (size_t j = 0; j < i; j++)
			if (gen_ops[j] == gen_ops[i])
				goto next;
		if (gen(2) == 0) {
			g->ovr[i] = lo + (int)gen((uint32_t)(MBX_CLASS_COUNT - lo));
			off += (size_t)snprintf(text + off, sizeof(text) - off,
						"  0x%04X: { class: %s }\n", gen_ops[i],
						mbx_class_name(g->ovr[i]));
		}
	next:;
	}
	snprintf(text + off, sizeof(text) - off,
		 "rules:\n  - name: all\n    who: any\n    allow: [read]\n");
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	if (policy_load(path, NULL, false, &g->p, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%d: %s\n", errs.v[i].line, errs.v[i].message);
		ck_abort_msg("generated policy does not load:\n%s", text);
	}
	unlink(path);
	/* The oracle reads overrides per opcode: copy the first occurrence's. */
	for (size_t i = 0; i < GEN_N_OPS; i++)
		for (size_t j = 0; j < i; j++)
			if (gen_ops[j] == gen_ops[i])
				g->ovr[i] = g->ovr[j];
}

/* A random device: maybe a CEL (with duplicate entries), maybe Features (with duplicate UUIDs). */
static void gen_device(struct gen_device *d)
{
	size_t n_cel = 0;

	memset(d, 0, sizeof(*d));
	d->dev.name = "mem0";
	d->dev.have_cel = gen(3) != 0;
	if (d->dev.have_cel) {
		size_t n = gen(GEN_CEL + 1);

		for (size_t i = 0; i < n; i++) {
			uint16_t op = gen_ops[gen(GEN_N_OPS)], e = gen_effects[gen(GEN_N_EFFECTS)];
			uint8_t *b = d->raw_cel + 4 * i;

			b[0] = (uint8_t)op;
			b[1] = (uint8_t)(op >> 8);
			b[2] = (uint8_t)e;
			b[3] = (uint8_t)(e >> 8);
		}
		d->n_raw = 4 * n;
		ck_assert_int_eq(policy_cel_parse(d->raw_cel, d->n_raw, &d->cel, &n_cel), 0);
		d->dev.cel = d->cel;
		d->dev.n_cel = n_cel;
	}
	d->dev.have_features = gen(3) != 0;
	if (d->dev.have_features) {
		d->dev.n_features = gen(GEN_FEATS + 1);
		for (size_t i = 0; i < d->dev.n_features; i++) {
			d->feats[i].uuid[0] = (uint8_t)(1 + gen(GEN_UUIDS));
			d->feats[i].set_effects = gen_effects[gen(GEN_N_EFFECTS)];
		}
		d->dev.features = d->feats;
	}
}

/* The class of opcode i from the catalog, the override and the FM-API floor. */
static int want_base(const struct gen_policy *g, uint16_t op, int ovr)
{
	const struct catalog_entry *e = catalog_lookup(op);
	int cls = e ? (int)e->cls : MBX_CLASS_VENDOR;
	unsigned set = op >> 8;

	if (ovr >= 0)
		cls = e ? imax(cls, ovr) : ovr;
	(void)g;
	if (set >= 0x51 && set <= 0x59 && !(e && e->cls == MBX_CLASS_READ))
		cls = imax(cls, MBX_CLASS_FABRIC);
	return cls;
}

/* What the oracle expects of a direct request: a status and a class. */
static int want_direct(const struct gen_policy *g, const struct gen_device *d, size_t i,
		       const uint8_t *pl, enum mbx_status *st)
{
	uint16_t op = gen_ops[i];
	int cls = want_base(g, op, g->ovr[i]);
	bool listed = false, found = false;
	uint16_t eff = 0;
	int fc = -1;

	*st = MBX_STATUS_OK;
	/* Every CEL entry of the opcode counts: duplicates are the union of their effects. */
	for (size_t k = 0; k < d->n_raw / 4; k++) {
		const uint8_t *b = d->raw_cel + 4 * k;

		if ((uint16_t)(b[0] | b[1] << 8) == op) {
			listed = true;
			eff |= (uint16_t)(b[2] | b[3] << 8);
		}
	}
	if (d->dev.have_cel && !listed)
		*st = MBX_STATUS_UNSUPPORTED;
	if (listed && (eff & ~CEL_KNOWN_MASK) && !catalog_lookup(op))
		cls = MBX_CLASS_VENDOR;
	if (listed)
		cls = imax(cls, want_effects(eff));
	if (op == CXL_OP_SET_FEATURE && d->dev.have_features) {
		for (size_t k = 0; k < d->dev.n_features; k++) {
			if (memcmp(d->feats[k].uuid, pl, 16) != 0)
				continue;
			found = true;
			fc =
			    imax(fc, imax(want_effects(d->feats[k].set_effects), MBX_CLASS_CONFIG));
		}
		cls = imax(cls, found ? fc : MBX_CLASS_VENDOR);
	}
	return cls;
}

/* Fills a valid payload for opcode op (catalog's minimum; Set Feature names a UUID). */
static size_t gen_payload(uint16_t op, uint8_t *pl, size_t cap)
{
	const struct catalog_entry *e = catalog_lookup(op);
	size_t len = e ? e->min_in : gen(8);

	ck_assert_uint_le(len + 8, cap);
	memset(pl, 0, cap);
	if (op == CXL_OP_SET_FEATURE) {
		pl[0] = (uint8_t)(1 + gen(GEN_UUIDS + 1)); /* GEN_UUIDS + 1: never listed */
		len += gen(8);
	}
	return len;
}

/* Builds a tunnel `depth` deep to an inner opcode; returns the payload's length. */
static size_t gen_tunnel(uint8_t *out, size_t cap, int depth, uint16_t op, const uint8_t *pl,
			 size_t len)
{
	uint8_t msg[1024], tmp[1024];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST,
			    .opcode = op,
			    .payload = pl,
			    .payload_len = (uint32_t)len};
	int n = cci_encode(msg, sizeof(msg), &m);

	for (int k = 0; k < depth; k++) {
		struct cci_tunnel_req t = {
		    .target = (uint8_t)gen(4), .msg = msg, .msg_len = (uint16_t)n};
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

/* Index of op in gen_ops. */
static size_t gen_index(uint16_t op)
{
	for (size_t i = 0; i < GEN_N_OPS; i++)
		if (gen_ops[i] == op)
			return i;
	ck_abort_msg("opcode %04x not generated", op);
	return 0;
}

/* The classifier's verdict: a fault of the request, else what the device says. */
static enum mbx_status verdict(const struct policy_class *pc)
{
	return pc->status != MBX_STATUS_OK ? pc->status : pc->dev_status;
}

/* Classifies one generated request and compares it with the oracle. */
static void gen_case(const struct gen_policy *g, const struct gen_device *d, int n)
{
	uint8_t inner[128], pl[2048];
	size_t i = gen(GEN_N_OPS), len;
	struct policy_class pc;
	enum mbx_status st;
	int want;

	if (gen_ops[i] != CXL_OP_TUNNEL) {
		len = gen_payload(gen_ops[i], pl, sizeof(pl));
		policy_classify(g->p, &d->dev, gen_ops[i], pl, len, &pc);
		want = want_direct(g, d, i, pl, &st);
		ck_assert_msg(verdict(&pc) == st && (st != MBX_STATUS_OK || (int)pc.cls == want),
			      "case %d: opcode %04x (override %d, CEL %s, %zu features, uuid %u): "
			      "status %d class %s, expected status %d class %s",
			      n, gen_ops[i], g->ovr[i], d->dev.have_cel ? "yes" : "no",
			      d->dev.n_features, pl[0], verdict(&pc), mbx_class_name(pc.cls), st,
			      mbx_class_name(want));
		return;
	}
	/* A tunnel: the wrapper is classified by the device, each level by catalog and override. */
	do
		i = gen(GEN_N_OPS);
	while (gen_ops[i] == CXL_OP_TUNNEL);
	len = gen_payload(gen_ops[i], inner, sizeof(inner));
	len = gen_tunnel(pl, sizeof(pl), 1 + (int)gen(POLICY_TUNNEL_DEPTH_MAX), gen_ops[i], inner,
			 len);
	policy_classify(g->p, &d->dev, CXL_OP_TUNNEL, pl, len, &pc);
	want = imax(want_direct(g, d, gen_index(CXL_OP_TUNNEL), pl, &st),
		    want_base(g, gen_ops[i], g->ovr[i]));
	ck_assert_msg(verdict(&pc) == st && (st != MBX_STATUS_OK || (int)pc.cls == want),
		      "case %d: tunnel to %04x: status %d class %s, expected %d %s", n, gen_ops[i],
		      verdict(&pc), mbx_class_name(pc.cls), st, mbx_class_name(want));
	for (size_t l = 1; st == MBX_STATUS_OK && l < pc.n_levels; l++)
		ck_assert_int_le(pc.level[l].cls, pc.cls);
}

/* Thousands of generated cases: the class is always the maximum of its sources. */
START_TEST(test_classify_generated_maximum)
{
	for (int k = 0; k < GEN_POLICIES; k++) {
		struct gen_policy g;

		gen_policy(&g);
		for (int c = 0; c < GEN_CASES / GEN_POLICIES; c++) {
			struct gen_device d;

			gen_device(&d);
			gen_case(&g, &d, k * (GEN_CASES / GEN_POLICIES) + c);
			free(d.cel);
		}
		policy_free(g.p);
	}
}
END_TEST

/* The case of the issue: an override of Set Feature holds whatever the Feature says. */
START_TEST(test_classify_set_feature_override_holds)
{
	struct policy_feature f = {.uuid = {7}, .set_effects = CEL_CONFIG_IMMEDIATE};
	struct policy_device dev = {
	    .name = "mem0", .have_features = true, .features = &f, .n_features = 1};
	char path[] = "/tmp/test-classify-XXXXXX";
	const char *text = "version: 1\nopcodes:\n  0x0502: {class: security}\nrules:\n"
			   "  - name: r\n    who: any\n    allow: [config]\n";
	int fd = mkstemp(path);
	struct policy_errors errs;
	struct policy *p;
	struct policy_class pc;
	uint8_t pl[40] = {7};

	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(policy_load(path, NULL, false, &p, &errs), 0);
	unlink(path);
	policy_classify(p, &dev, CXL_OP_SET_FEATURE, pl, sizeof(pl), &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_SECURITY);
	policy_free(p);
}
END_TEST

/* Sets reserved header bit `bit` of the CCI message at msg (byte 0 7:4, byte 2, byte 7 6:4). */
static void set_reserved(uint8_t *msg, int bit)
{
	static const struct {
		uint8_t byte, mask;
	} rsv[] = {{0, 0x10}, {0, 0x20}, {0, 0x40}, {0, 0x80}, {2, 0x01},
		   {2, 0x02}, {2, 0x04}, {2, 0x08}, {2, 0x10}, {2, 0x20},
		   {2, 0x40}, {2, 0x80}, {7, 0x10}, {7, 0x20}, {7, 0x40}};

	msg[rsv[bit].byte] |= rsv[bit].mask;
}

/* Any reserved bit of any tunnelled CCI header, at any depth, makes the request invalid. */
START_TEST(test_classify_tunnel_reserved_bits)
{
	struct gen_policy g;

	gen_policy(&g);
	for (int depth = 1; depth <= POLICY_TUNNEL_DEPTH_MAX; depth++) {
		for (int at = 1; at <= depth; at++) {
			for (int bit = 0; bit < 15; bit++) {
				uint8_t pl[1024];
				size_t len = gen_tunnel(pl, sizeof(pl), depth, 0x0001, NULL, 0);
				uint8_t *msg = pl + CCI_TUNNEL_REQ_HEADER;
				struct policy_class pc;

				/* Level `at`'s message starts after at-1 (tunnel + CCI) headers. */
				msg += (size_t)(at - 1) * (CCI_HEADER_SIZE + CCI_TUNNEL_REQ_HEADER);
				set_reserved(msg, bit);
				policy_classify(g.p, NULL, CXL_OP_TUNNEL, pl, len, &pc);
				ck_assert_msg(pc.status == MBX_STATUS_INVALID,
					      "depth %d, level %d, reserved bit %d: status %d",
					      depth, at, bit, pc.status);
				ck_assert_ptr_nonnull(strstr(pc.message, "reserved"));
			}
		}
	}
	policy_free(g.p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("classify");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_classify_set_feature_override_holds);
	tcase_add_test(tc, test_classify_generated_maximum);
	tcase_add_test(tc, test_classify_tunnel_reserved_bits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
