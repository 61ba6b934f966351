using System.Globalization;
using SmartOS.Cli.Snoop;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// snoop(8): capture on any datalink (-d) into a capture file (-o: pcap, or pcapng with -F pcapng
/// or a .pcapng name) or as summary lines, or read a capture file (-i: pcap, pcapng or an illumos
/// snoop file, Snoop/CaptureFile.cs). "-o -" writes the capture to standard output and "-i -" reads
/// one from standard input, as bytes (pipes: `snoop -d net0 -o - | ...`). A live capture runs until
/// -c COUNT packets matched or it is interrupted. How a packet is shown follows snoop.c and snoop_display.c (Snoop/SnoopDisplay.cs):
/// <list type="number">
/// <item>Reading a file numbers the packets and shows the time since the previous one shown; a
/// live capture shows neither unless -t says how (r: since the first, a: time of day, d: since the
/// previous). -S adds the length on the wire, -x a hex dump.</item>
/// <item>-c COUNT counts packets that pass the filter and ends with "COUNT packets captured" on
/// standard error, as snoop.c's scan() does; -p first[,last] (files only) shows the packets with
/// those numbers among the ones that pass.</item>
/// <item>-s snaplen keeps the first snaplen bytes of each live packet (0: all of it).</item>
/// <item>-q leaves out the count of packets written to -o FILE; -r (no name lookup), -f (go on if
/// promiscuous mode fails) and -U (filter in user space) hold here without doing anything: this
/// snoop never resolves names, promiscuous mode cannot fail and every filter runs in snoop.</item>
/// <item>Options of snoop's getopt string that cannot be honoured here (-a -C -D -I -n -N -O -P
/// -z) are refused with what they would have done, never ignored.</item>
/// </list>
/// </summary>
public static class Snoop
{
    /// <summary>snoop.c's getopt string, less DEBUG's -Z, plus this project's -F. Capturing (-d) needs
    /// a running host, reading a capture (-i) does not; "-i -" reads standard input.</summary>
    public static readonly CommandDescriptor Descriptor = new("snoop", "capture and inspect network packets", RunAsync)
    {
        Options = Getopts,
        ReadsStdin = true,
        NeedsRunningHost = static a => !Getopt.Parse(a, Getopts).Has("i"),
    };

