/* The virtio-mmio version 2 steps every driver here takes (virtio 1.x, section 4.2.3): the
 * handshake up to FEATURES_OK, a split ring's addresses, DRIVER_OK. */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H
#include "rt.h"

/* Checks the magic, version 2 and device_id, acknowledges the device and accepts VIRTIO_F_VERSION_1
 * and the device features in feature_bits (all of which the device must offer). Returns 0, or a
 * negative step number: -1 not this device, -2 a feature missing, -3 FEATURES_OK refused. */
int vmmio_negotiate(uint64_t base, uint32_t device_id, uint32_t feature_bits);
/* Gives queue index its size and the addresses of its three parts, and makes it ready. */
void vmmio_queue(uint64_t base, uint32_t index, uint32_t size, const void *desc, const void *avail, const void *used);
/* Sets DRIVER_OK: the driver is ready. */
void vmmio_driver_ok(uint64_t base);

#endif
