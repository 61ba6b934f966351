using System.Diagnostics;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>examples/overlay.scn, two tenants on the same addresses over VXLAN across a routed
/// underlay: the same bytes every run, and tshark (a dissector no one here wrote) decodes the
/// underlay capture as VXLAN with each tenant's VNI toward its own host.</summary>
public class OverlayScenarioTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-overlay-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static string Script() => File.ReadAllText(Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", "overlay.scn"));

    private static (int Code, string Out, string Err) Run(string dir)
    {
        Directory.CreateDirectory(dir);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, dir, 1).Run(Script(), "overlay.scn");
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void The_scenario_writes_the_same_underlay_and_overlay_captures_every_run()
    {
        string d1 = Path.Combine(_dir, "one"), d2 = Path.Combine(_dir, "two");
        var (c1, o1, e1) = Run(d1);
        var (c2, o2, _) = Run(d2);
        Assert.That(c1, Is.Zero, e1);
        Assert.That(c2, Is.Zero);
        Assert.That(o2, Is.EqualTo(o1));
        foreach (string f in new[] { "h1-underlay.pcap", "h1-red.pcap", "h1-blue.pcap" })
            Assert.That(File.ReadAllBytes(Path.Combine(d2, f)), Is.EqualTo(File.ReadAllBytes(Path.Combine(d1, f))), f);
    }

    [Test]
    public void Tshark_decodes_the_underlay_as_vxlan_with_red_to_h2_and_blue_to_h3()
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        var (code, _, e) = Run(_dir);
        Assert.That(code, Is.Zero, e);
        var psi = new ProcessStartInfo("/usr/bin/tshark", ["-n", "-r", Path.Combine(_dir, "h1-underlay.pcap"), "-Y", "vxlan", "-T", "fields", "-E", "occurrence=f",
            "-e", "ip.src", "-e", "ip.dst", "-e", "udp.srcport", "-e", "vxlan.vni", "-e", "vxlan.flags", "-e", "udp.checksum", "-e", "_ws.malformed"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(60_000), Is.True, "tshark did not finish within 60 s");
        var rows = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ExitCode, Is.Zero, stderr.Result);
            Assert.That(rows, Has.Count.GreaterThanOrEqualTo(12), "pings of both tenants both ways");
            Assert.That(rows.All(r => r[^1] == ""), Is.True, "none malformed");
            Assert.That(rows.All(r => int.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture) >= 49152), Is.True, "RFC 7348 source ports");
            Assert.That(rows.Select(r => (r[4], r[5])).Distinct(), Is.EqualTo(new[] { ("0x0800", "0x0000") }), "the I flag alone, and no outer UDP checksum (RFC 7348 section 5)");
            // Each VNI travels only between h1 and its tenant's host.
            Assert.That(rows.Select(r => (Peer: r[0] == "10.0.1.10" ? r[1] : r[0], Vni: r[3])).Distinct().OrderBy(x => x.Vni),
                Is.EqualTo(new[] { ("10.0.2.10", "100"), ("10.0.3.10", "200") }));
        }
    }
}
