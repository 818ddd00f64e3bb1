/*
 * The device queue's order (broker/device.c): the broker's own jobs first,
 * then users round-robin, with the user served last rotating behind the
 * others only at the next pick, so a user who queues while a flooding
 * user's job runs waits for that one job and no more. Only the queue is
 * driven here; no worker thread runs.
 */
#include <check.h>
#include <stdlib.h>

#include "../../broker/device.c"

static struct broker broker;

/* A device with empty queues and no worker. */
static void device_init(struct device *d)
{
	memset(d, 0, sizeof(*d));
	d->broker = &broker;
	d->max_queue_per_user = 100;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	TAILQ_INIT(&d->internal);
	TAILQ_INIT(&d->ring);
	TAILQ_INIT(&d->done);
}

/* Queues a job of uid, tagged n so the order can be read back. */
static struct job *queue(struct device *d, uid_t uid, uint16_t n)
{
	struct job *j = device_job_new(d, NULL, 0);

	ck_assert_ptr_nonnull(j);
	j->uid = uid;
	j->cmd.opcode = n;
	ck_assert_int_eq(device_enqueue(d, j), 0);
	return j;
}

/* Takes the next job as the worker does; returns its tag (0: none) and frees it. */
static uint16_t next(struct device *d)
{
	struct job *j = device_next_job(d);
	uint16_t n;

	if (!j)
		return 0;
	n = j->cmd.opcode;
	d->queued--;
	device_job_free(j);
	return n;
}

/* A quiet user who queues while the flood's job runs goes next, not after one more. */
START_TEST(test_newcomer_waits_for_one_job)
{
	struct device d;

	device_init(&d);
	for (uint16_t i = 1; i <= 4; i++)
		queue(&d, 1000, i);
	ck_assert_uint_eq(next(&d), 1); /* the flood's first job is running */
	queue(&d, 2000, 100);           /* the quiet user arrives meanwhile */
	ck_assert_uint_eq(next(&d), 100);
	ck_assert_uint_eq(next(&d), 2);
	ck_assert_uint_eq(next(&d), 3);
	queue(&d, 2000, 101);
	ck_assert_uint_eq(next(&d), 101);
	ck_assert_uint_eq(next(&d), 4);
	ck_assert_uint_eq(next(&d), 0);
	ck_assert_ptr_null(d.served);
	ck_assert(TAILQ_EMPTY(&d.ring));
}
END_TEST

/* Two busy users alternate; the broker's own jobs go first without turning the ring. */
START_TEST(test_round_robin_and_internal_first)
{
	struct device d;
	struct job *j;

	device_init(&d);
	queue(&d, 1000, 1);
	queue(&d, 1000, 2);
	queue(&d, 1000, 3);
	queue(&d, 2000, 11);
	queue(&d, 2000, 12);
	ck_assert_uint_eq(next(&d), 1);
	j = device_job_new(&d, NULL, 0);
	j->internal = true;
	j->cmd.opcode = 0x0002;
	ck_assert_int_eq(device_enqueue(&d, j), 0);
	ck_assert_uint_eq(next(&d), 0x0002);
	ck_assert_uint_eq(next(&d), 11);
	ck_assert_uint_eq(next(&d), 2);
	ck_assert_uint_eq(next(&d), 12);
	ck_assert_uint_eq(next(&d), 3);
	ck_assert_uint_eq(next(&d), 0);
}
END_TEST

/* A served user whose client leaves is forgotten, not left dangling. */
START_TEST(test_dequeue_of_the_served_user)
{
	struct device d;
	struct job *a2;

	device_init(&d);
	queue(&d, 1000, 1);
	a2 = queue(&d, 1000, 2);
	ck_assert_uint_eq(next(&d), 1);
	ck_assert_ptr_nonnull(d.served);
	ck_assert(device_dequeue(&d, a2));
	device_job_free(a2);
	ck_assert_ptr_null(d.served);
	queue(&d, 2000, 11);
	ck_assert_uint_eq(next(&d), 11);
	ck_assert_uint_eq(next(&d), 0);
}
END_TEST

/* A user's queue is bounded; the others still get in. */
START_TEST(test_per_user_bound)
{
	struct device d;
	struct job *j;

	device_init(&d);
	d.max_queue_per_user = 2;
	queue(&d, 1000, 1);
	queue(&d, 1000, 2);
	j = device_job_new(&d, NULL, 0);
	j->uid = 1000;
	ck_assert_int_eq(device_enqueue(&d, j), -EBUSY);
	device_job_free(j);
	queue(&d, 2000, 11);
	ck_assert_uint_eq(next(&d), 1);
	ck_assert_uint_eq(next(&d), 11);
	ck_assert_uint_eq(next(&d), 2);
}
END_TEST

static Suite *device_suite(void)
{
	Suite *s = suite_create("device");
	TCase *tc = tcase_create("queue");

	tcase_add_test(tc, test_newcomer_waits_for_one_job);
	tcase_add_test(tc, test_round_robin_and_internal_first);
	tcase_add_test(tc, test_dequeue_of_the_served_user);
	tcase_add_test(tc, test_per_user_bound);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(device_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
