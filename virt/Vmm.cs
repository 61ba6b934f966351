/*
 * SmartOS.Virt: the VMM that runs bhyve- and kvm-branded guests.
 *
 * A Vm is one guest: its RAM (GuestMemory), one vCPU, and its devices (a 16550 UART that is the
 * console, a timer, a power-off port, up to 8 virtio-net NICs, each a MAC client on a datalink, and
 * up to 8 virtio-blk disks, each a block device of kernel's contract: a volume under vmadm). The vCPU has two backends with the same face (Vcpu): KVM through /dev/kvm
 * (KvmVcpu) and an x86-64 interpreter built on Iced (Interpreter). The same flat image boots on both.
 *
 * Terms
 *   guest physical  an address in the guest's RAM, which starts at 0. The boot page tables map
 *                   linear = physical, so the guest sees the same numbers.
 *   exit            the vCPU leaves guest code for the VMM, in KVM's shapes (VcpuExit): IO (in/out),
 *                   MMIO (a load/store to a non-RAM address), HLT, SHUTDOWN (triple fault).
 *   slice           one call of Vcpu.Run from the host's scheduler. The interpreter runs at most
 *                   SliceInstructions per slice; guest time advances one nanosecond per instruction.
 *   stop            the end of a VM's run, with a VmStopReason and a detail line.
 *
 * Boot protocol (Boot.cs). Guest physical layout:
 *   0x0000_0000  zero page (RAM; null pointers read zeros, they do not fault)
 *   0x0000_1000  GDT: null, 64-bit code (selector 0x08), data (0x10)
 *   0x0000_2000  boot-info block; RDI points here at entry (layout below)
 *   0x0000_3000  PML4, 0x4000 PDPT, 0x5000-0x8fff four page directories: 2 MiB pages that
 *                identity-map 0-4 GiB (RAM and the device window), writable, executable
 *   0x0010_0000  the image, loaded as is; entry point = its first byte
 *   top of RAM   the stack: RSP = RAM size - 8 at entry, as if _start had been called, so the
 *                SysV rule (RSP + 8 is 16-byte aligned at function entry) holds
 *   0xD000_0000  virtio-mmio devices, 0x1000 apart: the NICs from 0xD000_0000 in the order they
 *                were attached, the disks from 0xD000_8000 (after the 8 NIC slots) in theirs
 * CPU state at entry: long mode (CR0.PE|PG, CR4.PAE|OSFXSR, EFER.LME|LMA), CS=0x08, other
 * segments 0x10, RFLAGS=0x2 (interrupts off), RIP=0x100000, RDI=0x2000, other registers 0.
 * Boot-info block, little-endian u64 fields:
 *   +0 magic "SMOSBOOT"  +8 version (1)  +16 RAM size  +24 image base  +32 image size
 *   +40 UART port (0x3f8)  +48 timer port (0x510)  +56 power-off port (0x500)  +64 TSC Hz
 *   +72 number of virtio-net devices  +80.. their MMIO base addresses (up to 8)
 *   +144 number of virtio-blk devices  +152.. their MMIO base addresses (up to 8)
 * PC guests: a VM given a Kernel (a bzImage) boots by the Linux boot protocol instead (LinuxBoot.cs:
 * its own layout, the zero page, e820 and ACPI tables), and a VM with a Kernel or PciDevices has its
 * NICs and disks as legacy virtio-pci functions on a PCI bus (Pci.cs, PciVirtio.cs: config ports
 * 0xCF8/0xCFC, I/O BARs from 0xC000, memory BARs in 0xC000_0000-0xD000_0000, MSI-X to the local
 * APIC once the driver enables it, else INTx on IRQ 10/11
 * through Interrupts) rather than at the virtio-mmio addresses; a Linux VM also has the ACPI PM1
 * blocks at 0x600 and 0x604 (Acpi.cs). Such a VM's RAM ends at or below 0xC000_0000.
 * I/O ports: 0x3f8-0x3ff COM1; 0x500 power off (a write stops the VM, the value is its exit
 * status); 0x510-0x51f the timer (Devices/GuestTimer.cs). Other ports read all ones and ignore
 * writes, as an empty ISA bus does.
 *
 * Platform. VmConfig.Platform = VmPlatform.Pc adds a PC's interrupt controllers and clocks
 * (Devices/PcPlatform.cs): the local APIC (0xFEE00000, the vCPU's Interrupts), the I/O APIC
 * (0xFEC00000), the 8259 pair, the 8254 PIT, the CMOS RTC, and the UART's IRQ 4; Vm.Interrupts
 * is its router. Its timers follow guest time: a slice ends at the earliest platform deadline and
 * the next one starts by firing what is due, so a timer interrupt is pending at its exact
 * instruction; a deadline armed during a slice (by port I/O) ends the slice there.
 *
 * Rules
 *   1. Nothing a guest does leaves the VM: bad code, wild addresses, malformed rings and a guest
 *      that never halts each stop that VM (or that device) with a reason; the host goes on.
 *      No exception escapes Vm from guest behaviour.
 *   2. Guest RAM is bounds-checked on every host-side access (GuestMemory); device DMA goes
 *      through the same checks.
 *   3. In virtual time a VM is deterministic: guest time (rdtsc, the timer) is the scheduler's
 *      clock plus instructions retired in the current slice, never the wall clock.
 *   4. A hlt with interrupts enabled (sti; hlt) waits. On the flat platform it waits for the next
 *      device event (timer deadline, received frame, console input) and resumes after the hlt; the guest polls.
 *      On the PC platform it waits until an interrupt (or NMI) is pending at the local APIC: each
 *      device deadline is looked at when it comes, and one that raises nothing (a masked timer)
 *      leaves the vCPU waiting; a pending interrupt at the hlt means no wait at all. Either way a
 *      time limit still ends the run. A hlt with interrupts disabled ends the run: the VM has halted.
 *   5. Exits are handled on the thread that runs the scheduler; devices touch kernel state
 *      (MAC clients, packets) only from there.
 *   6. A stopped VM lets go of its NICs' MAC clients and stops serving its disks: nothing reaches
 *      its memory after the stop. Closing a disk's block device is the caller's (HvmGuest.cs).
 *
 * Using it (for vmadm and the bhyve/kvm brands)
 *   var vm = new Vm(scheduler, new VmConfig { Name = uuid, Image = flatImage, MemorySize = ram,
 *                                             Backend = VmBackend.Auto, RealTime = isRealTime });
 *   vm.AttachNic(vnic.OpenClient(uuid));        // one virtio-net per nic, before Start
 *   vm.AttachDisk(volumeDevice, "disk0");       // one virtio-blk per disk, before Start (Devices/VirtioBlk.cs)
 *   vm.Stopped += v => ...;                      // StopReason, StopDetail, ExitStatus
 *   vm.Start(); ... vm.Stop();                   // State: Created -> Running -> Stopped
 *   vm.ConsoleOutput, vm.Uart.ByteWritten, vm.ConsoleInput(...)  // `vmadm console`
 *   vm.BackendName                               // "kvm" or "interpreter", for `vmadm get`
 *   new VmConfig { ..., Platform = VmPlatform.Pc, ClockEpoch = host.Clock.Epoch }  // a PC guest (Linux):
 *                                                // vm.Platform (Devices/PcPlatform.cs), vm.Interrupts
 * Guest programs live in virt/guests (C with a small runtime); GuestCompiler builds them with gcc.
 *
 * DTrace (VmProbes.cs): UseProbes before Start gives a VM its host's vmm probes and its zone. Vm
 * fires exit-io and exit-mmio once each access is handled (the value an in or a load got), exit-hlt
 * and stop; the interpreter fires exit-cpuid, exit-rdmsr, exit-wrmsr, exception and interrupt, and
 * KvmVcpu interrupt. A site whose probe is disabled costs one field test.
 *
 * The vmadm bhyve and kvm brands run their guests through this (zones/HvmGuest.cs: the payload's
 * "image", "ram" and "vcpus", and how a guest's stop halts its zone).
 *
 * PC guests under KVM (Backend Kvm only; Auto keeps them on the interpreter): the platform stays the
 * VMM's, reached by MMIO and I/O exits, and KvmVcpu injects its interrupts with KVM_INTERRUPT (no
 * in-kernel irqchip); CPUID drops x2APIC and TSC-deadline there. Not run yet (no /dev/kvm where it
 * was written).
 * Not done yet: more than one vCPU, SMP boot, booting from
 * a disk (the image is loaded as a flat file; disks are data disks), I/O latency. Backend Auto picks KVM only in real time; under KVM guest
 * time is the host's (not deterministic) and InstructionLimit does not apply. A KVM slice is wall
 * time: the slice budget read as nanoseconds (1 ms by default, less up to a sooner platform deadline,
 * within 100 us and 10 ms), ended by a kick signal however the guest spends it (KvmVcpu.cs, Slices;
 * KvmKick.cs), so a guest that never exits, or exits without end, holds the host's loop for at
 * most one slice at a time and vmadm stop takes effect between two slices. A kicked slice counts
 * as its length of guest time, so in virtual time a KVM guest's clocks and time limit move on.
 * KvmVcpu has not yet run on a machine with /dev/kvm (the one it was written on has none).
 */
