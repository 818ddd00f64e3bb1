/*
 * The sd_notify(3) protocol, which is one datagram of "KEY=value" lines to
 * the AF_UNIX socket in $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace). Written here so the daemon needs no libsystemd; the socket is
 * made per message, which the seccomp filter allows (AF_UNIX only).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

/* Fills sun from $NOTIFY_SOCKET; returns the address length, 0 when unset, -errno. */
static int notify_address(struct sockaddr_un *sun)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun->sun_path))
		return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	if (path[0] == '@')
		sun->sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends the name */
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
}

/* Sends one notification; no service manager is not an error. */
int notify_send(const char *state)
{
	struct sockaddr_un sun;
	int alen = notify_address(&sun), fd, rc = 0;

	if (alen <= 0)
		return alen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)alen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
