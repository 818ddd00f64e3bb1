/*
 * The background-operation model (broker/background.c): targets named by
 * their tunnel path, one operation per target from queue to completion,
 * and Request Abort decided as running the operation at its target. The
 * sim switch (with a multi-logical device two tunnel levels deep) answers
 * the commands the model wraps. No worker thread runs: the tests play the
 * worker's part by hand.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "audit.h"
#include "background.h"
#include "broker.h"
#include "catalog.h"
#include "cci.h"
#include "device.h"
#include "policy.h"
#include "sim-model.h"

/* Wraps opcode with payload in tunnels to ports[0..depth-1], as a client would. */
static size_t tunnel(uint8_t *buf, size_t cap, int depth, const uint8_t *ids, uint16_t opcode,
		     const uint8_t *in, size_t n, uint16_t *outer)
{
	uint8_t msg[512], tmp[512];
	struct cci_msg m = {.category = CCI_CATEGORY_REQUEST, .tag = 3, .opcode = opcode};
	size_t len = n;

	if (n)
		memcpy(tmp, in, n);
	*outer = opcode;
	for (int i = depth - 1; i >= 0; i--) {
		struct cci_tunnel_req t = {.target = ids[i]};
		int k;

		m.payload = tmp;
		m.payload_len = (uint32_t)len;
		k = cci_encode(msg, sizeof(msg), &m);
		ck_assert_int_gt(k, 0);
		t.msg = msg;
		t.msg_len = (uint16_t)k;
		k = cci_tunnel_req_encode(tmp, sizeof(tmp), &t);
		ck_assert_int_gt(k, 0);
		len = (size_t)k;
		m.opcode = CXL_OP_TUNNEL;
		*outer = CXL_OP_TUNNEL;
	}
	ck_assert_uint_le(len, cap);
	memcpy(buf, tmp, len);
	return len;
}

/* A request's target is its tunnel path; what runs there is the innermost command. */
START_TEST(test_target_of_walks_every_level)
{
	static const uint8_t ids[] = {1, 2, 3, 4, 5};
	struct bg_target t, u;
	uint8_t buf[512];
	uint16_t outer, inner;
	size_t n;

	ck_assert_int_eq(bg_target_of(0x4400, NULL, 0, &t, &inner), 0);
	ck_assert_uint_eq(t.depth, 0);
	ck_assert_uint_eq(inner, 0x4400);
	for (int depth = 1; depth <= BG_DEPTH_MAX; depth++) {
		n = tunnel(buf, sizeof(buf), depth, ids, CXL_OP_REQUEST_ABORT, NULL, 0, &outer);
		ck_assert_int_eq(bg_target_of(outer, buf, n, &t, &inner), 0);
		ck_assert_uint_eq(t.depth, depth);
		ck_assert_uint_eq(inner, CXL_OP_REQUEST_ABORT);
		for (int i = 0; i < depth; i++)
			ck_assert_uint_eq(t.hop[i].id, ids[i]);
		/* The same path for another command is the same target. */
		n = tunnel(buf, sizeof(buf), depth, ids, 0x4400, NULL, 0, &outer);
		ck_assert_int_eq(bg_target_of(outer, buf, n, &u, &inner), 0);
		ck_assert(bg_target_eq(&t, &u));
		/* A prefix of it is another target. */
		u.depth--;
		ck_assert(!bg_target_eq(&t, &u));
	}
	n = tunnel(buf, sizeof(buf), BG_DEPTH_MAX + 1, ids, 0x4400, NULL, 0, &outer);
	ck_assert_int_eq(bg_target_of(outer, buf, n, &t, &inner), -EPROTO);
	ck_assert_int_eq(bg_target_of(outer, buf, n - 1, &t, &inner), -EPROTO);
}
END_TEST

/* A hop is its id and its type: port 1 and LD pool CCI 1 are two targets. */
START_TEST(test_target_type_is_part_of_the_target)
{
	struct bg_target a = {.depth = 1, .hop = {{0, 1}}}, b = a;

	ck_assert(bg_target_eq(&a, &b));
	b.hop[0].type = 1;
	ck_assert(!bg_target_eq(&a, &b));
	b = a;
	b.hop[0].id = 2;
	ck_assert(!bg_target_eq(&a, &b));
}
END_TEST

/* Sends a wrapped command through the sim switch; returns the target's rc and status byte. */
static uint16_t via_switch(struct sim_switch *sw, const struct bg_target *t, uint16_t opcode,
			   uint8_t *status0)
{
	uint8_t in[256], out[4096];
	struct sim_req r = {.in = in, .out = out, .out_cap = sizeof(out)};
	const uint8_t *p;
	uint16_t rc, outer;
	size_t n;
	int len = bg_wrap(t, opcode, in, sizeof(in), &outer);

	ck_assert_int_ge(len, 0);
	r.opcode = outer;
	r.in_len = (size_t)len;
	rc = sim_switch_run(sw, &r);
	ck_assert_int_eq(bg_unwrap(t, opcode, rc, out, r.out_len, &rc, &p, &n), 0);
	if (status0)
		*status0 = n ? p[0] : 0xff;
	return rc;
}

