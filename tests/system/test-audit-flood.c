/*
 * System tests of the audit's write path under one user's flood: refusal
 * records coalesce per user (every client still gets its full answer, every
 * refusal is either a record or counted in a suppressed one, the chain
 * verifies), another user's records are neither held back nor merged, the
 * counts are written on the timer, at rotation and at stop; reads that the
 * device does not support write no record per poll; and an audit file
 * deleted or replaced under mbxd is noticed. A real, sandboxed mbxd and
 * clients under real, different uids.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <mbx/mbx.h>

#include "harness.h"

/* mem1 lacks generic Identify (as kernel-owned devices do); mem2 Set Alert Config. */
static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev }\n"
				   "  - name: mem1\n"
				   "    transport: sim\n"
				   "    options: { model: memdev, omit_opcode: 0x0001 }\n"
				   "  - name: mem2\n"
				   "    transport: sim\n"
				   "    options: { model: memdev, omit_opcode: 0x4202 }\n"
				   "  - name: sw0\n"
				   "    transport: sim\n"
				   "    options: { model: switch }\n";

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n"
				  "  - name: admin-config\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [\"mem*\"]\n"
				  "    allow: [read, log, config]\n";

#define BURST       5
#define PER_MINUTE  60
#define COALESCE_MS 400
#define FLOOD_N     400

static struct harness h;

