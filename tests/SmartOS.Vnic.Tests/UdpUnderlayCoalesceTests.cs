using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The real-time underlay's large receive (vnic/UdpUnderlay.Coalesce.cs, rule 6 of UdpUnderlay.cs),
/// fed datagram by datagram as a drain feeds it: runs join across the GRO receives of one drain up
/// to the largest UDP payload, each piece's TCP checksum is summed as its payload is copied (and
/// that sum equals the separate checksum), a piece with a bad checksum is handed over alone and
/// unchanged (the zone's stack drops and counts it), and pieces whose acknowledgement differs stay
/// apart.
/// </summary>
public class UdpUnderlayCoalesceTests
{
    private static readonly IpAddress s_loopback = IpAddress.V4(0x7F000001);
    private static readonly UnderlayEndpoint s_from = new(IpAddress.V4(0x7F000001), 4789);
    private static readonly byte[] s_vxlan = [0x08, 0, 0, 0, 0, 0x0F, 0xA0, 0];
    private const int Headers = EthernetView.HeaderLength + 20 + 20;
    private const uint Seq = 0x01020304;

    private Scheduler _scheduler = null!;
    private RealTimeDriver _driver = null!;
    private UdpUnderlay? _underlay;
    private readonly List<byte[]> _small = [];
    private readonly List<(byte[] Data, int Mss)> _large = [];

