using System.Runtime;

namespace SmartOS.Benchmarks;

/// <summary>
/// Warm-up until the JIT has settled, so that what a benchmark measures next is the steady state:
/// tiered compilation counts a method's calls only after 100 ms without new tier-0 code, recompiles
/// at tier 1 in the background, and what a round calls only a few times reaches the count only
/// after several rounds. Counting the methods the runtime compiles (JitInfo) tells when a round no
/// longer makes it compile.
/// </summary>
internal static class JitWarmUp
{
    /// <summary>Methods the runtime has compiled so far, in any thread.</summary>
    public static long Compiled => JitInfo.GetCompiledMethodCount();

    /// <summary>Runs <paramref name="round"/> at least <paramref name="minRounds"/> and at most
    /// <paramref name="maxRounds"/> times, until one round compiles at most
    /// <paramref name="settledMethods"/> methods; returns the rounds run.</summary>
    public static int Until(Action round, int minRounds, int maxRounds, int settledMethods)
    {
        int rounds = 0;
        while (rounds < maxRounds)
        {
            long before = Compiled;
            round();
            rounds++;
            if (rounds >= minRounds && Compiled - before <= settledMethods) break;
        }
        return rounds;
    }
}
