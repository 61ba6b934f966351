using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// x87 data movement and the operations that need no 80-bit arithmetic: loads (fld m32/m64/m80/st(i),
// fild, the constants), stores (fst/fstp m32/m64/m80/st(i), fist/fistp, fisttp), fxch, fcmovcc,
// fchs, fabs, ffree, fincstp, fdecstp, fnop, and the compares (fcom*, fucom*, fcomi*, fucomi*, ftst,
// fxam). The stack itself is Interpreter.X87.cs; arithmetic is Interpreter.X87Arith.cs. Not
// implemented: fprem/fprem1, the transcendentals (fsin, fcos, fsincos, fptan, fpatan, f2xm1, fyl2x,
// fyl2xp1), fbld/fbstp, fnstenv/fldenv/fnsave/frstor: they stay Unimplemented, so a guest that uses
// them stops naming them.
//
// Rules (Intel SDM vol. 1, chapter 8):
//   1. A value is (mant, se): the 64-bit significand with its explicit integer bit and the sign and
//      15-bit biased exponent. Conversions to and from binary32/binary64 go through SoftFloat's
//      RoundPack with the control word's RC (same encoding as MXCSR's), never the host's double.
//   2. Stack faults: reading an empty register is underflow (IE, SF, C1 = 0), pushing onto a full
//      one is overflow (IE, SF, C1 = 1). Only the masked responses are modelled: the result is the
//      real indefinite (negative quiet NaN 0xFFFF_C000000000000000; integer indefinite for integer
//      stores). With IE unmasked the destination is left unchanged and ES/B are set; the #MF itself
//      is not delivered (Interpreter.X87.cs's fwait reports it).
//   3. Exception flags accumulate in FSW bits 0-5 (same bit order as SoftFloat's); C1 is cleared by
//      every instruction here unless it reports "rounded up" (stores) or the sign (fxam).
//   4. SNaN operands of loads from m32/m64 and of value-changing stores raise IE and are quieted;
//      fld m80 and fstp m80 move bits unchanged.
public sealed unsafe partial class Interpreter
{
    private enum X87Data : byte
    {
        None, FldMem, FldSt, Fild, FstMem, FstpMem, FstSt, FstpSt, Fist, Fistp, Fisttp, Fxch, Fconst,
        Fchs, Fabs, Ffree, Fincstp, Fdecstp, Fnop, Fcmov, Fcom, Fcomp, Fcompp, Fucom, Fucomp, Fucompp,
        Fcomi, Fcomip, Fucomi, Fucomip, Ftst, Fxam, Arith, Fsqrt, Frndint, Fscale, Fxtract,
    }

    private const ushort FswC0 = 0x100, FswC1 = 0x200, FswC2 = 0x400, FswC3 = 0x4000, FswSf = 0x40;
    private const ulong IndefiniteMant = 0xC000_0000_0000_0000UL;
    private const ushort IndefiniteSe = 0xFFFF;

