/* The table of built-in transports and the option and message helpers they share. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

extern const struct mbx_transport_ops sim_transport_ops;
extern const struct mbx_transport_ops chardev_transport_ops;
extern const struct mbx_transport_ops mctp_transport_ops;
extern const struct mbx_transport_ops vfio_transport_ops;

/* Adding a transport: one new file and one row here. */
const struct mbx_transport_ops *const transport_registry[] = {
    &sim_transport_ops, &chardev_transport_ops, &mctp_transport_ops, &vfio_transport_ops, NULL,
};

/* Finds a transport by name. */
const struct mbx_transport_ops *transport_find(const char *name)
{
	for (size_t i = 0; transport_registry[i]; i++)
		if (strcmp(transport_registry[i]->name, name) == 0)
			return transport_registry[i];
	return NULL;
}

/* Returns the value of option key, or NULL when the config does not set it. */
const char *transport_option(const struct mbx_transport_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->n_options; i++)
		if (strcmp(cfg->options[i].key, key) == 0)
			return cfg->options[i].value;
	return NULL;
}

/* The config line of option key, or of the device's entry when key is NULL or not set. */
static int transport_option_line(const struct mbx_transport_config *cfg, const char *key)
{
	for (size_t i = 0; key && i < cfg->n_options; i++)
		if (strcmp(cfg->options[i].key, key) == 0)
			return cfg->options[i].line;
	return cfg->line;
}

/* Reports what is wrong with option key (or the device's entry) as "file:line: ...". */
int transport_option_error(const struct mbx_transport_config *cfg, const char *key, char *err,
			   size_t errlen, const char *fmt, ...)
{
	int line = transport_option_line(cfg, key);
	char where[128], what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(where, sizeof(where), "%s:%d", cfg->config_file, line);
	else
		snprintf(where, sizeof(where), "%s", cfg->config_file);
	if (key)
		snprintf(err, errlen, "%s: %s: %s", where, key, what);
	else
		snprintf(err, errlen, "%s: device %s: %s", where, cfg->device_name, what);
	return -EINVAL;
}

/* Parses option key as an unsigned number in [min, max]. */
int transport_option_u64(const struct mbx_transport_config *cfg, const char *key, uint64_t min,
			 uint64_t max, uint64_t *out, char *err, size_t errlen)
{
	const char *v = transport_option(cfg, key);
	unsigned long long n;
	char *end;

	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
		return transport_option_error(cfg, key, err, errlen,
					      "\"%s\" is not a number from %" PRIu64 " to %" PRIu64,
					      v, min, max);
	}
	*out = n;
	return 0;
}

/* Formats a message (an error, a device's sentence) into buf; a message cut short is still one. */
void transport_msg(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
