/*
 * The mctp transport: a CXL component's CCI reached over MCTP through the
 * kernel's AF_MCTP sockets (BMCs and fabric managers reach switches and
 * devices this way, over I2C, PCIe VDM or serial links).
 *
 * Each command is one CCI message (transports/cci.c) sent as MCTP message
 * type 07h (CXL FM API, command sets 51h-59h) or 08h (CXL CCI, everything
 * else) with the tag-owner bit, so the kernel allocates an MCTP tag and
 * routes the answer back to this socket. The answer is untrusted: it must
 * come from the configured network and EID, carry the same message type,
 * the CCI tag and opcode of the request, and a length field that agrees
 * with the bytes that arrived. Anything else that arrives meanwhile (a late
 * answer to a request that timed out, a stray message) is discarded and
 * counted.
 *
 * The endpoint is configured by network and EID, and reached through the
 * kernel's routing table; with "interface" it is reached directly on that
 * link instead (extended addressing, for links without hardware addresses,
 * such as serial), needing no route.
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/mctp.h>

#include "cci.h"
#include "transport.h"

#define MCTP_MSG_TYPE_FMAPI  0x07 /* DSP0234: CXL FM API over MCTP */
#define MCTP_MSG_TYPE_CCI    0x08 /* DSP0281: CXL CCI over MCTP */
#define MCTP_FMAPI_SET_FIRST 0x51
#define MCTP_FMAPI_SET_LAST  0x59
#define MCTP_EID_FIRST       8   /* DSP0236: 0 null, 1-7 reserved */
#define MCTP_EID_LAST        254 /* 255 broadcast */
/* The kernel reassembles messages up to 64 KiB, the type byte included. */
#define MCTP_MSG_MAX (64u * 1024)
/* The largest power-of-two payload that fits: a mailbox size the broker can chunk by. */
#define MCTP_PAYLOAD_LIMIT      (32u * 1024)
#define MCTP_PAYLOAD_MIN        256u  /* the smallest message size Identify may report */
#define MCTP_DEFAULT_TIMEOUT_MS 2000u /* CXL r3.1 9.20.2: the MCTP CCI response time */
#define MCTP_TAG_RETRY_MS       20u

#define MCTP_OP_IDENTIFY      0x0001
#define MCTP_IDENTIFY_SIZE    18 /* CXL r3.1 Table 8-37 */
#define MCTP_COMPONENT_SWITCH 0x00
#define MCTP_COMPONENT_TYPE3  0x03

struct mctp {
	int fd;
	uint32_t net; /* MCTP_NET_ANY: the kernel's default network */
	uint8_t eid;
	int ifindex; /* direct addressing on this link; 0 routes */
	uint8_t next_tag;
	uint64_t discarded; /* late or unmatched messages dropped */
	uint8_t *buf;       /* MCTP_MSG_MAX bytes: the request out, then the answers in */
	struct mbx_transport_info info;
};

/* The socket calls; the unit test replaces them with a socketpair stand-in. */
struct mctp_io {
	ssize_t (*send)(int fd, const void *buf, size_t len, const struct sockaddr_mctp_ext *to,
			socklen_t tolen);
	ssize_t (*recv)(int fd, void *buf, size_t cap, struct sockaddr_mctp_ext *from,
			socklen_t *fromlen);
};

/* Sends one message to an AF_MCTP address. */
static ssize_t mctp_kernel_send(int fd, const void *buf, size_t len,
				const struct sockaddr_mctp_ext *to, socklen_t tolen)
{
	return sendto(fd, buf, len, 0, (const struct sockaddr *)to, tolen);
}

/* Receives one message; MSG_TRUNC makes the return value its real size. */
static ssize_t mctp_kernel_recv(int fd, void *buf, size_t cap, struct sockaddr_mctp_ext *from,
				socklen_t *fromlen)
{
	return recvfrom(fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)from, fromlen);
}

static const struct mctp_io mctp_io_kernel = {.send = mctp_kernel_send, .recv = mctp_kernel_recv};
static const struct mctp_io *mctp_io = &mctp_io_kernel;

static const char *const mctp_options[] = {"net", "eid", "interface", NULL};

/* CLOCK_MONOTONIC in milliseconds: deadlines ignore wall-clock steps. */
static uint64_t mctp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The MCTP message type a command travels as: FM API for sets 51h-59h. */
static uint8_t mctp_msg_type(uint16_t opcode)
{
	unsigned set = opcode >> 8;

	return set >= MCTP_FMAPI_SET_FIRST && set <= MCTP_FMAPI_SET_LAST ? MCTP_MSG_TYPE_FMAPI
									 : MCTP_MSG_TYPE_CCI;
}