using SmartOS.Kernel;
using SmartOS.Virt.Devices;
using SmartOS.Vnic;

namespace SmartOS.Virt;

public enum VmBackend { Auto, Interpreter, Kvm }

public enum VmState { Created, Running, Stopped }

/// <summary>Which devices surround the vCPU: the flat boot protocol's (polled UART, timer port,
/// virtio-mmio) or, in addition, a PC's interrupt controllers and clocks (Devices/PcPlatform.cs).</summary>
public enum VmPlatform { Flat, Pc }

public enum VmStopReason
{
    None,
    /// <summary>hlt with interrupts disabled: the guest is done.</summary>
    Halted,
    /// <summary>The guest wrote the power-off port.</summary>
    PoweredOff,
    /// <summary>A guest exception (#DE, #UD, #GP, #PF) or an access outside RAM and every device.</summary>
    Fault,
    /// <summary>KVM reported a triple fault (KVM_EXIT_SHUTDOWN).</summary>
    TripleFault,
    /// <summary>Guest time passed the configured time limit.</summary>
    OutOfTime,
    /// <summary>The configured instruction budget is spent.</summary>
    OutOfInstructions,
    /// <summary>The interpreter met an instruction it does not implement.</summary>
    Unimplemented,
    /// <summary>The host stopped the VM (Vm.Stop).</summary>
    StoppedByHost,
    /// <summary>The backend failed (KVM entry failure, internal error).</summary>
    BackendError,
}

