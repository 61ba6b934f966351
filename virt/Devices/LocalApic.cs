namespace SmartOS.Virt.Devices;

/// <summary>
/// The local APIC of the one vCPU, in xAPIC mode (registers at 0xFEE00000; the Intel SDM volume 3,
/// chapter "Advanced Programmable Interrupt Controller"). It is the vCPU's interrupt controller
/// (PcPlatform.cs): it collects fixed interrupts from the I/O APIC, MSI writes, its own timer and
/// self-IPIs in IRR, and passes the 8259's INTR through when LINT0 is programmed ExtINT
/// (virtual-wire mode) or the APIC is disabled in IA32_APIC_BASE.
///
/// Priorities follow the SDM: an interrupt is delivered when the class (bits 7:4) of the highest
/// IRR vector is above the class of the PPR (the TPR or the highest in-service vector); EOI retires
/// the highest ISR vector and, for a level-triggered vector (its TMR bit), broadcasts the EOI to
/// the I/O APIC. While software-disabled (SVR bit 8 clear) every LVT is masked and fixed
/// interrupts are refused, as KVM does.
///
/// The timer counts a 1 GHz input clock (<see cref="TimerFrequencyHz"/>, the same rate as the
/// TSC: one tick per ns of guest time) through the divide configuration. One-shot, periodic and
/// TSC-deadline modes; a periodic timer shorter than <see cref="MinPeriodicNs"/> is held to it
/// (KVM's min_timer_period_us), so a guest cannot make the host fire it every nanosecond.
/// TSC-deadline is armed through IA32_TSC_DEADLINE (MSR 0x6E0): the vCPU's wrmsr/rdmsr call
/// <see cref="WriteTscDeadline"/> and <see cref="ReadTscDeadline"/>; the TSC is guest time in ns.
/// </summary>
public sealed class LocalApic : IInterruptController, INmiSource, IMmioDevice, IPlatformTimer, IMsrHandler
{
    public const ulong DefaultBase = 0xFEE0_0000;
    public const long TimerFrequencyHz = 1_000_000_000;
    public const long MinPeriodicNs = 200_000;
    /// <summary>Version 0x14 (an integrated APIC), six LVT entries (max LVT 5), no EOI-broadcast suppression.</summary>
    public const uint Version = 0x0005_0014;
    public const uint ApicBaseEnable = 1 << 11, ApicBaseBsp = 1 << 8;

    private const int LvtTimer = 0, LvtThermal = 1, LvtPerf = 2, LvtLint0 = 3, LvtLint1 = 4, LvtError = 5;
    private const uint Masked = 1 << 16;
    private const uint TimerModeMask = 3 << 17, ModeOneShot = 0, ModePeriodic = 1 << 17, ModeTscDeadline = 2 << 17;
    private const uint EsrSendIllegalVector = 1 << 5, EsrReceiveIllegalVector = 1 << 6, EsrIllegalRegister = 1 << 7;

    private readonly PlatformClock _clock;
    private readonly uint[] _irr = new uint[8], _isr = new uint[8], _tmr = new uint[8];
    private readonly uint[] _lvt = new uint[6];
    private ulong _apicBase = DefaultBase | ApicBaseEnable | ApicBaseBsp;
    private uint _id, _tpr, _ldr, _dfr = 0xFFFF_FFFF, _svr = 0xFF, _esr, _esrPending, _icrLow, _icrHigh;
    private uint _initialCount, _divideConfig;
    private int _divide = 2;
    private long _timerStart, _timerPeriod, _deadline = -1;
    private ulong _tscDeadline;
    private bool _pending;

    public LocalApic(PlatformClock clock)
    {
        _clock = clock;
        for (int i = 0; i < _lvt.Length; i++) _lvt[i] = Masked;
    }

    /// <summary>The 8259 pair behind LINT0 (virtual-wire mode); null: none.</summary>
    public Pic8259Pair? Pic
    {
        get => _pic;
        set
        {
            if (_pic != null) _pic.OutputChanged -= Update;
            _pic = value;
            if (value != null) value.OutputChanged += Update;
            Update();
        }
    }

    private Pic8259Pair? _pic;

    /// <summary>A level-triggered vector was retired by EOI (the I/O APIC clears its remote IRR).</summary>
    public event Action<int>? EoiBroadcast;