    private static bool TryDecodeX87Data(in Instruction ins, ref Op op)
    {
        bool mem = ins.OpCount > 0 && ins.Op0Kind == IcedOpKind.Memory;
        X87Data x = ins.Mnemonic switch
        {
            Mnemonic.Fld => mem ? X87Data.FldMem : X87Data.FldSt,
            Mnemonic.Fild => X87Data.Fild,
            Mnemonic.Fst => mem ? X87Data.FstMem : X87Data.FstSt,
            Mnemonic.Fstp => mem ? X87Data.FstpMem : X87Data.FstpSt,
            Mnemonic.Fist => X87Data.Fist, Mnemonic.Fistp => X87Data.Fistp, Mnemonic.Fisttp => X87Data.Fisttp,
            Mnemonic.Fxch => X87Data.Fxch,
            Mnemonic.Fld1 or Mnemonic.Fldz or Mnemonic.Fldpi or Mnemonic.Fldl2e or Mnemonic.Fldl2t
                or Mnemonic.Fldlg2 or Mnemonic.Fldln2 => X87Data.Fconst,
            Mnemonic.Fchs => X87Data.Fchs, Mnemonic.Fabs => X87Data.Fabs, Mnemonic.Ffree => X87Data.Ffree,
            Mnemonic.Fincstp => X87Data.Fincstp, Mnemonic.Fdecstp => X87Data.Fdecstp, Mnemonic.Fnop => X87Data.Fnop,
            Mnemonic.Fcmovb or Mnemonic.Fcmove or Mnemonic.Fcmovbe or Mnemonic.Fcmovu or Mnemonic.Fcmovnb
                or Mnemonic.Fcmovne or Mnemonic.Fcmovnbe or Mnemonic.Fcmovnu => X87Data.Fcmov,
            Mnemonic.Fcom => X87Data.Fcom, Mnemonic.Fcomp => X87Data.Fcomp, Mnemonic.Fcompp => X87Data.Fcompp,
            Mnemonic.Fucom => X87Data.Fucom, Mnemonic.Fucomp => X87Data.Fucomp, Mnemonic.Fucompp => X87Data.Fucompp,
            Mnemonic.Fcomi => X87Data.Fcomi, Mnemonic.Fcomip => X87Data.Fcomip,
            Mnemonic.Fucomi => X87Data.Fucomi, Mnemonic.Fucomip => X87Data.Fucomip,
            Mnemonic.Ftst => X87Data.Ftst, Mnemonic.Fxam => X87Data.Fxam,
            Mnemonic.Fsqrt => X87Data.Fsqrt, Mnemonic.Frndint => X87Data.Frndint,
            Mnemonic.Fscale => X87Data.Fscale, Mnemonic.Fxtract => X87Data.Fxtract,
            _ => X87Data.None,
        };
        if (x == X87Data.None) return TryDecodeX87Arith(in ins, ref op);
        if (mem)
        {
            if (!Mem(in ins, ref op)) return false;
            op.Size = (byte)ins.MemorySize.GetSize();
        }
        else
        {
            // The ST(i) operand is the last one (fxch, fcom, fcomi and fcmov name ST(0) first); one-register
            // forms without operands (fcompp, fucompp, fxch's short form) mean ST(1).
            op.Rm = x is X87Data.Fcompp or X87Data.Fucompp or X87Data.Fcom or X87Data.Fcomp or X87Data.Fucom
                or X87Data.Fucomp or X87Data.Fxch ? (byte)1 : (byte)0;
            if (ins.OpCount > 0)
            {
                Register r = ins.GetOpRegister(ins.OpCount - 1);
                if (r >= Register.ST0 && r <= Register.ST7) op.Rm = (byte)(r - Register.ST0);
            }
        }
        op.Sub = (byte)x;
        op.Imm = x switch
        {
            X87Data.Fconst => (long)ins.Mnemonic,
            // The condition code whose Cond() is fcmov's condition (the Jcc nibble).
            X87Data.Fcmov => ins.Mnemonic switch
            {
                Mnemonic.Fcmovb => 2, Mnemonic.Fcmovnb => 3, Mnemonic.Fcmove => 4, Mnemonic.Fcmovne => 5,
                Mnemonic.Fcmovbe => 6, Mnemonic.Fcmovnbe => 7, Mnemonic.Fcmovu => 10, _ => 11,
            },
            _ => 0,
        };
        op.Kind = K.X87;
        return true;
    }

