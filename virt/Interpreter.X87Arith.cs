using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// x87 arithmetic: fadd, fsub, fsubr, fmul, fdiv, fdivr in every form (ST(0) with ST(i) either way,
// the popping forms, m32/m64 and the integer m16/m32 forms fiadd..fidivr), computed by SoftFloat80
// under the control word's precision and rounding. Stack faults follow Interpreter.X87Data.cs's
// rule 2; with an unmasked exception the destination is left unchanged.
public sealed unsafe partial class Interpreter
{
    private static bool TryDecodeX87Arith(in Instruction ins, ref Op op)
    {
        (SoftFloat80.Op kind, bool reverse, bool pop, bool integer) = ins.Mnemonic switch
        {
            Mnemonic.Fadd => (SoftFloat80.Op.Add, false, false, false), Mnemonic.Faddp => (SoftFloat80.Op.Add, false, true, false),
            Mnemonic.Fiadd => (SoftFloat80.Op.Add, false, false, true),
            Mnemonic.Fsub => (SoftFloat80.Op.Sub, false, false, false), Mnemonic.Fsubp => (SoftFloat80.Op.Sub, false, true, false),
            Mnemonic.Fisub => (SoftFloat80.Op.Sub, false, false, true),
            Mnemonic.Fsubr => (SoftFloat80.Op.Sub, true, false, false), Mnemonic.Fsubrp => (SoftFloat80.Op.Sub, true, true, false),
            Mnemonic.Fisubr => (SoftFloat80.Op.Sub, true, false, true),
            Mnemonic.Fmul => (SoftFloat80.Op.Mul, false, false, false), Mnemonic.Fmulp => (SoftFloat80.Op.Mul, false, true, false),
            Mnemonic.Fimul => (SoftFloat80.Op.Mul, false, false, true),
            Mnemonic.Fdiv => (SoftFloat80.Op.Div, false, false, false), Mnemonic.Fdivp => (SoftFloat80.Op.Div, false, true, false),
            Mnemonic.Fidiv => (SoftFloat80.Op.Div, false, false, true),
            Mnemonic.Fdivr => (SoftFloat80.Op.Div, true, false, false), Mnemonic.Fdivrp => (SoftFloat80.Op.Div, true, true, false),
            Mnemonic.Fidivr => (SoftFloat80.Op.Div, true, false, true),
            _ => ((SoftFloat80.Op)0xFF, false, false, false),
        };
        if ((int)kind == 0xFF) return false;
        if (ins.OpCount > 0 && ins.Op0Kind == IcedOpKind.Memory)
        {
            if (!Mem(in ins, ref op)) return false;
            op.Size = (byte)ins.MemorySize.GetSize();
            op.Rm = 0;
        }
        else
        {
            // Destination, source: "fadd st(0), st(i)", "fadd st(i), st(0)", "faddp st(i), st(0)";
            // the operand-less popping form means ST(1), ST(0).
            op.Rm = 1;
            op.Reg = 0;
            if (ins.OpCount == 2)
            {
                op.Rm = (byte)(ins.Op0Register - Register.ST0);
                op.Reg = (byte)(ins.Op1Register - Register.ST0);
            }
        }
        op.Sub = (byte)X87Data.Arith;
        op.Imm = (byte)kind | (reverse ? 0x10 : 0) | (pop ? 0x20 : 0) | (integer ? 0x40 : 0);
        op.Kind = K.X87;
        return true;
    }