public sealed class VmConfig
{
    public string Name { get; init; } = "vm";
    public ulong MemorySize { get; init; } = 16UL << 20;
    /// <summary>The flat image of the boot protocol above (empty when <see cref="Kernel"/> is given).</summary>
    public byte[] Image { get; init; } = [];
    /// <summary>A bzImage to boot by the Linux boot protocol (LinuxBoot.cs) instead of a flat image;
    /// implies <see cref="PciDevices"/>.</summary>
    public byte[]? Kernel { get; init; }
    /// <summary>The initrd (initramfs) loaded with <see cref="Kernel"/>, or null.</summary>
    public byte[]? Initrd { get; init; }
    /// <summary>The kernel command line.</summary>
    public string Cmdline { get; init; } = "";
    /// <summary>NICs and disks are virtio-pci functions on a PCI bus (Pci.cs, PciVirtio.cs) instead
    /// of virtio-mmio windows; RAM then ends at or below the PCI hole (PciBus.PciMemoryBase).</summary>
    public bool PciDevices { get; init; }
    public VmBackend Backend { get; init; } = VmBackend.Auto;
    /// <summary>The host runs in real time: only then may Auto choose KVM (rule 3 needs the interpreter).</summary>
    public bool RealTime { get; init; }
    /// <summary>Stop with OutOfInstructions after this many instructions (0: no limit; interpreter only).</summary>
    public long InstructionLimit { get; init; }
    /// <summary>Stop with OutOfTime when guest time passes this many ns after start (0: no limit).</summary>
    public long TimeLimit { get; init; }
    /// <summary>Interpreter instructions per scheduler slice (one instruction is one ns of guest time).</summary>
    public long SliceInstructions { get; init; } = 1_000_000;
    /// <summary>Flat (the default: the boot protocol's devices only) or Pc (local APIC, I/O APIC,
    /// 8259 pair, 8254 PIT, CMOS RTC, the UART's IRQ 4; Devices/PcPlatform.cs).</summary>
    public VmPlatform Platform { get; init; } = VmPlatform.Flat;
    /// <summary>Unix time in ns at scheduler time 0 (the host's WallClock.Epoch): the CMOS clock's
    /// reading at boot. 0 in virtual time.</summary>
    public long ClockEpoch { get; init; }
    /// <summary>The seed of the guest's rdrand and rdseed (the host's seeded generator, derived per
    /// VM by name); null: the instructions are absent and CPUID does not advertise them.</summary>
    public ulong? RandomSeed { get; init; }
    /// <summary>The interpreter translates hot basic blocks into .NET code (Interpreter.Blocks.cs);
    /// null: on unless the environment sets SMARTOS_VIRT_TRANSLATE=0. Same bytes and counts either way.</summary>
    public bool? TranslateBlocks { get; init; }
}

