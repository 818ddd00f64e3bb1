/*
 * The mbxd.yaml loader. libyaml builds the document tree (keeping each
 * node's position), then every mapping is walked against a table of the keys
 * it may hold: an unknown or repeated key is an error, as is a value of the
 * wrong shape. Every message is "file:line: what is wrong".
 */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "readfile.h"

#define CONFIG_TIMEOUT_MAX 3600000u /* one hour: longer is a hung device */

struct config_ctx {
	const char *file; /* as given, for messages */
	char *dir;        /* absolute folder of file, for relative paths */
	yaml_document_t doc;
	struct config *c;
	char *err;
	size_t errlen;
};

/* Called for each known key of a mapping with its index in the key table. */
typedef int (*config_key_fn)(struct config_ctx *x, int key, yaml_node_t *v, void *arg);

enum { TOP_SOCKET, TOP_POLICY, TOP_AUDIT, TOP_USER, TOP_LIMITS, TOP_DEVICES };
static const char *const config_top_keys[] = {"socket", "policy",  "audit", "user",
					      "limits", "devices", NULL};
enum { SOCKET_PATH, SOCKET_MODE, SOCKET_GROUP };
static const char *const config_socket_keys[] = {"path", "mode", "group", NULL};
enum {
	AUDIT_PATH,
	AUDIT_ALL,
	AUDIT_BURST,
	AUDIT_PER_MINUTE,
	AUDIT_COALESCE,
	AUDIT_CKPT,
	AUDIT_CKPT_INT,
	AUDIT_SEAL,
	AUDIT_SEAL_INT
};
static const char *const config_audit_keys[] = {
    "path",       "all_decisions",         "refused_burst", "refused_per_minute", "coalesce_ms",
    "checkpoint", "checkpoint_interval_s", "seal_key",      "seal_interval_s",    NULL};
static const char *const config_limit_keys[] = {
    "max_inflight",         "max_queue_per_user", "max_clients",           "max_queued_kib",
    "frame_timeout_ms",     "hello_timeout_ms",   "client_timeout_min_ms", "client_timeout_max_ms",
    "max_clients_per_user", "max_pending_kib",    "max_refusals_per_s",    NULL};
enum { DEV_NAME, DEV_TRANSPORT, DEV_TIMEOUT, DEV_OPTIONS };
static const char *const config_device_keys[] = {"name", "transport", "timeout_ms", "options",
						 NULL};

/* The limits: where each lands and the range it may take. */
static const struct {
	size_t offset;
	uint32_t min, max;
} config_limits[] = {
    {offsetof(struct config, max_inflight), 1, 65536},
    {offsetof(struct config, max_queue_per_user), 1, 65536},
    {offsetof(struct config, max_clients), 1, 1000000},
    {offsetof(struct config, max_queued_kib), 1, 16777216},
    {offsetof(struct config, frame_timeout_ms), 10, 600000},
    {offsetof(struct config, hello_timeout_ms), 10, 600000},
    {offsetof(struct config, client_timeout_min_ms), 1, CONFIG_TIMEOUT_MAX},
    {offsetof(struct config, client_timeout_max_ms), 1, CONFIG_TIMEOUT_MAX},
    {offsetof(struct config, max_clients_per_user), 1, 1000000},
    {offsetof(struct config, max_pending_kib), 64, 1048576},
    {offsetof(struct config, max_refusals_per_s), 0, 100000000},
};

/* Fills err with "file:line: message" for node n and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int
config_fail(const struct config_ctx *x, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "%s:%zu: %s", x->file, n ? n->start_mark.line + 1 : 1, msg);
	return -EINVAL;
}

/* Reports an allocation failure. */
static int config_oom(const struct config_ctx *x)
{
	snprintf(x->err, x->errlen, "%s: out of memory", x->file);
	return -ENOMEM;
}

/* Joins a NULL-terminated list of names with ", " for messages. */
static void config_join(const char *const *names, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
}