    private void ExecuteX87Data(ref Op op)
    {
        var x = (X87Data)op.Sub;
        _fsw &= unchecked((ushort)~FswC1);
        int i = op.Rm;
        switch (x)
        {
            case X87Data.FldMem: { var (m, se) = LoadReal(ref op); FPush(m, se); break; }
            case X87Data.FldSt: { var (m, se) = St(i); FPush(m, se); break; }
            case X87Data.Fild: { var (m, se) = FromInteger(SignExtend(Read(Ea(ref op), op.Size), op.Size)); FPush(m, se); break; }
            case X87Data.FstMem: StoreReal(ref op, false); break;
            case X87Data.FstpMem: StoreReal(ref op, true); break;
            case X87Data.FstSt: case X87Data.FstpSt:
            {
                var (m, se) = St(0);
                if (StackFaultUnmasked(0)) break;
                SetSt(i, m, se);
                if (x == X87Data.FstpSt) FPop();
                break;
            }
            case X87Data.Fist: StoreInteger(ref op, false, false); break;
            case X87Data.Fistp: StoreInteger(ref op, true, false); break;
            case X87Data.Fisttp: StoreInteger(ref op, true, true); break;
            case X87Data.Fxch:
            {
                if (!IsValid(0) || !IsValid(i))
                {
                    StackFault(false);
                    if (!Masked(1)) break;
                }
                var (a, ase) = St(0, quiet: true);
                var (b, bse) = St(i, quiet: true);
                SetSt(0, b, bse);
                SetSt(i, a, ase);
                break;
            }
            case X87Data.Fconst: { var (m, se) = Constant((Mnemonic)op.Imm); FPush(m, se); break; }
            case X87Data.Fchs: case X87Data.Fabs:
            {
                var (m, se) = St(0);
                if (StackFaultUnmasked(0)) break;
                SetSt(0, m, (ushort)(x == X87Data.Fchs ? se ^ 0x8000 : se & 0x7FFF));
                break;
            }
            case X87Data.Ffree: _ftwValid &= (byte)~(1 << Phys(i)); break;
            case X87Data.Fincstp: SetTop(Top + 1); break;
            case X87Data.Fdecstp: SetTop(Top - 1); break;
            case X87Data.Fnop: break;
            case X87Data.Fcmov:
            {
                if (!IsValid(0) || !IsValid(i))
                {
                    // Masked underflow: ST(0) becomes the real indefinite whatever the condition.
                    StackFault(false);
                    if (Masked(1)) SetSt(0, IndefiniteMant, IndefiniteSe);
                    break;
                }
                var (m, se) = St(i);
                if (Cond((int)op.Imm)) SetSt(0, m, se);
                break;
            }
            case X87Data.Fcom: case X87Data.Fcomp: case X87Data.Fcompp:
            case X87Data.Fucom: case X87Data.Fucomp: case X87Data.Fucompp:
            case X87Data.Ftst:
                CompareToCodes(ref op, x);
                break;
            case X87Data.Fcomi: case X87Data.Fcomip: case X87Data.Fucomi: case X87Data.Fucomip:
            {
                bool ordered = x is X87Data.Fcomi or X87Data.Fcomip;
                int c = Compare80(0, i, ordered, out bool fault);
                if (fault) break;
                // ZF, PF, CF: 000 greater, 001 less, 100 equal, 111 unordered; OF, SF, AF cleared.
                ulong f = c switch { > 1 => ZF | PF | CF, 1 => 0, -1 => CF, _ => ZF };
                SetFlagBits(ArithFlags, f);
                if (x is X87Data.Fcomip or X87Data.Fucomip) FPop();
                break;
            }
            case X87Data.Fxam: Examine(); break;
            case X87Data.Arith: Arithmetic(ref op); break;
            case X87Data.Fsqrt: case X87Data.Frndint: case X87Data.Fscale: Unary(x); break;
            case X87Data.Fxtract: Extract(); break;
        }
        UpdateErrorSummary();
    }

    // ---- the stack --------------------------------------------------------------------------

    private int Phys(int i) => (Top + i) & 7;
    private bool IsValid(int i) => (_ftwValid & (1 << Phys(i))) != 0;
    private void SetTop(int top) => _fsw = (ushort)((_fsw & ~0x3800) | ((top & 7) << 11));
    private bool Masked(int exceptionBit) => (_fcw & exceptionBit) != 0;

    /// <summary>Raises IE and SF; C1 says overflow (1) or underflow (0).</summary>
    private void StackFault(bool overflow)
    {
        _fsw |= 1 | FswSf;
        _fsw = (ushort)(overflow ? _fsw | FswC1 : _fsw & ~FswC1);
    }

