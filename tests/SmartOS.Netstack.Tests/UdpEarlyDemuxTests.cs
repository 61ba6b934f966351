using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// IpStack rule 1's early demux in one pass (IpStack.Ipv4.cs TryDeliverUdpEarly): a checksum-less UDP
/// datagram to a socket that takes packets (the overlay's VXLAN socket) is handed over without the
/// full receive path, and a datagram the pass does not take (a UDP checksum to verify, a bad one, an
/// address no longer ours) takes the full path; either way with the same payload and counters.
/// </summary>
public class UdpEarlyDemuxTests
{
    private sealed record Got(IpEndpoint From, IpAddress To, byte[] Payload);

    private World _w = null!;
    private IpStack _a = null!, _b = null!;
    private UdpSocket _tx = null!, _rx = null!;
    private readonly List<Got> _got = [];

    [SetUp]
    public void TwoStacks()
    {
        _got.Clear();
        _w = new World();
        _w.Stub("stub0");
        _a = _w.Stack("stub0", "10.0.0.1/24");
        _b = _w.Stack("stub0", "10.0.0.2/24");
        _rx = _b.OpenUdpSocket();
        Assert.That(_rx.Bind(IpAddress.AnyV4, 4789), Is.EqualTo(NetError.None));
        _rx.PacketUpcall = (from, to, p) =>
        {
            _got.Add(new Got(from, to, p.Data.ToArray()));
            p.Free();
        };
        _tx = _a.OpenUdpSocket();
        Assert.That(_tx.Bind(IpAddress.AnyV4, 5000), Is.EqualTo(NetError.None));
    }

    [TearDown]
    public void Close()
    {
        _rx.Dispose();
        _tx.Dispose();
    }

    private (long Receives, long Delivers, long Udp, long InPackets) Counters()
        => (_b.Counters.ipInReceives, _b.Counters.ipInDelivers, _b.UdpStats.udpInDatagrams, _b.FindInterface("net0")!.InPackets);

    private void Send(bool checksum, byte fill)
    {
        _tx.NoChecksum = !checksum;
        var payload = new byte[64];
        Array.Fill(payload, fill);
        Assert.That(_tx.SendTo(payload, new IpEndpoint(World.Ip("10.0.0.2"), 4789)), Is.EqualTo(NetError.None));
        _w.Run(10 * Time.Millisecond);
    }

