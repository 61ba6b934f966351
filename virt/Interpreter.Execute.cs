using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;

namespace SmartOS.Virt;

// The dispatch loop (Interpreter.cs). One switch over the cached Op; hot forms first.
public sealed unsafe partial class Interpreter
{
    /// <summary>Runs until _end instructions have retired or an exit. rip lives in a local, written
    /// back when the loop leaves; _instrRip and the retired count are published per instruction
    /// (fault reports and device time read them from inside helpers). Setting _end to 0 (RequestBoundary) ends the loop
    /// after the current instruction, so that Run can look for interrupts. With block translation on, an
    /// instruction that starts a translated block runs the whole block (Interpreter.Blocks.cs) when it
    /// fits before _end, and each instruction reached counts towards translating one.</summary>
    private VcpuExit Loop()
    {
        Op[]? ops = null;
        ulong opsPage = ulong.MaxValue;
        ulong* r = _r;
        ulong rip = _rip;
        long retired = _retired;
        // Block translation (Interpreter.Blocks.cs): the translated blocks of the current code page.
        bool translate = _translate;
        Block?[]? blocks = null;
        ulong opsPhys = 0;
        _inBlock = false;
        try
        {
            while (retired < _end)
            {
                if ((rip >> 12) != opsPage)
                {
                    _instrRip = rip;
                    ops = FetchPage(rip);
                    opsPage = rip >> 12;
                    opsPhys = _fetchPhys;
                    blocks = translate ? _blocks?[opsPhys] : null;
                }
                ref Op op = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ops!), (int)(rip & 0xFFF));
                if (translate)
                {
                    Block? block = blocks?[(int)(rip & 0xFFF)];
                    if (block != null)
                    {
                        // Rule 1 of Interpreter.Blocks.cs: only when the whole block fits before _end.
                        if (retired + block.Count <= _end)
                        {
                            rip = RunBlock(block, retired);
                            retired = _retired;
                            continue;
                        }
                    }
                    else if (op.Heat < BlockThreshold && ++op.Heat == BlockThreshold && op.Kind != K.Undecoded
                        && CompileBlock(rip, ops!, opsPhys))
                    {
                        blocks = _blocks![opsPhys];
                        continue;
                    }
                }
                _instrRip = rip;
                // Published per instruction, as _instrRip is: a device reached through port I/O or
                // MMIO from inside a helper reads guest time (Vm.GuestNow) from it, and every exit
                // and fault below leaves the count already right.
                _retired = ++retired;
            Dispatch:
                ulong next = rip + op.Len;
                switch (op.Kind)
                {
                case K.Undecoded:
                    Decode(rip, ref op);
                    goto Dispatch;
                case K.MovRR:
                    if (op.Size == 8) r[op.Reg] = r[op.Rm];
                    else SetReg(op.Reg, op.Size, GetReg(op.Rm, op.Size));
                    break;
                case K.MovRM:
                    SetReg(op.Reg, op.Size, Read(Ea(ref op), op.Size));
                    break;
                case K.MovMR:
                    Write(Ea(ref op), op.Size, GetReg(op.Reg, op.Size));
                    break;
                case K.MovRI:
                    SetReg(op.Reg, op.Size, (ulong)op.Imm);
                    break;
                case K.MovMI:
                    Write(Ea(ref op), op.Size, (ulong)op.Imm);
                    break;
                case K.AluRR:
                {
                    ulong v = Alu(op.Sub, op.Size, GetReg(op.Reg, op.Size), GetReg(op.Rm, op.Size));
                    if (op.Sub < 7) SetReg(op.Reg, op.Size, v);
                    break;
                }
                case K.AluRM:
                {
                    ulong v = Alu(op.Sub, op.Size, GetReg(op.Reg, op.Size), Read(Ea(ref op), op.Size));
                    if (op.Sub < 7) SetReg(op.Reg, op.Size, v);
                    break;
                }
                case K.AluRI:
                {
                    ulong v = Alu(op.Sub, op.Size, GetReg(op.Reg, op.Size), (ulong)op.Imm);
                    if (op.Sub < 7) SetReg(op.Reg, op.Size, v);
                    break;
                }
                case K.AluMR:
                {
                    ulong ea = Ea(ref op);
                    ulong v = Alu(op.Sub, op.Size, Read(ea, op.Size), GetReg(op.Reg, op.Size));
                    if (op.Sub < 7) Write(ea, op.Size, v);
                    break;
                }
                case K.AluMI:
                {
                    ulong ea = Ea(ref op);
                    ulong v = Alu(op.Sub, op.Size, Read(ea, op.Size), (ulong)op.Imm);
                    if (op.Sub < 7) Write(ea, op.Size, v);
                    break;
                }
                case K.AddRR: { int s = op.Size; ulong a = GetReg(op.Reg, s), b = GetReg(op.Rm, s), v = (a + b) & Mask(s); SetFlags(FlagKind.Add, s, a, b, v); SetReg(op.Reg, s, v); break; }
                case K.SubRR: { int s = op.Size; ulong a = GetReg(op.Reg, s), b = GetReg(op.Rm, s), v = (a - b) & Mask(s); SetFlags(FlagKind.Sub, s, a, b, v); SetReg(op.Reg, s, v); break; }
                case K.CmpRR: { int s = op.Size; ulong a = GetReg(op.Reg, s), b = GetReg(op.Rm, s); SetFlags(FlagKind.Sub, s, a, b, (a - b) & Mask(s)); break; }
                case K.AndRR: { int s = op.Size; ulong v = GetReg(op.Reg, s) & GetReg(op.Rm, s); SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.OrRR: { int s = op.Size; ulong v = GetReg(op.Reg, s) | GetReg(op.Rm, s); SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.XorRR: { int s = op.Size; ulong v = GetReg(op.Reg, s) ^ GetReg(op.Rm, s); SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.TestRR: { int s = op.Size; SetFlags(FlagKind.Logic, s, 0, 0, GetReg(op.Reg, s) & GetReg(op.Rm, s)); break; }
                case K.AddRI: { int s = op.Size; ulong m = Mask(s), a = GetReg(op.Reg, s), b = (ulong)op.Imm & m, v = (a + b) & m; SetFlags(FlagKind.Add, s, a, b, v); SetReg(op.Reg, s, v); break; }
                case K.SubRI: { int s = op.Size; ulong m = Mask(s), a = GetReg(op.Reg, s), b = (ulong)op.Imm & m, v = (a - b) & m; SetFlags(FlagKind.Sub, s, a, b, v); SetReg(op.Reg, s, v); break; }
                case K.CmpRI: { int s = op.Size; ulong m = Mask(s), a = GetReg(op.Reg, s), b = (ulong)op.Imm & m; SetFlags(FlagKind.Sub, s, a, b, (a - b) & m); break; }
                case K.AndRI: { int s = op.Size; ulong v = GetReg(op.Reg, s) & (ulong)op.Imm; SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.OrRI: { int s = op.Size; ulong v = GetReg(op.Reg, s) | ((ulong)op.Imm & Mask(s)); SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.XorRI: { int s = op.Size; ulong v = GetReg(op.Reg, s) ^ ((ulong)op.Imm & Mask(s)); SetFlags(FlagKind.Logic, s, 0, 0, v); SetReg(op.Reg, s, v); break; }
                case K.TestRI: { int s = op.Size; SetFlags(FlagKind.Logic, s, 0, 0, GetReg(op.Reg, s) & (ulong)op.Imm); break; }
                case K.Jcc:
                    if (Cond(op.Sub)) { rip = (ulong)op.Imm; continue; }
                    break;
                case K.Lea:
                    SetReg(op.Reg, op.Size, Ea(ref op));
                    break;
                case K.Movzx:
                    SetReg(op.Reg, op.Size, op.IsMem ? Read(Ea(ref op), op.Size2) : GetReg(op.Rm, op.Size2));
                    break;
                case K.Movsx:
                    SetReg(op.Reg, op.Size, (ulong)SignExtend(op.IsMem ? Read(Ea(ref op), op.Size2) : GetReg(op.Rm, op.Size2), op.Size2));
                    break;
                case K.PushR:
                    Push(r[op.Reg]);
                    break;
                case K.PushI:
                    Push((ulong)op.Imm);
                    break;
                case K.PushM:
                    Push(Read(Ea(ref op), 8));
                    break;
                case K.PopR:
                    r[op.Reg] = Pop();
                    break;
                case K.PopM:
                {
                    ulong v = Pop();
                    Write(Ea(ref op), 8, v);
                    break;
                }
                case K.CallRel:
                    Push(next);
                    rip = (ulong)op.Imm;
                    continue;
                case K.CallRm:
                {
                    ulong target = op.IsMem ? Read(Ea(ref op), 8) : r[op.Rm];
                    Push(next);
                    rip = target;
                    continue;
                }
                case K.Ret:
                    rip = Pop();
                    r[4] += (ulong)op.Imm;
                    continue;
                case K.JmpRel:
                    rip = (ulong)op.Imm;
                    continue;
                case K.JmpRm:
                    rip = op.IsMem ? Read(Ea(ref op), 8) : r[op.Rm];
                    continue;
                case K.Jrcxz:
                    if ((r[1] & Mask(op.Size)) == 0) { rip = (ulong)op.Imm; continue; }
                    break;
                case K.Setcc:
                {
                    ulong ea = op.IsMem ? Ea(ref op) : 0;
                    WriteRm(ref op, ea, 1, Cond(op.Sub) ? 1UL : 0);
                    break;
                }
                case K.Cmov:
                {
                    ulong v = op.IsMem ? Read(Ea(ref op), op.Size) : GetReg(op.Rm, op.Size);
                    // A 32-bit cmov writes (zero-extends) its destination even when the condition is false.
                    SetReg(op.Reg, op.Size, Cond(op.Sub) ? v : GetReg(op.Reg, op.Size));
                    break;
                }
                case K.Unary: Unary(ref op); break;
                case K.Shift: Shift(ref op); break;
                case K.ShiftDouble: ShiftDouble(ref op); break;
                case K.MulDiv: MulDiv(ref op); break;
                case K.Imul2: Imul2(ref op); break;
                case K.Xchg:
                {
                    ulong ea = op.IsMem ? Ea(ref op) : 0;
                    ulong a = ReadRm(ref op, ea, op.Size);
                    ulong b = GetReg(op.Reg, op.Size);
                    WriteRm(ref op, ea, op.Size, b);
                    SetReg(op.Reg, op.Size, a);
                    break;
                }
                case K.Cmpxchg:
                {
                    ulong ea = op.IsMem ? Ea(ref op) : 0;
                    ulong dst = ReadRm(ref op, ea, op.Size);
                    ulong acc = GetReg(0, op.Size);
                    Alu(7, op.Size, acc, dst);
                    if (acc == dst) WriteRm(ref op, ea, op.Size, GetReg(op.Reg, op.Size));
                    else SetReg(0, op.Size, dst);
                    break;
                }
                case K.Xadd:
                {
                    ulong ea = op.IsMem ? Ea(ref op) : 0;
                    ulong dst = ReadRm(ref op, ea, op.Size);
                    ulong src = GetReg(op.Reg, op.Size);
                    ulong sum = Alu(0, op.Size, dst, src);
                    SetReg(op.Reg, op.Size, dst);
                    WriteRm(ref op, ea, op.Size, sum);
                    break;
                }
                case K.BitTest: BitTest(ref op); break;
                case K.BitScan: BitScan(ref op); break;
                case K.Bswap:
                    SetReg(op.Reg, op.Size, op.Size == 8 ? BinaryReverse(r[op.Reg]) : BinaryReverse((uint)r[op.Reg]));
                    break;
                case K.SignExtendAcc:
                    SetReg(0, op.Size, (ulong)SignExtend(r[0], op.Size / 2));
                    break;
                case K.SignExtendIntoDx:
                    SetReg(2, op.Size, SignExtend(r[0], op.Size) < 0 ? ulong.MaxValue : 0);
                    break;
                case K.StringOp: StringOp(ref op); break;
                case K.FlagOp: FlagOp(op.Sub); break;
                case K.Nop: break;
                case K.Hlt:
                    if (_cpl != 0) throw PrivilegedInstruction("hlt");
                    _rip = next;
                    return new VcpuExit { Reason = VcpuExitReason.Hlt, Rip = next };
                case K.Cpuid: Cpuid(); break;
                case K.Rdtsc:
                {
                    ulong tsc = (ulong)(TscBase + (retired - TscRetiredBase) + _tscOffset);
                    r[0] = (uint)tsc;
                    r[2] = tsc >> 32;
                    if (op.Sub == 1) r[1] = _tscAux; // rdtscp: IA32_TSC_AUX (Interpreter.System.cs)
                    break;
                }
                case K.In:
                case K.Out:
                {
                    var exit = new VcpuExit
                    {
                        Reason = VcpuExitReason.Io,
                        IsWrite = op.Kind == K.Out,
                        Port = (ushort)(op.HasImm ? (ulong)op.Imm : r[2]),
                        Size = op.Size,
                        Data = op.Kind == K.Out ? GetReg(0, op.Size) : 0,
                        Rip = rip,
                    };
                    if (_cpl != 0) throw PrivilegedInstruction(op.Kind == K.In ? "in" : "out");
                    _handler.HandleAccess(ref exit);
                    RequestBoundary();
                    if (op.Kind == K.In) SetReg(0, op.Size, exit.Data);
                    if (_handler.StopRequested)
                    {
                        _rip = next;
                        return new VcpuExit { Reason = VcpuExitReason.Stop, Rip = next };
                    }
                    break;
                }
                case K.Pushf:
                    Push(GetFlags());
                    break;
                case K.Popf:
                {
                    // Above ring 0 (IOPL is 0) popf leaves IF alone, as the processor does.
                    ulong keep = _cpl == 0 ? 0 : IF;
                    _fop = FlagKind.None;
                    _rflags = (Pop() & (ArithFlags | DF | IF) & ~keep) | (_rflags & keep) | 2;
                    RequestBoundary();
                    break;
                }
                case K.Leave:
                    r[4] = r[5];
                    r[5] = Pop();
                    break;
                case K.Lahf:
                    SetReg(16, 1, GetFlags() & (SF | ZF | AF | PF | CF) | 2);
                    break;
                case K.Sahf:
                    SetFlagBits(SF | ZF | AF | PF | CF, (r[0] >> 8) & 0xFF);
                    break;
                case K.SseMove: SseMove(ref op); break;
                case K.SseMoveFromGpr:
                {
                    ulong v = op.IsMem ? Read(Ea(ref op), op.Size) : GetReg(op.Rm, op.Size);
                    _xmm[2 * op.Reg] = v;
                    _xmm[2 * op.Reg + 1] = 0;
                    break;
                }
                case K.SseMoveToGpr:
                {
                    ulong ea = op.IsMem ? Ea(ref op) : 0;
                    WriteRm(ref op, ea, op.Size, _xmm[2 * op.Reg] & Mask(op.Size));
                    break;
                }
                case K.SseMovqLoad:
                    _xmm[2 * op.Reg] = op.IsMem ? Read(Ea(ref op), 8) : _xmm[2 * op.Rm];
                    _xmm[2 * op.Reg + 1] = 0;
                    break;
                case K.SseMovqStore:
                    if (op.IsMem) Write(Ea(ref op), 8, _xmm[2 * op.Reg]);
                    else
                    {
                        _xmm[2 * op.Rm] = _xmm[2 * op.Reg];
                        _xmm[2 * op.Rm + 1] = 0;
                    }
                    break;
                case K.SseLogic: SseLogic(ref op); break;
                case K.Sse: case K.Bmi: case K.X87: case K.CpuMisc: ExecuteCpu(ref op, ref next); break;
                case K.Fault:
                    throw new GuestFault(VcpuExitReason.Fault, rip, op.Imm switch
                    {
                        1 => $"#PF: instruction fetch runs past the end of RAM at 0x{rip:x}",
                        2 => "#UD: ud2",
                        _ => $"#UD: invalid opcode at 0x{rip:x}",
                    }, op.Imm == 1 ? -1 : ExcUd);
                case K.System:
                    rip = ExecuteSystem(ref op, rip, next);
                    // The instruction may have changed the translation or the privilege level.
                    opsPage = ulong.MaxValue;
                    if (_systemExit != VcpuExitReason.None)
                    {
                        var reason = _systemExit;
                        _systemExit = VcpuExitReason.None;
                        _rip = rip;
                            return new VcpuExit { Reason = reason, Rip = rip };
                    }
                    continue;
                case K.Unimplemented:
                    throw new GuestFault(VcpuExitReason.Unimplemented, rip,
                        $"unimplemented instruction {((Iced.Intel.Mnemonic)op.Imm).ToString().ToLowerInvariant()} at 0x{rip:x}");
                default:
                    throw new GuestFault(VcpuExitReason.Unimplemented, rip, $"unimplemented operation {op.Kind} at 0x{rip:x}");
                }
                rip = next;
            }
            _rip = rip;
            return new VcpuExit { Reason = VcpuExitReason.Budget, Rip = rip };
        }
        catch (GuestFault f)
        {
            // A fault inside a translated block: the block published the faulting instruction.
            if (_inBlock)
            {
                _inBlock = false;
                rip = _instrRip;
            }
            // The faulting instruction is not completed: rip stays on it (as the CPU reports it).
            _rip = rip;
            _fault = f;
            return new VcpuExit { Reason = f.Reason, Rip = f.Rip, Detail = f.Message };
        }
    }

    private static ulong BinaryReverse(ulong v) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v);
    private static ulong BinaryReverse(uint v) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Alu(int sub, int size, ulong a, ulong b)
    {
        ulong m = Mask(size);
        b &= m;
        ulong r;
        switch (sub)
        {
            case 0: r = (a + b) & m; SetFlags(FlagKind.Add, size, a, b, r); return r;
            case 1: r = a | b; SetFlags(FlagKind.Logic, size, 0, 0, r); return r;
            case 2: { ulong c = GetCF() ? 1UL : 0; r = (a + b + c) & m; SetFlags(FlagKind.Add, size, a, b, r, c); return r; }
            case 3: { ulong c = GetCF() ? 1UL : 0; r = (a - b - c) & m; SetFlags(FlagKind.Sub, size, a, b, r, c); return r; }
            case 4: case 8: r = a & b; SetFlags(FlagKind.Logic, size, 0, 0, r); return r;
            case 6: r = a ^ b; SetFlags(FlagKind.Logic, size, 0, 0, r); return r;
            default: r = (a - b) & m; SetFlags(FlagKind.Sub, size, a, b, r); return r;
        }
    }

    private void Unary(ref Op op)
    {
        int s = op.Size;
        ulong ea = op.IsMem ? Ea(ref op) : 0;
        ulong a = ReadRm(ref op, ea, s), m = Mask(s), r;
        switch (op.Sub)
        {
            case 0: { ulong cf = GetCF() ? 1UL : 0; r = (a + 1) & m; SetFlags(FlagKind.Inc, s, a, 1, r, cf); break; }
            case 1: { ulong cf = GetCF() ? 1UL : 0; r = (a - 1) & m; SetFlags(FlagKind.Dec, s, a, 1, r, cf); break; }
            case 2: r = (0 - a) & m; SetFlags(FlagKind.Sub, s, 0, a, r); break;
            default: r = ~a & m; break;
        }
        WriteRm(ref op, ea, s, r);
    }

    private void Shift(ref Op op)
    {
        int s = op.Size, bits = s * 8;
        ulong ea = op.IsMem ? Ea(ref op) : 0;
        int count = (int)((op.HasImm ? (ulong)op.Imm : _r[1]) & (s == 8 ? 63UL : 31UL));
        if (count == 0)
        {
            // A zero count changes nothing, not even the flags; a 32-bit register operand is still
            // written back (zero-extended), as hardware does.
            if (!op.IsMem && s == 4) SetReg(op.Rm, 4, GetReg(op.Rm, 4));
            return;
        }
        ulong a = ReadRm(ref op, ea, s), m = Mask(s), r;
        ulong sign = 1UL << (bits - 1);
        switch (op.Sub)
        {
            case 0:
            {
                int c = count % bits;
                r = c == 0 ? a : ((a << c) | (a >> (bits - c))) & m;
                ulong cf = r & 1;
                ulong of = ((r & sign) != 0 ? 1UL : 0) ^ cf;
                SetFlagBits(CF | OF, (cf != 0 ? CF : 0) | (of != 0 ? OF : 0));
                break;
            }
            case 1:
            {
                int c = count % bits;
                r = c == 0 ? a : ((a >> c) | (a << (bits - c))) & m;
                bool cf = (r & sign) != 0;
                bool of = cf ^ ((r & (sign >> 1)) != 0);
                SetFlagBits(CF | OF, (cf ? CF : 0) | (of ? OF : 0));
                break;
            }
            case 2:
            case 3:
            {
                int c = count % (bits + 1);
                ulong cf = GetCF() ? 1UL : 0;
                r = a;
                for (int i = 0; i < c; i++)
                {
                    if (op.Sub == 2)
                    {
                        ulong outBit = (r & sign) != 0 ? 1UL : 0;
                        r = ((r << 1) | cf) & m;
                        cf = outBit;
                    }
                    else
                    {
                        ulong outBit = r & 1;
                        r = (r >> 1) | (cf != 0 ? sign : 0);
                        cf = outBit;
                    }
                }
                bool of = op.Sub == 2 ? (((r & sign) != 0 ? 1UL : 0) ^ cf) != 0 : ((r ^ (r << 1)) & sign) != 0;
                SetFlagBits(CF | OF, (cf != 0 ? CF : 0) | (of ? OF : 0));
                break;
            }
            case 4:
                r = count >= bits ? 0 : (a << count) & m;
                SetFlags(FlagKind.Shl, s, a, (ulong)count, r);
                break;
            case 5:
                r = count >= bits ? 0 : a >> count;
                SetFlags(FlagKind.Shr, s, a, (ulong)count, r);
                break;
            default:
                r = (ulong)(SignExtend(a, s) >> Math.Min(count, 63)) & m;
                SetFlags(FlagKind.Sar, s, a, (ulong)Math.Min(count, bits), r);
                break;
        }
        WriteRm(ref op, ea, s, r);
    }

    private void ShiftDouble(ref Op op)
    {
        int s = op.Size, bits = s * 8;
        ulong ea = op.IsMem ? Ea(ref op) : 0;
        int count = (int)((op.HasImm ? (ulong)op.Imm : _r[1]) & (s == 8 ? 63UL : 31UL));
        if (count == 0)
        {
            if (!op.IsMem && s == 4) SetReg(op.Rm, 4, GetReg(op.Rm, 4));
            return;
        }
        ulong a = ReadRm(ref op, ea, s), b = GetReg(op.Reg, s), m = Mask(s), sign = 1UL << (bits - 1);
        ulong r, cf;
        // Counts above the operand size (16-bit only) leave the result undefined; not modelled.
        if (op.Sub == 0)
        {
            UInt128 cat = ((UInt128)a << bits) | b;
            r = (ulong)(cat << count >> bits) & m;
            cf = (ulong)(cat >> (2 * bits - count)) & 1;
        }
        else
        {
            UInt128 cat = ((UInt128)b << bits) | a;
            r = (ulong)(cat >> count) & m;
            cf = (ulong)(cat >> (count - 1)) & 1;
        }
        bool of = ((a ^ r) & sign) != 0;
        ulong f = GetFlags() & ~ArithFlags;
        if (cf != 0) f |= CF;
        if (of) f |= OF;
        if (r == 0) f |= ZF;
        if ((r & sign) != 0) f |= SF;
        if (Parity(r)) f |= PF;
        _rflags = f;
        WriteRm(ref op, ea, s, r);
    }

    private void MulDiv(ref Op op)
    {
        int s = op.Size;
        ulong ea = op.IsMem ? Ea(ref op) : 0;
        ulong src = ReadRm(ref op, ea, s), m = Mask(s);
        ulong* r = _r;
        switch (op.Sub)
        {
            case 0:
            {
                ulong lo, hi;
                if (s == 8) hi = Math.BigMul(r[0], src, out lo);
                else { ulong p = (r[0] & m) * src; lo = p & m; hi = (p >> (s * 8)) & m; }
                StoreWide(s, lo, hi);
                SetFlags(FlagKind.Mul, s, 0, 0, lo, hi != 0 ? 1UL : 0);
                break;
            }
            case 1:
            {
                ulong lo, hi;
                if (s == 8) { hi = (ulong)Math.BigMul((long)r[0], (long)src, out long l); lo = (ulong)l; }
                else { long p = SignExtend(r[0], s) * SignExtend(src, s); lo = (ulong)p & m; hi = (ulong)(p >> (s * 8)) & m; }
                bool overflow = s == 8 ? hi != (ulong)((long)lo >> 63) : (hi & m) != ((ulong)(SignExtend(lo, s) >> 63) & m);
                StoreWide(s, lo, hi);
                SetFlags(FlagKind.Mul, s, 0, 0, lo, overflow ? 1UL : 0);
                break;
            }
            case 2:
            {
                if (src == 0) throw DivideError();
                ulong lo = s == 1 ? r[0] & 0xFFFF : r[0] & m, hi = s == 1 ? 0 : r[2] & m;
                ulong q, rem;
                if (s == 8)
                {
                    if (hi >= src) throw DivideError();
                    q = hi == 0 ? lo / src : (ulong)(((UInt128)hi << 64 | lo) / src);
                    rem = hi == 0 ? lo % src : (ulong)(((UInt128)hi << 64 | lo) % src);
                }
                else
                {
                    ulong dividend = s == 1 ? lo : (hi << (s * 8)) | lo;
                    q = dividend / src;
                    rem = dividend % src;
                    if (q > m) throw DivideError();
                }
                StoreQuotient(s, q, rem);
                break;
            }
            default:
            {
                long d = SignExtend(src, s);
                if (d == 0) throw DivideError();
                long q, rem;
                // .NET throws on MinValue / -1; the guest gets #DE for it (the quotient does not fit).
                if (s == 8)
                {
                    Int128 dividend = (Int128)(((UInt128)r[2] << 64) | r[0]);
                    if (d == -1 && dividend == Int128.MinValue) throw DivideError();
                    Int128 q128 = dividend / d;
                    if (q128 > long.MaxValue || q128 < long.MinValue) throw DivideError();
                    q = (long)q128;
                    rem = (long)(dividend % d);
                }
                else
                {
                    long dividend = s == 1 ? SignExtend(r[0], 2) : (long)((SignExtend(r[2], s) << (s * 8)) | (long)(r[0] & m));
                    if (d == -1 && dividend == long.MinValue) throw DivideError();
                    q = dividend / d;
                    rem = dividend % d;
                    long max = (long)(m >> 1);
                    if (q > max || q < -max - 1) throw DivideError();
                }
                StoreQuotient(s, (ulong)q & m, (ulong)rem & m);
                break;
            }
        }
    }

    private GuestFault DivideError() => new(VcpuExitReason.Fault, _instrRip, $"#DE: divide error at 0x{_instrRip:x}", ExcDe);

    private void StoreWide(int s, ulong lo, ulong hi)
    {
        if (s == 1) SetReg(0, 2, (hi << 8) | lo);
        else { SetReg(0, s, lo); SetReg(2, s, hi); }
    }

    private void StoreQuotient(int s, ulong q, ulong rem)
    {
        if (s == 1) SetReg(0, 2, (rem << 8) | (q & 0xFF));
        else { SetReg(0, s, q); SetReg(2, s, rem); }
    }

    private void Imul2(ref Op op)
    {
        int s = op.Size;
        ulong src = op.IsMem ? Read(Ea(ref op), s) : GetReg(op.Rm, s);
        long a = op.HasImm ? SignExtend(src, s) : SignExtend(GetReg(op.Reg, s), s);
        long b = op.HasImm ? SignExtend((ulong)op.Imm, s) : SignExtend(src, s);
        ulong lo = ImulLow(a, b, s, out ulong overflow);
        SetReg(op.Reg, s, lo);
        SetFlags(FlagKind.Mul, s, 0, 0, lo, overflow);
    }

    private void BitTest(ref Op op)
    {
        int s = op.Size, bits = s * 8;
        ulong ea = op.IsMem ? Ea(ref op) : 0;
        int bit;
        if (op.HasImm) bit = (int)((ulong)op.Imm & (ulong)(bits - 1));
        else
        {
            ulong offset = GetReg(op.Reg, s);
            bit = (int)(offset & (ulong)(bits - 1));
            // With a register offset a memory operand is a bit string: the offset is signed and can
            // reach outside the addressed word.
            if (op.IsMem) ea += (ulong)((SignExtend(offset, s) >> BitOperations.Log2((uint)bits)) * s);
        }
        ulong v = ReadRm(ref op, ea, s);
        bool set = ((v >> bit) & 1) != 0;
        SetFlagBits(CF, set ? CF : 0);
        switch (op.Sub)
        {
            case 1: WriteRm(ref op, ea, s, v | (1UL << bit)); break;
            case 2: WriteRm(ref op, ea, s, v & ~(1UL << bit)); break;
            case 3: WriteRm(ref op, ea, s, v ^ (1UL << bit)); break;
        }
    }

    private void BitScan(ref Op op)
    {
        int s = op.Size, bits = s * 8;
        ulong src = op.IsMem ? Read(Ea(ref op), s) : GetReg(op.Rm, s);
        switch (op.Sub)
        {
            case 0:
            case 1:
                // A zero source leaves the destination as it was (what Intel and AMD parts do).
                SetFlagBits(ZF, src == 0 ? ZF : 0);
                if (src != 0) SetReg(op.Reg, s, (ulong)(op.Sub == 0 ? BitOperations.TrailingZeroCount(src) : 63 - BitOperations.LeadingZeroCount(src)));
                break;
            case 2:
            case 3:
            {
                ulong n = src == 0 ? (ulong)bits
                    : op.Sub == 2 ? (ulong)BitOperations.TrailingZeroCount(src) : (ulong)(BitOperations.LeadingZeroCount(src) - (64 - bits));
                SetReg(op.Reg, s, n);
                SetFlagBits(CF | ZF, (src == 0 ? CF : 0) | (n == 0 ? ZF : 0));
                break;
            }
            default:
            {
                ulong n = (ulong)BitOperations.PopCount(src);
                SetReg(op.Reg, s, n);
                SetFlagBits(ArithFlags, src == 0 ? ZF : 0);
                break;
            }
        }
    }

    private void FlagOp(int sub)
    {
        switch (sub)
        {
            case 0: SetFlagBits(CF, 0); break;
            case 1: SetFlagBits(CF, CF); break;
            case 2: SetFlagBits(CF, GetCF() ? 0 : CF); break;
            case 3: _rflags &= ~DF; break;
            case 4: _rflags |= DF; break;
            case 5:
                if (_cpl != 0) throw PrivilegedInstruction("cli");
                _rflags &= ~IF;
                break;
            default:
                if (_cpl != 0) throw PrivilegedInstruction("sti");
                // sti holds interrupts off for one more instruction (the shadow that makes sti; hlt safe).
                if ((_rflags & IF) == 0) _interruptShadow = true;
                _rflags |= IF;
                RequestBoundary();
                break;
        }
    }

    /// <summary>Whether the guest enabled interrupts (sti): a hlt then waits for a device event.</summary>
    public bool InterruptsEnabled => (_rflags & IF) != 0;

    private void SseMove(ref Op op)
    {
        ulong* x = _xmm;
        if (!op.IsMem)
        {
            x[2 * op.Reg] = x[2 * op.Rm];
            x[2 * op.Reg + 1] = x[2 * op.Rm + 1];
            return;
        }
        ulong ea = Ea(ref op);
        if (op.Size2 != 0 && (ea & 15) != 0)
            throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: misaligned 16-byte access at 0x{ea:x}", ExcGp, 0);
        if (op.Sub == 0)
        {
            x[2 * op.Reg] = Read(ea, 8);
            x[2 * op.Reg + 1] = Read(ea + 8, 8);
        }
        else
        {
            Write(ea, 8, x[2 * op.Reg]);
            Write(ea + 8, 8, x[2 * op.Reg + 1]);
        }
    }

    private void SseLogic(ref Op op)
    {
        ulong* x = _xmm;
        ulong lo, hi;
        if (op.IsMem)
        {
            ulong ea = Ea(ref op);
            if ((ea & 15) != 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: misaligned 16-byte access at 0x{ea:x}", ExcGp, 0);
            lo = Read(ea, 8);
            hi = Read(ea + 8, 8);
        }
        else
        {
            lo = x[2 * op.Rm];
            hi = x[2 * op.Rm + 1];
        }
        ref ulong dl = ref x[2 * op.Reg];
        ref ulong dh = ref x[2 * op.Reg + 1];
        switch (op.Sub)
        {
            case 0: dl ^= lo; dh ^= hi; break;
            case 1: dl |= lo; dh |= hi; break;
            case 2: dl &= lo; dh &= hi; break;
            case 3: dl = ~dl & lo; dh = ~dh & hi; break;
            default: dh = lo; break;
        }
    }
}
