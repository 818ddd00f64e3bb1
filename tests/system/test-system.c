/*
 * System tests: a real mbxd on a temporary socket, driven by libmbx and by
 * mbxctl running as different real users.
 */
#include <errno.h>
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

#include <dirent.h>

#include <check.h>
#include <mbx/mbx.h>

#include "cci.h"
#include "harness.h"

static const char devices_yaml[] =
    "  - name: mem0\n"
    "    transport: sim\n"
    "    options: { model: memdev, serial: 0x1111, sanitize_ms: 1500 }\n"
    "  - name: switch0\n"
    "    transport: sim\n"
    "    options: { model: switch, ports: 4, tunnel_port: 1 }\n"
    "  - name: mem2\n"
    "    transport: sim\n"
    "    options: { model: memdev, serial: 0x3333, sanitize_ms: 30000 }\n"
    "  - name: mem1\n"
    "    transport: sim\n"
    "    timeout_ms: 300\n"
    "    options: { model: memdev, serial: 0x2222, fault_opcode: 0x4200, fault: hang, "
    "hang_ms: 3000 }\n";

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "  require_reason: [data, security, fabric]\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n"
				  "  - name: admin-data\n"
				  "    who: { users: [" H_ADMIN "] }\n"
				  "    devices: [\"mem*\"]\n"
				  "    allow: [read, log, config, data]\n";

static struct harness h;

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	harness_start(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

static int status_as(const char *user, const char *device, uint16_t opcode, const char *reason)
{
	struct harness_call c = {.device = device, .opcode = opcode, .reason = reason};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

START_TEST(test_allowed_for_one_user_denied_for_another)
{
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL), 0);
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x4000, NULL), 1); /* denied */
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4400, "x"), 1);  /* data: not operators' */
	ck_assert_int_eq(status_as(H_OPERATOR, "nosuch", 0x4000, NULL), 6);
}
END_TEST

START_TEST(test_mbxctl_as_two_users)
{
	char out[8192];
	int rc;

	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL);
	ck_assert_msg(rc == 0, "operator identify: exit %d: %s", rc, out);
	ck_assert_msg(strstr(out, "0x0000000000001111"), "serial not shown: %s", out);
	rc = harness_mbxctl(&h, H_OUTSIDER, out, sizeof(out), "identify", "mem0", NULL);
	ck_assert_msg(rc == 3, "outsider identify: exit %d (want 3, denied): %s", rc, out);
	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "send", "mem0", "0x4400", "--reason",
			    "ticket 1", NULL);
	ck_assert_msg(rc == 3, "operator sanitize: exit %d (want 3): %s", rc, out);
	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "--json", "health", "mem0", NULL);
	ck_assert_msg(rc == 0, "operator health --json: exit %d: %s", rc, out);
	ck_assert_msg(out[0] == '{', "not JSON: %s", out);
}
END_TEST

/* A raw connection that has said HELLO. */
static int raw_hello(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct mbx_hello_req hello = {.version_min = 1, .version_max = 1};
	struct mbx_wbuf w;
	uint8_t buf[MBX_HEADER_SIZE];
	struct mbx_header hdr;
	uint8_t body[256];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	mbx_wbuf_init(&w);
	ck_assert(mbx_encode_hello_req(&w, 1, &hello) == 0);
	ck_assert(write(fd, w.data, w.len) == (ssize_t)w.len);
	mbx_wbuf_free(&w);
	ck_assert(recv(fd, buf, sizeof(buf), MSG_WAITALL) == sizeof(buf));
	ck_assert(mbx_decode_header(buf, &hdr) == 0);
	ck_assert_int_eq(hdr.type, MBX_MSG_HELLO);
	ck_assert(hdr.length < sizeof(body));
	ck_assert(recv(fd, body, hdr.length, MSG_WAITALL) == (ssize_t)hdr.length);
	return fd;
}

/* Reads until EOF; true if an ERROR frame came first. */
static bool closed_with_error(int fd)
{
	uint8_t buf[MBX_HEADER_SIZE];
	struct mbx_header hdr;
	uint8_t rest[1024];
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	if (n != sizeof(buf) || mbx_decode_header(buf, &hdr) < 0 || hdr.type != MBX_MSG_ERROR)
		return false;
	while ((n = read(fd, rest, sizeof(rest))) > 0)
		;
	return n == 0;
}

static void send_bytes(int fd, const void *p, size_t n)
{
	ck_assert(write(fd, p, n) == (ssize_t)n);
}

