/* Tests of the opcode catalog (policy/catalog.c) and the CEL parser (policy/cel.c). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "policy-internal.h"

/* The table is sorted, unique, named, and its bounds are sane. */
START_TEST(test_catalog_table_shape)
{
	size_t n = catalog_count();

	ck_assert_uint_gt(n, 150);
	ck_assert_ptr_null(catalog_at(n));
	for (size_t i = 0; i < n; i++) {
		const struct catalog_entry *e = catalog_at(i);

		ck_assert_ptr_nonnull(e->name);
		ck_assert_uint_gt(strlen(e->name), 3);
		ck_assert_int_lt(e->cls, MBX_CLASS_VENDOR); /* vendor is never catalogued */
		ck_assert_uint_le(e->min_in, e->max_in);
		if (i)
			ck_assert_uint_lt(catalog_at(i - 1)->opcode, e->opcode);
		ck_assert_ptr_eq(catalog_lookup(e->opcode), e);
	}
}
END_TEST

/* Every command set the brief names is present, command 00h onwards. */
START_TEST(test_catalog_sets_present)
{
	static const uint16_t firsts[] = {0x0001, 0x0100, 0x0200, 0x0300, 0x0400, 0x0500, 0x0600,
					  0x4000, 0x4100, 0x4200, 0x4300, 0x4400, 0x4500, 0x4600,
					  0x4700, 0x4800, 0x5100, 0x5200, 0x5300, 0x5400, 0x5500,
					  0x5600, 0x5700, 0x5800, 0x5900};

	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++)
		ck_assert_msg(catalog_lookup(firsts[i]), "0x%04x missing", firsts[i]);
	/* Contiguous runs the spec defines. */
	for (uint16_t op = 0x4500; op <= 0x4505; op++)
		ck_assert_ptr_nonnull(catalog_lookup(op));
	for (uint16_t op = 0x5400; op <= 0x5409; op++)
		ck_assert_ptr_nonnull(catalog_lookup(op));
	for (uint16_t op = 0x5600; op <= 0x5608; op++)
		ck_assert_ptr_nonnull(catalog_lookup(op));
	for (uint16_t op = 0x5700; op <= 0x5716; op++)
		ck_assert_ptr_nonnull(catalog_lookup(op));
	ck_assert_ptr_null(catalog_lookup(0xc000));
	ck_assert_ptr_null(catalog_lookup(0x0000));
	ck_assert_ptr_null(catalog_lookup(0x4406));
}
END_TEST

/* Spot checks against the kernel's and QEMU's tables and the reference classes. */
START_TEST(test_catalog_known_entries)
{
	const struct catalog_entry *e;

	e = catalog_lookup(CXL_OP_SANITIZE);
	ck_assert_str_eq(e->name, "Sanitize");
	ck_assert_int_eq(e->cls, MBX_CLASS_DATA);
	ck_assert(e->background);
	ck_assert(e->kernel_owned);
	ck_assert_uint_eq(e->max_in, 0);
	e = catalog_lookup(CXL_OP_GET_LOG);
	ck_assert_uint_eq(e->min_in, 24);
	ck_assert_uint_eq(e->max_in, 24);
	ck_assert(!e->kernel_owned);
	e = catalog_lookup(0x0201);
	ck_assert(e->background);
	ck_assert_uint_eq(e->max_in, CATALOG_SIZE_VARIABLE);
	ck_assert_int_eq(catalog_lookup(0x0101)->cls, MBX_CLASS_LOG);
	ck_assert(catalog_lookup(0x0101)->kernel_owned);
	ck_assert_int_eq(catalog_lookup(0x0301)->cls, MBX_CLASS_CONFIG);
	ck_assert_int_eq(catalog_lookup(0x4301)->cls, MBX_CLASS_DATA);
	ck_assert_int_eq(catalog_lookup(0x4503)->cls, MBX_CLASS_SECURITY);
	ck_assert_int_eq(catalog_lookup(0x4505)->cls, MBX_CLASS_SECURITY);
	ck_assert_int_eq(catalog_lookup(0x5102)->cls, MBX_CLASS_FABRIC);
	ck_assert_int_eq(catalog_lookup(0x5201)->cls, MBX_CLASS_FABRIC);
	ck_assert_int_eq(catalog_lookup(0x5301)->cls, MBX_CLASS_FABRIC);
	ck_assert_int_eq(catalog_lookup(0x5302)->cls, MBX_CLASS_FABRIC);
	ck_assert_int_eq(catalog_lookup(0x5605)->cls, MBX_CLASS_FABRIC);
	ck_assert_int_eq(catalog_lookup(CXL_OP_IDENTIFY_SWITCH)->cls, MBX_CLASS_READ);
	ck_assert_int_eq(catalog_lookup(CXL_OP_TUNNEL)->min_in, 16);
	ck_assert_int_eq(catalog_lookup(0x5102)->min_in, 2);
}
END_TEST