/// <summary>One guest (see the theory statement above).</summary>
public sealed class Vm : IVcpuExitHandler, IDisposable
{
    public const ushort PowerOffPort = 0x500;
    public const ulong VirtioMmioBase = 0xD000_0000;
    public const int MaxNics = 8;
    public const int MaxDisks = 8;
    /// <summary>Where the first disk's registers are: after the 8 NIC slots.</summary>
    public const ulong VirtioBlkBase = VirtioMmioBase + MaxNics * VirtioMmio.RegionSize;

    private readonly Scheduler _scheduler;
    private readonly VmConfig _config;
    private readonly KTimer _slice;
    private readonly List<VirtioNet> _nics = new();
    private readonly List<VirtioBlk> _disks = new();
    private readonly List<IPortDevice> _portDevices = new();
    private readonly List<IMmioDevice> _mmioDevices = new();
    private Vcpu? _vcpu;
    private Interpreter? _interp;
    private VmProbes _probes = VmProbes.None;
    private long _startTime, _sliceStartTime, _sliceStartRetired, _sliceEnd;
    private bool _inSlice, _waiting, _stopRequested, _poweredOff, _endSliceEarly;

    public Vm(Scheduler scheduler, VmConfig config)
    {
        _scheduler = scheduler;
        _config = config;
        Memory = new GuestMemory(config.MemorySize);
        Uart = new Uart16550();
        Timer = new GuestTimer(() => GuestNow, ArmWake);
        _slice = new KTimer(scheduler, static s => ((Vm)s!).RunSlice(), this);
        // A Linux kernel needs a PC: its interrupt controllers and clocks, and its devices on PCI.
        if (config.Platform == VmPlatform.Pc || config.Kernel != null) BuildPcPlatform(config.ClockEpoch);
        if (config.PciDevices || config.Kernel != null)
        {
            Pci = new PciBus(() => Interrupts);
            AddPortDevice(Pci);
            AddMmioDevice(Pci);
        }
        if (config.Kernel != null) AddPortDevice(new AcpiPm());
    }

    /// <summary>The PC's interrupt controllers and clocks (VmPlatform.Pc, or a kernel), or null.</summary>
    public PcPlatform? Platform { get; private set; }

    private void BuildPcPlatform(long epoch)
    {
        var platform = new PcPlatform(() => GuestNow, epoch);
        Platform = platform;
        Interrupts = platform;
        foreach (var device in platform.PortDevices) AddPortDevice(device);
        foreach (var device in platform.MmioDevices) AddMmioDevice(device);
        Uart.ConnectIrq(platform, PcPlatform.Com1Irq);
        platform.Clock.DeadlineChanged += OnPlatformDeadline;
        platform.Lapic.InterruptPending += Wake;
    }

    /// <summary>The PCI bus, when the VM's devices are on PCI (VmConfig.PciDevices or a kernel).</summary>
    public PciBus? Pci { get; }
    /// <summary>Where the Linux boot protocol put the kernel, initrd and tables (after Start).</summary>
    public LinuxBoot.Placement? LinuxPlacement { get; private set; }

    public string Name => _config.Name;
    public GuestMemory Memory { get; }
    public Uart16550 Uart { get; }
    public GuestTimer Timer { get; }
    public IReadOnlyList<VirtioNet> Nics => _nics;
    public IReadOnlyList<VirtioBlk> Disks => _disks;
    public VmState State { get; private set; } = VmState.Created;
    public VmStopReason StopReason { get; private set; }
    /// <summary>One line that explains the stop ("#DE: divide error at 0x100012", "exit status 0").</summary>
    public string StopDetail { get; private set; } = "";
    /// <summary>The value written to the power-off port.</summary>
    public ulong ExitStatus { get; private set; }
    public bool IsStopped => State == VmState.Stopped;
    /// <summary>"interpreter" or "kvm" once started; what `vmadm get` shows.</summary>
    public string BackendName => _vcpu?.BackendName ?? "none";
    public Vcpu? Vcpu => _vcpu;
    /// <summary>Instructions retired (interpreter; KVM does not count).</summary>
    public long InstructionsRetired => _vcpu?.Retired ?? 0;
    /// <summary>The serial console so far.</summary>
    public string ConsoleOutput => Uart.Text;
    public long UnhandledPortAccesses { get; private set; }

