using System.Diagnostics;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>examples/bridge-loop.scn, three hosts' bridges in a triangle: it converges the same way
/// every run, and its pcaps hold BPDUs that tshark (a dissector no one here wrote) decodes as STP
/// with the root the scenario expects.</summary>
public class BridgeScenarioTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-bridge-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static string Script() => File.ReadAllText(Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", "bridge-loop.scn"));

    private static (int Code, string Out, string Err) Run(string script, string dir)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, dir, 1).Run(script, "bridge-loop.scn");
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void The_triangle_blocks_one_port_and_a_broadcast_reaches_each_host_once_run_after_run()
    {
        string d1 = Path.Combine(_dir, "one"), d2 = Path.Combine(_dir, "two");
        Directory.CreateDirectory(d1);
        Directory.CreateDirectory(d2);
        var r1 = Run(Script(), d1);
        var r2 = Run(Script(), d2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r1.Code, Is.Zero, r1.Err);
            Assert.That(r2.Out, Is.EqualTo(r1.Out));
            Assert.That(System.Text.RegularExpressions.Regex.Count(r1.Out, @"\bblocking\b"), Is.EqualTo(1));
            Assert.That(File.ReadAllBytes(Path.Combine(d2, "h1-e1000g0.pcap")), Is.EqualTo(File.ReadAllBytes(Path.Combine(d1, "h1-e1000g0.pcap"))));
        }
    }

    [Test]
    public void Tshark_decodes_the_bpdus_as_stp_with_h1_as_root()
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        var (code, _, e) = Run(Script(), _dir);
        Assert.That(code, Is.Zero, e);
        string pcap = Path.Combine(_dir, "h1-e1000g0.pcap");
        var psi = new ProcessStartInfo("/usr/bin/tshark", ["-n", "-r", pcap, "-Y", "stp", "-T", "fields",
            "-e", "stp.type", "-e", "stp.root.prio", "-e", "stp.root.hw", "-e", "stp.hello", "-e", "stp.forward", "-e", "stp.max_age", "-e", "_ws.malformed"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(60_000), Is.True, "tshark did not finish within 60 s");
        var lines = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ExitCode, Is.Zero, stderr.Result);
            Assert.That(lines, Has.Count.GreaterThanOrEqualTo(9), "h1 is root: a BPDU a second on its port");
            Assert.That(lines.All(f => f[0] is "0x00" or "0x80" && f[^1] == ""), Is.True, "configuration and TCN BPDUs, none malformed");
            // h2's ports forwarding is a topology change: it tells the root with a TCN (802.1D 8.7.5).
            Assert.That(lines.Count(f => f[0] == "0x80"), Is.GreaterThanOrEqualTo(1));
            // From the first second on, every configuration BPDU names h1 (priority 4096) as root.
            Assert.That(lines.Where(f => f[0] == "0x00").Skip(2).Select(f => (f[1], f[3], f[4], f[5])).Distinct(), Is.EqualTo(new[] { ("4096", "1", "4", "6") }));
        }
    }
}
