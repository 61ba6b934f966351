using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// Large send (MacLayer.cs rule 9): a TCP segment of many MSS marked with Packet.LsoMss goes whole
/// only to a NIC whose device segments; every other receiver gets the MSS segments software
/// segmentation cuts from it, with the counters saying which happened.
/// </summary>
public class LargeSendTests
{
    private const int Mss = 1000;
    private const int Payload = 10 * Mss + 300; // 11 segments, the last one short
    private static readonly IpAddress s_src = IpAddress.V4(0x0A000001), s_dst = IpAddress.V4(0x0A000002);

    /// <summary>A NIC's device that segments (a TAP with offloads) and keeps what it is given.</summary>
    private sealed class SegmentingDevice : IPhysBackend
    {
        public readonly List<(byte[] Frame, ushort LsoMss)> Sent = [];
        public long SpeedBps => 1_000_000_000;
        public bool OffloadsChecksum => true;
        public bool OffloadsSegmentation => true;
        public void Transmit(PhysLink from, Packet frame)
        {
            Sent.Add((frame.Data.ToArray(), frame.LsoMss));
            frame.Free();
        }
        public void Detach(PhysLink phys) { }
    }

    /// <summary>A NIC's device without segmentation offload.</summary>
    private sealed class PlainDevice : IPhysBackend
    {
        public readonly List<(byte[] Frame, ushort LsoMss)> Sent = [];
        public long SpeedBps => 1_000_000_000;
        public void Transmit(PhysLink from, Packet frame)
        {
            Sent.Add((frame.Data.ToArray(), frame.LsoMss));
            frame.Free();
        }
        public void Detach(PhysLink phys) { }
    }

