/*
 * Report: `smartos run --report DIR` and `--plot DIR` (issue 19): what a scenario run looked like,
 * as files a browser opens with nothing else installed.
 *
 *   DIR/index.html          the report: the run's outcome, the topology at the end (an inline SVG,
 *                           TopologySvg.cs), a chart per link, drops by reason, links to every
 *                           capture the run wrote, and the transcript.
 *   DIR/charts/*.svg        a chart per link of throughput over virtual time (Charts.cs).
 *   --plot DIR              only the charts, in DIR itself.
 *
 * Rules
 *   1. The directory is checked before the scenario runs: an existing non-directory, or one that
 *      cannot be made or written, is refused with its reason and exit status 2, and the scenario
 *      does not run. (As root, permission bits do not stop a write; the check writes a probe file.)
 *   2. Nothing half-written: every file is made in memory first, then written into a staging
 *      directory inside DIR, then moved into place; when any step fails the staging directory is
 *      removed and the files already in DIR are left as they were.
 *   3. Deterministic: the same scenario, seed and options give the same bytes in every file. Nothing
 *      reads the wall clock or the machine's name or fonts; times are virtual (Charts.cs rule 1 for
 *      the charts' text); file names come from host and link names.
 *   4. Every link in index.html is relative and resolves: the charts it wrote, and each capture the
 *      run wrote (ScenarioRunner.WrittenFiles that exist and begin with a pcap or pcapng magic
 *      number) by its path relative to DIR.
 *   5. A report is written for a run that failed too (that is when one is wanted most); the exit
 *      status stays the run's.
 */
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using SmartOS.Cli.Observe;
using SmartOS.Kernel;

namespace SmartOS.Cli.Report;

/// <summary>What a report is made of: the run's outcome and what the runner kept.</summary>
/// <param name="Scenario">The scenario file as given on the command line.</param>
/// <param name="Transcript">What the run printed on standard output.</param>
/// <param name="Captures">Full paths of files the run wrote (rule 4 keeps the captures among them).</param>
public sealed record ReportInput(string Scenario, ulong Seed, int ExitCode, IReadOnlyList<string> Failures, string Transcript,
    Topology Topology, IReadOnlyList<LinkSeries> Series, IReadOnlyList<string> Captures, long EndNs);

/// <summary>Writes the report and the charts (see the theory statement above).</summary>
public static class ReportWriter
{
    private const string StagingName = ".smartos-report-staging";

    /// <summary>Rule 1: null when <paramref name="dir"/> can take a report (it is made if missing),
    /// else the reason, as "DIR: Not a directory".</summary>
    public static string? Check(string dir)
    {
        if (File.Exists(dir)) return $"{dir}: Not a directory";
        bool made = !Directory.Exists(dir);
        try
        {
            Directory.CreateDirectory(dir);
            string probe = Path.Combine(dir, StagingName + ".probe");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (made && Directory.Exists(dir)) TryDelete(dir);
            return $"{dir}: {(e is UnauthorizedAccessException ? "Permission denied" : e.Message)}";
        }
    }

    /// <summary>The files of the report (or of the charts alone): relative path to bytes, in the order written.</summary>
    public static List<(string Path, byte[] Bytes)> Build(string dir, ReportInput input, bool chartsOnly)
    {
        var files = new List<(string, byte[])>();
        var charts = ChartFiles(input);
        string chartDir = chartsOnly ? "" : "charts/";
        foreach (var (name, _, svg) in charts) files.Add((chartDir + name, Encoding.UTF8.GetBytes(svg)));
        if (!chartsOnly) files.Add(("index.html", Encoding.UTF8.GetBytes(Html(dir, input, charts))));
        return files;
    }

    /// <summary>Rule 2: writes the files into <paramref name="dir"/> through a staging directory.
    /// Returns null, or the reason nothing was written.</summary>
    public static string? Write(string dir, IReadOnlyList<(string Path, byte[] Bytes)> files)
    {
        string staging = Path.Combine(dir, StagingName);
        try
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            Directory.CreateDirectory(staging);
            foreach (var (path, bytes) in files)
            {
                string to = Path.Combine(staging, path);
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.WriteAllBytes(to, bytes);
            }
            foreach (var (path, _) in files)
            {
                string to = Path.Combine(dir, path);
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.Move(Path.Combine(staging, path), to, overwrite: true);
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"{dir}: {e.Message}";
        }
        finally
        {
            TryDelete(staging);
        }
    }

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>A chart per link of every host, named HOST-LINK.svg (HOST-LINK-ID.svg when a deleted
    /// link and a new one shared a name).</summary>
    private static List<(string Name, LinkHistory Link, string Svg)> ChartFiles(ReportInput input)
    {
        var list = new List<(string, LinkHistory, string)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var series in input.Series)
            foreach (var link in series.ReadAll())
            {
                string name = Safe($"{link.Host}-{link.Name}") + ".svg";
                if (!names.Add(name))
                {
                    name = Safe($"{link.Host}-{link.Name}-{link.LinkId}") + ".svg";
                    names.Add(name);
                }
                list.Add((name, link, Charts.LinkChartSvg(link, 0, input.EndNs)));
            }
        return list;
    }

    /// <summary>A file name from host and link names: letters, digits, '-', '_' and '.' kept, the rest '_'.</summary>
    private static string Safe(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (char c in s) b.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        return b.ToString();
    }

