using System.Numerics;

namespace SmartOS.Virt.Internal;

/// <summary>
/// IEEE 754 binary32 and binary64 arithmetic in software, as SSE computes it under MXCSR: every
/// result is the exact value rounded once in the MXCSR rounding mode, and the exception flags are
/// what the SSE unit reports (Interpreter.Sse.cs). Nothing here uses the host's floating point, so
/// results do not depend on the host's rounding mode or NaN rules.
///
/// Values are carried as (sign, e, sig): value = sig * 2^(e - 62) with the leading one of sig at bit
/// 62 and a sticky bit 0 that records whether anything below was lost. Operations compute exactly
/// in 128-bit integers (products, quotients with remainder, integer square roots) and RoundPack
/// rounds once.
///
/// x86's rules, as the Intel SDM (vol. 1, 4.8.3 and 11.5) states them:
///   1. A NaN operand: the first source's NaN is the result (the second's if only it is a NaN),
///      quieted; an SNaN raises IE. An invalid operation (inf - inf, 0 * inf, 0/0, inf/inf, sqrt of a
///      negative) returns the default NaN (negative, quiet, zero payload) and raises IE.
///   2. Tininess is detected after rounding; underflow (UE) is flagged when the result is tiny and
///      inexact. Under FTZ a tiny result becomes a zero of its sign with UE and PE.
///   3. DAZ turns denormal operands into zeros of their sign before anything else; without it a
///      denormal operand of an arithmetic operation raises DE (not when the result is a NaN or an
///      invalid or divide-by-zero case).
///   4. Overflow returns infinity or the largest finite value by rounding mode, with OE and PE.
/// </summary>
internal static class SoftFloat
{
    public const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, DAZ = 0x40, FTZ = 0x8000;
    public const int RoundNearest = 0, RoundDown = 1, RoundUp = 2, RoundZero = 3;

    /// <summary>Format constants: precision p (with the hidden bit), exponent bias, fraction width.</summary>
    private static int P(bool d) => d ? 53 : 24;
    private static int Bias(bool d) => d ? 1023 : 127;
    private static int ExpMax(bool d) => d ? 0x7FF : 0xFF;
    private static int Frac(bool d) => d ? 52 : 23;
    private static ulong SignBit(bool d) => d ? 1UL << 63 : 1UL << 31;
    private static ulong QuietBit(bool d) => d ? 1UL << 51 : 1UL << 22;
    public static ulong DefaultNaN(bool d) => d ? 0xFFF8_0000_0000_0000UL : 0xFFC0_0000UL;

    private static int ExpOf(bool d, ulong v) => (int)(v >> Frac(d)) & ExpMax(d);
    private static ulong FracOf(bool d, ulong v) => v & ((1UL << Frac(d)) - 1);
    public static bool IsNaN(bool d, ulong v) => ExpOf(d, v) == ExpMax(d) && FracOf(d, v) != 0;
    public static bool IsSNaN(bool d, ulong v) => IsNaN(d, v) && (v & QuietBit(d)) == 0;
    private static bool IsInf(bool d, ulong v) => ExpOf(d, v) == ExpMax(d) && FracOf(d, v) == 0;
    private static bool IsZero(bool d, ulong v) => (v & ~SignBit(d)) == 0;
    private static bool IsDenormal(bool d, ulong v) => ExpOf(d, v) == 0 && FracOf(d, v) != 0;
    private static bool Neg(bool d, ulong v) => (v & SignBit(d)) != 0;
    private static ulong Zero(bool d, bool neg) => neg ? SignBit(d) : 0;
    private static ulong Inf(bool d, bool neg) => Zero(d, neg) | ((ulong)ExpMax(d) << Frac(d));
    private static int Mode(uint mxcsr) => (int)(mxcsr >> 13) & 3;

    /// <summary>DAZ, then DE for a denormal that survives it.</summary>
    private static ulong Operand(bool d, ulong v, uint mxcsr, ref uint denormal)
    {
        if (!IsDenormal(d, v)) return v;
        if ((mxcsr & DAZ) != 0) return Zero(d, Neg(d, v));
        denormal = DE;
        return v;
    }

