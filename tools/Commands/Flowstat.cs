using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// flowstat(8): <code>flowstat [-r | -t] [-i INTERVAL] [-p -o field,...] [-l LINK] [FLOW]</code> prints each
/// flow's packets, bytes and drops since it was created (IERRS/OERRS count frames its maxbw dropped);
/// with -i it reports again every INTERVAL seconds what changed (IntervalStats) until ^C, on a
/// running host or in a scenario.
/// </summary>
public static class Flowstat
{
    /// <summary>flowstat's options (Dispatcher.NeedsRunningHost reads -i from them too).</summary>
    internal const string Options = "rtpo:l:i:";

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("flowstat: " + why);
        ctx.Err.WriteLine("usage: flowstat [-r | -t] [-i interval] [-p -o field[,...]] [-l link] [flow]");
        return 2;
    }

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Options);
        if (g.Error != null) return Task.FromResult(Usage(ctx, g.Error));
        long interval = 0;
        if (g.Has("i") && !IntervalStats.TryParse(g.Value("i")!, out interval))
        {
            ctx.Err.WriteLine($"flowstat: invalid interval value '{g.Value("i")}'");
            return Task.FromResult(1);
        }
        if (g.Has("r") && g.Has("t")) return Task.FromResult(Usage(ctx, "the option -t cannot be used with -r"));
        if (g.Operands.Count > 1) return Task.FromResult(Usage(ctx));
        OutputTable t =
            g.Has("r") ? new(new("flow", 12), new("ipkts", 9), new("rbytes", 9), new("ierrs", 9))
            : g.Has("t") ? new(new("flow", 12), new("opkts", 9), new("obytes", 9), new("oerrs", 9))
            : new(new("flow", 12), new("ipkts", 9), new("rbytes", 9), new("ierrs", 9), new("opkts", 9), new("obytes", 9), new("oerrs", 9));
        if (g.Has("p") && !g.Has("o")) { ctx.Err.WriteLine("flowstat: -p requires -o"); return Task.FromResult(1); }
        string? bad = t.Select(g.Value("o"));
        if (bad != null) { ctx.Err.WriteLine($"flowstat: invalid field(s) specified: '{bad}'"); return Task.FromResult(1); }
        bool Visible(Datalink l) => ctx.Zone == "global" || l.Zone == ctx.Zone;
        var flows = ctx.Host.Mac.Flows.Where(f => Visible(f.Link)).ToList();
        if (g.Has("l"))
        {
            var link = ctx.Host.Mac.Find(g.Value("l")!);
            if (link == null || !Visible(link)) { ctx.Err.WriteLine($"flowstat: invalid link '{g.Value("l")}'"); return Task.FromResult(1); }
            flows = flows.Where(f => f.Link == link).ToList();
        }
        if (g.Operands.Count == 1)
        {
            var f = ctx.Host.Mac.FindFlow(g.Operands[0]);
            if (f == null || !Visible(f.Link)) { ctx.Err.WriteLine($"flowstat: invalid flow: '{ConfigText.Echo(g.Operands[0])}'"); return Task.FromResult(1); }
            flows = [f];
        }
        // One report, or one every interval (the totals first, then each interval's change).
        // A flow removed meanwhile drops out of the next report.
        return IntervalStats.RunAsync(ctx, interval, t, g.Has("p"), "flow", ["ipkts", "rbytes", "ierrs", "opkts", "obytes", "oerrs"],
            () => flows.Where(f => ctx.Host.Mac.FindFlow(f.Name) == f)
                .Select(f => (f.Name, new[] { f.Stats.IPackets, f.Stats.RBytes, f.Stats.IDrops, f.Stats.OPackets, f.Stats.OBytes, f.Stats.ODrops })).ToList());
    }
}
