/*
 * The mctp transport (transports/mctp.c) without a kernel MCTP stack: the
 * socket calls go to a socketpair stand-in whose records carry the MCTP
 * address next to the message, so each test plays the endpoint by queueing
 * answers (right, late, stray, lying) before the command is submitted.
 * The kernel's real stack is tested in tests/qemu/run-mctp.sh. Also here:
 * cci_response_match, the response check the transport relies on.
 */
#include <check.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "../../transports/mctp.c"

#define PEER_NET 1
#define PEER_EID 10

static int sp[2] = {-1, -1}; /* [0] the transport's socket, [1] the endpoint's */
static struct mctp m;
static uint8_t record[sizeof(struct sockaddr_mctp_ext) + MCTP_MSG_MAX];
static int send_failures, send_errno; /* the stand-in's next sends fail this way */

/* Stand-in send: one datagram holding the destination, then the message. */
static ssize_t fake_send(int fd, const void *buf, size_t len, const struct sockaddr_mctp_ext *to,
			 socklen_t tolen)
{
	struct sockaddr_mctp_ext dst;

	if (send_failures > 0) {
		send_failures--;
		errno = send_errno;
		return -1;
	}
	memset(&dst, 0, sizeof(dst));
	memcpy(&dst, to, tolen);
	memcpy(record, &dst, sizeof(dst));
	memcpy(record + sizeof(dst), buf, len);
	if (send(fd, record, sizeof(dst) + len, 0) < 0)
		return -1;
	return (ssize_t)len;
}

/* Stand-in receive: splits a datagram into the source address and the message. */
static ssize_t fake_recv(int fd, void *buf, size_t cap, struct sockaddr_mctp_ext *from,
			 socklen_t *fromlen)
{
	ssize_t n = recv(fd, record, sizeof(record), MSG_DONTWAIT);
	size_t len;

	if (n < (ssize_t)sizeof(*from))
		return n < 0 ? -1 : 0;
	memcpy(from, record, sizeof(*from));
	*fromlen = sizeof(from->smctp_base);
	len = (size_t)n - sizeof(*from);
	memcpy(buf, record + sizeof(*from), len < cap ? len : cap);
	return (ssize_t)len;
}

static const struct mctp_io fake_io = {.send = fake_send, .recv = fake_recv};

static void setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	memset(&m, 0, sizeof(m));
	m.fd = sp[0];
	m.net = PEER_NET;
	m.eid = PEER_EID;
	m.next_tag = 0x40;
	m.buf = malloc(MCTP_MSG_MAX);
	ck_assert_ptr_nonnull(m.buf);
	m.info.payload_max = 4096;
	mctp_io = &fake_io;
	send_failures = 0;
}

static void teardown(void)
{
	free(m.buf);
	m.buf = NULL;
	close(sp[0]);
	close(sp[1]);
}

/* Queues a message as the endpoint's answer, from net/eid with type and tag bits. */
static void queue_from(uint32_t net, uint8_t eid, uint8_t type, uint8_t tagbits, const uint8_t *msg,
		       size_t len)
{
	struct sockaddr_mctp_ext a;

	memset(&a, 0, sizeof(a));
	a.smctp_base.smctp_family = AF_MCTP;
	a.smctp_base.smctp_network = net;
	a.smctp_base.smctp_addr.s_addr = eid;
	a.smctp_base.smctp_type = type;
	a.smctp_base.smctp_tag = tagbits;
	memcpy(record, &a, sizeof(a));
	memcpy(record + sizeof(a), msg, len);
	ck_assert_int_ge(send(sp[1], record, sizeof(a) + len, 0), 0);
}

/* Encodes a CCI response into buf; returns its size. */
static size_t response(uint8_t *buf, uint8_t tag, uint16_t opcode, uint16_t rc, bool bg,
		       const uint8_t *pl, uint32_t n)
{
	struct cci_msg r = {.category = CCI_CATEGORY_RESPONSE,
			    .tag = tag,
			    .opcode = opcode,
			    .rc = rc,
			    .background = bg,
			    .vendor_status = 0x0bad,
			    .payload = pl,
			    .payload_len = n};
	int len = cci_encode(buf, 64 + CCI_HEADER_SIZE + n, &r);

	ck_assert_int_gt(len, 0);
	return (size_t)len;
}

