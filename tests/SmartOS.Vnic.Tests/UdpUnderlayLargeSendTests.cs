using SmartOS.Testing;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// Large sends and receives of the real-time underlay (vnic/UdpUnderlay.LargeSend.cs, rule 5 of
/// UdpUnderlay.cs), on the loopback address: one large TCP segment leaves as back-to-back VXLAN
/// datagrams of equal size in one UDP GSO call (or sendmmsg, or sendto, when forced down), a plain
/// socket sees each datagram whole and right, and an underlay with UDP_GRO hands its receiver the
/// same datagrams one by one. The native structures are held against gcc's view of the headers.
/// </summary>
public class UdpUnderlayLargeSendTests
{
    private static readonly IpAddress s_loopback = IpAddress.V4(0x7F000001);
    private const int Mss = 1000, Payload = 9500; // 10 segments, the last of 500 bytes
    private const int Headers = EthernetView.HeaderLength + 20 + 20;
    private const uint Seq = 0x01020304;

    private Scheduler _scheduler = null!;
    private RealTimeDriver _driver = null!;
    private readonly List<IDisposable> _open = [];

    [SetUp]
    public void StartLoop()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("UDP GSO and GRO are Linux's");
        _scheduler = new Scheduler();
        _driver = new RealTimeDriver(_scheduler);
        _driver.Start("udp-underlay-lso-test");
    }

    [TearDown]
    public void StopLoop()
    {
        foreach (var d in _open) d.Dispose();
        _open.Clear();
        _driver?.Dispose();
    }

    private UdpUnderlay Open()
    {
        var u = UdpUnderlay.Open(new UnderlayEndpoint(s_loopback, 0), _driver, out string error);
        Assert.That(u, Is.Not.Null, error);
        _open.Add(u!);
        return u!;
    }

    /// <summary>Ethernet/IPv4/TCP with <see cref="Payload"/> bytes (byte i is i mod 251), PSH|ACK.</summary>
    private static byte[] LargeFrame()
    {
        var f = new byte[Headers + Payload];
        f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), EtherType.Ipv4);
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + 20 + Payload));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 100);
        ip[8] = 64; ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], 0xC0A84801);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], 0xC0A84802);
        var tcp = f.AsSpan(34, 20);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 5001);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 40000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], Seq);
        tcp[12] = 5 << 4;
        tcp[13] = (byte)(TcpFlags.Psh | TcpFlags.Ack);
        for (int i = 0; i < Payload; i++) f[Headers + i] = (byte)(i % 251);
        return f;
    }

    private static readonly byte[] s_vxlan = [0x08, 0, 0, 0, 0, 0x0F, 0xA0, 0];

    /// <summary>Checks one datagram as segment <paramref name="index"/> of <see cref="LargeFrame"/>.</summary>
    private static void AssertSegment(byte[] d, int index)
    {
        int payload = Math.Min(Mss, Payload - index * Mss);
        Assert.That(d, Has.Length.EqualTo(VxlanHeader.Length + Headers + payload), $"datagram {index}");
        var inner = d.AsSpan(VxlanHeader.Length);
        var ip = inner.Slice(14, 20);
        var tcp = inner[34..];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d[..8], Is.EqualTo(s_vxlan), "the VXLAN header");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(ip[2..]), Is.EqualTo(40 + payload), "IPv4 total length");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(ip[4..]), Is.EqualTo(100 + index), "IPv4 identification");
            Assert.That(Checksum.Compute(ip), Is.Zero, "IPv4 header checksum");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]), Is.EqualTo(Seq + (uint)(index * Mss)), "sequence number");
            Assert.That((TcpFlags)tcp[13] & TcpFlags.Psh, Is.EqualTo(index == Payload / Mss ? TcpFlags.Psh : 0), "PSH on the last only");
            uint pseudo = Checksum.Sum(ip.Slice(12, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
            Assert.That(Checksum.Fold(pseudo + Checksum.Sum(tcp)), Is.Zero, "TCP checksum");
            for (int i = 0; i < payload; i++)
            {
                if (tcp[20 + i] != (byte)((index * Mss + i) % 251)) Assert.Fail($"payload byte {i} of datagram {index}");
            }
        }
    }

    /// <summary>Sends the large frame from <paramref name="a"/> to a plain socket (no GRO: the kernel
    /// cuts a GSO run for it) and returns the datagrams it read, with their outer UDP checksum state.</summary>
    private List<byte[]> SendToPlainSocket(UdpUnderlay a)
    {
        using var r = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        r.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        r.ReceiveTimeout = 5000;
        var to = new UnderlayEndpoint(s_loopback, (ushort)((IPEndPoint)r.LocalEndPoint!).Port);
        byte[] frame = LargeFrame();
        var (sent, failed) = _driver.InvokeAsync(() => (a.SendSegmented(to, s_vxlan, frame, Mss, out int f), f)).Result;
        Assert.That((sent, failed), Is.EqualTo((10, 0)));
        var got = new List<byte[]>();
        var buffer = new byte[65536];
        for (int i = 0; i < 10; i++)
        {
            int n = r.Receive(buffer);
            got.Add(buffer[..n]);
        }
        return got;
    }

    [Test]
    public void Large_segment_leaves_as_equal_vxlan_datagrams_in_one_gso_call()
    {
        var a = Open();
        if (a.LargeSend != LargeSendMethod.Gso) Assert.Ignore("this kernel has no UDP GSO (UDP_SEGMENT, Linux 4.18)");
        var got = SendToPlainSocket(a);
        for (int i = 0; i < got.Count; i++) AssertSegment(got[i], i);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.GsoCalls, Is.EqualTo(1), "one sendmsg for the ten datagrams");
            Assert.That(a.MmsgCalls + a.SendToCalls, Is.Zero);
            Assert.That(a.Sent, Is.EqualTo(10));
            Assert.That(a.Fallbacks, Is.Zero);
        }
    }

    [TestCase(LargeSendMethod.SendMmsg)]
    [TestCase(LargeSendMethod.SendTo)]
    public void Forced_fallback_sends_the_same_datagrams(LargeSendMethod method)
    {
        var a = Open();
        Assert.That(a.TryUseLargeSend(method), Is.True);
        Assert.That(a.TryUseLargeSend(LargeSendMethod.Gso), Is.False, "a method is never raised");
        var got = SendToPlainSocket(a);
        for (int i = 0; i < got.Count; i++) AssertSegment(got[i], i);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.GsoCalls, Is.Zero);
            Assert.That(a.MmsgCalls, Is.EqualTo(method == LargeSendMethod.SendMmsg ? 1 : 0));
            Assert.That(a.SendToCalls, Is.EqualTo(method == LargeSendMethod.SendTo ? 10 : 0));
            Assert.That(a.LargeSend, Is.EqualTo(method));
        }
    }

    [Test]
    public void Gro_receive_hands_the_receiver_each_datagram_of_a_coalesced_run()
    {
        var a = Open();
        var b = Open();
        if (!b.Gro) Assert.Ignore("this kernel has no UDP GRO (UDP_GRO, Linux 5.0)");
        var got = new List<(UnderlayEndpoint From, byte[] Data)>();
        b.SetReceiver((from, data) => got.Add((from, data.ToArray())));
        byte[] frame = LargeFrame();
        Assert.That(_driver.InvokeAsync(() => a.SendSegmented(b.Local, s_vxlan, frame, Mss, out _)).Result, Is.EqualTo(10));
        bool all = false;
        for (int i = 0; i < 500 && !all; i++)
        {
            all = _driver.InvokeAsync(() => got.Count >= 10).Result;
            if (!all) Thread.Sleep(10);
        }
        Assert.That(all, Is.True, "ten datagrams arrived");
        for (int i = 0; i < got.Count; i++)
        {
            Assert.That(got[i].From, Is.EqualTo(a.Local));
            AssertSegment(got[i].Data, i);
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Received, Is.EqualTo(10));
            if (a.LargeSend == LargeSendMethod.Gso) Assert.That(b.GroReceives, Is.EqualTo(1), "one receive for the GSO run");
        }
    }

    [Test]
    public void Gro_run_of_one_flow_is_joined_into_one_large_segment()
    {
        var a = Open();
        var b = Open();
        if (!b.Gro || a.LargeSend != LargeSendMethod.Gso) Assert.Ignore("this kernel has no UDP GSO and GRO");
        var small = new List<byte[]>();
        var large = new List<(byte[] Data, int Mss)>();
        b.SetReceiver((_, data) => small.Add(data.ToArray()));
        b.SetLargeReceiver((_, data, mss) => large.Add((data.ToArray(), mss)));
        byte[] frame = LargeFrame();
        Assert.That(_driver.InvokeAsync(() => a.SendSegmented(b.Local, s_vxlan, frame, Mss, out _)).Result, Is.EqualTo(10));
        bool all = false;
        for (int i = 0; i < 500 && !all; i++)
        {
            all = _driver.InvokeAsync(() => large.Count + small.Count >= 1).Result;
            if (!all) Thread.Sleep(10);
        }
        Assert.That(all, Is.True, "the run arrived");
        Assert.That(large, Has.Count.EqualTo(1), "one large segment");
        Assert.That(small, Is.Empty);
        var (d, mss) = large[0];
        Assert.That(mss, Is.EqualTo(Mss));
        Assert.That(d, Has.Length.EqualTo(VxlanHeader.Length + frame.Length));
        var inner = d.AsSpan(VxlanHeader.Length);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d[..8], Is.EqualTo(s_vxlan));
            Assert.That(inner[..14].ToArray(), Is.EqualTo(frame[..14]), "Ethernet");
            Assert.That(Checksum.Compute(inner.Slice(14, 20)), Is.Zero, "IPv4 header checksum");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(inner[16..]), Is.EqualTo(40 + Payload), "IPv4 total length");
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(inner[38..]), Is.EqualTo(Seq));
            Assert.That((TcpFlags)inner[47], Is.EqualTo(TcpFlags.Psh | TcpFlags.Ack), "PSH of the last piece");
            Assert.That(inner[Headers..].ToArray(), Is.EqualTo(frame[Headers..]), "the payload whole, in order");
            // Pending: the field holds the pseudo-header sum, so summing the segment completes it.
            var tcp = inner[34..];
            uint pseudo = Checksum.Sum(inner.Slice(26, 8)) + IpProtocol.Tcp + (uint)tcp.Length;
            while ((pseudo >> 16) != 0) pseudo = (pseudo & 0xFFFF) + (pseudo >> 16);
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(tcp[16..]), Is.EqualTo(pseudo));
            Assert.That(b.Coalesced, Is.EqualTo(1));
            Assert.That(b.CoalescedPieces, Is.EqualTo(10));
        }
    }

    [Test]
    public void A_piece_with_a_bad_checksum_is_not_joined()
    {
        var a = Open();
        var b = Open();
        if (!b.Gro || a.LargeSend != LargeSendMethod.Gso) Assert.Ignore("this kernel has no UDP GSO and GRO");
        var small = new List<byte[]>();
        var large = new List<byte[]>();
        b.SetReceiver((_, data) => small.Add(data.ToArray()));
        b.SetLargeReceiver((_, data, _) => large.Add(data.ToArray()));
        // Three datagrams of one flow, sent as one GSO run by hand: the middle one's TCP checksum broken.
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var pieces = new List<byte[]>();
        byte[] frame = LargeFrame();
        Assert.That(TcpSegmentation.TryCreate(frame, Mss, out var seg), Is.True);
        for (int i = 0; i < 3; i++)
        {
            var piece = new byte[VxlanHeader.Length + seg.SegmentLength(i)];
            s_vxlan.CopyTo(piece, 0);
            seg.Write(i, piece.AsSpan(VxlanHeader.Length));
            pieces.Add(piece);
        }
        pieces[1][^1] ^= 0xFF;
        // UDP_SEGMENT as a socket option: the kernel cuts the one buffer into the three datagrams,
        // and b's GRO hands them over as one run.
        s.SetRawSocketOption(UdpSocketCalls.SolUdp, UdpSocketCalls.UdpSegment, BitConverter.GetBytes(pieces[0].Length));
        s.SendTo([.. pieces[0], .. pieces[1], .. pieces[2]], new IPEndPoint(IPAddress.Loopback, b.Local.Port));
        bool all = false;
        for (int i = 0; i < 500 && !all; i++)
        {
            all = _driver.InvokeAsync(() => large.Count + small.Count >= 3).Result;
            if (!all) Thread.Sleep(10);
        }
        Assert.That(all, Is.True, "all three arrived: " + (large.Count + small.Count));
        Assert.That(b.GroReceives, Is.EqualTo(1), "one run");
        Assert.That(large, Is.Empty, "nothing joined across or with the broken piece");
        Assert.That(small, Has.Count.EqualTo(3));
        Assert.That(small[1], Is.EqualTo(pieces[1]), "the broken piece is handed over as it came");
    }

    [Test]
    public void A_frame_that_is_not_tcp_is_refused_whole()
    {
        var a = Open();
        byte[] frame = LargeFrame();
        frame[14 + 9] = IpProtocol.Udp;
        var r = _driver.InvokeAsync(() => (a.SendSegmented(new UnderlayEndpoint(s_loopback, 9), s_vxlan, frame, Mss, out int f), f)).Result;
        Assert.That(r, Is.EqualTo((-1, 0)));
        Assert.That(a.Sent, Is.Zero);
    }

    private const string LayoutProbe = """
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <stddef.h>
        #include <sys/socket.h>
        #include <netinet/in.h>
        #include <linux/udp.h>
        int main(void) {
            printf("msghdr %zu\n", sizeof(struct msghdr));
            printf("msg_namelen %zu\n", offsetof(struct msghdr, msg_namelen));
            printf("msg_iov %zu\n", offsetof(struct msghdr, msg_iov));
            printf("msg_iovlen %zu\n", offsetof(struct msghdr, msg_iovlen));
            printf("msg_control %zu\n", offsetof(struct msghdr, msg_control));
            printf("msg_controllen %zu\n", offsetof(struct msghdr, msg_controllen));
            printf("msg_flags %zu\n", offsetof(struct msghdr, msg_flags));
            printf("mmsghdr %zu\n", sizeof(struct mmsghdr));
            printf("msg_len %zu\n", offsetof(struct mmsghdr, msg_len));
            printf("iovec %zu\n", sizeof(struct iovec));
            printf("cmsghdr %zu\n", sizeof(struct cmsghdr));
            printf("cmsg_level %zu\n", offsetof(struct cmsghdr, cmsg_level));
            printf("cmsg_type %zu\n", offsetof(struct cmsghdr, cmsg_type));
            printf("CMSG_SPACE_int %zu\n", (size_t)CMSG_SPACE(sizeof(int)));
            printf("CMSG_LEN_u16 %zu\n", (size_t)CMSG_LEN(sizeof(unsigned short)));
            printf("sockaddr_in6 %zu\n", sizeof(struct sockaddr_in6));
            printf("UDP_SEGMENT %d\n", UDP_SEGMENT);
            printf("UDP_GRO %d\n", UDP_GRO);
            printf("MSG_DONTWAIT %d\n", MSG_DONTWAIT);
            printf("MSG_TRUNC %d\n", MSG_TRUNC);
            return 0;
        }
        """;

    [Test]
    public void Native_structures_are_laid_out_as_gcc_sees_the_headers()
    {
        var h = CHeaderProbe.Values(LayoutProbe, "/usr/include/linux/udp.h").ToDictionary(kv => kv.Key, kv => (long)kv.Value);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h["msghdr"], Is.EqualTo(UdpSocketCalls.MsgHdrSize));
            Assert.That(h["msg_namelen"], Is.EqualTo(UdpSocketCalls.MsgNameLenOffset));
            Assert.That(h["msg_iov"], Is.EqualTo(UdpSocketCalls.MsgIovOffset));
            Assert.That(h["msg_iovlen"], Is.EqualTo(UdpSocketCalls.MsgIovLenOffset));
            Assert.That(h["msg_control"], Is.EqualTo(UdpSocketCalls.MsgControlOffset));
            Assert.That(h["msg_controllen"], Is.EqualTo(UdpSocketCalls.MsgControlLenOffset));
            Assert.That(h["msg_flags"], Is.EqualTo(UdpSocketCalls.MsgFlagsOffset));
            Assert.That(h["mmsghdr"], Is.EqualTo(UdpSocketCalls.MMsgHdrSize));
            Assert.That(h["msg_len"], Is.EqualTo(UdpSocketCalls.MMsgLenOffset));
            Assert.That(h["iovec"], Is.EqualTo(UdpSocketCalls.IovecSize));
            Assert.That(h["cmsghdr"], Is.EqualTo(UdpSocketCalls.CmsgHdrSize));
            Assert.That(h["cmsg_level"], Is.EqualTo(UdpSocketCalls.CmsgLevelOffset));
            Assert.That(h["cmsg_type"], Is.EqualTo(UdpSocketCalls.CmsgTypeOffset));
            Assert.That(h["CMSG_SPACE_int"], Is.EqualTo(UdpSocketCalls.CmsgIntSpace));
            Assert.That(h["CMSG_LEN_u16"], Is.EqualTo(UdpSocketCalls.CmsgUInt16Len));
            Assert.That(h["sockaddr_in6"], Is.EqualTo(UdpSocketCalls.SockAddrMax));
            Assert.That(h["UDP_SEGMENT"], Is.EqualTo(UdpSocketCalls.UdpSegment));
            Assert.That(h["UDP_GRO"], Is.EqualTo(UdpSocketCalls.UdpGro));
            Assert.That(h["MSG_DONTWAIT"], Is.EqualTo(UdpSocketCalls.MsgDontWait));
            Assert.That(h["MSG_TRUNC"], Is.EqualTo(UdpSocketCalls.MsgTrunc));
        }
    }
}
