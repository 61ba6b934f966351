/* pcinet: finds its devices on PCI as an OS does, and sends one frame through virtio-net-pci.
 *
 * It scans bus 0 with configuration mechanism #1 (ports 0xCF8/0xCFC, virt/Pci.cs), prints every
 * function it finds (vendor:device and class), sizes BAR0 of each virtio function (writes all
 * ones, reads the mask back, puts the address back), reads the legacy virtio header from that
 * I/O BAR (device features, the two queue sizes, the MAC from the config space), then drives the
 * first virtio-net function by the legacy protocol (virt/PciVirtio.cs): reset, ACKNOWLEDGE, DRIVER,
 * features (VIRTIO_NET_F_MAC), the transmit queue's page number, DRIVER_OK, and one Ethernet frame
 * (ethertype 0x88B5, the payload "pcinet") with the 10-byte legacy header. It waits until the
 * device returns the buffer, reads the ISR status (which clears it) and powers off with status 0,
 * or with the step that failed. */
#include "runtime/rt.h"

static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static uint32_t cfg_read(uint32_t slot, uint32_t reg)
{
    outl(0xCF8, 0x80000000u | (slot << 11) | (reg & 0xFC));
    return inl(0xCFC);
}

static void cfg_write(uint32_t slot, uint32_t reg, uint32_t v)
{
    outl(0xCF8, 0x80000000u | (slot << 11) | (reg & 0xFC));
    outl(0xCFC, v);
}

static void hex(uint64_t v, int digits)
{
    static const char d[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) rt_putc(d[(v >> (4 * i)) & 15]);
}

/* The transmit queue: descriptors, available ring, then the used ring on the next page (256 entries). */
static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
static uint8_t frame[10 + 60];

int main(void)
{
    int net = -1;
    uint16_t net_io = 0;
    for (uint32_t slot = 0; slot < 32; slot++) {
        uint32_t id = cfg_read(slot, 0);
        if ((id & 0xFFFF) == 0xFFFF) continue;
        uint32_t cls = cfg_read(slot, 8) >> 8;
        rt_puts("pci 00:"); hex(slot, 2); rt_puts(".0 "); hex(id & 0xFFFF, 4); rt_putc(':'); hex(id >> 16, 4);
        rt_puts(" class "); hex(cls, 6); rt_putc('\n');
        if ((id & 0xFFFF) != 0x1AF4) continue;
        uint32_t bar = cfg_read(slot, 0x10);
        cfg_write(slot, 0x10, 0xFFFFFFFFu);
        uint32_t mask = cfg_read(slot, 0x10);
        cfg_write(slot, 0x10, bar);
        uint32_t size = (~(mask & ~3u) + 1) & 0xFFFF;
        uint32_t irq = cfg_read(slot, 0x3C);
        uint16_t io = (uint16_t)(bar & ~3u);
        rt_puts("  bar0 io 0x"); hex(io, 4); rt_puts(" size "); rt_putu(size);
        rt_puts(" irq "); rt_putu(irq & 0xFF); rt_puts(" pin "); rt_putu((irq >> 8) & 0xFF);
        rt_puts(" subsystem "); rt_putu(cfg_read(slot, 0x2C) >> 16); rt_putc('\n');
        rt_puts("  features 0x"); hex(inl(io + 0x00), 8);
        outw(io + 0x0E, 0); rt_puts(" queue0 "); rt_putu(inw(io + 0x0C));
        outw(io + 0x0E, 1); rt_puts(" queue1 "); rt_putu(inw(io + 0x0C));
        rt_putc('\n');
        if ((id >> 16) == 0x1000 && net < 0) { net = (int)slot; net_io = io; }
    }
    if (net < 0) return 1;
    uint16_t io = net_io;
    cfg_write((uint32_t)net, 0x04, cfg_read((uint32_t)net, 0x04) | 1 | 4);   /* I/O decode, bus master */
    outb(io + 0x12, 0);
    outb(io + 0x12, 1);
    outb(io + 0x12, 1 | 2);
    if (!(inl(io + 0x00) & (1u << 5))) return 2;
    outl(io + 0x04, 1u << 5);
    rt_puts("mac ");
    for (int i = 0; i < 6; i++) { hex(inb(io + 0x14 + i), 2); if (i < 5) rt_putc(':'); frame[10 + 6 + i] = inb(io + 0x14 + i); }
    rt_putc('\n');
    outw(io + 0x0E, 1);
    uint16_t qsize = inw(io + 0x0C);
    if (qsize != 256) return 3;
    outl(io + 0x08, (uint32_t)((uint64_t)ring >> 12));
    outb(io + 0x12, 1 | 2 | 4);
    for (int i = 0; i < 6; i++) frame[10 + i] = 0xFF;
    frame[10 + 12] = 0x88; frame[10 + 13] = 0xB5;
    memcpy(frame + 10 + 14, "pcinet", 6);
    volatile uint64_t *desc = (volatile uint64_t *)ring;
    desc[0] = (uint64_t)frame;
    desc[1] = sizeof frame;                         /* len, flags 0, next 0 */
    volatile uint16_t *avail = (volatile uint16_t *)(ring + 16 * 256);
    volatile uint16_t *used = (volatile uint16_t *)(ring + 2 * 4096);
    avail[2] = 0;
    barrier();
    avail[1] = 1;
    barrier();
    outw(io + 0x10, 1);
    for (int spins = 0; used[1] != 1; spins++)
        if (spins > 1000) return 4;
    rt_puts("sent, isr "); rt_putu(inb(io + 0x13));
    rt_puts(" then "); rt_putu(inb(io + 0x13)); rt_putc('\n');
    return 0;
}
