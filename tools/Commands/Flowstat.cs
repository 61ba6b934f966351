using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// flowstat(8), as illumos's usr/src/cmd/flowstat/flowstat.c prints it:
/// <code>
/// flowstat [-r | -t] [-i interval] [-l link] [flow]
/// flowstat [-A] [-i interval] [-p] [-o field[,...]] [-u R|K|M|G|T|P] [-l link] [flow]
/// </code>
/// Each flow's packets, bytes and drops since it was created (IERRS/OERRS count frames its maxbw
/// dropped), right-justified (OFMT_RIGHTJUST) in flowstat.c's widths, with values scaled to K, M, G ...
/// as its map_to_units does unless -u names a unit (R: raw) or -p asks for plain numbers. -A dumps
/// every statistic of each flow. With -i it reports again every interval what changed (IntervalStats)
/// until ^C, on a running host or in a scenario. -h (history from an extended-accounting log written by
/// acctadm) is refused: this project keeps no such log.
/// </summary>
public static class Flowstat
{
    public static readonly CommandDescriptor Descriptor = new("flowstat", "report flow statistics", RunAsync)
    {
        Options = Options,
        // Every interval until ^C: a running host's clock must move.
        NeedsRunningHost = static a => Getopt.Parse(a, Options).Has("i"),
    };

    /// <summary>flowstat's options (its descriptor's NeedsRunningHost reads -i from them too).</summary>
    internal const string Options = "rtApi:o:u:l:h";

    private const string UsageText = "flowstat [-r | -t] [-i interval] [-l link] [flow]\n"
        + "       flowstat [-A] [-i interval] [-p] [ -o field[,...]]\n"
        + "                [-u R|K|M|G|T|P] [-l link] [flow]\n"
        + "       flowstat -h [-a] [-d] [-F format] [-s <DD/MM/YYYY,HH:MM:SS>]\n"
        + "                [-e <DD/MM/YYYY,HH:MM:SS>] -f <logfile> [<flow>]";

    private static readonly string[] s_counters = ["ipkts", "rbytes", "ierrs", "opkts", "obytes", "oerrs"];

    private static Task<int> Die(CommandContext ctx, string message)
    {
        ctx.Err.WriteLine("flowstat: " + message);
        return Task.FromResult(1);
    }

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        // -h hands the rest of the line to the history sub-command, which has options of its own.
        int history = Array.IndexOf(args, "-h");
        if (history >= 0) args = args[..(history + 1)];
        // flowstat.c's getopt loop: die_opterr's wording, and each option at most once (die_optdup).
        var g = Getopt.Parse(args, Options);
        if (g.Error != null)
        {
            string opt = g.Error[^1..];
            return Die(ctx, g.Error.StartsWith("option requires", StringComparison.Ordinal)
                ? $"option '-{opt}' requires a value\nusage: {UsageText}"
                : $"unrecognized option '-{opt}'\nusage: {UsageText}");
        }
        foreach (string once in new[] { "r", "t", "A", "p", "i", "u" })
            if (g.Values(once).Count > 1) return Die(ctx, $"the option -{once} cannot be specified more than once");
        if (g.Has("h"))
        {
            if (g.Has("r") || g.Has("t") || g.Has("p") || g.Has("o") || g.Has("u") || g.Has("i") || g.Has("A"))
                return Die(ctx, "the option -h is not compatible with -r, -t, -p, -o, -u, -i, -A");
            return Die(ctx, "-h: flow usage history needs an extended accounting log (acctadm), which this host does not keep");
        }
        long interval = 0;
        if (g.Has("i") && !IntervalStats.TryParse(g.Value("i")!, out interval))
            return Die(ctx, $"invalid interval value '{g.Value("i")}'");
        char unit = '\0';
        if (g.Has("u"))
        {
            if (g.Value("u") is not ("R" or "K" or "M" or "G" or "T" or "P"))
                return Die(ctx, $"invalid unit value '{g.Value("u")}',unit must be R|K|M|G|T|P");
            unit = g.Value("u")![0];
        }
        bool parsable = g.Has("p");
        if (g.Has("r") && g.Has("t")) return Die(ctx, "the option -t and -r are not compatible");
        if (g.Has("u") && parsable) return Die(ctx, "the option -u and -p are not compatible");
        if (parsable && !g.Has("o")) return Die(ctx, "-p requires -o");
        if (parsable && string.Equals(g.Value("o"), "all", StringComparison.OrdinalIgnoreCase)) return Die(ctx, "\"-o all\" is invalid with -p");
        if (g.Has("A") && (g.Has("r") || g.Has("t") || parsable || g.Has("o") || g.Has("u") || g.Has("i")))
            return Die(ctx, "the option -A is not compatible with -r, -t, -p, -o, -u, -i");
        if (g.Operands.Count > 1)
        {
            ctx.Err.WriteLine(UsageText);
            return Task.FromResult(1);
        }

