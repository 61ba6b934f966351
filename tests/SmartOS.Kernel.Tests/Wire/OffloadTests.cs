using System.Buffers.Binary;
using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests.Wire;

/// <summary>
/// The offload formats a TAP with IFF_VNET_HDR speaks (issue 17): struct virtio_net_hdr against fixed
/// bytes, and TCP segmentation (GSO/TSO in software) held against PacketDotNet, which checks each
/// segment's lengths, sequence numbers, flags and both checksums independently of our views.
/// </summary>
public class OffloadTests
{
    private static readonly byte[] s_src6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    private static readonly byte[] s_dst6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    // flags NEEDS_CSUM, gso_type TCPV4 with ECN, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16.
    private static readonly byte[] s_header = [0x01, 0x81, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];

    [Test]
    public void Virtio_net_hdr_parses_fixed_bytes()
    {
        Assert.That(VirtioNetHeader.TryParse(s_header, out var h), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.NeedsCsum, Is.True);
            Assert.That(h.GsoType, Is.EqualTo(0x81));
            Assert.That(h.Gso, Is.EqualTo(VirtioGso.TcpV4));
            Assert.That(h.HeaderLength, Is.EqualTo(66));
            Assert.That(h.GsoSize, Is.EqualTo(1448));
            Assert.That(h.ChecksumStart, Is.EqualTo(34));
            Assert.That(h.ChecksumOffset, Is.EqualTo(16));
        }
    }

    [Test]
    public void Virtio_net_hdr_emits_the_same_bytes()
    {
        var h = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.NeedsChecksum, GsoType = VirtioGso.TcpV4 | VirtioGso.Ecn,
            HeaderLength = 66, GsoSize = 1448, ChecksumStart = 34, ChecksumOffset = 16,
        };
        var b = new byte[VirtioNetHeader.Length];
        Assert.That(h.TryEmit(b), Is.True);
        Assert.That(b, Is.EqualTo(s_header));
    }

    [Test]
    public void Virtio_net_hdr_refuses_a_short_buffer()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(VirtioNetHeader.TryParse(s_header.AsSpan(0, 9), out _), Is.False);
            Assert.That(new VirtioNetHeader().TryEmit(new byte[9]), Is.False);
        }
    }

    [Test]
    public void A_needs_csum_frame_gets_the_checksum_PacketDotNet_accepts()
    {
        var frame = TcpFrame(v6: false, payload: 300, flags: TcpFlags.Ack | TcpFlags.Psh, out _);
        // As Linux leaves it (CHECKSUM_PARTIAL): the pseudo-header sum in the field.
        uint pseudo = Checksum.Sum(frame.AsSpan(14 + 12, 8)) + IpProtocol.Tcp + (uint)(frame.Length - 34);
        ushort folded = (ushort)~Checksum.Fold(pseudo);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(34 + 16), folded);
        var h = new VirtioNetHeader { Flags = VirtioNetHeader.NeedsChecksum, ChecksumStart = 34, ChecksumOffset = 16 };

        Assert.That(h.TryFinishChecksum(frame), Is.True);
        var tcp = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, frame).Extract<PacketDotNet.TcpPacket>();
        Assert.That(tcp.ValidTcpChecksum, Is.True);
    }

    [Test]
    public void A_needs_csum_header_pointing_outside_the_frame_is_refused()
    {
        var frame = new byte[60];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(new VirtioNetHeader { Flags = 1, ChecksumStart = 60, ChecksumOffset = 0 }.TryFinishChecksum(frame), Is.False);
            Assert.That(new VirtioNetHeader { Flags = 1, ChecksumStart = 40, ChecksumOffset = 19 }.TryFinishChecksum(frame), Is.False);
            Assert.That(new VirtioNetHeader { Flags = 0, ChecksumStart = 999 }.TryFinishChecksum(frame), Is.True, "no flag: nothing to do");
        }
    }

    [TestCase(false, 5000, 1448)]
    [TestCase(true, 5000, 1428)]
    [TestCase(false, 1448, 1448)]
    [TestCase(false, 65000, 1448)]
    [TestCase(true, 100, 1000)]
    public void Segments_agree_with_PacketDotNet(bool v6, int payloadLength, int mss)
    {
        var frame = TcpFrame(v6, payloadLength, TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin | TcpFlags.Cwr, out var payload);
        Assert.That(TcpSegmentation.TryCreate(frame, mss, out var gso), Is.True);
        int expected = (payloadLength + mss - 1) / mss;
        Assert.That(gso.Count, Is.EqualTo(expected));

        var joined = new List<byte>();
        for (int i = 0; i < gso.Count; i++)
        {
            var seg = new byte[gso.SegmentLength(i)];
            Assert.That(gso.Write(i, seg), Is.EqualTo(seg.Length));
            var parsed = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, seg);
            var tcp = parsed.Extract<PacketDotNet.TcpPacket>();
            int len = Math.Min(mss, payloadLength - i * mss);
            bool last = i == gso.Count - 1;
            using (Assert.EnterMultipleScope())
            {
                if (v6)
                {
                    var ip = parsed.Extract<PacketDotNet.IPv6Packet>();
                    Assert.That(ip.PayloadLength, Is.EqualTo(32 + len), $"segment {i}");
                }
                else
                {
                    var ip = parsed.Extract<PacketDotNet.IPv4Packet>();
                    Assert.That(ip.TotalLength, Is.EqualTo(20 + 32 + len), $"segment {i}");
                    Assert.That(ip.Id, Is.EqualTo((ushort)(0xFFFE + i)), $"segment {i}: ids count up from the original's");
                    Assert.That(ip.ValidIPChecksum, Is.True, $"segment {i}");
                }
                Assert.That(tcp.SequenceNumber, Is.EqualTo(unchecked(0xFFFFF000u + (uint)(i * mss))), $"segment {i}");
                Assert.That(tcp.AcknowledgmentNumber, Is.EqualTo(0x01020304u));
                Assert.That(tcp.ValidTcpChecksum, Is.True, $"segment {i}");
                Assert.That(tcp.Finished, Is.EqualTo(last), $"segment {i}: FIN only on the last");
                Assert.That(tcp.Push, Is.EqualTo(last), $"segment {i}: PSH only on the last");
                Assert.That(tcp.CongestionWindowReduced, Is.EqualTo(i == 0), $"segment {i}: CWR only on the first");
                Assert.That(tcp.Acknowledgment, Is.True);
                Assert.That(tcp.Options, Is.EqualTo(frame.AsSpan((v6 ? 54 : 34) + 20, 12).ToArray()), $"segment {i}: options repeated");
                Assert.That(tcp.PayloadData.Length, Is.EqualTo(len));
            }
            joined.AddRange(tcp.PayloadData);
        }
        Assert.That(joined, Is.EqualTo(payload), "the segments' payloads joined are the original's");
    }

    /// <summary>A large send written to a TAP (MacLayer.cs rule 9): the header asks Linux for TCP
    /// segmentation at the MSS with NEEDS_CSUM over the TCP segment, whose field holds the whole
    /// segment's pseudo-header sum, so that filling it in gives the checksum PacketDotNet accepts.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void A_large_send_gets_a_gso_header_whose_checksum_start_finishes_right(bool v6)
    {
        var frame = TcpFrame(v6, 60_000, TcpFlags.Ack, out _);
        int l4 = v6 ? 54 : 34;
        frame[l4 + 16] = 0x12; frame[l4 + 17] = 0x34; // a checksum already filled in (a capture did it)

        Assert.That(VirtioNetHeader.TryCreateGso(frame, 1448, out var h), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Flags, Is.EqualTo(VirtioNetHeader.NeedsChecksum));
            Assert.That(h.GsoType, Is.EqualTo(v6 ? VirtioGso.TcpV6 : VirtioGso.TcpV4));
            Assert.That(h.GsoSize, Is.EqualTo(1448));
            Assert.That(h.HeaderLength, Is.EqualTo(l4 + 32));
            Assert.That(h.ChecksumStart, Is.EqualTo(l4));
            Assert.That(h.ChecksumOffset, Is.EqualTo(16));
        }
        Assert.That(h.TryFinishChecksum(frame), Is.True);
        var tcp = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, frame).Extract<PacketDotNet.TcpPacket>();
        Assert.That(tcp.ValidTcpChecksum, Is.True);
    }

    [Test]
    public void A_gso_header_is_refused_for_what_is_not_whole_tcp()
    {
        var frame = TcpFrame(v6: false, payload: 5000, flags: TcpFlags.Ack, out _);
        frame[14 + 9] = IpProtocol.Udp;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(VirtioNetHeader.TryCreateGso(frame, 1448, out _), Is.False, "UDP");
            Assert.That(VirtioNetHeader.TryCreateGso(TcpFrame(false, 5000, TcpFlags.Ack, out _), 0, out _), Is.False, "no MSS");
        }
    }

    [Test]
    public void The_large_send_buffers_are_a_bounded_class_of_their_own()
    {
        var pool = new PacketPool();
        var held = new List<Packet>();
        for (int i = 0; i < PacketPool.LsoLimit; i++) held.Add(pool.RentLso(PacketPool.LsoSize)!);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(held, Has.None.Null);
            Assert.That(pool.LsoAvailable, Is.False);
            Assert.That(pool.RentLso(PacketPool.LsoSize), Is.Null, "past the limit");
            Assert.That(pool.RentLso(PacketPool.LsoSize + 1), Is.Null, "larger than the class");
            Assert.That(pool.Rent(PacketPool.LargeSize + 1), Is.Null, "Rent never gives one");
        }
        held[0].LsoMss = 1448;
        held[0].Free();
        var again = pool.RentLso(20_000)!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again, Is.SameAs(held[0]));
            Assert.That(again.LsoMss, Is.Zero, "a recycled packet is no large send");
            Assert.That(again.Length, Is.EqualTo(20_000));
            Assert.That(pool.RentLso(100)!.Capacity, Is.EqualTo(PacketPool.SmallSize), "a small one comes from the small class");
        }
    }

    [Test]
    public void Segmentation_refuses_what_is_not_whole_tcp()
    {
        var frame = TcpFrame(v6: false, payload: 100, flags: TcpFlags.Ack, out _);
        var udp = (byte[])frame.Clone();
        udp[14 + 9] = IpProtocol.Udp;
        var fragment = (byte[])frame.Clone();
        fragment[14 + 6] = 0x20; // more fragments
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TcpSegmentation.TryCreate(udp, 1448, out _), Is.False, "UDP");
            Assert.That(TcpSegmentation.TryCreate(fragment, 1448, out _), Is.False, "a fragment");
            Assert.That(TcpSegmentation.TryCreate(frame.AsSpan(0, frame.Length - 1), 1448, out _), Is.False, "shorter than its IP length");
            Assert.That(TcpSegmentation.TryCreate(frame.AsSpan(0, 40), 1448, out _), Is.False, "truncated headers");
            Assert.That(TcpSegmentation.TryCreate(frame, 0, out _), Is.False, "no segment size");
        }
    }

    /// <summary>Ethernet, IPv4 (id 0xFFFE, DF) or IPv6, TCP with 12 bytes of options (NOP, NOP,
    /// timestamps) and <paramref name="payload"/> bytes of data; the TCP checksum is left zero.</summary>
    private static byte[] TcpFrame(bool v6, int payload, TcpFlags flags, out byte[] data)
    {
        int ipHeader = v6 ? 40 : 20;
        const int tcpHeader = 32;
        var frame = new byte[14 + ipHeader + tcpHeader + payload];
        EthernetView.WriteHeader(frame, new MacAddress(0x0208_2000_0001UL), new MacAddress(0x0208_2000_0002UL), v6 ? EtherType.Ipv6 : EtherType.Ipv4);
        var ip = frame.AsSpan(14, ipHeader);
        if (v6)
        {
            ip[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(tcpHeader + payload));
            ip[6] = IpProtocol.Tcp;
            ip[7] = 64;
            s_src6.CopyTo(ip[8..]);
            s_dst6.CopyTo(ip[24..]);
        }
        else
        {
            Ipv4View.Write(ip, 0x0A000001, 0x0A000002, IpProtocol.Tcp, tcpHeader + payload, id: 0xFFFE);
            ip[6] = 0x40;
            ip[10] = 0; ip[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));
        }
        var tcp = frame.AsSpan(14 + ipHeader);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 5001);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 40000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], 0xFFFFF000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], 0x01020304);
        tcp[12] = (tcpHeader / 4) << 4;
        tcp[13] = (byte)flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 1024);
        byte[] options = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
        options.CopyTo(tcp[20..]);
        data = new byte[payload];
        new HostRandom((ulong)payload).NextBytes(data);
        data.CopyTo(tcp[tcpHeader..]);
        return frame;
    }
}
