using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

public class ProgramTests
{
    private sealed record Result(int Status, string Out, string Err);

    private static Result Run(World w, IpStack stack, string command, CancellationToken cancel = default, long deadline = 600 * Time.Second)
    {
        string[] argv = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Programs.TryGet(argv[0], out var run), Is.True, argv[0]);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var ctx = new ProgramContext
        {
            Out = o, Err = e, Cancel = cancel, Stack = stack,
            OpenLink = name => (w.Mac.Find(name) as PortLink)?.OpenClient("ip"),
        };
        int status = w.Await(() => run(ctx, argv[1..]), deadline);
        return new Result(status, o.ToString(), e.ToString());
    }

    private static (World w, IpStack a, IpStack b) Pair()
    {
        var w = new World();
        w.Stub("stub0");
        return (w, w.Stack("stub0", "10.0.0.1/24"), w.Stack("stub0", "10.0.0.2/24"));
    }

    [Test]
    public void Ping_without_s_says_the_host_is_alive()
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, "ping 10.0.0.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero);
            Assert.That(r.Out, Is.EqualTo("10.0.0.2 is alive\n"));
        }
    }

    [Test]
    public void Ping_to_nobody_says_no_answer_after_the_timeout()
    {
        var (w, a, _) = Pair();
        long start = w.Scheduler.Now;
        var r = Run(w, a, "ping 10.0.0.9 3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.EqualTo(1));
            Assert.That(r.Out, Is.EqualTo("no answer from 10.0.0.9\n"));
            Assert.That(w.Scheduler.Now - start, Is.EqualTo(3 * Time.Second));
        }
    }

    [Test]
    public void Ping_s_prints_replies_and_illumos_statistics()
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, "ping -s 10.0.0.2 56 3");
        Assert.That(r.Out, Is.EqualTo(
            "PING 10.0.0.2: 56 data bytes\n" +
            "64 bytes from 10.0.0.2: icmp_seq=0. time=0.000 ms\n" +
            "64 bytes from 10.0.0.2: icmp_seq=1. time=0.000 ms\n" +
            "64 bytes from 10.0.0.2: icmp_seq=2. time=0.000 ms\n" +
            "\n" +
            "----10.0.0.2 PING Statistics----\n" +
            "3 packets transmitted, 3 packets received, 0% packet loss\n" +
            "round-trip (ms)  min/avg/max/stddev = 0.000/0.000/0.000/0.000\n"));
        Assert.That(r.Status, Is.Zero);
    }

    [Test]
    public void Ping_s_with_an_interval_over_a_lossy_delayed_wire_counts_loss()
    {
        var w = new World();
        var mac2 = new MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, w.Random);
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new Vnic.Wire(w.Scheduler, new HostRandom(3), p1, p2, 100_000_000, 2 * Time.Millisecond, 0.3);
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        w.Stack("e1000g0", "10.0.0.2/24", mac2);
        var r = Run(w, a, "ping -s -I 0.2 10.0.0.2 56 20");
        string[] lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int replies = Array.FindAll(lines, l => l.Contains("bytes from", StringComparison.Ordinal)).Length;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines[0], Is.EqualTo("PING 10.0.0.2: 56 data bytes"));
            Assert.That(replies, Is.InRange(3, 19));
            Assert.That(r.Out, Does.Contain($"20 packets transmitted, {replies} packets received, {(20 - replies) * 100 / 20}% packet loss"));
            Assert.That(r.Out, Does.Contain("round-trip (ms)  min/avg/max/stddev = 4."));
        }
    }

    [Test]
    public void Ping_usage_error_exits_1()
    {
        // ping.c: usage(progname); exit(EXIT_FAILURE);
        var (w, a, _) = Pair();
        var r = Run(w, a, "ping");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.EqualTo(1));
            Assert.That(r.Err, Does.StartWith("usage: ping host [timeout]"));
            Assert.That(Run(w, a, "ping nosuchhost").Err, Is.EqualTo("ping: unknown host nosuchhost\n"));
        }
    }

    [Test]
    public void Ipadm_creates_an_interface_and_a_static_address_and_shows_them()
    {
        var w = new World();
        w.Stub("stub0");
        w.Mac.CreateVnic("vnic9", "stub0", new MacLayer.MacRequest(MacAddressType.Auto), 0, true, out _);
        var s = new IpStack("z", w.Scheduler, w.Pool, w.Random, w.Kstats);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Run(w, s, "ipadm create-if vnic9").Status, Is.Zero);
            Assert.That(Run(w, s, "ipadm create-if vnic9").Err, Is.EqualTo("ipadm: Could not create vnic9 : Interface already exists\n"));
            Assert.That(Run(w, s, "ipadm create-if nosuch0").Err, Is.EqualTo("ipadm: Could not create nosuch0 : Datalink does not exist\n"));
            Assert.That(Run(w, s, "ipadm create-addr -T static -a 192.168.5.10/24 vnic9/v4").Status, Is.Zero);
            var dup = Run(w, s, "ipadm create-addr -T static -a 192.168.5.11/24 vnic9/v4");
            Assert.That(dup.Status, Is.EqualTo(1));
            Assert.That(dup.Err, Is.EqualTo("ipadm: Could not create address: Address object already exists\n"));
            Assert.That(Run(w, s, "ipadm create-addr -T static -a 192.168.5.12/24 nosuch0/v4").Err, Is.EqualTo("ipadm: Could not create address: Interface does not exist\n"));
            Assert.That(Run(w, s, "ipadm create-addr -T static vnic9/v4b").Status, Is.EqualTo(2));
            // IPADM_BAD_ADDR, "Invalid address" (ipadm_errors in libipadm.c).
            Assert.That(Run(w, s, "ipadm create-addr -T static -a 192.168.5.300/24 vnic9/v4c").Err, Is.EqualTo("ipadm: Could not create address: Invalid address\n"));
            Assert.That(Run(w, s, "ipadm create-addr -T static -a 224.0.0.5/24 vnic9/v4d").Err, Is.EqualTo("ipadm: Could not create address: Invalid address\n"));
        }
        Assert.That(Run(w, s, "ipadm show-addr").Out, Is.EqualTo(
            "ADDROBJ           TYPE     STATE        ADDR\n" +
            "lo0/v4            static   ok           127.0.0.1/8\n" +
            "vnic9/v4          static   ok           192.168.5.10/24\n" +
            "lo0/v6            static   ok           ::1/128\n"));
        Assert.That(Run(w, s, "ipadm show-if").Out, Is.EqualTo(
            "IFNAME     STATE    CURRENT      PERSISTENT\n" +
            "lo0        ok       -m-v------46 ---\n" +
            "vnic9      ok       bm--------46 ---\n"));
        Assert.That(Run(w, s, "ipadm delete-addr vnic9/v4").Status, Is.Zero);
        Assert.That(Run(w, s, "ipadm delete-addr vnic9/v4").Err, Is.EqualTo("ipadm: could not delete address: Object not found\n"));
    }

    [Test]
    public void Ipadm_set_prop_forwarding_turns_a_zone_into_a_router()
    {
        var (w, a, _) = Pair();
        Assert.That(Run(w, a, "ipadm set-prop -p forwarding=on ipv4").Status, Is.Zero);
        Assert.That(a.ForwardingV4, Is.True);
        Assert.That(Run(w, a, "ipadm show-prop -p forwarding ipv4").Out, Is.EqualTo(
            "PROTO PROPERTY              PERM CURRENT      PERSISTENT   DEFAULT      POSSIBLE\n" +
            "ipv4  forwarding            rw   on           --           off          on,off\n"));
        Assert.That(Run(w, a, "ipadm set-prop -p bogus=1 ipv4").Err, Is.EqualTo("ipadm: set-prop: bogus: Unknown property\n"));
    }

    [Test]
    public void Ipadm_dhcp_gets_an_address_from_dhcpd_in_another_zone()
    {
        var w = new World();
        w.Stub("stub0");
        var server = w.Stack("stub0", "10.0.0.1/24");
        var client = w.Stack("stub0", null);
        using var stop = new CancellationTokenSource();
        var o = new StringWriter();
        var ctx = new ProgramContext { Out = o, Err = o, Cancel = stop.Token, Stack = server };
        Programs.TryGet("dhcpd", out var dhcpd);
        var serving = w.Loop.Start(() => dhcpd(ctx, ["-i", "net0", "-r", "10.0.0.50-10.0.0.60", "-g", "10.0.0.1", "-l", "3600"]));
        var r = Run(w, client, "ipadm create-addr -T dhcp net0/dhcp");
        Assert.That(r.Status, Is.Zero, r.Err);
        var show = Run(w, client, "ipadm show-addr net0/dhcp");
        Assert.That(show.Out, Does.Contain("net0/dhcp         dhcp     ok           10.0.0.50/24"));
        stop.Cancel();
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(serving.IsCompleted, Is.True);
            Assert.That(serving.Result, Is.Zero);
            Assert.That(o.ToString(), Does.Contain("dhcpd: lease 10.0.0.50 to "));
        }
    }

    [TestCase("dhcpd -i net0", 2, "usage: dhcpd -i interface -r first-last [-g router] [-d name_server] [-l lease_seconds]\n")]
    [TestCase("dhcpd -i net0 -r 10.0.0.9-10.0.0.5", 1, "dhcpd: invalid address range '10.0.0.9-10.0.0.5'\n")]
    [TestCase("dhcpd -i net0 -r 10.0.0.5-10.0.0.9 -g nowhere", 1, "dhcpd: invalid router address 'nowhere'\n")]
    [TestCase("dhcpd -i net0 -r 10.0.0.5-10.0.0.9 -d fe80::1", 1, "dhcpd: invalid name server address 'fe80::1'\n")]
    [TestCase("dhcpd -i net9 -r 10.0.0.5-10.0.0.9", 1, "dhcpd: net9: Interface does not exist\n")]
    public void Dhcpd_refuses_bad_arguments_with_a_message(string command, int status, string message)
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, command);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.EqualTo(status));
            Assert.That(r.Err, Is.EqualTo(message));
        }
    }

    [Test]
    public void Netstat_s_prints_each_protocols_counters_two_to_a_line()
    {
        var (w, a, _) = Pair();
        Run(w, a, "ping 10.0.0.2");
        var all = Run(w, a, "netstat -s");
        var icmp = Run(w, a, "netstat -s -f inet -P icmp");
        var bad = Run(w, a, "netstat -s -P sctp");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(all.Status, Is.Zero);
            foreach (string label in (string[])["\nUDP\t", "\nTCP\t", "\nIPv4\t", "\nIPv6\t", "\nICMPv4\t", "\nICMPv6\t"])
                Assert.That(all.Out, Does.Contain(label));
            Assert.That(all.Out, Does.Contain("\tudpInDatagrams      =     0\tudpInErrors         =     0\n"));
            Assert.That(icmp.Out, Does.StartWith("\nICMPv4\ticmpInMsgs          =     1\ticmpInErrors        =     0\n"));
            Assert.That(icmp.Out, Does.Contain("icmpOutEchos        =     1"));
            Assert.That(icmp.Out, Does.Not.Contain("TCP"));
            Assert.That(bad.Status, Is.EqualTo(2));
            Assert.That(bad.Err, Is.EqualTo("netstat: unknown protocol: sctp\n"));
        }
    }

    [Test]
    public void Route_add_get_delete_and_netstat_rn()
    {
        var (w, a, _) = Pair();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Run(w, a, "route add default 10.0.0.254").Out, Is.EqualTo("add net default: gateway 10.0.0.254\n"));
            Assert.That(Run(w, a, "route add -net 172.16.0.0/16 10.0.0.253").Out, Is.EqualTo("add net 172.16.0.0/16: gateway 10.0.0.253\n"));
            var again = Run(w, a, "route add default 10.0.0.254");
            Assert.That(again.Out, Is.EqualTo("add net default: gateway 10.0.0.254: entry exists\n"));
            Assert.That(again.Status, Is.EqualTo(1));
            Assert.That(Run(w, a, "route add -net 10.5.0.0/16 192.0.2.1").Out, Is.EqualTo("add net 10.5.0.0/16: gateway 192.0.2.1: Network is unreachable\n"));
        }
        Assert.That(Run(w, a, "route get 172.16.4.4").Out, Is.EqualTo(
            "   route to: 172.16.4.4\n" +
            "destination: 172.16.0.0\n" +
            "       mask: 255.255.0.0\n" +
            "    gateway: 10.0.0.253\n" +
            "  interface: net0\n" +
            "      flags: <UP,GATEWAY,DONE,STATIC>\n"));
        string rn = Run(w, a, "netstat -rn -f inet").Out;
        Assert.That(rn, Is.EqualTo(
            "\nRouting Table: IPv4\n" +
            "  Destination           Gateway           Flags  Ref     Use     Interface\n" +
            "-------------------- -------------------- ----- ----- ---------- ---------\n" +
            "10.0.0.0             10.0.0.1             U         1          0 net0\n" +
            "172.16.0.0           10.0.0.253           UG        1          0 \n" +
            "default              10.0.0.254           UG        1          0 \n" +
            "127.0.0.1            127.0.0.1            UH        2          0 lo0\n"));
        Assert.That(Run(w, a, "route delete default 10.0.0.254").Out, Is.EqualTo("delete net default: gateway 10.0.0.254\n"));
        Assert.That(Run(w, a, "route delete default 10.0.0.254").Out, Is.EqualTo("delete net default: gateway 10.0.0.254: not in table\n"));
    }

    [Test]
    public void Netstat_an_lists_udp_sockets_and_sockets_of_a_registered_transport()
    {
        var (w, a, _) = Pair();
        using var u1 = a.OpenUdpSocket();
        u1.Bind(IpAddress.AnyV4, 68);
        using var u2 = a.OpenUdpSocket();
        u2.Bind(World.Ip("10.0.0.1"), 53);
        a.RegisterTransport(IpProtocol.Tcp, new FakeTcp());
        Assert.That(Run(w, a, "netstat -an -f inet").Out, Is.EqualTo(
            "\nTCP: IPv4\n" +
            "   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State\n" +
            "-------------------- -------------------- ----- ------ ----- ------ -----------\n" +
            "      *.22                 *.*                0      0 128000      0 LISTEN\n" +
            "\nUDP: IPv4\n" +
            "   Local Address        Remote Address      State\n" +
            "-------------------- -------------------- ----------\n" +
            "      *.68                                Idle\n" +
            "10.0.0.1.53                               Idle\n"));
    }

    private sealed class FakeTcp : ITransport, ISocketLister
    {
        public void Receive(Kernel.Packet packet, IpAddress source, IpAddress destination) => packet.Free();
        public void ReceiveError(IcmpErrorKind kind, int mtu, IpAddress source, IpAddress destination, ReadOnlySpan<byte> quoted) { }
        public void ListSockets(List<TransportSocketInfo> into)
            => into.Add(new TransportSocketInfo(IpProtocol.Tcp, new IpEndpoint(IpAddress.AnyV4, 22), default, "LISTEN", 0, 0, 128000, 0));
    }

    [Test]
    public void Arp_a_shows_resolved_neighbours_and_local_addresses()
    {
        var (w, a, b) = Pair();
        Run(w, a, "ping 10.0.0.2");
        string macA = a.FindInterface("net0")!.MacAddress.ToPaddedString();
        string macB = b.FindInterface("net0")!.MacAddress.ToPaddedString();
        Assert.That(Run(w, a, "arp -a").Out, Is.EqualTo(
            "\nNet to Media Table: IPv4\n" +
            "Device   IP Address               Mask      Flags      Phys Addr\n" +
            "------ -------------------- --------------- -------- ---------------\n" +
            $"net0   10.0.0.2             255.255.255.255          {macB}\n" +
            $"net0   10.0.0.1             255.255.255.255 SPLA     {macA}\n"));
        Assert.That(Run(w, a, "arp 10.0.0.2").Out, Is.EqualTo($"10.0.0.2 (10.0.0.2) at {macB}\n"));
    }

    [Test]
    public void Ifconfig_a_prints_illumos_flags_and_addresses()
    {
        var (w, a, _) = Pair();
        string mac = a.FindInterface("net0")!.MacAddress.ToString();
        Assert.That(Run(w, a, "ifconfig -a").Out, Is.EqualTo(
            "lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n" +
            "\tinet 127.0.0.1 netmask ff000000 \n" +
            "net0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
            "\tinet 10.0.0.1 netmask ffffff00 broadcast 10.0.0.255\n" +
            $"\tether {mac} \n" +
            "lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n" +
            "\tinet6 ::1/128 \n"));
    }

    [Test]
    public void Traceroute_names_each_hop_through_a_router()
    {
        var w = new World();
        w.Stub("stub1");
        w.Stub("stub2");
        var router = w.Stack("stub1", "10.0.1.1/24");
        router.CreateInterface("net1", w.Vnic("stub2"));
        w.AddAddress(router, "net1/v4", "10.0.2.1/24");
        router.ForwardingV4 = true;
        var h1 = w.Stack("stub1", "10.0.1.2/24");
        var h2 = w.Stack("stub2", "10.0.2.2/24");
        h1.AddRoute(IpAddress.AnyV4, 0, World.Ip("10.0.1.1"));
        h2.AddRoute(IpAddress.AnyV4, 0, World.Ip("10.0.2.1"));
        var r = Run(w, h1, "traceroute -n -q 1 10.0.2.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero);
            Assert.That(r.Err, Is.EqualTo("traceroute to 10.0.2.2 (10.0.2.2), 30 hops max, 40 byte packets\n"));
            Assert.That(r.Out, Is.EqualTo(
                " 1  10.0.1.1  0.000 ms\n" +
                " 2  10.0.2.2  0.000 ms\n"));
        }
    }
}