    /// <summary>An interrupt (or an NMI) became pending: a vCPU halted in hlt should wake.</summary>
    public event Action? InterruptPending;

    public ulong BaseAddress => _apicBase & 0xF_FFFF_F000;
    public bool HardwareEnabled => (_apicBase & ApicBaseEnable) != 0;
    public bool SoftwareEnabled => (_svr & 0x100) != 0;
    public uint Id => _id >> 24;

    /// <summary>Timer expiries (missed periods of a late periodic timer included).</summary>
    public long TimerExpiries { get; private set; }
    /// <summary>Fixed interrupts refused because the APIC was disabled.</summary>
    public long InterruptsDropped { get; private set; }
    /// <summary>Periodic timers held to <see cref="MinPeriodicNs"/>.</summary>
    public long PeriodsClamped { get; private set; }
    /// <summary>IPIs that name no one here (INIT, SIPI and fixed IPIs to other CPUs: there is one vCPU).</summary>
    public long IpisIgnored { get; private set; }
    /// <summary>Accesses that are not an aligned 32-bit register access.</summary>
    public long BadAccesses { get; private set; }
    /// <summary>An NMI was delivered (LINT1, ICR or MSI with NMI delivery) and not yet taken.</summary>
    public bool NmiPending { get; private set; }

    /// <summary>The vCPU takes the pending NMI.</summary>
    public void AcknowledgeNmi() => NmiPending = false;

    /// <summary>Puts the APIC in the state a PC's firmware leaves it in (virtual-wire mode): software
    /// enabled, LINT0 ExtINT (the 8259's INTR), LINT1 NMI.</summary>
    public void EnterVirtualWireMode()
    {
        _svr = 0x1FF;
        _lvt[LvtLint0] = 0x700;
        _lvt[LvtLint1] = 0x400;
        Update();
    }

    // ---- IA32_APIC_BASE and IA32_TSC_DEADLINE (the vCPU's MSRs) ---------------------------------

    /// <summary>IA32_APIC_BASE (MSR 0x1B): base address, global enable (bit 11), BSP (bit 8).</summary>
    public ulong ApicBaseMsr
    {
        get => _apicBase;
        set
        {
            _apicBase = (value & (0xF_FFFF_F000 | ApicBaseEnable)) | ApicBaseBsp;
            Update();
        }
    }

    /// <summary>The vCPU's MSRs that live in the local APIC (Interpreter.Msrs): IA32_TSC_DEADLINE
    /// (0x6E0), and IA32_APIC_BASE (0x1B), which the vCPU keeps and tells the APIC of when written.</summary>
    public bool TryReadMsr(uint msr, out ulong value)
    {
        value = msr == MsrTscDeadline ? ReadTscDeadline() : 0;
        return msr == MsrTscDeadline;
    }

    public bool TryWriteMsr(uint msr, ulong value)
    {
        if (msr == MsrTscDeadline) WriteTscDeadline(value);
        else if (msr == MsrApicBase) ApicBaseMsr = value;
        else return false;
        return true;
    }

    private const uint MsrApicBase = 0x1B, MsrTscDeadline = 0x6E0;

    /// <summary>rdmsr 0x6E0: the armed deadline, 0 when none or not in TSC-deadline mode.</summary>
    public ulong ReadTscDeadline() => TimerMode == ModeTscDeadline ? _tscDeadline : 0;

    /// <summary>wrmsr 0x6E0: arms the timer at TSC <paramref name="tsc"/> (0 disarms); ignored unless
    /// the LVT timer is in TSC-deadline mode (SDM).</summary>
    public void WriteTscDeadline(ulong tsc)
    {
        if (TimerMode != ModeTscDeadline) return;
        _tscDeadline = tsc;
        SetDeadline(tsc == 0 ? -1 : (long)Math.Min(tsc, long.MaxValue));
    }

    // ---- IInterruptController --------------------------------------------------------------------

    public bool HasPendingInterrupt => _pending;

    public int AcknowledgeInterrupt()
    {
        if (ExtIntAccepted && Pic is { Output: true } pic)
        {
            int v = pic.Acknowledge();
            Update();
            return v;
        }
        int vector = Highest(_irr);
        if (vector < 0 || (vector & 0xF0) <= (Ppr & 0xF0))
            return (int)(_svr & 0xFF); // the TPR rose since the CPU looked: the spurious vector
        Clear(_irr, vector);
        Set(_isr, vector);
        Update();
        return vector;
    }

