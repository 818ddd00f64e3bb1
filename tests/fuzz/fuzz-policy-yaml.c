/*
 * libFuzzer target: the policy loader on arbitrary bytes, then a few
 * decisions on whatever loaded. Self-contained: build with
 *   clang -fsanitize=fuzzer,address -Iinclude -Ipolicy -Itransports \
 *         tests/fuzz/fuzz-policy-yaml.c $(ls policy/[a-z]*.c) transports/cci.c \
 *         clients/libmbx/names.c -lyaml -lpthread
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An empty users.d, so a fuzzed users_dir never reads the host's files. */
static const char *fuzz_users_dir(void)
{
	static char dir[] = "/tmp/fuzz-policy-users-XXXXXX";
	static int made;

	if (!made && mkdtemp(dir))
		made = 1;
	return dir;
}

/* Decides a handful of requests, to run the compiled tables. */
static void fuzz_decide(struct policy *p)
{
	static const char *const groups[] = {"cxl-operators", "wheel"};
	static const uint16_t ops[] = {0x0001, 0x4200, 0x4400, 0x5102, 0x5300, 0xc001};
	struct policy_principal who = {.user = "alice", .groups = groups, .n_groups = 2};
	struct policy_device dev = {.name = "mem0"};
	struct policy_decision d;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		struct policy_request req = {.who = &who,
					     .dev = &dev,
					     .opcode = ops[i],
					     .reason = i & 1 ? "ticket" : NULL,
					     .now_ms = i * 1000};

		policy_decide(p, &req, &d);
		if (d.decision == MBX_DECISION_ALLOW && d.status != MBX_STATUS_OK)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_errors errs;
	struct policy *p;
	char path[64];
	int fd = memfd_create("policy.yaml", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (policy_load(path, fuzz_users_dir(), false, &p, &errs) == 0) {
		if (errs.n)
			abort(); /* success means no errors */
		fuzz_decide(p);
		policy_free(p);
	} else if (errs.n == 0) {
		/* Only out of memory fails without saying why. */
	}
	policy_errors_free(&errs);
	close(fd);
	return 0;
}
