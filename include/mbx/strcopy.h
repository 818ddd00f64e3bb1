/*
 * Copying a string into a fixed-size field, truncating: what
 * snprintf(dst, cap, "%s", src) does, at a tenth of its cost, for the
 * per-request paths of the daemon and the policy engine (callgrind: six
 * such snprintf calls were a quarter of mbxd's instructions per request).
 * Internal to the project; not installed with libmbx.
 */
#ifndef MBX_STRCOPY_H
#define MBX_STRCOPY_H

#include <stddef.h>
#include <string.h>

/* Copies src into dst (cap > 0 bytes), truncating; dst is always terminated. */
static inline void mbx_strcopy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

#endif