/* The endpoint as messages name it. */
static void mctp_peer_name(const struct mctp *m, char *buf, size_t len)
{
	if (m->net == MCTP_NET_ANY)
		transport_msg(buf, len, "MCTP EID %u", m->eid);
	else
		transport_msg(buf, len, "MCTP net %" PRIu32 " EID %u", m->net, m->eid);
}

/* The destination of requests: routed, or direct on the configured link. */
static socklen_t mctp_dest(const struct mctp *m, uint8_t type, struct sockaddr_mctp_ext *to)
{
	memset(to, 0, sizeof(*to));
	to->smctp_base.smctp_family = AF_MCTP;
	to->smctp_base.smctp_network = m->net;
	to->smctp_base.smctp_addr.s_addr = m->eid;
	to->smctp_base.smctp_type = type;
	to->smctp_base.smctp_tag = MCTP_TAG_OWNER; /* the kernel picks the tag, answers come back */
	if (!m->ifindex)
		return sizeof(to->smctp_base);
	to->smctp_ifindex = m->ifindex;
	to->smctp_halen = 0;
	return sizeof(*to);
}

/* Encodes the request as one CCI message in m->buf; returns its size. */
static size_t mctp_build_request(struct mctp *m, const struct mbx_transport_cmd *cmd, uint8_t tag)
{
	struct cci_msg req = {
	    .category = CCI_CATEGORY_REQUEST,
	    .tag = tag,
	    .opcode = cmd->opcode,
	    .payload = cmd->in,
	    .payload_len = (uint32_t)cmd->in_len,
	};

	/* Cannot fail: submit checked in_len against payload_max, far below MCTP_MSG_MAX. */
	return (size_t)cci_encode(m->buf, MCTP_MSG_MAX, &req);
}

/* Names a send error; EACCES and EHOSTUNREACH have causes an operator can fix. */
static void mctp_send_error(const struct mctp *m, struct mbx_transport_cmd *cmd, int e)
{
	char peer[48];

	mctp_peer_name(m, peer, sizeof(peer));
	if (e == EACCES || e == EPERM)
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: sending to %s needs CAP_NET_RAW, which this process lacks",
			      peer);
	else if (e == EHOSTUNREACH || e == ENETUNREACH)
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: no route to %s (add one with rtnetlink, or set interface)",
			      peer);
	else
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: sending opcode %04xh to %s: %s", cmd->opcode, peer,
			      strerror(e));
}

/* Sleeps ms milliseconds, resuming after signals. */
static void mctp_sleep_ms(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/*
 * Sends the request. The kernel holds a tag for each request until its
 * answer or about 6 s, 8 per peer: requests that timed out can use them all
 * up (EBUSY), so wait for one to free within the command's time.
 */
static int mctp_send_request(struct mctp *m, struct mbx_transport_cmd *cmd, uint8_t tag,
			     uint64_t deadline)
{
	struct sockaddr_mctp_ext to;
	socklen_t tolen = mctp_dest(m, mctp_msg_type(cmd->opcode), &to);
	size_t len = mctp_build_request(m, cmd, tag);
	char peer[48];

	for (;;) {
		ssize_t n = mctp_io->send(m->fd, m->buf, len, &to, tolen);

		if (n >= 0 && (size_t)n == len)
			return MBX_XPORT_OK;
		if (n >= 0) {
			transport_msg(cmd->error, sizeof(cmd->error),
				      "mctp: short send of opcode %04xh: %zd of %zu bytes",
				      cmd->opcode, n, len);
			return MBX_XPORT_IO;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EBUSY || errno == EAGAIN) && mctp_now_ms() < deadline) {
			mctp_sleep_ms(MCTP_TAG_RETRY_MS);
			continue;
		}
		if (errno == EBUSY || errno == EAGAIN) {
			mctp_peer_name(m, peer, sizeof(peer));
			transport_msg(cmd->error, sizeof(cmd->error),
				      "mctp: no free MCTP tag for %s within %" PRIu32
				      " ms (earlier requests still await answers)",
				      peer, cmd->timeout_ms);
			return MBX_XPORT_TIMEOUT;
		}
		mctp_send_error(m, cmd, errno);
		return MBX_XPORT_IO;
	}
}

