using System.Globalization;
using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Cli.Commands;

/// <summary>
/// kstat(8) as illumos's usr/src/cmd/stat/kstat/kstat.c prints it:
/// <code>
/// kstat [-Cjlpq] [-T d|u] [-c class] [-m module] [-i instance] [-n name] [-s statistic] [interval [count]]
/// kstat [-Cjlpq] [-T d|u] [-c class] [module[:instance[:name[:statistic]]] ...] [interval [count]]
/// </code>
/// The default form prints a header per kstat ("module: %-30.30s  instance: %-6d" / "name:   %-30.30s
/// class:    %-.30s"), then a tab, the statistic padded to 30 and two spaces, the value, and a blank line
/// after each kstat. -p prints module:instance:name:statistic, a tab and the value (and the class as a
/// statistic); -C separates the value by a colon; -l lists names only; -j prints JSON; -q prints nothing
/// and only sets the exit status. Every kstat carries crtime and snaptime, in seconds of the host's
/// clock with nine decimals. Statistics and kstats sort as kstat.c sorts them (strcasecmp).
/// Each selector is matched in turn against the whole chain, so a kstat two selectors match prints
/// twice, as on illumos. The exit status is 0 when a statistic matched, 1 when none did, 2 on a usage
/// error. With an interval, the report repeats every interval seconds of the host's clock (count times,
/// or until ^C), separated by a blank line; -T prints the host clock's time before each report (u: seconds
/// since the epoch, d: as date(1)), the clock whose second 0 is the epoch, as in this project's pcaps.
/// </summary>
public static class KstatCommand
{
    private const string OptionString = "h?CqjlpT:m:i:n:s:c:";

    public static readonly CommandDescriptor Descriptor = new("kstat", "display kernel statistics", RunAsync)
    {
        Options = OptionString,
        NeedsRunningHost = Repeats,
    };

    private const string Usage = """
        Usage:
        kstat [ -Cjlpq ] [ -T d|u ] [ -c class ]
              [ -m module ] [ -i instance ] [ -n name ] [ -s statistic ]
              [ interval [ count ] ]
        kstat [ -Cjlpq ] [ -T d|u ] [ -c class ]
              [ module[:instance[:name[:statistic]]] ... ]
              [ interval [ count ] ]
        """;

    private sealed record Selector(string Module, string Instance, string Name, string Statistic);

    private enum Form { Default, Parsable, Json }

    private sealed class Options
    {
        public Form Form;
        public bool Colon, NamesOnly, Quiet;
        public char Timestamp;
        public string Class = "*";
        public List<Selector> Selectors = [];
        public long Interval;
        public long Count = 1;
    }

