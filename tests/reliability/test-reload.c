/*
 * Reliability: large policies reloaded under the sandbox. mbxd starts with a
 * small policy (so nothing the C library caches on a first large load,
 * such as qsort's look at the machine's memory, is warmed before the
 * filter), then reloads, under seccomp, 1,000 users.d files (by inotify
 * and by SIGHUP), a main file of 10,000 rules, and 1,000 opcode overrides;
 * after each, real users of each kind are answered as the new policy says.
 * A SIGSYS fails the test naming the system call (harness_check_sandbox).
 * The figures go to figures/reload.txt.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "rel.h"

#define N_USER_FILES 1000
#define N_RULES      10000
#define N_OPCODES    1000

static struct harness h;
static char users_dir[340];

/* Where each test starts: anyone reads, users.d (empty) is watched. */
static const char base_policy[] = "version: 1\n"
				  "users_dir: users.d\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

static void setup(void)
{
	rel_users();
	harness_init(&h, rel_devices_yaml, base_policy);
	snprintf(users_dir, sizeof(users_dir), "%s/users.d", h.dir);
	ck_assert(mkdir(users_dir, 0755) == 0);
	rel_start(&h, NULL, NULL);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* How many times mbxd's log holds needle. */
static int log_count(const char *needle)
{
	return harness_file_count(h.log, needle);
}

/* Waits until the log says "policy reloaded" more than `before` times; fails on a failed reload. */
static double wait_reloaded(int before, double t0)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 3000; i++) {
		harness_check_sandbox(&h);
		if (log_count("policy reloaded") > before)
			return rel_now() - t0;
		if (log_count("policy reload failed")) {
			char *log = harness_read_file(h.log);

			ck_abort_msg("the reload failed: %s", log);
		}
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("no reload within 30 s");
	return 0;
}

/* Sends SIGHUP and waits for the reload; returns its seconds. */
static double reload(void)
{
	int before = log_count("policy reloaded");
	double t0 = rel_now();

	harness_signal(&h, SIGHUP);
	return wait_reloaded(before, t0);
}

/* Writes a root-owned 0644 file. */
static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert(fputs(text, f) >= 0);
	ck_assert(fclose(f) == 0);
	chmod(path, 0644);
}

/* Writes users.d/<user>.yaml with one rule. */
static void put_user_file(const char *user, const char *rule)
{
	char path[700], text[512];

	snprintf(path, sizeof(path), "%s/%s.yaml", users_dir, user);
	snprintf(text, sizeof(text),
		 "version: 1\nrules:\n  - name: %s-file\n    devices: [mem0]\n%s", user, rule);
	put(path, text);
}

/* The broker's status for opcode on mem0 as user. */
static int status_as(const char *user, uint16_t opcode)
{
	struct harness_call c = {.device = "mem0", .opcode = opcode};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

START_TEST(test_reload_1000_user_files)
{
	char name[32];
	double inotify_s, sighup_s;
	int before = log_count("policy reloaded");
	double t0 = rel_now();

	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000), 1); /* no rule yet */
	for (int i = 0; i < N_USER_FILES - 2; i++) {
		snprintf(name, sizeof(name), "user%04d", i);
		put_user_file(name, "    allow: [read]\n");
	}
	put_user_file(H_OUTSIDER, "    allow: [read]\n");
	put_user_file(H_OPERATOR, "    deny_opcodes: [0x4000]\n");
	/* inotify reloads once the folder is quiet; then SIGHUP does it again. */
	inotify_s = wait_reloaded(before, t0);
	sighup_s = reload();
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000), 0); /* its file allows */
	ck_assert_int_eq(status_as(H_OPERATOR, 0x4000), 1); /* its file denies */
	ck_assert_int_eq(status_as(H_OPERATOR, 0x4200), 0); /* the main file allows */
	ck_assert_int_eq(status_as(H_ADMIN, 0x4000), 1);    /* no file, no rule */
	rel_figure("reload.txt", "user_files",
		   "%d files: inotify reload %.2f s after the first "
		   "write, SIGHUP reload %.3f s, answers correct",
		   N_USER_FILES, inotify_s, sighup_s);
}
END_TEST

