using PacketDotNet;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The files search plugin (vnic/OverlayFiles.cs): the mapping file's checks, lookups and misses,
/// and the ARP, NDP and DHCPv4 proxy answers, with exact reply bytes held against PacketDotNet.
/// </summary>
public class OverlayFilesTests
{
    // overlay_files(5)'s example, with one entry carrying a dhcp-proxy.
    private const string Mapping = """
        {
            "de:ad:be:ef:00:00": { "arp": "10.55.55.2", "ip": "198.18.0.1", "ndp": "fe80::3", "port": 4789 },
            "de:ad:be:ef:00:01": { "arp": "10.55.55.3", "dhcp-proxy": "de:ad:be:ef:00:00", "ip": "198.18.0.2", "ndp": "fe80::4", "port": 4789 },
            "de:ad:be:ef:0:2": { "ip": "198.18.0.3", "port": 8472 }
        }
        """;

    private string _dir = "";

    [SetUp]
    public void MakeDirectory()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"ovl-files-{TestContext.CurrentContext.Test.ID}");
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private string Write(string json)
    {
        string path = Path.Combine(_dir, "map.json");
        File.WriteAllText(path, json);
        return path;
    }

    private OverlayFilesSearch Load(string json = Mapping)
    {
        Assert.That(OverlayFilesSearch.TryLoad(Write(json), out var search, out string error), Is.True, error);
        return search!;
    }

    private static MacAddress Mac(string s) { MacAddress.TryParse(s, out var m); return m; }

    [Test]
    public void The_last_lookup_is_remembered_and_a_mapping_change_makes_the_next_lookup_take_the_new_destination()
    {
        var files = Load();
        var mac = Mac("de:ad:be:ef:00:01");
        var fromFile = new UnderlayEndpoint(IpAddress.V4(0xC6120002), 4789);
        var moved = new UnderlayEndpoint(IpAddress.V4(0xC6120009), 4790);
        UnderlayEndpoint Next()
        {
            Assert.That(files.Lookup(mac, out var t), Is.EqualTo(OverlayLookupStatus.Found));
            return t;
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Next(), Is.EqualTo(fromFile));
            Assert.That(Next(), Is.EqualTo(fromFile), "answered from the last-lookup cache");
            files.Set(mac, moved);
            Assert.That(Next(), Is.EqualTo(moved), "modify-overlay -s");
            Assert.That(files.Delete(mac), Is.True);
            Assert.That(Next(), Is.EqualTo(fromFile), "modify-overlay -d");
            files.Set(mac, moved);
            Assert.That(Next(), Is.EqualTo(moved));
            files.Flush();
            Assert.That(Next(), Is.EqualTo(fromFile), "modify-overlay -f");
            Assert.That(files.Found, Is.EqualTo(6), "a cached answer counts as found too");
        }
    }

    [Test]
    public void Lookup_finds_the_underlay_address_of_each_entry()
    {
        var files = Load();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files.Name, Is.EqualTo("files"));
            Assert.That(files.Mapping, Has.Count.EqualTo(3));
            Assert.That(files.Lookup(Mac("de:ad:be:ef:00:01"), out var t1), Is.EqualTo(OverlayLookupStatus.Found));
            Assert.That(t1, Is.EqualTo(new UnderlayEndpoint(IpAddress.V4(0xC6120002), 4789)));
            Assert.That(files.Lookup(Mac("de:ad:be:ef:00:02"), out var t2), Is.EqualTo(OverlayLookupStatus.Found));
            Assert.That(t2, Is.EqualTo(new UnderlayEndpoint(IpAddress.V4(0xC6120003), 8472)));
            Assert.That(files.Found, Is.EqualTo(2));
        }
    }

    [Test]
    public void Unknown_unicast_is_a_counted_miss_and_broadcast_is_dropped()
    {
        var files = Load();
        var kstat = new List<KeyValuePair<string, long>>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files.Lookup(Mac("02:00:00:00:00:99"), out _), Is.EqualTo(OverlayLookupStatus.Miss));
            Assert.That(files.Lookup(Mac("02:00:00:00:00:98"), out _), Is.EqualTo(OverlayLookupStatus.Miss));
            Assert.That(files.Lookup(MacAddress.Broadcast, out _), Is.EqualTo(OverlayLookupStatus.Drop));
            Assert.That(files.Lookup(Mac("01:00:5e:00:00:01"), out _), Is.EqualTo(OverlayLookupStatus.Drop));
            Assert.That(files.Misses, Is.EqualTo(2));
            Assert.That(files.Drops, Is.EqualTo(2));
        }
        files.Snapshot(kstat);
        Assert.That(kstat, Does.Contain(new KeyValuePair<string, long>("misses", 2)));
    }

    // An ARP request from 02:00:00:00:00:01 (10.55.55.9) for 10.55.55.2, padded to 60 bytes.
    private static readonly byte[] s_arpRequest = Convert.FromHexString(
        "ffffffffffff020000000001" + "0806" +
        "0001080006040001" + "020000000001" + "0a373709" + "000000000000" + "0a373702" +
        "000000000000000000000000000000000000");

    private static readonly byte[] s_arpReply = Convert.FromHexString(
        "020000000001deadbeef0000" + "0806" +
        "0001080006040002" + "deadbeef0000" + "0a373702" + "020000000001" + "0a373709" +
        "000000000000000000000000000000000000");

    [Test]
    public void Arp_request_for_a_mapped_address_is_answered_from_its_entry()
    {
        var files = Load();
        var reply = new byte[1518];
        int n = files.TryAnswer(s_arpRequest, reply);
        Assert.That(reply.AsSpan(0, n).ToArray(), Is.EqualTo(s_arpReply));
        var arp = Packet.ParsePacket(LinkLayers.Ethernet, reply[..n]).Extract<ArpPacket>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(arp.Operation, Is.EqualTo(ArpOperation.Response));
            Assert.That(arp.SenderHardwareAddress.ToString(), Is.EqualTo("DEADBEEF0000"));
            Assert.That(arp.SenderProtocolAddress.ToString(), Is.EqualTo("10.55.55.2"));
            Assert.That(arp.TargetHardwareAddress.ToString(), Is.EqualTo("020000000001"));
            Assert.That(arp.TargetProtocolAddress.ToString(), Is.EqualTo("10.55.55.9"));
            Assert.That(files.ArpAnswers, Is.EqualTo(1));
        }
    }

    [Test]
    public void Arp_the_file_cannot_answer_is_dropped_and_never_looked_up()
    {
        var files = Load();
        byte[] unknown = (byte[])s_arpRequest.Clone();
        unknown[41] = 0x63; // 10.55.55.99
        byte[] gratuitous = (byte[])s_arpRequest.Clone();
        gratuitous[31] = 0x02; // sender 10.55.55.2 = target
        byte[] answer = (byte[])s_arpReply.Clone(); // an ARP reply is never proxied
        var reply = new byte[1518];
        using (Assert.EnterMultipleScope())
        {
            foreach (byte[] frame in new[] { unknown, gratuitous, answer })
            {
                Assert.That(files.TryAnswer(frame, reply), Is.Zero);
                Assert.That(files.Steer(frame, out _), Is.EqualTo(OverlaySteer.Drop));
            }
            Assert.That(files.ProxyDrops, Is.EqualTo(3));
            Assert.That(files.ArpAnswers, Is.Zero);
        }
    }

    [Test]
    public void Arp_request_on_a_vlan_is_answered_with_the_tag_kept()
    {
        var files = Load();
        byte[] tagged = [.. s_arpRequest.AsSpan(0, 12), 0x81, 0x00, 0x00, 0x2A, .. s_arpRequest.AsSpan(12)];
        var reply = new byte[1518];
        int n = files.TryAnswer(tagged, reply);
        byte[] expected = [.. s_arpReply.AsSpan(0, 12), 0x81, 0x00, 0x00, 0x2A, .. s_arpReply.AsSpan(12)];
        Assert.That(reply.AsSpan(0, n).ToArray(), Is.EqualTo(expected));
    }

    // A neighbour solicitation from fe80::1 (02:00:00:00:00:01) for fe80::3, to ff02::1:ff00:3.
    private static readonly byte[] s_solicitation = Convert.FromHexString(
        "3333ff000003020000000001" + "86dd" +
        "6000000000203aff" + "fe800000000000000000000000000001" + "ff0200000000000000000001ff000003" +
        "87000000" + "00000000" + "fe800000000000000000000000000003" + "0101020000000001");

    // The advertisement: from fe80::3 at de:ad:be:ef:00:00, solicited and override, with the target's
    // link-layer address; its checksum worked out apart from the code under test.
    private static readonly byte[] s_advertisement = Convert.FromHexString(
        "020000000001deadbeef0000" + "86dd" +
        "6000000000203aff" + "fe800000000000000000000000000003" + "fe800000000000000000000000000001" +
        "88007c7c" + "60000000" + "fe800000000000000000000000000003" + "0201deadbeef0000");

    [Test]
    public void Neighbour_solicitation_for_a_mapped_address_is_answered_with_an_advertisement()
    {
        var files = Load();
        var reply = new byte[1518];
        int n = files.TryAnswer(s_solicitation, reply);
        Assert.That(reply.AsSpan(0, n).ToArray(), Is.EqualTo(s_advertisement));
        var packet = Packet.ParsePacket(LinkLayers.Ethernet, reply[..n]);
        var ip6 = packet.Extract<IPv6Packet>();
        var icmp6 = packet.Extract<IcmpV6Packet>();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ip6.SourceAddress.ToString(), Is.EqualTo("fe80::3"));
            Assert.That(ip6.DestinationAddress.ToString(), Is.EqualTo("fe80::1"));
            Assert.That(icmp6.Type, Is.EqualTo(IcmpV6Type.NeighborAdvertisement));
            Assert.That(icmp6.ValidIcmpChecksum, Is.True);
            Assert.That(files.NdpAnswers, Is.EqualTo(1));
        }
    }

    [Test]
    public void Duplicate_address_detection_and_unknown_targets_are_not_answered()
    {
        var files = Load();
        // DAD: from :: with no source link-layer option.
        byte[] dad = Convert.FromHexString(
            "3333ff000003020000000001" + "86dd" +
            "6000000000183aff" + "00000000000000000000000000000000" + "ff0200000000000000000001ff000003" +
            "87000000" + "00000000" + "fe800000000000000000000000000003");
        byte[] unknown = (byte[])s_solicitation.Clone();
        unknown[77] = 0x09; // target fe80::9
        var reply = new byte[1518];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files.TryAnswer(dad, reply), Is.Zero);
            Assert.That(files.TryAnswer(unknown, reply), Is.Zero);
            Assert.That(files.Steer(unknown, out _), Is.EqualTo(OverlaySteer.Drop));
            Assert.That(files.NdpAnswers, Is.Zero);
        }
    }

    private static byte[] DhcpDiscover(MacAddress client)
    {
        var frame = new byte[14 + 20 + 8 + DhcpView.OptionsOffset + 4];
        EthernetView.WriteHeader(frame, MacAddress.Broadcast, client, EtherType.Ipv4);
        Span<byte> ip = frame.AsSpan(14);
        ip[0] = 0x45;
        ip[9] = IpProtocol.Udp;
        ip[16] = ip[17] = ip[18] = ip[19] = 0xFF;
        Span<byte> udp = ip[20..];
        udp[1] = 68;
        udp[3] = 67;
        DhcpView.Write(udp[8..], DhcpView.BootRequest, DhcpOption.Discover, 7, client, 0, []);
        return frame;
    }

    [Test]
    public void Dhcp_broadcast_is_redirected_to_the_senders_dhcp_proxy()
    {
        var files = Load();
        var reply = new byte[1518];
        byte[] withProxy = DhcpDiscover(Mac("de:ad:be:ef:00:01"));
        byte[] withoutProxy = DhcpDiscover(Mac("de:ad:be:ef:00:02"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files.TryAnswer(withProxy, reply), Is.Zero, "DHCP is redirected, not answered");
            Assert.That(files.Steer(withProxy, out var to), Is.EqualTo(OverlaySteer.Redirect));
            Assert.That(to, Is.EqualTo(Mac("de:ad:be:ef:00:00")));
            Assert.That(files.Steer(withoutProxy, out _), Is.EqualTo(OverlaySteer.Drop));
            Assert.That(files.DhcpRedirects, Is.EqualTo(1));
        }
    }

    [Test]
    public void Ordinary_unicast_is_left_to_the_lookup()
    {
        var files = Load();
        var frame = new byte[60];
        EthernetView.WriteHeader(frame, Mac("de:ad:be:ef:00:00"), Mac("de:ad:be:ef:00:01"), EtherType.Ipv4);
        Assert.That(files.Steer(frame, out _), Is.EqualTo(OverlaySteer.Lookup));
    }

    [TestCase("{", "not valid JSON")]
    [TestCase("[]", "expected a JSON object whose keys are MAC addresses")]
    [TestCase("""{ "zz:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789 } }""", "entry \"zz:ad:be:ef:00:00\": not a MAC address")]
    [TestCase("""{ "de-ad-be-ef-00-00": { "ip": "198.18.0.1", "port": 4789 } }""", "entry \"de-ad-be-ef-00-00\": not a MAC address")]
    [TestCase("""{ "de:ad:be:ef:00:00": "198.18.0.1" }""", "entry \"de:ad:be:ef:00:00\": expected a JSON object")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0", "port": 4789 } }""", "entry \"de:ad:be:ef:00:00\": \"ip\" is not an IP address: \"198.18.0\"")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "port": 4789 } }""", "entry \"de:ad:be:ef:00:00\": \"ip\" is missing")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1" } }""", "entry \"de:ad:be:ef:00:00\": \"port\" is missing")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 70000 } }""", "\"port\" must be a number from 1 to 65535: 70000")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": "4789" } }""", "\"port\" must be a number from 1 to 65535: \"4789\"")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 0 } }""", "\"port\" must be a number from 1 to 65535: 0")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789, "arp": "fe80::1" } }""", "\"arp\" is not an IPv4 address")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789, "ndp": "10.0.0.1" } }""", "\"ndp\" is not a unicast IPv6 address")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789, "dhcp-proxy": "ff:ff:ff:ff:ff:ff" } }""", "\"dhcp-proxy\" is not a unicast MAC address")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789, "vlan": 4 } }""", "unknown key \"vlan\"")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789 }, "de:ad:be:ef:0:0": { "ip": "198.18.0.2", "port": 4789 } }""",
        "entry \"de:ad:be:ef:0:0\": duplicate entry for de:ad:be:ef:0:0 (first given as \"de:ad:be:ef:00:00\")")]
    [TestCase("""{ "de:ad:be:ef:00:00": { "ip": "198.18.0.1", "port": 4789, "arp": "10.0.0.1" }, "de:ad:be:ef:00:01": { "ip": "198.18.0.2", "port": 4789, "arp": "10.0.0.1" } }""",
        "entry \"de:ad:be:ef:00:01\": \"arp\" address 10.0.0.1 is already the \"arp\" address of entry \"de:ad:be:ef:00:00\"")]
    public void Bad_mapping_file_is_refused_naming_the_file_and_the_entry(string json, string message)
    {
        string path = Write(json);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(OverlayFilesSearch.TryLoad(path, out var search, out string error), Is.False);
            Assert.That(search, Is.Null);
            Assert.That(error, Does.StartWith(path + ": "));
            Assert.That(error, Does.Contain(message));
        }
    }

    [Test]
    public void Missing_mapping_file_is_refused()
    {
        string path = Path.Combine(_dir, "absent.json");
        Assert.That(OverlayFilesSearch.TryLoad(path, out _, out string error), Is.False);
        Assert.That(error, Is.EqualTo($"{path}: No such file or directory"));
    }

    [Test]
    public void Lookups_and_answers_allocate_nothing_in_steady_state()
    {
        var files = Load();
        var reply = new byte[1518];
        var known = Mac("de:ad:be:ef:00:01");
        var unknown = Mac("02:00:00:00:00:99");
        long sum = 0;
        for (int i = 0; i < 1000; i++)
        {
            sum += files.TryAnswer(s_arpRequest, reply) + files.TryAnswer(s_solicitation, reply);
            sum += (int)files.Lookup(known, out _) + (int)files.Lookup(unknown, out _);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100_000; i++)
        {
            sum += files.TryAnswer(s_arpRequest, reply) + files.TryAnswer(s_solicitation, reply);
            sum += (int)files.Lookup(known, out _) + (int)files.Lookup(unknown, out _);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(allocated, Is.Zero);
        Assert.That(sum, Is.GreaterThan(0));
    }
}
