/*
 * The audit writer: one JSON object per line (jansson does the escaping),
 * each naming the SHA-256 of the line before it. Lines are appended with one
 * write each; a write or sync that fails is cut back off with ftruncate so
 * the file never holds a torn record and the chain stays verifiable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "log.h"
#include "syslog-dgram.h"

/* A last line longer than this is not ours: refuse to continue from it. */
#define AUDIT_LINE_MAX (1u << 20)
/* The stable message id of records mirrored to syslog (docs/RELIABILITY.md). */
#define AUDIT_SYSLOG_ID         "mbxd-audit:"
#define AUDIT_SYSLOG_DROPPED_ID "mbxd-audit-dropped:"
#define AUDIT_ZERO_HASH         "0000000000000000000000000000000000000000000000000000000000000000"

struct audit {
	char *path;
	int fd;
	uint64_t seq;                   /* of the last record in the chain */
	char last_hash[AUDIT_HASH_HEX]; /* of the last line's bytes */
	off_t good_off;                 /* end of the last complete record */
	bool dirty;                     /* a failed write's bytes past good_off may remain */
	bool healthy;                   /* the last write succeeded */
	off_t alloc_end;                /* blocks up to here are allocated (fallocate) */
	unsigned held;                  /* AUDIT_CLOSE_MAX reservations of open intents */
	bool no_falloc;                 /* the filesystem cannot preallocate: no reserve */
	bool lost;                      /* deleted, and its path holds something else: closed */
	size_t torn;                    /* bytes cut from a torn last line at open */
};

/* Where the chain stands in a file: what its next record continues. */
struct audit_tail {
	uint64_t seq;
	char hash[AUDIT_HASH_HEX];
	off_t end;
	size_t torn;
};

/* The system calls a record goes through; unit tests swap them to fail. */
/* Most records fit: a line is ~700 bytes, more with long reasons or tunnels. */
#define AUDIT_LINE_GUESS 2048

static ssize_t (*audit_sys_write)(int, const void *, size_t) = write;
static int (*audit_sys_sync)(int) = fdatasync;
static int (*audit_sys_truncate)(int, off_t) = ftruncate;
static int (*audit_sys_fallocate)(int, int, off_t, off_t) = fallocate;

/* Preallocated past what is needed, so most records make no fallocate call. */
#define AUDIT_ALLOC_AHEAD (64 * 1024)

static const char *const audit_kind_names[] = {
    [AUDIT_DECISION] = "decision",     [AUDIT_INTENT] = "intent",         [AUDIT_RESULT] = "result",
    [AUDIT_BACKGROUND] = "background", [AUDIT_SUPPRESSED] = "suppressed", [AUDIT_SEAL] = "seal",
};

/* Finds the last newline before offset end; *pos is -1 when there is none. */
static int audit_rfind_nl(int fd, off_t end, off_t *pos)
{
	char buf[4096];

	while (end > 0) {
		size_t want = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
		ssize_t n = pread(fd, buf, want, end - (off_t)want);

		if (n < 0)
			return -errno;
		if ((size_t)n != want)
			return -EIO;
		for (size_t i = want; i > 0; i--) {
			if (buf[i - 1] == '\n') {
				*pos = end - (off_t)want + (off_t)(i - 1);
				return 0;
			}
		}
		end -= (off_t)want;
	}
	*pos = -1;
	return 0;
}

/* Recovers seq and hash from the complete line at [start, end). */
static int audit_read_last(int fd, const char *path, off_t start, off_t end, struct audit_tail *t,
			   char *err, size_t errlen)
{
	size_t len = (size_t)(end - start);
	json_t *o = NULL, *seq;
	char *line;
	int rc = -EBADMSG;

	if (len > AUDIT_LINE_MAX) {
		snprintf(err, errlen, "%s: the last line is %zu bytes: not an audit record", path,
			 len);
		return -EBADMSG;
	}
	line = malloc(len ? len : 1);
	if (!line)
		return -ENOMEM;
	if (pread(fd, line, len, start) != (ssize_t)len) {
		snprintf(err, errlen, "%s: cannot read the last line", path);
		rc = -EIO;
		goto out;
	}
	o = json_loadb(line, len, 0, NULL);
	seq = json_object_get(o, "seq");
	if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
		snprintf(err, errlen,
			 "%s: the last line (at byte %lld) is not an audit record; move the file "
			 "away to start a new chain",
			 path, (long long)start);
		goto out;
	}
	rc = audit_sha256_hex(line, len, t->hash);
	t->seq = (uint64_t)json_integer_value(seq);
