/*
 * The anchors of the audit chain (broker/audit-checkpoint.c, audit-seal.c)
 * as the verifier uses them: generated logs from the real writer, damaged
 * every way an attacker can (a cut tail, a removed head, a record edited
 * with every later hash recomputed), held to checkpoints.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit-anchor.h"
#include "audit.h"

static char dir[64];
static char path[128];

/* A fresh folder for each test. */
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-anchor-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
}

/* Removes the folder. */
static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct audit *open_ok(void)
{
	struct audit *a = NULL;
	char err[256] = "";

	ck_assert_msg(audit_open(path, &a, err, sizeof(err)) == 0, "%s", err);
	return a;
}

/* Writes n records: intents and results in turn. */
static void put_n(struct audit *a, int n)
{
	for (int i = 0; i < n; i++) {
		struct audit_record r = {.kind = i % 2 ? AUDIT_RESULT : AUDIT_INTENT,
					 .intent_seq = audit_last_seq(a),
					 .user = "alice",
					 .device = "mem0",
					 .opcode = 0x0301,
					 .cls = MBX_CLASS_CONFIG};

		ck_assert_int_eq(audit_write(a, &r, NULL), 0);
	}
}

/* A checkpoint of where a's chain stands now, as the daemon writes it. */
static struct audit_checkpoint ckpt_of(struct audit *a, const char *why)
{
	struct audit_checkpoint c = {0};

	audit_head(a, &c.seq, c.hash);
	ck_assert_int_eq(audit_file_start(a, &c.file_seq, c.file_prev), 0);
	snprintf(c.time, sizeof(c.time), "2026-12-04T19:00:00.000000Z");
	snprintf(c.why, sizeof(c.why), "%s", why);
	return c;
}

/* The file's lines; *n gets how many. Caller frees each and the array. */
static char **lines_of(const char *p, int *n)
{
	FILE *f = fopen(p, "r");
	char **v = calloc(4096, sizeof(*v)), *line = NULL;
	size_t cap = 0;
	ssize_t len;

	ck_assert_ptr_nonnull(f);
	*n = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		ck_assert_int_lt(*n, 4096);
		line[len - 1] = '\0';
		v[(*n)++] = strdup(line);
	}
	free(line);
	fclose(f);
	return v;
}

/* Writes lines[from, to) back as the file. */
static void write_lines(const char *p, char **v, int from, int to)
{
	FILE *f = fopen(p, "w");

	ck_assert_ptr_nonnull(f);
	for (int i = from; i < to; i++)
		fprintf(f, "%s\n", v[i]);
	fclose(f);
}

