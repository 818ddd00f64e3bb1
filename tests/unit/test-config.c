/* The mbxd.yaml loader: a good file, defaults, relative paths, every error. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char dir[64];
static char path[128];

/* Makes a fresh folder for each test. */
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mbxd.yaml", dir);
}

/* Removes the folder and what the test left in it. */
static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	fclose(f);
}

/* Loads text as path and expects success. */
static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	char err[512] = "";

	write_file(path, text);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(c);
	return c;
}

/* The value of option key of device d, or NULL. */
static const struct mbx_transport_option *option(const struct config_device *d, const char *key)
{
	for (size_t i = 0; i < d->n_options; i++)
		if (strcmp(d->options[i].key, key) == 0)
			return &d->options[i];
	return NULL;
}

static const char good[] =
    "# a full configuration\n"
    "socket: { path: /run/test/mbxd.sock, mode: \"0640\", group: cxl-users }\n"
    "policy: /etc/test/policy.yaml\n"
    "audit: { path: /var/log/test/audit.jsonl, all_decisions: true, refused_burst: 0,"
    " refused_per_minute: 600, coalesce_ms: 250 }\n"
    "user: _test\n"
    "limits: { max_inflight: 8, max_queue_per_user: 4, max_clients: 100, max_queued_kib: 8 }\n"
    "devices:\n"
    "  - name: mem0\n"
    "    transport: sim\n"
    "    timeout_ms: 1500\n"
    "    options: { model: memdev, serial: 0x1111, latency_us: 0 }\n"
    "  - name: switch0\n"
    "    transport: sim\n"
    "    options:\n"
    "      model: switch\n"
    "      ports: 4\n";

START_TEST(test_good)
{
	struct config *c = load_ok(good);
	const struct mbx_transport_option *o;

	ck_assert_str_eq(c->path, path);
	ck_assert_str_eq(c->socket_path, "/run/test/mbxd.sock");
	ck_assert_int_eq(c->socket_mode, 0640);
	ck_assert_str_eq(c->socket_group, "cxl-users");
	ck_assert_str_eq(c->policy_path, "/etc/test/policy.yaml");
	ck_assert_str_eq(c->audit_path, "/var/log/test/audit.jsonl");
	ck_assert(c->audit_all_decisions);
	ck_assert_uint_eq(c->audit_refused_burst, 0);
	ck_assert_uint_eq(c->audit_refused_per_minute, 600);
	ck_assert_uint_eq(c->audit_coalesce_ms, 250);
	ck_assert_str_eq(c->run_user, "_test");
	ck_assert_uint_eq(c->max_inflight, 8);
	ck_assert_uint_eq(c->max_queue_per_user, 4);
	ck_assert_uint_eq(c->max_clients, 100);
	ck_assert_uint_eq(c->max_queued_kib, 8);
	ck_assert_uint_eq(c->n_devices, 2);

	ck_assert_str_eq(c->devices[0].name, "mem0");
	ck_assert_str_eq(c->devices[0].transport, "sim");
	ck_assert_int_eq(c->devices[0].line, 8);
	ck_assert_uint_eq(c->devices[0].timeout_ms, 1500);
	ck_assert_uint_eq(c->devices[0].n_options, 3);
	o = option(&c->devices[0], "serial");
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(o->value, "0x1111");
	ck_assert_int_eq(o->line, 11);
	ck_assert_str_eq(option(&c->devices[0], "latency_us")->value, "0");

	ck_assert_str_eq(c->devices[1].name, "switch0");
	ck_assert_uint_eq(c->devices[1].timeout_ms, 2000);
	ck_assert_uint_eq(c->devices[1].n_options, 2);
	ck_assert_str_eq(option(&c->devices[1], "model")->value, "switch");
	ck_assert_int_eq(option(&c->devices[1], "ports")->line, 16);
	config_free(c);
}
END_TEST

