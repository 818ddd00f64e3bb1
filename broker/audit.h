/*
 * The audit log: JSON Lines, one record per decision, write-ahead for
 * audited classes (an "intent" record fsync'ed before the command reaches
 * the device, a "result" record after). Each record carries the SHA-256 of
 * the previous line, so the file is a hash chain.
 *
 * Only the event-loop thread calls these functions.
 */
#ifndef MBX_AUDIT_H
#define MBX_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <mbx/proto.h>

struct audit;

enum audit_kind {
	AUDIT_DECISION,   /* a request decided without reaching the device (deny, invalid, read) */
	AUDIT_INTENT,     /* about to send an audited command: fsync'ed first */
	AUDIT_RESULT,     /* the device answered an audited command */
	AUDIT_BACKGROUND, /* a background operation completed */
	AUDIT_SUPPRESSED, /* refusal records coalesced by audit-limit.c: a count, not one request */
	AUDIT_SEAL,       /* a forward-secure seal of the chain so far (audit-seal.c) */
};

/* Hex SHA-256 plus NUL. */
#define AUDIT_HASH_HEX 65

/*
 * What a SEAL record is made with: the epoch and that epoch's key. Its MAC
 * covers the epoch, the record's seq and its prev (so every record before).
 */
struct audit_seal_ref {
	uint64_t epoch;
	const uint8_t *key; /* AUDIT_SEAL_KEY_LEN bytes */
};
#define AUDIT_SEAL_KEY_LEN 32

/* HMAC-SHA-256 under key of "mbxd-audit-seal-v1 EPOCH SEQ PREV", as hex (audit-seal.c). */
int audit_seal_mac(const uint8_t key[AUDIT_SEAL_KEY_LEN], uint64_t epoch, uint64_t seq,
		   const char *prev, char mac[AUDIT_HASH_HEX]);

/* What a SUPPRESSED record counts (docs/audit.md "Coalesced refusals"). */
struct audit_suppressed {
	uint64_t count;        /* records like like_seq that were not written */
	uint64_t like_seq;     /* the last record written in full with the same key; 0: none */
	struct timespec first; /* CLOCK_REALTIME of the first and last one counted */
	struct timespec last;
	bool mixed; /* of several kinds: opcode, device, status and rule are null */
};

/* Everything one record says. Strings may be NULL (written as null). */
struct audit_record {
	enum audit_kind kind;
	uint64_t intent_seq; /* RESULT and BACKGROUND: the INTENT they close */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *user;
	const char *device;
	const char *transport;
	uint16_t opcode;
	const char *opcode_name;
	const struct mbx_inner *inner;
	size_t n_inner;
	enum mbx_class cls;
	enum mbx_decision decision;
	enum mbx_status status;
	const char *rule;
	const char *source;
	const char *reason;
	const uint8_t *payload; /* hashed, never written */
	size_t payload_len;
	bool have_rc;
	uint16_t cxl_rc;
	uint16_t vendor_status;
	uint32_t duration_us;
	const char *background;                    /* "started", "completed", "aborted" or NULL */
	const struct audit_suppressed *suppressed; /* SUPPRESSED only */
	const struct audit_seal_ref *seal;         /* SEAL only */
	/*
	 * Room in the log for the records that will close an INTENT (its
	 * result, and the background record when it may start one): an INTENT
	 * is written only if reserve records of AUDIT_CLOSE_MAX bytes can be
	 * held too; a RESULT or BACKGROUND record gives release of them back.
	 */
	unsigned reserve;
	unsigned release;
};

/* The longest record that closes an intent: every string at its longest, each byte escaped. */
#define AUDIT_CLOSE_MAX                                                                            \
	(2048 +                                                                                    \
	 6 * (64 + MBX_NAME_MAX + 32 + 64 + MBX_RULE_MAX + MBX_SOURCE_MAX + MBX_REASON_MAX) +      \
	 MBX_INNER_MAX * 64)

/*
 * Opens (creating, mode 0600) the log at path, continuing its chain from the
 * last complete line; a torn final line is cut away (see audit_torn_bytes).
 * A last line that is not a record is an error: the operator moves the file.
 */
int audit_open(const char *path, struct audit **out, char *err, size_t errlen);
void audit_close(struct audit *a);

/*
 * Appends one record; INTENT, RESULT and BACKGROUND records are fsync'ed
 * before this returns (DECISION records are written, not synced).
 * *seq gets the record's sequence number. Returns 0 or -errno; after a
 * failure the log is unusable until audit_healthy() says otherwise, and the
 * caller must refuse audited commands.
 */
int audit_write(struct audit *a, const struct audit_record *r, uint64_t *seq);

/*
 * Gives back n reservations of an intent that ends without a closing record
 * of its own (a background operation that never started).
 */
void audit_release(struct audit *a, unsigned n);

/* Reservations held for intents not yet closed. */
unsigned audit_reserved(const struct audit *a);

/* Whether the last write succeeded (a failed log retries on the next write). */
bool audit_healthy(const struct audit *a);

/*
 * Rotation (SIGUSR1): opens path anew (a new file if the old one was renamed
 * away) and continues the chain from the last record written: the new file's
 * first record names the old file's last hash and the next sequence number.
 * On failure the old file stays open and in use; returns -errno with err set.
 */
