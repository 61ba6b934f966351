using SmartOS.Testing;

namespace SmartOS.Kernel.Tests;

public class KstatTests
{
    private sealed class Counters(params (string Name, long Value)[] stats) : IKstatSource
    {
        public (string Name, long Value)[] Stats = stats;

        public void Snapshot(List<KeyValuePair<string, long>> into)
        {
            foreach (var (n, v) in Stats) into.Add(new(n, v));
        }
    }

    private static KstatRegistry Chain()
    {
        var r = new KstatRegistry();
        r.Add("link", 0, "vnic1", "net", new Counters(("opackets", 3), ("obytes", 1234), ("ipackets", 2)));
        r.Add("link", 0, "e1000g0", "net", new Counters(("obytes", 99)));
        r.Add("unix", 1, "system_misc", "misc", new Counters(("nproc", 42)));
        r.Add("link", 0, "vnic0", "net", new Counters(("obytes", 7)));
        r.Add("unix", 0, "system_misc", "misc", new Counters(("nproc", 41)));
        return r;
    }

    [Test]
    public void Parsable_output_is_one_tab_separated_line_per_statistic_sorted()
    {
        Assert.That(Chain().FormatParsable(null), Is.EqualTo(
            "link:0:e1000g0:obytes\t99\n" +
            "link:0:vnic0:obytes\t7\n" +
            "link:0:vnic1:ipackets\t2\n" +
            "link:0:vnic1:obytes\t1234\n" +
            "link:0:vnic1:opackets\t3\n" +
            "unix:0:system_misc:nproc\t41\n" +
            "unix:1:system_misc:nproc\t42\n"));
    }

    private static IEnumerable<TestCaseData> Patterns() => DataFile.Cases("kstat-patterns.txt", 2);

    [TestCaseSource(nameof(Patterns))]
    public void Patterns_select_by_field(DataCase c)
    {
        Assert.That(Chain().FormatParsable(c[0]), Is.EqualTo(c[1]), c.Where);
    }

    [Test]
    public void More_than_four_pattern_fields_is_a_format_error()
    {
        Assert.That(() => Chain().FormatParsable("a:b:c:d:e"), Throws.TypeOf<FormatException>());
    }

    [Test]
    public void A_bad_regular_expression_is_a_parse_error_for_the_caller_to_report()
    {
        Assert.That(() => Chain().FormatParsable("link:0:/[/"), Throws.InstanceOf<System.Text.RegularExpressions.RegexParseException>());
    }

    [Test]
    public void Values_are_read_when_asked_not_when_registered()
    {
        var r = new KstatRegistry();
        var c = new Counters(("obytes", 1));
        r.Add("link", 0, "vnic0", "net", c);
        c.Stats = [("obytes", 500)];

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Read("link", "vnic0", "obytes"), Is.EqualTo(500));
            Assert.That(r.FormatParsable("link:0:vnic0:obytes"), Is.EqualTo("link:0:vnic0:obytes\t500\n"));
        }
    }

    [Test]
    public void Read_of_an_unknown_statistic_is_null()
    {
        var r = Chain();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Read("link", "vnic0", "nosuch"), Is.Null);
            Assert.That(r.Read("link", "nosuch", "obytes"), Is.Null);
        }
    }

    [Test]
    public void Renamed_and_removed_kstats_follow_the_chain()
    {
        var r = new KstatRegistry();
        var k = r.Add("link", 0, "vnic0", "net", new Counters(("obytes", 1)));
        k.Name = "web0";
        Assert.That(r.FormatParsable("link"), Is.EqualTo("link:0:web0:obytes\t1\n"));

        r.Remove(k);
        Assert.That(r.FormatParsable("link"), Is.Empty);
    }

    [Test]
    public void Kstats_and_statistics_sort_as_strcasecmp_does()
    {
        var r = new KstatRegistry(() => 5_000_000_000);
        r.Add("link", 0, "vnic_b", "net", new Counters(("Zeta", 1), ("alpha", 2), ("a_b", 3), ("aB", 4)));
        r.Add("link", 0, "VNIC_A", "net", new Counters());
        r.Add("link", 0, "vnicA", "net", new Counters());
        var sorted = r.Sorted();
        using (Assert.EnterMultipleScope())
        {
            // strcasecmp folds letters to lower case, so '_' (0x5f) sorts before every letter.
            Assert.That(sorted.Select(k => k.Name), Is.EqualTo(new[] { "VNIC_A", "vnic_b", "vnicA" }));
            Assert.That(r.Values(sorted[1], withClass: true).Select(v => $"{v.Name}={v.Format()}"), Is.EqualTo(new[]
            {
                "a_b=3", "aB=4", "alpha=2", "class=net", "crtime=5.000000000", "snaptime=5.000000000", "Zeta=1",
            }));
        }
    }

    [TestCase(0L, "0")]
    [TestCase(1L, "0.000000001")]
    [TestCase(12_345_678_901L, "12.345678901")]
    public void Hrtimes_print_as_seconds_with_nine_decimals(long ns, string text)
    {
        Assert.That(new KstatValue("crtime", KstatValueKind.HrTime, ns).Format(), Is.EqualTo(text));
    }

    private static IEnumerable<TestCaseData> Globs() => DataFile.Cases("kstat-globs.txt", 3);

    [TestCaseSource(nameof(Globs))]
    public void Glob_matches_like_kstat(DataCase c)
    {
        Assert.That(Glob.Match(c[0], c[1]), Is.EqualTo(c.Bool(2)), c.Where);
    }
}
