using System.Diagnostics;
using SmartOS.Ztest;

namespace SmartOS.Benchmarks;

/// <summary>
/// Crash safety at scale (tests/SmartOS.Ztest/ZtestState.cs): for each layout, children running random
/// pool, dataset and file operations are killed with SIGKILL at random moments, 60 times on one pool
/// that carries on from kill to kill, each kill followed by an import, a scrub and a full read-back
/// against the durable log. Prints kills, operations, txgs committed, failures (must be 0) and time.
/// </summary>
public static class ZtestBenchmarks
{
    private const int KillsPerLayout = 60;

    public static void Run(TextWriter o)
    {
        o.WriteLine("ztest: SIGKILL at random moments, then import + scrub + read-back of every dataset and file");
        int kills = 0, failures = 0;
        foreach (var (layout, seed) in new[] { ("mirror", 1001UL), ("raidz1", 1002UL) })
        {
            string dir = Path.Combine(Path.GetTempPath(), $"smartos-ztest-bench-{Environment.ProcessId}-{layout}");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            Directory.CreateDirectory(dir);
            try
            {
                var sw = Stopwatch.StartNew();
                var result = ZtestRunner.Run(dir, new ZtestOptions(layout, seed, KillsPerLayout, MinRunMilliseconds: 50, MaxRunMilliseconds: 1500));
                sw.Stop();
                o.WriteLine($"  {layout,-7} seed {seed}: {result.Kills} kills, {result.Operations} operations, {result.Txgs} txgs committed, "
                            + $"{result.KillsInCommit} kills inside a commit or fsync ({result.OpenedAtNewTxg} opened at its new txg), "
                            + $"{result.LogSyncs} fsyncs through the intent log, "
                            + $"{result.Failures.Count} failures, {sw.Elapsed.TotalSeconds:F1} s");
                foreach (var failure in result.Failures) o.WriteLine("    FAILED " + failure);
                kills += result.Kills;
                failures += result.Failures.Count;
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
        o.WriteLine($"  total: {kills} kills, {failures} failures");
    }
}
