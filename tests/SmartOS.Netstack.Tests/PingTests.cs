using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

public class PingTests
{
    private static (bool ok, IcmpMessage? m) PingOnce(World w, IpStack from, string to, int size = 56, byte ttl = 0, bool df = false)
    {
        var sock = from.OpenIcmpSocket(v6: to.Contains(':'));
        var r = w.Await(async () =>
        {
            var e = sock.SendEcho(World.Ip(to), 1, size, ttl, df);
            if (e != NetError.None) return (false, (IcmpMessage?)null);
            var m = await sock.ReceiveAsync(5 * Time.Second);
            return (m != null, m);
        });
        sock.Dispose();
        return r;
    }

    [Test]
    public void Two_stacks_on_an_etherstub_ping_each_other_after_arp_resolves()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var (ok, m) = PingOnce(w, a, "10.0.0.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.True);
            Assert.That(m!.Type, Is.EqualTo(IcmpType.EchoReply));
            Assert.That(m.From, Is.EqualTo(World.Ip("10.0.0.2")));
            Assert.That(b.Icmp.icmpInEchos, Is.EqualTo(1));
            Assert.That(a.ArpTable().Exists(n => n.Address == World.Ip("10.0.0.2") && !n.IsLocal), Is.True);
        }
    }

    [Test]
    public void Arp_gives_up_after_three_requests_and_counts_the_dropped_packet()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var (ok, _) = PingOnce(w, a, "10.0.0.99");
        w.Run(10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.False);
            Assert.That(a.ArpStats.arpOutRequests, Is.EqualTo(3 + IpStack.ArpProbeCount));
            Assert.That(a.ArpStats.arpResolveFailed, Is.EqualTo(1));
            Assert.That(a.ArpStats.arpPendingDrops, Is.EqualTo(1));
        }
    }

    [Test]
    public void Arp_entries_expire_after_the_reachable_time()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        w.Stack("stub0", "10.0.0.2/24");
        PingOnce(w, a, "10.0.0.2");
        Assert.That(a.ArpTable().Exists(n => !n.IsLocal), Is.True);
        w.Run(301 * Time.Second);
        Assert.That(a.ArpTable().Exists(n => !n.IsLocal), Is.False);
    }

    [Test]
    public void Duplicate_ipv4_address_is_detected_by_arp_probes()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", null);
        Assert.That(b.AddAddress("net0/v4", World.Ip("10.0.0.1"), 24, out var obj).IsOk, Is.True);
        w.Run(2 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(obj!.State, Is.EqualTo(AddressState.Duplicate));
            Assert.That(obj.Ready.Result.Code, Is.EqualTo(IpadmStatus.DadFound));
            Assert.That(a.ArpStats.arpDefends + b.ArpStats.arpDadDuplicates, Is.GreaterThan(0));
        }
    }

    [Test]
    public void Fragmented_ping_is_reassembled_and_answered()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var (ok, m) = PingOnce(w, a, "10.0.0.2", size: 4000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.True);
            Assert.That(m!.Data.Length, Is.EqualTo(4008));
            Assert.That(b.Counters.ipReasmOKs, Is.EqualTo(1));
            Assert.That(a.Counters.ipReasmOKs, Is.EqualTo(1));
            Assert.That(a.Counters.ipFragCreates, Is.EqualTo(3));
        }
    }

    [Test]
    public void Ping_over_a_wire_with_delay_measures_the_round_trip()
    {
        var w = new World();
        var mac2 = new Vnic.MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, w.Random);
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new Vnic.Wire(w.Scheduler, w.Random, p1, p2, 1_000_000_000, 5 * Time.Millisecond, 0);
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        w.Stack("e1000g0", "10.0.0.2/24", mac2);
        PingOnce(w, a, "10.0.0.2");
        var (ok, m) = PingOnce(w, a, "10.0.0.2");
        Assert.That(ok, Is.True);
        long sent = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(m!.Data.AsSpan(8));
        Assert.That(m.Time - sent, Is.InRange(10 * Time.Millisecond, 11 * Time.Millisecond));
    }

    [Test]
    public void Ipv6_link_local_ping_works_after_addrconf()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", null);
        var b = w.Stack("stub0", null);
        Assert.That(a.StartAddrconf("net0/v6", out var la).IsOk, Is.True);
        Assert.That(b.StartAddrconf("net0/v6", out var lb).IsOk, Is.True);
        w.Run(3 * Time.Second);
        Assert.That(la!.State, Is.EqualTo(AddressState.Ok));
        var (ok, m) = PingOnce(w, a, lb!.Address.ToString());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok, Is.True);
            Assert.That(m!.Type, Is.EqualTo(IcmpType.V6EchoReply));
            Assert.That(b.Icmp6.icmpInNeighborSolicits, Is.GreaterThan(0));
        }
    }
}
