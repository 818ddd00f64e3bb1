/*
 * The live daemon and the offline `mbxctl policy explain` decide alike.
 *
 * A generated corpus: random policies within the language (defaults,
 * `opcodes:` overrides of catalogued and vendor opcodes, rules naming users,
 * groups or any, device globs, class and opcode allows and denies,
 * tunnel_targets with ports, LDs and ld-pool; no rates), the test users
 * under their real uids and groups, sim devices with different CELs and
 * Feature lists (reported effects changed, a command missing, every Feature
 * listed twice, a small mailbox, a switch), and requests (every class,
 * overridden opcodes, Set Feature of each Feature, unknown and malformed
 * payloads, tunnels 1 to 4 deep to various targets and target types,
 * reserved header bits, with and without a reason). Each case is sent to a
 * sandboxed mbxd by a real client as its user (SUBMIT; EXPLAIN for what
 * could start a background operation, so the device stays idle) and given to
 * `mbxctl policy explain` with the device's CEL, Features and mailbox size as
 * fetched from the daemon. Decision, status, class, rule and every tunnel
 * level must agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <mbx/mbx.h>

#include "catalog.h"
#include "cci.h"
#include "harness.h"

#define DIFF_POLICIES 24
#define DIFF_CASES    100 /* per policy: 2,400 cases in all */
#define DIFF_RULES    7
#define DIFF_PAYLOAD  600
#define DIFF_GROUPS   16
#define DIFF_INNER    128 /* room for any generated command's payload (Clear Poison: 72) */

static uint64_t rng = 0x6a09e667f3bcc908ull;

