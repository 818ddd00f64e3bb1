/*
 * The chardev transport's pure parts: the kernel's named-command table, the
 * route of each opcode, the naming of the kernel's refusals, size checks,
 * finding a memdev by serial in a fake sysfs tree, and the sysfs routes of
 * Sanitize and Secure Erase (with Background Operation Status answered from
 * security/state) in that fake tree. The ioctls
 * themselves are tested against the real kernel in tests/qemu/.
 */
#include <check.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../../transports/chardev.c"

static char root[64];

/* Writes text to root/rel, creating the folders on the way. */
static void fake_file(const char *rel, const char *text)
{
	char path[PATH_MAX], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void fake_sysfs(void)
{
	snprintf(root, sizeof(root), "/tmp/test-chardev-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	fake_file("bus/cxl/devices/mem0/serial", "0x2222\n");
	fake_file("bus/cxl/devices/mem1/serial", "0x1111\n");
	fake_file("bus/cxl/devices/mem1/payload_max", "2048\n");
	fake_file("bus/cxl/devices/port1/serial", "0x1111\n"); /* not a memdev */
	fake_file("bus/cxl/devices/memx/serial", "0x1111\n");  /* not a memdev name */
	fake_file("bus/cxl/devices/mem7/serial", "garbage\n");
}

static void rm_fake_sysfs(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* A device state as if the kernel had reported exactly these ids. */
static void with_ids(struct chardev *c, const uint32_t *ids, size_t n)
{
	chardev_reset(c);
	snprintf(c->path, sizeof(c->path), "/dev/cxl/mem0");
	c->info.payload_max = 2048;
	for (size_t i = 0; i < n; i++) {
		struct cxl_command_info ci = {.id = ids[i], .size_in = CHARDEV_VARIABLE};

		if (ids[i] == CXL_MEM_COMMAND_ID_GET_LSA)
			ci.size_in = 8;
		chardev_note_command(c, &ci);
	}
}

START_TEST(test_named_table_is_one_to_one)
{
	for (size_t i = 0; i < CHARDEV_N_NAMED; i++) {
		ck_assert_uint_lt(chardev_named[i].id, CHARDEV_IDS);
		ck_assert_uint_ne(chardev_named[i].id, CXL_MEM_COMMAND_ID_RAW);
		ck_assert_uint_ne(chardev_named[i].id, CXL_MEM_COMMAND_ID_INVALID);
		for (size_t j = i + 1; j < CHARDEV_N_NAMED; j++) {
			ck_assert_uint_ne(chardev_named[i].id, chardev_named[j].id);
			ck_assert_uint_ne(chardev_named[i].opcode, chardev_named[j].opcode);
		}
	}
	/* Facts from the kernel header's enum order and its mbox.c table. */
	ck_assert_uint_eq(CXL_MEM_COMMAND_ID_IDENTIFY, 1);
	ck_assert_uint_eq(CXL_MEM_COMMAND_ID_RAW, 2);
	ck_assert_uint_eq(CXL_MEM_COMMAND_ID_GET_LOG, 8);
	ck_assert_uint_eq(CXL_MEM_COMMAND_ID_SET_LSA, 10);
}
END_TEST

START_TEST(test_route_named_when_the_kernel_has_it)
{
	static const uint32_t ids[] = {0, CXL_MEM_COMMAND_ID_IDENTIFY, 0,
				       CXL_MEM_COMMAND_ID_GET_LOG, CXL_MEM_COMMAND_ID_GET_LSA};
	struct chardev c;
	struct chardev_route r;

	with_ids(&c, ids, sizeof(ids) / sizeof(ids[0]));
	r = chardev_route_for(&c, 0x4000);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_IDENTIFY);
	r = chardev_route_for(&c, 0x0401);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_GET_LOG);
	r = chardev_route_for(&c, 0x4102);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_GET_LSA);
	ck_assert_uint_eq(r.size_in, 8);
	/* Generic Identify and Get Timestamp have no named id: RAW. */
	r = chardev_route_for(&c, 0x0001);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_RAW);
	r = chardev_route_for(&c, 0x0300);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_RAW);
	/* A named command this kernel did not report (id 0 slots) goes RAW too. */
	r = chardev_route_for(&c, 0x4200);
	ck_assert_uint_eq(r.id, CXL_MEM_COMMAND_ID_RAW);
	ck_assert(!c.kcmd[CXL_MEM_COMMAND_ID_INVALID].present);
}
END_TEST