out:
	json_decref(o);
	free(line);
	return rc;
}

/* Cuts a torn last line away and reads where the chain stands in fd. */
static int audit_recover(int fd, const char *path, struct audit_tail *t, char *err, size_t errlen)
{
	struct stat st;
	off_t nl, prev_nl;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	t->end = st.st_size;
	t->torn = 0;
	if (st.st_size == 0)
		return 0;
	if ((rc = audit_rfind_nl(fd, st.st_size, &nl)) < 0)
		return rc;
	if (nl != st.st_size - 1) {
		/* A crash in the middle of a write: those bytes never were a record. */
		t->torn = (size_t)(st.st_size - (nl + 1));
		t->end = nl + 1;
		if (ftruncate(fd, t->end) < 0 || fsync(fd) < 0)
			return -errno;
	}
	if (nl < 0)
		return 0; /* nothing but a torn first line: a new chain */
	if ((rc = audit_rfind_nl(fd, nl, &prev_nl)) < 0)
		return rc;
	return audit_read_last(fd, path, prev_nl + 1, nl, t, err, errlen);
}

/* Makes a newly created file's name durable; best effort. */
static void audit_sync_dir(const char *path)
{
	char *copy = strdup(path);
	int dfd;

	if (!copy)
		return;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
}

/* Opens path for appending and updates t from its last record, if any. */
static int audit_open_fd(const char *path, int *fd_out, struct audit_tail *t, char *err,
			 size_t errlen)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = audit_recover(fd, path, t, err, errlen);
	if (rc < 0) {
		if (rc != -EBADMSG && rc != -EINVAL)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	audit_sync_dir(path);
	*fd_out = fd;
	return 0;
}

