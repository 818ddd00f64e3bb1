/* Device lifecycle, the per-device worker thread and its fair queue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <event2/event.h>

#include "audit.h"
#include "broker.h"
#include "config.h"
#include "device.h"
#include "log.h"
#include "request.h"

#define WATCHDOG_MS       250
#define WATCHDOG_GRACE_MS 1000

/*
 * The next job for the worker: the broker's own first, then users
 * round-robin. The user served last rotates behind the others only now, at
 * the next pick, not when its job was taken: a user who queued while that
 * job ran then waits for that one job, not for one more of the same user's.
 */
static struct job *device_next_job(struct device *d)
{
	struct user_queue *uq;
	struct job *j;

	j = TAILQ_FIRST(&d->internal);
	if (j) {
		TAILQ_REMOVE(&d->internal, j, qentry);
		return j;
	}
	uq = TAILQ_FIRST(&d->ring);
	if (uq && uq == d->served && TAILQ_NEXT(uq, ring)) {
		TAILQ_REMOVE(&d->ring, uq, ring);
		TAILQ_INSERT_TAIL(&d->ring, uq, ring);
		uq = TAILQ_FIRST(&d->ring);
	}
	d->served = NULL;
	if (!uq)
		return NULL;
	j = TAILQ_FIRST(&uq->jobs);
	TAILQ_REMOVE(&uq->jobs, j, qentry);
	if (--uq->depth) {
		d->served = uq; /* stays at the head until the next pick */
	} else {
		TAILQ_REMOVE(&d->ring, uq, ring);
		free(uq);
	}
	return j;
}

/* Runs one job through the transport, outside the lock. */
static void device_run(struct device *d, struct job *j)
{
	struct mbx_transport_cmd *cmd = &j->cmd;

	if (j->reprobe) {
		cmd->error[0] = '\0';
		j->xrc = device_probe_read(d, &j->caps, cmd->error, sizeof(cmd->error)) < 0
			     ? MBX_XPORT_IO
			     : MBX_XPORT_OK;
		return;
	}
	cmd->in = j->in;
	cmd->in_len = j->in_len;
	cmd->out = d->outbuf;
	cmd->out_cap = d->info.payload_max;
	cmd->out_len = 0;
	cmd->error[0] = '\0';
	j->xrc = d->ops->submit(d->priv, cmd);
	if (cmd->out_len > cmd->out_cap)
		cmd->out_len = 0; /* a transport bug must not become an over-read */
	if (j->xrc == MBX_XPORT_OK && cmd->out_len) {
		j->out = malloc(cmd->out_len);
		if (j->out) {
			memcpy(j->out, d->outbuf, cmd->out_len);
		} else {
			j->xrc = MBX_XPORT_IO;
			snprintf(cmd->error, sizeof(cmd->error), "out of memory for the output");
		}
	}
}

/* The worker thread: take a job, run it, hand it back, until told to stop. */
static void *device_worker(void *arg)
{
	struct device *d = arg;
	struct job *j;

	/*
	 * The worker's sleeps are a device's timing (a mailbox poll backoff, the
	 * sim's service time): the default 50 us timer slack would add up to
	 * 50 us to each. Best effort; a kernel without it keeps the default.
	 */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pthread_mutex_lock(&d->lock);
	for (;;) {
		while (!d->stop && !(j = device_next_job(d)))
			pthread_cond_wait(&d->wake, &d->lock);
		if (d->stop)
			break;
		j->state = JOB_RUNNING;
		d->running = j;
		d->running_since_us = broker_now_us();
		pthread_mutex_unlock(&d->lock);

		j->started_us = broker_now_us();
		device_run(d, j);
		j->ended_us = broker_now_us();

		pthread_mutex_lock(&d->lock);
		d->running = NULL;
		j->state = JOB_DONE;
		TAILQ_INSERT_TAIL(&d->done, j, qentry);
		event_active(d->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Loop thread: collect finished jobs and finish each request. */
static void device_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	TAILQ_HEAD(, job) batch = TAILQ_HEAD_INITIALIZER(batch);
	struct job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&d->lock);
	TAILQ_CONCAT(&batch, &d->done, qentry);
	pthread_mutex_unlock(&d->lock);
	while ((j = TAILQ_FIRST(&batch))) {
		TAILQ_REMOVE(&batch, j, qentry);
		d->queued--;
		d->broker->queued_bytes -= j->in_len;
		request_complete(j);
	}
}

/*
 * Loop thread, every WATCHDOG_MS: a command the device holds well past its
 * configured timeout means the device hung. Only the device's timeout
 * counts, never a client's: a client's short timeout ends only its own wait
 * (request.c), and no client can stretch this one. Its requester is answered now, the queue
 * is failed, and the device is out of service until the command returns.
 */
static void device_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct device *d = arg;
	uint64_t since, limit_us;
	struct job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&d->lock);
	j = d->running;
	since = d->running_since_us;
	pthread_mutex_unlock(&d->lock);
	/* j stays valid: only this thread frees jobs, after the worker hands them back. */
	if (!j || j->abandoned)
		return;
	limit_us = ((uint64_t)d->timeout_ms + WATCHDOG_GRACE_MS) * 1000;
	if (broker_now_us() - since < limit_us)
		return;
	j->abandoned = true;
	d->state = MBX_DEVICE_FAILED;
	log_warnx("device %s: opcode 0x%04x has not answered in %u ms: device marked failed",
		  d->name, j->cmd.opcode, d->timeout_ms);
	request_abandon(j);
	device_fail_queued(d, MBX_STATUS_DEVICE_ERROR,
			   "the device stopped answering and is out of service");
}

