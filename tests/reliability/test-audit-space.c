/*
 * Reliability: an audited command that ran always has its result record,
 * on a small filesystem filled while the command is in the device, and
 * under a user's flood of refusals; a command whose result room cannot be
 * held is refused (audit-unavailable) before it reaches the device. With
 * coalescing on (the default), the flood cannot fill the log at all.
 */
#include <errno.h>
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

#include "rel.h"

/* mem0 holds each command 1.5 s: the disk fills while one is in the device. */
static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    timeout_ms: 20000\n"
				   "    options: { model: memdev, latency_us: 1500000 }\n"
				   "  - name: mem1\n"
				   "    transport: sim\n"
				   "    timeout_ms: 20000\n"
				   "    options: { model: memdev, latency_us: 20000 }\n";

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
static char mnt[300];

/* A tmpfs of size KiB holds the log. */
static void setup_fs(unsigned kib)
{
	char cmd[700];

	snprintf(mnt, sizeof(mnt), "%s/auditfs", h.dir);
	ck_assert(mkdir(mnt, 0755) == 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=%uk,mode=0755 tmpfs %s", kib, mnt);
	ck_assert_msg(system(cmd) == 0, "cannot mount a small tmpfs (root and mount rights)");
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", mnt);
	harness_write_config(&h);
}

static void setup(void)
{
	rel_users();
	harness_init(&h, devices_yaml, policy_yaml);
	mnt[0] = '\0';
}

static void teardown(void)
{
	char cmd[400];

	if (h.mbxd > 0)
		harness_stop(&h);
	if (mnt[0]) {
		snprintf(cmd, sizeof(cmd), "umount %s", mnt);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot unmount %s\n", mnt);
	}
	harness_cleanup(&h);
}

/* Fills what is left of the filesystem (as root): dd fails when it is full. */
static void fill_fs(const char *name)
{
	char cmd[700];
	int rc;

	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of=%s/%s bs=4k count=100000 2>/dev/null", mnt,
		 name);
	rc = system(cmd);
	(void)rc;
}

/* What the admin's commands were told: status and audit seq of each. */
struct told {
	int n;
	int status[256];
	uint64_t seq[256];
};

struct admin_run {
	const char *device;
	int n;
	struct told *told; /* shared with the test process */
};

/* As the admin: n Set Timestamps one at a time, each answer kept. */
static int admin_commands(const char *socket, void *arg)
{
	struct admin_run *run = arg;
	struct mbx_request req = {.device = run->device,
				  .opcode = 0x0301,
				  .payload = timestamp,
				  .payload_len = sizeof(timestamp)};
	struct mbx_client *c;
	struct mbx_reply rep;

	if (mbx_open(socket, &c) < 0)
		return 100;
	for (int i = 0; i < run->n && i < 256; i++) {
		if (mbx_submit(c, &req, &rep) < 0)
			return 101;
		run->told->status[i] = rep.result.status;
		run->told->seq[i] = rep.result.audit_seq;
		run->told->n = i + 1;
		mbx_reply_free(&rep);
	}
	mbx_close(c);
	return 0;
}

static struct told *shared_told(void)
{
	void *p = mmap(NULL, sizeof(struct told), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(p != MAP_FAILED);
	memset(p, 0, sizeof(struct told));
	return p;
}

/* Whether the log holds a record of kind whose key equals v. */
static bool has_record(const char *kind, const char *key, long long v)
{
	char *text = harness_read_file(h.audit), *line, *save = NULL;
	bool found = false;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line && !found;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);

		found = o && !strcmp(json_string_value(json_object_get(o, "kind")), kind) &&
			json_integer_value(json_object_get(o, key)) == v;
		json_decref(o);
	}
	free(text);
	return found;
}

/* Every intent in the log has its result: the pairs, counted. */
static int intents_without_result(void)
{
	char *text = harness_read_file(h.audit), *line, *save = NULL;
	long long intents[4096];
	int n = 0, open = 0;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *kind = json_string_value(json_object_get(o, "kind"));

		if (kind && !strcmp(kind, "intent") && n < 4096)
			intents[n++] = json_integer_value(json_object_get(o, "seq"));
		if (kind && !strcmp(kind, "result"))
			for (int i = 0; i < n; i++)
				if (intents[i] ==
				    json_integer_value(json_object_get(o, "intent_seq")))
					intents[i] = -1;
		json_decref(o);
	}
	free(text);
	for (int i = 0; i < n; i++)
		open += intents[i] != -1;
	return open;
}

