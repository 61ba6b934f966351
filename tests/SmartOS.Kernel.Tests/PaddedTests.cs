using System.Runtime.CompilerServices;

namespace SmartOS.Kernel.Tests;

/// <summary>kernel/Padded.cs: a value a cache line away from anything outside it.</summary>
public class PaddedTests
{
    private struct Three
    {
        public long A;
        public int B;
        public bool C;
    }

    [Test]
    public void The_value_has_a_cache_line_before_and_after_it()
    {
        var p = new Padded<Three> { Value = new Three { A = 1, B = 2, C = true } };
        long before = Unsafe.ByteOffset(ref Unsafe.As<Padded<Three>, byte>(ref p), ref Unsafe.As<Three, byte>(ref p.Value));
        long after = Unsafe.SizeOf<Padded<Three>>() - before - Unsafe.SizeOf<Three>();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Unsafe.SizeOf<CacheLine>(), Is.EqualTo(64));
            Assert.That(before, Is.GreaterThanOrEqualTo(64), "padding before the value");
            Assert.That(after, Is.GreaterThanOrEqualTo(64), "padding after the value");
            Assert.That((p.Value.A, p.Value.B, p.Value.C), Is.EqualTo((1L, 2, true)));
        }
    }

    [Test]
    public unsafe void The_first_aligned_element_of_a_pinned_array_starts_a_cache_line()
    {
        // Several arrays, so that some start mid-line: the answer is an index, not a byte offset.
        for (int i = 0; i < 8; i++)
        {
            var bytes = GC.AllocateArray<byte>(200 + i, pinned: true);
            var longs = GC.AllocateArray<long>(20 + i, pinned: true);
            int b = CacheLine.FirstAligned(bytes), l = CacheLine.FirstAligned(longs);
            using (Assert.EnterMultipleScope())
            {
                Assert.That((long)Unsafe.AsPointer(ref bytes[b]) % CacheLine.Size, Is.EqualTo(0L));
                Assert.That((long)Unsafe.AsPointer(ref longs[l]) % CacheLine.Size, Is.EqualTo(0L));
                Assert.That(b, Is.InRange(0, CacheLine.Size - 1));
                Assert.That(l, Is.InRange(0, CacheLine.Size / sizeof(long) - 1));
            }
        }
    }

    [Test]
    public void A_timer_carries_a_cache_line_of_padding_on_each_side_of_what_it_writes()
    {
        // Two hosts' timers made one after the other (a wire's two ends) then never share a line
        // that both threads write, whichever order the collector keeps them in.
        var s = new Scheduler();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var timer = new KTimer(s, _ => { });
        long size = GC.GetAllocatedBytesForCurrentThread() - before;
        timer.ArmAt(5);

        Assert.That(size, Is.GreaterThanOrEqualTo(2 * 64 + 4 * sizeof(long)), "a timer's size includes its padding");
    }
}