START_TEST(test_malformed_frames_close_only_their_sender)
{
	/* Unknown type 99. */
	static const uint8_t bad_type[] = {0, 0, 0, 0, 99, 0, 0, 0, 1, 0, 0, 0};
	/* A SUBMIT whose body says its device name is 200 bytes long, in a 6-byte body. */
	static const uint8_t lie[] = {6, 0, 0, 0,   3, 0,   0,   0,   2,
				      0, 0, 0, 200, 0, 'm', 'e', 'm', '0'};
	/* A header claiming a 64 MiB body. */
	static const uint8_t huge[] = {0, 0, 0, 4, 3, 0, 0, 0, 3, 0, 0, 0};
	struct mbx_client *good;
	struct mbx_request req = {.device = "mem0", .opcode = 0x4000};
	struct mbx_reply rep;
	int fd;

	ck_assert_int_eq(mbx_open(h.socket, &good), 0);
	fd = raw_hello(h.socket);
	send_bytes(fd, bad_type, sizeof(bad_type));
	ck_assert_msg(closed_with_error(fd), "unknown type did not close with ERROR");
	close(fd);
	fd = raw_hello(h.socket);
	send_bytes(fd, lie, sizeof(lie));
	ck_assert_msg(closed_with_error(fd), "length lie did not close with ERROR");
	close(fd);
	fd = raw_hello(h.socket);
	send_bytes(fd, huge, sizeof(huge));
	ck_assert_msg(closed_with_error(fd), "oversized frame did not close with ERROR");
	close(fd);

	/* The well-behaved client (root: no rule, so denied), connected all along, is still served.
	 */
	ck_assert_int_eq(mbx_submit(good, &req, &rep), 0);
	ck_assert_int_eq(rep.result.status, MBX_STATUS_DENIED);
	ck_assert_msg(rep.result.message[0] != '\0', "a denial without a message");
	mbx_reply_free(&rep);
	mbx_close(good);
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

static void wait_for_log(const char *needle);

/* Half a frame and silence: the client is cut off at the deadline; a silent idle one is not. */
START_TEST(test_unfinished_frame_times_out)
{
	static const uint8_t half[] = {20, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 4, 0, 'm'};
	uint8_t hdr[MBX_HEADER_SIZE];
	struct timespec t0, t1;
	struct mbx_wbuf w;
	int fd, idle;

	harness_stop(&h);
	h.limits_yaml = "{ max_inflight: 64, max_queue_per_user: 32, frame_timeout_ms: 300 }";
	harness_write_config(&h);
	harness_start(&h);
	idle = raw_hello(h.socket);
	fd = raw_hello(h.socket);
	send_bytes(fd, half, sizeof(half));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_msg(closed_with_error(fd), "cut off without an ERROR saying why");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 5, "cut off only after %ld s",
		      (long)(t1.tv_sec - t0.tv_sec));
	wait_for_log("a frame was left unfinished for 300 ms");
	close(fd);
	/* The idle client, silent between frames all along, is still served. */
	mbx_wbuf_init(&w);
	ck_assert(mbx_encode_devices_req(&w, 5) == 0);
	send_bytes(idle, w.data, w.len);
	mbx_wbuf_free(&w);
	ck_assert(recv(idle, hdr, sizeof(hdr), MSG_WAITALL) == sizeof(hdr));
	ck_assert_int_eq(hdr[4], MBX_MSG_DEVICES);
	close(idle);
}
END_TEST

static void wait_for_log(const char *needle)
{
	harness_wait_file(h.log, needle);
}

START_TEST(test_sighup_keeps_old_policy_when_new_one_is_broken)
{
	char broken[sizeof(policy_yaml) + 256];

	snprintf(broken, sizeof(broken), "%s    deny: [reed]\n", policy_yaml);
	harness_write_policy(&h, broken);
	harness_signal(&h, SIGHUP);
	wait_for_log("keeping the current policy");
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL), 0);
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x4000, NULL), 1);

	/* A valid new policy that lets the outsider read is taken. */
	snprintf(broken, sizeof(broken),
		 "%s  - name: outsider-read\n    who: { users: [" H_OUTSIDER
		 "] }\n    devices: [mem0]\n    allow: [read]\n",
		 policy_yaml);
	harness_write_policy(&h, broken);
	harness_signal(&h, SIGHUP);
	wait_for_log("policy reloaded");
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x4000, NULL), 0);
}
END_TEST

