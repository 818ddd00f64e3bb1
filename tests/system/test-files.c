/*
 * Files are opened without blocking, against a real sandboxed mbxd: the
 * main policy and a users.d file replaced on reload by a FIFO, a directory,
 * a device node (/dev/null), and a symlink to each (the users.d ones into
 * a folder the user owns, as an administrator's symlink to a user's file
 * would be). Each time the reload is refused naming the path and what it
 * is, the old policy is kept, and the event loop is not blocked: the
 * reload ends and another client is answered. mbxd.yaml as a FIFO stops
 * the start with the same message instead of hanging it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/mbx.h>

#include "harness.h"

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev }\n";

/* Operators read; the outsider reads through its users.d file. */
static const char policy_yaml[] = "version: 1\n"
				  "users_dir: users.d\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

static const char user_file[] = "version: 1\n"
				"rules:\n"
				"  - name: nobody-reads\n"
				"    devices: [mem0]\n"
				"    allow: [read]\n";

static struct harness h;
static char users_dir[340], user_path[400], user_home[340];

/* Writes a root-owned 0644 file. */
static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert(fclose(f) == 0);
	chmod(path, 0644);
}

static void setup(void)
{
	struct passwd *pw;

	harness_users();
	pw = getpwnam(H_OUTSIDER);
	ck_assert_ptr_nonnull(pw);
	harness_init(&h, devices_yaml, policy_yaml);
	snprintf(users_dir, sizeof(users_dir), "%s/users.d", h.dir);
	ck_assert(mkdir(users_dir, 0755) == 0);
	snprintf(user_path, sizeof(user_path), "%s/" H_OUTSIDER ".yaml", users_dir);
	put(user_path, user_file);
	/* A folder the outsider owns, where it can put whatever it likes. */
	snprintf(user_home, sizeof(user_home), "%s/home", h.dir);
	ck_assert(mkdir(user_home, 0755) == 0 && chown(user_home, pw->pw_uid, pw->pw_gid) == 0);
	harness_start(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* How many times mbxd's log holds needle. */
static int log_count(const char *needle)
{
	return harness_file_count(h.log, needle);
}

/* In a child as some user: Identify on mem0, given 5 s before SIGALRM ends the wait. */
static int identify_within_5s(const char *socket, void *arg)
{
	struct harness_call c = {.device = "mem0", .opcode = 0x4000};

	(void)arg;
	alarm(5);
	return harness_submit_status(socket, &c);
}

/* The broker's status for Identify as user, failing the test if mbxd does not answer. */
static int status_as(const char *user)
{
	return harness_as_user(user, identify_within_5s, h.socket, NULL);
}

/* Puts a thing of kind at path: "fifo", "dir", "dev" (a symlink to /dev/null), or a symlink. */
static void make_thing(const char *kind, const char *path, const char *in)
{
	char target[400];

	unlink(path);
	rmdir(path);
	if (strcmp(kind, "fifo") == 0) {
		ck_assert(mkfifo(path, 0644) == 0);
	} else if (strcmp(kind, "dir") == 0) {
		ck_assert(mkdir(path, 0755) == 0);
	} else if (strcmp(kind, "dev") == 0) {
		ck_assert(mknod(path, S_IFCHR | 0644, makedev(1, 3)) == 0); /* /dev/null's */
	} else {
		/* "link-X": a symlink to an X kept in the folder `in`. */
		snprintf(target, sizeof(target), "%s/target-%s", in, kind + 5);
		if (strcmp(kind + 5, "null") == 0)
			snprintf(target, sizeof(target), "/dev/null");
		else
			make_thing(kind + 5, target, in);
		ck_assert(symlink(target, path) == 0);
	}
}

/* What the refusal says each kind is. */
static const char *said(const char *kind)
{
	static const char *const names[][2] = {
	    {"fifo", "it is a FIFO"},
	    {"dir", "it is a directory"},
	    {"dev", "it is a character device"},
	    {"link-fifo", "it is a symlink to a FIFO"},
	    {"link-dir", "it is a symlink to a directory"},
	    {"link-null", "it is a symlink to a character device"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i][0], kind) == 0)
			return names[i][1];
	return "?";
}

static const char *const kinds[] = {"fifo", "dir", "dev", "link-fifo", "link-dir", "link-null"};

/*
 * Replaces path by a thing of kind (made beside it, renamed over it), then
 * reloads; the reload must fail in time naming path, the loop must answer.
 */
static void refused_on_reload(const char *path, const char *kind, const char *in,
			      void (*trigger)(void))
{
	char tmp[420], want[600], *log;
	struct timespec pause = {0, 10 * 1000 * 1000};
	int failed = log_count("policy reload failed");
	int i;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	make_thing(kind, tmp, in);
	if (strcmp(kind, "dir") == 0) {
		unlink(path);
		rmdir(path);
	}
	ck_assert_msg(rename(tmp, path) == 0, "rename %s: %s", tmp, strerror(errno));
	trigger();
	for (i = 0; i < 500 && log_count("policy reload failed") == failed; i++) {
		harness_check_sandbox(&h);
		nanosleep(&pause, NULL);
	}
	log = harness_read_file(h.log);
	ck_assert_msg(i < 500, "%s: no end of the reload within 5 s (blocked?): %s", kind, log);
	snprintf(want, sizeof(want), "refusing %s: %s, not a regular file", path, said(kind));
	ck_assert_msg(strstr(log, want), "%s: log lacks \"%s\": %s", kind, want, log);
	free(log);
	/* The loop answers, and the old policy holds: the outsider's file still allows it. */
	ck_assert_int_eq(status_as(H_OUTSIDER), 0);
	ck_assert_int_eq(status_as(H_OPERATOR), 0);
	ck_assert_int_eq(status_as(H_ADMIN), 1);
	unlink(path);
	rmdir(path);
}

static void sighup(void)
{
	harness_signal(&h, SIGHUP);
}

static void nothing(void)
{
	/* users.d is watched: the rename itself reloads; SIGHUP follows in the test. */
}

START_TEST(test_main_policy_refused_on_reload)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		refused_on_reload(h.policy, kinds[i], h.dir, sighup);
		harness_write_policy(&h, policy_yaml);
	}
	printf("main policy: %zu kinds refused on SIGHUP, old policy kept, loop answered\n",
	       sizeof(kinds) / sizeof(kinds[0]));
}
END_TEST

