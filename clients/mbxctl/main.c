/* mbxctl: the command-line client of mbxd. Global options, then one subcommand. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "mbxctl.h"
#include "cmd-policy.h"
#include "cmd-audit.h"

static const struct ctl_command main_commands[] = {
    {"devices", cmd_devices, "devices [--names]",
     "list the daemon's devices (--names: names only, one per line)"},
    {"identify", cmd_identify, "identify DEV [--tunnel PORT]",
     "Identify, then Identify Memory Device or Identify Switch Device, decoded"},
    {"health", cmd_health, "health DEV [--tunnel PORT]", "Get Health Info, decoded"},
    {"send", cmd_send,
     "send DEV OPCODE [--in FILE | --hex HEX] [--reason TEXT] [--wait] [--out FILE]\n"
     "                  [--timeout MS] [--tunnel PORT]",
     "send any command; --wait follows a background operation to completion"},
    {"explain", cmd_explain,
     "explain DEV OPCODE [--hex HEX | --in FILE] [--reason TEXT] [--tunnel PORT]",
     "would this be allowed, and why? (nothing reaches the device)"},
    {"cel", cmd_cel, "cel DEV [--tunnel PORT]", "the Command Effects Log, decoded"},
    {"firmware-update", cmd_firmware_update,
     "firmware-update DEV IMAGE [--slot N] [--activate online|offline|none] --reason TEXT\n"
     "                  [--wait]",
     "Transfer FW (0201h) of IMAGE to the slot after the active one (or --slot N), in\n"
     "      parts that fit the mailbox; --wait follows the transfer; --activate online|offline\n"
     "      then sends Activate FW (0202h), and waits. A kernel-owned device (transport\n"
     "      chardev) activates offline by itself and refuses Activate FW: keep --activate none"},
    {"watch", cmd_watch, "watch DEV [--until-complete]",
     "follow DEV's background operations, whoever started them, until interrupted"},
    {"metrics", cmd_metrics, "metrics [--textfile PATH]",
     "the daemon's counters in the Prometheus text format (--textfile: write PATH atomically)"},
    {"audit", cmd_audit,
     "audit verify [--prev HASH] [--checkpoint F] [--seal-key F] FILE...\n  audit seal-init "
     "KEYFILE\n  audit tail [-f] [-n N] [FILE]",
     "check audit files' hash chain, oldest file first (offline; exit 1 if broken);\n"
     "      make a sealing key (seal-init: prints the verification key to keep offline);\n"
     "      print the last records of an audit file decoded (-f: keep following it)"},
};

#define MAIN_N_COMMANDS (sizeof(main_commands) / sizeof(main_commands[0]))

/* Prints the full usage, with the exit codes, to f. */
static void main_usage(FILE *f)
{
	fprintf(f, "usage: mbxctl [--socket PATH] [--json] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < MAIN_N_COMMANDS; i++)
		fprintf(f, "  %s\n      %s\n", main_commands[i].usage, main_commands[i].help);
	fprintf(f, "  policy check FILE ...\n      offline policy tools (mbxctl policy --help)\n");
	fprintf(f,
		"\nDEV is a name from `mbxctl devices`. OPCODE is hex (4400h, 0x4400, 4400) or a\n"
		"command name (sanitize, get-health-info). --tunnel PORT sends the command\n"
		"through Tunnel Management (5300h) to that port of a switch.\n"
		"\noptions:\n"
		"  --socket PATH  mbxd's socket (default $MBX_SOCKET, else %s)\n"
		"  --json         print JSON, one document per line\n"
		"\nexit codes:\n"
		"  0  success\n"
		"  1  device error: the device answered a non-zero return code, or the\n"
		"     transport failed, timed out or was busy\n"
		"  2  usage error\n"
		"  3  denied: by policy, rate limited, reason required, or kernel-owned\n"
		"  4  invalid request: refused as malformed, unsupported, or no such device\n"
		"  5  daemon unreachable, protocol error, or daemon unable (audit, shutdown,\n     "
		"request cancelled)\n",
		MBX_DEFAULT_SOCKET);
}

/* Finds a subcommand by name. */
static const struct ctl_command *main_find(const char *name)
{
	for (size_t i = 0; i < MAIN_N_COMMANDS; i++)
		if (strcmp(main_commands[i].name, name) == 0)
			return &main_commands[i];
	return NULL;
}

/* True when a subcommand's arguments ask for help. */
static bool main_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

/* Parses the global options; returns the index of the command or -1 after exiting. */
static int main_options(struct ctl *ctl, int argc, char **argv, int *code)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			ctl->socket = optarg;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'h':
			main_usage(stdout);
			*code = CTL_EXIT_OK;
			return -1;
		default:
			main_usage(stderr);
			*code = CTL_EXIT_USAGE;
			return -1;
		}
	}
	if (optind >= argc) {
		main_usage(stderr);
		*code = CTL_EXIT_USAGE;
		return -1;
	}
	return optind;
}

int main(int argc, char **argv)
{
	struct ctl ctl = {.tunnel = -1};
	const struct ctl_command *cmd;
	int code = 0, first;

	first = main_options(&ctl, argc, argv, &code);
	if (first < 0)
		return code;
	if (strcmp(argv[first], "policy") == 0)
		return mbxctl_policy_main(argc - first, argv + first);
	if (strcmp(argv[first], "help") == 0) {
		main_usage(stdout);
		return CTL_EXIT_OK;
	}
	cmd = main_find(argv[first]);
	if (!cmd) {
		out_err("unknown command \"%s\" (see mbxctl --help)", argv[first]);
		return CTL_EXIT_USAGE;
	}
	if (main_wants_help(argc - first, argv + first)) {
		printf("usage: mbxctl [--socket PATH] [--json] %s\n  %s\n", cmd->usage, cmd->help);
		return CTL_EXIT_OK;
	}
	code = cmd->run(&ctl, argc - first, argv + first);
	mbx_close(ctl.client);
	ctl_args_free(&ctl);
	return code;
}
