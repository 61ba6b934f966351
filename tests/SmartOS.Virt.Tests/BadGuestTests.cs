using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>Guest code chosen to hurt the VMM: random bytes, division overflow, runaway string
/// instructions. Each must end in a stop with a reason, never in a host exception.</summary>
public class BadGuestTests
{
    [Test]
    public void Random_bytes_as_code_only_ever_stop_the_vm_with_a_reason()
    {
        var rng = new Random(7);
        var reasons = new Dictionary<VmStopReason, int>();
        for (int i = 0; i < 300; i++)
        {
            var image = new byte[4096];
            rng.NextBytes(image);
            using var vm = GuestRunner.Run(image, instructionLimit: 20_000, memory: 2UL << 20);
            Assert.That(vm.State, Is.EqualTo(VmState.Stopped), $"image {i}");
            Assert.That(vm.StopDetail, Is.Not.Empty, $"image {i}: {vm.StopReason}");
            reasons[vm.StopReason] = reasons.GetValueOrDefault(vm.StopReason) + 1;
        }
        TestContext.Out.WriteLine(string.Join(", ", reasons.Select(kv => $"{kv.Key} {kv.Value}")));
        Assert.That(reasons.Keys, Does.Contain(VmStopReason.Fault));
    }

    [TestCase(8)]
    [TestCase(4)]
    [TestCase(2)]
    [TestCase(1)]
    public void Signed_division_overflow_is_a_divide_error(int size)
    {
        using var vm = GuestRunner.Run(a =>
        {
            switch (size)
            {
                case 8: a.mov(rax, 0x8000_0000_0000_0000UL); a.cqo(); a.mov(rcx, ulong.MaxValue); a.idiv(rcx); break;
                case 4: a.mov(eax, 0x8000_0000); a.cdq(); a.mov(ecx, -1); a.idiv(ecx); break;
                case 2: a.mov(ax, 0x8000); a.cwd(); a.mov(cx, -1); a.idiv(cx); break;
                default: a.mov(ax, 0xFF80); a.mov(cl, 0xFF); a.idiv(cl); break;
            }
            a.hlt();
        });
        Assert.That(vm.StopDetail, Does.StartWith("#DE"));
    }

    [Test]
    public void A_runaway_rep_stos_faults_at_the_end_of_ram()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(rdi, 0x20_0000UL);
            a.mov(rcx, ulong.MaxValue);
            a.rep.stosq();
            a.hlt();
        }, memory: 4UL << 20);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(vm.StopDetail, Does.Contain("0x400000"));
        }
    }
}
