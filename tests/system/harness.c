/* System-test harness: temporary daemon, test users, clients as other uids. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "harness.h"

/* Runs a command line for set-up; fails the test if it fails. */
static void run_setup(const char *cmd)
{
	int rc = system(cmd);

	ck_assert_msg(rc == 0, "set-up command failed (%d): %s", rc, cmd);
}

/* Creates the test group and users once. */
void harness_users(void)
{
	ck_assert_msg(geteuid() == 0, "system tests need root: they create test users and run "
				      "clients under their uids (run them with sudo, as CI does)");
	/* The user mbxd drops to, as packaging creates it. */
	if (!getpwnam("_mbxd"))
		run_setup("useradd --system --no-create-home --shell /usr/sbin/nologin _mbxd");
	if (!getgrnam(H_OPS_GROUP))
		run_setup("groupadd " H_OPS_GROUP);
	if (!getpwnam(H_OPERATOR))
		run_setup("useradd -M -N -s /usr/sbin/nologin -G " H_OPS_GROUP " " H_OPERATOR);
	if (!getpwnam(H_ADMIN))
		run_setup("useradd -M -N -s /usr/sbin/nologin " H_ADMIN);
	if (!getpwnam(H_OUTSIDER))
		run_setup("useradd -M -N -s /usr/sbin/nologin " H_OUTSIDER);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Replaces the policy file. */
void harness_write_policy(struct harness *h, const char *policy_yaml)
{
	char tmp[400];

	/* Write then rename, as an administrator's editor would: never a half-written file. */
	snprintf(tmp, sizeof(tmp), "%s.new", h->policy);
	write_file(tmp, policy_yaml, 0644);
	ck_assert(rename(tmp, h->policy) == 0);
}

/* Writes mbxd.yaml from the harness's paths and devices. */
void harness_write_config(struct harness *h)
{
	char *cfg;

	ck_assert(asprintf(&cfg,
			   "socket: { path: %s, mode: \"0666\" }\n"
			   "policy: %s\n"
			   "audit: { path: %s%s%s }\n"
			   "limits: %s\n"
			   "devices:\n%s",
			   h->socket, h->policy, h->audit, h->audit_yaml ? ", " : "",
			   h->audit_yaml ? h->audit_yaml : "",
			   h->limits_yaml ? h->limits_yaml
					  : "{ max_inflight: 64, max_queue_per_user: 32 }",
			   h->devices_yaml) > 0);
	write_file(h->config, cfg, 0644);
	free(cfg);
}

/* Lays out a temporary folder with config and policy. */
void harness_init(struct harness *h, const char *devices_yaml, const char *policy_yaml)
{
	memset(h, 0, sizeof(*h));
	h->devices_yaml = devices_yaml;
	snprintf(h->dir, sizeof(h->dir), "/tmp/mbxd-test-XXXXXX");
	ck_assert(mkdtemp(h->dir) != NULL);
	chmod(h->dir, 0755); /* the test users must reach the socket */
	snprintf(h->config, sizeof(h->config), "%s/mbxd.yaml", h->dir);
	snprintf(h->policy, sizeof(h->policy), "%s/policy.yaml", h->dir);
	snprintf(h->socket, sizeof(h->socket), "%s/mbxd.sock", h->dir);
	snprintf(h->audit, sizeof(h->audit), "%s/audit.jsonl", h->dir);
	snprintf(h->log, sizeof(h->log), "%s/mbxd.log", h->dir);
	harness_write_config(h);
	harness_write_policy(h, policy_yaml);
}

static bool socket_accepts(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (strlen(path) >= sizeof(sun.sun_path))
		return false;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

/* How many times mbxd has said it is ready in this test's log. */
static int harness_ready_count(const struct harness *h)
{
	char *log = harness_read_file(h->log);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, " listening on ")); p++)
		n++;
	free(log);
	return n;
}

/*
 * Starts mbxd in the foreground with its log in the test folder, and waits
 * until it says it is listening: the socket accepts a little earlier, before
 * the sandbox and the worker threads are in place.
 */