/* FM-API commands that are not Get/Identify sit at fabric; kernel-owned only in memdev sets. */
START_TEST(test_catalog_fm_api_floor_in_table)
{
	for (size_t i = 0; i < catalog_count(); i++) {
		const struct catalog_entry *e = catalog_at(i);
		unsigned set = e->opcode >> 8;

		if (set >= 0x51 && set <= 0x59 && e->opcode != CXL_OP_TUNNEL) {
			bool get = strncmp(e->name, "Get ", 4) == 0 ||
				   strncmp(e->name, "Identify ", 9) == 0 ||
				   strstr(e->name, "List Tags");
			if (!get)
				ck_assert_msg(e->cls == MBX_CLASS_FABRIC, "%s below fabric",
					      e->name);
			ck_assert(!e->kernel_owned);
		}
		if (set >= 0x44 && set <= 0x46)
			ck_assert_msg(e->kernel_owned, "%s in a kernel security set", e->name);
	}
}
END_TEST

/* Return codes have names, unknown ones a neutral one. */
START_TEST(test_catalog_rc_names)
{
	ck_assert_str_eq(cxl_rc_name(CXL_RC_SUCCESS), "Success");
	ck_assert_str_eq(cxl_rc_name(CXL_RC_INVALID_PAYLOAD_LENGTH), "Invalid Payload Length");
	ck_assert_str_eq(cxl_rc_name(CXL_RC_BUSY), "Busy");
	ck_assert_str_eq(cxl_rc_name(0x7777), "Unknown Return Code");
}
END_TEST

/* CEL parsing: bad lengths, duplicates merged, empty. */
START_TEST(test_cel_parse)
{
	const uint8_t cel[] = {0x00, 0x44, 0x44, 0x00, 0x01, 0x00, 0x00, 0x00,
			       0x00, 0x44, 0x20, 0x00, 0x00, 0x42, 0x00, 0x00};
	struct cel_entry *v;
	size_t n;

	ck_assert_int_eq(policy_cel_parse(cel, 7, &v, &n), -EPROTO);
	ck_assert_int_eq(policy_cel_parse(cel, 0, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(policy_cel_parse(cel, sizeof(cel), &v, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0].opcode, 0x4400);
	ck_assert_uint_eq(v[0].effects, 0x0064); /* union of both entries */
	ck_assert_uint_eq(v[1].opcode, 0x0001);
	ck_assert_uint_eq(v[2].opcode, 0x4200);
	ck_assert_ptr_eq(policy_cel_find(v, n, 0x4200), &v[2]);
	ck_assert_ptr_null(policy_cel_find(v, n, 0x4201));
	free(v);
}
END_TEST

/* Effects bits map to the least class covering them. */
START_TEST(test_cel_effects_class)
{
	ck_assert_int_eq(policy_cel_effects_class(0), -1);
	ck_assert_int_eq(policy_cel_effects_class(CEL_BACKGROUND), -1);
	ck_assert_int_eq(policy_cel_effects_class(CEL_LOG_IMMEDIATE), MBX_CLASS_LOG);
	ck_assert_int_eq(policy_cel_effects_class(CEL_CONFIG_COLD_RESET), MBX_CLASS_CONFIG);
	ck_assert_int_eq(policy_cel_effects_class(CEL_POLICY_IMMEDIATE | CEL_LOG_IMMEDIATE),
			 MBX_CLASS_CONFIG);
	ck_assert_int_eq(policy_cel_effects_class(CEL_DATA_IMMEDIATE | CEL_CONFIG_IMMEDIATE),
			 MBX_CLASS_DATA);
	ck_assert_int_eq(policy_cel_effects_class(CEL_SECURITY | CEL_DATA_IMMEDIATE),
			 MBX_CLASS_SECURITY);
}
END_TEST

/* Builds the suite. */
static Suite *catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("catalog");

	tcase_add_test(tc, test_catalog_table_shape);
	tcase_add_test(tc, test_catalog_sets_present);
	tcase_add_test(tc, test_catalog_known_entries);
	tcase_add_test(tc, test_catalog_fm_api_floor_in_table);
	tcase_add_test(tc, test_catalog_rc_names);
	tcase_add_test(tc, test_cel_parse);
	tcase_add_test(tc, test_cel_effects_class);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(catalog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