    private void Arithmetic(ref Op op)
    {
        var kind = (SoftFloat80.Op)(op.Imm & 0xF);
        bool reverse = (op.Imm & 0x10) != 0, pop = (op.Imm & 0x20) != 0, integer = (op.Imm & 0x40) != 0;
        int dest = op.Rm;
        if (!IsValid(dest) || (!op.IsMem && !IsValid(op.Reg)))
        {
            StackFault(false);
            if (!Masked(1)) return;
            SetSt(dest, IndefiniteMant, IndefiniteSe);
            if (pop) FPop();
            return;
        }
        ulong sm;
        ushort sse;
        bool memDenormal = false;
        if (!op.IsMem) (sm, sse) = St(op.Reg);
        else if (integer) (sm, sse) = FromInteger(SignExtend(Read(Ea(ref op), op.Size), op.Size));
        else (sm, sse) = LoadReal(ref op, out memDenormal, quiet: false);
        var (dm, dse) = St(dest);
        uint flags = 0;
        var r = reverse ? SoftFloat80.Arith(kind, sm, sse, dm, dse, _fcw, ref flags) : SoftFloat80.Arith(kind, dm, dse, sm, sse, _fcw, ref flags);
        // A binary32/64 denormal was normalised on loading: its DE counts unless the result is a NaN.
        if (memDenormal && (flags & SoftFloat80.IE) == 0 && !IsNaN80(dm, dse)) flags |= SoftFloat80.DE;
        _fsw |= (ushort)(flags & 0x3F);
        if ((flags & SoftFloat80.C1) != 0) _fsw |= FswC1;
        if ((flags & ~_fcw & 0x3F) != 0) return;
        SetSt(dest, r.Mant, r.Se);
        if (pop) FPop();
    }

    /// <summary>fsqrt and frndint on ST(0); fscale of ST(0) by ST(1).</summary>
    private void Unary(X87Data x)
    {
        int need = x == X87Data.Fscale ? 1 : 0;
        if (!IsValid(0) || !IsValid(need))
        {
            StackFault(false);
            if (Masked(1)) SetSt(0, IndefiniteMant, IndefiniteSe);
            return;
        }
        var (m, se) = St(0);
        uint flags = 0;
        (ulong Mant, ushort Se) r;
        if (x == X87Data.Fsqrt) r = SoftFloat80.Sqrt(m, se, _fcw, ref flags);
        else if (x == X87Data.Frndint) r = SoftFloat80.RoundToInteger(m, se, _fcw, ref flags);
        else { var (bm, bse) = St(1); r = SoftFloat80.Scale(m, se, bm, bse, _fcw, ref flags); }
        _fsw |= (ushort)(flags & 0x3F);
        if ((flags & SoftFloat80.C1) != 0) _fsw |= FswC1;
        if ((flags & ~_fcw & 0x3F) != 0) return;
        SetSt(0, r.Mant, r.Se);
    }

    /// <summary>fxtract: ST(0) becomes its exponent (as a value) and the significand (exponent 0) is
    /// pushed. Zero: ZE, exponent -inf; infinity: exponent +inf; a NaN goes to both.</summary>
    private void Extract()
    {
        if (!IsValid(0) || IsValid(-1))
        {
            StackFault(IsValid(0));
            if (!Masked(1)) return;
            // Masked: both results are the real indefinite.
            SetSt(0, IndefiniteMant, IndefiniteSe);
            if (!IsValid(-1)) FPush(IndefiniteMant, IndefiniteSe);
            return;
        }
        var (m, se) = St(0);
        int biased = se & 0x7FFF;
        (ulong, ushort) exp, sig;
        if (biased == 0x7FFF && (m << 1) != 0)
        {
            if ((m & (1UL << 62)) == 0) _fsw |= 1;
            exp = sig = (m | (1UL << 62), se);
        }
        else if (biased != 0 && (m >> 63) == 0) { _fsw |= 1; exp = sig = (IndefiniteMant, IndefiniteSe); }
        else if (biased == 0x7FFF) { exp = (1UL << 63, (ushort)0x7FFF); sig = (m, se); }
        else if (m == 0) { _fsw |= 4; exp = (1UL << 63, (ushort)0xFFFF); sig = (m, se); }
        else
        {
            int lz = System.Numerics.BitOperations.LeadingZeroCount(m);
            if (biased == 0) _fsw |= 2;
            int e = (biased == 0 ? 1 : biased) - 16383 - lz;
            exp = FromInteger(e);
            sig = (m << lz, (ushort)((se & 0x8000) | 16383));
        }
        if ((_fsw & ~_fcw & 0x3F) != 0) return;
        SetSt(0, exp.Item1, exp.Item2);
        FPush(sig.Item1, sig.Item2);
    }
}
