using System.Diagnostics;
using System.Text;
using SmartOS.Cli;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// DTrace (issue 14): the wall time of `dtrace -q -n` on a 50-clause program that ends in BEGIN, so
/// compiling, matching and enabling every clause on every link's probes, and tearing it down. The
/// datapath's cost with probes disabled and enabled is in DatapathBenchmarks.
/// </summary>
public static class DtraceBenchmarks
{
    public static void Run(TextWriter o)
    {
        var world = new World(1);
        var host = world.AddHost("h1", 4);
        var script = new StringBuilder();
        for (int i = 0; i < 50; i++)
            script.Append($"mac:::transmit /arg1 > {i} && probemod != \"x{i}\"/ {{ this->n = arg1 * 2 + {i}; @a{i}[probemod, this->n % 7] = count(); @q{i} = quantize(arg1); }}\n");
        script.Append("BEGIN { exit(0); }\n");
        string[] argv = ["dtrace", "-q", "-n", script.ToString()];
        for (int i = 0; i < 20; i++) Check(Dispatcher.Run(world, host, argv)); // the JIT
        const int runs = 200;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) Check(Dispatcher.Run(world, host, argv));
        sw.Stop();
        o.WriteLine($"dtrace: a 50-clause program on 4 links' probes compiled, enabled, run to exit and torn down: {sw.Elapsed.TotalMilliseconds * 1000 / runs:N0} us per run");
    }

    private static void Check(CommandResult r)
    {
        if (r.ExitCode != 0) throw new InvalidOperationException("dtrace failed: " + r.Stderr);
    }
}
