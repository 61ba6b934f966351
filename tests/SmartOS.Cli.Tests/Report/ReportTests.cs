using System.Text.RegularExpressions;
using System.Xml;
using SmartOS.Cli.Report;
using SmartOS.Cli.Scenario;
using SmartOS.Cli.Tests.Scenario;

namespace SmartOS.Cli.Tests.Report;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public partial class ReportTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-report-").FullName;

    [TearDown]
    public void RemoveDir()
    {
        foreach (var d in Directory.GetDirectories(_dir, "*", SearchOption.AllDirectories))
            new DirectoryInfo(d).UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Directory.Delete(_dir, recursive: true);
    }

    private static (int Code, string Out, string Err) Smartos(params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Tenants => Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", "tenants.scn");

    /// <summary>Every file under <paramref name="dir"/> by relative path, with its bytes.</summary>
    private static SortedDictionary<string, byte[]> Files(string dir)
    {
        var all = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories)) all.Add(Path.GetRelativePath(dir, f), File.ReadAllBytes(f));
        return all;
    }

    private static XmlDocument ParseSvg(string text, string what)
    {
        var doc = new XmlDocument { XmlResolver = null };
        Assert.That(() => doc.LoadXml(text), Throws.Nothing, what + " is not well-formed XML");
        Assert.That(doc.DocumentElement?.LocalName, Is.EqualTo("svg"), what);
        Assert.That(doc.DocumentElement?.NamespaceURI, Is.EqualTo("http://www.w3.org/2000/svg"), what);
        return doc;
    }

    [GeneratedRegex("(?:href|src)=\"([^\"#][^\"]*)\"")]
    private static partial Regex Reference();

    [GeneratedRegex("<svg .*?</svg>", RegexOptions.Singleline)]
    private static partial Regex InlineSvg();

    [Test]
    public void The_report_of_the_tenants_example_links_files_that_exist_charts_every_link_and_is_the_same_bytes_twice()
    {
        string outdir = Path.Combine(_dir, "out"), rep1 = Path.Combine(_dir, "rep1"), rep2 = Path.Combine(_dir, "rep2"), plot = Path.Combine(_dir, "plot");
        var first = Smartos("--outdir", outdir, "--report", rep1, Tenants);
        Assert.That(first.Code, Is.Zero, first.Err);
        var second = Smartos("--outdir", outdir, "--report", rep2, "--plot", plot, Tenants);
        Assert.That(second.Code, Is.Zero, second.Err);

        string html = File.ReadAllText(Path.Combine(rep1, "index.html"));
        var refs = Reference().Matches(html).Select(m => Uri.UnescapeDataString(System.Net.WebUtility.HtmlDecode(m.Groups[1].Value))).ToList();
        var files1 = Files(rep1);
        using (Assert.EnterMultipleScope())
        {
            foreach (string r in refs)
            {
                Assert.That(Path.IsPathRooted(r) || r.Contains("://"), Is.False, r + " is relative");
                Assert.That(File.Exists(Path.Combine(rep1, r)), Is.True, r + " resolves to a file");
            }
            Assert.That(refs.Count(r => r.EndsWith(".pcap", StringComparison.Ordinal)), Is.EqualTo(4), "red, blue and the router's two captures");
            Assert.That(refs, Does.Contain("../out/red.pcap"));
            foreach (string link in new[] { "e1000g0", "z1_net0", "z1_net1", "z2_net0", "z3_net0" })
                Assert.That(refs, Does.Contain($"charts/h1-{link}.svg"), "a chart for " + link);
            foreach (var (name, bytes) in files1.Where(f => f.Key.StartsWith("charts", StringComparison.Ordinal)))
            {
                var svg = ParseSvg(System.Text.Encoding.UTF8.GetString(bytes), name);
                Assert.That(svg.GetElementsByTagName("path").Count, Is.GreaterThan(2), name + " draws lines");
                Assert.That(svg.InnerText, Does.Contain("virtual time (s)"), name + " has its axis label as text");
            }
            ParseSvg(InlineSvg().Match(html).Value, "the topology");
            Assert.That(html, Does.Contain(">red</text>").And.Contain(">blue</text>").And.Contain(">router</text>"));
            Assert.That(html, Does.Match(@"<td>z2_net0</td><td>ipspoofed</td><td class=""n"">[1-9]\d*</td>"), "red's spoofing, by reason");
            Assert.That(html, Does.Contain("h1# zlogin red iperf -c 10.2.0.10 -t 2"), "the transcript");
            Assert.That(files1.Keys, Has.None.Contains("staging"), "nothing left of the staging directory");
            Assert.That(Files(rep2), Is.EqualTo(files1), "the same run gives the same bytes in every file");
            Assert.That(Files(plot), Is.EqualTo(files1.Where(f => f.Key.StartsWith("charts/", StringComparison.Ordinal))
                .ToDictionary(f => f.Key["charts/".Length..], f => f.Value)), "--plot writes the same charts, alone");
            Assert.That(second.Out, Is.EqualTo(first.Out), "the transcript on standard output");
        }
    }

    [Test]
    public void Two_hosts_on_a_wire_with_a_delay_are_charted_at_each_end_and_the_wire_drawn()
    {
        File.WriteAllText(Path.Combine(_dir, "w.scn"), """
            host a nics=1
            host b nics=1
            wire a/e1000g0 b/e1000g0 delay=50us
            host a
            pktgen -d e1000g0 -c 200 -s 1000 -r 1k --dst broadcast
            sleep 1s
            """);
        string rep = Path.Combine(_dir, "rep");
        var r = Smartos("--outdir", _dir, "--report", rep, "--sample", "50ms", Path.Combine(_dir, "w.scn"));
        Assert.That(r.Code, Is.Zero, r.Err);
        string html = File.ReadAllText(Path.Combine(rep, "index.html"));
        var svg = ParseSvg(InlineSvg().Match(html).Value, "the topology");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(svg.OuterXml, Does.Contain("class=\"wire\""));
            Assert.That(html, Does.Contain("phys: received 0 frames (0 bytes), sent 200 frames (200000 bytes)"), "a's NIC");
            Assert.That(html, Does.Contain("phys: received 200 frames (200000 bytes), sent 0 frames"), "b's NIC");
            Assert.That(File.Exists(Path.Combine(rep, "charts", "a-e1000g0.svg")) && File.Exists(Path.Combine(rep, "charts", "b-e1000g0.svg")), Is.True);
            Assert.That(html, Does.Contain("The run wrote no capture file."));
        }
    }

    [Test]
    public void A_report_directory_that_is_a_file_is_refused_before_the_run_and_the_file_left_alone()
    {
        string file = Path.Combine(_dir, "taken");
        File.WriteAllText(file, "mine");
        var r = Smartos("--outdir", _dir, "--report", file, Tenants);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.EqualTo(2));
            Assert.That(r.Err, Is.EqualTo($"smartos run: {file}: Not a directory\n"));
            Assert.That(r.Out, Is.Empty, "the scenario did not run");
            Assert.That(File.ReadAllText(file), Is.EqualTo("mine"));
        }
        var under = Smartos("--outdir", _dir, "--plot", Path.Combine(file, "charts"), Tenants);
        Assert.That(under.Code, Is.EqualTo(2));
        Assert.That(under.Err, Does.StartWith($"smartos run: {Path.Combine(file, "charts")}: "));
        Assert.That(under.Out, Is.Empty);
    }

    [Test]
    public void A_report_directory_that_cannot_be_written_is_refused_before_the_run()
    {
        if (geteuid() == 0)
        {
            // Root writes through permission bits, but not into sysfs: a directory there stands in.
            const string sys = "/sys/kernel";
            if (!Directory.Exists(sys)) Assert.Ignore("root writes through permission bits, and there is no /sys/kernel");
            var before = Directory.GetFileSystemEntries(sys);
            var rr = Smartos("--outdir", _dir, "--report", sys, Tenants);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(rr.Code, Is.EqualTo(2));
                Assert.That(rr.Err, Does.StartWith($"smartos run: {sys}: "));
                Assert.That(Directory.GetFileSystemEntries(sys), Is.EquivalentTo(before));
            }
            return;
        }
        string locked = Path.Combine(_dir, "locked");
        Directory.CreateDirectory(locked);
        new DirectoryInfo(locked).UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserExecute;
        var r = Smartos("--outdir", _dir, "--report", locked, Tenants);
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Is.EqualTo($"smartos run: {locked}: Permission denied\n"));
        Assert.That(Directory.GetFileSystemEntries(locked), Is.Empty);
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();

    [Test]
    public void A_write_that_fails_leaves_the_directory_as_it_was_and_no_staging_behind()
    {
        string rep = Path.Combine(_dir, "rep");
        Directory.CreateDirectory(rep);
        File.WriteAllText(Path.Combine(rep, "charts"), "a file where the charts' directory goes");
        string? failed = ReportWriter.Write(rep, [("charts/h1-e1000g0.svg", [1, 2, 3]), ("index.html", [4, 5])]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(failed, Does.StartWith(rep + ": "));
            Assert.That(Directory.GetFileSystemEntries(rep).Select(Path.GetFileName), Is.EqualTo(new[] { "charts" }), "no index.html, no staging directory");
            Assert.That(File.ReadAllText(Path.Combine(rep, "charts")), Is.EqualTo("a file where the charts' directory goes"));
        }
    }

    [TestCase("--sample", "0ms", "bad sample interval '0ms'")]
    [TestCase("--sample", "fast", "bad sample interval 'fast'")]
    public void A_bad_sample_interval_is_refused(string option, string value, string message)
    {
        var r = Smartos("--report", Path.Combine(_dir, "rep"), option, value, Tenants);
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain(message));
        Assert.That(Directory.Exists(Path.Combine(_dir, "rep")), Is.False);
    }

    [Test]
    public void A_sample_interval_without_a_report_or_plot_is_refused()
    {
        var r = Smartos("--sample", "1s", Tenants);
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Err, Does.Contain("--sample says how often --report or --plot samples the links"));
    }

    [Test]
    public void An_observed_run_still_says_when_a_command_waits_for_nothing()
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var runner = new ScenarioRunner(o, e, _dir);
        runner.ObserveLinks(100 * Kernel.Time.Millisecond, 100);
        int code = runner.Run("host h1 nics=1\nsnoop -d e1000g0 -c 1\n", "t.scn");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(e.ToString(), Does.Contain("is still waiting and nothing else is left to run"));
    }

    [Test]
    public void Clip_ids_of_a_chart_which_Skia_numbers_in_hexadecimal_are_renumbered_in_order_of_appearance()
    {
        Assert.That(Charts.Renumber("<clipPath id=\"cl_9\"/><g clip-path=\"url(#cl_9)\"/><clipPath id=\"cl_1a\"/><text>cl_9</text>"),
            Is.EqualTo("<clipPath id=\"cl_1\"/><g clip-path=\"url(#cl_1)\"/><clipPath id=\"cl_2\"/><text>cl_9</text>"), "a link named cl_9 keeps its name");
    }
}
