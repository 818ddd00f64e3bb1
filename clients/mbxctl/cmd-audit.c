/*
 * mbxctl audit verify: walks the hash chain of one or more audit files with
 * the daemon's own verifier (broker/audit-verify.c). Each file must continue
 * the one before it: its first record names the hash of the last line of
 * the previous file, as rotation (SIGUSR1) writes it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit-anchor.h"
#include "audit.h"
#include "cmd-audit.h"
#include "mbxctl.h"

#define AUDIT_USAGE                                                                                \
	"usage: mbxctl audit verify [--prev HASH] [--checkpoint F] FILE...\n"                      \
	"       mbxctl audit tail [-f] [-n N] [FILE]"
#define AUDIT_DEFAULT_FILE "/var/log/mbxd/audit.jsonl"
#define AUDIT_TAIL_POLL_MS 250

/* One file's outcome as a JSON object. */
static json_t *audit_part_json(const struct audit_verify *v, size_t i)
{
	const struct audit_verify_part *p = &v->parts[i];
	json_t *o = json_pack("{s:o, s:b, s:o}", "file", out_jstr(p->path), "intact", p->rc == 0,
			      "message", out_jstr(p->msg));

	if (o && p->rc == -EBADMSG) {
		json_object_set_new(o, "first_bad_seq", json_integer((json_int_t)v->bad_seq));
		json_object_set_new(o, "first_bad_line", json_integer(v->bad_line));
	}
	return o;
}

/* An open intent as a JSON object. */
static json_t *audit_open_json(const struct audit_open_intent *oi)
{
	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "seq", (json_int_t)oi->seq, "device",
			 out_jstr(oi->device), "opcode", out_jstr(oi->opcode), "name",
			 out_jstr(oi->name), "user", out_jstr(oi->user), "time",
			 out_jstr(oi->time));
}

/* Prints a verify run as JSON: the verdict, each file, each open intent. */
static void audit_verify_json(const struct audit_verify *v, const char *ckpt)
{
	json_t *files = json_array(), *open = json_array(), *doc;

	for (size_t i = 0; files && i < v->n_parts && v->parts[i].rc <= 0; i++)
		json_array_append_new(files, audit_part_json(v, i));
	for (size_t i = 0; open && i < v->n_open; i++)
		json_array_append_new(open, audit_open_json(&v->open[i]));
	doc = json_pack("{s:b, s:o, s:o, s:I}", "intact", v->rc == 0, "files", files,
			"open_intents", open, "last_seq", (json_int_t)v->last_seq);
	if (doc && v->n_seals)
		json_object_set_new(
		    doc, "seals",
		    json_pack("{s:I, s:b, s:I, s:I, s:I}", "count", (json_int_t)v->n_seals,
			      "checked", v->seal_key != NULL, "first_epoch",
			      (json_int_t)v->first_epoch, "last_epoch", (json_int_t)v->last_epoch,
			      "sealed_seq", (json_int_t)v->sealed_seq));
	if (doc && ckpt)
		json_object_set_new(doc, "checkpoint",
				    json_pack("{s:o, s:I, s:I}", "file", out_jstr(ckpt), "found",
					      (json_int_t)v->n_ckpts, "checked",
					      (json_int_t)v->ckpts_checked));
	out_json(doc);
}

/* Says what the checkpoints anchored: the newest one's seq, time and cause. */
static void audit_verify_ckpt_text(const struct audit_verify *v, const char *ckpt)
{
	const struct audit_checkpoint *k = v->n_ckpts ? &v->ckpts[v->n_ckpts - 1] : NULL;

	if (!ckpt)
		printf("no checkpoint: a cut tail, and a record altered with every later hash "
		       "recomputed, cannot be found (docs/audit.md)\n");
	else if (!k)
		printf("checkpoint %s: holds no checkpoint\n", ckpt);
	else
		printf("checkpoint %s: %zu checkpoints, %zu name records of these files; the "
		       "newest: seq %" PRIu64 " (%s, %s)%s\n",
		       ckpt, v->n_ckpts, v->ckpts_checked, k->seq, k->time, k->why,
		       v->rc == 0 ? ", held" : "");
}

/* Says what the seals cover: up to which seq, which epochs, what is not sealed. */
static void audit_verify_seal_text(const struct audit_verify *v)
{
	if (!v->seal_key) {
		if (v->n_seals)
			printf("seals: %" PRIu64 " (epochs %" PRIu64 " to %" PRIu64
			       "), not checked: "
			       "give the verification key with --seal-key\n",
			       v->n_seals, v->first_epoch, v->last_epoch);
		return;
	}
	printf("seals: %" PRIu64 ", epochs %" PRIu64 " to %" PRIu64 ", all hold: records up to "
	       "seq %" PRIu64 " are sealed%s\n",
	       v->n_seals, v->first_epoch, v->last_epoch, v->sealed_seq,
	       v->seal_baseline ? " (the first epoch taken as given: earlier files not read)" : "");
	if (v->last_seq > v->sealed_seq)
		printf("not sealed: seq %" PRIu64 " to %" PRIu64
		       ", written after the last seal (the "
		       "current epoch): not protected against someone holding its key\n",
		       v->sealed_seq + 1, v->last_seq);
}