    public event Action<Vm>? Stopped;

    /// <summary>Guest time in ns (rule 3).</summary>
    public long GuestNow => _inSlice && _interp != null
        ? _sliceStartTime + (_interp.Retired - _sliceStartRetired)
        : _scheduler.Now;

    /// <summary>Keys from the console's other end (`vmadm console`): into the UART's receiver, on
    /// the loop between slices (rule 5). On the PC platform the UART's interrupt wakes a halted vCPU;
    /// on the flat platform the input is a device event that ends a wait in hlt (rule 4).</summary>
    public void ConsoleInput(ReadOnlySpan<byte> bytes)
    {
        if (State != VmState.Running) return;
        Uart.Input(bytes);
        if (Platform == null) Wake();
    }

    /// <summary>Attaches a virtio-net NIC whose frames go to and come from <paramref name="client"/>.
    /// The device takes the client's receive callback. Only before Start.</summary>
    public VirtioNet AttachNic(MacClient client)
    {
        if (State != VmState.Created) throw new InvalidOperationException("NICs are attached before the VM starts");
        if (_nics.Count == MaxNics) throw new InvalidOperationException($"at most {MaxNics} NICs");
        var nic = new VirtioNet(Memory, Pci != null ? VirtioMmio.NoWindow : VirtioMmioBase + (ulong)_nics.Count * VirtioMmio.RegionSize, client, Wake);
        Pci?.Add(new VirtioPci(nic));
        _nics.Add(nic);
        return nic;
    }

    /// <summary>Attaches a virtio-blk disk over <paramref name="device"/>; T_GET_ID answers
    /// <paramref name="serial"/> (20 ASCII characters at most). Only before Start.</summary>
    public VirtioBlk AttachDisk(IBlockDevice device, string serial)
    {
        if (State != VmState.Created) throw new InvalidOperationException("disks are attached before the VM starts");
        if (_disks.Count == MaxDisks) throw new InvalidOperationException($"at most {MaxDisks} disks");
        var disk = new VirtioBlk(Memory, Pci != null ? VirtioMmio.NoWindow : VirtioBlkBase + (ulong)_disks.Count * VirtioMmio.RegionSize, device, serial);
        Pci?.Add(new VirtioPci(disk));
        _disks.Add(disk);
        return disk;
    }

    /// <summary>Adds a device on the I/O port bus (Platform.cs); ports of the built-in devices
    /// (UART, timer, power off) are routed to those first.</summary>
    public void AddPortDevice(IPortDevice device) => _portDevices.Add(device);

    /// <summary>Adds a device with memory-mapped registers (Platform.cs); the virtio-mmio windows
    /// are routed to the NICs and disks first.</summary>
    public void AddMmioDevice(IMmioDevice device) => _mmioDevices.Add(device);

    /// <summary>Where devices raise interrupts (the platform's interrupt router); null: no
    /// interrupt controllers (the flat boot protocol).</summary>
    public IInterruptRouter? Interrupts { get; set; }

    /// <summary>Whether /dev/kvm can run guests here, and if not, why.</summary>
    public static bool KvmAvailable(out string why) => KvmVcpu.IsAvailable(out why);

