/*
 * Reliability: the audit log survives. A SIGKILL while an audited command is
 * in the device leaves its intent record on disk and a chain that verifies
 * (and a torn tail is cut at the next start); a one-byte edit anywhere is
 * found at that record; a full filesystem refuses audited classes with
 * "audit unavailable" while reads go on, and recovers; every record reaches
 * syslog with its stable id.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "audit-anchor.h"
#include "audit.h"
#include "rel.h"

/* mem0 holds Set Timestamp for 6 s (well within its timeout): the crash window. */
static const char devices_yaml[] =
    "  - name: mem0\n"
    "    transport: sim\n"
    "    timeout_ms: 20000\n"
    "    options: { model: memdev, fault_opcode: 0x0301, fault: hang, hang_ms: 6000 }\n"
    "  - name: mem1\n"
    "    transport: sim\n"
    "    options: { model: memdev, serial: 0x2222 }\n";

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "  require_reason: [data, security, fabric]\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n"
				  "  - name: admin-config\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [\"mem*\"]\n"
				  "    allow: [read, log, config]\n";

static struct harness h;
static bool made_devlog; /* this test bound /dev/log: remove it whatever happens */

static void setup(void)
{
	rel_users();
	harness_init(&h, devices_yaml, policy_yaml);
}

static void teardown(void)
{
	harness_cleanup(&h);
	if (made_devlog)
		unlink("/dev/log");
	made_devlog = false;
}

static const uint8_t timestamp[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};

/* As user: one command; its broker status (see harness_submit_status). */
static int status_as(const char *user, const char *device, uint16_t opcode, const void *payload,
		     size_t len)
{
	struct harness_call c = {device, opcode, payload, len, NULL};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

/* Runs mbxctl audit verify on files (as root, who can read them); output in out. */
static int verify(char *out, size_t outlen, const char *f1, const char *f2)
{
	return harness_mbxctl(&h, "root", out, outlen, "audit", "verify", f1, f2, NULL);
}

/* Counts lines of a file that contain every needle given (NULL-terminated). */
static int count_lines(const char *path, const char *n1, const char *n2)
{
	char *text = harness_read_file(path), *line, *save = NULL;
	int n = 0;

	if (!text)
		return -1;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strstr(line, n1) && (!n2 || strstr(line, n2)))
			n++;
	free(text);
	return n;
}

/* Waits until the audit log holds a line with both needles. */
static void wait_for_record(const char *n1, const char *n2)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 500; i++) {
		if (count_lines(h.audit, n1, n2) > 0)
			return;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("no audit record with %s %s", n1, n2 ? n2 : "");
}

START_TEST(test_sigkill_with_command_in_device_keeps_intent)
{
	char out[4096], seqneedle[64];
	uint64_t bad_seq, intent_seq = 0;
	char hash[AUDIT_HASH_HEX], err[256];
	int status, bad_line, fd;
	pid_t client;
	char *log, *p;

	rel_start(&h, NULL, NULL);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4000, NULL, 0), 0);
	/* The admin's Set Timestamp (config: audited) sits in the device... */
	client = fork();
	ck_assert(client >= 0);
	if (client == 0)
		_exit(status_as(H_ADMIN, "mem0", 0x0301, timestamp, sizeof(timestamp)));
	wait_for_record("\"kind\":\"intent\"", "\"opcode\":\"0x0301\"");
	/* ...when mbxd dies without a chance to write anything more. */
	ck_assert(kill(h.mbxd, SIGKILL) == 0);
	ck_assert(waitpid(h.mbxd, &status, 0) == h.mbxd);
	h.mbxd = 0;
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ck_assert(waitpid(client, &status, 0) == client);

	/* The intent is the last record: on disk, fsync'ed, never closed by a result. */
	log = harness_read_file(h.audit);
	ck_assert(log != NULL);
	p = strstr(log, "\"kind\":\"intent\"");
	ck_assert_msg(p && strstr(p, "\"opcode\":\"0x0301\""), "no intent on disk: %s", log);
	ck_assert_msg(!strstr(p, "\"kind\":\"result\""), "a result after the crash?: %s", p);
	for (p = log; (p = strstr(p, "{\"seq\":")); p++)
		intent_seq = strtoull(p + 7, NULL, 10);
	free(log);
	snprintf(seqneedle, sizeof(seqneedle), "\"intent_seq\":%llu",
		 (unsigned long long)intent_seq);
	ck_assert_int_eq(count_lines(h.audit, seqneedle, NULL), 0);
	ck_assert_int_eq(
	    audit_verify_file(h.audit, NULL, hash, &bad_seq, &bad_line, err, sizeof(err)), 0);
	ck_assert_msg(verify(out, sizeof(out), h.audit, NULL) == 0, "verify: %s", out);
	/* verify names the intent left open: its seq, device and opcode. */
	snprintf(seqneedle, sizeof(seqneedle), "open intent: seq %llu device mem0 opcode 0x0301",
		 (unsigned long long)intent_seq);
	ck_assert_msg(strstr(out, seqneedle), "verify does not report the open intent: %s", out);
	rel_figure("crash.txt", "intent_seq_on_disk_after_sigkill", "%llu",
		   (unsigned long long)intent_seq);

	/* A crash mid-write leaves a torn line: the next start cuts it and goes on. */
	fd = open(h.audit, O_WRONLY | O_APPEND);
	ck_assert(fd >= 0);
	ck_assert(write(fd, "{\"seq\":999,\"time\":\"20", 21) == 21);
	close(fd);
	rel_start(&h, NULL, NULL);
	ck_assert_int_eq(status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	log = harness_read_file(h.log);
	ck_assert_msg(strstr(log, "cut 21 bytes of a torn last record"), "no torn-line notice");
	free(log);
	ck_assert_msg(verify(out, sizeof(out), h.audit, NULL) == 0, "verify after restart: %s",
		      out);
	rel_figure("crash.txt", "verify_after_crash_and_restart", "%s", strtok(out, "\n"));
}
END_TEST