/* Opens the log at path, continuing its chain. */
int audit_open(const char *path, struct audit **out, char *err, size_t errlen)
{
	struct audit_tail t = {.hash = AUDIT_ZERO_HASH};
	struct audit *a = calloc(1, sizeof(*a));
	int rc;

	if (!a || !(a->path = strdup(path))) {
		free(a);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	rc = audit_open_fd(path, &a->fd, &t, err, errlen);
	if (rc < 0) {
		free(a->path);
		free(a);
		return rc;
	}
	a->seq = t.seq;
	memcpy(a->last_hash, t.hash, AUDIT_HASH_HEX);
	a->good_off = t.end;
	a->alloc_end = t.end;
	a->torn = t.torn;
	a->healthy = true;
	*out = a;
	return 0;
}

/* Closes the log; records already written are on disk or in the page cache. */
void audit_close(struct audit *a)
{
	if (!a)
		return;
	/* Also gives the preallocated blocks past the end back to the filesystem. */
	if (ftruncate(a->fd, a->good_off) < 0) {
		/* Nothing more to do: the next open cuts a torn line away. */
	}
	close(a->fd);
	free(a->path);
	free(a);
}

/*
 * Makes sure the blocks of [eof, eof + need) are allocated, so that writing
 * there cannot fail for want of space: fallocate past the end (the size
 * stays), with room ahead when there is some. A filesystem that cannot
 * preallocate is logged once and gets no reserve (docs/audit.md).
 */
static int audit_room(struct audit *a, int fd, off_t eof, off_t need)
{
	if (a->no_falloc || eof + need <= a->alloc_end)
		return 0;
	if (audit_sys_fallocate(fd, FALLOC_FL_KEEP_SIZE, eof, need + AUDIT_ALLOC_AHEAD) == 0) {
		a->alloc_end = eof + need + AUDIT_ALLOC_AHEAD;
		return 0;
	}
	if (errno == EOPNOTSUPP || errno == ENOSYS) {
		a->no_falloc = true;
		log_warnx("audit log %s: the filesystem cannot preallocate (%s): a full disk may "
			  "leave an audited command without its result record",
			  a->path, strerror(errno));
		return 0;
	}
	if (audit_sys_fallocate(fd, FALLOC_FL_KEEP_SIZE, eof, need) == 0) {
		a->alloc_end = eof + need;
		return 0;
	}
	return -errno;
}

/* Opens the path anew for rotation, carrying the chain over. */
int audit_reopen(struct audit *a, char *err, size_t errlen)
{
	struct audit_tail t = {.seq = a->seq};
	off_t old_end;
	int fd, rc;

	memcpy(t.hash, a->last_hash, AUDIT_HASH_HEX);
	rc = audit_open_fd(a->path, &fd, &t, err, errlen);
	if (rc < 0)
		return rc;
	/* Open intents are closed in the new file: their room moves there first. */
	old_end = a->alloc_end;
	a->alloc_end = t.end;
	rc = audit_room(a, fd, t.end, (off_t)a->held * AUDIT_CLOSE_MAX);
	if (rc < 0) {
		snprintf(err, errlen,
			 "%s: cannot reserve %u bytes for the results of open intents: %s", a->path,
			 a->held * AUDIT_CLOSE_MAX, strerror(-rc));
		a->alloc_end = old_end;
		close(fd);
		return rc;
	}
	/* Cutting at the end also gives the old file's preallocated blocks back. */
	if (ftruncate(a->fd, a->good_off) < 0) {
		/* The old file keeps a torn line; its verify reports it. */
	}
	close(a->fd);
	a->fd = fd;
	a->seq = t.seq;
	memcpy(a->last_hash, t.hash, AUDIT_HASH_HEX);
	a->good_off = t.end;
	a->torn = t.torn;
	a->dirty = a->lost = false;
	return 0;
}

/* A JSON string, or null for NULL; bytes that are not UTF-8 become U+FFFD. */
static json_t *audit_str(const char *s)
{
	json_t *j;
	char *copy, *p;

	if (!s)
		return json_null();
	if ((j = json_string(s)))
		return j;
	/* jansson refuses invalid UTF-8: keep the ASCII, mark the rest. */
	copy = malloc(strlen(s) * 3 + 1);
	if (!copy)
		return NULL;
	p = copy;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x80) {
			*p++ = (char)*c;
		} else {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
		}
	}
	*p = '\0';
	j = json_string(copy);
	free(copy);
	return j;
}

/* "0x4400", the form operators read opcodes in. */
static json_t *audit_opcode(uint16_t opcode)
{
	char buf[8];

	snprintf(buf, sizeof(buf), "0x%04x", opcode);
	return json_string(buf);
}

/* A CLOCK_REALTIME time as RFC 3339 UTC with microseconds. */
static json_t *audit_time_at(const struct timespec *ts)
{
	struct tm tm;
	char date[32], buf[48];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, sizeof(buf), "%s.%06uZ", date, (unsigned)(ts->tv_nsec / 1000) % 1000000u);
	return json_string(buf);
}

/* The current time as RFC 3339 UTC with microseconds. */
static json_t *audit_time(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return audit_time_at(&ts);
}