START_TEST(test_users_dir_change_reloads_without_sighup)
{
	char policy[sizeof(policy_yaml) + 128], dir[300], file[360];
	FILE *f;

	snprintf(policy, sizeof(policy), "users_dir: users.d\nuser_files_max_class: read\n%s",
		 policy_yaml);
	snprintf(dir, sizeof(dir), "%s/users.d", h.dir);
	ck_assert(mkdir(dir, 0755) == 0);
	harness_write_policy(&h, policy);
	harness_signal(&h, SIGHUP);
	wait_for_log("policy reloaded");
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x4000, NULL), 1);

	/* The reload started watching users.d: a new user file is picked up by itself. */
	snprintf(file, sizeof(file), "%s/" H_OUTSIDER ".yaml", dir);
	f = fopen(file, "w");
	ck_assert(f != NULL);
	fputs("version: 1\nrules:\n  - name: nobody-reads-mem0\n    devices: [mem0]\n"
	      "    allow: [read]\n",
	      f);
	fclose(f);
	chmod(file, 0644);
	wait_for_log("changed: reloading the policy");
	for (int i = 0; i < 100 && status_as(H_OUTSIDER, "mem0", 0x4000, NULL) != 0; i++) {
		struct timespec pause = {0, 50 * 1000 * 1000};

		nanosleep(&pause, NULL);
	}
	ck_assert_int_eq(status_as(H_OUTSIDER, "mem0", 0x4000, NULL), 0);
}
END_TEST

/* Explains Set Feature (0502h) for the Feature uuid; exits with the class it got. */
static int explain_set_feature(const char *socket, void *arg)
{
	uint8_t payload[32 + 4] = {0};
	struct mbx_request req = {
	    .device = "mem0", .opcode = 0x0502, .payload = payload, .payload_len = sizeof(payload)};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int cls;

	memcpy(payload, arg, 16);
	payload[22] = 1; /* Set Feature version */
	if (mbx_open(socket, &cl) < 0 || mbx_explain(cl, &req, &rep) < 0)
		return 100;
	cls = rep.result.cls;
	mbx_reply_free(&rep);
	mbx_close(cl);
	return cls;
}

/* Set Feature is raised by what the device says that Feature does, never lowered below data. */
START_TEST(test_set_feature_class_follows_the_feature)
{
	static uint8_t reset_only[16] = {0x4b, 0x9c, 0x7e, 0x5a, 0x2f, 0x31, 0x4d, 0x0e,
					 0x9a, 0x61, 0x5c, 0x3b, 0x8e, 0x27, 0xd1, 0x40};
	static uint8_t data_now[16] = {0x7d, 0x2e, 0x91, 0xc4, 0x83, 0xb5, 0x4f, 0x6a,
				       0xb0, 0xd2, 0x1e, 0x6f, 0x4a, 0x9c, 0x3b, 0x85};
	static uint8_t unknown[16] = {0x01, 0x02, 0x03};

	ck_assert_int_eq(harness_as_user(H_ADMIN, explain_set_feature, h.socket, reset_only),
			 MBX_CLASS_DATA);
	ck_assert_int_eq(harness_as_user(H_ADMIN, explain_set_feature, h.socket, data_now),
			 MBX_CLASS_DATA);
	ck_assert_int_eq(harness_as_user(H_ADMIN, explain_set_feature, h.socket, unknown),
			 MBX_CLASS_VENDOR);
}
END_TEST

#define LOAD_REQUESTS 3000
#define LOAD_WINDOW   32

/* As the operator: pipelined reads; every answer must come from a whole policy. */
static int pipelined_reads(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4000};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int sent = 0, got = 0;
	uint32_t tag;

	char why[256];

	(void)arg;
	if (mbx_open_diag(socket, &cl, why, sizeof(why)) < 0) {
		fprintf(stderr, "pipelined_reads: %s\n", why);
		return 100;
	}
	while (got < LOAD_REQUESTS) {
		while (sent < LOAD_REQUESTS && sent - got < LOAD_WINDOW) {
			if (mbx_send(cl, &req, &tag) < 0)
				return 101;
			sent++;
		}
		if (mbx_receive(cl, 10000, &rep, &tag) < 0)
			return 102;
		got++;
		if (rep.result.status != MBX_STATUS_OK ||
		    (strcmp(rep.result.rule, "operators-read") != 0 &&
		     strcmp(rep.result.rule, "operators-read-b") != 0))
			return 103; /* a decision from no policy, or half of one */
		mbx_reply_free(&rep);
	}
	mbx_close(cl);
	return 0;
}