    /// <summary>Rule 1 for two operands; true when the result is a NaN.</summary>
    private static bool PropagateNaN(bool d, ulong a, ulong b, ref uint flags, out ulong result)
    {
        result = 0;
        bool na = IsNaN(d, a), nb = IsNaN(d, b);
        if (!na && !nb) return false;
        if (IsSNaN(d, a) || IsSNaN(d, b)) flags |= IE;
        result = (na ? a : b) | QuietBit(d);
        return true;
    }

    private static (bool Neg, int E, ulong Sig) Unpack(bool d, ulong v)
    {
        int be = ExpOf(d, v);
        ulong m = FracOf(d, v);
        int q;
        if (be == 0) q = 1 - Bias(d) - Frac(d);
        else { m |= 1UL << Frac(d); q = be - Bias(d) - Frac(d); }
        int lead = 63 - BitOperations.LeadingZeroCount(m);
        return (Neg(d, v), lead + q, m << (62 - lead));
    }

    /// <summary>Normalizes a 128-bit magnitude whose bit 0 is at 2^scale into (e, sig63 with sticky).</summary>
    private static (int E, ulong Sig) Normalize(UInt128 x, int scale)
    {
        int lead = 127 - (int)UInt128.LeadingZeroCount(x);
        ulong sig;
        if (lead > 62)
        {
            int sh = lead - 62;
            sig = (ulong)(x >> sh);
            if ((x & ((UInt128.One << sh) - 1)) != 0) sig |= 1;
        }
        else sig = (ulong)x << (62 - lead);
        return (lead + scale, sig);
    }

    /// <summary>Rounds sig (63 bits) dropping its low <paramref name="drop"/> bits; returns the kept bits.</summary>
    private static ulong RoundBits(ulong sig, int drop, bool neg, int mode, out bool inexact)
    {
        if (drop > 63)
        {
            inexact = sig != 0;
            // The whole value is below half a unit.
            return mode switch { RoundDown => neg && inexact ? 1UL : 0, RoundUp => !neg && inexact ? 1UL : 0, _ => 0 };
        }
        ulong unit = 1UL << drop, rem = sig & (unit - 1), kept = sig >> drop, half = unit >> 1;
        inexact = rem != 0;
        bool up = mode switch
        {
            RoundNearest => rem > half || (rem == half && (kept & 1) != 0),
            RoundDown => neg && inexact,
            RoundUp => !neg && inexact,
            _ => false,
        };
        return up ? kept + 1 : kept;
    }

    /// <summary>Rounds (neg, e, sig) into format <paramref name="d"/> under mxcsr (rules 2 and 4).</summary>
    public static ulong RoundPack(bool d, bool neg, int e, ulong sig, uint mxcsr, ref uint flags)
    {
        int p = P(d), emin = 1 - Bias(d), emax = Bias(d), mode = Mode(mxcsr);
        ulong unbounded = RoundBits(sig, 63 - p, neg, mode, out bool inexact);
        int ue = e + (unbounded >> p != 0 ? 1 : 0);
        if (ue > emax)
        {
            flags |= OE | PE;
            bool toInf = mode switch { RoundNearest => true, RoundDown => neg, RoundUp => !neg, _ => false };
            return toInf ? Inf(d, neg) : Zero(d, neg) | (((ulong)(ExpMax(d) - 1) << Frac(d)) | ((1UL << Frac(d)) - 1));
        }
        if (ue >= emin)
        {
            if (inexact) flags |= PE;
            if (unbounded >> p != 0) unbounded >>= 1;
            return Zero(d, neg) | ((ulong)(ue + Bias(d)) << Frac(d)) | (unbounded & ((1UL << Frac(d)) - 1));
        }
        // Tiny: the subnormal grid has a unit of 2^(emin - p + 1).
        if ((mxcsr & FTZ) != 0)
        {
            flags |= UE | PE;
            return Zero(d, neg);
        }
        ulong sub = RoundBits(sig, 63 - (e - emin + p), neg, mode, out bool subInexact);
        if (subInexact) flags |= UE | PE;
        // A carry into bit p-1 is the smallest normal, which the encoding gives by itself.
        return Zero(d, neg) | sub;
    }