    /// <summary>Whether a kstat command line repeats (an interval operand): it then needs a running
    /// host whose clock moves (Dispatcher rule 4).</summary>
    public static bool Repeats(string[] args)
        => TryParse(args, out var o, out _) && o!.Interval > 0;

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length > 0 && args[0] is "-h" or "-?")
        {
            ctx.Err.WriteLine(Usage);
            return 0;
        }
        if (!TryParse(args, out var o, out string? error))
        {
            if (error != null) ctx.Err.WriteLine(error);
            ctx.Err.WriteLine(Usage);
            return 2;
        }
        bool matched = false;
        long remaining = o!.Count;
        while (true)
        {
            var text = new StringBuilder();
            try { matched |= Report(ctx, o, text); }
            catch (System.Text.RegularExpressions.RegexParseException e)
            {
                // kstat.c reports regcomp's message, then the usage, and exits 2.
                ctx.Err.WriteLine("kstat: " + e.Message);
                ctx.Err.WriteLine(Usage);
                return 2;
            }
            ctx.Out.Write(text.ToString());
            if (o.Interval <= 0 || (remaining > 0 && --remaining == 0)) break;
            ctx.Out.Flush();
            try { await LoopSynchronizationContext.Delay(ctx.Host.Scheduler, o.Interval, ctx.Cancel); }
            catch (OperationCanceledException) { break; }
            ctx.Out.Write('\n');
        }
        return matched ? 0 : 1;
    }

    private static bool TryParse(string[] args, out Options? options, out string? error)
    {
        options = null;
        error = null;
        var g = Getopt.Parse(args, OptionString);
        if (g.Error != null) { error = "kstat: " + g.Error; return false; }
        if (g.Has("h") || g.Has("?")) return false;
        var o = new Options();
        if (g.Has("p") || g.Has("C") || g.Has("l")) o.Form = Form.Parsable;
        if (g.Has("j")) o.Form = Form.Json;
        o.Colon = g.Has("C");
        o.NamesOnly = g.Has("l");
        o.Quiet = g.Has("q");
        if (o.Quiet && (g.Has("j") || o.Form == Form.Parsable)) { error = "-q and -lpj are mutually exclusive"; return false; }
        if (g.Has("T"))
        {
            string t = g.Value("T")!;
            if (t.Length == 0 || (t[0] != 'd' && t[0] != 'u')) return false;
            o.Timestamp = t[0];
        }
        if (g.Has("c")) o.Class = g.Value("c")!;
        bool named = g.Has("m") || g.Has("i") || g.Has("n") || g.Has("s");
        int numbers = 0;
        foreach (string operand in g.Operands)
        {
            if (operand.Length > 0 && operand.All(char.IsAsciiDigit))
            {
                if (!ulong.TryParse(operand, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) || n > int.MaxValue)
                {
                    error = numbers == 0 ? "Interval is too large" : "Count is too large";
                    return false;
                }
                if (n < 1)
                {
                    error = numbers == 0 ? "Interval must be an integer >= 1" : "Count must be an integer >= 1";
                    return false;
                }
                if (numbers == 0) { o.Interval = (long)n * Time.Second; o.Count = -1; }
                else if (numbers == 1) o.Count = (long)n;
                else return false;
                numbers++;
                continue;
            }
            string[] f = operand.Split(':');
            if (f.Length > 4) return false;
            string F(int i) => i < f.Length && f[i].Length > 0 ? f[i] : "*";
            o.Selectors.Add(new Selector(F(0), F(1), F(2), F(3)));
        }
        if (o.Selectors.Count > 0 && named)
        {
            error = "[module[:instance[:name[:statistic]]]] and -m -i -n -s are mutually exclusive";
            return false;
        }
        if (o.Selectors.Count == 0)
            o.Selectors.Add(new Selector(g.Value("m") ?? "*", g.Value("i") ?? "*", g.Value("n") ?? "*", g.Value("s") ?? "*"));
        options = o;
        return true;
    }

    /// <summary>Writes one report; returns whether any statistic matched.</summary>
    private static bool Report(CommandContext ctx, Options o, StringBuilder text)
    {
        var kstats = ctx.Host.Kstats;
        if (o.Timestamp != 0) text.Append(Timestamp(ctx.Host.Scheduler.Now, o.Timestamp)).Append('\n');
        bool matched = false;
        bool json = o.Form == Form.Json;
        if (json) text.Append('[');
        var sorted = kstats.Sorted();
        var printed = new List<(Kstat K, List<KstatValue> Values)>();
        foreach (var sel in o.Selectors)
        {
            foreach (var k in sorted)
            {
                if (!Glob.Match(sel.Module, k.Module) || !Glob.Match(sel.Name, k.Name)
                    || !Glob.Match(sel.Instance, k.Instance.ToString(CultureInfo.InvariantCulture))
                    || !Glob.Match(o.Class, k.Class) || !VisibleToZone(ctx, k))
                    continue;
                var values = kstats.Values(k, withClass: o.Form == Form.Parsable).FindAll(v => Glob.Match(sel.Statistic, v.Name));
                if (values.Count == 0) continue;
                matched = true;
                if (!o.Quiet) printed.Add((k, values));
            }
        }
        for (int i = 0; i < printed.Count; i++)
        {
            var (k, values) = printed[i];
            switch (o.Form)
            {
                case Form.Default:
                    text.Append(CultureInfo.InvariantCulture, $"module: {Clip(k.Module),-30}  instance: {k.Instance,-6}\n");
                    text.Append(CultureInfo.InvariantCulture, $"name:   {Clip(k.Name),-30}  class:    {Clip(k.Class)}\n");
                    foreach (var v in values) text.Append(CultureInfo.InvariantCulture, $"\t{v.Name,-30}  {v.Format()}\n");
                    text.Append('\n');
                    break;
                case Form.Parsable:
                    foreach (var v in values)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"{k.Module}:{k.Instance}:{k.Name}:{v.Name}");
                        if (!o.NamesOnly) text.Append(o.Colon ? ':' : '\t').Append(v.Format());
                        text.Append('\n');
                    }
                    break;
                case Form.Json:
                    // kstat.c's JSON_FMT; every kstat here is KSTAT_TYPE_NAMED (type 1).
                    text.Append(CultureInfo.InvariantCulture, $"{{\n\t\"module\": \"{k.Module}\",\n\t\"instance\": {k.Instance},\n\t\"name\": \"{k.Name}\",\n\t\"class\": \"{k.Class}\",\n\t\"type\": 1,\n");
                    var snap = values.Find(v => v.Name == "snaptime");
                    long snaptime = snap.Name == null ? ctx.Host.Scheduler.Now : snap.Value;
                    text.Append("\t\"snaptime\": ").Append(new KstatValue("snaptime", KstatValueKind.HrTime, snaptime).Format()).Append(",\n");
                    text.Append("\t\"data\": {\n");
                    for (int j = 0; j < values.Count; j++)
                    {
                        var v = values[j];
                        text.Append("\t\t\"").Append(v.Name).Append("\": ");
                        text.Append(v.Kind == KstatValueKind.String ? "\"" + v.Format() + "\"" : v.Format());
                        if (j < values.Count - 1) text.Append(',');
                        text.Append('\n');
                    }
                    text.Append("\t}\n}");
                    if (i < printed.Count - 1) text.Append(',');
                    break;
            }
        }
        if (json) text.Append("]\n");
        return matched;
    }

    private static string Clip(string s) => s.Length > 30 ? s[..30] : s;

    /// <summary>statcommon's print_timestamp: u is seconds since the epoch, d the date as date(1) prints
    /// it in the C locale; the host's clock starts at the epoch.</summary>
    private static string Timestamp(long now, char format)
    {
        long seconds = now / Time.Second;
        if (format == 'u') return seconds.ToString(CultureInfo.InvariantCulture);
        var t = DateTime.UnixEpoch.AddSeconds(seconds);
        return t.ToString("ddd MMM ", CultureInfo.InvariantCulture) + t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2)
               + t.ToString(" HH:mm:ss 'UTC' yyyy", CultureInfo.InvariantCulture);
    }

    /// <summary>In a non-global zone kstat shows the zone's own links and memory cap (Host.cs rule 4).</summary>
    private static bool VisibleToZone(CommandContext ctx, Kstat k)
    {
        if (ctx.Zone == "global") return true;
        if (k.Module == "memory_cap") return k.Name == ctx.Zone;
        if (k.Module != "link") return false;
        var link = ctx.Host.Mac.Find(k.Name);
        return link != null && ctx.Sees(link);
    }
}
