/*
 * The transport registry and every transport's check(): what `mbxd -n`
 * refuses is exactly what a start refuses, each message "file:line: key:
 * message", and no option a transport accepts goes unchecked.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "device.h"
#include "transport.h"

static char dir[64];
static char path[128];

/* Makes a fresh folder for each test. */
static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-registry-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mbxd.yaml", dir);
}

/* Removes the folder. */
static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

/*
 * Writes a configuration with one device of transport whose options are the
 * lines in options (each "key: value"), and loads it. The device's entry is
 * on line 3, its options from line 6 on.
 */
static struct config *load_device(const char *transport, const char *const *options)
{
	struct config *c = NULL;
	char err[512] = "";
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"policy: /nonexistent/policy.yaml\ndevices:\n  - name: d0\n    transport: %s\n"
		"    options:\n",
		transport);
	for (size_t i = 0; options[i]; i++)
		fprintf(f, "      %s\n", options[i]);
	fclose(f);
	ck_assert_msg(config_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	return c;
}

/* Runs the device's transport open on the loaded options; returns its result, err filled. */
static int open_device(const struct config *c, char *err, size_t errlen)
{
	const struct config_device *cd = &c->devices[0];
	const struct mbx_transport_ops *ops = transport_find(cd->transport);
	struct mbx_transport_config tc = {.device_name = cd->name,
					  .config_file = c->path,
					  .options = cd->options,
					  .n_options = cd->n_options,
					  .line = cd->line};
	void *priv = calloc(1, ops->priv_size);
	int rc;

	ck_assert_ptr_nonnull(priv);
	rc = ops->open(priv, &tc, err, errlen);
	if (rc == 0)
		ops->close(priv);
	free(priv);
	return rc;
}

/* A bad option set and the message both check and open must give. */
struct bad_case {
	const char *transport;
	const char *options[4];
	int line;            /* the line the message names */
	const char *message; /* after "file:line: " */
};

static const struct bad_case bad[] = {
    {"sim", {"model: toaster"}, 6, "model: \"toaster\" is not memdev or switch"},
    {"sim",
     {"model: switch", "tunnel_port: 9"},
     7,
     "tunnel_port: \"9\" is not a number from 1 to 3"},
    {"sim", {"model: memdev", "ports: 4"}, 7, "ports: only applies to model switch"},
    {"sim", {"model: switch", "fw_slots: 3"}, 7, "fw_slots: only applies to model memdev"},
    {"sim", {"payload_max: 3000"}, 6, "payload_max: 3000 is not a power of two"},
    {"sim",
     {"fault: sometimes"},
     6,
     "fault: \"sometimes\" is not none, busy, timeout, hang or rc:N (N up to 0xffff)"},
    {"sim",
     {"fault: rc:0x10000"},
     6,
     "fault: \"rc:0x10000\" is not none, busy, timeout, hang or rc:N (N up to 0xffff)"},
    {"sim", {"hang_ms: -1"}, 6, "hang_ms: \"-1\" is not a number from 0 to 3600000"},
    {"chardev",
     {"sysfs_root: /sys"},
     3,
     "device d0: chardev needs exactly one of path: or serial:"},
    {"chardev",
     {"path: /dev/cxl/mem0", "serial: 1"},
     3,
     "device d0: chardev needs exactly one of path: or serial:"},
    {"chardev", {"path: dev/cxl/mem0"}, 6, "path: \"dev/cxl/mem0\" is not an absolute device path"},
    {"chardev",
     {"serial: 12ab"},
     6,
     "serial: \"12ab\" is not a number from 0 to 18446744073709551615"},
    {"chardev",
     {"path: /dev/cxl/mem0", "firmware_upload: yes"},
     7,
     "firmware_upload: \"yes\" is not true or false"},
    {"vfio",
     {"serial: 1", "bdf: \"0000:0d:00.0\""},
     3,
     "device d0: the vfio transport needs exactly one of bdf and serial"},
    {"vfio", {"bdf: 0d:00.0"}, 6, "bdf: \"0d:00.0\" is not a PCI address like 0000:0d:00.0"},
    {"vfio",
     {"bdf: \"0000:0d:00.0\"", "vfio_api: iommu"},
     7,
     "vfio_api: \"iommu\" is not auto, group or cdev"},
    {"vfio",
     {"bdf: \"0000:0d:00.0\"", "ready_timeout_ms: 300001"},
     7,
     "ready_timeout_ms: \"300001\" is not a number from 0 to 300000"},
    {"mctp", {"net: 1"}, 3, "device d0: mctp needs eid (the endpoint's EID, 8-254)"},
    {"mctp", {"eid: 255"}, 6, "eid: \"255\" is not a number from 8 to 254"},
    {"mctp",
     {"eid: 9", "interface: an-interface-name-too-long"},
     7,
     "interface: \"an-interface-name-too-long\" is not a link name (1 to 15 characters)"},
};

