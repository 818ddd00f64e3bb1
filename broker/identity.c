/*
 * Who a client is, as the kernel says: SO_PEERCRED for uid, gid and pid,
 * SO_PEERGROUPS for the supplementary groups. Never anything the client says.
 *
 * Names come from NSS. A rule names users and groups, so a name that cannot
 * be looked up must never read as "no such name": a deny rule on a group
 * would then stop matching and a broader allow take over. An id NSS says
 * has no entry is named "#id" (no rule can name it otherwise); an id whose
 * lookup failed makes the whole principal unresolved, and policy_decide()
 * refuses every request of an unresolved principal.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "identity.h"
#include "log.h"
#include "session.h"

/* Supplementary groups read; with the primary group, at most POLICY_PRINCIPAL_GROUPS_MAX. */
#define PEER_GROUPS_MAX      (POLICY_PRINCIPAL_GROUPS_MAX - 1)
#define IDENTITY_NSS_BUF_MIN 4096u

/* One reentrant lookup (getpwuid_r and kin) behind one signature. */
typedef int (*identity_nss_fn)(const void *key, void *ent, char *buf, size_t len, void **res);

static int identity_call_pwuid(const void *key, void *ent, char *buf, size_t len, void **res)
{
	struct passwd *r = NULL;
	int rc = getpwuid_r(*(const uid_t *)key, ent, buf, len, &r);

	*res = r;
	return rc;
}

static int identity_call_pwnam(const void *key, void *ent, char *buf, size_t len, void **res)
{
	struct passwd *r = NULL;
	int rc = getpwnam_r(key, ent, buf, len, &r);

	*res = r;
	return rc;
}

static int identity_call_grgid(const void *key, void *ent, char *buf, size_t len, void **res)
{
	struct group *r = NULL;
	int rc = getgrgid_r(*(const gid_t *)key, ent, buf, len, &r);

	*res = r;
	return rc;
}

static int identity_call_grnam(const void *key, void *ent, char *buf, size_t len, void **res)
{
	struct group *r = NULL;
	int rc = getgrnam_r(key, ent, buf, len, &r);

	*res = r;
	return rc;
}

/*
 * Runs one lookup with a buffer that doubles while NSS says it is too small
 * (ERANGE), up to IDENTITY_NSS_BUF_MAX. Only "returned 0 without an entry"
 * is NSS's "no such entry" (glibc's answer for NOTFOUND); any error,
 * ENOENT included (an unavailable source), is a failed lookup.
 */
static int identity_nss(identity_nss_fn call, const void *key, void *ent, char **out)
{
	size_t len = IDENTITY_NSS_BUF_MIN;
	void *res = NULL;
	char *buf;
	int rc;

	*out = NULL;
	for (;;) {
		if (!(buf = malloc(len)))
			return -ENOMEM;
		res = NULL;
		rc = call(key, ent, buf, len, &res);
		if (rc != ERANGE || len >= IDENTITY_NSS_BUF_MAX)
			break;
		free(buf);
		len *= 2;
	}
	if (rc == 0 && res) {
		*out = buf;
		return 1;
	}
	free(buf);
	if (rc == 0)
		return 0;
	return rc > 0 ? -rc : -EIO;
}

/* Looks a uid up in passwd: 1 found, 0 no entry, -errno failed. */
int identity_getpwuid(uid_t uid, struct passwd *pw, char **buf)
{
	return identity_nss(identity_call_pwuid, &uid, pw, buf);
}

/* Looks a user name up in passwd. */
int identity_getpwnam(const char *name, struct passwd *pw, char **buf)
{
	return identity_nss(identity_call_pwnam, name, pw, buf);
}

/* Looks a gid up in group. */
int identity_getgrgid(gid_t gid, struct group *gr, char **buf)
{
	return identity_nss(identity_call_grgid, &gid, gr, buf);
}

/* Looks a group name up in group. */
int identity_getgrnam(const char *name, struct group *gr, char **buf)
{
	return identity_nss(identity_call_grnam, name, gr, buf);
}

/* Says why a lookup failed; ERANGE here always means "larger than we offer". */
const char *identity_nss_strerror(int rc)
{
	static char text[128];

	if (rc == -ERANGE) {
		snprintf(text, sizeof(text), "the entry is larger than %u MiB",
			 IDENTITY_NSS_BUF_MAX >> 20);
		return text;
	}
	return strerror(-rc);
}

