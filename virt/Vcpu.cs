namespace SmartOS.Virt;

/// <summary>General registers in x86 encoding order (the ModRM/REX register number).</summary>
public enum Reg { Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15 }

/// <summary>Why <see cref="Vcpu.Run"/> returned or why an access left the vCPU (KVM's exit_reason).</summary>
public enum VcpuExitReason
{
    None,
    /// <summary>KVM_EXIT_IO: an in or out instruction.</summary>
    Io,
    /// <summary>KVM_EXIT_MMIO: a load or store to a guest physical address that is not RAM.</summary>
    Mmio,
    /// <summary>KVM_EXIT_HLT: the guest executed hlt.</summary>
    Hlt,
    /// <summary>KVM_EXIT_SHUTDOWN: a triple fault.</summary>
    Shutdown,
    /// <summary>An exception the guest cannot handle (#DE, #UD, #GP, #PF), or an access to an address
    /// that is neither RAM nor a device.</summary>
    Fault,
    /// <summary>The interpreter met an instruction it does not implement.</summary>
    Unimplemented,
    /// <summary>The instruction budget given to Run is spent (the slice ended).</summary>
    Budget,
    /// <summary>An exit handler asked the vCPU to stop (power off, host stop).</summary>
    Stop,
    /// <summary>KVM_EXIT_FAIL_ENTRY or KVM_EXIT_INTERNAL_ERROR.</summary>
    InternalError,
}

/// <summary>
/// One exit, in the shape KVM reports it in struct kvm_run: for Io the port, width and direction
/// (the value travels in <see cref="Data"/>); for Mmio the guest physical address, width and
/// direction. An exit handler fills <see cref="Data"/> for reads.
/// </summary>
public struct VcpuExit
{
    public VcpuExitReason Reason;
    public bool IsWrite;
    public ushort Port;
    public byte Size;
    public ulong Address;
    public ulong Data;
    public ulong Rip;
    public string? Detail;

    public override readonly string ToString() => Reason switch
    {
        VcpuExitReason.Io => $"io {(IsWrite ? "out" : "in")} port 0x{Port:x} size {Size} data 0x{Data:x}",
        VcpuExitReason.Mmio => $"mmio {(IsWrite ? "write" : "read")} 0x{Address:x} size {Size} data 0x{Data:x}",
        _ => $"{Reason} at 0x{Rip:x}" + (Detail != null ? ": " + Detail : ""),
    };
}

/// <summary>Where a vCPU sends port I/O and MMIO exits. Called on the thread that runs the vCPU.</summary>
public interface IVcpuExitHandler
{
    /// <summary>Handles an Io or Mmio exit; for reads sets <c>exit.Data</c>. Returns false when the
    /// access hits nothing (an MMIO address with no device: the guest faults).</summary>
    bool HandleAccess(ref VcpuExit exit);

    /// <summary>Set by a handler to end the current Run (power off, host stop).</summary>
    bool StopRequested { get; }
}

/// <summary>
/// A virtual CPU. Both backends present the same state and the same exits (Vmm.cs, "vCPU"):
/// Run executes until a halt, a fault, a stop request or the instruction budget, and hands I/O and
/// MMIO accesses to the exit handler as they happen.
/// </summary>
public abstract class Vcpu : IDisposable
{
    public abstract string BackendName { get; }
    public abstract ulong GetRegister(Reg r);
    public abstract void SetRegister(Reg r, ulong value);
    public abstract ulong Rip { get; set; }
    public abstract ulong Rflags { get; set; }
    /// <summary>Instructions retired (the interpreter counts exactly; KVM cannot, and reports 0).</summary>
    public abstract long Retired { get; }
    /// <summary>Runs until an exit that needs the VMM, or until <paramref name="budget"/> instructions.</summary>
    public abstract VcpuExit Run(long budget);
    /// <summary>The interrupt controller the vCPU takes maskable interrupts from (Platform.cs);
    /// null: none (the flat boot protocol's guests poll, Vmm.cs rule 4).</summary>
    public IInterruptController? Interrupts { get; set; }
    public virtual void Dispose() { GC.SuppressFinalize(this); }
}
