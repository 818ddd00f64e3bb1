/*
 * Who a client is (broker/identity.c) when the user database misbehaves.
 * identity.c is included with its NSS calls replaced by a fake that can
 * need a large buffer, say there is no entry, or fail in each way glibc
 * reports (ERANGE for ever, EIO, ENOMEM, EAGAIN, ENOENT), for users and for
 * groups. The property: every name a rule could match is either resolved
 * or the principal is refused by policy_decide(), never matched as if the
 * name did not exist.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FAKE_FOUND = 0, FAKE_NO_ENTRY = -1 }; /* or an errno the fake returns every time */

/* What the fake database answers for one kind of lookup. */
struct fake_nss {
	int mode;
	size_t need;      /* FOUND: the buffer the entry needs; less gets ERANGE */
	const char *name; /* FOUND: the name of every id */
	size_t calls;
	size_t max_len; /* the largest buffer offered */
};

static struct fake_nss fake_pw, fake_gr;

/* Answers as the fake says; fills only the name, which is all identity.c reads. */
static int fake_answer(struct fake_nss *f, char **name, char *buf, size_t len, bool *found)
{
	f->calls++;
	if (len > f->max_len)
		f->max_len = len;
	*found = false;
	if (f->mode == FAKE_NO_ENTRY)
		return 0;
	if (f->mode != FAKE_FOUND)
		return f->mode;
	if (len < f->need || len < strlen(f->name) + 1)
		return ERANGE;
	memset(buf, 'm', len);
	strcpy(buf, f->name);
	*name = buf;
	*found = true;
	return 0;
}

static int fake_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, struct passwd **res)
{
	bool found;
	int rc = fake_answer(&fake_pw, &pw->pw_name, buf, len, &found);

	pw->pw_uid = uid;
	*res = found ? pw : NULL;
	return rc;
}

static int fake_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
			   struct passwd **res)
{
	(void)name;
	return fake_getpwuid_r(4242, pw, buf, len, res);
}

static int fake_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **res)
{
	bool found;
	int rc = fake_answer(&fake_gr, &gr->gr_name, buf, len, &found);

	gr->gr_gid = gid;
	gr->gr_mem = NULL;
	*res = found ? gr : NULL;
	return rc;
}

static int fake_getgrnam_r(const char *name, struct group *gr, char *buf, size_t len,
			   struct group **res)
{
	(void)name;
	return fake_getgrgid_r(4242, gr, buf, len, res);
}

#define getpwuid_r fake_getpwuid_r
#define getpwnam_r fake_getpwnam_r
#define getgrgid_r fake_getgrgid_r
#define getgrnam_r fake_getgrnam_r
#include "../../broker/identity.c"

#include "policy.h"

static char tmpdir[64];
static struct policy *policy;
static const struct policy_device mem0 = {.name = "mem0"};

/* A deny on a group and on a user, under an allow for everyone. */
static const char policy_yaml[] = "version: 1\n"
				  "rules:\n"
				  "  - name: no-contractors\n"
				  "    who: { groups: [contractors] }\n"
				  "    devices: [\"*\"]\n"
				  "    deny: [read]\n"
				  "  - name: no-mallory\n"
				  "    who: { users: [mallory] }\n"
				  "    devices: [\"*\"]\n"
				  "    deny: [read]\n"
				  "  - name: everyone-reads\n"
				  "    who: any\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

