namespace SmartOS.Virt;

/*
 * Exceptions and interrupts (Interpreter.System.cs).
 *
 * Run drives the dispatch loop (Interpreter.Execute.cs) and does, between instructions, what the
 * processor does at an instruction boundary:
 *   - an exception raised by an instruction (a GuestFault with a vector) is delivered through the
 *     IDT with the 64-bit frame (SS, RSP, RFLAGS, CS, RIP and the error code where the vector has
 *     one), on the IST stack the gate names or, on a change to an inner ring, on the TSS's RSPn;
 *     an interrupt gate clears IF, a trap gate does not;
 *   - a maskable interrupt, when RFLAGS.IF is set and no interrupt shadow (the instruction after
 *     sti, mov ss, pop ss) is in effect, is acknowledged from Vcpu.Interrupts and delivered the
 *     same way.
 *
 * Rules
 *   1. A guest that has not loaded an IDT (the flat boot protocol's guests) does not take
 *      exceptions: the fault stops the vCPU with the Fault exit and its text, as before.
 *   2. A fault while delivering an exception follows the processor's table: contributory
 *      (#DE, #TS, #NP, #SS, #GP) after contributory, or #PF/contributory after #PF, becomes #DF;
 *      any fault while delivering #DF is a triple fault, which ends Run with a Shutdown exit (the
 *      VMM stops the VM with VmStopReason.TripleFault). Otherwise the second is delivered instead.
 *   3. Each delivery counts as one retired instruction, so a guest that does nothing but take
 *      interrupts or faults (an interrupt storm, a handler that faults on its first fetch) still
 *      spends its budget and is stopped by the VMM's limits.
 *   4. The interrupt check is a field read per Run iteration, not per instruction: the loop runs
 *      to the budget unless something that can unmask or raise an interrupt (rule 3 of
 *      Interpreter.System.cs) ends it early.
 *   5. hlt with IF set and an interrupt already pending does not leave Run: the interrupt is taken
 *      and the guest continues after the hlt, as a halted processor wakes.
 */
public sealed unsafe partial class Interpreter
{
    private const int ExcDe = 0, ExcDb = 1, ExcBp = 3, ExcUd = 6, ExcDf = 8, ExcTs = 10, ExcNp = 11, ExcSs = 12, ExcGp = 13, ExcPf = 14;
    private const ulong TF = 0x100, NT = 0x4000, RF = 0x1_0000;

    private GuestFault? _fault;
    private bool _interruptShadow;

    /// <summary>Exceptions delivered through the IDT so far.</summary>
    public long ExceptionsDelivered { get; private set; }

    /// <summary>Maskable interrupts taken from <see cref="Vcpu.Interrupts"/> so far.</summary>
    public long InterruptsDelivered { get; private set; }

    public override VcpuExit Run(long budget)
    {
        long end = _retired + Math.Max(1, budget);
        while (true)
        {
            if (_interruptShadow)
            {
                // One more instruction before interrupts are looked at.
                _interruptShadow = false;
                _end = Math.Min(end, _retired + 1);
            }
            else
            {
                if (InterruptReady && !TakeInterrupt(out var stop)) return stop;
                _end = end;
            }
            var exit = Loop();
            switch (exit.Reason)
            {
                case VcpuExitReason.Budget:
                    // A device access that ended the loop early may have asked for the slice to end
                    // (a timer deadline armed by an MMIO write, a power-off).
                    if (_handler.StopRequested) return new VcpuExit { Reason = VcpuExitReason.Stop, Rip = _rip };
                    if (_retired < end) continue;
                    return exit;
                case VcpuExitReason.Hlt:
                    if (InterruptReady && _retired < end) continue;
                    return exit;
                default:
                {
                    var f = _fault;
                    _fault = null;
                    if (f == null || f.Vector < 0 || !_idtLoaded) return exit;
                    if (!RaiseException(f, out var stop)) return stop;
                    continue;
                }
            }
        }
    }

    private bool InterruptReady => (_rflags & IF) != 0 && Interrupts is { HasPendingInterrupt: true };

    /// <summary>Acknowledges and delivers the pending interrupt; false with the exit when that ended in a stop.</summary>
    private bool TakeInterrupt(out VcpuExit stop)
    {
        int vector = Interrupts!.AcknowledgeInterrupt();
        InterruptsDelivered++;
        if (Probes.Interrupt.Enabled) Probes.Fire(Probes.Interrupt, vector);
        _instrRip = _rip;
        try
        {
            Deliver(vector, null, _rip, software: false, external: true);
            stop = default;
            return true;
        }
        catch (GuestFault g)
        {
            if (g.Vector < 0) { stop = new VcpuExit { Reason = g.Reason, Rip = _rip, Detail = g.Message }; return false; }
            return RaiseException(g, out stop);
        }
    }

