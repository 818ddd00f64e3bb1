/*
 * The daemon's anchors of the audit chain: a checkpoint of the chain head
 * at start, every audit.checkpoint_interval_s seconds when the log grew, at
 * rotation and at a clean stop, to the checkpoint file (replaced atomically)
 * and to syslog. A checkpoint only names records already on disk: the log is
 * synced first, so a power loss never leaves a checkpoint ahead of its log.
 * With audit.seal_key, the chain is also sealed (audit-seal.c) at start,
 * every audit.seal_interval_s seconds when the log grew, before a rotation
 * and at a clean stop, each seal followed by the key's evolution.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "audit-anchor.h"
#include "broker.h"
#include "config.h"
#include "log.h"
#include "syslog-dgram.h"

struct audit_anchor {
	struct event *ckpt_ev;
	uint64_t ckpt_seq; /* the head the last checkpoint named */
	bool ckpt_written;
	bool ckpt_failing;           /* warned once; quiet until a checkpoint succeeds again */
	struct audit_seal_key *seal; /* the current epoch's key; NULL: no sealing */
	struct event *seal_ev;
	uint64_t sealed_seq; /* the last seal record (0: none this run) */
	bool seal_unstored;  /* the evolved key is not on disk yet: no seal until it is */
	bool seal_failing;
};

