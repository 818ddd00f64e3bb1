/*
 * mbxctl policy check | explain: lint a policy, or answer "would this user be
 * allowed this opcode on this device, and why", offline, from the files alone.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "catalog.h"
#include "cmd-policy.h"
#include "policy.h"

#define POLICY_EXIT_OK      0
#define POLICY_EXIT_ERRORS  1
#define POLICY_EXIT_USAGE   2
#define POLICY_EXIT_DENIED  3
#define POLICY_EXIT_INVALID 4
#define POLICY_GROUPS_MAX   64
#define POLICY_CEL_MAX      (1u << 20)
#define POLICY_FEATURES_MAX 1024 /* as mbxd reads at most */
#define POLICY_ROUTED_MAX   16

/* Prints the usage of the policy tools. */
static void cmd_policy_usage(FILE *f)
{
	fprintf(f, "usage: mbxctl policy check FILE [--users-dir DIR] [--strict]\n"
		   "       mbxctl policy explain --policy FILE [--users-dir DIR] --user NAME\n"
		   "                 [--group NAME]... --device NAME --opcode 0xNNNN\n"
		   "                 [--payload-hex HEX] [--reason TEXT] [--cel FILE]\n"
		   "                 [--features FILE] [--payload-max N] [--kernel-owned]\n"
		   "                 [--routed 0xNNNN]... [--json]\n"
		   "\ncheck prints OK (exit 0) or every error as file:line: message (exit 1);\n"
		   "--strict also refuses files not owned by root or writable by others, as\n"
		   "mbxd does. explain exits 0 allowed, 3 denied, 4 invalid (or not supported\n"
		   "by the --cel given), 1 when the policy does not load, 2 on usage errors.\n");
}

/* mbxctl policy check FILE [--users-dir DIR] [--strict]. */
static int cmd_policy_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"users-dir", required_argument, NULL, 'u'},
	    {"strict", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *users_dir = NULL;
	struct policy_errors errs;
	struct policy *p;
	bool strict = false;
	int opt;

	optind = 0; /* GNU: fully reinitialize after main()'s own getopt */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'u') {
			users_dir = optarg;
		} else if (opt == 's') {
			strict = true;
		} else {
			cmd_policy_usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? POLICY_EXIT_OK : POLICY_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		cmd_policy_usage(stderr);
		return POLICY_EXIT_USAGE;
	}
	if (policy_load(argv[optind], users_dir, strict, &p, &errs) < 0) {
		policy_errors_print(stdout, &errs);
		if (errs.n == 0)
			printf("%s: %s\n", argv[optind], strerror(ENOMEM));
		policy_errors_free(&errs);
		return POLICY_EXIT_ERRORS;
	}
	policy_free(p);
	printf("OK\n");
	return POLICY_EXIT_OK;
}

/* What `policy explain` was asked. */
struct cmd_policy_explain {
	const char *policy;
	const char *users_dir;
	const char *user;
	const char *groups[POLICY_GROUPS_MAX];
	size_t n_groups;
	const char *device;
	const char *opcode;
	const char *payload_hex;
	const char *reason;
	const char *cel;
	const char *features;
	const char *payload_max;
	uint16_t routed[POLICY_ROUTED_MAX];
	size_t n_routed;
	bool kernel_owned;
	bool json;
};

/* Parses an opcode: 0x4400, 4400h or 4400, always hexadecimal. */
static int cmd_policy_opcode(const char *s, uint16_t *op)
{
	unsigned long v;
	char *end;

	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
		s += 2;
	if (!*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 16);
	if (*end == 'h' || *end == 'H')
		end++;
	if (*end || errno || v > 0xffff)
		return -EINVAL;
	*op = (uint16_t)v;
	return 0;
}

/* Decodes hex (spaces, colons allowed between bytes) into a malloc'ed buffer. */
static int cmd_policy_hex(const char *s, uint8_t **out, size_t *len)
{
	size_t n = 0, cap = strlen(s) / 2 + 1;
	uint8_t *v = malloc(cap);
	int hi = -1;

	if (!v)
		return -ENOMEM;
	for (; *s; s++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else if ((*s == ' ' || *s == ':') && hi < 0)
			continue;
		else
			break;
		if (hi < 0) {
			hi = d;
		} else {
			v[n++] = (uint8_t)(hi << 4 | d);
			hi = -1;
		}
	}
	if (*s || hi >= 0) {
		free(v);
		return -EINVAL;
	}
	*out = v;
	*len = n;
	return 0;
}