START_TEST(test_query_ignores_ids_past_the_table)
{
	struct chardev c;
	struct cxl_command_info ci = {.id = CHARDEV_IDS + 5};

	with_ids(&c, NULL, 0);
	chardev_note_command(&c, &ci);
	for (size_t i = 0; i < CHARDEV_IDS; i++)
		ck_assert(!c.kcmd[i].present);
}
END_TEST

START_TEST(test_refusals_are_named)
{
	static const uint32_t ids[] = {CXL_MEM_COMMAND_ID_SET_LSA};
	struct chardev c;
	struct chardev_route raw, named;
	char msg[160];

	with_ids(&c, ids, 1);
	raw = chardev_route_for(&c, 0x0300);
	named = chardev_route_for(&c, 0x4103);
	ck_assert_int_eq(chardev_errno_rc(&c, &raw, 0x0300, EPERM, msg, sizeof(msg)),
			 MBX_XPORT_RAW_DISABLED);
	ck_assert_msg(strstr(msg, "raw commands disabled in this kernel "
				  "(CONFIG_CXL_MEM_RAW_COMMANDS / lockdown)") == msg,
		      "%s", msg);
	ck_assert_int_eq(chardev_errno_rc(&c, &named, 0x4103, EBUSY, msg, sizeof(msg)),
			 MBX_XPORT_KERNEL_OWNED);
	ck_assert_msg(strstr(msg, "command owned by the kernel driver") == msg, "%s", msg);
	ck_assert_msg(strstr(msg, "Set LSA"), "%s", msg);
	ck_assert_int_eq(chardev_errno_rc(&c, &named, 0x4103, EPERM, msg, sizeof(msg)),
			 MBX_XPORT_KERNEL_OWNED);
	ck_assert_int_eq(chardev_errno_rc(&c, &raw, 0x4200, ENOTTY, msg, sizeof(msg)),
			 MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(msg, "not supported by this device") == msg, "%s", msg);
	ck_assert_int_eq(chardev_errno_rc(&c, &named, 0x4103, ETIMEDOUT, msg, sizeof(msg)),
			 MBX_XPORT_TIMEOUT);
	ck_assert_int_eq(chardev_errno_rc(&c, &named, 0x4103, ENOMEM, msg, sizeof(msg)),
			 MBX_XPORT_TOO_BIG);
	ck_assert_int_eq(chardev_errno_rc(&c, &named, 0x4103, EIO, msg, sizeof(msg)), MBX_XPORT_IO);
	ck_assert_msg(strstr(msg, "/dev/cxl/mem0"), "%s", msg);
}
END_TEST

START_TEST(test_sizes_checked_before_the_ioctl)
{
	static const uint32_t ids[] = {CXL_MEM_COMMAND_ID_GET_LSA};
	uint8_t in[4096] = {0};
	struct chardev c;
	struct mbx_transport_cmd cmd = {.opcode = 0x4102, .in = in, .in_len = 4};
	struct chardev_route r;

	with_ids(&c, ids, 1);
	r = chardev_route_for(&c, 0x4102);
	ck_assert_int_eq(chardev_check_sizes(&c, &r, &cmd), MBX_XPORT_TOO_BIG);
	ck_assert_msg(strstr(cmd.error, "exactly 8 input bytes, not 4"), "%s", cmd.error);
	cmd.in_len = 8;
	ck_assert_int_eq(chardev_check_sizes(&c, &r, &cmd), MBX_XPORT_OK);
	cmd.opcode = 0x0300;
	cmd.in_len = 2049;
	r = chardev_route_for(&c, 0x0300);
	ck_assert_int_eq(chardev_check_sizes(&c, &r, &cmd), MBX_XPORT_TOO_BIG);
	ck_assert_msg(strstr(cmd.error, "2048-byte mailbox"), "%s", cmd.error);
}
END_TEST

