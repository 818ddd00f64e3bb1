/*
 * The sandbox, in the order that makes each step possible: look the run
 * user up while the user database is reachable, hand it the audit file,
 * drop groups, gid and uid (relayd's order: groups first, since only root
 * may set them; uid last, since after it nothing else may change), then,
 * once every thread runs, no_new_privs and a seccomp allow-list for every
 * thread at once. Tables, not code, say what is allowed (after chrony's
 * sys_linux.c and OpenSSH's sandbox-seccomp-filter.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <seccomp.h>

#include "broker.h"
#include "device.h"
#include "identity.h"
#include "log.h"
#include "sandbox.h"

/* Sanitizer runtimes need a few more calls; see sandbox_sanitizer_rules. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/*
 * Learning mode for porting to another libc or distribution: build with
 * -DMBX_SANDBOX_LEARN and the filter logs (dmesg: "audit: type=1326")
 * instead of stopping mbxd. Never for production.
 *
 * Otherwise a call outside the list traps (SIGSYS with the call's number)
 * and sandbox_sigsys() names it on stderr before mbxd dies by SIGSYS, as a
 * kill would end it. The kernel's own record of a kill (audit type 1326)
 * needs auditd or an unthrottled printk (10 lines per 5 s) and root to
 * read; the name on mbxd's own stderr (the journal, the test's log) is
 * there every time. The handler cannot be replaced: rt_sigaction on SIGSYS
 * is outside the list.
 */
#ifdef MBX_SANDBOX_LEARN
#define SANDBOX_DEFAULT_ACTION SCMP_ACT_LOG
#else
#define SANDBOX_DEFAULT_ACTION SCMP_ACT_TRAP
#endif

/* System call numbers the SIGSYS handler can name (x86-64 and arm64 stay below). */
#define SANDBOX_NR_NAMES 512

/* A condition on a system call's arguments, beyond its number. */
enum sandbox_cond {
	SB_ANY,        /* any arguments */
	SB_AF_UNIX,    /* socket(2): only AF_UNIX (syslog, NSS); no network */
	SB_NO_EXEC2,   /* mmap, mprotect: argument 2 (prot) without PROT_EXEC */
	SB_TIMERSLACK, /* prctl: only PR_SET_TIMERSLACK (device workers, broker/device.c) */
	SB_NOT_SIGSYS, /* rt_sigaction: any signal but SIGSYS, whose handler stays */
};

struct sandbox_rule {
	const char *name; /* resolved per architecture; absent ones are skipped */
	enum sandbox_cond cond;
};

/*
 * Every system call mbxd makes once it serves clients: the event loop, the
 * device workers, the audit log (including reopen on SIGUSR1), policy reload
 * (SIGHUP), user lookups for new clients, syslog, and orderly stop.
 * Nothing here creates a thread or a process or runs a program.
 */
