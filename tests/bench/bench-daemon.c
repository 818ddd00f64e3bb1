/* A temporary mbxd for the benchmark: folder, config, policy, process. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* The user mbxd drops to must exist, as packaging creates it (tests/system does the same). */
static void bench_daemon_user(void)
{
	if (getpwnam("_mbxd") || geteuid() != 0)
		return;
	if (system("useradd --system --no-create-home --shell /usr/sbin/nologin _mbxd") != 0)
		fprintf(stderr, "mbx-bench: cannot create the user _mbxd that mbxd drops to\n");
}

/* Lays out the folder; 0755 so the fairness stage's second uid reaches the socket. */
int bench_daemon_init(struct bench_daemon *d, const char *mbxd_path)
{
	memset(d, 0, sizeof(*d));
	bench_daemon_user();
	d->mbxd_path = mbxd_path;
	snprintf(d->dir, sizeof(d->dir), "/tmp/mbx-bench-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	chmod(d->dir, 0755);
	snprintf(d->config, sizeof(d->config), "%s/mbxd.yaml", d->dir);
	snprintf(d->policy, sizeof(d->policy), "%s/policy.yaml", d->dir);
	snprintf(d->socket, sizeof(d->socket), "%s/mbxd.sock", d->dir);
	snprintf(d->audit, sizeof(d->audit), "%s/audit.jsonl", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/mbxd.log", d->dir);
	return 0;
}

/*
 * Two sim memory devices: mem0 answers at once (the round trip is all
 * broker), slow0 takes BENCH_SERVICE_US per command (fairness). The limits
 * let the pipelined stage keep hundreds of one user's requests queued and
 * the scale stage hold 10,000 idle connections.
 */
static int bench_daemon_write_config(const struct bench_daemon *d)
{
	FILE *f = fopen(d->config, "w");

	if (!f)
		return -errno;
	/* The idle stage's clients are all one user: its per-user limit is max_clients too. */
	fprintf(f,
		"socket: { path: %s, mode: \"0666\" }\n"
		"policy: %s\n"
		"audit: { path: %s }\n"
		"limits: { max_inflight: 256, max_queue_per_user: 4096, max_clients: %u, "
		"max_clients_per_user: %u }\n"
		"devices:\n"
		"  - name: " BENCH_DEVICE "\n"
		"    transport: sim\n"
		"    options: { model: memdev, serial: 0x1111, latency_us: 0 }\n"
		"  - name: " BENCH_SLOW "\n"
		"    transport: sim\n"
		"    options: { model: memdev, serial: 0x2222, latency_us: %u }\n",
		d->socket, d->policy, d->audit, BENCH_MAX_CLIENTS, BENCH_MAX_CLIENTS,
		BENCH_SERVICE_US);
	return fclose(f) == 0 ? 0 : -EIO;
}

static bool bench_daemon_accepts(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		close(fd);
		return false;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return ok;
}

/* Prints mbxd's log, for a daemon that would not start. */
static void bench_daemon_dump_log(const struct bench_daemon *d)
{
	char line[512];
	FILE *f = fopen(d->log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "mbxd: %s", line);
	fclose(f);
}

/* Starts mbxd in the foreground with a fresh audit log; waits up to 20 s for its socket. */
int bench_daemon_start(struct bench_daemon *d, unsigned n_rules)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	int rc, status;

	unlink(d->audit);
	rc = bench_daemon_write_config(d);
	if (rc == 0)
		rc = bench_policy_write(d->policy, n_rules);
	if (rc < 0)
		return rc;
	d->pid = fork();
	if (d->pid < 0)
		return -errno;
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(d->mbxd_path, "mbxd", "-d", "-f", d->config, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 2000; i++) {
		if (bench_daemon_accepts(d->socket))
			return 0;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			fprintf(stderr, "mbx-bench: %s exited at start-up (status 0x%x)\n",
				d->mbxd_path, status);
			bench_daemon_dump_log(d);
			return -ECHILD;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "mbx-bench: mbxd did not open %s within 20 s\n", d->socket);
	bench_daemon_dump_log(d);
	return -ETIMEDOUT;
}

/* Stops mbxd; a daemon that ignores SIGTERM for 10 s is killed. */
void bench_daemon_stop(struct bench_daemon *d)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			unlink(d->audit);
			return;
		}
		nanosleep(&pause, NULL);
	}
	fprintf(stderr, "mbx-bench: mbxd (pid %d) ignored SIGTERM; killing it\n", (int)d->pid);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	unlink(d->audit);
}

/* Removes every file the bench made, then the folder. */
void bench_daemon_cleanup(struct bench_daemon *d)
{
	static const char *const names[] = {
	    "mbxd.yaml", "policy.yaml", "mbxd.sock", "audit.jsonl",       "mbxd.log",
	    "echo.sock", "dbus.sock",   "dbus.conf", "policy-micro.yaml", "audit-micro.jsonl"};
	char path[256];

	bench_daemon_stop(d);
	if (!d->dir[0])
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", d->dir, names[i]);
		unlink(path);
	}
	if (rmdir(d->dir) < 0)
		fprintf(stderr, "mbx-bench: cannot remove %s: %s\n", d->dir, strerror(errno));
}
