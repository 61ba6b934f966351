using System.Buffers.Binary;
using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>IPv6 fragmentation at the source and reassembly (RFC 8200 4.5, RFC 5722, RFC 6946).</summary>
public class Ipv6FragmentTests
{
    private static readonly IpAddress s_a = World.Ip("2001:db8::1"), s_b = World.Ip("2001:db8::2");

    private static (World W, IpStack A, IpStack B) Pair()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        w.AddAddress(a, "net0/v6", "2001:db8::1/64");
        w.AddAddress(b, "net0/v6", "2001:db8::2/64");
        return (w, a, b);
    }

    private sealed class FrameLog : ICaptureTap
    {
        public List<byte[]> Frames { get; } = [];
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction) => Frames.Add(frame.ToArray());
    }

    /// <summary>A UDP datagram for b, cut by hand into fragments: (offset, length, more) each.</summary>
    private static List<byte[]> Fragments(IpStack a, IpStack b, byte[] data, uint id, params (int Offset, int Length, bool More)[] cuts)
    {
        var udp = Frames.Udp("2001:db8::1", "2001:db8::2", 5000, 9, data);
        var frames = new List<byte[]>();
        foreach (var (offset, length, more) in cuts)
        {
            var payload = new byte[8 + length];
            payload[0] = IpProtocol.Udp;
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(2), (ushort)(offset | (more ? 1 : 0)));
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4), id);
            udp.AsSpan(offset, length).CopyTo(payload.AsSpan(8));
            frames.Add(Frames.Ipv6(b.FindInterface("net0")!.MacAddress, a.FindInterface("net0")!.MacAddress, s_a, s_b, 44, 64, payload));
        }
        return frames;
    }

    private static byte[]? Receive(UdpSocket u)
    {
        var buffer = new byte[10_000];
        return u.TryReceiveFrom(buffer, out int n, out _) ? buffer[..n] : null;
    }

    [Test]
    public void A_datagram_beyond_the_mtu_leaves_in_fragments_and_is_reassembled()
    {
        var (w, a, b) = Pair();
        var log = new FrameLog();
        ((Datalink)w.Mac.Find("vnic0")!).AddTap(log);
        using var rx = b.OpenUdpSocket();
        Assert.That(rx.Bind(IpAddress.AnyV6, 9), Is.EqualTo(NetError.None));
        using var tx = a.OpenUdpSocket();
        var data = new byte[3000];
        new HostRandom(6).NextBytes(data);

        Assert.That(tx.SendTo(data, new IpEndpoint(s_b, 9)), Is.EqualTo(NetError.None));
        w.Run(Time.Second);

        var fragments = log.Frames.Where(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == EtherType.Ipv6 && f[14 + 6] == 44).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Receive(rx), Is.EqualTo(data));
            Assert.That(a.Counters6.ipv6OutFragCreates, Is.EqualTo(3));
            Assert.That(a.Counters6.ipv6OutFragOKs, Is.EqualTo(1));
            Assert.That(b.Counters6.ipv6ReasmOKs, Is.EqualTo(1));
            Assert.That(b.ReassemblyCount, Is.Zero);
            Assert.That(fragments, Has.Count.EqualTo(3));
            Assert.That(fragments.Select(f => f.Length - 14), Is.All.LessThanOrEqualTo(1500));
            // PacketDotNet reads the first fragment's header chain as an independent decoder would.
            var first = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, fragments[0]).Extract<PacketDotNet.IPv6Packet>();
            Assert.That(first.NextHeader, Is.EqualTo(PacketDotNet.ProtocolType.IPv6FragmentHeader));
        }
    }

    /// <summary>tshark, where installed, reassembles our fragments into the UDP datagram, with a good
    /// checksum and nothing malformed.</summary>
    [Test]
    public void Tshark_reassembles_the_fragments_into_a_good_udp_datagram()
    {
        string? tshark = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "tshark")).FirstOrDefault(File.Exists);
        if (tshark == null) Assert.Ignore("tshark is not installed");
        var (w, a, b) = Pair();
        var log = new FrameLog();
        ((Datalink)w.Mac.Find("vnic0")!).AddTap(log);
        using var rx = b.OpenUdpSocket();
        rx.Bind(IpAddress.AnyV6, 9);
        using var tx = a.OpenUdpSocket();
        tx.SendTo(new byte[4000], new IpEndpoint(s_b, 9));
        w.Run(Time.Second);

        string path = Path.Combine(Path.GetTempPath(), $"smartos-frag6-{Environment.ProcessId}.pcap");
        using (var file = new BinaryWriter(File.Create(path)))
        {
            file.Write(0xa1b2c3d4u); file.Write((ushort)2); file.Write((ushort)4); file.Write(0); file.Write(0u); file.Write(65535u); file.Write(1u);
            foreach (var f in log.Frames)
            {
                file.Write(0u); file.Write(0u); file.Write((uint)f.Length); file.Write((uint)f.Length); file.Write(f);
            }
        }
        (int Code, string Out, string Err) Tshark(params string[] args)
        {
            var psi = new ProcessStartInfo(tshark, ["-n", "-r", path, "-o", "udp.check_checksum:TRUE", .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var proc = Process.Start(psi)!;
            var o = proc.StandardOutput.ReadToEndAsync();
            string e = proc.StandardError.ReadToEnd();
            if (!proc.WaitForExit(30_000)) proc.Kill();
            return (proc.ExitCode, o.Result, e);
        }
        try
        {
            var bad = Tshark("-Y", "_ws.malformed || udp.checksum.status == 0 || _ws.expert.severity == error", "-T", "fields", "-e", "frame.number");
            var whole = Tshark("-Y", "udp.dstport == 9", "-T", "fields", "-e", "udp.length");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(bad.Code, Is.Zero, bad.Err);
                Assert.That(bad.Out.Trim(), Is.Empty, "frames tshark flags");
                Assert.That(whole.Out.Trim(), Is.EqualTo("4008"), "one reassembled datagram of 4000 bytes and its header");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Fragments_out_of_order_with_a_duplicate_reassemble()
    {
        var (w, a, b) = Pair();
        using var rx = b.OpenUdpSocket();
        rx.Bind(IpAddress.AnyV6, 9);
        var data = Enumerable.Range(0, 2000).Select(i => (byte)i).ToArray();
        var frags = Fragments(a, b, data, 77, (1000, 1008, false), (0, 504, true), (504, 496, true), (0, 504, true));
        var ifc = b.FindInterface("net0")!;
        foreach (var f in frags) b.Inject(ifc, Packet.Unpooled(f));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Receive(rx), Is.EqualTo(data));
            Assert.That(b.Counters6.ipv6ReasmOKs, Is.EqualTo(1));
            Assert.That(b.Counters6.ipv6ReasmFails, Is.Zero);
        }
    }

    [Test]
    public void Overlapping_fragments_abandon_the_datagram()
    {
        var (w, a, b) = Pair();
        using var rx = b.OpenUdpSocket();
        rx.Bind(IpAddress.AnyV6, 9);
        var data = new byte[1200];
        var frags = Fragments(a, b, data, 78, (0, 608, true), (600, 608, false));
        var ifc = b.FindInterface("net0")!;
        foreach (var f in frags) b.Inject(ifc, Packet.Unpooled(f));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Receive(rx), Is.Null);
            Assert.That(b.Counters6.ipv6ReasmFails, Is.EqualTo(1));
            Assert.That(b.ReassemblyCount, Is.Zero);
        }
    }

    [Test]
    public void An_atomic_fragment_is_the_datagram_itself()
    {
        var (w, a, b) = Pair();
        using var rx = b.OpenUdpSocket();
        rx.Bind(IpAddress.AnyV6, 9);
        var data = "atomic"u8.ToArray();
        var frag = Fragments(a, b, data, 79, (0, 8 + data.Length, false))[0];
        b.Inject(b.FindInterface("net0")!, Packet.Unpooled(frag));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Receive(rx), Is.EqualTo(data));
            Assert.That(b.ReassemblyCount, Is.Zero);
        }
    }

    [Test]
    public void A_fragment_not_a_multiple_of_eight_octets_is_refused_with_a_parameter_problem()
    {
        var (w, a, b) = Pair();
        var frag = Fragments(a, b, new byte[100], 80, (0, 100, true))[0];
        b.Inject(b.FindInterface("net0")!, Packet.Unpooled(frag));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Counters6.ipv6ReasmFails, Is.EqualTo(1));
            Assert.That(b.ReassemblyCount, Is.Zero);
            Assert.That(a.Icmp6.icmpInParmProbs, Is.EqualTo(1));
        }
    }

    [Test]
    public void Incomplete_datagrams_are_bounded_and_time_out_with_time_exceeded()
    {
        var (w, a, b) = Pair();
        var ifc = b.FindInterface("net0")!;
        for (uint i = 0; i < 100; i++)
        {
            // First fragments only: none ever completes.
            var f = Fragments(a, b, new byte[64], 1000 + i, (0, 64, true))[0];
            b.Inject(ifc, Packet.Unpooled(f));
        }
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.ReassemblyCount, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(b.Counters6.ipv6ReasmOverflows, Is.EqualTo(100 - IpStack.ReassemblyMaxEntries));
        }
        w.Run(IpStack.ReassemblyTimeout);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.ReassemblyCount, Is.Zero);
            Assert.That(b.Counters6.ipv6ReasmTimeout, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(b.Icmp6.icmpOutTimeExcds + b.Icmp6.icmpOutRateLimited, Is.EqualTo(IpStack.ReassemblyMaxEntries));
            Assert.That(a.Icmp6.icmpInTimeExcds, Is.EqualTo(IpStack.IcmpErrorBurst));
        }
    }
}
