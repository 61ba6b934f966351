using System.Runtime.CompilerServices;
using SmartOS.Kernel.Trace;

namespace SmartOS.Virt;

/// <summary>
/// The vmm DTrace provider (issue 14; kernel/Trace/Probe.cs): a guest's exits, the exceptions and
/// interrupts it is given, and why it stopped. One set of probes per host, shared by its VMs as
/// illumos's vmm module's SDT probes are shared by every VM (Probe.cs rule 5): each firing names the
/// VM's zone, so a bhyve or kvm zone's dtrace hears only its own guest, and the VM is the firing's
/// thread (self->). illumos's bhyve has one SDT exit probe (vmm-vexit, with the VT-x exit code);
/// these split it by reason, under names of this project's, with function names from bhyve's
/// handlers. arg0 is always the VM's name (stringof(arg0); the zone's UUID under vmadm).
///   vmm:vmm:vm_handle_inout:exit-io        an in or out: arg1 the port, arg2 the size in bytes,
///                                          arg3 the value (what the device answered, for an in),
///                                          arg4 the direction, 1 out (write) and 0 in (read)
///   vmm:vmm:vm_handle_mmio_emul:exit-mmio  a load or store outside RAM: arg1 the guest physical
///                                          address, arg2 the size, arg3 the value, arg4 1 write, 0
///                                          read; an address no device owns fires it, then stop
///   vmm:vmm:vm_handle_hlt:exit-hlt         a hlt: arg1 its address, arg2 1 when interrupts are on
///                                          (the vCPU waits, Vmm.cs rule 4) and 0 when the VM halts
///   vmm:vmm:vmx_handle_cpuid:exit-cpuid    arg1 the address, arg2 the leaf (eax), arg3 the subleaf
///                                          (ecx), arg4 the eax answered
///   vmm:vmm:vm_handle_rdmsr:exit-rdmsr, vmm:vmm:vm_handle_wrmsr:exit-wrmsr
///                                          an MSR read or written: arg1 the address, arg2 the MSR,
///                                          arg3 the value (an MSR the vCPU refuses raises #GP
///                                          instead, seen at exception)
///   vmm:vmm:vm_inject_exception:exception  an exception delivered through the guest's IDT: arg1
///                                          the address it returns to or retries, arg2 the vector,
///                                          arg3 the error code (-1 when the vector has none)
///   vmm:vmm:vm_inject_intr:interrupt       an external interrupt delivered: arg1 the vector
///   vmm:vmm:vm_suspend:stop                the VM stopped: arg1 the reason (halted, powered-off,
///                                          fault, triple-fault, out-of-time, out-of-instructions,
///                                          unimplemented, stopped-by-host, backend-error), arg2
///                                          the detail `vmadm` reports, arg3 the power-off status
/// CPUID and MSR exits, exceptions and interrupts are the interpreter's: under KVM the kernel
/// handles CPUID and most MSRs without an exit, and only exit-io, exit-mmio, exit-hlt, interrupt
/// and stop fire. A disabled site reads one Enabled field (Probe.cs rule 1); firing allocates nothing.
/// </summary>
public sealed class VmProbes
{
    public readonly Probe ExitIo, ExitMmio, ExitHlt, ExitCpuid, ExitRdmsr, ExitWrmsr, Exception, Interrupt, Stop;

    private sealed class Shared(ProbeRegistry r)
    {
        public readonly Probe ExitIo = r.AddShared("vmm", "vmm", "vm_handle_inout", "exit-io");
        public readonly Probe ExitMmio = r.AddShared("vmm", "vmm", "vm_handle_mmio_emul", "exit-mmio");
        public readonly Probe ExitHlt = r.AddShared("vmm", "vmm", "vm_handle_hlt", "exit-hlt");
        public readonly Probe ExitCpuid = r.AddShared("vmm", "vmm", "vmx_handle_cpuid", "exit-cpuid");
        public readonly Probe ExitRdmsr = r.AddShared("vmm", "vmm", "vm_handle_rdmsr", "exit-rdmsr");
        public readonly Probe ExitWrmsr = r.AddShared("vmm", "vmm", "vm_handle_wrmsr", "exit-wrmsr");
        public readonly Probe Exception = r.AddShared("vmm", "vmm", "vm_inject_exception", "exception");
        public readonly Probe Interrupt = r.AddShared("vmm", "vmm", "vm_inject_intr", "interrupt");
        public readonly Probe Stop = r.AddShared("vmm", "vmm", "vm_suspend", "stop");
    }

    private static readonly ConditionalWeakTable<ProbeRegistry, Shared> s_byRegistry = new();

    /// <summary>Creates the host's vmm probes if they are not there yet (a host does at boot, so
    /// `dtrace -l -P vmm` lists them before any guest runs).</summary>
    public static void Register(ProbeRegistry registry) => s_byRegistry.GetValue(registry, static r => new Shared(r));

    /// <summary>Probes no consumer can reach: a VM's when it was given no registry.</summary>
    public static readonly VmProbes None = new(new ProbeRegistry(), "", "global", new object());

    private readonly string _vm, _zone;
    private readonly object _thread;

    /// <summary>A VM's view of its host's vmm probes: its name, its zone and itself as the thread.</summary>
    public VmProbes(ProbeRegistry registry, string vm, string zone, object thread)
    {
        var s = s_byRegistry.GetValue(registry, static r => new Shared(r));
        ExitIo = s.ExitIo; ExitMmio = s.ExitMmio; ExitHlt = s.ExitHlt; ExitCpuid = s.ExitCpuid;
        ExitRdmsr = s.ExitRdmsr; ExitWrmsr = s.ExitWrmsr; Exception = s.Exception; Interrupt = s.Interrupt; Stop = s.Stop;
        _vm = vm; _zone = zone; _thread = thread;
    }

    /// <summary>Fires a probe for this VM (call only when it is Enabled).</summary>
    public void Fire(Probe probe, ProbeArg a1 = default, ProbeArg a2 = default, ProbeArg a3 = default, ProbeArg a4 = default, ProbeArg a5 = default)
        => probe.Fire(new ProbeArgs(_vm, a1, a2, a3, a4, a5) { Zone = _zone, Thread = _thread });

    /// <summary>The stop probe's name for a reason.</summary>
    public static string ReasonName(VmStopReason reason) => reason switch
    {
        VmStopReason.Halted => "halted",
        VmStopReason.PoweredOff => "powered-off",
        VmStopReason.Fault => "fault",
        VmStopReason.TripleFault => "triple-fault",
        VmStopReason.OutOfTime => "out-of-time",
        VmStopReason.OutOfInstructions => "out-of-instructions",
        VmStopReason.Unimplemented => "unimplemented",
        VmStopReason.StoppedByHost => "stopped-by-host",
        VmStopReason.BackendError => "backend-error",
        _ => "none",
    };
}