static const struct sandbox_rule sandbox_rules[] = {
    /* Sockets and the event loop (libevent on epoll). */
    {"accept4", SB_ANY},
    {"getsockopt", SB_ANY}, /* SO_PEERCRED, SO_PEERGROUPS, SO_ERROR */
    {"setsockopt", SB_ANY},
    {"socket", SB_AF_UNIX},
    {"connect", SB_ANY},
    {"sendto", SB_ANY},
    {"sendmsg", SB_ANY},
    {"recvfrom", SB_ANY},
    {"recvmsg", SB_ANY},
    {"shutdown", SB_ANY},
    {"epoll_wait", SB_ANY},
    {"epoll_pwait", SB_ANY},
    {"epoll_pwait2", SB_ANY},
    {"epoll_ctl", SB_ANY},
    {"poll", SB_ANY},
    {"ppoll", SB_ANY},
    {"read", SB_ANY},
    {"readv", SB_ANY},
    {"write", SB_ANY},
    {"writev", SB_ANY},
    {"close", SB_ANY},
    {"fcntl", SB_ANY},
    /* Files: audit log, its rotation, policy and users.d reload, passwd and group. */
    {"openat", SB_ANY},
    {"open", SB_ANY},
    {"pread64", SB_ANY},
    {"pwrite64", SB_ANY}, /* the chardev's firmware upload: the image at its offsets */
    {"lseek", SB_ANY},
    {"fstat", SB_ANY},
    {"newfstatat", SB_ANY},
    {"stat", SB_ANY},
    {"lstat", SB_ANY},
    {"statx", SB_ANY},
    {"getdents64", SB_ANY},
    {"ftruncate", SB_ANY},
    {"fallocate", SB_ANY}, /* the audit log: room held for the results of open intents */
    {"fsync", SB_ANY},
    {"fdatasync", SB_ANY},
    {"unlink", SB_ANY}, /* the socket at stop */
    {"unlinkat", SB_ANY},
    /* The audit checkpoint and seal key are replaced atomically (temp file, rename). */
    {"rename", SB_ANY},
    {"renameat", SB_ANY},
    {"renameat2", SB_ANY},
    /*
     * NSS modules look up clients the files do not know (systemd's
     * userdb, sssd) over local sockets; these are what they use besides.
     */
    {"readlink", SB_ANY},
    {"readlinkat", SB_ANY},
    {"access", SB_ANY},
    {"faccessat", SB_ANY},
    {"faccessat2", SB_ANY},
    {"statfs", SB_ANY},
    {"fstatfs", SB_ANY},
    {"uname", SB_ANY},
    /*
     * glibc's qsort() asks for the machine's memory (sysconf(_SC_PHYS_PAGES),
     * that is sysinfo) before sorting 1 KiB or more: policy reload sorts
     * users.d file names and opcode overrides (tests/reliability/test-reload.c).
     */
    {"sysinfo", SB_ANY},
    {"epoll_create1", SB_ANY},
    {"timerfd_create", SB_ANY},
    {"timerfd_settime", SB_ANY},
    {"inotify_init1", SB_ANY}, /* users.d watch, restarted when users_dir moves */
    {"inotify_add_watch", SB_ANY},
    {"inotify_rm_watch", SB_ANY},
    /* Memory: never a new executable mapping. */
    {"brk", SB_ANY},
    {"mmap", SB_NO_EXEC2},
    {"mprotect", SB_NO_EXEC2},
    {"munmap", SB_ANY},
    {"mremap", SB_ANY},
    {"madvise", SB_ANY},
    /* Time: clocks, the sim's latency, timers of the loop. */
    {"clock_gettime", SB_ANY},
    {"clock_getres", SB_ANY},
    {"gettimeofday", SB_ANY},
    {"time", SB_ANY},
    {"clock_nanosleep", SB_ANY},
    {"nanosleep", SB_ANY},
    /* Threads that already exist, signals, exit. */
    {"futex", SB_ANY},
    {"set_robust_list", SB_ANY}, /* a worker started just before may still be starting */
    {"rseq", SB_ANY},
    {"sched_yield", SB_ANY},
    {"getpid", SB_ANY},
    {"gettid", SB_ANY},
    {"getuid", SB_ANY},
    {"geteuid", SB_ANY},
    {"getgid", SB_ANY},
    {"getegid", SB_ANY},
    {"tgkill", SB_ANY}, /* raise(): abort() must end in SIGABRT, not SIGSYS */
    {"rt_sigaction", SB_NOT_SIGSYS},
    {"rt_sigprocmask", SB_ANY},
    {"rt_sigreturn", SB_ANY},
    {"restart_syscall", SB_ANY},
    {"getrandom", SB_ANY},
    {"exit", SB_ANY},
    {"exit_group", SB_ANY},
    {"prctl", SB_TIMERSLACK},
};

#ifdef SANDBOX_SANITIZER
/*
 * ASan/UBSan test builds only: LeakSanitizer stops the world at exit with a
 * tracer (clone, ptrace, wait) and reads /proc/self/maps. These are absent
 * from the release filter; the sanitizer build is for tests, never shipped.
 */
static const struct sandbox_rule sandbox_sanitizer_rules[] = {
    {"clone", SB_ANY},
    {"ptrace", SB_ANY},
    {"wait4", SB_ANY},
    {"prctl", SB_ANY},
    {"sigaltstack", SB_ANY},
    {"readlink", SB_ANY},
    {"sched_getaffinity", SB_ANY},
    {"getppid", SB_ANY},
    {"kill", SB_ANY},
    {"pipe2", SB_ANY},
    {"setrlimit", SB_ANY},
    {"getrlimit", SB_ANY},
    {"prlimit64", SB_ANY},
    {"getdents", SB_ANY},
};
#endif

static void sandbox_prewarm(void);