/* Writes text to a file of the test's folder; returns its path. */
static const char *put(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Loads a policy that must be valid. */
static struct policy *load(const char *path)
{
	struct policy_errors errs;
	struct policy *p = NULL;

	ck_assert_int_eq(policy_load(path, NULL, false, &p, &errs), 0);
	policy_errors_free(&errs);
	return p;
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-identity-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	policy = load(put("policy.yaml", policy_yaml));
	memset(&fake_pw, 0, sizeof(fake_pw));
	memset(&fake_gr, 0, sizeof(fake_gr));
	fake_pw.name = "alice";
	fake_gr.name = "staff";
}

static void teardown(void)
{
	char cmd[128];

	policy_free(policy);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The identity of this process, as a client on the far end of a socket pair. */
static void identify(struct identity *id)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(identity_from_socket(sv[0], id), 0);
	close(sv[0]);
	close(sv[1]);
}

/* Decides Identify (read) on mem0 for who. */
static void decide_read(const struct policy_principal *who, struct policy_decision *d)
{
	struct policy_request req = {.who = who, .dev = &mem0, .opcode = 0x4000};

	policy_decide(policy, &req, d);
}

/* Asserts id is refused, naming what and the error, whatever the rules say. */
static void expect_refused(struct identity *id, const char *what, const char *error)
{
	struct policy_decision d;

	ck_assert_msg(strstr(id->unresolved, what) && strstr(id->unresolved, error),
		      "unresolved: \"%s\", want %s and %s", id->unresolved, what, error);
	decide_read(&id->principal, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_int_eq(d.status, MBX_STATUS_DENIED);
	ck_assert_str_eq(d.rule, POLICY_RULE_UNRESOLVED);
	ck_assert_msg(strstr(d.message, what) && strstr(d.message, error), "told: %s", d.message);
	ck_assert_msg(strstr(d.source, what), "source: %s", d.source);
}

/* The errors a lookup can fail with, and how each is named. */
static const struct {
	int err;
	const char *named;
} failures[] = {
    {ERANGE, "larger than 16 MiB"},        {EIO, "Input/output error"},
    {ENOMEM, "Cannot allocate memory"},    {EAGAIN, "Resource temporarily unavailable"},
    {ENOENT, "No such file or directory"}, /* an unavailable source, not "no entry" */
};

START_TEST(test_large_group_entry_is_resolved)
{
	struct identity id;
	struct policy_decision d;

	/* The group: 700 members, a 9.8 KB entry, past the old 8 KiB buffer. */
	fake_gr.name = "contractors";
	fake_gr.need = 9800;
	identify(&id);
	ck_assert_str_eq(id.unresolved, "");
	ck_assert_str_eq(id.groups[0], "contractors");
	decide_read(&id.principal, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, "no-contractors");
	ck_assert_uint_ge(fake_gr.max_len, 9800);
	identity_clear(&id);
}
END_TEST

START_TEST(test_large_user_entry_is_resolved)
{
	struct identity id;
	struct policy_decision d;

	fake_pw.name = "mallory";
	fake_pw.need = 3u << 20; /* a 3 MiB gecos field, say */
	identify(&id);
	ck_assert_str_eq(id.unresolved, "");
	ck_assert_str_eq(id.user, "mallory");
	decide_read(&id.principal, &d);
	ck_assert_str_eq(d.rule, "no-mallory");
	identity_clear(&id);
}
END_TEST

START_TEST(test_user_lookup_failures_refuse)
{
	char what[32];

	snprintf(what, sizeof(what), "uid %u", (unsigned)getuid());
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		struct identity id;

		fake_pw.mode = failures[i].err;
		fake_pw.calls = fake_pw.max_len = 0;
		identify(&id);
		expect_refused(&id, what, failures[i].named);
		ck_assert_msg(strstr(id.unresolved, "getpwuid_r"), "%s", id.unresolved);
		/* Only "too small" is retried, and only up to the bound. */
		if (failures[i].err == ERANGE)
			ck_assert_uint_eq(fake_pw.max_len, IDENTITY_NSS_BUF_MAX);
		else
			ck_assert_uint_eq(fake_pw.calls, 1);
		identity_clear(&id);
	}
}
END_TEST

START_TEST(test_group_lookup_failures_refuse)
{
	char what[32];

	snprintf(what, sizeof(what), "gid %u", (unsigned)getgid());
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		struct identity id;

		fake_gr.mode = failures[i].err;
		fake_gr.max_len = 0;
		identify(&id);
		expect_refused(&id, what, failures[i].named);
		ck_assert_msg(strstr(id.unresolved, "getgrgid_r"), "%s", id.unresolved);
		if (failures[i].err == ERANGE)
			ck_assert_uint_eq(fake_gr.max_len, IDENTITY_NSS_BUF_MAX);
		identity_clear(&id);
	}
}
END_TEST

START_TEST(test_no_entry_is_a_nameless_id)
{
	struct identity id;
	struct policy_decision d;
	char want[32];

	/* NSS's "no such entry": no rule can name the id, so nothing is left out. */
	fake_pw.mode = FAKE_NO_ENTRY;
	fake_gr.mode = FAKE_NO_ENTRY;
	identify(&id);
	ck_assert_str_eq(id.unresolved, "");
	ck_assert_ptr_null(id.principal.unresolved);
	snprintf(want, sizeof(want), "#%u", (unsigned)getuid());
	ck_assert_str_eq(id.user, want);
	snprintf(want, sizeof(want), "#%u", (unsigned)getgid());
	ck_assert_str_eq(id.groups[0], want);
	decide_read(&id.principal, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_ALLOW);
	ck_assert_str_eq(d.rule, "everyone-reads");
	identity_clear(&id);
}
END_TEST

