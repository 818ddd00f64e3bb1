/*
 * Background operations at every target, and Request Abort decided as
 * running what it would abort (issue 13 item 2). A real sandboxed mbxd on
 * sim devices (memory devices and switches with a memory device behind a
 * port), clients as real, different uids:
 *
 * - mbxtest-op (group mbxtest-ops) may read and configure everything; it
 *   may not run data-class commands, so it may not abort them either;
 * - mbxtest-admin and mbxtest-nobody may run data-class commands (with a
 *   reason): the admin starts operations, the other one aborts them.
 *
 * Every way an operation can be in flight (queued behind another command,
 * in the worker, started) meets every way an abort can arrive (direct, or
 * tunnelled through the switch to the memory device behind port 1, or one
 * level deeper to an LD behind the multi-logical device of port 2), from
 * one user not allowed to run the operation and one allowed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "cci.h"
#include "harness.h"

#define OP_SANITIZE    0x4400
#define OP_TRANSFER_FW 0x0201
#define OP_ABORT       0x0005
#define OP_HEALTH      0x4200
#define OP_PORT_STATE  0x5101
#define OP_TUNNEL      0x5300
#define RC_BG_STARTED  1

static const char policy_yaml[] = "version: 1\n"
				  "defaults:\n"
				  "  audit: [config, data, security, fabric, vendor]\n"
				  "  require_reason: [data, security, fabric]\n"
				  "rules:\n"
				  "  - name: operators-configure\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read, log, config]\n"
				  "  - name: data-admins\n"
				  "    who: { users: [" H_ADMIN ", " H_OUTSIDER "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read, log, config, data]\n";

/*
 * One pair of devices per way an operation is in flight. "q": a command
 * that hangs 1.5 s holds the worker, so what comes next waits in the
 * queue; "r": every command takes 300 ms in the worker; "s": plain.
 */
static const char *const devices_yaml[] = {
    "  - name: memq\n"
    "    transport: sim\n"
    "    timeout_ms: 5000\n"
    "    options: { model: memdev, sanitize_ms: 2000, fault_opcode: 0x4200, fault: hang, "
    "hang_ms: 1500 }\n"
    "  - name: swq\n"
    "    transport: sim\n"
    "    timeout_ms: 5000\n"
    "    options: { model: switch, sanitize_ms: 2000, ld_count: 2, fault_opcode: 0x5101, "
    "fault: hang, hang_ms: 1500 }\n",
    "  - name: memr\n"
    "    transport: sim\n"
    "    options: { model: memdev, sanitize_ms: 2000, latency_us: 300000 }\n"
    "  - name: swr\n"
    "    transport: sim\n"
    "    options: { model: switch, sanitize_ms: 2000, ld_count: 2, latency_us: 300000 }\n",
    "  - name: mems\n"
    "    transport: sim\n"
    "    options: { model: memdev, sanitize_ms: 2000 }\n"
    "  - name: sws\n"
    "    transport: sim\n"
    "    options: { model: switch, sanitize_ms: 2000, ld_count: 2 }\n",
};

enum when { QUEUED, RUNNING, STARTED };
enum where { DIRECT, TUNNEL1, TUNNEL2 };

static const char *const mem_names[] = {"memq", "memr", "mems"};
static const char *const sw_names[] = {"swq", "swr", "sws"};

static struct harness h;