/* Queues a proper answer from the configured peer. */
static void queue_answer(uint8_t tag, uint16_t opcode, uint16_t rc, bool bg, const uint8_t *pl,
			 uint32_t n)
{
	uint8_t buf[512];
	size_t len = response(buf, tag, opcode, rc, bg, pl, n);

	queue_from(PEER_NET, PEER_EID, mctp_msg_type(opcode), (uint8_t)(tag & 7), buf, len);
}

/* Reads the request the transport sent: its destination and CCI bytes. */
static size_t sent_request(struct sockaddr_mctp_ext *to, uint8_t *msg, size_t cap)
{
	uint8_t buf[sizeof(struct sockaddr_mctp_ext) + 4096];
	ssize_t n = recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT);

	ck_assert_int_ge(n, (ssize_t)sizeof(*to));
	memcpy(to, buf, sizeof(*to));
	ck_assert_uint_le((size_t)n - sizeof(*to), cap);
	memcpy(msg, buf + sizeof(*to), (size_t)n - sizeof(*to));
	return (size_t)n - sizeof(*to);
}

START_TEST(test_fmapi_sets_travel_as_type_7)
{
	ck_assert_uint_eq(mctp_msg_type(0x5100), 0x07);
	ck_assert_uint_eq(mctp_msg_type(0x5101), 0x07);
	ck_assert_uint_eq(mctp_msg_type(0x5300), 0x07);
	ck_assert_uint_eq(mctp_msg_type(0x59ff), 0x07);
	ck_assert_uint_eq(mctp_msg_type(0x5000), 0x08);
	ck_assert_uint_eq(mctp_msg_type(0x5a00), 0x08);
	ck_assert_uint_eq(mctp_msg_type(0x0001), 0x08);
	ck_assert_uint_eq(mctp_msg_type(0x4200), 0x08);
	ck_assert_uint_eq(mctp_msg_type(0xc000), 0x08);
}
END_TEST

START_TEST(test_request_bytes_and_address)
{
	static const uint8_t in[] = {0x11, 0x22, 0x33};
	static const uint8_t want[] = {0x00, 0x40, 0x00, 0x01, 0x51, 0x03, 0x00, 0x00,
				       0x00, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33};
	uint8_t out[16], msg[64];
	struct sockaddr_mctp_ext to;
	struct mbx_transport_cmd cmd = {.opcode = 0x5101,
					.in = in,
					.in_len = sizeof(in),
					.out = out,
					.out_cap = sizeof(out),
					.timeout_ms = 500};

	queue_answer(0x40, 0x5101, 0, false, NULL, 0);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(sent_request(&to, msg, sizeof(msg)), sizeof(want));
	ck_assert_mem_eq(msg, want, sizeof(want));
	ck_assert_uint_eq(to.smctp_base.smctp_family, AF_MCTP);
	ck_assert_uint_eq(to.smctp_base.smctp_network, PEER_NET);
	ck_assert_uint_eq(to.smctp_base.smctp_addr.s_addr, PEER_EID);
	ck_assert_uint_eq(to.smctp_base.smctp_type, 0x07);
	ck_assert_uint_eq(to.smctp_base.smctp_tag, MCTP_TAG_OWNER);
	ck_assert_int_eq(to.smctp_ifindex, 0);
	ck_assert_uint_eq(m.next_tag, 0x41);
}
END_TEST

START_TEST(test_direct_addressing_names_the_link)
{
	struct sockaddr_mctp_ext to;

	m.ifindex = 7;
	ck_assert_uint_eq(mctp_dest(&m, 0x08, &to), sizeof(to));
	ck_assert_int_eq(to.smctp_ifindex, 7);
	ck_assert_uint_eq(to.smctp_halen, 0);
	m.ifindex = 0;
	ck_assert_uint_eq(mctp_dest(&m, 0x08, &to), sizeof(to.smctp_base));
}
END_TEST

START_TEST(test_answer_is_delivered)
{
	static const uint8_t pl[] = {1, 2, 3, 4, 5};
	uint8_t out[16];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	queue_answer(0x40, 0x4200, 0x0007, false, pl, sizeof(pl));
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.out_len, sizeof(pl));
	ck_assert_mem_eq(out, pl, sizeof(pl));
	ck_assert_uint_eq(cmd.cxl_rc, 0x0007);
	ck_assert_uint_eq(cmd.vendor_status, 0x0bad);
	ck_assert_uint_eq(m.discarded, 0);
}
END_TEST

