using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// Iced Instruction -> cached Op (Interpreter.cs, "decode cache").
public sealed unsafe partial class Interpreter
{
    private ulong _instrRip;

    private void Decode(ulong rip, ref Op op)
    {
        Decodes++;
        _reader.Reset(rip);
        _decoder.IP = rip;
        _decoder.Decode(out Instruction ins);
        op = default;
        op.Base = op.Index = Op.NoReg;
        op.Len = (byte)Math.Max(1, ins.Length);
        if (ins.IsInvalid)
        {
            op.Kind = K.Fault;
            op.Imm = _decoder.LastError == DecoderError.NoMoreBytes ? 1 : 0;
        }
        else if (!Translate(in ins, ref op) && !TryDecodeCpu(in ins, ref op))
        {
            op = default;
            op.Base = op.Index = Op.NoReg;
            op.Len = (byte)ins.Length;
            op.Kind = K.Unimplemented;
            op.Imm = (long)ins.Mnemonic;
        }
        // The page of the first byte is code already (FetchPage); one the instruction runs into is now.
        if (_reader.LastPhysical < _memSize) MarkCodePage(_reader.LastPhysical >> 12);
    }

    private static bool Gpr(Register r, out byte index, out byte size)
    {
        index = 0; size = 0;
        if (r >= Register.AL && r <= Register.R15L)
        {
            int i = r - Register.AL;
            index = (byte)(i < 4 ? i : i < 8 ? 16 + i - 4 : i - 4);
            size = 1;
            return true;
        }
        if (r >= Register.AX && r <= Register.R15W) { index = (byte)(r - Register.AX); size = 2; return true; }
        if (r >= Register.EAX && r <= Register.R15D) { index = (byte)(r - Register.EAX); size = 4; return true; }
        if (r >= Register.RAX && r <= Register.R15) { index = (byte)(r - Register.RAX); size = 8; return true; }
        return false;
    }

    private static bool Xmm(Register r, out byte index)
    {
        index = (byte)(r - Register.XMM0);
        return r >= Register.XMM0 && r <= Register.XMM15;
    }

    private static bool IsImm(IcedOpKind k) => k is IcedOpKind.Immediate8 or IcedOpKind.Immediate16 or IcedOpKind.Immediate32
        or IcedOpKind.Immediate64 or IcedOpKind.Immediate8to16 or IcedOpKind.Immediate8to32 or IcedOpKind.Immediate8to64
        or IcedOpKind.Immediate32to64;

    /// <summary>Fills the memory operand; false for what the interpreter does not model (32-bit addressing).
    /// An fs or gs override adds that segment's base (Interpreter.System.cs).</summary>
    private static bool Mem(in Instruction ins, ref Op op)
    {
        op.Seg = ins.SegmentPrefix switch { Register.FS => SegFsSlot, Register.GS => SegGsSlot, _ => 0 };
        op.IsMem = true;
        if (ins.IsIPRelativeMemoryOperand)
        {
            op.Disp = (long)ins.IPRelativeMemoryAddress;
            return true;
        }
        op.Disp = (long)ins.MemoryDisplacement64;
        if (ins.MemoryBase != Register.None)
        {
            if (!Gpr(ins.MemoryBase, out op.Base, out byte s) || s != 8) return false;
        }
        if (ins.MemoryIndex != Register.None)
        {
            if (!Gpr(ins.MemoryIndex, out op.Index, out byte s) || s != 8) return false;
            op.Scale = (byte)System.Numerics.BitOperations.Log2((uint)ins.MemoryIndexScale);
        }
        return true;
    }

    /// <summary>Operand 0 as r/m (register into Rm or memory); its size into Size.</summary>
    private static bool Rm(in Instruction ins, int i, ref Op op, out byte size)
    {
        size = 0;
        var k = ins.GetOpKind(i);
        if (k == IcedOpKind.Register) return Gpr(ins.GetOpRegister(i), out op.Rm, out size);
        if (k != IcedOpKind.Memory) return false;
        size = (byte)ins.MemorySize.GetSize();
        return Mem(in ins, ref op);
    }

