using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

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
}
