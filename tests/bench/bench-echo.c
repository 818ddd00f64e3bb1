/*
 * The floor: the least a server on a Unix socket can do for the same
 * frames. It answers HELLO, and answers each SUBMIT with the RESULT frame
 * mbxd gave for the same Identify, its tag patched in. No decision, no
 * audit, no device: what is left is the socket, the framing and libmbx.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbx/proto.h>

#include "bench.h"

#define ECHO_BUF (256u << 10)

struct echo_conn {
	int fd;
	const uint8_t *result;
	size_t result_len;
	const uint8_t *hello;
	size_t hello_len;
};

/* Appends a canned frame with the request's tag (header bytes 8..11, le32). */
static int echo_append(uint8_t *out, size_t *len, const uint8_t *frame, size_t frame_len,
		       uint32_t tag)
{
	if (*len + frame_len > ECHO_BUF)
		return -ENOBUFS;
	memcpy(out + *len, frame, frame_len);
	out[*len + 8] = (uint8_t)tag;
	out[*len + 9] = (uint8_t)(tag >> 8);
	out[*len + 10] = (uint8_t)(tag >> 16);
	out[*len + 11] = (uint8_t)(tag >> 24);
	*len += frame_len;
	return 0;
}

static int echo_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Answers every whole frame in in[0..*got); keeps a partial one for the next read. */
static int echo_answer(struct echo_conn *c, uint8_t *in, size_t *got, uint8_t *out)
{
	size_t off = 0, out_len = 0;
	struct mbx_header h;

	while (*got - off >= MBX_HEADER_SIZE) {
		if (mbx_decode_header(in + off, &h) < 0 || h.length > ECHO_BUF - MBX_HEADER_SIZE)
			return -1;
		if (*got - off < MBX_HEADER_SIZE + h.length)
			break;
		if (h.type == MBX_MSG_HELLO) {
			if (echo_append(out, &out_len, c->hello, c->hello_len, h.tag) < 0)
				return -1;
		} else if (h.type == MBX_MSG_SUBMIT) {
			if (out_len + c->result_len > ECHO_BUF) {
				if (echo_write_all(c->fd, out, out_len) < 0)
					return -1;
				out_len = 0;
			}
			echo_append(out, &out_len, c->result, c->result_len, h.tag);
		} else {
			return -1;
		}
		off += MBX_HEADER_SIZE + h.length;
	}
	memmove(in, in + off, *got - off);
	*got -= off;
	return out_len ? echo_write_all(c->fd, out, out_len) : 0;
}

/* One connection, blocking reads: the cheapest way to answer one client. */
static void *echo_conn_main(void *arg)
{
	struct echo_conn *c = arg;
	uint8_t *in = malloc(ECHO_BUF), *out = malloc(ECHO_BUF);
	size_t got = 0;
	ssize_t n;

	while (in && out && (n = read(c->fd, in + got, ECHO_BUF - got)) > 0) {
		got += (size_t)n;
		if (echo_answer(c, in, &got, out) < 0)
			break;
	}
	close(c->fd);
	free(in);
	free(out);
	free(c);
	return NULL;
}

/* The child: accept forever, a thread per connection. */
static void echo_serve(int lfd, const uint8_t *result, size_t result_len)
{
	struct mbx_hello_rep rep = {
	    .version = MBX_PROTO_VERSION, .max_payload = MBX_PAYLOAD_MAX, .max_inflight = 256};
	struct mbx_wbuf hello;
	pthread_t t;
	int fd;

	snprintf(rep.software, sizeof(rep.software), "mbx-bench echo floor");
	mbx_wbuf_init(&hello);
	if (mbx_encode_hello_rep(&hello, 0, &rep) < 0)
		_exit(1);
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR) {
		struct echo_conn *c = malloc(sizeof(*c));

		if (fd < 0 || !c)
			continue;
		*c = (struct echo_conn){fd, result, result_len, hello.data, hello.len};
		if (pthread_create(&t, NULL, echo_conn_main, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	_exit(0);
}

/* Binds the socket in the parent (so it accepts on return), serves in a child. */
pid_t bench_echo_start(const char *socket_path, const uint8_t *result, size_t result_len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", socket_path);
	unlink(socket_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(lfd, 128) < 0) {
		fprintf(stderr, "mbx-bench: echo server on %s: %s\n", socket_path, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		echo_serve(lfd, result, result_len);
	close(lfd);
	return pid;
}

/* Stops the echo child. */
void bench_echo_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
