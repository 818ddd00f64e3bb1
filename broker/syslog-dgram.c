/*
 * Syslog without syslog(3): its socket blocks, and a syslog daemon that
 * stops reading would stop mbxd's event loop with it. These datagrams are
 * sent non-blocking; one that cannot go now is dropped and the caller told,
 * so it can count. The daemon's log lines and the audit mirror both use it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "syslog-dgram.h"

#define SYSLOG_PATH    "/dev/log"
#define SYSLOG_RETRY_S 10

/* Worker threads log too (a re-probe), so the socket is shared under a lock. */
static pthread_mutex_t syslog_lock = PTHREAD_MUTEX_INITIALIZER;
static int syslog_fd = -1;
static time_t syslog_retry_at; /* no socket: when to try connecting again */

/* Connects a non-blocking datagram socket to /dev/log; -1 when there is none. */
static int syslog_dgram_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memcpy(sun.sun_path, SYSLOG_PATH, sizeof(SYSLOG_PATH));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool syslog_dgram_send_locked(int pri, const char *text, size_t len)
{
	char head[80], when[32];
	struct tm tm;
	time_t now = time(NULL);
	struct iovec iov[2];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	int n;

	if (syslog_fd < 0) {
		if (now < syslog_retry_at)
			return false;
		syslog_fd = syslog_dgram_connect();
		if (syslog_fd < 0) {
			syslog_retry_at = now + SYSLOG_RETRY_S;
			return false;
		}
	}
	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%b %e %H:%M:%S", &tm);
	n = snprintf(head, sizeof(head), "<%d>%s mbxd[%d]: ", pri, when, (int)getpid());
	iov[0] = (struct iovec){head, (size_t)n};
	iov[1] = (struct iovec){(void *)(uintptr_t)text, len};
	if (sendmsg(syslog_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
		return true;
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
		/* The syslog daemon went away (restart): reconnect on the next message. */
		close(syslog_fd);
		syslog_fd = -1;
	}
	return false;
}

/* Sends one message without waiting. */
bool syslog_dgram_send(int pri, const char *text, size_t len)
{
	bool sent;

	pthread_mutex_lock(&syslog_lock);
	sent = syslog_dgram_send_locked(pri, text, len);
	pthread_mutex_unlock(&syslog_lock);
	return sent;
}