/* xorshift64*: a fixed sequence, so a failing case repeats. */
static uint32_t gen(uint32_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* The devices: what mbxd is configured with, and what the test fetches of each. */
static const char *const diff_devices_yaml =
    "  - name: mem0\n    transport: sim\n"
    "  - name: mem1\n    transport: sim\n"
    "    options: { cel_effects: \"0x4202:0x0020 0x0301:0x0004 0x0502:0x0001 0xc001:0x0100\","
    " feature_effects: \"0:0x0020 4:0x0001\", features_twice: 1, omit_opcode: 0x4301 }\n"
    "  - name: mem2\n    transport: sim\n    options: { payload_max: 256 }\n"
    "  - name: switch0\n    transport: sim\n"
    "    options: { model: switch, cel_effects: \"0x5300:0x0002\" }\n";
static char *const diff_devices[] = {"mem0", "mem1", "mem2", "switch0"};
#define DIFF_N_DEVICES 4

struct diff_device {
	char cel[400];      /* Get Log (CEL) output, as fetched */
	char features[400]; /* Get Supported Features outputs, as fetched */
	bool have_features;
	uint32_t payload_max;
};

static struct diff_device devs[DIFF_N_DEVICES];
static struct harness h;

static char *const diff_users[] = {H_OPERATOR, H_ADMIN, H_OUTSIDER};
#define DIFF_N_USERS 3
static char diff_groups[DIFF_N_USERS][DIFF_GROUPS][64];
static size_t diff_n_groups[DIFF_N_USERS];

/* Opcodes requests use: every class and command set the devices know, and some they do not. */
static const uint16_t diff_ops[] = {0x0001, 0x0005, 0x0101, 0x0200, 0x0301, 0x0401, 0x0502,
				    0x0502, 0x0502, 0x4000, 0x4200, 0x4202, 0x4301, 0x4302,
				    0x4400, 0x4500, 0x5100, 0x5101, 0x5102, 0x5201, 0xc001,
				    0xc002, 0x1234, 0x5300, 0x5300, 0x5300};
#define DIFF_N_OPS (sizeof(diff_ops) / sizeof(diff_ops[0]))

/* The UUIDs of the sim's Features (sim-memdev.c), and one no device has. */
static const uint8_t diff_uuids[4][16] = {
    {0x96, 0xda, 0xd7, 0xd6, 0xfd, 0xe8, 0x48, 0x2b, 0xa7, 0x33, 0x75, 0x77, 0x4e, 0x06, 0xdb,
     0x8a},
    {0x4b, 0x9c, 0x7e, 0x5a, 0x2f, 0x31, 0x4d, 0x0e, 0x9a, 0x61, 0x5c, 0x3b, 0x8e, 0x27, 0xd1,
     0x40},
    {0x7d, 0x2e, 0x91, 0xc4, 0x83, 0xb5, 0x4f, 0x6a, 0xb0, 0xd2, 0x1e, 0x6f, 0x4a, 0x9c, 0x3b,
     0x85},
    {0x01, 0x02, 0x03, 0x04},
};

/* One generated request and what the daemon answered. */
struct diff_case {
	int user;
	int dev;
	uint16_t opcode;
	uint8_t payload[DIFF_PAYLOAD];
	size_t len;
	char *reason;
	bool explain; /* could start a background operation: asked with EXPLAIN */
	struct mbx_result got;
	bool answered;
};

static struct diff_case cases[DIFF_CASES];

/* Appends a flow list of random classes; at least one. */
static void diff_classes(FILE *f)
{
	bool any = false;

	fputc('[', f);
	for (int c = 0; c < MBX_CLASS_COUNT; c++) {
		if (gen(3) != 0 && (any || c < MBX_CLASS_COUNT - 1))
			continue;
		fprintf(f, "%s%s", any ? ", " : "", mbx_class_name(c));
		any = true;
	}
	fputc(']', f);
}

/* Appends a flow list of random opcodes. */
static void diff_opcodes(FILE *f)
{
	size_t n = 1 + gen(3);

	fputc('[', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s0x%04X", i ? ", " : "", diff_ops[gen(DIFF_N_OPS)]);
	fputc(']', f);
}

/* Appends one random rule. */
static void diff_rule(FILE *f, int k)
{
	static const char *const who[] = {"any", "{ users: [" H_OPERATOR "] }",
					  "{ users: [" H_ADMIN ", someone-else] }",
					  "{ groups: [" H_OPS_GROUP "] }",
					  "{ users: [" H_OUTSIDER "], groups: [no-such-group] }"};
	static const char *const globs[] = {"mem*", "mem1", "switch0", "*0", "mem[02]"};
	bool something = false;

	fprintf(f, "  - name: rule-%d\n    who: %s\n", k, who[gen(5)]);
	if (gen(3) == 0)
		fprintf(f, "    devices: [\"%s\"]\n", globs[gen(5)]);
	if (gen(4) != 0) {
		fputs("    allow: ", f);
		diff_classes(f);
		fputc('\n', f);
		something = true;
	}
	if (gen(3) == 0 || !something) {
		fputs("    allow_opcodes: ", f);
		diff_opcodes(f);
		fputc('\n', f);
	}
	if (gen(6) == 0) {
		fputs("    deny: ", f);
		diff_classes(f);
		fputc('\n', f);
	}
	if (gen(6) == 0) {
		fputs("    deny_opcodes: ", f);
		diff_opcodes(f);
		fputc('\n', f);
	}
	if (gen(3) == 0) {
		fprintf(f, "    tunnel_targets: [%u", gen(4));
		for (int t = 0; t < 4; t++)
			if (gen(3) == 0)
				fprintf(f, ", %d", t);
		if (gen(3) == 0)
			fputs(", ld-pool", f);
		fputs("]\n", f);
	}
}

/* A random policy within the language (no rates: buckets are another test's). */
static char *diff_policy(void)
{
	static const uint16_t ovr[] = {0x0502, 0x4200, 0x4202, 0x0001, 0x5300, 0xc001, 0xc002};
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	fputs("version: 1\ndefaults:\n  audit: ", f);
	diff_classes(f);
	fputs("\n  require_reason: ", f);
	diff_classes(f);
	fputc('\n', f);
	for (size_t i = 0, n = 0; i < sizeof(ovr) / sizeof(ovr[0]); i++) {
		const struct catalog_entry *e = catalog_lookup(ovr[i]);
		int lo = e ? (int)e->cls : 0;

		if (gen(2) != 0)
			continue;
		if (n++ == 0)
			fputs("opcodes:\n", f); /* an empty opcodes: is an error */
		fprintf(f, "  0x%04X: { name: op-%04x, class: %s }\n", ovr[i], ovr[i],
			mbx_class_name(lo + (int)gen((uint32_t)(MBX_CLASS_COUNT - lo))));
	}
	fputs("rules:\n", f);
	for (int k = 0, n = 1 + (int)gen(DIFF_RULES); k < n; k++)
		diff_rule(f, k);
	fclose(f);
	return text;
}

/* A payload for op: the catalog's length, sometimes one byte off; Set Feature names a UUID. */
static size_t diff_payload(uint16_t op, uint8_t *pl)
{
	const struct catalog_entry *e = catalog_lookup(op);
	size_t len = e ? e->min_in : gen(5);

	memset(pl, 0, DIFF_INNER);
	for (size_t i = 0; i < len && i < DIFF_INNER; i++)
		pl[i] = (uint8_t)gen(256);
	if (op == CXL_OP_SET_FEATURE) {
		memcpy(pl, diff_uuids[gen(4)], 16);
		memset(pl + 16, 0, 16);
		pl[22] = 1; /* Set Feature version */
		len += 1 + gen(4);
	}
	if (gen(20) == 0)
		len = len ? len - 1 : 1; /* outside the catalog's bounds, or not */
	ck_assert_uint_le(len, DIFF_INNER);
	return len;
}

/* Wraps a payload in `depth` tunnels to random targets; returns its length. */
static size_t diff_tunnel(uint8_t *out, uint16_t op, const uint8_t *pl, size_t len, int depth)
{
	uint8_t msg[DIFF_PAYLOAD], tmp[DIFF_PAYLOAD];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST,
			    .opcode = op,
			    .payload = pl,
			    .payload_len = (uint32_t)len};
	int n = cci_encode(msg, sizeof(msg), &m), tn = 0;

	for (int k = 0; k < depth && n > 0; k++) {
		struct cci_tunnel_req t = {.target = (uint8_t)gen(4),
					   .target_type = gen(5) == 0
							      ? CCI_TUNNEL_TARGET_LD_POOL
							      : CCI_TUNNEL_TARGET_PORT_OR_LD,
					   .msg = msg,
					   .msg_len = (uint16_t)n};

		if (gen(40) == 0)
			msg[gen(2) ? 2 : 0] |= 0x10; /* a reserved header bit */
		tn = cci_tunnel_req_encode(tmp, sizeof(tmp), &t);
		ck_assert_int_gt(tn, 0);
		m = (struct cci_msg){.category = CCI_CATEGORY_REQUEST,
				     .opcode = CXL_OP_TUNNEL,
				     .payload = tmp,
				     .payload_len = (uint32_t)tn};
		if (k < depth - 1)
			n = cci_encode(msg, sizeof(msg), &m);
	}
	memcpy(out, tmp, (size_t)tn);
	return (size_t)tn;
}

/* Whether a command may start a background operation (then it is asked with EXPLAIN only). */
static bool diff_background(uint16_t op)
{
	const struct catalog_entry *e = catalog_lookup(op);

	return e && e->background;
}

/* Generates one request. */
static void diff_request(struct diff_case *c)
{
	static char *const reasons[] = {NULL, "ticket 42", NULL, "change 7"};
	uint8_t inner[DIFF_INNER];
	uint16_t op = gen(3) == 0 ? CXL_OP_TUNNEL : diff_ops[gen(DIFF_N_OPS)];

	memset(c, 0, sizeof(*c));
	c->user = (int)gen(DIFF_N_USERS);
	c->dev = (int)gen(DIFF_N_DEVICES);
	c->reason = reasons[gen(4)];
	c->opcode = op;
	if (op != CXL_OP_TUNNEL) {
		c->len = diff_payload(op, c->payload);
		c->explain = diff_background(op);
		return;
	}
	do
		op = diff_ops[gen(DIFF_N_OPS)];
	while (op == CXL_OP_TUNNEL);
	c->len = diff_tunnel(c->payload, op, inner, diff_payload(op, inner), 1 + (int)gen(4));
	c->explain = diff_background(op); /* the switch's LD would run it: keep it idle */
}

/* What a client sends for one user: the cases and the file the answers go to. */
struct diff_batch {
	int user;
	int fd; /* answers, one struct mbx_result per case, at its index */
};

/* As the user: sends every case of this user on one connection and records the answers. */
static int diff_send(const char *socket, void *arg)
{
	const struct diff_batch *b = arg;
	struct mbx_client *cl;

	if (mbx_open(socket, &cl) < 0)
		return 100;
	for (size_t i = 0; i < DIFF_CASES; i++) {
		const struct diff_case *c = &cases[i];
		struct mbx_request req = {.device = diff_devices[c->dev],
					  .opcode = c->opcode,
					  .payload = c->payload,
					  .payload_len = c->len,
					  .reason = c->reason};
		struct mbx_reply rep;
		struct mbx_result r;
		int rc;

		if (c->user != b->user)
			continue;
		rc = c->explain ? mbx_explain(cl, &req, &rep) : mbx_submit(cl, &req, &rep);
		if (rc < 0)
			return 101;
		r = rep.result;
		r.payload = NULL;
		mbx_reply_free(&rep);
		if (pwrite(b->fd, &r, sizeof(r), (off_t)(i * sizeof(r))) != (ssize_t)sizeof(r))
			return 102;
	}
	mbx_close(cl);
	return 0;
}

/* Sends the corpus to the live daemon, each case as its user; fills cases[].got. */
static void diff_live(void)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/answers.bin", h.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	for (int u = 0; u < DIFF_N_USERS; u++) {
		struct diff_batch b = {.user = u, .fd = fd};

		ck_assert_int_eq(harness_as_user(diff_users[u], diff_send, h.socket, &b), 0);
	}
	for (size_t i = 0; i < DIFF_CASES; i++) {
		ck_assert_int_eq(pread(fd, &cases[i].got, sizeof(cases[i].got),
				       (off_t)(i * sizeof(cases[i].got))),
				 (ssize_t)sizeof(cases[i].got));
		cases[i].answered = true;
	}
	close(fd);
}

