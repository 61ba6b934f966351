namespace SmartOS.Virt.Internal;

/// <summary>
/// x87 extended-precision arithmetic in software: add, subtract, multiply, divide of 80-bit values
/// (64-bit significand with its explicit integer bit, 15-bit exponent), each the exact result rounded
/// once to the control word's precision (PC: 24, 53 or 64 bits, with the extended exponent range)
/// in its rounding mode (RC). Nothing here uses the host's floating point.
///
/// Values are carried unpacked as (neg, e, x): value = x * 2^(e - 127) for a 128-bit x, so that
/// exact products, aligned sums and two-step quotients fit before the single rounding in Round.
///
/// The rules (Intel SDM vol. 1, 4.8.3, 8.5):
///   1. NaNs: one NaN operand is the result, quieted; two: the larger significand (the quiet one if
///      only one is quiet); an SNaN raises IE. Unsupported encodings (a non-zero exponent without
///      the integer bit) and invalid operations (inf - inf, 0 * inf, 0/0, inf/inf) give the real
///      indefinite with IE.
///   2. A denormal operand raises DE (not when the result is a NaN or invalid).
///   3. Only masked responses: overflow gives infinity or the largest value of the precision by
///      rounding mode (OE, PE); a tiny result (before rounding) is denormalised on the 2^-16445 grid
///      and UE is raised when it is also inexact.
///   4. C1 is reported as "rounded up" (the magnitude grew).
/// </summary>
internal static class SoftFloat80
{
    public const uint IE = 1, DE = 2, ZE = 4, OE = 8, UE = 0x10, PE = 0x20, C1 = 0x200;
    public const ulong IndefiniteMant = 0xC000_0000_0000_0000UL;
    public const ushort IndefiniteSe = 0xFFFF;
    private const int Emin = -16382, Emax = 16383, Bias = 16383;

    public enum Op { Add, Sub, Mul, Div }

    private static bool IsNaN(ulong m, ushort se) => (se & 0x7FFF) == 0x7FFF && (m << 1) != 0;
    private static bool IsInf(ulong m, ushort se) => (se & 0x7FFF) == 0x7FFF && (m << 1) == 0 && (m >> 63) != 0;
    private static bool Unsupported(ulong m, ushort se) => (se & 0x7FFF) != 0 && (m >> 63) == 0;
    private static bool IsZero(ulong m, ushort se) => (se & 0x7FFF) == 0 && m == 0;
    private static bool IsDenormal(ulong m, ushort se) => (se & 0x7FFF) == 0 && m != 0;

    /// <summary>The precision in bits for control word <paramref name="fcw"/>'s PC field.</summary>
    public static int Precision(ushort fcw) => ((fcw >> 8) & 3) switch { 0 => 24, 2 => 53, _ => 64 };