/* A real ioctl on a device that is no CXL memdev: the kernel's ENOTTY, named. */
START_TEST(test_submit_reports_the_kernels_answer)
{
	struct chardev c;
	uint8_t out[64];
	struct mbx_transport_cmd cmd = {.opcode = 0x0300, .out = out, .out_cap = sizeof(out)};

	with_ids(&c, NULL, 0);
	c.fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(c.fd, 0);
	ck_assert_int_eq(chardev_submit(&c, &cmd), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, "not supported by this device"), "%s", cmd.error);
	ck_assert_uint_eq(cmd.out_len, 0);
	chardev_close(&c);
	ck_assert_int_eq(c.fd, -1);
}
END_TEST

START_TEST(test_find_by_serial)
{
	char name[64], err[256] = "";

	fake_sysfs();
	ck_assert_int_eq(chardev_find_serial(root, 0x1111, name, sizeof(name), err, sizeof(err)),
			 0);
	ck_assert_str_eq(name, "mem1");
	ck_assert_int_eq(chardev_find_serial(root, 0x2222, name, sizeof(name), err, sizeof(err)),
			 0);
	ck_assert_str_eq(name, "mem0");
	ck_assert_int_eq(chardev_find_serial(root, 0x3333, name, sizeof(name), err, sizeof(err)),
			 -ENODEV);
	ck_assert_msg(strstr(err, "no memory device with serial 0x3333 (3 seen)"), "%s", err);
	fake_file("bus/cxl/devices/mem9/serial", "4369\n"); /* 0x1111 in decimal */
	ck_assert_int_eq(chardev_find_serial(root, 0x1111, name, sizeof(name), err, sizeof(err)),
			 -EEXIST);
	ck_assert_msg(strstr(err, "2 memory devices report serial 0x1111"), "%s", err);
	rm_fake_sysfs();
	ck_assert_int_lt(chardev_find_serial(root, 0x1111, name, sizeof(name), err, sizeof(err)),
			 0);
	ck_assert_msg(strstr(err, "cxl_mem driver loaded"), "%s", err);
}
END_TEST

START_TEST(test_memdev_names)
{
	ck_assert(chardev_is_memdev_name("mem0"));
	ck_assert(chardev_is_memdev_name("mem12"));
	ck_assert(!chardev_is_memdev_name("mem"));
	ck_assert(!chardev_is_memdev_name("memx"));
	ck_assert(!chardev_is_memdev_name("mem1.0"));
	ck_assert(!chardev_is_memdev_name("port1"));
}
END_TEST

/* Opens with the given options; returns open's result, the message in err. */
static int open_with(const struct mbx_transport_option *opts, size_t n, char *err, size_t len)
{
	struct mbx_transport_config cfg = {
	    .device_name = "mem0", .config_file = "mbxd.yaml", .options = opts, .n_options = n};
	struct chardev c;

	err[0] = '\0';
	return chardev_transport_ops.open(&c, &cfg, err, len);
}

