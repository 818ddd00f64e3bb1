/*
 * Identity fails closed, against a real mbxd and the real user database:
 * a group whose entry is larger than any fixed buffer (700 members, over
 * 12 KB in /etc/group) still matches the deny rule that names it, and a
 * group whose lookup fails (an NSS that answers EIO, preloaded) makes its
 * members refused with the lookup named, and audited, while everyone else
 * is served.
 */
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

#define BIG_GROUP   "mbxtest-big"
#define BIG_MEMBERS 700

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev }\n";

/* A deny on each test group under an allow for everyone. */
static const char policy_yaml[] = "version: 1\n"
				  "rules:\n"
				  "  - name: no-big-group\n"
				  "    who: { groups: [" BIG_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    deny: [read]\n"
				  "  - name: no-operators\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    deny_opcodes: [0x4000]\n"
				  "  - name: everyone-reads\n"
				  "    who: any\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

static struct harness h;

/* Runs a set-up command; fails the test when it fails. */
static void run(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* Removes the big group if a run left it behind. */
static void big_group_remove(void)
{
	if (getgrnam(BIG_GROUP))
		(void)system("groupdel " BIG_GROUP);
}

/*
 * Creates BIG_GROUP with H_ADMIN and 699 made-up members: /etc/group takes
 * member names as they come, so the entry is written under the lock that
 * groupadd and usermod take (lckpwdf), then renamed into place.
 */
static void big_group_create(void)
{
	FILE *in, *out;
	char *line = NULL;
	size_t cap = 0;

	big_group_remove();
	run("groupadd " BIG_GROUP);
	ck_assert_int_eq(lckpwdf(), 0);
	in = fopen("/etc/group", "r");
	out = fopen("/etc/group.mbxtest", "w");
	ck_assert(in && out);
	while (getline(&line, &cap, in) > 0) {
		if (strncmp(line, BIG_GROUP ":", strlen(BIG_GROUP) + 1) != 0) {
			fputs(line, out);
			continue;
		}
		line[strcspn(line, "\n")] = '\0';
		fprintf(out, "%s%s", line, H_ADMIN);
		for (int i = 1; i < BIG_MEMBERS; i++)
			fprintf(out, ",mbxtest-member-%03d", i);
		fputc('\n', out);
	}
	free(line);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	run("chmod 0644 /etc/group.mbxtest");
	ck_assert_int_eq(rename("/etc/group.mbxtest", "/etc/group"), 0);
	ulckpwdf();
}

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* Group set-up runs in the parent, so the group goes even when a test fails. */
static void group_setup(void)
{
	big_group_create();
}

static void group_teardown(void)
{
	big_group_remove();
}

START_TEST(test_deny_on_a_large_group_holds)
{
	char out[4096], *audit;
	struct group *gr = getgrnam(BIG_GROUP);
	size_t entry = strlen(gr->gr_name) + 16;

	for (char **m = gr->gr_mem; *m; m++)
		entry += strlen(*m) + 1;
	ck_assert_uint_gt(entry, 12000); /* past the 8 KiB that used to be offered */
	harness_start(&h);
	/* A member of the big group: the deny that names it decides. */
	ck_assert_int_eq(harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "identify", "mem0", NULL),
			 3);
	ck_assert_msg(strstr(out, "no-big-group"), "not denied by the group's rule: %s", out);
	/* Not a member: the allow for everyone serves it. */
	ck_assert_int_eq(harness_mbxctl(&h, H_OUTSIDER, out, sizeof(out), "identify", "mem0", NULL),
			 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	audit = harness_read_file(h.audit);
	ck_assert_msg(audit && strstr(audit, "\"rule\":\"no-big-group\""), "audit: %s", audit);
	free(audit);
	printf("%s: %zu-byte entry, %d members: deny on the group held\n", BIG_GROUP, entry,
	       BIG_MEMBERS);
}
END_TEST

START_TEST(test_failed_group_lookup_refuses_its_members)
{
	struct group *ops = getgrnam(H_OPS_GROUP);
	char out[4096], gid[16], want[64], *audit;

	ck_assert_ptr_nonnull(ops);
	snprintf(gid, sizeof(gid), "%u", (unsigned)ops->gr_gid);
	/* Only mbxd gets the failing database: set for the start, unset after. */
	setenv("LD_PRELOAD", FAIL_NSS_PATH, 1);
	setenv("MBX_TEST_FAIL_GID", gid, 1);
	setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
	harness_start(&h);
	unsetenv("LD_PRELOAD");
	unsetenv("MBX_TEST_FAIL_GID");
	/* A member of the group whose lookup fails: refused, told which lookup and why. */
	ck_assert_int_eq(harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL),
			 3);
	snprintf(want, sizeof(want), "lookup of gid %s failed", gid);
	ck_assert_msg(strstr(out, want) && strstr(out, "Input/output error"), "told: %s", out);
	/* Read-only commands too, and EXPLAIN: no rule is applied to an unknown principal. */
	ck_assert_int_ne(harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "health", "mem0", NULL),
			 0);
	ck_assert_msg(strstr(out, want), "told: %s", out);
	/* Everyone else is served as before. */
	ck_assert_int_eq(harness_mbxctl(&h, H_OUTSIDER, out, sizeof(out), "identify", "mem0", NULL),
			 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	audit = harness_read_file(h.audit);
	snprintf(want, sizeof(want), "\"rule\":\"unresolved-identity\"");
	ck_assert_msg(audit && strstr(audit, want), "no refusal in the audit: %s", audit);
	ck_assert_msg(strstr(audit, "getgrgid_r: Input/output error"), "cause not audited: %s",
		      audit);
	free(audit);
	audit = harness_read_file(h.log);
	ck_assert_msg(strstr(audit, "every request of this client is refused"), "log: %s", audit);
	free(audit);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("system-identity");
	TCase *tc = tcase_create("identity");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, group_setup, group_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_deny_on_a_large_group_holds);
	tcase_add_test(tc, test_failed_group_lookup_refuses_its_members);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	big_group_remove();
	return failed ? 1 : 0;
}
