using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;

namespace SmartOS.Virt;

/*
 * System state in the interpreter: control registers, MSRs, descriptor tables, segments, rings,
 * and the instructions that use them (Interpreter.cs; paging is Interpreter.Paging.cs, exception
 * and interrupt delivery Interpreter.System.Exceptions.cs).
 *
 * The interpreter runs 64-bit code only (Iced decodes in 64-bit mode). A bare Interpreter starts
 * in the flat state the old interpreter had: ring 0, a 64-bit code segment, CR0.PG clear so that
 * linear is physical, no IDT. Boot.SetEntryState moves it to the state KVM gets from the flat boot
 * protocol (SetLongModeState: long mode, paging on with the boot page tables at CR3); the Linux
 * boot protocol enters in long mode too. Real mode and 32-bit protected/compatibility mode are not
 * implemented: loading a code segment without the L bit (a far jump, iretq or sysret into 32-bit
 * code) stops the VM as Unimplemented; so does enabling paging without EFER.LME.
 *
 * Segments
 *   Each of ES, CS, SS, DS, FS, GS holds a selector and the attributes of its descriptor (type, S,
 *   DPL, P, L, D/B). In 64-bit mode only FS and GS have a base (the _r slots after the GPRs, which
 *   a segment-override operand adds) and limits are not checked; CPL is CS's DPL. Loads check the
 *   descriptor as the processor does in 64-bit mode (#GP(selector) for a bad index, type or
 *   privilege, #NP/#SS(selector) when not present) and set its accessed bit.
 *
 * Rules
 *   1. A privileged instruction at CPL 3 raises #GP(0); so do cli, sti, in and out (IOPL is 0 and
 *      there is no I/O permission bitmap) and popf leaves IF alone there.
 *   2. rdmsr/wrmsr of an MSR not in ReadMsr/WriteMsr, or a reserved bit in one, raise #GP(0).
 *   3. Everything that changes translation (CR0, CR3, CR4, EFER, invlpg) drops TLB entries
 *      (Interpreter.Paging.cs rule 3); everything that may unmask an interrupt (sti, popf, iretq,
 *      a CR8 write, a device access) asks Run to look for one before the next instruction.
 *   4. Debug registers hold what the guest writes; breakpoints and single-step are not
 *      implemented (CPUID does not promise them: DE is not set).
 */
public sealed unsafe partial class Interpreter
{
    private const ulong Cr0Pe = 1, Cr0Mp = 2, Cr0Ts = 8, Cr0Et = 0x10, Cr0Ne = 0x20, Cr0Wp = 0x1_0000, Cr0Nw = 1UL << 29, Cr0Cd = 1UL << 30, Cr0Pg = 1UL << 31;
    private const ulong Cr4Tsd = 4, Cr4De = 8, Cr4Pse = 0x10, Cr4Pae = 0x20, Cr4Mce = 0x40, Cr4Pge = 0x80, Cr4Pce = 0x100;
    private const ulong Cr4Osfxsr = 0x200, Cr4Osxmmexcpt = 0x400, Cr4Osxsave = 0x4_0000;
    private const ulong Cr4Allowed = Cr4Tsd | Cr4De | Cr4Pse | Cr4Pae | Cr4Mce | Cr4Pge | Cr4Pce | Cr4Osfxsr | Cr4Osxmmexcpt | Cr4Osxsave;
    private const ulong EferSce = 1, EferLme = 0x100, EferLma = 0x400, EferNxe = 0x800;

    // MSR numbers.
    private const uint MsrTsc = 0x10, MsrApicBase = 0x1B, MsrSysenterCs = 0x174, MsrSysenterEsp = 0x175, MsrSysenterEip = 0x176;
    private const uint MsrMiscEnable = 0x1A0, MsrPat = 0x277, MsrEfer = 0xC000_0080, MsrStar = 0xC000_0081, MsrLstar = 0xC000_0082;
    private const uint MsrCstar = 0xC000_0083, MsrSfmask = 0xC000_0084, MsrFsBase = 0xC000_0100, MsrGsBase = 0xC000_0101;
    private const uint MsrKernelGsBase = 0xC000_0102, MsrTscAux = 0xC000_0103;

    /// <summary>The _r slots of the FS and GS bases (Op.Seg).</summary>
    private const byte SegFsSlot = 16, SegGsSlot = 17;
    private const int SegEs = 0, SegCs = 1, SegSs = 2, SegDs = 3, SegFs = 4, SegGs = 5;

    // Descriptor attribute bits (bits 40-55 of a descriptor: type, S, DPL, P; AVL, L, D/B, G).
    private const int AttrS = 0x10, AttrP = 0x80, AttrL = 0x2000;
    private const ushort CodeAttr64 = 0xA09B, DataAttr = 0xC093;

    private ulong _cr0, _cr2, _cr3, _cr4, _cr8, _efer;
    private ulong _star, _lstar, _cstar, _sfmask, _kernelGsBase, _tscAux, _pat, _miscEnable;
    private ulong _sysenterCs, _sysenterEsp, _sysenterEip;
    private long _tscOffset;
    private readonly ulong[] _dr = new ulong[8];
    private int _cpl;
    private readonly ushort[] _sel = new ushort[6];
    private readonly ushort[] _attr = new ushort[6];
    private ulong _gdtBase, _idtBase, _ldtBase, _trBase;
    private ushort _gdtLimit, _idtLimit, _ldtLimit, _trLimit, _ldtSel, _trSel;
    private bool _idtLoaded;
    private VcpuExitReason _systemExit;

