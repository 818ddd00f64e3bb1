/*
 * policy/readfile.c: a regular file is read whole; a FIFO, a directory, a
 * device node, a symlink to each and a file over the limit are refused by
 * name, and nothing blocks (a FIFO with no writer would block a plain open).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "readfile.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-readfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	alarm(10); /* a blocked open fails the test instead of hanging it */
}

static void teardown(void)
{
	char cmd[96];

	alarm(0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A path in the test's folder. */
static const char *at(const char *name)
{
	static char path[4][128];
	static int slot;
	char *p = path[slot++ % 4];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

/* Expects path refused with a message naming it and saying want. */
static void expect_refused(const char *path, const char *want)
{
	char err[512], *data = (char *)"untouched";
	size_t len = 7;
	int rc = readfile_regular(path, READFILE_MAX, &data, &len, NULL, err, sizeof(err));

	ck_assert_int_lt(rc, 0);
	ck_assert_ptr_null(data);
	ck_assert_msg(strstr(err, path) && strstr(err, want), "said: %s", err);
}

START_TEST(test_regular_file_is_read_whole)
{
	char err[256], *data, big[10000];
	size_t len;
	struct stat st;
	FILE *f = fopen(at("ok.yaml"), "w");

	memset(big, 'x', sizeof(big));
	ck_assert_ptr_nonnull(f);
	fwrite(big, 1, sizeof(big), f); /* past the first buffer: the loop grows it */
	fclose(f);
	ck_assert_int_eq(
	    readfile_regular(at("ok.yaml"), READFILE_MAX, &data, &len, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, sizeof(big));
	ck_assert_uint_eq((size_t)st.st_size, sizeof(big));
	ck_assert_int_eq(memcmp(data, big, len), 0);
	ck_assert_int_eq(data[len], '\0');
	free(data);
	data = (char *)"untouched";
	ck_assert_int_eq(readfile_regular(at("ok.yaml"), 4096, &data, &len, NULL, err, sizeof(err)),
			 -EFBIG);
	ck_assert_ptr_null(data);
	ck_assert_msg(strstr(err, "larger than the 4096 bytes allowed"), "said: %s", err);
}
END_TEST

START_TEST(test_what_is_not_a_regular_file_is_refused)
{
	ck_assert_int_eq(mkfifo(at("fifo"), 0644), 0);
	ck_assert_int_eq(mkdir(at("dir"), 0755), 0);
	ck_assert_int_eq(symlink(at("fifo"), at("to-fifo")), 0);
	ck_assert_int_eq(symlink(at("dir"), at("to-dir")), 0);
	ck_assert_int_eq(symlink("/dev/null", at("to-null")), 0);
	expect_refused(at("fifo"), "it is a FIFO, not a regular file");
	expect_refused(at("dir"), "it is a directory, not a regular file");
	expect_refused("/dev/null", "it is a character device, not a regular file");
	expect_refused(at("to-fifo"), "it is a symlink to a FIFO");
	expect_refused(at("to-dir"), "it is a symlink to a directory");
	expect_refused(at("to-null"), "it is a symlink to a character device");
	expect_refused(at("missing"), "No such file or directory");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("readfile");
	TCase *tc = tcase_create("readfile");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_regular_file_is_read_whole);
	tcase_add_test(tc, test_what_is_not_a_regular_file_is_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