    /// <summary>The 8259's INTR reaches the CPU: LINT0 is unmasked ExtINT, or the APIC is off.</summary>
    private bool ExtIntAccepted => !HardwareEnabled || (_lvt[LvtLint0] & (Masked | 0x700)) == 0x700;

    // ---- interrupts from the I/O APIC, MSI and the APIC's own sources -------------------------------

    /// <summary>Whether a message for <paramref name="destination"/> (physical or logical) is for this APIC.</summary>
    public bool MatchesDestination(uint destination, bool logical)
    {
        if (destination == 0xFF) return true;
        if (!logical) return destination == Id;
        uint ldr = _ldr >> 24;
        if (_dfr >> 28 == 0xF) return (ldr & destination) != 0;           // flat model
        return destination >> 4 == ldr >> 4 && (destination & ldr & 0xF) != 0; // cluster model
    }

    /// <summary>An interrupt message (I/O APIC redirection entry, MSI, IPI): delivery mode 0 fixed,
    /// 1 lowest priority (the same with one CPU), 4 NMI, 7 ExtINT; others are not for a running CPU.</summary>
    public void AcceptMessage(uint destination, bool logical, int deliveryMode, int vector, bool level)
    {
        if (!MatchesDestination(destination, logical)) { IpisIgnored++; return; }
        switch (deliveryMode)
        {
            case 0:
            case 1: Accept(vector, level); break;
            case 4: RaiseNmi(); break;
            case 7: Update(); break; // ExtINT: the 8259 supplies the vector at INTA
            default: IpisIgnored++; break;
        }
    }

    /// <summary>An MSI write: address 0xFEExxxxx (destination in bits 19:12, logical in bit 2), data
    /// with the vector in bits 7:0, delivery mode in 10:8, level trigger in bit 15.</summary>
    public void AcceptMsi(ulong address, uint data)
    {
        if ((address & 0xFFF0_0000) != DefaultBase) { InterruptsDropped++; return; }
        AcceptMessage((uint)(address >> 12) & 0xFF, (address & 4) != 0, (int)(data >> 8) & 7, (int)(data & 0xFF), (data & 0x8000) != 0);
    }

    private void Accept(int vector, bool level)
    {
        if (!HardwareEnabled || !SoftwareEnabled) { InterruptsDropped++; return; }
        if (vector < 16) { SignalError(EsrReceiveIllegalVector); return; }
        Set(_irr, vector);
        if (level) Set(_tmr, vector); else Clear(_tmr, vector);
        Update();
    }

    private void RaiseNmi()
    {
        NmiPending = true;
        InterruptPending?.Invoke();
    }

    private void SignalError(uint bits)
    {
        _esrPending |= bits;
        uint lvt = _lvt[LvtError];
        int vector = (int)(lvt & 0xFF);
        // An error vector below 16 only records itself: it must not raise another error.
        if ((lvt & Masked) == 0 && vector >= 16 && HardwareEnabled && SoftwareEnabled)
        {
            Set(_irr, vector);
            Clear(_tmr, vector);
            Update();
        }
    }

    // ---- priorities ------------------------------------------------------------------------------------

    private uint Ppr
    {
        get
        {
            int isrv = Math.Max(0, Highest(_isr));
            return (_tpr >> 4) >= (uint)(isrv >> 4) ? _tpr & 0xFF : (uint)isrv & 0xF0;
        }
    }

    /// <summary>Recomputes the pending flag the vCPU reads between instructions (Platform.cs rule 3).</summary>
    private void Update()
    {
        bool pending = ExtIntAccepted && Pic is { Output: true };
        if (!pending && HardwareEnabled)
        {
            int v = Highest(_irr);
            pending = v >= 0 && (v & 0xF0) > (Ppr & 0xF0);
        }
        bool rose = pending && !_pending;
        _pending = pending;
        if (rose) InterruptPending?.Invoke();
    }

    private void Eoi()
    {
        int v = Highest(_isr);
        if (v < 0) return;
        Clear(_isr, v);
        bool level = Test(_tmr, v);
        Update();
        if (level) EoiBroadcast?.Invoke(v);
    }

    // ---- the timer -------------------------------------------------------------------------------------

    private uint TimerMode => _lvt[LvtTimer] & TimerModeMask;

    public long Deadline => _deadline;

