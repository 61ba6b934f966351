#include "virtio_net.h"
#include "virtio_mmio.h"

#define REG(off) (*(volatile uint32_t *)(vnet_base + (off)))

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[VNET_QUEUE], used_event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[VNET_QUEUE]; uint16_t avail_event; };

struct queue {
    struct desc desc[VNET_QUEUE] __attribute__((aligned(16)));
    struct avail avail __attribute__((aligned(2)));
    struct used used __attribute__((aligned(4)));
    uint16_t last_used;
};

static uint64_t vnet_base;
static struct queue rxq __attribute__((aligned(4096)));
static struct queue txq __attribute__((aligned(4096)));
static uint8_t rxbuf[VNET_QUEUE][VNET_BUF] __attribute__((aligned(4096)));
static uint8_t txbuf[VNET_QUEUE][VNET_BUF] __attribute__((aligned(4096)));
static uint8_t mac[6];
static uint16_t rx_pending = 0xFFFF;

int vnet_init(uint64_t mmio_base)
{
    vnet_base = mmio_base;
    int negotiated = vmmio_negotiate(vnet_base, 1, 1u << 5);   /* net; VIRTIO_NET_F_MAC */
    if (negotiated != 0)
        return negotiated;
    vmmio_queue(vnet_base, 0, VNET_QUEUE, rxq.desc, &rxq.avail, &rxq.used);
    vmmio_queue(vnet_base, 1, VNET_QUEUE, txq.desc, &txq.avail, &txq.used);
    for (int i = 0; i < 6; i++)
        mac[i] = *(volatile uint8_t *)(vnet_base + 0x100 + i);
    for (uint16_t i = 0; i < VNET_QUEUE; i++) {
        rxq.desc[i].addr = (uint64_t)rxbuf[i];
        rxq.desc[i].len = VNET_BUF;
        rxq.desc[i].flags = 2;  /* VIRTQ_DESC_F_WRITE */
        rxq.avail.ring[i] = i;
    }
    barrier();
    rxq.avail.idx = VNET_QUEUE;
    vmmio_driver_ok(vnet_base);
    REG(0x050) = 0;
    return 0;
}

const uint8_t *vnet_mac(void) { return mac; }
uint32_t vnet_status(void) { return REG(0x070); }

void vnet_send(const void *frame, uint32_t len)
{
    if (len > VNET_BUF - VNET_HDR)
        return;
    uint16_t slot = txq.avail.idx % VNET_QUEUE;
    memset(txbuf[slot], 0, VNET_HDR);
    memcpy(txbuf[slot] + VNET_HDR, frame, len);
    txq.desc[slot].addr = (uint64_t)txbuf[slot];
    txq.desc[slot].len = VNET_HDR + len;
    txq.desc[slot].flags = 0;
    txq.avail.ring[slot] = slot;
    barrier();
    txq.avail.idx++;
    barrier();
    REG(0x050) = 1;
}

uint32_t vnet_poll(uint8_t **frame)
{
    barrier();
    if (rxq.last_used == *(volatile uint16_t *)&rxq.used.idx)
        return 0;
    struct used_elem e = rxq.used.ring[rxq.last_used % VNET_QUEUE];
    rxq.last_used++;
    rx_pending = (uint16_t)e.id;
    if (e.id >= VNET_QUEUE || e.len < VNET_HDR + 14) {
        vnet_release();
        return 0;
    }
    *frame = rxbuf[e.id] + VNET_HDR;
    return e.len - VNET_HDR;
}

void vnet_release(void)
{
    if (rx_pending >= VNET_QUEUE)
        return;
    rxq.avail.ring[rxq.avail.idx % VNET_QUEUE] = rx_pending;
    barrier();
    rxq.avail.idx++;
    rx_pending = 0xFFFF;
}
