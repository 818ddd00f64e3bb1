/* The connection to mbxd: connect, send one command (through a tunnel if asked). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"
#include "cci.h"

/* A hint for the usual causes of a failed connect. */
static const char *conn_hint(int err)
{
	switch (err) {
	case -ENOENT:
	case -ECONNREFUSED:
		return " (is mbxd running?)";
	case -EACCES:
	case -EPERM:
		return " (is your user in the group mbxd's socket allows?)";
	default:
		return "";
	}
}

/* Connects to the daemon; returns 0 or CTL_EXIT_DAEMON after saying why. */
int ctl_connect(struct ctl *ctl)
{
	const char *path = mbx_socket_path(ctl->socket);
	char diag[MBX_MESSAGE_MAX + 128];
	int r;

	r = mbx_open_diag(ctl->socket, &ctl->client, diag, sizeof(diag));
	if (r == 0)
		return 0;
	if (r == -EPROTO || r == -ECONNRESET)
		out_err("%s: %s%s%s", path, mbx_strerror(r), diag[0] ? ": " : "", diag);
	else
		out_err("cannot connect to %s: %s%s", path, mbx_strerror(r), conn_hint(r));
	return CTL_EXIT_DAEMON;
}

/* Says why a call on an open connection failed and returns the exit code. */
int ctl_failed(struct ctl *ctl, int r)
{
	const char *diag = mbx_last_error(ctl->client);

	switch (r) {
	case -EMSGSIZE:
		out_err("payload of %zu bytes is larger than mbxd accepts (%u)", ctl->payload_len,
			mbx_server(ctl->client)->max_payload);
		return CTL_EXIT_USAGE;
	case -ENOMEM:
		out_err("out of memory");
		return CTL_EXIT_DAEMON;
	default:
		out_err("%s: %s%s%s", mbx_socket_path(ctl->socket), mbx_strerror(r),
			diag[0] ? ": " : "", diag);
		return CTL_EXIT_DAEMON;
	}
}

/* Fills the effective return code and output of a RESULT, unwrapping a tunnel. */
static int conn_unwrap(struct ctl *ctl, uint16_t opcode, struct ctl_answer *a)
{
	const struct mbx_result *res = &a->reply.result;
	int r;

	a->rc = res->cxl_rc;
	a->vendor_status = res->vendor_status;
	a->out = res->payload;
	a->out_len = res->payload_len;
	if (!a->tunnelled || res->status != MBX_STATUS_OK || res->cxl_rc != CXL_RC_SUCCESS)
		return 0;
	r = tunnel_unwrap(res->payload, res->payload_len, opcode, &a->rc, &a->vendor_status,
			  &a->out, &a->out_len);
	if (r < 0) {
		out_err("%s: the answer through port %d is not a well-formed tunnel response",
			ctl->device, ctl->tunnel);
		return CTL_EXIT_DEVICE;
	}
	return 0;
}

/*
 * Sends opcode with in to ctl->device as a SUBMIT or EXPLAIN (type), wrapped
 * in Tunnel Management when --tunnel was given, and waits for its RESULT.
 * Returns 0 with *a filled (the verdict is in a->reply.result.status), or an
 * exit code after saying why.
 */
int ctl_call(struct ctl *ctl, uint16_t type, uint16_t opcode, const void *in, size_t in_len,
	     struct ctl_answer *a)
{
	struct mbx_request req = {
	    .device = ctl->device,
	    .opcode = opcode,
	    .payload = in,
	    .payload_len = in_len,
	    .reason = ctl->reason,
	    .timeout_ms = ctl->timeout_ms,
	};
	uint8_t *wrapped = NULL;
	int r;

	memset(a, 0, sizeof(*a));
	if (ctl->tunnel >= 0) {
		size_t wlen;

		r = tunnel_wrap((uint8_t)ctl->tunnel, opcode, in, in_len, &wrapped, &wlen);
		if (r < 0) {
			out_err("a payload of %zu bytes does not fit in a tunnelled message",
				in_len);
			return CTL_EXIT_USAGE;
		}
		req.opcode = CXL_OP_TUNNEL;
		req.payload = wrapped;
		req.payload_len = wlen;
		a->tunnelled = true;
	}
	if (type == MBX_MSG_EXPLAIN) {
		r = mbx_explain(ctl->client, &req, &a->reply);
	} else {
		r = mbx_send(ctl->client, &req, &a->tag);
		if (r == 0)
			r = mbx_receive(ctl->client, -1, &a->reply, &a->tag);
	}
	free(wrapped);
	if (r < 0)
		return ctl_failed(ctl, r);
	/* An EXPLAIN never reaches the device: there is no tunnel response to unwrap. */
	if (type == MBX_MSG_EXPLAIN)
		a->tunnelled = false;
	r = conn_unwrap(ctl, opcode, a);
	a->tunnelled = ctl->tunnel >= 0;
	if (r)
		ctl_answer_free(a);
	return r;
}

/*
 * Runs one command for a decoding subcommand (identify, health, cel): the
 * answer must be a success with output, else the cause is printed and the
 * exit code returned.
 */
int ctl_query(struct ctl *ctl, uint16_t opcode, const void *in, size_t in_len, struct ctl_answer *a)
{
	int r = ctl_call(ctl, MBX_MSG_SUBMIT, opcode, in, in_len, a);

	if (r == 0)
		r = result_check(ctl, a, opcode);
	if (r == 0 && a->rc == CXL_RC_BACKGROUND_STARTED) {
		out_err("%s: %s (%04xh) unexpectedly started a background operation", ctl->device,
			out_opcode_name(opcode), opcode);
		r = CTL_EXIT_DEVICE;
	}
	if (r)
		ctl_answer_free(a);
	return r;
}

/* Releases an answer. */
void ctl_answer_free(struct ctl_answer *a)
{
	mbx_reply_free(&a->reply);
	memset(a, 0, sizeof(*a));
}

/*
 * The mailbox payload size of ctl->device from the daemon's device list;
 * through a tunnel, what fits in the switch's mailbox around the inner
 * message. Returns 0 or an exit code after saying why.
 */
int ctl_device_payload_max(struct ctl *ctl, uint32_t *max)
{
	struct mbx_device_desc *list;
	size_t n;
	int r = mbx_devices(ctl->client, &list, &n);

	if (r < 0)
		return ctl_failed(ctl, r);
	*max = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, ctl->device) == 0)
			*max = list[i].payload_max ? list[i].payload_max : 256;
	free(list);
	if (*max == 0) {
		out_err("%s: no such device (see mbxctl devices)", ctl->device);
		return CTL_EXIT_INVALID;
	}
	if (ctl->tunnel >= 0) {
		uint32_t room = *max > CCI_TUNNEL_REP_HEADER + CCI_HEADER_SIZE
				    ? *max - CCI_TUNNEL_REP_HEADER - CCI_HEADER_SIZE
				    : 0;

		*max = room < UINT16_MAX - CCI_HEADER_SIZE ? room : UINT16_MAX - CCI_HEADER_SIZE;
	}
	return 0;
}
