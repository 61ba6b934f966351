namespace SmartOS.Benchmarks;

/// <summary>
/// Prints the project's performance figures (STYLE.md: every performance claim has a benchmark that
/// prints it). Run with `dotnet run -c Release --project tests/SmartOS.Benchmarks [name ...]`.
/// </summary>
internal static class Program
{
    private static readonly (string Name, Action<TextWriter> Run)[] s_all =
    [
        ("datapath", DatapathBenchmarks.Run),
        ("resource-control", ResourceControlBenchmarks.Run),
        ("netstack", NetstackBenchmarks.Run),
        ("tcpwire", NetstackBenchmarks.RunTcpOverWire),
        ("vmm", VmmBenchmarks.Run),
        ("platform", PlatformBenchmarks.Run),
        ("vmdisk", VmDiskBenchmarks.Run),
        ("linux", LinuxBootBenchmarks.Run),
        ("tap", TapBenchmarks.Run),
        ("tap-lx", TapBenchmarks.RunLx),
        ("boot", BootBenchmarks.Run),
        ("storage", StorageBenchmarks.Run),
        ("dtrace", DtraceBenchmarks.Run),
        ("ztest", ZtestBenchmarks.Run),
        ("clones", ClonesBenchmarks.Run),
        ("zonefiles", ZoneFileBenchmarks.Run),
        ("zones", ZoneScaleBenchmarks.Run),
        ("parallel", ParallelBenchmarks.Run),
        ("parallel-floor", ParallelBenchmarks.RunFloor),
        ("observe", ObserveBenchmarks.Run),
        ("stp", StpBenchmarks.Run),
        ("aggr", AggrBenchmarks.Run),
        ("overlay", OverlayBenchmarks.Run),
        ("overlay-real", OverlayRealBenchmarks.Run),
    ];

    private static int Main(string[] args)
    {
        // The zones benchmark runs each size in a child process of its own (ZoneScaleBenchmarks).
        if (args is ["zones-one", string build, string n]) return ZoneScaleBenchmarks.RunOne(build, int.Parse(n, System.Globalization.CultureInfo.InvariantCulture), Console.Out);
        // Not among the figures: a bounded hunt for a difference between 1 and 2 threads (ParallelBenchmarks.Repro).
        if (args is ["parallel-repro", ..]) return ParallelBenchmarks.Repro(args[1..], Console.Out);
        if (args is ["parallel-loop", ..]) return ParallelBenchmarks.Loop(args[1..], Console.Out);
        var chosen = args.Length == 0 ? s_all : s_all.Where(b => args.Contains(b.Name)).ToArray();
        if (chosen.Length == 0)
        {
            Console.Error.WriteLine("usage: SmartOS.Benchmarks [" + string.Join("|", s_all.Select(b => b.Name)) + "] ...");
            return 2;
        }
        foreach (var (_, run) in chosen) run(Console.Out);
        return 0;
    }
}
