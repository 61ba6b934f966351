using System.Runtime.InteropServices;

namespace SmartOS.Virt;

/// <summary>
/// The KVM backend (Vmm.cs): /dev/kvm through ioctl(2). One VM file descriptor with one memory
/// slot (the GuestMemory block, page-aligned native memory, mapped at guest physical 0), one
/// vCPU whose struct kvm_run is mmap'd. Long mode is set up through KVM_SET_SREGS with the boot
/// page tables and GDT that Boot wrote; CPUID is the host's supported set (KVM_GET_SUPPORTED_CPUID).
/// Exits IO and MMIO go to the exit handler and the vCPU re-enters; HLT, SHUTDOWN and failures
/// return from Run, and so does the end of the slice.
///
/// Slices: KVM cannot count instructions, so a slice is wall time, and a guest that never exits
/// (a `jmp .` with interrupts off) or exits without end (a port or MMIO storm) would keep the
/// host's loop inside Run for ever. Run reads its budget as nanoseconds, held to
/// [<see cref="MinSliceNanoseconds"/>, <see cref="MaxSliceNanoseconds"/>] (<see cref="SliceNanoseconds"/>:
/// Vm's default budget of 1,000,000 is a 1 ms slice, and a sooner platform deadline shortens it),
/// and arms a timer that kicks the calling thread when it is spent (KvmKick.cs: a real-time signal
/// the thread keeps blocked, unblocked for KVM_RUN alone by KVM_SET_SIGNAL_MASK). The kick ends
/// KVM_RUN with EINTR wherever the guest is, or the next KVM_RUN at its entry when it came while an
/// exit was being handled; Run then takes the signal off the thread (sigtimedwait) and returns
/// Budget, and the VMM's scheduler runs its other work before the next slice. Any EINTR ends the
/// slice, whatever signal caused it, so no path re-enters in a loop. The timer is made on, and
/// KVM_SET_SIGNAL_MASK set from, the thread that runs the vCPU, again when that thread changes.
/// kvm_run.immediate_exit (KVM_CAP_IMMEDIATE_EXIT) is not used: it is the way to close the race
/// between a kick and KVM_RUN's entry for a VMM whose kick is delivered to a handler; here the kick
/// stays pending until taken, so KVM_RUN's entry already sees it.
///
/// Interrupts (the PC platform): there is no in-kernel irqchip. The local APIC, I/O APIC, 8259 and
/// PIT are the VMM's own (Devices/), reached through MMIO and I/O exits as on the interpreter, and
/// an interrupt they raise is injected with KVM_INTERRUPT, the way QEMU runs with
/// kernel_irqchip=off: before each KVM_RUN, if the vCPU's interrupt controller has one pending and
/// the last exit said the guest can take it (kvm_run.ready_for_interrupt_injection and if_flag),
/// its vector is acknowledged and injected; if it cannot yet, request_interrupt_window asks KVM to
/// exit (KVM_EXIT_IRQ_WINDOW_OPEN) as soon as it can (PlanInjection). A pending NMI goes with
/// KVM_NMI. Without an in-kernel local APIC, KVM ignores writes to IA32_TSC_DEADLINE and has no
/// x2APIC, so CPUID drops both (AdjustCpuidForUserspaceApic): Linux then runs its timer through the
/// APIC's MMIO registers, which exit to the VMM.
///
/// Written against the KVM API documentation (api.rst) and the x86 uapi headers; the machine it
/// was written on has no /dev/kvm, so it has not run yet: the tests that need it are ignored there.
/// </summary>
public sealed unsafe class KvmVcpu : Vcpu
{