    /// <summary>a (op) b under control word <paramref name="fcw"/>; flags gets the exception bits
    /// and C1 (rounded up).</summary>
    public static (ulong Mant, ushort Se) Arith(Op op, ulong am, ushort ase, ulong bm, ushort bse, ushort fcw, ref uint flags)
    {
        if (Unsupported(am, ase) || Unsupported(bm, bse)) { flags |= IE; return (IndefiniteMant, IndefiniteSe); }
        if (IsNaN(am, ase) || IsNaN(bm, bse)) return PropagateNaN(am, ase, bm, bse, ref flags);
        bool an = (ase & 0x8000) != 0, bn = (bse & 0x8000) != 0;
        if (op == Op.Sub) { bn = !bn; op = Op.Add; }
        int mode = (fcw >> 10) & 3;
        bool aInf = IsInf(am, ase), bInf = IsInf(bm, bse), aZero = IsZero(am, ase), bZero = IsZero(bm, bse);
        switch (op)
        {
            case Op.Add:
                if (aInf && bInf && an != bn) return Invalid(ref flags);
                Denormals(am, ase, bm, bse, ref flags);
                if (aInf || bInf) return Inf(aInf ? an : bn);
                if (aZero && bZero) return Zero(an == bn ? an : mode == 1);
                if (aZero) return Round(bn, Unpack(bm, bse, out int be), be, fcw, ref flags);
                if (bZero) return Round(an, Unpack(am, ase, out int ae0), ae0, fcw, ref flags);
                return Add(an, am, ase, bn, bm, bse, fcw, ref flags);
            case Op.Mul:
                if ((aInf && bZero) || (aZero && bInf)) return Invalid(ref flags);
                Denormals(am, ase, bm, bse, ref flags);
                if (aInf || bInf) return Inf(an != bn);
                if (aZero || bZero) return Zero(an != bn);
                {
                    UInt128 xa = Unpack(am, ase, out int ea), xb = Unpack(bm, bse, out int eb);
                    UInt128 p = (xa >> 64) * (xb >> 64);
                    return Round(an != bn, p, ea + eb + 1, fcw, ref flags);
                }
            default:
                if ((aInf && bInf) || (aZero && bZero)) return Invalid(ref flags);
                if (aInf) { Denormals(am, ase, bm, bse, ref flags); return Inf(an != bn); }
                if (bInf) { Denormals(am, ase, bm, bse, ref flags); return Zero(an != bn); }
                if (bZero) { Denormals(am, ase, bm, bse, ref flags); flags |= ZE; return Inf(an != bn); }
                Denormals(am, ase, bm, bse, ref flags);
                if (aZero) return Zero(an != bn);
                {
                    ulong sa = (ulong)(Unpack(am, ase, out int ea) >> 64), sb = (ulong)(Unpack(bm, bse, out int eb) >> 64);
                    // Two steps of long division give 127+ quotient bits; the remainder is the sticky bit.
                    UInt128 n1 = (UInt128)sa << 63;
                    UInt128 q1 = n1 / sb, r1 = n1 % sb;
                    UInt128 n2 = r1 << 64;
                    UInt128 q2 = n2 / sb, r2 = n2 % sb;
                    UInt128 x = (q1 << 64) | q2 | (r2 != 0 ? 1u : 0u);
                    return Round(an != bn, x, ea - eb, fcw, ref flags);
                }
        }
    }

    private static void Denormals(ulong am, ushort ase, ulong bm, ushort bse, ref uint flags)
    {
        if (IsDenormal(am, ase) || IsDenormal(bm, bse)) flags |= DE;
    }

    private static (ulong, ushort) Invalid(ref uint flags)
    {
        flags |= IE;
        return (IndefiniteMant, IndefiniteSe);
    }

    private static (ulong, ushort) Inf(bool neg) => (1UL << 63, (ushort)(neg ? 0xFFFF : 0x7FFF));
    private static (ulong, ushort) Zero(bool neg) => (0, (ushort)(neg ? 0x8000 : 0));

    /// <summary>Rule 1.</summary>
    private static (ulong, ushort) PropagateNaN(ulong am, ushort ase, ulong bm, ushort bse, ref uint flags)
    {
        bool aNaN = IsNaN(am, ase), bNaN = IsNaN(bm, bse);
        bool aS = aNaN && (am & (1UL << 62)) == 0, bS = bNaN && (bm & (1UL << 62)) == 0;
        if (aS || bS) flags |= IE;
        const ulong Q = 1UL << 62;
        if (aNaN && bNaN)
        {
            if (aS != bS) return aS ? (bm | Q, bse) : (am | Q, ase);
            ulong ma = am | Q, mb = bm | Q;
            if (ma != mb) return ma > mb ? (ma, ase) : (mb, bse);
            return (ma, (ushort)(ase & bse));   // equal significands: the positive one
        }
        return aNaN ? (am | Q, ase) : (bm | Q, bse);
    }

