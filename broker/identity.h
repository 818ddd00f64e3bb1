/*
 * Name lookups in the user database (NSS), done one way everywhere: for
 * clients (broker/identity.c), the run user (sandbox.c) and the socket group
 * (listener.c). Each tells the three answers apart that a caller must never
 * confuse: the entry was found; NSS said this id or name has no entry; the
 * lookup itself failed (an entry larger than any buffer we offer, an NSS
 * module that is down, out of memory). docs/policy.md "Who a client is".
 */
#ifndef MBX_IDENTITY_H
#define MBX_IDENTITY_H

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

/* The largest buffer offered to one lookup; a bigger entry is a failed lookup. */
#define IDENTITY_NSS_BUF_MAX (16u << 20)

/*
 * Each returns 1 when found (*buf then holds the entry's strings; the caller
 * frees it), 0 when NSS says there is no such entry (*buf is NULL), or
 * -errno when the lookup failed (*buf is NULL): -ERANGE means the entry is
 * larger than IDENTITY_NSS_BUF_MAX.
 */
int identity_getpwuid(uid_t uid, struct passwd *pw, char **buf);
int identity_getpwnam(const char *name, struct passwd *pw, char **buf);
int identity_getgrgid(gid_t gid, struct group *gr, char **buf);
int identity_getgrnam(const char *name, struct group *gr, char **buf);

/* A sentence for a failed lookup's -errno: the error, and the limit for -ERANGE. */
const char *identity_nss_strerror(int rc);

#endif