/* Requests in flight while the policy is swapped, broken and swapped back. */
START_TEST(test_reload_under_load_is_atomic)
{
	char b_policy[sizeof(policy_yaml) + 16], broken[sizeof(policy_yaml) + 64];
	char *p;
	pid_t flipper;

	snprintf(b_policy, sizeof(b_policy), "%s", policy_yaml);
	p = strstr(b_policy, "operators-read");
	ck_assert(p != NULL);
	memmove(p + 16, p + 14, strlen(p + 14) + 1);
	memcpy(p + 14, "-b", 2);
	snprintf(broken, sizeof(broken), "%s    deny: [nonsense]\n", policy_yaml);
	flipper = fork();
	ck_assert(flipper >= 0);
	if (flipper == 0) {
		for (int i = 0;; i++) {
			struct timespec pause = {0, 5 * 1000 * 1000};

			harness_write_policy(&h, i % 3 == 0   ? b_policy
						 : i % 3 == 1 ? broken
							      : policy_yaml);
			kill(h.mbxd, SIGHUP);
			nanosleep(&pause, NULL);
		}
	}
	ck_assert_int_eq(harness_as_user(H_OPERATOR, pipelined_reads, h.socket, NULL), 0);
	kill(flipper, SIGKILL);
	waitpid(flipper, NULL, 0);
	wait_for_log("policy reloaded");
	wait_for_log("keeping the current policy");
}
END_TEST

/* As the admin: sanitize with a reason, then follow its events to completion. */
static int sanitize_and_wait(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4400, .reason = "RITM-42 wipe"};
	struct mbx_client *cl;
	struct mbx_reply rep;
	struct mbx_event ev;
	uint32_t tag;
	int rc, progress = 0;

	(void)arg;
	if (mbx_open(socket, &cl) < 0)
		return 100;
	req.reason = NULL;
	if (mbx_submit(cl, &req, &rep) < 0 || rep.result.status != MBX_STATUS_DENIED ||
	    !strstr(rep.result.message, "reason"))
		return 102; /* data class needs a reason */
	mbx_reply_free(&rep);
	req.reason = "RITM-42 wipe";
	if (mbx_submit(cl, &req, &rep) < 0 || rep.result.status != MBX_STATUS_OK ||
	    rep.result.cxl_rc != 1 || rep.result.audit_seq == 0)
		return 103; /* background command started, audited */
	mbx_reply_free(&rep);
	for (;;) {
		rc = mbx_next_event(cl, 10000, &ev, &tag);
		if (rc < 0)
			return 104;
		if (ev.kind == MBX_EVENT_PROGRESS)
			progress++;
		if (ev.kind == MBX_EVENT_COMPLETE)
			break;
	}
	mbx_close(cl);
	if (ev.cxl_rc != 0 || ev.opcode != 0x4400)
		return 105;
	return progress > 0 ? 0 : 106;
}

START_TEST(test_sanitize_runs_in_background_and_is_audited)
{
	char *audit;
	const char *intent, *done;

	ck_assert_int_eq(harness_as_user(H_ADMIN, sanitize_and_wait, h.socket, NULL), 0);
	audit = harness_read_file(h.audit);
	ck_assert(audit != NULL);
	intent = strstr(audit, "\"kind\":\"intent\"");
	done = strstr(audit, "\"kind\":\"background\"");
	ck_assert_msg(intent && done && intent < done, "audit lacks intent then background: %s",
		      audit);
	ck_assert_msg(strstr(audit, "RITM-42 wipe"), "reason not audited");
	free(audit);
}
END_TEST

/* As the admin: start a long sanitize on mem2 and return while it runs. */
static int start_long_sanitize(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem2", .opcode = 0x4400, .reason = "wipe"};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int rc;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 100;
	rc = rep.result.status == MBX_STATUS_OK && rep.result.cxl_rc == 1 ? 0 : 120;
	mbx_reply_free(&rep);
	mbx_close(cl); /* leaving does not cancel the operation */
	return rc;
}

