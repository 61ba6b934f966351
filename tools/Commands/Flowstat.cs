using System.Globalization;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// flowstat(8), one summary: <code>flowstat [-r | -t] [-p -o field,...] [-l LINK] [FLOW]</code> prints each
/// flow's packets, bytes and drops since it was created (IERRS/OERRS count frames its maxbw dropped).
/// The interval form (-i) belongs with the daemon's real-time mode.
/// </summary>
public static class Flowstat
{
    public static Task<int> RunAsync(CommandContext ctx, string[] args) => Task.FromResult(Run(ctx, args));

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("flowstat: " + why);
        ctx.Err.WriteLine("usage: flowstat [-r | -t] [-p -o field[,...]] [-l link] [flow]");
        return 2;
    }

    private static int Run(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "rtpo:l:");
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Has("r") && g.Has("t")) return Usage(ctx, "the option -t cannot be used with -r");
        if (g.Operands.Count > 1) return Usage(ctx);
        OutputTable t =
            g.Has("r") ? new(new("flow", 12), new("ipkts", 9), new("rbytes", 9), new("ierrs", 9))
            : g.Has("t") ? new(new("flow", 12), new("opkts", 9), new("obytes", 9), new("oerrs", 9))
            : new(new("flow", 12), new("ipkts", 9), new("rbytes", 9), new("ierrs", 9), new("opkts", 9), new("obytes", 9), new("oerrs", 9));
        if (g.Has("p") && !g.Has("o")) { ctx.Err.WriteLine("flowstat: -p requires -o"); return 1; }
        string? bad = t.Select(g.Value("o"));
        if (bad != null) { ctx.Err.WriteLine($"flowstat: invalid field(s) specified: '{bad}'"); return 1; }
        bool Visible(Datalink l) => ctx.Zone == "global" || l.Zone == ctx.Zone;
        var flows = ctx.Host.Mac.Flows.Where(f => Visible(f.Link)).ToList();
        if (g.Has("l"))
        {
            var link = ctx.Host.Mac.Find(g.Value("l")!);
            if (link == null || !Visible(link)) { ctx.Err.WriteLine($"flowstat: invalid link '{g.Value("l")}'"); return 1; }
            flows = flows.Where(f => f.Link == link).ToList();
        }
        if (g.Operands.Count == 1)
        {
            var f = ctx.Host.Mac.FindFlow(g.Operands[0]);
            if (f == null || !Visible(f.Link)) { ctx.Err.WriteLine($"flowstat: invalid flow: '{g.Operands[0]}'"); return 1; }
            flows = [f];
        }
        static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        ctx.Out.Write(t.Format(flows.Select(f => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["flow"] = f.Name, ["ipkts"] = N(f.Stats.IPackets), ["rbytes"] = N(f.Stats.RBytes), ["ierrs"] = N(f.Stats.IDrops),
            ["opkts"] = N(f.Stats.OPackets), ["obytes"] = N(f.Stats.OBytes), ["oerrs"] = N(f.Stats.ODrops),
        }), g.Has("p")));
        return 0;
    }
}
