namespace SmartOS.Cli.Commands;

/// <summary>kstat(8), the parsable form: `kstat -p [module:instance:name:statistic]` and the
/// -m/-i/-n/-s selectors.</summary>
public static class KstatCommand
{
    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pm:i:n:s:c:");
        if (g.Error != null)
        {
            ctx.Err.WriteLine("kstat: " + g.Error);
            ctx.Err.WriteLine("Usage: kstat -p [-m module] [-i instance] [-n name] [-s statistic] [module:instance:name:statistic ...]");
            return Task.FromResult(2);
        }
        if (!g.Has("p"))
        {
            ctx.Err.WriteLine("kstat: only the parsable form (-p) is supported");
            return Task.FromResult(2);
        }
        var patterns = new List<string>(g.Operands);
        if (g.Has("m") || g.Has("i") || g.Has("n") || g.Has("s"))
            patterns.Add($"{g.Value("m")}:{g.Value("i")}:{g.Value("n")}:{g.Value("s")}");
        if (patterns.Count == 0) patterns.Add("");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool any = false;
        foreach (string pattern in patterns)
        {
            if (pattern.Split(':').Length > 4)
            {
                ctx.Err.WriteLine($"kstat: invalid statistic specification '{pattern}'");
                return Task.FromResult(2);
            }
            string text;
            try { text = ctx.Host.Kstats.FormatParsable(pattern); }
            catch (System.Text.RegularExpressions.RegexParseException e)
            {
                ctx.Err.WriteLine($"kstat: invalid regular expression in '{pattern}': {e.Message}");
                return Task.FromResult(2);
            }
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!VisibleToZone(ctx, line) || !seen.Add(line)) continue;
                ctx.Out.WriteLine(line);
                any = true;
            }
        }
        // kstat(8) exits 1 when no statistic matched.
        return Task.FromResult(any ? 0 : 1);
    }

    private static bool VisibleToZone(CommandContext ctx, string line)
    {
        if (ctx.Zone == "global") return true;
        string[] parts = line.Split(':');
        if (parts.Length < 3) return false;
        if (parts[0] == "memory_cap") return parts[2] == ctx.Zone;
        if (parts[0] != "link") return false;
        var link = ctx.Host.Mac.Find(parts[2]);
        return link != null && link.Zone == ctx.Zone;
    }
}
