/*
 * mctp-endpoint: a CXL MCTP endpoint at the far end of a serial link, for
 * testing the mctp transport against the kernel's real MCTP stack.
 *
 * It opens a pty pair, puts the N_MCTP line discipline on the slave side (the
 * kernel makes an mctpserialN interface of it) and speaks the MCTP serial
 * binding on the master side: frames (mctp-serial.c), packets and
 * reassembly (mctp-packet.c), then CCI (08h) and FM API (07h) messages,
 * answered by the project's sim device models through sim_transport_ops.
 * One process may answer as several EIDs on the one link (the kernel routes
 * each EID to the interface), each its own sim model.
 *
 * Faults on command, for the tests: SIGUSR1 makes it ignore the next
 * request (the requester times out), SIGUSR2 makes the next answer lie
 * about its length (header says 16 bytes more than it carries), SIGHUP
 * makes the next answer come --late-ms late (after the requester gave up).
 *
 * Usage: mctp-endpoint [-v] [--ready FILE] [--late-ms N] --eid EID:MODEL...
 *   MODEL is memdev or switch (a switch with a memory device on port 1).
 *   FILE receives the interface name once the link exists.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cci.h"
#include "mctp-packet.h"
#include "mctp-serial.h"
#include "transport.h"

extern const struct mbx_transport_ops sim_transport_ops;

#ifndef N_MCTP
#define N_MCTP 28
#endif
#define ENDPOINT_DEVS_MAX          8
#define ENDPOINT_PAYLOAD_MAX       4096u /* the sim's default mailbox */
#define ENDPOINT_TYPE_FMAPI        0x07
#define ENDPOINT_TYPE_CCI          0x08
#define ENDPOINT_RC_INTERNAL       0x0004
#define ENDPOINT_RC_UNSUPPORTED    0x0003
#define ENDPOINT_RC_PAYLOAD_LENGTH 0x0016
#define ENDPOINT_RC_BACKGROUND     0x0001
#define ENDPOINT_LIE_BYTES         16
#define ENDPOINT_NET_DIR           "/sys/class/net"

struct endpoint_dev {
	uint8_t eid;
	const char *model;
	void *priv; /* the sim's state */
	uint8_t out[ENDPOINT_PAYLOAD_MAX];
};

/* An answer held back by the "late" fault. */
struct endpoint_late {
	bool pending;
	uint64_t due_ms;
	struct mctp_packet_addr addr;
	size_t len;
	uint8_t msg[1 + CCI_HEADER_SIZE + ENDPOINT_PAYLOAD_MAX];
};

struct endpoint {
	int master, slave;
	bool verbose;
	unsigned late_ms;
	struct endpoint_dev devs[ENDPOINT_DEVS_MAX];
	size_t n_devs;
	struct mctp_serial_rx rx;
	struct mctp_packet_reasm reasm;
	struct endpoint_late late;
	uint8_t rsp[1 + CCI_HEADER_SIZE + ENDPOINT_PAYLOAD_MAX];
};

static volatile sig_atomic_t endpoint_silent, endpoint_lie, endpoint_delay, endpoint_stop;

/* Records a fault asked for by signal; the next request plays it. */
static void endpoint_signal(int sig)
{
	if (sig == SIGUSR1)
		endpoint_silent = 1;
	else if (sig == SIGUSR2)
		endpoint_lie = 1;
	else if (sig == SIGHUP)
		endpoint_delay = 1;
	else
		endpoint_stop = 1;
}

