/*
 * Checkpoints of the audit chain: one JSON line naming the chain's head
 * (seq and line hash) and where the log file then written began. The daemon
 * replaces the checkpoint file atomically and mirrors each line to syslog;
 * mbxctl audit verify reads the file, or lines collected from syslog, and
 * holds the log to every checkpoint it finds. Shared by mbxd and mbxctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit-anchor.h"
#include "readfile.h"

/* A checkpoint line is short; a longer one is not ours. */
#define CKPT_LINE_MAX 4096

/* c as one JSON line. */
char *audit_checkpoint_format(const struct audit_checkpoint *c)
{
	json_t *o =
	    json_pack("{s:i, s:I, s:s, s:I, s:s, s:s, s:s}", "version", 1, "seq",
		      (json_int_t)c->seq, "hash", c->hash, "file_seq", (json_int_t)c->file_seq,
		      "file_prev", c->file_prev, "time", c->time, "why", c->why);
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return line;
}

/* Whether s is 64 lowercase hex digits. */
static bool ckpt_is_hash(const char *s)
{
	size_t i;

	for (i = 0; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s && i == AUDIT_HASH_HEX - 1;
}

/* Fills c from a parsed checkpoint object; false when a member is missing or wrong. */
static bool ckpt_from_json(json_t *o, struct audit_checkpoint *c)
{
	json_t *seq = json_object_get(o, "seq"), *fseq = json_object_get(o, "file_seq");
	const char *hash = json_string_value(json_object_get(o, "hash"));
	const char *fprev = json_string_value(json_object_get(o, "file_prev"));
	const char *t = json_string_value(json_object_get(o, "time"));
	const char *why = json_string_value(json_object_get(o, "why"));

	if (json_integer_value(json_object_get(o, "version")) != 1 || !json_is_integer(seq) ||
	    json_integer_value(seq) < 0 || !json_is_integer(fseq) || json_integer_value(fseq) < 1 ||
	    !ckpt_is_hash(hash) || !ckpt_is_hash(fprev))
		return false;
	memset(c, 0, sizeof(*c));
	c->seq = (uint64_t)json_integer_value(seq);
	c->file_seq = (uint64_t)json_integer_value(fseq);
	memcpy(c->hash, hash, AUDIT_HASH_HEX);
	memcpy(c->file_prev, fprev, AUDIT_HASH_HEX);
	snprintf(c->time, sizeof(c->time), "%s", t ? t : "-");
	snprintf(c->why, sizeof(c->why), "%s", why ? why : "-");
	return true;
}

/* Parses a checkpoint line, the file's own or a syslog line. */
int audit_checkpoint_parse(const char *line, size_t len, struct audit_checkpoint *c)
{
	const char *start = line, *id;
	json_t *o;
	int rc;

	id = memmem(line, len, AUDIT_CHECKPOINT_SYSLOG_ID, strlen(AUDIT_CHECKPOINT_SYSLOG_ID));
	if (id)
		start = id + strlen(AUDIT_CHECKPOINT_SYSLOG_ID);
	while (start < line + len && *start == ' ')
		start++;
	if (start == line + len || *start != '{')
		return -ENOENT;
	o = json_loadb(start, (size_t)(line + len - start), JSON_DISABLE_EOF_CHECK, NULL);
	rc = json_is_object(o) && ckpt_from_json(o, c) ? 0 : -EBADMSG;
	json_decref(o);
	return rc;
}

/* Orders checkpoints by seq, for a walk that meets them in chain order. */
static int ckpt_cmp(const void *a, const void *b)
{
	const struct audit_checkpoint *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Adds c to the growing array; returns 0 or -ENOMEM. */
static int ckpt_push(struct audit_checkpoint **v, size_t *n, size_t *cap,
		     const struct audit_checkpoint *c)
{
	if (*n == *cap) {
		size_t ncap = *cap * 2 + 4;
		struct audit_checkpoint *nv = realloc(*v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *c;
	return 0;
}

/* Reads every checkpoint line of path. */
int audit_checkpoint_read(const char *path, struct audit_checkpoint **out, size_t *n, char *err,
			  size_t errlen)
{
	struct audit_checkpoint c, *v = NULL;
	size_t cap = 0, lineno = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	struct stat st;
	/* Through readfile: the audit folder is the run user's, and a FIFO must not block. */
	int rc = readfile_open(path, &st, err, errlen);
	FILE *f = rc >= 0 ? fdopen(rc, "r") : NULL;

	*out = NULL;
	*n = 0;
	if (!f) {
		if (rc >= 0) {
			close(rc);
			rc = -ENOMEM;
			snprintf(err, errlen, "checkpoint %s: out of memory", path);
		} else if (rc == -ENOENT) {
			snprintf(err, errlen, "checkpoint %s: %s", path, strerror(-rc));
		}
		return rc;
	}
	rc = 0;
	while (rc == 0 && (len = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		if (len > CKPT_LINE_MAX && !memmem(line, (size_t)len, AUDIT_CHECKPOINT_SYSLOG_ID,
						   strlen(AUDIT_CHECKPOINT_SYSLOG_ID)))
			continue; /* a long syslog line of something else */
		rc = audit_checkpoint_parse(line, (size_t)len, &c);
		if (rc == -ENOENT)
			rc = 0;
		else if (rc == 0)
			rc = ckpt_push(&v, n, &cap, &c);
		else
			snprintf(err, errlen, "checkpoint %s:%zu: not a valid checkpoint", path,
				 lineno);
	}
	if (rc == -ENOMEM)
		snprintf(err, errlen, "checkpoint %s: out of memory", path);
	fclose(f);
	free(line);
	if (rc < 0) {
		free(v);
		*n = 0;
		return rc;
	}
	if (*n > 1)
		qsort(v, *n, sizeof(*v), ckpt_cmp);
	*out = v;
	return 0;
}

/* Writes all of data to fd and syncs it. */
static int ckpt_write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t w = write(fd, data, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		data += w;
		len -= (size_t)w;
	}
	return fsync(fd) < 0 ? -errno : 0;
}

/* Syncs the folder that holds path, so that a rename in it is durable. */
static int ckpt_sync_dir(const char *path)
{
	char *copy = strdup(path);
	int dfd, rc = 0;

	if (!copy)
		return -ENOMEM;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return rc;
}

/* Replaces path with data: temp file, fsync, rename, fsync the folder. */
int audit_file_replace(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
	return audit_file_replace_with(path, data, len, NULL, NULL, err, errlen);
}

/* Replaces path with data, calling before(arg) just before the rename. */
int audit_file_replace_with(const char *path, const void *data, size_t len, int (*before)(void *),
			    void *arg, char *err, size_t errlen)
{
	char tmp[4096];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	/* A temp file left by a crash (or planted) is never followed nor reused. */
	if (unlink(tmp) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return rc;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return rc;
	}
	rc = ckpt_write_all(fd, data, len);
	close(fd);
	if (rc == 0 && before)
		rc = before(arg);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = ckpt_sync_dir(path);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}