static void setup(void)
{
	struct passwd *pw;
	char dir[300];

	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	/* The log's folder belongs to the run user, as packaging sets /var/log/mbxd up. */
	pw = getpwnam("_mbxd");
	ck_assert(pw != NULL);
	snprintf(dir, sizeof(dir), "%s/log", h.dir);
	ck_assert(mkdir(dir, 0750) == 0 && chown(dir, pw->pw_uid, pw->pw_gid) == 0);
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", dir);
	h.audit_yaml = "refused_burst: 5, refused_per_minute: 60, coalesce_ms: 400";
	harness_write_config(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* Every record of an audit file, in order; NULL-terminated, free with records_free. */
static json_t **records(const char *path, size_t *n)
{
	char *text = harness_read_file(path), *line, *save = NULL;
	json_t **v = calloc(200000, sizeof(*v));

	*n = 0;
	ck_assert(v != NULL);
	if (!text)
		return v;
	for (line = strtok_r(text, "\n", &save); line && *n < 199999;
	     line = strtok_r(NULL, "\n", &save)) {
		v[*n] = json_loads(line, 0, NULL);
		ck_assert_msg(v[*n] != NULL, "a line of %s is not JSON: %.80s", path, line);
		(*n)++;
	}
	free(text);
	return v;
}

static void records_free(json_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
}

static const char *str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

static long long num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static uid_t uid_of(const char *user)
{
	struct passwd *pw = getpwnam(user);

	ck_assert(pw != NULL);
	return pw->pw_uid;
}

/* What one user's refusals left in a log: full records and counted ones. */
struct tally {
	long full;       /* decision records */
	long counted;    /* the sum of suppressed counts */
	long suppressed; /* suppressed records */
};

/* Checks each suppressed record of uid and adds up what the log holds for it. */
static struct tally tally_of(json_t **v, size_t n, uid_t uid)
{
	struct tally t = {0, 0, 0};

	for (size_t i = 0; i < n; i++) {
		json_t *sup = json_object_get(v[i], "suppressed");
		long long like;

		if (num(v[i], "uid") != (long long)uid)
			continue;
		if (strcmp(str(v[i], "kind"), "decision") == 0) {
			ck_assert(json_is_null(sup));
			t.full++;
			continue;
		}
		if (strcmp(str(v[i], "kind"), "suppressed") != 0)
			continue;
		t.suppressed++;
		ck_assert_msg(json_is_object(sup), "suppressed record without its count");
		ck_assert_int_gt(num(sup, "count"), 0);
		ck_assert_str_le(str(sup, "first"), str(sup, "last"));
		t.counted += (long)num(sup, "count");
		like = num(sup, "like_seq");
		if (like < 0)
			continue;
		/* "Like record S": same user, device, opcode, status and rule, written before. */
		ck_assert_int_lt(like, num(v[i], "seq"));
		for (size_t j = 0; j < i; j++) {
			if (num(v[j], "seq") != like)
				continue;
			ck_assert_str_eq(str(v[j], "kind"), "decision");
			ck_assert_int_eq(num(v[j], "uid"), uid);
			ck_assert_str_eq(str(v[j], "device"), str(v[i], "device"));
			ck_assert_str_eq(str(v[j], "opcode"), str(v[i], "opcode"));
			ck_assert_str_eq(str(v[j], "status"), str(v[i], "status"));
			ck_assert_str_eq(str(v[j], "rule"), str(v[i], "rule"));
			like = -1;
		}
		ck_assert_msg(like == -1, "like_seq names no record in the file");
	}
	return t;
}

/* The requests a flood sends: three kinds, every one denied to a user without rules. */
static void flood_request(struct mbx_request *req, int i)
{
	static const uint8_t ts[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};

	memset(req, 0, sizeof(*req));
	req->device = i % 3 == 2 ? "mem2" : "mem0";
	req->opcode = i % 3 == 0 ? 0x4000 : 0x0301;
	req->payload = req->opcode == 0x0301 ? ts : NULL;
	req->payload_len = req->opcode == 0x0301 ? sizeof(ts) : 0;
}

/* As the flooding user: FLOOD_N refused requests, 32 in flight; every answer full. */
static int flood(const char *socket, void *arg)
{
	int n = arg ? *(int *)arg : FLOOD_N, sent = 0, got = 0, inflight = 0;
	struct mbx_request req;
	struct mbx_client *c;
	struct mbx_reply rep;
	uint32_t tag;

	if (mbx_open(socket, &c) < 0)
		return 100;
	while (got < n) {
		while (inflight < 32 && sent < n) {
			flood_request(&req, sent++);
			if (mbx_send(c, &req, &tag) < 0)
				return 101;
			inflight++;
		}
		if (mbx_receive(c, 10000, &rep, &tag) < 0)
			return 102;
		inflight--;
		got++;
		/* The client's answer is never coalesced: status, decision, class, message. */
		if (rep.result.status != MBX_STATUS_DENIED ||
		    rep.result.decision != MBX_DECISION_DENY || !rep.result.message[0] ||
		    !strstr(rep.result.message, "denied"))
			return 103;
		mbx_reply_free(&rep);
	}
	mbx_close(c);
	return 0;
}

/* As a user: n denied Set Timestamps on mem0, each answered with its own record's seq. */
static int own_records(const char *socket, void *arg)
{
	uint64_t *seqs = arg;
	struct mbx_request req;
	struct mbx_client *c;
	struct mbx_reply rep;

	if (mbx_open(socket, &c) < 0)
		return 100;
	for (int i = 0; i < 3; i++) {
		flood_request(&req, 1);
		if (mbx_submit(c, &req, &rep) < 0)
			return 101;
		if (rep.result.status != MBX_STATUS_DENIED || rep.result.audit_seq == 0)
			return 102;
		seqs[i] = rep.result.audit_seq;
		mbx_reply_free(&rep);
	}
	mbx_close(c);
	return 0;
}

/* Room for three seqs that a client child fills in for the test. */
static uint64_t *mmap_shared_seqs(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	return p;
}

/* Waits until the log holds at least n records of uid (at most 10 s). */
static void wait_records(const char *path, uid_t uid, long n)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 1000; i++) {
		size_t len;
		json_t **v = records(path, &len);
		struct tally t = tally_of(v, len, uid);

		records_free(v, len);
		if (t.full + t.counted >= n)
			return;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("the log never held %ld records of uid %u", n, (unsigned)uid);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_flood_coalesced_every_refusal_accounted)
{
	uid_t outsider = uid_of(H_OUTSIDER), op = uid_of(H_OPERATOR);
	uint64_t *seqs = mmap_shared_seqs();
	double t0, elapsed;
	char out[4096];
	struct tally t;
	int status;
	json_t **v;
	size_t n;
	pid_t pid;

	harness_start(&h);
	t0 = now_s();
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(harness_as_user(H_OUTSIDER, flood, h.socket, NULL));
	/* Once the flooder's burst is spent, another user still gets records of its own. */
	wait_records(h.audit, outsider, BURST);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, own_records, h.socket, seqs), 0);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "a flooding client did not get its full answers (status 0x%x)", status);
	elapsed = now_s() - t0;
	ck_assert_int_eq(harness_stop(&h), 0);

	v = records(h.audit, &n);
	t = tally_of(v, n, outsider);
	/* Nothing silently lost: every refusal is a record or counted in one. */
	ck_assert_int_eq(t.full + t.counted, FLOOD_N);
	/* The bucket: a burst, then PER_MINUTE; the rest coalesced. */
	ck_assert_msg(t.full <= BURST + (long)(elapsed * PER_MINUTE / 60.0) + 1,
		      "%ld full records in %.1f s", t.full, elapsed);
	ck_assert_int_gt(t.counted, 0);
	/* At most one suppressed record per kind (3) and window, plus the one at stop. */
	ck_assert_msg(t.suppressed <= 3 * (long)(elapsed * 1000 / COALESCE_MS + 2),
		      "%ld suppressed records in %.1f s", t.suppressed, elapsed);
	/* The other user's three refusals: each its own record, with the seq it was told. */
	for (int i = 0; i < 3; i++) {
		bool found = false;

		for (size_t j = 0; j < n; j++)
			if (num(v[j], "seq") == (long long)seqs[i]) {
				ck_assert_int_eq(num(v[j], "uid"), op);
				ck_assert_str_eq(str(v[j], "kind"), "decision");
				found = true;
			}
		ck_assert_msg(found, "no record %llu", (unsigned long long)seqs[i]);
	}
	ck_assert_int_eq(tally_of(v, n, op).full, 3);
	records_free(v, n);
	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", h.audit, NULL) == 0,
	    "verify: %s", out);
}
END_TEST