        var flows = ctx.Host.Mac.Flows.Where(f => ctx.Sees(f.Link)).ToList();
        if (g.Has("l"))
        {
            var link = ctx.Host.Mac.Find(g.Value("l")!);
            if (link == null || !ctx.Sees(link)) return Die(ctx, $"invalid link '{ConfigText.Echo(g.Value("l")!)}'");
            flows = flows.Where(f => f.Link == link).ToList();
        }
        if (g.Operands.Count == 1)
        {
            var f = ctx.Host.Mac.FindFlow(g.Operands[0]);
            if (f == null || !ctx.Sees(f.Link)) return Die(ctx, $"invalid flow {ConfigText.Echo(g.Operands[0])}");
            flows = [f];
        }
        if (g.Has("A"))
        {
            // print_all_stats: the flow's name, then "\t%15s\t%15llu" per statistic.
            foreach (var f in flows)
            {
                ctx.Out.WriteLine(f.Name);
                var stats = new List<KeyValuePair<string, long>>();
                f.Stats.Snapshot(stats);
                foreach (var (name, value) in stats)
                    ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"\t{name,15}\t{value,15}"));
            }
            return Task.FromResult(0);
        }

        // flow_s_fields: FLOW 15, the counters 8, right-justified.
        var t = new OutputTable(new("flow", 15), new("ipkts", 8), new("rbytes", 8), new("ierrs", 8), new("opkts", 8), new("obytes", 8), new("oerrs", 8))
        {
            RightJustify = true,
        };
        string fields = g.Has("r") ? "flow,ipkts,rbytes,ierrs" : g.Has("t") ? "flow,opkts,obytes,oerrs" : "flow,ipkts,rbytes,ierrs,opkts,obytes,oerrs";
        if (g.Has("o") && !string.Equals(g.Value("o"), "all", StringComparison.OrdinalIgnoreCase)) fields = g.Value("o")!;
        var (fatal, warning) = t.Open(fields, parsable);
        if (fatal != null) return Die(ctx, fatal);
        if (warning != null) ctx.Err.WriteLine("flowstat: warning: " + warning);

        // One report, or one every interval (the totals first, then each interval's change).
        // A flow removed meanwhile drops out of the next report.
        return IntervalStats.RunAsync(ctx, interval, t, parsable, "flow", s_counters,
            () => flows.Where(f => ctx.Host.Mac.FindFlow(f.Name) == f)
                .Select(f => (f.Name, new[] { f.Stats.IPackets, f.Stats.RBytes, f.Stats.IDrops, f.Stats.OPackets, f.Stats.OBytes, f.Stats.ODrops })).ToList(),
            n => MapToUnits(n, unit, parsable));
    }

    /// <summary>flowstat.c's map_to_units: "%.0lf" when parsable; else scaled by powers of 1000 to the
    /// largest unit that keeps the integer part non-zero (or to the -u unit), " %7.0lf" unscaled and
    /// " %6.2lf%c" scaled.</summary>
    public static string MapToUnits(long count, char unit, bool parsable)
    {
        var inv = CultureInfo.InvariantCulture;
        double num = count;
        if (parsable) return num.ToString("F0", inv);
        if (unit == '\0')
        {
            int index = 0;
            for (; (long)(num / 1000) != 0; index++) num /= 1000;
            unit = index switch { 0 => '\0', 1 => 'K', 2 => 'M', 3 => 'G', 4 => 'T', _ => 'P' };
        }
        else
        {
            switch (unit)
            {
                case 'R': unit = '\0'; break;
                case 'K': num /= 1e3; break;
                case 'M': num /= 1e6; break;
                case 'G': num /= 1e9; break;
                case 'T': num /= 1e12; break;
                default: num /= 1e15; break;
            }
        }
        return unit == '\0'
            ? " " + num.ToString("F0", inv).PadLeft(7)
            : " " + num.ToString("F2", inv).PadLeft(6) + unit;
    }
}
