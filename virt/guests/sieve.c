/* A CPU-bound guest: a sieve of Eratosthenes below N, then ROUNDS passes of an FNV-1a hash and a
 * 64-bit mixing checksum over the sieve. Prints the prime count and the checksum; the tests
 * compute both on the host and compare. */
#include "runtime/rt.h"

#ifndef N
#define N 100000
#endif
#ifndef ROUNDS
#define ROUNDS 4
#endif

static uint8_t composite[N];

struct pair { uint64_t a, b, c, d; };

static struct pair mix(struct pair p, uint64_t v)
{
    struct pair q = p;
    q.a ^= v;
    q.b += q.a * 0x9E3779B97F4A7C15UL;
    q.c = (q.c << 7 | q.c >> 57) ^ q.b;
    q.d += q.c / (v | 1) + q.a % 13;
    return q;
}

int main(void)
{
    uint32_t primes = 0;
    for (uint32_t i = 2; i < N; i++) {
        if (composite[i])
            continue;
        primes++;
        for (uint64_t j = (uint64_t)i * i; j < N; j += i)
            composite[j] = 1;
    }
    uint64_t h = 0xcbf29ce484222325UL;
    struct pair p = { 1, 2, 3, 4 };
    for (int r = 0; r < ROUNDS; r++) {
        for (uint32_t i = 0; i < N; i++) {
            h ^= composite[i] + (uint8_t)i;
            h *= 0x100000001b3UL;
        }
        p = mix(p, h);
    }
    rt_puts("primes ");
    rt_putu(primes);
    rt_puts(" hash ");
    rt_puthex(h);
    rt_puts(" mix ");
    rt_puthex(p.a ^ p.b ^ p.c ^ p.d);
    rt_putc('\n');
    return 0;
}
