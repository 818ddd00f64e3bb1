/*
 * What admins do today: a helper process per command. mbxctl identify, run
 * as a subprocess per request, stands in for a setuid helper: it pays the
 * same exec, dynamic linking and connection set-up on every command.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* Runs one mbxctl, stdout to /dev/null (stderr kept for failures); it must exit 0. */
static int bench_exec_one(const char *mbxctl, const char *socket,
			  const posix_spawn_file_actions_t *fa)
{
	char *const argv[] = {"mbxctl",   "--socket",   (char *)(uintptr_t)socket,
			      "identify", BENCH_DEVICE, NULL};
	int status, rc;
	pid_t pid;

	rc = posix_spawn(&pid, mbxctl, fa, NULL, argv, environ);
	if (rc != 0) {
		fprintf(stderr, "mbx-bench: cannot run %s: %s\n", mbxctl, strerror(rc));
		return -rc;
	}
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "mbx-bench: %s identify " BENCH_DEVICE " failed (status 0x%x)\n",
			mbxctl, status);
		return -EPROTO;
	}
	return 0;
}

/* Times n commands, each a new process; the first few warm the page cache. */
int bench_exec_run(const char *mbxctl, const char *socket, size_t n, struct stats *st)
{
	posix_spawn_file_actions_t fa;
	uint64_t t0;
	int rc = 0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (size_t i = 0; i < 5 && rc == 0; i++)
		rc = bench_exec_one(mbxctl, socket, &fa);
	for (size_t i = 0; i < n && rc == 0; i++) {
		t0 = stats_now_ns();
		rc = bench_exec_one(mbxctl, socket, &fa);
		stats_add(st, stats_now_ns() - t0);
	}
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}