    /// <summary>Control registers as the guest last wrote them (CR0.ET reads as 1).</summary>
    public ulong Cr0 => _cr0;
    public ulong Cr2 => _cr2;
    public ulong Cr3 => _cr3;
    public ulong Cr4 => _cr4;
    /// <summary>CR8, the task-priority register's upper four bits (the local APIC's TPR mirrors it).</summary>
    public ulong Cr8 => _cr8;
    public ulong Efer => _efer;
    /// <summary>The current privilege level (CS's DPL).</summary>
    public int Cpl => _cpl;
    public ulong FsBase => _r[SegFsSlot];
    public ulong GsBase => _r[SegGsSlot];
    public ulong KernelGsBase => _kernelGsBase;
    /// <summary>IA32_TSC_AUX (what rdtscp returns in ECX).</summary>
    public ulong TscAux { get => _tscAux; set => _tscAux = value & 0xFFFF_FFFF; }
    /// <summary>IA32_APIC_BASE as the guest set it (reset: 0xFEE00000, enabled, bootstrap processor);
    /// the platform's local APIC reads it for its base address and enable bit.</summary>
    public ulong ApicBase { get; private set; }
    /// <summary>MSRs the platform implements (the local APIC's TSC deadline or x2APIC registers):
    /// asked for an MSR this file does not know before rdmsr/wrmsr raise #GP.</summary>
    public IMsrHandler? Msrs { get; set; }
    /// <summary>The platform has a local APIC (CPUID leaf 1 EDX.APIC says so only then).</summary>
    public bool HasLocalApic { get; set; }
    /// <summary>An IDT has been loaded (lidt): exceptions go through it instead of stopping the vCPU.</summary>
    public bool IdtLoaded => _idtLoaded;

    /// <summary>The selector of segment register <paramref name="sreg"/> (0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS).</summary>
    public ushort GetSelector(int sreg) => _sel[sreg];

    private void ResetSystemState()
    {
        _cr0 = Cr0Pe | Cr0Et | Cr0Ne;
        _cr4 = Cr4Pae;
        _efer = EferLme | EferLma;
        _pat = 0x0007_0406_0007_0406;
        _miscEnable = 1;
        ApicBase = 0xFEE0_0000 | 0x900;
        for (int i = 0; i < 6; i++) { _sel[i] = 0x10; _attr[i] = DataAttr; }
        _sel[SegCs] = 0x08;
        _attr[SegCs] = CodeAttr64;
        SetCpl(0);
    }

    /// <summary>The long-mode entry state of the flat boot protocol (what KvmVcpu sets): paging on
    /// with the page tables at <paramref name="cr3"/>, the GDT at <paramref name="gdtBase"/>,
    /// CS 0x08 and the data segments 0x10, ring 0, no IDT. The Linux boot protocol asks for other
    /// selectors (its CS 0x10 and data 0x18): a kernel's first iretq pops the SS it entered with.</summary>
    public void SetLongModeState(ulong cr3, ulong gdtBase, ushort gdtLimit, ushort codeSelector = 0x08, ushort dataSelector = 0x10)
    {
        for (int i = 0; i < 6; i++) { _sel[i] = dataSelector; _attr[i] = DataAttr; }
        _sel[SegCs] = codeSelector;
        _attr[SegCs] = CodeAttr64;
        _cr0 = Cr0Pe | Cr0Mp | Cr0Et | Cr0Ne | Cr0Wp | Cr0Pg;
        _cr3 = cr3;
        _cr4 = Cr4Pae | Cr4Osfxsr | Cr4Osxmmexcpt;
        _efer = EferLme | EferLma;
        _gdtBase = gdtBase;
        _gdtLimit = gdtLimit;
        FlushTlb(true);
    }

    private void SetCpl(int cpl)
    {
        _cpl = cpl;
        _tlb = cpl == 3 ? _tlbUser : _tlbSupervisor;
    }

    /// <summary>Ends the dispatch loop after this instruction so Run looks for an interrupt (rule 3).</summary>
    private void RequestBoundary()
    {
        if (Interrupts != null) _end = 0;
    }

    private long _end;

    private GuestFault PrivilegedInstruction(string name)
        => new(VcpuExitReason.Fault, _instrRip, $"#GP: {name} at CPL {_cpl} at 0x{_instrRip:x}", ExcGp, 0);

    private GuestFault Gp(uint code, string why) => new(VcpuExitReason.Fault, _instrRip, $"#GP: {why} at 0x{_instrRip:x}", ExcGp, code);
    private GuestFault Ud(string why) => new(VcpuExitReason.Fault, _instrRip, $"#UD: {why} at 0x{_instrRip:x}", ExcUd);

    private void RequireRing0(string name)
    {
        if (_cpl != 0) throw PrivilegedInstruction(name);
    }

    // ---- decode --------------------------------------------------------------------------

    private enum Sys : byte
    {
        MovToCr, MovFromCr, MovToDr, MovFromDr, Rdmsr, Wrmsr, Lgdt, Lidt, Sgdt, Sidt, Lldt, Ltr, Sldt, Str,
        MovToSreg, MovFromSreg, PopSreg, PushSreg, LoadFarPointer, JmpFar, CallFar, Retf, Iretq,
        IntN, Int3, Int1, Syscall, Sysretq, Swapgs, Invlpg, Clts, Wbinvd, Verr, Verw, Lar, Lsl,
    }