/* The current time as RFC 3339 UTC with microseconds. */
static void anchor_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char date[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (!strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		date[0] = '\0';
	snprintf(buf, len, "%s.%06uZ", date, (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

/* Fills c with where the chain stands now. */
static int anchor_fill(struct broker *b, const char *why, struct audit_checkpoint *c)
{
	memset(c, 0, sizeof(*c));
	audit_head(b->audit, &c->seq, c->hash);
	anchor_now(c->time, sizeof(c->time));
	snprintf(c->why, sizeof(c->why), "%s", why);
	return audit_file_start(b->audit, &c->file_seq, c->file_prev);
}

/* Writes c to the checkpoint file and to syslog. */
static int anchor_put(struct broker *b, const struct audit_checkpoint *c, char *err, size_t errlen)
{
	char *line = audit_checkpoint_format(c), *msg = NULL;
	size_t len;
	int rc;

	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	len = strlen(line);
	if (asprintf(&msg, "%s %s\n", AUDIT_CHECKPOINT_SYSLOG_ID, line) < 0) {
		free(line);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* The file gets the line with its newline: msg without the id. */
	rc = audit_file_replace(b->cfg->audit_checkpoint_path,
				msg + strlen(AUDIT_CHECKPOINT_SYSLOG_ID) + 1, len + 1, err, errlen);
	/* The syslog copy leaves the host: a rewrite of the file cannot reach it. */
	syslog_dgram_send(LOG_AUTHPRIV | LOG_INFO, msg, strlen(msg) - 1);
	free(msg);
	free(line);
	return rc;
}

/* Checkpoints the head unless nothing was written since the last one (or force). */
static void anchor_checkpoint(struct broker *b, const char *why, bool force)
{
	struct audit_anchor *an = b->anchor;
	struct audit_checkpoint c;
	char err[512] = "";
	uint64_t seq;
	char hash[AUDIT_HASH_HEX];
	int rc;

	audit_head(b->audit, &seq, hash);
	if (!force && an->ckpt_written && seq == an->ckpt_seq)
		return;
	/* Name only durable records: decisions are written without a sync. */
	if ((rc = audit_sync(b->audit)) < 0)
		snprintf(err, sizeof(err), "cannot sync the log: %s", strerror(-rc));
	else if ((rc = anchor_fill(b, why, &c)) < 0)
		snprintf(err, sizeof(err), "cannot read where the log file starts: %s",
			 strerror(-rc));
	else
		rc = anchor_put(b, &c, err, sizeof(err));
	if (rc < 0) {
		if (!an->ckpt_failing)
			log_warnx("audit checkpoint (%s) failed: %s; verify cannot tell a cut "
				  "tail from records written since the last one",
				  why, err);
		an->ckpt_failing = true;
		return;
	}
	if (an->ckpt_failing)
		log_info("audit checkpoints are written again");
	an->ckpt_failing = false;
	an->ckpt_written = true;
	an->ckpt_seq = seq;
}

/* Warns once about a sealing failure (again after it recovered). */
static void anchor_seal_warn(struct audit_anchor *an, const char *what, const char *err)
{
	if (!an->seal_failing)
		log_warnx("audit seal: %s: %s; records since the last seal stay unsealed", what,
			  err);
	an->seal_failing = true;
}

/* Puts the evolved key on disk; until it is, no seal is written under it. */
static int anchor_seal_store(struct broker *b)
{
	struct audit_anchor *an = b->anchor;
	char err[512];

	if (audit_seal_key_store(b->cfg->audit_seal_key_path, an->seal, err, sizeof(err)) < 0) {
		an->seal_unstored = true;
		anchor_seal_warn(an, "cannot store the evolved key", err);
		return -EIO;
	}
	an->seal_unstored = false;
	return 0;
}

/*
 * Seals the chain under the current epoch's key, then moves to the next
 * epoch: the old key is erased in memory and overwritten on disk. Nothing
 * is sealed when no record came since the last seal (unless force).
 */
static void anchor_seal(struct broker *b, bool force)
{
	struct audit_anchor *an = b->anchor;
	struct audit_seal_ref ref;
	struct audit_record r = {.kind = AUDIT_SEAL, .seal = &ref};
	char hash[AUDIT_HASH_HEX];
	uint64_t seq;
	int rc;

	if (!an || !an->seal)
		return;
	audit_head(b->audit, &seq, hash);
	if ((!force && seq == an->sealed_seq) || (an->seal_unstored && anchor_seal_store(b) < 0))
		return;
	ref.epoch = an->seal->epoch;
	ref.key = an->seal->key;
	if ((rc = audit_write(b->audit, &r, &an->sealed_seq)) < 0) {
		anchor_seal_warn(an, "cannot write the seal record", strerror(-rc));
		return;
	}
	audit_seal_evolve(an->seal);
	if (anchor_seal_store(b) < 0)
		return;
	if (an->seal_failing)
		log_info("audit seals are written again (epoch %" PRIu64 ")", an->seal->epoch);
	an->seal_failing = false;
}

/* Loads the key as root, hands its file to the run user, who evolves it. */
static int anchor_seal_open(struct broker *b, uid_t owner, gid_t group, char *err, size_t errlen)
{
	const char *path = b->cfg->audit_seal_key_path;
	struct audit_anchor *an = b->anchor;
	int rc;

	if (!path)
		return 0;
	an->seal = calloc(1, sizeof(*an->seal));
	if (!an->seal) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = audit_seal_key_load(path, an->seal, err, errlen)) < 0)
		return rc;
	log_info("audit sealing with %s at epoch %" PRIu64, path, an->seal->epoch);
	/* Seal what is there now: records a crash left unsealed get this epoch's seal. */
	anchor_seal(b, true);
	if (an->seal_unstored) {
		/* The key on disk lags the log: a restart would seal that epoch again. */
		snprintf(err, errlen, "seal key %s: the evolved key cannot be stored", path);
		return -EIO;
	}
	/* After the seal: its evolution wrote a new file, which must be the run user's. */
	if (fchownat(AT_FDCWD, path, owner, group, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		snprintf(err, errlen, "seal key %s: cannot give it to the run user: %s", path,
			 strerror(errno));
		return rc;
	}
	return 0;
}

/* Holds the log to its last checkpoint; an empty file continues the chain from it. */
static int anchor_check_log(struct broker *b, const struct audit_checkpoint *c, char *err,
			    size_t errlen)
{
	char hash[AUDIT_HASH_HEX];
	uint64_t seq;

	audit_head(b->audit, &seq, hash);
	if (seq == 0 && c->seq > 0 && audit_continue(b->audit, c->seq, c->hash) == 0) {
		log_info(
		    "audit log %s is new: its chain continues from the checkpoint (seq %" PRIu64
		    ")",
		    b->cfg->audit_path, c->seq);
		return 0;
	}
	if (seq < c->seq || (seq == c->seq && strcmp(hash, c->hash) != 0)) {
		snprintf(err, errlen,
			 "audit log %s ends at seq %" PRIu64
			 " but its checkpoint %s (%s) names seq "
			 "%" PRIu64 "%s: records were removed or altered; keep both as evidence, "
			 "and move them away to start a new chain",
			 b->cfg->audit_path, seq, b->cfg->audit_checkpoint_path, c->time, c->seq,
			 seq == c->seq ? " with another hash" : "");
		return -EBADMSG;
	}
	return 0;
}

/* Checks the log against its checkpoint, seals, and writes the start checkpoint. */
int audit_anchor_open(struct broker *b, uid_t owner, gid_t group, char *err, size_t errlen)
{
	struct audit_checkpoint *v = NULL;
	size_t n = 0;
	int rc = audit_checkpoint_read(b->cfg->audit_checkpoint_path, &v, &n, err, errlen);

	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0 && n > 0)
		rc = anchor_check_log(b, &v[n - 1], err, errlen);
	free(v);
	if (rc < 0)
		return rc;
	b->anchor = calloc(1, sizeof(*b->anchor));
	if (!b->anchor) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = anchor_seal_open(b, owner, group, err, errlen)) < 0)
		return rc;
	anchor_checkpoint(b, "start", true);
	return 0;
}

/* The periodic timer: a checkpoint when the log grew. */
static void anchor_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	anchor_checkpoint(arg, "periodic", false);
}