    /// <summary>ST(i) empty with IE unmasked: the fault is recorded and the instruction does nothing more.</summary>
    private bool StackFaultUnmasked(int i) => !IsValid(i) && !Masked(1);

    /// <summary>ST(i); an empty register is underflow (rule 2) and reads as the real indefinite.</summary>
    private (ulong Mant, ushort Se) St(int i, bool quiet = false)
    {
        int p = Phys(i);
        if ((_ftwValid & (1 << p)) != 0) return (_stMant[p], _stExp[p]);
        if (!quiet) StackFault(false);
        return (IndefiniteMant, IndefiniteSe);
    }

    private void SetSt(int i, ulong mant, ushort se)
    {
        int p = Phys(i);
        _stMant[p] = mant;
        _stExp[p] = se;
        _ftwValid |= (byte)(1 << p);
    }

    private void FPush(ulong mant, ushort se)
    {
        int p = (Top - 1) & 7;
        if ((_ftwValid & (1 << p)) != 0)
        {
            StackFault(true);
            if (!Masked(1)) return;
            mant = IndefiniteMant;
            se = IndefiniteSe;
        }
        SetTop(Top - 1);
        SetSt(0, mant, se);
    }

    private void FPop()
    {
        _ftwValid &= (byte)~(1 << Top);
        SetTop(Top + 1);
    }

    // ---- conversions ------------------------------------------------------------------------

    private static bool IsNaN80(ulong m, ushort se) => (se & 0x7FFF) == 0x7FFF && (m << 1) != 0;
    private static bool IsSNaN80(ulong m, ushort se) => IsNaN80(m, se) && (m & (1UL << 62)) == 0;

    /// <summary>fld m32/m64/m80 (rule 4).</summary>
    private (ulong Mant, ushort Se) LoadReal(ref Op op)
    {
        var v = LoadReal(ref op, out bool denormal);
        if (denormal) _fsw |= 2;
        return v;
    }

    /// <summary>As LoadReal, reporting a denormal operand instead of raising DE (a compare raises it
    /// only when no NaN is involved).</summary>
    private (ulong Mant, ushort Se) LoadReal(ref Op op, out bool denormal, bool quiet = true)
    {
        denormal = false;
        ulong ea = Ea(ref op);
        if (op.Size == 10) return (Read(ea, 8), (ushort)Read(ea + 8, 2));
        bool d = op.Size == 8;
        ulong v = Read(ea, op.Size);
        int frac = d ? 52 : 23, expMax = d ? 0x7FF : 0xFF, bias = d ? 1023 : 127;
        ushort sign = (ushort)((v >> (d ? 63 : 31)) != 0 ? 0x8000 : 0);
        int e = (int)(v >> frac) & expMax;
        ulong f = v & ((1UL << frac) - 1);
        if (e == expMax)
        {
            // An SNaN: IE, then quieted (arithmetic asks for it as it is, to apply the NaN rules itself).
            if (quiet && f != 0 && (f & (1UL << (frac - 1))) == 0) _fsw |= 1;
            ulong q = f != 0 && quiet ? f | (1UL << (frac - 1)) : f;
            return ((1UL << 63) | (q << (63 - frac)), (ushort)(sign | 0x7FFF));
        }
        if (e == 0)
        {
            if (f == 0) return (0, sign);
            // A denormal operand (DE) is exact in the wider format: normalise it.
            denormal = true;
            int shift = System.Numerics.BitOperations.LeadingZeroCount(f);
            return (f << shift, (ushort)(sign | (16383 + 1 - bias - frac + 63 - shift)));
        }
        return ((1UL << 63) | (f << (63 - frac)), (ushort)(sign | (e - bias + 16383)));
    }

    private static (ulong Mant, ushort Se) FromInteger(long v)
    {
        if (v == 0) return (0, 0);
        ushort sign = (ushort)(v < 0 ? 0x8000 : 0);
        ulong mag = v < 0 ? (ulong)-v : (ulong)v;
        int shift = System.Numerics.BitOperations.LeadingZeroCount(mag);
        return (mag << shift, (ushort)(sign | (16383 + 63 - shift)));
    }