/* Starts mbxd with the devices for one way of being in flight. */
static void start(enum when w)
{
	harness_users();
	harness_init(&h, devices_yaml[w], policy_yaml);
	harness_start(&h);
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A command for a target: direct, or wrapped in one or two Tunnel Management levels. */
struct call {
	struct harness_call c;
	uint8_t payload[1024];
};

/*
 * Wraps opcode (with in, n bytes) for where: port 1 holds a single memory
 * device; port 2 a multi-logical device whose LD 1 is reached one level deeper.
 */
static void call_at(struct call *k, const char *device, enum where at, uint16_t opcode,
		    const uint8_t *in, size_t n, const char *reason)
{
	uint8_t msg[1024], inner[1024];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST, .tag = 9, .opcode = opcode};
	int len;

	memset(k, 0, sizeof(*k));
	k->c.device = device;
	k->c.reason = reason;
	k->c.payload = k->payload;
	if (at == DIRECT) {
		k->c.opcode = opcode;
		if (n)
			memcpy(k->payload, in, n);
		k->c.payload_len = n;
		return;
	}
	m.payload = in;
	m.payload_len = (uint32_t)n;
	len = cci_encode(msg, sizeof(msg), &m);
	ck_assert_int_gt(len, 0);
	if (at == TUNNEL2) {
		struct cci_tunnel_req ld = {.target = 1, .msg = msg, .msg_len = (uint16_t)len};
		struct cci_msg outer = {
		    .category = CCI_CATEGORY_REQUEST, .tag = 8, .opcode = OP_TUNNEL};

		len = cci_tunnel_req_encode(inner, sizeof(inner), &ld);
		ck_assert_int_gt(len, 0);
		outer.payload = inner;
		outer.payload_len = (uint32_t)len;
		len = cci_encode(msg, sizeof(msg), &outer);
		ck_assert_int_gt(len, 0);
	}
	struct cci_tunnel_req port = {
	    .target = at == TUNNEL2 ? 2 : 1, .msg = msg, .msg_len = (uint16_t)len};

	len = cci_tunnel_req_encode(k->payload, sizeof(k->payload), &port);
	ck_assert_int_gt(len, 0);
	k->c.opcode = OP_TUNNEL;
	k->c.payload_len = (size_t)len;
}

/* The target's own return code in a reply: the innermost CCI message of its tunnels. */
static int target_rc(const struct mbx_result *r, int depth)
{
	const uint8_t *p = r->payload;
	size_t n = r->payload_len;
	uint16_t rc = r->cxl_rc;

	for (int i = 0; i < depth; i++) {
		struct cci_tunnel_rep tr;
		struct cci_msg m;

		if (rc != 0 || cci_tunnel_rep_decode(p, n, &tr) < 0 ||
		    cci_decode(tr.msg, tr.msg_len, &m) < 0)
			return -1;
		rc = m.rc;
		p = m.payload;
		n = m.payload_len;
	}
	return rc;
}

/* The depth of a call's target. */
static int call_depth(const struct call *k)
{
	const uint8_t *p = k->c.payload;

	if (k->c.opcode != OP_TUNNEL)
		return 0;
	/* The second level's opcode sits after the port header and the CCI header's bytes 3-4. */
	return p[CCI_TUNNEL_REQ_HEADER + 4] == 0x53 ? 2 : 1;
}

/* As some user: submits the call, exits 0 when its target started a background operation. */
static int start_op(const char *socket, void *arg)
{
	const struct call *k = arg;
	struct mbx_request req = {.device = k->c.device,
				  .opcode = k->c.opcode,
				  .payload = k->c.payload,
				  .payload_len = k->c.payload_len,
				  .reason = k->c.reason};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int rc;

	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 100;
	if (rep.result.status != MBX_STATUS_OK)
		rc = 110 + rep.result.status;
	else
		rc = target_rc(&rep.result, call_depth(k)) == RC_BG_STARTED ? 0 : 120;
	mbx_reply_free(&rep);
	mbx_close(cl);
	return rc;
}

/* Runs fn as user in a process of its own; reap() collects its exit code. */
static pid_t spawn_as(const char *user, int (*fn)(const char *, void *), void *arg)
{
	pid_t pid = fork();

	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(harness_as_user(user, fn, h.socket, arg));
	return pid;
}