START_TEST(test_defaults)
{
	struct config *c = load_ok("devices:\n  - { name: a, transport: sim }\n");

	ck_assert_str_eq(c->socket_path, "/run/mbxd/mbxd.sock");
	ck_assert_int_eq(c->socket_mode, 0660);
	ck_assert_ptr_null(c->socket_group);
	ck_assert_str_eq(c->policy_path, "/etc/mbxd/policy.yaml");
	ck_assert_str_eq(c->audit_path, "/var/log/mbxd/audit.jsonl");
	ck_assert(!c->audit_all_decisions);
	ck_assert_uint_eq(c->audit_refused_burst, 20);
	ck_assert_uint_eq(c->audit_refused_per_minute, 60);
	ck_assert_uint_eq(c->audit_coalesce_ms, 5000);
	ck_assert_str_eq(c->run_user, "_mbxd");
	ck_assert_uint_eq(c->max_inflight, 64);
	ck_assert_uint_eq(c->max_queue_per_user, 32);
	ck_assert_uint_eq(c->max_clients, 1024);
	ck_assert_uint_eq(c->max_clients_per_user, 32);
	ck_assert_uint_eq(c->max_pending_kib, 1024);
	ck_assert_uint_eq(c->max_refusals_per_s, 1000);
	ck_assert_uint_eq(c->max_queued_kib, 65536);
	ck_assert_uint_eq(c->frame_timeout_ms, 10000);
	ck_assert_uint_eq(c->hello_timeout_ms, 5000);
	ck_assert_uint_eq(c->client_timeout_min_ms, 10);
	ck_assert_uint_eq(c->client_timeout_max_ms, 600000);
	ck_assert_uint_eq(c->devices[0].timeout_ms, 2000);
	ck_assert_uint_eq(c->devices[0].n_options, 0);
	config_free(c);
}
END_TEST

static const char relative[] = "socket: { path: ./run/mbxd.sock }\n"
			       "policy: policy.yaml\n"
			       "audit: { path: ../log/audit.jsonl }\n"
			       "devices:\n  - { name: a, transport: sim }\n";