    private const string Getopts = "at:CPDSi:O:o:Nn:s:d:I:vVp:fc:x:U?rqz:F:";

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("snoop: " + why);
        ctx.Err.WriteLine("Usage: snoop -d LINK [-o FILE [-F pcap|pcapng]] [-c COUNT] [-s snaplen] [-t r|a|d] [-v|-V] [-S] [-x offset[,length]] [-q] [filter]");
        ctx.Err.WriteLine("       snoop -i FILE [-c COUNT] [-p first[,last]] [-t r|a|d] [-v|-V] [-S] [-x offset[,length]] [filter]");
        return 2;
    }

    /// <summary>Why each option snoop has but this one cannot honour is refused.</summary>
    private static readonly (string Option, string Why)[] s_refused =
    [
        ("a", "-a (listen to packets on audio) is not supported: there is no audio device"),
        ("C", "-C (print packet filter code) is not supported: filters are not compiled to filter code"),
        ("D", "-D (report dropped packets) is not supported: drop counts are not recorded"),
        ("I", "-I (listen on an IP interface) is not supported: give a datalink with -d"),
        ("n", "-n (load an address-to-name table) is not supported: names are never resolved"),
        ("N", "-N (create an address-to-name table) is not supported: names are never resolved"),
        ("O", "-O (capture into a series of files) is not supported: use -o FILE"),
        ("P", "-P (non-promiscuous capture) is not supported: snoop always sees every frame on the link"),
        ("z", "-z (open a link of another zone) is not supported: give the link's name with -d"),
        ("?", "illegal option -- ?"),
    ];

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.Error != null) return Usage(ctx, g.Error);
        foreach (var (option, why) in s_refused)
            if (g.Has(option)) return Usage(ctx, why);
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
        var time = SnoopDisplay.TimeMode.None;
        if (g.Has("t"))
        {
            // snoop.c looks at the first letter only.
            string t = g.Value("t")!;
            char letter = t.Length > 0 ? t[0] : ' ';
            if (letter is not ('r' or 'a' or 'd')) return Usage(ctx, $"invalid time format '{t}' (r, a or d)");
            time = letter == 'r' ? SnoopDisplay.TimeMode.Relative : letter == 'a' ? SnoopDisplay.TimeMode.Absolute : SnoopDisplay.TimeMode.Delta;
        }
        int hexOffset = -1, hexLength = int.MaxValue;
        if (g.Has("x") && !TryRange(g.Value("x")!, out hexOffset, out hexLength))
            return Usage(ctx, $"invalid hex dump range '{g.Value("x")}' (offset[,length])");
        int first = 1, last = int.MaxValue;
        if (g.Has("p"))
        {
            if (!g.Has("i")) return Usage(ctx, "-p selects packets of a capture file: give -i FILE");
            if (!TryRange(g.Value("p")!, out first, out int length) || first < 1 || (length != int.MaxValue && length < first))
                return Usage(ctx, $"invalid packet range '{g.Value("p")}' (first[,last])");
            // snoop.c: -p N alone shows packet N only.
            last = g.Value("p")!.IndexOfAny([',', ':', '-']) < 0 ? first : length;
        }
        int snaplen = CaptureFileWriter.Snaplen;
        if (g.Has("s"))
        {
            if (g.Has("i")) return Usage(ctx, "-s truncates packets as they are captured: it applies to -d, not -i");
            if (!int.TryParse(g.Value("s"), NumberStyles.None, CultureInfo.InvariantCulture, out snaplen))
                return Usage(ctx, $"invalid snaplen '{g.Value("s")}'");
            if (snaplen == 0 || snaplen > CaptureFileWriter.Snaplen) snaplen = CaptureFileWriter.Snaplen;
        }
        SnoopFilter? filter = null;
        if (g.Operands.Count > 0 && !SnoopFilter.TryParse(g.Operands, out filter, out string error))
        {
            ctx.Err.WriteLine("snoop: " + error);
            return 1;
        }
        var style = g.Has("v") ? SnoopDisplay.Style.Detail : g.Has("V") ? SnoopDisplay.Style.AllSummaries : SnoopDisplay.Style.Summary;
        bool reading = g.Has("i");
        var display = new SnoopDisplay
        {
            Mode = style,
            // snoop.c: reading a file adds the number and the time (delta unless -t says otherwise).
            Numbered = reading,
            Time = reading && time == SnoopDisplay.TimeMode.None ? SnoopDisplay.TimeMode.Delta : time,
            ShowLength = g.Has("S"),
            HexOffset = hexOffset,
            HexLength = hexLength,
        };
        if (reading) return await ReadCaptureAsync(ctx, g.Value("i")!, filter, limit, first, last, display);
        if (!g.Has("d")) return Usage(ctx, "a device is required: -d LINK (or -i FILE)");

        string name = g.Value("d")!;
        var link = ctx.Host.Mac.Find(name);
        if (link == null || !ctx.Sees(link))
        {
            ctx.Err.WriteLine($"snoop: {name}: no such device");
            return 1;
        }
        CaptureFileWriter? writer = null;
        bool toStdout = g.Value("o") == "-";
        if (g.Has("o"))
        {
            string path = toStdout ? "-" : ctx.ResolvePath(g.Value("o")!);
            // -o -: the capture file is standard output, as bytes (pcap unless -F says otherwise).
            writer = toStdout
                ? CaptureFileWriter.Create(ctx.StdoutBytes, "(standard output)", format ?? CaptureFormat.Pcap, [name], out string createError, leaveOpen: true)
                : CaptureFileWriter.Create(path, format ?? CaptureFormats.ForFileName(path), [name], out createError);
            if (writer == null)
            {
                ctx.Err.WriteLine("snoop: " + createError);
                return 1;
            }
            if (!toStdout) ctx.WroteFile?.Invoke(Path.GetFullPath(path));
        }
        ctx.Err.WriteLine($"Using device {name} (promiscuous mode)");
        var tap = new Tap(ctx, filter, limit, display, writer, snaplen);
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
        if (tap.Count >= limit) ctx.Err.WriteLine($"{tap.Count} packets captured");
        // With -o - standard output carries the capture itself: the count goes to standard error.
        if (writer != null && !g.Has("q")) (toStdout ? ctx.Err : ctx.Out).WriteLine($"snoop: {tap.Count} packets captured on {name} to {g.Value("o")}");
        return 0;
    }

    /// <summary>
    /// snoop.c's "a[,b]" (also "a:b" or "a-b"): non-negative numbers; without b, b is int.MaxValue.
    /// </summary>
    private static bool TryRange(string text, out int a, out int b)
    {
        b = int.MaxValue;
        int sep = text.IndexOfAny([',', ':', '-']);
        string head = sep < 0 ? text : text[..sep];
        if (!int.TryParse(head, NumberStyles.None, CultureInfo.InvariantCulture, out a)) return false;
        return sep < 0 || int.TryParse(text[(sep + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out b);
    }

    private sealed class Tap(CommandContext ctx, SnoopFilter? filter, long limit, SnoopDisplay display, CaptureFileWriter? writer, int snaplen) : ICaptureTap
    {
        public readonly TaskCompletionSource Done = new();
        public long Count;

        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (Count >= limit) return;
            var kept = frame[..Math.Min(frame.Length, snaplen)];
            // The filter sees what was kept, as bufmod truncates before snoop filters (rule 3).
            if (filter != null && !filter.Matches(kept)) return;
            Count++;
            if (writer != null)
            {
                // A failed write (disk full) ends the capture; RunAsync reports it (CaptureFile.cs rule 5).
                if (!writer.Write(0, frame, time, snaplen)) { Done.TrySetResult(); return; }
            }
            else display.Show(ctx.Out, kept, frame.Length, Count, time);
            if (Count >= limit) Done.TrySetResult();
        }
    }

    /// <summary>
    /// snoop -i SOURCE: a capture file, or standard input for "-". On a host running in real time the
    /// read runs off the kernel loop (a FIFO or a slow pipe must not stop the zones' traffic) and ^C
    /// abandons it; in virtual time it is direct, as every read there is (CommandInput).
    /// </summary>
    private static async Task<int> ReadCaptureAsync(CommandContext ctx, string source, SnoopFilter? filter, long limit, int first, int last, SnoopDisplay display)
    {
        CaptureFileReader? Open(out string error)
        {
            if (source != "-") return CaptureFileReader.Open(ctx.ResolvePath(source), out error);
            if (ctx.StdinBytes == null)
            {
                error = "-i -: there is no standard input to read a capture from";
                return null;
            }
            return CaptureFileReader.Open(ctx.StdinBytes, "(standard input)", out error, leaveOpen: true);
        }
        int Read() => ReadCapture(ctx, Open, filter, limit, first, last, display);
        if (ctx.World.Driver == null) return Read();
        try { return await Task.Run(Read).WaitAsync(ctx.Cancel); }
        catch (OperationCanceledException) { return 0; }
    }

    private delegate CaptureFileReader? CaptureOpener(out string error);

    private static int ReadCapture(CommandContext ctx, CaptureOpener open, SnoopFilter? filter, long limit, int first, int last, SnoopDisplay display)
    {
        using var reader = open(out string error);
        if (reader == null)
        {
            ctx.Err.WriteLine("snoop: " + error);
            return 1;
        }
        // snoop_capture.c's scan(): count numbers the packets that pass the filter; those from
        // first on are shown; it stops after last, or after -c of them with a message.
        long count = 0;
        while (reader.TryRead(out var record))
        {
            var frame = record.Frame.Span;
            if (filter != null && !filter.Matches(frame)) continue;
            count++;
            if (count >= first) display.Show(ctx.Out, frame, record.OriginalLength, count, record.TimestampNs);
            if (count >= last) break;
            if (count >= limit)
            {
                ctx.Err.WriteLine($"{count} packets captured");
                break;
            }
        }
        if (reader.Error != null)
        {
            ctx.Err.WriteLine("snoop: " + reader.Error);
            return 1;
        }
        return 0;
    }
}
