using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>An underlay that hands datagrams straight to the peer whose Local is the target (two
/// hosts' MAC layers in one test), and keeps what was sent.</summary>
internal sealed class PipeUnderlay(UnderlayEndpoint local) : IOverlayUnderlay
{
    public static readonly Dictionary<UnderlayEndpoint, PipeUnderlay> Net = new();
    public Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? Receiver;
    public readonly List<(UnderlayEndpoint Target, ushort SourcePort, byte[] Payload)> Sent = [];
    public bool Reachable = true;
    public int Max = 1500 - 28;

    public UnderlayEndpoint Local { get; } = local;
    public int MaxPayload(UnderlayEndpoint target) => Reachable ? Max : -1;
    public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload) => Send(target, Local.Port, payload);

    public bool Send(UnderlayEndpoint target, ushort sourcePort, ReadOnlySpan<byte> payload)
    {
        if (!Reachable) return false;
        var copy = payload.ToArray();
        Sent.Add((target, sourcePort, copy));
        if (Net.TryGetValue(target, out var peer)) peer.Receiver?.Invoke(new UnderlayEndpoint(Local.Address, sourcePort), copy);
        return true;
    }

    public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) => Receiver = receive;
}

/// <summary>An underlay that sends and hears packets in place (IOverlayUnderlay.Send(Packet),
/// SetPacketReceiver), handing each datagram's own packet to the peer whose Local is the target; it
/// records where each datagram started in its buffer and its bytes, and counts span sends.</summary>
internal sealed class PacketPipeUnderlay(UnderlayEndpoint local) : IOverlayUnderlay
{
    public static readonly Dictionary<UnderlayEndpoint, PacketPipeUnderlay> Net = new();
    public OverlayPacketReceiver? PacketReceiver;
    public readonly List<(int Offset, byte[] Bytes)> Sent = [];
    public int SpanSends;

    public UnderlayEndpoint Local { get; } = local;
    public int MaxPayload(UnderlayEndpoint target) => 1500 - 28;
    public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload) => Send(target, Local.Port, payload);

    public bool Send(UnderlayEndpoint target, ushort sourcePort, ReadOnlySpan<byte> payload)
    {
        SpanSends++;
        return false;
    }

    public bool Send(UnderlayEndpoint target, ushort sourcePort, Packet datagram)
    {
        Sent.Add((datagram.Offset, datagram.Data.ToArray()));
        if (Net.TryGetValue(target, out var peer) && peer.PacketReceiver is { } take) take(new UnderlayEndpoint(Local.Address, sourcePort), datagram);
        else datagram.Free();
        return true;
    }

    public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) { }

    public bool SetPacketReceiver(OverlayPacketReceiver? receive)
    {
        PacketReceiver = receive;
        return true;
    }
}

public class OverlayTests
{
    private static readonly IpAddress A = Ip("10.0.1.10"), B = Ip("10.0.2.10");

    private static IpAddress Ip(string s)
    {
        Assert.That(IpAddress.TryParse(s, out var a), Is.True);
        return a;
    }

    [SetUp]
    public void Clear() => PipeUnderlay.Net.Clear();

    private Rig Host(IConfigStore? store = null)
    {
        var rig = new Rig(nics: 1, store);
        Install(rig);
        return rig;
    }

    private static void Install(Rig rig)
        => rig.Mac.SetUnderlayProvider((UnderlayEndpoint listen, out IOverlayUnderlay? u) =>
        {
            var p = new PipeUnderlay(listen);
            PipeUnderlay.Net[listen] = p;
            u = p;
            return DlStatus.Ok;
        });

    private static (string, string)[] Props(IpAddress listen, IpAddress dest, int port = 4789)
        => [("vxlan/listen_ip", listen.ToString()), ("direct/dest_ip", dest.ToString()), ("direct/dest_port", port.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private static OverlayLink Overlay(Rig rig, string name, long vnid, IpAddress listen, IpAddress dest, bool temporary = true)
    {
        var s = rig.Mac.CreateOverlay(name, "vxlan", "direct", vnid, Props(listen, dest), temporary, out var o, out var failed, out _);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok), failed);
        return o!;
    }