START_TEST(test_relative_paths)
{
	char sub[160], want[256], cfg[200], *cwd = getcwd(NULL, 0);
	struct config *c = NULL;
	char err[512] = "";

	/* An absolute config path: relative values hang off its folder. */
	snprintf(sub, sizeof(sub), "%s/conf", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	snprintf(cfg, sizeof(cfg), "%s/mbxd.yaml", sub);
	write_file(cfg, relative);
	ck_assert_msg(config_load(cfg, &c, err, sizeof(err)) == 0, "%s", err);
	snprintf(want, sizeof(want), "%s/run/mbxd.sock", sub);
	ck_assert_str_eq(c->socket_path, want);
	snprintf(want, sizeof(want), "%s/policy.yaml", sub);
	ck_assert_str_eq(c->policy_path, want);
	snprintf(want, sizeof(want), "%s/../log/audit.jsonl", sub);
	ck_assert_str_eq(c->audit_path, want);
	config_free(c);

	/* A relative config path: the result is still absolute (mbxd chdirs to /). */
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_msg(config_load("conf/mbxd.yaml", &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c->path, "conf/mbxd.yaml");
	snprintf(want, sizeof(want), "%s/conf/policy.yaml", dir);
	ck_assert_str_eq(c->policy_path, want);
	config_free(c);

	ck_assert_int_eq(chdir(sub), 0);
	ck_assert_msg(config_load("mbxd.yaml", &c, err, sizeof(err)) == 0, "%s", err);
	snprintf(want, sizeof(want), "%s/run/mbxd.sock", sub);
	ck_assert_str_eq(c->socket_path, want);
	config_free(c);
	ck_assert_int_eq(chdir(cwd), 0);
	free(cwd);
}
END_TEST

/* A file and the message it must give after "path:". */
static const struct {
	const char *text;
	const char *msg;
} bad[] = {
    {"sockets: {}\n",
     "1: unknown key \"sockets\" in the configuration (known: socket, policy, audit, user, "
     "limits, devices)"},
    {"socket:\n  path: /x\n  owner: root\n",
     "3: unknown key \"owner\" in socket (known: path, mode, group)"},
    {"audit: { path: /a, rotate: 1 }\n",
     "1: unknown key \"rotate\" in audit (known: path, all_decisions, refused_burst, "
     "refused_per_minute, coalesce_ms, checkpoint, checkpoint_interval_s, seal_key, "
     "seal_interval_s)"},
    {"audit: { refused_per_minute: 0 }\n",
     "1: audit.refused_per_minute: \"0\" is not a number from 1 to 60000000"},
    {"audit: { coalesce_ms: 10 }\n",
     "1: audit.coalesce_ms: \"10\" is not a number from 100 to 3600000"},
    {"audit: { path: /a, all_decisions: yes }\n",
     "1: audit.all_decisions: \"yes\" is not true or false"},
    {"limits:\n  max_queue: 3\n",
     "2: unknown key \"max_queue\" in limits (known: max_inflight, max_queue_per_user, "
     "max_clients, max_queued_kib, frame_timeout_ms, hello_timeout_ms, client_timeout_min_ms, "
     "client_timeout_max_ms, max_clients_per_user, max_pending_kib, max_refusals_per_s)"},
    {"limits: { client_timeout_min_ms: 5000, client_timeout_max_ms: 4000 }\n"
     "devices:\n  - { name: a, transport: sim }\n",
     "1: limits.client_timeout_min_ms (5000) exceeds limits.client_timeout_max_ms (4000)"},
    {"user: a\nuser: b\n", "2: duplicate key \"user\" in the configuration"},
    {"socket: { mode: \"0999\" }\n",
     "1: socket.mode: \"0999\" is not an octal mode from 0000 to 0777"},
    {"socket: { mode: \"4755\" }\n",
     "1: socket.mode: \"4755\" is not an octal mode from 0000 to 0777"},
    {"socket: { mode: rw }\n", "1: socket.mode: \"rw\" is not an octal mode from 0000 to 0777"},
    {"socket: /run/x\n", "1: socket: expected a mapping"},
    {"socket: { group: \"\" }\n", "1: socket.group: empty value"},
    {"policy: [a, b]\n", "1: policy: expected a single value"},
    {"user: \"\"\n", "1: user: empty value"},
    {"user:\n", "1: user: empty value"},
    {"limits:\n  max_inflight: 0\n",
     "2: limits.max_inflight: \"0\" is not a number from 1 to 65536"},
    {"limits:\n  hello_timeout_ms: 5\n",
     "2: limits.hello_timeout_ms: \"5\" is not a number from 10 to 600000"},
    {"limits:\n  max_clients_per_user: 0\n",
     "2: limits.max_clients_per_user: \"0\" is not a number from 1 to 1000000"},
    {"limits:\n  max_pending_kib: 63\n",
     "2: limits.max_pending_kib: \"63\" is not a number from 64 to 1048576"},
    {"limits:\n  max_refusals_per_s: -1\n",
     "2: limits.max_refusals_per_s: \"-1\" is not a number from 0 to 100000000"},
    {"limits:\n  max_refusals_per_s: 100000001\n",
     "2: limits.max_refusals_per_s: \"100000001\" is not a number from 0 to 100000000"},
    {"audit: { refused_burst: 1000001 }\n",
     "1: audit.refused_burst: \"1000001\" is not a number from 0 to 1000000"},
    {"audit: { checkpoint_interval_s: 86401 }\n",
     "1: audit.checkpoint_interval_s: \"86401\" is not a number from 0 to 86400"},
    {"audit: { seal_interval_s: 0 }\n",
     "1: audit.seal_interval_s: \"0\" is not a number from 1 to 86400"},
    {"limits:\n  max_clients: -5\n",
     "2: limits.max_clients: \"-5\" is not a number from 1 to 1000000"},
    {"limits:\n  max_queue_per_user: 12abc\n",
     "2: limits.max_queue_per_user: \"12abc\" is not a number from 1 to 65536"},
    {"user: x\n", "1: no devices: at least one is required"},
    {"", "1: empty configuration: at least one device is required"},
    {"- a\n", "1: the configuration: expected a mapping"},
    {"? [a]\n: b\n", "1: the configuration: a key must be a plain name"},
    {"devices: []\n", "1: devices: at least one device is required"},
    {"devices: { name: a }\n", "1: devices: expected a list"},
    {"devices:\n  - mem0\n", "2: device 1: expected a mapping"},
    {"devices:\n  - transport: sim\n", "2: device 1: missing \"name\""},
    {"devices:\n  - name: mem0\n    transport: sim\n    timeout: 5\n",
     "4: unknown key \"timeout\" in device 1 (known: name, transport, timeout_ms, options)"},
    {"devices:\n  - name: \"mem 0\"\n    transport: sim\n",
     "2: device name \"mem 0\": use 1 to 31 characters of A-Z a-z 0-9 _ . -"},
    {"devices:\n  - name: abcdefghijklmnopqrstuvwxyz012345\n    transport: sim\n",
     "2: device name \"abcdefghijklmnopqrstuvwxyz012345\": use 1 to 31 characters of A-Z a-z "
     "0-9 _ . -"},
    {"devices:\n  - name: mem0\n    transport: sim\n  - name: mem1\n    transport: sim\n"
     "  - name: mem0\n    transport: sim\n",
     "6: duplicate device name \"mem0\" (first at line 2)"},
    {"devices:\n  - name: mem0\n", "2: device \"mem0\": missing \"transport\""},

    {"devices:\n  - name: mem0\n    transport: sim\n    timeout_ms: 0\n",
     "4: device \"mem0\": timeout_ms: \"0\" is not a number from 1 to 3600000"},
    {"devices:\n  - name: mem0\n    transport: sim\n    options: { model: { a: b } }\n",
     "4: device \"mem0\": option model: expected a single value"},
    {"devices:\n  - name: mem0\n    transport: sim\n    options: [model]\n",
     "4: the sim options of device \"mem0\": expected a mapping"},
    {"devices:\n  - name: mem0\n    transport: sim\n    options:\n      serial: 1\n"
     "      serial: 2\n",
     "6: duplicate key \"serial\" in the sim options of device \"mem0\""},
    {"devices:\n  - { name: a, transport: sim }\n---\nuser: x\n",
     "4: a second YAML document: put everything in one"},
    {"socket: {path: /x\nuser: a\n",
     "2: did not find expected ',' or '}' (while parsing a flow mapping at line 1)"},
    {"user: a\n  b: c\n", "2: mapping values are not allowed in this context"},
};

START_TEST(test_errors)
{
	struct config *c = (struct config *)1;
	char err[512] = "", want[512];

	write_file(path, bad[_i].text);
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want), "%s:%s", path, bad[_i].msg);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_unknown_option_lists_accepted)
{
	const struct mbx_transport_ops *sim = transport_find("sim");
	struct config *c = NULL;
	char err[512] = "", want[512], known[256] = "";

	ck_assert_ptr_nonnull(sim);
	for (size_t i = 0; sim->options[i]; i++) {
		strcat(known, i ? ", " : "");
		strcat(known, sim->options[i]);
	}
	ck_assert_ptr_nonnull(strstr(known, "serial"));
	write_file(path, "devices:\n  - name: mem0\n    transport: sim\n    options:\n"
			 "      model: memdev\n      modle: memdev\n");
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:6: unknown key \"modle\" in the sim options of device \"mem0\" (known: %s)",
		 path, known);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_unknown_transport_lists_known)
{
	struct config *c = NULL;
	char err[512] = "", want[512], known[256] = "";

	for (size_t i = 0; transport_registry[i]; i++) {
		strcat(known, i ? ", " : "");
		strcat(known, transport_registry[i]->name);
	}
	ck_assert_ptr_nonnull(strstr(known, "sim"));
	write_file(path, "devices:\n  - name: mem0\n    transport: vfioo\n");
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3: device \"mem0\": unknown transport \"vfioo\" (known: %s)", path, known);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_socket_path_too_long)
{
	char text[512], long_path[200], want[512], err[512] = "";
	struct config *c = NULL;

	memset(long_path, 'x', 120);
	long_path[0] = '/';
	long_path[120] = '\0';
	snprintf(text, sizeof(text),
		 "socket:\n  path: %s\ndevices:\n  - { name: a, transport: sim }\n", long_path);
	write_file(path, text);
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: socket.path: \"%s\" is longer than 107 bytes", path,
		 long_path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_missing_file)
{
	struct config *c = NULL;
	char err[512] = "", want[256], p[160];

	snprintf(p, sizeof(p), "%s/none.yaml", dir);
	ck_assert_int_eq(config_load(p, &c, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "cannot open %s: No such file or directory", p);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_demo_config)
{
	/* The shipped demo and example configurations load. */
	static const char *const files[] = {"conf/demo/mbxd.yaml", "conf/mbxd.yaml"};
	char err[512] = "", file[PATH_MAX];
	const char *here = __FILE__; /* CMake compiles by absolute path */
	struct config *c = NULL;
	const char *tail = strstr(here, "tests/unit/test-config.c");
	int top;

	ck_assert_ptr_nonnull(tail);
	top = (int)(tail - here);
	snprintf(file, sizeof(file), "%.*s%s", top, here, files[_i]);
	ck_assert_msg(config_load(file, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_ge(c->n_devices, 1);
	/* Their options are ones the transport accepts, not only knows. */
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct config_device *d = &c->devices[i];
		const struct mbx_transport_ops *ops = transport_find(d->transport);
		struct mbx_transport_config tc = {.device_name = d->name,
						  .config_file = c->path,
						  .options = d->options,
						  .n_options = d->n_options,
						  .line = d->line};
		void *priv = calloc(1, ops->priv_size);

		ck_assert_msg(ops->open(priv, &tc, err, sizeof(err)) == 0, "%s", err);
		ops->close(priv);
		free(priv);
	}
	config_free(c);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_relative_paths);
	tcase_add_loop_test(tc, test_errors, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_unknown_option_lists_accepted);
	tcase_add_test(tc, test_unknown_transport_lists_known);
	tcase_add_test(tc, test_socket_path_too_long);
	tcase_add_test(tc, test_missing_file);
	tcase_add_loop_test(tc, test_demo_config, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
