/*
 * Reliability: the audit chain's anchors with a real, sandboxed mbxd. The
 * daemon checkpoints the chain head at start, periodically, at rotation and
 * at a clean stop, to the file next to the log; `mbxctl audit verify FILE`
 * uses it with no option and finds a cut tail, a removed head and a record
 * edited with every later hash recomputed; a log cut behind its checkpoint
 * stops the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <mbx/mbx.h>

#include "audit-anchor.h"
#include "audit.h"
#include "rel.h"

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev }\n";

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "rules:\n"
				  "  - name: admin-config\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [\"mem*\"]\n"
				  "    allow: [read, log, config]\n";

static const uint8_t timestamp[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};

static struct harness h;
static char ckpt[340];

static void setup(void)
{
	rel_users();
	harness_init(&h, devices_yaml, policy_yaml);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/*
 * Puts the log in a folder of its own owned by the run user (as
 * /var/log/mbxd is), so that the dropped daemon can replace its checkpoint,
 * and adds extra keys to the audit mapping.
 */
static void anchor_layout(const char *extra)
{
	struct passwd *pw = getpwnam("_mbxd");
	char logdir[300], *cfg, *at, *end, *out;

	ck_assert(pw != NULL);
	snprintf(logdir, sizeof(logdir), "%s/log", h.dir);
	ck_assert(mkdir(logdir, 0700) == 0 && chown(logdir, pw->pw_uid, pw->pw_gid) == 0);
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", logdir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", h.audit);
	harness_write_config(&h);
	cfg = harness_read_file(h.config);
	at = strstr(cfg, "audit: { path: ");
	ck_assert(at != NULL);
	end = strchr(at, '}');
	ck_assert(asprintf(&out, "%.*s, %s }%s", (int)(end - cfg - 1), cfg, extra, end + 1) > 0);
	ck_assert(unlink(h.config) == 0);
	FILE *f = fopen(h.config, "w");
	ck_assert(f && fputs(out, f) >= 0);
	fclose(f);
	free(out);
	free(cfg);
}

/* As user: one command; its broker status. */
static int status_as(const char *user, uint16_t opcode, const void *payload, size_t len)
{
	struct harness_call c = {"mem0", opcode, payload, len, NULL};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

/* The checkpoint file's checkpoint; false while it is absent. */
static bool read_ckpt(const char *p, struct audit_checkpoint *c)
{
	struct audit_checkpoint *v = NULL;
	char err[256];
	size_t n = 0;
	bool ok = audit_checkpoint_read(p, &v, &n, err, sizeof(err)) == 0 && n == 1;

	if (ok)
		*c = v[0];
	free(v);
	return ok;
}

/* The seq of the last record of an audit file (0: none). */
static uint64_t last_seq_of(const char *p)
{
	char *text = harness_read_file(p), *s;
	uint64_t seq = 0;

	for (s = text; s && (s = strstr(s, "{\"seq\":")); s++)
		seq = strtoull(s + 7, NULL, 10);
	free(text);
	return seq;
}

/* Waits (up to 5 s) for a checkpoint of the given cause naming seq (UINT64_MAX: any). */
static struct audit_checkpoint wait_ckpt(const char *why, uint64_t seq)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	struct audit_checkpoint c = {0};

	for (int i = 0; i < 250; i++) {
		if (read_ckpt(ckpt, &c) && !strcmp(c.why, why) &&
		    (c.seq == seq || seq == UINT64_MAX))
			return c;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("no %s checkpoint naming seq %llu (last: %s seq %llu)", why,
		     (unsigned long long)seq, c.why, (unsigned long long)c.seq);
	return c;
}

/* Runs mbxctl audit verify on up to two files, as root; output in out. */
static int verify(char *out, size_t outlen, const char *f1, const char *f2)
{
	return harness_mbxctl(&h, "root", out, outlen, "audit", "verify", f1, f2, NULL);
}

/* Writes text to path, replacing it. */
static void put_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	ck_assert(f && fputs(text, f) >= 0);
	fclose(f);
}