START_TEST(test_late_and_stray_answers_are_discarded_and_counted)
{
	static const uint8_t pl[] = {0xaa};
	uint8_t out[16], buf[64];
	size_t n = response(buf, 0x40, 0x4200, 0, false, pl, 1);
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	queue_answer(0x3f, 0x4200, 0, false, NULL, 0);                /* late: an earlier tag */
	queue_from(PEER_NET, 11, 0x08, 0, buf, n);                    /* another endpoint */
	queue_from(2, PEER_EID, 0x08, 0, buf, n);                     /* another network */
	queue_from(PEER_NET, PEER_EID, 0x07, 0, buf, n);              /* the other message type */
	queue_from(PEER_NET, PEER_EID, 0x08, MCTP_TAG_OWNER, buf, n); /* a request to us */
	queue_answer(0x40, 0x4200, 0, false, pl, sizeof(pl));
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.out_len, 1);
	ck_assert_uint_eq(out[0], 0xaa);
	ck_assert_uint_eq(m.discarded, 5);
}
END_TEST

START_TEST(test_any_network_accepts_the_peer_on_any)
{
	uint8_t out[4], buf[64];
	size_t n = response(buf, 0x40, 0x0001, 0, false, NULL, 0);
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x0001, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	m.net = MCTP_NET_ANY;
	queue_from(5, PEER_EID, 0x08, 0, buf, n);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
}
END_TEST

START_TEST(test_length_lie_fails_that_request_only)
{
	static const uint8_t pl[] = {1, 2, 3, 4};
	uint8_t out[16], buf[64];
	size_t n = response(buf, 0x40, 0x4200, 0, false, pl, sizeof(pl));
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	buf[5] = 20; /* says 20 payload bytes, carries 4 */
	queue_from(PEER_NET, PEER_EID, 0x08, 0, buf, n);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(cmd.error, "length field disagrees"));
	ck_assert_ptr_nonnull(strstr(cmd.error, "net 1 EID 10"));
	ck_assert_uint_eq(cmd.out_len, 0);
	/* The next command is not disturbed. */
	queue_answer(0x41, 0x4200, 0, false, pl, sizeof(pl));
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.out_len, sizeof(pl));
}
END_TEST

START_TEST(test_wrong_opcode_or_category_is_malformed)
{
	uint8_t out[16], buf[64];
	size_t n = response(buf, 0x40, 0x4201, 0, false, NULL, 0);
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	queue_from(PEER_NET, PEER_EID, 0x08, 0, buf, n);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(cmd.error, "another opcode"));
	n = response(buf, 0x41, 0x4200, 0, false, NULL, 0);
	buf[0] = 0x05; /* reserved category */
	queue_from(PEER_NET, PEER_EID, 0x08, 0, buf, n);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(cmd.error, "category"));
	queue_from(PEER_NET, PEER_EID, 0x08, 0, (const uint8_t[]){0x01, 0x42, 0x00}, 3);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(cmd.error, "shorter than"));
}
END_TEST

START_TEST(test_silence_times_out_on_time)
{
	uint8_t out[16];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4200, .out = out, .out_cap = sizeof(out), .timeout_ms = 80};
	uint64_t t0 = mctp_now_ms(), dt;

	m.discarded = 2;
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_TIMEOUT);
	dt = mctp_now_ms() - t0;
	ck_assert_uint_ge(dt, 80);
	ck_assert_uint_lt(dt, 1000);
	ck_assert_ptr_nonnull(
	    strstr(cmd.error, "no answer from MCTP net 1 EID 10 to opcode 4200h"));
	ck_assert_ptr_nonnull(strstr(cmd.error, "within 80 ms"));
	ck_assert_ptr_nonnull(strstr(cmd.error, "2 late or unmatched"));
}
END_TEST

START_TEST(test_background_bit_reports_background_started)
{
	uint8_t out[16];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x4400, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	queue_answer(0x40, 0x4400, 0x0000, true, NULL, 0);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0001);
	queue_answer(0x41, 0x4400, 0x0001, false, NULL, 0);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0001);
	queue_answer(0x42, 0x4400, 0x0006, true, NULL, 0); /* busy: the error stands */
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0006);
}
END_TEST

START_TEST(test_too_big_is_refused_before_sending)
{
	static uint8_t in[4097];
	uint8_t out[16], probe[8];
	struct mbx_transport_cmd cmd = {.opcode = 0x4102,
					.in = in,
					.in_len = sizeof(in),
					.out = out,
					.out_cap = sizeof(out),
					.timeout_ms = 500};

	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_TOO_BIG);
	ck_assert_ptr_nonnull(strstr(cmd.error, "4097-byte input payload exceeds the 4096-byte"));
	ck_assert_int_lt(recv(sp[1], probe, sizeof(probe), MSG_DONTWAIT), 0);
}
END_TEST

