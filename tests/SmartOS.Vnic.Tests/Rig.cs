using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>One host's MAC layer without zones (vnic tests cannot reference them), as zones/Host.cs builds it.</summary>
internal sealed class Rig
{
    public readonly Scheduler Scheduler;
    public readonly PacketPool Pool = new();
    public readonly KstatRegistry Kstats = new();
    public readonly MacLayer Mac;
    public readonly IConfigStore Store;

    public Rig(int nics = 2, IConfigStore? store = null, Scheduler? scheduler = null)
    {
        Scheduler = scheduler ?? new Scheduler();
        Mac = new MacLayer("h1", Scheduler, Pool, Kstats, new HostRandom(1));
        for (int i = 0; i < nics; i++) Mac.AddPhys($"e1000g{i}");
        Store = store ?? new MemoryConfigStore();
        var problems = Mac.Boot(Store);
        Assert.That(problems, Is.Empty);
    }

    public static MacAddress MacOf(int n) => new(0x0208_2000_0000UL + (ulong)n);

    public VnicLink Vnic(string name, string over, int macIndex, bool temporary = false)
    {
        var s = Mac.CreateVnic(name, over, new MacLayer.MacRequest(MacAddressType.Fixed, MacOf(macIndex)), 0, temporary, out var v);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok));
        return v!;
    }

    public void Set(Datalink link, string prop, string value, bool temporary = false)
    {
        var s = Mac.SetLinkProp(link, prop, value, temporary);
        Assert.That(s.Code, Is.EqualTo(DladmStatus.Ok), $"{prop}={value}");
    }

    public Sink Listen(PortLink link)
    {
        var sink = new Sink(Scheduler);
        link.OpenClient("test")!.Receiver = sink;
        return sink;
    }

    public Packet Packet(byte[] frame) => Pool.Rent(frame)!;

    public void Send(PortLink from, byte[] frame) => from.TransmitAsClient(Packet(frame));
}

/// <summary>A MAC client that counts what it receives (and optionally keeps copies).</summary>
internal sealed class Sink(Scheduler scheduler) : IMacReceiver
{
    public long Count, Bytes, LastTime;
    public bool Keep { get; set; }
    public readonly List<byte[]> Frames = [];

    public void Receive(MacClient client, Packet packet)
    {
        Count++;
        Bytes += packet.Length;
        LastTime = scheduler.Now;
        if (Keep) Frames.Add(packet.Data.ToArray());
        packet.Free();
    }
}

/// <summary>Sends a frame from a link every <c>interval</c> nanoseconds (offered load for rate tests).</summary>
internal sealed class Pump
{
    private readonly Rig _rig;
    private readonly PortLink _from;
    private readonly byte[] _frame;
    private readonly long _interval;
    private readonly long _until;
    private readonly KTimer _timer;
    public long Sent;

    public Pump(Rig rig, PortLink from, byte[] frame, long bitsPerSecond, long until)
    {
        _rig = rig; _from = from; _frame = frame; _until = until;
        _interval = Math.Max(1, frame.Length * 8L * Time.Second / bitsPerSecond);
        _timer = new KTimer(rig.Scheduler, static s => ((Pump)s!).Tick(), this);
        _timer.ArmAt(rig.Scheduler.Now);
    }

    private void Tick()
    {
        Sent++;
        _rig.Send(_from, _frame);
        if (_rig.Scheduler.Now + _interval < _until) _timer.ArmAfter(_interval);
    }
}

/// <summary>Frames for the tests, built byte by byte with the kernel's header writers.</summary>
internal static class Frames
{
    public static uint Ip(string dotted)
    {
        Assert.That(IpAddress.TryParse(dotted, out var a), Is.True);
        return a.V4Raw;
    }

    public static IpAddress Ip6(string text)
    {
        Assert.That(IpAddress.TryParse(text, out var a), Is.True);
        return a;
    }

    /// <summary>An IPv4 frame carrying UDP/TCP/SCTP ports (or ICMP) of <paramref name="size"/> bytes.</summary>
    public static byte[] Ipv4(MacAddress src, MacAddress dst, string srcIp, string dstIp, byte proto = IpProtocol.Udp,
        ushort sport = 1000, ushort dport = 2000, int size = 100, byte tos = 0, bool fragment = false)
    {
        var f = new byte[size];
        EthernetView.WriteHeader(f, dst, src, EtherType.Ipv4);
        var ip = f.AsSpan(14);
        BinaryPrimitives.WriteUInt16BigEndian(ip[20..], sport);
        BinaryPrimitives.WriteUInt16BigEndian(ip[22..], dport);
        Ipv4View.Write(ip, Ip(srcIp), Ip(dstIp), proto, size - 14 - 20, tos: tos);
        if (fragment)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x2000); // more fragments
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        }
        return f;
    }

    public static byte[] Ipv6(MacAddress src, MacAddress dst, IpAddress srcIp, IpAddress dstIp, byte next = IpProtocol.Udp,
        ushort sport = 1000, ushort dport = 2000, int size = 100, byte tclass = 0)
    {
        var f = new byte[size];
        EthernetView.WriteHeader(f, dst, src, EtherType.Ipv6);
        var ip = f.AsSpan(14);
        Ipv6View.TryWrite(ip, srcIp, dstIp, next, size - 14 - 40, 64, trafficClass: tclass);
        BinaryPrimitives.WriteUInt16BigEndian(ip[40..], sport);
        BinaryPrimitives.WriteUInt16BigEndian(ip[42..], dport);
        return f;
    }

    public static byte[] Arp(MacAddress src, string senderIp, string targetIp)
    {
        var f = new byte[60];
        EthernetView.WriteHeader(f, MacAddress.Broadcast, src, EtherType.Arp);
        ArpView.TryWrite(f.AsSpan(14), ArpView.OpRequest, src, Ip(senderIp), MacAddress.Zero, Ip(targetIp));
        return f;
    }

    public static byte[] Raw(MacAddress src, MacAddress dst, ushort etherType, int size = 60)
    {
        var f = new byte[size];
        EthernetView.WriteHeader(f, dst, src, etherType);
        return f;
    }

    /// <summary>A DHCP message over UDP/IPv4: client to server (op 1) or server to client (op 2).</summary>
    public static byte[] Dhcp(MacAddress ethSrc, MacAddress ethDst, bool fromClient, byte type, MacAddress chaddr, string yiaddr = "0.0.0.0", byte[]? clientId = null)
    {
        var f = new byte[14 + 20 + 8 + 300];
        EthernetView.WriteHeader(f, ethDst, ethSrc, EtherType.Ipv4);
        var ip = f.AsSpan(14);
        var udp = ip[20..];
        int n = DhcpView.Write(udp[8..], fromClient ? (byte)1 : (byte)2, type, 0x1234, chaddr, Ip(yiaddr), clientId ?? []);
        var seg = udp[..(8 + n)];
        uint src = fromClient ? 0 : Ip("10.0.0.1"), dst = 0xFFFFFFFF;
        UdpView.WriteIpv4(seg, src, dst, fromClient ? DhcpView.ClientPort : DhcpView.ServerPort, fromClient ? DhcpView.ServerPort : DhcpView.ClientPort);
        Ipv4View.Write(ip, src, dst, IpProtocol.Udp, seg.Length);
        return f[..(14 + 20 + seg.Length)];
    }
}
