/*
 * Forward-secure sealing of the audit chain, after journald's Forward
 * Secure Sealing but with a plain hash chain of keys: key(e+1) =
 * SHA-256(key(e)). A SEAL record of epoch e carries HMAC-SHA-256 under
 * key(e) of its epoch, seq and prev; since prev pins every earlier line,
 * the seal pins the whole chain before it. Once sealed, the daemon moves to
 * key(e+1) and erases key(e) from memory and disk: whoever gets root later
 * holds only the current key and cannot forge an earlier epoch's seal. The
 * verifier, given key(0), derives every epoch's key. Shared by mbxd and
 * mbxctl (seal-init, verify).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "audit-anchor.h"

/* A key file is one short JSON line. */
#define SEAL_FILE_MAX 512

/* Writes n bytes as lowercase hex plus NUL. */
static void seal_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* Parses 2n lowercase or uppercase hex digits into b; false on anything else. */
static bool seal_unhex(const char *s, size_t slen, uint8_t *b, size_t n)
{
	if (slen != 2 * n)
		return false;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;

		if (v < 0)
			return false;
		b[i / 2] = (uint8_t)(i % 2 ? (b[i / 2] << 4) | v : v);
	}
	return true;
}

/* HMAC-SHA-256 of a seal's epoch, seq and prev under key. */
int audit_seal_mac(const uint8_t key[AUDIT_SEAL_KEY_LEN], uint64_t epoch, uint64_t seq,
		   const char *prev, char mac[AUDIT_HASH_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "mbxd-audit-seal-v1 %" PRIu64 " %" PRIu64 " %s", epoch,
			 seq, prev);

	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    !HMAC(EVP_sha256(), key, AUDIT_SEAL_KEY_LEN, (const unsigned char *)msg, (size_t)n, md,
		  &mdlen) ||
	    mdlen != 32)
		return -EIO;
	seal_hex(md, 32, mac);
	return 0;
}

/* Moves k to the next epoch: the new key is the hash of the old, which is erased. */
void audit_seal_evolve(struct audit_seal_key *k)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(k->key, AUDIT_SEAL_KEY_LEN, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != AUDIT_SEAL_KEY_LEN)
		abort(); /* SHA-256 is linked in: this cannot fail short of a broken library */
	memcpy(k->key, md, AUDIT_SEAL_KEY_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	k->epoch++;
}

/* The key file's line: {"version":1,"epoch":E,"key":"..."} and a newline. */
static int seal_format(const struct audit_seal_key *k, char *buf, size_t len)
{
	char hex[2 * AUDIT_SEAL_KEY_LEN + 1];
	int n;

	seal_hex(k->key, AUDIT_SEAL_KEY_LEN, hex);
	n = snprintf(buf, len, "{\"version\":1,\"epoch\":%" PRIu64 ",\"key\":\"%s\"}\n", k->epoch,
		     hex);
	OPENSSL_cleanse(hex, sizeof(hex));
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/* Parses a key file's bytes. */
static bool seal_parse(const char *text, size_t len, struct audit_seal_key *k)
{
	json_t *o = json_loadb(text, len, 0, NULL);
	json_t *epoch = json_object_get(o, "epoch");
	const char *key = json_string_value(json_object_get(o, "key"));
	bool ok = json_integer_value(json_object_get(o, "version")) == 1 &&
		  json_is_integer(epoch) && json_integer_value(epoch) >= 0 && key &&
		  seal_unhex(key, strlen(key), k->key, AUDIT_SEAL_KEY_LEN);

	k->epoch = ok ? (uint64_t)json_integer_value(epoch) : 0;
	json_decref(o); /* jansson does not erase what it parsed; the file holds it anyway */
	return ok;
}

/* Reads one key file: a regular file, private to its owner. 1: read, 0: absent. */
static int seal_read_one(const char *path, struct audit_seal_key *k, char *err, size_t errlen)
{
	char buf[SEAL_FILE_MAX];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "seal key %s: %s", path, strerror(errno));
		goto out;
	}
	rc = -EPERM;
	if (!S_ISREG(st.st_mode))
		snprintf(err, errlen, "seal key %s: not a regular file", path);
	else if (st.st_mode & 077)
		snprintf(err, errlen,
			 "seal key %s: readable by group or others (mode %04o): chmod 600", path,
			 (unsigned)(st.st_mode & 07777));
	else if ((n = read(fd, buf, sizeof(buf))) < 0 || !seal_parse(buf, (size_t)n, k))
		rc = -EBADMSG;
	else
		rc = 1;
	if (rc == -EBADMSG)
		snprintf(err, errlen,
			 "seal key %s: not a key file (mbxctl audit seal-init makes one)", path);
	OPENSSL_cleanse(buf, sizeof(buf));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Loads the key state: path, or path.tmp when a crash left a later one. */