/* Whether an arriving message comes from the endpoint as an answer of the request's type. */
static bool mctp_from_peer(const struct mctp *m, const struct sockaddr_mctp_ext *from,
			   socklen_t fromlen, uint8_t type)
{
	const struct sockaddr_mctp *a = &from->smctp_base;

	return fromlen >= sizeof(*a) && a->smctp_family == AF_MCTP &&
	       (m->net == MCTP_NET_ANY || a->smctp_network == m->net) &&
	       a->smctp_addr.s_addr == m->eid && !(a->smctp_tag & MCTP_TAG_OWNER) &&
	       a->smctp_type == type;
}

/* Copies a matched answer into the command; refuses one that would not fit. */
static int mctp_deliver(const struct mctp *m, struct mbx_transport_cmd *cmd,
			const struct cci_msg *rsp)
{
	char peer[48];

	if (rsp->payload_len > cmd->out_cap) {
		mctp_peer_name(m, peer, sizeof(peer));
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: %s answered opcode %04xh with %" PRIu32
			      " payload bytes, more than the %zu-byte buffer",
			      peer, cmd->opcode, rsp->payload_len, cmd->out_cap);
		return MBX_XPORT_BAD_RESPONSE;
	}
	if (rsp->payload_len)
		memcpy(cmd->out, rsp->payload, rsp->payload_len);
	cmd->out_len = rsp->payload_len;
	cmd->cxl_rc = rsp->rc;
	cmd->vendor_status = rsp->vendor_status;
	return MBX_XPORT_OK;
}

/*
 * Judges one arrival: -EAGAIN to keep waiting (it was not ours, counted),
 * else the submit result.
 */
static int mctp_judge(struct mctp *m, struct mbx_transport_cmd *cmd, uint8_t tag,
		      const struct sockaddr_mctp_ext *from, socklen_t fromlen, size_t n)
{
	struct cci_msg rsp;
	const char *why = "";
	char peer[48];
	size_t len =
	    n < MCTP_MSG_MAX ? n : MCTP_MSG_MAX; /* a truncated one fails its length check */

	if (!mctp_from_peer(m, from, fromlen, mctp_msg_type(cmd->opcode))) {
		m->discarded++;
		return -EAGAIN;
	}
	switch (cci_response_match(m->buf, len, tag, cmd->opcode, &rsp, &why)) {
	case CCI_MATCH_OK:
		return mctp_deliver(m, cmd, &rsp);
	case CCI_MATCH_MALFORMED:
		mctp_peer_name(m, peer, sizeof(peer));
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: malformed answer from %s to opcode %04xh (%zu bytes): %s",
			      peer, cmd->opcode, n, why);
		return MBX_XPORT_BAD_RESPONSE;
	case CCI_MATCH_OTHER:
		break;
	}
	m->discarded++;
	return -EAGAIN;
}

/* Reports a timeout, with the count of discarded messages when there were any. */
static int mctp_timeout(const struct mctp *m, struct mbx_transport_cmd *cmd, uint32_t ms)
{
	char peer[48];

	mctp_peer_name(m, peer, sizeof(peer));
	transport_msg(cmd->error, sizeof(cmd->error),
		      "mctp: no answer from %s to opcode %04xh within %" PRIu32 " ms", peer,
		      cmd->opcode, ms);
	if (m->discarded) {
		size_t used = strlen(cmd->error);

		transport_msg(cmd->error + used, sizeof(cmd->error) - used,
			      " (%" PRIu64 " late or unmatched messages discarded so far)",
			      m->discarded);
	}
	return MBX_XPORT_TIMEOUT;
}

/* Waits for the answer with this tag until the deadline, discarding the rest. */
static int mctp_await(struct mctp *m, struct mbx_transport_cmd *cmd, uint8_t tag, uint64_t deadline,
		      uint32_t ms)
{
	for (;;) {
		struct pollfd p = {.fd = m->fd, .events = POLLIN};
		struct sockaddr_mctp_ext from;
		socklen_t fromlen = sizeof(from);
		uint64_t now = mctp_now_ms();
		ssize_t n;
		int rc;

		if (now >= deadline)
			return mctp_timeout(m, cmd, ms);
		rc = poll(&p, 1, (int)(deadline - now));
		if (rc < 0 && errno != EINTR) {
			transport_msg(cmd->error, sizeof(cmd->error), "mctp: poll: %s",
				      strerror(errno));
			return MBX_XPORT_IO;
		}
		if (rc <= 0)
			continue;
		memset(&from, 0, sizeof(from));
		n = mctp_io->recv(m->fd, m->buf, MCTP_MSG_MAX, &from, &fromlen);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			transport_msg(cmd->error, sizeof(cmd->error), "mctp: receiving: %s",
				      strerror(errno));
			return MBX_XPORT_IO;
		}
		rc = mctp_judge(m, cmd, tag, &from, fromlen, (size_t)n);
		if (rc != -EAGAIN)
			return rc;
	}
}