/* CLOCK_MONOTONIC in milliseconds. */
static uint64_t endpoint_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Writes all of buf to the link. */
static int endpoint_write(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Frames one packet onto the link. */
static int endpoint_emit(void *ctx, const uint8_t *pkt, size_t len)
{
	struct endpoint *ep = ctx;
	uint8_t frame[MCTP_SERIAL_FRAME_MAX];
	int n = mctp_serial_encode(pkt, len, frame, sizeof(frame));

	return n < 0 ? n : endpoint_write(ep->master, frame, (size_t)n);
}

/* Sends one message (type byte first), split into packets. */
static void endpoint_send(struct endpoint *ep, const struct mctp_packet_addr *a, const uint8_t *msg,
			  size_t len)
{
	int rc = mctp_packet_split(a, msg, len, endpoint_emit, ep);

	if (rc < 0)
		fprintf(stderr, "mctp-endpoint: sending to EID %u: %s\n", a->dest, strerror(-rc));
}

/* The device answering as eid, or NULL. */
static struct endpoint_dev *endpoint_find(struct endpoint *ep, uint8_t eid)
{
	for (size_t i = 0; i < ep->n_devs; i++)
		if (ep->devs[i].eid == eid)
			return &ep->devs[i];
	return NULL;
}

/* Runs one request on the device's sim model; returns the CXL return code. */
static uint16_t endpoint_run(struct endpoint_dev *d, uint8_t type, const struct cci_msg *req,
			     size_t *out_len)
{
	unsigned set = req->opcode >> 8;
	uint8_t want = set >= 0x51 && set <= 0x59 ? ENDPOINT_TYPE_FMAPI : ENDPOINT_TYPE_CCI;
	struct mbx_transport_cmd cmd = {
	    .opcode = req->opcode,
	    .in = req->payload,
	    .in_len = req->payload_len,
	    .out = d->out,
	    .out_cap = sizeof(d->out),
	    .timeout_ms = 2000,
	};
	int xrc;

	*out_len = 0;
	/* FM API commands travel as type 07h, everything else as 08h (DSP0234, DSP0281). */
	if (type != want)
		return ENDPOINT_RC_UNSUPPORTED;
	xrc = sim_transport_ops.submit(d->priv, &cmd);
	if (xrc == MBX_XPORT_TOO_BIG)
		return ENDPOINT_RC_PAYLOAD_LENGTH;
	if (xrc != MBX_XPORT_OK)
		return ENDPOINT_RC_INTERNAL;
	*out_len = cmd.out_len;
	return cmd.cxl_rc;
}

/* Builds the answer (type byte first) in ep->rsp; plays the "lie" fault. */
static size_t endpoint_answer(struct endpoint *ep, uint8_t type, const struct cci_msg *req,
			      uint16_t rc, const uint8_t *out, size_t out_len)
{
	struct cci_msg rsp = {
	    .category = CCI_CATEGORY_RESPONSE,
	    .tag = req->tag,
	    .opcode = req->opcode,
	    .background = rc == ENDPOINT_RC_BACKGROUND,
	    .rc = rc,
	    .payload = out,
	    .payload_len = (uint32_t)out_len,
	};
	int n;

	ep->rsp[0] = type;
	n = cci_encode(ep->rsp + 1, sizeof(ep->rsp) - 1, &rsp);
	if (n < 0)
		return 0;
	if (endpoint_lie) {
		uint32_t said = (uint32_t)out_len + ENDPOINT_LIE_BYTES;

		endpoint_lie = 0;
		ep->rsp[1 + 5] = (uint8_t)said;
		ep->rsp[1 + 6] = (uint8_t)(said >> 8);
		ep->rsp[1 + 7] = (uint8_t)((ep->rsp[1 + 7] & 0xf0) | ((said >> 16) & 0x0f));
		fprintf(stderr,
			"mctp-endpoint: opcode %04xh: the answer says %u payload bytes, "
			"carries %zu (as asked)\n",
			req->opcode, said, out_len);
	}
	return 1 + (size_t)n;
}

/* Sends the answer now, or holds it for the "late" fault. */
static void endpoint_reply(struct endpoint *ep, const struct mctp_packet_addr *to, size_t len,
			   uint16_t opcode)
{
	if (!endpoint_delay) {
		endpoint_send(ep, to, ep->rsp, len);
		return;
	}
	endpoint_delay = 0;
	ep->late.pending = true;
	ep->late.due_ms = endpoint_now_ms() + ep->late_ms;
	ep->late.addr = *to;
	ep->late.len = len;
	memcpy(ep->late.msg, ep->rsp, len);
	fprintf(stderr, "mctp-endpoint: opcode %04xh: answering %u ms late (as asked)\n", opcode,
		ep->late_ms);
}

/* Answers one reassembled message, if it is a CCI or FM API request to one of ours. */
static void endpoint_message(struct endpoint *ep, const struct mctp_packet_addr *a,
			     const uint8_t *msg, size_t len)
{
	struct endpoint_dev *d = endpoint_find(ep, a->dest);
	struct mctp_packet_addr to = {.dest = a->src, .src = a->dest, .tag = a->tag};
	struct cci_msg req;
	uint16_t rc;
	size_t out_len;

	if (!d || !a->tag_owner || (msg[0] != ENDPOINT_TYPE_CCI && msg[0] != ENDPOINT_TYPE_FMAPI) ||
	    cci_decode(msg + 1, len - 1, &req) != 0 || req.category != CCI_CATEGORY_REQUEST) {
		fprintf(stderr, "mctp-endpoint: ignored a %zu-byte message to EID %u type %02xh\n",
			len, a->dest, msg[0]);
		return;
	}
	if (ep->verbose)
		fprintf(stderr,
			"mctp-endpoint: EID %u <- EID %u type %02xh opcode %04xh, %" PRIu32
			" bytes\n",
			a->dest, a->src, msg[0], req.opcode, req.payload_len);
	if (endpoint_silent) {
		endpoint_silent = 0;
		fprintf(stderr, "mctp-endpoint: opcode %04xh: no answer (as asked)\n", req.opcode);
		return;
	}
	rc = endpoint_run(d, msg[0], &req, &out_len);
	len = endpoint_answer(ep, msg[0], &req, rc, d->out, out_len);
	if (len)
		endpoint_reply(ep, &to, len, req.opcode);
}

/* Feeds bytes from the link through framing and reassembly. */
static void endpoint_input(struct endpoint *ep, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *pkt;
		size_t len;

		if (!mctp_serial_push(&ep->rx, buf[i], &pkt, &len))
			continue;
		if (mctp_packet_push(&ep->reasm, pkt, len) == 1 && ep->reasm.len > 0)
			endpoint_message(ep, &ep->reasm.addr, ep->reasm.buf, ep->reasm.len);
	}
}

