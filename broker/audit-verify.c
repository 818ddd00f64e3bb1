/*
 * Checking an audit file's hash chain, apart from the writer so that mbxctl
 * can link it without the daemon. Each line names, in "prev", the SHA-256 of
 * the previous line's bytes (newline excluded), so an edit anywhere but in
 * the last line breaks a link; seq must go up by one from line to line.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit-anchor.h"
#include "audit.h"

#define VERIFY_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* One line of the file as the verifier sees it. */
struct verify_line {
	int lineno;
	bool parsed; /* a JSON object with a valid seq and prev */
	uint64_t seq;
	char prev[AUDIT_HASH_HEX];
	char hash[AUDIT_HASH_HEX]; /* of this line's bytes */
	char kind[16];
	uint64_t intent_seq;           /* result and background: the intent they close */
	struct audit_open_intent what; /* intent: what it is about */
	bool is_seal;
	uint64_t seal_epoch;
	char seal_mac[AUDIT_HASH_HEX];
};

/* Where a verify run stands: the chain so far, across files. */
struct verify_ctx {
	struct audit_verify *v;
	struct audit_verify_part *part; /* the file being read */
	FILE *f;
	char *buf;
	size_t cap;
	struct verify_line last; /* the chain's last good line (lineno 0: none yet) */
	size_t open_cap;
	size_t ck;                 /* the first checkpoint not yet met */
	bool from_start;           /* the chain began at seq 1 with the zero hash */
	struct audit_seal_key key; /* the seal key derived so far (epoch forward only) */
	bool have_key;
};

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* OpenSSL 3 looks an algorithm up on every use unless it is fetched once. */
static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Hashes data with SHA-256 and writes it as lowercase hex. */
int audit_sha256_hex(const void *data, size_t len, char hex[AUDIT_HASH_HEX])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	pthread_once(&sha256_once, sha256_fetch);
	if (!sha256_md || !EVP_Digest(data, len, md, &mdlen, sha256_md, NULL) || mdlen != 32)
		return -EIO;
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[64] = '\0';
	return 0;
}

/* Whether s is exactly 64 lowercase hex digits, as the writer produces. */
static bool verify_is_hash(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == 64;
}

/* Copies a string member of o into buf, or "-" when it is null or absent. */
static void verify_copy(json_t *o, const char *key, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(buf, len, "%s", s ? s : "-");
}

/* Reads a seal record's epoch and MAC; false when they are not there. */
static bool verify_parse_seal(json_t *o, struct verify_line *l)
{
	json_t *seal = json_object_get(o, "seal"), *epoch = json_object_get(seal, "epoch");
	const char *mac = json_string_value(json_object_get(seal, "mac"));

	if (!json_is_integer(epoch) || json_integer_value(epoch) < 0 || !mac ||
	    !verify_is_hash(mac))
		return false;
	l->is_seal = true;
	l->seal_epoch = (uint64_t)json_integer_value(epoch);
	memcpy(l->seal_mac, mac, AUDIT_HASH_HEX);
	return true;
}

/* Reads what the intent/result bookkeeping needs from a parsed record. */
static void verify_parse_kind(json_t *o, struct verify_line *l)
{
	json_t *iseq = json_object_get(o, "intent_seq");

	verify_copy(o, "kind", l->kind, sizeof(l->kind));
	if (json_is_integer(iseq) && json_integer_value(iseq) > 0)
		l->intent_seq = (uint64_t)json_integer_value(iseq);
	if (strcmp(l->kind, "intent") != 0)
		return;
	l->what.seq = l->seq;
	verify_copy(o, "device", l->what.device, sizeof(l->what.device));
	verify_copy(o, "opcode", l->what.opcode, sizeof(l->what.opcode));
	verify_copy(o, "name", l->what.name, sizeof(l->what.name));
	verify_copy(o, "user", l->what.user, sizeof(l->what.user));
	verify_copy(o, "time", l->what.time, sizeof(l->what.time));
}