START_TEST(test_request_abort_needs_the_running_operations_class)
{
	char *audit;

	ck_assert_int_eq(harness_as_user(H_ADMIN, start_long_sanitize, h.socket, NULL), 0);
	/* The operator may read, not run Sanitize: so may not abort it either. */
	ck_assert_int_eq(status_as(H_OPERATOR, "mem2", 0x0005, NULL), MBX_STATUS_DENIED);
	/* The admin may run it (with a reason), so may abort it. */
	ck_assert_int_eq(status_as(H_ADMIN, "mem2", 0x0005, NULL), MBX_STATUS_DENIED);
	ck_assert_int_eq(status_as(H_ADMIN, "mem2", 0x0005, "stop: wrong device"), 0);
	/* The follower sees the abort and closes the audit record of the requester who left. */
	for (int i = 0; i < 100; i++) {
		struct timespec pause = {0, 50 * 1000 * 1000};

		audit = harness_read_file(h.audit);
		if (audit && strstr(audit, "\"background\":\"aborted\""))
			break;
		free(audit);
		audit = NULL;
		nanosleep(&pause, NULL);
	}
	ck_assert_msg(audit != NULL, "no background record with \"aborted\" in the audit log");
	free(audit);
}
END_TEST

/* Tunnels Identify (0001h) through switch0 port 1 and checks the inner answer. */
static int tunnel_identify(const char *socket, void *arg)
{
	uint8_t inner[CCI_HEADER_SIZE], payload[64];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST, .tag = 7, .opcode = 0x0001};
	struct cci_tunnel_req t = {.target = 1, .msg = inner, .msg_len = sizeof(inner)};
	struct mbx_request req = {.device = "switch0", .opcode = 0x5300, .payload = payload};
	struct cci_tunnel_rep tr;
	struct cci_msg resp;
	struct mbx_client *cl;
	struct mbx_reply rep;
	int n;

	(void)arg;
	if (cci_encode(inner, sizeof(inner), &m) < 0)
		return 110;
	n = cci_tunnel_req_encode(payload, sizeof(payload), &t);
	req.payload_len = (size_t)n;
	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 100;
	if (rep.result.status != MBX_STATUS_OK || rep.result.cxl_rc != 0)
		return 111;
	if (rep.result.n_inner < 1 || rep.result.inner[0].opcode != 0x0001)
		return 112;
	if (cci_tunnel_rep_decode(rep.result.payload, rep.result.payload_len, &tr) < 0 ||
	    cci_decode(tr.msg, tr.msg_len, &resp) < 0)
		return 113;
	if (resp.category != CCI_CATEGORY_RESPONSE || resp.rc != 0 || resp.payload_len == 0)
		return 114;
	mbx_reply_free(&rep);
	mbx_close(cl);
	return 0;
}

START_TEST(test_tunnelled_identify_through_switch)
{
	ck_assert_int_eq(harness_as_user(H_OPERATOR, tunnel_identify, h.socket, NULL), 0);
}
END_TEST

/* A hung device answers its requester with a timeout; other devices go on. */
START_TEST(test_hung_device_times_out_others_go_on)
{
	struct timespec t0, t1;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4200, NULL), MBX_STATUS_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(secs < 2.9, "timeout answer took %.2f s; the hang lasts 3 s", secs);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4000, NULL), MBX_STATUS_DEVICE_ERROR);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL), 0);
	/* When the hung command returns, the device is probed again and back in service. */
	wait_for_log("device mem1: back in service; CEL read again");
	ck_assert_int_eq(status_as(H_OPERATOR, "mem1", 0x4000, NULL), 0);
}
END_TEST

/* The audit log on a full filesystem: audited commands refused, reads go on, then recovery. */
static int set_timestamp_as(const char *user)
{
	static const uint8_t now[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};
	struct harness_call c = {
	    .device = "mem0", .opcode = 0x0301, .payload = now, .payload_len = sizeof(now)};

	return harness_as_user(user, harness_submit_status, h.socket, &c);
}

START_TEST(test_audit_full_disk_fails_closed)
{
	char mnt[300], cmd[600], filler[320];
	int i, rc = 0;

	harness_stop(&h);
	snprintf(mnt, sizeof(mnt), "%s/auditfs", h.dir);
	ck_assert(mkdir(mnt, 0755) == 0);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=64k tmpfs %s", mnt);
	ck_assert_msg(system(cmd) == 0, "cannot mount a small tmpfs (need root and mount rights)");
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", mnt);
	harness_write_config(&h);
	harness_start(&h);
	ck_assert_int_eq(set_timestamp_as(H_ADMIN), 0); /* Set Timestamp, config */

	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of=%s bs=1k count=256 2>/dev/null", filler);
	system(cmd); /* fails when the disk is full: that is the point */
	/* The log's last page may still have room: a few records fit before the refusals. */
	for (i = 0; i < 20 && (rc = set_timestamp_as(H_ADMIN)) == 0; i++)
		;
	ck_assert_int_eq(rc, MBX_STATUS_AUDIT_UNAVAILABLE);
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL), 0);

	ck_assert(unlink(filler) == 0);
	ck_assert_int_eq(set_timestamp_as(H_ADMIN), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	ck_assert(system(cmd) == 0);
}
END_TEST