START_TEST(test_user_file_refused_on_reload)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		/* Through inotify first (the rename is a change of users.d), then SIGHUP. */
		refused_on_reload(user_path, kinds[i], user_home, i % 2 ? sighup : nothing);
		put(user_path, user_file);
	}
	printf("users.d: %zu kinds refused on reload, old policy kept, loop answered\n",
	       sizeof(kinds) / sizeof(kinds[0]));
}
END_TEST

START_TEST(test_config_fifo_refused_at_start)
{
	char cfg[400], *log;
	struct timespec pause = {0, 10 * 1000 * 1000};
	int status = 0, i;
	pid_t pid;

	harness_stop(&h);
	snprintf(cfg, sizeof(cfg), "%s/fifo.yaml", h.dir);
	ck_assert(mkfifo(cfg, 0644) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(h.log, O_WRONLY | O_APPEND);

		dup2(fd, 2);
		execl(MBXD_PATH, "mbxd", "-d", "-f", cfg, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		nanosleep(&pause, NULL);
	if (i == 500) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ck_abort_msg("mbxd -f FIFO did not end within 5 s: opening it blocked");
	}
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	log = harness_read_file(h.log);
	ck_assert_msg(strstr(log, "it is a FIFO, not a regular file"), "said: %s", log);
	free(log);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("system-files");
	TCase *tc = tcase_create("files");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_main_policy_refused_on_reload);
	tcase_add_test(tc, test_user_file_refused_on_reload);
	tcase_add_test(tc, test_config_fifo_refused_at_start);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
