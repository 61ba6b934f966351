#include "virtio_blk.h"
#include "virtio_mmio.h"

#define VBLK_QUEUE 4
#define REG(off) (*(volatile uint32_t *)(vblk_base + (off)))

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[VBLK_QUEUE], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[VBLK_QUEUE]; uint16_t avail_event; };

struct blk_header { uint32_t type, reserved; uint64_t sector; };

static uint64_t vblk_base;
static struct {
    struct desc desc[VBLK_QUEUE] __attribute__((aligned(16)));
    struct avail avail __attribute__((aligned(2)));
    struct used used __attribute__((aligned(4)));
} q __attribute__((aligned(4096)));
static struct blk_header hdr;
static volatile uint8_t status;

int vblk_init(uint64_t mmio_base)
{
    vblk_base = mmio_base;
    int negotiated = vmmio_negotiate(vblk_base, 2, 1u << 9);   /* block; VIRTIO_BLK_F_FLUSH */
    if (negotiated != 0)
        return negotiated;
    vmmio_queue(vblk_base, 0, VBLK_QUEUE, q.desc, &q.avail, &q.used);
    vmmio_driver_ok(vblk_base);
    return 0;
}

uint64_t vblk_capacity(void)
{
    return (uint64_t)REG(0x100) | ((uint64_t)REG(0x104) << 32);
}

uint32_t vblk_status(void) { return REG(0x070); }

uint8_t vblk_request(uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes)
{
    /* Three descriptors: header (readable), data (writable for IN and GET_ID), status (writable). */
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xFF;
    int n = 0;
    q.desc[n].addr = (uint64_t)&hdr; q.desc[n].len = sizeof hdr; q.desc[n].flags = 1; q.desc[n].next = 1; n++;
    if (len) {
        q.desc[n].addr = (uint64_t)buf; q.desc[n].len = len;
        q.desc[n].flags = 1 | (device_writes ? 2 : 0); q.desc[n].next = 2; n++;
    }
    q.desc[n].addr = (uint64_t)&status; q.desc[n].len = 1; q.desc[n].flags = 2; q.desc[n].next = 0;
    uint16_t used_before = *(volatile uint16_t *)&q.used.idx;
    q.avail.ring[q.avail.idx % VBLK_QUEUE] = 0;
    barrier();
    q.avail.idx++;
    barrier();
    REG(0x050) = 0;
    barrier();
    if (*(volatile uint16_t *)&q.used.idx == used_before)
        return 0xFF;
    return status;
}

uint8_t vblk_read(uint64_t sector, void *buf, uint32_t len) { return vblk_request(VBLK_T_IN, sector, buf, len, 1); }
uint8_t vblk_write(uint64_t sector, const void *buf, uint32_t len) { return vblk_request(VBLK_T_OUT, sector, (void *)buf, len, 0); }
uint8_t vblk_flush(void) { return vblk_request(VBLK_T_FLUSH, 0, 0, 0, 0); }

uint8_t vblk_get_id(char *id)
{
    uint8_t s = vblk_request(VBLK_T_GET_ID, 0, id, 20, 1);
    id[20] = 0;
    return s;
}
