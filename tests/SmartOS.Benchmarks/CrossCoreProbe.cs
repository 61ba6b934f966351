using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SmartOS.Benchmarks;

/// <summary>
/// What it costs this machine, now, to move one cache line from CPU 0 to CPU 1 and back: two
/// threads, each pinned to its CPU (sched_setaffinity), pass a counter through one line, each
/// writing only when it has read the other's last value. The round trip is the price every byte a
/// parallel run hands from one host's thread to the other pays (kernel/Timeline.cs, "What this
/// machine allows"). On this machine kind it is not fixed: measured 150-180 ns at some times and
/// 450-530 ns at others, minutes apart, as the hypervisor places the two vCPUs (the parallel
/// benchmark's hand-over cost follows it). Linux only; elsewhere, or on one CPU, null.
/// </summary>
internal static class CrossCoreProbe
{
    private const int RoundTrips = 50_000;

    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private sealed class Line
    {
        // The middle of three lines: nothing else of this process shares its line.
        [FieldOffset(64)] public long Value;
    }

    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SchedSetAffinity(int pid, nint size, ref ulong mask);

    /// <summary>The mean round trip in nanoseconds, or null where it cannot be measured.</summary>
    public static double? RoundTripNs()
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount < 2) return null;
        var line = new Line();
        bool pinned = true;
        var echo = new Thread(() =>
        {
            if (!Pin(1)) Volatile.Write(ref pinned, false);
            for (long i = 1; i <= 2L * RoundTrips; i += 2)
            {
                // Bounded: the other side stops passing if it could not pin itself.
                while (Volatile.Read(ref line.Value) != i)
                    if (!Volatile.Read(ref pinned)) return;
                Volatile.Write(ref line.Value, i + 1);
            }
        }) { IsBackground = true, Name = "cross-core-echo" };
        double? result = null;
        var self = new Thread(() =>
        {
            if (!Pin(0)) { Volatile.Write(ref pinned, false); return; }
            var sw = Stopwatch.StartNew();
            for (long i = 1; i <= 2L * RoundTrips; i += 2)
            {
                Volatile.Write(ref line.Value, i);
                while (Volatile.Read(ref line.Value) != i + 1)
                    if (!Volatile.Read(ref pinned)) return;
            }
            result = sw.Elapsed.TotalNanoseconds / RoundTrips;
        }) { IsBackground = true, Name = "cross-core-probe" };
        echo.Start();
        self.Start();
        self.Join();
        Volatile.Write(ref pinned, false); // releases the echo if the probe stopped early
        echo.Join();
        return result;
    }

    /// <summary>
    /// How long CPU 0 and CPU 1 each take, now, to follow a chain of 300,000 dependent loads through
    /// 4 MiB (a thread pinned to each in turn; a few ms), in milliseconds, or null where it cannot be
    /// measured. The machine's two vCPUs do not always run alike: for minutes at a time one does the
    /// simulation's work a third slower than the other, while a chain of arithmetic runs at one speed
    /// on both (measured), so the slowness is in the caches and memory the host's other tenants
    /// share. A 1-thread run on the slow one against two threads makes a speedup that says nothing
    /// about the design, so the parallel rows print both CPUs' times.
    /// </summary>
    public static (double Cpu0, double Cpu1)? ChaseMs() =>
        ChaseMs(0) is double c0 && ChaseMs(1) is double c1 ? (c0, c1) : null;

    private static double? ChaseMs(int cpu)
    {
        if (!OperatingSystem.IsLinux() || cpu >= Environment.ProcessorCount) return null;
        var chain = s_chain ??= Chain();
        double? result = null;
        var t = new Thread(() =>
        {
            if (!Pin(cpu)) return;
            int at = Follow(chain, 0, 20_000); // the loop compiled and the chain's pages touched
            var sw = Stopwatch.StartNew();
            at = Follow(chain, at, 300_000);
            result = sw.Elapsed.TotalMilliseconds + (at < 0 ? 1 : 0); // at used: the loads are not dropped
        }) { IsBackground = true, Name = "cpu-speed-probe" };
        t.Start();
        t.Join();
        return result;
    }

    private static int[]? s_chain;

    /// <summary>One cycle through 1 Mi ints in a scrambled order (Sattolo's shuffle, a fixed LCG):
    /// each load's address depends on the last, and the hardware cannot guess the next.</summary>
    private static int[] Chain()
    {
        const int n = 1 << 20;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        ulong x = 0x9E3779B97F4A7C15UL;
        for (int i = n - 1; i > 0; i--)
        {
            x = x * 6364136223846793005UL + 1442695040888963407UL;
            int j = (int)((x >> 33) % (ulong)i);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var next = new int[n];
        for (int i = 0; i < n; i++) next[order[i]] = order[(i + 1) % n];
        return next;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int Follow(int[] chain, int at, int steps)
    {
        for (int i = 0; i < steps; i++) at = chain[at];
        return at;
    }

    private static bool Pin(int cpu)
    {
        ulong mask = 1UL << cpu;
        return SchedSetAffinity(0, sizeof(ulong), ref mask) == 0;
    }
}
