#include "rt.h"

struct boot_info *rt_boot;

__attribute__((section(".text.start"), noreturn)) void _start(struct boot_info *bi)
{
    rt_boot = bi;
    int status = bi->magic == BOOT_MAGIC ? main() : 99;
    rt_poweroff((uint32_t)status);
}

void rt_putc(char c)
{
    uint16_t port = (uint16_t)rt_boot->uart_port;
    while (!(inb(port + 5) & 0x20))
        ;
    outb(port, (uint8_t)c);
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}

void rt_putu(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    rt_puts(&buf[i]);
}

void rt_puthex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[19];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 16; i++)
        buf[2 + i] = digits[(v >> (60 - 4 * i)) & 15];
    buf[18] = 0;
    rt_puts(buf);
}

uint64_t rt_now_ns(void)
{
    uint16_t port = (uint16_t)rt_boot->timer_port;
    uint64_t lo = inl(port);
    uint64_t hi = inl(port + 4);
    return (hi << 32) | lo;
}

/* Waits with sti; hlt: the VMM wakes the vCPU at the deadline (Vmm.cs rule 4). */
void rt_sleep_us(uint32_t us)
{
    uint16_t port = (uint16_t)rt_boot->timer_port;
    outl(port + 8, us);
    while (!inl(port + 12))
        rt_idle();
}

void rt_idle(void)
{
    __asm__ volatile("sti; hlt; cli" ::: "memory");
}

void rt_poweroff(uint32_t status)
{
    outl((uint16_t)rt_boot->poweroff_port, status);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void *memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
