/* The two register backends: a mapped BAR and counted plain memory. */
#include <string.h>

#include "mmio.h"

/*
 * Volatile loads and stores of the access's own width: x86-64 and arm64 turn
 * each into one instruction, so a 64-bit store reaches the device whole.
 */
static uint32_t mmio_map_read32(void *ctx, size_t off)
{
	return *(volatile uint32_t *)((volatile uint8_t *)ctx + off);
}

static uint64_t mmio_map_read64(void *ctx, size_t off)
{
	return *(volatile uint64_t *)((volatile uint8_t *)ctx + off);
}

static void mmio_map_write32(void *ctx, size_t off, uint32_t v)
{
	*(volatile uint32_t *)((volatile uint8_t *)ctx + off) = v;
}

static void mmio_map_write64(void *ctx, size_t off, uint64_t v)
{
	*(volatile uint64_t *)((volatile uint8_t *)ctx + off) = v;
}

static const struct mmio_ops mmio_map_ops = {
    .read32 = mmio_map_read32,
    .read64 = mmio_map_read64,
    .write32 = mmio_map_write32,
    .write64 = mmio_map_write64,
};

/* Points m at a mapped register block. */
void mmio_map_init(struct mmio *m, volatile void *base, size_t size)
{
	m->ops = &mmio_map_ops;
	m->ctx = (void *)(uintptr_t)base; /* the ops put volatile back on every access */
	m->size = size;
}

/* Reads little-endian, as the registers are. */
static uint64_t mmio_mem_get(struct mmio_mem *mem, size_t off, size_t width)
{
	uint64_t v = 0;

	mem->reads++;
	for (size_t i = 0; i < width; i++)
		v |= (uint64_t)mem->buf[off + i] << (8 * i);
	return v;
}

static void mmio_mem_put(struct mmio_mem *mem, size_t off, size_t width, uint64_t v)
{
	mem->writes++;
	for (size_t i = 0; i < width; i++)
		mem->buf[off + i] = (uint8_t)(v >> (8 * i));
}

static uint32_t mmio_mem_read32(void *ctx, size_t off)
{
	return (uint32_t)mmio_mem_get(ctx, off, 4);
}

static uint64_t mmio_mem_read64(void *ctx, size_t off)
{
	return mmio_mem_get(ctx, off, 8);
}

static void mmio_mem_write32(void *ctx, size_t off, uint32_t v)
{
	mmio_mem_put(ctx, off, 4, v);
}

static void mmio_mem_write64(void *ctx, size_t off, uint64_t v)
{
	mmio_mem_put(ctx, off, 8, v);
}

static const struct mmio_ops mmio_mem_ops = {
    .read32 = mmio_mem_read32,
    .read64 = mmio_mem_read64,
    .write32 = mmio_mem_write32,
    .write64 = mmio_mem_write64,
};

/* Points m at plain memory, for tests of code that walks registers. */
void mmio_mem_init(struct mmio *m, struct mmio_mem *mem)
{
	m->ops = &mmio_mem_ops;
	m->ctx = mem;
	m->size = mem->size;
}
