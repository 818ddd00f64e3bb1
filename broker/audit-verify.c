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
#include <openssl/evp.h>

#include "audit.h"

/* One line of the file as the verifier sees it. */
struct verify_line {
	int lineno;
	bool parsed; /* a JSON object with a valid seq and prev */
	uint64_t seq;
	char prev[AUDIT_HASH_HEX];
	char hash[AUDIT_HASH_HEX]; /* of this line's bytes */
};

/* Where a broken chain was found, for the caller's out parameters. */
struct verify_out {
	uint64_t *bad_seq;
	int *bad_line;
	char *err;
	size_t errlen;
	const char *path;
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
	ok = true;
out:
	json_decref(o);
	l->parsed = ok;
	return ok;
}

/* Records the first broken record and returns -EBADMSG. */
static int verify_fail(const struct verify_out *o, const struct verify_line *l, const char *fmt,
		       ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*o->bad_line = l->lineno;
	*o->bad_seq = l->seq;
	if (l->seq)
		snprintf(o->err, o->errlen, "%s:%d: seq %" PRIu64 ": %s", o->path, l->lineno,
			 l->seq, msg);
	else
		snprintf(o->err, o->errlen, "%s:%d: %s", o->path, l->lineno, msg);
	return -EBADMSG;
}

/*
 * Reads the next line into l. Returns 1 for a line, 0 at the end of the file,
 * -EBADMSG (reported) for a torn or unparsable line, -errno on read errors.
 */
static int verify_next(FILE *f, char **buf, size_t *cap, struct verify_line *l, uint64_t expect_seq,
		       const struct verify_out *o)
{
	int lineno = l->lineno;
	char why[160];
	ssize_t n;

	errno = 0;
	n = getline(buf, cap, f);
	if (n < 0) {
		if (errno) {
			snprintf(o->err, o->errlen, "%s: %s", o->path, strerror(errno));
			return -errno;
		}
		return 0;
	}
	memset(l, 0, sizeof(*l));
	l->lineno = lineno + 1;
	l->seq = expect_seq;
	if ((*buf)[n - 1] != '\n')
		return verify_fail(o, l, "torn record: the file ends without a newline");
	n--;
	if (audit_sha256_hex(*buf, (size_t)n, l->hash) < 0) {
		snprintf(o->err, o->errlen, "%s: SHA-256 unavailable", o->path);
		return -EIO;
	}
	if (!verify_parse(*buf, (size_t)n, l, why, sizeof(why)))
		return verify_fail(o, l, "%s", why);
	return 1;
}

/*
 * Decides which record a broken link (prev of cur is not the hash of last)
 * blames: if the link after cur holds, cur's prev is intact and last was
 * edited; otherwise cur itself (its prev) was.
 */
static int verify_blame(FILE *f, char **buf, size_t *cap, const struct verify_line *last,
			const struct verify_line *cur, const struct verify_out *o)
{
	struct verify_line next = {.lineno = cur->lineno};
	int rc = verify_next(f, buf, cap, &next, cur->seq + 1, o);

	if (rc == 1 && strcmp(next.prev, cur->hash) != 0)
		return verify_fail(o, cur, "prev is not the hash of line %d", last->lineno);
	if (rc == 1)
		return verify_fail(o, last, "record altered: its hash is not the prev of line %d",
				   cur->lineno);
	/* cur is the last line (or the next one is broken too): blame the earlier one. */
	return verify_fail(o, last, "record altered, or the prev of line %d: the link fails",
			   cur->lineno);
}

/* Walks the chain; returns 0 or the first failure. */
static int verify_walk(FILE *f, const char *expected_prev, char *last_hash, uint64_t *first_seq,
		       uint64_t *count, const struct verify_out *o)
{
	struct verify_line last = {0}, cur = {0};
	char *buf = NULL;
	size_t cap = 0;
	int rc;

	while ((rc = verify_next(f, &buf, &cap, &cur, last.seq + 1, o)) == 1) {
		if (last.lineno && cur.seq != last.seq + 1) {
			rc =
			    verify_fail(o, &cur, "out of sequence: follows seq %" PRIu64, last.seq);
			break;
		}
		if (!last.lineno && expected_prev && strcmp(cur.prev, expected_prev) != 0) {
			rc = verify_fail(o, &cur, "prev does not continue the previous file");
			break;
		}
		if (last.lineno && strcmp(cur.prev, last.hash) != 0) {
			rc = verify_blame(f, &buf, &cap, &last, &cur, o);
			break;
		}
		if (!last.lineno)
			*first_seq = cur.seq;
		(*count)++;
		last = cur;
	}
	free(buf);
	if (rc == 0 && last.lineno)
		memcpy(last_hash, last.hash, AUDIT_HASH_HEX);
	return rc;
}

/* Verifies the chain of one audit file. */
int audit_verify_file(const char *path, const char *expected_prev, char *last_hash_out,
		      uint64_t *first_bad_seq, int *first_bad_line, char *err, size_t errlen)
{
	struct verify_out o = {first_bad_seq, first_bad_line, err, errlen, path};
	uint64_t first_seq = 0, count = 0;
	FILE *f;
	int rc;

	*first_bad_seq = 0;
	*first_bad_line = 0;
	if (expected_prev && !verify_is_hash(expected_prev)) {
		snprintf(err, errlen, "expected prev \"%s\" is not a SHA-256 hex string",
			 expected_prev);
		return -EINVAL;
	}
	snprintf(last_hash_out, AUDIT_HASH_HEX, "%s",
		 expected_prev
		     ? expected_prev
		     : "0000000000000000000000000000000000000000000000000000000000000000");
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	rc = verify_walk(f, expected_prev, last_hash_out, &first_seq, &count, &o);
	fclose(f);
	if (rc == 0 && count)
		snprintf(err, errlen,
			 "%s: %" PRIu64 " records, seq %" PRIu64 " to %" PRIu64 ", chain intact",
			 path, count, first_seq, first_seq + count - 1);
	else if (rc == 0)
		snprintf(err, errlen, "%s: no records", path);
	return rc;
}