    /// <summary>The value as (unbiased exponent, normalised significand); false for zero.</summary>
    private static bool Normalised(ulong m, ushort se, out int e, out ulong sig)
    {
        e = (se & 0x7FFF) - 16383;
        if ((se & 0x7FFF) == 0) e = 1 - 16383;
        sig = m;
        if (m == 0) return false;
        int shift = System.Numerics.BitOperations.LeadingZeroCount(m);
        sig <<= shift;
        e -= shift;
        return true;
    }

    /// <summary>fst/fstp m32/m64/m80: RC rounding through SoftFloat (rule 1); C1 when rounded up.</summary>
    private void StoreReal(ref Op op, bool pop)
    {
        var (m, se) = St(0);
        if (StackFaultUnmasked(0)) return;
        ulong ea = Ea(ref op);
        if (op.Size == 10)
        {
            Write(ea, 8, m);
            Write(ea + 8, 2, se);
            if (pop) FPop();
            return;
        }
        bool d = op.Size == 8, neg = (se & 0x8000) != 0;
        int frac = d ? 52 : 23;
        ulong signBit = d ? 1UL << 63 : 1UL << 31, expAll = d ? 0x7FFUL << 52 : 0xFFUL << 23;
        ulong r;
        uint flags = 0;
        if ((se & 0x7FFF) == 0x7FFF)
        {
            if (IsNaN80(m, se))
            {
                if (IsSNaN80(m, se)) flags |= SoftFloat.IE;
                r = expAll | (1UL << (frac - 1)) | ((m << 1) >> (64 - frac));
            }
            else r = expAll;
            if (neg) r |= signBit;
        }
        else if (!Normalised(m, se, out int e, out ulong sig)) r = neg ? signBit : 0;
        else
        {
            uint mx = (uint)((_fcw >> 10) & 3) << 13;
            r = SoftFloat.RoundPack(d, neg, e, (sig >> 1) | (sig & 1), mx, ref flags);
            if ((flags & SoftFloat.PE) != 0 && MagnitudeGreater(d, r, e, sig)) _fsw |= FswC1;
        }
        _fsw |= (ushort)flags;
        if ((flags & ~_fcw & 0x3F) != 0) return;   // an unmasked exception: nothing stored
        Write(ea, op.Size, r);
        if (pop) FPop();
    }

    /// <summary>Whether the rounded binary32/64 <paramref name="r"/> is larger in magnitude than the exact
    /// (e, sig): C1's "rounded up".</summary>
    private static bool MagnitudeGreater(bool d, ulong r, int e, ulong sig)
    {
        int frac = d ? 52 : 23, expMax = d ? 0x7FF : 0xFF, bias = d ? 1023 : 127;
        int re = (int)(r >> frac) & expMax;
        ulong rf = r & ((1UL << frac) - 1);
        if (re == expMax) return true;
        ulong rsig;
        int rexp;
        if (re == 0)
        {
            if (rf == 0) return false;
            int shift = System.Numerics.BitOperations.LeadingZeroCount(rf);
            rsig = rf << shift;
            rexp = 1 - bias - (shift - (63 - frac));
        }
        else
        {
            rsig = (1UL << 63) | (rf << (63 - frac));
            rexp = re - bias;
        }
        return rexp != e ? rexp > e : rsig > sig;
    }