    /// <summary>fsqrt: the square root rounded once (rule 3); a negative non-zero operand is invalid.</summary>
    public static (ulong Mant, ushort Se) Sqrt(ulong m, ushort se, ushort fcw, ref uint flags)
    {
        if (Unsupported(m, se)) return Invalid(ref flags);
        if (IsNaN(m, se)) return PropagateNaN(m, se, 0, 0, ref flags);
        bool neg = (se & 0x8000) != 0;
        if (IsZero(m, se)) return (m, se);
        if (neg) return Invalid(ref flags);
        if (IsInf(m, se)) return (m, se);
        if (IsDenormal(m, se)) flags |= DE;
        UInt128 x = Unpack(m, se, out int e);
        // value = sig * 2^(e - 63); scale sig by 2^s with e - 63 - s even, so the root is exact to ~96 bits.
        int s = 128 + ((e - 63 - 128) & 1);
        var n = new System.Numerics.BigInteger((ulong)(x >> 64)) << s;
        var r = ISqrt(n);
        var root = (UInt128)r;
        if (r * r != n) root |= 1;
        return Round(false, root, (e - 63 - s) / 2 + 127, fcw, ref flags);
    }

    private static System.Numerics.BigInteger ISqrt(System.Numerics.BigInteger n)
    {
        var x = System.Numerics.BigInteger.One << (int)((n.GetBitLength() + 1) / 2 + 1);
        while (true)
        {
            var y = (x + n / x) >> 1;
            if (y >= x) return x;
            x = y;
        }
    }

    /// <summary>frndint: to an integer in RC's direction (PC does not apply); PE when inexact, C1 when rounded up.</summary>
    public static (ulong Mant, ushort Se) RoundToInteger(ulong m, ushort se, ushort fcw, ref uint flags)
    {
        if (Unsupported(m, se)) return Invalid(ref flags);
        if (IsNaN(m, se)) return PropagateNaN(m, se, 0, 0, ref flags);
        if (IsZero(m, se) || IsInf(m, se)) return (m, se);
        if (IsDenormal(m, se)) flags |= DE;
        bool neg = (se & 0x8000) != 0;
        UInt128 x = Unpack(m, se, out int e);
        ulong sig = (ulong)(x >> 64);
        if (e >= 63) return (m, se);
        ulong ip, rem, half;
        if (e < -1) { ip = 0; rem = sig; half = 0; }
        else if (e == -1) { ip = 0; rem = sig; half = 1UL << 63; }
        else { int f = 63 - e; ip = sig >> f; rem = sig & ((1UL << f) - 1); half = 1UL << (f - 1); }
        bool inexact = rem != 0;
        int mode = (fcw >> 10) & 3;
        bool up = mode switch
        {
            0 => half != 0 && (rem > half || (rem == half && (ip & 1) != 0)),
            1 => neg && inexact,
            2 => !neg && inexact,
            _ => false,
        };
        if (inexact) flags |= PE;
        if (up) { ip++; flags |= C1; }
        if (ip == 0) return Zero(neg);
        int lz = System.Numerics.BitOperations.LeadingZeroCount(ip);
        return (ip << lz, (ushort)((neg ? 0x8000 : 0) | (Bias + 63 - lz)));
    }

    /// <summary>fscale: a * 2^trunc(b), rounded (rule 3) when it leaves the exponent range.</summary>
    public static (ulong Mant, ushort Se) Scale(ulong am, ushort ase, ulong bm, ushort bse, ushort fcw, ref uint flags)
    {
        if (Unsupported(am, ase) || Unsupported(bm, bse)) return Invalid(ref flags);
        if (IsNaN(am, ase) || IsNaN(bm, bse)) return PropagateNaN(am, ase, bm, bse, ref flags);
        bool an = (ase & 0x8000) != 0, bn = (bse & 0x8000) != 0;
        bool aInf = IsInf(am, ase), aZero = IsZero(am, ase);
        if (IsInf(bm, bse))
        {
            if ((aZero && !bn) || (aInf && bn)) return Invalid(ref flags);
            Denormals(am, ase, bm, bse, ref flags);
            if (aInf || aZero) return (am, ase);
            return bn ? Zero(an) : Inf(an);
        }
        Denormals(am, ase, bm, bse, ref flags);
        if (aInf || aZero) return (am, ase);
        // trunc(b), clamped well past anything that can keep a finite non-zero result.
        long n = 0;
        if (!IsZero(bm, bse))
        {
            UInt128 xb = Unpack(bm, bse, out int eb);
            n = eb < 0 ? 0 : eb >= 20 ? 1 << 20 : (long)((ulong)(xb >> 64) >> (63 - eb));
            if (bn) n = -n;
        }
        UInt128 xa = Unpack(am, ase, out int ea);
        return Round(an, xa, (int)(ea + n), (ushort)(fcw | 0x300), ref flags);
    }