/* As the operator: two reads queued on the slow device; reports both statuses. */
static int two_slow_reads(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "slow0", .opcode = 0x4000};
	struct mbx_client *cl;
	struct mbx_reply rep;
	uint32_t tag, first;
	int st[2] = {-1, -1};

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_send(cl, &req, &first) < 0 ||
	    mbx_send(cl, &req, &tag) < 0)
		return 100;
	for (int i = 0; i < 2; i++) {
		if (mbx_receive(cl, 10000, &rep, &tag) < 0)
			return 101;
		st[tag == first ? 0 : 1] = rep.result.status;
		mbx_reply_free(&rep);
	}
	mbx_close(cl);
	/* The one in the device finishes; the one still queued is cancelled. */
	return st[0] == MBX_STATUS_OK && st[1] == MBX_STATUS_CANCELLED ? 0 : 110;
}

/* SIGTERM while a request is in the device: it completes, queued ones are cancelled, exit 0. */
START_TEST(test_sigterm_finishes_in_flight_and_cancels_queued)
{
	pid_t client, stopper;
	int status;

	/* Only this test needs a slow device: every command takes 300 ms, opening too. */
	harness_stop(&h);
	h.devices_yaml = "  - name: slow0\n    transport: sim\n"
			 "    options: { model: memdev, latency_us: 300000 }\n";
	harness_write_config(&h);
	harness_start(&h);
	client = fork();
	ck_assert(client >= 0);
	if (client == 0)
		_exit(harness_as_user(H_OPERATOR, two_slow_reads, h.socket, NULL));
	stopper = fork();
	if (stopper == 0) {
		struct timespec pause = {0,
					 150 * 1000 * 1000}; /* the first read is in the device */

		nanosleep(&pause, NULL);
		kill(h.mbxd, SIGTERM);
		_exit(0);
	}
	waitpid(stopper, NULL, 0);
	ck_assert(waitpid(client, &status, 0) == client);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

/* As the operator: 30 pipelined tunnelled Get Logs; exits with how many were busy. */
static int flood_tunnels(const char *socket, void *arg)
{
	uint8_t inner[CCI_HEADER_SIZE + 24] = {0}, payload[64];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST, .opcode = 0x0401, .payload_len = 24};
	struct cci_tunnel_req t = {.target = 1, .msg = inner, .msg_len = sizeof(inner)};
	struct mbx_request req = {.device = "switch0", .opcode = 0x5300, .payload = payload};
	uint8_t log_in[24] = {0x0d, 0xa9, 0xc0, 0xb5, 0xbf, 0x41, 0x4b, 0x78,
			      0x8f, 0x79, 0x96, 0xb1, 0x62, 0x3b, 0x3f, 0x17,
			      0,    0,    0,    0,    16,   0,    0,    0};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int busy = 0, named = 0;
	uint32_t tag;

	(void)arg;
	m.payload = log_in;
	if (cci_encode(inner, sizeof(inner), &m) < 0)
		return 120;
	req.payload_len = (size_t)cci_tunnel_req_encode(payload, sizeof(payload), &t);
	if (mbx_open(socket, &cl) < 0)
		return 121;
	for (int i = 0; i < 30; i++)
		if (mbx_send(cl, &req, &tag) < 0)
			return 122;
	for (int i = 0; i < 30; i++) {
		if (mbx_receive(cl, 20000, &rep, &tag) < 0)
			return 123;
		if (rep.result.status == MBX_STATUS_BUSY) {
			busy++;
			named += strstr(rep.result.message, "queued requests") != NULL &&
				 rep.result.retry_after_ms > 0;
		}
		mbx_reply_free(&rep);
	}
	mbx_close(cl);
	return busy > 0 && named == busy ? busy : 0;
}

/* The global bound on queued bytes answers busy, with a retry hint, before the per-user one. */
START_TEST(test_queued_bytes_bound)
{
	int busy;

	harness_stop(&h);
	h.devices_yaml = "  - name: switch0\n    transport: sim\n"
			 "    options: { model: switch, latency_us: 400000 }\n";
	h.limits_yaml = "{ max_inflight: 64, max_queue_per_user: 32, max_queued_kib: 1 }";
	harness_write_config(&h);
	harness_start(&h);
	/* 1 KiB holds 25 requests of 40 bytes: of 30 at once, some must be turned away. */
	busy = harness_as_user(H_OPERATOR, flood_tunnels, h.socket, NULL);
	ck_assert_msg(busy >= 1 && busy <= 10, "busy answers: %d", busy);
}
END_TEST

