/* A network guest: brings up the first virtio-net NIC at GUEST_IP and answers ARP, ping and UDP
 * echo (port 7), idling in sti; hlt between frames, until the host stops it. */
#include "runtime/rt.h"
#include "runtime/virtio_net.h"
#include "runtime/net.h"

#ifndef GUEST_IP
#define GUEST_IP 0x0A000002 /* 10.0.0.2 */
#endif

int main(void)
{
    if (rt_boot->virtio_count < 1) {
        rt_puts("no nic\n");
        return 1;
    }
    int err = vnet_init(rt_boot->virtio_mmio[0]);
    if (err) {
        rt_puts("virtio-net init failed at step ");
        rt_putu((uint64_t)-err);
        rt_putc('\n');
        return 2;
    }
    const uint8_t *m = vnet_mac();
    rt_puts("net up, mac ");
    for (int i = 0; i < 6; i++) {
        static const char hex[] = "0123456789abcdef";
        rt_putc(hex[m[i] >> 4]);
        rt_putc(hex[m[i] & 15]);
        if (i < 5)
            rt_putc(':');
    }
    rt_putc('\n');
    net_init(GUEST_IP);
    for (;;) {
        while (net_poll())
            ;
        rt_idle();
    }
}