    /// <summary>An Ethernet/IPv4/TCP frame of <see cref="Payload"/> bytes with a timestamp option,
    /// FIN and PSH set, its checksum pending and marked for large send with <paramref name="mss"/>,
    /// as the IP stack sends it.</summary>
    private static Packet LargeFrame(PacketPool pool, MacAddress dst, MacAddress src, int mss = Mss)
    {
        const int tcpLength = 32 + Payload;
        var p = pool.RentLso(14 + 20 + tcpLength)!;
        var f = p.Data;
        f.Clear();
        dst.Write(f);
        src.Write(f[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherType.Ipv4);
        var ip = f[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 20 + tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 7000);
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], s_src.V4Raw);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], s_dst.V4Raw);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        var tcp = ip.Slice(20, tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 80);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], 0xFFFFF000); // wraps inside the segment
        tcp[12] = 8 << 4;
        tcp[13] = (byte)(TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin);
        tcp[20] = 1; tcp[21] = 1; tcp[22] = 8; tcp[23] = 10; // NOP NOP timestamp
        for (int i = 32; i < tcpLength; i++) tcp[i] = (byte)(i * 7 + (i >> 8));
        Assert.That(TcpView.TryCreate(tcp, out var view), Is.True);
        view.FillPseudoHeaderSum(s_src, s_dst);
        p.SetChecksumPending(34, tcpLength, TcpView.ChecksumOffset);
        p.LsoMss = (ushort)mss;
        return p;
    }

    /// <summary>Checks that <paramref name="frames"/> are the original's MSS segments in order: each
    /// fits the MSS, IP lengths, IDs and checksums right, sequence numbers running on, FIN and PSH
    /// only on the last, and the payload bytes together the original's.</summary>
    private static void AssertSegments(IReadOnlyList<byte[]> frames)
    {
        Assert.That(frames, Has.Count.EqualTo(11));
        var payload = new List<byte>();
        uint seq = 0xFFFFF000;
        for (int i = 0; i < frames.Count; i++)
        {
            var f = frames[i];
            var ip = f.AsSpan(14);
            int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
            var tcp = ip[20..total];
            using (Assert.EnterMultipleScope())
            {
                Assert.That(f, Has.Length.EqualTo(14 + total), $"segment {i}");
                Assert.That(tcp.Length - 32, Is.EqualTo(i < 10 ? Mss : 300), $"segment {i}");
                Assert.That(Checksum.Compute(ip[..20]), Is.Zero, $"segment {i}'s IP checksum");
                Assert.That(BinaryPrimitives.ReadUInt16BigEndian(ip[4..]), Is.EqualTo(7000 + i));
                Assert.That(TcpChecksum.Compute(s_src, s_dst, tcp), Is.Zero, $"segment {i}'s TCP checksum");
                Assert.That(BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), Is.EqualTo(seq));
                var flags = (TcpFlags)tcp[13];
                Assert.That((flags & (TcpFlags.Fin | TcpFlags.Psh)) != 0, Is.EqualTo(i == 10), $"segment {i}'s flags");
                Assert.That(tcp.Slice(20, 12).ToArray(), Is.EqualTo(new byte[] { 1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0 }));
            }
            seq += (uint)(tcp.Length - 32);
            payload.AddRange(tcp[32..].ToArray());
        }
        var expected = new byte[Payload];
        for (int i = 0; i < Payload; i++) expected[i] = (byte)((i + 32) * 7 + ((i + 32) >> 8));
        Assert.That(payload.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void A_large_send_out_of_a_nic_whose_device_segments_goes_whole_and_is_counted_lso_out()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new SegmentingDevice();
        mac.Phys().Attach(device);
        var a = TestNet.Open(mac.Vnic("a0", "e1000g0"));

        a.Client.Transmit(LargeFrame(a.Client.Pool, TestNet.Mac("2:0:0:0:0:99"), a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(device.Sent, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Sent[0].LsoMss, Is.EqualTo(Mss));
            Assert.That(device.Sent[0].Frame, Has.Length.EqualTo(14 + 20 + 32 + Payload));
            Assert.That(mac.Stat("e1000g0", "lso_out"), Is.EqualTo(1));
            Assert.That(mac.Stat("a0", "lso_soft"), Is.Zero);
            Assert.That(mac.Stat("a0", "obytes"), Is.EqualTo(14 + 20 + 32 + Payload), "counted per byte, as one frame");
            Assert.That(a.Client.LsoMax, Is.GreaterThan(60_000));
        }
    }

    [Test]
    public void A_large_send_to_a_local_port_arrives_as_mss_segments_and_is_counted_lso_soft()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new SegmentingDevice();
        mac.Phys().Attach(device);
        var a = TestNet.Open(mac.Vnic("a0", "e1000g0"));
        var b = TestNet.Open(mac.Vnic("b0", "e1000g0"));

        a.Client.Transmit(LargeFrame(a.Client.Pool, b.Client.MacAddress, a.Client.MacAddress));
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Sent, Is.Empty, "local unicast never touches the NIC");
            Assert.That(mac.Stat("a0", "lso_soft"), Is.EqualTo(1));
            Assert.That(mac.Stat("e1000g0", "lso_out"), Is.Zero);
            Assert.That(mac.Stat("b0", "ipackets"), Is.EqualTo(11));
        }
        AssertSegments(b.Frames.Select(r => r.Frame).ToList());
    }

    [Test]
    public void A_large_send_out_of_a_nic_without_segmentation_leaves_as_mss_segments()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new PlainDevice();
        mac.Phys().Attach(device);
        var a = TestNet.Open(mac.Vnic("a0", "e1000g0"));

        a.Client.Transmit(LargeFrame(a.Client.Pool, TestNet.Mac("2:0:0:0:0:99"), a.Client.MacAddress));
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Sent.All(f => f.LsoMss == 0), Is.True);
            Assert.That(a.Client.LsoMax, Is.Zero, "no large send is offered over such a NIC");
            Assert.That(mac.Stat("a0", "lso_soft"), Is.EqualTo(1));
            Assert.That(mac.Stat("e1000g0", "opackets"), Is.EqualTo(11));
        }
        AssertSegments(device.Sent.Select(f => f.Frame).ToList());
    }

    [Test]
    public void A_large_send_over_a_wire_reaches_the_far_host_as_mss_segments()
    {
        var s = new Scheduler();
        var h1 = TestNet.Host(s, "h1", 1);
        var h2 = TestNet.Host(s, "h2", 2);
        _ = new Wire(s, new HostRandom(3), h1.Phys(), h2.Phys(), 1_000_000_000, 0);
        var a = TestNet.Open(h1.Vnic("a0", "e1000g0"));
        var far = TestNet.Open(h2.Vnic("b0", "e1000g0"));

        a.Client.Transmit(LargeFrame(a.Client.Pool, far.Client.MacAddress, a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(h2.Stat("e1000g0", "drop_wire_mtu"), Is.Zero);
        AssertSegments(far.Frames.Select(r => r.Frame).ToList());
    }

    [Test]
    public void A_capture_on_the_sending_vnic_shows_the_large_send_whole_with_its_checksum()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        mac.Phys().Attach(new SegmentingDevice());
        var link = mac.Vnic("a0", "e1000g0");
        var a = TestNet.Open(link);
        var capture = new TapRecorder();
        link.AddTap(capture);
        var phys = new TapRecorder();
        mac.Phys().AddTap(phys);

        a.Client.Transmit(LargeFrame(a.Client.Pool, TestNet.Mac("2:0:0:0:0:99"), a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(capture.Frames, Has.Count.EqualTo(1));
        Assert.That(phys.Frames, Has.Count.EqualTo(1), "the NIC's capture shows what it gave the device");
        var f = capture.Frames[0].Frame;
        var ip = f.AsSpan(14);
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(f, Has.Length.EqualTo(14 + 20 + 32 + Payload));
            Assert.That(f, Has.Length.LessThanOrEqualTo(65535), "within a pcap's snaplen");
            Assert.That(total, Is.EqualTo(20 + 32 + Payload));
            Assert.That(TcpChecksum.Compute(s_src, s_dst, ip[20..total]), Is.Zero);
        }
    }

    [Test]
    public void A_large_send_whose_segments_exceed_the_mtu_is_dropped_and_counted()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new SegmentingDevice();
        mac.Phys().Attach(device);
        var a = TestNet.Open(mac.Vnic("a0", "e1000g0"));

        a.Client.Transmit(LargeFrame(a.Client.Pool, TestNet.Mac("2:0:0:0:0:99"), a.Client.MacAddress, mss: 1500));
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Sent, Is.Empty);
            Assert.That(mac.Stat("a0", "drop_mtu"), Is.EqualTo(1));
            Assert.That(a.Client.Pool.Outstanding, Is.Zero, "the frame was freed");
        }
    }

    [Test]
    public void A_large_send_marked_on_a_frame_that_is_not_tcp_is_dropped_and_counted()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new SegmentingDevice();
        mac.Phys().Attach(device);
        var a = TestNet.Open(mac.Vnic("a0", "e1000g0"));
        var p = LargeFrame(a.Client.Pool, TestNet.Mac("2:0:0:0:0:99"), a.Client.MacAddress);
        p.Data[14 + 9] = IpProtocol.Udp;

        a.Client.Transmit(p);
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Sent, Is.Empty);
            Assert.That(mac.Stat("a0", "oerrors"), Is.EqualTo(1));
        }
    }

    /// <summary>A receiver that takes large segments whole, as an IP stack of the host does.</summary>
    private sealed class LargeReceiver : IMacReceiver
    {
        public List<(byte[] Frame, ushort LsoMss)> Frames { get; } = [];
        public bool AcceptsPendingChecksum => true;
        public bool AcceptsLargeReceive => true;

        public void Receive(MacClient client, Packet packet)
        {
            Frames.Add((packet.Data.ToArray(), packet.LsoMss));
            packet.Free();
        }
    }

    [Test]
    public void A_large_frame_from_the_device_reaches_a_client_that_takes_it_whole_and_others_as_segments()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 1);
        var device = new SegmentingDevice();
        var phys = mac.Phys();
        phys.Attach(device);
        var stack = mac.Vnic("a0", "e1000g0").OpenClient("ip")!;
        var large = new LargeReceiver();
        stack.Receiver = large;
        var guest = TestNet.Open(mac.Vnic("b0", "e1000g0"));
        var pool = new PacketPool();

        var toStack = LargeFrame(pool, stack.MacAddress, TestNet.Mac("2:0:0:0:0:99"));
        toStack.FinishChecksum();
        phys.ReceiveFromBackend(device, toStack.Data, Mss);
        var toGuest = LargeFrame(pool, guest.Client.MacAddress, TestNet.Mac("2:0:0:0:0:99"));
        toGuest.FinishChecksum();
        phys.ReceiveFromBackend(device, toGuest.Data, Mss);
        s.RunUntilIdle();

        Assert.That(large.Frames, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(large.Frames[0].LsoMss, Is.EqualTo(Mss));
            Assert.That(large.Frames[0].Frame, Is.EqualTo(toStack.Data.ToArray()));
            Assert.That(phys.Stats.LsoSoft, Is.EqualTo(1), "the guest's frame was cut");
            Assert.That(phys.Stats.IPackets, Is.EqualTo(2), "the NIC counts what the device gave it");
        }
        AssertSegments(guest.Frames.Select(r => r.Frame).ToList());
    }

    [Test]
    public void No_large_send_is_offered_on_an_etherstub_or_over_a_bridged_nic()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 2);
        mac.Phys().Attach(new SegmentingDevice());
        Assert.That(mac.CreateEtherstub("stub0", temporary: true).IsOk, Is.True);
        var onStub = TestNet.Open(mac.Vnic("s0", "stub0"));
        var onNic = TestNet.Open(mac.Vnic("a0", "e1000g0"));
        Assert.That(onNic.Client.LsoMax, Is.GreaterThan(0));
        Assert.That(mac.CreateBridge("br", BridgeConfig.Default, ["e1000g0", "e1000g1"]).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(onStub.Client.LsoMax, Is.Zero);
            Assert.That(onNic.Client.LsoMax, Is.Zero, "a bridge may send it to another link");
        }
    }
}