/* Walks mapping n, calling fn for each key found in keys; others are errors. */
static int config_map(struct config_ctx *x, yaml_node_t *n, const char *where,
		      const char *const *keys, config_key_fn fn, void *arg)
{
	uint64_t seen = 0;
	char known[256];

	if (n->type != YAML_MAPPING_NODE)
		return config_fail(x, n, "%s: expected a mapping", where);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&x->doc, p->value);
		const char *name;
		int i, rc;

		if (k->type != YAML_SCALAR_NODE)
			return config_fail(x, k, "%s: a key must be a plain name", where);
		name = (const char *)k->data.scalar.value;
		for (i = 0; keys[i] && strcmp(keys[i], name) != 0; i++)
			;
		if (!keys[i]) {
			config_join(keys, known, sizeof(known));
			return config_fail(x, k, "unknown key \"%s\" in %s (known: %s)", name,
					   where, known);
		}
		if (i < 64 && (seen & (1ull << i)))
			return config_fail(x, k, "duplicate key \"%s\" in %s", name, where);
		seen |= i < 64 ? 1ull << i : 0;
		if ((rc = fn(x, i, v, arg)) < 0)
			return rc;
	}
	return 0;
}

/* The value of scalar v, which must be a non-empty string without NUL. */
static int config_string(const struct config_ctx *x, const yaml_node_t *v, const char *what,
			 const char **out)
{
	if (v->type != YAML_SCALAR_NODE)
		return config_fail(x, v, "%s: expected a single value", what);
	if (v->data.scalar.length == 0)
		return config_fail(x, v, "%s: empty value", what);
	if (strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
		return config_fail(x, v, "%s: contains a NUL byte", what);
	*out = (const char *)v->data.scalar.value;
	return 0;
}

/* Replaces *slot with a copy of v's string. */
static int config_set_string(struct config_ctx *x, const yaml_node_t *v, const char *what,
			     char **slot)
{
	const char *s;
	char *copy;
	int rc = config_string(x, v, what, &s);

	if (rc < 0)
		return rc;
	if (!(copy = strdup(s)))
		return config_oom(x);
	free(*slot);
	*slot = copy;
	return 0;
}

/* Replaces *slot with v's path, taken relative to the config file's folder. */
static int config_set_path(struct config_ctx *x, const yaml_node_t *v, const char *what,
			   char **slot)
{
	const char *s;
	char *path;
	int rc = config_string(x, v, what, &s);

	if (rc < 0)
		return rc;
	while (s[0] == '.' && s[1] == '/')
		s += 2;
	if (s[0] == '/')
		path = strdup(s);
	else if (asprintf(&path, "%s%s%s", x->dir, x->dir[strlen(x->dir) - 1] == '/' ? "" : "/",
			  s) < 0)
		path = NULL;
	if (!path)
		return config_oom(x);
	free(*slot);
	*slot = path;
	return 0;
}

/* Parses v as a decimal number in [min, max]. */
static int config_u32(const struct config_ctx *x, const yaml_node_t *v, const char *what,
		      uint32_t min, uint32_t max, uint32_t *out)
{
	const char *s;
	unsigned long long n;
	char *end;
	int rc = config_string(x, v, what, &s);

	if (rc < 0)
		return rc;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || n < min || n > max)
		return config_fail(x, v, "%s: \"%s\" is not a number from %u to %u", what, s, min,
				   max);
	*out = (uint32_t)n;
	return 0;
}

/* Parses v as an octal permission mode such as "0660". */
static int config_mode(const struct config_ctx *x, const yaml_node_t *v, mode_t *out)
{
	const char *s;
	unsigned long n;
	int rc = config_string(x, v, "socket.mode", &s);

	if (rc < 0)
		return rc;
	n = strtoul(s, NULL, 8);
	if (strspn(s, "01234567") != strlen(s) || strlen(s) > 4 || n > 0777)
		return config_fail(x, v,
				   "socket.mode: \"%s\" is not an octal mode from 0000 to 0777", s);
	*out = (mode_t)n;
	return 0;
}

