/*
 * Reliability: the sandbox. The running daemon is confined (seccomp mode 2
 * on every thread, no_new_privs, the run user's ids, no capability); the
 * same filter, installed in a child here, stops it by SIGSYS, naming the
 * call on stderr, on a system call outside the list (execve, fork, a network
 * socket, an executable mapping, a new SIGSYS handler) and on an ioctl
 * number outside the list, and lets listed ones through. Start-up
 * refuses a missing run user by name; --no-sandbox says so loudly.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "rel.h"
#include "sandbox.h"
#include "transport.h"

#if defined(__SANITIZE_ADDRESS__)
#define REL_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REL_SANITIZER 1
#endif
#endif

static struct harness h;

static void setup(void)
{
	rel_users();
	harness_init(&h, rel_devices_yaml, rel_policy_yaml);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* Asserts a /proc status field of mbxd (or one of its threads). */
static void expect_status(int tid, const char *key, const char *want)
{
	char v[256];

	ck_assert_msg(rel_proc_status(h.mbxd, tid, key, v, sizeof(v)), "no %s in status", key);
	ck_assert_msg(strcmp(v, want) == 0, "thread %d %s: \"%s\", want \"%s\"", tid, key, v, want);
}

START_TEST(test_running_daemon_is_confined)
{
	struct passwd *pw = getpwnam("_mbxd");
	char ids[64], gid[16], path[64];
	struct dirent *e;
	int threads = 0;
	DIR *d;

	ck_assert(pw != NULL);
	rel_start(&h, NULL, NULL);
	snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", pw->pw_uid, pw->pw_uid, pw->pw_uid,
		 pw->pw_uid);
	expect_status(0, "Uid", ids);
	snprintf(ids, sizeof(ids), "%u\t%u\t%u\t%u", pw->pw_gid, pw->pw_gid, pw->pw_gid,
		 pw->pw_gid);
	expect_status(0, "Gid", ids);
	snprintf(gid, sizeof(gid), "%u", pw->pw_gid);
	expect_status(0, "Groups", gid);
	expect_status(0, "NoNewPrivs", "1");
	for (const char *const *cap =
		 (const char *const[]){"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", NULL};
	     *cap; cap++)
		expect_status(0, *cap, "0000000000000000");
	/* TSYNC: every thread (loop and device workers) runs under the filter. */
	snprintf(path, sizeof(path), "/proc/%d/task", h.mbxd);
	d = opendir(path);
	ck_assert(d != NULL);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		expect_status(atoi(e->d_name), "Seccomp", "2");
		expect_status(atoi(e->d_name), "NoNewPrivs", "1");
		threads++;
	}
	closedir(d);
	ck_assert_int_ge(threads, 3); /* the loop and two device workers */
	rel_figure("sandbox.txt", "threads_in_seccomp_mode_2", "%d of %d", threads, threads);
	rel_figure("sandbox.txt", "uid_gid_after_drop", "%u/%u (_mbxd), no capabilities",
		   pw->pw_uid, pw->pw_gid);
}
END_TEST

/* The ioctl numbers a transport declares (chardev when built in, else one made up). */
static const unsigned long *listed_ioctls(size_t *n)
{
	static const unsigned long made_up[] = {_IOWR(0xce, 0x42, int)};
	const struct mbx_transport_ops *ops = transport_find("chardev");

	if (ops && ops->n_ioctls) {
		*n = ops->n_ioctls;
		return ops->ioctls;
	}
	*n = 1;
	return made_up;
}

/* What the last confined child wrote to stderr (the SIGSYS handler's sentence). */
static char confined_said[512];

