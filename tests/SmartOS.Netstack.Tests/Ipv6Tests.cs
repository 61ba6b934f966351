using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class Ipv6Tests
{
    [Test]
    public void Ndp_dad_marks_a_second_copy_of_an_address_duplicate()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        Assert.That(a.AddAddress("net0/v6", World.Ip("2001:db8::1"), 64, out var first).IsOk, Is.True);
        w.Run(2 * Time.Second);
        Assert.That(b.AddAddress("net0/v6", World.Ip("2001:db8::1"), 64, out var second).IsOk, Is.True);
        w.Run(2 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first!.State, Is.EqualTo(AddressState.Ok));
            Assert.That(second!.State, Is.EqualTo(AddressState.Duplicate));
            Assert.That(b.Counters6.ndpDadDuplicates, Is.EqualTo(1));
            Assert.That(b.IsLocalAddress(World.Ip("2001:db8::1")), Is.False);
        }
    }

    [Test]
    public void Tentative_address_is_not_used_until_dad_completes()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        a.AddAddress("net0/v6", World.Ip("2001:db8::1"), 64, out var obj);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(obj!.State, Is.EqualTo(AddressState.Tentative));
            Assert.That(a.IsLocalAddress(World.Ip("2001:db8::1")), Is.False);
        }
        w.Run(2 * Time.Second);
        Assert.That(a.IsLocalAddress(World.Ip("2001:db8::1")), Is.True);
    }

    [Test]
    public void Slaac_builds_a_global_address_and_default_route_from_a_router_advertisement()
    {
        var w = new World();
        w.Stub("stub0");
        var router = w.Stack("stub0", null);
        Assert.That(router.AddAddress("net0/v6", World.Ip("2001:db8:1::1"), 64, out _).IsOk, Is.True);
        Assert.That(router.AdvertisePrefix("net0", World.Ip("2001:db8:1::"), 64).IsOk, Is.True);
        router.ForwardingV6 = true;
        var host = w.Stack("stub0", null);
        Assert.That(host.StartAddrconf("net0/v6", out _).IsOk, Is.True);
        w.Run(10 * Time.Second);
        var ifc = host.FindInterface("net0")!;
        var expected = IpAddress.V6(0x2001_0db8_0001_0000UL, ifc.InterfaceId);
        var global = host.FindLocal(expected);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(global, Is.Not.Null);
            Assert.That(global!.Type, Is.EqualTo(AddressType.Addrconf));
            Assert.That(global.State, Is.EqualTo(AddressState.Ok));
            Assert.That(global.Name, Is.EqualTo("net0/v6"));
            Assert.That(host.LookupRoute(World.Ip("2001:db8:99::5"))!.IsDefault, Is.True);
            Assert.That(host.Counters6.slaacAddresses, Is.EqualTo(1));
        }
        // The global address answers a ping from the router.
        using var sock = router.OpenIcmpSocket(v6: true);
        var reply = w.Await(async () =>
        {
            sock.SendEcho(expected, 1, 56);
            return await sock.ReceiveAsync(5 * Time.Second);
        });
        Assert.That(reply?.Type, Is.EqualTo(IcmpType.V6EchoReply));
    }

    [Test]
    public void Ndp_from_off_link_is_ignored_and_counted()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        a.StartAddrconf("net0", out var ll);
        w.Run(3 * Time.Second);
        var ifc = a.FindInterface("net0")!;
        // A neighbour solicitation with hop limit 64 (not 255) must be discarded (RFC 4861 7.1.1).
        var frame = Frames.Ipv6(ifc.MacAddress, new MacAddress(0x020000000001), World.Ip("fe80::1"), ll!.Address, IpProtocol.Icmpv6, 64,
            Frames.Icmpv6(World.Ip("fe80::1"), ll.Address, IcmpType.NeighborSolicitation, 0, 0, ll.Address.ToIPAddressBytes()));
        a.Inject(ifc, Packet.Unpooled(frame));
        w.Run(Time.Second);
        Assert.That(a.Counters6.ndpInMalformed, Is.EqualTo(1));
    }
}
