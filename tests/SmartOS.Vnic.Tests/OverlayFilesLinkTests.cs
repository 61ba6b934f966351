using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The files plugin inside overlay links (MacLayer.CreateOverlay -s files): two MAC layers joined by
/// an in-memory underlay carry frames between VNICs by the mapping file, ARP is answered from the
/// file, misses and drops are counted on the overlay, and a bad file creates nothing.
/// </summary>
public class OverlayFilesLinkTests
{
    // Two "hosts" 198.18.0.1 and 198.18.0.2; VNIC a (02:00:00:00:00:0a, 10.1.0.10) on the first,
    // VNIC b (02:00:00:00:00:0b, 10.1.0.11) on the second.
    private const string Mapping = """
        {
            "02:00:00:00:00:0a": { "ip": "198.18.0.1", "port": 4789, "arp": "10.1.0.10" },
            "02:00:00:00:00:0b": { "ip": "198.18.0.2", "port": 4789, "arp": "10.1.0.11", "dhcp-proxy": "02:00:00:00:00:0a" }
        }
        """;

    private sealed class MemoryUnderlay(Dictionary<UnderlayEndpoint, MemoryUnderlay> net, UnderlayEndpoint local) : IOverlayUnderlay
    {
        private Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? _receive;
        public UnderlayEndpoint Local => local;
        public int MaxPayload(UnderlayEndpoint target) => 1500 - 28;
        public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload)
        {
            if (!net.TryGetValue(target, out var peer) || peer._receive is not { } r) return false;
            r(local, payload.ToArray());
            return true;
        }
        public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) => _receive = receive;
    }

    private sealed class Sink : IMacReceiver
    {
        public readonly List<byte[]> Frames = [];
        public void Receive(MacClient client, Packet packet)
        {
            Frames.Add(packet.Data.ToArray());
            packet.Free();
        }
    }

    private readonly Dictionary<UnderlayEndpoint, MemoryUnderlay> _net = [];
    private string _dir = "";
    private string _map = "";

    [SetUp]
    public void WriteMapping()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"ovl-files-link-{TestContext.CurrentContext.Test.ID}");
        Directory.CreateDirectory(_dir);
        _map = Path.Combine(_dir, "tenant.json");
        File.WriteAllText(_map, Mapping);
    }

    [TearDown]
    public void RemoveMapping() => Directory.Delete(_dir, recursive: true);

    private MacLayer Host(string name, PacketPool pool)
    {
        var mac = new MacLayer(name, new Scheduler(), pool, new KstatRegistry(), new HostRandom(1));
        mac.SetUnderlayProvider((UnderlayEndpoint listen, out IOverlayUnderlay? underlay) =>
        {
            var u = new MemoryUnderlay(_net, listen);
            _net[listen] = u;
            underlay = u;
            return DlStatus.Ok;
        });
        return mac;
    }

    private static DlStatus CreateOverlay(MacLayer mac, string listenIp, string config, out OverlayLink? overlay, out string? failed)
        => mac.CreateOverlay("tenant0", "vxlan", "files", 77,
            [("vxlan/listen_ip", listenIp), ("files/config", config)], temporary: true, out overlay, out failed, out _);

    private static (MacClient Client, Sink Sink) Vnic(MacLayer mac, string name, ulong address)
    {
        var s = mac.CreateVnic(name, "tenant0", new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(address)), 0, true, out var link);
        Assert.That(s.IsOk, Is.True, s.ToString());
        var client = link!.OpenClient("test")!;
        var sink = new Sink();
        client.Receiver = sink;
        return (client, sink);
    }

    private static void Send(PacketPool pool, MacClient from, byte[] frame)
    {
        var p = pool.Rent(frame)!;
        from.Transmit(p);
    }

    [Test]
    public void Frames_cross_the_underlay_by_the_mapping_and_arp_is_answered_from_it()
    {
        var pool = new PacketPool();
        var h1 = Host("h1", pool);
        var h2 = Host("h2", pool);
        Assert.That(CreateOverlay(h1, "198.18.0.1", _map, out var o1, out _).IsOk, Is.True);
        Assert.That(CreateOverlay(h2, "198.18.0.2", _map, out var o2, out _).IsOk, Is.True);
        var (a, aSink) = Vnic(h1, "a0", 0x02000000000A);
        var (_, bSink) = Vnic(h2, "b0", 0x02000000000B);

        // a asks who has 10.1.0.11: the plugin answers on h1, nothing crosses.
        var arp = new byte[60];
        EthernetView.WriteHeader(arp, MacAddress.Broadcast, a.MacAddress, EtherType.Arp);
        ArpView.TryWrite(arp.AsSpan(14), ArpView.OpRequest, a.MacAddress, 0x0A01000A, MacAddress.Zero, 0x0A01000B);
        Send(pool, a, arp);
        // a sends b a frame: it crosses to h2.
        var data = new byte[60];
        EthernetView.WriteHeader(data, new MacAddress(0x02000000000B), a.MacAddress, 0x88B5);
        Send(pool, a, data);
        // a sends to a MAC the file does not have: a miss.
        EthernetView.WriteHeader(data, new MacAddress(0x0200000000FF), a.MacAddress, 0x88B5);
        Send(pool, a, data);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(aSink.Frames, Has.Count.EqualTo(1), "the ARP answer");
            Assert.That(MacAddress.Read(aSink.Frames[0]), Is.EqualTo(a.MacAddress));
            Assert.That(aSink.Frames[0][21], Is.EqualTo(ArpView.OpReply));
            Assert.That(MacAddress.Read(aSink.Frames[0].AsSpan(22)), Is.EqualTo(new MacAddress(0x02000000000B)), "sender hardware address: b's");
            Assert.That(bSink.Frames, Has.Count.EqualTo(1), "the frame to b, and no ARP broadcast");
            Assert.That(MacAddress.Read(bSink.Frames[0].AsSpan(6)), Is.EqualTo(a.MacAddress));
            Assert.That(o1!.OverlayStats.ProxyAnswers, Is.EqualTo(1));
            Assert.That(o1.OverlayStats.Encap, Is.EqualTo(1));
            Assert.That(o1.OverlayStats.LookupMiss, Is.EqualTo(1));
            Assert.That(o2!.OverlayStats.Decap, Is.EqualTo(1));
            Assert.That(o1.OverlayStats.Decap, Is.Zero, "a proxy answer never came from the underlay: proxy_answers, not decap");
        }
    }

    [Test]
    public void Unanswered_arp_and_broadcasts_are_dropped_and_counted()
    {
        var pool = new PacketPool();
        var h1 = Host("h1", pool);
        var h2 = Host("h2", pool);
        Assert.That(CreateOverlay(h1, "198.18.0.1", _map, out var o1, out _).IsOk, Is.True);
        Assert.That(CreateOverlay(h2, "198.18.0.2", _map, out _, out _).IsOk, Is.True);
        var (a, _) = Vnic(h1, "a0", 0x02000000000A);
        var (_, bSink) = Vnic(h2, "b0", 0x02000000000B);
        var arp = new byte[60];
        EthernetView.WriteHeader(arp, MacAddress.Broadcast, a.MacAddress, EtherType.Arp);
        ArpView.TryWrite(arp.AsSpan(14), ArpView.OpRequest, a.MacAddress, 0x0A01000A, MacAddress.Zero, 0x0A010063);
        Send(pool, a, arp);
        var bcast = new byte[60];
        EthernetView.WriteHeader(bcast, MacAddress.Broadcast, a.MacAddress, 0x88B5);
        Send(pool, a, bcast);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bSink.Frames, Is.Empty);
            Assert.That(o1!.OverlayStats.LookupDrop, Is.EqualTo(2));
            Assert.That(o1.OverlayStats.Encap, Is.Zero);
        }
    }

    [Test]
    public void Dhcp_broadcast_goes_to_the_dhcp_proxy_mac_on_its_host()
    {
        var pool = new PacketPool();
        var h1 = Host("h1", pool);
        var h2 = Host("h2", pool);
        Assert.That(CreateOverlay(h1, "198.18.0.1", _map, out _, out _).IsOk, Is.True);
        Assert.That(CreateOverlay(h2, "198.18.0.2", _map, out var o2, out _).IsOk, Is.True);
        var (_, aSink) = Vnic(h1, "a0", 0x02000000000A);
        var (b, _) = Vnic(h2, "b0", 0x02000000000B);
        var frame = new byte[14 + 20 + 8 + DhcpView.OptionsOffset + 4];
        EthernetView.WriteHeader(frame, MacAddress.Broadcast, b.MacAddress, EtherType.Ipv4);
        frame[14] = 0x45;
        frame[14 + 9] = IpProtocol.Udp;
        frame[14 + 20 + 1] = 68;
        frame[14 + 20 + 3] = 67;
        DhcpView.Write(frame.AsSpan(14 + 28), DhcpView.BootRequest, DhcpOption.Discover, 9, b.MacAddress, 0, []);
        Send(pool, b, frame);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(aSink.Frames, Has.Count.EqualTo(1), "the discover reached the dhcp-proxy MAC");
            Assert.That(MacAddress.Read(aSink.Frames[0]), Is.EqualTo(new MacAddress(0x02000000000A)), "rewritten to unicast");
            Assert.That(aSink.Frames[0].AsSpan(14).ToArray(), Is.EqualTo(frame.AsSpan(14).ToArray()), "the client's own message");
            Assert.That(o2!.OverlayStats.Encap, Is.EqualTo(1));
        }
    }

    [Test]
    public void Bad_mapping_file_creates_no_overlay_and_says_why()
    {
        var pool = new PacketPool();
        var h1 = Host("h1", pool);
        File.WriteAllText(_map, """{ "02:00:00:00:00:0a": { "ip": "198.18.0.300", "port": 4789 } }""");
        var s = CreateOverlay(h1, "198.18.0.1", _map, out var overlay, out string? failed);
        var why = OverlayFilesSearch.Plugin.Explain!(new Dictionary<string, string> { ["files/config"] = _map });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Code, Is.EqualTo(DladmStatus.BadVal));
            Assert.That(failed, Is.EqualTo("files/config"));
            Assert.That(overlay, Is.Null);
            Assert.That(h1.Find("tenant0"), Is.Null);
            Assert.That(_net, Is.Empty, "no underlay was opened");
            Assert.That(why, Is.EqualTo($"{_map}: entry \"02:00:00:00:00:0a\": \"ip\" is not an IP address: \"198.18.0.300\""));
        }
    }

    [Test]
    public void Relative_mapping_path_is_refused()
    {
        var h1 = Host("h1", new PacketPool());
        var s = CreateOverlay(h1, "198.18.0.1", "tenant.json", out _, out string? failed);
        var why = OverlayFilesSearch.Plugin.Explain!(new Dictionary<string, string> { ["files/config"] = "tenant.json" });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Code, Is.EqualTo(DladmStatus.BadVal));
            Assert.That(failed, Is.EqualTo("files/config"));
            Assert.That(why, Does.StartWith("tenant.json: not an absolute path"));
        }
    }

    [Test]
    public void Modify_overlay_sets_entries_before_the_files()
    {
        var h1 = Host("h1", new PacketPool());
        Assert.That(CreateOverlay(h1, "198.18.0.1", _map, out var o1, out _).IsOk, Is.True);
        var elsewhere = new UnderlayEndpoint(IpAddress.V4(0xC6120009), 4789);
        var files = (OverlayFilesSearch)o1!.Search;
        Assert.That(h1.ModifyOverlay("tenant0", t => { t.Set(new MacAddress(0x02000000000B), elsewhere); return DlStatus.Ok; }).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(files.Lookup(new MacAddress(0x02000000000B), out var t), Is.EqualTo(OverlayLookupStatus.Found));
            Assert.That(t, Is.EqualTo(elsewhere));
            Assert.That(files.Entries[1], Is.EqualTo((new MacAddress(0x02000000000B), elsewhere)));
        }
        Assert.That(h1.ModifyOverlay("tenant0", t => t.Delete(new MacAddress(0x02000000000B)) ? DlStatus.Ok : DladmStatus.NotFound).IsOk, Is.True);
        files.Lookup(new MacAddress(0x02000000000B), out var back);
        Assert.That(back, Is.EqualTo(new UnderlayEndpoint(IpAddress.V4(0xC6120002), 4789)), "the file's entry again");
    }
}
