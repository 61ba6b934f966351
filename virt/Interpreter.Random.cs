using Iced.Intel;
using SmartOS.Kernel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;

namespace SmartOS.Virt;

// rdrand, rdseed and rdtscp (Interpreter.cs). The random instructions draw from the VM's seeded
// HostRandom, never from the host's entropy, so a guest run is the same run every time (Kernel.cs
// rule 1); without a source they are not advertised in CPUID and stop the guest as unimplemented.
// rdtscp reads the TSC as rdtsc does, and IA32_TSC_AUX, which the system state's wrmsr sets.
public sealed unsafe partial class Interpreter
{
    private HostRandom? _random;

    /// <summary>The source of rdrand and rdseed (Vm gives each VM one derived from the world seed);
    /// null: the instructions are absent (CPUID bits clear).</summary>
    public HostRandom? Random
    {
        get => _random;
        set => _random = value;
    }

    private static bool TryDecodeRandom(in Instruction ins, ref Op op)
    {
        switch (ins.Mnemonic)
        {
            case Mnemonic.Rdrand:
            case Mnemonic.Rdseed:
                if (!Gpr(ins.Op0Register, out op.Reg, out op.Size) || op.Reg >= 16) return false;
                op.Kind = K.CpuMisc;
                op.Imm = 0x100;
                return true;
            case Mnemonic.Rdtscp:
                // The TSC itself needs the dispatch loop's retired count: Execute's Rdtsc case.
                op.Kind = K.Rdtsc;
                op.Sub = 1;
                return true;
        }
        return false;
    }

    /// <summary>rdrand/rdseed: CF=1 and a value; the other arithmetic flags clear.</summary>
    private void ExecuteRandom(ref Op op)
    {
        if (_random == null)
            throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"#UD: rdrand/rdseed without a random source at 0x{_instrRip:x}");
        SetReg(op.Reg, op.Size, _random.NextUInt64() & Mask(op.Size));
        SetFlagBits(ArithFlags, CF);
    }
}