/* One key of the socket mapping. */
static int config_socket_key(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	struct sockaddr_un sun;
	int rc;

	(void)arg;
	switch (key) {
	case SOCKET_PATH:
		rc = config_set_path(x, v, "socket.path", &x->c->socket_path);
		if (rc == 0 && strlen(x->c->socket_path) >= sizeof(sun.sun_path))
			return config_fail(x, v, "socket.path: \"%s\" is longer than %zu bytes",
					   x->c->socket_path, sizeof(sun.sun_path) - 1);
		return rc;
	case SOCKET_MODE:
		return config_mode(x, v, &x->c->socket_mode);
	case SOCKET_GROUP:
		return config_set_string(x, v, "socket.group", &x->c->socket_group);
	}
	return -EINVAL;
}

/* A YAML boolean: true or false, nothing looser. */
static int config_bool(struct config_ctx *x, yaml_node_t *v, const char *what, bool *out)
{
	const char *s;
	int rc = config_string(x, v, what, &s);

	if (rc < 0)
		return rc;
	if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
		return config_fail(x, v, "%s: \"%s\" is not true or false", what, s);
	*out = strcmp(s, "true") == 0;
	return 0;
}

/* One key of the audit mapping. */
static int config_audit_key(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	struct config *c = x->c;

	(void)arg;
	switch (key) {
	case AUDIT_ALL:
		return config_bool(x, v, "audit.all_decisions", &c->audit_all_decisions);
	case AUDIT_BURST:
		return config_u32(x, v, "audit.refused_burst", 0, 1000000, &c->audit_refused_burst);
	case AUDIT_PER_MINUTE:
		return config_u32(x, v, "audit.refused_per_minute", 1, 60000000,
				  &c->audit_refused_per_minute);
	case AUDIT_COALESCE:
		return config_u32(x, v, "audit.coalesce_ms", 100, 3600000, &c->audit_coalesce_ms);
	case AUDIT_CKPT:
		return config_set_path(x, v, "audit.checkpoint", &c->audit_checkpoint_path);
	case AUDIT_CKPT_INT:
		return config_u32(x, v, "audit.checkpoint_interval_s", 0, 86400,
				  &c->audit_checkpoint_interval_s);
	case AUDIT_SEAL:
		return config_set_path(x, v, "audit.seal_key", &c->audit_seal_key_path);
	case AUDIT_SEAL_INT:
		return config_u32(x, v, "audit.seal_interval_s", 1, 86400,
				  &c->audit_seal_interval_s);
	}
	return config_set_path(x, v, "audit.path", &c->audit_path);
}

/* The checkpoint lives next to the log unless the config names another file. */
static int config_audit_defaults(struct config_ctx *x)
{
	if (x->c->audit_checkpoint_path)
		return 0;
	if (asprintf(&x->c->audit_checkpoint_path, "%s.checkpoint", x->c->audit_path) < 0) {
		x->c->audit_checkpoint_path = NULL;
		return config_oom(x);
	}
	return 0;
}

/* One key of the limits mapping. */
static int config_limit_key(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	char what[64];

	(void)arg;
	snprintf(what, sizeof(what), "limits.%s", config_limit_keys[key]);
	return config_u32(x, v, what, config_limits[key].min, config_limits[key].max,
			  (uint32_t *)((char *)x->c + config_limits[key].offset));
}

/* Remembers which node each key of a device holds; checked afterwards in order. */
static int config_device_key(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	yaml_node_t **nodes = arg;

	(void)x;
	nodes[key] = v;
	return 0;
}

/* What sizing a device's options needs to know. */
struct config_option_count {
	const struct mbx_transport_ops *ops;
	const struct config_device *d;
	size_t n;     /* options */
	size_t bytes; /* of their values, NULs included */
};

/* Checks one option's value and counts the room it needs. */
static int config_option_size(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	struct config_option_count *cnt = arg;
	char what[96];
	const char *s;
	int rc;

	snprintf(what, sizeof(what), "device \"%s\": option %s", cnt->d->name,
		 cnt->ops->options[key]);
	if ((rc = config_string(x, v, what, &s)) < 0)
		return rc;
	cnt->n++;
	cnt->bytes += v->data.scalar.length + 1;
	return 0;
}