    [Test]
    public void A_checksumless_datagram_and_a_checksummed_one_arrive_alike_with_the_same_counters()
    {
        Send(checksum: true, 0x11); // resolves ARP both ways
        _got.Clear();
        foreach (bool checksum in new[] { false, true, false })
        {
            var before = Counters();
            Send(checksum, checksum ? (byte)0x22 : (byte)0x33);
            var after = Counters();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(after.Receives - before.Receives, Is.EqualTo(1), $"checksum {checksum}: ipInReceives");
                Assert.That(after.Delivers - before.Delivers, Is.EqualTo(1), $"checksum {checksum}: ipInDelivers");
                Assert.That(after.Udp - before.Udp, Is.EqualTo(1), $"checksum {checksum}: udpInDatagrams");
                Assert.That(after.InPackets - before.InPackets, Is.EqualTo(1), $"checksum {checksum}: the interface's ipackets");
            }
        }
        Assert.That(_got, Has.Count.EqualTo(3));
        foreach (var g in _got)
        {
            Assert.That(g.From, Is.EqualTo(new IpEndpoint(World.Ip("10.0.0.1"), 5000)));
            Assert.That(g.To, Is.EqualTo(World.Ip("10.0.0.2")));
            Assert.That(g.Payload, Has.Length.EqualTo(64));
        }
        Assert.That(_got.Select(g => g.Payload[0]), Is.EqualTo(new byte[] { 0x33, 0x22, 0x33 }));
    }

    [Test]
    public void A_datagram_to_an_address_no_longer_ours_is_not_handed_over()
    {
        Send(checksum: false, 1);
        Send(checksum: false, 2);
        Assert.That(_got, Has.Count.EqualTo(2));
        Assert.That(_b.DeleteAddress("net0/v4").Code, Is.EqualTo(IpadmStatus.Success));
        long prohibits = _b.Counters.ipForwProhibits;
        Send(checksum: false, 3);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_got, Has.Count.EqualTo(2), "10.0.0.2 is gone: the stack does not take it");
            Assert.That(_b.Counters.ipForwProhibits, Is.EqualTo(prohibits + 1));
        }
    }

    [Test]
    public void A_kernel_consumers_datagrams_over_the_cached_path_count_and_arrive_as_over_the_full_path()
    {
        Send(checksum: false, 0x11); // resolves ARP both ways
        _got.Clear();
        var to = new IpEndpoint(World.Ip("10.0.0.2"), 4789);
        var ifc = _a.FindInterface("net0")!;
        for (int i = 0; i < 4; i++)
        {
            var p = _w.Pool.Rent(64)!;
            p.Data.Fill((byte)(0x40 + i));
            long udp = _a.UdpStats.udpOutDatagrams, ip = _a.Counters.ipOutRequests, outPackets = ifc.OutPackets;
            Assert.That(_tx.SendFrom(p, World.Ip("10.0.0.1"), (ushort)(50000 + i), to), Is.EqualTo(NetError.None));
            _w.Run(10 * Time.Millisecond);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(_a.UdpStats.udpOutDatagrams - udp, Is.EqualTo(1), $"datagram {i}: udpOutDatagrams");
                Assert.That(_a.Counters.ipOutRequests - ip, Is.EqualTo(1), $"datagram {i}: ipOutRequests");
                Assert.That(ifc.OutPackets - outPackets, Is.EqualTo(1), $"datagram {i}: opackets");
            }
        }
        Assert.That(_tx.PathCacheStats.Hits, Is.GreaterThanOrEqualTo(2), "the last datagrams took the cached path");
        Assert.That(_got, Has.Count.EqualTo(4));
        for (int i = 0; i < 4; i++)
        {
            Assert.That(_got[i].From, Is.EqualTo(new IpEndpoint(World.Ip("10.0.0.1"), (ushort)(50000 + i))));
            Assert.That(_got[i].Payload, Is.EqualTo(Enumerable.Repeat((byte)(0x40 + i), 64).ToArray()));
        }
    }

    private sealed class Recorder : ICaptureTap
    {
        public readonly List<byte[]> Frames = [];
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (direction == TapDirection.Transmitted) Frames.Add(frame.ToArray());
        }
    }

    [Test]
    public void The_cached_paths_IPv4_headers_check_and_match_the_full_paths_field_for_field()
    {
        Send(checksum: false, 0x11); // resolves ARP both ways
        var tap = new Recorder();
        _a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        var to = new IpEndpoint(World.Ip("10.0.0.2"), 4789);
        foreach (bool df in new[] { false, true })
        {
            _tx.DontFragment = df;
            // Lengths that make the header's sum carry differently; the first of each takes the full
            // path only if the cache is cold, the rest the cached one (IpStack.TrySendUdpCached).
            foreach (int length in new[] { 1, 64, 255, 1000, 1400 })
            {
                var p = _w.Pool.Rent(length)!;
                p.Data.Fill(0xA5);
                Assert.That(_tx.SendFrom(p, World.Ip("10.0.0.1"), 0xFFFF, to), Is.EqualTo(NetError.None));
                _w.Run(Time.Millisecond);
            }
        }
        Assert.That(_tx.PathCacheStats.Hits, Is.GreaterThanOrEqualTo(8));
        var udp = tap.Frames.Where(f => f.Length >= 42 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 17).ToList();
        Assert.That(udp, Has.Count.EqualTo(10));
        int[] lengths = [1, 64, 255, 1000, 1400];
        for (int i = 0; i < udp.Count; i++)
        {
            var ih = udp[i].AsSpan(14, 20);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(Checksum.Compute(ih), Is.Zero, $"datagram {i}: the header checksum");
                Assert.That(ih[0], Is.EqualTo(0x45));
                Assert.That(ih[1], Is.Zero, "TOS");
                Assert.That((ih[2] << 8) | ih[3], Is.EqualTo(20 + 8 + lengths[i % 5]), "total length");
                Assert.That((ih[6] << 8) | ih[7], Is.EqualTo(i < 5 ? 0 : 0x4000), "flags");
                Assert.That(ih[8], Is.EqualTo(_a.DefaultTtl), "TTL");
                Assert.That(ih[12..16].ToArray(), Is.EqualTo(new byte[] { 10, 0, 0, 1 }));
                Assert.That(ih[16..20].ToArray(), Is.EqualTo(new byte[] { 10, 0, 0, 2 }));
                if (i > 0) Assert.That((ih[4] << 8) | ih[5], Is.EqualTo((((udp[i - 1][18] << 8) | udp[i - 1][19]) + 1) & 0xFFFF), "identification");
            }
        }
        Assert.That(_got, Has.Count.EqualTo(11), "all arrived, through the early demux's header check");
    }

    [Test]
    public void A_datagram_with_a_bad_IPv4_header_checksum_is_not_taken_early_and_is_counted()
    {
        Send(checksum: false, 0x11);
        var tap = new Recorder();
        _a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        Send(checksum: false, 0x12);
        var frame = tap.Frames.Single(f => f.Length >= 42 && f[23] == 17);
        Assert.That(_got, Has.Count.EqualTo(2));
        var raw = _w.Vnic("stub0");
        // Never a multiple of 0xFFFF even where the field wraps: 0 and 0xFFFF are the same sum.
        foreach (int delta in new[] { 2, 0x100, 0x8000 })
        {
            var bad = (byte[])frame.Clone();
            int sum = ((bad[24] << 8) | bad[25]) + delta;
            bad[24] = (byte)(sum >> 8);
            bad[25] = (byte)sum;
            long errs = _b.Counters.ipInCksumErrs, udp = _b.UdpStats.udpInDatagrams;
            raw.Transmit(_w.Pool.Rent(bad)!);
            _w.Run(Time.Millisecond);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(_got, Has.Count.EqualTo(2), $"checksum +{delta:x}: not delivered");
                Assert.That(_b.Counters.ipInCksumErrs, Is.EqualTo(errs + 1), $"checksum +{delta:x}: ipInCksumErrs");
                Assert.That(_b.UdpStats.udpInDatagrams, Is.EqualTo(udp));
            }
        }
        raw.Transmit(_w.Pool.Rent(frame)!); // the frame itself, unchanged, still arrives
        _w.Run(Time.Millisecond);
        Assert.That(_got, Has.Count.EqualTo(3));
    }
}