    /// <summary>Rule 4: whether the file exists and begins with a pcap (either byte order, µs or ns)
    /// or pcapng magic number.</summary>
    public static bool IsCapture(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> head = stackalloc byte[4];
            if (f.ReadAtLeast(head, 4, throwOnEndOfStream: false) < 4) return false;
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(head);
            return magic is 0xa1b2c3d4 or 0xd4c3b2a1 or 0xa1b23c4d or 0x4d3cb2a1 or 0x0a0d0d0a;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A relative URL from the report's directory to a file: segments escaped, '/' between them.</summary>
    internal static string Href(string fromDir, string file)
    {
        string rel = Path.GetRelativePath(Path.GetFullPath(fromDir), Path.GetFullPath(file));
        return string.Join('/', rel.Split(Path.DirectorySeparatorChar).Select(Uri.EscapeDataString));
    }

    private static string Html(string dir, ReportInput input, List<(string Name, LinkHistory Link, string Svg)> charts)
    {
        var h = new StringBuilder();
        string title = "smartos run " + Path.GetFileName(input.Scenario);
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>").Append(E(title)).Append("</title>\n");
        h.Append("<style>body{font-family:sans-serif;margin:2em;max-width:1200px}pre{background:#f4f4f4;padding:1em;overflow-x:auto}")
         .Append("table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}td.n{text-align:right}")
         .Append(".fail{color:#a00}.ok{color:#060}img{max-width:100%}</style>\n</head>\n<body>\n");
        h.Append("<h1>").Append(E(title)).Append("</h1>\n<p>Scenario <code>").Append(E(input.Scenario)).Append("</code>, seed ")
         .Append(input.Seed.ToString(CultureInfo.InvariantCulture)).Append(", ended at ").Append(Time.FormatSeconds(input.EndNs, 6))
         .Append(" s of virtual time: ");
        if (input.ExitCode == 0) h.Append("<span class=\"ok\">every command and expectation held</span>.</p>\n");
        else
        {
            h.Append("<span class=\"fail\">").Append(input.Failures.Count.ToString(CultureInfo.InvariantCulture)).Append(" failure(s)</span>.</p>\n<ul class=\"fail\">\n");
            foreach (var f in input.Failures) h.Append("<li>").Append(E(f)).Append("</li>\n");
            h.Append("</ul>\n");
        }
        h.Append("<p><a href=\"#topology\">Topology</a> · <a href=\"#throughput\">Throughput</a> · <a href=\"#drops\">Drops</a> · ")
         .Append("<a href=\"#captures\">Captures</a> · <a href=\"#transcript\">Transcript</a></p>\n");

        h.Append("<h2 id=\"topology\">Topology at the end of the run</h2>\n").Append(TopologySvg.Render(input.Topology));

        h.Append("<h2 id=\"throughput\">Throughput per link</h2>\n");
        if (charts.Count == 0) h.Append("<p>No links.</p>\n");
        foreach (var (name, link, _) in charts)
        {
            h.Append("<h3>").Append(E($"{link.Host} {link.Name}")).Append("</h3>\n<p>").Append(E(Totals(link)));
            if (link.GoneAtNs is long gone) h.Append(E($"; deleted at {Time.FormatSeconds(gone, 3)} s"));
            h.Append("</p>\n<img src=\"charts/").Append(Uri.EscapeDataString(name)).Append("\" alt=\"").Append(E($"throughput of {link.Host} {link.Name}"))
             .Append("\" width=\"").Append(Charts.Width.ToString(CultureInfo.InvariantCulture)).Append("\" height=\"")
             .Append(Charts.Height.ToString(CultureInfo.InvariantCulture)).Append("\">\n");
        }

        h.Append("<h2 id=\"drops\">Drops by reason</h2>\n");
        var drops = new List<(LinkHistory Link, DropCount Drop)>();
        foreach (var (_, link, _) in charts)
            foreach (var d in link.Drops)
                if (d.Count != 0) drops.Add((link, d));
        if (drops.Count == 0) h.Append("<p>No link dropped a frame.</p>\n");
        else
        {
            h.Append("<table>\n<tr><th>host</th><th>link</th><th>reason (kstat)</th><th>frames</th></tr>\n");
            foreach (var (link, d) in drops)
                h.Append("<tr><td>").Append(E(link.Host)).Append("</td><td>").Append(E(link.Name)).Append("</td><td>").Append(E(d.Reason))
                 .Append("</td><td class=\"n\">").Append(d.Count.ToString(CultureInfo.InvariantCulture)).Append("</td></tr>\n");
            h.Append("</table>\n");
        }

        h.Append("<h2 id=\"captures\">Captures</h2>\n");
        var captures = input.Captures.Where(IsCapture).ToList();
        if (captures.Count == 0) h.Append("<p>The run wrote no capture file.</p>\n");
        else
        {
            h.Append("<ul>\n");
            foreach (var c in captures)
                h.Append("<li><a href=\"").Append(E(Href(dir, c))).Append("\">").Append(E(Path.GetFileName(c))).Append("</a> (")
                 .Append(new FileInfo(c).Length.ToString(CultureInfo.InvariantCulture)).Append(" bytes)</li>\n");
            h.Append("</ul>\n");
        }

        h.Append("<h2 id=\"transcript\">Transcript</h2>\n<pre>").Append(E(input.Transcript)).Append("</pre>\n</body>\n</html>\n");
        return h.ToString();
    }

    /// <summary>The link's counters at its last sample (cumulative since the link was made).</summary>
    private static string Totals(LinkHistory link)
    {
        if (link.Samples.Count == 0) return "no samples";
        var last = link.Samples[^1];
        return string.Create(CultureInfo.InvariantCulture,
            $"{link.Class}: received {last.IPackets} frames ({last.RBytes} bytes), sent {last.OPackets} frames ({last.OBytes} bytes), dropped {last.Drops}");
    }

    private static string E(string s) => TopologySvg.Esc(s);
}
