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
#include <openssl/evp.h>

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

/* Writes a seal record under k, as the daemon does, and moves k to the next epoch. */
static void put_seal(struct audit *a, struct audit_seal_key *k)
{
	struct audit_seal_ref ref = {k->epoch, k->key};
	struct audit_record r = {.kind = AUDIT_SEAL, .seal = &ref};

	ck_assert_int_eq(audit_write(a, &r, NULL), 0);
	audit_seal_evolve(k);
}

/*
 * A sealed log: epochs 0..epochs-1 each hold per records and their seal;
 * then per records of the current epoch, not yet sealed. k0 gets the
 * initial (verification) key, cur the daemon's key now.
 */
static void sealed_log(int epochs, int per, struct audit_seal_key *k0, struct audit_seal_key *cur)
{
	struct audit *a = open_ok();

	memset(k0, 0, sizeof(*k0));
	for (int i = 0; i < AUDIT_SEAL_KEY_LEN; i++)
		k0->key[i] = (uint8_t)(i * 37 + 11);
	*cur = *k0;
	for (int e = 0; e < epochs; e++) {
		put_n(a, per);
		put_seal(a, cur);
	}
	put_n(a, per);
	audit_close(a);
}

enum attack { KEEP_SEALS, RELABEL_SEALS, DROP_OLD_SEALS, DROP_ALL_SEALS };

/*
 * What someone who later got root does, holding the current key: edits the
 * user of record e, recomputes every later prev, and does what the mode says
 * with the seals; with forge, adds a seal of the current epoch at the end.
 * Removed lines renumber the seq of every later one.
 */
static void attack(const char *p, int e, enum attack mode, const struct audit_seal_key *stolen,
		   bool forge)
{
	char hash[AUDIT_HASH_HEX], mac[AUDIT_HASH_HEX];
	int n, out = 0;
	bool changed = false; /* from the edit or the first dropped line on, lines are rewritten */
	char **v = lines_of(p, &n);

	for (int i = 0; i < n; i++) {
		json_t *o = json_loads(v[i], 0, NULL), *seal = json_object_get(o, "seal");
		uint64_t epoch = (uint64_t)json_integer_value(json_object_get(seal, "epoch"));
		bool drop = seal && (mode == DROP_ALL_SEALS ||
				     (mode == DROP_OLD_SEALS && epoch < stolen->epoch));

		changed = changed || drop || i + 1 >= e;
		if (drop || !changed) {
			if (!drop)
				ck_assert_int_eq(audit_sha256_hex(v[i], strlen(v[i]), hash), 0);
			if (!drop)
				v[out++] = v[i];
			else
				free(v[i]);
			json_decref(o);
			continue;
		}
		if (i + 1 == e)
			json_object_set_new(o, "user", json_string("mallory"));
		json_object_set_new(o, "seq", json_integer(out + 1));
		if (out)
			json_object_set_new(o, "prev", json_string(hash));
		if (seal && (mode == RELABEL_SEALS || epoch == stolen->epoch)) {
			ck_assert_int_eq(audit_seal_mac(stolen->key, stolen->epoch,
							(uint64_t)out + 1, hash, mac),
					 0);
			json_object_set_new(seal, "epoch", json_integer((json_int_t)stolen->epoch));
			json_object_set_new(seal, "mac", json_string(mac));
		}
		free(v[i]);
		v[out++] = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		ck_assert_int_eq(audit_sha256_hex(v[out - 1], strlen(v[out - 1]), hash), 0);
	}
	if (forge) {
		ck_assert_int_eq(
		    audit_seal_mac(stolen->key, stolen->epoch, (uint64_t)out + 1, hash, mac), 0);
		ck_assert_int_ge(asprintf(&v[out],
					  "{\"seq\":%d,\"time\":\"x\",\"kind\":\"seal\",\"seal\":"
					  "{\"epoch\":%llu,\"mac\":\"%s\"},\"prev\":\"%s\"}",
					  out + 1, (unsigned long long)stolen->epoch, mac, hash),
				 0);
		out++;
	}
	write_lines(p, v, 0, out);
	free_lines(v, out);
}

/* Verifies path alone with the verification key k0 (NULL: seals not checked). */
static int verify_sealed(const struct audit_seal_key *k0, struct audit_verify *v)
{
	const char *paths[] = {path};

	memset(v, 0, sizeof(*v));
	v->seal_key = k0 ? k0->key : NULL;
	return audit_verify_run(v, paths, 1);
}

