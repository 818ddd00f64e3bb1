/*
 * The frame deadline is per frame: a client streaming frames, each one
 * quick, is never cut however long the stream lasts, whatever the frame
 * sizes and however its writes split them; a frame that is slow from its
 * own first byte is cut, and the client is told why with an ERROR.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <mbx/proto.h>

#include "harness.h"

#define FRAME_TIMEOUT_MS 300
/* Long enough for several frame deadlines to pass while the stream runs. */
#define STREAM_MS (6 * FRAME_TIMEOUT_MS)

static const char devices_yaml[] = "  - name: mem0\n"
				   "    transport: sim\n"
				   "    options: { model: memdev, serial: 0x1111 }\n";

static const char policy_yaml[] = "version: 1\n"
				  "rules:\n"
				  "  - name: operators-read\n"
				  "    who: { groups: [" H_OPS_GROUP "] }\n"
				  "    devices: [\"*\"]\n"
				  "    allow: [read]\n";

static struct harness h;

static void setup(void)
{
	harness_users();
	harness_init(&h, devices_yaml, policy_yaml);
	h.limits_yaml = "{ max_inflight: 64, frame_timeout_ms: 300 }";
	harness_write_config(&h);
	harness_start(&h);
}

static void teardown(void)
{
	harness_cleanup(&h);
}

/* Milliseconds on the monotonic clock. */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A connected socket that has said HELLO; -1 on any failure. */
static int frames_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct mbx_hello_req hello = {.version_min = 1, .version_max = 1};
	uint8_t buf[MBX_HEADER_SIZE + 256];
	struct mbx_header hdr;
	struct mbx_wbuf w;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -1;
	mbx_wbuf_init(&w);
	if (mbx_encode_hello_req(&w, 1, &hello) < 0 || write(fd, w.data, w.len) != (ssize_t)w.len ||
	    recv(fd, buf, MBX_HEADER_SIZE, MSG_WAITALL) != MBX_HEADER_SIZE ||
	    mbx_decode_header(buf, &hdr) < 0 || hdr.type != MBX_MSG_HELLO ||
	    hdr.length > sizeof(buf) - MBX_HEADER_SIZE ||
	    recv(fd, buf, hdr.length, MSG_WAITALL) != (ssize_t)hdr.length) {
		mbx_wbuf_free(&w);
		close(fd);
		return -1;
	}
	mbx_wbuf_free(&w);
	return fd;
}

/* Appends one EXPLAIN whose frame is exactly size bytes (size >= 37). */
static void frames_append_explain(struct mbx_wbuf *w, uint32_t tag, size_t size)
{
	/* Header 12 + device str 2+4 + opcode 2 + flags 2 + timeout 4 + reason 2 + count 4. */
	static uint8_t payload[8192];
	struct mbx_submit m = {.device = "mem0", .opcode = 0x4000};

	m.payload = payload;
	m.payload_len = (uint32_t)(size - 32);
	if (mbx_encode_submit(w, MBX_MSG_EXPLAIN, tag, &m) < 0)
		abort();
}

/* What a client saw of the server's answers so far. */
struct frames_seen {
	uint8_t buf[1 << 16];
	size_t have;
	unsigned answers;
	bool error, eof;
	struct mbx_error err;
};

/* Reads what is there (waiting up to wait_ms for the first byte) and counts answers. */
static void frames_drain(int fd, struct frames_seen *s, int wait_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct mbx_header hdr;
	ssize_t n;

	while (!s->eof && poll(&p, 1, wait_ms) > 0) {
		wait_ms = 0;
		n = read(fd, s->buf + s->have, sizeof(s->buf) - s->have);
		if (n <= 0) {
			s->eof = true;
			break;
		}
		s->have += (size_t)n;
		while (s->have >= MBX_HEADER_SIZE && mbx_decode_header(s->buf, &hdr) == 0 &&
		       s->have >= MBX_HEADER_SIZE + hdr.length) {
			if (hdr.type == MBX_MSG_ERROR) {
				s->error = true;
				mbx_decode_error(s->buf + MBX_HEADER_SIZE, hdr.length, &s->err);
			} else {
				s->answers++;
			}
			memmove(s->buf, s->buf + MBX_HEADER_SIZE + hdr.length,
				s->have - MBX_HEADER_SIZE - hdr.length);
			s->have -= MBX_HEADER_SIZE + hdr.length;
		}
	}
}