START_TEST(test_answer_larger_than_buffer_is_refused)
{
	static const uint8_t pl[32];
	uint8_t out[8];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x0401, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	queue_answer(0x40, 0x0401, 0, false, pl, sizeof(pl));
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_BAD_RESPONSE);
	ck_assert_ptr_nonnull(strstr(cmd.error, "32 payload bytes, more than the 8-byte buffer"));
}
END_TEST

START_TEST(test_send_errors_are_named)
{
	uint8_t out[8];
	struct mbx_transport_cmd cmd = {
	    .opcode = 0x0001, .out = out, .out_cap = sizeof(out), .timeout_ms = 500};

	send_failures = 1;
	send_errno = EHOSTUNREACH;
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_IO);
	ck_assert_ptr_nonnull(strstr(cmd.error, "no route to MCTP net 1 EID 10"));
	send_failures = 1;
	send_errno = EACCES;
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_IO);
	ck_assert_ptr_nonnull(strstr(cmd.error, "CAP_NET_RAW"));
	/* All tags taken: wait for one within the command's time. */
	send_failures = 3;
	send_errno = EBUSY;
	queue_answer(0x42, 0x0001, 0, false, NULL, 0);
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_OK);
	send_failures = 1000;
	cmd.timeout_ms = 60;
	ck_assert_int_eq(mctp_submit(&m, &cmd), MBX_XPORT_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(cmd.error, "no free MCTP tag"));
}
END_TEST

/* An Identify payload for component type and 2^shift message size. */
static void identify(uint8_t *id, uint8_t type, uint8_t shift)
{
	static const uint8_t base[MCTP_IDENTIFY_SIZE] = {
	    0x86, 0x80, 0x0d, 0x0d, 0, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};

	memcpy(id, base, sizeof(base));
	id[16] = shift;
	id[17] = type;
}

START_TEST(test_identify_names_kind_serial_and_size)
{
	uint8_t id[MCTP_IDENTIFY_SIZE];
	char err[256];

	identify(id, 0x03, 12);
	queue_answer(0x40, 0x0001, 0, false, id, sizeof(id));
	ck_assert_int_eq(mctp_identify(&m, "mem0", err, sizeof(err)), 0);
	ck_assert_str_eq(m.info.kind, "memdev");
	ck_assert_str_eq(m.info.serial, "0x0102030405060708");
	ck_assert_uint_eq(m.info.payload_max, 4096);
	ck_assert_str_eq(m.info.model, "8086:0d0d at MCTP net 1 EID 10");
	identify(id, 0x00, 20);
	queue_answer(0x41, 0x0001, 0, false, id, sizeof(id));
	ck_assert_int_eq(mctp_identify(&m, "sw0", err, sizeof(err)), 0);
	ck_assert_str_eq(m.info.kind, "switch");
	ck_assert_uint_eq(m.info.payload_max, MCTP_PAYLOAD_LIMIT); /* the kernel's 64 KiB */
}
END_TEST

START_TEST(test_identify_refuses_what_no_component_says)
{
	uint8_t id[MCTP_IDENTIFY_SIZE];
	char err[256];

	identify(id, 0x02, 12);
	queue_answer(0x40, 0x0001, 0, false, id, sizeof(id));
	ck_assert_int_eq(mctp_identify(&m, "x", err, sizeof(err)), -ENODEV);
	ck_assert_ptr_nonnull(strstr(err, "component type 02h"));
	identify(id, 0x03, 7);
	queue_answer(0x41, 0x0001, 0, false, id, sizeof(id));
	ck_assert_int_eq(mctp_identify(&m, "x", err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "2^7"));
	queue_answer(0x42, 0x0001, 0x0003, false, NULL, 0);
	ck_assert_int_eq(mctp_identify(&m, "x", err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "return code 0003h"));
	/* Silence: open fails after the default 2 s, saying so. */
	ck_assert_int_eq(mctp_identify(&m, "x", err, sizeof(err)), -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(err, "Identify failed at open: mctp: no answer"));
}
END_TEST

/* Opens with options; returns what open returned, err holds the message. */
static int open_with(const struct mbx_transport_option *o, size_t n, char *err, size_t len)
{
	struct mbx_transport_config cfg = {
	    .device_name = "mem0", .config_file = "mbxd.yaml", .options = o, .n_options = n};
	struct mctp p;
	int rc = mctp_transport_ops.open(&p, &cfg, err, len);

	if (rc == 0)
		mctp_transport_ops.close(&p);
	return rc;
}

