using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// Large send and receive through an overlay (vnic/Overlay.LargeSend.cs): a VNIC over an overlay
/// whose underlay cuts large segments itself is offered large send, and its large segment reaches
/// the underlay whole behind the overlay's VXLAN header; a joined segment from the underlay reaches
/// the VNIC's client as MSS segments with right checksums. Over an underlay that cannot, nothing
/// changes: no large send is offered.
/// </summary>
public class OverlayLargeSendTests
{
    private const int Mss = 1000, Payload = 9500;
    private static readonly IpAddress A = IpAddress.V4(0x0A00010A), B = IpAddress.V4(0x0A00020A);

    private sealed class SegmentingUnderlay(UnderlayEndpoint local) : IOverlayUnderlay, IOverlayLargeSend, IOverlayLargeReceive
    {
        public readonly List<(UnderlayEndpoint Target, byte[] Vxlan, byte[] Frame, int Mss)> Large = [];
        public readonly List<byte[]> Single = [];
        public Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? Receiver;
        public Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int>? LargeReceiver;

        public UnderlayEndpoint Local { get; } = local;
        public int MaxPayload(UnderlayEndpoint target) => 1500 - 28;
        public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload)
        {
            Single.Add(payload.ToArray());
            return true;
        }
        public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) => Receiver = receive;
        public bool TakesLargeSend => true;
        public int SendSegmented(UnderlayEndpoint target, ReadOnlySpan<byte> vxlan, ReadOnlySpan<byte> frame, int mss, out int failed)
        {
            failed = 0;
            if (!TcpSegmentation.TryCreate(frame, mss, out var seg)) return -1;
            Large.Add((target, vxlan.ToArray(), frame.ToArray(), mss));
            return seg.Count;
        }
        public void SetLargeReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>, int>? receive) => LargeReceiver = receive;
        public int RunBytes { get; set; }
        public int RunDatagrams { get; set; }
    }

    private static (Rig Rig, SegmentingUnderlay Underlay, OverlayLink Overlay) Host()
    {
        var rig = new Rig(nics: 1);
        SegmentingUnderlay? under = null;
        rig.Mac.SetUnderlayProvider((UnderlayEndpoint listen, out IOverlayUnderlay? u) =>
        {
            u = under = new SegmentingUnderlay(listen);
            return DlStatus.Ok;
        });
        var s = rig.Mac.CreateOverlay("ovl0", "vxlan", "direct", 4660,
            [("vxlan/listen_ip", A.ToString()), ("direct/dest_ip", B.ToString()), ("direct/dest_port", "4789")], true, out var o, out var failed, out _);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok), failed);
        return (rig, under!, o!);
    }

    private static MacClient Vnic(Rig rig, int mac)
    {
        var s = rig.Mac.CreateVnic("vnic" + mac, "ovl0", new MacLayer.MacRequest(MacAddressType.Fixed, Rig.MacOf(mac)), 0, temporary: true, out var v);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok));
        return v!.OpenClient("test")!;
    }

    /// <summary>Ethernet/IPv4/TCP of <see cref="Payload"/> bytes, PSH|ACK; the TCP checksum field
    /// holds the pseudo-header sum (pending, as a stack sends it and the underlay hands a joined one).</summary>
    private static byte[] LargeFrame(int from, int to)
    {
        var f = new byte[14 + 40 + Payload];
        Rig.MacOf(to).Write(f);
        Rig.MacOf(from).Write(f.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Ipv4);
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 40 + Payload);
        ip[8] = 64; ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], 0xC0A84801);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], 0xC0A84802);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        var tcp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 5001);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 40000);
        tcp[12] = 5 << 4;
        tcp[13] = (byte)(TcpFlags.Psh | TcpFlags.Ack);
        for (int i = 0; i < Payload; i++) tcp[20 + i] = (byte)(i % 253);
        uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
        while ((pseudo >> 16) != 0) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)pseudo);
        return f;
    }

    [Test]
    public void Vnic_over_an_overlay_whose_underlay_segments_is_offered_large_send()
    {
        var (rig, _, _) = Host();
        Assert.That(Vnic(rig, 1).LsoMax, Is.GreaterThan(60_000));
    }

    [Test]
    public void Large_send_over_an_underlay_that_bounds_its_calls_fits_one_call()
    {
        var (rig, under, _) = Host();
        under.RunBytes = 65507; // UDP GSO's bounds (UdpUnderlay.cs rule 5)
        under.RunDatagrams = 64;
        var client = Vnic(rig, 1);
        Assert.That(client.Mtu, Is.EqualTo(1400), "overlay(7)'s default MTU");
        // 45 datagrams of VXLAN + Ethernet + a tag + 1400 fit in 65507 bytes, 46 do not; TCP fills
        // (LsoMax - 20 - 60) / MSS segments, MSS at most 1360.
        Assert.That(client.LsoMax, Is.EqualTo(20 + 60 + 45 * 1360));
        int segments = (client.LsoMax - 20 - 60) / 1360;
        Assert.That(segments * (8 + 14 + 4 + 1400), Is.LessThanOrEqualTo(65507), "one call carries them");
        under.RunDatagrams = 16;
        Assert.That(client.LsoMax, Is.EqualTo(20 + 60 + 16 * 1360), "the datagram bound when it is the smaller");
    }

    [Test]
    public void Vnic_over_an_overlay_on_an_ordinary_underlay_has_no_large_send()
    {
        var rig = new Rig(nics: 1);
        rig.Mac.SetUnderlayProvider((UnderlayEndpoint listen, out IOverlayUnderlay? u) =>
        {
            u = new PipeUnderlay(listen);
            return DlStatus.Ok;
        });
        var s = rig.Mac.CreateOverlay("ovl0", "vxlan", "direct", 4660,
            [("vxlan/listen_ip", A.ToString()), ("direct/dest_ip", B.ToString()), ("direct/dest_port", "4789")], true, out _, out _, out _);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(Vnic(rig, 1).LsoMax, Is.Zero);
    }

    [Test]
    public void Large_segment_reaches_the_underlay_whole_behind_the_vxlan_header()
    {
        var (rig, under, overlay) = Host();
        var client = Vnic(rig, 1);
        byte[] frame = LargeFrame(1, 9);
        var p = client.Pool.RentLso(frame.Length)!;
        frame.CopyTo(p.Data);
        p.LsoMss = Mss;
        p.SetChecksumPending(34, frame.Length - 34, TcpView.ChecksumOffset);
        client.Transmit(p);
        Assert.That(under.Large, Has.Count.EqualTo(1));
        var (target, vxlan, sent, mss) = under.Large[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(target, Is.EqualTo(new UnderlayEndpoint(B, 4789)));
            Assert.That(vxlan, Is.EqualTo(new byte[] { 0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0 }));
            Assert.That(sent, Is.EqualTo(frame), "whole, its checksum left for the cut");
            Assert.That(mss, Is.EqualTo(Mss));
            Assert.That(under.Single, Is.Empty);
            Assert.That(overlay.OverlayStats.Encap, Is.EqualTo(10), "one per datagram");
        }
    }

    [Test]
    public void Joined_segment_from_the_underlay_reaches_a_client_as_right_mss_segments()
    {
        var (rig, under, overlay) = Host();
        var client = Vnic(rig, 9);
        var r = new Recorder(client);
        client.Receiver = r;
        byte[] frame = LargeFrame(1, 9);
        byte[] datagram = [0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0, .. frame];
        Assert.That(under.LargeReceiver, Is.Not.Null, "the mux listens for joined segments");
        under.LargeReceiver!(new UnderlayEndpoint(B, 4789), datagram, Mss);
        Assert.That(r.Frames, Has.Count.EqualTo(10));
        var payload = new List<byte>();
        for (int i = 0; i < r.Frames.Count; i++)
        {
            var f = r.Frames[i].Frame.AsSpan();
            var ip = f[14..];
            var tcp = ip[20..];
            uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(Checksum.Compute(ip[..20]), Is.Zero, $"IPv4 checksum of {i}");
                Assert.That(Checksum.Fold(pseudo + Checksum.Sum(tcp)), Is.Zero, $"TCP checksum of {i}");
                Assert.That(BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), Is.EqualTo((uint)(i * Mss)));
            }
            payload.AddRange(tcp[20..].ToArray());
        }
        Assert.That(payload, Is.EqualTo(frame[54..]), "the payload whole, in order");
        Assert.That(overlay.OverlayStats.Decap, Is.EqualTo(10), "one per datagram joined, as encap counts a large send's");
    }
}