    // ---- arithmetic -----------------------------------------------------------------------

    public static ulong Add(bool d, ulong a, ulong b, uint mxcsr, ref uint flags) => AddSub(d, a, b, false, mxcsr, ref flags);
    public static ulong Sub(bool d, ulong a, ulong b, uint mxcsr, ref uint flags) => AddSub(d, a, b, true, mxcsr, ref flags);

    private static ulong AddSub(bool d, ulong a, ulong b, bool subtract, uint mxcsr, ref uint flags)
    {
        if (PropagateNaN(d, a, b, ref flags, out ulong nan)) return nan;
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        b = Operand(d, b, mxcsr, ref den);
        if (subtract) b ^= SignBit(d);
        bool ia = IsInf(d, a), ib = IsInf(d, b);
        if (ia || ib)
        {
            if (ia && ib && Neg(d, a) != Neg(d, b)) { flags |= IE; return DefaultNaN(d); }
            flags |= den;
            return ia ? a : b;
        }
        flags |= den;
        bool za = IsZero(d, a), zb = IsZero(d, b);
        if (za && zb) return Neg(d, a) == Neg(d, b) ? a : Zero(d, Mode(mxcsr) == RoundDown);
        if (za) return Flush(d, b, mxcsr, ref flags);
        if (zb) return Flush(d, a, mxcsr, ref flags);
        var x = Unpack(d, a);
        var y = Unpack(d, b);
        if (x.E < y.E || (x.E == y.E && x.Sig < y.Sig)) (x, y) = (y, x);
        int diff = x.E - y.E;
        UInt128 big = (UInt128)x.Sig << 64, small;
        if (diff >= 127) small = 1;
        else
        {
            UInt128 ys = (UInt128)y.Sig << 64;
            small = ys >> diff;
            if ((ys & ((UInt128.One << diff) - 1)) != 0) small |= 1;
        }
        UInt128 s = x.Neg == y.Neg ? big + small : big - small;
        if (s == 0) return Zero(d, Mode(mxcsr) == RoundDown);
        var (e, sig) = Normalize(s, x.E - 126);
        return RoundPack(d, x.Neg, e, sig, mxcsr, ref flags);
    }

    /// <summary>An exact result is still tiny when it is a denormal: FTZ flushes it (rule 2).</summary>
    private static ulong Flush(bool d, ulong r, uint mxcsr, ref uint flags)
    {
        if ((mxcsr & FTZ) == 0 || !IsDenormal(d, r)) return r;
        flags |= UE | PE;
        return Zero(d, Neg(d, r));
    }

    public static ulong Mul(bool d, ulong a, ulong b, uint mxcsr, ref uint flags)
    {
        if (PropagateNaN(d, a, b, ref flags, out ulong nan)) return nan;
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        b = Operand(d, b, mxcsr, ref den);
        bool neg = Neg(d, a) != Neg(d, b);
        bool ia = IsInf(d, a), ib = IsInf(d, b), za = IsZero(d, a), zb = IsZero(d, b);
        if ((ia && zb) || (ib && za)) { flags |= IE; return DefaultNaN(d); }
        flags |= den;
        if (ia || ib) return Inf(d, neg);
        if (za || zb) return Zero(d, neg);
        var x = Unpack(d, a);
        var y = Unpack(d, b);
        var (e, sig) = Normalize((UInt128)x.Sig * y.Sig, x.E + y.E - 124);
        return RoundPack(d, neg, e, sig, mxcsr, ref flags);
    }

