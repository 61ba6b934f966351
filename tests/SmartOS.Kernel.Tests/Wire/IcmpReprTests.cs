using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>IcmpV4Repr and IcmpV6Repr: fixed bytes, every type the stack speaks, refusals, PacketDotNet.</summary>
public class IcmpReprTests
{
    /// <summary>Echo request, identifier 0x1234, sequence 0xabcd, data aa 00 00 ff (smoltcp's example).</summary>
    private static readonly byte[] s_echo = [0x08, 0x00, 0x8e, 0xfe, 0x12, 0x34, 0xab, 0xcd, 0xaa, 0x00, 0x00, 0xff];

    private static readonly IpAddress s_ll1 = IpAddress.V6(0xFE80_0000_0000_0000UL, 0x0208_20FF_FE00_0001UL);
    private static readonly IpAddress s_ll2 = IpAddress.V6(0xFE80_0000_0000_0000UL, 0x0208_20FF_FE00_0002UL);

    /// <summary>RFC 1071 over the IPv6 pseudo-header and the message, written out the long way.</summary>
    private static ushort ReferenceV6(IpAddress src, IpAddress dst, ReadOnlySpan<byte> message)
    {
        var all = new byte[40 + message.Length + 1];
        src.Write(all);
        dst.Write(all.AsSpan(16));
        all[34] = (byte)(message.Length >> 8); all[35] = (byte)message.Length;
        all[39] = IpProtocol.Icmpv6;
        message.CopyTo(all.AsSpan(40));
        ulong sum = 0;
        for (int i = 0; i + 1 < all.Length; i += 2) sum += (uint)(all[i] << 8 | all[i + 1]);
        while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    [Test]
    public void An_echo_request_parses_from_fixed_bytes_and_emits_them_again()
    {
        var b = (byte[])s_echo.Clone();
        var e = IcmpV4Repr.Parse(b, ChecksumCaps.All, out var repr);
        Assert.That(e, Is.EqualTo(WireError.None));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(repr.Type, Is.EqualTo(IcmpType.EchoRequest));
            Assert.That(repr.Identifier, Is.EqualTo(0x1234));
            Assert.That(repr.Sequence, Is.EqualTo(0xabcd));
            Assert.That(repr.Data.ToArray(), Is.EqualTo(new byte[] { 0xaa, 0x00, 0x00, 0xff }));
        }
        var data = new byte[] { 0xaa, 0x00, 0x00, 0xff };
        var emitted = new byte[12];
        Assert.That(new IcmpV4Repr { Type = IcmpType.EchoRequest, Identifier = 0x1234, Sequence = 0xabcd, Data = data }.TryEmit(emitted), Is.True);
        Assert.That(emitted, Is.EqualTo(s_echo));
    }