/* A SUPPRESSED record's count and window; null on every other record. */
static json_t *audit_suppressed_json(const struct audit_record *r)
{
	const struct audit_suppressed *sp = r->suppressed;
	json_t *o;

	if (r->kind != AUDIT_SUPPRESSED || !sp)
		return json_null();
	o = json_object();
	if (!o || json_object_set_new(o, "count", json_integer((json_int_t)sp->count)) < 0 ||
	    json_object_set_new(o, "like_seq",
				sp->like_seq ? json_integer((json_int_t)sp->like_seq)
					     : json_null()) < 0 ||
	    json_object_set_new(o, "first", audit_time_at(&sp->first)) < 0 ||
	    json_object_set_new(o, "last", audit_time_at(&sp->last)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The tunnel levels, outermost first; null when the command is not a tunnel. */
static json_t *audit_inner(const struct audit_record *r)
{
	json_t *arr;

	if (!r->n_inner)
		return json_null();
	arr = json_array();
	for (size_t i = 0; arr && i < r->n_inner; i++) {
		json_t *o = json_object();

		if (!o || json_array_append_new(arr, o) < 0 ||
		    json_object_set_new(o, "opcode", audit_opcode(r->inner[i].opcode)) < 0 ||
		    json_object_set_new(o, "class", json_string(mbx_class_name(r->inner[i].cls))) <
			0 ||
		    json_object_set_new(o, "target", json_integer(r->inner[i].target)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Adds key: v to o; a NULL v (out of memory) clears *ok. */
static void audit_put(json_t *o, const char *key, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		*ok = false;
}

/* Fills o with the record's fields, in the documented order. */
static bool audit_fields(json_t *o, const struct audit_record *r, uint64_t seq, const char *prev)
{
	bool closes = r->kind == AUDIT_RESULT || r->kind == AUDIT_BACKGROUND;
	/* A count of many requests has no one pid or payload; a mixed one no one command. */
	bool many = r->kind == AUDIT_SUPPRESSED;
	bool mixed = many && r->suppressed && r->suppressed->mixed;
	char sha[AUDIT_HASH_HEX];
	bool ok =
	    audit_sha256_hex(r->payload ? (const void *)r->payload : "", r->payload_len, sha) == 0;

	audit_put(o, "seq", json_integer((json_int_t)seq), &ok);
	audit_put(o, "time", audit_time(), &ok);
	audit_put(o, "kind", json_string(audit_kind_names[r->kind]), &ok);
	audit_put(o, "intent_seq", closes ? json_integer((json_int_t)r->intent_seq) : json_null(),
		  &ok);
	audit_put(o, "uid", json_integer(r->uid), &ok);
	audit_put(o, "gid", json_integer(r->gid), &ok);
	audit_put(o, "pid", many ? json_null() : json_integer(r->pid), &ok);
	audit_put(o, "user", audit_str(r->user), &ok);
	audit_put(o, "device", audit_str(r->device), &ok);
	audit_put(o, "transport", audit_str(r->transport), &ok);
	audit_put(o, "opcode", mixed ? json_null() : audit_opcode(r->opcode), &ok);
	audit_put(o, "name", audit_str(r->opcode_name), &ok);
	audit_put(o, "inner", audit_inner(r), &ok);
	audit_put(o, "class", mixed ? json_null() : json_string(mbx_class_name(r->cls)), &ok);
	audit_put(o, "decision", mixed ? json_null() : json_string(mbx_decision_name(r->decision)),
		  &ok);
	audit_put(o, "status", mixed ? json_null() : json_string(mbx_status_name(r->status)), &ok);
	audit_put(o, "rule", audit_str(r->rule), &ok);
	audit_put(o, "source", audit_str(r->source), &ok);
	audit_put(o, "reason", audit_str(r->reason), &ok);
	audit_put(o, "payload_sha256", many ? json_null() : ok ? json_string(sha) : NULL, &ok);
	audit_put(o, "cxl_rc", r->have_rc ? json_integer(r->cxl_rc) : json_null(), &ok);
	audit_put(o, "vendor_status", r->have_rc ? json_integer(r->vendor_status) : json_null(),
		  &ok);
	audit_put(o, "duration_us", json_integer(r->duration_us), &ok);
	audit_put(o, "background", audit_str(r->background), &ok);
	audit_put(o, "suppressed", audit_suppressed_json(r), &ok);
	audit_put(o, "prev", json_string(prev), &ok);
	return ok;
}

/* A SEAL record: only its place in the chain, the epoch and the MAC (docs/audit.md). */
static bool audit_seal_fields(json_t *o, const struct audit_record *r, uint64_t seq,
			      const char *prev)
{
	char mac[AUDIT_HASH_HEX];
	bool ok = r->seal && audit_seal_mac(r->seal->key, r->seal->epoch, seq, prev, mac) == 0;

	audit_put(o, "seq", json_integer((json_int_t)seq), &ok);
	audit_put(o, "time", audit_time(), &ok);
	audit_put(o, "kind", json_string("seal"), &ok);
	audit_put(o, "seal",
		  ok ? json_pack("{s:I, s:s}", "epoch", (json_int_t)r->seal->epoch, "mac", mac)
		     : NULL,
		  &ok);
	audit_put(o, "prev", json_string(prev), &ok);
	return ok;
}

/* Formats one record as a line with its newline; NULL when out of memory. */
static char *audit_format(const struct audit_record *r, uint64_t seq, const char *prev, size_t *len)
{
	json_t *o = json_object();
	char *line = NULL;
	size_t n, cap = AUDIT_LINE_GUESS;

	if (!o || !(r->kind == AUDIT_SEAL ? audit_seal_fields(o, r, seq, prev)
					  : audit_fields(o, r, seq, prev)))
		goto out;
	/* One dump in the common case; a record longer than the guess is dumped again. */
	for (int pass = 0; pass < 2; pass++) {
		line = malloc(cap + 1);
		if (!line)
			goto out;
		n = json_dumpb(o, line, cap, JSON_COMPACT);
		if (n == 0) {
			free(line);
			line = NULL;
			goto out;
		}
		if (n <= cap)
			break;
		free(line);
		line = NULL;
		cap = n;
	}
	if (!line)
		goto out;
	line[n] = '\n';
	*len = n + 1;
out:
	json_decref(o);
	return line;
}

/* Writes all of buf, then syncs it when asked; returns 0 or -errno. */
static int audit_append(int fd, const char *buf, size_t len, bool sync)
{
	while (len) {
		ssize_t n = audit_sys_write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	if (sync && audit_sys_sync(fd) < 0)
		return -errno;
	return 0;
}

/* Marks the log unhealthy (audited commands are refused) and returns rc. */
static int audit_unhealthy(struct audit *a, int rc)
{
	a->healthy = false;
	return rc;
}

/* Cuts a failed record off so that no torn line remains. */
static int audit_undo(struct audit *a, off_t start, int rc)
{
	a->good_off = start;
	a->dirty = audit_sys_truncate(a->fd, start) < 0;
	/* The truncate freed the blocks held for open intents: take them again. */
	a->alloc_end = start;
	if (audit_room(a, a->fd, start, (off_t)a->held * AUDIT_CLOSE_MAX) < 0)
		log_warnx("audit log %s: lost the room held for %u open intents' results", a->path,
			  a->held);
	return audit_unhealthy(a, rc);
}

/*
 * The syslog mirror: each record, as written, also goes to /dev/log for
 * fleet pipelines (journald or rsyslog pass it on). Not syslog(3): its
 * socket blocks, and a syslog daemon that stops reading would stop mbxd.
 * This one never waits: a datagram that cannot be sent now is dropped and
 * counted, and the count is reported when delivery resumes. The file is
 * the record of truth; the mirror is best effort.
 */
struct audit_syslog {
	uint64_t dropped; /* records not mirrored since the last report */
};

static struct audit_syslog audit_syslog;

/*
 * Mirrors one record: facility authpriv, priority info, and a message that
 * is the fixed id AUDIT_SYSLOG_ID, a space, then the line's exact bytes, so
 * a collector selects records by that prefix and can re-check their hashes.
 */
static void audit_mirror(const struct audit *a, const char *line, size_t len)
{
	char *msg, note[160];
	size_t idlen = strlen(AUDIT_SYSLOG_ID " ");
	int n;

	(void)a;
	if (audit_syslog.dropped) {
		n = snprintf(note, sizeof(note),
			     AUDIT_SYSLOG_DROPPED_ID
			     " %llu records were not mirrored (syslog "
			     "socket full or absent); the audit file has them",
			     (unsigned long long)audit_syslog.dropped);
		if (syslog_dgram_send(LOG_AUTHPRIV | LOG_WARNING, note, (size_t)n))
			audit_syslog.dropped = 0;
	}
	msg = malloc(idlen + len);
	if (msg) {
		memcpy(msg, AUDIT_SYSLOG_ID " ", idlen);
		memcpy(msg + idlen, line, len);
	}
	if (!msg || !syslog_dgram_send(LOG_AUTHPRIV | LOG_INFO, msg, idlen + len))
		audit_syslog.dropped++;
	free(msg);
}

/* Refuses to write: the file was deleted and its path is not ours to write (logged once). */
static int audit_lost(struct audit *a, int rc, const char *what)
{
	if (!a->lost)
		log_warnx(
		    "audit log %s: the file mbxd was writing was deleted (after seq %llu) and "
		    "%s; writing nothing: audited commands are refused until the path is free "
		    "(mbxd then starts a new file continuing the chain) or SIGUSR1 opens what "
		    "is there",
		    a->path, (unsigned long long)a->seq, what);
	a->lost = true;
	return audit_unhealthy(a, rc);
}

/*
 * Notices that the open file was deleted (its last link is gone, so records
 * would go nowhere) and continues the chain in a new file at the path. A
 * path that holds something else now (another file, a symbolic link) is not
 * written: mbxd did not make it. A file merely renamed away (rotation in
 * progress) still has a link and is written until SIGUSR1.
 */
static int audit_follow(struct audit *a, struct stat *st)
{
	struct stat at;
	int fd;

	if (st->st_nlink > 0)
		return 0;
	if (lstat(a->path, &at) == 0)
		return audit_lost(a, -ESTALE,
				  S_ISLNK(at.st_mode) ? "the path is now a symbolic link"
						      : "the path now holds another file");
	if (errno != ENOENT)
		return audit_lost(a, -errno, strerror(errno));
	fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return audit_lost(a, -errno, "a new file cannot be created there");
	audit_sync_dir(a->path);
	log_warnx("audit log %s was deleted under mbxd after seq %llu: a new file continues the "
		  "chain (its first record's prev is the deleted file's last hash)",
		  a->path, (unsigned long long)a->seq);
	close(a->fd);
	a->fd = fd;
	a->good_off = a->alloc_end = 0;
	a->dirty = a->lost = false;
	if (audit_room(a, fd, 0, (off_t)a->held * AUDIT_CLOSE_MAX) < 0)
		log_warnx("audit log %s: no room for the results of %u open intents", a->path,
			  a->held);
	return fstat(fd, st) < 0 ? audit_unhealthy(a, -errno) : 0;
}

/* Notices a deleted log between records (called on a timer). */
int audit_check(struct audit *a)
{
	struct stat st;

	if (fstat(a->fd, &st) < 0)
		return -errno;
	return audit_follow(a, &st);
}

/* Appends one record, fsync'ed unless it is a DECISION. */
int audit_write(struct audit *a, const struct audit_record *r, uint64_t *seq)
{
	unsigned release = r->release < a->held ? r->release : a->held;
	unsigned held_after = a->held - release + (r->kind == AUDIT_INTENT ? r->reserve : 0);
	char hash[AUDIT_HASH_HEX];
	struct stat st;
	size_t len = 0;
	char *line;
	int rc;

	if ((unsigned)r->kind > AUDIT_SEAL)
		return -EINVAL;
	/* Start clean: a failed write may have left bytes the truncate could not cut. */
	if (a->dirty && audit_sys_truncate(a->fd, a->good_off) < 0)
		return audit_unhealthy(a, -errno);
	a->dirty = false;
	/* The file's own end, not ours: someone may have truncated it (copytruncate). */
	if (fstat(a->fd, &st) < 0)
		return audit_unhealthy(a, -errno);
	if ((rc = audit_follow(a, &st)) < 0)
		return rc;
	if (st.st_size != a->good_off)
		a->alloc_end = st.st_size; /* what was preallocated may be gone with the cut */
	line = audit_format(r, a->seq + 1, a->last_hash, &len);
	if (!line || audit_sha256_hex(line, len - 1, hash) < 0) {
		free(line);
		return audit_unhealthy(a, -ENOMEM);
	}
	/*
	 * This line and every reservation still held after it must fit in
	 * allocated blocks. A record that closes an intent writes into room held
	 * for it; any other that finds no room is refused before a byte is
	 * written, so a flood can never take the room a result needs.
	 */
	rc = audit_room(a, a->fd, st.st_size, (off_t)len + (off_t)held_after * AUDIT_CLOSE_MAX);
	if (rc < 0 && !release) {
		free(line);
		return audit_unhealthy(a, rc); /* nothing was written */
	}
	rc = audit_append(a->fd, line, len,
			  r->kind != AUDIT_DECISION && r->kind != AUDIT_SUPPRESSED);
	if (rc < 0) {
		free(line);
		return audit_undo(a, st.st_size, rc);
	}
	audit_mirror(a, line, len - 1);
	free(line);
	a->seq++;
	memcpy(a->last_hash, hash, AUDIT_HASH_HEX);
	a->good_off = st.st_size + (off_t)len;
	a->held = held_after;
	a->healthy = true;
	if (seq)
		*seq = a->seq;
	return 0;
}

/* Gives back n reservations that no record will use. */
void audit_release(struct audit *a, unsigned n)
{
	a->held -= n < a->held ? n : a->held;
}

/* Reservations held for open intents. */
unsigned audit_reserved(const struct audit *a)
{
	return a->held;
}

/* Whether the last write succeeded. */
bool audit_healthy(const struct audit *a)
{
	return a->healthy;
}

/* The sequence number of the last record. */
uint64_t audit_last_seq(const struct audit *a)
{
	return a->seq;
}

/* Bytes of a torn last line cut away at the last open. */
size_t audit_torn_bytes(const struct audit *a)
{
	return a->torn;
}

/* The chain's head. */
void audit_head(const struct audit *a, uint64_t *seq, char hash[AUDIT_HASH_HEX])
{
	*seq = a->seq;
	memcpy(hash, a->last_hash, AUDIT_HASH_HEX);
}

/* Reads the seq and prev of the file's first line. */
int audit_file_start(const struct audit *a, uint64_t *seq, char prev[AUDIT_HASH_HEX])
{
	enum { FIRST_MAX = 65536 };
	char *buf, *nl;
	json_t *o;
	ssize_t n;
	int rc = -EBADMSG;

	if (a->good_off == 0) {
		*seq = a->seq + 1;
		memcpy(prev, a->last_hash, AUDIT_HASH_HEX);
		return 0;
	}
	if (!(buf = malloc(FIRST_MAX)))
		return -ENOMEM;
	n = pread(a->fd, buf, FIRST_MAX, 0);
	if (n < 0) {
		rc = -errno;
		free(buf);
		return rc;
	}
	nl = memchr(buf, '\n', (size_t)n);
	o = nl ? json_loadb(buf, (size_t)(nl - buf), 0, NULL) : NULL;
	if (json_is_integer(json_object_get(o, "seq")) &&
	    json_is_string(json_object_get(o, "prev")) &&
	    strlen(json_string_value(json_object_get(o, "prev"))) == AUDIT_HASH_HEX - 1) {
		*seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
		memcpy(prev, json_string_value(json_object_get(o, "prev")), AUDIT_HASH_HEX);
		rc = 0;
	}
	json_decref(o);
	free(buf);
	return rc;
}

/* Syncs the log file. */
int audit_sync(struct audit *a)
{
	return audit_sys_sync(a->fd) < 0 ? -errno : 0;
}

/* Continues the chain from seq and hash in a file without records. */
int audit_continue(struct audit *a, uint64_t seq, const char *hash)
{
	if (a->good_off != 0 || a->seq != 0)
		return -EEXIST;
	a->seq = seq;
	snprintf(a->last_hash, sizeof(a->last_hash), "%s", hash);
	return 0;
}
