using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>Bounded tables and queues (IpStack.cs rule 3), kstats, loopback.</summary>
public class LimitsTests
{
    [Test]
    public void Arp_cache_stays_within_its_limit_and_counts_evictions()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/16");
        var ifc = s.FindInterface("net0")!;
        var frame = new byte[42];
        for (int i = 0; i < 600; i++)
        {
            EthernetView.WriteHeader(frame, ifc.MacAddress, new MacAddress(0x020000100000UL + (ulong)i), EtherType.Arp);
            ArpView.TryWrite(frame.AsSpan(14), ArpView.OpRequest, new MacAddress(0x020000100000UL + (ulong)i), 0x0A000100u + (uint)i, MacAddress.Zero, 0x0A000001);
            s.Inject(ifc, Packet.Unpooled(frame));
        }
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ifc.ArpEntryCount, Is.EqualTo(512));
            Assert.That(s.ArpStats.arpCacheEvictions, Is.EqualTo(600 - 512));
            Assert.That(s.ArpStats.arpOutReplies, Is.EqualTo(600));
        }
    }

    [Test]
    public void Packets_waiting_for_arp_are_bounded_and_the_excess_counted()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        using var u = s.OpenUdpSocket();
        for (int i = 0; i < 100; i++) u.SendTo("x"u8, new IpEndpoint(World.Ip("10.0.0.77"), 9));
        Assert.That(s.ArpStats.arpPendingDrops, Is.EqualTo(100 - 64));
        w.Run(5 * Time.Second);
        Assert.That(s.ArpStats.arpPendingDrops, Is.EqualTo(100));
    }

    [Test]
    public void Reassembly_is_bounded_in_entries_and_time_and_answers_with_time_exceeded()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var ifc = b.FindInterface("net0")!;
        var peerMac = a.FindInterface("net0")!.MacAddress;
        // Let b learn a's address so its ICMP errors can leave without waiting for ARP.
        using (var sock = a.OpenIcmpSocket(false))
        {
            sock.SendEcho(World.Ip("10.0.0.2"), 1, 8);
            w.Run(Time.Second);
        }
        for (int i = 0; i < 100; i++)
        {
            // First fragments only (MF set, offset 0): none ever completes.
            var f = Frames.Ipv4(ifc.MacAddress, peerMac, "10.0.0.1", "10.0.0.2", IpProtocol.Udp, new byte[64], flagsOffset: 0x2000, id: (ushort)(1000 + i));
            b.Inject(ifc, Packet.Unpooled(f));
        }
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.ReassemblyCount, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(b.Counters.ipReasmOverflows, Is.EqualTo(100 - IpStack.ReassemblyMaxEntries));
        }
        w.Run(IpStack.ReassemblyTimeout);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.ReassemblyCount, Is.Zero);
            Assert.That(b.Counters.ipReasmTimeout, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(b.Icmp.icmpOutTimeExcds + b.Icmp.icmpOutRateLimited, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(a.Icmp.icmpInTimeExcds, Is.EqualTo(IpStack.IcmpErrorBurst));
        }
    }

    [Test]
    public void Overlapping_and_out_of_order_fragments_reassemble()
    {
        var w = new World();
        w.Stub("stub0");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var ifc = b.FindInterface("net0")!;
        using var u = b.OpenUdpSocket();
        u.Bind(IpAddress.AnyV4, 4444);
        var payload = new byte[64];
        for (int i = 0; i < payload.Length; i++) payload[i] = (byte)i;
        var udp = Frames.Udp("10.0.0.9", "10.0.0.2", 1, 4444, payload);
        var src = new MacAddress(0x020000000009);
        // Three pieces: [40,72) last, [0,24) first, [16,48) overlapping the others.
        void Piece(int start, int end, bool more)
        {
            var f = Frames.Ipv4(ifc.MacAddress, src, "10.0.0.9", "10.0.0.2", IpProtocol.Udp, udp[start..end], flagsOffset: (ushort)((more ? 0x2000 : 0) | (start / 8)), id: 77);
            b.Inject(ifc, Packet.Unpooled(f));
        }
        Piece(40, 72, false);
        Piece(0, 24, true);
        Piece(16, 48, true);
        w.Run(Time.Second);
        var buf = new byte[100];
        Assert.That(u.TryReceiveFrom(buf, out int n, out _), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(n, Is.EqualTo(64));
            Assert.That(buf[..64], Is.EqualTo(payload));
            Assert.That(b.Counters.ipReasmOKs, Is.EqualTo(1));
        }
    }

    [Test]
    public void Stack_counters_are_kstats_in_the_ip_udp_and_icmp_modules()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        w.Stack("stub0", "10.0.0.2/24");
        using var sock = a.OpenIcmpSocket(false);
        w.Await(async () => { sock.SendEcho(World.Ip("10.0.0.2"), 1, 8); return await sock.ReceiveAsync(Time.Second); });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(w.Kstats.Read("icmp", "icmp", "icmpInEchoReps"), Is.EqualTo(1));
            Assert.That(w.Kstats.Read("ip", "ip", "ipInReceives"), Is.GreaterThan(0));
            Assert.That(w.Kstats.Read("udp", "udp", "udpNoPorts"), Is.Zero);
            Assert.That(w.Kstats.FormatParsable("icmp:0:icmp:icmpOutEchos"), Is.EqualTo("icmp:0:icmp:icmpOutEchos\t1\n"));
        }
        a.Shutdown();
        Assert.That(w.Kstats.FormatParsable("icmp:0:icmp:icmpOutEchos"), Is.Empty);
    }

    [Test]
    public void Own_and_loopback_addresses_answer_through_lo0()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        foreach (string target in new[] { "10.0.0.1", "127.0.0.1", "::1" })
        {
            using var sock = a.OpenIcmpSocket(target.Contains(':'));
            var m = w.Await(async () => { sock.SendEcho(World.Ip(target), 1, 8); return await sock.ReceiveAsync(Time.Second); });
            Assert.That(m?.From, Is.EqualTo(World.Ip(target)), target);
        }
        Assert.That(a.Counters.ipLoopback, Is.GreaterThanOrEqualTo(4));
    }

    [Test]
    public void Ipv6_router_forwards_and_answers_hop_limit_expiry()
    {
        var w = new World();
        w.Stub("stub1");
        w.Stub("stub2");
        var r = w.Stack("stub1", null);
        r.CreateInterface("net1", w.Vnic("stub2"));
        r.AddAddress("net0/v6", World.Ip("2001:db8:1::1"), 64, out _);
        r.AddAddress("net1/v6", World.Ip("2001:db8:2::1"), 64, out _);
        r.ForwardingV6 = true;
        var h1 = w.Stack("stub1", null);
        var h2 = w.Stack("stub2", null);
        h1.AddAddress("net0/v6", World.Ip("2001:db8:1::2"), 64, out _);
        h2.AddAddress("net0/v6", World.Ip("2001:db8:2::2"), 64, out _);
        w.Run(2 * Time.Second);
        Assert.That(h1.AddRoute(IpAddress.AnyV6, 0, World.Ip("2001:db8:1::1")), Is.EqualTo(NetError.None));
        Assert.That(h2.AddRoute(IpAddress.AnyV6, 0, World.Ip("2001:db8:2::1")), Is.EqualTo(NetError.None));
        using var sock = h1.OpenIcmpSocket(true);
        var reply = w.Await(async () => { sock.SendEcho(World.Ip("2001:db8:2::2"), 1, 16); return await sock.ReceiveAsync(5 * Time.Second); });
        var expired = w.Await(async () => { sock.SendEcho(World.Ip("2001:db8:2::2"), 2, 16, ttl: 1); return await sock.ReceiveAsync(5 * Time.Second); });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reply?.Type, Is.EqualTo(IcmpType.V6EchoReply));
            Assert.That(r.Counters6.ipv6ForwDatagrams, Is.EqualTo(2));
            Assert.That(expired?.Type, Is.EqualTo(IcmpType.V6TimeExceeded));
            Assert.That(expired!.From, Is.EqualTo(World.Ip("2001:db8:1::1")));
        }
    }
}
