using SmartOS.Cli.Snoop;
using static SmartOS.Cli.Tests.Snoop.TestFrames;

namespace SmartOS.Cli.Tests.Snoop;

public class SnoopFilterTests
{
    private static SnoopFilter Parse(string expression)
    {
        bool ok = SnoopFilter.TryParse([expression], out var filter, out string error);
        Assert.That(ok, Is.True, $"'{expression}' should parse, got: {error}");
        return filter!;
    }

    private static bool Match(string expression, byte[] frame) => Parse(expression).Matches(frame);

    [Test]
    public void Filter_with_no_words_matches_everything()
    {
        Assert.That(SnoopFilter.TryParse([], out var filter, out _), Is.True);
        Assert.That(filter!.Matches(Unknown()), Is.True);
    }

    [TestCase("udp", true)]
    [TestCase("tcp", false)]
    [TestCase("ip", true)]
    [TestCase("ip6", false)]
    [TestCase("arp", false)]
    [TestCase("icmp", false)]
    [TestCase("port 9", true)]
    [TestCase("port 1234", true)]
    [TestCase("port 80", false)]
    [TestCase("port discard", true)]
    [TestCase("dst port 9", true)]
    [TestCase("src port 9", false)]
    [TestCase("src port 1234", true)]
    [TestCase("host 192.0.2.1", true)]
    [TestCase("192.0.2.2", true)]
    [TestCase("host 192.0.2.3", false)]
    [TestCase("src host 192.0.2.1", true)]
    [TestCase("dst host 192.0.2.1", false)]
    [TestCase("src 192.0.2.1", true)]
    [TestCase("dst 192.0.2.2", true)]
    [TestCase("net 192.0.2.0/24", true)]
    [TestCase("net 192.0.3.0/24", false)]
    [TestCase("net 192.0.2.0", true)]
    [TestCase("net 192.0.0.0 mask 255.255.0.0", true)]
    [TestCase("ether 2:8:20:a:b:c", true)]
    [TestCase("2:8:20:1:2:3", true)]
    [TestCase("ether src 2:8:20:a:b:c", true)]
    [TestCase("ether dst 2:8:20:a:b:c", false)]
    [TestCase("ethertype 0x800", true)]
    [TestCase("ethertype 2048", true)]
    [TestCase("ethertype 0x806", false)]
    [TestCase("vlan", false)]
    [TestCase("broadcast", false)]
    [TestCase("multicast", false)]
    [TestCase("greater 60", true)]
    [TestCase("greater 61", false)]
    [TestCase("less 60", true)]
    [TestCase("less 59", false)]
    public void Filter_primitive_on_untagged_udp_frame(string expression, bool expected)
        => Assert.That(Match(expression, Udp(1234, 9)), Is.EqualTo(expected));

