using System.Text;
using SmartOS.Dtrace;
using SmartOS.Kernel;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dtrace(8) over this host's probes (kernel/Trace/Probe.cs; the D language in Dtrace/Syntax.cs):
/// <list type="number">
/// <item>-n D and -s FILE give programs; compile errors are worded as dtrace words them ("invalid
/// probe specifier" for -n, "failed to compile script FILE: line N:" for -s) and exit 1.</item>
/// <item>Without -q (or -x quiet), "description '...' matched N probes" goes to standard error and
/// each record is prefixed with the CPU, probe ID and FUNCTION:NAME columns.</item>
/// <item>-l lists the probes (ID PROVIDER MODULE FUNCTION NAME), all or those -n, -P provider,
/// -m [provider:]module or -f [[provider:]module:]function name (globs as in descriptions).</item>
/// <item>-x aggsortkey, aggsortrev and aggsortkeypos=N order printed aggregations as dtrace does,
/// and aggsortpos=N picks which of printa's several aggregations sorts first;
/// -x aggsize=N[kmgt] bounds the aggregations' memory (4m by default): a new key that finds no room
/// is dropped and counted, and "dtrace: N aggregation drops on CPU 0" goes to standard error before
/// aggregations print; -x dynvarsize=N[kmgt] (1m by default) bounds associative arrays and self->
/// variables the same way ("dtrace: N dynamic variable drops"); -x nspec=N (1) and specsize=N[kmgt] (32k)
/// bound speculations (Consumer.Speculations.cs), whose drops are reported as dtrace words them. The buffer and rate options (switchrate, aggrate, bufsize, ...) are refused,
/// since records are consumed as probes fire.</item>
/// <item>Tracing runs until exit() or an interruption (^C, the end of a scenario); then END fires and
/// the aggregations print. -o FILE appends the output to FILE, as dtrace does.</item>
/// <item>In a non-global zone only the zone's probes (its links') are visible.</item>
/// <item>Options dtrace has but this one does not honour yet are refused, never ignored: -c CMD and
/// -p PID among them, since there is no pid provider and no $target.</item>
/// <item>--json is this project's (illumos dtrace has no JSON output): each record is one line
/// {"cpu":0,"epid":E,"id":P,"probe":"prov:mod:func:name","output":"TEXT"}, TEXT as -q prints the
/// record's trace/printf/printa-with-format output; each aggregation printa prints without a
/// format, and each printed at the end, is one line {"aggregation":"@name","entries":[{"keys":[...],
/// "value":N}]}, a distribution's entries with "buckets":[{"value":"LABEL","count":N}] (its
/// non-zero buckets, labelled as the text rows are). Errors stay on standard error as dtrace words them.</item>
/// </list>
/// </summary>
public static class Dtrace
{
    public static readonly CommandDescriptor Descriptor = new("dtrace", "dynamic tracing compiler and tracing utility", RunAsync)
    {
        Options = Getopts,
        NeedsRunningHost = static a => !Getopt.Parse(a, Getopts, s_long).Has("l"),
    };

    // -c and -p are known so that they are refused with the reason, not as unknown options.
    private const string Getopts = "n:s:qlo:x:P:m:f:c:p:";
    private static readonly string[] s_long = ["json"];

    private static readonly string[] s_knownOptions =
    [
        "aggpack", "aggrate", "aggsize", "aggsortkey", "aggsortkeypos", "aggsortpos", "aggsortrev", "aggzoom", "agghist",
        "bufpolicy", "bufresize", "bufsize", "cleanrate", "cpu", "defaultargs", "destructive", "dynvarsize", "flowindent",
        "jstackframes", "jstackstrsize", "nspec", "rawbytes", "specsize", "stackframes", "stackindent", "statusrate",
        "strsize", "switchrate", "ustackframes", "zdefs",
    ];