/* A new job with an owned copy of the input. */
struct job *device_job_new(struct device *d, const uint8_t *in, size_t in_len)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	if (in_len) {
		j->in = malloc(in_len);
		if (!j->in) {
			free(j);
			return NULL;
		}
		memcpy(j->in, in, in_len);
	}
	j->dev = d;
	j->in_len = in_len;
	j->xrc = -1;
	j->cmd.timeout_ms = d->timeout_ms;
	return j;
}

/* Frees a job that is in no queue. */
void device_job_free(struct job *j)
{
	if (!j)
		return;
	if (j->client_timer)
		event_free(j->client_timer);
	/* Room its intent held for records that will not come (the daemon stops, say). */
	if (j->audit_held && j->dev && j->dev->broker && j->dev->broker->audit)
		audit_release(j->dev->broker->audit, j->audit_held);
	/* Whatever ends a job ends what the background model knew of it. */
	background_untrack(j);
	background_abort_untrack(j);
	device_caps_free(&j->caps);
	free(j->in);
	free(j->out);
	free(j);
}

static struct user_queue *device_user_queue(struct device *d, uid_t uid)
{
	struct user_queue *uq;

	TAILQ_FOREACH(uq, &d->ring, ring)
	if (uq->uid == uid)
		return uq;
	return NULL;
}

/* Queues a job; a user's FIFO is bounded so no one can queue without limit. */
int device_enqueue(struct device *d, struct job *j)
{
	struct user_queue *uq;

	pthread_mutex_lock(&d->lock);
	if (j->internal) {
		TAILQ_INSERT_TAIL(&d->internal, j, qentry);
	} else {
		uq = device_user_queue(d, j->uid);
		if (uq && uq->depth >= d->max_queue_per_user) {
			pthread_mutex_unlock(&d->lock);
			return -EBUSY;
		}
		if (!uq) {
			uq = calloc(1, sizeof(*uq));
			if (!uq) {
				pthread_mutex_unlock(&d->lock);
				return -ENOMEM;
			}
			uq->uid = j->uid;
			TAILQ_INIT(&uq->jobs);
			TAILQ_INSERT_TAIL(&d->ring, uq, ring);
		}
		TAILQ_INSERT_TAIL(&uq->jobs, j, qentry);
		uq->depth++;
	}
	j->state = JOB_QUEUED;
	d->queued++;
	d->broker->queued_bytes += j->in_len;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/*
 * A transport that never blocks gains nothing from the worker thread but two
 * thread wake-ups; with the device idle, the loop runs the command itself.
 * The worker cannot start meanwhile: only this thread queues work.
 */
bool device_run_inline(struct device *d, struct job *j)
{
	bool idle;

	if (!d->info.never_blocks)
		return false;
	pthread_mutex_lock(&d->lock);
	idle = !d->stop && !d->running && TAILQ_EMPTY(&d->internal) && TAILQ_EMPTY(&d->ring);
	if (idle) {
		d->running = j;
		d->running_since_us = broker_now_us();
	}
	pthread_mutex_unlock(&d->lock);
	if (!idle)
		return false;
	j->state = JOB_RUNNING;
	j->started_us = broker_now_us();
	device_run(d, j);
	j->ended_us = broker_now_us();
	pthread_mutex_lock(&d->lock);
	d->running = NULL;
	pthread_mutex_unlock(&d->lock);
	j->state = JOB_DONE;
	return true;
}

#define REPROBE_RETRY_S 5

static void device_reprobe_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	device_reprobe(arg);
}