/* In a child: install the daemon's filter, then run step; returns how the child ended. */
static int run_confined(void (*step)(void))
{
	char err[256];
	size_t n, got = 0;
	const unsigned long *ioctls = listed_ioctls(&n);
	int status, pipefd[2];
	ssize_t r;
	pid_t pid;

	ck_assert(pipe(pipefd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDERR_FILENO);
		if (sandbox_seccomp_install(ioctls, n, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(90);
		}
		step();
		_exit(0);
	}
	close(pipefd[1]);
	while (got + 1 < sizeof(confined_said) &&
	       (r = read(pipefd[0], confined_said + got, sizeof(confined_said) - got - 1)) > 0)
		got += (size_t)r;
	confined_said[got] = '\0';
	close(pipefd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	return status;
}

static void step_allowed(void)
{
	size_t n;
	const unsigned long *ioctls = listed_ioctls(&n);
	int fd = open("/dev/null", O_RDWR), avail;
	char buf[8];

	/* What the daemon does: files, listed ioctls, FIONREAD, unix sockets, time. */
	for (size_t i = 0; i < n; i++)
		if (ioctl(fd, ioctls[i], NULL) != -1 || errno != ENOTTY)
			_exit(91);
	if (ioctl(fd, FIONREAD, &avail) != -1 && errno != ENOTTY)
		_exit(92);
	if (read(fd, buf, sizeof(buf)) != 0 || write(fd, "x", 1) != 1)
		_exit(93);
	close(fd);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (fd < 0)
		_exit(94);
	close(fd);
	if (time(NULL) == (time_t)-1 || getpid() <= 0)
		_exit(95);
}

static void step_execve(void)
{
	execl("/bin/true", "true", (char *)NULL);
	_exit(80); /* execve failed without killing: the filter let it through */
}

static void step_unlisted_ioctl(void)
{
	struct termios t;
	int fd = open("/dev/null", O_RDWR);

	step_allowed();
	ioctl(fd, TCGETS, &t);
	_exit(81);
}

#ifndef REL_SANITIZER
static void step_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	_exit(82);
}
#endif

static void step_network(void)
{
	socket(AF_INET, SOCK_STREAM, 0);
	_exit(83);
}

static void step_exec_mapping(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	_exit(84);
}

static void step_setuid(void)
{
	setuid(0);
	_exit(85);
}

static void step_sigsys_ignored(int sig)
{
	(void)sig;
}

/* Replacing the handler would let a refused call return instead of stopping mbxd. */
static void step_replace_sigsys(void)
{
	signal(SIGSYS, step_sigsys_ignored);
	_exit(86);
}

START_TEST(test_same_filter_kills_outside_the_list)
{
	static const struct {
		const char *what;
		void (*step)(void);
		const char *named; /* the call as the SIGSYS handler names it */
	} killed[] = {
	    {"execve", step_execve, "(execve)"},
	    {"ioctl TCGETS (not declared)", step_unlisted_ioctl, "(ioctl)"},
#ifndef REL_SANITIZER
	    {"fork", step_fork, "(clone)"}, /* sanitizer builds allow clone for LeakSanitizer */
#endif
	    {"socket(AF_INET)", step_network, "(socket)"},
	    {"mmap PROT_EXEC", step_exec_mapping, "(mmap)"},
	    {"setuid", step_setuid, "(setuid)"},
	    {"replacing the SIGSYS handler", step_replace_sigsys, "(rt_sigaction)"},
	};
	int status = run_confined(step_allowed);
	size_t n_killed = 0;

	/* The control: what the daemon needs passes, so a kill below is the filter's verdict. */
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "allowed calls failed: status 0x%x", status);
	for (size_t i = 0; i < sizeof(killed) / sizeof(killed[0]); i++) {
		status = run_confined(killed[i].step);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
			      "%s: child not killed by the filter (status 0x%x)", killed[i].what,
			      status);
		ck_assert_msg(strstr(confined_said, "sandbox: system call ") &&
				  strstr(confined_said, killed[i].named),
			      "%s: the call is not named: \"%s\"", killed[i].what, confined_said);
		n_killed++;
	}
	rel_figure("sandbox.txt", "outside_the_list_killed_by_SIGSYS",
		   "%zu of %zu (execve, undeclared ioctl,%s AF_INET socket, PROT_EXEC, setuid, "
		   "a new SIGSYS handler), each named on stderr",
		   n_killed, n_killed, n_killed == 7 ? " fork," : "");
}
END_TEST

