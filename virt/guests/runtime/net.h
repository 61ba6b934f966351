/* A minimal IPv4 host on one virtio-net NIC: answers ARP for its address, ICMP echo, and UDP
 * echo on port 7. */
#ifndef NET_H
#define NET_H
#include "rt.h"

struct net_stats { uint64_t arp, icmp, udp, dropped; };

void net_init(uint32_t ip);
/* Handles one received frame if there is one; returns 1 if it did. */
int net_poll(void);
extern struct net_stats net_stats;

#endif