/* Reads a binary CEL file and parses it. */
static int cmd_policy_read_cel(const char *path, struct cel_entry **cel, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t len;
	int rc;

	if (!f)
		return -errno;
	buf = malloc(POLICY_CEL_MAX + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, POLICY_CEL_MAX + 1, f);
	rc = ferror(f) ? -EIO : len > POLICY_CEL_MAX ? -EFBIG : 0;
	fclose(f);
	if (rc == 0)
		rc = policy_cel_parse(buf, len, cel, n);
	free(buf);
	return rc;
}

/*
 * Reads a file of Get Supported Features output payloads, one after another
 * (as mbxd reads them from the device), into a malloc'ed array.
 */
static int cmd_policy_read_features(const char *path, struct policy_feature **out, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t len, off = 0;
	int rc = 0, used;

	*n = 0;
	if (!f)
		return -errno;
	buf = malloc(POLICY_CEL_MAX + 1);
	*out = calloc(POLICY_FEATURES_MAX, sizeof(**out));
	if (!buf || !*out) {
		fclose(f);
		free(buf);
		return -ENOMEM;
	}
	len = fread(buf, 1, POLICY_CEL_MAX + 1, f);
	rc = ferror(f) ? -EIO : len > POLICY_CEL_MAX ? -EFBIG : 0;
	fclose(f);
	while (rc == 0 && off < len) {
		used =
		    policy_features_parse(buf + off, len - off, *out, POLICY_FEATURES_MAX, n, NULL);
		if (used < 0)
			rc = used;
		else
			off += (size_t)used;
	}
	free(buf);
	return rc;
}

/* Parses explain's options; returns -1 on a usage error. */
static int cmd_policy_explain_args(int argc, char **argv, struct cmd_policy_explain *a)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'},
	    {"users-dir", required_argument, NULL, 'u'},
	    {"user", required_argument, NULL, 'U'},
	    {"group", required_argument, NULL, 'g'},
	    {"device", required_argument, NULL, 'd'},
	    {"opcode", required_argument, NULL, 'o'},
	    {"payload-hex", required_argument, NULL, 'x'},
	    {"reason", required_argument, NULL, 'r'},
	    {"cel", required_argument, NULL, 'c'},
	    {"features", required_argument, NULL, 'f'},
	    {"payload-max", required_argument, NULL, 'm'},
	    {"routed", required_argument, NULL, 'R'},
	    {"kernel-owned", no_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 0; /* GNU: fully reinitialize after main()'s own getopt */
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			a->policy = optarg;
			break;
		case 'u':
			a->users_dir = optarg;
			break;
		case 'U':
			a->user = optarg;
			break;
		case 'g':
			if (a->n_groups == POLICY_GROUPS_MAX)
				return -1;
			a->groups[a->n_groups++] = optarg;
			break;
		case 'd':
			a->device = optarg;
			break;
		case 'o':
			a->opcode = optarg;
			break;
		case 'x':
			a->payload_hex = optarg;
			break;
		case 'r':
			a->reason = optarg;
			break;
		case 'c':
			a->cel = optarg;
			break;
		case 'f':
			a->features = optarg;
			break;
		case 'm':
			a->payload_max = optarg;
			break;
		case 'R':
			if (a->n_routed == POLICY_ROUTED_MAX ||
			    cmd_policy_opcode(optarg, &a->routed[a->n_routed]) < 0)
				return -1;
			a->n_routed++;
			break;
		case 'k':
			a->kernel_owned = true;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			cmd_policy_usage(stdout);
			exit(POLICY_EXIT_OK);
		default:
			return -1;
		}
	}
	if (optind != argc || !a->policy || !a->user || !a->device || !a->opcode)
		return -1;
	return 0;
}