/* Runs argv (mbxctl) and returns its standard output, malloc'ed. */
static char *diff_run(char *const argv[])
{
	int pipefd[2], status;
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	pid_t pid;

	ck_assert(pipe(pipefd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], 1);
		execv(MBXCTL_PATH, argv);
		_exit(127);
	}
	close(pipefd[1]);
	f = open_memstream(&out, &len);
	for (char buf[4096];;) {
		ssize_t n = read(pipefd[0], buf, sizeof(buf));

		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, f);
	}
	fclose(f);
	close(pipefd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 127 && WEXITSTATUS(status) != 2,
		      "mbxctl policy explain failed to run (status %d): %s", status, out);
	return out;
}

/* Asks the offline explain about one case; returns its JSON answer. */
static json_t *diff_offline(const struct diff_case *c)
{
	char *argv[64], op[8], hex[2 * DIFF_PAYLOAD + 1], max[16], *out;
	struct diff_device *d = &devs[c->dev];
	size_t n = 0;
	json_error_t jerr;
	json_t *j;

	argv[n++] = "mbxctl";
	argv[n++] = "policy";
	argv[n++] = "explain";
	argv[n++] = "--json";
	argv[n++] = "--policy";
	argv[n++] = h.policy;
	argv[n++] = "--user";
	argv[n++] = diff_users[c->user];
	for (size_t g = 0; g < diff_n_groups[c->user]; g++) {
		argv[n++] = "--group";
		argv[n++] = diff_groups[c->user][g];
	}
	argv[n++] = "--device";
	argv[n++] = diff_devices[c->dev];
	snprintf(op, sizeof(op), "0x%04x", c->opcode);
	argv[n++] = "--opcode";
	argv[n++] = op;
	if (c->len) {
		for (size_t i = 0; i < c->len; i++)
			snprintf(hex + 2 * i, 3, "%02x", c->payload[i]);
		argv[n++] = "--payload-hex";
		argv[n++] = hex;
	}
	if (c->reason) {
		argv[n++] = "--reason";
		argv[n++] = c->reason;
	}
	argv[n++] = "--cel";
	argv[n++] = d->cel;
	if (d->have_features) {
		argv[n++] = "--features";
		argv[n++] = d->features;
	}
	snprintf(max, sizeof(max), "%u", d->payload_max);
	argv[n++] = "--payload-max";
	argv[n++] = max;
	argv[n] = NULL;
	out = diff_run(argv);
	j = json_loads(out, 0, &jerr);
	ck_assert_msg(j != NULL, "explain printed no JSON: %s", out);
	free(out);
	return j;
}