    private static Recorder Vnic(Rig rig, string name, string over, int mac, ushort vid = 0)
    {
        var s = rig.Mac.CreateVnic(name, over, new MacLayer.MacRequest(MacAddressType.Fixed, Rig.MacOf(mac)), vid, temporary: true, out var v);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok));
        var c = v!.OpenClient("test")!;
        var r = new Recorder(c);
        c.Receiver = r;
        return r;
    }

    private static byte[] Frame(int from, int to, int payload = 46)
    {
        var f = new byte[14 + payload];
        Rig.MacOf(to).Write(f);
        Rig.MacOf(from).Write(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x88B5); // local experimental
        for (int i = 14; i < f.Length; i++) f[i] = (byte)i;
        return f;
    }

    [Test]
    public void Vxlan_header_is_rfc7348_flags_then_the_vnid_with_reserved_bits_zero()
    {
        var h = new byte[8];
        VxlanHeader.Emit(h, 0xABCDEF);
        Assert.That(h, Is.EqualTo(new byte[] { 0x08, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0 }));
        var d = new byte[8 + 14];
        h.CopyTo(d, 0);
        d[1] = 0xFF; // reserved bits are ignored on receipt
        Assert.That(VxlanHeader.TryParse(d, out uint vnid), Is.EqualTo(VxlanHeader.Error.None));
        Assert.That(vnid, Is.EqualTo(0xABCDEFu));
    }

    [Test]
    public void A_frame_to_another_host_is_encapsulated_to_the_direct_destination_with_a_flow_hashed_source_port()
    {
        var h1 = Host();
        Overlay(h1, "ovl0", 4660, A, B);
        var a = Vnic(h1, "vnic0", "ovl0", 1);
        var frame = Frame(1, 9);
        a.Send(frame);
        var under = PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)];
        Assert.That(under.Sent, Has.Count.EqualTo(1));
        var (target, sport, payload) = under.Sent[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(target, Is.EqualTo(new UnderlayEndpoint(B, 4789)));
            Assert.That(sport, Is.InRange(49152, 65535));
            Assert.That(payload[..8], Is.EqualTo(new byte[] { 0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0 }));
            Assert.That(payload[8..], Is.EqualTo(frame));
            Assert.That(h1.Mac.Find("ovl0") is OverlayLink o ? o.OverlayStats.Encap : -1, Is.EqualTo(1));
        }
        // The same flow keeps its port; PacketDotNet reads the inner frame as we sent it.
        a.Send(Frame(1, 9));
        Assert.That(under.Sent[1].SourcePort, Is.EqualTo(sport));
        var inner = new PacketDotNet.EthernetPacket(new PacketDotNet.Utils.ByteArraySegment(payload, 8, payload.Length - 8));
        Assert.That(inner.DestinationHardwareAddress.ToString(), Is.EqualTo("020820000009"));
    }

    [Test]
    public void An_underlay_that_takes_packets_gets_the_frame_encapsulated_in_its_own_buffer_and_the_peer_switches_it_in_place()
    {
        PacketPipeUnderlay.Net.Clear();
        Rig PacketHost()
        {
            var rig = new Rig(nics: 1);
            rig.Mac.SetUnderlayProvider((UnderlayEndpoint listen, out IOverlayUnderlay? u) =>
            {
                var p = new PacketPipeUnderlay(listen);
                PacketPipeUnderlay.Net[listen] = p;
                u = p;
                return DlStatus.Ok;
            });
            return rig;
        }
        var h1 = PacketHost();
        var h2 = PacketHost();
        Overlay(h1, "ovl0", 0x1234, A, B);
        Overlay(h2, "ovl0", 0x1234, B, A);
        var a = Vnic(h1, "vnic0", "ovl0", 1, vid: 5);
        var b = Vnic(h2, "vnic0", "ovl0", 2, vid: 5);
        var frame = Frame(1, 2);
        long outstanding = h2.Mac.Pool.Outstanding;
        a.Send(frame);
        var under = PacketPipeUnderlay.Net[new UnderlayEndpoint(A, 4789)];
        // VXLAN (flags 0x08, VNID 0x001234), then the frame with its VLAN in an 802.1Q tag (rule 7).
        byte[] expected = [0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0, .. frame[..12], 0x81, 0x00, 0x00, 0x05, .. frame[12..]];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(under.SpanSends, Is.Zero, "no copy through the span send");
            Assert.That(under.Sent, Has.Count.EqualTo(1));
            Assert.That(under.Sent[0].Offset, Is.EqualTo(Packet.Headroom - 4 - VxlanHeader.Length), "tag and VXLAN header prepended in the frame's own headroom");
            Assert.That(under.Sent[0].Bytes, Is.EqualTo(expected));
            Assert.That(b.Frames, Has.Count.EqualTo(1));
            Assert.That(b.Frames[0].Frame, Is.EqualTo(frame), "decapsulated in place and switched in its VLAN, untagged");
            Assert.That(b.Frames[0].Vid, Is.EqualTo(5));
            Assert.That(h2.Mac.Pool.Outstanding, Is.EqualTo(outstanding), "the receiving host rented no packet");
            Assert.That(((OverlayLink)h2.Mac.Find("ovl0")!).OverlayStats.Decap, Is.EqualTo(1));
        }
    }

    [Test]
    public void Vnics_of_one_overlay_switch_locally_without_the_underlay()
    {
        var h1 = Host();
        Overlay(h1, "ovl0", 1, A, B);
        var a = Vnic(h1, "vnic0", "ovl0", 1);
        var b = Vnic(h1, "vnic1", "ovl0", 2);
        a.Send(Frame(1, 2));
        Assert.That(b.Frames, Has.Count.EqualTo(1));
        Assert.That(PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)].Sent, Is.Empty);
    }

    [Test]
    public void Two_hosts_carry_a_tagged_vnic_in_its_vlan_and_other_vnids_and_vlans_never_see_it()
    {
        var h1 = Host();
        var h2 = Host();
        Overlay(h1, "red0", 100, A, B);
        Overlay(h2, "red0", 100, B, A);
        Overlay(h2, "blue0", 200, B, A);
        var a = Vnic(h1, "a0", "red0", 1, vid: 5);
        var b = Vnic(h2, "b0", "red0", 2, vid: 5);
        var other = Vnic(h2, "c0", "red0", 3, vid: 6);
        var blue = Vnic(h2, "d0", "blue0", 4, vid: 5);
        // A broadcast from a0 crosses to b0 only: same VNID, same VLAN.
        var bcast = Frame(1, 0);
        MacAddress.Broadcast.Write(bcast);
        a.Send(bcast);
        a.Send(Frame(1, 2));
        var sent = PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)].Sent;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(2));
            Assert.That(b.Frames[1].Frame, Is.EqualTo(Frame(1, 2)));
            Assert.That(b.Frames[1].Vid, Is.EqualTo(5));
            Assert.That(other.Frames, Is.Empty);
            Assert.That(blue.Frames, Is.Empty);
            // The inner frame carries the VNIC's VLAN as an 802.1Q tag (Overlay.cs rule 7).
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(sent[1].Payload.AsSpan(8 + 12)), Is.EqualTo(EtherType.Vlan));
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(sent[1].Payload.AsSpan(8 + 14)) & 0xFFF, Is.EqualTo(5));
        }
    }

    [TestCase(new byte[] { 0x08, 0, 0, 0, 0, 0, 100 }, "bad_short")]
    [TestCase(new byte[] { 0x00, 0, 0, 0, 0, 0, 100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 }, "bad_flags")]
    [TestCase(new byte[] { 0x08, 0, 0, 0, 0, 0, 99, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 }, "unknown_vnid")]
    public void Malformed_vxlan_is_counted_on_the_mux_and_never_throws(byte[] datagram, string counter)
    {
        var h1 = Host();
        var o = Overlay(h1, "ovl0", 100, A, B);
        var under = PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)];
        Assert.DoesNotThrow(() => under.Receiver!(new UnderlayEndpoint(B, 50000), datagram));
        Assert.That(h1.Kstats.Read("overlay", "mux_10.0.1.10_4789", counter), Is.EqualTo(1));
        Assert.That(o.OverlayStats.Decap, Is.Zero);
    }

    [Test]
    public void An_inner_frame_that_is_not_ethernet_or_too_large_is_counted_on_the_overlay()
    {
        var h1 = Host();
        var o = Overlay(h1, "ovl0", 100, A, B);
        Vnic(h1, "vnic0", "ovl0", 1);
        var under = PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)];
        var big = new byte[8 + 14 + 1401];
        VxlanHeader.Emit(big, 100);
        Rig.MacOf(1).Write(big.AsSpan(8));
        under.Receiver!(new UnderlayEndpoint(B, 50000), big);
        Assert.That(o.OverlayStats.DropMtu, Is.EqualTo(1));
    }

    [Test]
    public void An_unreachable_underlay_is_counted_and_the_frame_freed()
    {
        var h1 = Host();
        var o = Overlay(h1, "ovl0", 100, A, B);
        var a = Vnic(h1, "vnic0", "ovl0", 1);
        PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)].Reachable = false;
        int outstanding = h1.Pool.Outstanding;
        a.Send(Frame(1, 9));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o.OverlayStats.UnderlayErr, Is.EqualTo(1));
            Assert.That(h1.Kstats.Read("overlay", "ovl0", "underlay_err"), Is.EqualTo(1));
            Assert.That(h1.Pool.Outstanding, Is.EqualTo(outstanding));
        }
    }

    [Test]
    public void Link_protection_applies_on_a_vnic_over_an_overlay()
    {
        var h1 = Host();
        var o = Overlay(h1, "ovl0", 100, A, B);
        var a = Vnic(h1, "vnic0", "ovl0", 1);
        h1.Set(h1.Mac.Find("vnic0")!, "protection", "mac-nospoof", temporary: true);
        a.Send(Frame(7, 9)); // not its address
        Assert.That(h1.Mac.Find("vnic0")!.Stats.MacSpoofed, Is.EqualTo(1));
        Assert.That(o.OverlayStats.Encap, Is.Zero);
    }

    [Test]
    public void A_new_underlay_provider_takes_over_open_endpoints_and_a_refusal_keeps_the_old_one()
    {
        var h1 = Host();
        var o = Overlay(h1, "ovl0", 100, A, B);
        var a = Vnic(h1, "vnic0", "ovl0", 1);
        var first = PipeUnderlay.Net[new UnderlayEndpoint(A, 4789)];
        var refused = h1.Mac.SetUnderlayProvider((UnderlayEndpoint l, out IOverlayUnderlay? u) => { u = null; return DladmStatus.AddrInUse; });
        Assert.That(refused, Is.EqualTo(new[] { "overlay listen endpoint 10.0.1.10:4789: address already in use" }));
        a.Send(Frame(1, 9));
        Assert.That(first.Sent, Has.Count.EqualTo(1), "still the old underlay");
        var second = new PipeUnderlay(new UnderlayEndpoint(A, 4789));
        Assert.That(h1.Mac.SetUnderlayProvider((UnderlayEndpoint l, out IOverlayUnderlay? u) => { u = second; return DlStatus.Ok; }), Is.Empty);
        a.Send(Frame(1, 9));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Sent, Has.Count.EqualTo(1));
            Assert.That(first.Receiver, Is.Null, "the old underlay no longer delivers");
            Assert.That(second.Receiver, Is.Not.Null);
            Assert.That(o.OverlayStats.Encap, Is.EqualTo(2));
        }
    }

    [Test]
    public void Creation_is_refused_for_bad_settings_and_leaves_nothing()
    {
        var h1 = Host();
        DlStatus Try(string name, long vnid, string search, params (string, string)[] props)
            => h1.Mac.CreateOverlay(name, "vxlan", search, vnid, props, true, out _, out _, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Try("o0", 16777216, "direct", Props(A, B)).Code, Is.EqualTo(DladmStatus.BadVal));
            Assert.That(Try("o0", 1, "nosuch", Props(A, B)).Code, Is.EqualTo(DladmStatus.NotSup));
            Assert.That(Try("o0", 1, "direct", ("vxlan/listen_ip", "10.0.1.10")).Code, Is.EqualTo(DladmStatus.BadArg));
            Assert.That(Try("o0", 1, "direct", [.. Props(A, B), ("files/config", "/x")]).Code, Is.EqualTo(DladmStatus.BadProp));
            Assert.That(Try("o0", 1, "direct", ("vxlan/listen_ip", "fd00::1"), ("direct/dest_ip", "10.0.2.10"), ("direct/dest_port", "4789")).Code, Is.EqualTo(DladmStatus.NotSup));
            Assert.That(Try("o0", 1, "direct", [.. Props(A, B), ("mtu", "9000")]).Code, Is.EqualTo(DladmStatus.InvalidMtu));
            Assert.That(h1.Mac.Find("o0"), Is.Null);
            Assert.That(h1.Mac.OverlayMuxes, Is.Empty);
        }
        Overlay(h1, "o1", 7, A, B);
        Assert.That(Try("o2", 7, "direct", Props(A, B)).Code, Is.EqualTo(DladmStatus.Exist), "one VNID per listen endpoint");
        Assert.That(Try("o2", 7, "direct", Props(Ip("10.0.1.11"), B)).Code, Is.EqualTo(DladmStatus.Ok), "another endpoint may reuse it");
    }

    [Test]
    public void An_overlay_with_a_vnic_cannot_be_deleted_and_deleting_the_last_closes_its_endpoint()
    {
        var h1 = Host();
        Overlay(h1, "ovl0", 100, A, B);
        Vnic(h1, "vnic0", "ovl0", 1);
        Assert.That(h1.Mac.Delete("ovl0", LinkClass.Overlay, temporary: true).Code, Is.EqualTo(DladmStatus.LinkBusy));
        ((PortLink)h1.Mac.Find("vnic0")!).Client!.Close();
        Assert.That(h1.Mac.Delete("vnic0", LinkClass.Vnic, temporary: true).IsOk, Is.True);
        Assert.That(h1.Mac.Delete("ovl0", LinkClass.Overlay, temporary: true).IsOk, Is.True);
        Assert.That(h1.Mac.OverlayMuxes, Is.Empty);
        Assert.That(h1.Kstats.Read("overlay", "ovl0", "encap"), Is.Null);
    }

    [Test]
    public void A_persistent_overlay_and_its_mtu_come_back_at_boot_and_a_bad_record_is_kept_aside()
    {
        var store = new MemoryConfigStore();
        var h1 = Host(store);
        Overlay(h1, "ovl0", 100, A, B, temporary: false);
        h1.Set(h1.Mac.Find("ovl0")!, "mtu", "1300");
        Overlay(h1, "tmp0", 101, A, B, temporary: true);
        // A fresh MAC layer with the provider installed before boot, as zones/Host.cs does.
        var mac = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        mac.AddPhys("e1000g0");
        mac.SetUnderlayProvider((UnderlayEndpoint l, out IOverlayUnderlay? u) => { u = new PipeUnderlay(l); return DlStatus.Ok; });
        var problems = mac.Boot(store);
        Assert.That(problems, Is.Empty);
        var o = mac.Find("ovl0") as OverlayLink;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o, Is.Not.Null);
            Assert.That(o!.Vnid, Is.EqualTo(100));
            Assert.That(o.Mtu, Is.EqualTo(1300));
            Assert.That(o.Props["direct/dest_ip"], Is.EqualTo("10.0.2.10"));
            Assert.That(mac.Find("tmp0"), Is.Null);
        }
        // A record whose VNID is out of range is reported and kept in the file, not applied.
        string text = store.Read(MacLayer.ConfigName)!;
        Assert.That(text, Does.Contain("\"Vnid\": 100"));
        var bad = new MemoryConfigStore();
        bad.Write(MacLayer.ConfigName, text.Replace("\"Vnid\": 100", "\"Vnid\": 99999999"));
        var mac2 = new MacLayer("h1", new Scheduler(), new PacketPool(), new KstatRegistry(), new HostRandom(1));
        mac2.AddPhys("e1000g0");
        mac2.SetUnderlayProvider((UnderlayEndpoint l, out IOverlayUnderlay? u) => { u = new PipeUnderlay(l); return DlStatus.Ok; });
        var problems2 = mac2.Boot(bad);
        Assert.That(problems2, Has.Some.Contains("ovl0"));
        Assert.That(mac2.Find("ovl0"), Is.Null);
    }
}