START_TEST(test_seal_intact)
{
	struct audit_seal_key k0, cur, wrong;
	struct audit_verify v;

	sealed_log(4, 3, &k0, &cur);
	ck_assert_uint_eq(cur.epoch, 4);
	ck_assert_msg(verify_sealed(&k0, &v) == 0, "%s", v.err);
	ck_assert_uint_eq(v.n_seals, 4);
	ck_assert_uint_eq(v.first_epoch, 0);
	ck_assert_uint_eq(v.last_epoch, 3);
	ck_assert_uint_eq(v.sealed_seq, 16); /* 4 x (3 records + a seal) */
	ck_assert_uint_eq(v.last_seq, 19);   /* the current epoch's 3 are not sealed */
	audit_verify_free(&v);
	/* Without the key, seals are counted, not checked. */
	ck_assert_int_eq(verify_sealed(NULL, &v), 0);
	ck_assert_uint_eq(v.n_seals, 4);
	ck_assert_uint_eq(v.sealed_seq, 0);
	audit_verify_free(&v);
	/* Another key: the first seal does not hold. */
	wrong = k0;
	wrong.key[0] ^= 1;
	ck_assert_int_eq(verify_sealed(&wrong, &v), -EBADMSG);
	ck_assert_uint_eq(v.bad_seq, 4);
	ck_assert_msg(strstr(v.err, "seal of epoch 0 does not hold"), "%s", v.err);
	audit_verify_free(&v);
}
END_TEST

START_TEST(test_seal_old_edit_found)
{
	/*
	 * Record _i of epochs 0..3 (1..15, seals included) edited by someone with
	 * the current key (epoch 4), the chain recomputed, the seals kept,
	 * relabelled, or the old ones dropped; a current-epoch seal forged.
	 */
	static const enum attack modes[] = {KEEP_SEALS, RELABEL_SEALS, DROP_OLD_SEALS};
	struct audit_seal_key k0, cur;
	struct audit_verify v;

	for (size_t m = 0; m < 3; m++) {
		sealed_log(4, 3, &k0, &cur);
		attack(path, _i, modes[m], &cur, true);
		/* The chain itself holds: only the seals can tell. */
		ck_assert_int_eq(verify_sealed(NULL, &v), 0);
		audit_verify_free(&v);
		ck_assert_int_eq(verify_sealed(&k0, &v), -EBADMSG);
		if (modes[m] == KEEP_SEALS)
			ck_assert_msg(strstr(v.err, "does not hold"), "%s", v.err);
		else /* the first seal it touched is out of order */
			ck_assert_msg(strstr(v.err, "first seal is epoch 4, not 0") ||
					  strstr(v.err, "seal of epoch 4 follows epoch"),
				      "%s", v.err);
		/* Found at or after the edit, never before it. */
		ck_assert_uint_ge(v.bad_seq, (uint64_t)_i);
		audit_verify_free(&v);
		ck_assert_int_eq(unlink(path), 0);
	}
}
END_TEST

START_TEST(test_seal_limits)
{
	/* What sealing does not catch, and what it does, at the edges. */
	struct audit_seal_key k0, cur;
	struct audit_verify v;

	/* An edit in the current epoch, after the last seal: not detected, reported unsealed. */
	sealed_log(2, 3, &k0, &cur);
	attack(path, 10, KEEP_SEALS, &cur, false);
	ck_assert_msg(verify_sealed(&k0, &v) == 0, "%s", v.err);
	ck_assert_uint_eq(v.sealed_seq, 8);
	ck_assert_uint_eq(v.last_seq, 11);
	audit_verify_free(&v);
	/* The same with a seal of the current epoch forged with its key: still not detected. */
	ck_assert_int_eq(unlink(path), 0);
	sealed_log(2, 3, &k0, &cur);
	attack(path, 10, KEEP_SEALS, &cur, true);
	ck_assert_msg(verify_sealed(&k0, &v) == 0, "%s", v.err);
	ck_assert_uint_eq(v.sealed_seq, 12);
	audit_verify_free(&v);
	/* Every seal removed: a sealing daemon's log without a seal is refused. */
	ck_assert_int_eq(unlink(path), 0);
	sealed_log(2, 3, &k0, &cur);
	attack(path, 1, DROP_ALL_SEALS, &cur, false);
	ck_assert_int_eq(verify_sealed(&k0, &v), -EBADMSG);
	ck_assert_msg(strstr(v.err, "no seal in these files"), "%s", v.err);
	audit_verify_free(&v);
}
END_TEST

