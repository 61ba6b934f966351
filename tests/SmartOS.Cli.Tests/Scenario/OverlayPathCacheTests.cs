using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>
/// The overlay's fast path over the global zone's IP stack (vnic/Overlay.cs rule 6,
/// netstack/PathCache.cs): a frame is encapsulated in its own packet, and the VXLAN socket keeps its
/// destination's resolved path; a route, ARP entry or MTU change makes the next frame take the new
/// path. Two hosts on a wire as in tests/SmartOS.Benchmarks overlay, h1 sending to h2.
/// </summary>
public class OverlayPathCacheTests
{
    private static readonly MacAddress Under1 = Mac("2:0:0:0:0:1"), Under2 = Mac("2:0:0:0:0:2"), Tenant1 = Mac("2:0:0:0:1:1"), Tenant2 = Mac("2:0:0:0:1:2");

    private sealed class Tap : ICaptureTap
    {
        public readonly List<byte[]> Sent = [];
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (direction == TapDirection.Transmitted) Sent.Add(frame.ToArray());
        }
    }

    private sealed class Sink : IMacReceiver
    {
        public readonly List<byte[]> Frames = [];
        public bool AcceptsPendingChecksum => true;
        public void Receive(MacClient client, Packet packet)
        {
            Frames.Add(packet.Data.ToArray());
            packet.Free();
        }
    }

    private World _w = null!;
    private Host _h1 = null!;
    private Host _h2 = null!;
    private MacClient _tx = null!;
    private Sink _sink = null!;
    private Tap _tap = null!;

    private static MacAddress Mac(string s)
    {
        Assert.That(MacAddress.TryParse(s, out var m), Is.True);
        return m;
    }

    private static IpAddress Ip(string s)
    {
        Assert.That(IpAddress.TryParse(s, out var a), Is.True);
        return a;
    }

    private void Cmd(Host h, string line)
    {
        var r = Dispatcher.Run(_w, h, line.Split(' '));
        Assert.That(r.ExitCode, Is.Zero, $"{h.Name}: {line}: {r.Stderr}");
    }

    [SetUp]
    public void TwoHosts()
    {
        _sink = new Sink();
        _tap = new Tap();
        _w = new World(1);
        _h1 = _w.AddHost("h1", 1);
        var h2 = _h2 = _w.AddHost("h2", 1);
        _w.Connect((PhysLink)_h1.Mac.Find("e1000g0")!, (PhysLink)h2.Mac.Find("e1000g0")!, 1_000_000_000, 10 * Time.Microsecond);
        foreach (var (h, me, peer, mac) in new[] { (_h1, "10.0.0.1", "10.0.0.2", "2:0:0:0:0:1"), (h2, "10.0.0.2", "10.0.0.1", "2:0:0:0:0:2") })
        {
            Cmd(h, $"dladm create-vnic -t -l e1000g0 -m {mac} under0");
            Cmd(h, "ipadm create-if under0");
            Cmd(h, $"ipadm create-addr -T static -a {me}/24 under0/v4");
            Cmd(h, $"dladm create-overlay -t -e vxlan -s direct -v 4242 -p vxlan/listen_ip={me},direct/dest_ip={peer},direct/dest_port=4789 ovl0");
        }
        Cmd(_h1, "dladm create-vnic -t -l ovl0 -m 2:0:0:0:1:1 t0");
        Cmd(h2, "dladm create-vnic -t -l ovl0 -m 2:0:0:0:1:2 t0");
        _tx = ((PortLink)_h1.Mac.Find("t0")!).OpenClient("test")!;
        ((PortLink)h2.Mac.Find("t0")!).OpenClient("test")!.Receiver = _sink;
        _h1.Mac.Find("under0")!.AddTap(_tap);
    }

    private static byte[] Inner(int payload)
    {
        var f = new byte[EthernetView.HeaderLength + payload];
        EthernetView.WriteHeader(f, Tenant2, Tenant1, 0x88B5);
        for (int i = EthernetView.HeaderLength; i < f.Length; i++) f[i] = (byte)i;
        return f;
    }

    /// <summary>Sends one tenant frame from h1 and lets the world run; returns the frames h1's
    /// underlay VNIC sent meanwhile.</summary>
    private List<byte[]> Send(byte[] inner)
    {
        int before = _tap.Sent.Count;
        _tx.Transmit(_tx.Pool.Rent(inner)!);
        _w.Scheduler.RunFor(10 * Time.Millisecond);
        return _tap.Sent[before..];
    }

    private (long Hits, long Misses) CacheStats()
    {
        foreach (var s in _h1.Stack.UdpSockets)
            if (s.Local.Port == VxlanHeader.Port) return s.PathCacheStats;
        Assert.Fail("no VXLAN socket");
        return default;
    }

    private static bool IsArpRequestFor(byte[] f, IpAddress target)
        => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == EtherType.Arp && BinaryPrimitives.ReadUInt32BigEndian(f.AsSpan(38)) == target.V4Raw;

    private static MacAddress OuterDestination(byte[] f) => MacAddress.Read(f);

    [Test]
    public void A_frame_is_encapsulated_into_these_exact_bytes_and_once_the_path_is_resolved_frames_use_the_cached_path()
    {
        var inner = Inner(46);
        var first = Send(inner);
        Assert.That(first, Has.Count.EqualTo(2), "an ARP request for 10.0.0.2, then the datagram once resolved");
        Assert.That(IsArpRequestFor(first[0], Ip("10.0.0.2")), Is.True);
        Assert.That(Send(inner), Has.Count.EqualTo(1), "the full lookup, which fills the cache");
        var (hits0, _) = CacheStats();
        var sent = Send(inner);
        Assert.That(sent, Has.Count.EqualTo(1));
        var f = sent[0];
        ushort sport = VxlanHeader.SourcePort(inner);
        byte[] expected =
        [
            0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,         // outer Ethernet: h2's underlay VNIC from h1's
            0x45, 0x00, 0x00, 96, f[18], f[19], 0x00, 0x00, 255, 17, f[24], f[25], // IPv4: 96 bytes, no DF, TTL 255, UDP
            10, 0, 0, 1, 10, 0, 0, 2,
            (byte)(sport >> 8), (byte)sport, 0x12, 0xB5, 0x00, 76, 0x00, 0x00,     // UDP: flow port -> 4789, checksum zero
            0x08, 0, 0, 0, 0x00, 0x10, 0x92, 0x00,                                 // VXLAN: I flag, VNID 4242
            .. inner,
        ];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(f, Is.EqualTo(expected));
            Assert.That(Checksum.Compute(f.AsSpan(14, 20)), Is.Zero, "the IPv4 header checksum verifies");
            Assert.That(CacheStats().Hits, Is.EqualTo(hits0 + 1), "no route or ARP lookup for the third frame");
            Assert.That(_sink.Frames, Has.Count.EqualTo(3));
            Assert.That(_sink.Frames[2], Is.EqualTo(inner));
        }
    }

    [Test]
    public void After_a_route_change_the_next_frame_takes_the_new_route_and_after_its_removal_the_old_one()
    {
        var inner = Inner(46);
        Send(inner);
        Send(inner);
        Assert.That(_h1.Stack.AddRoute(Ip("10.0.0.2"), 32, Ip("10.0.0.3")), Is.EqualTo(SmartOS.Netstack.NetError.None));
        var viaGateway = Send(inner);
        Assert.That(viaGateway, Has.Count.EqualTo(1));
        Assert.That(IsArpRequestFor(viaGateway[0], Ip("10.0.0.3")), Is.True, "the host route's gateway is resolved, not the cached neighbour used");
        Assert.That(_h1.Stack.DeleteRoute(Ip("10.0.0.2"), 32, Ip("10.0.0.3")), Is.EqualTo(SmartOS.Netstack.NetError.None));
        var direct = Send(inner);
        Assert.That(direct, Has.Count.EqualTo(1));
        Assert.That(OuterDestination(direct[0]), Is.EqualTo(Under2));
    }

    [Test]
    public void After_an_arp_entry_changes_the_next_frame_goes_to_the_new_mac_and_after_its_deletion_is_resolved_again()
    {
        var inner = Inner(46);
        Send(inner);
        Assert.That(OuterDestination(Send(inner)[0]), Is.EqualTo(Under2));
        var other = Mac("2:0:0:0:0:99");
        Assert.That(_h1.Stack.AddStaticArp(Ip("10.0.0.2"), other), Is.EqualTo(SmartOS.Netstack.NetError.None));
        var moved = Send(inner);
        Assert.That(moved, Has.Count.EqualTo(1));
        Assert.That(OuterDestination(moved[0]), Is.EqualTo(other), "arp -s");
        Assert.That(_h1.Stack.DeleteArp(Ip("10.0.0.2")), Is.EqualTo(SmartOS.Netstack.NetError.None));
        var again = Send(inner);
        Assert.That(again, Has.Count.EqualTo(2), "arp -d: an ARP request, then the datagram to the answer");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(IsArpRequestFor(again[0], Ip("10.0.0.2")), Is.True);
            Assert.That(OuterDestination(again[1]), Is.EqualTo(Under2));
        }
    }

    [Test]
    public void After_the_underlay_mtu_drops_the_next_frame_is_fragmented_and_still_delivered()
    {
        var inner = Inner(600);
        Send(inner);
        Assert.That(Send(inner), Has.Count.EqualTo(1));
        Assert.That(_h1.Stack.SetInterfaceMtu("under0", 576).IsOk, Is.True);
        var fragments = Send(inner);
        Assert.That(fragments, Has.Count.EqualTo(2), "650 bytes of IPv4 over a 576-byte MTU");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fragments.All(f => f.Length - EthernetView.HeaderLength <= 576), Is.True);
            Assert.That(fragments[0][20] & 0x20, Is.EqualTo(0x20), "more fragments");
            Assert.That(_sink.Frames, Has.Count.EqualTo(3));
            Assert.That(_sink.Frames[2], Is.EqualTo(inner), "reassembled and decapsulated on h2");
        }
        Assert.That(_h1.Stack.SetInterfaceMtu("under0", 0).IsOk, Is.True);
        Assert.That(Send(inner), Has.Count.EqualTo(1));
    }

    private static byte[] Inner(int payload, ushort type)
    {
        var f = Inner(payload);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), type);
        return f;
    }

    private static ushort OuterSourcePort(byte[] f) => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(EthernetView.HeaderLength + 20));

    [Test]
    public void Two_inner_flows_in_turn_each_keep_the_outer_source_port_their_bytes_hash_to()
    {
        var x = Inner(46, 0x88B5);
        var y = Inner(46, 0x88B6);
        Send(x);
        Assume.That(VxlanHeader.SourcePort(x), Is.Not.EqualTo(VxlanHeader.SourcePort(y)));
        for (int i = 0; i < 3; i++)
        {
            var sx = Send(x);
            var sy = Send(y);
            Assert.That(sx, Has.Count.EqualTo(1));
            Assert.That(sy, Has.Count.EqualTo(1));
            Assert.That(OuterSourcePort(sx[0]), Is.EqualTo(VxlanHeader.SourcePort(x)), $"round {i}: flow x");
            Assert.That(OuterSourcePort(sy[0]), Is.EqualTo(VxlanHeader.SourcePort(y)), $"round {i}: flow y");
        }
        Assert.That(_sink.Frames, Has.Count.EqualTo(7));
    }

    [Test]
    public void Once_the_receivers_underlay_address_is_deleted_datagrams_are_refused_and_once_it_is_back_delivered_again()
    {
        var inner = Inner(46);
        Send(inner);
        Send(inner);
        Assert.That(_sink.Frames, Has.Count.EqualTo(2), "h2's stack has found 10.0.0.2 local (and remembers it)");
        Cmd(_h2, "ipadm delete-addr under0/v4");
        long prohibited = _h2.Stack.Counters.ipForwProhibits;
        Assert.That(Send(inner), Has.Count.EqualTo(1), "h1 still has h2's MAC");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_sink.Frames, Has.Count.EqualTo(2), "not delivered: 10.0.0.2 is no longer h2's");
            Assert.That(_h2.Stack.Counters.ipForwProhibits, Is.EqualTo(prohibited + 1), "a datagram not for us, not forwarded");
        }
        Cmd(_h2, "ipadm create-addr -T static -a 10.0.0.2/24 under0/v4");
        _w.Scheduler.RunFor(5 * Time.Second);
        Send(inner);
        Assert.That(_sink.Frames, Has.Count.EqualTo(3), "delivered again");
    }

    [Test]
    public void Once_the_receivers_overlay_is_deleted_its_port_is_closed_and_under_another_vnid_the_datagrams_are_unknown()
    {
        var inner = Inner(46);
        Send(inner);
        Send(inner);
        Assert.That(_sink.Frames, Has.Count.EqualTo(2));
        ((PortLink)_h2.Mac.Find("t0")!).Client!.Close(); // the test's receiver holds it open
        Cmd(_h2, "dladm delete-vnic t0");
        Cmd(_h2, "dladm delete-overlay ovl0");
        long noPorts = _h2.Stack.UdpStats.udpNoPorts;
        Send(inner);
        Assert.That(_h2.Stack.UdpStats.udpNoPorts, Is.EqualTo(noPorts + 1), "the VXLAN socket is closed: no port");
        Cmd(_h2, "dladm create-overlay -t -e vxlan -s direct -v 4243 -p vxlan/listen_ip=10.0.0.2,direct/dest_ip=10.0.0.1,direct/dest_port=4789 ovl1");
        Send(inner);
        var mux = _h2.Mac.OverlayMuxes.Single().Stats;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(mux.Datagrams, Is.EqualTo(1));
            Assert.That(mux.UnknownVnid, Is.EqualTo(1), "VNID 4242 has no overlay on h2 now");
            Assert.That(_sink.Frames, Has.Count.EqualTo(2));
        }
    }
}
