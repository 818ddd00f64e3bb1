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
#include <string.h>

#include "audit.h"
#include "cmd-audit.h"
#include "mbxctl.h"

#define AUDIT_USAGE "usage: mbxctl audit verify [--prev HASH] FILE..."

/* One file's outcome, as text or as a JSON object. */
static void audit_report(const struct ctl *ctl, json_t *files, const char *path, int rc,
			 uint64_t bad_seq, int bad_line, const char *msg)
{
	json_t *o;

	if (!ctl->json) {
		if (rc == 0)
			printf("%s\n", msg);
		else
			out_err("%s", msg);
		return;
	}
	o = json_pack("{s:o, s:b, s:o}", "file", out_jstr(path), "intact", rc == 0, "message",
		      out_jstr(msg));
	if (o && rc == -EBADMSG) {
		json_object_set_new(o, "first_bad_seq", json_integer((json_int_t)bad_seq));
		json_object_set_new(o, "first_bad_line", json_integer(bad_line));
	}
	if (o)
		json_array_append_new(files, o);
}

/* Verifies files[0..n) as one chain; stops at the first broken file. */
static int audit_verify_chain(const struct ctl *ctl, const char *prev, char **files, int n)
{
	char hash[AUDIT_HASH_HEX], expect[AUDIT_HASH_HEX], msg[512];
	json_t *arr = ctl->json ? json_array() : NULL;
	uint64_t bad_seq = 0;
	int bad_line = 0, rc = 0;

	if (prev)
		snprintf(expect, sizeof(expect), "%s", prev);
	for (int i = 0; i < n && rc == 0; i++) {
		msg[0] = '\0';
		rc = audit_verify_file(files[i], prev || i ? expect : NULL, hash, &bad_seq,
				       &bad_line, msg, sizeof(msg));
		audit_report(ctl, arr, files[i], rc, bad_seq, bad_line, msg);
		memcpy(expect, hash, sizeof(expect));
	}
	if (ctl->json)
		out_json(json_pack("{s:b, s:o}", "intact", rc == 0, "files", arr));
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_DEVICE;
}

/* mbxctl audit verify [--prev HASH] FILE... */
int cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"prev", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	const char *prev = NULL;
	int opt;

	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (opt != 'p') {
			out_err("%s", AUDIT_USAGE);
			return CTL_EXIT_USAGE;
		}
		prev = optarg;
	}
	if (optind >= argc) {
		out_err("%s", AUDIT_USAGE);
		return CTL_EXIT_USAGE;
	}
	return audit_verify_chain(ctl, prev, argv + optind, argc - optind);
}