/* Prints a verify run as text: a line per file read, a line per open intent. */
static void audit_verify_text(const struct audit_verify *v, const char *ckpt)
{
	for (size_t i = 0; i < v->n_parts && v->parts[i].rc <= 0; i++) {
		if (v->parts[i].rc == 0)
			printf("%s\n", v->parts[i].msg);
		else
			out_err("%s", v->parts[i].msg);
	}
	if (v->rc < 0 && (!v->n_parts || v->parts[v->bad_part].rc > 0))
		out_err("%s", v->err);
	for (size_t i = 0; i < v->n_open; i++)
		printf("open intent: seq %" PRIu64 " device %s opcode %s (%s) user %s at %s: no "
		       "result (still in the device, or mbxd stopped before it answered)\n",
		       v->open[i].seq, v->open[i].device, v->open[i].opcode, v->open[i].name,
		       v->open[i].user, v->open[i].time);
	if (v->rc == 0) {
		audit_verify_ckpt_text(v, ckpt);
		audit_verify_seal_text(v);
	}
}

/*
 * The checkpoint to hold the files to: --checkpoint F, else the one the
 * daemon writes next to the last file (the current log), when it is there.
 */
static int audit_load_ckpt(const char *given, const char *last, char *path, size_t len,
			   struct audit_checkpoint **v, size_t *n)
{
	char err[512];
	int rc;

	snprintf(path, len, "%s", given ? given : "");
	if (!given && (size_t)snprintf(path, len, "%s.checkpoint", last) >= len)
		return -ENAMETOOLONG;
	rc = audit_checkpoint_read(path, v, n, err, sizeof(err));
	if (rc == -ENOENT && !given) {
		path[0] = '\0';
		return 0;
	}
	if (rc < 0)
		out_err("%s", err);
	return rc;
}

/*
 * Verifies files[0..n) as one chain. Exit 0 when it holds, open intents
 * included (a command may be running now); 1 when it is broken or unreadable.
 */
static int audit_verify_chain(const struct ctl *ctl, const char *prev, const char *ckpt,
			      const char *seal_key, char **files, int n)
{
	struct audit_verify v = {.prev = prev};
	uint8_t key[AUDIT_SEAL_KEY_LEN];
	struct audit_checkpoint *ck = NULL;
	char path[4096], err[512];
	int rc;

	if (seal_key && audit_seal_vkey_read(seal_key, key, err, sizeof(err)) < 0) {
		out_err("%s", err);
		return CTL_EXIT_USAGE;
	}
	if (seal_key)
		v.seal_key = key;
	if (audit_load_ckpt(ckpt, files[n - 1], path, sizeof(path), &ck, &v.n_ckpts) < 0)
		return CTL_EXIT_DEVICE;
	v.ckpts = ck;
	rc = audit_verify_run(&v, (const char *const *)files, (size_t)n);
	if (ctl->json)
		audit_verify_json(&v, path[0] ? path : NULL);
	else
		audit_verify_text(&v, path[0] ? path : NULL);
	audit_verify_free(&v);
	free(ck);
	memset(key, 0, sizeof(key));
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_DEVICE;
}

/* mbxctl audit seal-init KEYFILE: a new sealing key; the verification key is printed. */
static int audit_seal_init_cmd(const struct ctl *ctl, int argc, char **argv)
{
	char vkey[AUDIT_HASH_HEX], err[512];

	if (argc != 2) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	if (audit_seal_init(argv[1], vkey, err, sizeof(err)) < 0) {
		out_err("%s", err);
		return CTL_EXIT_DEVICE;
	}
	if (ctl->json)
		out_json(json_pack("{s:o, s:I, s:s}", "key_file", out_jstr(argv[1]), "epoch",
				   (json_int_t)0, "verification_key", vkey));
	else
		printf("sealing key written to %s (epoch 0): name it in mbxd.yaml as "
		       "audit.seal_key\n"
		       "verification key: keep it offline, off this host; mbxctl audit verify "
		       "--seal-key FILE reads it from a file:\n%s\n",
		       argv[1], vkey);
	memset(vkey, 0, sizeof(vkey));
	return CTL_EXIT_OK;
}

/* A string member of a record, or "-" when null or absent. */
static const char *audit_str(json_t *rec, const char *key)
{
	const char *s = json_string_value(json_object_get(rec, key));

	return s ? s : "-";
}