/* Builds the JSON answer. */
static json_t *cmd_policy_json(const struct policy *p, uint16_t op, const struct policy_decision *d)
{
	json_t *o = json_object(), *inner = json_array();
	char buf[8], name[64];

	snprintf(buf, sizeof(buf), "0x%04x", op);
	json_object_set_new(o, "decision", json_string(mbx_decision_name(d->decision)));
	json_object_set_new(o, "status", json_string(mbx_status_name(d->status)));
	json_object_set_new(o, "class", json_string(mbx_class_name(d->cls)));
	json_object_set_new(o, "opcode", json_string(buf));
	json_object_set_new(o, "name", json_string(d->name));
	json_object_set_new(o, "rule", json_string(d->rule));
	json_object_set_new(o, "source", d->source[0] ? json_string(d->source) : json_null());
	json_object_set_new(o, "message", json_string(d->message));
	json_object_set_new(o, "audited", json_boolean(d->audited));
	json_object_set_new(o, "reason_required", json_boolean(d->reason_required));
	json_object_set_new(o, "background", json_boolean(d->background));
	if (d->status == MBX_STATUS_RATE_LIMITED)
		json_object_set_new(o, "retry_after_ms", json_integer(d->retry_after_ms));
	for (size_t i = 0; i < d->n_inner; i++) {
		json_t *lv = json_object();

		snprintf(buf, sizeof(buf), "0x%04x", d->inner[i].opcode);
		policy_opcode_name(p, d->inner[i].opcode, name, sizeof(name));
		json_object_set_new(lv, "opcode", json_string(buf));
		json_object_set_new(lv, "name", json_string(name));
		json_object_set_new(lv, "class", json_string(mbx_class_name(d->inner[i].cls)));
		json_object_set_new(lv, "target", json_integer(d->inner[i].target));
		json_array_append_new(inner, lv);
	}
	json_object_set_new(o, "inner", inner);
	return o;
}

/* Prints the answer as sentences. */
static void cmd_policy_human(const struct policy *p, const struct policy_decision *d)
{
	char name[64];

	printf("%s: %s\n",
	       d->decision == MBX_DECISION_ALLOW  ? "allowed"
	       : d->decision == MBX_DECISION_DENY ? "denied"
						  : "invalid",
	       d->message);
	for (size_t i = 0; i < d->n_inner; i++) {
		policy_opcode_name(p, d->inner[i].opcode, name, sizeof(name));
		printf("  tunnel level %u to %u: %s (0x%04x), %s class\n", d->inner[i].depth,
		       d->inner[i].target, name, d->inner[i].opcode,
		       mbx_class_name(d->inner[i].cls));
	}
	if (d->audited)
		printf("  %s-class commands are audited before they reach the device\n",
		       mbx_class_name(d->cls));
	if (d->reason_required)
		printf("  %s-class commands need a reason (--reason)\n", mbx_class_name(d->cls));
}

/* Decides with the parsed arguments and prints the answer; returns the exit code. */
static int cmd_policy_answer(struct policy *p, const struct cmd_policy_explain *a, uint16_t op,
			     const uint8_t *pl, size_t len, const struct policy_device *dev)
{
	struct policy_principal who = {.user = a->user,
				       .groups = a->groups,
				       .n_groups = a->n_groups,
				       .uid = (uid_t)-1,
				       .gid = (gid_t)-1};
	struct policy_request req = {.who = &who,
				     .dev = dev,
				     .opcode = op,
				     .payload = pl,
				     .payload_len = len,
				     .reason = a->reason,
				     .explain = true};
	struct policy_decision d;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	req.now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	policy_decide(p, &req, &d);
	if (a->json) {
		json_t *o = cmd_policy_json(p, op, &d);

		json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
	} else {
		cmd_policy_human(p, &d);
	}
	if (d.decision == MBX_DECISION_ALLOW)
		return POLICY_EXIT_OK;
	/* As for the rest of mbxctl: an opcode the device lacks is an invalid request. */
	if (d.decision == MBX_DECISION_INVALID || d.status == MBX_STATUS_UNSUPPORTED)
		return POLICY_EXIT_INVALID;
	return POLICY_EXIT_DENIED;
}