void harness_start(struct harness *h)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	int status, before = harness_ready_count(h);

	h->mbxd = fork();
	ck_assert(h->mbxd >= 0);
	harness_track(h);
	if (h->mbxd == 0) {
		int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		dup2(fd, 1);
		execl(MBXD_PATH, "mbxd", "-d", "-v", "-f", h->config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (harness_ready_count(h) > before && socket_accepts(h->socket))
			return;
		harness_check_sandbox(h);
		if (waitpid(h->mbxd, &status, WNOHANG) == h->mbxd) {
			char *log = harness_read_file(h->log);

			ck_abort_msg("mbxd exited at start-up (status %d): %s", status,
				     log ? log : "(no log)");
		}
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("mbxd did not say it was listening on %s within 10 s", h->socket);
}

static struct harness *harness_current;

/* Remembers the daemon to check after each client. */
void harness_track(struct harness *h)
{
	harness_current = h;
}

/* Fails the test, naming the system call mbxd's sandbox refused. */
static void harness_sigsys_abort(struct harness *h)
{
	static const char said[] = "mbxd: sandbox: system call ";
	char *log = harness_read_file(h->log), *line = log ? strstr(log, said) : NULL;

	if (line)
		line[strcspn(line, "\n")] = '\0';
	ck_abort_msg("mbxd (pid %d) died of SIGSYS: %s", (int)h->mbxd,
		     line ? line + strlen("mbxd: ") : "its log does not name the system call");
}

/* Checks, without reaping, that mbxd has not been stopped by its sandbox. */
void harness_check_sandbox(struct harness *h)
{
	siginfo_t si = {0};

	if (!h)
		h = harness_current;
	if (!h || h->mbxd <= 0)
		return;
	if (waitid(P_PID, (id_t)h->mbxd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == h->mbxd && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) &&
	    si.si_status == SIGSYS)
		harness_sigsys_abort(h);
}

/* Signals mbxd. */
void harness_signal(struct harness *h, int sig)
{
	harness_check_sandbox(h);
	ck_assert(kill(h->mbxd, sig) == 0);
}

/* Stops mbxd with SIGTERM and reports how it exited. */
int harness_stop(struct harness *h)
{
	int status;

	if (h->mbxd <= 0)
		return -1;
	harness_check_sandbox(h);
	kill(h->mbxd, SIGTERM);
	ck_assert(waitpid(h->mbxd, &status, 0) == h->mbxd);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		harness_sigsys_abort(h); /* while stopping, say */
	h->mbxd = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Removes the temporary folder (after stopping a daemon still running). */
void harness_cleanup(struct harness *h)
{
	char cmd[300];

	if (h->mbxd > 0) {
		harness_check_sandbox(h);
		kill(h->mbxd, SIGKILL);
		waitpid(h->mbxd, NULL, 0);
	}
	if (harness_current == h)
		harness_current = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
	if (h->dir[0])
		system(cmd);
}

/* Becomes user in a child: groups, then gid, then uid, as a daemon drops privileges. */
static void become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw || initgroups(user, pw->pw_gid) < 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		_exit(126);
}

/* Runs fn as user in a child process; returns its exit code. */
int harness_as_user(const char *user, int (*fn)(const char *socket, void *arg), const char *socket,
		    void *arg)
{
	pid_t pid = fork();
	int status;

	ck_assert(pid >= 0);
	if (pid == 0) {
		become(user);
		_exit(fn(socket, arg));
	}
	ck_assert(waitpid(pid, &status, 0) == pid);
	harness_check_sandbox(NULL);
	ck_assert_msg(WIFEXITED(status), "client as %s died with a signal", user);
	return WEXITSTATUS(status);
}

/* Runs mbxctl as user; collects its output. */
int harness_mbxctl(struct harness *h, const char *user, char *out, size_t outlen, ...)
{
	char *argv[32] = {"mbxctl", "--socket", h->socket};
	size_t argc = 3, got = 0;
	int pipefd[2], status;
	va_list ap;
	ssize_t n;
	pid_t pid;

	va_start(ap, outlen);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	ck_assert(pipe(pipefd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		become(user);
		execv(MBXCTL_PATH, argv);
		_exit(127);
	}
	close(pipefd[1]);
	while (got + 1 < outlen && (n = read(pipefd[0], out + got, outlen - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pipefd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	harness_check_sandbox(h);
	ck_assert_msg(WIFEXITED(status), "mbxctl died with a signal");
	return WEXITSTATUS(status);
}

/* In a child as some user: one command, the broker's verdict as the exit code. */
int harness_submit_status(const char *socket, void *arg)
{
	const struct harness_call *c = arg;
	struct mbx_request req = {.device = c->device,
				  .opcode = c->opcode,
				  .payload = c->payload,
				  .payload_len = c->payload_len,
				  .reason = c->reason};
	struct mbx_client *cl;
	struct mbx_reply rep;
	int rc;

	if (mbx_open(socket, &cl) < 0)
		return 100;
	rc = mbx_submit(cl, &req, &rep);
	mbx_close(cl);
	if (rc < 0)
		return 101;
	rc = rep.result.status;
	if (rc == 0 && rep.result.cxl_rc != 0)
		rc = 50 + rep.result.cxl_rc; /* the device said no: tell it apart */
	mbx_reply_free(&rep);
	return rc;
}

/* Reads a file into memory. */
char *harness_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

/* Counts the places needle stands in text. */
int harness_count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Counts the places needle stands in a file. */
int harness_file_count(const char *path, const char *needle)
{
	char *text = harness_read_file(path);
	int n = harness_count(text, needle);

	free(text);
	return n;
}

/* Polls the file every 10 ms until it holds needle. */
void harness_wait_file(const char *path, const char *needle)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	for (int i = 0; i < 1000; i++) {
		if (harness_file_count(path, needle) > 0)
			return;
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("%s never held \"%s\"", path, needle);
}