/* Checks a device's options against its transport's list and copies them. */
static int config_options(struct config_ctx *x, yaml_node_t *n, const struct mbx_transport_ops *ops,
			  struct config_device *d)
{
	struct config_option_count cnt = {.ops = ops, .d = d};
	char where[96], *text;
	int rc;

	snprintf(where, sizeof(where), "the %s options of device \"%s\"", ops->name, d->name);
	if ((rc = config_map(x, n, where, ops->options, config_option_size, &cnt)) < 0)
		return rc;
	/* One block holds every value, so the device owns one buffer, not n. */
	d->options = calloc(cnt.n ? cnt.n : 1, sizeof(*d->options));
	d->option_text = text = malloc(cnt.bytes ? cnt.bytes : 1);
	if (!d->options || !text)
		return config_oom(x);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&x->doc, p->value);
		struct mbx_transport_option *o = &d->options[d->n_options++];
		int i;

		/* Keys point at the transport's own names, which outlive the config. */
		for (i = 0; strcmp(ops->options[i], (const char *)k->data.scalar.value) != 0; i++)
			;
		o->key = ops->options[i];
		o->value = memcpy(text, v->data.scalar.value, v->data.scalar.length + 1);
		o->line = (int)v->start_mark.line + 1;
		text += v->data.scalar.length + 1;
	}
	return 0;
}

/* Whether name is 1 to 31 characters of [A-Za-z0-9_.-]. */
static bool config_device_name_ok(const char *name)
{
	size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789_.-");

	return n == strlen(name) && n >= 1 && n < MBX_NAME_MAX;
}

/* Checks the name of device d: well formed and not used before. */
static int config_device_name(struct config_ctx *x, yaml_node_t *v, struct config_device *d)
{
	const char *s;
	int rc = config_string(x, v, "device name", &s);

	if (rc < 0)
		return rc;
	if (!config_device_name_ok(s))
		return config_fail(
		    x, v, "device name \"%s\": use 1 to %d characters of A-Z a-z 0-9 _ . -", s,
		    MBX_NAME_MAX - 1);
	for (struct config_device *o = x->c->devices; o < d; o++)
		if (strcmp(o->name, s) == 0)
			return config_fail(x, v, "duplicate device name \"%s\" (first at line %d)",
					   s, o->line);
	if (!(d->name = strdup(s)))
		return config_oom(x);
	d->line = (int)v->start_mark.line + 1;
	return 0;
}

/* Checks the transport of device d against the registry. */
static int config_device_transport(struct config_ctx *x, yaml_node_t *v, struct config_device *d,
				   const struct mbx_transport_ops **ops)
{
	char what[64], known[128];
	const char *list[16];
	const char *s;
	size_t i;
	int rc;

	snprintf(what, sizeof(what), "device \"%s\": transport", d->name);
	if ((rc = config_string(x, v, what, &s)) < 0)
		return rc;
	*ops = transport_find(s);
	if (!*ops) {
		for (i = 0; transport_registry[i] && i < 15; i++)
			list[i] = transport_registry[i]->name;
		list[i] = NULL;
		config_join(list, known, sizeof(known));
		return config_fail(x, v, "device \"%s\": unknown transport \"%s\" (known: %s)",
				   d->name, s, known);
	}
	if (!(d->transport = strdup(s)))
		return config_oom(x);
	return 0;
}

