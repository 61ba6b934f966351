using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;
using SmartOS.Vnic;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>dladm's bridge subcommands (tools/Commands/Dladm.Bridge.cs): columns, defaults, the
/// checks and messages of illumos's dladm.c, and spanning tree seen through show-bridge.</summary>
public class DladmBridgeTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static string AddressOf(CliHost h, string link) => ((PhysLink)h.Host.Mac.Find(link)!).MacAddress.ToString();

    [Test]
    public void Create_bridge_shows_illumos_defaults()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -l e1000g0 -l e1000g1 br"));
        string lowest = new[] { AddressOf(h, "e1000g0"), AddressOf(h, "e1000g1") }
            .OrderBy(a => MacAddress.TryParse(a, out var m) ? m.Value : 0).First();
        string o = h.Ok(A("dladm show-bridge"));
        string[] lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[0], Is.EqualTo("BRIDGE      PROTECT ADDRESS            PRIORITY DESROOT"));
            Assert.That(lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "br", "stp", "32768/" + lowest, "32768", "32768/" + lowest }));
            Assert.That(h.Ok(A("dladm show-bridge -p -o bmaxage,bhellotime,bfwddelay,forceproto,holdtime br")), Is.EqualTo("20:2:15:0:1\n"));
            Assert.That(h.Ok(A("dladm show-bridge -p -o rootcost,rootport,maxage,hellotime,fwddelay br")), Is.EqualTo("0:0:20:2:15\n"));
        }
    }

    [Test]
    public void Show_bridge_o_all_lists_every_field_and_p_needs_no_o()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -l e1000g0 br"));
        string header = h.Ok(A("dladm show-bridge -o all")).Split('\n')[0];
        Assert.That(header.Split(' ', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
        {
            "BRIDGE", "PROTECT", "ADDRESS", "PRIORITY", "BMAXAGE", "BHELLOTIME", "BFWDDELAY", "FORCEPROTO", "TCTIME", "TCCOUNT",
            "TCHANGE", "DESROOT", "ROOTCOST", "ROOTPORT", "MAXAGE", "HELLOTIME", "FWDDELAY", "HOLDTIME",
        }));
        Assert.That(h.Ok(A("dladm show-bridge -p")), Does.StartWith("br:stp:32768/"));
    }

    [Test]
    public void Show_bridge_l_shows_each_ports_spanning_tree_state()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -l e1000g0 -l e1000g1 br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge -l br")).Split('\n')[0], Is.EqualTo("LINK        STATE       UPTIME  DESROOT"));
            // No wires: both ports are disabled.
            Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,index,state,opercost,operp2p,operedge,tcack br")),
                Is.EqualTo("e1000g0:1:disabled:100:yes:no:no\ne1000g1:2:disabled:100:yes:no:no\n"));
            Assert.That(h.Ok(A("dladm show-bridge -l -o all br")).Split('\n')[0].Split(' ', StringSplitOptions.RemoveEmptyEntries),
                Is.EqualTo(new[] { "LINK", "INDEX", "STATE", "UPTIME", "OPERCOST", "OPERP2P", "OPEREDGE", "DESROOT", "DESCOST", "DESBRIDGE", "DESPORT", "TCACK" }));
        }
    }

    /// <summary>A wire from e1000g0 back into e1000g1, both on the bridge: the smallest loop. One end
    /// is designated and forwards after two forward delays; the other is blocked.</summary>
    [Test]
    public void A_wire_looped_back_into_the_bridge_blocks_one_end_after_two_forward_delays()
    {
        var h = new CliHost();
        h.World.Connect((PhysLink)h.Host.Mac.Find("e1000g0")!, (PhysLink)h.Host.Mac.Find("e1000g1")!);
        h.Ok(A("dladm create-bridge -d 4 -h 1 -m 6 -l e1000g0 -l e1000g1 br"));
        const string Q = "dladm show-bridge -l -p -o link,state br";
        h.World.Scheduler.RunFor(Time.Millisecond); // e1000g0's first BPDU crosses the wire
        Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g0:listening\ne1000g1:blocking\n"));
        h.World.Scheduler.RunFor(4 * Time.Second);
        Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g0:learning\ne1000g1:blocking\n"));
        h.World.Scheduler.RunFor(4 * Time.Second);
        Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g0:forwarding\ne1000g1:blocking\n"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,descost,desport br")), Is.EqualTo("e1000g0:0:32769\ne1000g1:0:32769\n"));
            string s = h.Ok(A("dladm show-bridge -l -s -p -o link,cfgbpdu,tcnbpdu,rstpbpdu,txbpdu br"));
            Assert.That(s, Does.Match(@"^e1000g0:\d+:0:0:[1-9]\d*\ne1000g1:[1-9]\d*:0:0:\d+\n$"));
        }
    }

    [Test]
    public void Show_bridge_s_counts_what_the_bridge_forwards()
    {
        var h = CliHost.TwoVnicsOnAStub();
        h.Ok(A("dladm create-etherstub stub1"));
        h.Ok(A("dladm create-vnic -l stub1 -m 2:0:0:0:0:3 c0"));
        h.Ok(A("dladm create-bridge -l stub0 -l stub1 br"));
        var a0 = (PortLink)h.Host.Mac.Find("a0")!;
        var frame = new byte[60];
        MacAddress.Broadcast.Write(frame);
        new MacAddress(0x0200_0000_0001UL).Write(frame.AsSpan(6));
        frame[12] = 0x88; frame[13] = 0xB5;
        a0.TransmitAsClient(h.Host.Mac.Pool.Rent(frame)!);
        new MacAddress(0x0200_0000_0003UL).Write(frame);
        a0.TransmitAsClient(h.Host.Mac.Pool.Rent(frame)!);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge -s")).Split('\n')[0], Is.EqualTo("BRIDGE      DROPS       FORWARDS    MBCAST      UNKNOWN"));
            Assert.That(h.Ok(A("dladm show-bridge -s -p -o bridge,drops,forwards,mbcast,unknown,recv,sent br")), Is.EqualTo("br:0:1:1:0:2:2\n"));
            Assert.That(h.Ok(A("dladm show-bridge -l -s br")).Split('\n')[0], Is.EqualTo("LINK        DROPS    RECV     XMIT"));
        }
    }

    [Test]
    public void Show_bridge_f_lists_local_addresses_with_flag_L()
    {
        var h = CliHost.TwoVnicsOnAStub();
        h.Ok(A("dladm create-bridge -l stub0 br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge -f br")), Is.EqualTo(
                "DEST             AGE    FLAGS OUTPUT\n" +
                "2:0:0:0:0:1      --     L     stub0\n" +
                "2:0:0:0:0:2      --     L     stub0\n"));
            Assert.That(h.Fails(A("dladm show-bridge -t br")).Stderr, Is.EqualTo("dladm: bridge br is not running TRILL\n"));
        }
    }

    [Test]
    public void Show_link_shows_the_bridge_link_and_its_members()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -l e1000g0 -l e1000g1 br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-link -p -o link,class,bridge,over")),
                Is.EqualTo("e1000g0:phys:br:--\ne1000g1:phys:br:--\nbr0:bridge:--:e1000g0 e1000g1\n"));
        }
    }

    [Test]
    public void Modify_bridge_changes_only_what_it_is_given()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -p 8192 -m 10 -l e1000g0 br"));
        h.Ok(A("dladm modify-bridge -h 1 br"));
        Assert.That(h.Ok(A("dladm show-bridge -p -o priority,bmaxage,bhellotime,bfwddelay br")), Is.EqualTo("8192:10:1:15\n"));
        h.Ok(A("dladm modify-bridge -p 12345 br"));
        Assert.That(h.Ok(A("dladm show-bridge -p -o priority br")), Is.EqualTo("12288\n"), "the priority keeps its upper 4 bits");
    }

    [Test]
    public void Add_and_remove_bridge_change_the_ports()
    {
        var h = new CliHost(nics: 3);
        h.Ok(A("dladm create-bridge -l e1000g0 br"));
        h.Ok(A("dladm add-bridge -l e1000g1 -l e1000g2 br"));
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,index br")), Is.EqualTo("e1000g0:1\ne1000g1:2\ne1000g2:3\n"));
        h.Ok(A("dladm remove-bridge -l e1000g0 br"));
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,index br")), Is.EqualTo("e1000g1:1\ne1000g2:2\n"));
        h.Ok(A("dladm remove-bridge -l e1000g1 -l e1000g2 br"));
        h.Ok(A("dladm delete-bridge br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge")), Is.Empty);
            Assert.That(h.Host.Mac.Find("br0"), Is.Null);
        }
    }

    [Test]
    public void A_bridge_is_persisted_in_datalink_conf()
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(store: store);
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-bridge -p 4096 -d 11 -l e1000g0 br"));
        h.Ok(A("dladm add-bridge -l stub0 br"));
        var again = new CliHost(store: store);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Ok(A("dladm show-bridge -p -o bridge,priority,bfwddelay")), Is.EqualTo("br:4096:11\n"));
            Assert.That(again.Ok(A("dladm show-bridge -l -p -o link br")), Is.EqualTo("e1000g0\nstub0\n"));
        }
    }

    [TestCase("dladm create-bridge 0br", "dladm: invalid bridge name '0br'\n")]
    [TestCase("dladm create-bridge br0", "dladm: invalid bridge name 'br0'\n")]
    [TestCase("dladm create-bridge br-x", "dladm: invalid bridge name 'br-x'\n")]
    [TestCase("dladm create-bridge -p 70000 br", "dladm: incorrect priority\n")]
    [TestCase("dladm create-bridge -p x br", "dladm: incorrect priority\n")]
    [TestCase("dladm create-bridge -p 1 -p 2 br", "dladm: priority set more than once\n")]
    [TestCase("dladm create-bridge -m 5 br", "dladm: incorrect max age\n")]
    [TestCase("dladm create-bridge -m 41 br", "dladm: incorrect max age\n")]
    [TestCase("dladm create-bridge -h 0 br", "dladm: incorrect hello time\n")]
    [TestCase("dladm create-bridge -h 11 br", "dladm: incorrect hello time\n")]
    [TestCase("dladm create-bridge -d 3 br", "dladm: incorrect forwarding delay\n")]
    [TestCase("dladm create-bridge -d 31 br", "dladm: incorrect forwarding delay\n")]
    [TestCase("dladm create-bridge -d 4 -d 5 br", "dladm: forwarding delay set more than once\n")]
    [TestCase("dladm create-bridge -h 1 -h 1 br", "dladm: hello time set more than once\n")]
    [TestCase("dladm create-bridge -m 6 -m 6 br", "dladm: max age set more than once\n")]
    [TestCase("dladm create-bridge -f -1 br", "dladm: incorrect force protocol\n")]
    [TestCase("dladm create-bridge -f 0 -f 0 br", "dladm: force protocol set more than once\n")]
    [TestCase("dladm create-bridge -f 2 br", "dladm: force protocol 2 is not supported: this bridge runs IEEE 802.1D STP (force protocol 0), not RSTP\n")]
    [TestCase("dladm create-bridge -P trill br", "dladm: protection trill: operation not supported (TRILL is not implemented here; bridges run STP)\n")]
    [TestCase("dladm create-bridge -P foo br", "dladm: protection foo: invalid argument\n")]
    [TestCase("dladm create-bridge -l nosuch0 br", "dladm: invalid link name 'nosuch0'\n")]
    [TestCase("dladm create-bridge -R /a br", "dladm: -R is not supported: this host has one root\n")]
    [TestCase("dladm add-bridge -p 4096 -l e1000g0 br", "dladm: unrecognized option '-p'\nusage:     add-bridge       -l <link> [-l <link>]... <bridge>\n")]
    [TestCase("dladm add-bridge -l e1000g0 br", "dladm: unable to add link e1000g0 to bridge br: object not found\n")]
    [TestCase("dladm modify-bridge -l e1000g0 br", "dladm: unrecognized option '-l'\nusage:     modify-bridge    [-P <protect>] [-p <priority>]\n\t\t     [-m <max-age>] [-h <hello-time>] [-d <forward-delay>]\n\t\t     [-f <force-protocol>] <bridge>\n")]
    [TestCase("dladm modify-bridge -p 4096 br", "dladm: create operation failed: object not found\n")]
    [TestCase("dladm delete-bridge br", "dladm: delete operation failed: object not found\n")]
    [TestCase("dladm show-bridge br", "dladm: bridge br is not valid: object not found\n")]
    [TestCase("dladm show-bridge e1000g", "dladm: e1000g is not a bridge\n")]
    [TestCase("dladm show-bridge -l", "dladm: bridge name required for -l, -f, or -t\n")]
    [TestCase("dladm show-bridge -l -f br", "dladm: -f is incompatible with -l or -t\n")]
    [TestCase("dladm show-bridge -f -t br", "dladm: -t is incompatible with -f or -l\n")]
    [TestCase("dladm show-bridge -f -s br", "dladm: the -f/-t and -s options cannot be used together\n")]
    [TestCase("dladm show-bridge -i 1", "dladm: the -i option can be used only with -s\n")]
    [TestCase("dladm show-bridge -s -i 0", "dladm: invalid interval value '0'\n")]
    [TestCase("dladm show-bridge -p -p", "dladm: the option -p cannot be specified more than once\n")]
    [TestCase("dladm show-bridge -s -i 1", "dladm: show-bridge -s -i is not supported here: run show-bridge -s again for each interval\n")]
    public void Bad_bridge_commands_are_refused_with_dladms_words(string line, string message)
    {
        var h = new CliHost();
        var r = h.Fails(A(line));
        Assert.That(r.Stderr, Is.EqualTo(message));
    }

    [TestCase("-d 4 -m 20", "max age too large: need age <= 6 or forward delay >= 11")]
    [TestCase("-h 10 -d 10", "no max age possible: need forward delay >= 12 or hello time <= 8")]
    [TestCase("-h 4 -m 8", "max age too small: need age >= 10 and <= 28 or hello time <= 3")]
    [TestCase("-h 4 -m 8 -d 30", "max age too small: need age >= 10 or hello time <= 3")]
    [TestCase("-h 3 -m 30 -d 10", "max age too large: need age >= 8 and <= 18 or forward delay >= 16")]
    public void Timers_that_break_802_1D_relations_are_refused(string options, string message)
    {
        var h = new CliHost();
        var r = h.Fails(A($"dladm create-bridge {options} br"));
        Assert.That(r.Stderr, Is.EqualTo($"dladm: warning: illegal forward delay / max age / hello time combination\ndladm: {message}\n"));
        Assert.That(h.Host.Mac.FindBridge("br"), Is.Null);
    }

    [Test]
    public void Links_that_cannot_be_bridged_are_refused_and_nothing_is_created()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 vnic0"));
        h.Ok(A("dladm create-etherstub -t stub0"));
        h.Ok(A("dladm create-bridge -l e1000g1 br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("dladm create-bridge -l vnic0 other")).Stderr, Is.EqualTo("dladm: vnic vnic0 cannot be bridged\n"));
            Assert.That(h.Fails(A("dladm create-bridge -l br0 other")).Stderr, Is.EqualTo("dladm: bridge br0 cannot be bridged\n"));
            Assert.That(h.Fails(A("dladm create-bridge -l e1000g1 other")).Stderr, Is.EqualTo("dladm: unable to add link e1000g1 to bridge other: link busy\n"));
            Assert.That(h.Fails(A("dladm create-bridge -l e1000g0 -l e1000g0 other")).Stderr, Is.EqualTo("dladm: unable to add link e1000g0 to bridge other: link busy\n"));
            Assert.That(h.Fails(A("dladm create-bridge -l stub0 other")).Stderr,
                Is.EqualTo("dladm: unable to add link stub0 to bridge other: can't create persistent object on top of temporary object\n"));
            Assert.That(h.Fails(A("dladm create-bridge br")).Stderr, Is.EqualTo("dladm: create operation failed: object already exists\n"));
            Assert.That(h.Fails(A("dladm remove-bridge -l e1000g0 br")).Stderr, Is.EqualTo("dladm: link e1000g0 is not on bridge br\n"));
            Assert.That(h.Fails(A("dladm delete-bridge br")).Stderr, Is.EqualTo("dladm: delete operation failed: link busy\n"));
            Assert.That(h.Fails(A("dladm rename-link e1000g1 net5")).Stderr, Is.EqualTo("dladm: rename operation failed: link busy\n"));
            Assert.That(h.Host.Mac.FindBridge("other"), Is.Null);
        }
    }

    [Test]
    public void An_aggregation_is_bridged_and_its_ports_and_itself_are_held_by_the_bridge()
    {
        var h = new CliHost(nics: 4);
        h.Ok(A("dladm create-aggr -l e1000g0 -l e1000g1 aggr0"));
        h.Ok(A("dladm create-aggr -t -l e1000g3 aggr1"));
        h.Ok(A("dladm create-bridge -l aggr0 -l e1000g2 br"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-bridge -l -p -o link br")), Is.EqualTo("aggr0\ne1000g2\n"));
            Assert.That(h.Fails(A("dladm create-bridge -l e1000g0 other")).Stderr, Is.EqualTo("dladm: unable to add link e1000g0 to bridge other: link busy\n"),
                "an aggregation's port is the aggregation's");
            Assert.That(h.Fails(A("dladm create-bridge -l aggr1 other")).Stderr,
                Is.EqualTo("dladm: unable to add link aggr1 to bridge other: can't create persistent object on top of temporary object\n"));
            Assert.That(h.Fails(A("dladm delete-aggr aggr0")).Stderr, Does.Contain("link busy"));
            Assert.That(h.Fails(A("dladm add-aggr -l e1000g2 aggr1")).Stderr, Does.Contain("link busy"), "a bridge's NIC is the bridge's");
            Assert.That(h.Host.Mac.FindBridge("other"), Is.Null);
            Assert.That(h.Host.Mac.Find("aggr0"), Is.Not.Null);
        }
        h.Ok(A("dladm remove-bridge -l aggr0 br"));
        h.Ok(A("dladm delete-aggr aggr0"));
    }

    [Test]
    public void A_bridge_over_an_lacp_aggregation_carries_traffic_and_follows_the_aggregation_down_and_up()
    {
        string dir = Directory.CreateTempSubdirectory("smartos-bridge-").FullName;
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            // h1 bridges its aggregation (to h2) and its third NIC (to h3); h2 and h3 talk through it.
            int code = new SmartOS.Cli.Scenario.ScenarioRunner(o, e, dir).Run("""
                host h2 nics=2
                host h3 nics=1
                host h1 nics=3
                wire h1/e1000g0 h2/e1000g0
                wire h1/e1000g1 h2/e1000g1
                wire h1/e1000g2 h3/e1000g0
                dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0
                dladm create-bridge -d 4 -h 1 -m 6 -l aggr0 -l e1000g2 br
                host h2
                dladm create-aggr -L active -l e1000g0 -l e1000g1 aggr0
                dladm create-vnic -l aggr0 net0
                ipadm create-if net0
                ipadm create-addr -T static -a 198.18.0.2/24 net0/v4
                host h3
                dladm create-vnic -l e1000g0 net0
                ipadm create-if net0
                ipadm create-addr -T static -a 198.18.0.3/24 net0/v4
                sleep 10s
                host h1
                dladm show-bridge -l -p -o link,state,operp2p br
                expect ^aggr0:forwarding:yes$
                expect ^e1000g2:forwarding:yes$
                host h2
                ping -s 198.18.0.3 56 3
                expect ^3 packets transmitted, 3 packets received
                wire h1/e1000g0 down
                wire h1/e1000g1 down
                host h1
                dladm show-bridge -l -p -o link,state br
                expect ^aggr0:disabled$
                wire h1/e1000g0 up
                wire h1/e1000g1 up
                sleep 12s
                dladm show-bridge -l -p -o link,state br
                expect ^aggr0:forwarding$
                host h2
                ping -s 198.18.0.3 56 3
                expect ^3 packets transmitted, 3 packets received
                """, "b.scn");
            Assert.That(code, Is.Zero, e.ToString() + o);
            Assert.That(e.ToString(), Does.Not.Contain("did not match"), o.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>stp_priority is the high octet of the port identifier: given a better (lower) one,
    /// e1000g1 wins the looped wire from e1000g0 and e1000g0 blocks instead (802.1D-1998 8.6.10).</summary>
    [Test]
    public void Stp_priority_on_a_port_decides_which_end_of_a_looped_wire_blocks()
    {
        var h = new CliHost();
        h.World.Connect((PhysLink)h.Host.Mac.Find("e1000g0")!, (PhysLink)h.Host.Mac.Find("e1000g1")!);
        h.Ok(A("dladm create-bridge -d 4 -h 1 -m 6 -l e1000g0 -l e1000g1 br"));
        h.World.Scheduler.RunFor(9 * Time.Second);
        const string Q = "dladm show-bridge -l -p -o link,state,desport br";
        Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g0:forwarding:32769\ne1000g1:blocking:32769\n"));
        h.Ok(A("dladm set-linkprop -p stp_priority=16 e1000g1"));
        h.World.Scheduler.RunFor(9 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g0:blocking:4098\ne1000g1:forwarding:4098\n"));
            Assert.That(h.Ok(A("dladm show-linkprop -c -o link,property,value,default -p stp_priority,stp_cost e1000g1")),
                Is.EqualTo("e1000g1:stp_priority:16:128\ne1000g1:stp_cost:auto:auto\n"));
        }
    }

    [Test]
    public void Stp_cost_replaces_the_speeds_cost_and_both_survive_leaving_the_bridge()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-bridge -l e1000g0 br"));
        // No wire, no speed: 802.1D-1998's cost for the slowest link, as Linux's bridge gives it.
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,opercost br")), Is.EqualTo("e1000g0:100\n"));
        h.Ok(A("dladm set-linkprop -p stp_cost=250 e1000g0"));
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,opercost br")), Is.EqualTo("e1000g0:250\n"));
        h.Ok(A("dladm remove-bridge -l e1000g0 br"));
        h.Ok(A("dladm add-bridge -l e1000g0 br"));
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,opercost br")), Is.EqualTo("e1000g0:250\n"), "the setting is the link's");
        h.Ok(A("dladm reset-linkprop -p stp_cost e1000g0"));
        Assert.That(h.Ok(A("dladm show-bridge -l -p -o link,opercost br")), Is.EqualTo("e1000g0:100\n"));
    }

    [TestCase("dladm set-linkprop -t -p stp_cost=10 e1000g0", "dladm: warning: cannot set link property 'stp_cost' on 'e1000g0': change must be persistent")]
    [TestCase("dladm reset-linkprop -t -p stp_priority e1000g0", "dladm: warning: cannot reset link property 'stp_priority' on 'e1000g0': change must be persistent")]
    [TestCase("dladm set-linkprop -p stp_priority=256 e1000g0", "dladm: warning: cannot set link property 'stp_priority' on 'e1000g0': invalid value")]
    [TestCase("dladm set-linkprop -p stp_cost=0 e1000g0", "dladm: warning: cannot set link property 'stp_cost' on 'e1000g0': invalid value")]
    [TestCase("dladm set-linkprop -p stp_cost=65536 e1000g0", "dladm: warning: cannot set link property 'stp_cost' on 'e1000g0': invalid value")]
    [TestCase("dladm set-linkprop -p stp_priority=10 vnic0", "dladm: warning: cannot set link property 'stp_priority' on 'vnic0': invalid argument")]
    public void Bad_stp_port_properties_are_refused_and_change_nothing(string line, string message)
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g1 vnic0"));
        var r = h.Fails(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr.TrimEnd(), Is.EqualTo(message));
            Assert.That(h.Ok(A("dladm show-linkprop -c -o value -p stp_priority,stp_cost e1000g0")), Is.EqualTo("128\nauto\n"));
        }
    }

    [Test]
    public void Stp_port_properties_persist_and_apply_when_the_host_boots_its_bridge()
    {
        string root = Directory.CreateTempSubdirectory("smartos-stpprop-").FullName;
        try
        {
            var h = new CliHost(store: new FileConfigStore(root));
            h.Ok(A("dladm create-bridge -l e1000g0 br"));
            h.Ok(A("dladm set-linkprop -p stp_priority=32,stp_cost=77 e1000g0"));
            var again = new CliHost(store: new FileConfigStore(root));
            Assert.That(again.Ok(A("dladm show-bridge -l -p -o link,opercost br")), Is.EqualTo("e1000g0:77\n"));
            Assert.That(again.Ok(A("dladm show-linkprop -c -o value -p stp_priority e1000g0")), Is.EqualTo("32\n"));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    /// <summary>stp=0 takes a port out of the spanning tree: it forwards at once, sends no BPDU and
    /// heeds none; stp=1 puts it back through blocking, listening and learning.</summary>
    [Test]
    public void Stp_off_on_a_port_forwards_at_once_without_bpdus_and_stp_on_brings_the_timers_back()
    {
        var h = new CliHost();
        var h2 = h.World.AddHost("h2", 1);
        h.World.Connect((PhysLink)h.Host.Mac.Find("e1000g1")!, (PhysLink)h2.Mac.Find("e1000g0")!);
        h.Ok(A("dladm set-linkprop -p stp=0 e1000g1"));
        h.Ok(A("dladm create-bridge -d 4 -h 1 -m 6 -l e1000g1 br"));
        const string Q = "dladm show-bridge -l -p -o link,state br";
        h.World.Scheduler.RunFor(3 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g1:forwarding\n"));
            Assert.That(h.Ok(A("dladm show-bridge -l -s -p -o link,txbpdu br")), Is.EqualTo("e1000g1:0\n"));
            Assert.That(h.Ok(A("dladm show-linkprop -c -o value,default,possible -p stp e1000g1")), Is.EqualTo("0:1:1,0\n"));
        }
        h.Ok(A("dladm set-linkprop -p stp=1 e1000g1"));
        h.World.Scheduler.RunFor(Time.Millisecond);
        Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g1:listening\n"));
        h.World.Scheduler.RunFor(8 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A(Q)), Is.EqualTo("e1000g1:forwarding\n"));
            Assert.That(h.Ok(A("dladm show-bridge -l -s -p -o link,txbpdu br")), Is.Not.EqualTo("e1000g1:0\n"));
        }
        Assert.That(h.Fails(A("dladm set-linkprop -p stp=2 e1000g1")).Stderr, Is.EqualTo("dladm: warning: link property 'stp' must be one of: 1,0\n"));
    }
}