/* Looks up the run user; loads what lookups need while nothing limits them. */
int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *err, size_t errlen)
{
	struct passwd pw;
	char *buf;
	int rc;

	memset(u, 0, sizeof(*u));
	rc = identity_getpwnam(name, &pw, &buf);
	if (rc < 0) {
		snprintf(err, errlen, "cannot look up run user \"%s\" (getpwnam_r: %s)", name,
			 identity_nss_strerror(rc));
		return rc;
	}
	if (rc == 0) {
		snprintf(err, errlen,
			 "run user \"%s\" does not exist: create it (useradd --system "
			 "--no-create-home --shell /usr/sbin/nologin %s) or name another in "
			 "mbxd.yaml's user:",
			 name, name);
		return -ENOENT;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	free(buf);
	if (u->uid == 0 || u->gid == 0) {
		snprintf(err, errlen,
			 "run user \"%s\" is uid %u gid %u: mbxd must drop to an unprivileged user",
			 name, (unsigned)u->uid, (unsigned)u->gid);
		return -EPERM;
	}
	snprintf(u->name, sizeof(u->name), "%s", name);
	/* Now, before the socket listens: its lookups open and close files. */
	sandbox_prewarm();
	return 0;
}

/* Checks that this process can become u: it is root, or u already. */
int sandbox_can_drop(const struct sandbox_user *u, char *err, size_t errlen)
{
	uid_t me = geteuid();

	if (me == 0 || me == u->uid)
		return 0;
	snprintf(err, errlen,
		 "mbxd runs as uid %u: start it as root (it drops to \"%s\") or as \"%s\" "
		 "itself; --no-sandbox only for debugging",
		 (unsigned)me, u->name, u->name);
	return -EPERM;
}

/* Leaves only keep in the bounding set, so nothing later can gain another capability. */
static int sandbox_drop_bounding(uint64_t keep, char *err, size_t errlen)
{
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (cap < 64 && (keep & (1ull << cap)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s",
				 cap, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* Reads the calling thread's capability sets as 64-bit masks. */
static int sandbox_capget(uint64_t *eff, uint64_t *prm, uint64_t *inh)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*eff = data[0].effective | (uint64_t)data[1].effective << 32;
	*prm = data[0].permitted | (uint64_t)data[1].permitted << 32;
	*inh = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
	return 0;
}

/* Makes keep the thread's effective and permitted sets (after a drop with KEEPCAPS). */
static int sandbox_capset(uint64_t keep)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/* Whether the thread holds exactly keep (effective and permitted), nothing inheritable or ambient.
 */
static bool sandbox_caps_exactly(uint64_t keep)
{
	uint64_t eff = 0, prm = 0, inh = 0;

	if (sandbox_capget(&eff, &prm, &inh) < 0)
		return false;
	if (eff != keep || prm != keep || inh != 0)
		return false;
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
			return false;
	return true;
}

/* Checks the drop holds: every id is u's, root cannot come back, only keep is left. */
static int sandbox_check_dropped(const struct sandbox_user *u, uint64_t keep, char *err,
				 size_t errlen)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0 || r != u->uid ||
	    e != u->uid || s != u->uid || rg != u->gid || eg != u->gid || sg != u->gid) {
		snprintf(err, errlen,
			 "privilege drop to %s did not take: uids %u/%u/%u gids %u/%u/%u", u->name,
			 (unsigned)r, (unsigned)e, (unsigned)s, (unsigned)rg, (unsigned)eg,
			 (unsigned)sg);
		return -EPERM;
	}
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0) {
		snprintf(err, errlen, "privilege drop to %s did not take: root could be regained",
			 u->name);
		return -EPERM;
	}
	if (!sandbox_caps_exactly(keep)) {
		snprintf(err, errlen,
			 "privilege drop to %s: capabilities are not exactly 0x%llx, what the "
			 "transports need (a transport's capability needs mbxd started as root)",
			 u->name, (unsigned long long)keep);
		return -EPERM;
	}
	return 0;
}

/* Changes groups, gid and uid, in that order; keep survives the uid change. */
static int sandbox_setids(const struct sandbox_user *u, uint64_t keep, char *err, size_t errlen)
{
	int rc = 0;

	/* setgroups and setresgid need root; after setresuid nothing else can change. */
	if (prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0) < 0 || setgroups(1, &u->gid) < 0 ||
	    setresgid(u->gid, u->gid, u->gid) < 0 || setresuid(u->uid, u->uid, u->uid) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot drop privileges to %s (uid %u gid %u): %s", u->name,
			 (unsigned)u->uid, (unsigned)u->gid, strerror(errno));
		return rc;
	}
	if (keep && ((rc = sandbox_capset(keep)) < 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)) {
		snprintf(err, errlen, "cannot keep capabilities 0x%llx for the transports: %s",
			 (unsigned long long)keep, strerror(rc < 0 ? -rc : errno));
		return rc < 0 ? rc : -errno;
	}
	return 0;
}

