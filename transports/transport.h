/*
 * The transport interface: how the broker reaches a device mailbox.
 *
 * One file per transport exports one const struct mbx_transport_ops and
 * nothing else; transports/registry.c lists them. The broker allocates
 * priv_size bytes of zeroed private state per device and owns its lifetime:
 * open, any number of submit calls from one worker thread, then close.
 * submit blocks (a mailbox runs one command at a time); it is only ever
 * called from the device's worker thread, never from the event loop.
 */
#ifndef MBX_TRANSPORT_H
#define MBX_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbx/proto.h>

/* One "key: value" from a device's section of the config file. */
struct mbx_transport_option {
	const char *key;
	const char *value;
	int line; /* in the config file, for error messages */
};

struct mbx_transport_config {
	const char *device_name;
	const char *config_file;
	const struct mbx_transport_option *options;
	size_t n_options;
	int line; /* of the device's entry in the config file; 0 if unknown */
};

/* What submit returns: whether the device answered, and if not, why. */
enum mbx_xport_rc {
	MBX_XPORT_OK = 0,       /* the device answered: see cmd->cxl_rc */
	MBX_XPORT_TIMEOUT,      /* no answer within cmd->timeout_ms */
	MBX_XPORT_IO,           /* the transport failed: see cmd->error */
	MBX_XPORT_UNSUPPORTED,  /* not supported by this device (e.g. ENOTTY) */
	MBX_XPORT_KERNEL_OWNED, /* the kernel driver owns this command (EBUSY) */
	MBX_XPORT_RAW_DISABLED, /* the kernel refuses raw commands (EPERM) */
	MBX_XPORT_TOO_BIG,      /* payload over the device's mailbox size */
	MBX_XPORT_BAD_RESPONSE, /* the device's answer failed validation */
};

/* One mailbox command. The caller owns in and out. */
struct mbx_transport_cmd {
	uint16_t opcode;
	const uint8_t *in;
	size_t in_len;
	uint8_t *out; /* room for out_cap bytes */
	size_t out_cap;
	size_t out_len;  /* set by submit */
	uint16_t cxl_rc; /* set by submit when it returns MBX_XPORT_OK */
	uint16_t vendor_status;
	uint32_t timeout_ms;
	char error[160]; /* set by submit on failure: names the cause */
};

#define MBX_TRANSPORT_ROUTED_MAX 8

/* What the device is, for DEVICES and for the policy. */
struct mbx_transport_info {
	char kind[MBX_KIND_MAX]; /* "memdev" or "switch" */
	char model[MBX_MODEL_MAX];
	char serial[MBX_SERIAL_MAX];
	uint32_t payload_max; /* the mailbox payload size in bytes */
	bool kernel_owned;    /* a kernel driver owns the device */
	/*
	 * submit never waits (an in-process model with no latency): the broker
	 * may run it on the event loop instead of handing it to the worker.
	 */
	bool never_blocks;
	/*
	 * Kernel-owned opcodes this transport still carries by a route the
	 * kernel offers (e.g. Sanitize through sysfs): the policy decides them
	 * like any other opcode, and submit names a route this kernel lacks.
	 */
	uint16_t routed[MBX_TRANSPORT_ROUTED_MAX];
	size_t n_routed;
	/*
	 * Capabilities this device needs after the privilege drop beyond the
	 * transport's own ops->caps, because of how it was configured (the
	 * chardev's firmware upload route: CAP_SYS_RAWIO).
	 */
	uint64_t caps;
};

struct mbx_transport_ops {
	const char *name;
	size_t priv_size;
	/* NULL-terminated option keys this transport accepts; others are errors. */
	const char *const *options;
	/* ioctl request numbers submit may use, for the sandbox's allow-list. */
	const unsigned long *ioctls;
	size_t n_ioctls;
	/*
	 * Capabilities (1ull << CAP_*) submit still needs after the daemon's
	 * privilege drop, for the sandbox to keep; 0 for none. AF_MCTP's
	 * sendmsg checks CAP_NET_RAW on every send, not at socket creation.
	 */
	uint64_t caps;
	/*
	 * Reads the options as open would, touching no device, file or socket:
	 * what `mbxd -n` runs. On a bad option fills err with
	 * "file:line: key: message" and returns -EINVAL.
	 */
	int (*check)(const struct mbx_transport_config *cfg, char *err, size_t errlen);
	/* Opens the device; on failure fills err with the cause, returns -errno. */
	int (*open)(void *priv, const struct mbx_transport_config *cfg, char *err, size_t errlen);
	void (*close)(void *priv);
	void (*describe)(void *priv, struct mbx_transport_info *info);
	/* Runs one command; returns enum mbx_xport_rc. */
	int (*submit)(void *priv, struct mbx_transport_cmd *cmd);
};

/* The registry: every transport built in, by name. NULL if unknown. */
const struct mbx_transport_ops *transport_find(const char *name);
/* NULL-terminated list, for messages that list the known names. */
extern const struct mbx_transport_ops *const transport_registry[];

/* Formats a message (an error, a device's sentence) into buf; a message cut short is still one. */
__attribute__((format(printf, 3, 4))) void transport_msg(char *buf, size_t len, const char *fmt,
							 ...);

/*
 * Fills err with "file:line: key: message" about option key, or with
 * "file:line: device NAME: message" about the device's entry when key is
 * NULL; returns -EINVAL.
 */
__attribute__((format(printf, 5, 6))) int
transport_option_error(const struct mbx_transport_config *cfg, const char *key, char *err,
		       size_t errlen, const char *fmt, ...);

/* Option helpers for check() and open(): a missing key leaves *out at its default. */
const char *transport_option(const struct mbx_transport_config *cfg, const char *key);
/* Parses a decimal or 0x number in [min, max]; -EINVAL with err filled. */
int transport_option_u64(const struct mbx_transport_config *cfg, const char *key, uint64_t min,
			 uint64_t max, uint64_t *out, char *err, size_t errlen);

#endif