START_TEST(test_open_errors_name_the_cause)
{
	char err[256];
	struct mbx_transport_option both[] = {{"path", "/dev/cxl/mem0", 3}, {"serial", "1", 4}};
	struct mbx_transport_option rel[] = {{"path", "dev/cxl/mem0", 7}};
	struct mbx_transport_option bad_serial[] = {{"serial", "0xzz", 5}};
	struct mbx_transport_option file[] = {{"path", "/etc/hostname", 2}};
	struct mbx_transport_option null_dev[] = {{"path", "/dev/null", 2}};
	struct mbx_transport_option missing[] = {{"serial", "0x4444", 9}, {"sysfs_root", "", 10}};

	ck_assert_int_eq(open_with(NULL, 0, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "exactly one of path: or serial:"), "%s", err);
	ck_assert_int_eq(open_with(both, 2, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(open_with(rel, 1, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "mbxd.yaml:7: path:"), "%s", err);
	ck_assert_int_eq(open_with(bad_serial, 1, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "mbxd.yaml:5: serial"), "%s", err);
	ck_assert_int_lt(open_with(file, 1, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "/etc/hostname"), "%s", err);
	/* A character device that is no memdev: the query ioctl says so. */
	ck_assert_int_eq(open_with(null_dev, 1, err, sizeof(err)), -ENOTTY);
	ck_assert_msg(strstr(err, "/dev/null: CXL_MEM_QUERY_COMMANDS"), "%s", err);
	fake_sysfs();
	missing[1].value = root;
	ck_assert_int_eq(open_with(missing, 2, err, sizeof(err)), -ENODEV);
	ck_assert_msg(strstr(err, "no memory device with serial 0x4444"), "%s", err);
	rm_fake_sysfs();
}
END_TEST

START_TEST(test_fw_revision_is_printable_and_trimmed)
{
	uint8_t id[CHARDEV_IDENTIFY_MEMDEV_SIZE] = "BWFW VERSION 00";
	char fw[CHARDEV_FW_REVISION_SIZE + 1];

	chardev_fw_revision(id, fw, sizeof(fw));
	ck_assert_str_eq(fw, "BWFW VERSION 00");
	memcpy(id, "1.2\x01  ", 6);
	memset(id + 6, ' ', 10);
	chardev_fw_revision(id, fw, sizeof(fw));
	ck_assert_str_eq(fw, "1.2?");
	memset(id, 'A', 16); /* all 16 bytes used, no NUL */
	chardev_fw_revision(id, fw, sizeof(fw));
	ck_assert_uint_eq(strlen(fw), 16);
}
END_TEST

START_TEST(test_ops_declare_the_ioctls)
{
	const struct mbx_transport_ops *o = &chardev_transport_ops;

	ck_assert_str_eq(o->name, "chardev");
	ck_assert_uint_eq(o->n_ioctls, 2);
	ck_assert_uint_eq(o->ioctls[0], CXL_MEM_QUERY_COMMANDS);
	ck_assert_uint_eq(o->ioctls[1], CXL_MEM_SEND_COMMAND);
	ck_assert_ptr_eq(transport_find("chardev"), o);
}
END_TEST

/* Reads a fake sysfs file back. */
static const char *fake_read(const char *rel)
{
	static char buf[64];
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A device state whose sysfs folder is the fake mem1, with its routes opened. */
static void with_sysfs(struct chardev *c)
{
	with_ids(c, NULL, 0);
	snprintf(c->sysdir, sizeof(c->sysdir), "%s/bus/cxl/devices/mem1", root);
	chardev_open_sysfs(c);
}

/* Runs opcode with no input; returns submit's answer. */
static int run(struct chardev *c, uint16_t opcode, struct mbx_transport_cmd *cmd, uint8_t *out,
	       size_t cap)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opcode = opcode;
	cmd->out = out;
	cmd->out_cap = cap;
	return chardev_submit(c, cmd);
}

/*
 * Sanitize goes to security/sanitize and starts in the background; 0002h is
 * then answered from security/state until the kernel leaves "sanitize".
 */
START_TEST(test_sanitize_through_sysfs)
{
	struct chardev c;
	struct mbx_transport_cmd cmd;
	uint8_t out[64], in[1] = {0};

	fake_sysfs();
	fake_file("bus/cxl/devices/mem1/security/sanitize", "");
	fake_file("bus/cxl/devices/mem1/security/erase", "");
	fake_file("bus/cxl/devices/mem1/security/state", "disabled\n");
	with_sysfs(&c);
	ck_assert(c.security_dir);
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, CHARDEV_RC_BACKGROUND);
	ck_assert_uint_eq(cmd.out_len, 0);
	ck_assert_str_eq(fake_read("bus/cxl/devices/mem1/security/sanitize"), "1\n");
	ck_assert_uint_eq(c.bg_opcode, 0x4400);

	fake_file("bus/cxl/devices/mem1/security/state", "sanitize\n");
	ck_assert_int_eq(run(&c, 0x0002, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	ck_assert_uint_eq(cmd.out_len, CHARDEV_BG_STATUS_SIZE);
	ck_assert_uint_eq(out[0] & 1, 1); /* running */
	ck_assert_uint_lt(out[0] >> 1, 100);
	ck_assert_uint_eq(out[2] | out[3] << 8, 0x4400);
	/* A second one while it runs: busy, as the device would say; nothing written. */
	fake_file("bus/cxl/devices/mem1/security/sanitize", "");
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, CHARDEV_RC_BUSY);
	ck_assert_str_eq(fake_read("bus/cxl/devices/mem1/security/sanitize"), "");

	fake_file("bus/cxl/devices/mem1/security/state", "disabled\n");
	ck_assert_int_eq(run(&c, 0x0002, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(out[0], 100 << 1); /* done, 100% */
	ck_assert_uint_eq(out[2] | out[3] << 8, 0x4400);
	ck_assert_uint_eq(out[4] | out[5] << 8, 0);
	ck_assert_uint_eq(c.bg_opcode, 0);
	/* Nothing routed runs now: 0002h goes to the kernel again (here no fd: an I/O error). */
	ck_assert_int_eq(run(&c, 0x0002, &cmd, out, sizeof(out)), MBX_XPORT_IO);
	ck_assert_msg(strstr(cmd.error, "CXL_MEM_SEND_COMMAND RAW (0x0002)"), "%s", cmd.error);

	/* Secure Erase is synchronous: success when the kernel took the write. */
	ck_assert_int_eq(run(&c, 0x4401, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	ck_assert_str_eq(fake_read("bus/cxl/devices/mem1/security/erase"), "1\n");
	ck_assert_uint_eq(c.bg_opcode, 0);

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = 0x4400;
	cmd.in = in;
	cmd.in_len = 1;
	ck_assert_int_eq(chardev_submit(&c, &cmd), MBX_XPORT_TOO_BIG);
	ck_assert_msg(strstr(cmd.error, "takes no input"), "%s", cmd.error);
	/* A state that cannot be read while following: the poll fails with the cause. */
	c.bg_opcode = 0x4400;
	close(c.state_fd);
	c.state_fd = -1;
	ck_assert_int_eq(run(&c, 0x0002, &cmd, out, sizeof(out)), MBX_XPORT_IO);
	ck_assert_msg(strstr(cmd.error, "cannot read security/state"), "%s", cmd.error);
	chardev_close(&c);
	ck_assert_int_eq(c.sysfs_fd[0], -1);
	rm_fake_sysfs();
}
END_TEST

/*
 * While the kernel's firmware upload holds the mailbox, a command for the
 * chardev is answered Busy at once (the ioctl would wait for seconds);
 * 0002h is answered from the upload class; once the class says idle, the
 * chardev is used again.
 */
START_TEST(test_busy_while_the_kernel_uploads)
{
	static const char *const attrs[] = {"loading", "data", "remaining_size", "error", "cancel"};
	struct chardev c;
	struct mbx_transport_cmd cmd;
	uint8_t out[64];
	char rel[128];

	fake_sysfs();
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		snprintf(rel, sizeof(rel), "bus/cxl/devices/mem1/firmware/mem0/%s", attrs[i]);
		fake_file(rel, "");
	}
	fake_file("bus/cxl/devices/mem1/firmware/mem0/status", "transferring\n");
	with_ids(&c, NULL, 0);
	c.fw.enabled = true;
	snprintf(c.sysdir, sizeof(c.sysdir), "%s/bus/cxl/devices/mem1", root);
	chardev_open_sysfs(&c);
	ck_assert_int_eq(c.fw.open_err, 0);
	c.fw.state = CHARDEV_FW_RUNNING; /* as after a Full Transfer handed to the kernel */
	c.fw.size = 100;

	ck_assert_int_eq(run(&c, 0x4000, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, CHARDEV_RC_BUSY);
	ck_assert_msg(strstr(cmd.error, "holds /dev/cxl/mem0's mailbox for its firmware upload"),
		      "%s", cmd.error);
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_UNSUPPORTED);
	ck_assert_int_eq(run(&c, 0x0002, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	ck_assert_uint_eq(out[0] & 1, 1);

	fake_file("bus/cxl/devices/mem1/firmware/mem0/status", "idle\n");
	/* No chardev fd here: reaching the ioctl shows as its I/O error. */
	ck_assert_int_eq(run(&c, 0x4000, &cmd, out, sizeof(out)), MBX_XPORT_IO);
	chardev_close(&c);
	rm_fake_sysfs();
}
END_TEST

/* A route the kernel or the device does not offer is refused naming it. */
START_TEST(test_missing_routes_are_named)
{
	struct chardev c;
	struct mbx_transport_cmd cmd;
	uint8_t out[16];

	fake_sysfs(); /* a 6.1-like memdev: no security/ at all */
	with_sysfs(&c);
	ck_assert(!c.security_dir);
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_UNSUPPORTED);
	ck_assert_str_eq(cmd.error, "sanitize through sysfs is not offered by this kernel "
				    "(no security/sanitize)");
	ck_assert_int_eq(run(&c, 0x4401, &cmd, out, sizeof(out)), MBX_XPORT_UNSUPPORTED);
	ck_assert_str_eq(cmd.error, "secure erase through sysfs is not offered by this kernel "
				    "(no security/erase)");
	chardev_close(&c);

	/* security/ without erase: the device's CEL does not list Secure Erase. */
	fake_file("bus/cxl/devices/mem1/security/state", "disabled\n");
	fake_file("bus/cxl/devices/mem1/security/sanitize", "");
	with_sysfs(&c);
	ck_assert_int_eq(run(&c, 0x4401, &cmd, out, sizeof(out)), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error,
			     "secure erase through sysfs is not offered for "
			     "/dev/cxl/mem0 (no security/erase: the kernel shows it only "
			     "when the device's CEL lists Secure Erase)"),
		      "%s", cmd.error);
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_OK);
	chardev_close(&c);

	/* No sysfs folder found at all. */
	with_ids(&c, NULL, 0);
	chardev_open_sysfs(&c);
	ck_assert_int_eq(run(&c, 0x4400, &cmd, out, sizeof(out)), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, "/dev/cxl/mem0 has no sysfs folder"), "%s", cmd.error);
	rm_fake_sysfs();
}
END_TEST

/* What the kernel answers to a write, and a route mbxd could not open, are named. */
START_TEST(test_route_refusals_are_named)
{
	struct chardev c;
	struct mbx_transport_cmd cmd = {.opcode = 0x4400};

	with_ids(&c, NULL, 0);
	ck_assert_int_eq(chardev_sysfs_errno(&c, &chardev_sysfs[0], EBUSY, &cmd),
			 MBX_XPORT_KERNEL_OWNED);
	ck_assert_msg(strstr(cmd.error,
			     CHARDEV_MSG_OWNED ": the kernel refused sanitize with "
					       "EBUSY (/dev/cxl/mem0's security/sanitize)"),
		      "%s", cmd.error);
	ck_assert_int_eq(chardev_sysfs_errno(&c, &chardev_sysfs[0], ETIMEDOUT, &cmd),
			 MBX_XPORT_TIMEOUT);
	ck_assert_int_eq(chardev_sysfs_errno(&c, &chardev_sysfs[1], ENOTTY, &cmd),
			 MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, CHARDEV_MSG_UNSUPPORTED), "%s", cmd.error);
	ck_assert_int_eq(chardev_sysfs_errno(&c, &chardev_sysfs[1], ENXIO, &cmd), MBX_XPORT_IO);
	ck_assert_msg(strstr(cmd.error, "the kernel refused secure erase: "), "%s", cmd.error);
	ck_assert_int_eq(chardev_sysfs_missing(&c, &chardev_sysfs[0], EACCES, &cmd), MBX_XPORT_IO);
	ck_assert_msg(strstr(cmd.error, "could not be opened for writing when mbxd started: "
					"Permission denied"),
		      "%s", cmd.error);
}
END_TEST

/* The estimate moves with time, reads 49% after the half-way time, never 100%. */
START_TEST(test_sanitize_estimate)
{
	struct chardev c;

	with_ids(&c, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &c.bg_start);
	ck_assert_uint_le(chardev_estimate(&c), 1);
	c.bg_start.tv_sec -= CHARDEV_ESTIMATE_HALF_S;
	ck_assert_uint_eq(chardev_estimate(&c), 49);
	c.bg_start.tv_sec -= 100000;
	ck_assert_uint_eq(chardev_estimate(&c), 98);
}
END_TEST

/* describe() tells the policy which kernel-owned opcodes go by a sysfs route. */
START_TEST(test_describe_lists_the_routes)
{
	struct chardev c;
	struct mbx_transport_info info;

	with_ids(&c, NULL, 0);
	chardev_learn(&c);
	chardev_describe(&c, &info);
	ck_assert(info.kernel_owned);
	ck_assert_uint_eq(info.n_routed, 2);
	ck_assert_uint_eq(info.routed[0], 0x4400);
	ck_assert_uint_eq(info.routed[1], 0x4401);
	ck_assert_uint_eq(info.caps, 0);
	/* firmware_upload: true routes Transfer FW too, and keeps CAP_SYS_RAWIO for it. */
	with_ids(&c, NULL, 0);
	c.fw.enabled = true;
	chardev_learn(&c);
	chardev_describe(&c, &info);
	ck_assert_uint_eq(info.n_routed, 3);
	ck_assert_uint_eq(info.routed[2], 0x0201);
	ck_assert_uint_eq(info.caps, 1ull << CAP_SYS_RAWIO);
}
END_TEST

/* firmware_upload takes true or false, and nothing else. */
START_TEST(test_firmware_upload_option)
{
	struct mbx_transport_option opt[] = {{"firmware_upload", "yes", 7}};
	struct mbx_transport_config cfg = {
	    .device_name = "mem0", .config_file = "mbxd.yaml", .options = opt, .n_options = 1};
	char err[160];
	bool on = true;

	ck_assert_int_eq(chardev_option_bool(&cfg, "firmware_upload", &on, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "mbxd.yaml:7: firmware_upload: \"yes\" is not true or false");
	opt[0].value = "true";
	ck_assert_int_eq(chardev_option_bool(&cfg, "firmware_upload", &on, err, sizeof(err)), 0);
	ck_assert(on);
	cfg.n_options = 0;
	ck_assert_int_eq(chardev_option_bool(&cfg, "firmware_upload", &on, err, sizeof(err)), 0);
	ck_assert(!on);
}
END_TEST

static Suite *chardev_suite(void)
{
	Suite *s = suite_create("chardev");
	TCase *tc = tcase_create("chardev");

	tcase_add_test(tc, test_named_table_is_one_to_one);
	tcase_add_test(tc, test_route_named_when_the_kernel_has_it);
	tcase_add_test(tc, test_query_ignores_ids_past_the_table);
	tcase_add_test(tc, test_refusals_are_named);
	tcase_add_test(tc, test_sizes_checked_before_the_ioctl);
	tcase_add_test(tc, test_submit_reports_the_kernels_answer);
	tcase_add_test(tc, test_find_by_serial);
	tcase_add_test(tc, test_memdev_names);
	tcase_add_test(tc, test_open_errors_name_the_cause);
	tcase_add_test(tc, test_fw_revision_is_printable_and_trimmed);
	tcase_add_test(tc, test_ops_declare_the_ioctls);
	tcase_add_test(tc, test_sanitize_through_sysfs);
	tcase_add_test(tc, test_missing_routes_are_named);
	tcase_add_test(tc, test_busy_while_the_kernel_uploads);
	tcase_add_test(tc, test_route_refusals_are_named);
	tcase_add_test(tc, test_sanitize_estimate);
	tcase_add_test(tc, test_describe_lists_the_routes);
	tcase_add_test(tc, test_firmware_upload_option);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chardev_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