    /// <summary>A size option's value as dtrace takes it (dt_optval_parse): a positive number of bytes, or with k, m, g or t.</summary>
    private static bool TryParseSize(string? text, out long bytes) => SizeArgument.TryParse(text ?? "", out bytes) && bytes > 0;

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("dtrace: " + why);
        ctx.Err.WriteLine("Usage: dtrace [-lq] [--json] [-o output] [-x opt[=val]] [-P provider] [-m [provider:]module] [-f [[provider:]module:]function] [-n probe-description [{ action }]] [-s script]");
        return 2;
    }

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options, s_long);
        if (g.Error != null) return Usage(ctx, g.Error);
        foreach (var o in new[] { "c", "p" })
            if (g.Has(o))
            {
                // dtrace -c runs a command and -p grabs a process, each to trace it as $target (with
                // the pid provider) and to stop when it exits. A program here has a pid (execname,
                // pid, curpsinfo), but no instructions a pid provider could trace, and dtrace
                // cannot yet start one or wait for one to stop.
                ctx.Err.WriteLine($"dtrace: -{o} is not supported: this host has no pid provider, nor $target to start or grab a program for");
                return 2;
            }
        if (g.Operands.Count > 0) return Usage(ctx, $"unexpected operand '{g.Operands[0]}' (macro arguments are not supported yet)");
        bool quiet = g.Has("q"), sortKey = false, sortRev = false;
        int sortKeyPos = 0, sortPos = 0;
        long aggSize = Consumer.DefaultAggSize, dynVarSize = Consumer.DefaultDynVarSize, nspec = Consumer.DefaultNspec, specSize = Consumer.DefaultSpecSize;
        foreach (var x in g.Values("x"))
        {
            int eq = x.IndexOf('=');
            string name = eq < 0 ? x : x[..eq];
            string? value = eq < 0 ? null : x[(eq + 1)..];
            switch (name)
            {
                case "quiet" when value == null: quiet = true; continue;
                case "aggsortkey" when value == null: sortKey = true; continue;
                case "aggsortrev" when value == null: sortRev = true; continue;
                case "aggsortkeypos" when int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out sortKeyPos):
                    continue;
                case "aggsortpos" when int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out sortPos):
                    continue;
                case "aggsize" when TryParseSize(value, out aggSize): continue;
                case "dynvarsize" when TryParseSize(value, out dynVarSize): continue;
                case "nspec" when TryParseSize(value, out nspec): continue;
                case "specsize" when TryParseSize(value, out specSize): continue;
                case "quiet" or "aggsortkey" or "aggsortrev" or "aggsortkeypos" or "aggsortpos" or "aggsize" or "dynvarsize" or "nspec" or "specsize":
                    ctx.Err.WriteLine($"dtrace: failed to set -x {x}: Invalid value for specified option");
                    return 2;
                case "cleanrate":
                    // The speculation cleaner runs at dtrace's default cleanrate (Consumer.CleanRate).
                    ctx.Err.WriteLine($"dtrace: failed to set -x {x}: option is not supported yet (speculations are cleaned at dtrace's default rate, 101 Hz)");
                    return 2;
                case "switchrate" or "aggrate" or "statusrate" or "bufsize":
                    // Records and aggregations reach this consumer as probes fire, in the same
                    // process: there is no buffer to size and no rate at which to read one.
                    ctx.Err.WriteLine($"dtrace: failed to set -x {x}: option has no effect here (records are consumed as probes fire, without kernel buffers)");
                    return 2;
            }
            ctx.Err.WriteLine(Array.IndexOf(s_knownOptions, name) >= 0
                ? $"dtrace: failed to set -x {x}: option is not supported yet"
                : $"dtrace: failed to set -x {x}: Invalid option name");
            return 2;
        }
        var registry = ctx.Host.Mac.Probes;
        TextWriter? file = null;
        var consumer = new Consumer(registry, ctx.Host.Mac.Scheduler, ctx.Zone, TextWriter.Null, ctx.Err) { Quiet = quiet, Json = g.Has("json"), WallEpoch = ctx.Host.Clock.Epoch, AggSize = aggSize, DynVarSize = dynVarSize, Nspec = nspec, SpecSize = specSize };
        consumer.SetSort(sortKey, sortRev, sortKeyPos, sortPos);
        var programs = new List<(string Text, string? File)>();
        foreach (var n in g.Values("n")) programs.Add((n, null));
        foreach (var s in g.Values("s"))
        {
            string path = ctx.ResolvePath(s);
            string text;
            try { text = File.ReadAllText(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ctx.Err.WriteLine($"dtrace: failed to open {s}: {(e is FileNotFoundException or DirectoryNotFoundException ? "No such file or directory" : e.Message)}");
                return 2;
            }
            programs.Add((text, s));
        }
        if (g.Has("l")) return List(ctx, consumer, programs, [.. g.Values("P").Select(v => (v, 0)), .. g.Values("m").Select(v => (v, 1)), .. g.Values("f").Select(v => (v, 2))]);
        foreach (var o in new[] { "P", "m", "f" })
            if (g.Has(o)) return Usage(ctx, $"-{o} enables every probe it names: it is supported with -l only");
        if (programs.Count == 0) return Usage(ctx);

        (string Text, string? File) current = default;
        var parsed = new List<(DProgram Program, string Text, string? File)>();
        try
        {
            foreach (var (text, f) in programs)
            {
                current = (text, f);
                parsed.Add((DProgram.Parse(text), text, f));
            }
        }
        catch (DCompileError e)
        {
            consumer.Discard();
            return CompileError(ctx, current, e);
        }
        var matched = new List<int>();
        try
        {
            foreach (var (program, text, f) in parsed)
            {
                current = (text, f);
                matched.Add(consumer.Enable(program));
            }
        }
        catch (DCompileError e)
        {
            consumer.Discard();
            return CompileError(ctx, current, e);
        }

        if (g.Has("o"))
        {
            try { file = new StreamWriter(ctx.ResolvePath(g.Value("o")!), append: true, new UTF8Encoding(false)) { NewLine = "\n" }; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                consumer.Discard();
                ctx.Err.WriteLine($"dtrace: failed to open output file '{g.Value("o")}': {e.Message}");
                return 1;
            }
        }
        consumer.Output = file ?? ctx.Out;
        if (!quiet)
            for (int i = 0; i < parsed.Count; i++)
            {
                var (_, text, f) = parsed[i];
                string what = f != null ? $"script '{f}'" : $"description '{Description(text)}'";
                ctx.Err.WriteLine($"dtrace: {what} matched {matched[i]} probe{(matched[i] == 1 ? "" : "s")}");
            }
        consumer.Start();
        bool interrupted = false;
        using (ctx.Cancel.Register(() => interrupted = consumer.Exited.TrySetResult(0)))
            await consumer.Exited.Task;
        consumer.Finish(interrupted);
        file?.Dispose();
        // dtrace.c returns its own status, not exit()'s argument: 0 once tracing ran.
        return 0;
    }

    /// <summary>The probe descriptions of a -n program: its text up to the first predicate or body.</summary>
    private static string Description(string text)
    {
        int end = text.IndexOfAny(['{', '/']);
        return end < 0 ? text : text[..end];
    }

    private static int CompileError(CommandContext ctx, (string Text, string? File) program, DCompileError e)
    {
        ctx.Err.WriteLine(program.File != null
            ? $"dtrace: failed to compile script {program.File}: line {e.Line}: {e.Message}"
            : $"dtrace: invalid probe specifier {program.Text}: {e.Message}");
        return 1;
    }

    /// <param name="partial">-P, -m and -f descriptions with the field each ends at (0 provider, 1 module, 2 function).</param>
    private static int List(CommandContext ctx, Consumer consumer, List<(string Text, string? File)> programs, List<(string Text, int Last)> partial)
    {
        var shown = new List<SmartOS.Kernel.Trace.Probe>();
        (string Text, string? File) current = default;
        try
        {
            if (programs.Count == 0 && partial.Count == 0)
                shown.AddRange(ctx.Host.Mac.Probes.All.Where(consumer.Sees));
            foreach (var (text, last) in partial)
            {
                current = (text, null);
                foreach (var p in consumer.Matching(text, last))
                    if (!shown.Contains(p)) shown.Add(p);
            }
            foreach (var (text, f) in programs)
            {
                current = (text, f);
                foreach (var p in consumer.Matching(DProgram.Parse(text)))
                    if (!shown.Contains(p)) shown.Add(p);
            }
        }
        catch (DCompileError e)
        {
            consumer.Discard();
            return CompileError(ctx, current, e);
        }
        shown.Sort((a, b) => a.Id.CompareTo(b.Id));
        var o = new StringBuilder();
        o.Append($"{"ID",5} {"PROVIDER",10} {"MODULE",17} {"FUNCTION",33} NAME\n");
        foreach (var p in shown) o.Append($"{p.Id,5} {p.Provider,10} {p.Module,17} {p.Function,33} {p.Name}\n");
        ctx.Out.Write(o.ToString());
        consumer.Discard();
        return 0;
    }
}
