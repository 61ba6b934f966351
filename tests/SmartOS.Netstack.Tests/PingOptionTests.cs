using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>ping's options as illumos's ping.c parses them (usr/src/cmd/cmd-inet/usr.sbin/ping/ping.c,
/// getopt string "aA:c:dF:G:g:I:i:LlnP:p:rRSsTt:UvX:x:Y0123?"): -c is a traffic class, not a count.</summary>
public class PingOptionTests
{
    private sealed record Result(int Status, string Out, string Err);

    private sealed class FrameLog : ICaptureTap
    {
        public List<byte[]> Frames { get; } = [];
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (direction == TapDirection.Transmitted) Frames.Add(frame.ToArray());
        }
    }

    private static Result Run(World w, IpStack stack, string command)
    {
        string[] argv = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Programs.TryGet(argv[0], out var run), Is.True);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var ctx = new ProgramContext { Out = o, Err = e, Stack = stack, Cancel = default };
        int status = w.Await(() => run(ctx, argv[1..]), 600 * Time.Second);
        return new Result(status, o.ToString(), e.ToString());
    }

    private static (World W, IpStack A, IpStack B, FrameLog Log) Pair()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        w.AddAddress(a, "net0/v6", "2001:db8::1/64");
        w.AddAddress(b, "net0/v6", "2001:db8::2/64");
        var log = new FrameLog();
        ((Datalink)w.Mac.Find("vnic0")!).AddTap(log);
        w.Run(5 * Time.Second); // duplicate address detection
        return (w, a, b, log);
    }

    private static List<byte[]> Echoes(FrameLog log, ushort etherType) => log.Frames.Where(f =>
        BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == etherType &&
        (etherType == EtherType.Ipv4 ? f[14 + 9] == IpProtocol.Icmp && f[14 + 20] == IcmpType.EchoRequest
                                     : f[14 + 6] == IpProtocol.Icmpv6 && f[14 + 40] == IcmpType.V6EchoRequest)).ToList();

    [Test]
    public void Ping_c_sets_the_ipv6_traffic_class_of_every_echo()
    {
        // ping.c: case 'c': class = int_arg(optarg, "traffic class"); ... to6.sin6_flowinfo = htonl((class << 20) | flowinfo);
        var (w, a, _, log) = Pair();
        var r = Run(w, a, "ping -s -c 46 2001:db8::2 56 2");
        var echoes = Echoes(log, EtherType.Ipv6);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero, r.Err);
            Assert.That(r.Out, Does.Contain("2 packets transmitted, 2 packets received"));
            Assert.That(echoes, Has.Count.EqualTo(2));
            Assert.That(echoes.Select(f => (BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(14)) >> 20) & 0xFF), Is.All.EqualTo(46));
        }
    }

    [Test]
    public void Ping_P_sets_the_ipv4_type_of_service_of_every_echo()
    {
        // ping.c: if (settos && family == AF_INET) setsockopt(send_sock, IPPROTO_IP, IP_TOS, ...)
        var (w, a, _, log) = Pair();
        var r = Run(w, a, "ping -s -P 0xb8 10.0.0.2 56 2");
        var echoes = Echoes(log, EtherType.Ipv4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero, r.Err);
            Assert.That(echoes, Has.Count.EqualTo(2));
            Assert.That(echoes.Select(f => f[14 + 1]), Is.All.EqualTo(0xB8));
            Assert.That(echoes.All(f => Checksum.Compute(f.AsSpan(14, 20)) == 0), Is.True, "header checksum covers the tos");
        }
    }

    [Test]
    public void Ping_c_is_not_a_count_and_is_refused_for_an_ipv4_host()
    {
        // illumos ping.c puts the class only into sin6_flowinfo; here an IPv4 class is refused, not ignored.
        var (w, a, _, log) = Pair();
        var r = Run(w, a, "ping -c 3 10.0.0.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.EqualTo(1));
            Assert.That(r.Err, Is.EqualTo("ping: -c traffic_class applies to IPv6 hosts only; use -P tos for IPv4\n"));
            Assert.That(Echoes(log, EtherType.Ipv4), Is.Empty);
            Assert.That(Run(w, a, "ping -P 16 2001:db8::2").Err, Does.StartWith("ping: -P tos applies to IPv4 hosts only"));
        }
    }

    [Test]
    public void Ping_option_values_out_of_range_are_refused_with_ping_c_wording()
    {
        // ping.c: "%s: traffic class %d out of range", "%s: tos value %d out of range",
        // "%s: ttl %d out of range", int_arg's "%s: bad %s: %s", "%s: packet count %d out of range".
        var (w, a, _, _) = Pair();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Run(w, a, "ping -c 256 2001:db8::2").Err, Is.EqualTo("ping: traffic class 256 out of range\n"));
            Assert.That(Run(w, a, "ping -P 300 10.0.0.2").Err, Is.EqualTo("ping: tos value 300 out of range\n"));
            Assert.That(Run(w, a, "ping -t 256 10.0.0.2").Err, Is.EqualTo("ping: ttl 256 out of range\n"));
            Assert.That(Run(w, a, "ping -c x 2001:db8::2").Err, Is.EqualTo("ping: bad traffic class: x\n"));
            Assert.That(Run(w, a, "ping -s 10.0.0.2 56 0").Err, Is.EqualTo("ping: packet count 0 out of range\n"));
            Assert.That(Run(w, a, "ping -s 10.0.0.2 big").Err, Is.EqualTo("ping: bad data size: big\n"));
            Assert.That(Run(w, a, "ping 10.0.0.2 soon").Err, Is.EqualTo("ping: bad timeout: soon\n"));
            Assert.That(Run(w, a, "ping -I never 10.0.0.2").Err, Is.EqualTo("ping: bad interval: never\n"));
            Assert.That(Run(w, a, "ping -s 10.0.0.2 70000").Err, Is.EqualTo("ping: data size too large for IPv4 packet\n"));
            Assert.That(Run(w, a, "ping -R 10.0.0.2").Err, Is.EqualTo("ping: option -R is not supported by this ping\n"));
        }
    }

    [Test]
    public void Ping_I_implies_statistics_and_spaces_the_probes()
    {
        // ping.c: case 'I': stats = _B_TRUE; interval = ...
        var (w, a, _, log) = Pair();
        long start = w.Scheduler.Now;
        var r = Run(w, a, "ping -I 0.5 10.0.0.2 56 4");
        var echoes = Echoes(log, EtherType.Ipv4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Status, Is.Zero, r.Err);
            Assert.That(r.Out, Does.StartWith("PING 10.0.0.2: 56 data bytes\n"));
            Assert.That(r.Out, Does.Contain("4 packets transmitted, 4 packets received, 0% packet loss"));
            Assert.That(echoes, Has.Count.EqualTo(4));
            Assert.That(w.Scheduler.Now - start, Is.LessThan(4 * Time.Second));
        }
    }

    [Test]
    public void Ping_n_names_the_address_in_the_header()
    {
        // ping.c: if (probe_all || !nflag) "PING %s: %d data bytes" else "PING %s (%s): %d data bytes"
        var (w, a, _, _) = Pair();
        Assert.That(Run(w, a, "ping -sn 10.0.0.2 56 1").Out, Does.StartWith("PING 10.0.0.2 (10.0.0.2): 56 data bytes\n"));
    }

    [Test]
    public void Ping_t_sets_the_ttl_of_the_echo()
    {
        // ping.c: case 't': hoplimit = int_arg(optarg, "ttl"); setsockopt(... IP_TTL ...)
        var (w, a, _, log) = Pair();
        Run(w, a, "ping -s -t 7 10.0.0.2 56 1");
        Assert.That(Echoes(log, EtherType.Ipv4).Select(f => f[14 + 8]), Is.EqualTo(new byte[] { 7 }));
    }

    [Test]
    public void Ping_i_names_an_interface_and_refuses_one_that_does_not_exist()
    {
        // ping.c find_if/setup_socket: "%s: %s is an invalid %s interface"
        var (w, a, _, _) = Pair();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Run(w, a, "ping -i net0 10.0.0.2").Out, Is.EqualTo("10.0.0.2 is alive\n"));
            Assert.That(Run(w, a, "ping -i 10.0.0.1 10.0.0.2").Out, Is.EqualTo("10.0.0.2 is alive\n"));
            var bad = Run(w, a, "ping -i net9 10.0.0.2");
            Assert.That(bad.Status, Is.EqualTo(1));
            Assert.That(bad.Err, Is.EqualTo("ping: net9 is an invalid IPv4 interface\n"));
            Assert.That(Run(w, a, "ping -i net0 2001:db8::2").Out, Is.EqualTo("2001:db8::2 is alive\n"));
            // IPv6 unicast out of an interface its route does not use: illumos forces it, this stack cannot.
            w.Stub("stub1");
            Assert.That(a.CreateInterface("net1", w.Vnic("stub1")).IsOk, Is.True);
            w.AddAddress(a, "net1/v6", "2001:db9::1/64");
            var other = Run(w, a, "ping -i net1 2001:db8::2");
            Assert.That(other.Status, Is.EqualTo(1));
            Assert.That(other.Err, Is.EqualTo("ping: net1: 2001:db8::2 is not reached through this interface here (IPv6 unicast follows the route)\n"));
        }
    }

    [Test]
    public void Ping_v_also_reports_icmp_errors_about_other_programs_packets()
    {
        // ping.c -v: ICMP packets other than ECHO_RESPONSE that are received are listed.
        var (w, a, _, _) = Pair();
        using var udp = a.OpenUdpSocket();
        string WithStrayError(string flags)
        {
            // A datagram to a closed port on b brings back Port Unreachable, quoting the datagram.
            var o = new StringWriter { NewLine = "\n" };
            Assert.That(Programs.TryGet("ping", out var run), Is.True);
            var ctx = new ProgramContext { Out = o, Err = new StringWriter(), Stack = a, Cancel = default };
            int status = w.Await(async () =>
            {
                var t = run(ctx, [flags, "-I", "0.5", "10.0.0.2", "56", "2"]);
                Assert.That(udp.SendTo(new byte[4], new IpEndpoint(World.Ip("10.0.0.2"), 9)), Is.EqualTo(NetError.None));
                return await t;
            }, 600 * Time.Second);
            Assert.That(status, Is.Zero);
            return o.ToString();
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(WithStrayError("-s"), Does.Not.Contain("ICMP"));
            Assert.That(WithStrayError("-sv"), Does.Contain("ICMP Port Unreachable from gateway 10.0.0.2"));
        }
    }
}