/* Opens one sim model for --eid EID:MODEL. */
static int endpoint_add(struct endpoint *ep, const char *spec)
{
	char *end;
	unsigned long eid = strtoul(spec, &end, 0);
	struct endpoint_dev *d;
	struct mbx_transport_option opt = {.key = "model", .line = 0};
	struct mbx_transport_config cfg = {.config_file = "mctp-endpoint", .n_options = 1};
	char err[256];
	int rc;

	if (end == spec || *end != ':' || eid == 0 || eid > 254 ||
	    ep->n_devs == ENDPOINT_DEVS_MAX) {
		fprintf(stderr, "mctp-endpoint: --eid %s: want EID:MODEL, EID 1-254\n", spec);
		return -1;
	}
	d = &ep->devs[ep->n_devs];
	d->eid = (uint8_t)eid;
	d->model = end + 1;
	d->priv = calloc(1, sim_transport_ops.priv_size);
	if (!d->priv)
		return -1;
	opt.value = d->model;
	cfg.device_name = d->model;
	cfg.options = &opt;
	if ((rc = sim_transport_ops.open(d->priv, &cfg, err, sizeof(err))) < 0) {
		fprintf(stderr, "mctp-endpoint: --eid %s: %s\n", spec, err);
		return -1;
	}
	ep->n_devs++;
	return 0;
}

/* Whether name is an mctpserial interface. */
static bool endpoint_is_link(const char *name)
{
	return strncmp(name, "mctpserial", 10) == 0;
}

/* Collects the mctpserial interfaces that exist now, newline-separated. */
static void endpoint_links(char *buf, size_t len)
{
	DIR *dir = opendir(ENDPOINT_NET_DIR);
	struct dirent *e;
	size_t used = 0;

	buf[0] = '\0';
	if (!dir)
		return;
	while ((e = readdir(dir)) && used + strlen(e->d_name) + 2 < len)
		if (endpoint_is_link(e->d_name))
			used += (size_t)snprintf(buf + used, len - used, "%s\n", e->d_name);
	closedir(dir);
}

/* Finds the interface that is in after but was not in before. */
static int endpoint_new_link(const char *before, const char *after, char *name, size_t len)
{
	const char *p = after;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = (size_t)(nl - p);
		char line[64];

		if (n < sizeof(line)) {
			memcpy(line, p, n);
			line[n] = '\0';
			strcat(line, "\n");
			if (!strstr(before, line) && n < len) {
				memcpy(name, p, n);
				name[n] = '\0';
				return 0;
			}
		}
		p = nl + 1;
	}
	return -1;
}

/* Makes a tty raw: the link carries binary frames. */
static int endpoint_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -1;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t);
}