    public static ulong Div(bool d, ulong a, ulong b, uint mxcsr, ref uint flags)
    {
        if (PropagateNaN(d, a, b, ref flags, out ulong nan)) return nan;
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        b = Operand(d, b, mxcsr, ref den);
        bool neg = Neg(d, a) != Neg(d, b);
        bool ia = IsInf(d, a), ib = IsInf(d, b), za = IsZero(d, a), zb = IsZero(d, b);
        if ((ia && ib) || (za && zb)) { flags |= IE; return DefaultNaN(d); }
        if (ia) { flags |= den; return Inf(d, neg); }
        if (zb) { flags |= ZE; return Inf(d, neg); }
        flags |= den;
        if (ib || za) return Zero(d, neg);
        var x = Unpack(d, a);
        var y = Unpack(d, b);
        UInt128 n = (UInt128)x.Sig << 64;
        UInt128 q = n / y.Sig;
        if (n - q * y.Sig != 0) q |= 1;
        var (e, sig) = Normalize(q, x.E - y.E - 64);
        return RoundPack(d, neg, e, sig, mxcsr, ref flags);
    }

    public static ulong Sqrt(bool d, ulong a, uint mxcsr, ref uint flags)
    {
        if (IsNaN(d, a)) { if (IsSNaN(d, a)) flags |= IE; return a | QuietBit(d); }
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        if (IsZero(d, a)) return a;
        if (Neg(d, a)) { flags |= IE; return DefaultNaN(d); }
        flags |= den;
        if (IsInf(d, a)) return a;
        var x = Unpack(d, a);
        int exp = x.E - 62;
        int shift = ((exp - 64) & 1) == 0 ? 64 : 65;
        UInt128 n = (UInt128)x.Sig << shift;
        UInt128 root = ISqrt(n);
        if (root * root != n) root |= 1;
        var (e, sig) = Normalize(root, (exp - shift) / 2);
        return RoundPack(d, false, e, sig, mxcsr, ref flags);
    }

    private static UInt128 ISqrt(UInt128 n)
    {
        UInt128 root = 0, rem = 0;
        for (int i = 126; i >= 0; i -= 2)
        {
            rem = (rem << 2) | ((n >> i) & 3);
            UInt128 trial = (root << 2) | 1;
            root <<= 1;
            if (rem >= trial) { rem -= trial; root |= 1; }
        }
        return root;
    }

    /// <summary>minss/minsd/maxss/maxsd: the second source whenever either is a NaN or both are zero
    /// (any NaN raises IE), else the smaller/larger.</summary>
    public static ulong MinMax(bool d, ulong a, ulong b, bool max, uint mxcsr, ref uint flags)
    {
        uint den = 0;
        ulong x = Operand(d, a, mxcsr, ref den), y = Operand(d, b, mxcsr, ref den);
        // The second source, after DAZ, is the answer for any NaN.
        if (IsNaN(d, x) || IsNaN(d, y)) { flags |= IE; return y; }
        flags |= den;
        int c = CompareValues(d, x, y);
        if (c == 0 && IsZero(d, x)) return y;
        return (max ? c > 0 : c < 0) ? x : y;
    }

    /// <summary>Orders two non-NaN values: -1, 0, 1.</summary>
    private static int CompareValues(bool d, ulong a, ulong b)
    {
        if (IsZero(d, a) && IsZero(d, b)) return 0;
        bool na = Neg(d, a), nb = Neg(d, b);
        if (na != nb) return na ? -1 : 1;
        ulong ma = a & ~SignBit(d), mb = b & ~SignBit(d);
        int c = ma.CompareTo(mb);
        return na ? -c : c;
    }

    /// <summary>The ordering of a and b: -1 less, 0 equal, 1 greater, 2 unordered. IE for an SNaN, or
    /// for any NaN when <paramref name="signaling"/>; DE for denormals.</summary>
    public static int Compare(bool d, ulong a, ulong b, bool signaling, uint mxcsr, ref uint flags)
    {
        if (IsNaN(d, a) || IsNaN(d, b))
        {
            if (signaling || IsSNaN(d, a) || IsSNaN(d, b)) flags |= IE;
            return 2;
        }
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        b = Operand(d, b, mxcsr, ref den);
        flags |= den;
        return CompareValues(d, a, b);
    }

    // ---- conversions ----------------------------------------------------------------------