/*
 * What an attacker with root does to record e: edit it, recompute every
 * later prev; holding the current seal key (stolen, or NULL), also every
 * later seal, relabelled with that key's epoch.
 */
static char *rechained(const char *text, int e, const struct audit_seal_key *stolen)
{
	char *copy = strdup(text), *line, *save = NULL, *out = calloc(1, strlen(text) * 2 + 64);
	char hash[AUDIT_HASH_HEX];
	int i = 0;

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *dumped = NULL;

		if (++i >= e) {
			json_t *o = json_loads(line, 0, NULL);
			json_t *seal = json_object_get(o, "seal");
			char mac[AUDIT_HASH_HEX];

			ck_assert(o != NULL);
			if (i == e)
				json_object_set_new(o, "user", json_string("mallory"));
			else
				json_object_set_new(o, "prev", json_string(hash));
			if (seal && stolen) {
				ck_assert_int_eq(audit_seal_mac(stolen->key, stolen->epoch,
								(uint64_t)i, hash, mac),
						 0);
				json_object_set_new(seal, "epoch",
						    json_integer((json_int_t)stolen->epoch));
				json_object_set_new(seal, "mac", json_string(mac));
			}
			dumped = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			ck_assert_int_eq(audit_sha256_hex(dumped, strlen(dumped), hash), 0);
			line = dumped;
		}
		strcat(out, line);
		strcat(out, "\n");
		free(dumped);
	}
	free(copy);
	return out;
}

/* The text without its first line, or without its last n lines. */
static char *cut(const char *text, bool head, int n)
{
	char *copy = strdup(text), *p;

	if (head)
		return memmove(copy, strchr(copy, '\n') + 1, strlen(strchr(copy, '\n') + 1) + 1);
	for (int i = 0; i < n; i++) {
		copy[strlen(copy) - 1] = '\0';
		p = strrchr(copy, '\n');
		*(p ? p + 1 : copy) = '\0';
	}
	return copy;
}

/* Records as a figure the line of text that holds needle. */
static void figure_line(const char *name, const char *text, const char *needle)
{
	const char *hit = strstr(text, needle), *start = hit;

	ck_assert(hit != NULL);
	while (start > text && start[-1] != '\n')
		start--;
	rel_figure("anchor.txt", name, "%.*s", (int)strcspn(start, "\n"), start);
}

/* Damages the current log as given, verifies it alone, restores it; returns the output. */
static void expect_damage_found(char *damaged, const char *needle, const char *figure)
{
	char out[4096], *orig = harness_read_file(h.audit);

	put_file(h.audit, damaged);
	ck_assert_msg(verify(out, sizeof(out), h.audit, NULL) == 1 && strstr(out, needle),
		      "%s not found: %s", figure, out);
	figure_line(figure, out, needle);
	put_file(h.audit, orig);
	free(orig);
	free(damaged);
}

