using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Integration.Tests;

/// <summary>
/// The TAP reader's hand-off to the loop (TapDevice.cs rule 8): in steady state neither the reader
/// thread nor the loop allocates per batch. A TAP device in a namespace of the test's own, its frames
/// from Linux's ping (bursts of echo requests to a neighbour that never answers) delivered to a bare loop.
/// Run only as root with /dev/net/tun and ip(8); otherwise ignored, with the reason.
/// </summary>
[NonParallelizable]
public class TapHandoffTests
{
    private const string LinuxAddress = "198.18.0.1";
    private const string Silent = "198.18.0.9";
    private const int Rounds = 6;
    private const int PingsPerRound = 1500;

    [Test]
    public void The_reader_hands_frames_to_the_loop_without_allocating_per_batch()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping");
        if (missing != null) Assert.Ignore(missing);

        using var ns = new NetNs();
        string name = "smh" + LinuxNet.Suffix();
        using var device = TapDevice.TryOpenIn("/run/netns/" + ns.Name, name, out string? error, offload: false);
        Assert.That(device, Is.Not.Null, error);
        LinuxNet.Must("ip", "-n", ns.Name, "addr", "add", LinuxAddress + "/24", "dev", name);
        LinuxNet.Must("ip", "-n", ns.Name, "link", "set", name, "up");
        LinuxNet.Must("ip", "-n", ns.Name, "neigh", "add", Silent, "lladdr", "02:00:00:00:00:09", "dev", name, "nud", "permanent");

        var scheduler = new Scheduler();
        using var driver = new RealTimeDriver(scheduler);
        driver.Start("tap-handoff-test");
        var loop = new LoopSide();
        device!.Start(driver, (frame, gso, csum) => loop.Frame(), () => { }, n => Interlocked.Add(ref loop.Lost, n), n => { });

        var rounds = new List<(long Reader, long Loop, long Batches, long Made, long Frames)>();
        for (int r = 0; r < Rounds; r++)
        {
            long reader = device.ReaderAllocatedBytes, batches = device.Batches, made = device.BatchesMade + device.BuffersMade;
            long seen = Interlocked.Read(ref loop.Frames);
            Interlocked.Exchange(ref loop.MarkAt, seen + 1);
            string count = PingsPerRound.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // All at once (a preload of the whole count): ping otherwise slows down without answers.
            var ping = ns.Exec("ping", "-n", "-q", "-c", count, "-l", count, "-i", "0", "-W", "1", Silent);
            Assert.That(ping.Code, Is.EqualTo(1), $"ping sends and gets no answer: {ping.Err}{ping.Out}");
            // ping's last requests may still be on their way to the loop when it exits: wait (at most
            // 10 s) until no more come.
            for (long before = -1, i = 0; i < 50 && Interlocked.Read(ref loop.Frames) != before; i++)
            {
                before = Interlocked.Read(ref loop.Frames);
                Thread.Sleep(200);
            }
            rounds.Add((device.ReaderAllocatedBytes - reader, Interlocked.Read(ref loop.LastAllocated) - Interlocked.Read(ref loop.MarkAllocated),
                device.Batches - batches, device.BatchesMade + device.BuffersMade - made, Interlocked.Read(ref loop.Frames) - seen));
        }
        device.Dispose();

        string table = string.Join("\n", rounds.Select((x, i) => $"round {i}: reader {x.Reader} B, loop {x.Loop} B, {x.Batches} batches, {x.Made} made, {x.Frames} frames"));
        TestContext.Out.WriteLine(table);
        var steady = rounds.Skip(1).ToList();
        using (Assert.EnterMultipleScope())
        {
            // Linux may drop some of ping's requests at the TAP's queue; most reach the loop.
            Assert.That(steady.Sum(x => x.Frames), Is.GreaterThanOrEqualTo((Rounds - 1) * PingsPerRound / 2), table);
            Assert.That(steady.Sum(x => x.Batches), Is.GreaterThan(Rounds - 1), table);
            // Whatever the reader allocated went into batches or buffers the loop had not yet given back.
            foreach (var x in steady.Where(x => x.Made == 0)) Assert.That(x.Reader, Is.Zero, table);
            Assert.That(steady.Count(x => x.Made == 0), Is.GreaterThan(0), "every round had to make batches: " + table);
            // The loop side: delivering batches and giving them back allocates nothing; the loop also
            // reads before it sleeps (TapDevice.cs rule 9), and then makes a batch as the reader would
            // when none has come back, which Made counts.
            foreach (var x in steady.Where(x => x.Made == 0)) Assert.That(x.Loop, Is.Zero, table);
            Assert.That(loop.Lost, Is.Zero, table);
        }
    }

    /// <summary>What the loop sees: frames, and its thread's allocated bytes at the round's first
    /// frame and at the latest one (the handler itself allocates nothing).</summary>
    private sealed class LoopSide
    {
        public long Frames, Lost, MarkAt, MarkAllocated, LastAllocated;

        public void Frame()
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            long n = Interlocked.Increment(ref Frames);
            if (n == Interlocked.Read(ref MarkAt)) Interlocked.Exchange(ref MarkAllocated, allocated);
            Interlocked.Exchange(ref LastAllocated, allocated);
        }
    }
}