/* Reads device number i (0-based) of the devices list. */
static int config_device(struct config_ctx *x, yaml_node_t *n, size_t i)
{
	struct config_device *d = &x->c->devices[i];
	const struct mbx_transport_ops *ops;
	yaml_node_t *nodes[4] = {NULL, NULL, NULL, NULL};
	char where[64];
	int rc;

	snprintf(where, sizeof(where), "device %zu", i + 1);
	if ((rc = config_map(x, n, where, config_device_keys, config_device_key, nodes)) < 0)
		return rc;
	if (!nodes[DEV_NAME])
		return config_fail(x, n, "device %zu: missing \"name\"", i + 1);
	if ((rc = config_device_name(x, nodes[DEV_NAME], d)) < 0)
		return rc;
	if (!nodes[DEV_TRANSPORT])
		return config_fail(x, n, "device \"%s\": missing \"transport\"", d->name);
	if ((rc = config_device_transport(x, nodes[DEV_TRANSPORT], d, &ops)) < 0)
		return rc;
	snprintf(where, sizeof(where), "device \"%s\": timeout_ms", d->name);
	if (nodes[DEV_TIMEOUT] && (rc = config_u32(x, nodes[DEV_TIMEOUT], where, 1,
						   CONFIG_TIMEOUT_MAX, &d->timeout_ms)) < 0)
		return rc;
	if (nodes[DEV_OPTIONS])
		return config_options(x, nodes[DEV_OPTIONS], ops, d);
	return 0;
}

/* Reads the devices list: at least one. */
static int config_devices(struct config_ctx *x, yaml_node_t *v)
{
	struct config *c = x->c;
	size_t n;
	int rc;

	if (v->type != YAML_SEQUENCE_NODE)
		return config_fail(x, v, "devices: expected a list");
	n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0)
		return config_fail(x, v, "devices: at least one device is required");
	if (!(c->devices = calloc(n, sizeof(*c->devices))))
		return config_oom(x);
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item =
		    yaml_document_get_node(&x->doc, v->data.sequence.items.start[i]);

		c->devices[i].timeout_ms = 2000; /* the spec's foreground timeout */
		/* Counted first so that config_free releases a half-read device. */
		c->n_devices = i;
		rc = config_device(x, item, i);
		c->n_devices = i + 1;
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Reads the limits mapping, then checks the limits that must agree. */
static int config_limits_read(struct config_ctx *x, yaml_node_t *v)
{
	int rc = config_map(x, v, "limits", config_limit_keys, config_limit_key, NULL);

	if (rc == 0 && x->c->client_timeout_min_ms > x->c->client_timeout_max_ms)
		return config_fail(x, v,
				   "limits.client_timeout_min_ms (%u) exceeds "
				   "limits.client_timeout_max_ms (%u)",
				   x->c->client_timeout_min_ms, x->c->client_timeout_max_ms);
	return rc;
}

/* One key at the top level. */
static int config_top_key(struct config_ctx *x, int key, yaml_node_t *v, void *arg)
{
	(void)arg;
	switch (key) {
	case TOP_SOCKET:
		return config_map(x, v, "socket", config_socket_keys, config_socket_key, NULL);
	case TOP_POLICY:
		return config_set_path(x, v, "policy", &x->c->policy_path);
	case TOP_AUDIT:
		return config_map(x, v, "audit", config_audit_keys, config_audit_key, NULL);
	case TOP_USER:
		return config_set_string(x, v, "user", &x->c->run_user);
	case TOP_LIMITS:
		return config_limits_read(x, v);
	case TOP_DEVICES:
		return config_devices(x, v);
	}
	return -EINVAL;
}

/* Fills the defaults that config.h promises. */
static int config_defaults(struct config *c, const char *path)
{
	c->socket_mode = 0660;
	c->max_inflight = 64;
	c->max_queue_per_user = 32;
	c->max_clients = 1024;
	c->max_clients_per_user = 32;
	c->max_pending_kib = 1024;
	c->max_refusals_per_s = 1000;
	c->max_queued_kib = 65536;
	c->frame_timeout_ms = 10000;
	c->hello_timeout_ms = 5000;
	c->audit_refused_burst = 20;
	c->audit_refused_per_minute = 60;
	c->audit_coalesce_ms = 5000;
	c->client_timeout_min_ms = 10;
	c->client_timeout_max_ms = 600000;
	c->audit_checkpoint_interval_s = 60;
	c->audit_seal_interval_s = 900;
	c->path = strdup(path);
	c->socket_path = strdup("/run/mbxd/mbxd.sock");
	c->policy_path = strdup("/etc/mbxd/policy.yaml");
	c->audit_path = strdup("/var/log/mbxd/audit.jsonl");
	c->run_user = strdup("_mbxd");
	if (!c->path || !c->socket_path || !c->policy_path || !c->audit_path || !c->run_user)
		return -ENOMEM;
	return 0;
}

