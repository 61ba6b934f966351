using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class RoutingTests
{
    /// <summary>h1 (10.0.1.2) -- stubA -- router (10.0.1.1 | 10.0.2.1) -- stubB -- h2 (10.0.2.2).</summary>
    internal static (World w, IpStack h1, IpStack router, IpStack h2) TwoNetworks(bool forwarding = true)
    {
        var w = new World();
        w.Stub("stub1");
        w.Stub("stub2");
        var router = w.Stack("stub1", "10.0.1.1/24");
        Assert.That(router.CreateInterface("net1", w.Vnic("stub2")).IsOk, Is.True);
        w.AddAddress(router, "net1/v4", "10.0.2.1/24");
        router.ForwardingV4 = forwarding;
        var h1 = w.Stack("stub1", "10.0.1.2/24");
        var h2 = w.Stack("stub2", "10.0.2.2/24");
        Assert.That(h1.AddRoute(IpAddress.AnyV4, 0, World.Ip("10.0.1.1")), Is.EqualTo(NetError.None));
        Assert.That(h2.AddRoute(World.Ip("10.0.1.0"), 24, World.Ip("10.0.2.1")), Is.EqualTo(NetError.None));
        return (w, h1, router, h2);
    }

    private static IcmpMessage? Ping(World w, IpStack from, string to, int size = 56, byte ttl = 0, bool df = false)
    {
        using var sock = from.OpenIcmpSocket(false);
        return w.Await(async () =>
        {
            sock.SendEcho(World.Ip(to), 7, size, ttl, df);
            return await sock.ReceiveAsync(5 * Time.Second);
        });
    }

    [Test]
    public void A_router_stack_forwards_between_two_etherstubs()
    {
        var (w, h1, router, _) = TwoNetworks();
        var m = Ping(w, h1, "10.0.2.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m?.Type, Is.EqualTo(IcmpType.EchoReply));
            Assert.That(m!.Ttl, Is.EqualTo(254));
            Assert.That(router.Counters.ipForwDatagrams, Is.EqualTo(2));
        }
    }

    [Test]
    public void Without_forwarding_the_router_drops_and_counts()
    {
        var (w, h1, router, _) = TwoNetworks(forwarding: false);
        Assert.That(Ping(w, h1, "10.0.2.2"), Is.Null);
        Assert.That(router.Counters.ipForwProhibits, Is.EqualTo(1));
    }

    [Test]
    public void Ttl_one_through_a_router_earns_time_exceeded_from_the_router()
    {
        var (w, h1, router, _) = TwoNetworks();
        var m = Ping(w, h1, "10.0.2.2", ttl: 1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m?.Type, Is.EqualTo(IcmpType.TimeExceeded));
            Assert.That(m!.From, Is.EqualTo(World.Ip("10.0.1.1")));
            Assert.That(router.Icmp.icmpOutTimeExcds, Is.EqualTo(1));
            Assert.That(router.Counters.ipTtlExpired, Is.EqualTo(1));
        }
    }

    [Test]
    public void Longest_prefix_wins_over_the_default_route()
    {
        var (_, h1, _, _) = TwoNetworks();
        Assert.That(h1.AddRoute(World.Ip("10.9.0.0"), 16, World.Ip("10.0.1.3")), Is.EqualTo(NetError.None));
        Assert.That(h1.AddRoute(World.Ip("10.9.8.0"), 24, World.Ip("10.0.1.4")), Is.EqualTo(NetError.None));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h1.LookupRoute(World.Ip("10.9.8.7"))!.Gateway, Is.EqualTo(World.Ip("10.0.1.4")));
            Assert.That(h1.LookupRoute(World.Ip("10.9.1.1"))!.Gateway, Is.EqualTo(World.Ip("10.0.1.3")));
            Assert.That(h1.LookupRoute(World.Ip("192.0.2.1"))!.IsDefault, Is.True);
            Assert.That(h1.AddRoute(World.Ip("10.7.0.0"), 16, World.Ip("172.16.0.1")), Is.EqualTo(NetError.NetworkUnreachable));
            Assert.That(h1.AddRoute(World.Ip("10.9.0.0"), 16, World.Ip("10.0.1.3")), Is.EqualTo(NetError.Exists));
        }
    }

    [Test]
    public void No_route_counts_and_fails_the_send()
    {
        var w = new World();
        w.Stub("stub1");
        var h = w.Stack("stub1", "10.0.1.2/24");
        using var sock = h.OpenIcmpSocket(false);
        Assert.That(sock.SendEcho(World.Ip("192.0.2.1"), 1, 56), Is.EqualTo(NetError.NetworkUnreachable));
    }

    [Test]
    public void Router_fragments_for_a_smaller_next_hop_mtu()
    {
        var (w, h1, router, h2) = TwoNetworks();
        Assert.That(router.SetInterfaceMtu("net1", 576).IsOk, Is.True);
        var m = Ping(w, h1, "10.0.2.2", size: 1400);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m?.Type, Is.EqualTo(IcmpType.EchoReply));
            Assert.That(router.Counters.ipFragCreates, Is.EqualTo(3));
            Assert.That(h2.Counters.ipReasmOKs, Is.EqualTo(1));
        }
    }

    [Test]
    public void Dont_fragment_through_a_small_mtu_earns_frag_needed_and_lowers_the_path_mtu()
    {
        var (w, h1, router, _) = TwoNetworks();
        Assert.That(router.SetInterfaceMtu("net1", 1280).IsOk, Is.True);
        Assert.That(h1.PathMtu(World.Ip("10.0.2.2")), Is.EqualTo(1500));
        var m = Ping(w, h1, "10.0.2.2", size: 1400, df: true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m?.Type, Is.EqualTo(IcmpType.DestinationUnreachable));
            Assert.That(m!.Code, Is.EqualTo(4));
            Assert.That(router.Icmp.icmpOutFragNeeded, Is.EqualTo(1));
            Assert.That(h1.PathMtu(World.Ip("10.0.2.2")), Is.EqualTo(1280));
        }
        w.Run(IpStack.PmtuLifetime + Time.Second);
        Assert.That(h1.PathMtu(World.Ip("10.0.2.2")), Is.EqualTo(1500));
    }

    [Test]
    public void A_registered_transport_hears_about_fragmentation_needed()
    {
        var (w, h1, router, h2) = TwoNetworks();
        Assert.That(router.SetInterfaceMtu("net1", 1000).IsOk, Is.True);
        var t = new RecordingTransport();
        h1.RegisterTransport(IpProtocol.Tcp, t);
        var p = w.Pool.Rent(1400)!;
        p.Data.Clear();
        Assert.That(h1.Send(p, World.Ip("10.0.1.2"), World.Ip("10.0.2.2"), IpProtocol.Tcp), Is.True);
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Errors, Has.Count.EqualTo(1));
            Assert.That(t.Errors[0].Kind, Is.EqualTo(IcmpErrorKind.FragmentationNeeded));
            Assert.That(t.Errors[0].Mtu, Is.EqualTo(1000));
            Assert.That(h2.Counters.ipInReceives, Is.Zero);
        }
    }

    [Test]
    public void A_registered_transport_receives_its_segments_and_unknown_protocols_are_refused()
    {
        var (w, h1, _, h2) = TwoNetworks();
        var t = new RecordingTransport();
        h2.RegisterTransport(IpProtocol.Tcp, t);
        var p = w.Pool.Rent(20)!;
        p.Data.Fill(0xAB);
        h1.Send(p, World.Ip("10.0.1.2"), World.Ip("10.0.2.2"), IpProtocol.Tcp);
        var q = w.Pool.Rent(20)!;
        h1.Send(q, World.Ip("10.0.1.2"), World.Ip("10.0.2.2"), IpProtocol.Sctp);
        w.Run(Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Received, Is.EqualTo(1));
            Assert.That(t.LastLength, Is.EqualTo(20));
            Assert.That(h2.Counters.ipInUnknownProtos, Is.EqualTo(1));
            Assert.That(h1.Icmp.icmpInDestUnreachs, Is.EqualTo(1));
        }
    }

    internal sealed class RecordingTransport : ITransport
    {
        public int Received, LastLength;
        public readonly List<(IcmpErrorKind Kind, int Mtu)> Errors = [];
        public void Receive(Packet packet, IpAddress source, IpAddress destination)
        {
            Received++;
            LastLength = packet.Length;
            packet.Free();
        }
        public void ReceiveError(IcmpErrorKind kind, int mtu, IpAddress source, IpAddress destination, ReadOnlySpan<byte> quoted) => Errors.Add((kind, mtu));
    }
}
