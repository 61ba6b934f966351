using SmartOS.Cli.Scenario;
using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>`dtrace -l`, -o, zones, and the mac provider over real traffic in `smartos run` scenarios.</summary>
public class DtraceCommandTests
{
    [Test]
    public void Dash_l_lists_probes_in_dtraces_columns_filtered_by_n_or_P()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string o = h.Ok("dtrace", "-l", "-n", "mac:a0::");
        Assert.That(o, Is.EqualTo(
            "   ID   PROVIDER            MODULE                          FUNCTION NAME\n" +
            string.Concat(h.Host.Mac.Probes.All.Where(p => p.Module == "a0").Select(p => $"{p.Id,5} {"mac",10} {"a0",17} {p.Function,33} {p.Name}\n"))));
        Assert.That(o.Split('\n')[1], Does.EndWith(" mac_tx transmit"));
        string dtraceProvider = h.Ok("dtrace", "-l", "-P", "dtrace");
        Assert.That(dtraceProvider, Is.EqualTo(
            "   ID   PROVIDER            MODULE                          FUNCTION NAME\n" +
            "    1     dtrace                                                     BEGIN\n" +
            "    2     dtrace                                                     END\n" +
            "    3     dtrace                                                     ERROR\n"));
        Assert.That(h.Ok("dtrace", "-l", "-n", "mac:::*-fail").Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1 + 5 * 4)); // e1000g0, e1000g1, stub0, a0, b0
    }

    [TestCase("-c", "date")]
    [TestCase("-p", "1")]
    public void Dash_c_and_dash_p_are_refused_naming_why(string option, string value)
    {
        var r = CliHost.TwoVnicsOnAStub().Run("dtrace", option, value, "-n", "BEGIN { exit(0); }");
        Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((2, "",
            $"dtrace: {option} is not supported: this host has no pid provider, nor $target to start or grab a program for\n")));
    }

    [Test]
    public void Dash_o_appends_the_output_to_a_file()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string dir = Directory.CreateTempSubdirectory("dtrace-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "out.txt"), "before\n");
            var r = Dispatcher.Run(h.World, h.Host, ["dtrace", "-q", "-o", "out.txt", "-n", "BEGIN { printf(\"hello\\n\"); exit(0); }"], (string?)null, workingDirectory: dir);
            Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "")));
            Assert.That(File.ReadAllText(Path.Combine(dir, "out.txt")), Is.EqualTo("before\nhello\n\n"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs a scenario script in a fresh run directory: its exit status, output and errors.</summary>
    internal static (int Code, string Out, string Err) Scenario(string script)
    {
        string dir = Directory.CreateTempSubdirectory("dtrace-run-").FullName;
        try
        {
            var o = new StringWriter { NewLine = "\n" };
            var e = new StringWriter { NewLine = "\n" };
            int code = new ScenarioRunner(o, e, dir).Run(script, "test.scn");
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Host h1 with joyent zones a (10.0.0.1) and b (10.0.0.2) on one nic tag, booted: the
    /// first 11 lines of the dtrace tests' scenarios (their background lines are numbered after it).</summary>
    internal const string TwoZones = """
        host h1 nics=1
        nictagadm add external e1000g0
        vmadm create <<JSON
        { "alias": "a", "brand": "joyent", "max_physical_memory": 128,
          "nics": [ { "nic_tag": "external", "ips": ["10.0.0.1/24"], "primary": true } ] }
        JSON
        vmadm create <<JSON
        { "alias": "b", "brand": "joyent", "max_physical_memory": 128,
          "nics": [ { "nic_tag": "external", "ips": ["10.0.0.2/24"], "primary": true } ] }
        JSON
        sleep 2s

        """;

    [Test]
    public void Two_zones_pinging_each_other_are_counted_per_link_until_the_scenario_ends()
    {
        var (code, o, e) = Scenario(TwoZones + """
            dtrace -n 'mac:::receive { @[probemod] = count(); }' &
            zlogin a ping -s 10.0.0.2 56 3
            zlogin b ping -s 10.0.0.1 56 2
            """);
        Assert.That(code, Is.Zero, o + e);
        // Each link receives one ARP frame (a's broadcast request, b's reply), its peer's three
        // requests or replies of the first ping and two of the second: 6 each; equal values print
        // in key order.
        Assert.That(o, Does.EndWith(
            "[background, line 12] h1# dtrace -n 'mac:::receive { @[probemod] = count(); }'\n" +
            "dtrace: description 'mac:::receive ' matched 3 probes\n" +
            "\n\n" +
            $"  {"z1_net0",-50} {6,16}\n" +
            $"  {"z2_net0",-50} {6,16}\n" +
            "# end of scenario at 6.200000s virtual time\n"));
    }

    [Test]
    public void In_a_zone_dtrace_sees_only_the_zones_own_probes()
    {
        var (code, o, e) = Scenario(TwoZones + """
            zlogin a dtrace -l -P mac
            zlogin a dtrace -q -n 'mac:::transmit { @[probemod, zonename] = count(); }' &
            zlogin b ping -s 10.0.0.1 56 1
            """);
        Assert.That(code, Is.Zero, o + e);
        string listing = o[o.IndexOf("h1# zlogin a dtrace -l -P mac\n", StringComparison.Ordinal)..];
        Assert.That(listing.Split('\n')[2..11].Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]), Is.All.EqualTo("z1_net0"));
        Assert.That(listing.Split('\n')[11], Does.StartWith("h1# "));
        // A vmadm zone's name is its UUID (the ARP reply and the echo reply).
        Assert.That(o, Does.Contain($"\n\n  {"z1_net0",-50}  {"cc741433-1d1a-48c8-a8c9-ab064ae789a4",-50} {2,16}\n# end of scenario"));
    }

    [Test]
    public void The_proc_provider_sees_programs_start_exec_and_exit_in_their_zones()
    {
        var (code, o, e) = Scenario(TwoZones + """
            dtrace -q -n 'proc:::exec { @[zonename, stringof(arg0)] = count(); } proc:::exec-failure { printf("failed %s %d\n", zonename, arg0); } proc:::start /zonename != "global"/ { self->t = timestamp; } proc:::exit /self->t/ { printf("exit %s %d %d\n", zonename, arg0, arg1); self->t = 0; }' &
            zlogin a ping -s 10.0.0.2 56 1
            ! zlogin b nosuchcmd
            """);
        Assert.That(code, Is.Zero, o + e);
        const string A = "cc741433-1d1a-48c8-a8c9-ab064ae789a4";
        string b = o.Split('\n').First(l => l.StartsWith("failed ", StringComparison.Ordinal)).Split(' ')[1];
        using (Assert.EnterMultipleScope())
        {
            // self-> lives from start to exit of each program: the zone's ping exits 0 with CLD_EXITED.
            Assert.That(o, Does.Contain($"exit {A} 1 0\n"));
            // zlogin runs in the global zone, its command in the zone; ENOENT (2) for no such command.
            Assert.That(o, Does.Contain($"failed {b} 2\nexit {b} 1 127\n"));
            Assert.That(b, Is.Not.EqualTo("global").And.Not.EqualTo(A));
            Assert.That(o, Does.Contain($"  {"global",-50}  {"zlogin",-50} {2,16}\n"));
            Assert.That(o, Does.Contain($"  {A,-50}  {"ping",-50} {1,16}\n"));
            Assert.That(o, Does.Contain($"  {b,-50}  {"nosuchcmd",-50} {1,16}\n"));
        }
    }

    [Test]
    public void In_a_zone_the_proc_provider_hears_only_the_zone_s_programs()
    {
        var (code, o, e) = Scenario(TwoZones + """
            zlogin a dtrace -q -n 'proc:::exec { @[zonename, stringof(arg0)] = count(); }' &
            zlogin b ping -s 10.0.0.1 56 1
            zlogin a ping -s 10.0.0.2 56 1
            """);
        Assert.That(code, Is.Zero, o + e);
        Assert.That(o, Does.EndWith($"\n\n  {"cc741433-1d1a-48c8-a8c9-ab064ae789a4",-50}  {"ping",-50} {1,16}\n# end of scenario at 4.000000s virtual time\n").Or.Match(@"\n\n  cc741433-1d1a-48c8-a8c9-ab064ae789a4 +ping +1\n# end of scenario"));
    }

    [Test]
    public void A_zone_that_spoofs_its_address_fires_ip_nospoof_fail_on_its_link()
    {
        var (code, o, e) = Scenario(TwoZones + """
            dtrace -q -n 'mac:::ip-nospoof-fail { @[probemod, stringof(arg0)] = count(); } mac:::*-fail { @all = count(); }' &
            zlogin a ipadm create-addr -T static -a 10.0.0.99/24 net0/spoof
            """);
        Assert.That(code, Is.Zero, o + e);
        // Announcing the address it was not given (ARP from 10.0.0.99) is dropped on a's link.
        Assert.That(o, Does.Match(@"\n\n  z1_net0 {43}  z1_net0 {43} +\d+\n +\d+\n# end of scenario"));
        var m = System.Text.RegularExpressions.Regex.Match(o, @"  z1_net0 +z1_net0 +(\d+)\n +(\d+)\n# end");
        Assert.That(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0));
        Assert.That(m.Groups[2].Value, Is.EqualTo(m.Groups[1].Value));
    }
}
