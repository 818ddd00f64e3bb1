/*
 * The sandbox: after the devices, the socket and the audit log are open,
 * mbxd gives up root (setgroups, setresgid, setresuid to the configured
 * user, no capability kept) and, once its threads run, locks itself into a
 * seccomp allow-list whose default action traps: mbxd names the refused
 * call on stderr and dies by SIGSYS. ioctl is
 * allowed only for the request numbers the configured transports declare,
 * plus FIONREAD, which libevent uses on every read. docs/RELIABILITY.md
 * "Sandbox" explains each step and what it costs.
 */
#ifndef MBX_SANDBOX_H
#define MBX_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct broker;

/* Who mbxd drops to, resolved before anything is opened. */
struct sandbox_user {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/*
 * Looks up the configured run user. -ENOENT when the user does not exist,
 * -EPERM when it is root (nothing would be dropped); err names the user and
 * what to do.
 */
int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *err, size_t errlen);
/* -EPERM (err set) unless this process can become u: it runs as root, or as u. */
int sandbox_can_drop(const struct sandbox_user *u, char *err, size_t errlen);

/*
 * Gives the audit file to the run user (so that a SIGUSR1 reopen can open
 * it), then drops to u: setgroups, setresgid, setresuid, keeping only the
 * capabilities in keep (1ull << CAP_*; what the configured transports
 * declare, usually none) in the effective, permitted and bounding sets.
 * Checks that root cannot be regained and that exactly keep is left. Call
 * before any thread starts, so the threads inherit the dropped credentials
 * (capabilities are per thread). audit_path may be NULL.
 */
int sandbox_drop(const struct sandbox_user *u, const char *audit_path, uint64_t keep, char *err,
		 size_t errlen);
/* The union of the configured devices' transports' caps. */
uint64_t sandbox_transport_caps(const struct broker *b);

/*
 * Sets no_new_privs and installs the allow-list on every thread of the
 * process (TSYNC), with ioctl limited to ioctls[] and FIONREAD. Installed
 * after the worker threads start, so the list need not allow creating
 * threads or processes at all.
 */
int sandbox_seccomp_install(const unsigned long *ioctls, size_t n_ioctls, char *err, size_t errlen);

/* sandbox_seccomp_install with the ioctls of every configured device's transport. */
int sandbox_lock(const struct broker *b, char *err, size_t errlen);

#endif
