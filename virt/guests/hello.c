/* Prints what the boot-info block says, sleeps 2 ms on the timer, and powers off with status 7. */
#include "runtime/rt.h"

int main(void)
{
    rt_puts("hello from the guest\n");
    rt_puts("memory ");
    rt_putu(rt_boot->mem_size >> 20);
    rt_puts(" MiB, nics ");
    rt_putu(rt_boot->virtio_count);
    rt_putc('\n');
    uint64_t t0 = rt_now_ns();
    rt_sleep_us(2000);
    uint64_t slept = rt_now_ns() - t0;
    rt_puts(slept >= 2000000 ? "slept 2 ms\n" : "woke early\n");
    return 7;
}