int audit_seal_key_load(const char *path, struct audit_seal_key *k, char *err, size_t errlen)
{
	struct audit_seal_key t;
	char tmp[4096], terr[256];
	int rc = seal_read_one(path, k, err, errlen), trc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (rc == 0) {
		snprintf(err, errlen, "seal key %s: %s", path, strerror(ENOENT));
		rc = -ENOENT;
	}
	if (rc < 0 && rc != -EBADMSG)
		return rc;
	/* An evolution cut short: the temp file is complete (synced before the overwrite). */
	trc = seal_read_one(tmp, &t, terr, sizeof(terr));
	if (trc == 1 && (rc < 0 || t.epoch > k->epoch)) {
		*k = t;
		rc = 1;
	}
	OPENSSL_cleanse(&t, sizeof(t));
	return rc < 0 ? rc : 0;
}

/* What the store's overwrite needs: the path and the new bytes. */
struct seal_store {
	const char *path;
	const char *data;
	size_t len;
};

/* Overwrites the old key file's own bytes with the new state before it is unlinked. */
static int seal_overwrite(void *arg)
{
	const struct seal_store *s = arg;
	int fd = open(s->path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (pwrite(fd, s->data, s->len, 0) != (ssize_t)s->len || ftruncate(fd, (off_t)s->len) < 0 ||
	    fdatasync(fd) < 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	return rc;
}

/* Stores k: temp file, overwrite of the old bytes, rename. */
int audit_seal_key_store(const char *path, const struct audit_seal_key *k, char *err, size_t errlen)
{
	char buf[SEAL_FILE_MAX];
	int n = seal_format(k, buf, sizeof(buf)), rc;
	struct seal_store s = {path, buf, (size_t)n};

	if (n < 0)
		return n;
	rc = audit_file_replace_with(path, buf, (size_t)n, seal_overwrite, &s, err, errlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* Creates a key file with a random epoch-0 key; the key as hex goes to vkey. */
int audit_seal_init(const char *path, char vkey[AUDIT_HASH_HEX], char *err, size_t errlen)
{
	struct audit_seal_key k = {.epoch = 0};
	char buf[SEAL_FILE_MAX];
	int fd, n, rc = 0;

	if (RAND_bytes(k.key, AUDIT_SEAL_KEY_LEN) != 1) {
		snprintf(err, errlen, "no random bytes for a key");
		return -EIO;
	}
	n = seal_format(&k, buf, sizeof(buf));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (a key file is never replaced: move it away first)"
					 : "");
		if (fd >= 0)
			unlink(path);
	}
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		seal_hex(k.key, AUDIT_SEAL_KEY_LEN, vkey);
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* Reads a verification key: 64 hex digits, surrounding white space ignored. */
int audit_seal_vkey_read(const char *path, uint8_t key[AUDIT_SEAL_KEY_LEN], char *err,
			 size_t errlen)
{
	char buf[SEAL_FILE_MAX], *s = buf;
	size_t n, len;
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "verification key %s: %s", path, strerror(errno));
		return rc;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	len = strcspn(s, " \t\r\n");
	if (!seal_unhex(s, len, key, AUDIT_SEAL_KEY_LEN)) {
		snprintf(err, errlen,
			 "verification key %s: not 64 hex digits (mbxctl audit seal-init printed "
			 "it)",
			 path);
		rc = -EBADMSG;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
