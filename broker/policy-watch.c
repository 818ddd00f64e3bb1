/*
 * users.d changes take effect without a SIGHUP: inotify reports writes,
 * renames, removals and permission changes in the folder, and after a short
 * quiet period the whole policy is reloaded (and kept if invalid), exactly
 * as SIGHUP does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker.h"
#include "log.h"
#include "policy-watch.h"
#include "policy.h"

/* Editors write in bursts (temp file, rename, chmod): reload once it settles. */
#define WATCH_SETTLE_MS 200
#define WATCH_EVENTS                                                                               \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |        \
	 IN_DELETE_SELF | IN_MOVE_SELF)

struct policy_watch {
	int fd;
	char *dir;
	struct event *read_ev;
	struct event *settle_ev;
};

static struct policy_watch watch = {.fd = -1};

/* The folder has been quiet for a while: reload, then follow users_dir if it moved. */
static void policy_watch_settled(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;

	(void)fd;
	(void)what;
	log_info("users_dir %s changed: reloading the policy", watch.dir);
	broker_reload_policy(b);
}

/* After a reload: watch the new policy's users_dir if it is another folder. */
void policy_watch_follow(struct broker *b)
{
	const char *dir = policy_users_dir(b->policy);

	if ((!dir && !watch.dir) || (dir && watch.dir && strcmp(dir, watch.dir) == 0))
		return;
	policy_watch_stop(b);
	policy_watch_start(b);
}

/* Drains inotify events and (re)arms the settle timer. */
static void policy_watch_read(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {0, WATCH_SETTLE_MS * 1000};
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	evtimer_add(watch.settle_ev, &tv);
}

/* Starts watching the policy's users_dir. */
int policy_watch_start(struct broker *b)
{
	const char *dir = policy_users_dir(b->policy);

	if (!dir)
		return 0;
	watch.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch.fd < 0)
		return -errno;
	if (inotify_add_watch(watch.fd, dir, WATCH_EVENTS) < 0) {
		int e = errno;

		log_warn("cannot watch users_dir %s; changes need SIGHUP", dir);
		close(watch.fd);
		watch.fd = -1;
		return -e;
	}
	watch.dir = strdup(dir);
	watch.read_ev = event_new(b->base, watch.fd, EV_READ | EV_PERSIST, policy_watch_read, b);
	watch.settle_ev = evtimer_new(b->base, policy_watch_settled, b);
	if (!watch.dir || !watch.read_ev || !watch.settle_ev ||
	    event_add(watch.read_ev, NULL) < 0) {
		policy_watch_stop(b);
		return -ENOMEM;
	}
	log_debug("watching users_dir %s", dir);
	return 0;
}

/* Stops watching. */
void policy_watch_stop(struct broker *b)
{
	(void)b;
	if (watch.read_ev)
		event_free(watch.read_ev);
	if (watch.settle_ev)
		event_free(watch.settle_ev);
	if (watch.fd >= 0)
		close(watch.fd);
	free(watch.dir);
	watch = (struct policy_watch){.fd = -1};
}