/* A JSON string member, or "". */
static const char *diff_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Compares the daemon's answer with explain's; aborts naming the case on a difference. */
static void diff_compare(const struct diff_case *c, json_t *j, const char *policy, int n)
{
	const struct mbx_result *r = &c->got;
	json_t *inner = json_object_get(j, "inner");
	char why[256] = "";

	if (strcmp(diff_str(j, "decision"), mbx_decision_name(r->decision)) != 0)
		snprintf(why, sizeof(why), "decision");
	else if (strcmp(diff_str(j, "status"), mbx_status_name(r->status)) != 0 &&
		 !(r->decision == MBX_DECISION_ALLOW && !c->explain))
		snprintf(why, sizeof(why), "status");
	else if (strcmp(diff_str(j, "class"), mbx_class_name(r->cls)) != 0)
		snprintf(why, sizeof(why), "class");
	else if (strcmp(diff_str(j, "rule"), r->rule) != 0)
		snprintf(why, sizeof(why), "rule");
	else if (json_array_size(inner) != r->n_inner)
		snprintf(why, sizeof(why), "number of tunnel levels");
	for (size_t i = 0; !why[0] && i < r->n_inner; i++) {
		json_t *lv = json_array_get(inner, i);
		char op[8];

		snprintf(op, sizeof(op), "0x%04x", r->inner[i].opcode);
		if (strcmp(diff_str(lv, "opcode"), op) != 0 ||
		    strcmp(diff_str(lv, "class"), mbx_class_name(r->inner[i].cls)) != 0 ||
		    json_integer_value(json_object_get(lv, "target")) != r->inner[i].target)
			snprintf(why, sizeof(why), "tunnel level %zu", i + 1);
	}
	if (!why[0])
		return;
	ck_abort_msg("case %d (%s as %s on %s, opcode %04x, %zu bytes, reason %s): the %s differs\n"
		     "  mbxd:    %s %s class %s rule \"%s\": %s\n"
		     "  explain: %s\npolicy:\n%s",
		     n, c->explain ? "EXPLAIN" : "SUBMIT", diff_users[c->user],
		     diff_devices[c->dev], c->opcode, c->len, c->reason ? c->reason : "none", why,
		     mbx_decision_name(r->decision), mbx_status_name(r->status),
		     mbx_class_name(r->cls), r->rule, r->message, json_dumps(j, JSON_COMPACT),
		     policy);
}