/* The seal timer: a seal (and the key's evolution) when the log grew. */
static void anchor_seal_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	anchor_seal(arg, false);
}

/* Arms a persistent timer every secs seconds (none for 0). */
static int anchor_timer(struct broker *b, struct event **ev, uint32_t secs, event_callback_fn fn)
{
	struct timeval tv = {.tv_sec = secs};

	if (!secs)
		return 0;
	*ev = event_new(b->base, -1, EV_PERSIST, fn, b);
	return *ev && event_add(*ev, &tv) == 0 ? 0 : -ENOMEM;
}

/* Arms the checkpoint and seal timers. */
int audit_anchor_start(struct broker *b)
{
	if (!b->anchor)
		return 0;
	if (anchor_timer(b, &b->anchor->ckpt_ev, b->cfg->audit_checkpoint_interval_s, anchor_tick) <
	    0)
		return -ENOMEM;
	if (b->anchor->seal)
		return anchor_timer(b, &b->anchor->seal_ev, b->cfg->audit_seal_interval_s,
				    anchor_seal_tick);
	return 0;
}

/* SIGUSR1: reopens the log by name and checkpoints the link between the files. */
void audit_anchor_rotate(struct broker *b)
{
	char err[256];

	/* The old file ends sealed: its last records do not wait for the next tick. */
	anchor_seal(b, false);
	if (audit_reopen(b->audit, err, sizeof(err)) < 0) {
		log_warnx("audit log reopen failed: %s", err);
		return;
	}
	log_info("audit log reopened");
	if (b->anchor)
		anchor_checkpoint(b, "rotation", true);
}

/* A clean stop: the last checkpoint names the last record. */
void audit_anchor_stop(struct broker *b)
{
	if (!b->anchor)
		return;
	anchor_seal(b, false);
	anchor_checkpoint(b, "stop", true);
	if (b->anchor->ckpt_ev)
		event_free(b->anchor->ckpt_ev);
	if (b->anchor->seal_ev)
		event_free(b->anchor->seal_ev);
	if (b->anchor->seal)
		OPENSSL_cleanse(b->anchor->seal, sizeof(*b->anchor->seal));
	free(b->anchor->seal);
	free(b->anchor);
	b->anchor = NULL;
}