    /// <summary>Loads the image, builds the boot state and starts running on the scheduler. A bad
    /// configuration (image too big, KVM asked for but absent) stops the VM with BackendError.</summary>
    public void Start()
    {
        if (State != VmState.Created) throw new InvalidOperationException("a VM starts once");
        State = VmState.Running;
        _startTime = _scheduler.Now;
        if (!TryLoadGuest(out string? bootError))
        {
            Finish(VmStopReason.BackendError, bootError!);
            return;
        }
        // A PC guest runs under KVM only when asked for (Backend Kvm): its platform stays the VMM's
        // and KvmVcpu injects its interrupts, a path that has not run on a machine with /dev/kvm yet
        // (KvmVcpu.cs); Auto keeps it on the interpreter.
        bool useKvm = _config.Backend == VmBackend.Kvm || (_config.Backend == VmBackend.Auto && _config.RealTime && Platform == null && KvmVcpu.IsAvailable(out _));
        if (useKvm)
        {
            if (!KvmVcpu.TryCreate(Memory, this, out var kvm, out string why))
            {
                Finish(VmStopReason.BackendError, "kvm: " + why);
                return;
            }
            kvm!.Probes = _probes;
            _vcpu = kvm;
        }
        else
        {
            _interp = new Interpreter(Memory, this) { Probes = _probes };
            if (_config.TranslateBlocks is bool translate) _interp.TranslateBlocks = translate;
            _vcpu = _interp;
            if (_config.RandomSeed is ulong seed) _interp.Random = new HostRandom(HostRandom.Derive(seed, _config.Name));
            if (Platform != null)
            {
                _interp.HasLocalApic = true;
                _interp.Msrs = Platform.Lapic;
                Platform.Lapic.ApicBaseMsr = _interp.ApicBase;
            }
        }
        if (LinuxPlacement != null) LinuxBoot.SetEntryState(_vcpu, LinuxPlacement);
        else Boot.SetEntryState(_vcpu);
        if (Platform != null) _vcpu.Interrupts = Platform.Lapic;
        _slice.ArmAt(_scheduler.Now);
    }

    /// <summary>A kernel by the Linux boot protocol, else the flat image by Vmm.cs's.</summary>
    private bool TryLoadGuest(out string? error)
    {
        if (_config.Kernel != null)
        {
            LinuxPlacement = LinuxBoot.TryLoad(Memory, _config.Kernel, _config.Initrd ?? [], _config.Cmdline, out string why);
            error = LinuxPlacement == null ? why : null;
            return LinuxPlacement != null;
        }
        if (Pci != null && Memory.Size > PciBus.PciMemoryBase)
        {
            error = $"guest memory of {Memory.Size} bytes would cover the PCI hole at 0x{PciBus.PciMemoryBase:x}";
            return false;
        }
        return Boot.TryLoad(Memory, _config.Image, NicBases(), DiskBases(), out error);
    }

    /// <summary>Fires the host's vmm probes for this VM (VmProbes.cs), naming its zone so that only
    /// that zone's dtrace and the global zone's hear them. Before Start.</summary>
    public void UseProbes(SmartOS.Kernel.Trace.ProbeRegistry registry, string zone)
    {
        if (State != VmState.Created) throw new InvalidOperationException("UseProbes is for a VM not started yet");
        _probes = new VmProbes(registry, _config.Name, zone, this);
    }

    /// <summary>Stops the VM from the host (vmadm stop).</summary>
    public void Stop(string why = "stopped by the host")
    {
        if (State != VmState.Running) return;
        _stopRequested = true;
        if (!_inSlice) Finish(VmStopReason.StoppedByHost, why);
    }

    private ulong[] NicBases()
    {
        // Only virtio-mmio devices are in the boot-info block; PCI devices are found on the bus.
        var bases = new List<ulong>();
        foreach (var nic in _nics) if (nic.BaseAddress != VirtioMmio.NoWindow) bases.Add(nic.BaseAddress);
        return bases.ToArray();
    }

    private ulong[] DiskBases()
    {
        var bases = new List<ulong>();
        foreach (var disk in _disks) if (disk.BaseAddress != VirtioMmio.NoWindow) bases.Add(disk.BaseAddress);
        return bases.ToArray();
    }