/* Checks each of the admin's answers: ran and recorded, or refused before it ran. */
static void check_told(const struct told *t, int *ran, int *refused)
{
	*ran = *refused = 0;
	for (int i = 0; i < t->n; i++) {
		if (t->status[i] == MBX_STATUS_OK) {
			ck_assert_msg(t->seq[i] &&
					  has_record("intent", "seq", (long long)t->seq[i]),
				      "command %d ran without an intent", i);
			ck_assert_msg(
			    has_record("result", "intent_seq", (long long)t->seq[i]),
			    "command %d (intent %llu) ran, was told ok, and has no result", i,
			    (unsigned long long)t->seq[i]);
			(*ran)++;
		} else {
			ck_assert_msg(t->status[i] == MBX_STATUS_AUDIT_UNAVAILABLE,
				      "command %d: status %d", i, t->status[i]);
			(*refused)++;
		}
	}
}

/* The seq the next record gets. */
static long long next_seq;

/* The seq of the log's last record. */
static long long last_seq(void)
{
	char *text = harness_read_file(h.audit);
	long long seq = 0;

	for (char *p = text; p && (p = strstr(p, "{\"seq\":")); p++)
		seq = strtoll(p + 7, NULL, 10);
	free(text);
	return seq;
}

/* The length of line n from the end of the log (1: the last). */
static size_t line_len_from_end(int n)
{
	char *text = harness_read_file(h.audit);
	size_t len = strlen(text), end = len, start;

	for (int i = 0; i < n; i++) {
		end = i ? start - 1 : len - 1;
		start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
	}
	free(text);
	return end - start + 1;
}

/*
 * tmpfs gives whole pages: a result that fits in the intent's last page
 * needs no new block. Pads the log with denials until the next intent ends
 * too near a page's end for its result to fit there, so the result needs a
 * block of its own: the case a full disk used to lose.
 */
static void align_intent_to_page_end(void)
{
	struct harness_call deny = {"mem1", 0x4400, NULL, 0, NULL};
	struct admin_run probe = {"mem1", 1, shared_told()};
	size_t intent, result;
	struct stat st;
	size_t in_page;

	ck_assert_int_eq(harness_as_user(H_ADMIN, admin_commands, h.socket, &probe), 0);
	result = line_len_from_end(1);
	intent = line_len_from_end(2) + 2; /* a seq may gain digits; the time is fixed */
	for (int i = 0; i < 40; i++) {
		ck_assert(stat(h.audit, &st) == 0);
		in_page = (size_t)st.st_size % 4096 + intent;
		if (in_page < 4096 && 4096 - in_page + 8 < result)
			break;
		ck_assert_int_eq(
		    harness_as_user(H_OUTSIDER, harness_submit_status, h.socket, &deny),
		    MBX_STATUS_DENIED);
	}
	next_seq = last_seq();
	next_seq++;
}

START_TEST(test_disk_fills_while_command_in_device)
{
	struct told *t = shared_told();
	struct admin_run run = {"mem0", 1, t};
	struct timespec pause = {0, 10 * 1000 * 1000};
	char out[4096];
	int status, ran, refused;
	pid_t pid;

	h.audit_yaml = "refused_burst: 0"; /* each denial a record: they place the intent */
	setup_fs(256);
	rel_start(&h, NULL, NULL);
	align_intent_to_page_end();
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(harness_as_user(H_ADMIN, admin_commands, h.socket, &run));
	for (int i = 0; i < 500 && !has_record("intent", "seq", next_seq); i++)
		nanosleep(&pause, NULL);
	ck_assert_msg(has_record("intent", "seq", next_seq), "no intent record");
	/* The command is in the device: every free block goes now. */
	fill_fs("filler");
	ck_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status));
	check_told(t, &ran, &refused);
	ck_assert_int_eq(ran, 1);
	ck_assert_int_eq(intents_without_result(), 0);
	t->n = 0;
	/*
	 * The log's own preallocated blocks still take a few commands; once no
	 * result room can be held, each is refused before it runs.
	 */
	run.device = "mem1";
	run.n = 200;
	ck_assert_int_eq(harness_as_user(H_ADMIN, admin_commands, h.socket, &run), 0);
	check_told(t, &ran, &refused);
	ck_assert_int_gt(refused, 0);
	ck_assert_int_eq(t->status[t->n - 1], MBX_STATUS_AUDIT_UNAVAILABLE);
	ck_assert_int_eq(harness_stop(&h), 0);
	ck_assert_int_eq(intents_without_result(), 0);
	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", h.audit, NULL) == 0,
	    "verify: %s", out);
	rel_figure("space.txt", "disk_filled_mid_command_result_written", "1 of 1");
	rel_figure("space.txt", "disk_full_audited_ran_with_result_then_refused",
		   "%d ran, %d refused", ran, refused);
}
END_TEST

