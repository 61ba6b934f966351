using SmartOS.Cli.Scenario;
using SmartOS.Cli.Tests.Roots;
using SmartOS.Netstack;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>The command registry (tools/CommandRegistry.cs): every command describes itself once,
/// and the dispatcher, `smartos --help` and `smartos run` read those descriptions.</summary>
public class CommandRegistryTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static IEnumerable<string> Names() => CommandRegistry.All.Select(c => c.Name);

    [TestCaseSource(nameof(Names))]
    public void Every_registered_command_has_a_descriptor_with_one_line_of_help(string name)
    {
        Assert.That(CommandRegistry.TryGet(name, out var c), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.Name, Is.EqualTo(name));
            Assert.That(c.Summary, Is.Not.Empty.And.Not.Contain("\n"));
            // A getopt string: option letters, each followed by at most one ':' (takes a value).
            Assert.That(c.Options, Does.Match("^([A-Za-z0-9?]:?)*$"));
        }
    }

    [Test]
    public void The_netstack_programs_and_the_cli_commands_are_one_registry()
    {
        var names = Names().ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(names, Is.SupersetOf(Programs.All.Select(p => p.Name)));
            Assert.That(names, Is.SupersetOf(new[] { "dladm", "flowadm", "flowstat", "kstat", "nictagadm", "pktgen", "snoop", "vmadm", "zlogin", "zoneadm", "zonecfg", "zonememstat", "zonename" }));
            Assert.That(names, Is.Unique.And.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
        }
    }

    [Test]
    public void A_name_not_in_the_registry_is_not_found()
    {
        var r = new CliHost().Run("bogus", "-x");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((127, "smartos: bogus: command not found\n")));
    }

    [Test]
    public void Smartos_help_lists_every_registered_command_with_its_help()
    {
        string root = Directory.CreateTempSubdirectory("smartos-help-").FullName;
        try
        {
            using var smartos = new SmartosProcesses(root);
            var (code, _, err) = SmartosProcesses.Finish(smartos.Start(null, ["--help"]));
            var listed = err.Split('\n').SkipWhile(l => l != "commands:").Skip(1).Where(l => l.Length > 0).ToList();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(code, Is.Zero);
                Assert.That(listed.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]), Is.EqualTo(Names()));
                foreach (var c in CommandRegistry.All)
                    Assert.That(listed, Has.One.Matches<string>(l => l.StartsWith("  " + c.Name + " ", StringComparison.Ordinal) && l.EndsWith(c.Summary, StringComparison.Ordinal)));
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>A host with the zone web running on its VNIC web0.</summary>
    private static CliHost WebZone()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; end");
        h.Ok(A("zoneadm -z web install"));
        h.Ok(A("zoneadm -z web boot"));
        return h;
    }

    [Test]
    public void The_commands_refused_in_a_zone_are_those_whose_descriptor_says_so()
    {
        var refused = CommandRegistry.All.Where(c => !c.AllowedInZone).Select(c => c.Name);
        Assert.That(refused, Is.EqualTo(new[] { "imgadm", "nictagadm", "pktgen", "vmadm", "zlogin", "zonecfg" }));
    }

    private static IEnumerable<TestCaseData> ZoneRefusals()
    {
        yield return new TestCaseData("vmadm", "list");
        yield return new TestCaseData("zlogin", "web zonename");
        yield return new TestCaseData("nictagadm", "add admin 02:08:20:00:00:01");
        yield return new TestCaseData("pktgen", "-d web0 -c 1");
        yield return new TestCaseData("zonecfg", "-z other create");
        // Refused before its arguments are read: no usage message, only the refusal.
        yield return new TestCaseData("zonecfg", "");
    }

    [TestCaseSource(nameof(ZoneRefusals))]
    public void A_command_not_allowed_in_a_zone_is_refused_through_zlogin_with_one_message(string command, string args)
    {
        var h = WebZone();
        Assert.That(CommandRegistry.TryGet(command, out var c), Is.True);
        string before = h.Ok(A("zoneadm list -cp")) + h.Ok(A("nictagadm list -p")) + h.Ok(A("dladm show-link -p -o link"));
        var r = h.Run(A($"zlogin web {command} {args}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo(c.ZoneRefusal + "\n"));
            Assert.That(r.Stdout, Is.Empty);
            Assert.That(h.Ok(A("zoneadm list -cp")) + h.Ok(A("nictagadm list -p")) + h.Ok(A("dladm show-link -p -o link")), Is.EqualTo(before));
        }
    }

    [Test]
    public void A_command_allowed_in_a_zone_runs_there_on_what_the_zone_sees()
    {
        var h = WebZone();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web zonename")), Is.EqualTo("web\n"));
            Assert.That(h.Ok(A("zlogin web dladm show-link -p -o link")), Is.EqualTo("web0\n"));
        }
    }

    [TestCase("zlogin web zonename", true)]
    [TestCase("pktgen -d e1000g0", true)]
    [TestCase("snoop -d e1000g0", true)]
    [TestCase("snoop -i cap.pcap", false)]
    [TestCase("kstat -p link 1", true)]
    [TestCase("kstat -p link", false)]
    [TestCase("flowstat -i 1", true)]
    [TestCase("flowstat", false)]
    [TestCase("dladm show-link -i 1", true)]
    [TestCase("dladm show-link", false)]
    [TestCase("dladm create-vnic -l e1000g0 v0", false)]
    [TestCase("vmadm start 0000", true)]
    [TestCase("vmadm list", false)]
    [TestCase("zoneadm -z web boot", true)]
    [TestCase("zoneadm halt", true)]
    [TestCase("zoneadm -z web install", false)]
    [TestCase("zoneadm list", false)]
    [TestCase("zonecfg -z web create", false)]
    [TestCase("ping 198.18.0.1", true)]
    [TestCase("ipadm show-addr", true)]
    [TestCase("bogus", false)]
    public void Needs_running_host_is_what_the_commands_descriptor_answers(string line, bool needs)
    {
        string[] argv = A(line);
        bool described = CommandRegistry.TryGet(argv[0], out var c) && c.NeedsRunningHost(argv[1..]);
        Assert.That((Dispatcher.NeedsRunningHost(argv), described), Is.EqualTo((needs, needs)));
    }

    [Test]
    public void Every_netstack_program_needs_a_running_host()
    {
        var programs = CommandRegistry.All.Where(c => Programs.Names.Contains(c.Name));
        Assert.That(programs.Select(c => c.NeedsRunningHost([])), Is.All.True);
    }

    [Test]
    public void A_one_shot_host_refuses_what_the_descriptor_says_needs_a_running_host()
    {
        var h = new CliHost();
        var r = Dispatcher.Run(h.World, h.Host, A("dladm show-link -i 1"), (string?)null, hostRunning: false);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, Dispatcher.NotBootedMessage("dladm") + "\n")));
    }

    [Test]
    public void The_commands_that_read_standard_input_are_those_whose_descriptor_says_so()
    {
        var readers = CommandRegistry.All.Where(c => c.ReadsStdin).Select(c => c.Name);
        Assert.That(readers, Is.EqualTo(new[] { "cat", "dd", "digest", "imgadm", "nc", "snoop", "vmadm", "zfs", "zlogin", "zonecfg" }));
    }

    [TestCase("dladm show-link <<EOF\nx\nEOF\n")]
    [TestCase("dladm show-link < input.txt\n")]
    public void Smartos_run_refuses_standard_input_for_a_command_that_never_reads_it(string line)
    {
        string dir = Directory.CreateTempSubdirectory("smartos-run-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "input.txt"), "x\n");
            var err = new StringWriter { NewLine = "\n" };
            int code = new ScenarioRunner(new StringWriter(), err, dir).Run("host h1\n" + line, "t.scn");
            Assert.That((code, err.ToString()), Is.EqualTo((1, "smartos run: t.scn:2: dladm does not read standard input ('<' or '<<')\nsmartos run: t.scn: 1 failure(s)\n")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