/* In a child: the drop as mbxd does it, keeping keep; exits 0 when status shows exactly that. */
static int drop_keeping(uint64_t keep)
{
	struct sandbox_user u;
	char err[256], v[64], want[32];
	int status;
	pid_t pid = fork();

	ck_assert(pid >= 0);
	if (pid == 0) {
		if (sandbox_user_lookup("_mbxd", &u, err, sizeof(err)) < 0 ||
		    sandbox_drop(&u, NULL, keep, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(70);
		}
		snprintf(want, sizeof(want), "%016llx", (unsigned long long)keep);
		for (const char *const *cap =
			 (const char *const[]){"CapPrm", "CapEff", "CapBnd", NULL};
		     *cap; cap++)
			if (!rel_proc_status(getpid(), 0, *cap, v, sizeof(v)) || strcmp(v, want))
				_exit(71);
		if (!rel_proc_status(getpid(), 0, "CapInh", v, sizeof(v)) ||
		    strcmp(v, "0000000000000000") || setuid(0) == 0 || getuid() != u.uid)
			_exit(72);
		_exit(0);
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_drop_keeps_only_what_transports_declare)
{
	const struct mbx_transport_ops *mctp = transport_find("mctp");
	uint64_t raw = mctp && mctp->caps ? mctp->caps : 1ull << 13; /* CAP_NET_RAW */
	const struct mbx_transport_ops *const *t;

	ck_assert_int_eq(drop_keeping(0), 0);
	ck_assert_int_eq(drop_keeping(raw), 0);
	for (t = transport_registry; *t; t++) {
		rel_figure("sandbox.txt", "capabilities_kept_for_transport", "%s: 0x%llx",
			   (*t)->name, (unsigned long long)(*t)->caps);
		rel_figure("sandbox.txt", "ioctls_for_transport", "%s: %zu", (*t)->name,
			   (*t)->n_ioctls);
	}
}
END_TEST

/* In a child with a uid no passwd entry names: one read. */
static int unknown_uid_reads(const char *socket, void *arg)
{
	struct mbx_request req = {.device = "mem0", .opcode = 0x4000};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int rc;

	(void)arg;
	if (setgroups(0, NULL) < 0 || setresgid(54321, 54321, 54321) < 0 ||
	    setresuid(54321, 54321, 54321) < 0)
		return 120;
	if (mbx_open(socket, &cl) < 0 || mbx_submit(cl, &req, &rep) < 0)
		return 121;
	rc = rep.result.status;
	mbx_reply_free(&rep);
	mbx_close(cl);
	return rc;
}

START_TEST(test_daemon_work_under_the_filter)
{
	char out[4096], dir[300], moved[340];
	struct passwd *pw = getpwnam("_mbxd");
	int status;
	pid_t pid;

	/* An audit folder the run user owns, so rotation can create the new file. */
	snprintf(dir, sizeof(dir), "%s/audit", h.dir);
	ck_assert(mkdir(dir, 0750) == 0 && chown(dir, pw->pw_uid, pw->pw_gid) == 0);
	snprintf(h.audit, sizeof(h.audit), "%s/audit.jsonl", dir);
	harness_write_config(&h);
	rel_start(&h, NULL, NULL);

	/* A client whom only NSS modules beyond files could name. */
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0)
		_exit(unknown_uid_reads(h.socket, NULL));
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unknown uid: 0x%x", status);

	/* Reload (SIGHUP) and rotation (mv, SIGUSR1) run under the filter. */
	harness_signal(&h, SIGHUP);
	snprintf(moved, sizeof(moved), "%s.1", h.audit);
	ck_assert(rename(h.audit, moved) == 0);
	harness_signal(&h, SIGUSR1);
	for (int i = 0; i < 200 && access(h.audit, F_OK) != 0; i++)
		usleep(10000);
	ck_assert_int_eq(harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "mem0", NULL),
			 0);
	ck_assert_int_eq(harness_mbxctl(&h, H_OPERATOR, out, sizeof(out), "identify", "switch0",
					"--tunnel", "1", NULL),
			 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	ck_assert_msg(harness_mbxctl(&h, "root", out, sizeof(out), "audit", "verify", moved,
				     h.audit, NULL) == 0,
		      "chain across rotation: %s", out);
	rel_figure("sandbox.txt", "under_the_filter",
		   "unknown-uid client, SIGHUP reload, "
		   "SIGUSR1 rotation, tunnel, orderly stop: all passed");
}
END_TEST

START_TEST(test_missing_user_refused_by_name)
{
	char cfg[4096], out[4096];
	char *text = harness_read_file(h.config);
	FILE *f;

	snprintf(cfg, sizeof(cfg), "user: mbxtest-no-such-user\n%s", text);
	free(text);
	f = fopen(h.config, "w");
	ck_assert(f != NULL);
	fputs(cfg, f);
	fclose(f);
	ck_assert_int_eq(rel_start_fails(&h, NULL, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "\"mbxtest-no-such-user\" does not exist"), "said: %s", out);
	ck_assert_msg(access(h.socket, F_OK) != 0, "a socket was opened before the refusal");
}
END_TEST

START_TEST(test_no_sandbox_warns)
{
	static const char *const extra[] = {"--no-sandbox", NULL};
	char v[64], *log;

	rel_start(&h, extra, NULL);
	ck_assert(rel_proc_status(h.mbxd, 0, "Seccomp", v, sizeof(v)) && strcmp(v, "0") == 0);
	ck_assert_int_eq(harness_stop(&h), 0);
	log = harness_read_file(h.log);
	ck_assert_msg(strstr(log, "--no-sandbox: mbxd keeps root"), "no warning: %s", log);
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reliability-sandbox");
	TCase *tc = tcase_create("sandbox");
	SRunner *sr;
	int failed;

	rel_figures_reset("sandbox.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_running_daemon_is_confined);
	tcase_add_test(tc, test_same_filter_kills_outside_the_list);
	tcase_add_test(tc, test_drop_keeps_only_what_transports_declare);
	tcase_add_test(tc, test_daemon_work_under_the_filter);
	tcase_add_test(tc, test_missing_user_refused_by_name);
	tcase_add_test(tc, test_no_sandbox_warns);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
