/*
 * The path OpenBMC-style stacks use: the same request frame as a D-Bus
 * method call (Submit, "ay" -> "ay") from an sd-bus client, through a
 * private dbus-daemon the bench starts, to an sd-bus server in a child
 * process that answers with mbxd's RESULT frame. The server does no device
 * work, so this is the D-Bus path's floor: a conservative comparison.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bench.h"

#define DBUS_NAME "org.mbxd.Bench1"
#define DBUS_PATH "/org/mbxd/Bench"

struct dbus_reply {
	const uint8_t *frame;
	size_t len;
};

/* The server's one method: take the request frame, answer the RESULT frame. */
static int dbus_method_submit(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	const struct dbus_reply *rep = userdata;
	sd_bus_message *reply = NULL;
	const void *p;
	size_t len;
	int r;

	(void)err;
	r = sd_bus_message_read_array(m, 'y', &p, &len);
	if (r >= 0)
		r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append_array(reply, 'y', rep->frame, rep->len);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static const sd_bus_vtable dbus_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Submit", "ay", "ay", dbus_method_submit, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

/* Connects to the private bus as a bus client. */
static int dbus_connect(const char *address, sd_bus **out)
{
	sd_bus *bus = NULL;
	int r = sd_bus_new(&bus);

	if (r >= 0)
		r = sd_bus_set_address(bus, address);
	if (r >= 0)
		r = sd_bus_set_bus_client(bus, 1);
	if (r >= 0)
		r = sd_bus_start(bus);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*out = bus;
	return 0;
}

/* The server child: export the method, own the name, tell the parent, serve until the bus goes. */
static void dbus_serve(const char *address, const struct dbus_reply *rep, int ready_fd)
{
	sd_bus *bus = NULL;
	int r = dbus_connect(address, &bus);

	if (r >= 0)
		r = sd_bus_add_object_vtable(bus, NULL, DBUS_PATH, DBUS_NAME, dbus_vtable,
					     (void *)(uintptr_t)rep);
	if (r >= 0)
		r = sd_bus_request_name(bus, DBUS_NAME, 0);
	if (r < 0) {
		fprintf(stderr, "mbx-bench: D-Bus server: %s\n", strerror(-r));
		_exit(1);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	close(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		if (sd_bus_wait(bus, UINT64_MAX) < 0)
			break;
	}
	_exit(0);
}

/* Writes a session-bus config that listens on dir/dbus.sock and lets everyone talk. */
static int dbus_write_config(const char *dir, char *sock, size_t sock_len)
{
	char path[256];
	FILE *f;

	snprintf(sock, sock_len, "%s/dbus.sock", dir);
	snprintf(path, sizeof(path), "%s/dbus.conf", dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(
	    f,
	    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	    "<busconfig>\n"
	    "  <type>session</type>\n"
	    "  <listen>unix:path=%s</listen>\n"
	    "  <auth>EXTERNAL</auth>\n"
	    "  <policy context=\"default\">\n"
	    "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
	    "    <allow eavesdrop=\"true\"/>\n"
	    "    <allow own=\"*\"/>\n"
	    "  </policy>\n"
	    "</busconfig>\n",
	    sock);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Starts dbus-daemon on the private config; waits for its socket. */
static pid_t dbus_daemon_start(const char *dir, const char *sock)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	char arg[300];
	struct stat st;
	pid_t pid;

	unlink(sock);
	snprintf(arg, sizeof(arg), "--config-file=%s/dbus.conf", dir);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		/* Its start-up chatter (it cannot raise its fd limit, ...) is not ours to show. */
		dup2(null, 1);
		dup2(null, 2);
		execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nopidfile", arg, (char *)NULL);
		fprintf(stderr, "mbx-bench: cannot run dbus-daemon: %s (conf/install-deps.sh)\n",
			strerror(errno));
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 500; i++) {
		if (stat(sock, &st) == 0)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		nanosleep(&pause, NULL);
	}
	return -1;
}

/* One method call; the reply must be the whole RESULT frame. */
static int dbus_call(sd_bus *bus, const uint8_t *submit, size_t submit_len, size_t want)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL, *reply = NULL;
	const void *p;
	size_t len = 0;
	int r;

	r = sd_bus_message_new_method_call(bus, &m, DBUS_NAME, DBUS_PATH, DBUS_NAME, "Submit");
	if (r >= 0)
		r = sd_bus_message_append_array(m, 'y', submit, submit_len);
	if (r >= 0)
		r = sd_bus_call(bus, m, 0, &err, &reply);
	if (r >= 0)
		r = sd_bus_message_read_array(reply, 'y', &p, &len);
	if (r >= 0 && len != want)
		r = -EPROTO;
	if (r < 0)
		fprintf(stderr, "mbx-bench: D-Bus call: %s\n",
			err.message ? err.message : strerror(-r));
	sd_bus_error_free(&err);
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

/* Times n calls after warmup. */
static int dbus_client(const char *address, const uint8_t *submit, size_t submit_len,
		       size_t result_len, size_t warmup, size_t n, struct stats *st)
{
	sd_bus *bus = NULL;
	uint64_t t0;
	int r = dbus_connect(address, &bus);

	for (size_t i = 0; r >= 0 && i < warmup; i++)
		r = dbus_call(bus, submit, submit_len, result_len);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		t0 = stats_now_ns();
		r = dbus_call(bus, submit, submit_len, result_len);
		stats_add(st, stats_now_ns() - t0);
	}
	sd_bus_flush_close_unref(bus);
	return r < 0 ? r : 0;
}

/* The whole stage: daemon, server, client, teardown. */
int bench_dbus_run(const char *dir, const uint8_t *submit, size_t submit_len, const uint8_t *result,
		   size_t result_len, size_t warmup, size_t n, struct stats *st)
{
	struct dbus_reply rep = {result, result_len};
	char sock[256], address[300], c;
	pid_t daemon_pid, server_pid = -1;
	int rc = -EIO, ready[2];

	if (dbus_write_config(dir, sock, sizeof(sock)) < 0)
		return -EIO;
	snprintf(address, sizeof(address), "unix:path=%s", sock);
	daemon_pid = dbus_daemon_start(dir, sock);
	if (daemon_pid < 0) {
		fprintf(stderr, "mbx-bench: dbus-daemon did not start (is the dbus package "
				"installed? conf/install-deps.sh)\n");
		return -ENOENT;
	}
	if (pipe(ready) == 0) {
		server_pid = fork();
		if (server_pid == 0) {
			close(ready[0]);
			dbus_serve(address, &rep, ready[1]);
		}
		close(ready[1]);
		if (server_pid > 0 && read(ready[0], &c, 1) == 1)
			rc = dbus_client(address, submit, submit_len, result_len, warmup, n, st);
		close(ready[0]);
	}
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
	return rc;
}