    public void Advance(long now)
    {
        if (_deadline < 0 || now < _deadline) return;
        long expiries = 1;
        switch (TimerMode)
        {
            case ModePeriodic:
                expiries = (now - _deadline) / _timerPeriod + 1; // missed periods are counted, not replayed
                _deadline += expiries * _timerPeriod;
                break;
            case ModeTscDeadline:
                _tscDeadline = 0;
                _deadline = -1;
                break;
            default:
                _deadline = -1;
                break;
        }
        TimerExpiries += expiries;
        uint lvt = _lvt[LvtTimer];
        if ((lvt & Masked) == 0) Accept((int)(lvt & 0xFF), level: false);
    }

    private void SetDeadline(long when)
    {
        _deadline = when;
        _clock.NoteDeadline();
    }

    private void StartTimer(long now)
    {
        if (_initialCount == 0 || (TimerMode != ModeOneShot && TimerMode != ModePeriodic))
        {
            SetDeadline(-1);
            return;
        }
        _timerStart = now;
        _timerPeriod = (long)_initialCount * _divide;
        if (TimerMode == ModePeriodic && _timerPeriod < MinPeriodicNs)
        {
            _timerPeriod = MinPeriodicNs;
            PeriodsClamped++;
        }
        SetDeadline(now + _timerPeriod);
    }

    private uint CurrentCount(long now)
    {
        if (_deadline < 0 || TimerMode == ModeTscDeadline) return 0;
        long elapsed = now - _timerStart;
        if (TimerMode == ModePeriodic) elapsed %= _timerPeriod;
        long ticks = elapsed / _divide;
        return ticks >= _initialCount ? 0 : _initialCount - (uint)ticks;
    }

    private void WriteDivide(uint value)
    {
        long now = _clock.Now;
        uint current = CurrentCount(now);
        _divideConfig = value & 0xB;
        int code = (int)((_divideConfig & 3) | ((_divideConfig & 8) >> 1));
        _divide = code == 7 ? 1 : 2 << code;
        if (_deadline >= 0 && TimerMode != ModeTscDeadline)
        {
            // The count goes on from where it is, at the new rate.
            _timerStart = now - (long)(_initialCount - current) * _divide;
            _timerPeriod = Math.Max((long)_initialCount * _divide, TimerMode == ModePeriodic ? MinPeriodicNs : 1);
            SetDeadline(now + (long)current * _divide);
        }
    }

    private void WriteLvtTimer(uint value)
    {
        uint oldMode = TimerMode;
        _lvt[LvtTimer] = ForceMask(value & 0x700FF);
        if (TimerMode != oldMode)
        {
            // A mode change stops the timer (as KVM does): the guest programs it afresh.
            _initialCount = 0;
            _tscDeadline = 0;
            SetDeadline(-1);
        }
    }

    // ---- registers -------------------------------------------------------------------------------------

    public bool OwnsAddress(ulong address) => address - BaseAddress < 0x1000;

    public ulong ReadMmio(ulong address, int size)
    {
        if (!HardwareEnabled) return size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
        uint offset = (uint)(address - BaseAddress);
        if ((offset & 0xF) + (uint)size > 4) { BadAccesses++; return 0; }
        ulong reg = ReadRegister(offset & 0xFF0);
        return (reg >> (int)((offset & 3) * 8)) & ((1UL << (size * 8)) - 1);
    }

    public void WriteMmio(ulong address, int size, ulong value)
    {
        uint offset = (uint)(address - BaseAddress);
        if (!HardwareEnabled) return;
        if (size != 4 || (offset & 0xF) != 0) { BadAccesses++; return; }
        WriteRegister(offset, (uint)value);
    }

    /// <summary>The 32-bit register at <paramref name="offset"/> (a multiple of 16).</summary>
    public uint ReadRegister(uint offset)
    {
        switch (offset)
        {
            case 0x20: return _id;
            case 0x30: return Version;
            case 0x80: return _tpr;
            case 0x90: return 0; // APR: arbitration is the bus's, and there is one CPU
            case 0xA0: return Ppr;
            case 0xD0: return _ldr;
            case 0xE0: return _dfr;
            case 0xF0: return _svr;
            case >= 0x100 and < 0x180: return _isr[(offset - 0x100) >> 4];
            case >= 0x180 and < 0x200: return _tmr[(offset - 0x180) >> 4];
            case >= 0x200 and < 0x280: return _irr[(offset - 0x200) >> 4];
            case 0x280: return _esr;
            case 0x300: return _icrLow & ~(1u << 12); // delivery is immediate: never "send pending"
            case 0x310: return _icrHigh;
            case >= 0x320 and <= 0x370: return _lvt[(offset - 0x320) >> 4];
            case 0x380: return _initialCount;
            case 0x390: return CurrentCount(_clock.Now);
            case 0x3E0: return _divideConfig;
            default: return 0;
        }
    }

