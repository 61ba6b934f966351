using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// General-register extensions (Interpreter.cs): BMI1 (andn, bextr, blsi, blsmsk, blsr; tzcnt is in
// the core), BMI2 (bzhi, mulx, pdep, pext, rorx, sarx, shlx, shrx), MOVBE, cmpxchg8b/cmpxchg16b,
// loop/loope/loopne and enter. One Op kind (K.Bmi) with the operation in Imm's low byte.
//
// Operands: op.Reg is the destination (operand 0), op.Rm or memory the ModRM r/m operand, op.Size2
// the VEX.vvvv register, op.Size the operand size; an imm8 (rorx, enter's level) sits in Imm's
// bits 32..47 and enter's frame size in bits 48..63. Flags the SDM leaves undefined (AF and PF for
// most, SF too for bextr) are computed as the other flags' rules would leave them, and the
// differential tests mask them.
public sealed unsafe partial class Interpreter
{
    private enum BmiOp : byte
    {
        None, Andn, Bextr, Blsi, Blsmsk, Blsr, Bzhi, Mulx, Pdep, Pext, Rorx, Sarx, Shlx, Shrx,
        MovbeLoad, MovbeStore, Cmpxchg8b, Cmpxchg16b, Loop, Loope, Loopne, Enter,
    }

    private static bool TryDecodeBmi(in Instruction ins, ref Op op)
    {
        BmiOp b = ins.Mnemonic switch
        {
            Mnemonic.Andn => BmiOp.Andn, Mnemonic.Bextr => BmiOp.Bextr, Mnemonic.Blsi => BmiOp.Blsi,
            Mnemonic.Blsmsk => BmiOp.Blsmsk, Mnemonic.Blsr => BmiOp.Blsr, Mnemonic.Bzhi => BmiOp.Bzhi,
            Mnemonic.Mulx => BmiOp.Mulx, Mnemonic.Pdep => BmiOp.Pdep, Mnemonic.Pext => BmiOp.Pext,
            Mnemonic.Rorx => BmiOp.Rorx, Mnemonic.Sarx => BmiOp.Sarx, Mnemonic.Shlx => BmiOp.Shlx, Mnemonic.Shrx => BmiOp.Shrx,
            Mnemonic.Movbe => ins.Op0Kind == IcedOpKind.Memory ? BmiOp.MovbeStore : BmiOp.MovbeLoad,
            Mnemonic.Cmpxchg8b => BmiOp.Cmpxchg8b, Mnemonic.Cmpxchg16b => BmiOp.Cmpxchg16b,
            Mnemonic.Loop => BmiOp.Loop, Mnemonic.Loope => BmiOp.Loope, Mnemonic.Loopne => BmiOp.Loopne,
            Mnemonic.Enter => BmiOp.Enter,
            _ => BmiOp.None,
        };
        if (b == BmiOp.None) return false;
        long extra = 0;
        if (b is BmiOp.Loop or BmiOp.Loope or BmiOp.Loopne)
        {
            // A 0x67 prefix would count in ecx: not modelled.
            if (ins.Op0Kind != IcedOpKind.NearBranch64) return false;
            op.Disp = (long)ins.NearBranch64;
        }
        else if (b == BmiOp.Enter)
        {
            // The 16-bit form (0x66) pushes words: not modelled.
            if (ins.Code != Code.Enterq_imm16_imm8) return false;
            extra = (long)(ins.Immediate8_2nd & 0x1F) | ((long)ins.Immediate16 << 16);
        }
        else
        {
            var info = ins.Code.ToOpCode();
            for (int i = 0; i < ins.OpCount; i++)
            {
                var k = ins.GetOpKind(i);
                if (k == IcedOpKind.Memory)
                {
                    if (!Mem(in ins, ref op)) return false;
                    op.Size = (byte)ins.MemorySize.GetSize();
                }
                else if (k == IcedOpKind.Register)
                {
                    if (!Gpr(ins.GetOpRegister(i), out byte r, out byte size) || r >= 16) return false;
                    op.Size = size;
                    if (i == 0) op.Reg = r;
                    else if (info.GetOpKind(i) is OpCodeOperandKind.r32_vvvv or OpCodeOperandKind.r64_vvvv) op.Size2 = r;
                    else op.Rm = r;
                }
                else if (IsImm(k)) extra = (long)(byte)ins.GetImmediate(i);
                else return false;
            }
            // blsi/blsmsk/blsr write their vvvv operand (operand 0): it is op.Reg above, and their source is r/m.
        }
        op.Kind = K.Bmi;
        op.Imm = (long)b | (extra << 32);
        return true;
    }