/*
 * Each CCI has its own background operation (CXL r3.1 8.2.8.4.6): one
 * started two tunnel levels deep is seen and aborted there only, and the
 * switch forwards the Background Command Started answer as the LD gave it.
 */
START_TEST(test_wrap_reaches_each_target_of_the_sim)
{
	struct sim_switch_config cfg = {.serial = 1,
					.payload_max = 4096,
					.ports = 4,
					.tunnel_port = 1,
					.sanitize_ms = 60000,
					.ld_count = 2};
	struct sim_switch *sw = sim_switch_new(&cfg);
	struct bg_target ld1 = {.depth = 2, .hop = {{0, 2}, {0, 1}}};
	struct bg_target ld0 = {.depth = 2, .hop = {{0, 2}, {0, 0}}};
	struct bg_target sld = {.depth = 1, .hop = {{0, 1}}};
	struct bg_target self = {0};
	uint8_t st;

	ck_assert_ptr_nonnull(sw);
	ck_assert_uint_eq(via_switch(sw, &ld1, 0x4400, NULL), CXL_RC_BACKGROUND_STARTED);
	ck_assert_uint_eq(via_switch(sw, &ld1, 0x4400, NULL), CXL_RC_BUSY);
	ck_assert_uint_eq(via_switch(sw, &ld1, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 1);
	ck_assert_uint_eq(via_switch(sw, &ld0, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 0);
	ck_assert_uint_eq(via_switch(sw, &sld, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 0);
	ck_assert_uint_eq(via_switch(sw, &self, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 0);
	/* An abort elsewhere leaves it running; at its target it stops it. */
	ck_assert_uint_eq(via_switch(sw, &sld, CXL_OP_REQUEST_ABORT, NULL), CXL_RC_SUCCESS);
	ck_assert_uint_eq(via_switch(sw, &self, CXL_OP_REQUEST_ABORT, NULL), CXL_RC_SUCCESS);
	ck_assert_uint_eq(via_switch(sw, &ld1, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 1);
	ck_assert_uint_eq(via_switch(sw, &ld1, CXL_OP_REQUEST_ABORT, NULL), CXL_RC_SUCCESS);
	ck_assert_uint_eq(via_switch(sw, &ld1, CXL_OP_BG_STATUS, &st), CXL_RC_SUCCESS);
	ck_assert_uint_eq(st & 1, 0);
	sim_switch_free(sw);
}
END_TEST

/* A tunnel level that failed, or an answer to another command, is not the target's answer. */
START_TEST(test_unwrap_refuses_a_failed_or_foreign_level)
{
	struct bg_target t = {.depth = 1, .hop = {{0, 1}}};
	uint8_t msg[64], out[64];
	struct cci_msg m = {.category = CCI_CATEGORY_RESPONSE, .opcode = 0x0002};
	struct cci_tunnel_rep rep = {.msg = msg};
	const uint8_t *p;
	uint16_t rc;
	size_t n;
	int k = cci_encode(msg, sizeof(msg), &m), len;

	rep.msg_len = (uint16_t)k;
	len = cci_tunnel_rep_encode(out, sizeof(out), &rep);
	ck_assert_int_eq(bg_unwrap(&t, 0x0002, 0, out, (size_t)len, &rc, &p, &n), 0);
	ck_assert_int_eq(bg_unwrap(&t, 0x0002, CXL_RC_INVALID_INPUT, out, (size_t)len, &rc, &p, &n),
			 -EPROTO);
	ck_assert_uint_eq(rc, CXL_RC_INVALID_INPUT);
	ck_assert_int_eq(bg_unwrap(&t, 0x4400, 0, out, (size_t)len, &rc, &p, &n), -EPROTO);
	ck_assert_int_eq(bg_unwrap(&t, 0x0002, 0, out, (size_t)len - 1, &rc, &p, &n), -EPROTO);
}
END_TEST

/* ---- the operations of one device ---- */

static const char policy_text[] = "version: 1\n"
				  "defaults:\n"
				  "  require_reason: [data]\n"
				  "rules:\n"
				  "  - name: cfg\n"
				  "    who: { users: [op] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read, config]\n"
				  "  - name: data\n"
				  "    who: { users: [admin] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read, config, data]\n";

static struct broker broker;
static struct device dev;
static char dir[] = "/tmp/mbx-bg-XXXXXX";

/* A broker with a policy, an audit log and an event base; a device with no worker. */
static void setup(void)
{
	char path[64], err[256];
	struct policy_errors errs = {0};
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/policy.yaml", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(policy_text, f);
	fclose(f);
	memset(&broker, 0, sizeof(broker));
	ck_assert_int_eq(policy_load(path, NULL, false, &broker.policy, &errs), 0);
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	ck_assert_int_eq(audit_open(path, &broker.audit, err, sizeof(err)), 0);
	broker.base = event_base_new();
	memset(&dev, 0, sizeof(dev));
	dev.broker = &broker;
	snprintf(dev.name, sizeof(dev.name), "sw0");
	dev.transport_name = "sim";
	dev.pdev.name = dev.name;
	dev.max_queue_per_user = 8;
	pthread_mutex_init(&dev.lock, NULL);
	pthread_cond_init(&dev.wake, NULL);
	TAILQ_INIT(&dev.internal);
	TAILQ_INIT(&dev.ring);
	TAILQ_INIT(&dev.done);
	TAILQ_INIT(&dev.watchers);
	TAILQ_INIT(&dev.bg_ops);
	TAILQ_INIT(&dev.aborts);
}

static void teardown(void)
{
	char cmd[64];

	background_close(&dev);
	audit_close(broker.audit);
	policy_free(broker.policy);
	event_base_free(broker.base);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	memcpy(dir + strlen(dir) - 6, "XXXXXX", 6);
}

/* The admin's Sanitize at the end of a tunnel path of depth (port 1, then LD 0). */
static struct job *sanitize_job(int depth, struct bg_target *t)
{
	static const uint8_t ids[] = {1, 0};
	uint8_t buf[128];
	uint16_t outer, inner;
	size_t n = tunnel(buf, sizeof(buf), depth, ids, 0x4400, NULL, 0, &outer);
	struct job *j = device_job_new(&dev, buf, n);

	ck_assert_ptr_nonnull(j);
	j->uid = 1002;
	snprintf(j->user, sizeof(j->user), "admin");
	snprintf(j->reason, sizeof(j->reason), "wipe");
	j->cmd.opcode = outer;
	ck_assert_int_eq(bg_target_of(outer, j->in, j->in_len, t, &inner), 0);
	ck_assert_ptr_nonnull(background_track(j, t, inner));
	return j;
}

/* Decides an abort to t by user, with or without a reason. */
static bool abort_allowed(const struct bg_target *t, const char *user, const char *reason,
			  struct policy_decision *dec)
{
	const char *groups[] = {user};
	struct policy_principal who = {.uid = 1, .user = user, .groups = groups, .n_groups = 1};
	struct policy_request pr = {
	    .who = &who, .dev = &dev.pdev, .opcode = CXL_OP_REQUEST_ABORT, .reason = reason};

	if (!background_decide_abort(&dev, t, &pr, dec))
		return false;
	return dec->decision == MBX_DECISION_ALLOW;
}

/* Queued, in the worker, started: the abort is decided as the Sanitize in each state. */
START_TEST(test_abort_is_decided_against_every_state)
{
	struct policy_decision dec;
	struct bg_target t, other = {.depth = 1, .hop = {{0, 3}}};
	struct job *j = sanitize_job(_i, &t);
	struct bg_op *op = bg_find(&dev.bg_ops, &t);

	ck_assert_ptr_eq(op, j->bg);
	ck_assert_ptr_null(bg_find(&dev.bg_ops, &other));
	for (int state = 0; state < 3; state++) {
		if (state == 1)
			j->state = JOB_RUNNING; /* as the worker sets it, under the lock */
		if (state == 2)
			op->started = true;
		ck_assert_int_eq(bg_op_state(op), (enum bg_state)state);
		ck_assert(!abort_allowed(&t, "op", NULL, &dec));
		ck_assert_int_eq(dec.cls, MBX_CLASS_DATA);
		ck_assert_msg(strstr(dec.message, "decided as running it"), "%s", dec.message);
		ck_assert(!abort_allowed(&t, "admin", NULL, &dec)); /* the reason rule holds too */
		ck_assert(abort_allowed(&t, "admin", "stop", &dec));
		ck_assert_uint_eq(dec.n_inner, (size_t)_i);
		if (_i)
			ck_assert_uint_eq(dec.inner[_i - 1].opcode, CXL_OP_REQUEST_ABORT);
	}
	/* No operation at another target: the caller decides that abort as itself. */
	ck_assert(!background_decide_abort(&dev, &other, NULL, &dec));
	op->started = false;
	device_job_free(j);
	ck_assert(TAILQ_EMPTY(&dev.bg_ops));
}
END_TEST

/* Builds the answer the target gives to a status poll, done with rc, in t's tunnels. */
static void poll_answer(struct job *p, const struct bg_target *t, uint16_t rc)
{
	uint8_t body[256] = {0}, msg[256];
	struct cci_msg m = {.category = CCI_CATEGORY_RESPONSE, .tag = 0x42, .opcode = 0x0002};
	size_t len = 8;

	body[4] = (uint8_t)rc;
	body[5] = (uint8_t)(rc >> 8);
	for (int l = t->depth - 1; l >= 0; l--) {
		struct cci_tunnel_rep rep = {.msg = msg};
		int k;

		m.payload = body;
		m.payload_len = (uint32_t)len;
		k = cci_encode(msg, sizeof(msg), &m);
		ck_assert_int_gt(k, 0);
		rep.msg_len = (uint16_t)k;
		k = cci_tunnel_rep_encode(body, sizeof(body), &rep);
		ck_assert_int_gt(k, 0);
		len = (size_t)k;
		m.opcode = CXL_OP_TUNNEL;
	}
	p->xrc = MBX_XPORT_OK;
	p->cmd.cxl_rc = 0;
	p->out = malloc(len);
	memcpy(p->out, body, len);
	p->cmd.out_len = len;
}

/* Started at a target: the device is busy; the poll of that target ends it, audited. */
START_TEST(test_started_operation_is_followed_to_its_end)
{
	struct bg_target t;
	struct job *j = sanitize_job(_i, &t), *p;
	const struct bg_op *cur;
	char path[64], *log;
	uint16_t inner;
	FILE *f;
	long n;

	dev.state = MBX_DEVICE_READY;
	j->xrc = MBX_XPORT_OK;
	background_start(j);
	cur = background_current(&dev);
	ck_assert_ptr_nonnull(cur);
	ck_assert_uint_eq(cur->opcode, 0x4400);
	ck_assert_int_eq(dev.state, MBX_DEVICE_BACKGROUND);
	/* The poll timer queues a status command wrapped for the operation's target. */
	event_base_loop(broker.base, EVLOOP_ONCE);
	p = TAILQ_FIRST(&dev.internal);
	ck_assert_ptr_nonnull(p);
	TAILQ_REMOVE(&dev.internal, p, qentry);
	dev.queued--;
	ck_assert_int_eq(bg_target_of(p->cmd.opcode, p->in, p->in_len, &t, &inner), 0);
	ck_assert_uint_eq(inner, CXL_OP_BG_STATUS);
	ck_assert(bg_target_eq(&t, &cur->target));
	poll_answer(p, &t, CXL_RC_ABORTED);
	background_on_poll(p);
	ck_assert_ptr_null(background_current(&dev));
	ck_assert(TAILQ_EMPTY(&dev.bg_ops));
	ck_assert_int_eq(dev.state, MBX_DEVICE_READY);
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	log = calloc(1, 8192);
	n = (long)fread(log, 1, 8191, f);
	fclose(f);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(strstr(log, "\"background\":\"aborted\""), "%s", log);
	free(log);
}
END_TEST

/* One operation per target: the second is found busy there, not at another target. */
START_TEST(test_one_operation_per_target)
{
	struct bg_target t, u;
	struct job *a = sanitize_job(1, &t), *b;
	struct bg_target deeper = {.depth = 2, .hop = {{0, 1}, {0, 0}}};

	ck_assert_ptr_nonnull(bg_find(&dev.bg_ops, &t));
	ck_assert_ptr_null(bg_find(&dev.bg_ops, &deeper));
	b = sanitize_job(2, &u);
	ck_assert(bg_target_eq(&u, &deeper));
	ck_assert_ptr_eq(bg_find(&dev.bg_ops, &u), b->bg);
	ck_assert_ptr_eq(bg_find(&dev.bg_ops, &t), a->bg);
	device_job_free(a);
	ck_assert_ptr_null(bg_find(&dev.bg_ops, &t));
	ck_assert_ptr_nonnull(bg_find(&dev.bg_ops, &u));
	device_job_free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("background");
	TCase *codec = tcase_create("targets");
	TCase *model = tcase_create("model");
	SRunner *sr;
	int failed;

	tcase_add_test(codec, test_target_of_walks_every_level);
	tcase_add_test(codec, test_target_type_is_part_of_the_target);
	tcase_add_test(codec, test_wrap_reaches_each_target_of_the_sim);
	tcase_add_test(codec, test_unwrap_refuses_a_failed_or_foreign_level);
	suite_add_tcase(s, codec);
	tcase_add_checked_fixture(model, setup, teardown);
	tcase_add_loop_test(model, test_abort_is_decided_against_every_state, 0, 3);
	tcase_add_loop_test(model, test_started_operation_is_followed_to_its_end, 0, 3);
	tcase_add_test(model, test_one_operation_per_target);
	suite_add_tcase(s, model);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
