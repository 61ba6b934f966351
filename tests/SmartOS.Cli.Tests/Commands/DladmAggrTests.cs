using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>dladm's aggregation subcommands: illumos's columns and wording, refusals that change
/// nothing, persistence, and the scenario's `wire H/NIC down|up`.</summary>
public class DladmAggrTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>h1 (the CliHost) and h2, two NICs each, joined NIC to NIC by two 1 Gbit/s wires.</summary>
    private static (CliHost H1, Host H2) Wired()
    {
        var h = new CliHost(nics: 3);
        var h2 = h.World.AddHost("h2", 2);
        for (int i = 0; i < 2; i++)
            h.World.Connect((PhysLink)h.Host.Mac.Find($"e1000g{i}")!, (PhysLink)h2.Mac.Find($"e1000g{i}")!, delayNs: 10 * Time.Microsecond);
        return (h, h2);
    }

    private static string On(CliHost h, Host host, string line)
    {
        var r = Dispatcher.Run(h.World, host, A(line));
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    [Test]
    public void Show_aggr_prints_illumos_columns_with_the_defaults_L4_off_short()
    {
        var h = new CliHost(nics: 2);
        h.Ok(A("dladm create-aggr -l e1000g0 -l e1000g1 aggr0"));
        Assert.That(h.Ok(A("dladm show-aggr")), Is.EqualTo(
            "LINK            POLICY   ADDRPOLICY           LACPACTIVITY  LACPTIMER   FLAGS\n" +
            "aggr0           L4       auto                 off           short       -----\n"));
    }

    [Test]
    public void Create_aggr_takes_policy_mode_timer_and_a_fixed_address_and_a_key_for_a_name()
    {
        var h = new CliHost(nics: 3);
        h.Ok(A("dladm create-aggr -P L2,L3 -L passive -T long -u 2:8:20:0:0:9 -l e1000g0 -l e1000g1 aggr1"));
        h.Ok(A("dladm create-aggr -l e1000g2 5"));
        Assert.That(h.Ok(A("dladm show-aggr -p -o link,policy,addrpolicy,lacpactivity,lacptimer")),
            Is.EqualTo("aggr1:L2,L3:fixed (2\\:8\\:20\\:0\\:0\\:9):passive:long\naggr5:L4:auto:off:short\n"));
    }

    [TestCase("dladm create-aggr -P L5 -l e1000g0 aggr0", "dladm: invalid policy 'L5'")]
    [TestCase("dladm create-aggr -L on -l e1000g0 aggr0", "dladm: invalid LACP mode 'on'")]
    [TestCase("dladm create-aggr -T fast -l e1000g0 aggr0", "dladm: invalid LACP timer value 'fast'")]
    [TestCase("dladm create-aggr -u 1:0:0:0:0:1 -l e1000g0 aggr0", "dladm: invalid MAC address '1:0:0:0:0:1'")]
    [TestCase("dladm create-aggr -l e1000g0 aggr-0", "dladm: invalid link name 'aggr-0'")]
    [TestCase("dladm create-aggr -l e1000g9 aggr0", "dladm: create operation failed: object not found")]
    [TestCase("dladm create-aggr -l stub0 aggr0", "dladm: create operation failed: invalid link")]
    [TestCase("dladm create-aggr -l e1000g1 aggr0", "dladm: create operation failed: link busy")]
    [TestCase("dladm create-aggr -l e1000g0 -l e1000g0 aggr0", "dladm: create operation failed: invalid argument")]
    [TestCase("dladm modify-aggr aggr9", "dladm: at least one of the -PulT options must be specified")]
    [TestCase("dladm modify-aggr -P L2 aggr9", "dladm: modify operation failed: object not found")]
    [TestCase("dladm delete-aggr stub0", "dladm: delete operation failed: invalid link")]
    [TestCase("dladm add-aggr -l e1000g0 stub0", "dladm: add operation failed: invalid link")]
    [TestCase("dladm show-aggr aggr9", "dladm: non-existent aggregation 'aggr9'")]
    [TestCase("dladm show-aggr -s -L", "dladm: the option -L cannot be used with -s")]
    [TestCase("dladm show-aggr -x -L", "dladm: the option -L cannot be used with -x")]
    [TestCase("dladm show-aggr -P -L", "dladm: the option -P cannot be used with -L")]
    [TestCase("dladm show-aggr -i 1", "dladm: the option -i can be used only with -s")]
    public void Refusals_use_illumos_wording_and_change_nothing(string line, string message)
    {
        var h = new CliHost(nics: 2);
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l e1000g1 vnic0"));
        string before = h.Ok(A("dladm show-link"));
        var r = h.Fails(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr.TrimEnd('\n').Split('\n')[0], Is.EqualTo(message));
            Assert.That(h.Ok(A("dladm show-link")), Is.EqualTo(before));
            Assert.That(h.Host.Mac.PersistentLinks.Any(l => l.Class == "aggr"), Is.False);
        }
    }

    [Test]
    public void A_port_with_vnics_over_it_or_an_aggregation_with_vnics_is_busy()
    {
        var h = new CliHost(nics: 2);
        h.Ok(A("dladm create-aggr -l e1000g0 aggr0"));
        h.Ok(A("dladm create-vnic -l aggr0 vnic0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("dladm create-vnic -l e1000g0 vnic1")).Stderr, Is.EqualTo("dladm: vnic creation over e1000g0 failed: link busy\n"));
            Assert.That(h.Fails(A("dladm delete-aggr aggr0")).Stderr, Is.EqualTo("dladm: delete operation failed: link busy\n"));
            Assert.That(h.Fails(A("dladm remove-aggr -l e1000g0 aggr0")).Stderr, Is.EqualTo("dladm: remove operation failed: invalid argument\n"));
        }
        h.Ok(A("dladm delete-vnic vnic0"));
        h.Ok(A("dladm delete-aggr aggr0"));
        Assert.That(h.Host.Mac.Find("aggr0"), Is.Null);
    }

    [Test]
    public void Add_and_remove_change_the_ports_and_show_link_lists_them_over_the_aggregation()
    {
        var h = new CliHost(nics: 3);
        h.Ok(A("dladm create-aggr -l e1000g0 aggr0"));
        h.Ok(A("dladm add-aggr -l e1000g1 -l e1000g2 aggr0"));
        Assert.That(h.Ok(A("dladm show-link -p -o link,class,over aggr0")), Is.EqualTo("aggr0:aggr:e1000g0 e1000g1 e1000g2\n"));
        h.Ok(A("dladm remove-aggr -l e1000g1 aggr0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-link -p -o over aggr0")), Is.EqualTo("e1000g0 e1000g2\n"));
            Assert.That(h.Host.Mac.FindPersistent("aggr0")!.Aggr!.Ports, Is.EqualTo(new[] { "e1000g0", "e1000g2" }));
        }
    }

    [Test]
    public void A_temporary_aggregation_is_not_in_show_aggr_P_and_a_persistent_one_is()
    {
        var h = new CliHost(nics: 2);
        h.Ok(A("dladm create-aggr -t -l e1000g0 aggr0"));
        h.Ok(A("dladm create-aggr -L active -l e1000g1 aggr1"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-aggr -P -p -o link,lacpactivity")), Is.EqualTo("aggr1:active\n"));
            Assert.That(h.Ok(A("dladm show-aggr -p -o link")), Is.EqualTo("aggr0\naggr1\n"));
        }
    }

    [Test]
    public void Show_aggr_L_and_x_follow_lacp_to_sync_and_a_pulled_wire_to_standby()
    {
        var (h, h2) = Wired();
        h.Ok(A("dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0"));
        On(h, h2, "dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0");
        Assert.That(h.Ok(A("dladm show-aggr -L")), Is.EqualTo(
            "LINK        PORT         AGGREGATABLE SYNC COLL DIST DEFAULTED EXPIRED\n" +
            "aggr0       e1000g0      yes          no   no   no   yes       yes\n" +
            "--          e1000g1      yes          no   no   no   yes       yes\n"));
        h.World.Scheduler.RunFor(3 * Time.Second);
        Assert.That(h.Ok(A("dladm show-aggr -L -p -o port,sync,coll,dist,defaulted,expired")), Is.EqualTo(
            "e1000g0:yes:yes:yes:no:no\ne1000g1:yes:yes:yes:no:no\n"));
        string mac0 = ((PhysLink)h.Host.Mac.Find("e1000g0")!).MacAddress.ToString();
        string mac1 = ((PhysLink)h.Host.Mac.Find("e1000g1")!).MacAddress.ToString();
        Wire.Of((PhysLink)h.Host.Mac.Find("e1000g0")!)!.SetUp(false);
        Assert.That(h.Ok(A("dladm show-aggr -x")), Is.EqualTo(
            "LINK        PORT           SPEED DUPLEX   STATE     ADDRESS            PORTSTATE\n" +
            $"aggr0       --             1000Mb full    up        {mac0,-18} --\n" +
            $"            e1000g0        1000Mb full    down      {mac0,-18} standby\n" +
            $"            e1000g1        1000Mb full    up        {mac1,-18} attached\n"));
    }

    [Test]
    public void Show_aggr_s_gives_each_ports_share_of_the_packets()
    {
        var (h, h2) = Wired();
        h.Ok(A("dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0"));
        On(h, h2, "dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0");
        h.World.Scheduler.RunFor(5 * Time.Second);
        string[] lines = h.Ok(A("dladm show-aggr -s")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[0], Is.EqualTo("LINK        PORT      IPACKETS RBYTES OPACKETS OBYTES IPKTDIST OPKTDIST"));
            Assert.That(lines[1], Does.Match(@"^aggr0       --        \d+ +\d+ +\d+ +\d+ +--       --$"));
            Assert.That(lines[2], Does.Match(@"^--          e1000g0   \d+ +\d+ +\d+ +\d+ +50\.0 +50\.0 *$"), "LACPDUs alike on both ports");
            Assert.That(lines, Has.Length.EqualTo(4));
        }
    }

    [Test]
    public void A_persistent_aggregation_with_a_vnic_returns_at_the_next_boot()
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(nics: 2, store: store);
        h.Ok(A("dladm create-aggr -P L3 -l e1000g0 -l e1000g1 aggr0"));
        h.Ok(A("dladm create-vnic -l aggr0 -m 2:8:20:1:2:3 vnic0"));
        var again = new CliHost(nics: 2, store: store);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Ok(A("dladm show-aggr -p -o link,policy")), Is.EqualTo("aggr0:L3\n"));
            Assert.That(again.Ok(A("dladm show-vnic -p -o link,over")), Is.EqualTo("vnic0:aggr0\n"));
        }
    }

    [Test]
    public void Modify_aggr_changes_the_address_and_timer()
    {
        var h = new CliHost(nics: 1);
        h.Ok(A("dladm create-aggr -l e1000g0 aggr0"));
        h.Ok(A("dladm modify-aggr -u 2:8:20:0:0:9 -T long -P L2 aggr0"));
        Assert.That(h.Ok(A("dladm show-aggr -p -o policy,addrpolicy,lacptimer")), Is.EqualTo("L2:fixed (2\\:8\\:20\\:0\\:0\\:9):long\n"));
        h.Ok(A("dladm modify-aggr -u auto aggr0"));
        Assert.That(h.Ok(A("dladm show-aggr -p -o addrpolicy")), Is.EqualTo("auto\n"));
    }

    [Test]
    public void Wire_down_in_a_scenario_takes_both_nics_down_and_up_brings_them_back()
    {
        string dir = Directory.CreateTempSubdirectory("smartos-aggr-").FullName;
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = new SmartOS.Cli.Scenario.ScenarioRunner(o, e, dir).Run("""
                host h1 nics=1
                host h2 nics=1
                wire h1/e1000g0 h2/e1000g0
                wire h2/e1000g0 down
                dladm show-phys -p -o link,state e1000g0
                expect ^e1000g0:down$
                host h1
                dladm show-phys -p -o link,state e1000g0
                expect ^e1000g0:down$
                wire h1/e1000g0 up
                dladm show-phys -p -o link,state e1000g0
                expect ^e1000g0:up$
                wire h1/e1000g1 down
                """, "w.scn");
            Assert.That(code, Is.Not.Zero, "the last line names a NIC that does not exist");
            Assert.That(e.ToString(), Does.Contain("w.scn:13: no physical NIC 'e1000g1' on host h1"));
            Assert.That(e.ToString().Split('\n').Count(l => l.Contains("did not match")), Is.Zero, o.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void Tshark_decodes_the_examples_lacpdus_as_LACP_with_nothing_malformed()
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        string dir = Directory.CreateTempSubdirectory("smartos-aggr-").FullName;
        try
        {
            string root = TestContext.CurrentContext.TestDirectory;
            while (!File.Exists(Path.Combine(root, "SmartOS.sln"))) root = Path.GetDirectoryName(root)!;
            var e = new StringWriter();
            int code = new SmartOS.Cli.Scenario.ScenarioRunner(new StringWriter(), e, dir).Run(File.ReadAllText(Path.Combine(root, "examples", "aggr.scn")), "aggr.scn");
            Assert.That(code, Is.Zero, e.ToString());
            string pcap = Path.Combine(dir, "h1-e1000g0.pcap");
            string lacp = Tshark(pcap, "-Y", "lacp", "-T", "fields", "-e", "lacp.version", "-e", "lacp.actor.port", "-e", "lacp.partner.port");
            string bad = Tshark(pcap, "-Y", "_ws.malformed || _ws.expert.severity == error");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(lacp.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.GreaterThan(5));
                Assert.That(lacp, Does.Contain("1\t1\t1"), "version 1, port 1 in sync with the partner's port 1");
                Assert.That(bad.Trim(), Is.Empty);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>The far side of a NIC played by the test: frames the host sends are dropped.</summary>
    private sealed class FarSide : IPhysBackend
    {
        public long SpeedBps => 1_000_000_000;
        public void Transmit(PhysLink from, Packet frame) => frame.Free();
        public void Detach(PhysLink phys) { }
    }

    [Test]
    public void Tshark_decodes_a_marker_from_the_partner_and_our_marker_response()
    {
        if (!File.Exists("/usr/bin/tshark")) Assert.Ignore("tshark is not installed (apt-get install tshark)");
        string dir = Directory.CreateTempSubdirectory("smartos-aggr-").FullName;
        try
        {
            var h = new CliHost(nics: 1);
            var nic = (PhysLink)h.Host.Mac.Find("e1000g0")!;
            var far = new FarSide();
            nic.Attach(far);
            h.Ok(A("dladm create-aggr -L active -l e1000g0 aggr0"));
            var o = new OutputCapture();
            using var cts = new CancellationTokenSource();
            var snoop = Dispatcher.StartAsync(new CommandContext
            {
                World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = o, Cancel = cts.Token, WorkingDirectory = dir,
            }, A("snoop -d e1000g0 -o m.pcap"));
            // The partner's LACPDU, then its Marker PDU (port 5 of system 2:8:20:77:0:1, transaction 77).
            var system = new SmartOS.Kernel.Wire.MacAddress(0x0208_2077_0001UL);
            var src = new SmartOS.Kernel.Wire.MacAddress(0x0208_2077_0105UL);
            var aggr = (AggrLink)h.Host.Mac.Find("aggr0")!;
            var lacpdu = new byte[LacpPdu.FrameLength];
            LacpPdu.Write(lacpdu, src, new LacpInfo(32768, system, 7, 32768, 5, LacpState.Activity | LacpState.Aggregation), aggr.Ports[0].Lacp.Actor);
            nic.ReceiveFromBackend(far, lacpdu);
            var marker = new byte[MarkerPdu.FrameLength];
            MarkerPdu.Write(marker, src, MarkerPdu.TlvInformation, 5, system, 77);
            nic.ReceiveFromBackend(far, marker);
            h.World.Scheduler.RunFor(Time.Millisecond);
            cts.Cancel();
            h.World.Scheduler.RunUntil(() => snoop.IsCompleted);
            Assert.That(aggr.Ports[0].Lacp.MarkerResponsesSent, Is.EqualTo(1));
            string pcap = Path.Combine(dir, "m.pcap");
            string markers = Tshark(pcap, "-Y", "marker", "-T", "fields", "-e", "eth.src", "-e", "marker.tlvType", "-e", "marker.requesterPort",
                "-e", "marker.requesterSystem", "-e", "marker.requesterTransId");
            string bad = Tshark(pcap, "-Y", "_ws.malformed || _ws.expert.severity == error");
            string ours = string.Join(':', nic.MacAddress.ToString().Split(':').Select(b => b.PadLeft(2, '0')));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(markers.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
                {
                    "02:08:20:77:01:05\t0x01,0x00\t5\t02:08:20:77:00:01\t77", // the marker TLV, then the terminator
                    $"{ours}\t0x02,0x00\t5\t02:08:20:77:00:01\t77",
                }));
                Assert.That(bad.Trim(), Is.Empty);
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static string Tshark(string pcap, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/tshark", ["-n", "-r", pcap, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(60_000), Is.True, "tshark did not finish within 60 s");
        return stdout.Result;
    }
}
