using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class FuzzTests
{
    /// <summary>
    /// 100,000 frames from a seeded generator: valid-looking headers (Ethernet, ARP, IPv4, IPv6,
    /// ICMP, UDP, fragments, NDP) with random fields, truncations and random bytes. Nothing may
    /// throw; every frame ends counted somewhere; buffers and tables stay bounded.
    /// </summary>
    [Test]
    public void Hundred_thousand_malformed_frames_never_throw_and_are_counted()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        var peer = w.Stack("stub0", "10.0.0.2/24");
        s.StartAddrconf("net0", out _);
        s.ForwardingV4 = true;
        s.ForwardingV6 = true;
        using var udp = s.OpenUdpSocket();
        udp.Bind(IpAddress.AnyV4, 53);
        w.Run(5 * Time.Second);
        var ifc = s.FindInterface("net0")!;
        var rnd = new HostRandom(7);
        var mine = ifc.MacAddress;
        var other = new MacAddress(0x02AABBCCDDEE);
        var buf = new byte[1600];
        long dropsBefore = TotalDrops(s);
        int outstandingBefore = w.Pool.Outstanding;
        const int N = 100_000;
        for (int i = 0; i < N; i++)
        {
            int len = Build(rnd, buf, mine, other);
            var p = w.Pool.Rent(buf.AsSpan(0, len))!;
            s.Inject(ifc, p);
            if ((i & 255) == 255) w.Scheduler.RunFor(Time.Millisecond);
        }
        w.Run(120 * Time.Second);
        while (udp.TryReceiveFrom(buf, out _, out _)) { }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TotalDrops(s) - dropsBefore, Is.GreaterThan(N / 2));
            Assert.That(s.ReassemblyCount, Is.Zero, "reassembly timed out everything");
            Assert.That(s.Counters6.ipv6ReasmReqds, Is.GreaterThan(1000), "IPv6 fragments reached reassembly");
            Assert.That(w.Pool.Outstanding, Is.LessThanOrEqualTo(outstandingBefore + 8), "no leaked packets");
            Assert.That(s.ArpTable(), Has.Count.LessThanOrEqualTo(NeighborCacheLimit + 2));
        }
        // The stack still works. Random ARP replies may legitimately have rewritten the peer's
        // entry (RFC 826 merge), so forget it first.
        s.DeleteArp(World.Ip("10.0.0.2"));
        Assert.That(s.FindAddressObject("net0/v4")!.State, Is.EqualTo(AddressState.Ok));
        using var sock = s.OpenIcmpSocket(false);
        var reply = w.Await(async () =>
        {
            sock.SendEcho(World.Ip("10.0.0.2"), 1, 8);
            return await sock.ReceiveAsync(5 * Time.Second);
        });
        Assert.That(reply?.Type, Is.EqualTo(IcmpType.EchoReply));
        Assert.That(peer.Icmp.icmpInEchos, Is.GreaterThanOrEqualTo(1));
    }

    private const int NeighborCacheLimit = 512;

    private static long TotalDrops(IpStack s) =>
        s.Counters.TotalDrops + s.Counters6.TotalDrops + s.Icmp.TotalDrops + s.Icmp6.TotalDrops + s.UdpStats.TotalDrops
        + s.ArpStats.arpInMalformed + s.ArpStats.arpInIgnored + s.Counters.ipReasmReqds;

    private static int Build(HostRandom r, byte[] b, MacAddress mine, MacAddress other)
    {
        int kind = r.Next(10);
        var f = b.AsSpan();
        f.Clear();
        EthernetView.WriteHeader(f, r.Next(4) == 0 ? MacAddress.Broadcast : mine, other, EtherType.Ipv4);
        int len;
        switch (kind)
        {
            case 0: // random bytes
                len = r.Next(120);
                r.NextBytes(f[..len]);
                return len;
            case 1: // ARP with random fields
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherType.Arp);
                ArpView.TryWrite(f[14..], (ushort)r.Next(4), new MacAddress(r.NextUInt64()), (uint)(0x0A000000 | r.Next(256)), new MacAddress(r.NextUInt64()), (uint)(0x0A000000 | r.Next(4)));
                if (r.Next(3) == 0) f[14 + r.Next(28)] ^= (byte)r.Next(256);
                return 14 + 28 - (r.Next(4) == 0 ? r.Next(28) : 0);
            case 2:
            case 3: // IPv4 with random protocol, flags, offset and payload
            {
                int payload = r.Next(1400);
                var ip = f[14..];
                Stack(ip, r, payload, (byte)(r.Next(3) switch { 0 => IpProtocol.Icmp, 1 => IpProtocol.Udp, _ => r.Next(256) }));
                r.NextBytes(ip.Slice(20, payload));
                if (r.Next(2) == 0) FixIcmpOrUdp(ip, payload);
                len = 14 + 20 + payload;
                if (r.Next(5) == 0) len = r.Next(len);
                if (r.Next(10) == 0) ip[r.Next(20)] ^= (byte)(1 << r.Next(8));
                return len;
            }
            case 4: // fragments of random datagrams
            {
                int payload = 8 * (1 + r.Next(100));
                var ip = f[14..];
                Stack(ip, r, payload, IpProtocol.Udp);
                ushort off = (ushort)(r.Next(1200) | (r.Next(2) == 0 ? 0x2000 : 0));
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[6..], off);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)r.Next(16));
                Recheck(ip);
                return 14 + 20 + payload;
            }
            case 5:
            case 6: // IPv6, including ICMPv6/NDP with random options
            {
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherType.Ipv6);
                int payload = r.Next(200);
                var src = r.Next(2) == 0 ? IpAddress.V6(0xFE80_0000_0000_0000UL, r.NextUInt64()) : IpAddress.V6(r.NextUInt64(), r.NextUInt64());
                var dst = r.Next(3) switch
                {
                    0 => IpAddress.V6(0xFF02_0000_0000_0000UL, 1),
                    1 => Ipv6View.LinkLocalFromMac(mine), // ours: fragments reach reassembly
                    _ => IpAddress.V6(0x2001_0db8_0000_0000UL, r.NextUInt64()),
                };
                byte next = (byte)(r.Next(5) switch { 0 => IpProtocol.Icmpv6, 1 => IpProtocol.Udp, 2 => 0, 3 => 44, _ => r.Next(256) });
                Ipv6View.TryWrite(f[14..], src, dst, next, payload, (byte)(r.Next(2) == 0 ? 255 : r.Next(256)));
                var m = f.Slice(54, payload);
                r.NextBytes(m);
                if (next == 44 && payload >= 8)
                {
                    // A fragment header with a small identification, so that pieces meet.
                    m[0] = (byte)(r.Next(2) == 0 ? IpProtocol.Udp : r.Next(256));
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(m[2..], (ushort)((8 * r.Next(150)) | r.Next(2)));
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(m[4..], (uint)r.Next(8));
                }
                if (next == IpProtocol.Icmpv6 && payload >= 8)
                {
                    m[0] = (byte)(128 + r.Next(9));
                    m[1] = 0;
                    IcmpView.FinishV6(m, src, dst);
                }
                len = 54 + payload;
                return r.Next(6) == 0 ? r.Next(len) : len;
            }
            case 7: // unknown EtherType
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f[12..], (ushort)r.Next(65536));
                return 14 + r.Next(50);
            case 8: // ICMP errors quoting random things
            {
                int payload = 8 + r.Next(60);
                var ip = f[14..];
                Stack(ip, r, payload, IpProtocol.Icmp);
                var m = ip.Slice(20, payload);
                r.NextBytes(m);
                m[0] = (byte)(r.Next(3) switch { 0 => 3, 1 => 11, _ => 12 });
                m[1] = (byte)r.Next(16);
                IcmpView.FinishV4(m);
                return 14 + 20 + payload;
            }
            default: // runts and tagged frames
                len = r.Next(20);
                if (r.Next(2) == 0) { System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherType.Vlan); len = 14 + r.Next(10); }
                return len;
        }
    }

    private static void Stack(Span<byte> ip, HostRandom r, int payload, byte proto)
    {
        uint src = r.Next(3) == 0 ? 0x0A000000u | (uint)r.Next(256) : r.NextUInt32();
        uint dst = r.Next(3) switch { 0 => 0x0A000001u, 1 => 0xFFFFFFFFu, _ => r.NextUInt32() };
        IpStack_WriteHeader(ip, src, dst, proto, 20 + payload, (byte)r.Next(256));
    }

    private static void IpStack_WriteHeader(Span<byte> b, uint src, uint dst, byte proto, int total, byte ttl)
    {
        b[0] = 0x45;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)total);
        b[8] = ttl; b[9] = proto;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b[12..], src);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b[16..], dst);
        Recheck(b);
    }

    private static void Recheck(Span<byte> ip)
    {
        ip[10] = 0; ip[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
    }

    private static void FixIcmpOrUdp(Span<byte> ip, int payload)
    {
        if (ip[9] == IpProtocol.Icmp && payload >= 8)
        {
            ip[20] = IcmpType.EchoRequest;
            IcmpView.FinishV4(ip.Slice(20, payload));
        }
        else if (ip[9] == IpProtocol.Udp && payload >= 8)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[24..], (ushort)payload);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[22..], 53);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[26..], 0);
        }
    }
}
