/*
 * Anchors of the audit chain outside the log's own lines (docs/audit.md):
 * checkpoints of the chain head, written to a small file next to the log
 * and mirrored to syslog, and forward-secure seals. The checkpoint format
 * and file replacement (audit-checkpoint.c) are shared with mbxctl; the
 * daemon's timers and hooks are in audit-anchor.c.
 */
#ifndef MBX_AUDIT_ANCHOR_H
#define MBX_AUDIT_ANCHOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit.h"

/* The stable id of checkpoints mirrored to syslog; the JSON line follows a space. */
#define AUDIT_CHECKPOINT_SYSLOG_ID "mbxd-audit-checkpoint:"

/* One checkpoint: where the chain stood, and where the log file then written began. */
struct audit_checkpoint {
	uint64_t seq;                   /* the chain's head: its last record (0: none) */
	char hash[AUDIT_HASH_HEX];      /* that record's line hash */
	uint64_t file_seq;              /* the log file's first record (or next, when empty) */
	char file_prev[AUDIT_HASH_HEX]; /* the prev that record names */
	char time[32];                  /* when it was written, RFC 3339 UTC */
	char why[16];                   /* "start", "periodic", "rotation" or "stop" */
};

/* c as one JSON line without its newline; malloc'ed, NULL when out of memory. */
char *audit_checkpoint_format(const struct audit_checkpoint *c);

/*
 * Parses a checkpoint line: the file's own, or a syslog line holding
 * AUDIT_CHECKPOINT_SYSLOG_ID and the JSON. Returns 0, -ENOENT when the line
 * holds no checkpoint, -EBADMSG when it holds a broken one.
 */
int audit_checkpoint_parse(const char *line, size_t len, struct audit_checkpoint *c);

/*
 * Reads every checkpoint in path (the checkpoint file holds one; lines
 * collected from syslog, many) into *out, sorted by seq. Returns 0 (*n may
 * be 0 when none is found), or -errno with err naming the file and cause.
 */
int audit_checkpoint_read(const char *path, struct audit_checkpoint **out, size_t *n, char *err,
			  size_t errlen);

/*
 * Replaces path with data atomically: a temporary file in the same folder,
 * fsync'ed, renamed over path, then the folder fsync'ed. A crash leaves the
 * old file or the new one, never a mix. Returns 0 or -errno with err set.
 */
int audit_file_replace(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* The same, calling before(arg) between the temp file's sync and the rename; its error stops it. */
int audit_file_replace_with(const char *path, const void *data, size_t len, int (*before)(void *),
			    void *arg, char *err, size_t errlen);

/*
 * Forward-secure sealing (audit-seal.c): the key of epoch e+1 is the
 * SHA-256 of the key of epoch e, and the old key is erased from memory and
 * disk as soon as the next exists. The initial key (epoch 0), kept offline
 * by the operator, derives every epoch's key; the daemon only ever holds the
 * current one.
 */
struct audit_seal_key {
	uint64_t epoch;
	uint8_t key[AUDIT_SEAL_KEY_LEN];
};

/* Moves k to the next epoch, erasing the old key. */
void audit_seal_evolve(struct audit_seal_key *k);

/*
 * Reads a key file (the state written by seal-init and evolved by mbxd),
 * refusing anything but a regular file not readable by group or others. A
 * path.tmp left by a crash during evolution is used when it holds a later
 * epoch, or when path itself is broken. Returns 0 or -errno with err naming
 * the file and cause.
 */
int audit_seal_key_load(const char *path, struct audit_seal_key *k, char *err, size_t errlen);

/*
 * Stores k as path's new state: written to path.tmp and synced, then over
 * the old file's bytes in place (so the old key is overwritten on disk, not
 * only unlinked), then renamed over path. Returns 0 or -errno with err set.
 */
int audit_seal_key_store(const char *path, const struct audit_seal_key *k, char *err,
			 size_t errlen);

/*
 * Creates a new key file at path (it must not exist) with a random epoch-0
 * key; the same key, as hex, goes to vkey: the verification key.
 */
int audit_seal_init(const char *path, char vkey[AUDIT_HASH_HEX], char *err, size_t errlen);

/* Reads a verification key (64 hex digits, as seal-init printed it) from path. */
int audit_seal_vkey_read(const char *path, uint8_t key[AUDIT_SEAL_KEY_LEN], char *err,
			 size_t errlen);

struct broker;

/*
 * Daemon side (audit-anchor.c). audit_anchor_open runs as root right after
 * audit_open: it loads the sealing key (handing its file to owner and
 * group, the run user, who evolves it) and seals, checks the log against
 * its last checkpoint (a log that
 * ends before the checkpoint stops the start: records were removed),
 * continues the chain from it into a new empty file, and writes a start
 * checkpoint. audit_anchor_start arms the periodic timers (after the
 * privilege drop); rotate replaces audit_reopen on SIGUSR1; stop writes the
 * final checkpoint before audit_close.
 */
int audit_anchor_open(struct broker *b, uid_t owner, gid_t group, char *err, size_t errlen);
int audit_anchor_start(struct broker *b);
void audit_anchor_rotate(struct broker *b);
void audit_anchor_stop(struct broker *b);

#endif
