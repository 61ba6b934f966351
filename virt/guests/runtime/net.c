#include "net.h"
#include "virtio_net.h"

struct net_stats net_stats;
static uint32_t my_ip;
static uint8_t out[VNET_BUF];

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static uint16_t checksum(const uint8_t *p, uint32_t len)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

void net_init(uint32_t ip) { my_ip = ip; }

static void reply_eth(const uint8_t *in)
{
    memcpy(out, in + 6, 6);
    memcpy(out + 6, vnet_mac(), 6);
    memcpy(out + 12, in + 12, 2);
}

static void arp(const uint8_t *f, uint32_t len)
{
    const uint8_t *a = f + 14;
    if (len < 42 || get16(a) != 1 || get16(a + 2) != 0x0800 || get16(a + 6) != 1 || get32(a + 24) != my_ip)
        return;
    reply_eth(f);
    uint8_t *r = out + 14;
    memcpy(r, a, 6);            /* htype, ptype, hlen, plen */
    put16(r + 6, 2);            /* reply */
    memcpy(r + 8, vnet_mac(), 6);
    put32(r + 14, my_ip);
    memcpy(r + 18, a + 8, 10);  /* sender MAC and IP become the target */
    net_stats.arp++;
    vnet_send(out, 42);
}

static void ipv4(const uint8_t *f, uint32_t len)
{
    const uint8_t *ip = f + 14;
    if (len < 34 || (ip[0] >> 4) != 4)
        return;
    uint32_t ihl = (ip[0] & 15u) * 4, total = get16(ip + 2);
    if (ihl < 20 || total < ihl || 14 + total > len || get32(ip + 16) != my_ip || checksum(ip, ihl) != 0)
        return;
    if (get16(ip + 6) & 0x3FFF)
        return;                 /* fragments: not handled */
    const uint8_t *l4 = ip + ihl;
    uint32_t l4len = total - ihl;
    reply_eth(f);
    uint8_t *rip = out + 14, *r4 = rip + 20;
    if (ip[9] == 1 && l4len >= 8 && l4[0] == 8) {
        memcpy(r4, l4, l4len);
        r4[0] = 0;
        put16(r4 + 2, 0);
        put16(r4 + 2, checksum(r4, l4len));
        net_stats.icmp++;
    } else if (ip[9] == 17 && l4len >= 8 && get16(l4 + 2) == 7) {
        memcpy(r4, l4, l4len);
        put16(r4, get16(l4 + 2));
        put16(r4 + 2, get16(l4));
        put16(r4 + 6, 0);       /* no UDP checksum (allowed over IPv4) */
        net_stats.udp++;
    } else {
        net_stats.dropped++;
        return;
    }
    rip[0] = 0x45;
    rip[1] = 0;
    put16(rip + 2, (uint16_t)(20 + l4len));
    put16(rip + 4, get16(ip + 4));
    put16(rip + 6, 0);
    rip[8] = 64;
    rip[9] = ip[9];
    put16(rip + 10, 0);
    put32(rip + 12, my_ip);
    memcpy(rip + 16, ip + 12, 4);
    put16(rip + 10, checksum(rip, 20));
    vnet_send(out, 14 + 20 + l4len);
}

int net_poll(void)
{
    uint8_t *f;
    uint32_t len = vnet_poll(&f);
    if (!len)
        return 0;
    uint16_t type = get16(f + 12);
    if (type == 0x0806)
        arp(f, len);
    else if (type == 0x0800)
        ipv4(f, len);
    else
        net_stats.dropped++;
    vnet_release();
    return 1;
}