START_TEST(test_long_user_name_is_never_cut)
{
	char name[100];
	struct identity id;

	/* Cut to 63 bytes it could be another user's name. */
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	fake_pw.name = name;
	identify(&id);
	expect_refused(&id, "uid", "longer than 63 bytes");
	identity_clear(&id);
}
END_TEST

/* A policy naming groups g0..g(n-1), with a deny on the last one. */
static char *many_groups_policy(size_t n)
{
	size_t cap = n * 8 + 512, off = 0;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	off += (size_t)snprintf(s + off, cap - off,
				"version: 1\nrules:\n"
				"  - name: last-group-denied\n    who: { groups: [g%zu] }\n"
				"    devices: [\"*\"]\n    deny: [read]\n"
				"  - name: all-groups-read\n    who: { groups: [",
				n - 1);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%sg%zu", i ? ", " : "", i);
	snprintf(s + off, cap - off, "] }\n    devices: [\"*\"]\n    allow: [read]\n");
	return s;
}

START_TEST(test_every_group_is_considered)
{
	size_t n = POLICY_PRINCIPAL_GROUPS_MAX;
	char *yaml = many_groups_policy(n), (*names)[8] = calloc(n + 1, 8);
	const char **groups = calloc(n + 1, sizeof(*groups));
	struct policy_principal who = {.user = "alice", .groups = groups};
	struct policy_decision d;

	policy_free(policy);
	policy = load(put("groups.yaml", yaml));
	for (size_t i = 0; i < n + 1; i++) {
		snprintf(names[i], 8, "g%zu", i);
		groups[i] = names[i];
	}
	/* The deny on the last group counts, however many groups come before it. */
	who.n_groups = n;
	decide_read(&who, &d);
	ck_assert_str_eq(d.rule, "last-group-denied");
	/* More groups than a decision considers: refused, never decided on a part. */
	who.n_groups = n + 1;
	decide_read(&who, &d);
	ck_assert_int_eq(d.decision, MBX_DECISION_DENY);
	ck_assert_str_eq(d.rule, POLICY_RULE_UNRESOLVED);
	free(yaml);
	free(names);
	free(groups);
}
END_TEST

START_TEST(test_pseudo_rule_name_is_reserved)
{
	struct policy_errors errs;
	struct policy *p = NULL;
	const char *path = put("reserved.yaml", "version: 1\nrules:\n"
						"  - name: unresolved-identity\n    who: any\n"
						"    allow: [read]\n");

	ck_assert_int_eq(policy_load(path, NULL, false, &p, &errs), -EINVAL);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_msg(strstr(errs.v[0].message, "reserved"), "%s", errs.v[0].message);
	policy_errors_free(&errs);
}
END_TEST

START_TEST(test_run_user_and_socket_group_lookups)
{
	struct passwd pw;
	struct group gr;
	char *buf;

	/* The same three answers for the lookups by name (run user, socket group). */
	fake_pw.need = 100000;
	ck_assert_int_eq(identity_getpwnam("alice", &pw, &buf), 1);
	ck_assert_str_eq(pw.pw_name, "alice");
	free(buf);
	fake_gr.mode = FAKE_NO_ENTRY;
	ck_assert_int_eq(identity_getgrnam("staff", &gr, &buf), 0);
	ck_assert_ptr_null(buf);
	fake_gr.mode = EIO;
	ck_assert_int_eq(identity_getgrnam("staff", &gr, &buf), -EIO);
	fake_pw.mode = ERANGE;
	ck_assert_int_eq(identity_getpwnam("alice", &pw, &buf), -ERANGE);
	ck_assert_ptr_null(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("identity");
	TCase *tc = tcase_create("identity");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_large_group_entry_is_resolved);
	tcase_add_test(tc, test_large_user_entry_is_resolved);
	tcase_add_test(tc, test_user_lookup_failures_refuse);
	tcase_add_test(tc, test_group_lookup_failures_refuse);
	tcase_add_test(tc, test_no_entry_is_a_nameless_id);
	tcase_add_test(tc, test_long_user_name_is_never_cut);
	tcase_add_test(tc, test_every_group_is_considered);
	tcase_add_test(tc, test_pseudo_rule_name_is_reserved);
	tcase_add_test(tc, test_run_user_and_socket_group_lookups);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