/* Parses one line (newline removed) into l; false when it is not a record. */
static bool verify_parse(const char *text, size_t len, struct verify_line *l, char *why,
			 size_t whylen)
{
	json_error_t jerr;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *seq, *prev;
	bool ok = false;

	if (!o || !json_is_object(o)) {
		snprintf(why, whylen, "not a JSON object%s%.100s", o ? "" : ": ",
			 o ? "" : jerr.text);
		goto out;
	}
	seq = json_object_get(o, "seq");
	prev = json_object_get(o, "prev");
	if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
		snprintf(why, whylen, "no valid \"seq\"");
		goto out;
	}
	l->seq = (uint64_t)json_integer_value(seq);
	if (!json_is_string(prev) || !verify_is_hash(json_string_value(prev))) {
		snprintf(why, whylen, "no valid \"prev\" hash");
		goto out;
	}
	memcpy(l->prev, json_string_value(prev), AUDIT_HASH_HEX);
	verify_parse_kind(o, l);
	if (!strcmp(l->kind, "seal") && !verify_parse_seal(o, l)) {
		snprintf(why, whylen, "a seal record without a valid epoch and mac");
		goto out;
	}
	ok = true;
out:
	json_decref(o);
	l->parsed = ok;
	return ok;
}

/* Records the first broken record and returns -EBADMSG. */
static int verify_fail(struct verify_ctx *c, const struct verify_line *l, const char *fmt, ...)
{
	struct audit_verify *v = c->v;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->bad_line = l->lineno;
	v->bad_seq = l->seq;
	if (l->seq)
		snprintf(v->err, sizeof(v->err), "%s:%d: seq %" PRIu64 ": %s", c->part->path,
			 l->lineno, l->seq, msg);
	else
		snprintf(v->err, sizeof(v->err), "%s:%d: %s", c->part->path, l->lineno, msg);
	return -EBADMSG;
}

/* Records a failure that is not about one record (a read error, say). */
static int verify_fail_file(struct verify_ctx *c, int rc, const char *msg)
{
	snprintf(c->v->err, sizeof(c->v->err), "%s: %s", c->part->path, msg);
	return rc;
}

/*
 * Reads the next line into l. Returns 1 for a line, 0 at the end of the file,
 * -EBADMSG (reported) for a torn or unparsable line, -errno on read errors.
 */
static int verify_next(struct verify_ctx *c, struct verify_line *l, uint64_t expect_seq)
{
	int lineno = l->lineno;
	char why[160];
	ssize_t n;

	errno = 0;
	n = getline(&c->buf, &c->cap, c->f);
	if (n < 0)
		return errno ? verify_fail_file(c, -errno, strerror(errno)) : 0;
	memset(l, 0, sizeof(*l));
	l->lineno = lineno + 1;
	l->seq = expect_seq;
	if (c->buf[n - 1] != '\n')
		return verify_fail(c, l, "torn record: the file ends without a newline");
	n--;
	if (audit_sha256_hex(c->buf, (size_t)n, l->hash) < 0)
		return verify_fail_file(c, -EIO, "SHA-256 unavailable");
	if (!verify_parse(c->buf, (size_t)n, l, why, sizeof(why)))
		return verify_fail(c, l, "%s", why);
	return 1;
}

/*
 * Decides which record a broken link (prev of cur is not the hash of last)
 * blames: if the link after cur holds, cur's prev is intact and last was
 * edited; otherwise cur itself (its prev) was.
 */
static int verify_blame(struct verify_ctx *c, const struct verify_line *cur)
{
	struct verify_line last = c->last, next = {.lineno = cur->lineno};
	int rc = verify_next(c, &next, cur->seq + 1);

	if (rc == 1 && strcmp(next.prev, cur->hash) != 0)
		return verify_fail(c, cur, "prev is not the hash of line %d", last.lineno);
	if (rc == 1)
		return verify_fail(c, &last, "record altered: its hash is not the prev of line %d",
				   cur->lineno);
	/* cur is the last line (or the next one is broken too): blame the earlier one. */
	return verify_fail(c, &last, "record altered, or the prev of line %d: the link fails",
			   cur->lineno);
}

/* Whether a checkpoint says a log file started with cur (a rotated file verified alone). */
static bool verify_ckpt_start(const struct audit_verify *v, const struct verify_line *cur)
{
	for (size_t i = 0; i < v->n_ckpts; i++)
		if (v->ckpts[i].file_seq == cur->seq && !strcmp(v->ckpts[i].file_prev, cur->prev))
			return true;
	return false;
}