/* The capabilities the configured transports still need once dropped. */
uint64_t sandbox_transport_caps(const struct broker *b)
{
	uint64_t caps = 0;

	for (size_t i = 0; i < b->n_devices; i++)
		caps |= b->devices[i]->ops->caps | b->devices[i]->info.caps;
	return caps;
}

/* Warns, once dropped, when rotation could not create a new audit file. */
static void sandbox_check_audit_dir(const struct sandbox_user *u, const char *audit_path)
{
	char *copy = strdup(audit_path);
	const char *dir = copy ? dirname(copy) : NULL;

	if (dir && access(dir, W_OK | X_OK) < 0)
		log_warnx("audit folder %s is not writable by %s: after a rotation (mv, then "
			  "SIGUSR1) the reopen fails and the renamed file stays in use; give the "
			  "folder to %s",
			  dir, u->name, u->name);
	free(copy);
}

/* Drops to the run user, root-owned state handed over first. */
int sandbox_drop(const struct sandbox_user *u, const char *audit_path, uint64_t keep, char *err,
		 size_t errlen)
{
	int rc;

	if (geteuid() == 0) {
		/* SIGUSR1 reopens the audit file by name: the run user must be able to. */
		if (audit_path &&
		    fchownat(AT_FDCWD, audit_path, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(err, errlen, "cannot give %s to %s: %s", audit_path, u->name,
				 strerror(errno));
			return -errno;
		}
		if ((rc = sandbox_drop_bounding(keep, err, errlen)) < 0 ||
		    (rc = sandbox_setids(u, keep, err, errlen)) < 0)
			return rc;
	}
#ifdef SANDBOX_SANITIZER
	/* LeakSanitizer's tracer attaches to this process at exit: keep it attachable. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	if ((rc = sandbox_check_dropped(u, keep, err, errlen)) < 0)
		return rc;
	if (keep)
		log_info("kept capabilities 0x%llx after the drop: the transports need them",
			 (unsigned long long)keep);
	if (audit_path)
		sandbox_check_audit_dir(u, audit_path);
	return 0;
}

/* Adds one rule; absent system calls (another architecture's names) are skipped. */
static int sandbox_add(scmp_filter_ctx ctx, const struct sandbox_rule *r)
{
	int nr = seccomp_syscall_resolve_name(r->name);

	if (nr == __NR_SCMP_ERROR)
		return 0;
	switch (r->cond) {
	case SB_AF_UNIX:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)AF_UNIX));
	case SB_NO_EXEC2:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A2(SCMP_CMP_MASKED_EQ, (scmp_datum_t)PROT_EXEC, 0));
	case SB_TIMERSLACK:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)PR_SET_TIMERSLACK));
	case SB_NOT_SIGSYS:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)SIGSYS));
	case SB_ANY:
		return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	return -EINVAL;
}

/*
 * Allows ioctl with one request number. The kernel reads the request as
 * 32 bits, so only those are compared.
 */
static int sandbox_add_ioctl(scmp_filter_ctx ctx, unsigned long req)
{
	return seccomp_rule_add(
	    ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
	    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, (scmp_datum_t)(uint32_t)req));
}

/* Builds the filter: the table, then ioctl by request number. */
static int sandbox_build(scmp_filter_ctx ctx, const unsigned long *ioctls, size_t n_ioctls)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(sandbox_rules) / sizeof(sandbox_rules[0]); i++)
		rc = sandbox_add(ctx, &sandbox_rules[i]);
#ifdef SANDBOX_SANITIZER
	for (size_t i = 0;
	     rc == 0 && i < sizeof(sandbox_sanitizer_rules) / sizeof(sandbox_sanitizer_rules[0]);
	     i++)
		rc = sandbox_add(ctx, &sandbox_sanitizer_rules[i]);
#endif
	/* libevent asks how many bytes a socket holds before each read. */
	if (rc == 0)
		rc = sandbox_add_ioctl(ctx, FIONREAD);
	for (size_t i = 0; rc == 0 && i < n_ioctls; i++)
		rc = sandbox_add_ioctl(ctx, ioctls[i]);
	return rc;
}

/*
 * Loads what the C library would otherwise load lazily behind the filter:
 * every NSS module for passwd and group (a lookup that misses walks them
 * all) and the time zone (syslog's timestamps).
 */
