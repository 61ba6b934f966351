/* A polling virtio-blk driver for virtio-mmio version 2 (virtio 1.x, split rings), one request at
 * a time: the VMM serves a request when it is notified (virt/Devices/VirtioBlk.cs rule 2), so each
 * call returns with its status. */
#ifndef VIRTIO_BLK_H
#define VIRTIO_BLK_H
#include "rt.h"

#define VBLK_SECTOR 512
#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2

/* Returns 0 on success, a negative step number on failure. */
int vblk_init(uint64_t mmio_base);
/* The disk's size in 512-byte sectors (the config space). */
uint64_t vblk_capacity(void);
/* Each returns the request's status byte (VBLK_S_*), or 0xFF if the device did not answer. */
uint8_t vblk_read(uint64_t sector, void *buf, uint32_t len);
uint8_t vblk_write(uint64_t sector, const void *buf, uint32_t len);
uint8_t vblk_flush(void);
/* The serial, NUL-padded to 20 bytes; id must hold 21 (it is NUL-terminated). */
uint8_t vblk_get_id(char *id);
/* Any request type, for the guests that test the device's refusals. */
uint8_t vblk_request(uint32_t type, uint64_t sector, void *buf, uint32_t len, int device_writes);
uint32_t vblk_status(void);

#endif