/* Prints one record decoded on one line; a line that is not a record is shown as such. */
static void audit_tail_print(const struct ctl *ctl, const char *line)
{
	json_t *rec = json_loads(line, 0, NULL), *rc;
	char extra[160] = "";

	if (ctl->json) {
		if (rec)
			out_json(rec);
		else
			out_json(json_pack("{s:o}", "unparsed", out_jstr(line)));
		fflush(stdout);
		return;
	}
	if (!json_is_object(rec)) {
		printf("(not a record) %s\n", line);
		json_decref(rec);
		return;
	}
	rc = json_object_get(rec, "cxl_rc");
	if (json_is_integer(rc))
		snprintf(extra, sizeof(extra), " rc=%04" JSON_INTEGER_FORMAT "h",
			 json_integer_value(rc));
	if (json_is_string(json_object_get(rec, "background")))
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " background=%s",
			 audit_str(rec, "background"));
	if (json_is_string(json_object_get(rec, "reason")))
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " reason=\"%.80s\"",
			 audit_str(rec, "reason"));
	printf("%" JSON_INTEGER_FORMAT " %s %-10s %s(%" JSON_INTEGER_FORMAT ") %s %s %s %s %s %s "
	       "rule=%s%s\n",
	       json_integer_value(json_object_get(rec, "seq")), audit_str(rec, "time"),
	       audit_str(rec, "kind"), audit_str(rec, "user"),
	       json_integer_value(json_object_get(rec, "uid")), audit_str(rec, "device"),
	       audit_str(rec, "opcode"), audit_str(rec, "name"), audit_str(rec, "class"),
	       audit_str(rec, "decision"), audit_str(rec, "status"), audit_str(rec, "rule"), extra);
	json_decref(rec);
	fflush(stdout);
}

/* Prints the last n whole lines of f, leaving f at its end. */
static void audit_tail_last(const struct ctl *ctl, FILE *f, long n)
{
	char **ring = calloc((size_t)n ? (size_t)n : 1, sizeof(*ring));
	char *line = NULL;
	size_t cap = 0, count = 0;
	ssize_t len;

	while (ring && (len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break; /* a record still being written: -f picks it up whole */
		line[len - 1] = '\0';
		if (n == 0)
			continue;
		free(ring[count % (size_t)n]);
		ring[count % (size_t)n] = strdup(line);
		count++;
	}
	for (size_t i = count > (size_t)n ? count - (size_t)n : 0; ring && i < count; i++)
		if (ring[i % (size_t)n])
			audit_tail_print(ctl, ring[i % (size_t)n]);
	for (long i = 0; ring && i < n; i++)
		free(ring[i]);
	free(ring);
	free(line);
}

/* Follows the file: new whole lines as they come; a rotated file is reopened from its start. */
static int audit_tail_follow(const struct ctl *ctl, const char *path, FILE *f)
{
	struct timespec pause = {0, AUDIT_TAIL_POLL_MS * 1000000L};
	char *line = NULL;
	size_t cap = 0;
	struct stat st, now;
	long pos = ftell(f);

	if (fstat(fileno(f), &st) < 0)
		return CTL_EXIT_DEVICE;
	for (;;) {
		ssize_t len;

		clearerr(f);
		fseek(f, pos, SEEK_SET);
		while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {
			line[len - 1] = '\0';
			audit_tail_print(ctl, line);
			pos = ftell(f);
		}
		if (stat(path, &now) == 0 && (now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
			FILE *g = fopen(path, "r");

			if (g) { /* rotated: mbxd writes the new file once it reopens */
				fclose(f);
				f = g;
				st = now;
				pos = 0;
				continue;
			}
		}
		nanosleep(&pause, NULL);
	}
}

/* mbxctl audit tail [-f] [-n N] [FILE] */
static int audit_tail(const struct ctl *ctl, int argc, char **argv)
{
	const char *path = AUDIT_DEFAULT_FILE;
	bool follow = false;
	long n = 10;
	char *end;
	FILE *f;
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, "+fn:")) != -1) {
		if (opt == 'f') {
			follow = true;
		} else if (opt == 'n') {
			n = strtol(optarg, &end, 10);
			if (*end || n < 0 || n > 1000000) {
				out_err("audit tail: -n wants a number of records, not \"%s\"",
					optarg);
				return CTL_EXIT_USAGE;
			}
		} else {
			out_err("%s", AUDIT_USAGE);
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	if (optind < argc)
		path = argv[optind];
	f = fopen(path, "r");
	if (!f) {
		out_err("%s: %s", path, strerror(errno));
		return CTL_EXIT_DEVICE;
	}
	audit_tail_last(ctl, f, n);
	if (follow)
		return audit_tail_follow(ctl, path, f);
	fclose(f);
	return CTL_EXIT_OK;
}

/* mbxctl audit verify [--prev HASH] [--checkpoint F] [--seal-key F] FILE... | tail | seal-init */
int cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"prev", required_argument, NULL, 'p'},
	    {"checkpoint", required_argument, NULL, 'c'},
	    {"seal-key", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	const char *prev = NULL, *ckpt = NULL, *seal_key = NULL;
	int opt;

	if (argc >= 2 && strcmp(argv[1], "tail") == 0)
		return audit_tail(ctl, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "seal-init") == 0)
		return audit_seal_init_cmd(ctl, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (opt == 'p') {
			prev = optarg;
		} else if (opt == 'c') {
			ckpt = optarg;
		} else if (opt == 's') {
			seal_key = optarg;
		} else {
			out_err("%s", AUDIT_USAGE);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	return audit_verify_chain(ctl, prev, ckpt, seal_key, argv + optind, argc - optind);
}
