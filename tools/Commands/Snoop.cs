using System.Globalization;
using SmartOS.Cli.Snoop;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// snoop(8): capture on any datalink (-d) into a capture file (-o: pcap, or pcapng with -F pcapng
/// or a .pcapng name) or as summary lines, or read a capture file (-i: pcap, pcapng or an illumos
/// snoop file, Snoop/CaptureFile.cs). A live capture runs until -c COUNT packets matched or it is
/// interrupted.
/// </summary>
public static class Snoop
{
    public static readonly CommandDescriptor Descriptor = new("snoop", "capture and inspect network packets", RunAsync)
    {
        Options = "d:o:c:i:vVqrPF:",
        // Reading a capture file (-i) needs no running host; capturing does.
        NeedsRunningHost = static a => Array.IndexOf(a, "-i") < 0,
    };

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("snoop: " + why);
        ctx.Err.WriteLine("Usage: snoop -d LINK [-o FILE [-F pcap|pcapng]] [-c COUNT] [-v|-V] [-q] [filter]");
        ctx.Err.WriteLine("       snoop -i FILE [-c COUNT] [-v|-V] [filter]");
        return 2;
    }

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "d:o:c:i:vVqrPF:");
        if (g.Error != null) return Usage(ctx, g.Error);
        long limit = long.MaxValue;
        if (g.Has("c") && (!long.TryParse(g.Value("c"), NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1))
            return Usage(ctx, $"invalid count '{g.Value("c")}'");
        if (g.Has("v") && g.Has("V")) return Usage(ctx, "-v and -V cannot be used together");
        if (g.Has("i") && g.Has("d")) return Usage(ctx, "-i and -d cannot be used together");
        // illumos snoop -i FILE -o FILE2 saves what it reads; not done here, so refused (not ignored).
        if (g.Has("i") && g.Has("o")) return Usage(ctx, "-i and -o cannot be used together (saving a read capture is not supported)");
        CaptureFormat? format = null;
        if (g.Has("F"))
        {
            if (!g.Has("o")) return Usage(ctx, "-F says how -o writes: give -o FILE");
            if (!CaptureFormats.TryParseWritable(g.Value("F")!, out var f)) return Usage(ctx, $"unknown capture file format '{g.Value("F")}' (pcap or pcapng)");
            format = f;
        }
        SnoopFilter? filter = null;
        if (g.Operands.Count > 0 && !SnoopFilter.TryParse(g.Operands, out filter, out string error))
        {
            ctx.Err.WriteLine("snoop: " + error);
            return 1;
        }
        var mode = g.Has("v") ? Mode.Verbose : g.Has("V") ? Mode.VerboseSummary : Mode.Summary;
        if (g.Has("i")) return ReadFile(ctx, ctx.ResolvePath(g.Value("i")!), filter, limit, mode);
        if (!g.Has("d")) return Usage(ctx, "a device is required: -d LINK (or -i FILE)");

        string name = g.Value("d")!;
        var link = ctx.Host.Mac.Find(name);
        if (link == null || (ctx.Zone != "global" && link.Zone != ctx.Zone))
        {
            ctx.Err.WriteLine($"snoop: {name}: no such device");
            return 1;
        }
        CaptureFileWriter? writer = null;
        if (g.Has("o"))
        {
            string path = ctx.ResolvePath(g.Value("o")!);
            writer = CaptureFileWriter.Create(path, format ?? CaptureFormats.ForFileName(path), [name], out string createError);
            if (writer == null)
            {
                ctx.Err.WriteLine("snoop: " + createError);
                return 1;
            }
        }
        ctx.Err.WriteLine($"Using device {name} (promiscuous mode)");
        var tap = new Tap(ctx, filter, limit, mode, writer, g.Has("q"));
        link.AddTap(tap);
        try
        {
            using (ctx.Cancel.Register(() => tap.Done.TrySetResult()))
                await tap.Done.Task;
        }
        finally
        {
            link.RemoveTap(tap);
            writer?.Dispose();
        }
        if (writer?.Error is { } failed)
        {
            ctx.Err.WriteLine("snoop: " + failed);
            return 1;
        }
        if (writer != null) ctx.Out.WriteLine($"snoop: {tap.Count} packets captured on {name} to {g.Value("o")}");
        return 0;
    }

    private enum Mode { Summary, Verbose, VerboseSummary }

    private sealed class Tap(CommandContext ctx, SnoopFilter? filter, long limit, Mode mode, CaptureFileWriter? writer, bool quiet) : ICaptureTap
    {
        public readonly TaskCompletionSource Done = new();
        public long Count;

        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (Count >= limit) return;
            if (filter != null && !filter.Matches(frame)) return;
            Count++;
            if (writer != null)
            {
                // A failed write (disk full) ends the capture; RunAsync reports it (CaptureFile.cs rule 5).
                if (!writer.Write(0, frame, time)) { Done.TrySetResult(); return; }
            }
            else if (!quiet) Print(ctx.Out, frame, Count, time, mode, numbered: false, relative: 0);
            if (Count >= limit) Done.TrySetResult();
        }
    }

    private static void Print(TextWriter o, ReadOnlySpan<byte> frame, long number, long time, Mode mode, bool numbered, long relative)
    {
        switch (mode)
        {
            case Mode.Verbose:
                o.Write(EnsureNewline(SnoopFormat.Verbose(frame, (int)Math.Min(number, int.MaxValue), time)));
                o.WriteLine();
                break;
            case Mode.VerboseSummary:
                o.WriteLine("________________________________");
                o.Write(EnsureNewline(SnoopFormat.VerboseSummary(frame)));
                break;
            default:
                if (numbered)
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{number,3} {Time.FormatSeconds(relative),11} {SnoopFormat.Summary(frame)}"));
                else
                    o.WriteLine(SnoopFormat.Summary(frame));
                break;
        }
    }

    private static string EnsureNewline(string s) => s.EndsWith('\n') ? s : s + "\n";

    private static int ReadFile(CommandContext ctx, string path, SnoopFilter? filter, long limit, Mode mode)
    {
        using var reader = CaptureFileReader.Open(path, out string error);
        if (reader == null)
        {
            ctx.Err.WriteLine("snoop: " + error);
            return 1;
        }
        long n = 0, shown = 0, first = -1;
        while (shown < limit && reader.TryRead(out var record))
        {
            n++;
            if (first < 0) first = record.TimestampNs;
            var frame = record.Frame.Span;
            if (filter != null && !filter.Matches(frame)) continue;
            Print(ctx.Out, frame, n, record.TimestampNs, mode, numbered: true, relative: record.TimestampNs - first);
            shown++;
        }
        if (reader.Error != null)
        {
            ctx.Err.WriteLine("snoop: " + reader.Error);
            return 1;
        }
        return 0;
    }
}
