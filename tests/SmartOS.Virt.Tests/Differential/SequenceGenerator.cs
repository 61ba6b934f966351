using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// Random register-only instruction sequences (seeded) with the flags whose final value the
/// architecture leaves undefined. Each template notes which flags it defines and which it leaves
/// undefined (Intel SDM vol. 2 "Flags Affected"; AMD APM vol. 3 agrees or is masked too):
///   and/or/xor/test: AF undefined.   shl/shr/sar by n: AF undefined for n != 0, OF for n > 1,
///   CF as well when n is at least the operand width (8/16-bit).   rol/ror/rcl/rcr: only CF/OF
///   written; OF undefined for n > 1.   mul/imul: SF ZF AF PF undefined.   div/idiv: all undefined.
///   bt*: OF SF AF PF undefined (ZF too: AMD documents it as undefined).   bsf/bsr: all but ZF
///   undefined.   tzcnt/lzcnt: OF SF AF PF undefined.   shld/shrd: AF undefined, OF for n > 1.
/// An instruction that reads a flag (adc, sbb, setcc, cmovcc, jcc, lahf, rcl, rcr, cmc) is only
/// generated after a cmp that defines every flag, so an undefined flag never leaks into a register.
/// Division operands are shaped so no divide error can happen (the native reference would die).
/// </summary>
internal sealed class SequenceGenerator
{
    public const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
    public const ulong Arith = CF | PF | AF | ZF | SF | OF;

    /// <summary>In memory mode rbx holds the scratch area's address; no instruction writes it.</summary>
    public const int ScratchBase = 3;
    public const int ScratchBytes = 256;

    private readonly Random _rng;
    private readonly bool _memory;
    private readonly List<Instruction> _list = new();
    private ulong _undefined;

    public SequenceGenerator(int seed, bool memory = false)
    {
        _rng = new Random(seed);
        _memory = memory;
    }

    public byte[] RandomScratch()
    {
        var b = new byte[ScratchBytes];
        _rng.NextBytes(b);
        return b;
    }

    public static bool HasBmi1 => Bmi1.IsSupported;
    public static bool HasLzcnt => Lzcnt.IsSupported;
    public static bool HasPopcnt => Popcnt.IsSupported;

    public ulong RandomValue()
    {
        return _rng.Next(8) switch
        {
            0 => 0,
            1 => ulong.MaxValue,
            2 => 0x8000_0000_0000_0000UL >> (_rng.Next(4) * 8 + 7) << (_rng.Next(4) * 8),
            3 => (ulong)_rng.Next(256),
            4 => 0x7FFF_FFFF_FFFF_FFFFUL >> _rng.Next(64),
            _ => (ulong)_rng.NextInt64() ^ ((ulong)_rng.Next() << 33),
        };
    }

    /// <summary>Builds a sequence of <paramref name="count"/> templates; returns the instructions,
    /// their bytes and the mask of flags undefined at its end.</summary>
    public (List<Instruction> Instructions, byte[] Code, ulong UndefinedFlags) Next(int count)
    {
        _list.Clear();
        _undefined = 0;
        for (int i = 0; i < count; i++) Template();
        var w = new Writer();
        var enc = Encoder.Create(64, w);
        ulong ip = 0;
        for (int k = 0; k < _list.Count; k++)
        {
            var copy = _list[k];
            if (copy.IsJccShortOrNear)
            {
                // Jcc placeholders jump over the next instruction: fix the target now that lengths are known.
                var next = _list[k + 1];
                var probe = Encoder.Create(64, new Writer());
                uint nextLen = probe.Encode(next, 0);
                copy.NearBranch64 = ip + 2 + nextLen;
            }
            ip += enc.Encode(copy, ip);
        }
        return (_list.ToList(), w.Bytes.ToArray(), _undefined);
    }

    private sealed class Writer : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    private int Size() => _rng.Next(4) switch { 0 => 8, 1 => 4, 2 => 2, _ => 1 };

