using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Ztest;

/// <summary>
/// The child (ZtestState.cs): `SmartOS.Ztest --dir DIR --layout mirror|raidz1 --seed N --log FILE
/// [--ops N] [--max-seconds S]`. Creates the pool in DIR if there is none, else imports it and checks
/// that it holds the log's last durable state; prints "ready"; then runs operations until killed.
/// Exit status 3 and a message on stderr when the storage misbehaves; 2 for bad arguments.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2) named[args[i]] = args[i + 1];
        if (args.Length % 2 != 0 || !named.TryGetValue("--dir", out var dir) || !named.TryGetValue("--layout", out var layoutName)
            || !named.TryGetValue("--seed", out var seedText) || !named.TryGetValue("--log", out var logPath)
            || !ulong.TryParse(seedText, NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed))
        {
            Console.Error.WriteLine("usage: SmartOS.Ztest --dir DIR --layout mirror|raidz1 --seed N --log FILE [--ops N] [--max-seconds S]");
            return 2;
        }
        long maxOps = named.TryGetValue("--ops", out var opsText) ? long.Parse(opsText, CultureInfo.InvariantCulture) : long.MaxValue;
        // A bound in case the parent dies before it kills us; it never decides what an operation does.
        int maxSeconds = named.TryGetValue("--max-seconds", out var secondsText) ? int.Parse(secondsText, CultureInfo.InvariantCulture) : 120;
        VdevSpec layout;
        try { layout = ZtestWorkload.Layout(layoutName); }
        catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }
        try
        {
            Run(dir, layout, seed, logPath, maxOps, maxSeconds);
            return 0;
        }
        catch (ZtestFailure e)
        {
            Console.Error.WriteLine($"ztest: seed {seed}: {e.Message}");
            return 3;
        }
    }

    private static void Run(string dir, VdevSpec layout, ulong seed, string logPath, long maxOps, int maxSeconds)
    {
        var random = new HostRandom(seed);
        long now = 0;
        Func<long> clock = () => now += 1000;
        var options = new PoolOptions { Clock = clock, Random = random };
        using var log = new ZtestLog(logPath);
        Pool? pool;
        if (Pool.Import(dir).Pools.Count == 0)
        {
            Check(Pool.Create(dir, ZtestWorkload.PoolName, [layout], ZtestWorkload.VdevSize, options, out pool), "create");
            Check(ZtestState.Load(pool!, clock, out var created), "load");
            log.Append(new ZtestRecord(true, pool!.Txg, created.Digest(), 0, "create"));
        }
        else
        {
            Check(Pool.Open(dir, ZtestWorkload.PoolName, options, out pool), "import");
        }
        using (var workload = new ZtestWorkload(dir, options, pool!, LoadChecked(pool!, clock, logPath), random, log))
        {
            Console.Out.WriteLine("ready");
            Console.Out.Flush();
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed.TotalSeconds < maxSeconds)
            {
                workload.Step();
                if (workload.Operations == maxOps) Process.GetCurrentProcess().Kill();   // SIGKILL, to replay a kill exactly
            }
        }
    }

    /// <summary>The pool's state, which must be the log's last durable one (the parent appended it after its check).</summary>
    private static ZtestState LoadChecked(Pool pool, Func<long> clock, string logPath)
    {
        Check(ZtestState.Load(pool, clock, out var state), "load");
        var last = ZtestLog.Read(logPath)[^1];
        if (!last.Done || last.Txg != pool.Txg || last.Digest != state.Digest())
            throw new ZtestFailure($"opened at txg {pool.Txg} digest {state.Digest()}, but the log ends with '{last}'");
        return state;
    }

    private static void Check(StorageResult result, string what)
    {
        if (!result.IsOk) throw new ZtestFailure($"{what}: {result.Message}");
    }
}