/* Opens the pty pair and makes the kernel's MCTP interface on its slave side. */
static int endpoint_link(struct endpoint *ep, char *ifname, size_t len)
{
	int ldisc = N_MCTP;
	char before[1024], after[1024];
	const char *slave;

	ep->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ep->master < 0 || grantpt(ep->master) < 0 || unlockpt(ep->master) < 0 ||
	    !(slave = ptsname(ep->master))) {
		fprintf(stderr, "mctp-endpoint: pty: %s\n", strerror(errno));
		return -1;
	}
	ep->slave = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (ep->slave < 0 || endpoint_raw(ep->master) < 0 || endpoint_raw(ep->slave) < 0) {
		fprintf(stderr, "mctp-endpoint: %s: %s\n", slave, strerror(errno));
		return -1;
	}
	endpoint_links(before, sizeof(before));
	if (ioctl(ep->slave, TIOCSETD, &ldisc) < 0) {
		fprintf(stderr, "mctp-endpoint: TIOCSETD N_MCTP on %s: %s (CONFIG_MCTP_SERIAL?)\n",
			slave, strerror(errno));
		return -1;
	}
	endpoint_links(after, sizeof(after));
	if (endpoint_new_link(before, after, ifname, len) < 0) {
		fprintf(stderr, "mctp-endpoint: no new mctpserial interface in %s\n",
			ENDPOINT_NET_DIR);
		return -1;
	}
	return 0;
}

/* Writes the interface name to FILE atomically: its appearance means ready. */
static int endpoint_ready(const char *file, const char *ifname)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", ifname) < 0 || fclose(f) != 0 || rename(tmp, file) < 0) {
		fprintf(stderr, "mctp-endpoint: %s: %s\n", file, strerror(errno));
		return -1;
	}
	return 0;
}

/* Sends the held answer once it is due; returns the poll timeout until then. */
static int endpoint_late_poll(struct endpoint *ep)
{
	uint64_t now = endpoint_now_ms();

	if (!ep->late.pending)
		return -1;
	if (now < ep->late.due_ms)
		return (int)(ep->late.due_ms - now);
	ep->late.pending = false;
	fprintf(stderr, "mctp-endpoint: sending the late answer now\n");
	endpoint_send(ep, &ep->late.addr, ep->late.msg, ep->late.len);
	return -1;
}

/* Serves the link until SIGTERM or the link closes. */
static int endpoint_serve(struct endpoint *ep)
{
	uint8_t buf[4096];

	while (!endpoint_stop) {
		struct pollfd p = {.fd = ep->master, .events = POLLIN};
		int rc = poll(&p, 1, endpoint_late_poll(ep));
		ssize_t n;

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		n = read(ep->master, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			fprintf(stderr, "mctp-endpoint: link closed\n");
			return n < 0 ? -1 : 0;
		}
		endpoint_input(ep, buf, (size_t)n);
	}
	return 0;
}

/* Installs the fault and stop handlers, without SA_RESTART so poll wakes. */
static void endpoint_signals(void)
{
	struct sigaction sa = {.sa_handler = endpoint_signal};
	static const int sigs[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGTERM, SIGINT};

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Parses the command line into ep; returns the ready file or NULL. */
static int endpoint_args(struct endpoint *ep, int argc, char **argv, const char **ready)
{
	static const struct option opts[] = {
	    {"eid", required_argument, NULL, 'e'},
	    {"ready", required_argument, NULL, 'r'},
	    {"late-ms", required_argument, NULL, 'l'},
	    {"verbose", no_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "e:r:l:v", opts, NULL)) != -1) {
		if (c == 'e' && endpoint_add(ep, optarg) < 0)
			return -1;
		else if (c == 'r')
			*ready = optarg;
		else if (c == 'l')
			ep->late_ms = (unsigned)strtoul(optarg, NULL, 0);
		else if (c == 'v')
			ep->verbose = true;
		else if (c != 'e')
			return -1;
	}
	if (ep->n_devs == 0 || optind != argc) {
		fprintf(stderr, "usage: mctp-endpoint [-v] [--ready FILE] [--late-ms N] "
				"--eid EID:MODEL...\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct endpoint ep = {.master = -1, .slave = -1, .late_ms = 3000};
	const char *ready = NULL;
	char ifname[64];

	if (endpoint_args(&ep, argc, argv, &ready) < 0)
		return 2;
	mctp_serial_rx_init(&ep.rx);
	mctp_packet_reasm_init(&ep.reasm);
	endpoint_signals();
	if (endpoint_link(&ep, ifname, sizeof(ifname)) < 0)
		return 1;
	for (size_t i = 0; i < ep.n_devs; i++)
		fprintf(stderr, "mctp-endpoint: %s answers as EID %u on %s\n", ep.devs[i].model,
			ep.devs[i].eid, ifname);
	if (ready && endpoint_ready(ready, ifname) < 0)
		return 1;
	return endpoint_serve(&ep) < 0 ? 1 : 0;
}
