/*
 * Who a client is, as the kernel says: SO_PEERCRED for uid, gid and pid,
 * SO_PEERGROUPS for the supplementary groups. Never anything the client says.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "session.h"

#define PEER_GROUPS_MAX 1024

/* The user's name, or "#uid" for a uid with no passwd entry. */
static void identity_user_name(uid_t uid, char *out, size_t outlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(out, outlen, "%s", pw.pw_name);
	else
		snprintf(out, outlen, "#%u", (unsigned)uid);
}

/* The group's name, or "#gid"; NULL only when memory runs out. */
static char *identity_group_name(gid_t gid)
{
	struct group gr, *res = NULL;
	char buf[8192];
	char *name;

	if (getgrgid_r(gid, &gr, buf, sizeof(buf), &res) == 0 && res)
		return strdup(gr.gr_name);
	if (asprintf(&name, "#%u", (unsigned)gid) < 0)
		return NULL;
	return name;
}

/* Reads the supplementary group ids; the kernel tells how much room it needs. */
static int identity_peer_groups(int fd, gid_t **out, size_t *n)
{
	socklen_t len = 32 * sizeof(gid_t);
	gid_t *g = NULL;

	for (;;) {
		gid_t *ng = realloc(g, len ? len : sizeof(gid_t));

		if (!ng) {
			free(g);
			return -ENOMEM;
		}
		g = ng;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0)
			break;
		if (errno != ERANGE || len > PEER_GROUPS_MAX * sizeof(gid_t)) {
			int e = errno;

			free(g);
			return -e;
		}
	}
	*out = g;
	*n = len / sizeof(gid_t);
	return 0;
}

static int identity_add_group(struct identity *id, gid_t gid)
{
	char *name = identity_group_name(gid);

	if (!name)
		return -ENOMEM;
	for (size_t i = 0; i < id->n_groups; i++) {
		if (strcmp(id->groups[i], name) == 0) {
			free(name);
			return 0;
		}
	}
	id->groups[id->n_groups++] = name;
	return 0;
}

/* Fills id from the socket's peer credentials. */
int identity_from_socket(int fd, struct identity *id)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t *gids = NULL;
	size_t n = 0;
	int rc;

	memset(id, 0, sizeof(*id));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred))
		return -EPROTO;
	rc = identity_peer_groups(fd, &gids, &n);
	if (rc < 0)
		return rc;
	id->uid = cred.uid;
	id->gid = cred.gid;
	id->pid = cred.pid;
	identity_user_name(cred.uid, id->user, sizeof(id->user));
	id->groups = calloc(n + 1, sizeof(char *));
	if (!id->groups) {
		free(gids);
		return -ENOMEM;
	}
	rc = identity_add_group(id, cred.gid);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = identity_add_group(id, gids[i]);
	free(gids);
	if (rc < 0) {
		identity_clear(id);
		return rc;
	}
	id->principal.uid = id->uid;
	id->principal.gid = id->gid;
	id->principal.user = id->user;
	id->principal.groups = (const char *const *)id->groups;
	id->principal.n_groups = id->n_groups;
	return 0;
}

/* Frees what identity_from_socket allocated. */
void identity_clear(struct identity *id)
{
	for (size_t i = 0; i < id->n_groups; i++)
		free(id->groups[i]);
	free(id->groups);
	id->groups = NULL;
	id->n_groups = 0;
}
