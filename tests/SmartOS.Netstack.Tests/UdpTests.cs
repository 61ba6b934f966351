using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class UdpTests
{
    [Test]
    public void Datagrams_travel_between_sockets_on_two_stacks()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        using var server = b.OpenUdpSocket();
        Assert.That(server.Bind(IpAddress.AnyV4, 5353), Is.EqualTo(NetError.None));
        using var client = a.OpenUdpSocket();
        var (text, from, echoed) = w.Await(async () =>
        {
            var buf = new byte[100];
            Assert.That(client.SendTo("hello"u8, new IpEndpoint(World.Ip("10.0.0.2"), 5353)), Is.EqualTo(NetError.None));
            var r = await server.ReceiveFromAsync(buf);
            server.SendTo(buf.AsSpan(0, r.Length), r.From);
            var back = await client.ReceiveFromAsync(buf);
            return (Encoding.ASCII.GetString(buf, 0, r.Length), r.From, back.Length);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(text, Is.EqualTo("hello"));
            Assert.That(from.Address, Is.EqualTo(World.Ip("10.0.0.1")));
            Assert.That(from.Port, Is.InRange(32768, 65535));
            Assert.That(echoed, Is.EqualTo(5));
            Assert.That(b.UdpStats.udpInDatagrams, Is.EqualTo(1));
        }
    }

    [Test]
    public void Bind_rules_refuse_a_taken_port_and_a_foreign_address()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        using var s1 = a.OpenUdpSocket();
        using var s2 = a.OpenUdpSocket();
        using var s3 = a.OpenUdpSocket();
        using var s4 = a.OpenUdpSocket();
        using var s5 = a.OpenUdpSocket();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s1.Bind(World.Ip("10.0.0.1"), 7), Is.EqualTo(NetError.None));
            Assert.That(s2.Bind(IpAddress.AnyV4, 7), Is.EqualTo(NetError.AddressInUse));
            Assert.That(s3.Bind(World.Ip("127.0.0.1"), 7), Is.EqualTo(NetError.None));
            Assert.That(s4.Bind(World.Ip("10.9.9.9"), 8), Is.EqualTo(NetError.AddressNotAvailable));
            Assert.That(s5.Bind(IpAddress.AnyV4, 0), Is.EqualTo(NetError.None));
            Assert.That(s5.Local.Port, Is.InRange(UdpSocket.EphemeralLow, UdpSocket.EphemeralHigh));
            Assert.That(s1.Bind(IpAddress.AnyV4, 9), Is.EqualTo(NetError.InvalidArgument));
        }
    }

    [Test]
    public void Ephemeral_ports_are_distinct()
    {
        var w = new World();
        var a = new IpStack("z", w.Scheduler, w.Pool, w.Random);
        var seen = new HashSet<ushort>();
        var sockets = new List<UdpSocket>();
        for (int i = 0; i < 500; i++)
        {
            var s = a.OpenUdpSocket();
            Assert.That(s.Bind(IpAddress.AnyV4, 0), Is.EqualTo(NetError.None));
            seen.Add(s.Local.Port);
            sockets.Add(s);
        }
        Assert.That(seen, Has.Count.EqualTo(500));
        foreach (var s in sockets) s.Dispose();
    }

    [Test]
    public void Bad_checksum_is_dropped_and_counted_and_zero_checksum_is_accepted_over_ipv4()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var ifc = a.FindInterface("net0")!;
        using var s = a.OpenUdpSocket();
        s.Bind(IpAddress.AnyV4, 9000);
        var good = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9000, "abc"u8.ToArray());
        var bad = (byte[])good.Clone();
        bad[^1] ^= 0xFF;
        var none = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9000, "abc"u8.ToArray(), checksum: false);
        var src = new MacAddress(0x020000000009);
        foreach (var u in new[] { good, bad, none })
            a.Inject(ifc, Packet.Unpooled(Frames.Ipv4(ifc.MacAddress, src, "10.0.0.9", "10.0.0.1", IpProtocol.Udp, u)));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.UdpStats.udpInCksumErrs, Is.EqualTo(1));
            Assert.That(s.QueuedDatagrams, Is.EqualTo(2));
        }
    }

    [Test]
    public void Closed_port_earns_port_unreachable_and_connected_socket_sees_refused()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        using var c = a.OpenUdpSocket();
        Assert.That(c.Connect(new IpEndpoint(World.Ip("10.0.0.2"), 9)), Is.EqualTo(NetError.None));
        Assert.That(c.Send("x"u8), Is.EqualTo(NetError.None));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.UdpStats.udpNoPorts, Is.EqualTo(1));
            Assert.That(b.Icmp.icmpOutDestUnreachs, Is.EqualTo(1));
            Assert.That(c.PendingError, Is.EqualTo(NetError.ConnectionRefused));
        }
    }

    [Test]
    public void Receive_queue_is_bounded_and_overflow_counted()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        using var server = b.OpenUdpSocket();
        server.Bind(IpAddress.AnyV4, 7000);
        using var client = a.OpenUdpSocket();
        // Resolve ARP first: while it is pending, at most NeighborCache.PendingLimit datagrams wait.
        client.SendTo("x"u8, new IpEndpoint(World.Ip("10.0.0.2"), 7000));
        w.Run(Time.Second);
        Assert.That(server.TryReceiveFrom(new byte[1], out _, out _), Is.True);
        for (int i = 0; i < UdpSocket.QueueLimit + 10; i++)
            client.SendTo("x"u8, new IpEndpoint(World.Ip("10.0.0.2"), 7000));
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.QueuedDatagrams, Is.EqualTo(UdpSocket.QueueLimit));
            Assert.That(b.UdpStats.udpInOverflows, Is.EqualTo(10));
        }
    }

    [Test]
    public void Udp_over_ipv6_link_local_with_a_mandatory_checksum()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        a.StartAddrconf("net0", out _);
        b.StartAddrconf("net0", out var lb);
        w.Run(3 * Time.Second);
        using var server = b.OpenUdpSocket();
        Assert.That(server.Bind(IpAddress.AnyV6, 5000), Is.EqualTo(NetError.None));
        using var client = a.OpenUdpSocket();
        var r = w.Await(async () =>
        {
            client.SendTo("six"u8, new IpEndpoint(lb!.Address, 5000));
            return await server.ReceiveFromAsync(new byte[10]);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Length, Is.EqualTo(3));
            Assert.That(r.From.Address.IsLinkLocalV6, Is.True);
        }
    }

    [Test]
    public void Receiving_in_steady_state_allocates_nothing()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        using var server = b.OpenUdpSocket();
        server.Bind(IpAddress.AnyV4, 7000);
        using var client = a.OpenUdpSocket();
        var to = new IpEndpoint(World.Ip("10.0.0.2"), 7000);
        var buf = new byte[64];
        void Round()
        {
            for (int i = 0; i < 100; i++) client.SendTo(buf.AsSpan(0, 64), to);
            w.Run(Time.Millisecond);
            while (server.TryReceiveFrom(buf, out _, out _)) { }
        }
        for (int i = 0; i < 5; i++) Round();
        // The least of several rounds: a steady per-datagram allocation shows in every round, while
        // a one-off of the runtime's (a method compiled on this thread) does not.
        long allocated = long.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Round();
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.LessThan(1024));
    }
}