static void sandbox_prewarm(void)
{
	static bool warm;
	struct passwd pw, *pres;
	struct group gr, *gres;
	char buf[4096];

	if (warm)
		return;
	warm = true;
	getpwuid_r((uid_t)0x7ffffffe, &pw, buf, sizeof(buf), &pres);
	getgrgid_r((gid_t)0x7ffffffe, &gr, buf, sizeof(buf), &gres);
	tzset();
}

/* Names of system calls by number, filled before the filter: the handler may not allocate. */
static char sandbox_nr_names[SANDBOX_NR_NAMES][32];

/* Appends s to buf at *off (async-signal-safe). */
static void sandbox_put(char *buf, size_t cap, size_t *off, const char *s)
{
	while (*s && *off + 1 < cap)
		buf[(*off)++] = *s++;
}

/* Appends n in decimal (async-signal-safe). */
static void sandbox_put_num(char *buf, size_t cap, size_t *off, unsigned long n)
{
	char digits[24];
	size_t i = sizeof(digits) - 1;

	digits[i] = '\0';
	do
		digits[--i] = (char)('0' + n % 10);
	while ((n /= 10) && i > 0);
	sandbox_put(buf, cap, off, digits + i);
}

/*
 * A call outside the list: says which on stderr, then dies by SIGSYS.
 * SA_RESETHAND has made SIGSYS's action the default again, and SA_NODEFER
 * lets the raise through at once.
 */
static void sandbox_sigsys(int sig, siginfo_t *si, void *ctx)
{
	unsigned nr = (unsigned)si->si_syscall;
	char msg[192];
	size_t off = 0;

	(void)ctx;
	sandbox_put(msg, sizeof(msg), &off, "mbxd: sandbox: system call ");
	sandbox_put_num(msg, sizeof(msg), &off, nr);
	sandbox_put(msg, sizeof(msg), &off, " (");
	sandbox_put(msg, sizeof(msg), &off,
		    nr < SANDBOX_NR_NAMES && sandbox_nr_names[nr][0] ? sandbox_nr_names[nr] : "?");
	sandbox_put(msg, sizeof(msg), &off, ") is not in the allow-list: stopping with SIGSYS\n");
	(void)!write(STDERR_FILENO, msg, off);
	raise(sig);
	_exit(128 + sig);
}

/* Fills the names the handler prints and installs it, before the filter. */
static int sandbox_sigsys_install(void)
{
	struct sigaction sa = {.sa_sigaction = sandbox_sigsys,
			       .sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER};

	for (int nr = 0; nr < SANDBOX_NR_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (name)
			snprintf(sandbox_nr_names[nr], sizeof(sandbox_nr_names[nr]), "%s", name);
		free(name);
	}
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) < 0 ? -errno : 0;
}

/* Sets no_new_privs and loads the allow-list on every thread. */
int sandbox_seccomp_install(const unsigned long *ioctls, size_t n_ioctls, char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	int rc;

	sandbox_prewarm();
	if ((rc = sandbox_sigsys_install()) < 0) {
		snprintf(err, errlen, "cannot install the SIGSYS handler: %s", strerror(-rc));
		return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
		return rc;
	}
	ctx = seccomp_init(SANDBOX_DEFAULT_ACTION);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot create a filter");
		return -ENOMEM;
	}
	/* Threads already run: the filter must cover them, atomically, or not load. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = sandbox_build(ctx, ioctls, n_ioctls);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		snprintf(err, errlen, "seccomp: cannot install the allow-list: %s", strerror(-rc));
	return rc;
}

/* The ioctls of every configured device's transport, without repeats. */
int sandbox_lock(const struct broker *b, char *err, size_t errlen)
{
	unsigned long *list = NULL;
	size_t n = 0, cap = 0;
	int rc;

	for (size_t i = 0; i < b->n_devices; i++) {
		const struct mbx_transport_ops *ops = b->devices[i]->ops;

		for (size_t k = 0; k < ops->n_ioctls; k++) {
			bool seen = false;

			for (size_t m = 0; m < n; m++)
				seen = seen || list[m] == ops->ioctls[k];
			if (seen)
				continue;
			if (n == cap) {
				unsigned long *nl =
				    realloc(list, (cap = cap * 2 + 8) * sizeof(*nl));

				if (!nl) {
					free(list);
					snprintf(err, errlen, "out of memory");
					return -ENOMEM;
				}
				list = nl;
			}
			list[n++] = ops->ioctls[k];
		}
	}
	rc = sandbox_seccomp_install(list, n, err, errlen);
	free(list);
	return rc;
}