    /// <summary>Delivers exception <paramref name="f"/> (rule 2 for faults on the way); false with
    /// the exit when it ended in a triple fault or a stop.</summary>
    private bool RaiseException(GuestFault f, out VcpuExit stop)
    {
        var current = f;
        for (int attempt = 0; ; attempt++)
        {
            if (current.Vector == ExcPf) _cr2 = current.Cr2;
            ulong returnRip = current.TrapRip != 0 ? current.TrapRip : current.Rip;
            try
            {
                _instrRip = current.Rip;
                uint? code = HasErrorCode(current.Vector) ? current.ErrorCode ?? 0 : null;
                Deliver(current.Vector, code, returnRip, current.Software, external: false);
                ExceptionsDelivered++;
                if (Probes.Exception.Enabled) Probes.Fire(Probes.Exception, (long)returnRip, current.Vector, code.HasValue ? code.Value : -1);
                stop = default;
                return true;
            }
            catch (GuestFault g)
            {
                if (g.Vector < 0) { stop = new VcpuExit { Reason = g.Reason, Rip = g.Rip, Detail = g.Message }; return false; }
                if (current.Vector == ExcDf || attempt >= 3)
                {
                    stop = new VcpuExit
                    {
                        Reason = VcpuExitReason.Shutdown,
                        Rip = current.Rip,
                        Detail = $"triple fault at 0x{current.Rip:x}: {g.Message} while delivering {Name(current.Vector)} ({f.Message})",
                    };
                    return false;
                }
                // A software interrupt (int n, int3) is benign whatever its number.
                current = IsDoubleFault(current.Software ? -1 : current.Vector, g.Vector)
                    ? new GuestFault(VcpuExitReason.Fault, current.Rip, $"#DF: {g.Message} while delivering {Name(current.Vector)}", ExcDf, 0)
                    : g;
            }
        }
    }

    private static bool Contributory(int v) => v is ExcDe or ExcTs or ExcNp or ExcSs or ExcGp;

    private static bool IsDoubleFault(int first, int second)
        => (Contributory(first) && Contributory(second)) || (first == ExcPf && (second == ExcPf || Contributory(second)));

    private static bool HasErrorCode(int v) => v is ExcDf or ExcTs or ExcNp or ExcSs or ExcGp or ExcPf or 17 or 21;

    private static string Name(int v) => v switch
    {
        ExcDe => "#DE", ExcDb => "#DB", ExcBp => "#BP", ExcUd => "#UD", ExcDf => "#DF", ExcTs => "#TS",
        ExcNp => "#NP", ExcSs => "#SS", ExcGp => "#GP", ExcPf => "#PF", _ => $"vector {v}",
    };

    /// <summary>Delivers <paramref name="vector"/> through the 64-bit IDT. Nothing is committed until
    /// the gate, the code segment, the stack and all pushes have succeeded, so a fault on the way
    /// leaves the state of the interrupted instruction for rule 2.</summary>
    private void Deliver(int vector, uint? errorCode, ulong returnRip, bool software, bool external)
    {
        uint ext = external ? 1u : 0;
        uint idtCode = (uint)vector * 8 + 2 + ext;
        if ((ulong)vector * 16 + 15 > _idtLimit) throw Gp(idtCode, $"vector {vector} beyond the IDT limit");
        ulong lo = ReadSystem(_idtBase + (ulong)vector * 16, 8);
        ulong hi = ReadSystem(_idtBase + (ulong)vector * 16 + 8, 8);
        int type = (int)((lo >> 40) & 0xF), gateDpl = (int)((lo >> 45) & 3);
        if (type != 0xE && type != 0xF) throw Gp(idtCode, $"IDT entry {vector} is not a 64-bit interrupt or trap gate");
        if (software && gateDpl < _cpl) throw Gp(idtCode, $"int {vector} through a gate of DPL {gateDpl} at CPL {_cpl}");
        if ((lo & (1UL << 47)) == 0)
            throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#NP: IDT entry {vector} not present", ExcNp, idtCode);
        ushort sel = (ushort)(lo >> 16);
        ulong target = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF_0000) | (hi << 32);
        int ist = (int)((lo >> 32) & 7);
        if ((sel & ~3) == 0) throw Gp(ext, $"IDT entry {vector} has a null code selector");
        ushort attr = CheckCodeSegment(sel, sameRing: false);
        int newCpl = (attr & 4) != 0 ? _cpl : Dpl(attr);
        if (newCpl > _cpl) throw Gp((uint)(sel & ~3) + ext, $"IDT entry {vector} leads to outer ring {newCpl}");

        ulong oldRsp = _r[4];
        ushort oldSs = _sel[SegSs];
        ulong rsp = oldRsp;
        if (ist != 0) rsp = ReadTss(0x24 + 8 * (ist - 1), ext);
        else if (newCpl < _cpl) rsp = ReadTss(4 + 8 * newCpl, ext);
        rsp &= ~0xFUL;
        ulong flags = GetFlags();
        int frame = errorCode.HasValue ? 6 : 5;
        rsp -= 8UL * (ulong)frame;
        ulong[] values = _frame;
        values[0] = returnRip;
        values[1] = _sel[SegCs];
        values[2] = flags;
        values[3] = oldRsp;
        values[4] = oldSs;
        int first = 0;
        if (errorCode.HasValue)
        {
            WriteSystem(rsp, 8, errorCode.Value);
            first = 1;
        }
        for (int i = 0; i < 5; i++) WriteSystem(rsp + 8UL * (ulong)(first + i), 8, values[i]);

        // Committed from here on.
        if (newCpl < _cpl)
        {
            _sel[SegSs] = (ushort)newCpl;
            _attr[SegSs] = 0;
        }
        SetCs(sel, attr, newCpl);
        _r[4] = rsp;
        _fop = FlagKind.None;
        _rflags = flags & ~(TF | NT | RF) & (type == 0xE ? ~IF : ulong.MaxValue) & (ArithFlags | DF | IF) | 2;
        _rip = target;
        _retired++;
    }

    private readonly ulong[] _frame = new ulong[5];

    private ulong ReadTss(int offset, uint ext)
    {
        if (_trSel == 0 || (ulong)offset + 7 > _trLimit)
            throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#TS: no stack in the TSS at +0x{offset:x}", ExcTs, (uint)(_trSel & ~3) + ext);
        return ReadSystem(_trBase + (ulong)offset, 8);
    }
}
