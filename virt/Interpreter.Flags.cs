using System.Runtime.CompilerServices;

namespace SmartOS.Virt;

// Lazy flags (Interpreter.cs). _fa/_fb/_fr hold operands and result masked to _fsize bytes; _fc is
// the carry-in of adc/sbb, the preserved CF of inc/dec, or CF=OF of a multiply.
public sealed unsafe partial class Interpreter
{
    private enum FlagKind : byte { None, Add, Sub, Logic, Inc, Dec, Shl, Shr, Sar, Mul }

    private FlagKind _fop;
    private int _fsize = 8;
    private ulong _fa, _fb, _fr, _fc;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetFlags(FlagKind kind, int size, ulong a, ulong b, ulong r, ulong c = 0)
    {
        _fop = kind;
        _fsize = size;
        _fa = a;
        _fb = b;
        _fr = r;
        _fc = c;
    }

    private ulong GetFlags()
    {
        if (_fop != FlagKind.None) Materialize();
        return _rflags;
    }

    private bool GetCF()
    {
        switch (_fop)
        {
            case FlagKind.None: return (_rflags & CF) != 0;
            case FlagKind.Logic: return false;
            case FlagKind.Sub: return _fa < _fb || (_fc != 0 && _fa == _fb);
            case FlagKind.Add: return _fr < _fa || (_fc != 0 && _fr == _fa);
            case FlagKind.Inc:
            case FlagKind.Dec: return _fc != 0;
            default: return (GetFlags() & CF) != 0;
        }
    }

    private void Materialize()
    {
        int bits = _fsize * 8;
        ulong sign = 1UL << (bits - 1);
        ulong a = _fa, b = _fb, r = _fr;
        ulong f = _rflags & ~ArithFlags;
        if (r == 0) f |= ZF;
        if ((r & sign) != 0) f |= SF;
        if (Parity(r)) f |= PF;
        switch (_fop)
        {
            case FlagKind.Add:
                if (r < a || (_fc != 0 && r == a)) f |= CF;
                if (((a ^ r) & (b ^ r) & sign) != 0) f |= OF;
                f |= (a ^ b ^ r) & AF;
                break;
            case FlagKind.Sub:
                if (a < b || (_fc != 0 && a == b)) f |= CF;
                if (((a ^ b) & (a ^ r) & sign) != 0) f |= OF;
                f |= (a ^ b ^ r) & AF;
                break;
            case FlagKind.Inc:
                if (_fc != 0) f |= CF;
                if (r == sign) f |= OF;
                if ((r & 0xF) == 0) f |= AF;
                break;
            case FlagKind.Dec:
                if (_fc != 0) f |= CF;
                if (a == sign) f |= OF;
                if ((a & 0xF) == 0) f |= AF;
                break;
            case FlagKind.Shl:
            {
                ulong cf = b <= (ulong)bits ? (a >> (int)((ulong)bits - b)) & 1 : 0;
                if (cf != 0) f |= CF;
                if ((((r & sign) != 0 ? 1UL : 0) ^ cf) != 0) f |= OF;
                break;
            }
            case FlagKind.Shr:
                if (((a >> (int)(b - 1)) & 1) != 0) f |= CF;
                if ((a & sign) != 0) f |= OF;
                break;
            case FlagKind.Sar:
                if ((((ulong)SignExtend(a, _fsize) >> (int)(b - 1)) & 1) != 0) f |= CF;
                break;
            case FlagKind.Mul:
                if (_fc != 0) f |= CF | OF;
                break;
        }
        _rflags = f;
        _fop = FlagKind.None;
    }

    /// <summary>Sets the given arithmetic flags from a materialized value, keeping the others.</summary>
    private void SetFlagBits(ulong mask, ulong values)
    {
        ulong f = GetFlags();
        _rflags = (f & ~mask) | (values & mask);
    }

    /// <summary>Evaluates condition code <paramref name="cc"/> (the low nibble of Jcc's opcode).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Cond(int cc)
    {
        if (_fop == FlagKind.Sub && _fc == 0)
        {
            ulong a = _fa, b = _fb;
            switch (cc)
            {
                case 2: return a < b;
                case 3: return a >= b;
                case 4: return a == b;
                case 5: return a != b;
                case 6: return a <= b;
                case 7: return a > b;
                case 12: return SignExtend(a, _fsize) < SignExtend(b, _fsize);
                case 13: return SignExtend(a, _fsize) >= SignExtend(b, _fsize);
                case 14: return SignExtend(a, _fsize) <= SignExtend(b, _fsize);
                case 15: return SignExtend(a, _fsize) > SignExtend(b, _fsize);
            }
        }
        else if (_fop == FlagKind.Logic)
        {
            ulong r = _fr;
            switch (cc)
            {
                case 4: case 6: return r == 0;
                case 5: case 7: return r != 0;
                case 8: case 12: return SignExtend(r, _fsize) < 0;
                case 9: case 13: return SignExtend(r, _fsize) >= 0;
            }
        }
        return CondSlow(cc);
    }

    private bool CondSlow(int cc)
    {
        ulong f = GetFlags();
        bool cf = (f & CF) != 0, zf = (f & ZF) != 0, sf = (f & SF) != 0, of = (f & OF) != 0, pf = (f & PF) != 0;
        bool v = (cc >> 1) switch
        {
            0 => of,
            1 => cf,
            2 => zf,
            3 => cf || zf,
            4 => sf,
            5 => pf,
            6 => sf != of,
            _ => zf || sf != of,
        };
        return (cc & 1) != 0 ? !v : v;
    }
}