    [Test]
    public void An_echo_turned_into_its_reply_in_place_keeps_its_data_and_a_right_checksum()
    {
        var b = (byte[])s_echo.Clone();
        IcmpV4Repr.Parse(b, ChecksumCaps.All, out var repr);
        var reply = repr;
        reply.Type = IcmpType.EchoReply;
        Assert.That(reply.TryEmit(b), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b[0], Is.EqualTo(IcmpType.EchoReply));
            Assert.That(b[8..], Is.EqualTo(new byte[] { 0xaa, 0x00, 0x00, 0xff }));
            Assert.That(Checksum.Compute(b), Is.Zero);
        }
    }

    [Test]
    public void Errors_round_trip_with_their_quote()
    {
        var quote = new byte[28];
        new Ipv4Repr { Source = IpAddress.V4(1), Destination = IpAddress.V4(2), Protocol = IpProtocol.Udp, PayloadLength = 8, Ttl = 1 }.TryEmit(quote);
        var cases = new (byte Type, byte Code, ushort Mtu, byte Pointer)[]
        {
            (IcmpType.DestinationUnreachable, 4, 1400, 0),
            (IcmpType.DestinationUnreachable, 3, 0, 0),
            (IcmpType.TimeExceeded, 1, 0, 0),
            (IcmpType.ParameterProblem, 0, 0, 12),
        };
        foreach (var c in cases)
        {
            var repr = new IcmpV4Repr { Type = c.Type, Code = c.Code, NextHopMtu = c.Mtu, Pointer = c.Pointer, Data = quote };
            var b = new byte[repr.BufferLength];
            Assert.That(repr.TryEmit(b), Is.True);
            var e = IcmpV4Repr.Parse(b, ChecksumCaps.All, out var parsed);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(e, Is.EqualTo(WireError.None), $"type {c.Type}");
                Assert.That((parsed.Type, parsed.Code, parsed.NextHopMtu, parsed.Pointer), Is.EqualTo(c), $"type {c.Type}");
                Assert.That(parsed.IsError, Is.True);
                Assert.That(parsed.Data.ToArray(), Is.EqualTo(quote), $"type {c.Type}");
            }
        }
    }

    [Test]
    public void Icmp_refusals_say_why()
    {
        var badSum = (byte[])s_echo.Clone();
        badSum[^1] = 0;
        var unknown = (byte[])s_echo.Clone();
        unknown[0] = 42;
        IcmpView.FinishV4(unknown);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(IcmpV4Repr.Parse(s_echo.AsSpan(0, 7).ToArray(), ChecksumCaps.All, out _), Is.EqualTo(WireError.Truncated));
            Assert.That(IcmpV4Repr.Parse(badSum, ChecksumCaps.All, out _), Is.EqualTo(WireError.BadChecksum));
            Assert.That(IcmpV4Repr.Parse(badSum, ChecksumCaps.None, out _), Is.EqualTo(WireError.None));
            Assert.That(IcmpV4Repr.Parse(unknown, ChecksumCaps.All, out _), Is.EqualTo(WireError.Unrecognized));
            Assert.That(new IcmpV4Repr { Type = IcmpType.EchoRequest, Data = new byte[4] }.TryEmit(new byte[11]), Is.False);
            Assert.That(new IcmpV4Repr { Type = 42 }.TryEmit(new byte[8]), Is.False);
        }
    }

    [Test]
    public void An_emitted_echo_agrees_with_PacketDotNet()
    {
        var data = new byte[] { 1, 2, 3, 4, 5, 6, 7 };
        var b = new byte[20 + 8 + data.Length];
        new IcmpV4Repr { Type = IcmpType.EchoRequest, Identifier = 77, Sequence = 9, Data = data }.TryEmit(b.AsSpan(20));
        new Ipv4Repr { Source = IpAddress.V4(0xC6120001), Destination = IpAddress.V4(0xC6120002), Protocol = IpProtocol.Icmp, PayloadLength = 15, Ttl = 64 }.TryEmit(b);

        var icmp = new PacketDotNet.IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(b)).Extract<PacketDotNet.IcmpV4Packet>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(icmp.ValidIcmpChecksum, Is.True);
            Assert.That(icmp.TypeCode, Is.EqualTo(PacketDotNet.IcmpV4TypeCode.EchoRequest));
            Assert.That(icmp.Id, Is.EqualTo(77));
            Assert.That(icmp.Sequence, Is.EqualTo(9));
            Assert.That(icmp.Data, Is.EqualTo(data));
        }
    }

    [Test]
    public void Every_ICMPv6_type_the_stack_sends_round_trips_with_a_right_checksum()
    {
        var options = new byte[8];
        NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.SourceLinkLayer, new MacAddress(0x0208_2000_0001UL));
        var quote = new byte[48];
        new Ipv6Repr { Source = s_ll1, Destination = s_ll2, NextHeader = IpProtocol.Udp, PayloadLength = 8, HopLimit = 1 }.TryEmit(quote);
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6EchoRequest, Identifier = 1, Sequence = 2, Data = options });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6EchoReply, Identifier = 3, Sequence = 4 });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6DestinationUnreachable, Code = 4, Data = quote });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6PacketTooBig, Mtu = 1280, Data = quote });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6TimeExceeded, Code = 1, Data = quote });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.V6ParameterProblem, Code = 1, Pointer = 6, Data = quote });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.RouterSolicitation, Data = options });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.RouterAdvertisement, CurHopLimit = 64, RouterFlags = 0x40, RouterLifetime = 1800, ReachableTime = 30000, RetransTimer = 1000, Data = options });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.NeighborSolicitation, Target = s_ll2, Data = options });
        RoundTrip(new IcmpV6Repr { Type = IcmpType.NeighborAdvertisement, Target = s_ll1, IsRouter = true, Solicited = true, Override = true, Data = options });
    }

    private static void RoundTrip(IcmpV6Repr repr)
    {
        var b = new byte[repr.BufferLength];
        Assert.That(repr.TryEmit(b, s_ll1, s_ll2), Is.True, $"type {repr.Type}");
        var e = IcmpV6Repr.Parse(b, s_ll1, s_ll2, ChecksumCaps.All, out var parsed);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(e, Is.EqualTo(WireError.None), $"type {repr.Type}");
            Assert.That(ReferenceV6(s_ll1, s_ll2, b), Is.Zero, $"checksum of type {repr.Type}");
            Assert.That((parsed.Type, parsed.Code, parsed.Identifier, parsed.Sequence, parsed.Mtu, parsed.Pointer),
                Is.EqualTo((repr.Type, repr.Code, repr.Identifier, repr.Sequence, repr.Mtu, repr.Pointer)), $"type {repr.Type}");
            Assert.That((parsed.CurHopLimit, parsed.RouterFlags, parsed.RouterLifetime, parsed.ReachableTime, parsed.RetransTimer),
                Is.EqualTo((repr.CurHopLimit, repr.RouterFlags, repr.RouterLifetime, repr.ReachableTime, repr.RetransTimer)), $"type {repr.Type}");
            Assert.That((parsed.Target, parsed.IsRouter, parsed.Solicited, parsed.Override),
                Is.EqualTo((repr.Target, repr.IsRouter, repr.Solicited, repr.Override)), $"type {repr.Type}");
            Assert.That(parsed.Data.ToArray(), Is.EqualTo(repr.Data.ToArray()), $"type {repr.Type}");
        }
    }

    [Test]
    public void A_neighbour_advertisement_has_its_flags_where_RFC_4861_puts_them()
    {
        var repr = new IcmpV6Repr { Type = IcmpType.NeighborAdvertisement, Target = s_ll1, Solicited = true, Override = true };
        var b = new byte[repr.BufferLength];
        repr.TryEmit(b, s_ll1, s_ll2);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Length, Is.EqualTo(24));
            Assert.That(b[..2], Is.EqualTo(new byte[] { 136, 0 }));
            Assert.That(b[4..8], Is.EqualTo(new byte[] { 0x60, 0, 0, 0 }));
            Assert.That(IpAddress.Read(b.AsSpan(8), v4: false), Is.EqualTo(s_ll1));
        }
    }

    [Test]
    public void Ndp_refusals_say_why()
    {
        var ns = new IcmpV6Repr { Type = IcmpType.NeighborSolicitation, Target = s_ll2 };
        var full = new byte[24 + 8];
        var options = full.AsSpan(24);
        NdpOptionReader.WriteLinkLayer(options, NdpOptionReader.SourceLinkLayer, new MacAddress(1));
        ns.Data = options;
        ns.TryEmit(full, s_ll1, s_ll2);

        var zeroLengthOption = (byte[])full.Clone();
        zeroLengthOption[25] = 0;
        IcmpView.FinishV6(zeroLengthOption, s_ll1, s_ll2);
        var withCode = (byte[])full.Clone();
        withCode[1] = 1;
        IcmpView.FinishV6(withCode, s_ll1, s_ll2);
        var shortNs = full.AsSpan(0, 16).ToArray();
        IcmpView.FinishV6(shortNs, s_ll1, s_ll2);
        var unknown = new byte[8];
        unknown[0] = 200;
        IcmpView.FinishV6(unknown, s_ll1, s_ll2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(IcmpV6Repr.Parse(full, s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.None));
            Assert.That(IcmpV6Repr.Parse(full, s_ll1, IpAddress.V6(0xFF02_0000_0000_0000UL, 1), ChecksumCaps.All, out _), Is.EqualTo(WireError.BadChecksum), "the pseudo-header counts");
            Assert.That(IcmpV6Repr.Parse(zeroLengthOption, s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.Malformed));
            Assert.That(IcmpV6Repr.Parse(withCode, s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.Malformed));
            Assert.That(IcmpV6Repr.Parse(shortNs, s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.Truncated));
            Assert.That(IcmpV6Repr.Parse(full.AsSpan(0, 7).ToArray(), s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.Truncated));
            Assert.That(IcmpV6Repr.Parse(unknown, s_ll1, s_ll2, ChecksumCaps.All, out _), Is.EqualTo(WireError.Unrecognized));
        }
    }

    [Test]
    public void A_prefix_information_option_round_trips()
    {
        var prefix = new NdpPrefixInformation
        {
            Prefix = IpAddress.V6(0x2001_0DB8_0001_0000UL, 0), PrefixLength = 64, OnLink = true, Autonomous = true,
            ValidLifetime = 2592000, PreferredLifetime = 604800,
        };
        var b = new byte[32];
        Assert.That(prefix.TryEmit(b), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b[..4], Is.EqualTo(new byte[] { 3, 4, 64, 0xC0 }));
            Assert.That(NdpPrefixInformation.TryParse(b, out var parsed), Is.True);
            Assert.That(parsed, Is.EqualTo(prefix));
            Assert.That(NdpPrefixInformation.TryParse(b.AsSpan(0, 31), out _), Is.False);
        }
    }
}
