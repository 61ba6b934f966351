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
    /// How long CPU <paramref name="cpu"/> takes, now, for a fixed chain of integer arithmetic (a
    /// thread pinned to it; ~3 ms), in milliseconds, or null where it cannot be measured. The
    /// machine's two vCPUs do not always run at one speed (one a third slower than the other for
    /// minutes at a time): a 1-thread run on the slow one against two threads makes a speedup that
    /// says nothing about the design, so the parallel rows print both CPUs' times.
    /// </summary>
    public static double? CpuMs(int cpu)
    {
        if (!OperatingSystem.IsLinux() || cpu >= Environment.ProcessorCount) return null;
        double? result = null;
        var t = new Thread(() =>
        {
            if (!Pin(cpu)) return;
            ulong x = 1;
            Chain(ref x, 100_000); // the loop compiled and the core awake
            var sw = Stopwatch.StartNew();
            Chain(ref x, 3_000_000);
            result = sw.Elapsed.TotalMilliseconds + (x == 0 ? 1 : 0); // x used: the chain is not dropped
        }) { IsBackground = true, Name = "cpu-speed-probe" };
        t.Start();
        t.Join();
        return result;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Chain(ref ulong x, int n)
    {
        ulong v = x;
        for (int i = 0; i < n; i++) v = v * 6364136223846793005UL + 1442695040888963407UL;
        x = v;
    }

    private static bool Pin(int cpu)
    {
        ulong mask = 1UL << cpu;
        return SchedSetAffinity(0, sizeof(ulong), ref mask) == 0;
    }
}