/*
 * Describes the device as mbxd would know it: its CEL, Features, mailbox
 * size and kernel ownership from the options. Returns 0 or a usage exit code
 * after saying what is wrong.
 */
static int cmd_policy_device(const struct cmd_policy_explain *a, struct policy_device *dev,
			     struct cel_entry **cel, struct policy_feature **feats)
{
	unsigned long max = 0;
	char *end = NULL;
	int rc;

	dev->name = a->device;
	dev->kernel_owned = a->kernel_owned;
	dev->routed = a->routed;
	dev->n_routed = a->n_routed;
	if (a->payload_max) {
		errno = 0;
		max = strtoul(a->payload_max, &end, 0);
		if (errno || *end || !*a->payload_max || a->payload_max[0] == '-' ||
		    max > UINT32_MAX) {
			fprintf(stderr, "mbxctl: bad --payload-max \"%s\" (bytes)\n",
				a->payload_max);
			return POLICY_EXIT_USAGE;
		}
		dev->payload_max = (uint32_t)max;
	}
	if (a->cel && (rc = cmd_policy_read_cel(a->cel, cel, &dev->n_cel)) < 0) {
		fprintf(stderr, "mbxctl: %s: %s\n", a->cel,
			rc == -EPROTO ? "not a Command Effects Log (length not a multiple of 4)"
				      : strerror(-rc));
		return POLICY_EXIT_USAGE;
	}
	dev->have_cel = a->cel != NULL;
	dev->cel = *cel;
	if (a->features &&
	    (rc = cmd_policy_read_features(a->features, feats, &dev->n_features)) < 0) {
		fprintf(stderr, "mbxctl: %s: %s\n", a->features,
			rc == -EPROTO ? "not Get Supported Features output (a header cut short)"
				      : strerror(-rc));
		return POLICY_EXIT_USAGE;
	}
	dev->have_features = a->features != NULL;
	dev->features = *feats;
	return 0;
}

/* mbxctl policy explain ...: decides offline from the policy files. */
static int cmd_policy_explain(int argc, char **argv)
{
	struct cmd_policy_explain a = {0};
	struct policy_device dev = {0};
	struct policy_errors errs;
	struct cel_entry *cel = NULL;
	struct policy_feature *feats = NULL;
	struct policy *p = NULL;
	uint8_t *pl = NULL;
	size_t len = 0;
	uint16_t op;
	int rc;

	if (cmd_policy_explain_args(argc, argv, &a) < 0) {
		cmd_policy_usage(stderr);
		return POLICY_EXIT_USAGE;
	}
	if (cmd_policy_opcode(a.opcode, &op) < 0) {
		fprintf(stderr, "mbxctl: bad opcode \"%s\" (expected 0x0000 to 0xFFFF)\n",
			a.opcode);
		return POLICY_EXIT_USAGE;
	}
	if (a.payload_hex && cmd_policy_hex(a.payload_hex, &pl, &len) < 0) {
		fprintf(stderr, "mbxctl: bad --payload-hex: expected pairs of hex digits\n");
		return POLICY_EXIT_USAGE;
	}
	rc = cmd_policy_device(&a, &dev, &cel, &feats);
	if (rc == 0 && policy_load(a.policy, a.users_dir, false, &p, &errs) < 0) {
		policy_errors_print(stderr, &errs);
		policy_errors_free(&errs);
		rc = POLICY_EXIT_ERRORS;
	} else if (rc == 0) {
		rc = cmd_policy_answer(p, &a, op, pl, len, &dev);
		policy_free(p);
	}
	free(cel);
	free(feats);
	free(pl);
	return rc;
}

/* Dispatches `mbxctl policy SUBCOMMAND`. */
int mbxctl_policy_main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_policy_usage(stderr);
		return POLICY_EXIT_USAGE;
	}
	if (strcmp(argv[1], "check") == 0)
		return cmd_policy_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "explain") == 0)
		return cmd_policy_explain(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		cmd_policy_usage(stdout);
		return POLICY_EXIT_OK;
	}
	fprintf(stderr, "mbxctl: unknown policy command \"%s\" (check, explain)\n", argv[1]);
	return POLICY_EXIT_USAGE;
}
