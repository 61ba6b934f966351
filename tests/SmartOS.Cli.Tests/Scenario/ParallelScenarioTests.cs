using System.Globalization;
using System.Text;
using SmartOS.Cli.Scenario;
using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>
/// kernel/Timeline.cs rule 3: a scenario gives the same transcript and the same pcaps on one thread
/// as on several, for the examples and for random topologies of hosts, wires and zones.
/// </summary>
public class ParallelScenarioTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-par-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private sealed record Result(int Code, string Out, string Err, Dictionary<string, byte[]> Files, long Windows, int Partitions);

    private Result Run(string script, int threads, string fileName, string tag, int cellOrder = 0)
    {
        string dir = Path.Combine(_dir, tag);
        Directory.CreateDirectory(dir);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var runner = new ScenarioRunner(o, e, dir, 1, threads);
        runner.World.Timeline.SerialCellOrder = cellOrder;
        int code = runner.Run(script, fileName);
        var files = Directory.GetFiles(dir, "*.pcap*").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        return new Result(code, o.ToString(), e.ToString(), files, runner.World.Timeline.Windows, runner.World.Timeline.Partitions);
    }

    private static void AssertSame(Result one, Result many, string what)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(many.Code, Is.EqualTo(one.Code), what);
            Assert.That(many.Out, Is.EqualTo(one.Out), what);
            Assert.That(many.Err, Is.EqualTo(one.Err), what);
            Assert.That(many.Windows, Is.EqualTo(one.Windows), what + ": the same windows");
            Assert.That(many.Files.Keys.Order(), Is.EqualTo(one.Files.Keys.Order()), what);
            foreach (var (name, bytes) in one.Files)
                Assert.That(many.Files.GetValueOrDefault(name), Is.EqualTo(bytes), $"{what}: {name}");
        }
    }

    /// <summary>The examples with several hosts, on 1, 2 and 3 threads (2 twice, so that a race has
    /// two chances to show).</summary>
    [TestCase("ip-stack.scn", true)]
    [TestCase("vlan-isolation.scn", true)]
    [TestCase("protection.scn", false)] // a wire of zero delay: its hosts are one cell
    [TestCase("vmsend.scn", false)]
    public void A_multi_host_example_gives_the_same_bytes_on_any_number_of_threads(string example, bool windows)
    {
        string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", example);
        string script = File.ReadAllText(path);
        var one = Run(script, 1, path, "t1");
        Assert.That(one.Code, Is.Zero, one.Err);
        Assert.That(one.Windows > 0, Is.EqualTo(windows), "windows run on one thread too");
        var two = Run(script, 2, path, "t2");
        Assert.That(two.Partitions, Is.EqualTo(windows ? 2 : 1), "two cells run on two threads");
        AssertSame(one, two, "2 threads");
        AssertSame(one, Run(script, 2, path, "t2b"), "2 threads again");
        AssertSame(one, Run(script, 3, path, "t3"), "3 threads");
    }

    /// <summary>A single-host example runs as the one merge of rule 2 whatever the thread count.</summary>
    [TestCase("zones.scn")]
    [TestCase("tenants.scn")]
    public void A_single_host_example_is_unaffected_by_the_thread_count(string example)
    {
        string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", example);
        string script = File.ReadAllText(path);
        var one = Run(script, 1, path, "t1");
        var two = Run(script, 2, path, "t2");
        Assert.That(one.Code, Is.Zero, one.Err);
        Assert.That((one.Windows, two.Windows, two.Partitions), Is.EqualTo((0L, 0L, 1)), "no windows without a wire between hosts");
        AssertSame(one, two, "2 threads");
    }

    [TestCase(11)]
    [TestCase(23)]
    [TestCase(37)]
    public void A_random_topology_gives_the_same_bytes_on_any_number_of_threads(int seed)
    {
        string script = RandomTopology(seed);
        var one = Run(script, 1, "random.scn", "t1");
        Assert.That(one.Code, Is.Zero, $"{one.Err}\n{script}\n{one.Out}");
        Assert.That(one.Windows, Is.GreaterThan(0), script);
        Assert.That(one.Files, Has.Count.GreaterThanOrEqualTo(4).And.All.Matches<KeyValuePair<string, byte[]>>(f => f.Value.Length > 24),
            "a pcap of every wire's end, each holding frames, to compare");
        var two = Run(script, 2, "random.scn", "t2");
        Assert.That(two.Partitions, Is.EqualTo(2), script);
        AssertSame(one, two, "2 threads\n" + script);
        AssertSame(one, Run(script, 3, "random.scn", "t3"), "3 threads\n" + script);
    }

    /// <summary>Rule 3's premise, checked on one thread: the cells of a window run one after another,
    /// first to last and then last to first, give the bytes of the merge by time. State that two
    /// hosts share outside the wires shows here as a difference, whatever the timing of threads.</summary>
    [TestCase(11)]
    [TestCase(23)]
    [TestCase(37)]
    public void A_random_topology_gives_the_same_bytes_whatever_order_its_cells_run_in(int seed)
    {
        string script = RandomTopology(seed);
        var merged = Run(script, 1, "random.scn", "merged");
        Assert.That(merged.Code, Is.Zero, $"{merged.Err}\n{script}\n{merged.Out}");
        AssertSame(merged, Run(script, 1, "random.scn", "up", cellOrder: 1), "cells in ascending order\n" + script);
        AssertSame(merged, Run(script, 1, "random.scn", "down", cellOrder: -1), "cells in descending order\n" + script);
    }

    [TestCase("ip-stack.scn")]
    [TestCase("vlan-isolation.scn")]
    public void A_multi_host_example_gives_the_same_bytes_whatever_order_its_cells_run_in(string example)
    {
        string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", example);
        string script = File.ReadAllText(path);
        var merged = Run(script, 1, path, "merged");
        Assert.That(merged.Code, Is.Zero, merged.Err);
        AssertSame(merged, Run(script, 1, path, "up", cellOrder: 1), "cells in ascending order");
        AssertSame(merged, Run(script, 1, path, "down", cellOrder: -1), "cells in descending order");
    }

    [Test]
    public void The_generator_gives_a_topology_with_delays_and_a_cell_of_zero_delay()
    {
        var scripts = new[] { 11, 23, 37 }.Select(RandomTopology).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(scripts.Any(s => s.Contains(" delay=0us")), Is.True, "some wire of zero delay joins two hosts in one cell");
            Assert.That(scripts.All(s => s.Split('\n').Count(l => l.StartsWith("host ", StringComparison.Ordinal) && l.Contains("nics=")) >= 3), Is.True);
            Assert.That(scripts.All(s => s.Contains("iperf -c")), Is.True);
        }
    }

    /// <summary>
    /// K hosts (3 to 5) on a random tree of wires, each with a random delay (sometimes zero, so some
    /// hosts share a cell) and sometimes loss; a zone at each end of each wire, on the wire's own
    /// subnet. The zones ping across every wire, then send TCP across all of them at once while each
    /// host's global zone also pings itself.
    /// </summary>
    internal static string RandomTopology(int seed)
    {
        var r = new HostRandom((ulong)seed);
        int k = 3 + r.Next(3);
        var wires = new List<(int A, int B)>();
        for (int h = 1; h < k; h++) wires.Add((r.Next(h), h));
        if (k > 3) wires.Add((0, k - 1));
        var nics = new int[k];
        var ends = new List<(int Host, int Nic)[]>();
        foreach (var (a, b) in wires) ends.Add([(a, nics[a]++), (b, nics[b]++)]);
        long[] delays = [0, 10_000, 50_000, 100_000, 1_000_000];
        var s = new StringBuilder();
        for (int h = 0; h < k; h++) s.Append(CultureInfo.InvariantCulture, $"host h{h} nics={Math.Max(1, nics[h])}\n");
        for (int w = 0; w < wires.Count; w++)
        {
            // The first wire has no delay, so one cell always holds two hosts.
            long delay = w == 0 ? 0 : delays[1 + r.Next(delays.Length - 1)];
            string loss = r.Next(3) == 0 ? " loss=1%" : "";
            var (ea, eb) = (ends[w][0], ends[w][1]);
            s.Append(CultureInfo.InvariantCulture, $"wire h{ea.Host}/e1000g{ea.Nic} h{eb.Host}/e1000g{eb.Nic} delay={delay / 1000}us{loss}\n");
        }
        for (int w = 0; w < wires.Count; w++)
        {
            for (int side = 0; side < 2; side++)
            {
                var (host, nic) = ends[w][side];
                s.Append(CultureInfo.InvariantCulture, $"host h{host}\nnictagadm add w{w} e1000g{nic}\n");
                s.Append(CultureInfo.InvariantCulture, $$"""
                    vmadm create <<JSON
                    { "alias": "w{{w}}s{{side}}", "brand": "joyent-minimal", "max_physical_memory": 64,
                      "nics": [ { "nic_tag": "w{{w}}", "ips": ["10.{{w}}.0.{{side + 1}}/24"], "primary": true } ] }
                    JSON

                    """);
            }
        }
        // A capture of every wire's end, so that the comparison covers the frames on the wires too.
        for (int w = 0; w < wires.Count; w++)
            foreach (var (host, nic) in ends[w])
                s.Append(CultureInfo.InvariantCulture, $"host h{host}\nsnoop -d e1000g{nic} -o h{host}-e1000g{nic}.pcap &\n");
        for (int w = 0; w < wires.Count; w++)
        {
            var (host, _) = ends[w][1];
            s.Append(CultureInfo.InvariantCulture, $"host h{host}\nzlogin w{w}s1 iperf -s &\n");
        }
        s.Append("sleep 10ms\n");
        for (int w = 0; w < wires.Count; w++)
        {
            var (host, _) = ends[w][0];
            s.Append(CultureInfo.InvariantCulture, $"host h{host}\nzlogin w{w}s0 ping -s 10.{w}.0.2 56 2\n");
        }
        for (int w = 0; w < wires.Count; w++)
        {
            var (host, _) = ends[w][0];
            s.Append(CultureInfo.InvariantCulture, $"host h{host}\nzlogin w{w}s0 iperf -c 10.{w}.0.2 -t 1 -b {5 + r.Next(20)}M &\n");
        }
        s.Append("sleep 1200ms\n");
        for (int h = 0; h < k; h++) s.Append(CultureInfo.InvariantCulture, $"host h{h}\ndladm show-link -s\n");
        return s.ToString();
    }
}