    [SetUp]
    public void Open()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the real-time underlay's socket calls are Linux's");
        _scheduler = new Scheduler();
        _driver = new RealTimeDriver(_scheduler);
        _underlay = UdpUnderlay.Open(new UnderlayEndpoint(s_loopback, 0), _driver, out string error);
        Assert.That(_underlay, Is.Not.Null, error);
        _small.Clear();
        _large.Clear();
    }

    [TearDown]
    public void Close()
    {
        _underlay?.Dispose();
        _driver?.Dispose();
    }

    private void Offer(byte[] datagram) => _underlay!.Offer(s_from, datagram, (_, d) => _small.Add(d.ToArray()), (_, d, mss) => _large.Add((d.ToArray(), mss)));
    private void Flush() => _underlay!.FlushRun((_, d) => _small.Add(d.ToArray()), (_, d, mss) => _large.Add((d.ToArray(), mss)));

    private static byte Pattern(int i) => (byte)(i % 251);

    /// <summary>The VXLAN datagrams one large send of <paramref name="payload"/> bytes from stream
    /// offset <paramref name="offset"/> (byte i of the stream is i mod 251) in segments of <paramref name="mss"/> becomes, as the sending underlay cuts it.</summary>
    private static List<byte[]> Pieces(int payload, int mss, int offset = 0)
    {
        var f = new byte[Headers + payload];
        f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Ipv4);
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(40 + payload));
        ip[8] = 64; ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], 0xC0A84801);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], 0xC0A84802);
        var tcp = f.AsSpan(34, 20);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 5001);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 40000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], Seq + (uint)offset);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], 0x0A0B0C0D);
        tcp[12] = 5 << 4;
        tcp[13] = (byte)TcpFlags.Ack;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 0x8000);
        for (int i = 0; i < payload; i++) f[Headers + i] = Pattern(offset + i);
        Assert.That(TcpSegmentation.TryCreate(f, mss, out var seg), Is.True);
        var pieces = new List<byte[]>();
        for (int i = 0; i < seg.Count; i++)
        {
            var d = new byte[VxlanHeader.Length + seg.SegmentLength(i)];
            s_vxlan.CopyTo(d, 0);
            seg.Write(i, d.AsSpan(VxlanHeader.Length));
            pieces.Add(d);
        }
        return pieces;
    }

    /// <summary>Checks a joined datagram: headers of the first piece, IPv4 length and checksum
    /// right, the payload from <paramref name="offset"/> for <paramref name="payload"/> bytes, the
    /// TCP checksum field holding the pseudo-header sum (pending).</summary>
    private static void AssertJoined(byte[] d, int offset, int payload)
    {
        var inner = d.AsSpan(VxlanHeader.Length);
        var tcp = inner[34..];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d[..8], Is.EqualTo(s_vxlan));
            Assert.That(inner.Length, Is.EqualTo(Headers + payload), "length");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(inner[16..]), Is.EqualTo(40 + payload), "IPv4 total length");
            Assert.That(Checksum.Compute(inner.Slice(14, 20)), Is.Zero, "IPv4 header checksum");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), Is.EqualTo(Seq + (uint)offset), "sequence number");
            uint pseudo = Checksum.Sum(inner.Slice(26, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
            while ((pseudo >> 16) != 0) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(tcp[16..]), Is.EqualTo(pseudo), "pending checksum");
            for (int i = 0; i < payload; i++)
            {
                if (tcp[20 + i] != Pattern(offset + i)) Assert.Fail($"payload byte {offset + i}");
            }
        }
    }

    [Test]
    public void Copy_with_checksum_equals_the_separate_checksum_and_copies_every_byte()
    {
        var source = new byte[70_000];
        for (int i = 0; i < source.Length; i++) source[i] = (byte)(i * 7 + 3 + (i >> 8));
        int[] lengths = [.. Enumerable.Range(0, 130), 255, 256, 1359, 1360, 1448, 8999, 65_000, 65_535];
        foreach (int length in lengths)
        {
            for (int offset = 0; offset < 4; offset++)
            {
                var from = source.AsSpan(offset, length);
                var to = new byte[length + 2];
                uint sum = Checksum.CopyAndSum(from, to.AsSpan(1, length));
                Assert.That(sum, Is.EqualTo(Checksum.Sum(from)), $"sum of {length} bytes at {offset}");
                Assert.That(to.AsSpan(1, length).SequenceEqual(from), Is.True, $"copy of {length} bytes at {offset}");
                Assert.That((to[0], to[^1]), Is.EqualTo(((byte)0, (byte)0)), "nothing written outside");
            }
        }
    }

    [Test]
    public void Pieces_of_two_receives_in_one_drain_join_into_one_segment()
    {
        var pieces = Pieces(20 * 1000, 1000);
        // Two GRO receives of ten datagrams each, as two slots of one drain hand them over.
        foreach (var p in pieces) Offer(p);
        Assert.That(_large, Is.Empty, "the run stays open until the drain ends");
        Flush();
        Assert.That(_small, Is.Empty);
        Assert.That(_large, Has.Count.EqualTo(1));
        Assert.That(_large[0].Mss, Is.EqualTo(1000));
        AssertJoined(_large[0].Data, 0, 20 * 1000);
        Assert.That((_underlay!.Coalesced, _underlay.CoalescedPieces), Is.EqualTo((1L, 20L)));
    }

    [Test]
    public void A_run_is_cut_where_it_would_pass_the_largest_udp_payload()
    {
        // Two large sends back to back (one alone may not pass 64 KiB): 60 pieces of one stream.
        foreach (var p in Pieces(40 * 1400, 1400).Concat(Pieces(20 * 1400, 1400, 40 * 1400))) Offer(p);
        Flush();
        // 8 + 54 header bytes and 46 payloads of 1400 fit in 65507; the 47th would not.
        Assert.That(_large.Select(l => l.Data.Length), Is.EqualTo(new[] { 8 + Headers + 46 * 1400, 8 + Headers + 14 * 1400 }));
        AssertJoined(_large[0].Data, 0, 46 * 1400);
        AssertJoined(_large[1].Data, 46 * 1400, 14 * 1400);
    }

    [Test]
    public void A_piece_with_a_bad_tcp_checksum_goes_alone_and_unchanged_and_splits_the_run()
    {
        var pieces = Pieces(5 * 1000, 1000);
        pieces[2][^1] ^= 0x5A;
        byte[] broken = (byte[])pieces[2].Clone();
        foreach (var p in pieces) Offer(p);
        Flush();
        Assert.That(_small, Has.Count.EqualTo(1));
        Assert.That(_small[0], Is.EqualTo(broken), "handed over as it came, for the stack to drop and count");
        Assert.That(_large, Has.Count.EqualTo(2));
        AssertJoined(_large[0].Data, 0, 2000);
        AssertJoined(_large[1].Data, 3000, 2000);
        Assert.That(_underlay!.CoalescedPieces, Is.EqualTo(4));
    }

    [Test]
    public void A_first_piece_with_a_bad_checksum_opens_no_run()
    {
        var pieces = Pieces(2 * 1000, 1000);
        pieces[0][^3] ^= 0x01;
        foreach (var p in pieces) Offer(p);
        Flush();
        Assert.That(_large, Is.Empty);
        Assert.That(_small, Has.Count.EqualTo(2), "the broken piece, then the good one alone (a run of one)");
        Assert.That(_small[0], Is.EqualTo(pieces[0]));
        Assert.That(_small[1], Is.EqualTo(pieces[1]));
    }

    [Test]
    public void Pieces_whose_acknowledgement_differs_stay_apart()
    {
        var pieces = Pieces(2 * 1000, 1000);
        // The second piece acknowledges one more byte (its low byte), its checksum made right again.
        var tcp = pieces[1].AsSpan(VxlanHeader.Length + 34);
        tcp[11]++;
        tcp[16] = 0;
        tcp[17] = 0;
        var ip = pieces[1].AsSpan(VxlanHeader.Length + 14, 20);
        uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum.Fold(pseudo + Checksum.Sum(tcp)));
        foreach (var p in pieces) Offer(p);
        Flush();
        Assert.That(_large, Is.Empty);
        Assert.That(_small, Has.Count.EqualTo(2));
        Assert.That(_small[1], Is.EqualTo(pieces[1]));
    }

    [Test]
    public void A_datagram_that_is_no_piece_hands_the_open_run_over_first()
    {
        var pieces = Pieces(3 * 1000, 1000);
        byte[] arp = [.. s_vxlan, .. new byte[42]];
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(8 + 12), EtherType.Arp);
        Offer(pieces[0]);
        Offer(pieces[1]);
        Offer(arp);
        Offer(pieces[2]);
        Flush();
        Assert.That(_large, Has.Count.EqualTo(1), "the first two joined, before the ARP frame");
        AssertJoined(_large[0].Data, 0, 2000);
        Assert.That(_small, Is.EqualTo(new[] { arp, pieces[2] }), "then the ARP frame, then the last piece alone");
    }
}
