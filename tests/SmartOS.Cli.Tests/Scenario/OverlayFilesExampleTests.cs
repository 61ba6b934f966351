using System.Diagnostics;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>examples/overlay-files.scn: one tenant network (red, VNID 100) over three routed hosts by
/// the files search plugin, and a second tenant (blue, VNID 200) on the same addresses kept apart.
/// The transcript shows every red zone reaching the other two; tshark (a dissector no one here
/// wrote) reads each host's underlay capture and finds each VNI only between the hosts that house
/// that tenant.</summary>
public class OverlayFilesExampleTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-overlay-files-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Run()
    {
        // The real path, so $SCENARIO_DIR finds examples/overlay-files/*.json beside it.
        string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", "overlay-files.scn");
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, _dir, 1).Run(File.ReadAllText(path), path);
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void Every_red_zone_reaches_the_other_two_and_blue_reaches_only_its_own()
    {
        var (code, o, e) = Run();
        Assert.That(code, Is.Zero, e + o);
        string[] ok = ["2 packets transmitted, 2 packets received, 0% packet loss"];
        using (Assert.EnterMultipleScope())
        {
            foreach (string ping in new[] { "h1# zlogin red1 ping -s 192.168.50.2", "h1# zlogin red1 ping -s 192.168.50.3",
                "h2# zlogin red2 ping -s 192.168.50.1", "h2# zlogin red2 ping -s 192.168.50.3",
                "h3# zlogin red3 ping -s 192.168.50.1", "h3# zlogin red3 ping -s 192.168.50.2",
                "h1# zlogin blue1 ping -s 192.168.50.2", "h3# zlogin blue2 ping -s 192.168.50.1" })
            {
                int at = o.IndexOf(ping, StringComparison.Ordinal);
                Assert.That(at, Is.GreaterThanOrEqualTo(0), ping);
                if (at >= 0) Assert.That(o[at..].Split("\nh")[0], Does.Contain(ok[0]), ping);
            }
            int blue3 = o.IndexOf("h1# zlogin blue1 ping 192.168.50.3 1", StringComparison.Ordinal);
            Assert.That(blue3, Is.GreaterThanOrEqualTo(0));
            Assert.That(o[blue3..].Split("\nh")[0], Does.Contain("no answer from 192.168.50.3"), "blue has no .3");
        }
    }

    private List<string[]> Vxlan(string pcap)
    {
        var psi = new ProcessStartInfo("/usr/bin/tshark", ["-n", "-r", Path.Combine(_dir, pcap), "-Y", "vxlan", "-T", "fields", "-E", "occurrence=f",
            "-e", "ip.src", "-e", "ip.dst", "-e", "vxlan.vni", "-e", "_ws.malformed"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(60_000), Is.True, "tshark did not finish within 60 s");
        Assert.That(p.ExitCode, Is.Zero, stderr.Result);
        return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
    }

    /// <summary>(the other host, VNI) pairs of the VXLAN datagrams in one host's underlay capture.</summary>
    private List<string> Peers(string pcap, string self)
    {
        var rows = Vxlan(pcap);
        Assert.That(rows.All(r => r[^1] == ""), Is.True, $"{pcap}: none malformed");
        return rows.Select(r => $"{(r[0] == self ? r[1] : r[0])} vni {r[2]}").Distinct().Order(StringComparer.Ordinal).ToList();
    }

    [Test]
    public void Tshark_finds_each_vni_only_between_the_hosts_of_its_tenant()
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        var (code, o, e) = Run();
        Assert.That(code, Is.Zero, e + o);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Peers("h1-underlay.pcap", "10.0.1.10"), Is.EqualTo(new[] { "10.0.2.10 vni 100", "10.0.3.10 vni 100", "10.0.3.10 vni 200" }));
            Assert.That(Peers("h2-underlay.pcap", "10.0.2.10"), Is.EqualTo(new[] { "10.0.1.10 vni 100", "10.0.3.10 vni 100" }));
            Assert.That(Peers("h3-underlay.pcap", "10.0.3.10"), Is.EqualTo(new[] { "10.0.1.10 vni 100", "10.0.1.10 vni 200", "10.0.2.10 vni 100" }));
        }
    }
}