/*
 * Checks the chain's first record: it continues --prev, starts at seq 1 with
 * zeros, or starts where a checkpoint says the log file started.
 */
static int verify_start(struct verify_ctx *c, const struct verify_line *cur)
{
	const char *prev = c->v->prev;

	if (prev && strcmp(cur->prev, prev) != 0)
		return verify_fail(c, cur, "prev does not continue the previous file");
	c->from_start = !prev && cur->seq == 1 && !strcmp(cur->prev, VERIFY_ZERO_HASH);
	if (prev || c->from_start || verify_ckpt_start(c->v, cur))
		return 0;
	if (c->v->n_ckpts)
		return verify_fail(c, cur,
				   "head removed: the chain does not start at seq 1 with the "
				   "zero hash, nor where a checkpoint says the file starts (seq "
				   "%" PRIu64 ")",
				   c->v->ckpts[c->v->n_ckpts - 1].file_seq);
	return verify_fail(c, cur,
			   "the chain does not start at seq 1 with the zero hash: its head was "
			   "removed, or the file continues a rotated one (give the earlier "
			   "files first, or --prev HASH)");
}

/* Checks that cur continues the chain: the next seq, the last line's hash. */
static int verify_link(struct verify_ctx *c, const struct verify_line *cur)
{
	if (!c->last.lineno && !c->last.seq)
		return verify_start(c, cur);
	if (cur->seq != c->last.seq + 1)
		return verify_fail(c, cur, "out of sequence: follows seq %" PRIu64, c->last.seq);
	if (strcmp(cur->prev, c->last.hash) == 0)
		return 0;
	if (!c->last.lineno) /* the last line is in the previous file */
		return verify_fail(c, cur, "prev does not continue the previous file");
	return verify_blame(c, cur);
}

/* Notes an intent as open, or closes the one a result or background record names. */
static int verify_track(struct verify_ctx *c, const struct verify_line *l)
{
	struct audit_verify *v = c->v;

	if (!strcmp(l->kind, "intent")) {
		if (v->n_open == c->open_cap) {
			size_t ncap = c->open_cap * 2 + 16;
			struct audit_open_intent *n = realloc(v->open, ncap * sizeof(*n));

			if (!n)
				return verify_fail_file(c, -ENOMEM, "out of memory");
			v->open = n;
			c->open_cap = ncap;
		}
		v->open[v->n_open++] = l->what;
		return 0;
	}
	if (strcmp(l->kind, "result") != 0 && strcmp(l->kind, "background") != 0)
		return 0;
	/* Results close recent intents: search from the newest. */
	for (size_t i = v->n_open; i > 0; i--) {
		if (v->open[i - 1].seq == l->intent_seq) {
			memmove(&v->open[i - 1], &v->open[i], (v->n_open - i) * sizeof(*v->open));
			v->n_open--;
			break;
		}
	}
	return 0;
}

/*
 * Holds cur to the checkpoints that name its seq: its hash must be theirs,
 * else it or a record before it was altered and every later hash recomputed.
 */
static int verify_ckpt_line(struct verify_ctx *c, const struct verify_line *cur)
{
	struct audit_verify *v = c->v;

	while (c->ck < v->n_ckpts && v->ckpts[c->ck].seq < cur->seq)
		c->ck++; /* before the files given: nothing to hold them to */
	for (; c->ck < v->n_ckpts && v->ckpts[c->ck].seq == cur->seq; c->ck++) {
		if (strcmp(v->ckpts[c->ck].hash, cur->hash) != 0)
			return verify_fail(c, cur,
					   "not the record the checkpoint of %s (%s) names: it, "
					   "or a record before it, was altered and the chain "
					   "rewritten after it",
					   v->ckpts[c->ck].time, v->ckpts[c->ck].why);
		v->ckpts_checked++;
	}
	return 0;
}

