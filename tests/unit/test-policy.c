/*
 * Tests of the policy library: classification (catalog bounds, overrides,
 * CEL, FM-API floor, tunnels, kernel ownership, Set Feature), the loader's
 * errors, per-user files, ownership checks, decisions, reasons, rate limits
 * and a 10,000-rule policy.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cci.h"
#include "policy-internal.h"

static char tmpdir[64];

/* Makes a fresh folder for one test's files. */
static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-policy-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	chmod(tmpdir, 0755);
}

/* Removes the test's folder. */
static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Writes name (relative to tmpdir) with text and mode; returns its path. */
static const char *put(const char *name, const char *text, mode_t mode)
{
	static char path[8][256];
	static int slot;
	char *p = path[slot++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	return p;
}

/* Loads a policy that must be valid. */
static struct policy *load_ok(const char *path)
{
	struct policy_errors errs;
	struct policy *p;
	int rc = policy_load(path, NULL, false, &p, &errs);

	policy_errors_print(stderr, &errs);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(errs.n, 0);
	return p;
}

/* Loads a policy that must fail; returns its errors as "file:line: message\n" lines. */
static char *load_errors(const char *path, bool check_owner)
{
	static char buf[8192];
	struct policy_errors errs;
	struct policy *p;
	size_t off = 0;
	char prefix[80], text[600], *hit;

	ck_assert_int_eq(policy_load(path, NULL, check_owner, &p, &errs), -EINVAL);
	ck_assert_ptr_null(p);
	buf[0] = '\0';
	for (size_t i = 0; i < errs.n; i++) {
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\n",
					policy_error_text(&errs.v[i], text, sizeof(text)));
	}
	policy_errors_free(&errs);
	/* Tests compare paths relative to tmpdir. */
	snprintf(prefix, sizeof(prefix), "%s/", tmpdir);
	while ((hit = strstr(buf, prefix)))
		memmove(hit, hit + strlen(prefix), strlen(hit + strlen(prefix)) + 1);
	return buf;
}

static const char *const no_groups[] = {NULL};

/* Decides opcode/payload for user (with groups) on a device. */
static void decide(struct policy *p, const struct policy_device *dev, const char *user,
		   const char *const *groups, size_t n_groups, uint16_t op, const uint8_t *pl,
		   size_t len, const char *reason, uint64_t now, struct policy_decision *d)
{
	struct policy_principal who = {.uid = 1000,
				       .gid = 1000,
				       .user = user,
				       .groups = groups ? groups : no_groups,
				       .n_groups = n_groups};
	struct policy_request req = {.who = &who,
				     .dev = dev,
				     .opcode = op,
				     .payload = pl,
				     .payload_len = len,
				     .reason = reason,
				     .now_ms = now};

	policy_decide(p, &req, d);
}

static const struct policy_device mem0 = {.name = "mem0"};
static const struct policy_device switch0 = {.name = "switch0"};

/* A permissive policy for classification tests: alice may do anything. */
static const char *const open_policy =
    "version: 1\n"
    "opcodes:\n"
    "  0xC001: { name: vendor-telemetry, class: read }\n"
    "rules:\n"
    "  - name: all\n"
    "    who: { users: [alice] }\n"
    "    allow: [read, log, config, data, security, fabric, vendor]\n";

/* Classifies with the permissive policy. */
static void classify(const struct policy_device *dev, uint16_t op, const uint8_t *pl, size_t len,
		     struct policy_class *pc)
{
	struct policy *p = load_ok(put("open.yaml", open_policy, 0644));

	policy_classify(p, dev, op, pl, len, pc);
	policy_free(p);
}

