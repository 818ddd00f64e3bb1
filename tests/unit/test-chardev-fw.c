/*
 * Transfer FW through the kernel's firmware upload class (chardev-fw.c),
 * on a fake class folder of regular files: what is written to `loading`,
 * `data` and `cancel`, how parts are ordered, the slot check, progress and
 * the final code read from `status`, `remaining_size` and `error`. The real
 * kernel's class is exercised in tests/qemu/ (qemu-chardev-routes).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chardev-fw.h"

static char root[64];
static char sysdir[128];
static int slot_calls;
static struct chardev_fw_slots device_slots = {.n = 2, .active = 1};

/* Writes text to the fake class folder's attribute. */
static void put(const char *attr, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/firmware/mem1/%s", sysdir, attr);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Reads an attribute back; n is set to its length. */
static const char *get(const char *attr, size_t *n)
{
	static char buf[4096];
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/firmware/mem1/%s", sysdir, attr);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	*n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[*n] = '\0';
	fclose(f);
	return buf;
}

/* A memdev sysfs folder with an idle upload class under it. */
static void fake_class(void)
{
	char path[PATH_MAX];

	snprintf(root, sizeof(root), "/tmp/test-chardev-fw-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(sysdir, sizeof(sysdir), "%s/250:1", root); /* as /sys/dev/char/MAJ:MIN */
	ck_assert_int_eq(mkdir(sysdir, 0755), 0);
	snprintf(path, sizeof(path), "%s/firmware", sysdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/firmware/mem1", sysdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	put("loading", "");
	put("data", "");
	put("status", "idle\n");
	put("remaining_size", "0\n");
	put("error", "");
	put("cancel", "");
}

static void rm_fake_class(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	ck_assert_int_eq(system(cmd), 0);
}

/* The device's Get FW Info, as the chardev would read it. */
static int slots(void *ctx, struct chardev_fw_slots *out, char *err, size_t errlen)
{
	(void)ctx;
	slot_calls++;
	if (device_slots.n == 0xff) {
		snprintf(err, errlen, "Get FW Info failed");
		return -EIO;
	}
	*out = device_slots;
	return 0;
}

/* An upload route opened on the fake class, enabled. */
static void with_class(struct chardev_fw *fw)
{
	fw->enabled = true;
	chardev_fw_reset(fw, "/dev/cxl/mem1");
	chardev_fw_open(fw, sysdir);
	ck_assert_int_eq(fw->open_err, 0);
	slot_calls = 0;
	device_slots = (struct chardev_fw_slots){.n = 2, .active = 1};
}

/* Sends Transfer FW with this action, slot, offset (128-byte units) and data. */
static int transfer(struct chardev_fw *fw, struct mbx_transport_cmd *cmd, uint8_t action,
		    uint8_t slot, uint32_t offset, const uint8_t *data, size_t len)
{
	static uint8_t in[CHARDEV_FW_HEADER + 4096];

	ck_assert_uint_le(len, 4096);
	memset(in, 0, CHARDEV_FW_HEADER);
	in[0] = action;
	in[1] = slot;
	in[4] = (uint8_t)offset;
	in[5] = (uint8_t)(offset >> 8);
	in[6] = (uint8_t)(offset >> 16);
	in[7] = (uint8_t)(offset >> 24);
	if (len)
		memcpy(in + CHARDEV_FW_HEADER, data, len);
	memset(cmd, 0, sizeof(*cmd));
	cmd->opcode = CHARDEV_FW_OP_TRANSFER;
	cmd->in = in;
	cmd->in_len = CHARDEV_FW_HEADER + len;
	return chardev_fw_transfer(fw, slots, NULL, cmd);
}

/* Polls 0002h; returns the first output byte (percent << 1 | running). */
static uint8_t poll_status(struct chardev_fw *fw, uint16_t *rc)
{
	struct mbx_transport_cmd cmd = {.opcode = 0x0002};
	uint8_t out[8];

	cmd.out = out;
	cmd.out_cap = sizeof(out);
	ck_assert_int_eq(chardev_fw_bg_status(fw, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.out_len, 8);
	ck_assert_uint_eq(out[2] | out[3] << 8, 0x0201);
	*rc = (uint16_t)(out[4] | out[5] << 8);
	return out[0];
}

static uint8_t image[3000];

static void fill_image(void)
{
	for (size_t i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7 + 3);
}

/* A Full Transfer hands the whole image to the kernel and is followed to its end. */
START_TEST(test_full_transfer)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;
	const char *data;
	uint16_t rc;
	size_t n;

	fake_class();
	fill_image();
	with_class(&fw);
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 300), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x01); /* background started */
	ck_assert_msg(strstr(cmd.error, "activates slot 2 for the next cold reset"), "%s",
		      cmd.error);
	ck_assert_int_eq(slot_calls, 1);
	ck_assert_str_eq(get("loading", &n), "0"); /* "1", the data, then "0" */
	data = get("data", &n);
	ck_assert_uint_eq(n, 300);
	ck_assert_mem_eq(data, image, 300);
	ck_assert_int_eq(fw.state, CHARDEV_FW_RUNNING);

	/* While it runs: progress from remaining_size, and no second transfer. */
	put("status", "transferring\n");
	put("remaining_size", "100\n");
	ck_assert_uint_eq(poll_status(&fw, &rc), (200 * 99 / 300) << 1 | 1);
	put("status", "programming\n");
	ck_assert_uint_eq(poll_status(&fw, &rc), 99 << 1 | 1);
	ck_assert(chardev_fw_kernel_busy(&fw));
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 10), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x08); /* FW transfer in progress */

	put("status", "idle\n");
	ck_assert(!chardev_fw_kernel_busy(&fw)); /* done, even before the poll says so */
	ck_assert_uint_eq(poll_status(&fw, &rc), 100 << 1);
	ck_assert_uint_eq(rc, 0);
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	ck_assert(!chardev_fw_kernel_busy(&fw));
	chardev_fw_close(&fw);
	rm_fake_class();
}
END_TEST