/* A main file of n rules: n - 2 for made-up users, two for real ones. */
static char *many_rules(size_t n)
{
	size_t cap = n * 128 + 1024, off = 0;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	off += (size_t)snprintf(s + off, cap - off,
				"version: 1\nrules:\n"
				"  - name: operators-no-identify\n    who: { groups: [" H_OPS_GROUP
				"] }\n    devices: [\"*\"]\n    deny_opcodes: [0x4000]\n"
				"  - name: nobody-reads\n    who: { users: [" H_OUTSIDER "] }\n"
				"    devices: [\"mem*\"]\n    allow: [read]\n");
	for (size_t i = 0; i < n - 2; i++)
		off += (size_t)snprintf(s + off, cap - off,
					"  - name: rule%05zu\n    who: { users: [user%05zu] }\n"
					"    devices: [\"mem%zu\"]\n    allow: [read, log]\n",
					i, i, i % 7);
	return s;
}

START_TEST(test_reload_10000_rules)
{
	char *yaml = many_rules(N_RULES);
	double s;

	harness_write_policy(&h, yaml);
	free(yaml);
	s = reload();
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000), 0); /* nobody-reads */
	ck_assert_int_eq(status_as(H_OPERATOR, 0x4000), 1); /* operators-no-identify */
	ck_assert_int_eq(status_as(H_OPERATOR, 0x4200), 1); /* its read rule is gone */
	ck_assert_int_eq(status_as(H_ADMIN, 0x4000), 1);
	rel_figure("reload.txt", "rules", "%d rules: SIGHUP reload %.3f s, answers correct",
		   N_RULES, s);
}
END_TEST

/* A main file with n opcode overrides (vendor opcodes named read, Get Health Info raised). */
static char *many_opcodes(size_t n)
{
	size_t cap = n * 64 + 1024, off = 0;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	off += (size_t)snprintf(s + off, cap - off,
				"version: 1\nopcodes:\n  0x4200: { class: config }\n");
	for (size_t i = 0; i < n - 1; i++)
		off += (size_t)snprintf(s + off, cap - off,
					"  0x%04zx: { name: vendor-%04zx, class: read }\n",
					0xC000 + i, 0xC000 + i);
	snprintf(s + off, cap - off,
		 "rules:\n  - name: nobody-reads\n    who: { users: [" H_OUTSIDER "] }\n"
		 "    devices: [\"*\"]\n    allow: [read]\n");
	return s;
}

START_TEST(test_reload_1000_opcode_overrides)
{
	char *yaml = many_opcodes(N_OPCODES), out[4096];
	double s;

	ck_assert_int_eq(status_as(H_OPERATOR, 0x4200), 0); /* read, before */
	harness_write_policy(&h, yaml);
	free(yaml);
	s = reload();
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000), 0);
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4200), 1); /* raised to config: denied */
	/* A vendor opcode the policy names read: explained with its name and class. */
	harness_mbxctl(&h, H_OUTSIDER, out, sizeof(out), "explain", "mem0", "0xC2A5", NULL);
	ck_assert_msg(strstr(out, "vendor-c2a5") && strstr(out, "read"), "explain: %s", out);
	ck_assert_int_eq(status_as(H_OPERATOR, 0x4000), 1); /* its rule is gone */
	rel_figure("reload.txt", "opcodes", "%d overrides: SIGHUP reload %.3f s, answers correct",
		   N_OPCODES, s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-reload");
	TCase *tc = tcase_create("reload");
	SRunner *sr;
	int failed;

	rel_figures_reset("reload.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reload_1000_user_files);
	tcase_add_test(tc, test_reload_10000_rules);
	tcase_add_test(tc, test_reload_1000_opcode_overrides);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