    private const string DevKvm = "/dev/kvm";
    private const ulong KVM_GET_API_VERSION = 0xAE00, KVM_CREATE_VM = 0xAE01, KVM_GET_VCPU_MMAP_SIZE = 0xAE04;
    private const ulong KVM_GET_SUPPORTED_CPUID = 0xC008AE05, KVM_CREATE_VCPU = 0xAE41, KVM_SET_USER_MEMORY_REGION = 0x4020AE46;
    private const ulong KVM_SET_TSS_ADDR = 0xAE47, KVM_RUN = 0xAE80, KVM_GET_REGS = 0x8090AE81, KVM_SET_REGS = 0x4090AE82;
    private const ulong KVM_GET_SREGS = 0x8138AE83, KVM_SET_SREGS = 0x4138AE84, KVM_SET_CPUID2 = 0x4008AE90;
    /// <summary>_IOW(KVMIO, 0x8b, struct kvm_signal_mask): a u32 length, then the kernel sigset.</summary>
    public const ulong KVM_SET_SIGNAL_MASK = 0x4004AE8B;
    /// <summary>struct kvm_signal_mask: where the sigset starts after len.</summary>
    public const int SignalMaskHeaderSize = 4;
    /// <summary>A slice's bounds in nanoseconds of wall time (see the summary, "Slices").</summary>
    public const long MinSliceNanoseconds = 100_000, MaxSliceNanoseconds = 10_000_000;
    private const int O_RDWR = 2, O_CLOEXEC = 0x80000, PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, EINTR = 4;
    /// <summary>_IOW(KVMIO, 0x86, struct kvm_interrupt): 4 bytes in; _IO(KVMIO, 0x9a).</summary>
    public const ulong KVM_INTERRUPT = 0x4004AE86, KVM_NMI = 0xAE9A;
    public const uint ExitIo = 2, ExitHlt = 5, ExitIrqWindowOpen = 7, ExitMmio = 6, ExitShutdown = 8, ExitFailEntry = 9, ExitIntr = 10, ExitInternalError = 17;
    /// <summary>struct kvm_run's offsets (include/uapi/linux/kvm.h): the fields before the exit union.</summary>
    public const int RunRequestInterruptWindow = 0, RunExitReason = 8, RunReadyForInjection = 12, RunIfFlag = 13, RunExitUnion = 32;
    /// <summary>sizeof(struct kvm_cpuid_entry2) and the header of struct kvm_cpuid2 (nent, padding).</summary>
    public const int CpuidEntrySize = 40, CpuidHeaderSize = 8;
    private const uint Cpuid1EcxX2Apic = 1u << 21, Cpuid1EcxTscDeadline = 1u << 24;