/* After the last file: a checkpoint past the chain's end means its tail was cut. */
static int verify_ckpt_tail(struct verify_ctx *c)
{
	struct audit_verify *v = c->v;
	const struct audit_checkpoint *k;

	if (!v->n_ckpts || v->ckpts[v->n_ckpts - 1].seq <= c->last.seq)
		return 0;
	k = &v->ckpts[v->n_ckpts - 1];
	v->bad_part = v->n_parts - 1;
	v->bad_seq = c->last.seq + 1;
	v->bad_line = c->last.lineno + 1;
	snprintf(v->err, sizeof(v->err),
		 "%s: tail removed: the chain ends at seq %" PRIu64 " but the checkpoint of %s "
		 "(%s) names seq %" PRIu64 ": records %" PRIu64 " to %" PRIu64 " are missing",
		 v->parts[v->bad_part].path, c->last.seq, k->time, k->why, k->seq, c->last.seq + 1,
		 k->seq);
	v->parts[v->bad_part].rc = -EBADMSG;
	snprintf(v->parts[v->bad_part].msg, sizeof(v->parts[v->bad_part].msg), "%s", v->err);
	return -EBADMSG;
}

/* Checks a seal's epoch against the one before: the same or the next, from 0. */
static int verify_seal_epoch(struct verify_ctx *c, const struct verify_line *cur)
{
	struct audit_verify *v = c->v;
	uint64_t e = cur->seal_epoch;

	if (v->n_seals > 1 && e != v->last_epoch && e != v->last_epoch + 1)
		return verify_fail(c, cur,
				   "seal of epoch %" PRIu64 " follows epoch %" PRIu64
				   ": seals were removed or forged",
				   e, v->last_epoch);
	if (v->n_seals == 1 && c->from_start && e != 0)
		return verify_fail(c, cur,
				   "the chain's first seal is epoch %" PRIu64 ", not 0: earlier "
				   "seals were removed or forged (a new chain needs a new key)",
				   e);
	if (v->n_seals == 1 && e > 100000000)
		return verify_fail(c, cur, "seal epoch %" PRIu64 " is implausible", e);
	if (v->n_seals == 1)
		v->seal_baseline = !c->from_start;
	return 0;
}

/* Holds a seal record to the key of its epoch, derived from the verification key. */
static int verify_seal(struct verify_ctx *c, const struct verify_line *cur)
{
	struct audit_verify *v = c->v;
	char mac[AUDIT_HASH_HEX];
	int rc;

	if (!cur->is_seal)
		return 0;
	if (!v->n_seals++)
		v->first_epoch = cur->seal_epoch;
	if (!v->seal_key) {
		v->last_epoch = cur->seal_epoch;
		return 0;
	}
	if ((rc = verify_seal_epoch(c, cur)) < 0)
		return rc;
	if (!c->have_key) {
		c->key.epoch = 0;
		memcpy(c->key.key, v->seal_key, AUDIT_SEAL_KEY_LEN);
		c->have_key = true;
	}
	while (c->key.epoch < cur->seal_epoch)
		audit_seal_evolve(&c->key);
	if (audit_seal_mac(c->key.key, cur->seal_epoch, cur->seq, cur->prev, mac) < 0)
		return verify_fail_file(c, -EIO, "HMAC-SHA-256 unavailable");
	if (strcmp(mac, cur->seal_mac) != 0)
		return verify_fail(c, cur,
				   "seal of epoch %" PRIu64 " does not hold: this record or one "
				   "before it was altered, or the seal forged",
				   cur->seal_epoch);
	v->last_epoch = cur->seal_epoch;
	v->sealed_seq = cur->seq;
	return 0;
}

/* With a verification key: a chain of records holds at least one seal. */
static int verify_seal_end(struct verify_ctx *c)
{
	struct audit_verify *v = c->v;

	if (!v->seal_key || v->n_seals || !c->last.seq || !v->n_parts)
		return 0;
	v->bad_part = v->n_parts - 1;
	v->bad_seq = c->last.seq;
	snprintf(v->err, sizeof(v->err),
		 "%s: no seal in these files: a sealing mbxd seals at start, every interval, "
		 "rotation and stop; seals were removed",
		 v->parts[v->bad_part].path);
	v->parts[v->bad_part].rc = -EBADMSG;
	snprintf(v->parts[v->bad_part].msg, sizeof(v->parts[v->bad_part].msg), "%s", v->err);
	return -EBADMSG;
}

