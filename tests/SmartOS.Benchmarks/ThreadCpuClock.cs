using System.Runtime.InteropServices;

namespace SmartOS.Benchmarks;

/// <summary>
/// The CPU time the calling thread has used (Linux CLOCK_THREAD_CPUTIME_ID), beside wall time: on a
/// machine shared with other work, wall time counts the time the benchmark waited for a core, CPU
/// time only what its thread ran. A single-threaded loop's rate per CPU second is its rate on one
/// idle core. Elsewhere <see cref="Available"/> is false and the figure is left out.
/// </summary>
internal static class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec ts);

    public static bool Available { get; } = OperatingSystem.IsLinux() && Environment.Is64BitProcess && TryNow(out _);

    /// <summary>This thread's CPU time in seconds (0 when unavailable).</summary>
    public static double Now() => Available && TryNow(out double s) ? s : 0;

    private static bool TryNow(out double seconds)
    {
        seconds = 0;
        try
        {
            if (ClockGetTime(ClockThreadCpuTimeId, out var ts) != 0) return false;
            seconds = ts.Seconds + ts.Nanoseconds / 1e9;
            return true;
        }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    }

    /// <summary>", N per CPU second" for a count over a CPU interval, or "" when unavailable.</summary>
    public static string PerCpuSecond(double count, double cpuSeconds, string unit)
        => Available && cpuSeconds > 0 ? $", {count / cpuSeconds:N0} {unit} per CPU second of its thread" : "";
}