    /// <summary>System instructions become one op kind (K.System) with the operation in Sub.</summary>
    private static bool TryDecodeSystem(in Instruction ins, ref Op op)
    {
        Sys s;
        switch (ins.Code)
        {
            case Code.Mov_cr_r64:
                op.Reg = (byte)(ins.Op0Register - Register.CR0);
                if (!Gpr(ins.Op1Register, out op.Rm, out _)) return false;
                s = Sys.MovToCr;
                break;
            case Code.Mov_r64_cr:
                op.Rm = (byte)(ins.Op1Register - Register.CR0);
                if (!Gpr(ins.Op0Register, out op.Reg, out _)) return false;
                s = Sys.MovFromCr;
                break;
            case Code.Mov_dr_r64:
                op.Reg = (byte)(ins.Op0Register - Register.DR0);
                if (!Gpr(ins.Op1Register, out op.Rm, out _)) return false;
                s = Sys.MovToDr;
                break;
            case Code.Mov_r64_dr:
                op.Rm = (byte)(ins.Op1Register - Register.DR0);
                if (!Gpr(ins.Op0Register, out op.Reg, out _)) return false;
                s = Sys.MovFromDr;
                break;
            case Code.Rdmsr: s = Sys.Rdmsr; break;
            case Code.Wrmsr: s = Sys.Wrmsr; break;
            case Code.Lgdt_m1664: case Code.Lidt_m1664: case Code.Sgdt_m1664: case Code.Sidt_m1664:
                if (!Mem(in ins, ref op)) return false;
                s = ins.Code switch { Code.Lgdt_m1664 => Sys.Lgdt, Code.Lidt_m1664 => Sys.Lidt, Code.Sgdt_m1664 => Sys.Sgdt, _ => Sys.Sidt };
                break;
            case Code.Lldt_rm16: case Code.Lldt_r32m16: case Code.Lldt_r64m16:
            case Code.Ltr_rm16: case Code.Ltr_r32m16: case Code.Ltr_r64m16:
            case Code.Sldt_rm16: case Code.Sldt_r32m16: case Code.Sldt_r64m16:
            case Code.Str_rm16: case Code.Str_r32m16: case Code.Str_r64m16:
                if (!RmOperand(in ins, 0, ref op)) return false;
                s = ins.Code switch
                {
                    Code.Lldt_rm16 or Code.Lldt_r32m16 or Code.Lldt_r64m16 => Sys.Lldt,
                    Code.Ltr_rm16 or Code.Ltr_r32m16 or Code.Ltr_r64m16 => Sys.Ltr,
                    Code.Sldt_rm16 or Code.Sldt_r32m16 or Code.Sldt_r64m16 => Sys.Sldt, _ => Sys.Str,
                };
                break;
            case Code.Mov_Sreg_rm16: case Code.Mov_Sreg_r32m16: case Code.Mov_Sreg_r64m16:
                op.Reg = (byte)(ins.Op0Register - Register.ES);
                if (op.Reg == SegCs || !RmOperand(in ins, 1, ref op)) return false;
                s = Sys.MovToSreg;
                break;
            case Code.Mov_rm16_Sreg: case Code.Mov_r32m16_Sreg: case Code.Mov_r64m16_Sreg:
                op.Reg = (byte)(ins.Op1Register - Register.ES);
                if (!RmOperand(in ins, 0, ref op)) return false;
                s = Sys.MovFromSreg;
                break;
            case Code.Popq_FS: case Code.Popq_GS:
                op.Reg = (byte)(ins.Code == Code.Popq_FS ? SegFs : SegGs);
                s = Sys.PopSreg;
                break;
            case Code.Pushq_FS: case Code.Pushq_GS:
                op.Reg = (byte)(ins.Code == Code.Pushq_FS ? SegFs : SegGs);
                s = Sys.PushSreg;
                break;
            case Code.Lss_r64_m1664: case Code.Lfs_r64_m1664: case Code.Lgs_r64_m1664:
            case Code.Lss_r32_m1632: case Code.Lfs_r32_m1632: case Code.Lgs_r32_m1632:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || !Mem(in ins, ref op)) return false;
                op.Rm = (byte)(ins.Mnemonic == Mnemonic.Lss ? SegSs : ins.Mnemonic == Mnemonic.Lfs ? SegFs : SegGs);
                s = Sys.LoadFarPointer;
                break;
            case Code.Jmp_m1664: case Code.Jmp_m1632: case Code.Call_m1664: case Code.Call_m1632:
                if (!Mem(in ins, ref op)) return false;
                op.Size = (byte)(ins.Code is Code.Jmp_m1664 or Code.Call_m1664 ? 8 : 4);
                s = ins.Mnemonic == Mnemonic.Jmp ? Sys.JmpFar : Sys.CallFar;
                break;
            case Code.Retfq: case Code.Retfq_imm16: case Code.Retfd: case Code.Retfd_imm16:
                op.Size = (byte)(ins.Code is Code.Retfq or Code.Retfq_imm16 ? 8 : 4);
                op.Imm = ins.OpCount > 0 ? (long)ins.GetImmediate(0) : 0;
                s = Sys.Retf;
                break;
            case Code.Iretq: s = Sys.Iretq; break;
            case Code.Int_imm8: op.Imm = (long)ins.GetImmediate(0); s = Sys.IntN; break;
            case Code.Int3: s = Sys.Int3; break;
            case Code.Int1: s = Sys.Int1; break;
            case Code.Syscall: s = Sys.Syscall; break;
            case Code.Sysretq: s = Sys.Sysretq; break;
            case Code.Swapgs: s = Sys.Swapgs; break;
            case Code.Invlpg_m:
                if (!Mem(in ins, ref op)) return false;
                s = Sys.Invlpg;
                break;
            case Code.Clts: s = Sys.Clts; break;
            case Code.Verr_rm16: case Code.Verr_r32m16: case Code.Verr_r64m16:
            case Code.Verw_rm16: case Code.Verw_r32m16: case Code.Verw_r64m16:
                if (!RmOperand(in ins, 0, ref op)) return false;
                s = ins.Mnemonic == Mnemonic.Verr ? Sys.Verr : Sys.Verw;
                break;
            case Code.Lar_r16_rm16: case Code.Lar_r32_r32m16: case Code.Lar_r64_r64m16:
            case Code.Lsl_r16_rm16: case Code.Lsl_r32_r32m16: case Code.Lsl_r64_r64m16:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size)) return false;
                if (ins.Op1Kind == Iced.Intel.OpKind.Register) { if (!Gpr(ins.Op1Register, out op.Rm, out _)) return false; }
                else if (!Mem(in ins, ref op)) return false;
                s = ins.Mnemonic == Mnemonic.Lar ? Sys.Lar : Sys.Lsl;
                break;
            case Code.Wbinvd: case Code.Invd: s = Sys.Wbinvd; break;
            default: return false;
        }
        op.Sub = (byte)s;
        op.Kind = K.System;
        return true;
    }

    /// <summary>A 16-bit r/m operand of a selector instruction (register: Rm and Size; memory: Size 2).</summary>
    private static bool RmOperand(in Instruction ins, int i, ref Op op)
    {
        if (ins.GetOpKind(i) == Iced.Intel.OpKind.Register) return Gpr(ins.GetOpRegister(i), out op.Rm, out op.Size);
        op.Size = 2;
        return Mem(in ins, ref op);
    }

    // ---- execute -------------------------------------------------------------------------

    /// <summary>Runs one K.System op; returns the next rip. An exit (hlt-like) goes in _systemExit.</summary>
    private ulong ExecuteSystem(ref Op op, ulong rip, ulong next)
    {
        ulong* r = _r;
        switch ((Sys)op.Sub)
        {
            case Sys.MovToCr: RequireRing0("mov to cr"); WriteCr(op.Reg, r[op.Rm]); return next;
            case Sys.MovFromCr: RequireRing0("mov from cr"); r[op.Reg] = ReadCr(op.Rm); return next;
            case Sys.MovToDr:
                RequireRing0("mov to dr");
                if (op.Reg is 4 or 5 || op.Reg > 7) throw Ud($"mov to dr{op.Reg}");
                _dr[op.Reg] = r[op.Rm];
                return next;
            case Sys.MovFromDr:
                RequireRing0("mov from dr");
                if (op.Rm is 4 or 5 || op.Rm > 7) throw Ud($"mov from dr{op.Rm}");
                r[op.Reg] = op.Rm == 6 ? _dr[6] | 0xFFFF_0FF0 : op.Rm == 7 ? _dr[7] | 0x400 : _dr[op.Rm];
                return next;
            case Sys.Rdmsr:
            {
                RequireRing0("rdmsr");
                ulong v = ReadMsr((uint)r[1]);
                if (Probes.ExitRdmsr.Enabled) Probes.Fire(Probes.ExitRdmsr, (long)_instrRip, (uint)r[1], (long)v);
                r[0] = (uint)v;
                r[2] = v >> 32;
                return next;
            }
            case Sys.Wrmsr:
                RequireRing0("wrmsr");
                WriteMsr((uint)r[1], ((r[2] & 0xFFFF_FFFF) << 32) | (uint)r[0]);
                if (Probes.ExitWrmsr.Enabled) Probes.Fire(Probes.ExitWrmsr, (long)_instrRip, (uint)r[1], (long)(((r[2] & 0xFFFF_FFFF) << 32) | (uint)r[0]));
                return next;
            case Sys.Lgdt:
            case Sys.Lidt:
            {
                RequireRing0(op.Sub == (byte)Sys.Lgdt ? "lgdt" : "lidt");
                ulong ea = Ea(ref op);
                ushort limit = (ushort)Read(ea, 2);
                ulong b = Read(ea + 2, 8);
                if (op.Sub == (byte)Sys.Lgdt) { _gdtBase = b; _gdtLimit = limit; }
                else { _idtBase = b; _idtLimit = limit; _idtLoaded = true; }
                return next;
            }
            case Sys.Sgdt:
            case Sys.Sidt:
            {
                ulong ea = Ea(ref op);
                bool gdt = op.Sub == (byte)Sys.Sgdt;
                Write(ea, 2, gdt ? _gdtLimit : _idtLimit);
                Write(ea + 2, 8, gdt ? _gdtBase : _idtBase);
                return next;
            }
            case Sys.Lldt: RequireRing0("lldt"); LoadLdt((ushort)ReadSelectorOperand(ref op)); return next;
            case Sys.Ltr: RequireRing0("ltr"); LoadTr((ushort)ReadSelectorOperand(ref op)); return next;
            case Sys.Sldt: WriteSelectorOperand(ref op, _ldtSel); return next;
            case Sys.Str: WriteSelectorOperand(ref op, _trSel); return next;
            case Sys.MovToSreg:
                LoadDataSegment(op.Reg, (ushort)ReadSelectorOperand(ref op));
                if (op.Reg == SegSs) _interruptShadow = true;
                RequestBoundary();
                return next;
            case Sys.MovFromSreg: WriteSelectorOperand(ref op, _sel[op.Reg]); return next;
            case Sys.PushSreg: Push(_sel[op.Reg]); return next;
            case Sys.PopSreg:
            {
                ushort sel = (ushort)Read(r[4], 8);
                LoadDataSegment(op.Reg, sel);
                r[4] += 8;
                return next;
            }
            case Sys.LoadFarPointer:
            {
                ulong ea = Ea(ref op);
                ulong offset = Read(ea, op.Size);
                ushort sel = (ushort)Read(ea + op.Size, 2);
                LoadDataSegment(op.Rm, sel);
                SetReg(op.Reg, op.Size, offset);
                if (op.Rm == SegSs) _interruptShadow = true;
                return next;
            }
            case Sys.JmpFar:
            case Sys.CallFar:
            {
                ulong ea = Ea(ref op);
                ulong target = Read(ea, op.Size);
                ushort sel = (ushort)Read(ea + op.Size, 2);
                ushort oldCs = _sel[SegCs];
                ushort attr = CheckCodeSegment(sel, sameRing: true);
                if (op.Sub == (byte)Sys.CallFar)
                {
                    // Both pushes are checked before either is made.
                    ulong sp = r[4] - 2UL * op.Size;
                    Write(sp + op.Size, op.Size, oldCs);
                    Write(sp, op.Size, next);
                    r[4] = sp;
                }
                SetCs(sel, attr, _cpl);
                return target;
            }
            case Sys.Retf: return FarReturn(op.Size, (ulong)op.Imm);
            case Sys.Iretq: return Iretq();
            case Sys.IntN: throw SoftwareInterrupt((int)op.Imm, next, $"int 0x{op.Imm:x}");
            case Sys.Int3: throw SoftwareInterrupt(ExcBp, next, "int3");
            case Sys.Int1:
                throw new GuestFault(VcpuExitReason.Fault, rip, $"#DB: int1 at 0x{rip:x}", ExcDb) { TrapRip = next };
            case Sys.Syscall: return Syscall(next);
            case Sys.Sysretq: return Sysretq();
            case Sys.Swapgs:
            {
                RequireRing0("swapgs");
                (r[SegGsSlot], _kernelGsBase) = (_kernelGsBase, r[SegGsSlot]);
                return next;
            }
            case Sys.Invlpg: RequireRing0("invlpg"); FlushPage(Ea(ref op)); return next;
            case Sys.Clts: RequireRing0("clts"); _cr0 &= ~Cr0Ts; return next;
            case Sys.Verr:
            case Sys.Verw:
            {
                bool ok = TryVisibleDescriptor((ushort)ReadSelectorOperand(ref op), out ulong desc, systemTypes: 0);
                ushort attr = AttrOf(desc);
                bool code = (attr & 8) != 0;
                ok &= op.Sub == (byte)Sys.Verr ? !code || (attr & 2) != 0 : !code && (attr & 2) != 0;
                SetFlagBits(ZF, ok ? ZF : 0);
                return next;
            }
            case Sys.Lar:
            case Sys.Lsl:
            {
                bool lar = op.Sub == (byte)Sys.Lar;
                // System descriptors lar may report: LDT, available and busy TSS, call gate; lsl: not the gate.
                int types = (1 << 2) | (1 << 9) | (1 << 11) | (lar ? 1 << 12 : 0);
                bool ok = TryVisibleDescriptor((ushort)ReadSelectorOperand(ref op), out ulong desc, types);
                if (ok) SetReg(op.Reg, op.Size, lar ? (desc >> 32) & 0x00F0_FF00 : DescriptorLimit(desc));
                SetFlagBits(ZF, ok ? ZF : 0);
                return next;
            }
            default: RequireRing0("wbinvd"); return next;
        }
    }

    private ulong ReadSelectorOperand(ref Op op) => op.IsMem ? Read(Ea(ref op), 2) : GetReg(op.Rm, 2);

    /// <summary>sldt/str/mov from sreg: a register destination gets the selector zero-extended to
    /// its size; memory gets 16 bits.</summary>
    private void WriteSelectorOperand(ref Op op, ushort sel)
    {
        if (op.IsMem) Write(Ea(ref op), 2, sel);
        else SetReg(op.Rm, op.Size, sel);
    }

    private GuestFault SoftwareInterrupt(int vector, ulong next, string name)
    {
        string message = vector == ExcBp ? "#BP: int3" : $"{name} at 0x{_instrRip:x}";
        return new GuestFault(VcpuExitReason.Fault, _instrRip, message, vector) { TrapRip = next, Software = true };
    }

    // ---- control registers ---------------------------------------------------------------

    private ulong ReadCr(int n) => n switch
    {
        0 => _cr0,
        2 => _cr2,
        3 => _cr3,
        4 => _cr4,
        8 => _cr8,
        _ => throw Ud($"mov from cr{n}"),
    };

    private void WriteCr(int n, ulong v)
    {
        switch (n)
        {
            case 0:
            {
                if ((v >> 32) != 0) throw Gp(0, "reserved bit in CR0");
                v |= Cr0Et;
                if ((v & Cr0Pg) != 0 && (v & Cr0Pe) == 0) throw Gp(0, "CR0.PG without CR0.PE");
                if ((v & Cr0Nw) != 0 && (v & Cr0Cd) == 0) throw Gp(0, "CR0.NW without CR0.CD");
                bool pagingOn = (v & Cr0Pg) != 0, wasOn = (_cr0 & Cr0Pg) != 0;
                ulong efer = _efer;
                if (pagingOn && !wasOn && (_efer & EferLme) != 0)
                {
                    if ((_cr4 & Cr4Pae) == 0) throw Gp(0, "long mode without CR4.PAE");
                    efer |= EferLma;
                }
                if (!pagingOn && wasOn && (_attr[SegCs] & AttrL) != 0) throw Gp(0, "paging turned off in 64-bit mode");
                if (pagingOn && (efer & EferLma) == 0)
                    throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, "paging without long mode (32-bit paging) is not implemented");
                bool flush = ((_cr0 ^ v) & (Cr0Pg | Cr0Wp | Cr0Pe)) != 0;
                _cr0 = v;
                _efer = efer;
                if (flush) FlushTlb(true);
                break;
            }
            case 2: _cr2 = v; break;
            case 3:
                if ((v >> 52) != 0) throw Gp(0, "reserved bit in CR3");
                _cr3 = v;
                FlushTlb(false);
                break;
            case 4:
            {
                if ((v & ~Cr4Allowed) != 0) throw Gp(0, $"unsupported CR4 bits 0x{v & ~Cr4Allowed:x}");
                if ((v & Cr4Pae) == 0 && (_efer & EferLma) != 0) throw Gp(0, "CR4.PAE cleared in long mode");
                bool flush = ((_cr4 ^ v) & (Cr4Pge | Cr4Pae | Cr4Pse)) != 0;
                _cr4 = v;
                if (flush) FlushTlb(true);
                break;
            }
            case 8:
                if ((v & ~0xFUL) != 0) throw Gp(0, "reserved bit in CR8");
                _cr8 = v;
                RequestBoundary();
                break;
            default: throw Ud($"mov to cr{n}");
        }
    }

    // ---- MSRs (rule 2) -------------------------------------------------------------------

    private ulong ReadMsr(uint msr) => msr switch
    {
        MsrTsc => (ulong)(TscBase + (_retired - TscRetiredBase) + _tscOffset),
        MsrApicBase => ApicBase,
        MsrSysenterCs => _sysenterCs,
        MsrSysenterEsp => _sysenterEsp,
        MsrSysenterEip => _sysenterEip,
        MsrMiscEnable => _miscEnable,
        MsrPat => _pat,
        MsrEfer => _efer,
        MsrStar => _star,
        MsrLstar => _lstar,
        MsrCstar => _cstar,
        MsrSfmask => _sfmask,
        MsrFsBase => _r[SegFsSlot],
        MsrGsBase => _r[SegGsSlot],
        MsrKernelGsBase => _kernelGsBase,
        MsrTscAux => _tscAux,
        _ => Msrs != null && Msrs.TryReadMsr(msr, out ulong v) ? v : throw Gp(0, $"rdmsr of unknown MSR 0x{msr:x}"),
    };

    private void WriteMsr(uint msr, ulong v)
    {
        switch (msr)
        {
            case MsrTsc: _tscOffset = (long)v - (TscBase + (_retired - TscRetiredBase)); break;
            case MsrApicBase:
                // Bits 0-7 and 9 are reserved, and the base must fit in 36 physical address bits.
                if ((v & 0x2FF) != 0 || (v >> 36) != 0) throw Gp(0, $"reserved bits in IA32_APIC_BASE 0x{v:x}");
                ApicBase = (v & ~0x100UL) | (ApicBase & 0x100);
                Msrs?.TryWriteMsr(msr, ApicBase);   // the platform's local APIC follows its base and enable bit
                RequestBoundary();
                break;
            case MsrSysenterCs: _sysenterCs = v & 0xFFFF_FFFF; break;
            case MsrSysenterEsp: _sysenterEsp = CanonicalMsr(v); break;
            case MsrSysenterEip: _sysenterEip = CanonicalMsr(v); break;
            case MsrMiscEnable: _miscEnable = v; break;
            case MsrPat:
                for (int i = 0; i < 8; i++)
                {
                    ulong t = (v >> (8 * i)) & 0xFF;
                    if (t is 2 or 3 or > 7) throw Gp(0, $"invalid memory type in IA32_PAT 0x{v:x}");
                }
                _pat = v;
                break;
            case MsrEfer: WriteEfer(v); break;
            case MsrStar: _star = v; break;
            case MsrLstar: _lstar = CanonicalMsr(v); break;
            case MsrCstar: _cstar = CanonicalMsr(v); break;
            case MsrSfmask: _sfmask = v & 0xFFFF_FFFF; break;
            case MsrFsBase: _r[SegFsSlot] = CanonicalMsr(v); break;
            case MsrGsBase: _r[SegGsSlot] = CanonicalMsr(v); break;
            case MsrKernelGsBase: _kernelGsBase = CanonicalMsr(v); break;
            case MsrTscAux: _tscAux = v & 0xFFFF_FFFF; break;
            default:
                if (Msrs == null || !Msrs.TryWriteMsr(msr, v)) throw Gp(0, $"wrmsr of unknown MSR 0x{msr:x}");
                RequestBoundary();
                break;
        }
    }

    private ulong CanonicalMsr(ulong v) => IsCanonical(v) ? v : throw Gp(0, $"non-canonical MSR value 0x{v:x}");

    private void WriteEfer(ulong v)
    {
        const ulong writable = EferSce | EferLme | EferNxe;
        if ((v & ~(writable | EferLma)) != 0) throw Gp(0, $"reserved bits in EFER 0x{v:x}");
        if (((v ^ _efer) & EferLme) != 0 && (_cr0 & Cr0Pg) != 0) throw Gp(0, "EFER.LME changed with paging on");
        bool flush = ((v ^ _efer) & EferNxe) != 0;
        _efer = (v & writable) | (_efer & EferLma);
        if (flush) FlushTlb(true);
    }

    // ---- descriptors and segments --------------------------------------------------------

    /// <summary>Reads the 8-byte descriptor of <paramref name="sel"/> from the GDT or LDT (an
    /// implicit supervisor access); #GP(selector) when it lies beyond the table's limit.</summary>
    private ulong ReadDescriptor(ushort sel, out ulong address)
    {
        bool ldt = (sel & 4) != 0;
        ulong tableBase = ldt ? _ldtBase : _gdtBase;
        uint limit = ldt ? _ldtLimit : _gdtLimit;
        if ((ldt && _ldtSel == 0) || (uint)(sel | 7) > limit) throw Gp((uint)(sel & ~3), $"selector 0x{sel:x} beyond the descriptor table");
        address = tableBase + (ulong)(sel & ~7);
        return ReadSystem(address, 8);
    }

    /// <summary>verr/verw/lar/lsl: the descriptor of <paramref name="sel"/> when it is in its table,
    /// of an allowed type (code, data, or a system type whose bit is in <paramref name="systemTypes"/>)
    /// and visible at CPL and RPL (conforming code always is); else false with desc 0. Never faults
    /// for the selector.</summary>
    private bool TryVisibleDescriptor(ushort sel, out ulong desc, int systemTypes)
    {
        desc = 0;
        bool ldt = (sel & 4) != 0;
        if ((sel & ~3) == 0 || (ldt && _ldtSel == 0) || (uint)(sel | 7) > (ldt ? _ldtLimit : _gdtLimit)) return false;
        ulong d = ReadDescriptor(sel, out _);
        ushort attr = AttrOf(d);
        int type = attr & 0xF;
        bool conformingCode = (attr & AttrS) != 0 && (type & 0xC) == 0xC;
        if ((attr & AttrS) == 0 && (systemTypes & (1 << type)) == 0) return false;
        if (!conformingCode && Dpl(attr) < Math.Max(_cpl, sel & 3)) return false;
        desc = d;
        return true;
    }

    private static ushort AttrOf(ulong desc) => (ushort)((desc >> 40) & 0xF0FF);
    private static int Dpl(ushort attr) => (attr >> 5) & 3;

    private void SetAccessed(ulong address, ulong desc)
    {
        if ((desc & (1UL << 40)) == 0) WriteSystem(address + 5, 1, ((desc >> 40) & 0xFF) | 1);
    }

    /// <summary>mov/pop/lds-family loads of DS, ES, SS, FS, GS with 64-bit mode's checks.</summary>
    private void LoadDataSegment(int sreg, ushort sel)
    {
        int rpl = sel & 3;
        if ((sel & ~3) == 0)
        {
            // A null selector: allowed for SS only below ring 3 with RPL = CPL (64-bit mode).
            if (sreg == SegSs && (_cpl == 3 || rpl != _cpl)) throw Gp(0, "null SS selector");
            _sel[sreg] = sel;
            _attr[sreg] = 0;
            return;
        }
        ulong desc = ReadDescriptor(sel, out ulong address);
        ushort attr = AttrOf(desc);
        int type = attr & 0xF, dpl = Dpl(attr);
        bool code = (type & 8) != 0;
        if (sreg == SegSs)
        {
            if (rpl != _cpl || dpl != _cpl || code || (type & 2) == 0 || (attr & AttrS) == 0) throw Gp((uint)(sel & ~3), $"bad SS selector 0x{sel:x}");
            if ((attr & AttrP) == 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#SS: segment 0x{sel:x} not present", ExcSs, (uint)(sel & ~3));
        }
        else
        {
            bool readable = (attr & AttrS) != 0 && (!code || (type & 2) != 0);
            bool conforming = code && (type & 4) != 0;
            if (!readable || (!conforming && dpl < Math.Max(_cpl, rpl))) throw Gp((uint)(sel & ~3), $"bad data segment selector 0x{sel:x}");
            if ((attr & AttrP) == 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#NP: segment 0x{sel:x} not present", ExcNp, (uint)(sel & ~3));
        }
        SetAccessed(address, desc);
        _sel[sreg] = sel;
        _attr[sreg] = attr;
        // In 64-bit mode only FS and GS keep a base from the descriptor (its low 32 bits).
        if (sreg == SegFs) _r[SegFsSlot] = DescriptorBase(desc);
        else if (sreg == SegGs) _r[SegGsSlot] = DescriptorBase(desc);
    }

    private static ulong DescriptorBase(ulong desc) => ((desc >> 16) & 0xFF_FFFF) | ((desc >> 32) & 0xFF00_0000);

    /// <summary>Checks a code segment for a far jmp/call (sameRing) or a return/interrupt
    /// (sameRing false: the caller checks the ring) and returns its attributes.</summary>
    private ushort CheckCodeSegment(ushort sel, bool sameRing)
    {
        if ((sel & ~3) == 0) throw Gp(0, "null code segment selector");
        ulong desc = ReadDescriptor(sel, out ulong address);
        ushort attr = AttrOf(desc);
        int type = attr & 0xF;
        if ((attr & AttrS) == 0)
            throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"far transfer through a system descriptor (call gate or TSS) 0x{sel:x} is not implemented");
        if ((type & 8) == 0) throw Gp((uint)(sel & ~3), $"selector 0x{sel:x} is not a code segment");
        if (sameRing)
        {
            bool conforming = (type & 4) != 0;
            int dpl = Dpl(attr), rpl = sel & 3;
            if (conforming ? dpl > _cpl : (dpl != _cpl || rpl > _cpl)) throw Gp((uint)(sel & ~3), $"code segment 0x{sel:x} of another ring");
        }
        if ((attr & AttrP) == 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#NP: segment 0x{sel:x} not present", ExcNp, (uint)(sel & ~3));
        if ((attr & AttrL) == 0)
            throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"32-bit code segment 0x{sel:x} (compatibility mode) is not implemented");
        SetAccessed(address, desc);
        return attr;
    }

    private void SetCs(ushort sel, ushort attr, int cpl)
    {
        _sel[SegCs] = (ushort)((sel & ~3) | cpl);
        _attr[SegCs] = attr;
        SetCpl(cpl);
    }

    private void LoadLdt(ushort sel)
    {
        if ((sel & ~3) == 0) { _ldtSel = 0; _ldtBase = 0; _ldtLimit = 0; return; }
        if ((sel & 4) != 0) throw Gp((uint)(sel & ~3), "LDT selector in the LDT");
        ulong lo = ReadDescriptor(sel, out ulong address), hi = ReadSystem(address + 8, 8);
        ushort attr = AttrOf(lo);
        if ((attr & AttrS) != 0 || (attr & 0xF) != 2) throw Gp((uint)(sel & ~3), $"selector 0x{sel:x} is not an LDT");
        if ((attr & AttrP) == 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#NP: LDT 0x{sel:x} not present", ExcNp, (uint)(sel & ~3));
        _ldtSel = sel;
        _ldtBase = DescriptorBase(lo) | (hi << 32);
        _ldtLimit = (ushort)Math.Min(0xFFFF, DescriptorLimit(lo));
    }

    private void LoadTr(ushort sel)
    {
        if ((sel & ~3) == 0 || (sel & 4) != 0) throw Gp((uint)(sel & ~3), $"bad TSS selector 0x{sel:x}");
        ulong lo = ReadDescriptor(sel, out ulong address), hi = ReadSystem(address + 8, 8);
        ushort attr = AttrOf(lo);
        if ((attr & AttrS) != 0 || (attr & 0xF) != 9) throw Gp((uint)(sel & ~3), $"selector 0x{sel:x} is not an available 64-bit TSS");
        if ((attr & AttrP) == 0) throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#NP: TSS 0x{sel:x} not present", ExcNp, (uint)(sel & ~3));
        // The descriptor becomes busy (type 11), as ltr marks it.
        WriteSystem(address + 5, 1, ((lo >> 40) & 0xFF) | 2);
        _trSel = sel;
        _trBase = DescriptorBase(lo) | (hi << 32);
        _trLimit = (ushort)Math.Min(0xFFFF, DescriptorLimit(lo));
    }

    private static uint DescriptorLimit(ulong desc)
    {
        uint limit = (uint)(desc & 0xFFFF) | (uint)((desc >> 32) & 0xF_0000);
        return (desc & (1UL << 55)) != 0 ? (limit << 12) | 0xFFF : limit;
    }

    // ---- far returns, iretq, syscall, sysret ---------------------------------------------

    private ulong FarReturn(int size, ulong release)
    {
        ulong sp = _r[4];
        ulong rip = Read(sp, size);
        ushort sel = (ushort)Read(sp + (ulong)size, size);
        int rpl = sel & 3;
        if (rpl < _cpl) throw Gp((uint)(sel & ~3), $"far return to inner ring {rpl}");
        if (rpl == _cpl)
        {
            ushort attr = CheckCodeSegment(sel, sameRing: true);
            SetCs(sel, attr, _cpl);
            _r[4] = sp + 2 * (ulong)size + release;
            return rip;
        }
        // To an outer ring: the stack pointer and SS follow on the stack.
        ulong newSp = Read(sp + 2 * (ulong)size + release, size);
        ushort ss = (ushort)Read(sp + 3 * (ulong)size + release, size);
        ReturnToOuterRing(sel, ss, rpl);
        _r[4] = newSp;
        return rip;
    }

    private ulong Iretq()
    {
        ulong sp = _r[4];
        ulong rip = Read(sp, 8);
        ushort cs = (ushort)Read(sp + 8, 8);
        ulong flags = Read(sp + 16, 8);
        ulong rsp = Read(sp + 24, 8);
        ushort ss = (ushort)Read(sp + 32, 8);
        int rpl = cs & 3;
        if (rpl < _cpl) throw Gp((uint)(cs & ~3), $"iretq to inner ring {rpl}");
        ulong keep = _cpl == 0 ? 0 : IF;
        if (rpl == _cpl)
        {
            ushort attr = CheckCodeSegment(cs, sameRing: false);
            if (Dpl(attr) != rpl && (attr & 4) == 0) throw Gp((uint)(cs & ~3), $"iretq code segment 0x{cs:x} of another ring");
            if ((ss & ~3) != 0 || _cpl == 3) LoadDataSegment(SegSs, ss);
            else { _sel[SegSs] = ss; _attr[SegSs] = 0; }
            SetCs(cs, attr, rpl);
        }
        else ReturnToOuterRing(cs, ss, rpl);
        _fop = FlagKind.None;
        _rflags = (flags & (ArithFlags | DF | IF) & ~keep) | (_rflags & keep) | 2;
        _r[4] = rsp;
        RequestBoundary();
        return rip;
    }

    /// <summary>Loads CS and SS for a return to ring <paramref name="rpl"/> &gt; CPL; data segments
    /// the outer ring may not use become null, as the processor does.</summary>
    private void ReturnToOuterRing(ushort cs, ushort ss, int rpl)
    {
        ushort attr = CheckCodeSegment(cs, sameRing: false);
        bool conforming = (attr & 4) != 0;
        if (conforming ? Dpl(attr) > rpl : Dpl(attr) != rpl) throw Gp((uint)(cs & ~3), $"return code segment 0x{cs:x} of another ring");
        int saved = _cpl;
        _cpl = rpl;
        try { LoadDataSegment(SegSs, ss); }
        finally { _cpl = saved; }
        SetCs(cs, attr, rpl);
        foreach (int s in stackalloc int[] { SegEs, SegDs, SegFs, SegGs })
        {
            bool conformingCode = (_attr[s] & 0xC) == 0xC;
            if ((_sel[s] & ~3) != 0 && !conformingCode && Dpl(_attr[s]) < rpl) { _sel[s] = 0; _attr[s] = 0; }
        }
    }

    private ulong Syscall(ulong next)
    {
        if ((_efer & EferSce) == 0) throw Ud("syscall with EFER.SCE clear");
        ulong flags = GetFlags();
        _r[1] = next;
        _r[11] = flags;
        _fop = FlagKind.None;
        _rflags = (flags & ~_sfmask & (ArithFlags | DF | IF)) | 2;
        ushort sel = (ushort)((_star >> 32) & 0xFFFC);
        SetCs(sel, CodeAttr64, 0);
        _sel[SegSs] = (ushort)(sel + 8);
        _attr[SegSs] = DataAttr;
        return _lstar;
    }

    private ulong Sysretq()
    {
        if ((_efer & EferSce) == 0) throw Ud("sysret with EFER.SCE clear");
        RequireRing0("sysret");
        ulong rip = _r[1];
        if (!IsCanonical(rip)) throw Gp(0, $"sysret to non-canonical 0x{rip:x}");
        ushort sel = (ushort)(_star >> 48);
        SetCs((ushort)(sel + 16), CodeAttr64 | (3 << 5), 3);
        _sel[SegSs] = (ushort)((sel + 8) | 3);
        _attr[SegSs] = DataAttr | (3 << 5);
        _fop = FlagKind.None;
        _rflags = (_r[11] & (ArithFlags | DF | IF)) | 2;
        RequestBoundary();
        return rip;
    }

    // ---- implicit supervisor accesses (descriptor tables, TSS, interrupt frames) ---------

    private ulong ReadSystem(ulong a, int size)
    {
        ulong v = 0;
        for (int done = 0; done < size;)
        {
            int n = (int)Math.Min((ulong)(size - done), 0x1000 - ((a + (ulong)done) & 0xFFF));
            TlbEntry* e = Translate(a + (ulong)done, false, false, false);
            for (int i = 0; i < n; i++, done++)
            {
                ulong la = a + (ulong)done;
                ulong b = (e->Perm & PermRam) != 0 ? *(byte*)(e->Addend + la) : ReadDevice(e->Phys + (la & 0xFFF), 1);
                v |= b << (8 * done);
            }
        }
        return v;
    }

    private void WriteSystem(ulong a, int size, ulong v)
    {
        // Both ends are translated before any byte is written.
        Translate(a, true, false, false);
        Translate(a + (ulong)size - 1, true, false, false);
        for (int i = 0; i < size; i++)
        {
            ulong la = a + (ulong)i;
            TlbEntry* e = Translate(la, true, false, false);
            ulong phys = e->Phys + (la & 0xFFF);
            if ((e->Perm & PermRam) == 0) { WriteDevice(phys, 1, v >> (8 * i)); continue; }
            *(byte*)(e->Addend + la) = (byte)(v >> (8 * i));
            if (_codePage[phys >> 12] != 0) InvalidateCode(phys, 1);
        }
    }

    // ---- CPUID (Interpreter.CpuidHook.cs) ------------------------------------------------

    /// <summary>The CPUID bits this part of the interpreter backs: MSR, PAE, PGE, PSE, PAT, APIC
    /// (only with a local APIC), OSXSAVE (as CR4 has it), SYSCALL, NX, 1 GiB pages and long mode.</summary>
    partial void AddSystemCpuid(uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx)
    {
        if (leaf == 1)
        {
            // PSE (3), MSR (5), PAE (6), PGE (13), PAT (16); APIC (9).
            edx |= (1u << 3) | (1u << 5) | (1u << 6) | (1u << 13) | (1u << 16);
            if (HasLocalApic) edx |= 1u << 9;
            // TSC-deadline timer (ECX 24): the platform's local APIC implements MSR 0x6E0.
            if (HasLocalApic && Msrs != null) ecx |= 1u << 24;
            // OSXSAVE (ECX 27) mirrors CR4.OSXSAVE.
            if ((_cr4 & Cr4Osxsave) != 0) ecx |= 1u << 27;
        }
        else if (leaf == 0x8000_0001)
        {
            // SYSCALL/SYSRET (11), NX (20), 1 GiB pages (26), long mode (29).
            edx |= (1u << 11) | (1u << 20) | (1u << 26) | (1u << 29);
        }
    }
}

/// <summary>MSRs outside the CPU core that a device implements (Interpreter.Msrs). Called on the
/// vCPU's thread; false: not this device's MSR, or a value it refuses (the guest gets #GP).</summary>
public interface IMsrHandler
{
    bool TryReadMsr(uint msr, out ulong value);
    bool TryWriteMsr(uint msr, ulong value);
}