    [DllImport("libc", SetLastError = true)] private static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, ulong request, void* arg);
    [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, ulong request, ulong arg);
    [DllImport("libc", SetLastError = true)] private static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(void* addr, nuint length);

    [StructLayout(LayoutKind.Sequential)]
    private struct KvmRegs
    {
        public ulong Rax, Rbx, Rcx, Rdx, Rsi, Rdi, Rsp, Rbp, R8, R9, R10, R11, R12, R13, R14, R15, Rip, Rflags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct KvmSegment
    {
        public ulong Base;
        public uint Limit;
        public ushort Selector;
        public byte Type, Present, Dpl, Db, S, L, G, Avl, Unusable, Padding;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct KvmSregs
    {
        public KvmSegment Cs, Ds, Es, Fs, Gs, Ss, Tr, Ldt;
        public ulong GdtBase; public ushort GdtLimit; public ushort GdtPad0, GdtPad1, GdtPad2;
        public ulong IdtBase; public ushort IdtLimit; public ushort IdtPad0, IdtPad1, IdtPad2;
        public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer, ApicBase;
        public fixed ulong InterruptBitmap[4];
    }

    private readonly int _kvm, _vm, _vcpu;
    private readonly byte* _run;
    private readonly nuint _runSize;
    private readonly IVcpuExitHandler _handler;

    private KvmVcpu(int kvm, int vm, int vcpu, byte* run, nuint runSize, ulong memorySize, IVcpuExitHandler handler)
    {
        _kvm = kvm; _vm = vm; _vcpu = vcpu; _run = run; _runSize = runSize;
        MemorySize = memorySize;
        _handler = handler;
    }

    public override string BackendName => "kvm";
    public ulong MemorySize { get; }
    public override long Retired => 0;

    /// <summary>Whether /dev/kvm exists, opens, and speaks API version 12.</summary>
    public static bool IsAvailable(out string why)
    {
        if (!OperatingSystem.IsLinux()) { why = "KVM needs Linux"; return false; }
        string release = KernelRelease();
        if (!KvmKick.KernelKeepsKickPending(release)) { why = $"Linux {release} is older than 4.15, where a KVM slice cannot be ended safely (KvmKick.cs rule 3)"; return false; }
        if (!File.Exists(DevKvm)) { why = "/dev/kvm is not available"; return false; }
        int fd = open(DevKvm, O_RDWR | O_CLOEXEC);
        if (fd < 0) { why = $"/dev/kvm cannot be opened (errno {Marshal.GetLastPInvokeError()})"; return false; }
        int version = ioctl(fd, KVM_GET_API_VERSION, 0UL);
        close(fd);
        if (version != 12) { why = $"/dev/kvm speaks API version {version}, not 12"; return false; }
        why = "";
        return true;
    }

    private static string KernelRelease()
    {
        try { return File.ReadAllText("/proc/sys/kernel/osrelease").Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "(unknown release)"; }
    }

    /// <summary>How long a slice of <paramref name="budget"/> runs, in nanoseconds (see the summary).</summary>
    public static long SliceNanoseconds(long budget) => Math.Clamp(budget, MinSliceNanoseconds, MaxSliceNanoseconds);

    /// <summary>Slices the kick ended (the guest was still running, or still exiting, when its time was up).</summary>
    public long SlicesKicked { get; private set; }

    private KvmKick.SliceTimer? _timer;

    /// <summary>Makes the calling thread fit to run the vCPU (see the summary, "Slices"): the kick
    /// blocked on it, KVM_RUN's mask its own with the kick unblocked, a slice timer aimed at it.</summary>
    private bool PrepareThread(out string? error)
    {
        error = null;
        if (_timer != null && _timer.ThreadId == KvmKick.CurrentThreadId) return true;
        KvmKick.BlockOnCurrentThread();
        byte* mask = stackalloc byte[SignalMaskHeaderSize + KvmKick.KernelSigsetBytes];
        *(uint*)mask = KvmKick.KernelSigsetBytes;
        *(ulong*)(mask + SignalMaskHeaderSize) = KvmKick.RunMask();
        if (ioctl(_vcpu, KVM_SET_SIGNAL_MASK, mask) < 0) { error = Errno("KVM_SET_SIGNAL_MASK"); return false; }
        _timer?.Dispose();
        _timer = null;
        if (!KvmKick.SliceTimer.TryCreate(out var timer, out string why)) { error = why; return false; }
        _timer = timer;
        return true;
    }

    public static bool TryCreate(GuestMemory memory, IVcpuExitHandler handler, out KvmVcpu? vcpu, out string why)
    {
        vcpu = null;
        if (!IsAvailable(out why)) return false;
        int kvm = open(DevKvm, O_RDWR | O_CLOEXEC), vm = -1, cpu = -1;
        try
        {
            vm = ioctl(kvm, KVM_CREATE_VM, 0UL);
            if (vm < 0) { why = Errno("KVM_CREATE_VM"); return false; }
            // Intel VMX needs three pages for a real-mode TSS even though we enter in long mode.
            ioctl(vm, KVM_SET_TSS_ADDR, 0xFFFB_D000UL);
            ulong* region = stackalloc ulong[4];
            region[0] = 0; // slot 0, flags 0
            region[1] = 0; // guest physical address
            region[2] = memory.Size;
            region[3] = (ulong)memory.Base;
            if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, region) < 0) { why = Errno("KVM_SET_USER_MEMORY_REGION"); return false; }
            cpu = ioctl(vm, KVM_CREATE_VCPU, 0UL);
            if (cpu < 0) { why = Errno("KVM_CREATE_VCPU"); return false; }
            int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0UL);
            if (size <= 0) { why = Errno("KVM_GET_VCPU_MMAP_SIZE"); return false; }
            void* run = mmap(null, (nuint)size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
            if (run == (void*)-1) { why = Errno("mmap kvm_run"); return false; }
            if (!SetCpuid(kvm, cpu, out why) || !SetLongMode(cpu, out why))
            {
                munmap(run, (nuint)size);
                return false;
            }
            vcpu = new KvmVcpu(kvm, vm, cpu, (byte*)run, (nuint)size, memory.Size, handler);
            return true;
        }
        finally
        {
            if (vcpu == null)
            {
                if (cpu >= 0) close(cpu);
                if (vm >= 0) close(vm);
                close(kvm);
            }
        }
    }

    private static string Errno(string what) => $"{what} failed (errno {Marshal.GetLastPInvokeError()})";

    private static bool SetCpuid(int kvm, int cpu, out string why)
    {
        const int max = 128, entrySize = 40;
        byte* buf = stackalloc byte[8 + max * entrySize];
        new Span<byte>(buf, 8 + max * entrySize).Clear();
        *(uint*)buf = max;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, buf) < 0) { why = Errno("KVM_GET_SUPPORTED_CPUID"); return false; }
        AdjustCpuidForUserspaceApic(new Span<byte>(buf, 8 + max * entrySize));
        if (ioctl(cpu, KVM_SET_CPUID2, buf) < 0) { why = Errno("KVM_SET_CPUID2"); return false; }
        why = "";
        return true;
    }

    /// <summary>Clears x2APIC and TSC-deadline from leaf 1 of a struct kvm_cpuid2 (see the summary):
    /// the local APIC is the VMM's, reached by MMIO.</summary>
    public static void AdjustCpuidForUserspaceApic(Span<byte> cpuid2)
    {
        uint count = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(cpuid2);
        for (int i = 0; i < count && CpuidHeaderSize + (i + 1) * CpuidEntrySize <= cpuid2.Length; i++)
        {
            var entry = cpuid2.Slice(CpuidHeaderSize + i * CpuidEntrySize, CpuidEntrySize);
            if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(entry) != 1) continue;
            var ecx = entry.Slice(20, 4); // function, index, flags, eax, ebx, then ecx
            uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(ecx);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(ecx, v & ~(Cpuid1EcxX2Apic | Cpuid1EcxTscDeadline));
        }
    }

    public enum Injection { None, Inject, RequestWindow }

    /// <summary>What to do before KVM_RUN (see the summary): inject when an interrupt is pending and
    /// the guest can take it, else ask for the window while one is pending, else nothing.</summary>
    public static Injection PlanInjection(bool pending, bool readyForInjection, bool interruptsEnabled)
        => !pending ? Injection.None : readyForInjection && interruptsEnabled ? Injection.Inject : Injection.RequestWindow;

    /// <summary>Interrupts injected with KVM_INTERRUPT.</summary>
    public long InterruptsInjected { get; private set; }

    /// <summary>The vmm probes its interrupt injection fires (VmProbes.cs).</summary>
    public VmProbes Probes { get; set; } = VmProbes.None;

    /// <summary>Delivers what the VMM's interrupt controller has pending (see the summary).</summary>
    private bool InjectPending(out string? error)
    {
        error = null;
        var controller = Interrupts;
        if (controller is INmiSource nmi && nmi.NmiPending)
        {
            nmi.AcknowledgeNmi();
            if (ioctl(_vcpu, KVM_NMI, 0UL) < 0) { error = Errno("KVM_NMI"); return false; }
        }
        var plan = PlanInjection(controller?.HasPendingInterrupt == true, _run[RunReadyForInjection] != 0, _run[RunIfFlag] != 0);
        _run[RunRequestInterruptWindow] = plan == Injection.RequestWindow ? (byte)1 : (byte)0;
        if (plan != Injection.Inject) return true;
        uint vector = (uint)controller!.AcknowledgeInterrupt();
        if (ioctl(_vcpu, KVM_INTERRUPT, &vector) < 0) { error = Errno("KVM_INTERRUPT"); return false; }
        InterruptsInjected++;
        if (Probes.Interrupt.Enabled) Probes.Fire(Probes.Interrupt, vector);
        return true;
    }

    private static bool SetLongMode(int cpu, out string why)
    {
        KvmSregs s;
        if (ioctl(cpu, KVM_GET_SREGS, &s) < 0) { why = Errno("KVM_GET_SREGS"); return false; }
        var code = new KvmSegment { Base = 0, Limit = 0xFFFFFFFF, Selector = 0x08, Type = 11, Present = 1, S = 1, L = 1, G = 1 };
        var data = new KvmSegment { Base = 0, Limit = 0xFFFFFFFF, Selector = 0x10, Type = 3, Present = 1, S = 1, Db = 1, G = 1 };
        s.Cs = code;
        s.Ds = s.Es = s.Fs = s.Gs = s.Ss = data;
        s.GdtBase = Boot.GdtAddress;
        s.GdtLimit = 23;
        s.Cr3 = Boot.Pml4Address;
        s.Cr4 = (1UL << 5) | (1UL << 9) | (1UL << 10); // PAE, OSFXSR, OSXMMEXCPT
        s.Cr0 = 1UL | (1UL << 1) | (1UL << 5) | (1UL << 16) | (1UL << 31); // PE, MP, NE, WP, PG
        s.Efer = (1UL << 8) | (1UL << 10); // LME, LMA
        if (ioctl(cpu, KVM_SET_SREGS, &s) < 0) { why = Errno("KVM_SET_SREGS"); return false; }
        why = "";
        return true;
    }

    private KvmRegs GetRegs()
    {
        KvmRegs r;
        ioctl(_vcpu, KVM_GET_REGS, &r);
        return r;
    }

    private void SetRegs(KvmRegs r) => ioctl(_vcpu, KVM_SET_REGS, &r);

    private static ref ulong Slot(ref KvmRegs r, Reg reg)
    {
        switch (reg)
        {
            case Reg.Rax: return ref r.Rax;
            case Reg.Rcx: return ref r.Rcx;
            case Reg.Rdx: return ref r.Rdx;
            case Reg.Rbx: return ref r.Rbx;
            case Reg.Rsp: return ref r.Rsp;
            case Reg.Rbp: return ref r.Rbp;
            case Reg.Rsi: return ref r.Rsi;
            case Reg.Rdi: return ref r.Rdi;
            case Reg.R8: return ref r.R8;
            case Reg.R9: return ref r.R9;
            case Reg.R10: return ref r.R10;
            case Reg.R11: return ref r.R11;
            case Reg.R12: return ref r.R12;
            case Reg.R13: return ref r.R13;
            case Reg.R14: return ref r.R14;
            default: return ref r.R15;
        }
    }

    public override ulong GetRegister(Reg reg)
    {
        var r = GetRegs();
        return Slot(ref r, reg);
    }

    public override void SetRegister(Reg reg, ulong value)
    {
        var r = GetRegs();
        Slot(ref r, reg) = value;
        SetRegs(r);
    }

    public override ulong Rip
    {
        get => GetRegs().Rip;
        set { var r = GetRegs(); r.Rip = value; SetRegs(r); }
    }

    public override ulong Rflags
    {
        get => GetRegs().Rflags;
        set { var r = GetRegs(); r.Rflags = value | 2; SetRegs(r); }
    }

    public override VcpuExit Run(long budget)
    {
        if (!PrepareThread(out string? error)) return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = "kvm: " + error };
        if (!_timer!.Arm(SliceNanoseconds(budget))) return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = Errno("kvm: timer_settime") };
        try
        {
            return RunSlice();
        }
        finally
        {
            // A kick that fired after the last KVM_RUN returned would cut the next slice short.
            _timer.Disarm();
            KvmKick.TryConsume();
        }
    }

    private VcpuExit RunSlice()
    {
        while (true)
        {
            if (!InjectPending(out string? injectError))
                return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = injectError };
            if (ioctl(_vcpu, KVM_RUN, 0UL) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    // The slice is over (or another signal came): the loop gets its turn either way.
                    if (KvmKick.TryConsume()) SlicesKicked++;
                    return new VcpuExit { Reason = VcpuExitReason.Budget, Rip = Rip };
                }
                return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = $"KVM_RUN failed (errno {errno})" };
            }
            uint reason = *(uint*)(_run + RunExitReason);
            switch (reason)
            {
                case ExitIo:
                {
                    byte dir = _run[32], size = _run[33];
                    ushort port = *(ushort*)(_run + 34);
                    uint count = *(uint*)(_run + 36);
                    byte* data = _run + *(ulong*)(_run + 40);
                    for (uint i = 0; i < count; i++, data += size)
                    {
                        var exit = new VcpuExit { Reason = VcpuExitReason.Io, IsWrite = dir == 1, Port = port, Size = size };
                        if (exit.IsWrite) exit.Data = size == 1 ? *data : size == 2 ? *(ushort*)data : *(uint*)data;
                        _handler.HandleAccess(ref exit);
                        if (!exit.IsWrite)
                        {
                            if (size == 1) *data = (byte)exit.Data;
                            else if (size == 2) *(ushort*)data = (ushort)exit.Data;
                            else *(uint*)data = (uint)exit.Data;
                        }
                    }
                    break;
                }
                case ExitMmio:
                {
                    ulong addr = *(ulong*)(_run + 32);
                    byte* data = _run + 40;
                    uint len = *(uint*)(_run + 48);
                    var exit = new VcpuExit { Reason = VcpuExitReason.Mmio, Address = addr, Size = (byte)len, IsWrite = _run[52] != 0 };
                    if (exit.IsWrite) exit.Data = *(ulong*)data & (len >= 8 ? ulong.MaxValue : (1UL << (int)(8 * len)) - 1);
                    if (!_handler.HandleAccess(ref exit))
                        return new VcpuExit { Reason = VcpuExitReason.Fault, Rip = Rip, Detail = $"#PF: {(exit.IsWrite ? "write" : "read")} of {len} bytes at 0x{addr:x}, outside RAM and every device" };
                    if (!exit.IsWrite) *(ulong*)data = exit.Data;
                    break;
                }
                case ExitHlt:
                    return new VcpuExit { Reason = VcpuExitReason.Hlt, Rip = Rip };
                case ExitShutdown:
                    return new VcpuExit { Reason = VcpuExitReason.Shutdown, Rip = Rip, Detail = $"triple fault (KVM_EXIT_SHUTDOWN) near 0x{Rip:x}" };
                case ExitIntr:
                case ExitIrqWindowOpen:
                    break; // the loop injects what waits
                case ExitFailEntry:
                    return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = $"KVM_EXIT_FAIL_ENTRY, hardware reason 0x{*(ulong*)(_run + 32):x}" };
                case ExitInternalError:
                    return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = $"KVM_EXIT_INTERNAL_ERROR, suberror {*(uint*)(_run + 32)}" };
                default:
                    return new VcpuExit { Reason = VcpuExitReason.InternalError, Detail = $"unexpected KVM exit reason {reason}" };
            }
            if (_handler.StopRequested) return new VcpuExit { Reason = VcpuExitReason.Stop, Rip = Rip };
        }
    }

    private bool _disposed;

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _timer?.Dispose();
        munmap(_run, _runSize);
        close(_vcpu);
        close(_vm);
        close(_kvm);
        base.Dispose();
    }
}