/* Queues the re-probe ahead of users' commands; on failure, tries again later. */
void device_reprobe(struct device *d)
{
	struct timeval tv = {REPROBE_RETRY_S, 0};
	struct job *j = device_job_new(d, NULL, 0);

	if (j) {
		j->internal = true;
		j->reprobe = true;
		snprintf(j->user, sizeof(j->user), "mbxd");
		if (device_enqueue(d, j) == 0)
			return;
		device_job_free(j);
	}
	if (!d->reprobe_ev)
		d->reprobe_ev = evtimer_new(d->broker->base, device_reprobe_cb, d);
	if (d->reprobe_ev)
		evtimer_add(d->reprobe_ev, &tv);
}

/* Back in service with what the device now says it supports, or failed still. */
void device_reprobe_done(struct job *j)
{
	struct device *d = j->dev;
	struct timeval tv = {REPROBE_RETRY_S, 0};

	if (j->xrc != MBX_XPORT_OK) {
		log_warnx("device %s: re-probe failed (%s): still out of service, retrying in %d s",
			  d->name, j->cmd.error[0] ? j->cmd.error : "transport error",
			  REPROBE_RETRY_S);
		if (!d->reprobe_ev)
			d->reprobe_ev = evtimer_new(d->broker->base, device_reprobe_cb, d);
		if (d->reprobe_ev)
			evtimer_add(d->reprobe_ev, &tv);
		device_job_free(j);
		return;
	}
	device_caps_apply(d, &j->caps);
	if (d->state == MBX_DEVICE_FAILED)
		d->state = background_current(d) ? MBX_DEVICE_BACKGROUND : MBX_DEVICE_READY;
	log_info("device %s: back in service; CEL read again: %zu commands, %zu features", d->name,
		 d->pdev.n_cel, d->pdev.n_features);
	device_job_free(j);
}

/* Takes a still-queued job back out (its client left). */
bool device_dequeue(struct device *d, struct job *j)
{
	struct user_queue *uq;
	bool removed = false;

	pthread_mutex_lock(&d->lock);
	if (j->state == JOB_QUEUED) {
		if (j->internal) {
			TAILQ_REMOVE(&d->internal, j, qentry);
		} else {
			uq = device_user_queue(d, j->uid);
			TAILQ_REMOVE(&uq->jobs, j, qentry);
			if (--uq->depth == 0) {
				if (d->served == uq)
					d->served = NULL;
				TAILQ_REMOVE(&d->ring, uq, ring);
				free(uq);
			}
		}
		d->queued--;
		d->broker->queued_bytes -= j->in_len;
		removed = true;
	}
	pthread_mutex_unlock(&d->lock);
	return removed;
}

/* Whether a job still waits in the queue (the worker has not taken it). */
bool device_job_queued(struct device *d, const struct job *j)
{
	bool queued;

	pthread_mutex_lock(&d->lock);
	queued = j->state == JOB_QUEUED;
	pthread_mutex_unlock(&d->lock);
	return queued;
}

/* Fails every queued job with status and why, through the usual completion path. */
void device_fail_queued(struct device *d, enum mbx_status status, const char *why)
{
	struct job *j;

	pthread_mutex_lock(&d->lock);
	while ((j = device_next_job(d))) {
		j->state = JOB_DONE;
		j->xrc = -1;
		j->not_run_status = status;
		snprintf(j->cmd.error, sizeof(j->cmd.error), "%s", why);
		TAILQ_INSERT_TAIL(&d->done, j, qentry);
	}
	if (!TAILQ_EMPTY(&d->done))
		event_active(d->done_ev, EV_READ, 0);
	pthread_mutex_unlock(&d->lock);
}

/* What a transport is told of the device's entry in config file path. */
static struct mbx_transport_config device_transport_config(const struct config_device *cd,
							   const char *path)
{
	return (struct mbx_transport_config){
	    .device_name = cd->name,
	    .config_file = path,
	    .options = cd->options,
	    .n_options = cd->n_options,
	    .line = cd->line,
	};
}