/* Encodes a CCI request for opcode with len payload bytes (zeros) at buf. */
static size_t cci_req(uint8_t *buf, size_t cap, uint16_t op, const uint8_t *pl, uint32_t len)
{
	struct cci_msg m = {
	    .category = CCI_CATEGORY_REQUEST, .opcode = op, .payload = pl, .payload_len = len};
	int n = cci_encode(buf, cap, &m);

	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/* Wraps an encoded message in a Tunnel Management payload to target. */
static size_t tunnel(uint8_t *buf, size_t cap, uint8_t target, const uint8_t *msg, size_t len)
{
	struct cci_tunnel_req t = {.target = target, .msg = msg, .msg_len = (uint16_t)len};
	int n = cci_tunnel_req_encode(buf, cap, &t);

	ck_assert_int_gt(n, 0);
	return (size_t)n;
}

/* Builds a tunnel payload `depth` tunnels deep around an inner opcode. */
static size_t nest(uint8_t *out, size_t cap, int depth, uint16_t op, const uint8_t *pl,
		   uint32_t len)
{
	uint8_t msg[512], tmp[512];
	size_t n = cci_req(msg, sizeof(msg), op, pl, len);

	for (int d = 0; d < depth; d++) {
		size_t t = tunnel(tmp, sizeof(tmp), (uint8_t)(d + 1), msg, n);

		if (d == depth - 1) {
			ck_assert_uint_le(t, cap);
			memcpy(out, tmp, t);
			return t;
		}
		n = cci_req(msg, sizeof(msg), CXL_OP_TUNNEL, tmp, (uint32_t)t);
	}
	return 0;
}

/* Payload length outside the catalog's bounds is invalid, inside is fine. */
START_TEST(test_classify_bounds)
{
	uint8_t buf[64] = {0};
	struct policy_class pc;

	classify(&mem0, CXL_OP_GET_LOG, buf, 5, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_str_eq(pc.message, "Get Log (0x0401) takes 24 bytes of input, not 5");
	classify(&mem0, CXL_OP_GET_LOG, buf, 24, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	classify(&mem0, CXL_OP_SANITIZE, buf, 1, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	classify(&mem0, 0x0101, buf, 5, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_str_eq(pc.message,
			 "Clear Event Records (0x0101) takes at least 6 bytes of input, not 5");
	classify(&mem0, 0x0103, buf, 6, &pc);
	ck_assert_str_eq(pc.message,
			 "Set Event Interrupt Policy (0x0103) takes 4 to 5 bytes of input, not 6");
	classify(&mem0, 0x0101, buf, 64, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	/* The device's mailbox size bounds variable-length commands. */
	{
		struct policy_device small = {.name = "mem9", .payload_max = 32};

		classify(&small, 0x0101, buf, 64, &pc);
		ck_assert_int_eq(pc.dev_status, MBX_STATUS_INVALID); /* said once allowed */
	}
}
END_TEST

/* Catalog classes, overrides, unknown opcodes. */
START_TEST(test_classify_catalog_and_overrides)
{
	struct policy_class pc;

	classify(&mem0, CXL_OP_GET_HEALTH_INFO, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_READ);
	ck_assert_str_eq(pc.level[0].name, "Get Health Info");
	classify(&mem0, CXL_OP_SANITIZE, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA);
	ck_assert(pc.background);
	classify(&mem0, 0xc001, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_READ);
	ck_assert_str_eq(pc.level[0].name, "vendor-telemetry");
	classify(&mem0, 0xc002, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_VENDOR);
	ck_assert_str_eq(pc.level[0].name, "Vendor Command C002h");
	classify(&mem0, 0x4406, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_VENDOR);
}
END_TEST

/* An override may raise a catalog class, never lower it. */
START_TEST(test_override_raise_only)
{
	struct policy_class pc;
	struct policy *p = load_ok(put(
	    "raise.yaml", "version: 1\nopcodes:\n  0x4200: { class: config }\nrules: []\n", 0644));

	policy_classify(p, &mem0, CXL_OP_GET_HEALTH_INFO, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_CONFIG);
	ck_assert_str_eq(pc.level[0].name, "Get Health Info");
	policy_free(p);
	ck_assert_str_eq(
	    load_errors(
		put("lower.yaml", "version: 1\nopcodes:\n  0x4400: { class: read }\n", 0644),
		false),
	    "lower.yaml:3: opcode 0x4400 (Sanitize) is data in the catalog; an override "
	    "may raise it, never lower it to read\n");
}
END_TEST

/* The device's CEL raises, never lowers; unknown bits make uncatalogued opcodes vendor. */
START_TEST(test_classify_cel)
{
	const struct cel_entry cel[] = {
	    {CXL_OP_GET_HEALTH_INFO, CEL_DATA_IMMEDIATE},
	    {0x4301, 0}, /* QEMU reports no effects for Inject Poison */
	    {0xc001, 0x0100},
	    {CXL_OP_IDENTIFY, 0x0100},
	    {0x4202, CEL_LOG_IMMEDIATE},
	    {CXL_OP_SANITIZE, CEL_BACKGROUND | CEL_DATA_IMMEDIATE},
	};
	struct policy_device dev = {.name = "mem0", .have_cel = true, .cel = cel, .n_cel = 6};
	struct policy_class pc;
	uint8_t pl[16] = {0};

	classify(&dev, CXL_OP_GET_HEALTH_INFO, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA);
	classify(&dev, 0x4301, pl, 8, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA);
	classify(&dev, 0xc001, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_VENDOR);
	classify(&dev, CXL_OP_IDENTIFY, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_READ); /* catalogued: unknown bits ignored */
	pl[0] = 0;
	classify(&dev, 0x4202, pl, 12, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_CONFIG); /* log effect never lowers config */
	classify(&dev, CXL_OP_GET_LOG, pl, 24, &pc);
	ck_assert_int_eq(pc.dev_status, MBX_STATUS_UNSUPPORTED);
	ck_assert_str_eq(pc.dev_message, "Get Log (0x0401) is not supported by this device (its "
					 "Command Effects Log does not list it)");
	dev.have_cel = false;
	classify(&dev, CXL_OP_GET_LOG, pl, 24, &pc);
	ck_assert_int_eq(pc.dev_status, MBX_STATUS_OK);
}
END_TEST

/* FM-API sets never fall below fabric except pure Get/Identify; CEL cannot lower them. */
START_TEST(test_classify_fm_api_floor)
{
	const struct cel_entry cel[] = {{0x5102, 0}, {0x5100, CEL_CONFIG_IMMEDIATE}, {0x5402, 0}};
	struct policy_device sw = {.name = "switch0", .have_cel = true, .cel = cel, .n_cel = 3};
	uint8_t pl[8] = {0};
	struct policy_class pc;

	classify(&sw, 0x5102, pl, 2, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_FABRIC);
	classify(&sw, 0x5100, NULL, 0, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_CONFIG);
	classify(&sw, 0x5402, pl, 4, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_FABRIC);
	classify(&switch0, 0x5401, pl, 2, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_READ);
	classify(&switch0, 0x5301, pl, 0, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	{
		uint8_t io[12] = {0};

		classify(&switch0, 0x5301, io, 12, &pc);
		ck_assert_int_eq(pc.cls, MBX_CLASS_FABRIC);
		classify(&switch0, 0x5302, io, 12, &pc);
		ck_assert_int_eq(pc.cls, MBX_CLASS_FABRIC);
	}
}
END_TEST

/* Tunnels: inner levels reported, class is the most dangerous level. */
START_TEST(test_classify_tunnel_levels)
{
	uint8_t pl[512];
	struct policy_class pc;
	size_t n;

	n = nest(pl, sizeof(pl), 1, CXL_OP_IDENTIFY, NULL, 0);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	ck_assert_int_eq(pc.cls, MBX_CLASS_READ);
	ck_assert_uint_eq(pc.n_levels, 2);
	ck_assert_uint_eq(pc.level[1].opcode, CXL_OP_IDENTIFY);
	ck_assert_uint_eq(pc.level[1].target, 1);

	n = nest(pl, sizeof(pl), 2, CXL_OP_SANITIZE, NULL, 0);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA);
	ck_assert_uint_eq(pc.n_levels, 3);
	ck_assert_uint_eq(pc.level[1].opcode, CXL_OP_TUNNEL);
	ck_assert_int_eq(pc.level[1].cls, MBX_CLASS_READ);
	ck_assert_uint_eq(pc.level[2].opcode, CXL_OP_SANITIZE);
	ck_assert_int_eq(pc.level[2].cls, MBX_CLASS_DATA);
	ck_assert(pc.background);

	n = nest(pl, sizeof(pl), POLICY_TUNNEL_DEPTH_MAX, CXL_OP_IDENTIFY, NULL, 0);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_OK);
	ck_assert_uint_eq(pc.n_levels, 1 + POLICY_TUNNEL_DEPTH_MAX);
}
END_TEST

/* Each malformed tunnel is invalid. */
START_TEST(test_classify_tunnel_errors)
{
	uint8_t pl[512], msg[64], body[8] = {0};
	struct policy_class pc;
	size_t n, m;

	/* Too deep. */
	n = nest(pl, sizeof(pl), POLICY_TUNNEL_DEPTH_MAX + 1, CXL_OP_IDENTIFY, NULL, 0);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_str_eq(pc.message, "tunnels nested deeper than 4 levels are refused");

	/* Truncated: below a tunnel header plus a CCI header. */
	n = nest(pl, sizeof(pl), 1, CXL_OP_IDENTIFY, NULL, 0);
	classify(&switch0, CXL_OP_TUNNEL, pl, 15, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);

	/* Over-long: bytes after the message its size field declares. */
	pl[n] = 0;
	classify(&switch0, CXL_OP_TUNNEL, pl, n + 1, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_ptr_nonnull(strstr(pc.message, "size field disagrees"));

	/* Inconsistent: the inner CCI length field disagrees with the tunnel's size. */
	m = cci_req(msg, sizeof(msg), CXL_OP_IDENTIFY, body, 4);
	msg[5] = 2;
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_ptr_nonnull(strstr(pc.message, "length field disagrees"));

	/* A response smuggled as a request. */
	m = cci_req(msg, sizeof(msg), CXL_OP_IDENTIFY, NULL, 0);
	msg[0] = CCI_CATEGORY_RESPONSE;
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);

	/* A return code in a request. */
	m = cci_req(msg, sizeof(msg), CXL_OP_IDENTIFY, NULL, 0);
	msg[8] = 1;
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);

	/* Reserved target type. */
	m = cci_req(msg, sizeof(msg), CXL_OP_IDENTIFY, NULL, 0);
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	pl[1] = 7;
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);

	/* Inner payload outside the inner opcode's bounds. */
	m = cci_req(msg, sizeof(msg), CXL_OP_SANITIZE, body, 3);
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
	ck_assert_str_eq(pc.message, "Sanitize (0x4400) takes 0 bytes of input, not 3");

	/* Nested tunnel whose inner tunnel is truncated. */
	m = cci_req(msg, sizeof(msg), CXL_OP_TUNNEL, body, 8);
	n = tunnel(pl, sizeof(pl), 0, msg, m);
	classify(&switch0, CXL_OP_TUNNEL, pl, n, &pc);
	ck_assert_int_eq(pc.status, MBX_STATUS_INVALID);
}
END_TEST

/* Kernel-owned opcodes are refused only on kernel-owned devices. */
START_TEST(test_classify_kernel_owned)
{
	struct policy_device kdev = {.name = "mem0", .kernel_owned = true};
	struct policy_decision d;
	struct policy *p = load_ok(put("open.yaml", open_policy, 0644));

	decide(p, &kdev, "alice", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_KERNEL_OWNED);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.message, "Sanitize (0x4400) is reserved by the kernel's CXL driver, "
				    "which owns this device");
	decide(p, &kdev, "alice", NULL, 0, CXL_OP_GET_HEALTH_INFO, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_OK);
	decide(p, &mem0, "alice", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_OK);
	policy_free(p);
}
END_TEST

/*
 * A kernel-owned opcode the transport routes (Sanitize through sysfs) is
 * decided like any other: allowed with a reason, denied to the unprivileged,
 * not refused for a CEL that lacks it; unrouted ones stay kernel-owned.
 */
START_TEST(test_classify_routed_kernel_owned)
{
	static const uint16_t routed[] = {CXL_OP_SANITIZE};
	const struct cel_entry cel[] = {{CXL_OP_GET_HEALTH_INFO, CEL_DATA_IMMEDIATE},
					{0x4401, CEL_DATA_IMMEDIATE}};
	struct policy_device kdev = {.name = "mem0",
				     .kernel_owned = true,
				     .have_cel = true,
				     .cel = cel,
				     .n_cel = 2,
				     .routed = routed,
				     .n_routed = 1};
	struct policy_device plain = kdev;
	const uint8_t log_in[24] = {0};
	struct policy_decision d;
	struct policy *p = load_ok(put("open.yaml", open_policy, 0644));

	decide(p, &kdev, "alice", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_OK);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_int_eq(d.cls, MBX_CLASS_DATA);
	ck_assert(d.background);
	decide(p, &kdev, "mallory", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_int_eq(d.status, MBX_STATUS_DENIED);
	decide(p, &kdev, "alice", NULL, 0, CXL_OP_SANITIZE, (const uint8_t *)"x", 1, "t", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_INVALID); /* the catalog's bounds still hold */
	decide(p, &kdev, "alice", NULL, 0, 0x4401, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_KERNEL_OWNED); /* listed, but not routed */
	ck_assert_str_eq(d.message, "Secure Erase (0x4401) is reserved by the kernel's CXL "
				    "driver, which owns this device");
	decide(p, &kdev, "alice", NULL, 0, CXL_OP_GET_LOG, log_in, sizeof(log_in), NULL, 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_UNSUPPORTED); /* unrouted: the CEL decides */
	plain.kernel_owned = false; /* a route means nothing on a device no kernel owns */
	decide(p, &plain, "alice", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "ticket", 0, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_UNSUPPORTED);
	policy_free(p);
}
END_TEST

/* Set Feature's Feature effects raise it, never below its catalog class; an unknown Feature is
 * vendor. */
START_TEST(test_classify_set_feature)
{
	struct policy_feature feats[] = {
	    {.uuid = {1}, .set_effects = CEL_CONFIG_COLD_RESET},
	    {.uuid = {2}, .set_effects = CEL_SECURITY},
	};
	struct policy_device dev = {
	    .name = "mem0", .have_features = true, .features = feats, .n_features = 2};
	uint8_t pl[40] = {0};
	struct policy_class pc;

	pl[0] = 1;
	classify(&dev, CXL_OP_SET_FEATURE, pl, 40, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA); /* reset-only effects do not lower data */
	pl[0] = 2;
	classify(&dev, CXL_OP_SET_FEATURE, pl, 40, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_SECURITY);
	pl[0] = 3;
	classify(&dev, CXL_OP_SET_FEATURE, pl, 40, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_VENDOR);
	classify(&mem0, CXL_OP_SET_FEATURE, pl, 40, &pc);
	ck_assert_int_eq(pc.cls, MBX_CLASS_DATA);
}
END_TEST

static const char *const demo_policy = "version: 1\n"                                        /* 1 */
				       "defaults:\n"                                         /* 2 */
				       "  audit: [config, data, security, fabric, vendor]\n" /* 3 */
				       "  require_reason: [data, security, fabric]\n"        /* 4 */
				       "rules:\n"                                            /* 5 */
				       "  - name: operators-read\n"                          /* 6 */
				       "    who: { groups: [cxl-operators] }\n"              /* 7 */
				       "    devices: [\"mem*\"]\n"                           /* 8 */
				       "    allow: [read]\n"                                 /* 9 */
				       "  - name: admin\n"                              /* 10 */
				       "    who: { users: [root, admin] }\n"            /* 11 */
				       "    devices: [\"mem*\", \"switch*\"]\n"         /* 12 */
				       "    allow: [read, log, config, data, fabric]\n" /* 13 */
				       "  - name: never-sanitize-the-switch\n"          /* 14 */
				       "    who: any\n"                                 /* 15 */
				       "    devices: [\"switch*\"]\n"                   /* 16 */
				       "    deny_opcodes: [0x4400]\n"                   /* 17 */
				       "  - name: no-fabric-for-bob\n"                  /* 18 */
				       "    who: { users: [bob] }\n"                    /* 19 */
				       "    deny: [fabric]\n"                           /* 20 */
				       "  - name: bob-reads\n"                          /* 21 */
				       "    who: { users: [bob] }\n"                    /* 22 */
				       "    allow: [read, fabric]\n"                    /* 23 */
				       "    allow_opcodes: [0xC001]\n";                 /* 24 */

/* Explicit deny beats allow, allow beats default, default is deny; rules are named. */
START_TEST(test_decide_precedence)
{
	static const char *const ops[] = {"cxl-operators"};
	struct policy *p = load_ok(put("policy.yaml", demo_policy, 0644));
	struct policy_decision d;
	char src[300];
	uint8_t pl[512];
	size_t n;

	decide(p, &mem0, "carol", ops, 1, CXL_OP_GET_HEALTH_INFO, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "operators-read");
	snprintf(src, sizeof(src), "%s/policy.yaml:6", tmpdir);
	ck_assert_str_eq(d.source, src);
	ck_assert(!d.audited);

	decide(p, &mem0, "carol", ops, 1, CXL_OP_SANITIZE, NULL, 0, "t-1", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_int_eq(d.status, MBX_STATUS_DENIED);
	ck_assert_str_eq(d.rule, "");
	ck_assert_str_eq(d.source, "");
	ck_assert_ptr_nonnull(strstr(d.message, "denied by default"));
	ck_assert(d.audited);
	ck_assert(d.reason_required);

	decide(p, &mem0, "carol", NULL, 0, CXL_OP_GET_HEALTH_INFO, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY); /* not in the group */

	decide(p, &mem0, "admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "t-2", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "admin");
	ck_assert(d.background);

	decide(p, &switch0, "admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "t-3", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "never-sanitize-the-switch");
	snprintf(src, sizeof(src), "%s/policy.yaml:14", tmpdir);
	ck_assert_str_eq(d.source, src);

	/* The same Sanitize smuggled through the switch's tunnel is still denied. */
	n = nest(pl, sizeof(pl), 1, CXL_OP_SANITIZE, NULL, 0);
	decide(p, &switch0, "admin", NULL, 0, CXL_OP_TUNNEL, pl, n, "t-4", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "never-sanitize-the-switch");
	ck_assert_uint_eq(d.n_inner, 1);
	ck_assert_uint_eq(d.inner[0].opcode, CXL_OP_SANITIZE);
	ck_assert_uint_eq(d.inner[0].cls, MBX_CLASS_DATA);

	/* A read through the tunnel is read class. */
	n = nest(pl, sizeof(pl), 1, CXL_OP_IDENTIFY, NULL, 0);
	decide(p, &switch0, "admin", NULL, 0, CXL_OP_TUNNEL, pl, n, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_int_eq(d.cls, MBX_CLASS_READ);
	ck_assert_str_eq(d.name, "Tunnel Management Command");

	/* Deny by class beats an allow of the same class in a later rule. */
	decide(p, &switch0, "bob", NULL, 0, 0x5102, pl, 2, "t-5", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "no-fabric-for-bob");
	decide(p, &switch0, "bob", NULL, 0, 0x5100, NULL, 0, NULL, 0, &d);
	ck_assert_str_eq(d.rule, "bob-reads");
	/* Vendor: only a rule that names it allows it. */
	decide(p, &switch0, "bob", NULL, 0, 0xC001, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_int_eq(d.cls, MBX_CLASS_VENDOR);
	decide(p, &switch0, "bob", NULL, 0, 0xC002, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	decide(p, &switch0, "admin", NULL, 0, 0xC001, NULL, 0, "t", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);

	/* Invalid is its own answer. */
	decide(p, &mem0, "admin", NULL, 0, CXL_OP_GET_LOG, pl, 3, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_INVALID);
	ck_assert_int_eq(d.status, MBX_STATUS_INVALID);
	policy_free(p);
}
END_TEST

/* A require_reason class without a reason is refused, naming the rule. */
START_TEST(test_decide_reason_required)
{
	struct policy *p = load_ok(put("policy.yaml", demo_policy, 0644));
	struct policy_decision d;

	decide(p, &mem0, "admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "admin");
	ck_assert(d.reason_required);
	ck_assert_ptr_nonnull(strstr(d.message, "a reason is required for data-class commands"));
	decide(p, &mem0, "admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	decide(p, &mem0, "admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "INC-42", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	decide(p, &mem0, "admin", NULL, 0, 0x0301, (const uint8_t *)"12345678", 8, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW); /* config needs no reason */
	ck_assert(!d.reason_required);
	ck_assert(d.audited);
	policy_free(p);
}
END_TEST

/* tunnel_targets restricts where an allowing rule lets tunnels go. */
START_TEST(test_decide_tunnel_targets)
{
	struct policy *p =
	    load_ok(put("targets.yaml",
			"version: 1\nrules:\n"
			"  - name: port1-only\n    who: any\n    devices: [switch0]\n"
			"    allow: [read]\n    tunnel_targets: [1]\n",
			0644));
	struct policy_decision d;
	uint8_t pl[512];
	size_t n;

	n = nest(pl, sizeof(pl), 1, CXL_OP_IDENTIFY, NULL, 0); /* to port 1 */
	decide(p, &switch0, "alice", NULL, 0, CXL_OP_TUNNEL, pl, n, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	n = nest(pl, sizeof(pl), 2, CXL_OP_IDENTIFY, NULL, 0); /* to port 2, then LD 1 */
	decide(p, &switch0, "alice", NULL, 0, CXL_OP_TUNNEL, pl, n, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "port1-only");
	ck_assert_ptr_nonnull(strstr(d.message, "only to some ports or LDs"));
	decide(p, &switch0, "alice", NULL, 0, CXL_OP_IDENTIFY_SWITCH, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW); /* not a tunnel */
	policy_free(p);
	ck_assert_str_eq(load_errors(put("badt.yaml",
					 "version: 1\nrules:\n  - name: t\n    who: any\n"
					 "    allow: [read]\n    tunnel_targets: [256]\n",
					 0644),
				     false),
			 "badt.yaml:6: bad tunnel target \"256\" (a port or LD id, 0 to 255, or "
			 "ld-pool)\n");
}
END_TEST

/* Token bucket per rule and user. */
START_TEST(test_decide_rate_limit)
{
	struct policy *p = load_ok(put("rate.yaml",
				       "version: 1\nrules:\n"
				       "  - name: limited\n    who: any\n    allow: [read]\n"
				       "    rate: 3/minute\n",
				       0644));
	struct policy_decision d;

	for (int i = 0; i < 3; i++) {
		decide(p, &mem0, "alice", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 1000, &d);
		ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	}
	decide(p, &mem0, "alice", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 1000, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_int_eq(d.status, MBX_STATUS_RATE_LIMITED);
	ck_assert_uint_eq(d.retry_after_ms, 20000);
	ck_assert_str_eq(d.rule, "limited");
	ck_assert_ptr_nonnull(strstr(d.message, "rate limited"));
	ck_assert_ptr_nonnull(strstr(d.message, "retry in 20000 ms"));
	/* Another user has a bucket of their own. */
	decide(p, &mem0, "bob", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 1000, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	/* Refilled: one token every 20 s. */
	decide(p, &mem0, "alice", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 15000, &d);
	ck_assert_int_eq(d.status, MBX_STATUS_RATE_LIMITED);
	ck_assert_uint_eq(d.retry_after_ms, 6000);
	decide(p, &mem0, "alice", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 21000, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	policy_free(p);
}
END_TEST

/* Every loader error is reported with its exact file:line, all of them in one load. */
START_TEST(test_load_errors)
{
	const char *path = put("bad.yaml",
			       "version: 1\n"                 /* 1 */
			       "colour: blue\n"               /* 2 */
			       "defaults:\n"                  /* 3 */
			       "  audit: [reed]\n"            /* 4 */
			       "opcodes:\n"                   /* 5 */
			       "  0x1FFFF: { class: read }\n" /* 6 */
			       "rules:\n"                     /* 7 */
			       "  - name: a\n"                /* 8 */
			       "    who: any\n"               /* 9 */
			       "    devices: [\"mem[0\"]\n"   /* 10 */
			       "    allow: [read]\n"          /* 11 */
			       "    rate: 10/fortnight\n"     /* 12 */
			       "  - name: a\n"                /* 13 */
			       "    who: { users: [x] }\n"    /* 14 */
			       "    deny_opcodes: [zz]\n"     /* 15 */
			       "    colour: red\n"            /* 16 */
			       "  - name: c\n"                /* 17 */
			       "    allow: [read]\n",         /* 18 */
			       0644);

	ck_assert_str_eq(load_errors(path, false),
			 "bad.yaml:2: unknown key \"colour\" (version, defaults, users_dir, "
			 "user_files_max_class, opcodes, rules)\n"
			 "bad.yaml:4: unknown class \"reed\" (read, log, config, data, security, "
			 "fabric or vendor)\n"
			 "bad.yaml:6: bad opcode \"0x1FFFF\" (expected 0x0000 to 0xFFFF)\n"
			 "bad.yaml:10: bad devices entry \"mem[0\": has an unterminated [\n"
			 "bad.yaml:12: bad rate \"10/fortnight\" (expected N/second, N/minute, "
			 "N/hour or N/day, N from 1 to 1000000)\n"
			 "bad.yaml:13: duplicate rule name \"a\" (first at bad.yaml:8)\n"
			 "bad.yaml:15: bad opcode \"zz\" (expected 0x0000 to 0xFFFF)\n"
			 "bad.yaml:16: unknown key \"colour\" in rule (name, who, devices, allow, "
			 "deny, allow_opcodes, deny_opcodes, rate, tunnel_targets)\n"
			 "bad.yaml:17: rule \"c\" has no who (any, or users/groups)\n");
}
END_TEST

/* A pattern where a user or group name goes is refused: it would match no one. */
START_TEST(test_who_names_are_not_patterns)
{
	const char *path = put("glob.yaml",
			       "version: 1\n"                                      /* 1 */
			       "rules:\n"                                          /* 2 */
			       "  - name: everyone\n"                              /* 3 */
			       "    who: { users: [\"*\"], groups: [\"ops?\"] }\n" /* 4 */
			       "    allow: [read]\n",                              /* 5 */
			       0644);

	ck_assert_str_eq(load_errors(path, false),
			 "glob.yaml:4: bad users entry \"*\": is a pattern, but user and group "
			 "names are exact (for everyone: who: any)\n"
			 "glob.yaml:4: bad groups entry \"ops?\": is a pattern, but user and group "
			 "names are exact (for everyone: who: any)\n"
			 "glob.yaml:4: who names no user and no group\n");
}
END_TEST

/* YAML syntax errors and a missing version. */
START_TEST(test_load_syntax_errors)
{
	ck_assert_str_eq(load_errors(put("syn.yaml", "version: 1\nrules: [\n", 0644), false),
			 "syn.yaml:3: YAML: did not find expected node content while parsing a "
			 "flow node\n");
	ck_assert_str_eq(load_errors(put("nov.yaml", "rules: []\n", 0644), false),
			 "nov.yaml:1: missing \"version: 1\"\n");
	ck_assert_str_eq(load_errors(put("v2.yaml", "version: 2\n", 0644), false),
			 "v2.yaml:1: unsupported version \"2\" (this mbxd reads version 1)\n");
	ck_assert_str_eq(load_errors(put("dup.yaml", "version: 1\nversion: 1\n", 0644), false),
			 "dup.yaml:2: duplicate key \"version\" in the policy\n");
}
END_TEST

/* Per-user files: only their user, never above the ceiling, never naming others. */
START_TEST(test_user_files)
{
	struct policy_decision d;
	struct policy *p;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/users.d", tmpdir);
	mkdir(dir, 0755);
	put("main.yaml", "version: 1\nusers_dir: users.d\nuser_files_max_class: log\nrules: []\n",
	    0644);
	put("users.d/alice.yaml",
	    "version: 1\nrules:\n  - name: alice-log\n    devices: [mem0]\n    allow: [read, "
	    "log]\n",
	    0644);
	put("users.d/README", "not a policy", 0644);
	p = load_ok(put("main.yaml",
			"version: 1\nusers_dir: users.d\nuser_files_max_class: log\nrules: []\n",
			0644));
	ck_assert_str_eq(policy_users_dir(p), dir);
	decide(p, &mem0, "alice", NULL, 0, 0x0101, (const uint8_t *)"123456", 6, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "alice-log");
	ck_assert_ptr_nonnull(strstr(d.source, "users.d/alice.yaml:3"));
	decide(p, &mem0, "bob", NULL, 0, 0x0101, (const uint8_t *)"123456", 6, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	policy_free(p);

	put("users.d/bob.yaml",
	    "rules:\n"
	    "  - name: bob-data\n    allow: [data]\n"                                   /* 2 */
	    "  - name: bob-for-carol\n    who: { users: [carol] }\n    allow: [read]\n" /* 4 */
	    "  - name: bob-sanitize\n    allow_opcodes: [0x4400]\n"                     /* 7 */
	    "  - name: bob-any\n    who: any\n    allow: [read]\n",                     /* 9 */
	    0644);
	ck_assert_str_eq(
	    load_errors(put("main.yaml",
			    "version: 1\nusers_dir: users.d\n"
			    "user_files_max_class: log\nrules: []\n",
			    0644),
			false),
	    "users.d/bob.yaml:2: rule \"bob-data\" allows data, above "
	    "user_files_max_class log\n"
	    "users.d/bob.yaml:5: rule \"bob-for-carol\" names user \"carol\" in bob's "
	    "file; a per-user file applies only to its user\n"
	    "users.d/bob.yaml:7: rule \"bob-sanitize\" allows opcode 0x4400 (data "
	    "class), above user_files_max_class log\n"
	    "users.d/bob.yaml:10: who: any in bob's file; its rules apply only to bob\n");
}
END_TEST

/* With check_owner, files not owned by root or writable by others are refused. */
START_TEST(test_ownership)
{
	char dir[128];
	const char *path;
	struct policy_errors errs;
	struct policy *p;

	if (geteuid() != 0)
		return; /* chown needs root; CI runs the suite as root */
	snprintf(dir, sizeof(dir), "%s/users.d", tmpdir);
	mkdir(dir, 0755);
	path = put("main.yaml", "version: 1\nusers_dir: users.d\nrules: []\n", 0664);
	ck_assert_str_eq(
	    load_errors(path, true),
	    "main.yaml: refusing main.yaml: writable by group or others (mode 0664)\n");
	ck_assert_int_eq(policy_load(path, NULL, false, &p, &errs), 0); /* lint mode */
	policy_free(p);

	chmod(path, 0644);
	ck_assert_int_eq(chown(path, 1000, 1000), 0);
	ck_assert_str_eq(load_errors(path, true),
			 "main.yaml: refusing main.yaml: owned by uid 1000, not by root\n");
	ck_assert_int_eq(chown(path, 0, 0), 0);

	put("users.d/alice.yaml", "rules: []\n", 0646);
	ck_assert_ptr_nonnull(strstr(load_errors(path, true), "users.d/alice.yaml: refusing "));
	chmod(dir, 0775);
	ck_assert_ptr_nonnull(strstr(load_errors(path, true), "users.d: refusing"));
	chmod(dir, 0755);
	chmod(put("users.d/alice.yaml", "rules: []\n", 0644), 0644);
	ck_assert_int_eq(policy_load(path, NULL, true, &p, &errs), 0);
	policy_free(p);
}
END_TEST

/* The demo policy (conf/demo) says what the demo shows. */
START_TEST(test_demo_policy)
{
	static const char *const ops[] = {"cxl-operators"};
	char path[512];
	const char *slash = strrchr(__FILE__, '/');
	struct policy *p;
	struct policy_decision d;
	uint8_t pl[512];
	size_t n;

	ck_assert_ptr_nonnull(slash);
	snprintf(path, sizeof(path), "%.*s/../../conf/demo/policy.yaml", (int)(slash - __FILE__),
		 __FILE__);
	p = load_ok(path);
	decide(p, &mem0, "mbx-operator", ops, 1, CXL_OP_GET_HEALTH_INFO, NULL, 0, NULL, 0, &d);
	ck_assert_str_eq(d.rule, "operators-read");
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	decide(p, &mem0, "mbx-operator", ops, 1, CXL_OP_SANITIZE, NULL, 0, "cleanup", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "operators-never-destroy");
	decide(p, &mem0, "mbx-operator", ops, 1, 0x0101, (const uint8_t *)"123456", 6, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "mbx-operator-logs");
	n = nest(pl, sizeof(pl), 1, CXL_OP_IDENTIFY, NULL, 0);
	decide(p, &switch0, "mbx-operator", ops, 1, CXL_OP_TUNNEL, pl, n, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	decide(p, &switch0, "mbx-admin", NULL, 0, CXL_OP_TUNNEL, pl, n, NULL, 0, &d);
	ck_assert_str_eq(d.rule, "admin-switch-read");
	decide(p, &mem0, "mbx-admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_ptr_nonnull(strstr(d.message, "a reason is required"));
	decide(p, &mem0, "mbx-admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "RITM-1042", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "admin-memdev");
	ck_assert(d.audited);
	decide(p, &switch0, "mbx-admin", NULL, 0, CXL_OP_SANITIZE, NULL, 0, "x", 0, &d);
	ck_assert_str_eq(d.rule, "never-sanitize-the-switch");
	n = nest(pl, sizeof(pl), 1, CXL_OP_SANITIZE, NULL, 0);
	decide(p, &switch0, "mbx-admin", NULL, 0, CXL_OP_TUNNEL, pl, n, "x", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "never-sanitize-the-switch");
	decide(p, &mem0, "mbx-admin", NULL, 0, 0x4501, pl, 96, "x", 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY); /* security: nobody */
	policy_free(p);
}
END_TEST

/* Builds a policy of n rules, each for its own user and device, plus a deny at the end. */
static const char *big_policy(size_t n)
{
	size_t cap = n * 160 + 1024, off = 0;
	char *buf = malloc(cap);
	const char *path;

	off += (size_t)snprintf(buf + off, cap - off, "version: 1\nrules:\n");
	for (size_t i = 0; i < n; i++)
		off +=
		    (size_t)snprintf(buf + off, cap - off,
				     "  - name: r%zu\n    who: { users: [u%zu], groups: [g%zu] }\n"
				     "    devices: [\"mem%zu\"]\n    allow: [read, log]\n"
				     "    allow_opcodes: [0x%04zx]\n",
				     i, i, i % 100, i % 50, 0x4000 + i % 256);
	off += (size_t)snprintf(buf + off, cap - off,
				"  - name: last\n    who: { users: [u9999] }\n    deny: [log]\n");
	path = put("big.yaml", buf, 0644);
	free(buf);
	return path;
}

/* 10,000 rules decide correctly, at a cost independent of the rule count. */
START_TEST(test_decide_10k_rules)
{
	struct policy *p = load_ok(big_policy(10000));
	struct policy_device m7 = {.name = "mem7"}, m49 = {.name = "mem49"};
	struct policy_decision d;
	struct timespec a, b;
	static const char *const g[] = {"g57", "g99"};
	const int iters = 200000;
	double ns;

	decide(p, &m7, "u57", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "r57");
	decide(p, &m7, "u58", NULL, 0, CXL_OP_IDENTIFY, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY); /* u58's rule is for mem8 */
	decide(p, &m7, "nobody", g, 1, CXL_OP_IDENTIFY, NULL, 0, NULL, 0, &d);
	ck_assert_str_eq(d.rule, "r57"); /* g57's first rule on mem7 is r57 */
	decide(p, &m49, "u9999", NULL, 0, 0x0101, (const uint8_t *)"123456", 6, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "last");
	decide(p, &m49, "u9999", NULL, 0, 0x4000 + 9999 % 256, NULL, 0, NULL, 0, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < iters; i++)
		decide(p, &m7, "u57", g, 2, CXL_OP_GET_HEALTH_INFO, NULL, 0, NULL, 0, &d);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / iters;
	fprintf(stderr, "10k-rule policy: %.0f ns per decision\n", ns);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_double_lt(ns, 20000.0); /* generous for sanitizer and loaded CI builds */
	policy_free(p);
}
END_TEST

/* Who sees a device: an allowed class or opcode there, not denied; nobody unresolved. */
START_TEST(test_may_see_device)
{
	static const char *const ops[] = {"ops"};
	const char *path =
	    put("see.yaml",
		"version: 1\n"
		"rules:\n"
		"  - { name: ops-read, who: { groups: [ops] }, devices: [\"mem*\"], "
		"allow: [read] }\n"
		"  - { name: carol, who: { users: [carol] }, devices: [mem0], "
		"allow_opcodes: [0x4000] }\n"
		"  - { name: dave, who: { users: [dave] }, allow: [read] }\n"
		"  - { name: dave-not-mem0, who: { users: [dave] }, devices: [mem0], "
		"deny: [read] }\n"
		"  - { name: erin, who: { users: [erin] }, allow_opcodes: [0x4400] }\n"
		"  - { name: no-sanitize, who: any, deny_opcodes: [0x4400] }\n",
		0644);
	struct policy *p = load_ok(path);
	const struct {
		const char *user;
		bool ops;
		bool mem0, mem1, switch0;
	} want[] = {
	    {"bob", true, true, true, false},      {"carol", false, true, false, false},
	    {"dave", false, false, true, true},    {"erin", false, false, false, false},
	    {"frank", false, false, false, false},
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct policy_principal who = {.user = want[i].user,
					       .groups = want[i].ops ? ops : no_groups,
					       .n_groups = want[i].ops ? 1 : 0};

		ck_assert_msg(policy_may_see_device(p, &who, "mem0") == want[i].mem0, "%s mem0",
			      want[i].user);
		ck_assert_msg(policy_may_see_device(p, &who, "mem1") == want[i].mem1, "%s mem1",
			      want[i].user);
		ck_assert_msg(policy_may_see_device(p, &who, "switch0") == want[i].switch0,
			      "%s switch0", want[i].user);
		who.unresolved = "group 1234: lookup failed";
		ck_assert(!policy_may_see_device(p, &who, "mem1"));
	}
	ck_assert(!policy_may_see_device(NULL, &(struct policy_principal){.user = "bob"}, "mem0"));
	policy_free(p);
}
END_TEST

/* Builds the suite. */
static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_classify_bounds);
	tcase_add_test(tc, test_classify_catalog_and_overrides);
	tcase_add_test(tc, test_override_raise_only);
	tcase_add_test(tc, test_classify_cel);
	tcase_add_test(tc, test_classify_fm_api_floor);
	tcase_add_test(tc, test_classify_tunnel_levels);
	tcase_add_test(tc, test_classify_tunnel_errors);
	tcase_add_test(tc, test_classify_kernel_owned);
	tcase_add_test(tc, test_classify_routed_kernel_owned);
	tcase_add_test(tc, test_classify_set_feature);
	tcase_add_test(tc, test_decide_precedence);
	tcase_add_test(tc, test_decide_reason_required);
	tcase_add_test(tc, test_decide_rate_limit);
	tcase_add_test(tc, test_decide_tunnel_targets);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_who_names_are_not_patterns);
	tcase_add_test(tc, test_load_syntax_errors);
	tcase_add_test(tc, test_user_files);
	tcase_add_test(tc, test_ownership);
	tcase_add_test(tc, test_demo_policy);
	tcase_add_test(tc, test_decide_10k_rules);
	tcase_add_test(tc, test_may_see_device);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