    public void WriteRegister(uint offset, uint value)
    {
        switch (offset)
        {
            case 0x20: _id = value & 0xFF00_0000; break;
            case 0x80: _tpr = value & 0xFF; Update(); break;
            case 0xB0: Eoi(); break;
            case 0xD0: _ldr = value & 0xFF00_0000; break;
            case 0xE0: _dfr = value | 0x0FFF_FFFF; break;
            case 0xF0: WriteSvr(value); break;
            case 0x280: _esr = _esrPending; _esrPending = 0; break;
            case 0x300: _icrLow = value & 0xCCFFF; SendIpi(); break;
            case 0x310: _icrHigh = value & 0xFF00_0000; break;
            case 0x320: WriteLvtTimer(value); break;
            case 0x330: _lvt[LvtThermal] = ForceMask(value & 0x107FF); break;
            case 0x340: _lvt[LvtPerf] = ForceMask(value & 0x107FF); break;
            case 0x350: _lvt[LvtLint0] = ForceMask(value & 0x1A7FF); Update(); break;
            case 0x360: _lvt[LvtLint1] = ForceMask(value & 0x1A7FF); break;
            case 0x370: _lvt[LvtError] = ForceMask(value & 0x100FF); break;
            case 0x380:
                if (TimerMode == ModeTscDeadline) break; // ignored in TSC-deadline mode (SDM)
                _initialCount = value;
                StartTimer(_clock.Now);
                break;
            case 0x3E0: WriteDivide(value); break;
            case 0x30 or 0x90 or 0xA0 or 0xC0 or (>= 0x100 and < 0x280) or 0x390: break; // read-only
            default: SignalError(EsrIllegalRegister); break;
        }
    }

    private uint ForceMask(uint lvt) => SoftwareEnabled ? lvt : lvt | Masked;

    private void WriteSvr(uint value)
    {
        _svr = value & 0x3FF;
        if (!SoftwareEnabled)
            for (int i = 0; i < _lvt.Length; i++) _lvt[i] |= Masked;
        Update();
    }

    private void SendIpi()
    {
        int vector = (int)(_icrLow & 0xFF);
        int mode = (int)(_icrLow >> 8) & 7;
        bool logical = (_icrLow & 0x800) != 0;
        uint shorthand = (_icrLow >> 18) & 3;
        bool toSelf = shorthand switch
        {
            1 or 2 => true,
            3 => false,
            _ => MatchesDestination(_icrHigh >> 24, logical),
        };
        if (!toSelf) { IpisIgnored++; return; }
        switch (mode)
        {
            case 0:
            case 1:
                if (vector < 16) { SignalError(EsrSendIllegalVector); return; }
                Accept(vector, level: false);
                break;
            case 4: RaiseNmi(); break;
            default: IpisIgnored++; break; // INIT, SIPI, SMI to itself: not modelled for the one vCPU
        }
    }

    // ---- 256-bit registers -----------------------------------------------------------------------------

    private static void Set(uint[] r, int v) => r[v >> 5] |= 1u << (v & 31);
    private static void Clear(uint[] r, int v) => r[v >> 5] &= ~(1u << (v & 31));
    private static bool Test(uint[] r, int v) => (r[v >> 5] & (1u << (v & 31))) != 0;

    private static int Highest(uint[] r)
    {
        for (int i = 7; i >= 0; i--)
            if (r[i] != 0) return i * 32 + 31 - System.Numerics.BitOperations.LeadingZeroCount(r[i]);
        return -1;
    }

    /// <summary>Whether <paramref name="vector"/> is requested (IRR), in service (ISR), level (TMR): for tests.</summary>
    public bool IsRequested(int vector) => Test(_irr, vector);
    public bool IsInService(int vector) => Test(_isr, vector);
    public bool IsLevel(int vector) => Test(_tmr, vector);
}
