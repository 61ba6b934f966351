/* The guest runtime: boot info, serial console, timer, power off, and the C library bits gcc
 * expects from a freestanding program (memcpy, memset, memcmp). See virt/Vmm.cs for the boot
 * protocol these structures follow. */
#ifndef RT_H
#define RT_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned long size_t;

struct boot_info {
    uint64_t magic, version, mem_size, image_base, image_size;
    uint64_t uart_port, timer_port, poweroff_port, tsc_hz;
    uint64_t virtio_count, virtio_mmio[8];   /* virtio-net devices */
    uint64_t blk_count, blk_mmio[8];         /* virtio-blk devices */
};

#define BOOT_MAGIC 0x544F4F42534F4D53UL

extern struct boot_info *rt_boot;

int main(void);

void rt_putc(char c);
void rt_puts(const char *s);
void rt_putu(uint64_t v);
void rt_puthex(uint64_t v);
uint64_t rt_now_ns(void);
void rt_sleep_us(uint32_t us);
void rt_idle(void);
__attribute__((noreturn)) void rt_poweroff(uint32_t status);

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }
#define barrier() __asm__ volatile("" ::: "memory")

#endif