START_TEST(test_checkpoints_written_and_used)
{
	struct audit_checkpoint c;
	char out[4096], old[340], *text, *line;
	uint64_t seq;

	anchor_layout("checkpoint_interval_s: 1");
	rel_start(&h, NULL, NULL);
	c = wait_ckpt("start", 0);
	ck_assert_uint_eq(c.file_seq, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000, NULL, 0), MBX_STATUS_DENIED);
	ck_assert_int_eq(status_as(H_ADMIN, 0x0301, timestamp, sizeof(timestamp)), 0);
	seq = last_seq_of(h.audit);
	ck_assert_uint_eq(seq, 5);
	/* The periodic checkpoint comes within the interval, naming the last record. */
	c = wait_ckpt("periodic", seq);

	/* Rotation: the checkpoint links the files (the new one starts after seq). */
	snprintf(old, sizeof(old), "%s.1", h.audit);
	ck_assert(rename(h.audit, old) == 0);
	harness_signal(&h, SIGUSR1);
	c = wait_ckpt("rotation", seq);
	ck_assert_uint_eq(c.file_seq, seq + 1);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(status_as(H_ADMIN, 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000, NULL, 0), MBX_STATUS_DENIED);
	ck_assert_int_eq(harness_stop(&h), 0);
	c = wait_ckpt("stop", last_seq_of(h.audit));
	ck_assert_uint_eq(c.seq, seq + 5);
	ck_assert_uint_eq(c.file_seq, seq + 1);

	/* verify FILE finds the checkpoint next to it with no option. */
	ck_assert_msg(verify(out, sizeof(out), h.audit, NULL) == 0 && strstr(out, ckpt) &&
			  strstr(out, ", held"),
		      "current file alone: %s", out);
	figure_line("verify_with_checkpoint", out, ", held");
	ck_assert_msg(verify(out, sizeof(out), old, h.audit) == 0, "rotated set: %s", out);

	text = harness_read_file(h.audit);
	expect_damage_found(cut(text, false, 2), "tail removed", "cut_tail_found");
	expect_damage_found(cut(text, true, 1), "head removed", "removed_head_found");
	expect_damage_found(rechained(text, 1, NULL), "not the record the checkpoint",
			    "rechained_edit_found");

	/* A log cut behind its checkpoint does not start: records are missing. */
	line = cut(text, false, 3);
	put_file(h.audit, line);
	free(line);
	ck_assert_int_ne(rel_start_fails(&h, NULL, out, sizeof(out)), 0);
	ck_assert_msg(strstr(out, "records were removed or altered"), "start: %s", out);
	figure_line("start_refused_behind_checkpoint", out, "records were removed");
	free(text);
}
END_TEST

/* The seq of the first record, and the text of the last line, of an audit file. */
static char *last_line_of(const char *p)
{
	char *text = harness_read_file(p), *nl;

	ck_assert(text && *text);
	text[strlen(text) - 1] = '\0';
	nl = strrchr(text, '\n');
	memmove(text, nl ? nl + 1 : text, strlen(nl ? nl + 1 : text) + 1);
	return text;
}

/* Waits (up to 5 s) until the key file has evolved to at least epoch e. */
static struct audit_seal_key wait_epoch(const char *key, uint64_t e)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	struct audit_seal_key k = {0};
	char err[256];

	for (int i = 0; i < 250; i++) {
		if (audit_seal_key_load(key, &k, err, sizeof(err)) == 0 && k.epoch >= e)
			return k;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("the seal key did not reach epoch %llu (at %llu)", (unsigned long long)e,
		     (unsigned long long)k.epoch);
	return k;
}

/* Splits text after n lines into two files. */
static void split_into(const char *text, int n, const char *f1, const char *f2)
{
	const char *p = text;
	char *first;

	for (int i = 0; i < n; i++)
		p = strchr(p, '\n') + 1;
	first = strndup(text, (size_t)(p - text));
	put_file(f1, first);
	put_file(f2, p);
	free(first);
}

/* Rewrites the checkpoint to match files rewritten by the attacker. */
static void forge_ckpt(const char *old, const char *cur)
{
	struct audit_checkpoint c = {0};
	char *l1 = last_line_of(old), *l2 = last_line_of(cur), *line;

	c.seq = last_seq_of(cur);
	c.file_seq = last_seq_of(old) + 1;
	ck_assert_int_eq(audit_sha256_hex(l2, strlen(l2), c.hash), 0);
	ck_assert_int_eq(audit_sha256_hex(l1, strlen(l1), c.file_prev), 0);
	snprintf(c.time, sizeof(c.time), "2026-12-04T20:00:00.000000Z");
	snprintf(c.why, sizeof(c.why), "stop");
	line = audit_checkpoint_format(&c);
	put_file(ckpt, line);
	free(line);
	free(l1);
	free(l2);
}