/* Runs n flood requests as the outsider; fails the test if any answer was short. */
static void flood_as_outsider(int n)
{
	ck_assert_int_eq(harness_as_user(H_OUTSIDER, flood, h.socket, &n), 0);
}

/* Waits until mbxd's log holds needle (at most 10 s). */
static void wait_log(const char *needle)
{
	harness_wait_file(h.log, needle);
}

START_TEST(test_counts_written_on_timer_and_at_rotation)
{
	uid_t outsider = uid_of(H_OUTSIDER);
	char old[400], out[4096];
	struct tally t;
	json_t **v;
	size_t n;

	harness_start(&h);
	flood_as_outsider(30);
	/* Without a stop or a rotation: the timer writes the count. */
	wait_records(h.audit, outsider, 30);
	v = records(h.audit, &n);
	t = tally_of(v, n, outsider);
	records_free(v, n);
	ck_assert_int_eq(t.full + t.counted, 30);
	ck_assert_int_ge(t.suppressed, 1);

	/* Counted just before a rotation: in the old file, none left for the new one. */
	flood_as_outsider(40);
	snprintf(old, sizeof(old), "%s.1", h.audit);
	ck_assert(rename(h.audit, old) == 0);
	harness_signal(&h, SIGUSR1);
	wait_log("audit log reopened");
	v = records(old, &n);
	t = tally_of(v, n, outsider);
	records_free(v, n);
	ck_assert_int_eq(t.full + t.counted, 70);
	ck_assert_int_eq(harness_stop(&h), 0);
	v = records(h.audit, &n);
	ck_assert_int_eq(tally_of(v, n, outsider).counted, 0);
	records_free(v, n);
	ck_assert_msg(harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", old, h.audit,
				     NULL) == 0,
		      "verify across the rotation: %s", out);
}
END_TEST

/* The number of lines in the audit file. */
static size_t audit_lines(void)
{
	size_t n;
	json_t **v = records(h.audit, &n);

	records_free(v, n);
	return n;
}

START_TEST(test_unsupported_reads_write_no_record_per_poll)
{
	char out[8192];
	size_t before;

	harness_start(&h);
	before = audit_lines();
	for (int i = 0; i < 10; i++) {
		/* A device without generic Identify: identified as a memory device. */
		ck_assert_msg(
		    harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem1", NULL) == 0,
		    "identify mem1: %s", out);
		ck_assert_msg(strstr(out, "memory device") || strstr(out, "Memory Device") ||
				  strstr(out, "capacity"),
			      "identify mem1 said: %s", out);
		ck_assert_int_eq(
		    harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL), 0);
		/* A switch has no Get Health Info: unsupported, told, not recorded. */
		ck_assert_int_ne(
		    harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "health", "sw0", NULL), 0);
		ck_assert_msg(strstr(out, "unsupported"), "health sw0 said: %s", out);
		ck_assert_int_eq(
		    harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "health", "mem0", NULL), 0);
	}
	ck_assert_uint_eq(audit_lines(), before);
	/* An unsupported command of an audited class is still a record. */
	ck_assert_int_ne(harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "send", "mem2", "0x4202",
					"--hex", "000000000000000000000000", NULL),
			 0);
	ck_assert_uint_eq(audit_lines(), before + 1);
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

static const uint8_t set_ts[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};

