using System.Diagnostics;
using System.Runtime.InteropServices;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Ztest;

/// <summary>What one parent run asks for: the layout, the seed of its waits and of every child, how many kills, how long each child runs.</summary>
public sealed record ZtestOptions(string Layout, ulong Seed, int Kills, int MinRunMilliseconds = 100, int MaxRunMilliseconds = 800)
{
    /// <summary>How long a child may take to start and import before it is counted as a failure.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>What the runs did: kills, operations and txgs the children committed, and every failure found.</summary>
/// <summary>
/// What the runs did: kills, operations and txgs the children committed, and every failure found.
/// KillsInCommit counts kills that fell between an intent and its done; OpenedAtNewTxg those of them
/// after which the pool opened at the txg being committed (its uberblock had reached a label).
/// </summary>
public sealed record ZtestResult(int Kills, long Operations, long Txgs, int KillsInCommit, int OpenedAtNewTxg, IReadOnlyList<string> Failures)
{
    /// <summary>fsyncs the children completed through their datasets' intent logs, without a txg (rule 6).</summary>
    public int LogSyncs { get; init; }
}

/// <summary>
/// The parent (ZtestState.cs): starts the child on a pool directory, kills it with SIGKILL after a
/// random time, imports, scrubs and reads the pool back, and holds it to the log (rules 2 and 3).
/// Only the children it starts are killed; each is waited for.
/// </summary>
public static class ZtestRunner
{
    /// <summary>Runs options.Kills children one after another on a pool in workDir (which the caller creates and removes).</summary>
    public static ZtestResult Run(string workDir, ZtestOptions options)
    {
        string poolDir = Path.Combine(workDir, "pool");
        string logPath = Path.Combine(workDir, "ztest.log");
        Directory.CreateDirectory(poolDir);
        var random = new HostRandom(options.Seed);
        var failures = new List<string>();
        long operations = 0, txgs = 0;
        int kills = 0, inCommit = 0, atNew = 0;
        // Under a heavy load a child may spend its whole run starting, so that the requested kills test no
        // log replay: then up to as many kills again are made, until one fsync has gone through a log.
        for (int run = 0; failures.Count == 0 && (run < options.Kills || (run < 2 * options.Kills && LogSyncs(logPath) == 0)); run++)
        {
            ulong childSeed = HostRandom.Derive(options.Seed, "run" + run);
            string where = $"layout {options.Layout} seed {options.Seed} run {run} (child seed {childSeed})";
            int before = ZtestLog.Read(logPath).Count;
            string? problem = RunChild(poolDir, logPath, options, childSeed, random.Next(options.MaxRunMilliseconds - options.MinRunMilliseconds + 1) + options.MinRunMilliseconds);
            if (problem is not null) { failures.Add($"{where}: {problem}"); break; }
            kills++;
            var records = ZtestLog.Read(logPath);
            long runOps = 0;
            for (int i = before; i < records.Count; i++) if (records[i].Done) runOps = Math.Max(runOps, records[i].Operations);
            operations += runOps;
            problem = Verify(poolDir, logPath, out bool pending, out bool opened);
            // A child's operations follow from its seed and the pool it opened (ZtestState.cs rule 4), so the
            // seeds and operation counts of the runs let `--ops` replay a failure.
            if (problem is not null) failures.Add($"{where}, killed after about {runOps} operations: {problem}");
            if (pending) inCommit++;
            if (opened) atNew++;
        }
        // Every txg after the pool's first (txg 1, its creation) was committed by a child.
        var all = ZtestLog.Read(logPath);
        int last = all.FindLastIndex(r => r.Done);
        if (last >= 0) txgs = all[last].Txg - 1;
        return new ZtestResult(kills, operations, txgs, inCommit, atNew, failures) { LogSyncs = LogSyncs(logPath) };
    }

    /// <summary>The fsyncs in the log that went through an intent log rather than a commit.</summary>
    private static int LogSyncs(string logPath) =>
        ZtestLog.Read(logPath).Count(r => r.Done && r.What.StartsWith("fsync ", StringComparison.Ordinal) && !r.What.EndsWith("(commit)", StringComparison.Ordinal));

    /// <summary>The dotnet host that runs the child: the one running us, found from the runtime's directory.</summary>
    private static string DotnetHost()
    {
        string? fromCli = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (fromCli is not null && File.Exists(fromCli)) return fromCli;
        // .../dotnet/shared/Microsoft.NETCore.App/<version>/ -> .../dotnet/dotnet
        var runtime = new DirectoryInfo(RuntimeEnvironment.GetRuntimeDirectory().TrimEnd('/'));
        string? root = runtime.Parent?.Parent?.Parent?.FullName;
        string candidate = root is null ? "" : Path.Combine(root, "dotnet");
        return File.Exists(candidate) ? candidate : "dotnet";
    }

