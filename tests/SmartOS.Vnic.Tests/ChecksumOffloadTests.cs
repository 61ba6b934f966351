using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// Checksum offload (Packet.ChecksumPending): a frame whose TCP checksum is left to the MAC layer
/// keeps it pending only while it moves between this host's IP stacks; a capture, a physical NIC
/// and a MAC client that is not an IP stack always see it filled in.
/// </summary>
public class ChecksumOffloadTests
{
    private static readonly IpAddress s_src = IpAddress.V4(0x0A000001), s_dst = IpAddress.V4(0x0A000002);

    /// <summary>An Ethernet/IPv4/TCP frame with 100 bytes of payload whose TCP checksum field holds
    /// only the pseudo-header sum, marked pending, as the IP stack sends it.</summary>
    private static Packet PendingFrame(PacketPool pool, MacAddress dst, MacAddress src)
    {
        const int tcpLength = 20 + 100;
        var p = pool.Rent(14 + 20 + tcpLength)!;
        var f = p.Data;
        f.Clear();
        dst.Write(f);
        src.Write(f[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(f[12..], EtherType.Ipv4);
        var ip = f[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 20 + tcpLength);
        ip[8] = 64;
        ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], s_src.V4Raw);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], s_dst.V4Raw);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        var tcp = ip.Slice(20, tcpLength);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 80);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        for (int i = 20; i < tcpLength; i++) tcp[i] = (byte)(i * 7);
        Assert.That(TcpView.TryCreate(tcp, out var view), Is.True);
        view.FillPseudoHeaderSum(s_src, s_dst);
        p.SetChecksumPending(34, tcpLength, TcpView.ChecksumOffset);
        return p;
    }

    private static bool TcpChecksumValid(ReadOnlySpan<byte> frame)
    {
        int eth = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherType.Vlan ? 18 : 14;
        var ip = frame[eth..];
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        return TcpChecksum.Compute(s_src, s_dst, ip[20..total]) == 0;
    }

    [Test]
    public void Finishing_a_pending_checksum_gives_the_checksum_computed_in_full()
    {
        var pool = new PacketPool();
        var p = PendingFrame(pool, TestNet.Mac("2:0:0:0:0:2"), TestNet.Mac("2:0:0:0:0:1"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ChecksumPending, Is.True);
            Assert.That(TcpChecksumValid(p.Data), Is.False, "only the pseudo-header sum so far");
        }
        p.FinishChecksum();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ChecksumPending, Is.False);
            Assert.That(TcpChecksumValid(p.Data), Is.True);
        }
    }

    [Test]
    public void A_vlan_tag_pushed_in_front_and_a_copy_keep_the_pending_checksum_in_place()
    {
        var pool = new PacketPool();
        var p = PendingFrame(pool, TestNet.Mac("2:0:0:0:0:2"), TestNet.Mac("2:0:0:0:0:1"));
        Assert.That(EthernetView.TryPushTag(p, 100, 0), Is.True);
        var copy = p.Clone()!;
        p.FinishChecksum();
        copy.FinishChecksum();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TcpChecksumValid(p.Data), Is.True);
            Assert.That(TcpChecksumValid(copy.Data), Is.True);
        }
    }

    [Test]
    public void A_recycled_packet_has_no_pending_checksum()
    {
        var pool = new PacketPool();
        var p = PendingFrame(pool, TestNet.Mac("2:0:0:0:0:2"), TestNet.Mac("2:0:0:0:0:1"));
        p.Free();
        var again = pool.Rent(200)!;
        Assert.That(again, Is.SameAs(p));
        Assert.That(again.ChecksumPending, Is.False);
    }

    [Test]
    public void A_mac_client_that_is_not_an_ip_stack_and_a_capture_get_the_checksum_filled_in()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 0);
        Assert.That(mac.CreateEtherstub("stub0", temporary: true).IsOk, Is.True);
        var a = TestNet.Open(mac.Vnic("a0", "stub0"));
        var bLink = mac.Vnic("b0", "stub0");
        var b = TestNet.Open(bLink);
        var capture = new TapRecorder();
        bLink.AddTap(capture);

        a.Client.Transmit(PendingFrame(a.Client.Pool, b.Client.MacAddress, a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(b.Frames, Has.Count.EqualTo(1));
        Assert.That(capture.Frames, Is.Not.Empty);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TcpChecksumValid(b.Frames[0].Frame), Is.True);
            foreach (var (frame, _) in capture.Frames) Assert.That(TcpChecksumValid(frame), Is.True);
        }
    }

    /// <summary>A receiver that, like an IP stack of this host, takes frames with pending checksums.</summary>
    private sealed class TrustingReceiver : IMacReceiver
    {
        public List<(byte[] Frame, bool Pending)> Frames { get; } = [];
        public List<bool> KnownGood { get; } = [];
        public bool AcceptsPendingChecksum => true;

        public void Receive(MacClient client, Packet packet)
        {
            KnownGood.Add(packet.ChecksumKnownGood);
            Frames.Add((packet.Data.ToArray(), packet.ChecksumPending));
            packet.Free();
        }
    }

    [Test]
    public void Between_trusting_clients_of_one_host_the_checksum_stays_pending()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, nics: 0);
        Assert.That(mac.CreateEtherstub("stub0", temporary: true).IsOk, Is.True);
        var a = TestNet.Open(mac.Vnic("a0", "stub0"));
        var b = mac.Vnic("b0", "stub0").OpenClient("test")!;
        var trusting = new TrustingReceiver();
        b.Receiver = trusting;

        a.Client.Transmit(PendingFrame(a.Client.Pool, b.MacAddress, a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(trusting.Frames, Has.Count.EqualTo(1));
        Assert.That(trusting.Frames[0].Pending, Is.True);
    }

    [Test]
    public void A_frame_leaving_by_a_physical_nic_carries_its_checksum_on_the_wire()
    {
        var s = new Scheduler();
        var h1 = TestNet.Host(s, "h1", 1);
        var h2 = TestNet.Host(s, "h2", 2);
        _ = new Wire(s, new HostRandom(3), h1.Phys(), h2.Phys(), 1_000_000_000, 0);
        var a = TestNet.Open(h1.Vnic("a0", "e1000g0"));
        var far = h2.Phys().OpenClient("test")!;
        var trusting = new TrustingReceiver();
        far.Receiver = trusting;

        // Not a port of h1's switch, so it goes out of the NIC to h2, whose client would trust a
        // pending checksum: it must arrive filled in.
        a.Client.Transmit(PendingFrame(a.Client.Pool, far.MacAddress, a.Client.MacAddress));
        s.RunUntilIdle();

        Assert.That(trusting.Frames, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(trusting.Frames[0].Pending, Is.False);
            Assert.That(TcpChecksumValid(trusting.Frames[0].Frame), Is.True);
            Assert.That(trusting.KnownGood[0], Is.True, "filled in by the sending NIC: the receiver need not sum it again");
        }
    }

    [Test]
    public void Only_a_checksum_this_process_filled_in_marks_a_packet_known_good_and_the_mark_does_not_outlive_the_frame()
    {
        var pool = new PacketPool();
        var p = PendingFrame(pool, TestNet.Mac("2:0:0:0:0:2"), TestNet.Mac("2:0:0:0:0:1"));
        Assert.That(p.ChecksumKnownGood, Is.False, "pending: nothing filled in yet");
        p.FinishChecksum();
        var copy = p.Clone()!;
        var bytes = pool.Rent(p.Data)!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.ChecksumKnownGood, Is.True);
            Assert.That(copy.ChecksumKnownGood, Is.True, "a clone has the same bytes");
            Assert.That(bytes.ChecksumKnownGood, Is.False, "bytes copied in from elsewhere are verified");
            Assert.That(Packet.Unpooled(p.Data).ChecksumKnownGood, Is.False);
        }
        copy.ClearMetadata();
        p.Free();
        var again = pool.Rent(200)!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(copy.ChecksumKnownGood, Is.False, "reused as another frame");
            Assert.That(again, Is.SameAs(p));
            Assert.That(again.ChecksumKnownGood, Is.False, "rented again");
        }
        bytes.SetChecksumPending(34, 120, TcpView.ChecksumOffset);
        Assert.That(bytes.ChecksumKnownGood, Is.False, "pending again");
    }

    [Test]
    public void A_frame_from_a_device_is_not_marked_known_good_whatever_its_checksum()
    {
        var s = new Scheduler();
        var mac = TestNet.Host(s, "h1", 1);
        var nic = mac.Phys();
        var device = new NullBackend();
        nic.Attach(device);
        var client = nic.OpenClient("test")!;
        var trusting = new TrustingReceiver();
        client.Receiver = trusting;
        var p = PendingFrame(new PacketPool(), client.MacAddress, TestNet.Mac("2:0:0:0:0:1"));
        p.FinishChecksum();

        nic.ReceiveFromBackend(device, p.Data);
        s.RunUntilIdle();

        Assert.That(trusting.KnownGood, Is.EqualTo(new[] { false }));
    }

    private sealed class NullBackend : IPhysBackend
    {
        public long SpeedBps => 1_000_000_000;
        public void Transmit(PhysLink from, Packet frame) => frame.Free();
        public void Detach(PhysLink phys) { }
    }
}