/* Offsets in line [start, end) a one-byte edit may hit without touching the seq value. */
static size_t edit_offset(const char *text, size_t start, size_t end, unsigned *seed)
{
	const char *after_seq = strstr(text + start, ",\"time\"");
	size_t lo = (size_t)(after_seq - text);

	ck_assert(after_seq && lo < end);
	return lo + (size_t)rand_r(seed) % (end - lo);
}

START_TEST(test_one_byte_edit_found_at_that_record)
{
	size_t starts[64], n = 0, len;
	char out[4096], copy[400], want[64];
	unsigned seed = 7;
	char *text;
	int trials = 0;

	rel_start(&h, NULL, NULL);
	/* Denials are always recorded (allowed reads are not, by default). */
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(status_as(H_OUTSIDER, "mem1", 0x4000, NULL, 0), MBX_STATUS_DENIED);
	ck_assert_int_eq(status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	text = harness_read_file(h.audit);
	len = strlen(text);
	for (size_t i = 0; i < len && n < 64; i++)
		if (i == 0 || text[i - 1] == '\n')
			starts[n++] = i;
	ck_assert_uint_ge(n, 13);
	snprintf(copy, sizeof(copy), "%s/edited.jsonl", h.dir);

	/* Every record but the last has a successor whose prev pins it. */
	for (size_t rec = 0; rec + 1 < n; rec++) {
		for (int k = 0; k < 3; k++, trials++) {
			size_t end = (rec + 1 < n ? starts[rec + 1] : len) - 1;
			size_t off = edit_offset(text, starts[rec], end, &seed);
			char saved = text[off];
			FILE *f;
			int rc;

			text[off] = saved == 'x' ? 'y' : 'x';
			f = fopen(copy, "w");
			ck_assert(f && fwrite(text, 1, len, f) == len);
			fclose(f);
			text[off] = saved;
			rc = verify(out, sizeof(out), copy, NULL);
			ck_assert_msg(rc == 1, "edit at byte %zu of record %zu not found: %s", off,
				      rec + 1, out);
			snprintf(want, sizeof(want), "edited.jsonl:%zu: seq %zu:", rec + 1,
				 rec + 1);
			ck_assert_msg(strstr(out, want), "edit in record %zu (byte %zu, '%c'): %s",
				      rec + 1, off, saved, out);
		}
	}
	rel_figure("crash.txt", "one_byte_edits_found_at_their_record", "%d of %d", trials, trials);
	free(text);
}
END_TEST

START_TEST(test_full_disk_refuses_audited_reads_go_on)
{
	char mnt[300], cmd[700], filler[340], out[4096], said[600];
	int refused = 0, before = 0, rc;

	snprintf(mnt, sizeof(mnt), "%s/auditfs", h.dir);
	ck_assert(mkdir(mnt, 0755) == 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=64k,mode=0755 tmpfs %s", mnt);
	ck_assert_msg(system(cmd) == 0, "cannot mount a small tmpfs (root and mount rights)");
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", mnt);
	harness_write_config(&h);
	rel_start(&h, NULL, NULL);
	ck_assert_int_eq(status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)), 0);

	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of=%s bs=1k count=256 2>/dev/null", filler);
	rc = system(cmd); /* fails when the disk is full: that is the point */
	(void)rc;
	/* The log's last page may still have room: a few records fit first. */
	while (before < 40 && status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)) == 0)
		before++;
	rc = harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "send", "mem1", "0x0301", "--hex",
			    "00005e2f6d8a7c18", NULL);
	ck_assert_msg(rc == 5 && strstr(out, "audit") && strstr(out, "unavailable"),
		      "audited command on a full disk: exit %d: %s", rc, out);
	out[strcspn(out, "\n")] = '\0';
	memcpy(said, out, strlen(out) < sizeof(said) ? strlen(out) + 1 : sizeof(said));
	said[sizeof(said) - 1] = '\0';
	for (int i = 0; i < 10; i++)
		refused += status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)) ==
			   MBX_STATUS_AUDIT_UNAVAILABLE;
	ck_assert_int_eq(refused, 10);
	/* Reads never wait for the log. */
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4000, NULL, 0), 0);

	ck_assert(unlink(filler) == 0);
	ck_assert_int_eq(status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	/* No torn or half record was left by the failed writes. */
	ck_assert_msg(verify(out, sizeof(out), h.audit, NULL) == 0, "verify: %s", out);
	rel_figure("crash.txt", "full_disk_audited_accepted_before_refusal", "%d", before);
	rel_figure("crash.txt", "full_disk_audited_refused", "%d of %d", refused + 1, 11);
	rel_figure("crash.txt", "full_disk_reads_served", "10 of 10");
	rel_figure("crash.txt", "full_disk_message", "%s", said);
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	ck_assert(system(cmd) == 0);
}
END_TEST