/* As the outsider: refused requests, 64 in flight, until killed. */
static int flood_forever(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem1", .opcode = 0x4400};
	struct mbx_client *c;
	struct mbx_reply rep;
	int inflight = 0;
	uint32_t tag;

	(void)arg;
	if (mbx_open(socket, &c) < 0)
		return 100;
	for (;;) {
		while (inflight < 64 && mbx_send(c, &req, &tag) == 0)
			inflight++;
		if (mbx_receive(c, 10000, &rep, &tag) < 0)
			return 101;
		if (rep.result.status != MBX_STATUS_DENIED)
			return 102;
		mbx_reply_free(&rep);
		inflight--;
	}
}

/* Runs the admin's n commands on device while the outsider floods; the answers in *t. */
static void admin_under_flood(const char *device, int n, struct told *t)
{
	struct admin_run run = {device, n, t};
	int status;
	pid_t flood = fork();

	ck_assert(flood >= 0);
	if (flood == 0)
		_exit(harness_as_user(H_OUTSIDER, flood_forever, h.socket, NULL));
	ck_assert_int_eq(harness_as_user(H_ADMIN, admin_commands, h.socket, &run), 0);
	kill(flood, SIGKILL);
	ck_assert(waitpid(flood, &status, 0) == flood);
}

START_TEST(test_flood_without_coalescing_never_ran_without_result)
{
	struct told *t = shared_told();
	int ran, refused;
	char out[4096];

	/* Coalescing off: the flood's records do fill the disk. */
	h.audit_yaml = "refused_burst: 0";
	setup_fs(1024);
	rel_start(&h, NULL, NULL);
	admin_under_flood("mem1", 40, t);
	ck_assert_int_eq(harness_stop(&h), 0);
	check_told(t, &ran, &refused);
	ck_assert_int_eq(intents_without_result(), 0);
	ck_assert_msg(
	    harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", h.audit, NULL) == 0,
	    "verify: %s", out);
	rel_figure("space.txt", "flood_uncoalesced_admin_ran_with_result", "%d of %d", ran, t->n);
	rel_figure("space.txt", "flood_uncoalesced_admin_refused_before_running", "%d of %d",
		   refused, t->n);
}
END_TEST

START_TEST(test_flood_coalesced_cannot_fill_the_log)
{
	struct told *t = shared_told();
	int ran, refused;
	struct stat st;

	setup_fs(512);
	rel_start(&h, NULL, NULL);
	admin_under_flood("mem1", 40, t);
	ck_assert_int_eq(harness_stop(&h), 0);
	check_told(t, &ran, &refused);
	/* The flood coalesced: every one of the admin's commands ran and was recorded. */
	ck_assert_int_eq(ran, 40);
	ck_assert_int_eq(intents_without_result(), 0);
	ck_assert(stat(h.audit, &st) == 0);
	ck_assert_int_lt(st.st_size, 256 * 1024);
	rel_figure("space.txt", "flood_coalesced_admin_ran_with_result", "%d of 40", ran);
	rel_figure("space.txt", "flood_coalesced_log_bytes", "%lld", (long long)st.st_size);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-audit-space");
	TCase *tc = tcase_create("space");
	SRunner *sr;
	int failed;

	rel_figures_reset("space.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_disk_fills_while_command_in_device);
	tcase_add_test(tc, test_flood_without_coalescing_never_ran_without_result);
	tcase_add_test(tc, test_flood_coalesced_cannot_fill_the_log);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