/* Runs one command: send, then wait for its answer. */
static int mctp_submit(void *priv, struct mbx_transport_cmd *cmd)
{
	struct mctp *m = priv;
	uint32_t ms = cmd->timeout_ms ? cmd->timeout_ms : MCTP_DEFAULT_TIMEOUT_MS;
	uint64_t deadline = mctp_now_ms() + ms;
	uint8_t tag = m->next_tag++;
	int rc;

	cmd->out_len = 0;
	cmd->cxl_rc = 0;
	cmd->vendor_status = 0;
	cmd->error[0] = '\0';
	if (cmd->in_len > m->info.payload_max) {
		transport_msg(cmd->error, sizeof(cmd->error),
			      "mctp: %zu-byte input payload exceeds the %" PRIu32
			      "-byte maximum message size of this endpoint",
			      cmd->in_len, m->info.payload_max);
		return MBX_XPORT_TOO_BIG;
	}
	rc = mctp_send_request(m, cmd, tag, deadline);
	if (rc != MBX_XPORT_OK)
		return rc;
	return mctp_await(m, cmd, tag, deadline, ms);
}

/* Reads eid (required), net and interface (a link name) into m; resolves nothing. */
static int mctp_read_options(struct mctp *m, const struct mbx_transport_config *cfg, char *err,
			     size_t errlen)
{
	const char *ifname = transport_option(cfg, "interface");
	uint64_t net = MCTP_NET_ANY, eid = 0;
	int rc;

	if (!transport_option(cfg, "eid"))
		return transport_option_error(cfg, NULL, err, errlen,
					      "mctp needs eid (the endpoint's EID, %u-%u)",
					      MCTP_EID_FIRST, MCTP_EID_LAST);
	if ((rc = transport_option_u64(cfg, "eid", MCTP_EID_FIRST, MCTP_EID_LAST, &eid, err,
				       errlen)) < 0 ||
	    (rc = transport_option_u64(cfg, "net", 0, UINT32_MAX, &net, err, errlen)) < 0)
		return rc;
	if (ifname && (ifname[0] == '\0' || strlen(ifname) >= IFNAMSIZ))
		return transport_option_error(cfg, "interface", err, errlen,
					      "\"%s\" is not a link name (1 to %d characters)",
					      ifname, IFNAMSIZ - 1);
	m->eid = (uint8_t)eid;
	m->net = (uint32_t)net;
	return 0;
}

/* Checks the options as mctp_open reads them, opening no socket. */
static int mctp_check(const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	struct mctp m;

	memset(&m, 0, sizeof(m));
	return mctp_read_options(&m, cfg, err, errlen);
}

/* Reads the options, then finds the named link. */
static int mctp_open_options(struct mctp *m, const struct mbx_transport_config *cfg, char *err,
			     size_t errlen)
{
	const char *ifname = transport_option(cfg, "interface");
	int rc;

	if ((rc = mctp_read_options(m, cfg, err, errlen)) < 0)
		return rc;
	if (ifname) {
		m->ifindex = (int)if_nametoindex(ifname);
		if (!m->ifindex) {
			transport_option_error(cfg, "interface", err, errlen, "\"%s\": %s", ifname,
					       strerror(errno));
			return -ENODEV;
		}
	}
	return 0;
}

/* Opens the AF_MCTP socket, with extended addressing when a link is named. */
static int mctp_open_socket(struct mctp *m, const struct mbx_transport_config *cfg, char *err,
			    size_t errlen)
{
	int one = 1, e;

	m->fd = socket(AF_MCTP, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0) {
		e = errno;
		if (e == EAFNOSUPPORT)
			transport_msg(
			    err, errlen,
			    "device %s: this kernel has no MCTP sockets (CONFIG_MCTP is off)",
			    cfg->device_name);
		else
			transport_msg(err, errlen, "device %s: socket(AF_MCTP): %s",
				      cfg->device_name, strerror(e));
		return -e;
	}
	if (m->ifindex && setsockopt(m->fd, SOL_MCTP, MCTP_OPT_ADDR_EXT, &one, sizeof(one)) < 0) {
		e = errno;
		transport_msg(err, errlen, "device %s: MCTP extended addressing: %s",
			      cfg->device_name, strerror(e));
		return -e;
	}
	return 0;
}