START_TEST(test_open_errors_name_the_cause)
{
	struct mbx_transport_option o[2] = {{"net", "1", 3}, {"eid", "5", 4}};
	char err[256];
	int fd;

	ck_assert_int_eq(open_with(o, 1, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "mctp needs eid"));
	ck_assert_int_eq(open_with(o, 2, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "mbxd.yaml:4: eid: \"5\" is not a number from 8 to 254"));
	o[1] = (struct mbx_transport_option){"interface", "nosuchlink0", 5};
	o[0] = (struct mbx_transport_option){"eid", "9", 4};
	ck_assert_int_eq(open_with(o, 2, err, sizeof(err)), -ENODEV);
	ck_assert_ptr_nonnull(strstr(err, "mbxd.yaml:5: interface: \"nosuchlink0\""));
	/* This machine's own kernel may have no MCTP: then open says so. */
	fd = socket(AF_MCTP, SOCK_DGRAM, 0);
	if (fd < 0 && errno == EAFNOSUPPORT) {
		ck_assert_int_eq(open_with(o, 1, err, sizeof(err)), -EAFNOSUPPORT);
		ck_assert_ptr_nonnull(strstr(err, "CONFIG_MCTP"));
	}
	if (fd >= 0)
		close(fd);
}
END_TEST

START_TEST(test_ops_declare_no_ioctls_and_cap_net_raw)
{
	ck_assert_str_eq(mctp_transport_ops.name, "mctp");
	ck_assert_uint_eq(mctp_transport_ops.n_ioctls, 0);
	ck_assert_uint_eq(mctp_transport_ops.caps, 1ull << CAP_NET_RAW);
	ck_assert_ptr_eq(transport_find("mctp"), &mctp_transport_ops);
}
END_TEST

START_TEST(test_response_match_direct)
{
	uint8_t buf[64];
	struct cci_msg r;
	const char *why = NULL;
	size_t n = response(buf, 9, 0x0002, 0, false, NULL, 0);

	ck_assert_int_eq(cci_response_match(buf, n, 9, 0x0002, &r, &why), CCI_MATCH_OK);
	ck_assert_int_eq(cci_response_match(buf, n, 8, 0x0002, &r, &why), CCI_MATCH_OTHER);
	ck_assert_int_eq(cci_response_match(buf, 1, 9, 0x0002, &r, &why), CCI_MATCH_OTHER);
	ck_assert_int_eq(cci_response_match(buf, 5, 9, 0x0002, &r, &why), CCI_MATCH_MALFORMED);
	buf[0] = CCI_CATEGORY_REQUEST;
	ck_assert_int_eq(cci_response_match(buf, n, 9, 0x0002, &r, &why), CCI_MATCH_OTHER);
	buf[0] = CCI_CATEGORY_RESPONSE;
	ck_assert_int_eq(cci_response_match(buf, n + 1, 9, 0x0002, &r, &why), CCI_MATCH_MALFORMED);
	ck_assert_str_eq(why, "payload length field disagrees with the message size");
}
END_TEST

static Suite *mctp_suite(void)
{
	Suite *s = suite_create("mctp");
	TCase *tc = tcase_create("transport");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fmapi_sets_travel_as_type_7);
	tcase_add_test(tc, test_request_bytes_and_address);
	tcase_add_test(tc, test_direct_addressing_names_the_link);
	tcase_add_test(tc, test_answer_is_delivered);
	tcase_add_test(tc, test_late_and_stray_answers_are_discarded_and_counted);
	tcase_add_test(tc, test_any_network_accepts_the_peer_on_any);
	tcase_add_test(tc, test_length_lie_fails_that_request_only);
	tcase_add_test(tc, test_wrong_opcode_or_category_is_malformed);
	tcase_add_test(tc, test_silence_times_out_on_time);
	tcase_add_test(tc, test_background_bit_reports_background_started);
	tcase_add_test(tc, test_too_big_is_refused_before_sending);
	tcase_add_test(tc, test_answer_larger_than_buffer_is_refused);
	tcase_add_test(tc, test_send_errors_are_named);
	tcase_add_test(tc, test_identify_names_kind_serial_and_size);
	tcase_add_test(tc, test_identify_refuses_what_no_component_says);
	tcase_add_test(tc, test_open_errors_name_the_cause);
	tcase_add_test(tc, test_ops_declare_no_ioctls_and_cap_net_raw);
	tcase_add_test(tc, test_response_match_direct);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mctp_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