    private void RunSlice()
    {
        if (State != VmState.Running || _vcpu == null) return;
        bool halted = _waiting;
        _waiting = false;
        long budget = _config.SliceInstructions;
        if (_config.InstructionLimit > 0)
        {
            long left = _config.InstructionLimit - _vcpu.Retired;
            if (left <= 0) { Finish(VmStopReason.OutOfInstructions, $"instruction limit {_config.InstructionLimit} reached at 0x{_vcpu.Rip:x}"); return; }
            budget = Math.Min(budget, left);
        }
        if (_config.TimeLimit > 0 && _scheduler.Now - _startTime >= _config.TimeLimit)
        {
            Finish(VmStopReason.OutOfTime, $"time limit {Time.FormatSeconds(_config.TimeLimit)} s reached at 0x{_vcpu.Rip:x}");
            return;
        }
        _sliceStartTime = _scheduler.Now;
        _sliceStartRetired = _vcpu.Retired;
        if (Platform != null)
        {
            // Timers fire at the slice's start, and the slice ends at the next deadline (PcPlatform.cs, "time").
            Platform.Advance(_sliceStartTime);
            if (halted && !InterruptWaiting)
            {
                WaitInHlt(_sliceStartTime);
                return;
            }
            long deadline = Platform.NextDeadline;
            if (deadline >= 0) budget = Math.Max(1, Math.Min(budget, deadline - _sliceStartTime));
        }
        _sliceEnd = _sliceStartTime + budget;
        _endSliceEarly = false;
        if (_interp != null)
        {
            _interp.TscBase = _sliceStartTime;
            _interp.TscRetiredBase = _sliceStartRetired;
        }
        _inSlice = true;
        VcpuExit exit;
        try
        {
            exit = _vcpu.Run(budget);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A VMM bug that guest code reached: it stops this VM (rule 1), with enough to file it.
            exit = new VcpuExit { Reason = VcpuExitReason.InternalError, Rip = _vcpu.Rip, Detail = $"internal error in the {_vcpu.BackendName} backend near 0x{_vcpu.Rip:x}: {e.GetType().Name}: {e.Message}" };
        }
        finally
        {
            _inSlice = false;
        }
        // Guest time the slice took: the interpreter's instructions; a KVM slice that ran to its
        // kick, its length (in real time the wall clock has moved as much, so the next slice is due
        // at once; in virtual time the guest's clocks move on instead of standing still).
        long used = _interp != null ? _vcpu.Retired - _sliceStartRetired
            : exit.Reason == VcpuExitReason.Budget ? KvmVcpu.SliceNanoseconds(budget) : 0;
        if (_poweredOff) { Finish(VmStopReason.PoweredOff, $"exit status {ExitStatus}"); return; }
        if (_stopRequested) { Finish(VmStopReason.StoppedByHost, "stopped by the host"); return; }
        switch (exit.Reason)
        {
            case VcpuExitReason.Budget:
            case VcpuExitReason.Io:
            case VcpuExitReason.Mmio:
            case VcpuExitReason.Stop:
                _slice.ArmAfter(Math.Max(1, used));
                break;
            case VcpuExitReason.Hlt:
            {
                bool interruptsOff = _interp != null && !_interp.InterruptsEnabled || _interp == null && (_vcpu.Rflags & 0x200) == 0;
                if (_probes.ExitHlt.Enabled) _probes.Fire(_probes.ExitHlt, (long)(exit.Rip - 1), interruptsOff ? 0 : 1);
                if (interruptsOff)
                {
                    Finish(VmStopReason.Halted, $"hlt with interrupts disabled at 0x{exit.Rip - 1:x}");
                    return;
                }
                if (InterruptWaiting)
                {
                    _slice.ArmAfter(Math.Max(1, used)); // an interrupt is already pending: no wait
                    break;
                }
                WaitInHlt(_scheduler.Now + used);
                break;
            }
            case VcpuExitReason.Shutdown:
                Finish(VmStopReason.TripleFault, exit.Detail ?? $"triple fault at 0x{exit.Rip:x}");
                break;
            case VcpuExitReason.Fault:
                Finish(VmStopReason.Fault, exit.Detail ?? $"fault at 0x{exit.Rip:x}");
                break;
            case VcpuExitReason.Unimplemented:
                Finish(VmStopReason.Unimplemented, exit.Detail ?? $"unimplemented instruction at 0x{exit.Rip:x}");
                break;
            default:
                Finish(VmStopReason.BackendError, exit.Detail ?? exit.ToString());
                break;
        }
    }

    /// <summary>An interrupt (or NMI) waits for the vCPU (PC platform only).</summary>
    private bool InterruptWaiting => Platform != null && (Platform.Lapic.HasPendingInterrupt || Platform.Lapic.NmiPending);

    /// <summary>The vCPU waits in hlt (rule 4) until the earliest device deadline (the guest
    /// timer's, the platform's), or the time limit if there is none; a received frame or an
    /// interrupt wakes it sooner (Wake). On the PC platform a deadline that raises no interrupt
    /// leaves it waiting (RunSlice).</summary>
    private void WaitInHlt(long now)
    {
        _waiting = true;
        long deadline = Timer.Deadline;
        long platformDeadline = Platform?.NextDeadline ?? -1;
        if (platformDeadline >= 0 && (deadline < 0 || platformDeadline < deadline)) deadline = platformDeadline;
        if (deadline >= 0) _slice.ArmAt(Math.Max(deadline, now));
        else if (_config.TimeLimit > 0) _slice.ArmAt(Math.Max(_startTime + _config.TimeLimit, now));
        else _slice.Cancel();
    }

