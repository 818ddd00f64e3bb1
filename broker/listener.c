/* The Unix socket clients connect to: created with the configured mode and group. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker.h"
#include "config.h"
#include "identity.h"
#include "listener.h"
#include "log.h"
#include "session.h"

#define LISTEN_BACKLOG 1024
/* The first descriptor a service manager passes (sd_listen_fds(3)). */
#define LISTEN_FDS_START 3

/* The socket came from the service manager, which owns its file: never unlink it. */
static bool listener_passed;

/*
 * Takes the socket systemd passed (mbxd.socket): LISTEN_PID names this
 * process and LISTEN_FDS is 1. Returns the descriptor, -ENOENT when none was
 * passed, or another -errno with err set when what was passed is unusable.
 */
static int listener_take_passed(const struct config *cfg, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);
	int fd = LISTEN_FDS_START, type = 0, listening = 0;
	socklen_t ilen = sizeof(int);

	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return -ENOENT;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strcmp(fds, "1") != 0) {
		snprintf(err, errlen,
			 "the service manager passed %s sockets; mbxd takes exactly one", fds);
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sun, &len) < 0 || sun.sun_family != AF_UNIX ||
	    type != SOCK_STREAM || !listening) {
		snprintf(err, errlen,
			 "the passed descriptor %d is not a listening Unix stream socket", fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(err, errlen, "passed socket: fcntl: %s", strerror(errno));
		return -errno;
	}
	if (len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(sun.sun_path, cfg->socket_path, sizeof(sun.sun_path)) != 0)
		log_warnx("the passed socket is not %s, the path in %s: clients using the "
			  "configured path will not find mbxd",
			  cfg->socket_path, cfg->path);
	listener_passed = true;
	return fd;
}

/* Removes a stale socket left by a previous run, but never any other kind of file. */
static int listener_unlink_stale(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; refusing to remove it", path);
		return -EEXIST;
	}
	if (unlink(path) < 0) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Gives the socket its configured group and mode before anyone can connect. */
static int listener_set_access(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->socket_group) {
		struct group gr;
		char *buf;
		int rc = identity_getgrnam(cfg->socket_group, &gr, &buf);

		if (rc <= 0) {
			snprintf(err, errlen, "%s: socket group \"%s\" %s%s", cfg->path,
				 cfg->socket_group, rc ? "cannot be looked up: " : "does not exist",
				 rc ? identity_nss_strerror(rc) : "");
			return rc ? rc : -ENOENT;
		}
		free(buf);
		if (chown(cfg->socket_path, (uid_t)-1, gr.gr_gid) < 0) {
			snprintf(err, errlen, "chown %s: %s", cfg->socket_path, strerror(errno));
			return -errno;
		}
	}
	if (chmod(cfg->socket_path, cfg->socket_mode) < 0) {
		snprintf(err, errlen, "chmod %s: %s", cfg->socket_path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* Creates, binds and listens; returns the descriptor or -errno with err set. */
int listener_open(const struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old_umask;
	int fd, rc;

	fd = listener_take_passed(cfg, err, errlen);
	if (fd != -ENOENT)
		return fd;
	if (strlen(cfg->socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is longer than %zu bytes", cfg->socket_path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, cfg->socket_path);
	rc = listener_unlink_stale(cfg->socket_path, err, errlen);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	/* Nobody may connect between bind and chmod: bind with no permissions at all. */
	old_umask = umask(0777);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_umask);
	if (rc < 0) {
		rc = -errno;
		snprintf(err, errlen, "bind %s: %s", cfg->socket_path, strerror(errno));
		close(fd);
		return rc;
	}
	rc = listener_set_access(cfg, err, errlen);
	if (rc == 0 && listen(fd, LISTEN_BACKLOG) < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen %s: %s", cfg->socket_path, strerror(errno));
	}
	if (rc < 0) {
		close(fd);
		unlink(cfg->socket_path);
		return rc;
	}
	return fd;
}

#define ACCEPT_PAUSE_MS 500

static void listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;

	(void)fd;
	(void)what;
	if (b->accept_ev)
		event_add(b->accept_ev, NULL);
}

/* Out of descriptors: the socket stays readable, so stop accepting for a while. */
static void listener_pause(struct broker *b)
{
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};

	log_warn("accept: pausing new connections for %d ms", ACCEPT_PAUSE_MS);
	event_del(b->accept_ev);
	event_base_once(b->base, -1, EV_TIMEOUT, listener_resume, b, &tv);
}

/* Accepts every pending client; beyond max_clients, new ones are turned away. */
static void listener_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct broker *b = arg;
	int fd;

	(void)what;
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				listener_pause(b);
			else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("accept");
			return;
		}
		if (b->n_sessions >= b->cfg->max_clients) {
			log_warnx("refusing a client: %zu clients connected (limit %u)",
				  b->n_sessions, b->cfg->max_clients);
			session_refuse_fd(fd, MBX_ERROR_LIMIT,
					  "mbxd has %zu connections open, its limit "
					  "(limits.max_clients): try again later",
					  b->n_sessions);
			continue;
		}
		session_new(b, fd);
	}
}

/* Starts accepting on the loop. */
int listener_start(struct broker *b)
{
	b->accept_ev =
	    event_new(b->base, b->listen_fd, EV_READ | EV_PERSIST, listener_accept_cb, b);
	if (!b->accept_ev)
		return -ENOMEM;
	return event_add(b->accept_ev, NULL);
}

/* Stops accepting and removes the socket file. */
void listener_close(struct broker *b)
{
	if (b->accept_ev) {
		event_free(b->accept_ev);
		b->accept_ev = NULL;
	}
	if (b->listen_fd >= 0) {
		close(b->listen_fd);
		b->listen_fd = -1;
		if (!listener_passed)
			unlink(b->cfg->socket_path);
	}
}