static int reap(pid_t pid)
{
	int st;

	ck_assert(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits up to 15 s for the audit log to hold needle; returns the log. */
static char *audit_wait(const char *needle)
{
	char *audit = NULL;

	for (int i = 0; i < 300; i++) {
		free(audit);
		audit = harness_read_file(h.audit);
		if (audit && strstr(audit, needle))
			return audit;
		pause_ms(50);
	}
	ck_abort_msg("the audit log never held %s: %s", needle, audit ? audit : "(none)");
	return NULL;
}

/* Whether one line of the audit log holds both a and b. */
static bool audit_line_has(const char *audit, const char *a, const char *b)
{
	for (const char *line = audit; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		const char *pa = strstr(line, a), *pb = strstr(line, b);

		if (pa && pb && pa < line + n && pb < line + n)
			return true;
		line = end ? end + 1 : NULL;
	}
	return false;
}

/* Holds the worker of device for 1.5 s with a command that hangs (see devices_yaml). */
static pid_t block_worker(struct call *k, const char *device, bool sw)
{
	static const uint8_t port1[] = {1, 1};

	call_at(k, device, DIRECT, sw ? OP_PORT_STATE : OP_HEALTH, port1, sw ? 2 : 0, NULL);
	return spawn_as(H_OPERATOR, harness_submit_status, &k->c);
}

/*
 * One case: the admin's Sanitize at a target is in flight as w; an abort to
 * that target arrives from a user allowed to run it or not. The one not
 * allowed is denied and the Sanitize completes; the one allowed aborts it.
 */
static void abort_case(enum when w, enum where at, bool allowed)
{
	const char *dev = at == DIRECT ? mem_names[w] : sw_names[w];
	struct call blocker, op, ab;
	pid_t blocked = 0, starter;
	char *audit;
	int rc;

	start(w);
	call_at(&op, dev, at, OP_SANITIZE, NULL, 0, "INC-7 wipe");
	call_at(&ab, dev, at, OP_ABORT, NULL, 0, allowed ? "INC-7 stop" : NULL);
	if (w == QUEUED) {
		blocked = block_worker(&blocker, dev, at != DIRECT);
		pause_ms(200);
	}
	starter = spawn_as(H_ADMIN, start_op, &op);
	if (w == STARTED)
		ck_assert_int_eq(reap(starter), 0);
	else
		pause_ms(w == QUEUED ? 200 : 100);
	rc = harness_as_user(allowed ? H_OUTSIDER : H_OPERATOR, harness_submit_status, h.socket,
			     &ab.c);
	if (allowed)
		ck_assert_msg(rc == 0, "allowed abort of a %s sanitize (depth %d): status %d",
			      (const char *[]){"queued", "running", "started"}[w], (int)at, rc);
	else
		ck_assert_msg(rc == MBX_STATUS_DENIED,
			      "abort of a %s sanitize (depth %d) by a user who may not run it: "
			      "status %d, not denied",
			      (const char *[]){"queued", "running", "started"}[w], (int)at, rc);
	if (w != STARTED)
		ck_assert_int_eq(reap(starter), 0);
	if (blocked)
		reap(blocked);
	audit = audit_wait(allowed ? "\"background\":\"aborted\"" : "\"background\":\"completed\"");
	if (!allowed)
		ck_assert_msg(!strstr(audit, "\"aborted\""), "the sanitize was aborted: %s", audit);
	free(audit);
	ck_assert_int_eq(harness_stop(&h), 0); /* under ASan, a leak fails this exit status */
	harness_cleanup(&h);
}

/* Every way in flight x every way of arriving x allowed or not: _i is the case number. */
START_TEST(test_abort_is_decided_as_running_the_operation)
{
	enum when w = (enum when)(_i / 6);
	enum where at = (enum where)(_i / 2 % 3);

	abort_case(w, at, _i % 2 == 1);
}
END_TEST

/* As the operator: pipelines a hanging command, another, then an abort; exits with its status. */
static int abort_behind(const char *socket, void *arg)
{
	struct mbx_request hang = {.device = "memq", .opcode = OP_HEALTH};
	struct mbx_request ab = {.device = "memq", .opcode = OP_ABORT};
	struct mbx_client *cl;
	struct mbx_reply rep;
	uint32_t t1, t2, t3, tag;
	int status = 100;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_send(cl, &hang, &t1) < 0 ||
	    mbx_send(cl, &hang, &t2) < 0 || mbx_send(cl, &ab, &t3) < 0)
		return 100;
	for (int i = 0; i < 3; i++) {
		if (mbx_receive(cl, 15000, &rep, &tag) < 0)
			return 101;
		if (tag == t3)
			status = rep.result.status;
		mbx_reply_free(&rep);
	}
	mbx_close(cl);
	return status;
}

/*
 * An abort decided while nothing ran at its target, still queued when the
 * admin's Sanitize is queued there (and would run after it): decided again,
 * as running the Sanitize, and taken out of the queue.
 */
START_TEST(test_abort_queued_before_the_operation_is_decided_again)
{
	struct call op;
	pid_t ab, starter;
	char *audit;

	start(QUEUED);
	ab = spawn_as(H_OPERATOR, abort_behind, NULL);
	pause_ms(300);
	call_at(&op, "memq", DIRECT, OP_SANITIZE, NULL, 0, "INC-8 wipe");
	starter = spawn_as(H_ADMIN, start_op, &op);
	ck_assert_int_eq(reap(ab), MBX_STATUS_DENIED);
	ck_assert_int_eq(reap(starter), 0);
	audit = audit_wait("\"background\":\"completed\"");
	ck_assert_msg(!strstr(audit, "\"aborted\""), "the sanitize was aborted: %s", audit);
	ck_assert_msg(audit_line_has(audit, "\"opcode\":\"0x0005\"", "\"decision\":\"deny\""),
		      "the abort taken out of the queue has no denial record: %s", audit);
	free(audit);
	ck_assert_int_eq(harness_stop(&h), 0); /* under ASan, a leak fails this exit status */
	harness_cleanup(&h);
}
END_TEST

/* As the admin: a Transfer FW tunnelled to port 1, followed to its completion event. */
static int transfer_and_wait(const char *socket, void *arg)
{
	const struct call *k = arg;
	struct mbx_request req = {.device = k->c.device,
				  .opcode = k->c.opcode,
				  .payload = k->c.payload,
				  .payload_len = k->c.payload_len,
				  .reason = k->c.reason};
	struct mbx_client *cl;
	struct mbx_reply rep;
	struct mbx_event ev;
	uint32_t tag;
	int progress = 0;

	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 100;
	if (rep.result.status != MBX_STATUS_OK || target_rc(&rep.result, 1) != RC_BG_STARTED ||
	    rep.result.audit_seq == 0)
		return 101;
	mbx_reply_free(&rep);
	do {
		if (mbx_next_event(cl, 10000, &ev, &tag) < 0)
			return 102;
		progress += ev.kind == MBX_EVENT_PROGRESS;
	} while (ev.kind != MBX_EVENT_COMPLETE);
	mbx_close(cl);
	if (ev.opcode != OP_TRANSFER_FW || ev.cxl_rc != 0)
		return 103;
	return progress ? 0 : 104;
}

/* As the operator: watches sws; exits 0 once a tunnelled Transfer FW is seen start and end. */
static int watch_transfer(const char *socket, void *arg)
{
	struct mbx_client *cl;
	struct mbx_event ev;
	uint32_t tag, wtag;
	int start = 0;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_watch(cl, "sws", &wtag) < 0)
		return 100;
	do {
		if (mbx_next_event(cl, 10000, &ev, &tag) < 0)
			return 101;
		if (tag != wtag || ev.opcode != OP_TRANSFER_FW)
			return 102;
		start += ev.kind == MBX_EVENT_PROGRESS;
	} while (ev.kind != MBX_EVENT_COMPLETE);
	mbx_close(cl);
	return start && ev.cxl_rc == 0 ? 0 : 103;
}

