/* A polling virtio-net driver for virtio-mmio version 2 (virtio 1.x, split rings). */
#ifndef VIRTIO_NET_H
#define VIRTIO_NET_H
#include "rt.h"

#define VNET_QUEUE 16
#define VNET_BUF 2048
#define VNET_HDR 12

/* Returns 0 on success, a negative step number on failure. */
int vnet_init(uint64_t mmio_base);
const uint8_t *vnet_mac(void);
/* Sends one Ethernet frame (without the virtio header). */
void vnet_send(const void *frame, uint32_t len);
/* Points *frame at the next received frame and returns its length, or 0 if none; the buffer
 * stays valid until vnet_release. */
uint32_t vnet_poll(uint8_t **frame);
void vnet_release(void);
/* The device status register (0x40: the device needs a reset, it met a malformed ring). */
uint32_t vnet_status(void);

#endif
