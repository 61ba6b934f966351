/* A disk guest: on the first virtio-blk disk, checks what an earlier run left (a header in sector 0
 * naming a generation and the checksum of the blocks after it), then writes the next generation's
 * blocks, flushes, reads them back, writes the header, flushes, and prints FNV-1a 64 checksums on
 * the console, so that the host can hold them against the volume's bytes. Last, a read past the end
 * of the disk, which the device must refuse with S_IOERR. Powers off with 0, or the failed step. */
#include "runtime/rt.h"
#include "runtime/virtio_blk.h"

#ifndef BLKCHECK_BYTES
#define BLKCHECK_BYTES 32768    /* the data after the header: 64 sectors */
#endif
#define CHUNK 4096

struct header { char magic[8]; uint64_t generation, checksum, bytes; };

static uint8_t sector0[VBLK_SECTOR] __attribute__((aligned(16)));
static uint8_t chunk[CHUNK] __attribute__((aligned(16)));

static uint64_t fnv(uint64_t h, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3UL;
    }
    return h;
}

/* The generation's bytes: an xorshift stream seeded by the generation and the offset. */
static void fill(uint64_t generation, uint64_t offset, uint8_t *p, uint32_t n)
{
    uint64_t x = generation * 0x9E3779B97F4A7C15UL + offset + 1;
    for (uint32_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* The checksum of the data area as the disk holds it now; 0 and a message on a failed read. */
static int checksum_disk(uint64_t *sum)
{
    uint64_t h = 0xcbf29ce484222325UL;
    for (uint32_t off = 0; off < BLKCHECK_BYTES; off += CHUNK) {
        if (vblk_read(1 + off / VBLK_SECTOR, chunk, CHUNK) != VBLK_S_OK) {
            rt_puts("read failed at sector ");
            rt_putu(1 + off / VBLK_SECTOR);
            rt_putc('\n');
            return 0;
        }
        h = fnv(h, chunk, CHUNK);
    }
    *sum = h;
    return 1;
}

int main(void)
{
    if (rt_boot->blk_count < 1) {
        rt_puts("no disk\n");
        return 1;
    }
    int err = vblk_init(rt_boot->blk_mmio[0]);
    if (err) {
        rt_puts("virtio-blk init failed at step ");
        rt_putu((uint64_t)-err);
        rt_putc('\n');
        return 2;
    }
    char id[21];
    uint64_t capacity = vblk_capacity();
    vblk_get_id(id);
    rt_puts("disk ");
    rt_puts(id);
    rt_puts(" capacity ");
    rt_putu(capacity);
    rt_puts(" sectors\n");
    if (capacity < 1 + BLKCHECK_BYTES / VBLK_SECTOR) {
        rt_puts("disk too small\n");
        return 3;
    }
    if (vblk_read(0, sector0, VBLK_SECTOR) != VBLK_S_OK)
        return 4;
    struct header *hd = (struct header *)sector0;
    uint64_t generation = 0, sum;
    if (memcmp(hd->magic, "BLKCHECK", 8) == 0 && hd->bytes == BLKCHECK_BYTES) {
        generation = hd->generation;
        if (!checksum_disk(&sum))
            return 5;
        rt_puts("found generation ");
        rt_putu(generation);
        rt_puts(" checksum ");
        rt_puthex(sum);
        rt_puts(sum == hd->checksum ? " intact\n" : " CORRUPT\n");
    } else {
        rt_puts("found no earlier run\n");
    }
    generation++;
    uint64_t h = 0xcbf29ce484222325UL;
    for (uint32_t off = 0; off < BLKCHECK_BYTES; off += CHUNK) {
        fill(generation, off, chunk, CHUNK);
        h = fnv(h, chunk, CHUNK);
        if (vblk_write(1 + off / VBLK_SECTOR, chunk, CHUNK) != VBLK_S_OK)
            return 6;
    }
    if (vblk_flush() != VBLK_S_OK)
        return 7;
    if (!checksum_disk(&sum))
        return 8;
    rt_puts("wrote generation ");
    rt_putu(generation);
    rt_puts(" checksum ");
    rt_puthex(h);
    rt_puts(sum == h ? " read back equal\n" : " read back DIFFERENT\n");
    memset(sector0, 0, sizeof sector0);
    memcpy(hd->magic, "BLKCHECK", 8);
    hd->generation = generation;
    hd->checksum = h;
    hd->bytes = BLKCHECK_BYTES;
    if (vblk_write(0, sector0, VBLK_SECTOR) != VBLK_S_OK || vblk_flush() != VBLK_S_OK)
        return 9;
    rt_puts("flushed\n");
    rt_puts("read past the end: status ");
    rt_putu(vblk_read(capacity, sector0, VBLK_SECTOR));
    rt_putc('\n');
    return sum == h ? 0 : 10;
}
