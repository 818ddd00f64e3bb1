/*
 * The audit writer and verifier. The writer's .c is included so the tests
 * can swap its write/sync/truncate calls for ones that fail.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../broker/audit.c"

#define ZEROS AUDIT_ZERO_HASH

static char dir[64];
static char path[128];
static int syncs, write_calls;

/* Makes a fresh folder for each test, with the real system calls. */
static void setup(void)
{
	audit_sys_write = write;
	audit_sys_sync = fdatasync;
	audit_sys_truncate = ftruncate;
	audit_sys_fallocate = fallocate;
	syncs = write_calls = 0;
	snprintf(dir, sizeof(dir), "/tmp/test-audit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
}

/* Removes the folder and what the test left in it. */
static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A filled-in record of the given kind. */
static struct audit_record rec(enum audit_kind kind)
{
	static const uint8_t payload[] = "abc";
	struct audit_record r = {
	    .kind = kind,
	    .uid = 1001,
	    .gid = 1002,
	    .pid = 4242,
	    .user = "alice",
	    .device = "mem0",
	    .transport = "sim",
	    .opcode = 0x4400,
	    .opcode_name = "Sanitize",
	    .cls = MBX_CLASS_DATA,
	    .decision = MBX_DECISION_ALLOW,
	    .status = MBX_STATUS_OK,
	    .rule = "admins-data",
	    .source = "policy.yaml:12",
	    .reason = "decommission",
	    .payload = payload,
	    .payload_len = 3,
	};
	return r;
}

/* Writes one record and returns its seq, failing the test on error. */
static uint64_t put(struct audit *a, enum audit_kind kind)
{
	struct audit_record r = rec(kind);
	uint64_t seq = 0;

	ck_assert_int_eq(audit_write(a, &r, &seq), 0);
	return seq;
}

static struct audit *open_ok(const char *p)
{
	struct audit *a = NULL;
	char err[256] = "";

	ck_assert_msg(audit_open(p, &a, err, sizeof(err)) == 0, "%s", err);
	return a;
}

/* Reads the whole file. */
static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "r");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

/* Line n (1-based) of the file, without its newline; caller frees. */
static char *line_of(const char *p, int n)
{
	char *all = slurp(p, NULL), *s = all, *e, *out;

	for (int i = 1; i < n; i++) {
		s = strchr(s, '\n');
		ck_assert_ptr_nonnull(s);
		s++;
	}
	e = strchr(s, '\n');
	ck_assert_ptr_nonnull(e);
	out = strndup(s, (size_t)(e - s));
	free(all);
	return out;
}

static json_t *record_of(const char *p, int n)
{
	char *l = line_of(p, n);
	json_t *o = json_loads(l, 0, NULL);

	ck_assert_msg(json_is_object(o), "line %d: %s", n, l);
	free(l);
	return o;
}

static const char *str_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	return json_string_value(v);
}

static long long int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

/* The hash of line n, as the next record's prev must name it. */
static void hash_of_line(const char *p, int n, char out[AUDIT_HASH_HEX])
{
	char *l = line_of(p, n);

	ck_assert_int_eq(audit_sha256_hex(l, strlen(l), out), 0);
	free(l);
}

static off_t size_of(const char *p)
{
	struct stat st;

	ck_assert_int_eq(stat(p, &st), 0);
	return st.st_size;
}

/* Runs the verifier and returns its result. */
static int verify(const char *p, const char *expected, uint64_t *bad_seq, int *bad_line, char *last)
{
	char err[512], hash[AUDIT_HASH_HEX];

	return audit_verify_file(p, expected, last ? last : hash, bad_seq, bad_line, err,
				 sizeof(err));
}

static void assert_verifies(const char *p, const char *expected)
{
	char err[512], last[AUDIT_HASH_HEX];
	uint64_t bad_seq = 99;
	int bad_line = 99;

	ck_assert_msg(audit_verify_file(p, expected, last, &bad_seq, &bad_line, err, sizeof(err)) ==
			  0,
		      "%s", err);
	ck_assert_int_eq(bad_line, 0);
}

