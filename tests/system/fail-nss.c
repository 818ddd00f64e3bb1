/*
 * A user database that fails: preloaded into mbxd by test-identity-nss.c,
 * getgrgid_r answers EIO for the gid in MBX_TEST_FAIL_GID, as an NSS module
 * whose server is down does. Every other lookup goes to the C library.
 */
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <stdlib.h>

typedef int (*getgrgid_r_fn)(gid_t, struct group *, char *, size_t, struct group **);

static getgrgid_r_fn fail_nss_real;
static long fail_nss_gid = -1;

/* Resolved at load, before mbxd's sandbox is in place. */
__attribute__((constructor)) static void fail_nss_init(void)
{
	const char *gid = getenv("MBX_TEST_FAIL_GID");

	fail_nss_real = (getgrgid_r_fn)dlsym(RTLD_NEXT, "getgrgid_r");
	if (gid)
		fail_nss_gid = strtol(gid, NULL, 10);
}

/* Fails for the chosen gid, passes every other lookup through. */
int getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, struct group **res)
{
	if ((long)gid == fail_nss_gid || !fail_nss_real) {
		*res = NULL;
		return EIO;
	}
	return fail_nss_real(gid, gr, buf, len, res);
}