/* Initiate, Continue and End land at their offsets; End starts the kernel. */
START_TEST(test_parts_in_order)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;
	const char *data;
	size_t n;

	fake_class();
	fill_image();
	with_class(&fw);
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 0, image, 256), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	ck_assert_str_eq(get("loading", &n), "1");
	ck_assert_int_eq(transfer(&fw, &cmd, 2, 0, 2, image + 256, 256), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	/* Out of order: a part that does not start where the last one ended. */
	ck_assert_int_eq(transfer(&fw, &cmd, 2, 0, 2, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x09);
	ck_assert_msg(strstr(cmd.error, "starts at byte 512"), "%s", cmd.error);
	/* A new Initiate while parts are held. */
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x08);
	ck_assert_int_eq(slot_calls, 0);
	ck_assert_int_eq(transfer(&fw, &cmd, 3, 2, 4, image + 512, 100), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x01);
	ck_assert_int_eq(slot_calls, 1);
	ck_assert_str_eq(get("loading", &n), "0");
	data = get("data", &n);
	ck_assert_uint_eq(n, 612);
	ck_assert_mem_eq(data, image, 612);
	ck_assert_uint_eq(fw.size, 612);
	chardev_fw_close(&fw);
	rm_fake_class();
}
END_TEST

/* Parts without an Initiate, bad actions and short inputs get the device's codes. */
START_TEST(test_bad_sequences)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;
	size_t n;

	fake_class();
	fill_image();
	with_class(&fw);
	ck_assert_int_eq(transfer(&fw, &cmd, 2, 0, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02);
	ck_assert_int_eq(transfer(&fw, &cmd, 3, 2, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02);
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 1, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02); /* Initiate not at 0 */
	ck_assert_int_eq(transfer(&fw, &cmd, 7, 0, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02);
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02); /* no image */
	memset(&cmd, 0, sizeof(cmd));
	cmd.in = image;
	cmd.in_len = 64;
	ck_assert_int_eq(chardev_fw_transfer(&fw, slots, NULL, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x16);
	/* Nothing reached the kernel. */
	ck_assert_str_eq(get("loading", &n), "");
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	/* Parts that would take the image past the kernel's 32-bit size: refused, dropped. */
	fw.state = CHARDEV_FW_RECEIVING;
	fw.received = 0xffffff80u;
	clock_gettime(CLOCK_MONOTONIC, &fw.last_part);
	ck_assert_int_eq(transfer(&fw, &cmd, 2, 0, 0x1ffffff, image, 256), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x02);
	ck_assert_msg(strstr(cmd.error, "4 GiB"), "%s", cmd.error);
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	chardev_fw_close(&fw);
	rm_fake_class();
}
END_TEST

/* Only the slot the kernel will write is accepted; others are Invalid Slot, naming it. */
START_TEST(test_slot_is_the_kernels)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;
	size_t n;

	fake_class();
	fill_image();
	with_class(&fw);
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 1, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0b);
	ck_assert_str_eq(cmd.error, "the kernel's firmware upload writes slot 2 (the one after "
				    "active slot 1 of 2), not slot 1");
	ck_assert_str_eq(get("loading", &n), "");
	/* Active slot 2 of 2: the kernel wraps to slot 1. */
	device_slots.active = 2;
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0b);
	ck_assert_msg(strstr(cmd.error, "writes slot 1"), "%s", cmd.error);
	/* An End with a bad slot drops the held parts, as a device would. */
	device_slots.active = 1;
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 0, image, 128), MBX_XPORT_OK);
	ck_assert_int_eq(transfer(&fw, &cmd, 3, 3, 1, image, 10), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x0b);
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	ck_assert_str_eq(get("loading", &n), "-1");
	/* A device whose Get FW Info fails: an I/O error naming it, nothing started. */
	device_slots.n = 0xff;
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_IO);
	ck_assert_str_eq(cmd.error, "Get FW Info failed");
	/* A nonsense answer: active slot past the count. */
	device_slots = (struct chardev_fw_slots){.n = 2, .active = 4};
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_BAD_RESPONSE);
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	chardev_fw_close(&fw);
	rm_fake_class();
}
END_TEST