/* Walks one file of the chain; returns 0 or the first failure. */
static int verify_walk(struct verify_ctx *c)
{
	struct audit_verify_part *p = c->part;
	struct verify_line cur = {0};
	int rc;

	c->last.lineno = 0; /* lines count per file; the chain goes on */
	while ((rc = verify_next(c, &cur, c->last.seq + 1)) == 1) {
		if ((rc = verify_link(c, &cur)) < 0 || (rc = verify_ckpt_line(c, &cur)) < 0 ||
		    (rc = verify_seal(c, &cur)) < 0 || (rc = verify_track(c, &cur)) < 0)
			break;
		if (!p->count++)
			p->first_seq = cur.seq;
		p->last_seq = cur.seq;
		c->last = cur;
	}
	return rc;
}

/* Verifies one file of the run into its part. */
static int verify_part(struct verify_ctx *c, const char *path)
{
	struct audit_verify_part *p = c->part;
	int rc;

	p->path = path;
	c->f = fopen(path, "re");
	if (!c->f) {
		rc = -errno;
		snprintf(c->v->err, sizeof(c->v->err), "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = verify_walk(c);
	fclose(c->f);
	c->f = NULL;
	if (rc == 0 && p->count)
		snprintf(p->msg, sizeof(p->msg),
			 "%s: %" PRIu64 " records, seq %" PRIu64 " to %" PRIu64 ", chain intact",
			 path, p->count, p->first_seq, p->last_seq);
	else if (rc == 0)
		snprintf(p->msg, sizeof(p->msg), "%s: no records", path);
	return rc;
}

/* Verifies paths[0..n) as one chain, oldest first. */
int audit_verify_run(struct audit_verify *v, const char *const *paths, size_t n)
{
	struct verify_ctx c = {.v = v};
	int rc = 0;

	v->rc = 0;
	v->err[0] = '\0';
	v->parts = calloc(n ? n : 1, sizeof(*v->parts));
	if (!v->parts)
		return v->rc = -ENOMEM;
	v->n_parts = n;
	if (v->prev && !verify_is_hash(v->prev)) {
		snprintf(v->err, sizeof(v->err), "expected prev \"%s\" is not a SHA-256 hex string",
			 v->prev);
		return v->rc = -EINVAL;
	}
	snprintf(c.last.hash, sizeof(c.last.hash), "%s", v->prev ? v->prev : VERIFY_ZERO_HASH);
	for (size_t i = 0; i < n; i++)
		v->parts[i].rc = 1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		c.part = &v->parts[i];
		rc = c.part->rc = verify_part(&c, paths[i]);
		if (rc < 0) {
			v->bad_part = i;
			snprintf(c.part->msg, sizeof(c.part->msg), "%s", v->err);
		}
	}
	if (rc == 0 && n)
		rc = verify_ckpt_tail(&c);
	if (rc == 0)
		rc = verify_seal_end(&c);
	OPENSSL_cleanse(&c.key, sizeof(c.key));
	free(c.buf);
	memcpy(v->last_hash, c.last.hash, AUDIT_HASH_HEX);
	v->last_seq = c.last.seq;
	return v->rc = rc;
}

/* Frees what a verify run filled in. */
void audit_verify_free(struct audit_verify *v)
{
	free(v->parts);
	free(v->open);
	v->parts = NULL;
	v->open = NULL;
	v->n_parts = v->n_open = 0;
}

/* Verifies the chain of one audit file. */
int audit_verify_file(const char *path, const char *expected_prev, char *last_hash_out,
		      uint64_t *first_bad_seq, int *first_bad_line, char *err, size_t errlen)
{
	struct audit_verify v = {.prev = expected_prev};
	int rc = audit_verify_run(&v, &path, 1);

	*first_bad_seq = v.bad_seq;
	*first_bad_line = v.bad_line;
	memcpy(last_hash_out, v.last_hash, AUDIT_HASH_HEX);
	snprintf(err, errlen, "%s", rc == 0 && v.parts ? v.parts[0].msg : v.err);
	audit_verify_free(&v);
	return rc;
}