/* One way of streaming: frame sizes and write sizes to draw from. */
struct frames_plan {
	const char *name;
	const size_t *frame_sizes;
	size_t n_frame_sizes;
	const size_t *write_sizes;
	size_t n_write_sizes;
	unsigned seed;
};

/*
 * As a test user: streams EXPLAINs for STREAM_MS in writes of the plan's
 * sizes, one write every 2 ms, so every frame is whole within a few writes
 * (well inside the deadline) while the stream outlasts many deadlines and
 * frames straddle writes. Exit 0 when every frame was answered and nothing
 * cut the connection; 1 with the reason on stderr otherwise.
 */
static int frames_stream(const char *socket, void *arg)
{
	const struct frames_plan *pl = arg;
	struct frames_seen *seen = calloc(1, sizeof(*seen));
	struct mbx_wbuf w;
	unsigned frames = 0, seed = pl->seed;
	size_t off = 0;
	double t0, t_end;
	int fd = frames_connect(socket);

	if (fd < 0 || !seen)
		return 2;
	signal(SIGPIPE, SIG_IGN); /* a cut connection is reported, not a crash */
	mbx_wbuf_init(&w);
	t0 = now_ms();
	t_end = t0 + STREAM_MS;
	while (now_ms() < t_end && !seen->eof) {
		size_t n = pl->write_sizes[(unsigned)rand_r(&seed) % pl->n_write_sizes];

		/* Keep the frames ahead of the writes: at least two writes' worth queued. */
		while (w.len - off < 2 * n)
			frames_append_explain(
			    &w, ++frames,
			    pl->frame_sizes[(unsigned)rand_r(&seed) % pl->n_frame_sizes]);
		if (write(fd, w.data + off, n) != (ssize_t)n) {
			fprintf(stderr, "%s: write failed after %.0f ms: %s\n", pl->name,
				now_ms() - t0, strerror(errno));
			return 1;
		}
		off += n;
		frames_drain(fd, seen, 0);
		sleep_ms(2);
	}
	/* Finish the frame in progress, then wait for every frame's answer. */
	frames = 0;
	for (size_t end = 0; end < off; frames++) {
		struct mbx_header hdr;

		mbx_decode_header(w.data + end, &hdr);
		end += MBX_HEADER_SIZE + hdr.length;
		if (end > off && write(fd, w.data + off, end - off) != (ssize_t)(end - off))
			return 1;
		if (end > off)
			off = end;
	}
	for (int i = 0; i < 100 && seen->answers < frames && !seen->eof; i++)
		frames_drain(fd, seen, 50);
	if (seen->error || seen->eof || seen->answers != frames) {
		fprintf(stderr, "%s: after %.0f ms: %u of %u frames answered%s%s%s\n", pl->name,
			now_ms() - t0, seen->answers, frames,
			seen->eof ? ", connection closed" : "", seen->error ? ", ERROR: " : "",
			seen->error ? seen->err.message : "");
		return 1;
	}
	mbx_wbuf_free(&w);
	close(fd);
	free(seen);
	return 0;
}

/* The instance, then generated sizes: frames straddle writes of every size. */
START_TEST(test_fast_streamer_is_never_cut)
{
	static const size_t f281[] = {281};
	static const size_t w4k[] = {4096};
	static const size_t mixed_frames[] = {37, 40, 100, 281, 512, 1000, 1500, 3000};
	static const size_t small_writes[] = {1, 7, 13, 64, 100, 281, 333};
	static const size_t big_writes[] = {500, 1024, 2000, 4096, 5000, 8191};
	static const size_t odd_frames[] = {41, 97, 263, 1021};
	const struct frames_plan plans[] = {
	    {"281-byte frames in 4 KiB writes", f281, 1, w4k, 1, 1},
	    {"mixed frames in small writes", mixed_frames, 8, small_writes, 7, 2},
	    {"mixed frames in big writes", mixed_frames, 8, big_writes, 6, 3},
	    {"odd frames in odd writes", odd_frames, 4, small_writes, 7, 4},
	};

	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
		struct frames_plan plan = plans[i];
		int rc = harness_as_user(H_OPERATOR, frames_stream, h.socket, &plan);
		char *log = harness_read_file(h.log);

		ck_assert_msg(rc == 0,
			      "%s: the streamer was cut or not answered (exit %d); "
			      "mbxd log:\n%s",
			      plans[i].name, rc, log ? log : "");
		free(log);
	}
}
END_TEST

