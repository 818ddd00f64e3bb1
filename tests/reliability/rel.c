/* Reliability-test helpers: see rel.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/proto.h>

#include "rel.h"

/* Two sim devices, and a policy under which anyone may read them. */
const char rel_devices_yaml[] = "  - name: mem0\n"
				"    transport: sim\n"
				"    options: { model: memdev }\n"
				"  - name: switch0\n"
				"    transport: sim\n"
				"    options: { model: switch }\n";

const char rel_policy_yaml[] = "version: 1\n"
			       "rules:\n"
			       "  - name: everyone-reads\n"
			       "    who: any\n"
			       "    devices: [\"*\"]\n"
			       "    allow: [read]\n";

/* Creates the harness users and the load test's two more. */
void rel_users(void)
{
	harness_users();
	if (!getpwnam(REL_USER3))
		ck_assert_msg(system("useradd -M -N -s /usr/sbin/nologin " REL_USER3) == 0,
			      "cannot create user " REL_USER3);
	if (!getpwnam(REL_USER4))
		ck_assert_msg(system("useradd -M -N -s /usr/sbin/nologin " REL_USER4) == 0,
			      "cannot create user " REL_USER4);
}

/* Whether something accepts connections at path. */
static bool rel_accepts(const char *path)
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

/* In the child: a private mount namespace where /dev/log is devlog. */
static void rel_private_devlog(const char *devlog)
{
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount(devlog, "/dev/log", NULL, MS_BIND, NULL) < 0) {
		perror("rel: private /dev/log");
		_exit(125);
	}
}

/* Forks and execs mbxd with its output in h->log. */
static pid_t rel_spawn(struct harness *h, const char *const *extra, const char *devlog)
{
	char *argv[16] = {"mbxd", "-d", "-v", "-f", h->config};
	size_t argc = 5;
	pid_t pid;

	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		for (; extra && *extra && argc < 15; extra++)
			argv[argc++] = strdup(*extra);
		argv[argc] = NULL;

		dup2(fd, 2);
		dup2(fd, 1);
		if (devlog)
			rel_private_devlog(devlog);
		execv(MBXD_PATH, argv);
		_exit(127);
	}
	return pid;
}

/* How many times mbxd's log (appended to across restarts) holds needle. */
static int rel_log_count(const struct harness *h, const char *needle)
{
	char *log = harness_read_file(h->log);
	int n = 0;

	for (const char *p = log; p && (p = strstr(p, needle)); p++)
		n++;
	free(log);
	return n;
}

/* Starts mbxd and waits until it says it is ready. */
void rel_start(struct harness *h, const char *const *extra, const char *devlog)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	int ready = rel_log_count(h, "listening on");
	int status;

	h->mbxd = rel_spawn(h, extra, devlog);
	harness_track(h);
	for (int i = 0; i < 500; i++) {
		/* The socket accepts from listen() on; the sandbox is in place at "listening". */
		if (rel_accepts(h->socket) && rel_log_count(h, "listening on") > ready)
			return;
		harness_check_sandbox(h);
		if (waitpid(h->mbxd, &status, WNOHANG) == h->mbxd) {
			char *log = harness_read_file(h->log);

			h->mbxd = 0;
			ck_abort_msg("mbxd exited at start-up (status 0x%x): %s", status,
				     log ? log : "(no log)");
		}
		nanosleep(&pause, NULL);
	}
	ck_abort_msg("mbxd did not open %s within 10 s", h->socket);
}

/* Starts mbxd that should refuse to start; returns its exit code. */
int rel_start_fails(struct harness *h, const char *const *extra, char *out, size_t outlen)
{
	pid_t pid = rel_spawn(h, extra, NULL);
	int status;
	char *log;

	ck_assert(waitpid(pid, &status, 0) == pid);
	log = harness_read_file(h->log);
	snprintf(out, outlen, "%s", log ? log : "");
	free(log);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads "Key:\tvalue" from /proc/PID[/task/TID]/status. */
bool rel_proc_status(int pid, int tid, const char *key, char *out, size_t outlen)
{
	char path[96], line[512];
	size_t klen = strlen(key);
	bool found = false;
	FILE *f;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *v = line + klen + 1;

		if (strncmp(line, key, klen) != 0 || line[klen] != ':')
			continue;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		for (size_t n = strlen(v); n && (v[n - 1] == ' ' || v[n - 1] == '\t'); n--)
			v[n - 1] = '\0';
		snprintf(out, outlen, "%s", v);
		found = true;
	}
	fclose(f);
	return found;
}

/* Resident memory in KiB. */
long rel_rss_kib(int pid)
{
	char v[64];

	return rel_proc_status(pid, 0, "VmRSS", v, sizeof(v)) ? atol(v) : -1;
}

/* Counts entries of /proc/PID/fd. */
int rel_fd_count(int pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Connects, and says HELLO when asked. */
int rel_connect(const char *path, bool hello)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct mbx_hello_req req = {.version_min = 1, .version_max = 1};
	uint8_t hdr[MBX_HEADER_SIZE], body[256];
	struct mbx_header h;
	struct mbx_wbuf w;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert(fd >= 0 && strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0, "connect %s: %s",
		      path, strerror(errno));
	if (!hello)
		return fd;
	mbx_wbuf_init(&w);
	ck_assert(mbx_encode_hello_req(&w, 1, &req) == 0);
	ck_assert(write(fd, w.data, w.len) == (ssize_t)w.len);
	mbx_wbuf_free(&w);
	ck_assert(recv(fd, hdr, sizeof(hdr), MSG_WAITALL) == sizeof(hdr));
	ck_assert(mbx_decode_header(hdr, &h) == 0 && h.type == MBX_MSG_HELLO);
	ck_assert(h.length <= sizeof(body));
	ck_assert(recv(fd, body, h.length, MSG_WAITALL) == (ssize_t)h.length);
	return fd;
}

/* Reads until EOF; notes whether an ERROR frame was among what came. */
bool rel_drain_to_eof(int fd, int timeout_ms, bool *saw_error)
{
	uint8_t buf[4096];
	size_t have = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	*saw_error = false;
	for (;;) {
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return false;
		n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == ECONNRESET)
			return true;
		if (n <= 0)
			return n == 0;
		have += (size_t)n;
		if (have >= MBX_HEADER_SIZE) {
			struct mbx_header h;

			if (mbx_decode_header(buf, &h) == 0 && h.type == MBX_MSG_ERROR)
				*saw_error = true;
			have = 0; /* only the first frame matters */
		}
	}
}

static void rel_figures_path(const char *file, char *path, size_t len)
{
	const char *dir = getenv("MBX_FIGURES_DIR");

	snprintf(path, len, "%s/%s", dir && *dir ? dir : ".", file);
}

/* Empties a figures file. */
void rel_figures_reset(const char *file)
{
	char path[512];
	FILE *f;

	rel_figures_path(file, path, sizeof(path));
	f = fopen(path, "w");
	if (f)
		fclose(f);
}

/* Appends one figure, and prints it for the test log. */
void rel_figure(const char *file, const char *name, const char *fmt, ...)
{
	char path[512], value[512];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	printf("figure %s: %s = %s\n", file, name, value);
	fflush(stdout);
	rel_figures_path(file, path, sizeof(path));
	f = fopen(path, "a");
	if (f) {
		fprintf(f, "%s\t%s\n", name, value);
		fclose(f);
	}
}

/* Monotonic seconds. */
double rel_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