START_TEST(test_fields)
{
	struct mbx_inner inner[2] = {{.opcode = 0x0001, .cls = MBX_CLASS_READ, .target = 3},
				     {.opcode = 0x4400, .cls = MBX_CLASS_DATA, .target = 0}};
	struct audit_record r = rec(AUDIT_DECISION);
	char h1[AUDIT_HASH_HEX];
	struct audit *a;
	uint64_t seq = 0;
	struct stat st;
	json_t *o, *in;
	const char *t;

	umask(0);
	a = open_ok(path);
	r.opcode = 0x5300;
	r.inner = inner;
	r.n_inner = 2;
	r.decision = MBX_DECISION_DENY;
	r.status = MBX_STATUS_DENIED;
	r.reason = "say \"why\"\nand\tnot\x01 this";
	ck_assert_int_eq(audit_write(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, 1);

	r = rec(AUDIT_RESULT);
	r.intent_seq = 7;
	r.have_rc = true;
	r.cxl_rc = 0x16;
	r.vendor_status = 5;
	r.duration_us = 1234;
	r.background = "started";
	r.rule = NULL;
	r.user = "\xff\xfe"
		 "bob";
	ck_assert_int_eq(audit_write(a, &r, &seq), 0);
	ck_assert_uint_eq(seq, 2);
	ck_assert_uint_eq(audit_last_seq(a), 2);
	audit_close(a);

	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	o = record_of(path, 1);
	ck_assert_int_eq(int_of(o, "seq"), 1);
	t = str_of(o, "time");
	ck_assert_uint_eq(strlen(t), 27); /* 2024-01-02T03:04:05.123456Z */
	ck_assert(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[26] == 'Z');
	ck_assert_str_eq(str_of(o, "kind"), "decision");
	ck_assert(json_is_null(json_object_get(o, "intent_seq")));
	ck_assert_int_eq(int_of(o, "uid"), 1001);
	ck_assert_int_eq(int_of(o, "gid"), 1002);
	ck_assert_int_eq(int_of(o, "pid"), 4242);
	ck_assert_str_eq(str_of(o, "user"), "alice");
	ck_assert_str_eq(str_of(o, "device"), "mem0");
	ck_assert_str_eq(str_of(o, "transport"), "sim");
	ck_assert_str_eq(str_of(o, "opcode"), "0x5300");
	ck_assert_str_eq(str_of(o, "name"), "Sanitize");
	in = json_object_get(o, "inner");
	ck_assert_int_eq(json_array_size(in), 2);
	ck_assert_str_eq(str_of(json_array_get(in, 0), "opcode"), "0x0001");
	ck_assert_str_eq(str_of(json_array_get(in, 0), "class"), "read");
	ck_assert_int_eq(int_of(json_array_get(in, 0), "target"), 3);
	ck_assert_str_eq(str_of(json_array_get(in, 1), "class"), "data");
	ck_assert_str_eq(str_of(o, "class"), "data");
	ck_assert_str_eq(str_of(o, "decision"), "deny");
	ck_assert_str_eq(str_of(o, "status"), "denied");
	ck_assert_str_eq(str_of(o, "rule"), "admins-data");
	ck_assert_str_eq(str_of(o, "source"), "policy.yaml:12");
	ck_assert_str_eq(str_of(o, "reason"), "say \"why\"\nand\tnot\x01 this");
	ck_assert_str_eq(str_of(o, "payload_sha256"),
			 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert(json_is_null(json_object_get(o, "cxl_rc")));
	ck_assert(json_is_null(json_object_get(o, "vendor_status")));
	ck_assert(json_is_null(json_object_get(o, "background")));
	ck_assert_str_eq(str_of(o, "prev"), ZEROS);
	json_decref(o);

	o = record_of(path, 2);
	hash_of_line(path, 1, h1);
	ck_assert_int_eq(int_of(o, "seq"), 2);
	ck_assert_str_eq(str_of(o, "kind"), "result");
	ck_assert_int_eq(int_of(o, "intent_seq"), 7);
	ck_assert(json_is_null(json_object_get(o, "inner")));
	ck_assert(json_is_null(json_object_get(o, "rule")));
	ck_assert_str_eq(str_of(o, "user"), "\xef\xbf\xbd\xef\xbf\xbd"
					    "bob");
	ck_assert_int_eq(int_of(o, "cxl_rc"), 0x16);
	ck_assert_int_eq(int_of(o, "vendor_status"), 5);
	ck_assert_int_eq(int_of(o, "duration_us"), 1234);
	ck_assert_str_eq(str_of(o, "background"), "started");
	ck_assert_str_eq(str_of(o, "prev"), h1);
	json_decref(o);
	assert_verifies(path, ZEROS);
}
END_TEST

/* Counts syncs instead of doing them. */
static int count_sync(int fd)
{
	(void)fd;
	syncs++;
	return 0;
}

START_TEST(test_sync_kinds)
{
	struct audit *a = open_ok(path);

	audit_sys_sync = count_sync;
	put(a, AUDIT_DECISION);
	ck_assert_int_eq(syncs, 0);
	put(a, AUDIT_INTENT);
	ck_assert_int_eq(syncs, 1);
	put(a, AUDIT_RESULT);
	ck_assert_int_eq(syncs, 2);
	put(a, AUDIT_BACKGROUND);
	ck_assert_int_eq(syncs, 3);
	audit_close(a);
}
END_TEST

START_TEST(test_continue_after_close)
{
	char h2[AUDIT_HASH_HEX];
	struct audit *a = open_ok(path);
	json_t *o;

	put(a, AUDIT_INTENT);
	put(a, AUDIT_RESULT);
	audit_close(a);

	a = open_ok(path);
	ck_assert_uint_eq(audit_last_seq(a), 2);
	ck_assert_uint_eq(audit_torn_bytes(a), 0);
	ck_assert_uint_eq(put(a, AUDIT_DECISION), 3);
	audit_close(a);

	hash_of_line(path, 2, h2);
	o = record_of(path, 3);
	ck_assert_int_eq(int_of(o, "seq"), 3);
	ck_assert_str_eq(str_of(o, "prev"), h2);
	json_decref(o);
	assert_verifies(path, NULL);
}
END_TEST

START_TEST(test_rotation)
{
	char old[160], last[AUDIT_HASH_HEX], h2[AUDIT_HASH_HEX], err[256];
	struct audit *a = open_ok(path);
	uint64_t bad_seq;
	int bad_line;
	json_t *o;

	snprintf(old, sizeof(old), "%s.1", path);
	put(a, AUDIT_INTENT);
	put(a, AUDIT_RESULT);
	ck_assert_int_eq(rename(path, old), 0);
	/* Until the reopen, records go on into the renamed file. */
	put(a, AUDIT_DECISION);
	ck_assert_int_eq(audit_reopen(a, err, sizeof(err)), 0);
	ck_assert_uint_eq(put(a, AUDIT_INTENT), 4);
	ck_assert_uint_eq(put(a, AUDIT_RESULT), 5);
	audit_close(a);

	ck_assert_int_eq(verify(old, NULL, &bad_seq, &bad_line, last), 0);
	hash_of_line(old, 3, h2);
	ck_assert_str_eq(last, h2);
	o = record_of(path, 1);
	ck_assert_int_eq(int_of(o, "seq"), 4);
	ck_assert_str_eq(str_of(o, "prev"), h2);
	json_decref(o);
	assert_verifies(path, last);
	/* The new file does not start a chain of its own. */
	ck_assert_int_eq(verify(path, ZEROS, &bad_seq, &bad_line, NULL), -EBADMSG);
	ck_assert_int_eq(bad_line, 1);
	ck_assert_uint_eq(bad_seq, 4);

	/* A reopen without a rename continues the same file. */
	a = open_ok(path);
	ck_assert_int_eq(audit_reopen(a, err, sizeof(err)), 0);
	ck_assert_uint_eq(put(a, AUDIT_DECISION), 6);
	audit_close(a);
	assert_verifies(path, last);
}
END_TEST

START_TEST(test_reopen_failure_keeps_old)
{
	char err[256] = "";
	struct audit *a = open_ok(path);
	char moved[160];

	snprintf(moved, sizeof(moved), "%s/gone", dir);
	put(a, AUDIT_INTENT);
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0); /* the path cannot be opened as a file */
	ck_assert_int_lt(audit_reopen(a, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_uint_eq(put(a, AUDIT_RESULT), 2);
	audit_close(a);
	assert_verifies(moved, ZEROS);
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

START_TEST(test_torn_last_line)
{
	static const char torn[] = "{\"seq\":3,\"ti";
	char h2[AUDIT_HASH_HEX];
	struct audit *a = open_ok(path);
	off_t clean;
	json_t *o;
	int fd;

	put(a, AUDIT_INTENT);
	put(a, AUDIT_RESULT);
	audit_close(a);
	clean = size_of(path);
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, torn, strlen(torn)), (ssize_t)strlen(torn));
	close(fd);

	a = open_ok(path);
	ck_assert_uint_eq(audit_torn_bytes(a), strlen(torn));
	ck_assert_int_eq(size_of(path), clean);
	ck_assert_uint_eq(put(a, AUDIT_DECISION), 3);
	audit_close(a);
	hash_of_line(path, 2, h2);
	o = record_of(path, 3);
	ck_assert_str_eq(str_of(o, "prev"), h2);
	json_decref(o);
	assert_verifies(path, ZEROS);
}
END_TEST

START_TEST(test_torn_only_line)
{
	struct audit *a;
	json_t *o;
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	ck_assert_int_eq(write(fd, "{\"se", 4), 4);
	close(fd);
	a = open_ok(path);
	ck_assert_uint_eq(audit_torn_bytes(a), 4);
	ck_assert_uint_eq(audit_last_seq(a), 0);
	ck_assert_uint_eq(put(a, AUDIT_DECISION), 1);
	audit_close(a);
	o = record_of(path, 1);
	ck_assert_str_eq(str_of(o, "prev"), ZEROS);
	json_decref(o);
}
END_TEST

START_TEST(test_foreign_last_line)
{
	struct audit *a = NULL;
	char err[512] = "", want[256];
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	ck_assert_int_eq(write(fd, "hello\nworld\n", 12), 12);
	close(fd);
	ck_assert_int_eq(audit_open(path, &a, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_null(a);
	snprintf(want, sizeof(want),
		 "%s: the last line (at byte 6) is not an audit record; move the file away to "
		 "start a new chain",
		 path);
	ck_assert_str_eq(err, want);
}
END_TEST

/* Writes the first half of the record, then reports a full disk. */
static ssize_t half_then_enospc(int fd, const void *buf, size_t len)
{
	if (write_calls++ == 0)
		return write(fd, buf, len / 2);
	errno = ENOSPC;
	return -1;
}

START_TEST(test_write_failure_truncates)
{
	struct audit *a = open_ok(path);
	uint64_t seq = 0;
	struct audit_record r = rec(AUDIT_INTENT);
	off_t before;

	put(a, AUDIT_DECISION);
	before = size_of(path);
	audit_sys_write = half_then_enospc;
	ck_assert_int_eq(audit_write(a, &r, &seq), -ENOSPC);
	ck_assert_int_eq(write_calls, 2);
	ck_assert(!audit_healthy(a));
	ck_assert_int_eq(size_of(path), before); /* the half line is gone */
	ck_assert_uint_eq(audit_last_seq(a), 1);

	audit_sys_write = write;
	ck_assert_uint_eq(put(a, AUDIT_INTENT), 2);
	ck_assert(audit_healthy(a));
	audit_close(a);
	assert_verifies(path, ZEROS);
}
END_TEST

/* A disk that fails the sync. */
static int sync_eio(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

START_TEST(test_sync_failure_truncates)
{
	struct audit *a = open_ok(path);
	struct audit_record r = rec(AUDIT_INTENT);
	uint64_t seq = 0;
	off_t before;

	put(a, AUDIT_DECISION);
	before = size_of(path);
	audit_sys_sync = sync_eio;
	ck_assert_int_eq(audit_write(a, &r, &seq), -EIO);
	ck_assert(!audit_healthy(a));
	ck_assert_int_eq(size_of(path), before); /* an unsynced intent is not kept */
	/* A decision record needs no sync: it goes through and the log is healthy. */
	ck_assert_uint_eq(put(a, AUDIT_DECISION), 2);
	ck_assert(audit_healthy(a));
	audit_sys_sync = fdatasync;
	ck_assert_uint_eq(put(a, AUDIT_INTENT), 3);
	audit_close(a);
	assert_verifies(path, ZEROS);
}
END_TEST

/* A truncate that fails, as on a broken file system. */
static int truncate_fails(int fd, off_t len)
{
	(void)fd;
	(void)len;
	errno = EIO;
	return -1;
}

START_TEST(test_truncate_failure_retried)
{
	struct audit *a = open_ok(path);
	struct audit_record r = rec(AUDIT_INTENT);
	uint64_t seq = 0;
	off_t before;

	put(a, AUDIT_DECISION);
	before = size_of(path);
	audit_sys_write = half_then_enospc;
	audit_sys_truncate = truncate_fails;
	ck_assert_int_eq(audit_write(a, &r, &seq), -ENOSPC);
	ck_assert_int_gt(size_of(path), before); /* the torn half could not be cut */
	audit_sys_write = write;
	/* The next write must clean up first; while it cannot, it refuses. */
	ck_assert_int_eq(audit_write(a, &r, &seq), -EIO);
	ck_assert(!audit_healthy(a));
	audit_sys_truncate = ftruncate;
	ck_assert_uint_eq(put(a, AUDIT_INTENT), 2);
	ck_assert(audit_healthy(a));
	audit_close(a);
	assert_verifies(path, ZEROS);
}
END_TEST

START_TEST(test_readonly_fd)
{
	struct audit *a = open_ok(path);
	struct audit_record r = rec(AUDIT_INTENT);
	uint64_t seq = 0;
	int saved, ro;

	put(a, AUDIT_DECISION);
	/* Swap the log's descriptor for a read-only one: every write fails. */
	saved = dup(a->fd);
	ro = open(path, O_RDONLY);
	ck_assert_int_ge(dup2(ro, a->fd), 0);
	ck_assert_int_eq(audit_write(a, &r, &seq), -EBADF);
	ck_assert(!audit_healthy(a));
	ck_assert_int_ge(dup2(saved, a->fd), 0);
	ck_assert_uint_eq(put(a, AUDIT_INTENT), 2);
	ck_assert(audit_healthy(a));
	close(saved);
	close(ro);
	audit_close(a);
	assert_verifies(path, ZEROS);
}
END_TEST

/* Overwrites one byte of the file at offset off. */
static void poke(const char *p, off_t off, char c)
{
	int fd = open(p, O_WRONLY);

	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* The file offset of needle within line n. */
static off_t offset_in_line(const char *p, int n, const char *needle)
{
	char *all = slurp(p, NULL), *s = all, *hit;
	off_t off;

	for (int i = 1; i < n; i++)
		s = strchr(s, '\n') + 1;
	hit = strstr(s, needle);
	ck_assert_ptr_nonnull(hit);
	ck_assert(hit < strchr(s, '\n'));
	off = hit - all;
	free(all);
	return off;
}

/* Writes five records for the tamper tests. */
static void five_records(void)
{
	struct audit *a = open_ok(path);

	for (int i = 0; i < 5; i++)
		put(a, i % 2 ? AUDIT_RESULT : AUDIT_INTENT);
	audit_close(a);
}

START_TEST(test_verify_detects_edit)
{
	/* One byte of the user name in record _i (1..4) is changed. */
	uint64_t bad_seq = 0;
	int bad_line = 0;
	int n = _i;

	five_records();
	poke(path, offset_in_line(path, n, "\"alice\"") + 1, 'A');
	ck_assert_int_eq(verify(path, NULL, &bad_seq, &bad_line, NULL), -EBADMSG);
	ck_assert_int_eq(bad_line, n);
	ck_assert_uint_eq(bad_seq, (uint64_t)n);
}
END_TEST

START_TEST(test_verify_detects_prev_edit)
{
	/* One hex digit of the prev of record _i (2..4) is changed. */
	uint64_t bad_seq = 0;
	int bad_line = 0;
	int n = _i;
	off_t off;
	char *l;

	five_records();
	off = offset_in_line(path, n, "\"prev\":\"") + 8;
	l = slurp(path, NULL);
	poke(path, off, l[off] == '0' ? '1' : '0');
	free(l);
	ck_assert_int_eq(verify(path, NULL, &bad_seq, &bad_line, NULL), -EBADMSG);
	ck_assert_int_eq(bad_line, n);
	ck_assert_uint_eq(bad_seq, (uint64_t)n);
}
END_TEST

START_TEST(test_verify_last_prev_ambiguous)
{
	/* An edit of the last record's prev looks like an edit of the record before. */
	char err[512], last[AUDIT_HASH_HEX], want[512];
	uint64_t bad_seq = 0;
	int bad_line = 0;
	off_t off;
	char *l;

	five_records();
	off = offset_in_line(path, 5, "\"prev\":\"") + 8;
	l = slurp(path, NULL);
	poke(path, off, l[off] == '0' ? '1' : '0');
	free(l);
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	ck_assert_int_eq(bad_line, 4);
	snprintf(want, sizeof(want),
		 "%s:4: seq 4: record altered, or the prev of line 5: the link fails", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_verify_messages)
{
	char err[512], last[AUDIT_HASH_HEX], want[512];
	uint64_t bad_seq = 0;
	int bad_line = 0;

	five_records();
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 0);
	snprintf(want, sizeof(want), "%s: 5 records, seq 1 to 5, chain intact", path);
	ck_assert_str_eq(err, want);

	/* A seq edited from 3 to 4: caught at that record. */
	poke(path, offset_in_line(path, 3, "\"seq\":3") + 6, '4');
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	snprintf(want, sizeof(want), "%s:3: seq 4: out of sequence: follows seq 2", path);
	ck_assert_str_eq(err, want);

	/* A byte that breaks the JSON. */
	poke(path, offset_in_line(path, 3, "\"seq\":4") + 6, '3');
	poke(path, offset_in_line(path, 2, "{"), '[');
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	ck_assert_int_eq(bad_line, 2);
	ck_assert_uint_eq(bad_seq, 2);
	ck_assert_ptr_nonnull(strstr(err, ":2: seq 2: not a JSON object"));
}
END_TEST

START_TEST(test_verify_torn_and_missing)
{
	char err[512], last[AUDIT_HASH_HEX], want[512];
	uint64_t bad_seq = 0;
	int bad_line = 0;
	int fd;

	five_records();
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "{\"seq\"", 6), 6);
	close(fd);
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	snprintf(want, sizeof(want), "%s:6: seq 6: torn record: the file ends without a newline",
		 path);
	ck_assert_str_eq(err, want);

	snprintf(want, sizeof(want), "%s/none", dir);
	ck_assert_int_eq(audit_verify_file(want, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -ENOENT);
}
END_TEST

START_TEST(test_empty_file_verifies)
{
	char err[512], last[AUDIT_HASH_HEX];
	uint64_t bad_seq = 0;
	int bad_line = 0;
	struct audit *a = open_ok(path);

	audit_close(a);
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 0);
	ck_assert_str_eq(last, ZEROS);
}
END_TEST

/* Rewrites the file without its first n lines. */
static void drop_head(const char *p, int n)
{
	char *all = slurp(p, NULL), *s = all;
	FILE *f;

	for (int i = 0; i < n; i++)
		s = strchr(s, '\n') + 1;
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(s, f) >= 0, 1);
	fclose(f);
	free(all);
}

START_TEST(test_verify_head_removed)
{
	/* The first _i records (1..5) of six are gone: the chain must not start there. */
	char err[512], last[AUDIT_HASH_HEX], hk[AUDIT_HASH_HEX];
	struct audit *a = open_ok(path);
	uint64_t bad_seq = 0;
	int bad_line = 0;

	for (int i = 0; i < 6; i++)
		put(a, i % 2 ? AUDIT_RESULT : AUDIT_INTENT);
	audit_close(a);
	hash_of_line(path, _i, hk);
	drop_head(path, _i);
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	ck_assert_int_eq(bad_line, 1);
	ck_assert_uint_eq(bad_seq, (uint64_t)_i + 1);
	ck_assert_msg(strstr(err, "does not start at seq 1 with the zero hash"), "%s", err);
	/* Told where it continues from (--prev), the rest is a good chain. */
	assert_verifies(path, hk);
}
END_TEST

START_TEST(test_verify_head_prev_zeroed)
{
	/* A first record whose seq is 1 but whose prev is not zeros: the head was replaced. */
	char err[512], last[AUDIT_HASH_HEX];
	uint64_t bad_seq = 0;
	int bad_line = 0;

	five_records();
	poke(path, offset_in_line(path, 1, "\"prev\":\"") + 8, '1');
	ck_assert_int_eq(audit_verify_file(path, NULL, last, &bad_seq, &bad_line, err, sizeof(err)),
			 -EBADMSG);
	ck_assert_int_eq(bad_line, 1);
	ck_assert_msg(strstr(err, "does not start at seq 1"), "%s", err);
}
END_TEST

/* The test's own model of which intents are open. */
struct model {
	uint64_t open[512];
	char device[512][8];
	uint16_t opcode[512];
	size_t n;
};

/* Writes a record of kind k about device dev and opcode op; returns its seq. */
static uint64_t put_about(struct audit *a, enum audit_kind k, const char *dev, uint16_t op,
			  uint64_t intent_seq)
{
	struct audit_record r = rec(k);
	uint64_t seq = 0;

	r.device = dev;
	r.opcode = op;
	r.intent_seq = intent_seq;
	ck_assert_int_eq(audit_write(a, &r, &seq), 0);
	return seq;
}

/* Writes n random records: intents, results and background ends closing some, decisions. */
static void random_records(struct audit *a, struct model *m, int n, unsigned *seed)
{
	static const char *const devs[] = {"mem0", "mem1", "switch0"};

	for (int i = 0; i < n; i++) {
		int pick = rand_r(seed) % 4;

		if (pick == 0 || (pick != 3 && m->n == 0)) {
			const char *dev = devs[rand_r(seed) % 3];
			uint16_t op = (uint16_t)(0x0300 + rand_r(seed) % 0x200);

			ck_assert_uint_lt(m->n, 512);
			m->open[m->n] = put_about(a, AUDIT_INTENT, dev, op, 0);
			snprintf(m->device[m->n], sizeof(m->device[0]), "%s", dev);
			m->opcode[m->n++] = op;
		} else if (pick != 3) {
			size_t k = (size_t)rand_r(seed) % m->n;

			put_about(a, pick == 1 ? AUDIT_RESULT : AUDIT_BACKGROUND, m->device[k],
				  m->opcode[k], m->open[k]);
			memmove(&m->open[k], &m->open[k + 1], (m->n - k - 1) * sizeof(m->open[0]));
			memmove(&m->device[k], &m->device[k + 1],
				(m->n - k - 1) * sizeof(m->device[0]));
			memmove(&m->opcode[k], &m->opcode[k + 1],
				(m->n - k - 1) * sizeof(m->opcode[0]));
			m->n--;
		} else {
			put_about(a, AUDIT_DECISION, "mem0", 0x4000, 0);
		}
	}
}

/* Checks that a run lists exactly the model's open intents, with seq, device and opcode. */
static void assert_open_intents(const struct audit_verify *v, const struct model *m)
{
	char op[8];

	ck_assert_uint_eq(v->n_open, m->n);
	for (size_t i = 0; i < m->n; i++) {
		snprintf(op, sizeof(op), "0x%04x", m->opcode[i]);
		ck_assert_uint_eq(v->open[i].seq, m->open[i]);
		ck_assert_str_eq(v->open[i].device, m->device[i]);
		ck_assert_str_eq(v->open[i].opcode, op);
		ck_assert_str_eq(v->open[i].name, "Sanitize");
		ck_assert_str_eq(v->open[i].user, "alice");
		ck_assert_uint_eq(strlen(v->open[i].time), 27);
	}
}

START_TEST(test_verify_open_intents)
{
	/* Generated logs: every intent without a result is listed, in order. */
	unsigned seed = (unsigned)_i * 7919u + 1;
	struct model m = {.n = 0};
	struct audit_verify v = {0};
	const char *paths[] = {path};
	struct audit *a = open_ok(path);

	random_records(a, &m, 40 + _i * 10, &seed);
	audit_close(a);
	ck_assert_msg(audit_verify_run(&v, paths, 1) == 0, "%s", v.err);
	assert_open_intents(&v, &m);
	audit_verify_free(&v);
}
END_TEST

START_TEST(test_verify_rotated_set)
{
	/* Three rotated files verify as one chain; intents close across files. */
	char files[3][160], err[256], hk[AUDIT_HASH_HEX];
	const char *paths[3] = {files[0], files[1], files[2]}, *swapped[2];
	struct audit_verify v = {0};
	struct model m = {.n = 0};
	unsigned seed = 99;
	struct audit *a = open_ok(path);

	for (int i = 0; i < 3; i++) {
		random_records(a, &m, 30, &seed);
		snprintf(files[i], sizeof(files[i]), "%s.%d", path, 3 - i);
		if (i == 2) {
			snprintf(files[i], sizeof(files[i]), "%s", path);
			break;
		}
		ck_assert_int_eq(rename(path, files[i]), 0);
		ck_assert_int_eq(audit_reopen(a, err, sizeof(err)), 0);
	}
	audit_close(a);
	ck_assert_msg(audit_verify_run(&v, paths, 3) == 0, "%s", v.err);
	assert_open_intents(&v, &m);
	ck_assert_uint_eq(v.parts[2].last_seq, 90);
	ck_assert_uint_eq(v.parts[1].first_seq, v.parts[0].last_seq + 1);
	audit_verify_free(&v);

	/* Alone, a later file does not start the chain; with --prev it does. */
	ck_assert_int_eq(audit_verify_run(&v, paths + 1, 2), -EBADMSG);
	ck_assert_uint_eq(v.bad_part, 0);
	ck_assert_int_eq(v.bad_line, 1);
	audit_verify_free(&v);
	hash_of_line(files[0], 30, hk);
	v.prev = hk;
	ck_assert_msg(audit_verify_run(&v, paths + 1, 2) == 0, "%s", v.err);
	audit_verify_free(&v);
	v.prev = NULL;
	/* A file left out, or the order swapped: the link between files fails. */
	swapped[0] = files[0];
	swapped[1] = files[2];
	ck_assert_int_eq(audit_verify_run(&v, swapped, 2), -EBADMSG);
	ck_assert_uint_eq(v.bad_part, 1);
	ck_assert_ptr_nonnull(strstr(v.err, "out of sequence"));
	audit_verify_free(&v);
	swapped[0] = files[1];
	swapped[1] = files[0];
	ck_assert_int_eq(audit_verify_run(&v, swapped, 2), -EBADMSG);
	ck_assert_uint_eq(v.bad_part, 0);
	audit_verify_free(&v);
}
END_TEST

/* A disk of disk_cap bytes, as fallocate sees it. */
static off_t disk_cap;

static int capped_fallocate(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)mode;
	if (off + len > disk_cap) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

START_TEST(test_intent_holds_room_for_its_result)
{
	struct audit_record intent = rec(AUDIT_INTENT), deny = rec(AUDIT_DECISION);
	struct audit_record result = rec(AUDIT_RESULT);
	struct audit *a = open_ok(path);
	uint64_t seq;
	int denials = 0;

	audit_sys_fallocate = capped_fallocate;
	disk_cap = 3 * AUDIT_CLOSE_MAX;
	intent.reserve = 2;
	ck_assert_int_eq(audit_write(a, &intent, &seq), 0);
	ck_assert_uint_eq(audit_reserved(a), 2);
	/* A third closing record's room is not there: the next intent is refused. */
	ck_assert_int_eq(audit_write(a, &intent, &seq), -ENOSPC);
	/* Refusals fill what is left, never the room held. */
	deny.decision = MBX_DECISION_DENY;
	while (denials < 100 && audit_write(a, &deny, &seq) == 0)
		denials++;
	ck_assert_int_lt(denials, 100);
	ck_assert(!audit_healthy(a));
	/* The result and the background record still have their room. */
	result.release = 1;
	ck_assert_int_eq(audit_write(a, &result, &seq), 0);
	result.kind = AUDIT_BACKGROUND;
	ck_assert_int_eq(audit_write(a, &result, &seq), 0);
	ck_assert_uint_eq(audit_reserved(a), 0);
	audit_close(a);
	audit_sys_fallocate = fallocate;
}
END_TEST

START_TEST(test_close_max_bounds_the_longest_result)
{
	struct mbx_inner inner[MBX_INNER_MAX];
	char user[64], name[64], rule[MBX_RULE_MAX], source[MBX_SOURCE_MAX], reason[MBX_REASON_MAX],
	    dev[MBX_NAME_MAX];
	struct audit_record r = rec(AUDIT_BACKGROUND);
	char *line;
	size_t len;

	/* Every string at its longest, of bytes jansson writes as \u00XX. */
	memset(user, 1, sizeof(user));
	memset(name, 1, sizeof(name));
	memset(rule, 1, sizeof(rule));
	memset(source, 1, sizeof(source));
	memset(reason, 1, sizeof(reason));
	memset(dev, 1, sizeof(dev));
	user[63] = name[63] = rule[MBX_RULE_MAX - 1] = source[MBX_SOURCE_MAX - 1] = '\0';
	reason[MBX_REASON_MAX - 1] = dev[MBX_NAME_MAX - 1] = '\0';
	for (size_t i = 0; i < MBX_INNER_MAX; i++)
		inner[i] = (struct mbx_inner){
		    .opcode = 0xffff, .cls = MBX_CLASS_SECURITY, .target = 0xffff};
	r.user = user;
	r.opcode_name = name;
	r.rule = rule;
	r.source = source;
	r.reason = reason;
	r.device = dev;
	r.inner = inner;
	r.n_inner = MBX_INNER_MAX;
	r.intent_seq = UINT64_MAX / 2;
	r.have_rc = true;
	r.cxl_rc = 0xffff;
	r.vendor_status = 0xffff;
	r.duration_us = UINT32_MAX;
	r.background = "completed";
	r.status = MBX_STATUS_AUDIT_UNAVAILABLE;
	r.uid = r.gid = (uid_t)-2;
	r.pid = 2147483647;
	line = audit_format(&r, UINT64_MAX / 2, ZEROS, &len);
	ck_assert_ptr_nonnull(line);
	ck_assert_uint_le(len, AUDIT_CLOSE_MAX);
	free(line);
}
END_TEST

static Suite *audit_suite(void)
{
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("audit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_sync_kinds);
	tcase_add_test(tc, test_continue_after_close);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_reopen_failure_keeps_old);
	tcase_add_test(tc, test_torn_last_line);
	tcase_add_test(tc, test_torn_only_line);
	tcase_add_test(tc, test_foreign_last_line);
	tcase_add_test(tc, test_write_failure_truncates);
	tcase_add_test(tc, test_sync_failure_truncates);
	tcase_add_test(tc, test_truncate_failure_retried);
	tcase_add_test(tc, test_readonly_fd);
	tcase_add_loop_test(tc, test_verify_detects_edit, 1, 5);
	tcase_add_loop_test(tc, test_verify_detects_prev_edit, 2, 5);
	tcase_add_test(tc, test_verify_last_prev_ambiguous);
	tcase_add_test(tc, test_verify_messages);
	tcase_add_test(tc, test_verify_torn_and_missing);
	tcase_add_test(tc, test_empty_file_verifies);
	tcase_add_test(tc, test_intent_holds_room_for_its_result);
	tcase_add_test(tc, test_close_max_bounds_the_longest_result);
	tcase_add_loop_test(tc, test_verify_head_removed, 1, 6);
	tcase_add_test(tc, test_verify_head_prev_zeroed);
	tcase_add_loop_test(tc, test_verify_open_intents, 0, 8);
	tcase_add_test(tc, test_verify_rotated_set);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(audit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