    /// <summary>(x, e) with value = x * 2^(e - 127) for a finite non-zero value, x's top bit set.</summary>
    private static UInt128 Unpack(ulong m, ushort se, out int e)
    {
        int biased = se & 0x7FFF;
        // Normalised, so that a denormal's quotient keeps all its bits.
        int lz = System.Numerics.BitOperations.LeadingZeroCount(m);
        e = (biased == 0 ? 1 : biased) - Bias - lz;
        return (UInt128)(m << lz) << 64;
    }

    private static (ulong, ushort) Add(bool an, ulong am, ushort ase, bool bn, ulong bm, ushort bse, ushort fcw, ref uint flags)
    {
        // Leading bits at 126 leave room for the carry; the smaller operand's lost bits become sticky.
        UInt128 xa = Unpack(am, ase, out int ea) >> 1, xb = Unpack(bm, bse, out int eb) >> 1;
        if (ea < eb || (ea == eb && xa < xb))
        {
            (xa, xb) = (xb, xa);
            (ea, eb) = (eb, ea);
            (an, bn) = (bn, an);
        }
        int d = ea - eb;
        if (d >= 127) xb = xb != 0 ? 1u : 0u;
        else if (d > 0) xb = (xb >> d) | ((xb & (((UInt128)1 << d) - 1)) != 0 ? 1u : 0u);
        UInt128 x = an == bn ? xa + xb : xa - xb;
        if (x == 0) return Zero(((fcw >> 10) & 3) == 1);
        return Round(an, x, ea + 1, fcw, ref flags);
    }

    /// <summary>Rounds value = x * 2^(e - 127) to the precision and mode of <paramref name="fcw"/> (rules 3, 4).</summary>
    private static (ulong, ushort) Round(bool neg, UInt128 x, int e, ushort fcw, ref uint flags)
    {
        int lz = (int)UInt128.LeadingZeroCount(x);
        x <<= lz;
        e -= lz;
        int p = Precision(fcw), mode = (fcw >> 10) & 3;
        bool tiny = e < Emin;
        int drop = 128 - p + (tiny ? Emin - e : 0);
        UInt128 kept, rem, half;
        if (drop > 128) { kept = 0; rem = x; half = 0; drop = 129; }
        else if (drop == 128) { kept = 0; rem = x; half = (UInt128)1 << 127; }
        else { kept = x >> drop; rem = x & (((UInt128)1 << drop) - 1); half = (UInt128)1 << (drop - 1); }
        bool inexact = rem != 0;
        bool up = mode switch
        {
            0 => drop <= 128 && (rem > half || (rem == half && (kept & 1) != 0)),
            1 => neg && inexact,
            2 => !neg && inexact,
            _ => false,
        };
        if (up) { kept++; flags |= C1; }
        if (inexact) flags |= PE;
        if (tiny)
        {
            if (inexact) flags |= UE;
            ulong mant = (ulong)(kept << (64 - p));
            return (mant, (ushort)((neg ? 0x8000 : 0) | (mant >> 63 != 0 ? 1 : 0)));
        }
        if (kept >> p != 0) { kept >>= 1; e++; }
        if (e > Emax)
        {
            flags |= OE | PE;
            bool toInf = mode switch { 0 => true, 1 => neg, 2 => !neg, _ => false };
            flags = toInf ? flags | C1 : flags & ~C1;
            if (toInf) return Inf(neg);
            return (ulong.MaxValue << (64 - p), (ushort)((neg ? 0x8000 : 0) | (Emax + Bias)));
        }
        return ((ulong)(kept << (64 - p)), (ushort)((neg ? 0x8000 : 0) | (e + Bias)));
    }
}
