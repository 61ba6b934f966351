using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>Link protection (Protection.cs): each mode drops what illumos drops, counts it by reason,
/// and lets the rest through. Two VNICs on an etherstub: a (the tenant under test) and b (a neighbour).</summary>
public class ProtectionTests
{
    private Rig _rig = null!;
    private VnicLink _a = null!, _b = null!;
    private Sink _atB = null!;
    private TapCounter _tap = null!;

    private sealed class TapCounter : ICaptureTap
    {
        public int Count;
        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction) => Count++;
    }

    [SetUp]
    public void Build()
    {
        _rig = new Rig();
        Assert.That(_rig.Mac.CreateEtherstub("stub0", false).Code, Is.EqualTo(DladmStatus.Ok));
        _a = _rig.Vnic("vnic0", "stub0", 1);
        _b = _rig.Vnic("vnic1", "stub0", 2);
        _atB = _rig.Listen(_b);
        _tap = new TapCounter();
        _a.AddTap(_tap);
    }

    private static readonly MacAddress s_own = Rig.MacOf(1), s_peer = Rig.MacOf(2), s_other = Rig.MacOf(99);

    /// <summary>Sends frames from a and says how many reached b.</summary>
    private long Through(params byte[][] frames)
    {
        long before = _atB.Count;
        foreach (var f in frames) _rig.Send(_a, f);
        _rig.Scheduler.RunUntilIdle();
        return _atB.Count - before;
    }

    [Test]
    public void Mac_nospoof_drops_a_foreign_source_address_and_counts_macspoofed()
    {
        _rig.Set(_a, "protection", "mac-nospoof");
        long passed = Through(Frames.Ipv4(s_other, s_peer, "10.0.0.1", "10.0.0.2"), Frames.Ipv4(s_own, s_peer, "10.0.0.1", "10.0.0.2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(1));
            Assert.That(_a.Stats.MacSpoofed, Is.EqualTo(1));
            Assert.That(_a.Stats.OPackets, Is.EqualTo(1), "a spoofed frame is not counted as sent");
            Assert.That(_tap.Count, Is.EqualTo(1), "a spoofed frame is seen by no tap");
            Assert.That(_rig.Kstats.Read("link", "vnic0", "macspoofed"), Is.EqualTo(1));
        }
    }

    [Test]
    public void Restricted_passes_only_ipv4_ipv6_and_arp()
    {
        _rig.Set(_a, "protection", "restricted");
        long passed = Through(
            Frames.Ipv4(s_own, s_peer, "10.0.0.1", "10.0.0.2"),
            Frames.Ipv6(s_own, s_peer, Frames.Ip6("fe80::1"), Frames.Ip6("fe80::2")),
            Frames.Arp(s_own, "10.0.0.1", "10.0.0.2"),
            Frames.Raw(s_own, s_peer, 0x88B5),
            Frames.Raw(s_own, s_peer, 0x8863));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(3));
            Assert.That(_a.Stats.Restricted, Is.EqualTo(2));
        }
    }

    [Test]
    public void Ip_nospoof_checks_the_ipv4_source_against_allowed_addresses_and_prefixes()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "10.0.0.1,192.168.4.0/24");
        long passed = Through(
            Frames.Ipv4(s_own, s_peer, "10.0.0.1", "10.0.0.2"),
            Frames.Ipv4(s_own, s_peer, "192.168.4.77", "10.0.0.2"),
            Frames.Ipv4(s_own, s_peer, "10.0.0.3", "10.0.0.2"),
            Frames.Ipv4(s_own, s_peer, "192.168.5.1", "10.0.0.2"),
            Frames.Ipv4(s_own, s_peer, "0.0.0.0", "255.255.255.255"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(3), "allowed, in the prefix, and 0.0.0.0 pass");
            Assert.That(_a.Stats.IpSpoofed, Is.EqualTo(2));
        }
    }

    [Test]
    public void Ip_nospoof_allows_the_unspecified_and_mac_derived_link_local_ipv6_sources()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "2001:db8::/64");
        var ll = Ipv6View.LinkLocalFromMac(s_own);
        long passed = Through(
            Frames.Ipv6(s_own, s_peer, ll, Frames.Ip6("ff02::1")),
            Frames.Ipv6(s_own, s_peer, IpAddress.AnyV6, Frames.Ip6("ff02::1")),
            Frames.Ipv6(s_own, s_peer, Frames.Ip6("2001:db8::5"), Frames.Ip6("2001:db8::6")),
            Frames.Ipv6(s_own, s_peer, Frames.Ip6("fe80::1234"), Frames.Ip6("ff02::1")),
            Frames.Ipv6(s_own, s_peer, Frames.Ip6("2001:db9::5"), Frames.Ip6("2001:db8::6")));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ll.ToString(), Is.EqualTo("fe80::8:20ff:fe00:1"));
            Assert.That(passed, Is.EqualTo(3));
            Assert.That(_a.Stats.IpSpoofed, Is.EqualTo(2));
        }
    }

    [Test]
    public void Ip_nospoof_checks_the_arp_sender_address_and_allows_probes()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "10.0.0.1");
        long passed = Through(Frames.Arp(s_own, "10.0.0.1", "10.0.0.2"), Frames.Arp(s_own, "0.0.0.0", "10.0.0.1"), Frames.Arp(s_own, "10.0.0.9", "10.0.0.2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(2));
            Assert.That(_a.Stats.IpSpoofed, Is.EqualTo(1));
        }
    }

    [Test]
    public void Ip_nospoof_without_allowed_ips_allows_only_what_dhcp_gave_the_client()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        var client = _a.OpenClient("dhcp-client")!;
        var got = new Sink(_rig.Scheduler);
        client.Receiver = got;
        Assert.That(Through(Frames.Ipv4(s_own, s_peer, "10.0.0.50", "10.0.0.2")), Is.Zero, "nothing learned yet");
        // The server (b) acks 10.0.0.50 for a's MAC; an ACK for another MAC teaches nothing.
        _rig.Send(_b, Frames.Dhcp(s_peer, MacAddress.Broadcast, fromClient: false, DhcpOption.Ack, s_other, "10.0.0.60"));
        _rig.Send(_b, Frames.Dhcp(s_peer, MacAddress.Broadcast, fromClient: false, DhcpOption.Ack, s_own, "10.0.0.50"));
        _rig.Scheduler.RunUntilIdle();
        long passed = Through(Frames.Ipv4(s_own, s_peer, "10.0.0.50", "10.0.0.2"), Frames.Ipv4(s_own, s_peer, "10.0.0.60", "10.0.0.2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(got.Count, Is.EqualTo(2), "the client receives both ACKs");
            Assert.That(_a.Control!.Protection.Learned, Is.EquivalentTo(new[] { IpAddress.V4(Frames.Ip("10.0.0.50")) }));
            Assert.That(passed, Is.EqualTo(1));
            Assert.That(_a.Stats.IpSpoofed, Is.EqualTo(2));
        }
    }

    [Test]
    public void Dhcp_nospoof_checks_chaddr_and_the_client_id()
    {
        _rig.Set(_a, "protection", "dhcp-nospoof");
        byte[] ownCid = [1, .. MacBytes(s_own)];
        long passed = Through(
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Discover, s_own),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Discover, s_own, clientId: ownCid),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Discover, s_other),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Discover, s_own, clientId: [0, 1, 2, 3]));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(2));
            Assert.That(_a.Stats.DhcpSpoofed, Is.EqualTo(2));
        }
    }

    [Test]
    public void Dhcp_nospoof_with_allowed_cids_accepts_only_listed_client_ids()
    {
        _rig.Set(_a, "protection", "dhcp-nospoof");
        _rig.Set(_a, "allowed-dhcp-cids", "0x00010203,tenant-a");
        long passed = Through(
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Request, s_other, clientId: [0, 1, 2, 3]),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Request, s_other, clientId: "tenant-a"u8.ToArray()),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Request, s_own, clientId: "tenant-b"u8.ToArray()));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(2));
            Assert.That(_a.Stats.DhcpSpoofed, Is.EqualTo(1));
            Assert.That(_rig.Mac.FindProperty("allowed-dhcp-cids")!.Get(_a), Is.EqualTo("0x00010203,tenant-a"));
        }
    }

    [Test]
    public void Allow_all_dhcp_cids_lets_any_client_id_through_from_the_links_own_chaddr()
    {
        _rig.Set(_a, "protection", "dhcp-nospoof");
        _rig.Set(_a, "allow-all-dhcp-cids", "true");
        long passed = Through(
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Request, s_own, clientId: [0, 1, 2, 3]),
            Frames.Dhcp(s_own, MacAddress.Broadcast, fromClient: true, DhcpOption.Request, s_other, clientId: [0, 1, 2, 3]));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(passed, Is.EqualTo(1));
            Assert.That(_a.Stats.DhcpSpoofed, Is.EqualTo(1));
            Assert.That(_rig.Mac.FindProperty("allow-all-dhcp-cids")!.Get(_a), Is.EqualTo("true"));
            Assert.That(_rig.Mac.SetLinkProp(_a, "allow-all-dhcp-cids", "yes", temporary: true).Code, Is.EqualTo(DladmStatus.BadVal));
        }
    }

    [Test]
    public void Dynamic_methods_dhcpv4_lets_a_dhcp_address_through_beside_allowed_ips()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "10.0.0.1");
        _a.OpenClient("dhcp-client")!.Receiver = new Sink(_rig.Scheduler);
        _rig.Send(_b, Frames.Dhcp(s_peer, MacAddress.Broadcast, fromClient: false, DhcpOption.Ack, s_own, "10.0.0.50"));
        _rig.Scheduler.RunUntilIdle();
        long before = Through(Frames.Ipv4(s_own, s_peer, "10.0.0.50", "10.0.0.2"));
        _rig.Set(_a, "dynamic-methods", "dhcpv4");
        long after = Through(Frames.Ipv4(s_own, s_peer, "10.0.0.50", "10.0.0.2"), Frames.Ipv4(s_own, s_peer, "10.0.0.51", "10.0.0.2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(before, Is.Zero, "with allowed-ips set, a DHCP address passes only when dynamic-methods names dhcpv4");
            Assert.That(after, Is.EqualTo(1));
            Assert.That(_rig.Mac.FindProperty("dynamic-methods")!.Get(_a), Is.EqualTo("dhcpv4"));
        }
    }

    /// <summary>A router advertisement (hop limit 255) carrying one autonomous prefix.</summary>
    private static byte[] RouterAdvertisement(MacAddress dst, string prefix, uint valid = 86400)
    {
        var f = new byte[14 + 40 + 16 + NdpPrefixInformation.Length];
        EthernetView.WriteHeader(f, dst, s_peer, EtherType.Ipv6);
        var ip = f.AsSpan(14);
        Ipv6View.TryWrite(ip, Ipv6View.LinkLocalFromMac(s_peer), Frames.Ip6("ff02::1"), IpProtocol.Icmpv6, 16 + NdpPrefixInformation.Length, 255);
        ip[40] = IcmpType.RouterAdvertisement;
        NdpOptionReader.WritePrefix(ip[(40 + 16)..], Frames.Ip6(prefix), 64, onLink: true, autonomous: true, valid, valid);
        return f;
    }

    [Test]
    public void Dynamic_methods_slaac_lets_the_mac_derived_address_of_an_advertised_prefix_through()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "10.0.0.1");
        _rig.Set(_a, "dynamic-methods", "addrconf");
        _a.OpenClient("ndp-client")!.Receiver = new Sink(_rig.Scheduler);
        ulong iid = Ipv6View.InterfaceIdFromMac(s_own);
        var slaac = IpAddress.V6(Frames.Ip6("2001:db8:1::").High, iid);
        var elsewhere = IpAddress.V6(Frames.Ip6("2001:db8:2::").High, iid);
        long unlearned = Through(Frames.Ipv6(s_own, s_peer, slaac, Frames.Ip6("2001:db8:1::2")));
        _rig.Send(_b, RouterAdvertisement(s_own, "2001:db8:1::"));
        _rig.Scheduler.RunUntilIdle();
        long passed = Through(
            Frames.Ipv6(s_own, s_peer, slaac, Frames.Ip6("2001:db8:1::2")),
            Frames.Ipv6(s_own, s_peer, Frames.Ip6("2001:db8:1::99"), Frames.Ip6("2001:db8:1::2")),
            Frames.Ipv6(s_own, s_peer, elsewhere, Frames.Ip6("2001:db8:1::2")));
        _rig.Set(_a, "dynamic-methods", "dhcpv4");
        long withoutSlaac = Through(Frames.Ipv6(s_own, s_peer, slaac, Frames.Ip6("2001:db8:1::2")));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(unlearned, Is.Zero, "no prefix advertised yet");
            Assert.That(passed, Is.EqualTo(1), "only the advertised prefix with the MAC's interface ID");
            Assert.That(withoutSlaac, Is.Zero);
            Assert.That(_a.Control!.Protection.SlaacPrefixes, Is.EquivalentTo(new[] { IpAddress.V6(Frames.Ip6("2001:db8:1::").High, 0) }));
        }
    }

    [Test]
    public void Dynamic_methods_shows_addrconf_as_dhcpv6_and_slaac_and_refuses_other_words()
    {
        _rig.Set(_a, "dynamic-methods", "addrconf");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Mac.FindProperty("dynamic-methods")!.Get(_a), Is.EqualTo("dhcpv6,slaac"));
            Assert.That(_rig.Mac.SetLinkProp(_a, "dynamic-methods", "bootp", temporary: true).Code, Is.EqualTo(DladmStatus.BadVal));
        }
    }

    [Test]
    public void Protection_modes_combine_and_reset_to_none()
    {
        _rig.Set(_a, "protection", "mac-nospoof,ip-nospoof,restricted");
        _rig.Set(_a, "allowed-ips", "10.0.0.1");
        Assert.That(Through(Frames.Ipv4(s_other, s_peer, "10.0.0.1", "10.0.0.2"), Frames.Ipv4(s_own, s_peer, "10.0.0.7", "10.0.0.2")), Is.Zero);
        Assert.That(_rig.Mac.ResetLinkProp(_a, "protection", false).Code, Is.EqualTo(DladmStatus.Ok));
        Assert.That(Through(Frames.Ipv4(s_other, s_peer, "10.0.0.1", "10.0.0.2"), Frames.Ipv4(s_own, s_peer, "10.0.0.7", "10.0.0.2")), Is.EqualTo(2));
        Assert.That(_rig.Mac.FindProperty("protection")!.Get(_a), Is.Empty);
    }

    [Test]
    public void Malformed_ip_under_ip_nospoof_is_dropped_without_throwing()
    {
        _rig.Set(_a, "protection", "ip-nospoof");
        _rig.Set(_a, "allowed-ips", "10.0.0.1");
        var runt = Frames.Raw(s_own, s_peer, EtherType.Ipv4, 20);
        var v6runt = Frames.Raw(s_own, s_peer, EtherType.Ipv6, 30);
        var arpRunt = Frames.Raw(s_own, s_peer, EtherType.Arp, 20);
        Assert.That(Through(runt, v6runt, arpRunt), Is.Zero);
        Assert.That(_a.Stats.IpSpoofed, Is.EqualTo(3));
    }

    private static byte[] MacBytes(MacAddress m)
    {
        var b = new byte[6];
        m.Write(b);
        return b;
    }

    [Test]
    public void Allowed_ips_rejects_more_than_32_entries_and_bad_addresses()
    {
        string many = string.Join(',', Enumerable.Range(1, 33).Select(i => $"10.0.0.{i}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rig.Mac.CheckLinkProp(_a, "allowed-ips", many).Message, Is.EqualTo("invalid number of values"));
            Assert.That(_rig.Mac.CheckLinkProp(_a, "allowed-ips", string.Join(',', Enumerable.Range(1, 32).Select(i => $"10.0.0.{i}"))).IsOk, Is.True);
            Assert.That(_rig.Mac.CheckLinkProp(_a, "allowed-ips", "10.0.0.300").Message, Is.EqualTo("invalid value"));
            Assert.That(_rig.Mac.CheckLinkProp(_a, "allowed-ips", "10.0.0.0/33").Message, Is.EqualTo("invalid value"));
            Assert.That(_rig.Mac.CheckLinkProp(_a, "protection", "mac-nospoof,bogus").Message, Is.EqualTo("invalid value"));
        }
    }

    [Test]
    public void Spoofed_frames_never_reach_the_wire()
    {
        var rig = new Rig();
        var wire = new Wire(rig.Scheduler, new HostRandom(5), (PhysLink)rig.Mac.Find("e1000g0")!, (PhysLink)rig.Mac.Find("e1000g1")!);
        var tenant = rig.Vnic("vnic5", "e1000g0", 5);
        rig.Set(tenant, "protection", "mac-nospoof,ip-nospoof");
        rig.Set(tenant, "allowed-ips", "10.0.0.5");
        var far = (PhysLink)rig.Mac.Find("e1000g1")!;
        rig.Send(tenant, Frames.Ipv4(s_other, MacAddress.Broadcast, "10.0.0.5", "10.0.0.255"));
        rig.Send(tenant, Frames.Ipv4(Rig.MacOf(5), MacAddress.Broadcast, "10.0.0.6", "10.0.0.255"));
        rig.Send(tenant, Frames.Arp(Rig.MacOf(5), "10.0.0.6", "10.0.0.1"));
        rig.Scheduler.RunUntilIdle();
        Assert.That((wire.FramesCarried, far.Stats.IPackets), Is.EqualTo((0L, 0L)));
        rig.Send(tenant, Frames.Ipv4(Rig.MacOf(5), MacAddress.Broadcast, "10.0.0.5", "10.0.0.255"));
        rig.Scheduler.RunUntilIdle();
        Assert.That((wire.FramesCarried, tenant.Stats.MacSpoofed, tenant.Stats.IpSpoofed), Is.EqualTo((1L, 1L, 2L)));
    }

    [Test]
    public void Restricted_keeps_a_trunk_client_in_its_own_vlan()
    {
        var phys = (PhysLink)_rig.Mac.Find("e1000g0")!;
        _rig.Set(phys, "protection", "restricted");
        var tagged = new byte[64];
        EthernetView.WriteHeader(tagged, MacAddress.Broadcast, phys.MacAddress, EtherType.Vlan);
        tagged[14] = 0; tagged[15] = 5;
        tagged[16] = 0x08; tagged[17] = 0x00;
        phys.TransmitAsClient(_rig.Packet(tagged));
        phys.TransmitAsClient(_rig.Packet(Frames.Ipv4(phys.MacAddress, MacAddress.Broadcast, "10.0.0.1", "10.0.0.2")));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(phys.Stats.Restricted, Is.EqualTo(1), "VLAN 5 is not the primary client's VLAN");
            Assert.That(phys.Stats.DropLinkDown, Is.EqualTo(1), "the untagged frame passes protection and meets a NIC with no wire");
        }
    }

    [Test]
    public void Protection_applies_to_a_phys_primary_client_as_well()
    {
        var phys = (PhysLink)_rig.Mac.Find("e1000g0")!;
        _rig.Set(phys, "protection", "mac-nospoof");
        phys.TransmitAsClient(_rig.Packet(Frames.Ipv4(s_other, MacAddress.Broadcast, "10.0.0.1", "10.0.0.2")));
        Assert.That(phys.Stats.MacSpoofed, Is.EqualTo(1));
    }
}