    /// <summary>Starts a child, waits for "ready", waits runMs more, kills it; an error message if it misbehaved.</summary>
    private static string? RunChild(string poolDir, string logPath, ZtestOptions options, ulong seed, int runMs)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { typeof(ZtestRunner).Assembly.Location, "--dir", poolDir, "--layout", options.Layout,
                                    "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--log", logPath })
            start.ArgumentList.Add(arg);
        using var child = Process.Start(start) ?? throw new InvalidOperationException("could not start the ztest child");
        var stderr = child.StandardError.ReadToEndAsync();
        try
        {
            var ready = child.StandardOutput.ReadLineAsync();
            if (!ready.Wait(options.StartTimeout) || ready.Result != "ready")
            {
                Stop(child);
                return $"the child did not start (exit {(child.HasExited ? child.ExitCode : -1)}): {stderr.Result.Trim()}";
            }
            if (child.WaitForExit(runMs)) return $"the child exited by itself with status {child.ExitCode}: {stderr.Result.Trim()}";
            child.Kill();   // SIGKILL: no finally block, no flush, no exit handler runs in the child
            child.WaitForExit();
            return null;
        }
        finally
        {
            Stop(child);
        }
    }

    private static void Stop(Process child)
    {
        if (!child.HasExited) child.Kill();
        child.WaitForExit();
    }

    /// <summary>
    /// Imports the pool by its labels, scrubs it, reads every dataset and file, and holds the result to
    /// the log (ZtestState.cs rules 2, 3); on success appends the state found as the new durable one.
    /// </summary>
    public static string? Verify(string poolDir, string logPath) => Verify(poolDir, logPath, out _, out _);

    /// <summary>Verify, telling whether the kill fell inside a commit (pending) and the pool opened at its new txg.</summary>
    public static string? Verify(string poolDir, string logPath, out bool pending, out bool openedAtNew)
    {
        pending = openedAtNew = false;
        var records = ZtestLog.Read(logPath);
        int lastDone = records.FindLastIndex(r => r.Done);
        if (lastDone < 0) return "the log has no durable state";
        var durable = records[lastDone];
        ZtestRecord? intent = null;
        for (int i = lastDone + 1; i < records.Count; i++)
        {
            if (records[i].Done || intent is not null) return $"the log is out of order after record {lastDone}";
            intent = records[i];
        }
        pending = intent is not null;
        long now = 0;
        Func<long> clock = () => now += 1000;
        // The txg the labels lead to, before Open may commit one more (an exported pool is marked active again).
        var scan = Pool.Import(poolDir);
        long found = scan.Pools.Count == 1 ? scan.Pools[0].Txg : -1;
        var opened = Pool.Open(poolDir, ZtestWorkload.PoolName, new PoolOptions { Clock = clock, Random = new HostRandom(0) }, out var pool);
        if (!opened.IsOk) return $"import failed: {opened.Message}";
        using (pool)
        {
            var scrub = pool!.Scrub();
            if (scrub.Errors != 0 || pool.DataErrors != 0) return $"scrub found {scrub.Errors} errors ({pool.DataErrors} data errors)";
            foreach (var top in pool.Vdevs)
                foreach (var leaf in top.Leaves)
                    if (leaf.ReadErrors + leaf.WriteErrors + leaf.ChecksumErrors + leaf.RepairedBytes != 0)
                        return $"scrub: {Path.GetFileName(leaf.Path)} read {leaf.ReadErrors} write {leaf.WriteErrors} cksum {leaf.ChecksumErrors} repaired {leaf.RepairedBytes} bytes";
            var loaded = ZtestState.Load(pool, clock, out var state);
            if (!loaded.IsOk) return $"reading the pool back failed: {loaded.Message}";
            string digest = state.Digest();
            bool atDurable = found == durable.Txg && digest == durable.Digest;
            // An fsync's intent (0 txgs, rule 6) ends at the same txg, with its dataset's log replayed.
            bool atIntent = intent is { } next && digest == next.Digest
                            && (next.Txg == 0 ? found == durable.Txg : found > durable.Txg && found <= durable.Txg + next.Txg);
            if (!atDurable && !atIntent)
                return $"opened at txg {found} digest {digest}; allowed: txg {durable.Txg} {durable.Digest} ('{durable.What}')"
                       + (intent is { } i ? $" or txg {(i.Txg == 0 ? durable.Txg : durable.Txg + 1)}..{durable.Txg + i.Txg} {i.Digest} ('{i.What}')" : " only");
            openedAtNew = atIntent && !atDurable;
            using var log = new ZtestLog(logPath);
            log.Append(new ZtestRecord(true, pool.Txg, digest, 0, "recovered"));
        }
        return null;
    }
}