int audit_reopen(struct audit *a, char *err, size_t errlen);

/*
 * Notices a log deleted under mbxd between records, as audit_write does
 * before each: a new file at the path continues the chain (logged); a path
 * that holds another file or a link is not written, and every write fails
 * (fail closed) until it is free or SIGUSR1 reopens. Returns 0 or -errno.
 */
int audit_check(struct audit *a);

/* The sequence number of the last record in the chain (0: none yet). */
uint64_t audit_last_seq(const struct audit *a);

/*
 * Bytes of a torn final line (a crash in the middle of a write) that the last
 * audit_open or audit_reopen cut away; 0 when the file ended cleanly. The
 * caller should log it: the cut bytes never were a complete record.
 */
size_t audit_torn_bytes(const struct audit *a);

/* The chain's head: the last record's seq and line hash (0 and zeros: none yet). */
void audit_head(const struct audit *a, uint64_t *seq, char hash[AUDIT_HASH_HEX]);

/*
 * Where the file now written starts: the seq and prev of its first record,
 * or of the record that will be first when it is empty. Returns 0 or -errno.
 */
int audit_file_start(const struct audit *a, uint64_t *seq, char prev[AUDIT_HASH_HEX]);

/* Makes every record written so far durable (decisions are not synced one by one). */
int audit_sync(struct audit *a);

/*
 * Continues the chain from seq and hash in a file that holds no record yet
 * (a new file after a rotation whose reopen a restart did); -EEXIST when
 * the file already has records.
 */
int audit_continue(struct audit *a, uint64_t seq, const char *hash);

/*
 * Checks one audit file (audit-verify.c, linked by mbxctl too): every line is
 * a JSON object ending in a newline, seq goes up by one, and each prev is the
 * SHA-256 of the previous line's bytes. The first record's prev must equal
 * expected_prev; NULL means the file starts a chain: its first record must be
 * seq 1 with the zero hash (else its head was removed). Fills last_hash_out
 * with the hash of the last line (the expected_prev of the next file).
 * Returns 0 when the chain holds (err then holds a one-line summary),
 * -EBADMSG when it is broken: *first_bad_seq and *first_bad_line name the
 * record that was altered (0 when unknown), err says how; -errno when the
 * file cannot be read.
 */
int audit_verify_file(const char *path, const char *expected_prev, char *last_hash_out,
		      uint64_t *first_bad_seq, int *first_bad_line, char *err, size_t errlen);

/*
 * An intent that no result closes: a command still in the device when the
 * file was read, or one mbxd was stopped (killed) during; it may or may not
 * have run. Strings are the record's, truncated.
 */
struct audit_open_intent {
	uint64_t seq;
	char device[64];
	char opcode[8];
	char name[64];
	char user[64];
	char time[32];
};

/* One file's outcome in a verify run. */
struct audit_verify_part {
	const char *path;
	int rc; /* 0, -EBADMSG, -errno; 1: not read (an earlier file was broken) */
	uint64_t first_seq, last_seq, count;
	char msg[512];
};

struct audit_checkpoint; /* audit-anchor.h */

/* A verify run over files given oldest first, as one chain. */
struct audit_verify {
	/* In: the first file continues this hash; NULL: it starts the chain. */
	const char *prev;
	/*
	 * In: checkpoints sorted by seq (audit_checkpoint_read): the chain must
	 * reach each one's seq with its hash; a file may start where one says.
	 */
	const struct audit_checkpoint *ckpts;
	size_t n_ckpts;
	size_t ckpts_checked; /* out: how many named a record of the files given */
	/* In: the verification key (epoch 0's); NULL: seals are counted, not checked. */
	const uint8_t *seal_key;
	uint64_t n_seals;    /* out: seal records read */
	uint64_t sealed_seq; /* out: the last seal that held (checked ones only) */
	uint64_t first_epoch, last_epoch;
	bool seal_baseline; /* out: the first seal's epoch was taken as given (mid-chain) */
	/* Out. */
	int rc;           /* 0, or the first failure (-EBADMSG, -errno) */
	size_t bad_part;  /* which file failed */
	uint64_t bad_seq; /* the record blamed (0: unknown) */
	int bad_line;     /* its line in that file */
	char err[512];    /* what failed, or a summary of the run */
	struct audit_verify_part *parts;
	size_t n_parts;
	struct audit_open_intent *open; /* oldest first */
	size_t n_open;
	char last_hash[AUDIT_HASH_HEX]; /* of the chain's last line */
	uint64_t last_seq;
};

/*
 * Verifies paths[0..n) as one chain, oldest first: each file's first record
 * continues the last line of the one before. Lists the intents without a
 * result in v->open. Returns v->rc; audit_verify_free() frees what it filled.
 */
int audit_verify_run(struct audit_verify *v, const char *const *paths, size_t n);
void audit_verify_free(struct audit_verify *v);

/* Hex SHA-256 of len bytes into hex[AUDIT_HASH_HEX]; returns 0 or -EIO. */
int audit_sha256_hex(const void *data, size_t len, char hex[AUDIT_HASH_HEX]);

#endif