    private static bool Translate(in Instruction ins, ref Op op)
    {
        if (TryDecodeSystem(in ins, ref op)) return true;
        var m = ins.Mnemonic;
        int n = ins.OpCount;
        IcedOpKind k0 = n > 0 ? ins.GetOpKind(0) : IcedOpKind.Register;
        IcedOpKind k1 = n > 1 ? ins.GetOpKind(1) : IcedOpKind.Register;
        byte s;
        switch (m)
        {
            case Mnemonic.Mov:
            case Mnemonic.Add: case Mnemonic.Or: case Mnemonic.Adc: case Mnemonic.Sbb:
            case Mnemonic.And: case Mnemonic.Sub: case Mnemonic.Xor: case Mnemonic.Cmp: case Mnemonic.Test:
            {
                bool mov = m == Mnemonic.Mov;
                op.Sub = m switch
                {
                    Mnemonic.Add => 0, Mnemonic.Or => 1, Mnemonic.Adc => 2, Mnemonic.Sbb => 3, Mnemonic.And => 4,
                    Mnemonic.Sub => 5, Mnemonic.Xor => 6, Mnemonic.Cmp => 7, _ => 8,
                };
                if (k0 == IcedOpKind.Register)
                {
                    if (!Gpr(ins.Op0Register, out op.Reg, out op.Size)) return false;
                    if (k1 == IcedOpKind.Register)
                    {
                        if (!Gpr(ins.Op1Register, out op.Rm, out _)) return false;
                        op.Kind = mov ? K.MovRR : Specialize(K.AluRR, op.Sub);
                    }
                    else if (k1 == IcedOpKind.Memory)
                    {
                        if (!Mem(in ins, ref op)) return false;
                        op.Kind = mov ? K.MovRM : K.AluRM;
                    }
                    else if (IsImm(k1))
                    {
                        op.Imm = (long)ins.GetImmediate(1);
                        op.Kind = mov ? K.MovRI : Specialize(K.AluRI, op.Sub);
                    }
                    else return false;
                    return true;
                }
                if (k0 != IcedOpKind.Memory || !Mem(in ins, ref op)) return false;
                op.Size = (byte)ins.MemorySize.GetSize();
                if (k1 == IcedOpKind.Register)
                {
                    if (!Gpr(ins.Op1Register, out op.Reg, out _)) return false;
                    op.Kind = mov ? K.MovMR : K.AluMR;
                }
                else if (IsImm(k1))
                {
                    op.Imm = (long)ins.GetImmediate(1);
                    op.Kind = mov ? K.MovMI : K.AluMI;
                }
                else return false;
                return true;
            }
            case Mnemonic.Lea:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Mem(in ins, ref op)) return false;
                op.Kind = K.Lea;
                return true;
            case Mnemonic.Movzx: case Mnemonic.Movsx: case Mnemonic.Movsxd:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Rm(in ins, 1, ref op, out op.Size2)) return false;
                op.Kind = m == Mnemonic.Movzx ? K.Movzx : K.Movsx;
                return true;
            case Mnemonic.Push:
                if (k0 == IcedOpKind.Register) { if (!Gpr(ins.Op0Register, out op.Reg, out s) || s != 8) return false; op.Kind = K.PushR; }
                else if (IsImm(k0)) { op.Imm = (long)ins.GetImmediate(0); op.Kind = K.PushI; }
                else { if (!Rm(in ins, 0, ref op, out s) || s != 8) return false; op.Kind = K.PushM; }
                return true;
            case Mnemonic.Pop:
                if (k0 == IcedOpKind.Register) { if (!Gpr(ins.Op0Register, out op.Reg, out s) || s != 8) return false; op.Kind = K.PopR; }
                else { if (!Rm(in ins, 0, ref op, out s) || s != 8) return false; op.Kind = K.PopM; }
                return true;
            case Mnemonic.Call:
            case Mnemonic.Jmp:
                if (k0 == IcedOpKind.NearBranch64) { op.Imm = (long)ins.NearBranch64; op.Kind = m == Mnemonic.Call ? K.CallRel : K.JmpRel; return true; }
                if (!Rm(in ins, 0, ref op, out s) || s != 8) return false;
                op.Kind = m == Mnemonic.Call ? K.CallRm : K.JmpRm;
                return true;
            case Mnemonic.Ret:
                op.Imm = n > 0 ? (long)ins.GetImmediate(0) : 0;
                op.Kind = K.Ret;
                return true;
            case Mnemonic.Jrcxz: case Mnemonic.Jecxz:
                op.Imm = (long)ins.NearBranch64;
                op.Size = (byte)(m == Mnemonic.Jrcxz ? 8 : 4);
                op.Kind = K.Jrcxz;
                return true;
            case Mnemonic.Jo: case Mnemonic.Jno: case Mnemonic.Jb: case Mnemonic.Jae: case Mnemonic.Je: case Mnemonic.Jne:
            case Mnemonic.Jbe: case Mnemonic.Ja: case Mnemonic.Js: case Mnemonic.Jns: case Mnemonic.Jp: case Mnemonic.Jnp:
            case Mnemonic.Jl: case Mnemonic.Jge: case Mnemonic.Jle: case Mnemonic.Jg:
                op.Sub = (byte)(ins.ConditionCode - ConditionCode.o);
                op.Imm = (long)ins.NearBranch64;
                op.Kind = K.Jcc;
                return true;
            case Mnemonic.Seto: case Mnemonic.Setno: case Mnemonic.Setb: case Mnemonic.Setae: case Mnemonic.Sete: case Mnemonic.Setne:
            case Mnemonic.Setbe: case Mnemonic.Seta: case Mnemonic.Sets: case Mnemonic.Setns: case Mnemonic.Setp: case Mnemonic.Setnp:
            case Mnemonic.Setl: case Mnemonic.Setge: case Mnemonic.Setle: case Mnemonic.Setg:
                op.Sub = (byte)(ins.ConditionCode - ConditionCode.o);
                if (!Rm(in ins, 0, ref op, out op.Size)) return false;
                op.Kind = K.Setcc;
                return true;
            case Mnemonic.Cmovo: case Mnemonic.Cmovno: case Mnemonic.Cmovb: case Mnemonic.Cmovae: case Mnemonic.Cmove: case Mnemonic.Cmovne:
            case Mnemonic.Cmovbe: case Mnemonic.Cmova: case Mnemonic.Cmovs: case Mnemonic.Cmovns: case Mnemonic.Cmovp: case Mnemonic.Cmovnp:
            case Mnemonic.Cmovl: case Mnemonic.Cmovge: case Mnemonic.Cmovle: case Mnemonic.Cmovg:
                op.Sub = (byte)(ins.ConditionCode - ConditionCode.o);
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Rm(in ins, 1, ref op, out _)) return false;
                op.Kind = K.Cmov;
                return true;
            case Mnemonic.Inc: case Mnemonic.Dec: case Mnemonic.Neg: case Mnemonic.Not:
                op.Sub = m switch { Mnemonic.Inc => 0, Mnemonic.Dec => 1, Mnemonic.Neg => 2, _ => 3 };
                if (!Rm(in ins, 0, ref op, out op.Size)) return false;
                op.Kind = K.Unary;
                return true;
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
            case Mnemonic.Shl: case Mnemonic.Shr: case Mnemonic.Sal: case Mnemonic.Sar:
                op.Sub = m switch
                {
                    Mnemonic.Rol => 0, Mnemonic.Ror => 1, Mnemonic.Rcl => 2, Mnemonic.Rcr => 3,
                    Mnemonic.Shl or Mnemonic.Sal => 4, Mnemonic.Shr => 5, _ => 7,
                };
                if (!Rm(in ins, 0, ref op, out op.Size)) return false;
                if (IsImm(k1)) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(1); }
                else if (ins.Op1Register != Register.CL) return false;
                op.Kind = K.Shift;
                return true;
            case Mnemonic.Shld: case Mnemonic.Shrd:
                op.Sub = (byte)(m == Mnemonic.Shld ? 0 : 1);
                if (!Rm(in ins, 0, ref op, out op.Size) || !Gpr(ins.Op1Register, out op.Reg, out _)) return false;
                if (IsImm(ins.GetOpKind(2))) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(2); }
                else if (ins.Op2Register != Register.CL) return false;
                op.Kind = K.ShiftDouble;
                return true;
            case Mnemonic.Mul: case Mnemonic.Div: case Mnemonic.Idiv:
            case Mnemonic.Imul when n == 1:
                op.Sub = m switch { Mnemonic.Mul => 0, Mnemonic.Imul => 1, Mnemonic.Div => 2, _ => 3 };
                if (!Rm(in ins, 0, ref op, out op.Size)) return false;
                op.Kind = K.MulDiv;
                return true;
            case Mnemonic.Imul:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Rm(in ins, 1, ref op, out _)) return false;
                if (n == 3) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(2); }
                op.Kind = K.Imul2;
                return true;
            case Mnemonic.Xchg: case Mnemonic.Cmpxchg: case Mnemonic.Xadd:
                if (m == Mnemonic.Xchg && k0 == IcedOpKind.Register && k1 == IcedOpKind.Memory)
                {
                    if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Mem(in ins, ref op)) return false;
                }
                else if (!Rm(in ins, 0, ref op, out op.Size) || !Gpr(ins.Op1Register, out op.Reg, out _)) return false;
                op.Kind = m == Mnemonic.Xchg ? K.Xchg : m == Mnemonic.Cmpxchg ? K.Cmpxchg : K.Xadd;
                return true;
            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
                op.Sub = m switch { Mnemonic.Bt => 0, Mnemonic.Bts => 1, Mnemonic.Btr => 2, _ => 3 };
                if (!Rm(in ins, 0, ref op, out op.Size)) return false;
                if (IsImm(k1)) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(1); }
                else if (!Gpr(ins.Op1Register, out op.Reg, out _)) return false;
                op.Kind = K.BitTest;
                return true;
            case Mnemonic.Bsf: case Mnemonic.Bsr: case Mnemonic.Tzcnt: case Mnemonic.Lzcnt: case Mnemonic.Popcnt:
                op.Sub = m switch { Mnemonic.Bsf => 0, Mnemonic.Bsr => 1, Mnemonic.Tzcnt => 2, Mnemonic.Lzcnt => 3, _ => 4 };
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Rm(in ins, 1, ref op, out _)) return false;
                op.Kind = K.BitScan;
                return true;
            case Mnemonic.Bswap:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size)) return false;
                op.Kind = K.Bswap;
                return true;
            case Mnemonic.Cbw: op.Size = 2; op.Kind = K.SignExtendAcc; return true;
            case Mnemonic.Cwde: op.Size = 4; op.Kind = K.SignExtendAcc; return true;
            case Mnemonic.Cdqe: op.Size = 8; op.Kind = K.SignExtendAcc; return true;
            case Mnemonic.Cwd: op.Size = 2; op.Kind = K.SignExtendIntoDx; return true;
            case Mnemonic.Cdq: op.Size = 4; op.Kind = K.SignExtendIntoDx; return true;
            case Mnemonic.Cqo: op.Size = 8; op.Kind = K.SignExtendIntoDx; return true;
            case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsq:
            case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd: case Mnemonic.Stosq:
            case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd: case Mnemonic.Lodsq:
            case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd: case Mnemonic.Cmpsq:
            case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd: case Mnemonic.Scasq:
            case Mnemonic.Movsd when ins.Code == Code.Movsd_m32_m32:
                if (ins.Code == Code.Cmpsd_m32_m32 || m != Mnemonic.Cmpsd)
                    return StringOp(in ins, ref op);
                return false;
            case Mnemonic.Clc: op.Sub = 0; op.Kind = K.FlagOp; return true;
            case Mnemonic.Stc: op.Sub = 1; op.Kind = K.FlagOp; return true;
            case Mnemonic.Cmc: op.Sub = 2; op.Kind = K.FlagOp; return true;
            case Mnemonic.Cld: op.Sub = 3; op.Kind = K.FlagOp; return true;
            case Mnemonic.Std: op.Sub = 4; op.Kind = K.FlagOp; return true;
            case Mnemonic.Cli: op.Sub = 5; op.Kind = K.FlagOp; return true;
            case Mnemonic.Sti: op.Sub = 6; op.Kind = K.FlagOp; return true;
            case Mnemonic.Nop: case Mnemonic.Pause: case Mnemonic.Endbr64: case Mnemonic.Lfence: case Mnemonic.Mfence:
            case Mnemonic.Sfence: case Mnemonic.Prefetcht0: case Mnemonic.Prefetcht1: case Mnemonic.Prefetcht2: case Mnemonic.Prefetchnta:
                op.Kind = K.Nop;
                return true;
            case Mnemonic.Hlt: op.Kind = K.Hlt; return true;
            case Mnemonic.Cpuid: op.Kind = K.Cpuid; return true;
            case Mnemonic.Rdtsc: op.Kind = K.Rdtsc; return true;
            case Mnemonic.In:
                if (!Gpr(ins.Op0Register, out _, out op.Size)) return false;
                if (IsImm(k1)) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(1); }
                op.Kind = K.In;
                return true;
            case Mnemonic.Out:
                if (!Gpr(ins.Op1Register, out _, out op.Size)) return false;
                if (IsImm(k0)) { op.HasImm = true; op.Imm = (long)ins.GetImmediate(0); }
                op.Kind = K.Out;
                return true;
            case Mnemonic.Pushfq: op.Kind = K.Pushf; return true;
            case Mnemonic.Popfq: op.Kind = K.Popf; return true;
            case Mnemonic.Leave: op.Kind = K.Leave; return true;
            case Mnemonic.Lahf: op.Kind = K.Lahf; return true;
            case Mnemonic.Sahf: op.Kind = K.Sahf; return true;
            case Mnemonic.Ud2: op.Kind = K.Fault; op.Imm = 2; return true;
            case Mnemonic.Movdqa: case Mnemonic.Movdqu: case Mnemonic.Movaps: case Mnemonic.Movups:
            case Mnemonic.Movapd: case Mnemonic.Movupd: case Mnemonic.Lddqu:
                op.Size2 = (byte)(m is Mnemonic.Movdqa or Mnemonic.Movaps or Mnemonic.Movapd ? 1 : 0);
                op.Size = 16;
                if (k0 == IcedOpKind.Register)
                {
                    if (!Xmm(ins.Op0Register, out op.Reg)) return false;
                    if (k1 == IcedOpKind.Register) { if (!Xmm(ins.Op1Register, out op.Rm)) return false; }
                    else if (!Mem(in ins, ref op)) return false;
                    op.Sub = 0;
                }
                else
                {
                    if (!Xmm(ins.Op1Register, out op.Reg) || !Mem(in ins, ref op)) return false;
                    op.Sub = 1;
                }
                op.Kind = K.SseMove;
                return true;
            case Mnemonic.Movq: case Mnemonic.Movd:
                op.Size = (byte)(m == Mnemonic.Movq ? 8 : 4);
                switch (ins.Code)
                {
                    case Code.Movq_xmm_rm64: case Code.Movd_xmm_rm32:
                        if (!Xmm(ins.Op0Register, out op.Reg) || !Rm(in ins, 1, ref op, out _)) return false;
                        op.Kind = K.SseMoveFromGpr;
                        return true;
                    case Code.Movq_rm64_xmm: case Code.Movd_rm32_xmm:
                        if (!Xmm(ins.Op1Register, out op.Reg) || !Rm(in ins, 0, ref op, out _)) return false;
                        op.Kind = K.SseMoveToGpr;
                        return true;
                    case Code.Movq_xmm_xmmm64:
                        if (!Xmm(ins.Op0Register, out op.Reg)) return false;
                        if (k1 == IcedOpKind.Register) { if (!Xmm(ins.Op1Register, out op.Rm)) return false; }
                        else if (!Mem(in ins, ref op)) return false;
                        op.Kind = K.SseMovqLoad;
                        return true;
                    case Code.Movq_xmmm64_xmm:
                        if (!Xmm(ins.Op1Register, out op.Reg)) return false;
                        if (k0 == IcedOpKind.Register) { if (!Xmm(ins.Op0Register, out op.Rm)) return false; }
                        else if (!Mem(in ins, ref op)) return false;
                        op.Kind = K.SseMovqStore;
                        return true;
                }
                return false;
            case Mnemonic.Pxor: case Mnemonic.Xorps: case Mnemonic.Xorpd: case Mnemonic.Por: case Mnemonic.Orps:
            case Mnemonic.Pand: case Mnemonic.Andps: case Mnemonic.Pandn: case Mnemonic.Andnps:
            case Mnemonic.Punpcklqdq: case Mnemonic.Movlhps:
                op.Sub = m switch
                {
                    Mnemonic.Pxor or Mnemonic.Xorps or Mnemonic.Xorpd => 0, Mnemonic.Por or Mnemonic.Orps => 1,
                    Mnemonic.Pand or Mnemonic.Andps => 2, Mnemonic.Pandn or Mnemonic.Andnps => 3, _ => 4,
                };
                if (!Xmm(ins.Op0Register, out op.Reg)) return false;
                if (k1 == IcedOpKind.Register) { if (!Xmm(ins.Op1Register, out op.Rm)) return false; }
                else if (!Mem(in ins, ref op)) return false;
                op.Kind = K.SseLogic;
                return true;
        }
        return false;
    }

    /// <summary>The hot register forms of add/or/and/sub/xor/cmp/test get a kind each, so the
    /// dispatch switch selects the operation too (adc and sbb stay generic).</summary>
    private static K Specialize(K form, byte sub)
    {
        K first = form == K.AluRR ? K.AddRR : K.AddRI;
        return sub switch
        {
            0 => first, 1 => first + 1, 4 => first + 2, 5 => first + 3, 6 => first + 4, 7 => first + 5, 8 => first + 6,
            _ => form,
        };
    }

    private static bool StringOp(in Instruction ins, ref Op op)
    {
        var m = ins.Mnemonic;
        op.Sub = m switch
        {
            Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd or Mnemonic.Movsq => 0,
            Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd or Mnemonic.Stosq => 1,
            Mnemonic.Lodsb or Mnemonic.Lodsw or Mnemonic.Lodsd or Mnemonic.Lodsq => 2,
            Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd or Mnemonic.Cmpsq => 3,
            _ => 4,
        };
        if (ins.SegmentPrefix is Register.FS or Register.GS) return false;
        // 32-bit address size (a 0x67 prefix) would wrap rsi/rdi at 4 GiB: not modelled.
        var mk = op.Sub == 1 || op.Sub == 4 ? ins.GetOpKind(0) : ins.GetOpKind(op.Sub == 2 ? 1 : 0);
        if (mk is IcedOpKind.MemoryESEDI or IcedOpKind.MemorySegESI) return false;
        op.Size = (byte)ins.MemorySize.GetSize();
        op.Size2 = (byte)(ins.HasRepnePrefix ? 2 : ins.HasRepPrefix || ins.HasRepePrefix ? 1 : 0);
        op.Kind = K.StringOp;
        return true;
    }
}