    /// <summary>A general register other than rsp, as a register of <paramref name="size"/> bytes.</summary>
    private Register Gpr(int size, int? avoid = null, bool allowHigh = false)
    {
        while (true)
        {
            int i = _rng.Next(16);
            if (i == 4 || i == avoid || (_memory && i == ScratchBase)) continue;
            return Sized(i, size, allowHigh && i < (_memory ? 3 : 4) && _rng.Next(3) == 0);
        }
    }

    private static Register Sized(int i, int size, bool high = false) => size switch
    {
        8 => Register.RAX + i,
        4 => Register.EAX + i,
        2 => Register.AX + i,
        _ => high ? Register.AH + i : i < 4 ? Register.AL + i : i < 8 ? Register.SPL + (i - 4) : Register.R8L + (i - 8),
    };

    private static int Index(Register r) => r switch
    {
        >= Register.RAX and <= Register.R15 => r - Register.RAX,
        >= Register.EAX and <= Register.R15D => r - Register.EAX,
        >= Register.AX and <= Register.R15W => r - Register.AX,
        >= Register.AH and <= Register.BH => r - Register.AH,
        >= Register.AL and <= Register.BL => r - Register.AL,
        >= Register.SPL and <= Register.DIL => r - Register.SPL + 4,
        _ => r - Register.R8L + 8,
    };

    private static Code C(string name) => Enum.Parse<Code>(name);

    private void Emit(Instruction i, ulong defines, ulong undefines)
    {
        _list.Add(i);
        _undefined = (_undefined & ~defines) | undefines;
    }

    /// <summary>A pair of 8-bit registers that can be encoded together (AH..BH only without REX registers).</summary>
    private (Register, Register) Pair(int size)
    {
        if (size == 1 && _rng.Next(4) == 0)
        {
            int n = _memory ? 3 : 4;
            Register a = _rng.Next(2) == 0 ? Register.AL + _rng.Next(n) : Register.AH + _rng.Next(n);
            Register b = _rng.Next(2) == 0 ? Register.AL + _rng.Next(n) : Register.AH + _rng.Next(n);
            return (a, b);
        }
        return (Gpr(size), Gpr(size));
    }

    private void DefineAll()
    {
        int s = Size();
        var (a, b) = Pair(s);
        Emit(Instruction.Create(C($"Cmp_rm{s * 8}_r{s * 8}"), a, b), Arith, 0);
    }

    private int Imm(int size) => size switch
    {
        1 => _rng.Next(256) - 128,
        2 => _rng.Next(65536) - 32768,
        _ => _rng.Next(3) == 0 ? _rng.Next(256) - 128 : _rng.Next(int.MinValue, int.MaxValue),
    };

    private MemoryOperand Mem(int size) => new(Register.RBX, _rng.Next(0, ScratchBytes - size + 1), 8);