/* As the operator: the state DEVICES reports for sws, and its background opcode. */
static int devices_state(const char *socket, void *arg)
{
	struct mbx_device_desc *list;
	struct mbx_client *cl;
	size_t n;
	int rc = 100;

	(void)arg;
	if (mbx_open(socket, &cl) < 0 || mbx_devices(cl, &list, &n) < 0)
		return 100;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].name, "sws"))
			rc = list[i].state == MBX_DEVICE_BACKGROUND &&
				     list[i].bg_opcode == OP_TRANSFER_FW
				 ? 1
			     : list[i].state == MBX_DEVICE_READY ? 0
								 : 2;
	free(list);
	mbx_close(cl);
	return rc;
}

/*
 * Finding (a): a Transfer FW tunnelled through the switch is an operation
 * like a direct one: audited from intent to end, DEVICES says busy, its
 * requester and the device's watchers get its EVENTs, one at a time at its
 * target, and a tunnelled abort allowed only as `config` is
 * denied. A direct abort to the switch reaches the switch's own CCI, not
 * the memory device behind it, and leaves the transfer alone.
 */
START_TEST(test_tunnelled_transfer_fw_is_tracked_and_guarded)
{
	uint8_t fw[128 + 256] = {0x00, 0x02}; /* Full Transfer into slot 2 */
	struct call xfer, again, ab, direct;
	const char *intent, *started, *done;
	pid_t admin, watcher;
	char *audit;

	start(STARTED);
	memcpy(fw + 128, "SYSTEST-TUNNEL-FW", 17);
	call_at(&xfer, "sws", TUNNEL1, OP_TRANSFER_FW, fw, sizeof(fw), "CHG-1 firmware");
	call_at(&again, "sws", TUNNEL1, OP_SANITIZE, NULL, 0, "CHG-1 wipe");
	call_at(&ab, "sws", TUNNEL1, OP_ABORT, NULL, 0, NULL);
	call_at(&direct, "sws", DIRECT, OP_ABORT, NULL, 0, NULL);
	watcher = spawn_as(H_OPERATOR, watch_transfer, NULL);
	pause_ms(300);
	admin = spawn_as(H_ADMIN, transfer_and_wait, &xfer);
	pause_ms(300);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, devices_state, h.socket, NULL), 1);
	ck_assert_int_eq(harness_as_user(H_ADMIN, harness_submit_status, h.socket, &again.c),
			 MBX_STATUS_BUSY);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, harness_submit_status, h.socket, &ab.c),
			 MBX_STATUS_DENIED);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, harness_submit_status, h.socket, &direct.c),
			 0);
	ck_assert_int_eq(reap(admin), 0);
	ck_assert_int_eq(reap(watcher), 0);
	audit = audit_wait("\"background\":\"completed\"");
	intent = strstr(audit, "\"kind\":\"intent\"");
	started = strstr(audit, "\"background\":\"started\"");
	done = strstr(audit, "\"kind\":\"background\"");
	ck_assert_msg(intent && started && done && intent < started && started < done,
		      "no intent, started result and background record in order: %s", audit);
	ck_assert_msg(strstr(done, "\"opcode\":\"0x5300\"") && strstr(done, "\"0x0201\""),
		      "the background record does not name the tunnelled Transfer FW: %s", done);
	ck_assert_msg(!strstr(audit, "\"aborted\""), "the transfer was aborted: %s", audit);
	free(audit);
	ck_assert_int_eq(harness_as_user(H_OPERATOR, devices_state, h.socket, NULL), 0);
	ck_assert_int_eq(harness_stop(&h), 0); /* under ASan, a leak fails this exit status */
	harness_cleanup(&h);
}
END_TEST

/*
 * Finding (b): a direct abort while the admin's Sanitize waits in the queue
 * or runs in the worker (not yet reported started) is not plain config.
 */
START_TEST(test_direct_abort_of_queued_or_running_sanitize_is_denied)
{
	abort_case(QUEUED, DIRECT, false);
	abort_case(RUNNING, DIRECT, false);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("background");
	TCase *tc = tcase_create("targets");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tunnelled_transfer_fw_is_tracked_and_guarded);
	tcase_add_test(tc, test_direct_abort_of_queued_or_running_sanitize_is_denied);
	tcase_add_test(tc, test_abort_queued_before_the_operation_is_decided_again);
	tcase_add_loop_test(tc, test_abort_is_decided_as_running_the_operation, 0, 18);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