/* Runs one command as root over an open client; returns its output length or aborts. */
static size_t diff_fetch_cmd(struct mbx_client *cl, const char *dev, uint16_t op, const uint8_t *in,
			     size_t len, uint8_t *out, size_t cap)
{
	struct mbx_request req = {.device = dev, .opcode = op, .payload = in, .payload_len = len};
	struct mbx_reply rep;
	size_t n;

	ck_assert_int_eq(mbx_submit(cl, &req, &rep), 0);
	ck_assert_msg(rep.result.status == MBX_STATUS_OK && rep.result.cxl_rc == 0,
		      "%s: opcode %04x: %s", dev, op, rep.result.message);
	n = rep.result.payload_len < cap ? rep.result.payload_len : cap;
	memcpy(out, rep.result.payload, n);
	mbx_reply_free(&rep);
	return n;
}

/* Writes len bytes to path. */
static void diff_write(const char *path, const uint8_t *buf, size_t len, const char *mode)
{
	FILE *f = fopen(path, mode);

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* Fetches one device's CEL, Features and mailbox size from the daemon, as explain needs them. */
static void diff_fetch_device(struct mbx_client *cl, int k)
{
	static const uint8_t cel_uuid[16] = {0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78,
					     0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17};
	const char *dev = diff_devices[k];
	uint8_t out[4096], in[24] = {0};
	size_t n, total = 1, have = 0;
	uint32_t cel_size;

	n = diff_fetch_cmd(cl, dev, 0x0001, NULL, 0, out, sizeof(out));
	ck_assert_uint_ge(n, 17);
	devs[k].payload_max = 1u << out[16];
	n = diff_fetch_cmd(cl, dev, 0x0400, NULL, 0, out, sizeof(out));
	ck_assert_uint_ge(n, 28);
	ck_assert_int_eq(memcmp(out + 8, cel_uuid, 16), 0);
	cel_size = (uint32_t)(out[24] | out[25] << 8 | out[26] << 16 | (uint32_t)out[27] << 24);
	memcpy(in, cel_uuid, 16);
	in[20] = (uint8_t)cel_size;
	in[21] = (uint8_t)(cel_size >> 8);
	n = diff_fetch_cmd(cl, dev, 0x0401, in, 24, out, sizeof(out));
	ck_assert_uint_eq(n, cel_size);
	snprintf(devs[k].cel, sizeof(devs[k].cel), "%s/%s.cel", h.dir, dev);
	diff_write(devs[k].cel, out, n, "wb");
	snprintf(devs[k].features, sizeof(devs[k].features), "%s/%s.features", h.dir, dev);
	for (size_t i = 0; i + 4 <= cel_size; i += 4)
		devs[k].have_features |= out[i] == 0x00 && out[i + 1] == 0x05;
	diff_write(devs[k].features, out, 0, "wb");
	while (devs[k].have_features && have < total) {
		uint8_t fin[8] = {0};

		fin[0] = (uint8_t)devs[k].payload_max;
		fin[1] = (uint8_t)(devs[k].payload_max >> 8);
		fin[4] = (uint8_t)have;
		fin[5] = (uint8_t)(have >> 8);
		n = diff_fetch_cmd(cl, dev, 0x0500, fin, sizeof(fin), out, sizeof(out));
		ck_assert_uint_ge(n, 8);
		total = (size_t)(out[2] | out[3] << 8);
		if (out[0] == 0)
			break;
		have += (size_t)(out[0] | out[1] << 8);
		diff_write(devs[k].features, out, n, "ab");
	}
}

/* Reads the groups of each test user, as mbxd will see them. */
static void diff_user_groups(void)
{
	for (int u = 0; u < DIFF_N_USERS; u++) {
		struct passwd *pw = getpwnam(diff_users[u]);
		gid_t gids[DIFF_GROUPS];
		int n = DIFF_GROUPS;

		ck_assert_ptr_nonnull(pw);
		ck_assert_int_ge(getgrouplist(diff_users[u], pw->pw_gid, gids, &n), 0);
		for (int g = 0; g < n; g++) {
			struct group *gr = getgrgid(gids[g]);

			ck_assert_ptr_nonnull(gr);
			snprintf(diff_groups[u][diff_n_groups[u]++], 64, "%s", gr->gr_name);
		}
	}
}

/* How often mbxd has said it reloaded its policy. */
static int diff_reloads(void)
{
	char *log = harness_read_file(h.log);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, "policy reloaded")); p++)
		n++;
	free(log);
	return n;
}

