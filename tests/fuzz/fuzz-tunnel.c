/*
 * libFuzzer target: the tunnel classifier on arbitrary Tunnel Management
 * payloads. Whatever the bytes, the answer is either invalid or a set of
 * levels whose class is the most dangerous of them. Self-contained: build with
 *   clang -fsanitize=fuzzer,address -Iinclude -Ipolicy -Itransports \
 *         tests/fuzz/fuzz-tunnel.c $(ls policy/[a-z]*.c) transports/cci.c \
 *         clients/libmbx/names.c -lyaml -lpthread
 */
#include <stdint.h>
#include <stdlib.h>

#include "policy-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_device dev = {.name = "switch0"};
	struct policy_class pc;

	policy_classify(NULL, &dev, CXL_OP_TUNNEL, data, size, &pc);
	if (pc.n_levels < 1 || pc.n_levels > 1 + POLICY_TUNNEL_DEPTH_MAX)
		abort();
	if (pc.status == MBX_STATUS_OK) {
		for (size_t i = 0; i < pc.n_levels; i++)
			if (pc.level[i].cls > pc.cls)
				abort(); /* the request is at least as dangerous as any level */
	} else if (pc.status != MBX_STATUS_INVALID) {
		abort();
	}
	return 0;
}