    /// <summary>cvtsi2ss/cvtsi2sd, cvtdq2ps/pd: a signed integer, rounded by MXCSR.</summary>
    public static ulong FromInt(bool d, long v, uint mxcsr, ref uint flags)
    {
        if (v == 0) return 0;
        bool neg = v < 0;
        ulong mag = neg ? (ulong)(-(v + 1)) + 1 : (ulong)v;
        var (e, sig) = Normalize(mag, 0);
        return RoundPack(d, neg, e, sig, mxcsr, ref flags);
    }

    /// <summary>cvt(t)ss2si/cvt(t)sd2si, cvt(t)ps2dq/pd2dq: to a signed integer of <paramref name="bits"/>;
    /// NaN and out-of-range give the integer indefinite (the most negative value) with IE.</summary>
    public static ulong ToInt(bool d, ulong a, int bits, bool truncate, uint mxcsr, ref uint flags)
    {
        ulong indefinite = 1UL << (bits - 1);
        if (IsNaN(d, a) || IsInf(d, a)) { flags |= IE; return indefinite; }
        // DAZ applies; conversions to integers do not report denormal operands (DE).
        uint ignored = 0;
        a = Operand(d, a, mxcsr, ref ignored);
        if (IsZero(d, a)) return 0;
        var x = Unpack(d, a);
        int mode = truncate ? RoundZero : Mode(mxcsr);
        if (x.E >= bits) { flags |= IE; return indefinite; }
        // Integer part: sig >> (62 - e); for e < 0 everything is fraction.
        bool inexact = false;
        ulong kept = x.E > 62 ? x.Sig << (x.E - 62) : RoundBits(x.Sig, 62 - x.E, x.Neg, mode, out inexact);
        ulong limit = x.Neg ? indefinite : indefinite - 1;
        if (kept > limit) { flags |= IE; return indefinite; }
        if (inexact) flags |= PE;
        ulong r = x.Neg ? (ulong)(-(long)kept) : kept;
        return bits == 64 ? r : r & 0xFFFF_FFFF;
    }

    /// <summary>cvtsd2ss (toDouble false) and cvtss2sd (true).</summary>
    public static ulong Convert(bool toDouble, ulong a, uint mxcsr, ref uint flags)
    {
        bool from = !toDouble;
        if (IsNaN(from, a))
        {
            if (IsSNaN(from, a)) flags |= IE;
            ulong frac = FracOf(from, a) | QuietBit(from);
            frac = toDouble ? frac << 29 : frac >> 29;
            return Inf(toDouble, Neg(from, a)) | frac;
        }
        uint den = 0;
        a = Operand(from, a, mxcsr, ref den);
        flags |= den;
        if (IsInf(from, a)) return Inf(toDouble, Neg(from, a));
        if (IsZero(from, a)) return Zero(toDouble, Neg(from, a));
        var x = Unpack(from, a);
        return RoundPack(toDouble, x.Neg, x.E, x.Sig, mxcsr, ref flags);
    }

    /// <summary>roundss/roundsd/roundps/roundpd: to an integral value in <paramref name="mode"/>;
    /// PE unless <paramref name="quiet"/>; IE only for an SNaN.</summary>
    public static ulong RoundToIntegral(bool d, ulong a, int mode, bool quiet, uint mxcsr, ref uint flags)
    {
        if (IsNaN(d, a)) { if (IsSNaN(d, a)) flags |= IE; return a | QuietBit(d); }
        uint den = 0;
        a = Operand(d, a, mxcsr, ref den);
        if (IsInf(d, a) || IsZero(d, a)) return a;
        var x = Unpack(d, a);
        if (x.E >= P(d) - 1) return a;
        ulong kept = RoundBits(x.Sig, 62 - x.E, x.Neg, mode, out bool inexact);
        if (inexact && !quiet) flags |= PE;
        if (kept == 0) return Zero(d, x.Neg);
        uint ignored = 0;
        var (e, sig) = Normalize(kept, 0);
        return RoundPack(d, x.Neg, e, sig, mxcsr & ~FTZ, ref ignored);
    }
}
