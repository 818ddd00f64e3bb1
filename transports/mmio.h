/*
 * Register access for the vfio transport's mailbox driver.
 *
 * The driver (vfio-mailbox.c) reads and writes a register block only
 * through this interface, so the same code runs on a BAR mapped from a VFIO
 * device fd and, in unit tests, on the sim device's register model
 * (sim-regs.c) or on plain memory. Offsets are relative to the block; an
 * access outside it reads all ones and writes nothing, as a PCI read of an
 * address no one decodes would.
 */
#ifndef MBX_MMIO_H
#define MBX_MMIO_H

#include <stddef.h>
#include <stdint.h>

struct mmio_ops {
	uint32_t (*read32)(void *ctx, size_t off);
	uint64_t (*read64)(void *ctx, size_t off);
	void (*write32)(void *ctx, size_t off, uint32_t v);
	/* One 64-bit store: devices may run a command register written in halves twice. */
	void (*write64)(void *ctx, size_t off, uint64_t v);
};

struct mmio {
	const struct mmio_ops *ops;
	void *ctx;
	size_t size; /* bytes from offset 0; accesses past it are refused here */
};

/* Whether width bytes at off lie inside the block and are naturally aligned. */
static inline int mmio_fits(const struct mmio *m, size_t off, size_t width)
{
	return off % width == 0 && off <= m->size && width <= m->size - off;
}

static inline uint32_t mmio_read32(const struct mmio *m, size_t off)
{
	return mmio_fits(m, off, 4) ? m->ops->read32(m->ctx, off) : UINT32_MAX;
}

static inline uint64_t mmio_read64(const struct mmio *m, size_t off)
{
	return mmio_fits(m, off, 8) ? m->ops->read64(m->ctx, off) : UINT64_MAX;
}

static inline void mmio_write32(const struct mmio *m, size_t off, uint32_t v)
{
	if (mmio_fits(m, off, 4))
		m->ops->write32(m->ctx, off, v);
}

static inline void mmio_write64(const struct mmio *m, size_t off, uint64_t v)
{
	if (mmio_fits(m, off, 8))
		m->ops->write64(m->ctx, off, v);
}

/* The real backend: base is a mapped BAR (volatile: every access reaches the device). */
void mmio_map_init(struct mmio *m, volatile void *base, size_t size);

/* The test backend: plain memory, with every access counted. */
struct mmio_mem {
	uint8_t *buf; /* size bytes, owned by the caller */
	size_t size;
	unsigned long reads;
	unsigned long writes;
};

void mmio_mem_init(struct mmio *m, struct mmio_mem *mem);

#endif
