namespace SmartOS.Virt.Tests.Differential;

/// <summary>KVM as the reference CPU: the sequence plus hlt runs in a fresh long-mode vCPU.</summary>
internal sealed class KvmReference : IDisposable, IVcpuExitHandler
{
    private const ulong CodeAt = 0x10_0000;
    private readonly GuestMemory _memory;
    private readonly KvmVcpu _cpu;

    private KvmReference(GuestMemory memory, KvmVcpu cpu)
    {
        _memory = memory;
        _cpu = cpu;
    }

    public bool StopRequested => false;
    public bool HandleAccess(ref VcpuExit exit) => false;

    public static bool TryCreate(out KvmReference? reference)
    {
        reference = null;
        if (!Vm.KvmAvailable(out _)) return false;
        var memory = new GuestMemory(4UL << 20);
        Boot.TryLoad(memory, [0xF4], [], out _);
        var holder = new KvmReference[1];
        if (!KvmVcpu.TryCreate(memory, new Forward(holder), out var cpu, out _))
        {
            memory.Dispose();
            return false;
        }
        reference = new KvmReference(memory, cpu!);
        holder[0] = reference;
        return true;
    }

    private sealed class Forward(KvmReference[] holder) : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => holder[0].HandleAccess(ref exit);
    }

    /// <summary>rbx (in memory mode) already holds the guest address of the scratch area, 0x200000.
    /// Null when KVM did not run the sequence to its hlt (see <see cref="Run(byte[], ulong[], ulong)"/>);
    /// the scratch area is then left as it was given.</summary>
    public (ulong[] Regs, ulong Flags)? Run(byte[] code, ulong[] regs, ulong flags, byte[] scratch)
    {
        _memory.TryWrite(0x20_0000, scratch);
        var result = Run(code, regs, flags);
        if (result != null) _memory.TryRead(0x20_0000, scratch);
        return result;
    }

    /// <summary>
    /// Runs the sequence and its hlt; null unless the vCPU stopped at that hlt. A KVM that emulates
    /// guest instructions in software may give up on some (the kvm-pvm module of sandboxed hosts stops
    /// with KVM_EXIT_INTERNAL_ERROR on popcnt, tzcnt, lahf, bswap, ...: "INTERNAL_ERROR in batch emul"
    /// in dmesg), and what its registers then hold is no reference.
    /// </summary>
    public (ulong[] Regs, ulong Flags)? Run(byte[] code, ulong[] regs, ulong flags)
    {
        _memory.TryWrite(CodeAt, code);
        _memory.TryWrite(CodeAt + (ulong)code.Length, [0xF4]);
        for (int i = 0; i < 16; i++) _cpu.SetRegister((Reg)i, regs[i]);
        _cpu.Rflags = flags & ~0x200UL;
        _cpu.Rip = CodeAt;
        // A slice ends at its kick (KvmVcpu.cs, Slices); a sequence that has not reached its hlt in
        // 100 slices of 10 ms never will.
        var exit = _cpu.Run(KvmVcpu.MaxSliceNanoseconds);
        for (int slices = 1; exit.Reason == VcpuExitReason.Budget && slices < 100; slices++) exit = _cpu.Run(KvmVcpu.MaxSliceNanoseconds);
        if (exit.Reason != VcpuExitReason.Hlt || _cpu.Rip != CodeAt + (ulong)code.Length + 1) return null;
        var result = new ulong[16];
        for (int i = 0; i < 16; i++) result[i] = _cpu.GetRegister((Reg)i);
        return (result, _cpu.Rflags);
    }

    public void Dispose()
    {
        _cpu.Dispose();
        _memory.Dispose();
    }
}
