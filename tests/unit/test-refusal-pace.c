/*
 * The refusal pacer (broker/refusal-pace.c) on a simulated clock: a user
 * under its bound never pauses; past its burst a refusal calls for a pause,
 * and a client that waits each pause out gets about the bound a second over
 * a long flood, in few pauses; the episode is reported once and ends when
 * the bucket is full again; users are paced apart; 0 paces no one.
 */
#include <check.h>
#include <stdlib.h>

#include "refusal-pace.h"

#define PER_S 1000

/* A client that sends refusals back to back, waiting out each pause: refusals in ms. */
static uint64_t flood_for(struct refusal_pace *p, uid_t uid, uint64_t *now, uint64_t ms,
			  int *episodes, int *pauses)
{
	uint64_t end = *now + ms, n = 0;
	uint32_t rate, pause;

	while (*now < end) {
		pause = refusal_pace_note(p, uid, *now, &rate);
		n++;
		*episodes += rate != 0;
		*pauses += pause != 0;
		*now += pause; /* a refusal costs no simulated time: the fastest possible flood */
	}
	return n;
}

START_TEST(test_under_the_bound_never_pauses)
{
	struct refusal_pace *p = refusal_pace_new(PER_S);
	uint32_t rate;

	/* Half the bound for ten seconds. */
	for (uint64_t t = 0; t < 10000; t += 2) {
		ck_assert_uint_eq(refusal_pace_note(p, 7, t, &rate), 0);
		ck_assert_uint_eq(rate, 0);
	}
	refusal_pace_free(p);
}
END_TEST

START_TEST(test_flood_is_paced_at_the_bound)
{
	struct refusal_pace *p = refusal_pace_new(PER_S);
	int episodes = 0, pauses = 0;
	uint64_t now = 1000, n;

	/* The burst, all at one instant; the next one pauses and starts the episode. */
	n = flood_for(p, 7, &now, 1, &episodes, &pauses);
	ck_assert_uint_ge(n, PER_S);
	ck_assert_int_eq(episodes, 1);
	/* Ten more seconds: about PER_S a second, in few pauses (batches grow to 100 ms). */
	n = flood_for(p, 7, &now, 10000, &episodes, &pauses);
	ck_assert_uint_le(n, 10 * PER_S + PER_S / 10 + 2);
	ck_assert_uint_ge(n, 9 * PER_S);
	ck_assert_int_le(pauses, 10 * 10 + 20);
	ck_assert_int_eq(episodes, 1);
	refusal_pace_free(p);
}
END_TEST

START_TEST(test_episode_ends_when_the_bucket_is_full)
{
	struct refusal_pace *p = refusal_pace_new(PER_S);
	int episodes = 0, pauses = 0;
	uint64_t now = 0;
	uint32_t rate;

	flood_for(p, 7, &now, 500, &episodes, &pauses);
	ck_assert_int_eq(episodes, 1);
	/* A second of quiet fills the bucket: the next flood is a new episode, reported anew. */
	now += 1100;
	ck_assert_uint_eq(refusal_pace_note(p, 7, now, &rate), 0);
	flood_for(p, 7, &now, 500, &episodes, &pauses);
	ck_assert_int_eq(episodes, 2);
	refusal_pace_free(p);
}
END_TEST

START_TEST(test_users_are_paced_apart)
{
	struct refusal_pace *p = refusal_pace_new(PER_S);
	int episodes = 0, pauses = 0;
	uint64_t now = 0, n;
	uint32_t rate;

	flood_for(p, 7, &now, 2000, &episodes, &pauses);
	/* Another uid has its own full bucket, however far the first is over. */
	for (int i = 0; i < PER_S; i++)
		ck_assert_uint_eq(refusal_pace_note(p, 8, now, &rate), 0);
	/* And the first is still paced after its batch (at most 100 ms of tokens). */
	for (n = 0; refusal_pace_note(p, 7, now, &rate) == 0; n++)
		ck_assert_uint_le(n, PER_S / 10 + 2);
	refusal_pace_free(p);
}
END_TEST

START_TEST(test_zero_paces_no_one)
{
	struct refusal_pace *p = refusal_pace_new(0);
	uint32_t rate;

	for (int i = 0; i < 100000; i++)
		ck_assert_uint_eq(refusal_pace_note(p, 7, 5, &rate), 0);
	refusal_pace_free(p);
}
END_TEST

START_TEST(test_full_table_reuses_idle_users)
{
	struct refusal_pace *p = refusal_pace_new(PER_S);
	uint32_t rate;

	for (uid_t u = 0; u < REFUSAL_PACE_USERS; u++)
		refusal_pace_note(p, u, 0, &rate);
	/* Every slot holds a user that spent a token just now: a new user is not paced. */
	for (int i = 0; i < 2 * PER_S; i++)
		ck_assert_uint_eq(refusal_pace_note(p, 99999, 0, &rate), 0);
	/* A second later the others are full again: a slot is reused and the user paced. */
	for (int i = 0; i < PER_S; i++)
		refusal_pace_note(p, 99999, 2000, &rate);
	ck_assert_uint_gt(refusal_pace_note(p, 99999, 2000, &rate), 0);
	refusal_pace_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("refusal-pace");
	TCase *tc = tcase_create("refusal-pace");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_under_the_bound_never_pauses);
	tcase_add_test(tc, test_flood_is_paced_at_the_bound);
	tcase_add_test(tc, test_episode_ends_when_the_bucket_is_full);
	tcase_add_test(tc, test_users_are_paced_apart);
	tcase_add_test(tc, test_zero_paces_no_one);
	tcase_add_test(tc, test_full_table_reuses_idle_users);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
