using Iced.Intel;
using SmartOS.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>
/// Block translation (virt/Interpreter.Blocks.cs): every guest runs twice, with hot blocks
/// translated into .NET code and without, and must give the same console bytes, the same
/// instruction count and the same final registers; translation must actually have happened.
/// The host CPU's answers for these programs are checked by CGuestTests and GccLevelsTests (which
/// run with translation on, the default).
/// </summary>
public class BlockTranslationTests
{
    private sealed record Outcome(string Console, long Retired, VmStopReason Stop, string Detail, ulong Rip, ulong[] Registers, ulong Flags,
        long BlocksTranslated, long BlocksInvalidated, long BlockRuns);

    private static Outcome Run(Func<bool, VmConfig> config, bool translate, Func<Vm, bool>? until = null, long maxGuestNs = 100 * Time.Second)
    {
        var scheduler = new Scheduler();
        using var vm = new Vm(scheduler, config(translate));
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped || until?.Invoke(vm) == true, scheduler.Now + maxGuestNs);
        var cpu = (Interpreter)vm.Vcpu!;
        return new Outcome(vm.ConsoleOutput, vm.InstructionsRetired, vm.StopReason, vm.StopDetail ?? "", cpu.Rip,
            Enumerable.Range(0, 16).Select(i => cpu.GetRegister((Reg)i)).ToArray(), cpu.Rflags,
            cpu.BlocksTranslated, cpu.BlocksInvalidated, cpu.BlockRuns);
    }

    /// <summary>Both ways; asserts they agree and that only the translating run translated.</summary>
    private static Outcome Both(Func<bool, VmConfig> config, Func<Vm, bool>? until = null, long maxGuestNs = 100 * Time.Second)
    {
        var off = Run(config, translate: false, until, maxGuestNs);
        var on = Run(config, translate: true, until, maxGuestNs);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(on.Console, Is.EqualTo(off.Console), "console bytes");
            Assert.That(on.Retired, Is.EqualTo(off.Retired), "instructions retired");
            Assert.That(on.Stop, Is.EqualTo(off.Stop));
            Assert.That(on.Detail, Is.EqualTo(off.Detail));
            Assert.That(on.Rip, Is.EqualTo(off.Rip), "rip");
            Assert.That(on.Registers, Is.EqualTo(off.Registers), "general registers");
            Assert.That(on.Flags, Is.EqualTo(off.Flags), "rflags");
            Assert.That(off.BlocksTranslated, Is.Zero, "translation off translates nothing");
            Assert.That(on.BlocksTranslated, Is.GreaterThan(0), "translation on translated blocks");
            Assert.That(on.BlockRuns, Is.GreaterThan(0), "and ran them");
        }
        TestContext.Out.WriteLine($"{on.Retired} instructions, {on.BlocksTranslated} blocks translated, {on.BlockRuns} block runs, {on.BlocksInvalidated} invalidated");
        return on;
    }

    private static Func<bool, VmConfig> Image(byte[] image, long limit = 0, long slice = 1_000_000, ulong memory = 4UL << 20)
        => translate => new()
        {
            Image = image, MemorySize = memory, InstructionLimit = limit, SliceInstructions = slice,
            Backend = VmBackend.Interpreter, TranslateBlocks = translate,
        };

    private static IEnumerable<TestCaseData> CGuests()
    {
        yield return new TestCaseData("sieve.c", 0);
        yield return new TestCaseData("sieve.c", 2);
        yield return new TestCaseData("sieve.c", 3);
        yield return new TestCaseData("selftest.c", 0);
        yield return new TestCaseData("selftest.c", 2);
        yield return new TestCaseData("fpmath.c", 2);
    }

    [TestCaseSource(nameof(CGuests))]
    public void A_c_guest_prints_the_same_bytes_in_the_same_instructions_translated_or_not(string program, int opt)
    {
        string[] defines = program == "sieve.c" ? ["N=30000", "ROUNDS=3"] : [];
        var on = Both(Image(CGuestTests.Build(program, opt, defines)));
        Assert.That(on.Stop, Is.EqualTo(VmStopReason.PoweredOff), on.Detail);
        if (program == "sieve.c") Assert.That(on.Console, Is.EqualTo(CGuestTests.SieveExpected(30000, 3)));
    }

    /// <summary>Slices of a prime number of instructions and a limit that is not a multiple of
    /// anything: budgets end inside what would be a block, which must then not be entered.</summary>
    [TestCase(997L, 1_234_567L)]
    [TestCase(1L << 20, 777_777L)]
    [TestCase(13L, 100_003L)]
    public void A_budget_or_limit_that_ends_inside_a_block_stops_at_the_same_instruction(long slice, long limit)
    {
        var on = Both(Image(CGuestTests.Build("sieve.c", 2, "N=30000", "ROUNDS=3"), limit, slice));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(on.Stop, Is.EqualTo(VmStopReason.OutOfInstructions), on.Detail);
            Assert.That(on.Retired, Is.EqualTo(limit));
        }
    }

    /// <summary>A loop that rewrites the immediate of its own add after 3000 passes: the translated
    /// block holding it must be dropped and the new byte executed from the next pass on.</summary>
    [Test]
    public void Self_modifying_code_inside_a_hot_block_takes_effect_on_the_next_pass()
    {
        byte[] image = GuestRunner.Assemble(a =>
        {
            var top = a.CreateLabel();
            var skip = a.CreateLabel();
            a.xor(edx, edx);
            a.mov(ecx, 5000);
            a.lea(rbx, __[top]);
            a.Label(ref top);
            a.add(rdx, 1); // 48 83 c2 01: the immediate is the byte at top + 3
            a.cmp(ecx, 2000);
            a.jne(skip);
            a.mov(__byte_ptr[rbx + 3], 5);
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        var on = Both(Image(image));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(on.Stop, Is.EqualTo(VmStopReason.Halted), on.Detail);
            // Passes 1..3001 add 1 (the store is in pass 3001, after its add), passes 3002..5000 add 5.
            Assert.That(on.Registers[(int)Reg.Rdx], Is.EqualTo(3001UL + 1999 * 5));
            Assert.That(on.BlocksInvalidated, Is.GreaterThan(0), "the block over the rewritten byte was dropped");
        }
    }

    /// <summary>A hot loop whose load walks off the end of RAM: the fault is the interpreter's, at
    /// the same instruction and count, with the flags of the instructions before it.</summary>
    [Test]
    public void A_fault_inside_a_translated_block_stops_at_the_same_instruction_with_the_same_state()
    {
        byte[] image = GuestRunner.Assemble(a =>
        {
            var top = a.CreateLabel();
            a.mov(esi, 0x200000);
            a.xor(eax, eax);
            a.Label(ref top);
            a.add(rax, __qword_ptr[rsi]);
            a.add(rsi, 64);
            a.cmp(rsi, 0x100);
            a.mov(__qword_ptr[rsi - 8], rax);
            a.jmp(top);
        });
        var on = Both(Image(image));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(on.Stop, Is.EqualTo(VmStopReason.Fault));
            Assert.That(on.Detail, Does.Contain("outside RAM"));
            Assert.That(on.Registers[(int)Reg.Rsi], Is.EqualTo(4UL << 20), "the load at the first byte past RAM faulted");
        }
    }

    /// <summary>Debian's kernel on the PC platform (timer, APIC and UART interrupts, paging, the
    /// whole system): the first 300 million instructions print the same console bytes and end in
    /// the same state with translation as without.</summary>
    [Test]
    public void The_linux_boot_prints_the_same_console_bytes_translated_or_not()
    {
        var (kernel, initrd) = LinuxBootTests.RealKernel();
        var on = Both(translate => new VmConfig
        {
            Name = "linux", Kernel = kernel, Initrd = initrd,
            Cmdline = "console=ttyS0 earlyprintk=serial,ttyS0 smartos.ip=10.0.0.2/24",
            MemorySize = 256UL << 20, InstructionLimit = 300_000_000,
            Backend = VmBackend.Interpreter, TranslateBlocks = translate,
        }, maxGuestNs: 600 * Time.Second);
        Assert.That(on.Console, Does.Contain("Linux version"));
    }
}