    /// <summary>fist/fistp/fisttp: rounded per RC (truncated for fisttp); out of range or NaN is IE
    /// with the integer indefinite.</summary>
    private void StoreInteger(ref Op op, bool pop, bool truncate)
    {
        var (m, se) = St(0);
        if (StackFaultUnmasked(0)) return;
        int bits = op.Size * 8;
        bool neg = (se & 0x8000) != 0;
        ulong indefinite = 1UL << (bits - 1);
        ulong result;
        if ((se & 0x7FFF) == 0x7FFF) { _fsw |= 1; result = indefinite; }
        else if (!Normalised(m, se, out int e, out ulong sig)) result = 0;
        else
        {
            int mode = truncate ? 3 : (_fcw >> 10) & 3;
            // Integer part and what is below it, from sig * 2^(e - 63).
            ulong ip, rem;
            bool half, above, inexact;
            if (e >= 63) { ip = sig; rem = 0; half = above = inexact = false; }
            else if (e < -1) { ip = 0; rem = sig; half = false; above = false; inexact = true; }
            else
            {
                int fracBits = 63 - e;
                ip = fracBits == 64 ? 0 : sig >> fracBits;
                rem = fracBits == 64 ? sig : sig & ((1UL << fracBits) - 1);
                ulong halfUnit = 1UL << (fracBits - 1);
                half = rem == halfUnit;
                above = rem > halfUnit;
                inexact = rem != 0;
            }
            bool up = mode switch
            {
                0 => above || (half && (ip & 1) != 0),
                1 => neg && inexact,
                2 => !neg && inexact,
                _ => false,
            };
            bool overflow = e > 63;
            if (up) { if (ip == ulong.MaxValue) overflow = true; else ip++; }
            ulong limit = neg ? 1UL << (bits - 1) : (1UL << (bits - 1)) - 1;
            if (overflow || ip > limit) { _fsw |= 1; result = indefinite; }
            else
            {
                result = neg ? (ulong)-(long)ip : ip;
                if (inexact) _fsw |= 0x20;
                if (up) _fsw |= FswC1;
            }
        }
        if ((_fsw & 1) != 0 && result == indefinite && !Masked(1)) return;   // unmasked IE: nothing stored
        Write(Ea(ref op), op.Size, result & (bits == 64 ? ulong.MaxValue : (1UL << bits) - 1));
        if (pop) FPop();
    }

    /// <summary>The constants, kept to 128 bits and rounded per RC to 64 (SDM: "rounded per RC").</summary>
    private (ulong Mant, ushort Se) Constant(Mnemonic which)
    {
        (ulong hi, ulong lo, ushort se) = which switch
        {
            Mnemonic.Fld1 => (0x8000_0000_0000_0000UL, 0UL, (ushort)0x3FFF),
            Mnemonic.Fldz => (0UL, 0UL, (ushort)0),
            Mnemonic.Fldpi => (0xC90F_DAA2_2168_C234UL, 0xC4C6_628B_80DC_1CD1UL, (ushort)0x4000),
            Mnemonic.Fldl2e => (0xB8AA_3B29_5C17_F0BBUL, 0xBE87_FED0_691D_3E89UL, (ushort)0x3FFF),
            Mnemonic.Fldl2t => (0xD49A_784B_CD1B_8AFEUL, 0x492B_F6FF_4DAF_DB4DUL, (ushort)0x4000),
            Mnemonic.Fldlg2 => (0x9A20_9A84_FBCF_F798UL, 0x8F89_68C6_1EBA_C5D9UL, (ushort)0x3FFD),
            _ => (0xB172_17F7_D1CF_79ABUL, 0xC9E3_B398_03F2_F6AFUL, (ushort)0x3FFE),   // fldln2
        };
        bool up = ((_fcw >> 10) & 3) switch
        {
            0 => lo > 0x8000_0000_0000_0000UL || (lo == 0x8000_0000_0000_0000UL && (hi & 1) != 0),
            2 => lo != 0,   // all the constants are positive: up is away from zero, down is toward it
            _ => false,
        };
        return (up ? hi + 1 : hi, se);
    }

    // ---- compares ---------------------------------------------------------------------------