/* Writes a key file as seal-init would, at epoch e, mode 0600. */
static void key_file(const char *p, const struct audit_seal_key *k)
{
	char err[256];

	ck_assert_msg(audit_seal_key_store(p, k, err, sizeof(err)) == 0, "%s", err);
}

START_TEST(test_seal_key_file)
{
	/* seal-init, evolution, atomic store with the old bytes overwritten, crash recovery. */
	struct audit_seal_key k, got, next;
	char kf[160], tmp[170], vkey[AUDIT_HASH_HEX], err[256], buf[512], oldhex[65];
	uint8_t vk[AUDIT_SEAL_KEY_LEN];
	ssize_t n;
	int fd;

	snprintf(kf, sizeof(kf), "%s/seal.key", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", kf);
	ck_assert_int_eq(audit_seal_init(kf, vkey, err, sizeof(err)), 0);
	ck_assert_int_eq(audit_seal_init(kf, vkey, err, sizeof(err)), -EEXIST);
	ck_assert_int_eq(audit_seal_key_load(kf, &k, err, sizeof(err)), 0);
	ck_assert_uint_eq(k.epoch, 0);
	FILE *f = fopen(tmp, "w");
	fprintf(f, "%s\n", vkey);
	fclose(f);
	ck_assert_int_eq(audit_seal_vkey_read(tmp, vk, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(vk, k.key, sizeof(vk)), 0);
	ck_assert_int_eq(unlink(tmp), 0);

	/* The next key is the SHA-256 of the last. */
	next = k;
	audit_seal_evolve(&next);
	ck_assert_uint_eq(next.epoch, 1);
	ck_assert_int_eq(EVP_Digest(k.key, 32, (unsigned char *)buf, NULL, EVP_sha256(), NULL), 1);
	ck_assert_int_eq(memcmp(buf, next.key, 32), 0);

	/* Stored: the old file's own bytes now hold the new state, not the old key. */
	fd = open(kf, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	memcpy(oldhex, vkey, sizeof(oldhex));
	key_file(kf, &next);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_null(strstr(buf, oldhex));
	ck_assert_ptr_nonnull(strstr(buf, "\"epoch\":1"));
	ck_assert_int_eq(access(tmp, F_OK), -1);
	ck_assert_int_eq(audit_seal_key_load(kf, &got, err, sizeof(err)), 0);
	ck_assert_uint_eq(got.epoch, 1);
	ck_assert_int_eq(memcmp(got.key, next.key, 32), 0);

	/* A crash after the temp file was synced: the later epoch there is used. */
	audit_seal_evolve(&next);
	snprintf(buf, sizeof(buf), "%s/other", dir);
	key_file(buf, &next);
	ck_assert_int_eq(rename(buf, tmp), 0);
	ck_assert_int_eq(audit_seal_key_load(kf, &got, err, sizeof(err)), 0);
	ck_assert_uint_eq(got.epoch, 2);
	/* The main file torn, the temp file whole: the temp file. */
	fd = open(kf, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "{\"vers", 6), 6);
	close(fd);
	ck_assert_int_eq(audit_seal_key_load(kf, &got, err, sizeof(err)), 0);
	ck_assert_uint_eq(got.epoch, 2);
	ck_assert_int_eq(unlink(tmp), 0);
	ck_assert_int_eq(audit_seal_key_load(kf, &got, err, sizeof(err)), -EBADMSG);

	/* A key others may read is refused. */
	key_file(kf, &k);
	ck_assert_int_eq(chmod(kf, 0644), 0);
	ck_assert_int_eq(audit_seal_key_load(kf, &got, err, sizeof(err)), -EPERM);
	ck_assert_msg(strstr(err, "readable by group or others"), "%s", err);
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
	tc = tcase_create("seal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_seal_intact);
	tcase_add_loop_test(tc, test_seal_old_edit_found, 1, 16);
	tcase_add_test(tc, test_seal_limits);
	tcase_add_test(tc, test_seal_key_file);
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
