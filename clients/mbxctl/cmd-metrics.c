/*
 * mbxctl metrics: the daemon's counters in the Prometheus text format, on
 * standard output, as JSON, or written atomically for node_exporter's
 * textfile collector (--textfile /var/lib/prometheus/node-exporter/mbxd.prom).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mbxctl.h"

/* Writes text to path through a temporary file and rename(): readers see old or new, whole. */
static int metrics_write_atomic(const char *path, const char *text)
{
	size_t len = strlen(text), off = 0;
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) {
		out_err("--textfile: path too long");
		return CTL_EXIT_USAGE;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		out_err("%s: %s", tmp, strerror(errno));
		return CTL_EXIT_DEVICE;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < len || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		out_err("%s: %s", path, strerror(errno ? errno : EIO));
		if (off < len)
			close(fd);
		unlink(tmp);
		return CTL_EXIT_DEVICE;
	}
	return CTL_EXIT_OK;
}

/* Reads a label value in quotes, undoing the format's three escapes; returns the end. */
static const char *metrics_label_value(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		char c = *p++;

		if (c == '\\' && *p) {
			c = *p++;
			if (c == 'n')
				c = '\n';
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* Parses one sample line: name{k="v",...} value. NULL when it is not one. */
static json_t *metrics_sample(const char *line, const char *type)
{
	char name[128], key[128], val[256];
	const char *p = line;
	json_t *labels = json_object(), *o;
	size_t n = strcspn(p, "{ ");
	char *end;
	double v;

	if (!labels || n == 0 || n >= sizeof(name))
		goto fail;
	memcpy(name, p, n);
	name[n] = '\0';
	p += n;
	if (*p == '{') {
		p++;
		while (*p && *p != '}') {
			n = strcspn(p, "=");
			if (n == 0 || n >= sizeof(key) || p[n] != '=')
				goto fail;
			memcpy(key, p, n);
			key[n] = '\0';
			p = metrics_label_value(p + n + 1, val, sizeof(val));
			if (!p)
				goto fail;
			json_object_set_new(labels, key, out_jstr(val));
			if (*p == ',')
				p++;
		}
		if (*p++ != '}')
			goto fail;
	}
	v = strtod(p, &end);
	if (end == p)
		goto fail;
	/* Counters and most gauges are whole numbers: keep them integers in JSON. */
	o = json_pack("{s:s, s:s, s:o, s:o}", "name", name, "type", type, "labels", labels, "value",
		      v == (double)(json_int_t)v ? json_integer((json_int_t)v) : json_real(v));
	return o;
fail:
	json_decref(labels);
	return NULL;
}

/* Turns the exposition into {"metrics": [{name, type, labels, value}, ...]}. */
static int metrics_json(char *text)
{
	json_t *arr = json_array();
	char type[32] = "untyped", fam[128];
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); arr && line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *s;

		if (sscanf(line, "# TYPE %127s %31s", fam, type) == 2 || line[0] == '#')
			continue;
		s = metrics_sample(line, type);
		if (!s) {
			out_err("cannot parse the daemon's metrics line \"%s\"", line);
			json_decref(arr);
			return CTL_EXIT_DAEMON;
		}
		json_array_append_new(arr, s);
	}
	return out_json(arr ? json_pack("{s:o}", "metrics", arr) : NULL);
}

/* mbxctl metrics [--textfile PATH] */
int cmd_metrics(struct ctl *ctl, int argc, char **argv)
{
	char *text = NULL;
	int r;

	r = ctl_args_parse(ctl, argc, argv, 0, CTL_OPT_TEXTFILE, "metrics [--textfile PATH]");
	if (r)
		return r;
	r = ctl_connect(ctl);
	if (r)
		return r;
	r = mbx_metrics(ctl->client, &text);
	if (r < 0)
		return ctl_failed(ctl, r);
	if (ctl->textfile)
		r = metrics_write_atomic(ctl->textfile, text);
	else if (ctl->json)
		r = metrics_json(text);
	else
		r = fputs(text, stdout) < 0 ? CTL_EXIT_DAEMON : CTL_EXIT_OK;
	free(text);
	return r;
}