START_TEST(test_check_refuses_as_open_does)
{
	const struct bad_case *b = &bad[_i];
	struct config *c = load_device(b->transport, b->options);
	char want[512], checked[512] = "", opened[512] = "";

	snprintf(want, sizeof(want), "%s:%d: %s", path, b->line, b->message);
	ck_assert_int_lt(device_check_config(c, checked, sizeof(checked)), 0);
	ck_assert_str_eq(checked, want);
	ck_assert_int_lt(open_device(c, opened, sizeof(opened)), 0);
	ck_assert_str_eq(opened, want);
	config_free(c);
}
END_TEST

/* Options that name a file or a link: free text, checked when the device opens. */
static bool free_text(const char *transport, const char *key)
{
	static const char *const keys[][2] = {
	    {"chardev", "sysfs_root"},
	    {"vfio", "sysfs_root"},
	    {"vfio", "dev_root"},
	    {"mctp", "interface"},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i][0], transport) && !strcmp(keys[i][1], key))
			return true;
	return false;
}

/* The option a device of transport needs besides key, so that key alone is judged; or NULL. */
static const char *base_option(const char *transport, const char *key)
{
	if (!strcmp(transport, "chardev") && strcmp(key, "path") && strcmp(key, "serial"))
		return "path: /dev/cxl/mem0";
	if (!strcmp(transport, "vfio") && strcmp(key, "bdf") && strcmp(key, "serial"))
		return "bdf: \"0000:0d:00.0\"";
	if (!strcmp(transport, "mctp") && strcmp(key, "eid"))
		return "eid: 9";
	if (!strcmp(transport, "sim") && (!strcmp(key, "ports") || !strcmp(key, "tunnel_port")))
		return "model: switch";
	return NULL;
}

/* Every option of every transport, given a nonsense value, is refused by check naming it. */
START_TEST(test_every_option_is_checked)
{
	size_t n = 0;

	for (size_t t = 0; transport_registry[t]; t++) {
		const struct mbx_transport_ops *ops = transport_registry[t];

		ck_assert_msg(ops->check, "transport %s has no check()", ops->name);
		for (size_t k = 0; ops->options[k]; k++) {
			const char *key = ops->options[k], *opts[3] = {NULL};
			char line[96], want[160], err[512] = "";
			struct config *c;
			size_t m = 0;

			if (free_text(ops->name, key))
				continue;
			if (base_option(ops->name, key))
				opts[m++] = base_option(ops->name, key);
			snprintf(line, sizeof(line), "%s: \"#bogus\"", key);
			opts[m++] = line;
			c = load_device(ops->name, opts);
			/* The options start on line 6; the bogus one is the last. */
			snprintf(want, sizeof(want), "%s:%zu: %s: ", path, 5 + m, key);
			ck_assert_msg(device_check_config(c, err, sizeof(err)) < 0,
				      "%s: %s: \"#bogus\" passed check", ops->name, key);
			ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s: %s: got \"%s\"",
				      ops->name, key, err);
			config_free(c);
			n++;
		}
	}
	ck_assert_uint_ge(n, 20);
}
END_TEST

/* Good options pass check without any device present. */
START_TEST(test_good_options_pass_without_devices)
{
	static const char *const sets[][4] = {
	    {"sim", "model: switch", "ports: 8", "tunnel_port: 7"},
	    {"sim", "model: memdev", "fw_slots: 4", "fault: rc:0x1"},
	    {"chardev", "serial: 0x1234", "firmware_upload: true", NULL},
	    {"vfio", "serial: 5", "vfio_api: cdev", NULL},
	    {"mctp", "eid: 8", "interface: mctpusb0", "net: 3"},
	};

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const char *opts[4] = {sets[i][1], sets[i][2], sets[i][3], NULL};
		struct config *c = load_device(sets[i][0], opts);
		char err[512] = "";

		ck_assert_msg(device_check_config(c, err, sizeof(err)) == 0, "%s: %s", sets[i][0],
			      err);
		config_free(c);
	}
}
END_TEST

/* A message about a key the config did not give a line for still names the file, not ":0:". */
START_TEST(test_error_without_a_line)
{
	struct mbx_transport_config tc = {.device_name = "d0", .config_file = "mbxd.yaml"};
	char err[128];

	ck_assert_int_eq(transport_option_error(&tc, "eid", err, sizeof(err), "missing"), -EINVAL);
	ck_assert_str_eq(err, "mbxd.yaml: eid: missing");
	ck_assert_int_eq(transport_option_error(&tc, NULL, err, sizeof(err), "needs %s", "eid"),
			 -EINVAL);
	ck_assert_str_eq(err, "mbxd.yaml: device d0: needs eid");
}
END_TEST

static Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("check");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_check_refuses_as_open_does, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_every_option_is_checked);
	tcase_add_test(tc, test_good_options_pass_without_devices);
	tcase_add_test(tc, test_error_without_a_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(registry_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