/* As user: one command; its broker status (see harness_submit_status). */
static int status_as(const char *user, const char *device, uint16_t opcode, const void *payload,
		     size_t len)
{
	struct harness_call c = {device, opcode, payload, len, NULL};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

/* The admin's audited Set Timestamp on mem0: its broker status. */
static int audited_command(void)
{
	return status_as(H_ADMIN, "mem0", 0x0301, set_ts, sizeof(set_ts));
}

/* Copies the log aside (as root), for verifying the chain across a deletion. */
static void copy_log(const char *to)
{
	char *text = harness_read_file(h.audit);
	FILE *f = fopen(to, "w");

	ck_assert(text && f);
	fputs(text, f);
	fclose(f);
	free(text);
}

/* How many times mbxd's log holds needle. */
static int log_count(const char *needle)
{
	return harness_file_count(h.log, needle);
}

/* Verifies files (f3 may be NULL) as one chain, oldest first. */
static void verify_chain(const char *f1, const char *f2, const char *f3)
{
	char out[4096];

	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", f1, f2, f3, NULL) == 0,
	    "verify %s %s: %s", f1, f2, out);
}

START_TEST(test_deleted_log_continues_in_a_new_file)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	char copy[400], copy2[400];
	struct stat st;
	int i;

	snprintf(copy, sizeof(copy), "%s/before-rm.jsonl", h.dir);
	snprintf(copy2, sizeof(copy2), "%s/before-rm2.jsonl", h.dir);
	harness_start(&h);
	ck_assert_int_eq(audited_command(), 0);
	copy_log(copy);
	ck_assert(unlink(h.audit) == 0);
	/* The next record notices: a new file at the path, the chain unbroken. */
	ck_assert_int_eq(audited_command(), 0);
	ck_assert_int_eq(stat(h.audit, &st), 0);
	ck_assert_uint_eq(audit_lines(), 2);
	ck_assert_int_eq(log_count("was deleted under mbxd"), 1);
	verify_chain(copy, h.audit, NULL);

	/* With nothing written, the timer notices. */
	copy_log(copy2);
	ck_assert(unlink(h.audit) == 0);
	for (i = 0; i < 250 && stat(h.audit, &st) != 0; i++)
		nanosleep(&pause, NULL);
	ck_assert_msg(i < 250, "the deleted log was not noticed between records");
	ck_assert_int_eq(log_count("was deleted under mbxd"), 2);
	ck_assert_int_eq(audited_command(), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	verify_chain(copy, copy2, h.audit);
}
END_TEST

/* Writes text to path (as root, mode 0644). */
static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert(f != NULL);
	fputs(text, f);
	fclose(f);
}

/* Whether path holds exactly text. */
static bool file_is(const char *path, const char *text)
{
	char *got = harness_read_file(path);
	bool same = got && strcmp(got, text) == 0;

	free(got);
	return same;
}

START_TEST(test_replaced_log_or_link_is_never_written)
{
	static const char foreign[] = "not an audit log, someone else's\n";
	char copy[400], other[400], target[400];

	snprintf(copy, sizeof(copy), "%s/before.jsonl", h.dir);
	snprintf(other, sizeof(other), "%s/other", h.dir);
	snprintf(target, sizeof(target), "%s/target", h.dir);
	harness_start(&h);
	ck_assert_int_eq(audited_command(), 0);
	copy_log(copy);

	/* Another file renamed over the log: mbxd's file is gone, the path is not its. */
	put_file(other, foreign);
	ck_assert(rename(other, h.audit) == 0);
	ck_assert_int_eq(audited_command(), MBX_STATUS_AUDIT_UNAVAILABLE);
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x0301, set_ts, sizeof(set_ts)),
			 MBX_STATUS_DENIED);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL, 0), 0);
	ck_assert_msg(file_is(h.audit, foreign), "mbxd wrote into a file it did not make");
	ck_assert_int_eq(log_count("the path now holds another file"), 1);

	/* A symbolic link there: not followed, not written. */
	put_file(target, "x\n");
	ck_assert(unlink(h.audit) == 0 && symlink(target, h.audit) == 0);
	ck_assert_int_eq(audited_command(), MBX_STATUS_AUDIT_UNAVAILABLE);
	ck_assert_msg(file_is(target, "x\n"), "mbxd wrote through a symbolic link");

	/* The path free again: a new file continues the chain from the last record. */
	ck_assert(unlink(h.audit) == 0);
	ck_assert_int_eq(audited_command(), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	verify_chain(copy, h.audit, NULL);
	ck_assert_int_eq(log_count("was deleted under mbxd"), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("audit-flood");
	TCase *tc = tcase_create("audit-flood");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_flood_coalesced_every_refusal_accounted);
	tcase_add_test(tc, test_counts_written_on_timer_and_at_rotation);
	tcase_add_test(tc, test_unsupported_reads_write_no_record_per_poll);
	tcase_add_test(tc, test_deleted_log_continues_in_a_new_file);
	tcase_add_test(tc, test_replaced_log_or_link_is_never_written);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
