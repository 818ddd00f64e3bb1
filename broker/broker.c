/* Daemon-wide operations: device lookup, clock, policy reload, orderly stop. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "broker.h"
#include "config.h"
#include "device.h"
#include "listener.h"
#include "log.h"
#include "policy-watch.h"
#include "policy.h"
#include "session.h"

#define STOP_CHECK_MS 20
#define STOP_GRACE_US (2ull * 1000 * 1000)

/* Finds a device by name. */
struct device *broker_find_device(struct broker *b, const char *name)
{
	for (size_t i = 0; i < b->n_devices; i++)
		if (strcmp(b->devices[i]->name, name) == 0)
			return b->devices[i];
	return NULL;
}

/* Monotonic microseconds. */
uint64_t broker_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Parses the policy anew and swaps only if all of it is valid. */
void broker_reload_policy(struct broker *b)
{
	struct policy_errors errs = {0};
	struct policy *p = NULL;

	if (policy_load(b->cfg->policy_path, NULL, true, &p, &errs) < 0) {
		char text[sizeof(errs.v->file) + sizeof(errs.v->message) + 16];

		for (size_t i = 0; i < errs.n; i++)
			log_warnx("%s", policy_error_text(&errs.v[i], text, sizeof(text)));
		log_warnx("policy reload failed (%zu errors): keeping the current policy", errs.n);
		policy_errors_free(&errs);
		return;
	}
	/* Rules that did not change keep their rate-limit buckets: a reload is no reset. */
	policy_keep_buckets(p, b->policy);
	/* Decisions copy what they report, so in-flight requests keep their answers. */
	policy_free(b->policy);
	b->policy = p;
	log_info("policy reloaded from %s", b->cfg->policy_path);
	session_policy_changed(b); /* who may see a device may have changed */
	policy_watch_follow(b);
}

static bool broker_devices_idle(struct broker *b)
{
	for (size_t i = 0; i < b->n_devices; i++)
		if (b->devices[i]->queued)
			return false;
	return true;
}

static bool broker_output_flushed(struct broker *b)
{
	struct session *s;

	TAILQ_FOREACH(s, &b->sessions, entry)
	if (evbuffer_get_length(bufferevent_get_output(s->bev)))
		return false;
	return true;
}

/* While stopping: leave the loop once in-flight work is answered and sent. */
static void broker_stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct broker *b = arg;
	struct timeval tv = {0, STOP_CHECK_MS * 1000};

	(void)fd;
	(void)what;
	if ((broker_devices_idle(b) && broker_output_flushed(b)) ||
	    broker_now_us() > b->stop_deadline_us) {
		event_base_loopexit(b->base, NULL);
		return;
	}
	evtimer_add(b->stop_check, &tv);
}

/* Stops accepting, cancels queued work, lets running commands finish, then exits. */
void broker_stop(struct broker *b)
{
	uint32_t longest = 0;

	if (b->stopping)
		return;
	b->stopping = true;
	log_info("stopping: no new requests; finishing the ones in devices");
	listener_close(b);
	for (size_t i = 0; i < b->n_devices; i++) {
		struct device *d = b->devices[i];

		device_fail_queued(d, MBX_STATUS_CANCELLED,
				   "mbxd is stopping: the request was "
				   "cancelled before it reached the device");
		if (d->timeout_ms > longest)
			longest = d->timeout_ms;
		if (background_current(d))
			log_warnx("device %s: background operation 0x%04x still running at stop; "
				  "its completion will not be audited by this run",
				  d->name, background_current(d)->opcode);
	}
	b->stop_deadline_us = broker_now_us() + (uint64_t)longest * 1000 + STOP_GRACE_US;
	b->stop_check = evtimer_new(b->base, broker_stop_check, b);
	broker_stop_check(-1, 0, b);
}
