/* Floating point and vectorisable loops as gcc compiles them at every level: double and float
 * arithmetic, conversions, square roots, comparisons, series, a Mandelbrot grid, a small matrix
 * product, and integer loops that -O3 turns into SSE (and -march=x86-64-v2 into SSE4.2, -mbmi
 * -mbmi2 into BMI). Every result is printed as its bits. The tests build it as a guest and, with
 * host_shim.c, as an ordinary program: the real CPU's output is the reference. */
#include "runtime/rt.h"

#define N 256

static double da[N], db[N], dc[N];
static float fa[N], fb[N], fc[N];
static int32_t ia[N], ib[N], ic[N];
static uint8_t ua[N], ub[N];
static int16_t sa[N], sb[N];

static void put(const char *name, uint64_t v)
{
    rt_puts(name);
    rt_putc('=');
    rt_puthex(v);
    rt_putc('\n');
}

static uint64_t dbits(double d) { union { double d; uint64_t u; } x = { d }; return x.u; }
static uint64_t fbits(float f) { union { float f; uint32_t u; } x = { f }; return x.u; }

static double sqrt_sd(double x)
{
    double r;
    __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x));
    return r;
}

static uint64_t state = 0x9E3779B97F4A7C15UL;
static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

__attribute__((noinline)) static double leibniz(int terms)
{
    double s = 0;
    for (int k = 0; k < terms; k++)
        s += (k & 1 ? -4.0 : 4.0) / (2 * k + 1);
    return s;
}

__attribute__((noinline)) static double exp_series(double x)
{
    double term = 1, sum = 1;
    for (int k = 1; k < 30; k++) {
        term *= x / k;
        sum += term;
    }
    return sum;
}

__attribute__((noinline)) static uint64_t mandelbrot(void)
{
    uint64_t h = 0;
    for (int py = 0; py < 24; py++)
        for (int px = 0; px < 48; px++) {
            double x0 = -2.0 + px * (3.0 / 48), y0 = -1.2 + py * (2.4 / 24), x = 0, y = 0;
            int it = 0;
            while (x * x + y * y <= 4.0 && it < 100) {
                double t = x * x - y * y + x0;
                y = 2 * x * y + y0;
                x = t;
                it++;
            }
            h = h * 31 + (uint64_t)it;
        }
    return h;
}

__attribute__((noinline)) static uint64_t matmul(void)
{
    static double m[8][8], n[8][8], p[8][8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            m[i][j] = (i + 1) * 0.5 - j * 0.25;
            n[i][j] = (double)(i * j) / 7.0 + 1.0 / (j + 1);
        }
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) {
            double s = 0;
            for (int k = 0; k < 8; k++)
                s += m[i][k] * n[k][j];
            p[i][j] = s;
        }
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            h = h * 1099511628211UL ^ dbits(p[i][j]);
    return h;
}

__attribute__((noinline)) static void vector_loops(void)
{
    for (int i = 0; i < N; i++) {
        dc[i] = da[i] * db[i] + dc[i];
        fc[i] = fa[i] / (fb[i] + 3.0f) - fc[i];
        ic[i] = ia[i] * 3 + (ib[i] >> 2);
        ua[i] = (uint8_t)(ua[i] + ub[i] > 255 ? 255 : ua[i] + ub[i]);
        sa[i] = (int16_t)(sa[i] * sb[i]);
    }
}

__attribute__((noinline)) static uint64_t reductions(void)
{
    int32_t mx = ia[0], mn = ia[0];
    uint64_t bytes = 0, pop = 0, low = 0;
    double dsum = 0;
    float fmax = fa[0];
    for (int i = 0; i < N; i++) {
        mx = ia[i] > mx ? ia[i] : mx;
        mn = ia[i] < mn ? ia[i] : mn;
        bytes += ua[i];
        dsum += da[i];
        fmax = fa[i] > fmax ? fa[i] : fmax;
        pop += (uint64_t)__builtin_popcountll((uint64_t)ib[i] * 0x9E3779B97F4A7C15UL);
        uint64_t v = (uint64_t)ia[i] | 1;
        low ^= v & (v - 1);
        low += v >> (ib[i] & 63);
    }
    return (uint64_t)mx * 31 + (uint64_t)mn + bytes * 7 + dbits(dsum) + fbits(fmax) + pop * 131 + low;
}

__attribute__((noinline)) static size_t span_of(const uint8_t *s, uint8_t stop)
{
    size_t n = 0;
    while (n < N && s[n] != stop)
        n++;
    return n;
}

int main(void)
{
    for (int i = 0; i < N; i++) {
        uint64_t r = next();
        da[i] = (double)(int64_t)r / 9007199254740992.0;
        db[i] = (double)(r >> 40) * 1e-3 - 4000.0;
        dc[i] = (double)(uint32_t)r;
        fa[i] = (float)(int32_t)(r >> 16) / 65536.0f;
        fb[i] = (float)(r & 0xFFF);
        fc[i] = (float)i * 0.1f;
        ia[i] = (int32_t)(r >> 7);
        ib[i] = (int32_t)r;
        ua[i] = (uint8_t)(r >> 24);
        ub[i] = (uint8_t)(r >> 32);
        sa[i] = (int16_t)(r >> 3);
        sb[i] = (int16_t)(r >> 48);
    }
    put("leibniz", dbits(leibniz(100000)));
    put("exp1", dbits(exp_series(1.0)));
    put("exp-7.5", dbits(exp_series(-7.5)));
    put("sqrt2", dbits(sqrt_sd(2.0)));
    put("mandelbrot", mandelbrot());
    put("matmul", matmul());
    vector_loops();
    vector_loops();
    uint64_t h = 0;
    for (int i = 0; i < N; i++)
        h = h * 31 + dbits(dc[i]) + fbits(fc[i]) + (uint64_t)(uint32_t)ic[i] + ua[i] + (uint16_t)sa[i];
    put("vectors", h);
    put("reductions", reductions());
    put("span", span_of(ua, 0xFF) * 1000 + span_of(ub, ub[200]));
    uint64_t conv = 0;
    for (int i = 0; i < N; i++) {
        double d = da[i] * 1e12;
        conv += (uint64_t)(int64_t)d + (uint64_t)(int32_t)(float)db[i] + (uint64_t)(d > 0 ? (uint64_t)d : 0);
        conv ^= fbits((float)da[i]) + dbits((double)fa[i]) + dbits((double)(int64_t)conv);
        conv += (uint64_t)(db[i] < da[i]) + (uint64_t)(fa[i] >= fb[i]) * 2 + (uint64_t)(da[i] == da[i]) * 4;
        conv += dbits(da[i] < 0 ? -da[i] : da[i]);
    }
    put("conversions", conv);
    double tiny = 1e-300, huge = 1e300;
    put("underflow", dbits(tiny * tiny));
    put("overflow", dbits(huge * huge));
    put("nan", dbits((huge * huge) - (huge * huge)));
    put("denormal", dbits(tiny / 1e10));
    put("float-round", fbits((float)1.0000001192092896) + fbits((float)3.4e38 * 10.0f));
    return 0;
}
