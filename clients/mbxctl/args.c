/* Command-line arguments of the subcommands: DEV, OPCODE and their options. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "catalog.h"

enum {
	ARG_TUNNEL = 256,
	ARG_HEX,
	ARG_IN,
	ARG_REASON,
	ARG_WAIT,
	ARG_OUT,
	ARG_TIMEOUT,
	ARG_JSON,
	ARG_SOCKET,
	ARG_NAMES,
	ARG_TEXTFILE,
	ARG_UNTIL_COMPLETE,
};

static const struct option args_options[] = {
    {"tunnel", required_argument, NULL, ARG_TUNNEL},
    {"hex", required_argument, NULL, ARG_HEX},
    {"in", required_argument, NULL, ARG_IN},
    {"reason", required_argument, NULL, ARG_REASON},
    {"wait", no_argument, NULL, ARG_WAIT},
    {"out", required_argument, NULL, ARG_OUT},
    {"timeout", required_argument, NULL, ARG_TIMEOUT},
    {"json", no_argument, NULL, ARG_JSON},
    {"socket", required_argument, NULL, ARG_SOCKET},
    {"names", no_argument, NULL, ARG_NAMES},
    {"textfile", required_argument, NULL, ARG_TEXTFILE},
    {"until-complete", no_argument, NULL, ARG_UNTIL_COMPLETE},
    {NULL, 0, NULL, 0},
};

/* The ctl_opt bit of each option, 0 for those every command takes. */
static unsigned args_bit(int opt)
{
	switch (opt) {
	case ARG_TUNNEL:
		return CTL_OPT_TUNNEL;
	case ARG_HEX:
		return CTL_OPT_HEX;
	case ARG_IN:
		return CTL_OPT_IN;
	case ARG_REASON:
		return CTL_OPT_REASON;
	case ARG_WAIT:
		return CTL_OPT_WAIT;
	case ARG_OUT:
		return CTL_OPT_OUT;
	case ARG_TIMEOUT:
		return CTL_OPT_TIMEOUT;
	case ARG_NAMES:
		return CTL_OPT_NAMES;
	case ARG_TEXTFILE:
		return CTL_OPT_TEXTFILE;
	case ARG_UNTIL_COMPLETE:
		return CTL_OPT_UNTIL_COMPLETE;
	default:
		return 0;
	}
}

/* Parses an unsigned number in [0, max], decimal or 0x-hex. */
static int args_number(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (!*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*v = strtoul(s, &end, 0);
	if (errno || *end || *v > max)
		return -EINVAL;
	return 0;
}

/* Compares a catalog name with what a user typed: case and '-'/'_'/' ' ignored. */
static bool args_name_matches(const char *name, const char *typed)
{
	for (;;) {
		while (*name == ' ' || *name == '-' || *name == '_' || *name == '/')
			name++;
		while (*typed == ' ' || *typed == '-' || *typed == '_' || *typed == '/')
			typed++;
		if (!*name || !*typed)
			return !*name && !*typed;
		if (tolower((unsigned char)*name) != tolower((unsigned char)*typed))
			return false;
		name++;
		typed++;
	}
}

/* Parses an opcode: hex (0x4400, 4400h, 4400) or a catalog name (get-health-info). */
int ctl_args_opcode(const char *s, uint16_t *opcode)
{
	size_t n = strlen(s);
	char digits[8];
	char *end;
	unsigned long v;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	} else if (n > 1 && (s[n - 1] == 'h' || s[n - 1] == 'H')) {
		n--;
	}
	if (n >= 1 && n <= 4 && strspn(s, "0123456789abcdefABCDEF") >= n) {
		memcpy(digits, s, n);
		digits[n] = '\0';
		v = strtoul(digits, &end, 16);
		*opcode = (uint16_t)v;
		return 0;
	}
	for (size_t i = 0; i < catalog_count(); i++) {
		const struct catalog_entry *e = catalog_at(i);

		if (e->name && args_name_matches(e->name, s)) {
			*opcode = e->opcode;
			return 0;
		}
	}
	return -EINVAL;
}

