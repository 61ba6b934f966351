using System.Text;
using Iced.Intel;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// The interpreter against the real CPU, register by register (STYLE.md: a reference no one here
/// wrote). The reference is this host's own x86-64 CPU running the same bytes in-process (NativeCpu),
/// else KVM where /dev/kvm exists (Compare says why in that order); the test output says which. Flags the architecture leaves
/// undefined are masked (SequenceGenerator's comment lists them).
/// </summary>
public class DifferentialTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    private const ulong CodeAt = 0x10_0000;
    private static readonly string[] s_names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    private const ulong ScratchAt = 0x20_0000;


    [TestCase(1, 1500)]
    [TestCase(2, 1500)]
    [TestCase(3, 1500)]
    public void Random_register_sequences_leave_the_same_registers_and_flags_as_the_real_cpu(int seed, int sequences)
        => Compare(seed, sequences, memory: false);

    [TestCase(11, 1500)]
    [TestCase(12, 1500)]
    public void Random_sequences_with_memory_operands_leave_the_same_registers_flags_and_memory_as_the_real_cpu(int seed, int sequences)
        => Compare(seed, sequences, memory: true);

    private static void Compare(int seed, int sequences, bool memory)
    {
        // This host's CPU in-process first: it is the silicon itself. KVM serves only where no native
        // page can run. A KVM is not always the CPU: the kvm-pvm module of sandboxed hosts emulates
        // guest instructions in software, and there tzcnt/lzcnt behave as bsf/bsr (a vCPU without
        // BMI1/LZCNT), popcnt stops with KVM_EXIT_INTERNAL_ERROR, and a failed 32-bit cmpxchg
        // zero-extends its register destination, which the CPU does not do.
        NativeCpu? native = null;
        KvmReference? kvm = null;
        if (NativeCpu.IsUsable(out string nativeWhy))
        {
            // A kernel that refuses writable+executable pages (SELinux execmem, PaX) leaves no native reference.
            try { native = NativeCpu.Create(); }
            catch (InvalidOperationException e) { nativeWhy = e.Message; }
        }
        if (native == null && !KvmReference.TryCreate(out kvm))
        {
            Vm.KvmAvailable(out string kvmWhy);
            Assert.Ignore($"no reference CPU: {nativeWhy}, and {kvmWhy}");
        }
        TestContext.Out.WriteLine(native != null ? "reference: this host's CPU, in-process" : $"reference: KVM (/dev/kvm; {nativeWhy})");
        int byNative = 0, byKvm = 0, unchecked_ = 0;
        (ulong[] Regs, ulong Flags)? reference(byte[] code, ulong[] regs, ulong flags, byte[] scratch)
        {
            if (native != null) { byNative++; return memory ? native.Run(code, regs, flags, scratch) : native.Run(code, regs, flags); }
            if (kvm!.Run(code, regs, flags, scratch) is { } k) { byKvm++; return k; }
            unchecked_++;
            return null;
        }
        using var guestMemory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(guestMemory, new NoDevices());
        var gen = new SequenceGenerator(seed, memory);
        var failures = new StringBuilder();
        int failed = 0, total = 0, withMemory = 0;
        try
        {
            for (int n = 0; n < sequences; n++)
            {
                var (instructions, code, undefined) = gen.Next(1 + n % 6);
                total += instructions.Count;
                foreach (var ins in instructions)
                    for (int k = 0; k < ins.OpCount; k++)
                        if (ins.GetOpKind(k) == OpKind.Memory) withMemory++;
                var regs = new ulong[16];
                for (int i = 0; i < 16; i++) regs[i] = gen.RandomValue();
                regs[4] = 0x1F_0000;
                if (memory) regs[SequenceGenerator.ScratchBase] = ScratchAt;
                ulong flags = 0x202 | (gen.RandomValue() & SequenceGenerator.Arith);
                byte[] scratchIn = gen.RandomScratch();
                byte[] wantScratch = (byte[])scratchIn.Clone();
                if (reference(code, regs, flags, wantScratch) is not { } wanted) continue;
                var (want, wantFlags) = wanted;

                guestMemory.TryWrite(ScratchAt, scratchIn);
                guestMemory.TryWrite(CodeAt, code);
                guestMemory.TryWrite(CodeAt + (ulong)code.Length, [0xF4]);
                for (int i = 0; i < 16; i++) cpu.SetRegister((Reg)i, regs[i]);
                cpu.Rflags = flags;
                cpu.Rip = CodeAt;
                var exit = cpu.Run(100);
                var got = new ulong[16];
                for (int i = 0; i < 16; i++) got[i] = cpu.GetRegister((Reg)i);
                var gotScratch = new byte[scratchIn.Length];
                guestMemory.TryRead(ScratchAt, gotScratch);
                ulong mask = SequenceGenerator.Arith & ~undefined;
                ulong gotFlags = cpu.Rflags;
                bool same = exit.Reason == VcpuExitReason.Hlt && (gotFlags & mask) == (wantFlags & mask) && gotScratch.AsSpan().SequenceEqual(wantScratch);
                for (int i = 0; i < 16; i++) same &= got[i] == want[i];
                if (same) continue;
                if (++failed > 8) continue;
                failures.AppendLine($"sequence {n} (seed {seed}): exit {exit}");
                var fmt = new NasmFormatter();
                var text = new StringOutput();
                foreach (var ins in instructions)
                {
                    fmt.Format(ins, text);
                    failures.AppendLine("    " + text.ToStringAndReset());
                }
                for (int i = 0; i < 16; i++)
                    if (got[i] != want[i]) failures.AppendLine($"    {s_names[i]}: in 0x{regs[i]:x} want 0x{want[i]:x} got 0x{got[i]:x}");
                if ((gotFlags & mask) != (wantFlags & mask))
                    failures.AppendLine($"    flags (mask 0x{mask:x}): in 0x{flags:x} want 0x{wantFlags & mask:x} got 0x{gotFlags & mask:x}");
                for (int i = 0; i < gotScratch.Length; i++)
                    if (gotScratch[i] != wantScratch[i]) failures.AppendLine($"    [rbx+{i}]: in 0x{scratchIn[i]:x2} want 0x{wantScratch[i]:x2} got 0x{gotScratch[i]:x2}");
            }
        }
        finally
        {
            kvm?.Dispose();
            native?.Dispose();
        }
        TestContext.Out.WriteLine($"{sequences} sequences, {total} instructions, {withMemory} memory-form operands (lea included), {failed} mismatches");
        TestContext.Out.WriteLine($"reference per sequence: this host's CPU {byNative}, KVM {byKvm}, none (KVM stopped short of the hlt) {unchecked_}");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(failed, Is.Zero, failures.ToString());
            Assert.That(byKvm + byNative, Is.GreaterThan(sequences / 2), "most sequences must be checked against a reference");
        }
    }
}