/* A datagram socket standing in for syslog's /dev/log. */
static int devlog_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int big = 4 << 20;

	ck_assert(fd >= 0 && strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "bind %s: %s", path,
		      strerror(errno));
	chmod(path, 0666);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

START_TEST(test_every_record_mirrored_to_syslog)
{
	char sock[340], msg[8192], *text, *line, *save = NULL;
	bool own_devlog = access("/dev/log", F_OK) != 0;
	int fd, mirrored = 0, lines = 0, ckpts = 0;
	struct audit_checkpoint ck = {0}, last_ck = {0};
	char hash[AUDIT_HASH_HEX];
	ssize_t n;

	/* With no syslog daemon, the test's socket is /dev/log; else mbxd gets a private one. */
	snprintf(sock, sizeof(sock), "%s", own_devlog ? "/dev/log" : "");
	if (!own_devlog)
		snprintf(sock, sizeof(sock), "%s/devlog.sock", h.dir);
	fd = devlog_socket(sock);
	made_devlog = own_devlog;
	rel_start(&h, NULL, own_devlog ? NULL : sock);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4000, NULL, 0), 0);
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem1", 0x4000, NULL, 0), MBX_STATUS_DENIED);
	ck_assert_int_eq(status_as(H_ADMIN, "mem1", 0x0301, timestamp, sizeof(timestamp)), 0);
	ck_assert_int_eq(harness_stop(&h), 0);

	text = harness_read_file(h.audit);
	while ((n = recv(fd, msg, sizeof(msg) - 1, 0)) > 0) {
		char *json;

		msg[n] = '\0';
		/* Checkpoints go to syslog too: the anchor a root on this host cannot rewrite. */
		if (strstr(msg, AUDIT_CHECKPOINT_SYSLOG_ID " {") &&
		    audit_checkpoint_parse(msg, (size_t)n, &ck) == 0) {
			/* This daemon's: the empty log's at start, or one naming a line of ours. */
			bool ours = ck.seq == 0;

			for (char *l = text; !ours && l && *l; l = strchr(l, '\n') + 1) {
				ck_assert_int_eq(audit_sha256_hex(l, strcspn(l, "\n"), hash), 0);
				ours = !strcmp(hash, ck.hash);
			}
			ckpts += ours;
			if (ours)
				last_ck = ck;
			continue;
		}
		json = strstr(msg, "mbxd-audit: {");
		if (!json || !strstr(text, json + 12))
			continue; /* not one of this daemon's records */
		ck_assert_msg(strncmp(msg, "<86>", 4) == 0, "not authpriv.info: %.40s", msg);
		mirrored++;
	}
	close(fd);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		lines++;
	free(text);
	ck_assert_int_ge(lines,
			 3); /* a denial, an intent and its result (and the read, if recorded) */
	ck_assert_int_eq(mirrored, lines);
	rel_figure("crash.txt", "records_mirrored_to_syslog", "%d of %d", mirrored, lines);
	/* At least the start and the stop; the last names the last record. */
	ck_assert_int_ge(ckpts, 2);
	ck_assert_str_eq(last_ck.why, "stop");
	ck_assert_uint_eq(last_ck.seq, (uint64_t)lines);
	rel_figure("crash.txt", "checkpoints_mirrored_to_syslog", "%d, the last (stop) at seq %d",
		   ckpts, lines);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-audit");
	TCase *tc = tcase_create("audit");
	SRunner *sr;
	int failed;

	bool had_devlog = access("/dev/log", F_OK) == 0;

	rel_figures_reset("crash.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sigkill_with_command_in_device_keeps_intent);
	tcase_add_test(tc, test_one_byte_edit_found_at_that_record);
	tcase_add_test(tc, test_full_disk_refuses_audited_reads_go_on);
	tcase_add_test(tc, test_every_record_mirrored_to_syslog);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* A test that failed early skipped its teardown: never leave a /dev/log behind. */
	if (!had_devlog)
		unlink("/dev/log");
	return failed ? 1 : 0;
}