/*
 * As a test user: after a quick frame, starts one more in the same write,
 * finishes it after 60% of the deadline (not cut: its own deadline), then
 * trickles a third one byte at a time. Exit 0 when exactly the third is cut
 * with a timeout ERROR naming the deadline, no sooner than the deadline
 * after its first byte and not much later.
 */
static int frames_slow(const char *socket, void *arg)
{
	struct frames_seen *seen = calloc(1, sizeof(*seen));
	struct mbx_wbuf w;
	size_t first, second;
	double t_first_byte, t_cut;
	int fd = frames_connect(socket);

	(void)arg;
	if (fd < 0 || !seen)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	mbx_wbuf_init(&w);
	frames_append_explain(&w, 1, 281);
	first = w.len;
	frames_append_explain(&w, 2, 281);
	second = w.len;
	frames_append_explain(&w, 3, 281);
	/* Frame 1 whole and half of frame 2; frame 2's rest after 0.6 deadlines. */
	if (write(fd, w.data, first + 140) != (ssize_t)(first + 140))
		return 3;
	sleep_ms(FRAME_TIMEOUT_MS * 6 / 10);
	if (write(fd, w.data + first + 140, second - first - 140) !=
	    (ssize_t)(second - first - 140))
		return 3;
	for (int i = 0; i < 20 && seen->answers < 2 && !seen->eof; i++)
		frames_drain(fd, seen, 50);
	if (seen->answers != 2 || seen->error || seen->eof) {
		fprintf(stderr, "quick frames: %u answers%s\n", seen->answers,
			seen->error || seen->eof ? ", cut" : "");
		return 4;
	}
	/* Frame 3, one byte every 50 ms: it cannot be whole within the deadline. */
	t_first_byte = now_ms();
	for (size_t at = second; at < w.len && !seen->eof && !seen->error; at++) {
		if (write(fd, w.data + at, 1) != 1)
			break; /* cut meanwhile */
		frames_drain(fd, seen, 50);
	}
	t_cut = now_ms();
	for (int i = 0; i < 20 && !seen->eof; i++)
		frames_drain(fd, seen, 50);
	if (!seen->error || seen->err.code != MBX_ERROR_TIMEOUT ||
	    !strstr(seen->err.message, "unfinished for 300 ms")) {
		fprintf(stderr, "slow frame: error %d code %u \"%s\", eof %d\n", seen->error,
			seen->err.code, seen->err.message, seen->eof);
		return 5;
	}
	if (t_cut - t_first_byte < FRAME_TIMEOUT_MS - 10 ||
	    t_cut - t_first_byte > FRAME_TIMEOUT_MS + 400) {
		fprintf(stderr, "slow frame cut %.0f ms after its first byte\n",
			t_cut - t_first_byte);
		return 6;
	}
	if (!seen->eof) {
		fprintf(stderr, "the ERROR came but the connection stayed open\n");
		return 7;
	}
	mbx_wbuf_free(&w);
	close(fd);
	free(seen);
	return 0;
}

START_TEST(test_slow_frame_is_cut_with_an_error)
{
	int rc = harness_as_user(H_OPERATOR, frames_slow, h.socket, NULL);

	ck_assert_msg(rc == 0, "slow-frame client: exit %d (see stderr)", rc);
	/* The daemon and other clients go on. */
	rc = harness_as_user(H_OPERATOR, frames_stream, h.socket,
			     &(struct frames_plan){"after the cut", (const size_t[]){281}, 1,
						   (const size_t[]){4096}, 1, 9});
	ck_assert_int_eq(rc, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("frames");
	TCase *tc = tcase_create("frames");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fast_streamer_is_never_cut);
	tcase_add_test(tc, test_slow_frame_is_cut_with_an_error);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