START_TEST(test_seal_end_to_end)
{
	char key[340], vkey[340], old[340], out[4096], *text, *both, *edited, *last;
	struct audit_seal_key stolen;
	struct stat st;
	int n_old = 0;

	/* The operator makes a key and keeps the verification key offline. */
	snprintf(key, sizeof(key), "%s/log/seal.key", h.dir);
	snprintf(vkey, sizeof(vkey), "%s/verification.key", h.dir);
	anchor_layout("checkpoint_interval_s: 1, seal_interval_s: 1, seal_key: log/seal.key");
	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "seal-init", key, NULL) == 0,
	    "seal-init: %s", out);
	last = strrchr(out, '\n');
	*last = '\0';
	put_file(vkey, strrchr(out, '\n') + 1);
	rel_start(&h, NULL, NULL);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(status_as(H_ADMIN, 0x0301, timestamp, sizeof(timestamp)), 0);
	wait_epoch(key, 2); /* sealed at start, then again once records came */
	ck_assert_int_eq(status_as(H_OUTSIDER, 0x4000, NULL, 0), MBX_STATUS_DENIED);
	wait_epoch(key, 3);

	/* Rotation seals the old file's end before the new file opens. */
	snprintf(old, sizeof(old), "%s.1", h.audit);
	ck_assert_int_eq(status_as(H_ADMIN, 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert(rename(h.audit, old) == 0);
	harness_signal(&h, SIGUSR1);
	ck_assert_uint_eq(wait_ckpt("rotation", UINT64_MAX).seq, last_seq_of(old));
	last = last_line_of(old);
	ck_assert_msg(strstr(last, "\"kind\":\"seal\""), "old file ends with %s", last);
	free(last);
	ck_assert_int_eq(status_as(H_ADMIN, 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	last = last_line_of(h.audit);
	ck_assert_msg(strstr(last, "\"kind\":\"seal\""), "the log ends with %s", last);
	free(last);

	/* The key file evolved in place: the run user's, no old key, no temp file left. */
	stolen = wait_epoch(key, 5);
	ck_assert(stat(key, &st) == 0 && st.st_uid == getpwnam("_mbxd")->pw_uid &&
		  (st.st_mode & 077) == 0);
	text = harness_read_file(key);
	last = harness_read_file(vkey);
	last[strcspn(last, "\n")] = '\0';
	ck_assert_msg(!strstr(text, last), "the initial key is still in the key file");
	free(text);
	free(last);
	snprintf(out, sizeof(out), "%s.tmp", key);
	ck_assert_int_eq(access(out, F_OK), -1);

	ck_assert_msg(harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", "--seal-key",
				     vkey, old, h.audit, NULL) == 0 &&
			  strstr(out, "all hold"),
		      "intact, sealed: %s", out);
	figure_line("sealed_verify", out, "seals:");

	/*
	 * Root, later, with the current key (stolen): record 2 edited, every later
	 * hash recomputed, every seal re-made with the stolen key, the
	 * checkpoint rewritten to match.
	 */
	text = harness_read_file(old);
	for (char *p = text; (p = strchr(p, '\n')); p++)
		n_old++;
	last = harness_read_file(h.audit);
	ck_assert(asprintf(&both, "%s%s", text, last) > 0);
	edited = rechained(both, 2, &stolen);
	split_into(edited, n_old, old, h.audit);
	forge_ckpt(old, h.audit);
	ck_assert_msg(verify(out, sizeof(out), old, h.audit) == 0,
		      "without the key the rewrite should pass: %s", out);
	rel_figure("anchor.txt", "rewrite_without_key",
		   "verify exits 0: chain and checkpoint "
		   "rewritten to match");
	ck_assert_msg(harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", "--seal-key",
				     vkey, old, h.audit, NULL) == 1 &&
			  strstr(out, "forged"),
		      "rewrite with the stolen key not found: %s", out);
	figure_line("rewrite_with_stolen_key_found", out, "forged");
	rel_figure("anchor.txt", "stolen_key_epoch", "%llu", (unsigned long long)stolen.epoch);
	free(text);
	free(last);
	free(both);
	free(edited);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-anchor");
	TCase *tc = tcase_create("anchor");
	SRunner *sr;
	int failed;

	rel_figures_reset("anchor.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_checkpoints_written_and_used);
	tcase_add_test(tc, test_seal_end_to_end);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