/* Installs a policy and waits until mbxd has reloaded it. */
static void diff_install(const char *policy)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	int before = diff_reloads();

	harness_write_policy(&h, policy);
	harness_signal(&h, SIGHUP);
	for (int i = 0; i < 500 && diff_reloads() == before; i++)
		nanosleep(&pause, NULL);
	ck_assert_msg(diff_reloads() > before, "mbxd did not reload the policy:\n%s", policy);
}

/* Thousands of cases: the daemon and the offline explain agree on every one. */
START_TEST(test_daemon_and_explain_agree)
{
	struct mbx_client *cl;
	int checked = 0, tally[6] = {0}; /* per decision, then unsupported, tunnels, SUBMITs */

	harness_users();
	diff_user_groups();
	harness_init(&h, diff_devices_yaml,
		     "version: 1\nrules:\n  - name: fetch\n    who: { users: [root] }\n"
		     "    allow: [read]\n");
	harness_start(&h);
	ck_assert_int_eq(mbx_open(h.socket, &cl), 0);
	for (int k = 0; k < DIFF_N_DEVICES; k++)
		diff_fetch_device(cl, k);
	mbx_close(cl);
	for (int p = 0; p < DIFF_POLICIES; p++) {
		char *policy = diff_policy();

		diff_install(policy);
		for (int i = 0; i < DIFF_CASES; i++)
			diff_request(&cases[i]);
		diff_live();
		for (int i = 0; i < DIFF_CASES; i++) {
			json_t *j = diff_offline(&cases[i]);

			diff_compare(&cases[i], j, policy, p * DIFF_CASES + i);
			tally[cases[i].got.decision]++;
			tally[3] += cases[i].got.status == MBX_STATUS_UNSUPPORTED;
			tally[4] += cases[i].opcode == CXL_OP_TUNNEL;
			tally[5] += !cases[i].explain;
			json_decref(j);
			checked++;
		}
		free(policy);
	}
	ck_assert_int_eq(checked, DIFF_POLICIES * DIFF_CASES);
	fprintf(stderr,
		"differential: %d cases agree: %d allowed, %d denied, %d invalid; %d unsupported; "
		"%d tunnelled; %d sent with SUBMIT\n",
		checked, tally[MBX_DECISION_ALLOW], tally[MBX_DECISION_DENY],
		tally[MBX_DECISION_INVALID], tally[3], tally[4], tally[5]);
	ck_assert_int_eq(harness_stop(&h), 0);
	harness_cleanup(&h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("differential");
	TCase *tc = tcase_create("daemon-vs-explain");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 500);
	tcase_add_test(tc, test_daemon_and_explain_agree);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