static void free_lines(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * What an attacker with write access does: edits the user of record e
 * (1-based) and recomputes every later prev, so the chain holds again.
 */
static void rechain_edit(const char *p, int e)
{
	char hash[AUDIT_HASH_HEX];
	int n;
	char **v = lines_of(p, &n);

	for (int i = e - 1; i < n; i++) {
		json_t *o = json_loads(v[i], 0, NULL);

		ck_assert_ptr_nonnull(o);
		if (i == e - 1)
			json_object_set_new(o, "user", json_string("mallory"));
		else
			json_object_set_new(o, "prev", json_string(hash));
		free(v[i]);
		v[i] = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		ck_assert_int_eq(audit_sha256_hex(v[i], strlen(v[i]), hash), 0);
	}
	write_lines(p, v, 0, n);
	free_lines(v, n);
}

/* Verifies paths against the checkpoints given; returns the run's result. */
static int verify_with(const char *const *paths, size_t n, const struct audit_checkpoint *ck,
		       size_t n_ck, struct audit_verify *v)
{
	memset(v, 0, sizeof(*v));
	v->ckpts = ck;
	v->n_ckpts = n_ck;
	return audit_verify_run(v, paths, n);
}

START_TEST(test_ckpt_tail_removed)
{
	/* Ten records, a checkpoint at seq 8; the file cut to _i records (0..9). */
	const char *paths[] = {path};
	struct audit_checkpoint c;
	struct audit_verify v;
	struct audit *a = open_ok();
	char **lines;
	int n, rc;

	put_n(a, 8);
	c = ckpt_of(a, "periodic");
	put_n(a, 2);
	audit_close(a);
	lines = lines_of(path, &n);
	write_lines(path, lines, 0, _i);
	free_lines(lines, n);
	rc = verify_with(paths, 1, &c, 1, &v);
	if (_i < 8) {
		ck_assert_int_eq(rc, -EBADMSG);
		ck_assert_uint_eq(v.bad_seq, (uint64_t)_i + 1);
		ck_assert_msg(strstr(v.err, "tail removed"), "%s", v.err);
		ck_assert_msg(strstr(v.err, "names seq 8"), "%s", v.err);
	} else {
		/* A cut after the last checkpoint: not detectable (docs/audit.md says so). */
		ck_assert_msg(rc == 0, "%s", v.err);
		ck_assert_uint_eq(v.ckpts_checked, 1);
	}
	audit_verify_free(&v);
	/* Without the checkpoint, no cut is seen at all. */
	ck_assert_int_eq(verify_with(paths, 1, NULL, 0, &v), 0);
	audit_verify_free(&v);
}
END_TEST

START_TEST(test_ckpt_rechained_edit)
{
	/* Record _i (1..10) edited and the chain recomputed; a checkpoint at seq 7. */
	const char *paths[] = {path};
	struct audit_checkpoint c;
	struct audit_verify v;
	struct audit *a = open_ok();
	int rc;

	put_n(a, 7);
	c = ckpt_of(a, "rotation");
	put_n(a, 3);
	audit_close(a);
	rechain_edit(path, _i);
	/* The chain alone holds: that is what the anchor is for. */
	ck_assert_int_eq(verify_with(paths, 1, NULL, 0, &v), 0);
	audit_verify_free(&v);
	rc = verify_with(paths, 1, &c, 1, &v);
	if (_i <= 7) {
		ck_assert_int_eq(rc, -EBADMSG);
		ck_assert_uint_eq(v.bad_seq, 7);
		ck_assert_int_eq(v.bad_line, 7);
		ck_assert_msg(strstr(v.err, "not the record the checkpoint of"), "%s", v.err);
	} else {
		ck_assert_msg(rc == 0, "edit after the checkpoint: %s", v.err);
	}
	audit_verify_free(&v);
}
END_TEST

START_TEST(test_ckpt_rotated_head)
{
	/* A rotated log's current file verifies alone where the checkpoint says it starts. */
	char old[160], err[256];
	const char *cur[] = {path}, *both[] = {old, path};
	struct audit_checkpoint c[2];
	struct audit_verify v;
	struct audit *a = open_ok();
	char **lines;
	int n;

	snprintf(old, sizeof(old), "%s.1", path);
	put_n(a, 5);
	ck_assert_int_eq(rename(path, old), 0);
	ck_assert_int_eq(audit_reopen(a, err, sizeof(err)), 0);
	c[0] = ckpt_of(a, "rotation");
	ck_assert_uint_eq(c[0].file_seq, 6);
	put_n(a, 4);
	c[1] = ckpt_of(a, "stop");
	ck_assert_uint_eq(c[1].file_seq, 6);
	audit_close(a);
	ck_assert_msg(verify_with(cur, 1, &c[1], 1, &v) == 0, "%s", v.err);
	audit_verify_free(&v);
	ck_assert_msg(verify_with(both, 2, c, 2, &v) == 0, "%s", v.err);
	ck_assert_uint_eq(v.ckpts_checked, 2);
	audit_verify_free(&v);
	/* Without a checkpoint the current file alone does not start a chain. */
	ck_assert_int_eq(verify_with(cur, 1, NULL, 0, &v), -EBADMSG);
	audit_verify_free(&v);
	/* Its first record removed: the checkpoint names where it started. */
	lines = lines_of(path, &n);
	write_lines(path, lines, 1, n);
	free_lines(lines, n);
	ck_assert_int_eq(verify_with(cur, 1, &c[1], 1, &v), -EBADMSG);
	ck_assert_int_eq(v.bad_line, 1);
	ck_assert_uint_eq(v.bad_seq, 7);
	ck_assert_msg(strstr(v.err, "head removed") && strstr(v.err, "(seq 6)"), "%s", v.err);
	audit_verify_free(&v);
}
END_TEST

START_TEST(test_ckpt_read_file_and_syslog)
{
	/* The daemon's file, and lines collected from syslog among others, read alike. */
	struct audit_checkpoint c = {.seq = 12, .file_seq = 3}, *v = NULL;
	char file[160], err[256], *line;
	size_t n = 0;
	FILE *f;

	memset(c.hash, 'a', 64);
	memset(c.file_prev, 'b', 64);
	snprintf(c.time, sizeof(c.time), "T");
	snprintf(c.why, sizeof(c.why), "stop");
	line = audit_checkpoint_format(&c);
	ck_assert_ptr_nonnull(line);
	snprintf(file, sizeof(file), "%s/ck", dir);
	ck_assert_int_eq(audit_file_replace(file, line, strlen(line), err, sizeof(err)), 0);
	ck_assert_int_eq(audit_checkpoint_read(file, &v, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(v[0].seq, 12);
	ck_assert_uint_eq(v[0].file_seq, 3);
	ck_assert_str_eq(v[0].hash, c.hash);
	ck_assert_str_eq(v[0].why, "stop");
	free(v);

	f = fopen(file, "w");
	fprintf(f, "Dec  4 19:00:01 host mbxd[1]: listening\n");
	fprintf(f, "Dec  4 19:00:09 host mbxd[1]: " AUDIT_CHECKPOINT_SYSLOG_ID " %s\n", line);
	c.seq = 5;
	free(line);
	line = audit_checkpoint_format(&c);
	fprintf(f, "Dec  4 19:00:02 host mbxd[1]: " AUDIT_CHECKPOINT_SYSLOG_ID " %s\n", line);
	fclose(f);
	ck_assert_int_eq(audit_checkpoint_read(file, &v, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].seq, 5); /* sorted by seq */
	ck_assert_uint_eq(v[1].seq, 12);
	free(v);

	/* A checkpoint line that is broken is an error naming the line. */
	f = fopen(file, "a");
	fprintf(f, AUDIT_CHECKPOINT_SYSLOG_ID " {\"version\":1,\"seq\":\"x\"}\n");
	fclose(f);
	ck_assert_int_eq(audit_checkpoint_read(file, &v, &n, err, sizeof(err)), -EBADMSG);
	ck_assert_msg(strstr(err, ":4: not a valid checkpoint"), "%s", err);
	free(line);
}
END_TEST

START_TEST(test_file_replace_atomic)
{
	/* The temp file is never followed: a planted symlink is replaced, not written through. */
	char file[160], tmp[170], target[160], err[256], *text;
	struct stat st;
	FILE *f;

	snprintf(file, sizeof(file), "%s/ck", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	snprintf(target, sizeof(target), "%s/target", dir);
	f = fopen(target, "w");
	fputs("untouched\n", f);
	fclose(f);
	ck_assert_int_eq(symlink(target, tmp), 0);
	ck_assert_int_eq(audit_file_replace(file, "one\n", 4, err, sizeof(err)), 0);
	ck_assert_int_eq(audit_file_replace(file, "two\n", 4, err, sizeof(err)), 0);
	ck_assert_int_eq(lstat(tmp, &st), -1); /* no temp file left behind */
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	f = fopen(target, "r");
	text = calloc(1, 64);
	ck_assert_int_gt(fread(text, 1, 63, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "untouched\n");
	f = fopen(file, "r");
	memset(text, 0, 64);
	ck_assert_int_gt(fread(text, 1, 63, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "two\n");
	free(text);
	/* A folder that does not exist: an error naming the file. */
	snprintf(file, sizeof(file), "%s/none/ck", dir);
	ck_assert_int_eq(audit_file_replace(file, "x", 1, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "none/ck"));
}
END_TEST

static Suite *anchor_suite(void)
{
	Suite *s = suite_create("audit-anchor");
	TCase *tc = tcase_create("checkpoint");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_ckpt_tail_removed, 0, 10);
	tcase_add_loop_test(tc, test_ckpt_rechained_edit, 1, 11);
	tcase_add_test(tc, test_ckpt_rotated_head);
	tcase_add_test(tc, test_ckpt_read_file_and_syslog);
	tcase_add_test(tc, test_file_replace_atomic);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(anchor_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