static int args_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses hex bytes ("01 02 0a", "01020a", "01:02:0a"); *out is malloc'ed. */
int ctl_args_hex(const char *s, uint8_t **out, size_t *len)
{
	size_t cap = strlen(s) / 2 + 1, n = 0;
	uint8_t *buf = malloc(cap);
	int hi = -1;

	if (!buf)
		return -ENOMEM;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	for (; *s; s++) {
		int v = args_hexval((unsigned char)*s);

		if (v < 0) {
			if (hi < 0 && (isspace((unsigned char)*s) || *s == ':' || *s == '_'))
				continue;
			free(buf);
			return -EINVAL;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Reads a whole file ("-": standard input) of at most MBX_PAYLOAD_MAX bytes. */
static int args_read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	uint8_t *buf;
	size_t n;

	if (!f)
		return -errno;
	buf = malloc(MBX_PAYLOAD_MAX + 1);
	if (!buf) {
		if (f != stdin)
			fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, MBX_PAYLOAD_MAX + 1, f);
	if (ferror(f) || n > MBX_PAYLOAD_MAX) {
		int e = ferror(f) ? EIO : EFBIG;

		if (f != stdin)
			fclose(f);
		free(buf);
		return -e;
	}
	if (f != stdin)
		fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Applies one option's argument to ctl; returns 0 or prints why and returns -1. */
static int args_apply(struct ctl *ctl, int opt, const char *arg)
{
	unsigned long v;
	int r;

	switch (opt) {
	case ARG_TUNNEL:
		if (args_number(arg, 255, &v) < 0) {
			out_err("--tunnel: \"%s\" is not a port number (0-255)", arg);
			return -1;
		}
		ctl->tunnel = (int)v;
		return 0;
	case ARG_HEX:
	case ARG_IN:
		if (ctl->payload) {
			out_err("give the input payload once, with --hex or --in");
			return -1;
		}
		r = opt == ARG_HEX ? ctl_args_hex(arg, &ctl->payload, &ctl->payload_len)
				   : args_read_file(arg, &ctl->payload, &ctl->payload_len);
		if (r == -EINVAL)
			out_err("--hex: \"%s\" is not a sequence of hex bytes", arg);
		else if (r == -EFBIG)
			out_err("%s: larger than the 1 MiB CXL payload maximum", arg);
		else if (r < 0)
			out_err("%s: %s", arg, strerror(-r));
		return r < 0 ? -1 : 0;
	case ARG_REASON:
		if (strlen(arg) >= MBX_REASON_MAX) {
			out_err("--reason: longer than %d bytes", MBX_REASON_MAX - 1);
			return -1;
		}
		ctl->reason = arg;
		return 0;
	case ARG_WAIT:
		ctl->wait = true;
		return 0;
	case ARG_OUT:
		ctl->out_path = arg;
		return 0;
	case ARG_TIMEOUT:
		if (args_number(arg, UINT32_MAX, &v) < 0) {
			out_err("--timeout: \"%s\" is not a number of milliseconds", arg);
			return -1;
		}
		ctl->timeout_ms = (uint32_t)v;
		return 0;
	case ARG_JSON:
		ctl->json = true;
		return 0;
	case ARG_SOCKET:
		ctl->socket = arg;
		return 0;
	case ARG_NAMES:
		ctl->names = true;
		return 0;
	case ARG_TEXTFILE:
		ctl->textfile = arg;
		return 0;
	case ARG_UNTIL_COMPLETE:
		ctl->until_complete = true;
		return 0;
	}
	return -1;
}

/*
 * Parses a subcommand's arguments (argv[0] is its name): nargs positionals
 * (DEV, then OPCODE) and the options in opts. Returns 0 or CTL_EXIT_USAGE.
 */
int ctl_args_parse(struct ctl *ctl, int argc, char **argv, int nargs, unsigned opts,
		   const char *usage)
{
	int opt;

	ctl->tunnel = -1;
	optind = 0; /* GNU: restart getopt on a new vector */
	while ((opt = getopt_long(argc, argv, ":", args_options, NULL)) != -1) {
		if (opt == '?' || opt == ':' || (args_bit(opt) && !(args_bit(opt) & opts))) {
			if (opt == ':')
				out_err("%s: option %s needs an argument", argv[0],
					argv[optind - 1]);
			else
				out_err("%s: unknown option %s", argv[0], argv[optind - 1]);
			fprintf(stderr, "usage: mbxctl %s\n", usage);
			return CTL_EXIT_USAGE;
		}
		if (args_apply(ctl, opt, optarg) < 0)
			return CTL_EXIT_USAGE;
	}
	if (argc - optind != nargs) {
		out_err("%s: expected %d argument%s, got %d", argv[0], nargs, nargs == 1 ? "" : "s",
			argc - optind);
		fprintf(stderr, "usage: mbxctl %s\n", usage);
		return CTL_EXIT_USAGE;
	}
	if (nargs >= 1) {
		ctl->device = argv[optind];
		if (!*ctl->device || strlen(ctl->device) >= MBX_NAME_MAX) {
			out_err("\"%s\" is not a device name", ctl->device);
			return CTL_EXIT_USAGE;
		}
	}
	if (nargs >= 2 && ctl_args_opcode(argv[optind + 1], &ctl->opcode) < 0) {
		out_err("\"%s\" is not an opcode (hex such as 4200h or 0x4200, or a name such as "
			"get-health-info)",
			argv[optind + 1]);
		return CTL_EXIT_USAGE;
	}
	return 0;
}

/* Releases what ctl_args_parse() allocated. */
void ctl_args_free(struct ctl *ctl)
{
	free(ctl->payload);
	ctl->payload = NULL;
	ctl->payload_len = 0;
}
