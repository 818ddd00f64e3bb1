/*
 * mbxd.yaml: where the socket, policy and audit log live, who the daemon
 * runs as, and which devices it owns through which transport.
 */
#ifndef MBX_CONFIG_H
#define MBX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"

struct config_device {
	char *name;
	char *transport;
	int line;
	uint32_t timeout_ms;                  /* default command timeout, spec: 2000 */
	struct mbx_transport_option *options; /* keys are the transport's own names */
	size_t n_options;
	char *option_text; /* owns the option values (options[i].value points in) */
};

struct config {
	char *path; /* the file read */
	char *socket_path;
	mode_t socket_mode; /* default 0660 */
	char *socket_group; /* NULL: the daemon's group */
	char *policy_path;
	char *audit_path;
	/*
	 * false (default): allowed commands of classes that are not audited
	 * (read, log by default) leave no record; denials, invalid requests and
	 * audited classes always do. true: a record for every decision, which
	 * for a monitoring agent polling health is a record per poll.
	 */
	bool audit_all_decisions;
	/*
	 * Refusal records (denied, invalid, unsupported) per user: a burst of
	 * refused_burst (default 20; 0: no limit), then refused_per_minute
	 * (default 60); the rest are counted and written every coalesce_ms
	 * (default 5000) as one SUPPRESSED record per kind (audit-limit.h).
	 */
	uint32_t audit_refused_burst;
	uint32_t audit_refused_per_minute;
	uint32_t audit_coalesce_ms;
	/*
	 * The anchors of the chain (docs/audit.md): the checkpoint file (NULL:
	 * audit_path + ".checkpoint") written every checkpoint_interval_s
	 * seconds (0: only at start, rotation and stop); the sealing key file
	 * (NULL: no sealing) and how often an epoch is sealed.
	 */
	char *audit_checkpoint_path;
	uint32_t audit_checkpoint_interval_s; /* default 60 */
	char *audit_seal_key_path;
	uint32_t audit_seal_interval_s; /* default 900 */
	char *run_user;                 /* default "_mbxd" */
	uint32_t max_inflight;          /* per connection, default 64 */
	uint32_t max_queue_per_user;    /* per device, default 32 */
	uint32_t max_clients;           /* default 1024 */
	uint32_t max_clients_per_user;  /* connections of one uid, default 32 */
	uint32_t max_pending_kib; /* per connection: unread answers + open requests, default 1024 */
	uint32_t max_refusals_per_s; /* per uid, then its reading pauses; 0: never; default 1000 */
	uint32_t frame_timeout_ms;   /* each frame must be whole within, from its first byte,
					default 10000 */
	uint32_t client_timeout_min_ms; /* a SUBMIT's timeout_ms, when not 0, within; */
	uint32_t client_timeout_max_ms; /* else refused as invalid. Defaults 10, 600000 */
	uint32_t hello_timeout_ms; /* HELLO must be answered within, from connect, default 1000 */
	uint32_t max_queued_kib;   /* input payload KiB waiting in all queues, default 65536 */
	struct config_device *devices;
	size_t n_devices;
};

/*
 * Reads path. Relative paths inside are taken relative to the folder of
 * path. On error returns -EINVAL (or -errno) with "file:line: message" in err.
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen);
void config_free(struct config *c);

#endif