    /// <summary>Memory-operand forms over the scratch area (memory mode).</summary>
    private void MemoryTemplate()
    {
        int s = Size(), bits = s * 8;
        string sz = $"{bits}";
        switch (_rng.Next(9))
        {
            case 0:
            {
                string[] ops = ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp", "Test"];
                string op = ops[_rng.Next(ops.Length)];
                if (op is "Adc" or "Sbb") DefineAll();
                ulong undef = op is "Or" or "And" or "Xor" or "Test" ? AF : 0;
                switch (_rng.Next(3))
                {
                    case 0: Emit(Instruction.Create(C($"{op}_rm{sz}_r{sz}"), Mem(s), Gpr(s)), Arith, undef); break;
                    case 1 when op != "Test": Emit(Instruction.Create(C($"{op}_r{sz}_rm{sz}"), Gpr(s), Mem(s)), Arith, undef); break;
                    default:
                        Emit(Instruction.Create(C(s == 1 ? $"{op}_rm8_imm8" : $"{op}_rm{sz}_imm{Math.Min(bits, 32)}"), Mem(s), Imm(s)), Arith, undef);
                        break;
                }
                break;
            }
            case 1:
                switch (_rng.Next(3))
                {
                    case 0: Emit(Instruction.Create(C($"Mov_rm{sz}_r{sz}"), Mem(s), Gpr(s)), 0, 0); break;
                    case 1: Emit(Instruction.Create(C($"Mov_r{sz}_rm{sz}"), Gpr(s), Mem(s)), 0, 0); break;
                    default: Emit(Instruction.Create(C($"Mov_rm{sz}_imm{Math.Min(bits, 32)}"), Mem(s), Imm(s)), 0, 0); break;
                }
                break;
            case 2:
            {
                if (s == 1) s = 8;
                switch (_rng.Next(5))
                {
                    case 0: Emit(Instruction.Create(C($"Movzx_r{s * 8}_rm8"), Gpr(s), Mem(1)), 0, 0); break;
                    case 1: Emit(Instruction.Create(C($"Movsx_r{s * 8}_rm8"), Gpr(s), Mem(1)), 0, 0); break;
                    case 2 when s != 2: Emit(Instruction.Create(C($"Movzx_r{s * 8}_rm16"), Gpr(s), Mem(2)), 0, 0); break;
                    case 3 when s != 2: Emit(Instruction.Create(C($"Movsx_r{s * 8}_rm16"), Gpr(s), Mem(2)), 0, 0); break;
                    default: Emit(Instruction.Create(Code.Movsxd_r64_rm32, Gpr(8), Mem(4)), 0, 0); break;
                }
                break;
            }
            case 3:
            {
                string[] ops = ["Inc", "Dec", "Neg", "Not"];
                string op = ops[_rng.Next(4)];
                Emit(Instruction.Create(C($"{op}_rm{sz}"), Mem(s)), op == "Not" ? 0 : op == "Neg" ? Arith : Arith & ~CF, 0);
                break;
            }
            case 4:
            {
                string[] ops = ["Shl", "Shr", "Sar", "Rol", "Ror"];
                string op = ops[_rng.Next(5)];
                int count = _rng.Next(3) == 0 ? 1 : _rng.Next(64);
                int masked = count & (s == 8 ? 63 : 31);
                bool rotate = op is "Rol" or "Ror";
                ulong defines = masked == 0 ? 0 : rotate ? CF | OF : Arith;
                ulong undef = masked == 0 ? 0 : rotate ? (masked > 1 ? OF : 0) : AF | (masked > 1 ? OF : 0) | (masked >= bits ? Arith : 0);
                Emit(Instruction.Create(C($"{op}_rm{sz}_imm8"), Mem(s), count), defines, undef);
                break;
            }
            case 5:
            {
                if (s == 1) s = 8;
                sz = $"{s * 8}";
                string[] ops = ["Bt", "Bts", "Btr", "Btc"];
                string op = ops[_rng.Next(4)];
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"{op}_rm{sz}_imm8"), Mem(s), _rng.Next(256)), CF, OF | SF | AF | PF | ZF);
                else
                {
                    // A register bit offset addresses a bit string: keep it inside the scratch area.
                    var r = Gpr(s);
                    Emit(Instruction.Create(C($"And_rm{sz}_imm8"), r, 0x3F), Arith, AF);
                    var m = new MemoryOperand(Register.RBX, _rng.Next(0, ScratchBytes - 8 - s + 1), 8);
                    Emit(Instruction.Create(C($"{op}_rm{sz}_r{sz}"), m, r), CF, OF | SF | AF | PF | ZF);
                }
                break;
            }
            case 6:
            {
                string op = _rng.Next(3) switch { 0 => "Xchg", 1 => "Cmpxchg", _ => "Xadd" };
                Emit(Instruction.Create(C($"{op}_rm{sz}_r{sz}"), Mem(s), Gpr(s)), op == "Xchg" ? 0 : Arith, 0);
                break;
            }
            case 7:
            {
                DefineAll();
                string[] cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
                string c = cc[_rng.Next(16)];
                if (s == 1) Emit(Instruction.Create(C($"Set{c}_rm8"), Mem(1)), 0, 0);
                else Emit(Instruction.Create(C($"Cmov{c}_r{sz}_rm{sz}"), Gpr(s), Mem(s)), 0, 0);
                break;
            }
            default:
            {
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"{(_rng.Next(2) == 0 ? "Mul" : "Imul")}_rm{sz}"), Mem(s)), CF | OF, SF | ZF | AF | PF);
                else
                {
                    if (s == 1) s = 4;
                    sz = $"{s * 8}";
                    Emit(Instruction.Create(C($"Imul_r{sz}_rm{sz}_imm{Math.Min(s * 8, 32)}"), Gpr(s), Mem(s), Imm(s)), CF | OF, SF | ZF | AF | PF);
                }
                break;
            }
        }
    }

    private void Template()
    {
        if (_memory && _rng.Next(2) == 0)
        {
            MemoryTemplate();
            return;
        }
        int s = Size(), bits = s * 8;
        switch (_rng.Next(24))
        {
            case 0: case 1: case 2:
            {
                string[] ops = ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp", "Test"];
                string op = ops[_rng.Next(ops.Length)];
                if (op is "Adc" or "Sbb") DefineAll();
                bool logic = op is "Or" or "And" or "Xor" or "Test";
                var (a, b) = Pair(s);
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"{op}_rm{bits}_r{bits}"), a, b), Arith, logic ? AF : 0);
                else
                {
                    int imm = Imm(s);
                    string name = s == 1 ? $"{op}_rm8_imm8" : op != "Test" && imm >= -128 && imm < 128 ? $"{op}_rm{bits}_imm8" : $"{op}_rm{bits}_imm{Math.Min(bits, 32)}";
                    Emit(Instruction.Create(C(name), a, imm), Arith, logic ? AF : 0);
                }
                break;
            }
            case 3:
            {
                string[] ops = ["Inc", "Dec", "Neg", "Not"];
                string op = ops[_rng.Next(4)];
                var r = Gpr(s, allowHigh: true);
                ulong defines = op == "Not" ? 0 : op == "Neg" ? Arith : Arith & ~CF;
                Emit(Instruction.Create(C($"{op}_rm{bits}"), r), defines, 0);
                break;
            }
            case 4: case 5:
            {
                string[] ops = ["Shl", "Shr", "Sar"];
                string op = ops[_rng.Next(3)];
                var r = Gpr(s, avoid: 1, allowHigh: true);
                int count = _rng.Next(3) == 0 ? 1 : _rng.Next(64);
                int masked = count & (s == 8 ? 63 : 31);
                bool byCl = _rng.Next(2) == 0;
                if (byCl) Emit(Instruction.Create(Code.Mov_r8_imm8, Register.CL, count), 0, 0);
                var ins = byCl ? Instruction.Create(C($"{op}_rm{bits}_CL"), r, Register.CL) : Instruction.Create(C($"{op}_rm{bits}_imm8"), r, count);
                ulong undef = masked == 0 ? 0 : AF | (masked > 1 ? OF : 0) | (masked >= bits ? Arith : 0);
                Emit(ins, masked == 0 ? 0 : Arith, undef);
                break;
            }
            case 6:
            {
                string[] ops = ["Rol", "Ror", "Rcl", "Rcr"];
                string op = ops[_rng.Next(4)];
                if (op is "Rcl" or "Rcr") DefineAll();
                var r = Gpr(s, allowHigh: true);
                int count = _rng.Next(3) == 0 ? 1 : _rng.Next(64);
                int masked = count & (s == 8 ? 63 : 31);
                Emit(Instruction.Create(C($"{op}_rm{bits}_imm8"), r, count), masked == 0 ? 0 : CF | OF, masked > 1 ? OF : 0);
                break;
            }
            case 7:
            {
                string op = _rng.Next(2) == 0 ? "Mul" : "Imul";
                Emit(Instruction.Create(C($"{op}_rm{bits}"), Gpr(s, allowHigh: true)), CF | OF, SF | ZF | AF | PF);
                break;
            }
            case 8:
            {
                if (s == 1) s = 4;
                bits = s * 8;
                var d = Gpr(s);
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"Imul_r{bits}_rm{bits}"), d, Gpr(s)), CF | OF, SF | ZF | AF | PF);
                else
                {
                    int imm = Imm(s);
                    string name = imm >= -128 && imm < 128 ? $"Imul_r{bits}_rm{bits}_imm8" : $"Imul_r{bits}_rm{bits}_imm{Math.Min(bits, 32)}";
                    Emit(Instruction.Create(C(name), d, Gpr(s), imm), CF | OF, SF | ZF | AF | PF);
                }
                break;
            }
            case 9:
            {
                // Shaped so the quotient fits: unsigned with a zero high half, signed with a
                // sign-extended dividend and a divisor that is neither 0 nor -1.
                bool signed = _rng.Next(2) == 0;
                Register src;
                do src = Gpr(s); while (Index(src) is 0 or 2);
                if (s == 1) Emit(signed ? Instruction.Create(Code.Cbw) : Instruction.Create(Code.Movzx_r32_rm8, Register.EAX, Register.AL), 0, 0);
                else if (signed) Emit(Instruction.Create(s switch { 2 => Code.Cwd, 4 => Code.Cdq, _ => Code.Cqo }), 0, 0);
                else Emit(Instruction.Create(Code.Xor_r32_rm32, Register.EDX, Register.EDX), Arith, AF);
                Emit(Instruction.Create(C(s == 1 ? "Or_rm8_imm8" : $"Or_rm{bits}_imm8"), src, 1), Arith, AF);
                Emit(Instruction.Create(C(s == 1 ? "Btr_rm16_imm8" : $"Btr_rm{bits}_imm8"), s == 1 ? Sized(Index(src), 2) : src, 1), CF, Arith & ~CF);
                Emit(Instruction.Create(C($"{(signed ? "Idiv" : "Div")}_rm{bits}"), src), 0, Arith);
                break;
            }
            case 10:
            {
                if (s == 1) s = 8;
                bits = s * 8;
                string[] ops = ["Bt", "Bts", "Btr", "Btc"];
                string op = ops[_rng.Next(4)];
                var d = Gpr(s);
                var ins = _rng.Next(2) == 0 ? Instruction.Create(C($"{op}_rm{bits}_r{bits}"), d, Gpr(s)) : Instruction.Create(C($"{op}_rm{bits}_imm8"), d, _rng.Next(256));
                Emit(ins, CF, OF | SF | AF | PF | ZF);
                break;
            }
            case 11:
            {
                if (s == 1) s = 4;
                bits = s * 8;
                var list = new List<string> { "Bsf", "Bsr" };
                if (HasBmi1) list.Add("Tzcnt");
                if (HasLzcnt) list.Add("Lzcnt");
                if (HasPopcnt) list.Add("Popcnt");
                string op = list[_rng.Next(list.Count)];
                ulong defines = op switch { "Popcnt" => Arith, "Tzcnt" or "Lzcnt" => CF | ZF, _ => ZF };
                Emit(Instruction.Create(C($"{op}_r{bits}_rm{bits}"), Gpr(s), Gpr(s)), defines, Arith & ~defines);
                break;
            }
            case 12:
            {
                DefineAll();
                string[] cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
                string c = cc[_rng.Next(16)];
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"Set{c}_rm8"), Gpr(1, allowHigh: true)), 0, 0);
                else
                {
                    if (s == 1) s = 4;
                    bits = s * 8;
                    Emit(Instruction.Create(C($"Cmov{c}_r{bits}_rm{bits}"), Gpr(s), Gpr(s)), 0, 0);
                }
                break;
            }
            case 13:
            {
                if (s == 1) s = 8;
                bits = s * 8;
                var d = Gpr(s);
                string name = _rng.Next(3) switch
                {
                    0 => $"Movzx_r{bits}_rm8",
                    1 => $"Movsx_r{bits}_rm8",
                    _ => s == 2 ? "Movsx_r16_rm8" : $"Movsx_r{bits}_rm16",
                };
                var src = name.EndsWith("rm8", StringComparison.Ordinal) ? Gpr(1) : Gpr(2);
                Emit(Instruction.Create(C(name), d, src), 0, 0);
                break;
            }
            case 14:
                Emit(Instruction.Create(Code.Movsxd_r64_rm32, Gpr(8), Gpr(4)), 0, 0);
                break;
            case 15:
            {
                var (a, b) = Pair(s);
                if (_rng.Next(2) == 0) Emit(Instruction.Create(C($"Mov_r{bits}_rm{bits}"), a, b), 0, 0);
                else if (s == 8) Emit(Instruction.Create(Code.Mov_r64_imm64, a, RandomValue()), 0, 0);
                else Emit(Instruction.Create(C($"Mov_r{bits}_imm{bits}"), a, Imm(s)), 0, 0);
                break;
            }
            case 16:
            {
                if (s == 1) s = 8;
                var d = Gpr(s);
                var mem = new MemoryOperand(Gpr(8), Gpr(8), 1 << _rng.Next(4), _rng.Next(-100000, 100000), 8);
                Emit(Instruction.Create(C($"Lea_r{s * 8}_m"), d, mem), 0, 0);
                break;
            }
            case 17:
            {
                var (a, b) = Pair(s);
                string op = _rng.Next(3) switch { 0 => "Xchg", 1 => "Cmpxchg", _ => "Xadd" };
                Emit(Instruction.Create(C($"{op}_rm{bits}_r{bits}"), a, b), op == "Xchg" ? 0 : Arith, 0);
                break;
            }
            case 18:
            {
                bool wide = _rng.Next(2) == 0;
                Emit(Instruction.Create(wide ? Code.Bswap_r64 : Code.Bswap_r32, Gpr(wide ? 8 : 4)), 0, 0);
                break;
            }
            case 19:
            {
                Code[] codes = [Code.Cbw, Code.Cwde, Code.Cdqe, Code.Cwd, Code.Cdq, Code.Cqo];
                Emit(Instruction.Create(codes[_rng.Next(codes.Length)]), 0, 0);
                break;
            }
            case 20:
            {
                if (s == 1) s = 8;
                bits = s * 8;
                string op = _rng.Next(2) == 0 ? "Shld" : "Shrd";
                int count = s == 2 ? _rng.Next(16) : _rng.Next(64);
                int masked = count & (s == 8 ? 63 : 31);
                Emit(Instruction.Create(C($"{op}_rm{bits}_r{bits}_imm8"), Gpr(s), Gpr(s), count),
                    masked == 0 ? 0 : Arith, masked == 0 ? 0 : AF | (masked > 1 ? OF : 0));
                break;
            }
            case 21:
            {
                Code c = _rng.Next(3) switch { 0 => Code.Clc, 1 => Code.Stc, _ => Code.Cmc };
                if (c == Code.Cmc) DefineAll();
                Emit(Instruction.Create(c), CF, 0);
                break;
            }
            case 22:
            {
                DefineAll();
                Emit(Instruction.Create(Code.Lahf), 0, 0);
                break;
            }
            default:
            {
                // cmp; jcc over one ALU instruction.
                DefineAll();
                string[] cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
                Emit(Instruction.CreateBranch(C($"J{cc[_rng.Next(16)]}_rel8_64"), 0), 0, 0);
                var (a, b) = Pair(s);
                Emit(Instruction.Create(C($"Add_rm{bits}_r{bits}"), a, b), Arith, 0);
                // Either path may run: the add's flags or the cmp's, both fully defined.
                break;
            }
        }
    }
}