/* Checks every device's transport options as its open would, opening nothing. */
int device_check_config(const struct config *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct config_device *cd = &c->devices[i];
		const struct mbx_transport_ops *ops = transport_find(cd->transport);
		struct mbx_transport_config tc = device_transport_config(cd, c->path);
		int rc;

		if (!ops) {
			snprintf(err, errlen, "%s:%d: device %s: unknown transport \"%s\"", c->path,
				 cd->line, cd->name, cd->transport);
			return -EINVAL;
		}
		if (ops->check && (rc = ops->check(&tc, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

static int device_init_transport(struct device *d, const struct config_device *cd, char *err,
				 size_t errlen)
{
	struct mbx_transport_config tc = device_transport_config(cd, d->broker->cfg->path);
	int rc;

	d->ops = transport_find(cd->transport);
	if (!d->ops) {
		snprintf(err, errlen, "device %s: unknown transport \"%s\"", cd->name,
			 cd->transport);
		return -EINVAL;
	}
	d->priv = calloc(1, d->ops->priv_size ? d->ops->priv_size : 1);
	if (!d->priv)
		return -ENOMEM;
	rc = d->ops->open(d->priv, &tc, err, errlen);
	if (rc < 0) {
		free(d->priv);
		d->priv = NULL;
		return rc;
	}
	d->ops->describe(d->priv, &d->info);
	if (d->info.payload_max < 256 || d->info.payload_max > MBX_PAYLOAD_MAX) {
		snprintf(err, errlen,
			 "device %s: transport reports payload size %u, outside 256..%u", cd->name,
			 d->info.payload_max, MBX_PAYLOAD_MAX);
		return -EINVAL;
	}
	return 0;
}

/* Opens a device: its transport, then its CEL. */
int device_open(struct broker *b, const struct config_device *cd, struct device **out, char *err,
		size_t errlen)
{
	struct device *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->broker = b;
	snprintf(d->name, sizeof(d->name), "%s", cd->name);
	d->transport_name = cd->transport;
	d->timeout_ms = cd->timeout_ms ? cd->timeout_ms : 2000;
	d->max_queue_per_user = b->cfg->max_queue_per_user;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	TAILQ_INIT(&d->internal);
	TAILQ_INIT(&d->ring);
	TAILQ_INIT(&d->done);
	TAILQ_INIT(&d->watchers);
	TAILQ_INIT(&d->bg_ops);
	TAILQ_INIT(&d->aborts);
	*out = d;

	rc = device_init_transport(d, cd, err, errlen);
	if (rc < 0)
		return rc;
	d->outbuf = malloc(d->info.payload_max);
	if (!d->outbuf)
		return -ENOMEM;
	rc = device_probe(d, err, errlen);
	if (rc < 0)
		return rc;
	d->done_ev = event_new(b->base, -1, 0, device_on_done, d);
	d->watchdog_ev = event_new(b->base, -1, EV_PERSIST, device_watchdog_cb, d);
	if (!d->done_ev || !d->watchdog_ev)
		return -ENOMEM;
	return 0;
}

/* Starts the worker thread; after daemon(), since fork keeps only the caller's thread. */
int device_start(struct device *d, char *err, size_t errlen)
{
	struct timeval tv = {0, WATCHDOG_MS * 1000};
	int rc = pthread_create(&d->thread, NULL, device_worker, d);

	if (rc == 0)
		rc = event_add(d->watchdog_ev, &tv) < 0 ? ENOMEM : 0;
	if (rc) {
		snprintf(err, errlen, "device %s: cannot start worker thread: %s", d->name,
			 strerror(rc));
		return -rc;
	}
	d->thread_started = true;
	return 0;
}

/* Stops the worker and closes the transport. A worker stuck in a hung device is left behind. */
void device_close(struct device *d)
{
	bool stuck;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	stuck = d->running != NULL;
	pthread_mutex_unlock(&d->lock);
	if (stuck) {
		/* Joining would wait for the device; the process is exiting anyway. */
		log_warnx("device %s: still running a command at exit, leaving it", d->name);
		return;
	}
	if (d->thread_started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
	}
	background_close(d);
	if (d->done_ev)
		event_free(d->done_ev);
	if (d->watchdog_ev)
		event_free(d->watchdog_ev);
	if (d->reprobe_ev)
		event_free(d->reprobe_ev);
	if (d->priv && d->ops)
		d->ops->close(d->priv);
	free(d->priv);
	free(d->outbuf);
	device_caps_free(&d->caps);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	free(d);
}