    [Test]
    public void Filter_vlan_matches_only_that_vid()
    {
        byte[] tagged5 = Udp(1234, 9, vid: 5), tagged6 = Udp(1234, 9, vid: 6), plain = Udp(1234, 9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("vlan 5", tagged5), Is.True);
            Assert.That(Match("vlan 5", tagged6), Is.False);
            Assert.That(Match("vlan 5", plain), Is.False);
            Assert.That(Match("vlan", tagged6), Is.True);
            Assert.That(Match("not vlan", plain), Is.True);
        }
    }

    [Test]
    public void Filter_looks_past_the_tag_for_ip_and_ports()
    {
        byte[] tagged = Udp(1234, 9, vid: 5);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("udp and port 9", tagged), Is.True);
            Assert.That(Match("host 192.0.2.1", tagged), Is.True);
            Assert.That(Match("ethertype 0x800", tagged), Is.True);
            Assert.That(Match("vlan 5 and tcp", tagged), Is.False);
        }
    }

    [Test]
    public void Filter_arp_host_matches_sender_and_target_addresses()
    {
        byte[] request = Arp(request: true), tagged = Arp(request: true, vid: 7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("arp", request), Is.True);
            Assert.That(Match("rarp", request), Is.False);
            Assert.That(Match("host 192.0.2.2", request), Is.True);
            Assert.That(Match("dst host 192.0.2.2", request), Is.True);
            Assert.That(Match("src host 192.0.2.2", request), Is.False);
            Assert.That(Match("broadcast", request), Is.True);
            Assert.That(Match("multicast", request), Is.True);
            Assert.That(Match("arp and vlan 7", tagged), Is.True);
            Assert.That(Match("net 192.0.2.0/24", request), Is.False, "net looks at IP headers only");
        }
    }

    [Test]
    public void Filter_tcp_and_icmp_primitives_pick_their_protocols()
    {
        byte[] syn = Tcp(40000, 80, 0x02, 1), echo = IcmpEcho(request: true, 1, 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("tcp port http", syn), Is.True);
            Assert.That(Match("tcp dst port 80", syn), Is.True);
            Assert.That(Match("src port 80", syn), Is.False);
            Assert.That(Match("udp", syn), Is.False);
            Assert.That(Match("icmp", echo), Is.True);
            Assert.That(Match("icmp6", echo), Is.False);
            Assert.That(Match("port 80", echo), Is.False);
        }
    }

    [Test]
    public void Filter_ipv6_primitives_match_ipv6_addresses()
    {
        byte[] echo6 = Icmp6Echo(1, 2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("ip6 and icmp6", echo6), Is.True);
            Assert.That(Match("icmp", echo6), Is.False);
            Assert.That(Match("host 2001:db8::1", echo6), Is.True);
            Assert.That(Match("2001:db8::2", echo6), Is.True);
            Assert.That(Match("src host 2001:db8::2", echo6), Is.False);
            Assert.That(Match("net 2001:db8::/32", echo6), Is.True);
            Assert.That(Match("net 2001:db9::/32", echo6), Is.False);
            Assert.That(Match("host 192.0.2.1", echo6), Is.False);
        }
    }

    [Test]
    public void Filter_precedence_is_not_then_and_then_or()
    {
        byte[] udp = Udp(1234, 9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("tcp or udp and port 9", udp), Is.True);
            Assert.That(Match("udp or tcp and port 80", udp), Is.True, "and binds tighter than or");
            Assert.That(Match("(udp or tcp) and port 80", udp), Is.False);
            Assert.That(Match("not tcp and udp", udp), Is.True);
            Assert.That(Match("not (tcp or udp)", udp), Is.False);
            Assert.That(Match("!tcp && udp", udp), Is.True);
            Assert.That(Match("tcp || udp", udp), Is.True);
        }
    }

    [Test]
    public void Filter_juxtaposed_primitives_mean_and()
    {
        byte[] udp = Udp(1234, 9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("udp port 9", udp), Is.True);
            Assert.That(Match("udp port 10", udp), Is.False);
            Assert.That(Match("ip udp host 192.0.2.1 port 9", udp), Is.True);
        }
    }

    [Test]
    public void Filter_accepts_several_words_and_parentheses_without_spaces()
    {
        Assert.That(SnoopFilter.TryParse(["(udp", "or", "tcp)", "and", "port", "9"], out var filter, out _), Is.True);
        Assert.That(filter!.Matches(Udp(1234, 9)), Is.True);
        Assert.That(SnoopFilter.TryParse(["(udp)and(port 9)"], out var joined, out _), Is.True);
        Assert.That(joined!.Matches(Udp(1234, 9)), Is.True);
    }

    [Test]
    public void Filter_broadcast_matches_ip_broadcast_and_multicast_matches_group_addresses()
    {
        byte[] toAll = Udp(68, 67, src: 0, dst: 0xFFFF_FFFF, dstMac: SmartOS.Kernel.Wire.MacAddress.Broadcast);
        byte[] toGroup = Udp(5353, 5353, dstMac: new SmartOS.Kernel.Wire.MacAddress(0x0100_5E00_00FBUL));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Match("broadcast", toAll), Is.True);
            Assert.That(Match("port bootps", toAll), Is.True);
            Assert.That(Match("multicast", toGroup), Is.True);
            Assert.That(Match("broadcast", toGroup), Is.False);
        }
    }

    [TestCase("foo", "syntax error at 'foo'")]
    [TestCase("udp foo", "syntax error at 'foo'")]
    [TestCase("udp and", "expression is incomplete")]
    [TestCase("(udp", "missing ')'")]
    [TestCase("udp)", "unbalanced ')'")]
    [TestCase("port", "'port' needs an operand")]
    [TestCase("port nosuchservice", "unknown port 'nosuchservice'")]
    [TestCase("port 70000", "unknown port '70000'")]
    [TestCase("host", "'host' needs an operand")]
    [TestCase("host somename", "host 'somename' not known (names are not resolved)")]
    [TestCase("ether 1:2:3", "invalid ether address '1:2:3'")]
    [TestCase("net 10.0.0.0/33", "invalid prefix length in '10.0.0.0/33'")]
    [TestCase("ethertype zz", "invalid ethertype 'zz'")]
    [TestCase("greater x", "invalid length 'x'")]
    [TestCase("not", "expression is incomplete")]
    [TestCase("or udp", "syntax error at 'or'")]
    public void Filter_rejects_bad_expression_with_a_clear_error(string expression, string expected)
    {
        bool ok = SnoopFilter.TryParse([expression], out var filter, out string error);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.False);
            Assert.That(filter, Is.Null);
            Assert.That(error, Is.EqualTo(expected));
        }
    }

    [Test]
    public void Filter_matching_does_not_allocate()
    {
        var filter = Parse("(udp or tcp) and port 9 and not vlan 3 or host 2001:db8::1 or ether 2:8:20:a:b:c");
        byte[] frame = Udp(1234, 9);
        for (int i = 0; i < 100; i++) filter.Matches(frame);
        // The least of three windows: a steady allocation shows in each, a one-off of the runtime's not.
        long allocated = long.MaxValue;
        for (int window = 0; window < 3; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++) filter.Matches(frame);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.Zero);
    }
}
