/* Exercises the C that freestanding programs are made of (64-bit and narrow integer arithmetic,
 * division, __int128, shifts, bit builtins, struct copies, switch tables, function pointers,
 * recursion, string functions) and prints every result. The tests build it twice: as a guest,
 * and as an ordinary program for the host with host_shim.c; the real CPU's output is the
 * reference for the guest's. */
#include "runtime/rt.h"

struct big { uint64_t v[9]; uint8_t tag; };

static void put(const char *name, uint64_t v)
{
    rt_puts(name);
    rt_putc('=');
    rt_puthex(v);
    rt_putc('\n');
}

__attribute__((noinline)) static uint64_t fib(uint64_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static struct big make_big(uint64_t seed)
{
    struct big b;
    for (int i = 0; i < 9; i++)
        b.v[i] = seed * (uint64_t)(i + 1) ^ (seed >> i);
    b.tag = (uint8_t)seed;
    return b;
}

__attribute__((noinline)) static int classify(int x)
{
    switch (x) {
    case 0: return 11;
    case 1: return 23;
    case 2: return 37;
    case 3: return 41;
    case 4: return 59;
    case 5: return 61;
    case 6: return 73;
    case 7: return 89;
    default: return -1;
    }
}

static uint64_t op_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t op_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t op_xor(uint64_t a, uint64_t b) { return a ^ b; }
static uint64_t (*const ops[])(uint64_t, uint64_t) = { op_add, op_mul, op_xor };

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

__attribute__((noinline)) static size_t my_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int main(void)
{
    uint64_t s = 0x123456789ABCDEF1UL;
    uint64_t acc = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t a = xorshift(&s), b = xorshift(&s) | 1;
        int64_t sa = (int64_t)a, sb = (int64_t)b;
        acc += a / b + a % b;
        acc ^= (uint64_t)(sa / (((sb >> 40) & 0x7FFFFF) | 1)) + (uint64_t)(sa % 1000003) + (uint64_t)(sa / -7);
        acc += (uint32_t)a / ((uint32_t)b | 1) + (uint16_t)a % ((uint16_t)b | 1) + (uint8_t)a / ((uint8_t)b | 1);
        acc += (uint64_t)((int32_t)a / (((int32_t)b & 0x7FFF) | 1)) + (uint64_t)((int8_t)a * (int16_t)b);
        unsigned __int128 p = (unsigned __int128)a * b;
        acc ^= (uint64_t)(p >> 64) + (uint64_t)p;
        __int128 q = (__int128)sa * sb;
        acc += (uint64_t)(q >> 3) ^ (uint64_t)(q >> 67);
        acc += (a >> (b & 63)) + (a << (b & 31)) + (uint64_t)(sa >> (b & 63));
        acc += (uint64_t)__builtin_popcountll(a) + (uint64_t)__builtin_ctzll(b) + (uint64_t)__builtin_clzll(b);
        acc += __builtin_bswap64(a) ^ __builtin_bswap32((uint32_t)b);
        acc += (a > b) + (sa < sb) * 2 + ((uint32_t)a >= (uint32_t)b) * 4 + ((int16_t)a <= (int16_t)b) * 8;
        acc = (acc << 5 | acc >> 59) + ops[i % 3](a, b);
        acc += (uint64_t)classify((int)(a % 10));
    }
    put("arith", acc);
    put("fib", fib(20));

    struct big b1 = make_big(0xDEADBEEFUL), b2;
    b2 = b1;
    b2.v[4] ^= 1;
    uint64_t sum = 0;
    for (int i = 0; i < 9; i++)
        sum += b2.v[i] * (uint64_t)(i + 3);
    put("struct", sum + b2.tag + (uint64_t)(memcmp(&b1, &b2, sizeof b1) != 0));

    static char buf[256];
    const char *msg = "the quick brown fox jumps over the lazy dog";
    size_t n = my_strlen(msg);
    memcpy(buf, msg, n + 1);
    memset(buf + 4, '*', 5);
    uint64_t h = 1469598103934665603UL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)buf[i]) * 1099511628211UL;
    put("string", h ^ n);

    int64_t neg = -1234567;
    put("signed", (uint64_t)(neg / 7) ^ (uint64_t)(neg % 7) ^ (uint64_t)(neg >> 3) ^ (uint64_t)((uint64_t)neg >> 3));
    return 0;
}
