/*
 * libmbx: the C client library for mbxd.
 *
 * Every function returns 0 (or a count) on success and a negative errno
 * value on failure; mbx_strerror() names it. The library never exits, never
 * prints, and never aborts on allocation failure. A struct mbx_client is not
 * thread-safe: use one per thread.
 */
#ifndef MBX_MBX_H
#define MBX_MBX_H

#include <stddef.h>
#include <stdint.h>

#include <mbx/proto.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MBX_DEFAULT_SOCKET "/run/mbxd/mbxd.sock"

struct mbx_client;

/*
 * Connects to the daemon at path (NULL: $MBX_SOCKET, then
 * MBX_DEFAULT_SOCKET) and exchanges HELLO. On success *out is a connected
 * client. Errors: -ENOENT/-ECONNREFUSED/-EACCES (daemon unreachable),
 * -EPROTO (not an mbxd, or no common version).
 */
int mbx_open(const char *path, struct mbx_client **out);

/*
 * As mbx_open; on failure, when msg is not NULL, msg receives a sentence
 * naming the cause when there is more to say than the error code (the
 * server's ERROR message, or what was wrong with its HELLO), else "".
 */
int mbx_open_diag(const char *path, struct mbx_client **out, char *msg, size_t msg_len);

/* The socket mbx_open(path) connects to: path, else $MBX_SOCKET, else the default. */
const char *mbx_socket_path(const char *path);

/* Closes the connection and frees the client. NULL is allowed. */
void mbx_close(struct mbx_client *c);

/* The server's HELLO: version and limits. Owned by the client. */
const struct mbx_hello_rep *mbx_server(const struct mbx_client *c);

/*
 * Lists the daemon's devices. *list is allocated and owned by the caller
 * (free with free()); *count entries (*list is NULL when there are none).
 */
int mbx_devices(struct mbx_client *c, struct mbx_device_desc **list, size_t *count);

/* A command to submit or explain. Strings are NUL-terminated; reason may be NULL. */
struct mbx_request {
	const char *device;
	uint16_t opcode;
	const void *payload;
	size_t payload_len;
	const char *reason;
	uint32_t timeout_ms; /* how long to wait; 0: the device's timeout (server-bounded) */
};

/*
 * A decoded RESULT that owns its output payload: result.payload points into
 * memory released by mbx_reply_free().
 */
struct mbx_reply {
	struct mbx_result result;
	uint8_t *frame; /* owned; result's pointers point into it */
};

void mbx_reply_free(struct mbx_reply *r);

/*
 * Sends one command and waits for its RESULT. A return of 0 means a RESULT
 * arrived; the broker's verdict is in reply->result.status. EVENTs that
 * arrive meanwhile are queued for mbx_next_event(), and RESULTs of requests
 * sent with mbx_send() for mbx_receive(). Errors before sending: -EINVAL (no
 * device), -ENAMETOOLONG (device name), -E2BIG (reason), -EMSGSIZE (payload
 * over the server's max_payload), -EBUSY (max_inflight SUBMITs open).
 * Waits as long as the daemon takes: the daemon enforces device timeouts.
 */
int mbx_submit(struct mbx_client *c, const struct mbx_request *req, struct mbx_reply *reply);

/* As mbx_submit, but the daemon only classifies and decides: nothing reaches the device. */
int mbx_explain(struct mbx_client *c, const struct mbx_request *req, struct mbx_reply *reply);

/*
 * Waits up to timeout_ms (-1: forever) for the next background EVENT.
 * *tag is the tag of the SUBMIT it belongs to. -ETIMEDOUT when none came.
 */
int mbx_next_event(struct mbx_client *c, int timeout_ms, struct mbx_event *ev, uint32_t *tag);

/*
 * Pipelining: send without waiting, then collect RESULTs in any order.
 * mbx_send returns the tag it chose in *tag. mbx_receive waits for the next
 * RESULT (events are queued as above) and reports its tag; -ETIMEDOUT
 * when none came in timeout_ms (-1: forever), -ENOMSG when none is in flight.
 */
int mbx_send(struct mbx_client *c, const struct mbx_request *req, uint32_t *tag);
int mbx_receive(struct mbx_client *c, int timeout_ms, struct mbx_reply *reply, uint32_t *tag);

/*
 * The daemon's counters in the Prometheus text exposition format
 * (docs/metrics.md). *text is NUL-terminated, allocated and owned by the
 * caller (free with free()).
 */
int mbx_metrics(struct mbx_client *c, char **text);

/*
 * Follows the background operations of a device, whoever started them:
 * after 0, EVENTs for that device arrive through mbx_next_event() with
 * *tag, until the connection closes; when one is running, an EVENT with
 * its progress comes at once. -ENODEV: no such device; -EACCES: the policy
 * does not let this user see it; -EALREADY: this connection watches it
 * already.
 */
int mbx_watch(struct mbx_client *c, const char *device, uint32_t *tag);

/* The socket's file descriptor, for poll(). */
int mbx_fd(const struct mbx_client *c);

/*
 * Why the connection failed, when a call returned -EPROTO or
 * -ECONNRESET: the server's ERROR message ("mbxd: ...") or what libmbx
 * found wrong with a frame. "" when there is nothing to say. Owned by c.
 */
const char *mbx_last_error(const struct mbx_client *c);

/* A human sentence for a negative return value of this library. */
const char *mbx_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