/* As the admin: three audited Set Timestamps queued on the slow device, then leave at once. */
static int queue_and_leave(const char *socket, void *arg)
{
	static const uint8_t now[8] = {0, 0, 0x5e, 0x2f, 0x6d, 0x8a, 0x7c, 0x18};
	struct mbx_request req = {
	    .device = "memslow0", .opcode = 0x0301, .payload = now, .payload_len = sizeof(now)};
	struct mbx_client *cl;
	uint32_t tag;

	(void)arg;
	if (mbx_open(socket, &cl) < 0)
		return 100;
	for (int i = 0; i < 3; i++)
		if (mbx_send(cl, &req, &tag) < 0)
			return 101;
	/* Wait until the first is surely in the device, then vanish with two still queued. */
	usleep(250 * 1000);
	mbx_close(cl);
	return 0;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	ck_assert(d != NULL);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Descriptors of pid once they stop changing: the harness's start-up probe
 * connection may still be open in mbxd for a moment after harness_start.
 */
static int count_fds_settled(pid_t pid)
{
	struct timespec pause = {0, 50 * 1000 * 1000};
	int n = count_fds(pid), same = 0;

	for (int i = 0; i < 40 && same < 3; i++) {
		int m;

		nanosleep(&pause, NULL);
		m = count_fds(pid);
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

/* A client that leaves: the command in the device completes and is audited, queued ones dropped. */
START_TEST(test_client_leaving_drops_queued_and_audits_in_flight)
{
	struct timespec pause = {0, 50 * 1000 * 1000};
	char *audit = NULL;
	int fds;

	harness_stop(&h);
	h.devices_yaml = "  - name: memslow0\n    transport: sim\n"
			 "    options: { model: memdev, latency_us: 700000 }\n";
	harness_write_config(&h);
	harness_start(&h);
	fds = count_fds_settled(h.mbxd);
	ck_assert_int_eq(harness_as_user(H_ADMIN, queue_and_leave, h.socket, NULL), 0);
	for (int i = 0; i < 100; i++) {
		free(audit);
		audit = harness_read_file(h.audit);
		if (audit && harness_count(audit, "\"kind\":\"result\"") == 3)
			break;
		nanosleep(&pause, NULL);
	}
	ck_assert(audit != NULL);
	/* The log is printed on failure: which of the three ran is timing the test cannot see. */
	ck_assert_msg(harness_count(audit, "\"kind\":\"intent\"") == 3, "%s", audit);
	ck_assert_msg(harness_count(audit, "\"kind\":\"result\"") == 3, "%s", audit);
	/* 3 intents, 1 ran */
	ck_assert_msg(harness_count(audit, "\"status\":\"ok\",\"rule\"") == 4, "%s", audit);
	ck_assert_msg(harness_count(audit, "\"status\":\"cancelled\"") == 2, "%s", audit);
	free(audit);
	ck_assert_int_eq(count_fds_settled(h.mbxd), fds);
	ck_assert_int_eq(harness_stop(&h), 0); /* under ASan, a leak fails this exit status */
}
END_TEST

START_TEST(test_sigterm_exits_cleanly)
{
	ck_assert_int_eq(status_as(H_OPERATOR, "mem0", 0x4000, NULL), 0);
	ck_assert_int_eq(harness_stop(&h), 0);
}
END_TEST

/*
 * mbxctl firmware-update on mem0 (4 KiB mailbox) with a 10000-byte image,
 * three parts: the operator (read only) is refused at the first part, before
 * the device; the admin (data class, a reason) writes slot 2 with every part
 * audited; --activate online then makes slot 2 the running one.
 */
START_TEST(test_firmware_update_in_parts_audited_and_activated)
{
	static const char rev[] = "SYSTEST-FW-9.9.9"; /* the image's first 16 bytes */
	static uint8_t image[10000];
	char path[400], out[16384], want[40], *audit, *line;
	unsigned intents = 0;
	FILE *f;
	int rc;

	memset(image, 0xa5, sizeof(image));
	memcpy(image, rev, 16);
	snprintf(path, sizeof(path), "%s/fw.bin", h.dir);
	f = fopen(path, "wb");
	ck_assert(f && fwrite(image, 1, sizeof(image), f) == sizeof(image) && fclose(f) == 0);
	chmod(path, 0644);

	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "firmware-update", "mem0", path,
			    "--reason", "CHG-7 firmware", "--wait", NULL);
	ck_assert_msg(rc == 3, "operator firmware-update: exit %d (want 3, denied): %s", rc, out);
	ck_assert_msg(strstr(out, "part 1 of 3 (Initiate"), "refused part not named: %s", out);
	audit = harness_read_file(h.audit);
	ck_assert_msg(!audit || !strstr(audit, "\"kind\":\"intent\""),
		      "a denied part reached the device: %s", audit);
	free(audit);

	rc = harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "firmware-update", "mem0", path,
			    "--reason", "CHG-7 firmware", "--wait", NULL);
	ck_assert_msg(rc == 0, "admin firmware-update: exit %d: %s", rc, out);
	ck_assert_msg(strstr(out, "3 parts") && strstr(out, "complete: Success (00h)") &&
			  strstr(out, "slot 2:      \"SYSTEST-FW-9.9.9\""),
		      "transfer not reported: %s", out);
	/* Get FW Info: slot 2's revision at 20h, slot 1 still active. */
	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "--json", "send", "mem0",
			    "get-fw-info", NULL);
	ck_assert_msg(rc == 0, "get-fw-info: exit %d: %s", rc, out);
	for (int i = 0; i < 16; i++)
		snprintf(want + 2 * i, 3, "%02x", (unsigned char)rev[i]);
	line = strstr(out, "\"output_hex\":\"");
	ck_assert_msg(line && strncmp(line + 14 + 2 * 0x20, want, 32) == 0 &&
			  strncmp(line + 14, "0201", 4) == 0,
		      "slot 2 does not hold %s, or slot 1 is not active: %s", rev, out);
	/* One intent with the reason per part, none for the denied attempt. */
	audit = harness_read_file(h.audit);
	ck_assert(audit != NULL);
	for (line = strtok(audit, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, "\"kind\":\"intent\"") && strstr(line, "\"opcode\":\"0x0201\"")) {
			ck_assert_msg(strstr(line, "\"reason\":\"CHG-7 firmware\"") &&
					  strstr(line, H_ADMIN),
				      "intent without the admin's reason: %s", line);
			intents++;
		}
	free(audit);
	ck_assert_uint_eq(intents, 3);

	rc = harness_mbxctl(&h, H_ADMIN, out, sizeof(out), "firmware-update", "mem0", path,
			    "--reason", "CHG-8 activate", "--activate", "online", NULL);
	ck_assert_msg(rc == 0, "firmware-update --activate online: exit %d: %s", rc, out);
	ck_assert_msg(strstr(out, "slot 2 is running now"), "no activation reported: %s", out);
	rc = harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL);
	ck_assert_msg(rc == 0 && strstr(out, "firmware revision:   SYSTEST-FW-9.9.9"),
		      "identify does not show the activated firmware: exit %d: %s", rc, out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("system");
	TCase *tc = tcase_create("daemon");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_allowed_for_one_user_denied_for_another);
	tcase_add_test(tc, test_mbxctl_as_two_users);
	tcase_add_test(tc, test_malformed_frames_close_only_their_sender);
	tcase_add_test(tc, test_sighup_keeps_old_policy_when_new_one_is_broken);
	tcase_add_test(tc, test_users_dir_change_reloads_without_sighup);
	tcase_add_test(tc, test_reload_under_load_is_atomic);
	tcase_add_test(tc, test_set_feature_class_follows_the_feature);
	tcase_add_test(tc, test_sanitize_runs_in_background_and_is_audited);
	tcase_add_test(tc, test_tunnelled_identify_through_switch);
	tcase_add_test(tc, test_request_abort_needs_the_running_operations_class);
	tcase_add_test(tc, test_hung_device_times_out_others_go_on);
	tcase_add_test(tc, test_audit_full_disk_fails_closed);
	tcase_add_test(tc, test_queued_bytes_bound);
	tcase_add_test(tc, test_unfinished_frame_times_out);
	tcase_add_test(tc, test_client_leaving_drops_queued_and_audits_in_flight);
	tcase_add_test(tc, test_sigterm_exits_cleanly);
	tcase_add_test(tc, test_sigterm_finishes_in_flight_and_cancels_queued);
	tcase_add_test(tc, test_firmware_update_in_parts_audited_and_activated);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
