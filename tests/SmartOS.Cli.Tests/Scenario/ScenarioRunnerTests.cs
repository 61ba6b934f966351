using System.Diagnostics;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

public partial class ScenarioRunnerTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-run-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private (int Code, string Out, string Err) Run(string script, string? dir = null, ulong seed = 1, string fileName = "test.scn")
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, dir ?? _dir, seed).Run(script, fileName);
        return (code, o.ToString(), e.ToString());
    }

    internal static string RepoRoot()
    {
        var d = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "SmartOS.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("cannot find the repository root");
    }

    [Test]
    public void A_word_beginning_with_SCENARIO_DIR_names_a_file_beside_the_scenario_and_is_echoed_as_written()
    {
        string beside = Path.Combine(_dir, "scn");
        Directory.CreateDirectory(beside);
        File.WriteAllText(Path.Combine(beside, "p.json"), """{ "brand": "joyent", "max_physical_memory": 128 }""");
        var (code, o, e) = Run("host h1\nvmadm validate create -f $SCENARIO_DIR/p.json\n! vmadm validate create -f p.json\n",
            fileName: Path.Combine(beside, "t.scn"));
        Assert.That(code, Is.Zero, e);
        Assert.That(o, Does.Contain("h1# vmadm validate create -f $SCENARIO_DIR/p.json\nVALID 'create' payload for joyent brand VMs.\n"));
        Assert.That(o, Does.Contain($"Could not find file '{Path.Combine(_dir, "p.json")}'"), "a plain relative path is the working directory's");
    }

    [Test]
    public void SCENARIO_DIR_after_a_property_s_equals_sign_names_the_file_beside_the_scenario()
    {
        string beside = Path.Combine(_dir, "scn");
        Directory.CreateDirectory(beside);
        File.WriteAllText(Path.Combine(beside, "map.json"), """{ "2:0:0:0:1:1": { "ip": "10.0.0.1", "port": 4789 } }""");
        var (code, o, e) = Run("host h1 nics=1\n"
            + "dladm create-overlay -e vxlan -s files -v 7 -p vxlan/listen_ip=10.0.0.1,files/config=${SCENARIO_DIR}/map.json ov0\n"
            + "dladm show-overlay -p -o property,value ov0\n"
            + "! vmadm validate create -f $SCENARIO_DIR/a$SCENARIO_DIRX$PATH.json\n",
            fileName: Path.Combine(beside, "t.scn"));
        Assert.That(code, Is.Zero, e + o);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o, Does.Contain("h1# dladm create-overlay -e vxlan -s files -v 7 -p vxlan/listen_ip=10.0.0.1,files/config=${SCENARIO_DIR}/map.json ov0\n"));
            Assert.That(o, Does.Contain($"files/config:{Path.Combine(beside, "map.json").Replace(":", "\\:")}\n"));
            Assert.That(o, Does.Contain($"Could not find file '{Path.Combine(beside, "a$SCENARIO_DIRX$PATH.json")}'"),
                "a longer name, and other variables inside a word, are left as written");
        }
    }

    [Test]
    public void A_transcript_echoes_each_command_with_its_host()
    {
        var (code, o, _) = Run("host h1 nics=1\ndladm create-etherstub stub0\ndladm show-etherstub\n");
        Assert.That(code, Is.Zero);
        Assert.That(o, Does.StartWith("h1# dladm create-etherstub stub0\nh1# dladm show-etherstub\nLINK\nstub0\n# end of scenario at 0.000000s virtual time\n"));
    }

    [Test]
    public void Expectations_that_fail_name_the_line_and_fail_the_run()
    {
        var (code, _, e) = Run("host h1\n# comment\ndladm show-phys\nexpect e1000g0\nexpect nothing-like-this\nexpect-not e1000g1\n");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(e, Does.Contain("test.scn:5: expect /nothing-like-this/ did not match"));
            Assert.That(e, Does.Contain("test.scn:6: expect-not /e1000g1/ matched"));
            Assert.That(e, Does.Not.Contain("test.scn:4:"));
        }
    }

    [Test]
    public void Bang_means_the_command_must_fail()
    {
        Assert.That(Run("host h1\n! dladm delete-vnic nosuch0\n").Code, Is.Zero);
        var (code, _, e) = Run("host h1\n! dladm create-etherstub stub0\n");
        Assert.That((code, e.Contains("test.scn:2: 'dladm create-etherstub stub0' succeeded but was expected to fail")), Is.EqualTo((1, true)));
    }

    [Test]
    public void A_failing_command_fails_the_run()
    {
        var (code, _, e) = Run("host h1\ndladm delete-vnic nosuch0\n");
        Assert.That((code, e.Contains("test.scn:2: 'dladm delete-vnic nosuch0' exited 1")), Is.EqualTo((1, true)));
    }

    [Test]
    public void Sleep_advances_virtual_time()
    {
        var (_, o, _) = Run("host h1\nsleep 1.5s\nsleep 250ms\n");
        Assert.That(o, Does.Contain("# end of scenario at 1.750000s virtual time"));
    }

    [Test]
    public void Wires_join_hosts_and_carry_frames_with_delay()
    {
        string script = """
            host a nics=1
            host b nics=1
            wire a/e1000g0 b/e1000g0 speed=100M delay=1ms
            host b
            snoop -d e1000g0 -c 1 &
            host a
            pktgen -d e1000g0 -c 1 -s 1250
            sleep 2ms
            stop
            """;
        var (code, o, _) = Run(script);
        Assert.That(code, Is.Zero, o);
        Assert.That(o, Does.Contain("[background, line 5] b# snoop -d e1000g0 -c 1\nUsing device e1000g0 (promiscuous mode)\n"));
    }

    [TestCase("wire a/e1000g0 a/e1000g0", "a wire needs two different NICs")]
    [TestCase("wire a/e1000g0 a/e1000g9", "no physical NIC 'e1000g9' on host a")]
    [TestCase("wire a/e1000g0 zz/e1000g0", "no host 'zz'")]
    [TestCase("wire a/e1000g0 a/e1000g1 speed=fast", "bad speed 'fast'")]
    [TestCase("wire a/e1000g0 a/e1000g1 loss=200%", "bad loss '200%'")]
    [TestCase("wire a/e1000g0 a/e1000g1 dup=lots", "bad dup 'lots'")]
    [TestCase("wire a/e1000g0 a/e1000g1 reorder=2", "bad reorder '2'")]
    [TestCase("wire a/e1000g0 a/e1000g1 colour=red", "unknown wire option 'colour'")]
    [TestCase("sleep forever", "usage: sleep DURATION")]
    [TestCase("disk d0 huge", "usage: disk FILE SIZE (SIZE as 64m, 1g)")]
    [TestCase("host", "usage: host NAME [nics=N]")]
    [TestCase("expect", "usage: expect REGEX")]
    [TestCase("dladm show-link 'unterminated", "unterminated quote")]
    public void Bad_directives_are_reported_with_their_line(string line, string message)
    {
        var (code, _, e) = Run("host a nics=2\n" + line + "\n");
        Assert.That((code, e), Is.EqualTo((1, $"smartos run: test.scn:2: {message}" + e[(e.IndexOf(message, StringComparison.Ordinal) + message.Length)..])));
        Assert.That(e, Does.Contain($"test.scn:2: {message}"));
    }

    [Test]
    public void A_foreground_command_that_never_ends_is_reported()
    {
        var (code, _, e) = Run("host a\ndladm create-etherstub stub0\nsnoop -d e1000g0\n");
        Assert.That((code, e.Contains("test.scn:3: 'snoop -d e1000g0' is still waiting and nothing else is left to run")), Is.EqualTo((1, true)));
    }

    [Test]
    public void Commands_before_any_host_are_an_error()
    {
        Assert.That(Run("dladm show-link\n").Err, Does.Contain("test.scn:1: no host: start the scenario with 'host NAME'"));
    }

    [TestCase("vlan-isolation.scn", 6)]
    [TestCase("ip-stack.scn", 4)]   // pcapng
    [TestCase("zpool.scn", 0)]      // pools on disk files in the run directory
    public void The_same_script_gives_byte_identical_output_and_pcaps(string example, int pcapCount)
    {
        string path = Path.Combine(RepoRoot(), "examples", example);
        string script = File.ReadAllText(path);
        string d1 = Path.Combine(_dir, "one"), d2 = Path.Combine(_dir, "two");
        Directory.CreateDirectory(d1);
        Directory.CreateDirectory(d2);
        var r1 = Run(script, d1);
        var r2 = Run(script, d2);
        var pcaps = Directory.GetFiles(d1, "*.pcap*").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r1.Code, Is.Zero, r1.Err);
            Assert.That(r2.Out, Is.EqualTo(r1.Out));
            Assert.That(pcaps, Has.Length.EqualTo(pcapCount));
            foreach (string? name in pcaps)
                Assert.That(File.ReadAllBytes(Path.Combine(d2, name!)), Is.EqualTo(File.ReadAllBytes(Path.Combine(d1, name!))), name);
        }
    }

    /// <summary>The examples this test runs: all but those that boot Linux (a boot costs about a
    /// minute, so CI makes it once, in LinuxVmScenarioTests, which runs linux-vm.scn and checks it).</summary>
    private static IEnumerable<string> Examples()
        => Directory.GetFiles(Path.Combine(RepoRoot(), "examples"), "*.scn")
            .Where(path => !File.ReadAllText(path).Contains("$SMARTOS_LINUX_GUEST", StringComparison.Ordinal))
            .Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    /// <summary>Each example passes, and reads well in a terminal: no command of it prints more than
    /// two screenfuls (long listings are filtered or cut with -c).</summary>
    [TestCaseSource(nameof(Examples))]
    public void Example_scenario_passes_printing_at_most_two_screenfuls_per_command(string example)
    {
        const int TwoScreenfuls = 48;
        string path = Path.Combine(RepoRoot(), "examples", example);
        string script = File.ReadAllText(path);
        if (script.Contains("\"guest\":", StringComparison.Ordinal) && SmartOS.Virt.GuestCompiler.FindGcc(out string why) == null)
            Assert.Ignore($"its VM's guest is built with gcc: {why}");
        var (code, o, e) = Run(script, fileName: path);
        Assert.That(code, Is.Zero, $"{example}:\n{e}\n{o}");
        string? command = null;
        int lines = 0;
        foreach (string line in o.Split('\n'))
        {
            if (TranscriptCommand().IsMatch(line)) (command, lines) = (line, 0);
            else Assert.That(++lines, Is.LessThanOrEqualTo(TwoScreenfuls), $"{example}: '{command}' prints more than {TwoScreenfuls} lines");
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^([A-Za-z0-9_-]+# |\[background, line \d+\] )")]
    private static partial System.Text.RegularExpressions.Regex TranscriptCommand();

    [Test]
    public void Echo_prints_its_words_as_a_shell_would()
    {
        var (code, o, _) = Run("host h1\necho \"red's link\"   and 'blue'\n");
        Assert.That((code, o), Is.EqualTo((0, "red's link and blue\n# end of scenario at 0.000000s virtual time\n")));
    }

    /// <summary>ip-stack.scn's pcaps hold the TCP of a lossy transfer: tshark checks every checksum
    /// and flags no malformed packet and no expert error (a broken TCP sequence would be one).</summary>
    [TestCase("vlan-isolation.scn")]
    [TestCase("ip-stack.scn")]
    public void Tshark_reads_every_pcap_of_the_example_without_a_malformed_packet(string example)
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        var (code, _, e) = Run(File.ReadAllText(Path.Combine(RepoRoot(), "examples", example)));
        Assert.That(code, Is.Zero, e);
        foreach (string pcap in Directory.GetFiles(_dir, "*.pcap*"))
        {
            var psi = new ProcessStartInfo("/usr/bin/tshark", ["-n", "-r", pcap, "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                "-Y", "_ws.malformed || tcp.checksum.status == 0 || udp.checksum.status == 0 || ip.checksum.status == 0 || _ws.expert.severity == error"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            Assert.That(p.WaitForExit(60_000), Is.True, "tshark did not finish within 60 s");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(p.ExitCode, Is.Zero, stderr.Result);
                Assert.That(stdout.Result.Trim(), Is.Empty, $"frames of {pcap} tshark flags as malformed, with a bad checksum or an error");
            }
        }
    }
}

public class ScenarioHereDocumentTests
{
    [Test]
    public void A_here_document_is_the_commands_standard_input()
    {
        var stderr = new StringWriter();
        var runner = new SmartOS.Cli.Scenario.ScenarioRunner(new StringWriter(), stderr, Path.GetTempPath());
        int code = runner.Run("""
            host h1
            vmadm create <<JSON
            { "alias": "web", "autoboot": false }
            JSON
            vmadm list -H -o alias,state
            expect ^web +stopped$
            """, "t.scn");
        Assert.That(code, Is.Zero, stderr.ToString());
    }

    [Test]
    public void An_unclosed_here_document_is_an_error_naming_its_line()
    {
        var stderr = new StringWriter();
        var runner = new SmartOS.Cli.Scenario.ScenarioRunner(new StringWriter(), stderr, Path.GetTempPath());
        int code = runner.Run("host h1\nvmadm create <<JSON\n{ }\n", "t.scn");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(stderr.ToString(), Does.Contain("t.scn:2: here-document '<<JSON' has no closing 'JSON' line"));
        }
    }
}
