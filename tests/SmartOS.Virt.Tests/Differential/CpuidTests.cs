using System.Reflection;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>CPUID tells the truth (Interpreter.Cpuid.cs rule 1): every feature bit the interpreter
/// sets is in CpuFeatureCoverage's table, and what the table names exists and is tested.</summary>
public class CpuidTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    internal static (uint A, uint B, uint C, uint D) Cpuid(uint leaf, uint subleaf = 0)
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a =>
        {
            a.mov(eax, leaf);
            a.mov(ecx, subleaf);
            a.cpuid();
            a.hlt();
        }));
        cpu.Rip = Boot.ImageBase;
        var exit = cpu.Run(10);
        Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt), exit.Detail);
        return ((uint)cpu.GetRegister(Reg.Rax), (uint)cpu.GetRegister(Reg.Rbx), (uint)cpu.GetRegister(Reg.Rcx), (uint)cpu.GetRegister(Reg.Rdx));
    }

    /// <summary>The leaves and registers that hold feature bits.</summary>
    private static readonly (uint Leaf, uint Subleaf, string[] Regs)[] s_featureRegisters =
    [
        (1, 0, ["ecx", "edx"]),
        (7, 0, ["ebx", "ecx", "edx"]),
        (0xD, 0, ["eax"]),
        (0x80000001, 0, ["ecx", "edx"]),
    ];

    [Test]
    public void Every_advertised_feature_bit_is_backed_by_a_differential_test_or_a_named_test()
    {
        var tests = typeof(CpuidTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            .Where(m => m.GetCustomAttributes().Any(a => a.GetType().Name is "TestAttribute" or "TestCaseAttribute" or "TestCaseSourceAttribute"))
            .Select(m => m.Name).ToHashSet();
        var unbacked = new List<string>();
        foreach (var (leaf, subleaf, regs) in s_featureRegisters)
        {
            var r = Cpuid(leaf, subleaf);
            foreach (var reg in regs)
            {
                uint v = reg switch { "eax" => r.A, "ebx" => r.B, "ecx" => r.C, _ => r.D };
                for (int bit = 0; bit < 32; bit++)
                {
                    if ((v & (1u << bit)) == 0) continue;
                    var row = CpuFeatureCoverage.Bits.FirstOrDefault(b => b.Leaf == leaf && b.Reg == reg && b.Bit == bit);
                    if (row.Backing == null) { unbacked.Add($"leaf 0x{leaf:x} {reg} bit {bit}: not in the table"); continue; }
                    if (row.Backing.StartsWith("test:", StringComparison.Ordinal))
                    {
                        if (!tests.Contains(row.Backing[5..])) unbacked.Add($"leaf 0x{leaf:x} {reg} bit {bit}: no test {row.Backing[5..]}");
                    }
                    else if (!CpuFeatureCoverage.Mnemonics.TryGetValue(row.Backing, out var mnemonics) || IsaDifferentialTests.Forms(mnemonics).Count == 0)
                        unbacked.Add($"leaf 0x{leaf:x} {reg} bit {bit}: feature {row.Backing} has no differential forms");
                }
            }
        }
        Assert.That(unbacked, Is.Empty);
    }

    [Test]
    public void Cpuid_says_it_is_a_hypervisor()
    {
        var (_, _, c, _) = Cpuid(1);
        Assert.That(c & (1u << 31), Is.Not.Zero);
    }

    [Test]
    public void Rdtsc_counts_retired_instructions()
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a => { a.rdtsc(); a.mov(r8d, eax); a.nop(); a.rdtsc(); a.hlt(); }));
        cpu.Rip = Boot.ImageBase;
        cpu.Run(10);
        Assert.That(cpu.GetRegister(Reg.Rax) - cpu.GetRegister(Reg.R8), Is.EqualTo(3UL));
    }

    [Test]
    public void The_interpreter_runs_64_bit_code()
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a => { a.mov(rax, 0x1234_5678_9ABC_DEF0UL); a.add(rax, rax); a.hlt(); }));
        cpu.Rip = Boot.ImageBase;
        cpu.Run(10);
        Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(0x2468_ACF1_3579_BDE0UL));
    }

    [Test]
    public void Leaves_above_the_maximum_and_the_brand_string_read_as_documented()
    {
        var (max, _, _, _) = Cpuid(0);
        var (maxExt, _, _, _) = Cpuid(0x80000000);
        var brand = new List<byte>();
        for (uint leaf = 0x80000002; leaf <= 0x80000004; leaf++)
        {
            var (a, b, c, d) = Cpuid(leaf);
            foreach (var v in new[] { a, b, c, d }) brand.AddRange(BitConverter.GetBytes(v));
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Cpuid(max + 1), Is.EqualTo((0u, 0u, 0u, 0u)));
            Assert.That(Cpuid(maxExt + 1), Is.EqualTo((0u, 0u, 0u, 0u)));
            Assert.That(System.Text.Encoding.ASCII.GetString(brand.ToArray()).TrimEnd('\0'), Is.EqualTo("SmartOS virtual CPU (interpreter)"));
            Assert.That(Cpuid(0x80000008).A & 0xFFFF, Is.EqualTo(40u | (48u << 8)));
        }
    }
}
