namespace SmartOS.Cli.Tests.Commands;

/// <summary>kstat(8)'s forms as illumos's usr/src/cmd/stat/kstat/kstat.c and kstat.h print them.</summary>
public class KstatCommandTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host whose clock has run 2.5 s, with a VNIC created at 1 s.</summary>
    private static CliHost Host()
    {
        var h = new CliHost();
        h.World.Scheduler.RunFor(1_000_000_000);
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.World.Scheduler.RunFor(1_500_000_000);
        return h;
    }

    [Test]
    public void Default_form_prints_kstat_h_DFLT_FMT_header_then_padded_statistics()
    {
        var h = Host();
        // DFLT_FMT: "module: %-30.30s  instance: %-6d\n" "name:   %-30.30s  class:    %-.30s\n";
        // KS_DFMT: "\t%-30s  "; crtime and snaptime as hrtimes with nine decimals; a blank line after.
        string o = h.Ok(A("kstat -m link -n web0 -s /^(crtime|snaptime|opackets)$/"));
        Assert.That(o, Is.EqualTo(
            "module: link                            instance: 0     \n" +
            "name:   web0                            class:    net\n" +
            "\tcrtime                          1.000000000\n" +
            "\topackets                        0\n" +
            "\tsnaptime                        2.500000000\n" +
            "\n"));
    }

    [Test]
    public void Parsable_form_includes_class_crtime_and_snaptime_as_kstat_p_does()
    {
        var h = Host();
        string o = h.Ok(A("kstat -p link:0:web0:/^(class|crtime|snaptime|ipackets)$/"));
        Assert.That(o, Is.EqualTo(
            "link:0:web0:class\tnet\n" +
            "link:0:web0:crtime\t1.000000000\n" +
            "link:0:web0:ipackets\t0\n" +
            "link:0:web0:snaptime\t2.500000000\n"));
    }

    [Test]
    public void Colon_form_names_only_form_and_quiet_form()
    {
        var h = Host();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("kstat -C link:0:web0:obytes")), Is.EqualTo("link:0:web0:obytes:0\n"));
            Assert.That(h.Ok(A("kstat -l link:0:web0:/^o/")), Is.EqualTo("link:0:web0:obytes\nlink:0:web0:oerrors\nlink:0:web0:opackets\n"));
            var quiet = h.Run(A("kstat -q link:0:web0"));
            Assert.That((quiet.ExitCode, quiet.Stdout), Is.EqualTo((0, "")));
            Assert.That(h.Run(A("kstat -q link:0:nosuch")).ExitCode, Is.EqualTo(1));
            var both = h.Run(A("kstat -q -p link"));
            Assert.That(both.ExitCode, Is.EqualTo(2));
            Assert.That(both.Stderr, Does.StartWith("-q and -lpj are mutually exclusive\n"));
        }
    }

    [Test]
    public void Json_form_follows_JSON_FMT()
    {
        var h = Host();
        string o = h.Ok(A("kstat -j link:0:web0:/^(opackets|snaptime)$/"));
        Assert.That(o, Is.EqualTo(
            "[{\n\t\"module\": \"link\",\n\t\"instance\": 0,\n\t\"name\": \"web0\",\n\t\"class\": \"net\",\n\t\"type\": 1,\n" +
            "\t\"snaptime\": 2.500000000,\n\t\"data\": {\n\t\t\"opackets\": 0,\n\t\t\"snaptime\": 2.500000000\n\t}\n}]\n"));
        using var doc = System.Text.Json.JsonDocument.Parse(h.Ok(A("kstat -j -m link")));
        Assert.That(doc.RootElement.GetArrayLength(), Is.EqualTo(3), "e1000g0, e1000g1 and web0");
    }

    [Test]
    public void Class_selects_kstats()
    {
        var h = Host();
        string o = h.Ok(A("kstat -p -c net -m link -s crtime"));
        Assert.That(o, Is.EqualTo("link:0:e1000g0:crtime\t0\nlink:0:e1000g1:crtime\t0\nlink:0:web0:crtime\t1.000000000\n"));
        Assert.That(h.Run(A("kstat -c nosuchclass")).ExitCode, Is.EqualTo(1));
    }

    [Test]
    public void Each_selector_prints_its_matches_in_turn()
    {
        var h = Host();
        string o = h.Ok(A("kstat -p link:0:web0:obytes link:0:e1000g0:obytes link:0:web0:obytes"));
        Assert.That(o, Is.EqualTo("link:0:web0:obytes\t0\nlink:0:e1000g0:obytes\t0\nlink:0:web0:obytes\t0\n"));
    }

    [TestCase("kstat -x", "illegal option -- x")]
    [TestCase("kstat -m link link:0", "[module[:instance[:name[:statistic]]]] and -m -i -n -s are mutually exclusive")]
    [TestCase("kstat link 0", "Interval must be an integer >= 1")]
    [TestCase("kstat link 1 0", "Count must be an integer >= 1")]
    [TestCase("kstat link 99999999999999999999", "Interval is too large")]
    [TestCase("kstat -T x link", "Usage:")]
    [TestCase("kstat a:b:c:d:e", "Usage:")]
    [TestCase("kstat link:0:/[/", "kstat: ")]
    public void Usage_errors_exit_2_with_kstat_c_wording(string line, string message)
    {
        var r = new CliHost().Run(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(2));
            Assert.That(r.Stderr, Does.Contain(message));
            Assert.That(r.Stderr, Does.Contain("kstat [ -Cjlpq ] [ -T d|u ] [ -c class ]"));
        }
    }

    [Test]
    public void An_interval_and_count_repeat_the_report_on_the_host_clock_with_timestamps()
    {
        var h = Host();
        string o = h.Ok(A("kstat -T u -p link:0:web0:snaptime 2 3"));
        Assert.That(o, Is.EqualTo(
            "2\nlink:0:web0:snaptime\t2.500000000\n\n" +
            "4\nlink:0:web0:snaptime\t4.500000000\n\n" +
            "6\nlink:0:web0:snaptime\t6.500000000\n"));
        Assert.That(h.Ok(A("kstat -T d -p link:0:web0:obytes")), Is.EqualTo("Thu Jan  1 00:00:06 UTC 1970\nlink:0:web0:obytes\t0\n"));
    }

    [Test]
    public void An_interval_needs_a_running_host()
    {
        Assert.That(Dispatcher.NeedsRunningHost(A("kstat -p link 1")), Is.True);
        Assert.That(Dispatcher.NeedsRunningHost(A("kstat -p link")), Is.False);
    }

    [Test]
    public void Help_prints_the_usage_and_succeeds()
    {
        var r = new CliHost().Run(A("kstat -h"));
        Assert.That((r.ExitCode, r.Stderr.StartsWith("Usage:\nkstat [ -Cjlpq ]", StringComparison.Ordinal)), Is.EqualTo((0, true)));
    }
}