    /// <summary>A platform timer armed or moved a deadline: end the slice there, or wake there.</summary>
    private void OnPlatformDeadline()
    {
        long deadline = Platform!.NextDeadline;
        if (_inSlice)
        {
            if (deadline >= 0 && deadline < _sliceEnd) _endSliceEarly = true;
        }
        else if (_waiting && State == VmState.Running)
        {
            WaitInHlt(_scheduler.Now);
        }
    }

    private void Wake()
    {
        if (_waiting && State == VmState.Running && !_inSlice)
        {
            _waiting = false;
            _slice.ArmAt(_scheduler.Now);
        }
    }

    private void ArmWake(long guestTime)
    {
        if (_waiting && guestTime >= 0) _slice.ArmAt(Math.Max(guestTime, _scheduler.Now));
    }

    private void Finish(VmStopReason reason, string detail)
    {
        if (State == VmState.Stopped) return;
        State = VmState.Stopped;
        StopReason = reason;
        StopDetail = detail;
        if (_probes.Stop.Enabled) _probes.Fire(_probes.Stop, VmProbes.ReasonName(reason), detail, (long)ExitStatus);
        _slice.Cancel();
        foreach (var nic in _nics) nic.Detach();
        foreach (var disk in _disks) disk.Detach();
        Stopped?.Invoke(this);
    }

    bool IVcpuExitHandler.StopRequested => _poweredOff || _stopRequested || _endSliceEarly;

    bool IVcpuExitHandler.HandleAccess(ref VcpuExit exit)
    {
        bool handled = HandleAccess(ref exit);
        if (exit.Reason == VcpuExitReason.Io ? _probes.ExitIo.Enabled : _probes.ExitMmio.Enabled)
        {
            var probe = exit.Reason == VcpuExitReason.Io ? _probes.ExitIo : _probes.ExitMmio;
            long where = exit.Reason == VcpuExitReason.Io ? exit.Port : (long)exit.Address;
            _probes.Fire(probe, where, exit.Size, (long)exit.Data, exit.IsWrite ? 1 : 0);
        }
        return handled;
    }

    private bool HandleAccess(ref VcpuExit exit)
    {
        if (exit.Reason == VcpuExitReason.Io)
        {
            ushort port = exit.Port;
            if (Uart.Owns(port))
            {
                if (exit.IsWrite) Uart.Write(port, (byte)exit.Data);
                else exit.Data = Uart.Read(port);
            }
            else if (GuestTimer.Owns(port))
            {
                if (exit.IsWrite) Timer.Write(port, (uint)exit.Data);
                else exit.Data = Timer.Read(port);
            }
            else if (port == PowerOffPort && exit.IsWrite)
            {
                ExitStatus = exit.Data;
                _poweredOff = true;
            }
            else if (FindPortDevice(port) is { } device)
            {
                if (exit.IsWrite) device.WritePort(port, exit.Size, exit.Data);
                else exit.Data = device.ReadPort(port, exit.Size);
            }
            else
            {
                UnhandledPortAccesses++;
                if (!exit.IsWrite) exit.Data = ulong.MaxValue;
            }
            return true;
        }
        foreach (var nic in _nics)
        {
            if (!nic.Owns(exit.Address)) continue;
            if (exit.IsWrite) nic.Write(exit.Address, exit.Size, exit.Data);
            else exit.Data = nic.Read(exit.Address, exit.Size);
            return true;
        }
        foreach (var disk in _disks)
        {
            if (!disk.Owns(exit.Address)) continue;
            if (exit.IsWrite) disk.Write(exit.Address, exit.Size, exit.Data);
            else exit.Data = disk.Read(exit.Address, exit.Size);
            return true;
        }
        foreach (var device in _mmioDevices)
        {
            if (!device.OwnsAddress(exit.Address)) continue;
            if (exit.IsWrite) device.WriteMmio(exit.Address, exit.Size, exit.Data);
            else exit.Data = device.ReadMmio(exit.Address, exit.Size);
            return true;
        }
        return false;
    }

    private IPortDevice? FindPortDevice(ushort port)
    {
        foreach (var device in _portDevices)
            if (device.OwnsPort(port)) return device;
        return null;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _slice.Cancel();
        foreach (var nic in _nics) nic.Detach();
        foreach (var disk in _disks) disk.Detach();
        _vcpu?.Dispose();
        Memory.Dispose();
    }

    private bool _disposed;
}