/* Fills info from an Identify (0001h) answer; refuses what no CXL component says. */
static int mctp_learn(struct mctp *m, const uint8_t *id, const char *device, char *err,
		      size_t errlen)
{
	uint64_t serial = 0;
	unsigned shift = id[16];
	char peer[48];

	mctp_peer_name(m, peer, sizeof(peer));
	if (id[17] != MCTP_COMPONENT_SWITCH && id[17] != MCTP_COMPONENT_TYPE3) {
		transport_msg(err, errlen,
			      "device %s: %s is component type %02xh, not a switch or a "
			      "Type 3 device",
			      device, peer, id[17]);
		return -ENODEV;
	}
	if (shift < 8 || shift > 20) {
		transport_msg(err, errlen,
			      "device %s: %s reports a maximum message size of 2^%u "
			      "(CXL allows 2^8 to 2^20)",
			      device, peer, shift);
		return -EPROTO;
	}
	for (int i = 7; i >= 0; i--)
		serial = serial << 8 | id[8 + i];
	memset(&m->info, 0, sizeof(m->info));
	transport_msg(m->info.kind, sizeof(m->info.kind), "%s",
		      id[17] == MCTP_COMPONENT_SWITCH ? "switch" : "memdev");
	transport_msg(m->info.model, sizeof(m->info.model), "%04x:%04x at %s",
		      (unsigned)(id[0] | id[1] << 8), (unsigned)(id[2] | id[3] << 8), peer);
	transport_msg(m->info.serial, sizeof(m->info.serial), "0x%016" PRIx64, serial);
	m->info.payload_max = 1u << shift < MCTP_PAYLOAD_LIMIT ? 1u << shift : MCTP_PAYLOAD_LIMIT;
	return 0;
}

/* Asks the endpoint what it is: Identify, with the default timeout. */
static int mctp_identify(struct mctp *m, const char *device, char *err, size_t errlen)
{
	uint8_t id[MCTP_IDENTIFY_SIZE];
	struct mbx_transport_cmd cmd = {
	    .opcode = MCTP_OP_IDENTIFY,
	    .out = id,
	    .out_cap = sizeof(id),
	    .timeout_ms = MCTP_DEFAULT_TIMEOUT_MS,
	};
	int rc;

	m->info.payload_max = MCTP_PAYLOAD_MIN; /* enough for Identify's empty input */
	rc = mctp_submit(m, &cmd);
	if (rc != MBX_XPORT_OK) {
		transport_msg(err, errlen, "device %s: Identify failed at open: %s", device,
			      cmd.error);
		return rc == MBX_XPORT_TIMEOUT ? -ETIMEDOUT : -EIO;
	}
	if (cmd.cxl_rc != 0 || cmd.out_len != MCTP_IDENTIFY_SIZE) {
		transport_msg(err, errlen,
			      "device %s: Identify answered return code %04xh with %zu bytes "
			      "(want 0000h and %d)",
			      device, cmd.cxl_rc, cmd.out_len, MCTP_IDENTIFY_SIZE);
		return -EPROTO;
	}
	return mctp_learn(m, id, device, err, errlen);
}

static void mctp_close(void *priv);

/* Opens the endpoint: options, socket, then Identify to learn what it is. */
static int mctp_open(void *priv, const struct mbx_transport_config *cfg, char *err, size_t errlen)
{
	struct mctp *m = priv;
	int rc;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	/* A restarted daemon starts at another tag than a stale answer may carry. */
	m->next_tag = (uint8_t)(mctp_now_ms() ^ (uint64_t)getpid());
	if ((rc = mctp_open_options(m, cfg, err, errlen)) < 0 ||
	    (rc = mctp_open_socket(m, cfg, err, errlen)) < 0)
		goto fail;
	m->buf = malloc(MCTP_MSG_MAX);
	if (!m->buf) {
		transport_msg(err, errlen, "device %s: out of memory", cfg->device_name);
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = mctp_identify(m, cfg->device_name, err, errlen)) < 0)
		goto fail;
	return 0;
fail:
	mctp_close(m);
	return rc;
}

/* Closes the socket; the broker frees priv itself. */
static void mctp_close(void *priv)
{
	struct mctp *m = priv;

	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	free(m->buf);
	m->buf = NULL;
}

/* Describes the endpoint as Identify named it at open. */
static void mctp_describe(void *priv, struct mbx_transport_info *info)
{
	struct mctp *m = priv;

	*info = m->info;
}

const struct mbx_transport_ops mctp_transport_ops = {
    .name = "mctp",
    .priv_size = sizeof(struct mctp),
    .options = mctp_options,
    .ioctls = NULL,
    .n_ioctls = 0,
    .caps = 1ull << CAP_NET_RAW,
    .check = mctp_check,
    .open = mctp_open,
    .close = mctp_close,
    .describe = mctp_describe,
    .submit = mctp_submit,
};
