/* mbxctl internals: the command context, exit codes and shared helpers. */
#ifndef MBXCTL_H
#define MBXCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <mbx/mbx.h>

/* Exit codes; docs/mbxctl.md and `mbxctl --help` list the same. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_DEVICE = 1,  /* the device answered an error, or the transport failed */
	CTL_EXIT_USAGE = 2,   /* bad command line */
	CTL_EXIT_DENIED = 3,  /* denied by policy, rate limited, reason required */
	CTL_EXIT_INVALID = 4, /* the daemon found the request invalid (or no such device) */
	CTL_EXIT_DAEMON = 5,  /* daemon unreachable or protocol error */
};

/* Options a command accepts, as a bit mask for ctl_args_parse(). */
enum ctl_opt {
	CTL_OPT_TUNNEL = 1 << 0,
	CTL_OPT_HEX = 1 << 1,
	CTL_OPT_IN = 1 << 2,
	CTL_OPT_REASON = 1 << 3,
	CTL_OPT_WAIT = 1 << 4,
	CTL_OPT_OUT = 1 << 5,
	CTL_OPT_TIMEOUT = 1 << 6,
	CTL_OPT_NAMES = 1 << 7,          /* devices --names */
	CTL_OPT_TEXTFILE = 1 << 8,       /* metrics --textfile PATH */
	CTL_OPT_UNTIL_COMPLETE = 1 << 9, /* watch --until-complete */
};

/* What a command works with: global options, the connection, its arguments. */
struct ctl {
	const char *socket; /* --socket, or NULL */
	bool json;
	struct mbx_client *client; /* connected by ctl_connect() */

	/* Parsed by ctl_args_parse(). */
	const char *device;
	uint16_t opcode;
	int tunnel;       /* port, or -1 */
	uint8_t *payload; /* owned; from --hex or --in */
	size_t payload_len;
	const char *reason;
	bool wait;
	const char *out_path;
	uint32_t timeout_ms;
	bool names;           /* devices: names only, one per line */
	const char *textfile; /* metrics: write here atomically */
	bool until_complete;  /* watch: stop after the first completion */
};

/* A RESULT, with the effective return code and output once a tunnel is unwrapped. */
struct ctl_answer {
	struct mbx_reply reply; /* owns the frame */
	uint32_t tag;
	bool tunnelled;
	uint16_t rc; /* the device's return code (the inner one through a tunnel) */
	uint16_t vendor_status;
	const uint8_t *out; /* output payload, into reply's frame */
	size_t out_len;
};

/* args.c */
int ctl_args_parse(struct ctl *ctl, int argc, char **argv, int nargs, unsigned opts,
		   const char *usage);
void ctl_args_free(struct ctl *ctl);
int ctl_args_opcode(const char *s, uint16_t *opcode);
int ctl_args_hex(const char *s, uint8_t **out, size_t *len);

/* conn.c */
int ctl_connect(struct ctl *ctl);
int ctl_call(struct ctl *ctl, uint16_t type, uint16_t opcode, const void *in, size_t in_len,
	     struct ctl_answer *a);
int ctl_query(struct ctl *ctl, uint16_t opcode, const void *in, size_t in_len,
	      struct ctl_answer *a);
int ctl_failed(struct ctl *ctl, int r);
void ctl_answer_free(struct ctl_answer *a);
int ctl_device_payload_max(struct ctl *ctl, uint32_t *max);

/* tunnel.c */
int tunnel_wrap(uint8_t port, uint16_t opcode, const void *in, size_t in_len, uint8_t **out,
		size_t *out_len);
int tunnel_unwrap(const uint8_t *in, size_t len, uint16_t opcode, uint16_t *rc,
		  uint16_t *vendor_status, const uint8_t **out, size_t *out_len);

/* result.c */
int result_exit_code(const struct ctl_answer *a);
int result_check(struct ctl *ctl, const struct ctl_answer *a, uint16_t opcode);
json_t *result_json(const struct ctl *ctl, const struct ctl_answer *a, uint16_t opcode);
void result_print(FILE *f, const struct ctl_answer *a, uint16_t opcode);
void result_print_decision(FILE *f, const struct mbx_result *res);

/* output.c */
__attribute__((format(printf, 1, 2))) void out_err(const char *fmt, ...);
int out_json(json_t *doc);
json_t *out_jstr(const char *s);
void out_hexdump(FILE *f, const uint8_t *p, size_t len);
const char *out_opcode_name(uint16_t opcode);
const char *out_rc_name(uint16_t rc);
void out_size(char *buf, size_t cap, uint64_t bytes);
json_t *out_opcode_json(uint16_t opcode);
json_t *out_event_json(const struct mbx_event *ev);
void out_target(const struct ctl *ctl, char *buf, size_t cap);
json_t *out_target_json(const struct ctl *ctl);

/* One subcommand. */
struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;
	const char *help;
};

int cmd_devices(struct ctl *ctl, int argc, char **argv);
int cmd_identify(struct ctl *ctl, int argc, char **argv);
int cmd_health(struct ctl *ctl, int argc, char **argv);
int cmd_send(struct ctl *ctl, int argc, char **argv);
int cmd_explain(struct ctl *ctl, int argc, char **argv);
int cmd_cel(struct ctl *ctl, int argc, char **argv);
int cmd_metrics(struct ctl *ctl, int argc, char **argv);
int cmd_watch(struct ctl *ctl, int argc, char **argv);
int cmd_firmware_update(struct ctl *ctl, int argc, char **argv);

#endif