    /// <summary>Compares ST(0) with ST(i), or with a memory operand when <paramref name="mem"/>
    /// is given: -1, 0, 1, or 2 for unordered. Empty registers are stack underflow; <paramref
    /// name="ordered"/> makes any NaN (not only an SNaN) IE; a denormal operand raises DE.
    /// <paramref name="fault"/> says IE is unmasked and nothing else may change.</summary>
    private int Compare80(int a, int b, bool ordered, out bool fault, (ulong, ushort)? mem = null, bool memDenormal = false)
    {
        bool empty = !IsValid(a) || (mem is null && !IsValid(b));
        var (am, ase) = St(a);
        var (bm, bse) = mem ?? St(b);
        if (empty)
        {
            fault = !Masked(1);
            return 2;
        }
        bool nan = IsNaN80(am, ase) || IsNaN80(bm, bse);
        if (nan)
        {
            if (ordered || IsSNaN80(am, ase) || IsSNaN80(bm, bse)) _fsw |= 1;
            fault = (_fsw & 1) != 0 && !Masked(1);
            return 2;
        }
        if (IsDenormal80(am, ase) || IsDenormal80(bm, bse) || memDenormal) _fsw |= 2;
        fault = (_fsw & 2) != 0 && !Masked(2);
        return CompareValues80(am, ase, bm, bse);
    }

    private static bool IsDenormal80(ulong m, ushort se) => (se & 0x7FFF) == 0 && m != 0;

    private static int CompareValues80(ulong am, ushort ase, ulong bm, ushort bse)
    {
        bool az = am == 0 && (ase & 0x7FFF) != 0x7FFF, bz = bm == 0 && (bse & 0x7FFF) != 0x7FFF;
        if (az && bz) return 0;
        bool an = (ase & 0x8000) != 0, bn = (bse & 0x8000) != 0;
        if (az) return bn ? 1 : -1;
        if (bz) return an ? -1 : 1;
        if (an != bn) return an ? -1 : 1;
        // Same sign: magnitude by (exponent, significand); a denormal's exponent field 0 counts as 1.
        int ae = Math.Max(ase & 0x7FFF, 1), be = Math.Max(bse & 0x7FFF, 1);
        int mag = ae != be ? ae.CompareTo(be) : am.CompareTo(bm);
        return an ? -mag : mag;
    }

    /// <summary>fcom/fucom/ftst and their popping forms: C3 C2 C0 = 000 greater, 001 less, 100
    /// equal, 111 unordered.</summary>
    private void CompareToCodes(ref Op op, X87Data x)
    {
        bool ordered = x is X87Data.Fcom or X87Data.Fcomp or X87Data.Fcompp or X87Data.Ftst;
        int c;
        bool fault;
        if (x == X87Data.Ftst) c = Compare80(0, 0, ordered, out fault, (0UL, (ushort)0));
        else if (op.IsMem) { var m = LoadReal(ref op, out bool den); c = Compare80(0, 0, ordered, out fault, m, den); }
        else c = Compare80(0, op.Rm, ordered, out fault);
        if (fault) return;
        ushort codes = c switch { > 1 => FswC3 | FswC2 | FswC0, 1 => 0, -1 => FswC0, _ => FswC3 };
        _fsw = (ushort)((_fsw & ~(FswC3 | FswC2 | FswC0)) | codes);
        if (x is X87Data.Fcomp or X87Data.Fucomp or X87Data.Fcompp or X87Data.Fucompp) FPop();
        if (x is X87Data.Fcompp or X87Data.Fucompp) FPop();
    }

    /// <summary>fxam: C1 the sign; C3 C2 C0 the class (SDM's FXAM table).</summary>
    private void Examine()
    {
        int p = Phys(0);
        ulong m = _stMant[p];
        ushort se = _stExp[p];
        int exp = se & 0x7FFF;
        ushort codes;
        if ((_ftwValid & (1 << p)) == 0) codes = FswC3 | FswC0;
        else if (exp == 0x7FFF) codes = (m >> 63) == 0 ? (ushort)0 : (m << 1) == 0 ? (ushort)(FswC2 | FswC0) : FswC0;
        else if (exp == 0) codes = m == 0 ? FswC3 : (ushort)(FswC3 | FswC2);
        else codes = (m >> 63) == 0 ? (ushort)0 : FswC2;
        _fsw = (ushort)((_fsw & ~(FswC3 | FswC2 | FswC1 | FswC0)) | codes | ((se & 0x8000) != 0 ? FswC1 : 0));
    }
}