/* Abort: cancel while the kernel runs (the end says Aborted); drop held parts otherwise. */
START_TEST(test_abort)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;
	uint16_t rc;
	size_t n;

	fake_class();
	fill_image();
	with_class(&fw);
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 0, image, 128), MBX_XPORT_OK);
	ck_assert_int_eq(transfer(&fw, &cmd, 4, 0, 0, NULL, 0), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	ck_assert_str_eq(get("loading", &n), "-1");
	ck_assert_int_eq(fw.state, CHARDEV_FW_IDLE);
	/* Parts held when mbxd closes the device are dropped too. */
	ck_assert_int_eq(transfer(&fw, &cmd, 1, 0, 0, image, 128), MBX_XPORT_OK);
	put("loading", "1");
	chardev_fw_close(&fw);
	ck_assert_str_eq(get("loading", &n), "-1");
	chardev_fw_open(&fw, sysdir);

	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0x01);
	memset(&cmd, 0, sizeof(cmd));
	ck_assert_int_eq(chardev_fw_abort(&fw, &cmd), MBX_XPORT_OK);
	ck_assert_uint_eq(cmd.cxl_rc, 0);
	ck_assert_str_eq(get("cancel", &n), "1");
	put("status", "idle\n");
	put("error", "transferring:user-abort\n");
	ck_assert_uint_eq(poll_status(&fw, &rc), 100 << 1);
	ck_assert_uint_eq(rc, 0x12); /* Aborted */
	chardev_fw_close(&fw);
	rm_fake_class();
}
END_TEST

/* The kernel's upload errors as CXL return codes. */
START_TEST(test_error_codes)
{
	ck_assert_uint_eq(chardev_fw_error_rc("none"), 0x00);
	ck_assert_uint_eq(chardev_fw_error_rc("hw-error"), 0x04);
	ck_assert_uint_eq(chardev_fw_error_rc("device-busy"), 0x06);
	ck_assert_uint_eq(chardev_fw_error_rc("firmware-invalid"), 0x0a);
	ck_assert_uint_eq(chardev_fw_error_rc("invalid-file-size"), 0x16);
	ck_assert_uint_eq(chardev_fw_error_rc("something-new"), 0x04);
}
END_TEST

/* Off by default, and a kernel without the class: refused, naming which. */
START_TEST(test_missing_route_is_named)
{
	struct chardev_fw fw;
	struct mbx_transport_cmd cmd;

	fake_class();
	fill_image();
	memset(&fw, 0, sizeof(fw));
	chardev_fw_reset(&fw, "/dev/cxl/mem1");
	chardev_fw_open(&fw, sysdir);
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, "is off for /dev/cxl/mem1: set \"firmware_upload: true\""),
		      "%s", cmd.error);
	chardev_fw_close(&fw);

	fw.enabled = true;
	chardev_fw_reset(&fw, "/dev/cxl/mem1");
	chardev_fw_open(&fw, root); /* a memdev folder without firmware/ (Linux 6.1) */
	ck_assert_int_eq(fw.open_err, ENOENT);
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, "not offered for /dev/cxl/mem1"), "%s", cmd.error);

	chardev_fw_reset(&fw, "/dev/cxl/mem1");
	chardev_fw_open(&fw, "");
	ck_assert_int_eq(transfer(&fw, &cmd, 0, 2, 0, image, 128), MBX_XPORT_UNSUPPORTED);
	ck_assert_msg(strstr(cmd.error, "has no sysfs folder"), "%s", cmd.error);
	rm_fake_class();
}
END_TEST

static Suite *chardev_fw_suite(void)
{
	Suite *s = suite_create("chardev-fw");
	TCase *tc = tcase_create("chardev-fw");

	tcase_add_test(tc, test_full_transfer);
	tcase_add_test(tc, test_parts_in_order);
	tcase_add_test(tc, test_bad_sequences);
	tcase_add_test(tc, test_slot_is_the_kernels);
	tcase_add_test(tc, test_abort);
	tcase_add_test(tc, test_error_codes);
	tcase_add_test(tc, test_missing_route_is_named);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chardev_fw_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