/* Marks the principal unresolved, keeping the first cause: the one to fix first. */
static void identity_unresolved(struct identity *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void identity_unresolved(struct identity *id, const char *fmt, ...)
{
	va_list ap;

	if (id->unresolved[0])
		return;
	va_start(ap, fmt);
	vsnprintf(id->unresolved, sizeof(id->unresolved), fmt, ap);
	va_end(ap);
}

/* The user's name, "#uid" when passwd has no entry; a failed lookup leaves id unresolved. */
static void identity_user_name(struct identity *id, uid_t uid)
{
	struct passwd pw;
	char *buf;
	int rc = identity_getpwuid(uid, &pw, &buf);

	if (rc == 1 && strlen(pw.pw_name) < sizeof(id->user)) {
		snprintf(id->user, sizeof(id->user), "%s", pw.pw_name);
	} else {
		/* Shown in logs and audit records; never matched, since id is refused. */
		snprintf(id->user, sizeof(id->user), "#%u", (unsigned)uid);
		if (rc == 1)
			identity_unresolved(id, "the name of uid %u is longer than %zu bytes",
					    (unsigned)uid, sizeof(id->user) - 1);
		else if (rc < 0)
			identity_unresolved(id, "the lookup of uid %u failed (getpwuid_r: %s)",
					    (unsigned)uid, identity_nss_strerror(rc));
	}
	free(buf);
}

/* The group's name, or "#gid" for no entry and for a failed lookup (then id is unresolved). */
static char *identity_group_name(struct identity *id, gid_t gid)
{
	struct group gr;
	char *buf, *name;
	int rc = identity_getgrgid(gid, &gr, &buf);

	if (rc == 1) {
		name = strdup(gr.gr_name);
		free(buf);
		return name;
	}
	if (rc < 0)
		identity_unresolved(id, "the lookup of gid %u failed (getgrgid_r: %s)",
				    (unsigned)gid, identity_nss_strerror(rc));
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
			*n = len / sizeof(gid_t);
			return -e;
		}
	}
	*out = g;
	*n = len / sizeof(gid_t);
	return 0;
}

/* Adds a group's name once; -ENOMEM only when memory runs out. */
static int identity_add_group(struct identity *id, gid_t gid)
{
	char *name = identity_group_name(id, gid);

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

/* Names the primary and supplementary groups. */
static int identity_groups(struct identity *id, const gid_t *gids, size_t n)
{
	int rc;

	id->groups = calloc(n + 1, sizeof(char *));
	if (!id->groups)
		return -ENOMEM;
	rc = identity_add_group(id, id->gid);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = identity_add_group(id, gids[i]);
	return rc;
}

/* Points the principal at the names; an unresolved one carries why. */
static void identity_principal(struct identity *id)
{
	id->principal.uid = id->uid;
	id->principal.gid = id->gid;
	id->principal.user = id->user;
	id->principal.groups = (const char *const *)id->groups;
	id->principal.n_groups = id->n_groups;
	id->principal.unresolved = id->unresolved[0] ? id->unresolved : NULL;
	if (id->unresolved[0])
		log_warnx("uid %u gid %u pid %d: %s; every request of this client is refused",
			  (unsigned)id->uid, (unsigned)id->gid, (int)id->pid, id->unresolved);
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
	id->uid = cred.uid;
	id->gid = cred.gid;
	id->pid = cred.pid;
	rc = identity_peer_groups(fd, &gids, &n);
	if (rc == -ERANGE) {
		/* More groups than a decision considers: one left out could be a deny. */
		identity_unresolved(id,
				    "uid %u is in %zu supplementary groups, more than the %u "
				    "mbxd considers",
				    (unsigned)cred.uid, n, PEER_GROUPS_MAX);
		n = 0;
	} else if (rc < 0) {
		return rc;
	}
	identity_user_name(id, cred.uid);
	rc = identity_groups(id, gids, n);
	free(gids);
	if (rc < 0) {
		identity_clear(id);
		return rc;
	}
	identity_principal(id);
	return 0;
}

/* Frees what identity_from_socket allocated. */
void identity_clear(struct identity *id)
{
	for (size_t i = 0; id->groups && i < id->n_groups; i++)
		free(id->groups[i]);
	free(id->groups);
	id->groups = NULL;
	id->n_groups = 0;
}
