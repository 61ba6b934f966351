using SmartOS.Cli.Scenario;
using SmartOS.Cli.Snoop;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.ResourceControl;

/// <summary>flowadm and flowstat through the dispatcher, and the protection scenario end to end.</summary>
public class FlowadmTests
{
    private World _world = null!;
    private Host _host = null!;

    [SetUp]
    public void Build()
    {
        _world = new World();
        _host = _world.AddHost("h1", 2);
        Ok("dladm", "create-etherstub", "stub0");
        Ok("dladm", "create-vnic", "-l", "stub0", "-m", "2:8:20:0:0:1", "vnic0");
        Ok("dladm", "create-vnic", "-l", "stub0", "-m", "2:8:20:0:0:2", "vnic1");
    }

    private CommandResult Run(params string[] argv) => Dispatcher.Run(_world, _host, argv);

    private string Ok(params string[] argv)
    {
        var r = Run(argv);
        Assert.That(r.ExitCode, Is.Zero, string.Join(' ', argv) + ": " + r.Stderr);
        return r.Stdout;
    }

    private void Fails(string stderr, params string[] argv)
    {
        string conf = _host.Store.Read("flowadm.conf") ?? "";
        string flows = Ok("flowadm", "show-flow");
        var r = Run(argv);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Not.Zero);
            Assert.That(r.Stderr.TrimEnd(), Is.EqualTo(stderr));
            Assert.That(_host.Store.Read("flowadm.conf") ?? "", Is.EqualTo(conf), "nothing persisted");
            Assert.That(Ok("flowadm", "show-flow"), Is.EqualTo(flows), "nothing changed live");
        }
    }

    [Test]
    public void Show_flow_prints_each_of_the_six_types_in_illumos_columns()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "local_ip=10.0.0.1", "f1");
        Ok("flowadm", "add-flow", "-l", "vnic1", "-a", "transport=tcp,remote_port=443", "f2");
        Assert.That(Ok("flowadm", "show-flow"), Is.EqualTo("""
            FLOW        LINK        IPADDR                    PROTO  LPORT   RPORT   DSFLD
            f1          vnic0       LCL:10.0.0.1/32           --     --      --      --
            f2          vnic1       --                        tcp    --      443     --

            """));
        Ok("flowadm", "remove-flow", "f1");
        Ok("flowadm", "remove-flow", "-l", "vnic1");
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "remote_ip=192.168.0.0/16", "f3");
        Ok("dladm", "create-vnic", "-l", "stub0", "vnic2");
        Ok("dladm", "create-vnic", "-l", "stub0", "vnic3");
        Ok("dladm", "create-vnic", "-l", "stub0", "vnic4");
        Ok("flowadm", "add-flow", "-l", "vnic1", "-a", "transport=icmp", "f4");
        Ok("flowadm", "add-flow", "-l", "vnic2", "-a", "transport=udp,local_port=53", "f5");
        Ok("flowadm", "add-flow", "-l", "vnic3", "-a", "dsfield=0x2e:0xfc", "f6");
        Assert.That(Ok("flowadm", "show-flow", "-p", "-o", "flow,ipaddr,proto,lport,rport,dsfld"), Is.EqualTo("""
            f3:RMT\:192.168.0.0/16:--:--:--:--
            f4:--:icmp:--:--:--
            f5:--:udp:53:--:--
            f6:--:--:--:--:0x2c\:0xfc

            """));
        Assert.That(Ok("flowadm", "show-flow", "-l", "vnic2", "-p", "-o", "flow"), Is.EqualTo("f5\n"));
    }

    [Test]
    public void Bad_attributes_fail_with_illumos_wording_and_change_nothing()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "transport=tcp,local_port=80", "web");
        Fails("flowadm: invalid flow attribute specified", "flowadm", "add-flow", "-l", "vnic0", "-a", "proto=tcp", "f");
        Fails("flowadm: add flow failed: invalid argument", "flowadm", "add-flow", "-l", "vnic0", "-a", "local_ip=10.0.0.1,transport=tcp", "f");
        Fails("flowadm: add flow failed: invalid IP address", "flowadm", "add-flow", "-l", "vnic1", "-a", "local_ip=10.0.0", "f");
        Fails("flowadm: add flow failed: invalid port number", "flowadm", "add-flow", "-l", "vnic0", "-a", "transport=tcp,local_port=99999", "f");
        Fails("flowadm: add flow failed: flow(s) with incompatible attributes exists", "flowadm", "add-flow", "-l", "vnic0", "-a", "transport=udp", "f");
        Fails("flowadm: add flow failed: a flow with identical attributes exists", "flowadm", "add-flow", "-l", "vnic0", "-a", "transport=tcp,local_port=80", "f");
        Fails("flowadm: add flow failed: object already exists", "flowadm", "add-flow", "-l", "vnic1", "-a", "transport=udp", "web");
        Fails("flowadm: invalid link 'vnic9'", "flowadm", "add-flow", "-l", "vnic9", "-a", "transport=udp", "f");
        Fails("flowadm: invalid flow property specified", "flowadm", "add-flow", "-l", "vnic1", "-a", "transport=udp", "-p", "cpus=1", "f");
        Fails("flowadm: add flow failed: minimum value for maxbw is 1200K", "flowadm", "add-flow", "-l", "vnic1", "-a", "transport=udp", "-p", "maxbw=1M", "f");
        Fails("flowadm: add flow failed: invalid flow name '1f'", "flowadm", "add-flow", "-l", "vnic1", "-a", "transport=udp", "1f");
        Fails("flowadm: remove flow failed: object not found", "flowadm", "remove-flow", "nosuch");
        Fails("flowadm: invalid flow: 'nosuch'", "flowadm", "set-flowprop", "-p", "maxbw=10M", "nosuch");
    }

    // libdladm: dladm_flow_attrlist_extract returns DLADM_STATUS_PORT_NOPROTO ("local or remote port
    // requires transport") for a port without a transport; flow_attrlist_check makes a repeated
    // attribute a parse error, which flowadm.c reports as "invalid flow attribute specified";
    // do_check_dsfield (flowattr.c) refuses a zero value or mask.
    [TestCase("local_port=80", "flowadm: add flow failed: local or remote port requires transport")]
    [TestCase("remote_port=53", "flowadm: add flow failed: local or remote port requires transport")]
    [TestCase("transport=tcp,transport=udp", "flowadm: invalid flow attribute specified")]
    [TestCase("dsfield=0", "flowadm: add flow failed: invalid dsfield")]
    [TestCase("dsfield=0x2e:0", "flowadm: add flow failed: invalid dsfield mask")]
    [TestCase("dsfield=0x100", "flowadm: add flow failed: invalid dsfield")]
    [TestCase("local_ip=10.0.0.1/0", "flowadm: add flow failed: invalid IP prefix length")]
    public void Flow_attributes_are_checked_as_libdladm_checks_them(string attrs, string message)
        => Fails(message, "flowadm", "add-flow", "-l", "vnic0", "-a", attrs, "f");

    // flowadm.c die_opterr: die("option '-%c' requires a value") / die("unrecognized option '-%c'");
    // -o goes through ofmt_open, whose "all" is invalid in parsable mode.
    [TestCase(new[] { "flowadm", "show-flow", "-o" }, "flowadm: option '-o' requires a value\n")]
    [TestCase(new[] { "flowadm", "add-flow", "-x" }, "flowadm: unrecognized option '-x'\n")]
    [TestCase(new[] { "flowadm", "show-flow", "-p", "-o", "all" }, "flowadm: output field `all' invalid in parsable mode\n")]
    [TestCase(new[] { "flowadm", "show-flow", "-p" }, "flowadm: output fields must be specified in parsable mode\n")]
    [TestCase(new[] { "flowadm", "show-flowprop", "-c", "-o", "all" }, "flowadm: output field `all' invalid in parsable mode\n")]
    public void Option_and_field_errors_are_worded_as_flowadm_words_them(string[] argv, string message)
    {
        var r = Run(argv);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, message)));
    }

    [Test]
    public void Flow_properties_set_show_and_reset()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "transport=udp", "-p", "maxbw=100M", "f");
        Ok("flowadm", "set-flowprop", "-p", "priority=high", "f");
        Assert.That(Ok("flowadm", "show-flowprop", "f"), Is.EqualTo("""
            FLOW         PROPERTY        VALUE          DEFAULT        POSSIBLE
            f            maxbw             100          --             --
            f            priority        high           medium         low,medium,high

            """));
        var bad = Run("flowadm", "set-flowprop", "-p", "priority=low,maxbw=1K", "f");
        Assert.That((bad.ExitCode, bad.Stderr.TrimEnd()), Is.EqualTo((1, "flowadm: cannot set flow property 'maxbw' on 'f': minimum value for maxbw is 1200K")));
        Assert.That(Ok("flowadm", "show-flowprop", "-c", "-o", "value", "-p", "priority", "f"), Is.EqualTo("high\n"));
        Ok("flowadm", "reset-flowprop", "-p", "maxbw", "f");
        Assert.That(Ok("flowadm", "show-flowprop", "-c", "-o", "property,value", "f"), Is.EqualTo("maxbw:--\npriority:high\n"));
        Ok("flowadm", "reset-flowprop", "f");
        Assert.That(Ok("flowadm", "show-flowprop", "-c", "-o", "value", "-p", "priority", "f"), Is.EqualTo("medium\n"));
    }

    [Test]
    public void Flows_and_their_properties_replay_at_boot_and_temporary_ones_do_not()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "transport=tcp,local_port=80", "-p", "maxbw=10M", "web");
        Ok("flowadm", "add-flow", "-t", "-l", "vnic0", "-a", "transport=tcp,local_port=81", "tmp");
        Ok("flowadm", "set-flowprop", "-p", "priority=low", "web");
        Ok("flowadm", "set-flowprop", "-t", "-p", "maxbw=20M", "web");
        var w2 = new World();
        var h2 = w2.AddHost("h1", 2, _host.Store);
        Assert.That(h2.BootProblems, Is.Empty);
        var flows = Dispatcher.Run(w2, h2, "flowadm", "show-flow", "-p", "-o", "flow,link,proto,lport");
        var props = Dispatcher.Run(w2, h2, "flowadm", "show-flowprop", "-c", "-o", "property,value", "web");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(flows.Stdout, Is.EqualTo("web:vnic0:tcp:80\n"));
            Assert.That(props.Stdout, Is.EqualTo("maxbw:   10\npriority:low\n"));
        }
    }

    [Test]
    public void A_link_with_flows_cannot_be_deleted()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "transport=udp", "f");
        var r = Run("dladm", "delete-vnic", "vnic0");
        Assert.That((r.ExitCode, r.Stderr.TrimEnd()), Is.EqualTo((1, "dladm: vnic deletion failed: link still has flows")));
    }

    [Test]
    public void Flowstat_counts_packets_bytes_and_drops_per_flow()
    {
        Ok("flowadm", "add-flow", "-l", "vnic0", "-a", "transport=udp,remote_port=9", "-p", "maxbw=0", "blocked");
        Ok("flowadm", "add-flow", "-l", "vnic1", "-a", "transport=udp,local_port=9", "sink");
        Ok("pktgen", "-d", "vnic0", "-c", "3", "-s", "100", "--dst", "2:8:20:0:0:2", "--udp", "10.0.0.1:5,10.0.0.2:9");
        Ok("pktgen", "-d", "vnic0", "-c", "2", "-s", "100", "--dst", "2:8:20:0:0:2", "--udp", "10.0.0.1:9,10.0.0.2:7");
        Ok("pktgen", "-d", "vnic1", "-c", "4", "-s", "200", "--dst", "2:8:20:0:0:1", "--udp", "10.0.0.2:9,10.0.0.1:7");
        // flowstat.c: OFMT_RIGHTJUST, FLOW 15 wide and the counters 8, values from map_to_units.
        Assert.That(Ok("flowstat"), Is.EqualTo("""
                       FLOW    IPKTS   RBYTES    IERRS    OPKTS   OBYTES    OERRS
                    blocked        0        0        4        0        0        3
                       sink        0        0        0        4      800        0

            """));
        Assert.That(Ok("flowstat", "-r", "-l", "vnic0"), Is.EqualTo("           FLOW    IPKTS   RBYTES    IERRS\n        blocked        0        0        4\n"), "B's replies come from port 9: blocked on receive too");
        Assert.That(Ok("flowstat", "-p", "-o", "flow,oerrs", "blocked"), Is.EqualTo("blocked:3\n"));
        Assert.That(Ok("kstat", "-p", "flow:0:sink:obytes"), Is.EqualTo("flow:0:sink:obytes\t800\n"));
    }

    [Test]
    public void The_protection_example_passes_and_the_victims_capture_holds_no_spoofed_frame()
    {
        string dir = Path.Combine(Path.GetTempPath(), "smartos-rc-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string script = File.ReadAllText(Path.Combine(FindRepo(), "examples", "protection.scn"));
            var output = new StringWriter();
            var errors = new StringWriter();
            int code = new ScenarioRunner(output, errors, dir).Run(script, "protection.scn");
            Assert.That(code, Is.Zero, errors.ToString());
            using var reader = CaptureFileReader.Open(Path.Combine(dir, "tenantA0.pcap"), out string error);
            Assert.That(reader, Is.Not.Null, error);
            var frames = new List<byte[]>();
            while (reader!.TryRead(out var record)) frames.Add(record.Frame.ToArray());
            Assert.That((reader.Error, frames.Count), Is.EqualTo(((string?)null, 3)));
            foreach (byte[] frame in frames)
            {
                Assert.That(frame.AsSpan(6, 6).ToArray(), Is.EqualTo(new byte[] { 2, 8, 0x20, 0, 0, 0xb }), "every frame A saw came from B's own MAC");
                Assert.That(frame.AsSpan(26, 4).ToArray(), Is.EqualTo(new byte[] { 10, 0, 0, 20 }), "and B's own IP");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string FindRepo()
    {
        var d = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (d != null && !File.Exists(Path.Combine(d.FullName, "SmartOS.sln"))) d = d.Parent;
        return d?.FullName ?? throw new DirectoryNotFoundException("SmartOS.sln not found above the test directory");
    }
}
