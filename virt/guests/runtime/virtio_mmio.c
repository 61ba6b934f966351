#include "virtio_mmio.h"

#define REG(base, off) (*(volatile uint32_t *)((base) + (off)))

int vmmio_negotiate(uint64_t base, uint32_t device_id, uint32_t feature_bits)
{
    if (REG(base, 0x000) != 0x74726976 || REG(base, 0x004) != 2 || REG(base, 0x008) != device_id)
        return -1;
    REG(base, 0x070) = 0;
    REG(base, 0x070) = 1;               /* ACKNOWLEDGE */
    REG(base, 0x070) = 1 | 2;           /* DRIVER */
    REG(base, 0x014) = 0;
    uint32_t f0 = REG(base, 0x010);
    REG(base, 0x014) = 1;
    uint32_t f1 = REG(base, 0x010);
    if ((f0 & feature_bits) != feature_bits || !(f1 & 1u))
        return -2;
    REG(base, 0x024) = 0; REG(base, 0x020) = feature_bits;
    REG(base, 0x024) = 1; REG(base, 0x020) = 1u;       /* VIRTIO_F_VERSION_1 */
    REG(base, 0x070) = 1 | 2 | 8;       /* FEATURES_OK */
    if (!(REG(base, 0x070) & 8))
        return -3;
    return 0;
}

void vmmio_queue(uint64_t base, uint32_t index, uint32_t size, const void *desc, const void *avail, const void *used)
{
    uint64_t d = (uint64_t)desc, a = (uint64_t)avail, u = (uint64_t)used;
    REG(base, 0x030) = index;
    REG(base, 0x038) = size;
    REG(base, 0x080) = (uint32_t)d; REG(base, 0x084) = (uint32_t)(d >> 32);
    REG(base, 0x090) = (uint32_t)a; REG(base, 0x094) = (uint32_t)(a >> 32);
    REG(base, 0x0A0) = (uint32_t)u; REG(base, 0x0A4) = (uint32_t)(u >> 32);
    REG(base, 0x044) = 1;
}

void vmmio_driver_ok(uint64_t base)
{
    REG(base, 0x070) = 1 | 2 | 8 | 4;   /* DRIVER_OK */
}
