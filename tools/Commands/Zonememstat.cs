using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zonememstat(8) (SmartOS): each zone's memory usage against its cap. RSS is what the zone's
/// layers have charged to its memory account (Host.cs glossary, "memory"); NOVER counts the
/// charges refused for going over the cap. Inside a zone only that zone is shown.
/// </summary>
public static class Zonememstat
{
    public static readonly CommandDescriptor Descriptor = new("zonememstat", "report memory cap utilization of zones", RunAsync)
    {
        Options = "Hz:",
    };

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.Error != null || g.Operands.Count > 0)
        {
            ctx.Err.WriteLine("zonememstat: " + (g.Error ?? "too many arguments"));
            ctx.Err.WriteLine("usage: zonememstat [-H] [-z zonename]");
            return Task.FromResult(2);
        }
        var rows = new List<(string Zone, string Rss, string Cap, string Nover)>();
        if (ctx.Zone == "global") rows.Add(("global", "0", "-", "-"));
        foreach (var z in ctx.Host.Zones.Zones)
        {
            if (z.State < ZoneState.Ready) continue;
            if (ctx.Zone != "global" && z.Name != ctx.Zone) continue;
            var m = z.Memory!;
            rows.Add((z.Name, Mb(m.Usage), m.IsCapped ? Mb(m.Cap) : "-", m.Overs.ToString(CultureInfo.InvariantCulture)));
        }
        if (g.Value("z") is string want)
        {
            rows = rows.FindAll(r => r.Zone == want);
            if (rows.Count == 0)
            {
                ctx.Err.WriteLine($"zonememstat: zone '{want}' is not running");
                return Task.FromResult(1);
            }
        }
        var sb = new StringBuilder();
        if (!g.Has("H")) sb.Append(Line("ZONE", "RSS(MB)", "CAP(MB)", "NOVER"));
        foreach (var r in rows) sb.Append(Line(r.Zone, r.Rss, r.Cap, r.Nover));
        ctx.Out.Write(sb.ToString());
        return Task.FromResult(0);
    }

    private static string Mb(long bytes) => ((bytes + (1 << 20) - 1) >> 20).ToString(CultureInfo.InvariantCulture);

    private static string Line(string zone, string rss, string cap, string nover)
        => string.Create(CultureInfo.InvariantCulture, $"{zone,36} {rss,8} {cap,8} {nover,6}\n");
}