/* The absolute folder of path, so that relative paths survive a chdir. */
static char *config_dir(const char *path)
{
	char *copy = strdup(path), *cwd = NULL, *out = NULL;
	const char *d;

	if (!copy)
		return NULL;
	d = dirname(copy);
	if (d[0] == '/')
		out = strdup(d);
	else if ((cwd = getcwd(NULL, 0)) && strcmp(d, ".") == 0)
		out = strdup(cwd);
	else if (cwd && asprintf(&out, "%s/%s", strcmp(cwd, "/") ? cwd : "", d) < 0)
		out = NULL;
	free(cwd);
	free(copy);
	return out;
}

/* Turns a libyaml parse error into "file:line: problem". */
static int config_parse_error(const struct config_ctx *x, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return config_oom(x);
	if (p->error == YAML_READER_ERROR)
		snprintf(x->err, x->errlen, "%s: %s at byte %zu", x->file,
			 p->problem ? p->problem : "unreadable", p->problem_offset);
	else if (p->context)
		snprintf(x->err, x->errlen, "%s:%zu: %s (%s at line %zu)", x->file,
			 p->problem_mark.line + 1, p->problem ? p->problem : "syntax error",
			 p->context, p->context_mark.line + 1);
	else
		snprintf(x->err, x->errlen, "%s:%zu: %s", x->file, p->problem_mark.line + 1,
			 p->problem ? p->problem : "syntax error");
	return -EINVAL;
}

/* Loads the one document of the file's text and reads it into x->c. */
static int config_read(struct config_ctx *x, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	yaml_node_t *root, *extra_root;
	int rc;

	if (!yaml_parser_initialize(&parser))
		return config_oom(x);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &x->doc)) {
		rc = config_parse_error(x, &parser);
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&x->doc);
	if (!root)
		rc = config_fail(x, NULL, "empty configuration: at least one device is required");
	else if ((rc = config_map(x, root, "the configuration", config_top_keys, config_top_key,
				  NULL)) == 0 &&
		 !x->c->devices)
		rc = config_fail(x, root, "no devices: at least one is required");
	if (rc == 0 && !yaml_parser_load(&parser, &extra))
		rc = config_parse_error(x, &parser);
	else if (rc == 0) {
		extra_root = yaml_document_get_root_node(&extra);
		if (extra_root)
			rc = config_fail(x, extra_root,
					 "a second YAML document: put everything in one");
		yaml_document_delete(&extra);
	}
	yaml_document_delete(&x->doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* Reads the configuration file at path. */
int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config_ctx x = {.file = path, .err = err, .errlen = errlen};
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	x.c = calloc(1, sizeof(*x.c));
	x.dir = config_dir(path);
	if (!x.c || !x.dir || config_defaults(x.c, path) < 0) {
		rc = config_oom(&x);
		goto out;
	}
	if ((rc = readfile_regular(path, READFILE_MAX, &text, &len, NULL, err, errlen)) < 0)
		goto out;
	rc = config_read(&x, text, len);
	free(text);
	if (rc == 0)
		rc = config_audit_defaults(&x);
out:
	free(x.dir);
	if (rc < 0)
		config_free(x.c);
	else
		*out = x.c;
	return rc;
}

/* Frees everything config_load allocated. */
void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_devices; i++) {
		free(c->devices[i].name);
		free(c->devices[i].transport);
		free(c->devices[i].options);
		free(c->devices[i].option_text);
	}
	free(c->devices);
	free(c->path);
	free(c->socket_path);
	free(c->socket_group);
	free(c->policy_path);
	free(c->audit_path);
	free(c->audit_checkpoint_path);
	free(c->audit_seal_key_path);
	free(c->run_user);
	free(c);
}