    private void ExecuteBmi(ref Op op)
    {
        var b = (BmiOp)(byte)op.Imm;
        int s = op.Size, bits = s * 8;
        ulong m = Mask(Math.Max(s, 1));
        switch (b)
        {
            case BmiOp.Andn:
            {
                ulong r = ~GetReg(op.Size2, s) & RmValue(ref op) & m;
                SetReg(op.Reg, s, r);
                LogicFlags(r, s, cf: false);
                break;
            }
            case BmiOp.Bextr:
            {
                ulong src = RmValue(ref op), ctl = GetReg(op.Size2, s);
                int start = (int)(ctl & 0xFF), len = (int)((ctl >> 8) & 0xFF);
                ulong r = start >= bits ? 0 : src >> start;
                if (len < bits) r &= (1UL << len) - 1;
                SetReg(op.Reg, s, r);
                SetFlagBits(ArithFlags, r == 0 ? ZF : 0);
                break;
            }
            case BmiOp.Blsi: case BmiOp.Blsmsk: case BmiOp.Blsr:
            {
                ulong src = RmValue(ref op);
                ulong r = b switch
                {
                    BmiOp.Blsi => (0 - src) & src,
                    BmiOp.Blsmsk => (src - 1) ^ src,
                    _ => (src - 1) & src,
                } & m;
                SetReg(op.Reg, s, r);
                // blsi: CF = source non-zero; blsmsk and blsr: CF = source zero. blsmsk clears ZF.
                bool cf = b == BmiOp.Blsi ? src != 0 : src == 0;
                ulong f = (cf ? CF : 0) | ((r >> (bits - 1)) != 0 ? SF : 0) | (r == 0 && b != BmiOp.Blsmsk ? ZF : 0);
                SetFlagBits(ArithFlags, f);
                break;
            }
            case BmiOp.Bzhi:
            {
                ulong src = RmValue(ref op);
                int n = (int)(GetReg(op.Size2, s) & 0xFF);
                ulong r = n < bits ? src & ((1UL << n) - 1) : src;
                SetReg(op.Reg, s, r);
                SetFlagBits(ArithFlags, (n > bits - 1 ? CF : 0) | ((r >> (bits - 1)) != 0 ? SF : 0) | (r == 0 ? ZF : 0));
                break;
            }
            case BmiOp.Mulx:
            {
                ulong src = RmValue(ref op), a = GetReg(2, s), lo, hi;
                if (s == 8) hi = Math.BigMul(a, src, out lo);
                else { ulong p = a * src; lo = (uint)p; hi = p >> 32; }
                // Low half first, so that when both destinations are one register it holds the high half.
                SetReg(op.Size2, s, lo);
                SetReg(op.Reg, s, hi);
                break;
            }
            case BmiOp.Pdep:
            {
                ulong src = GetReg(op.Size2, s), mask = RmValue(ref op), r = 0;
                for (int k = 0; mask != 0; mask &= mask - 1)
                    if (((src >> k++) & 1) != 0) r |= mask & (0 - mask);
                SetReg(op.Reg, s, r);
                break;
            }
            case BmiOp.Pext:
            {
                ulong src = GetReg(op.Size2, s), mask = RmValue(ref op), r = 0;
                for (int k = 0; mask != 0; mask &= mask - 1)
                    if ((src & mask & (0 - mask)) != 0) r |= 1UL << k++;
                    else k++;
                SetReg(op.Reg, s, r);
                break;
            }
            case BmiOp.Rorx:
            {
                ulong src = RmValue(ref op);
                int c = (int)(((ulong)op.Imm >> 32) & (ulong)(bits - 1));
                SetReg(op.Reg, s, c == 0 ? src : ((src >> c) | (src << (bits - c))) & m);
                break;
            }
            case BmiOp.Sarx: case BmiOp.Shlx: case BmiOp.Shrx:
            {
                ulong src = RmValue(ref op);
                int c = (int)(GetReg(op.Size2, s) & (ulong)(bits - 1));
                ulong r = b switch
                {
                    BmiOp.Shlx => src << c,
                    BmiOp.Shrx => src >> c,
                    _ => (ulong)(SignExtend(src, s) >> c),
                } & m;
                SetReg(op.Reg, s, r);
                break;
            }
            case BmiOp.MovbeLoad:
                SetReg(op.Reg, s, ByteSwap(Read(Ea(ref op), s), s));
                break;
            case BmiOp.MovbeStore:
                Write(Ea(ref op), s, ByteSwap(GetReg(op.Rm, s), s));
                break;
            case BmiOp.Cmpxchg8b: CompareExchangeDouble(ref op, wide: false); break;
            case BmiOp.Cmpxchg16b: CompareExchangeDouble(ref op, wide: true); break;
            case BmiOp.Enter: Enter((int)((op.Imm >> 48) & 0xFFFF), (int)((op.Imm >> 32) & 0x1F)); break;
            default:
                throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"unimplemented operation {b} at 0x{_instrRip:x}");
        }
    }

    /// <summary>loop/loope/loopne: rcx counts down; the branch is taken while it is non-zero (and ZF
    /// as the condition asks). Flags are not changed. Returns whether to branch.</summary>
    private bool LoopTaken(ref Op op)
    {
        var b = (BmiOp)(byte)op.Imm;
        ulong c = --_r[1];
        if (c == 0) return false;
        return b switch { BmiOp.Loope => Cond(4), BmiOp.Loopne => !Cond(4), _ => true };
    }

    private static bool IsLoop(ref Op op) => (BmiOp)(byte)op.Imm is BmiOp.Loop or BmiOp.Loope or BmiOp.Loopne;

    private ulong RmValue(ref Op op) => op.IsMem ? Read(Ea(ref op), op.Size) : GetReg(op.Rm, op.Size);

    /// <summary>ZF and SF of the result, CF as given, OF clear (andn's rule).</summary>
    private void LogicFlags(ulong r, int s, bool cf)
        => SetFlagBits(ArithFlags, (cf ? CF : 0) | (r == 0 ? ZF : 0) | ((r >> (s * 8 - 1)) != 0 ? SF : 0));

    private static ulong ByteSwap(ulong v, int s) => s switch
    {
        2 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)v),
        4 => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((uint)v),
        _ => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v),
    };

    /// <summary>cmpxchg8b m64 / cmpxchg16b m128: edx:eax (rdx:rax) against memory; equal stores
    /// ecx:ebx (rcx:rbx) and sets ZF, else loads memory into edx:eax and clears ZF. cmpxchg16b needs a
    /// 16-byte aligned operand (#GP). The memory is written back either way, as the locked cycle does.</summary>
    private void CompareExchangeDouble(ref Op op, bool wide)
    {
        ulong ea = Ea(ref op);
        ulong* r = _r;
        if (wide)
        {
            if ((ea & 15) != 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: cmpxchg16b of misaligned 0x{ea:x}");
            ulong lo = Read(ea, 8), hi = Read(ea + 8, 8);
            bool equal = lo == r[0] && hi == r[2];
            if (equal) { Write(ea, 8, r[3]); Write(ea + 8, 8, r[1]); }
            else { Write(ea, 8, lo); Write(ea + 8, 8, hi); r[0] = lo; r[2] = hi; }
            SetFlagBits(ZF, equal ? ZF : 0);
            return;
        }
        ulong v = Read(ea, 8);
        bool eq = v == ((r[2] << 32) | (uint)r[0]);
        if (eq) Write(ea, 8, (r[1] << 32) | (uint)r[3]);
        else { Write(ea, 8, v); r[0] = (uint)v; r[2] = v >> 32; }
        SetFlagBits(ZF, eq ? ZF : 0);
    }

    /// <summary>enter size, level (64-bit): push rbp; copy level-1 frame pointers from the old frame;
    /// push the new frame pointer when level > 0; rbp = the frame; rsp -= size.</summary>
    private void Enter(int size, int level)
    {
        ulong* r = _r;
        Push(r[5]);
        ulong frame = r[4];
        if (level > 0)
        {
            ulong bp = r[5];
            for (int i = 1; i < level; i++)
            {
                bp -= 8;
                Push(Read(bp, 8));
            }
            Push(frame);
        }
        r[5] = frame;
        r[4] -= (ulong)size;
    }
}
