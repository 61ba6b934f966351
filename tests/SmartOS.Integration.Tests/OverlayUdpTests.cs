using System.Diagnostics;

namespace SmartOS.Integration.Tests;

/// <summary>
/// Overlays over the real-time UDP underlay (vnic/UdpUnderlay.cs): `smartos boot` daemons, each in
/// a network namespace of the test's own, carry a tenant network between their zones over real
/// VXLAN datagrams, and a Linux vxlan device speaks with a zone on an overlay. The namespaces are
/// joined by veth pairs created inside them; only 198.18.0.0/15 is used on the underlay. Run only as
/// root with ip(8); otherwise ignored, with the reason.
/// </summary>
[NonParallelizable]
public class OverlayUdpTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);
    private const string Vnid = "5005";

    private string _dir = "";
    private readonly List<NetNs> _namespaces = [];
    private readonly List<Process> _processes = [];

    [SetUp]
    public void MakeDirectory() => _dir = Directory.CreateTempSubdirectory("smartos-ovl-udp-").FullName;

    [TearDown]
    public void Cleanup()
    {
        try
        {
            foreach (var p in _processes)
            {
                LinuxNet.Kill(p);
                p.Dispose();
            }
            Directory.Delete(_dir, recursive: true);
        }
        finally
        {
            foreach (var ns in _namespaces) ns.Dispose();
        }
    }

    private static string SmartosDll => Path.Combine(AppContext.BaseDirectory, "smartos.dll");
    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    private NetNs Namespace()
    {
        var ns = new NetNs();
        _namespaces.Add(ns);
        return ns;
    }

    private Process Start(string file, params string[] args)
    {
        var p = LinuxNet.Start(file, args);
        _processes.Add(p);
        return p;
    }

    private static (int Code, string Out, string Err) Smartos(string root, params string[] args)
        => LinuxNet.Run(Dotnet, [SmartosDll, "--root", root, .. args]);

    private static string Ok(string root, params string[] args)
    {
        var r = Smartos(root, args);
        Assert.That(r.Code, Is.Zero, $"{string.Join(' ', args)}: {r.Err}{r.Out}");
        return r.Out;
    }

    /// <summary>Joins two namespaces with a veth pair made inside the first, the peer moved into the second.</summary>
    private static void Veth(NetNs a, string aName, string aAddress, NetNs b, string bName, string bAddress)
    {
        LinuxNet.Must("ip", "-n", a.Name, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name);
        LinuxNet.Must("ip", "-n", a.Name, "addr", "add", aAddress + "/24", "dev", aName);
        LinuxNet.Must("ip", "-n", b.Name, "addr", "add", bAddress + "/24", "dev", bName);
        LinuxNet.Must("ip", "-n", a.Name, "link", "set", aName, "up");
        LinuxNet.Must("ip", "-n", b.Name, "link", "set", bName, "up");
    }

    /// <summary>Boots a daemon inside <paramref name="ns"/> (bounded by timeout(1)) and waits for it.</summary>
    private string Boot(NetNs ns, string name)
    {
        string root = Path.Combine(_dir, name);
        var daemon = Start("ip", "netns", "exec", ns.Name, "timeout", "-s", "KILL", "240", Dotnet, SmartosDll, "boot", "--root", root, "--nics", "1");
        var line = daemon.StandardOutput.ReadLineAsync();
        Assert.That(line.Wait(s_wait), Is.True, $"the daemon {name} did not come up");
        Assert.That(line.Result, Does.Contain("listening on"), () => daemon.HasExited ? daemon.StandardError.ReadToEnd() : "no listening line");
        return root;
    }

    private string Mapping(string json)
    {
        string path = Path.Combine(_dir, "tenant.json");
        File.WriteAllText(path, json);
        return path;
    }

    /// <summary>A files overlay listening on <paramref name="listen"/>, a VNIC with <paramref name="mac"/>
    /// on it, and a zone with <paramref name="address"/>/24 on that VNIC.</summary>
    private static void TenantZone(string root, string listen, string map, string mac, string zone, string address)
    {
        Ok(root, "dladm", "create-overlay", "-t", "-e", "vxlan", "-s", "files", "-v", Vnid, "-p", $"vxlan/listen_ip={listen},files/config={map}", "tenant0");
        Ok(root, "dladm", "create-vnic", "-t", "-l", "tenant0", "-m", mac, zone + "0");
        Ok(root, "zonecfg", "-z", zone, $"create; set zonepath=/zones/{zone}; add net; set physical={zone}0; set allowed-address={address}/24; end");
        Ok(root, "zoneadm", "-z", zone, "install");
        Ok(root, "zoneadm", "-z", zone, "boot");
    }

    /// <summary>Pings from a zone until one reply comes back, at most ten tries.</summary>
    private static bool ZoneReaches(string root, string zone, string address)
    {
        for (int i = 0; i < 10; i++)
        {
            if (Smartos(root, "zlogin", zone, "ping", address, "1").Out.Contains("is alive", StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private static long Kstat(string root, string name)
    {
        string line = Ok(root, "kstat", "-p", name).Trim();
        return long.Parse(line[(line.IndexOf('\t') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public void Two_daemons_in_two_namespaces_carry_a_tenant_network_over_udp()
    {
        string? missing = LinuxNet.MissingPrerequisite("ss", "python3");
        if (missing != null) Assert.Ignore(missing);
        var nsA = Namespace();
        var nsB = Namespace();
        Veth(nsA, "ova", "198.18.50.1", nsB, "ovb", "198.18.50.2");
        string map = Mapping("""
            {
                "2:0:0:0:a:1": { "ip": "198.18.50.1", "port": 4789, "arp": "192.168.70.1" },
                "2:0:0:0:b:1": { "ip": "198.18.50.2", "port": 4789, "arp": "192.168.70.2" }
            }
            """);
        string rootA = Boot(nsA, "a");
        string rootB = Boot(nsB, "b");
        TenantZone(rootA, "198.18.50.1", map, "2:0:0:0:a:1", "red", "192.168.70.1");
        TenantZone(rootB, "198.18.50.2", map, "2:0:0:0:b:1", "blue", "192.168.70.2");

        Assert.That(ZoneReaches(rootA, "red", "192.168.70.2"), Is.True, "red never reached blue");
        var ping = Smartos(rootA, "zlogin", "red", "ping", "-s", "-I", "0.2", "192.168.70.2", "56", "3");
        var server = Start(Dotnet, SmartosDll, "--root", rootB, "zlogin", "blue", "iperf", "-s", "-1");
        Thread.Sleep(1000); // the server's listen; the client retries its connect for a while anyway
        var tcp = Smartos(rootA, "zlogin", "red", "iperf", "-c", "192.168.70.2", "-t", "2");
        var sockets = nsA.Exec("ss", "-uln");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ping.Out, Does.Contain("3 packets transmitted, 3 packets received"), ping.Err + ping.Out);
            Assert.That(tcp.Code, Is.Zero, tcp.Err + tcp.Out);
            Assert.That(tcp.Out, Does.Contain("receiver").And.Contain("iperf Done."));
            Assert.That(sockets.Out, Does.Contain("198.18.50.1:4789"), "the daemon's underlay is a Linux UDP socket");
            Assert.That(Kstat(rootA, "overlay:0:tenant0:encap"), Is.GreaterThan(0));
            Assert.That(Kstat(rootB, "overlay:0:tenant0:decap"), Is.GreaterThan(0));
            Assert.That(Kstat(rootA, "overlay:0:tenant0:proxy_answers"), Is.GreaterThan(0), "red's ARP was answered from the file");
        }
        Assert.That(server.WaitForExit(s_wait), Is.True, "the one-off iperf server finished");

        // A listen port a Linux program holds is refused, naming the endpoint; nothing is created.
        var holder = Start("ip", "netns", "exec", nsA.Name, "timeout", "-s", "KILL", "30", "python3", "-c",
            "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('198.18.50.1', 4790)); print('bound', flush=True); time.sleep(25)");
        Assert.That(holder.StandardOutput.ReadLineAsync().Wait(s_wait), Is.True, "the port holder started");
        var busy = Smartos(rootA, "dladm", "create-overlay", "-t", "-e", "vxlan", "-s", "files", "-v", "6006",
            "-p", $"vxlan/listen_ip=198.18.50.1,vxlan/listen_port=4790,files/config={map}", "other0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(busy.Code, Is.Not.Zero);
            Assert.That(busy.Err, Does.Contain("overlay creation failed: vxlan/listen_ip 198.18.50.1 port 4790: address already in use"));
            Assert.That(Smartos(rootA, "dladm", "show-link", "other0").Code, Is.Not.Zero);
        }
    }

    /// <summary>Reads tshark's stderr until it says it is capturing (bounded in lines and time).</summary>
    private static bool WaitForCapture(Process tshark)
    {
        for (int i = 0; i < 20; i++)
        {
            var line = tshark.StandardError.ReadLineAsync();
            if (!line.Wait(s_wait) || line.Result == null) return false;
            if (line.Result.Contains("Capturing on", StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>A daemon in one namespace with zone red (192.168.71.1) on a files overlay, and a Linux
    /// vxlan device vx0 (192.168.71.2) on the same VNI in another, joined by a veth pair (ova, ovl);
    /// returns once the zone has reached vx0.</summary>
    private (NetNs Linux, string Root) ZoneBesideLinuxVxlan()
    {
        var nsA = Namespace();
        var nsL = Namespace();
        Veth(nsA, "ova", "198.18.51.1", nsL, "ovl", "198.18.51.2");
        // Linux's side of the tenant network: vx0 on VNI 5005, sending to the daemon's address.
        LinuxNet.Must("ip", "-n", nsL.Name, "link", "add", "vx0", "type", "vxlan", "id", Vnid, "dstport", "4789",
            "remote", "198.18.51.1", "local", "198.18.51.2", "dev", "ovl");
        LinuxNet.Must("ip", "-n", nsL.Name, "link", "set", "vx0", "address", "02:00:00:00:0c:01", "mtu", "1400");
        LinuxNet.Must("ip", "-n", nsL.Name, "addr", "add", "192.168.71.2/24", "dev", "vx0");
        LinuxNet.Must("ip", "-n", nsL.Name, "link", "set", "vx0", "up");
        // The files plugin answers ARP only for what its file maps (overlay_files(5)) and carries no
        // ARP between hosts, so Linux is told the zone's MAC as varpd's peers are.
        LinuxNet.Must("ip", "-n", nsL.Name, "neigh", "add", "192.168.71.1", "lladdr", "02:00:00:00:0a:01", "dev", "vx0", "nud", "permanent");
        string map = Mapping("""
            {
                "2:0:0:0:a:1": { "ip": "198.18.51.1", "port": 4789, "arp": "192.168.71.1" },
                "2:0:0:0:c:1": { "ip": "198.18.51.2", "port": 4789, "arp": "192.168.71.2" }
            }
            """);
        string rootA = Boot(nsA, "a");
        TenantZone(rootA, "198.18.51.1", map, "2:0:0:0:a:1", "red", "192.168.71.1");
        Assert.That(ZoneReaches(rootA, "red", "192.168.71.2"), Is.True, "the zone never reached Linux's vxlan device");
        return (nsL, rootA);
    }

    [Test]
    public void A_linux_vxlan_device_exchanges_ping_with_a_zone_and_tshark_decodes_the_vni()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping", "tshark");
        if (missing != null) Assert.Ignore(missing);
        var (nsL, rootA) = ZoneBesideLinuxVxlan();

        // The capture runs while both sides ping: six datagrams, whichever way they go.
        string pcap = Path.Combine(_dir, "underlay.pcap");
        var capture = Start("ip", "netns", "exec", nsL.Name, "timeout", "-s", "KILL", "90",
            "tshark", "-i", "ovl", "-f", "udp port 4789", "-c", "6", "-a", "duration:80", "-w", pcap);
        Assert.That(WaitForCapture(capture), Is.True, "tshark did not start capturing");
        var linux = nsL.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-w", "10", "192.168.71.1");
        var zone = Smartos(rootA, "zlogin", "red", "ping", "-s", "-I", "0.2", "192.168.71.2", "56", "3");
        Assert.That(capture.WaitForExit(s_wait), Is.True, "tshark finished");
        var decoded = nsL.Exec("tshark", "-r", pcap, "-d", "udp.port==4789,vxlan", "-T", "fields", "-e", "vxlan.vni", "-e", "eth.dst", "-e", "ip.src", "-e", "udp.checksum");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(linux.Out, Does.Contain("3 received"), linux.Err + linux.Out);
            Assert.That(zone.Out, Does.Contain("3 packets transmitted, 3 packets received"), zone.Err + zone.Out);
            Assert.That(decoded.Code, Is.Zero, decoded.Err);
            string[] rows = decoded.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(rows, Has.Length.EqualTo(6), decoded.Out);
            Assert.That(rows, Has.All.StartWith(Vnid + "\t"), "every datagram decodes as VXLAN with VNI " + Vnid);
            Assert.That(decoded.Out, Does.Contain("02:00:00:00:0a:01").Or.Contain("02:00:00:00:0c:01"), "inner frames between the zone and vx0");
            // RFC 7348 section 5: no outer UDP checksum over IPv4, from the daemon as from Linux.
            Assert.That(rows.Where(r => r.Contains("\t198.18.51.1,", StringComparison.Ordinal)), Is.Not.Empty.And.All.EndsWith("\t0x0000"), decoded.Out);
        }
    }

    /// <summary>One real iperf3 client run in <paramref name="ns"/> against the zone's iperf server;
    /// returns the bytes iperf3's receiver counted (its JSON's end.sum_received).</summary>
    private static long LinuxIperf3ToZone(NetNs ns, params string[] options)
    {
        var r = ns.Exec(["iperf3", "-c", "192.168.71.1", "-t", "2", "-J", "--connect-timeout", "10000", .. options]);
        Assert.That(r.Code, Is.Zero, r.Err + r.Out);
        using var json = System.Text.Json.JsonDocument.Parse(r.Out);
        Assert.That(json.RootElement.TryGetProperty("end", out var end) && end.TryGetProperty("sum_received", out var sum), Is.True, r.Out);
        return json.RootElement.GetProperty("end").GetProperty("sum_received").GetProperty("bytes").GetInt64();
    }

    [Test]
    public void Iperf3_runs_both_ways_between_a_linux_vxlan_device_and_a_zone_and_tshark_decodes_the_vni()
    {
        string? missing = LinuxNet.MissingPrerequisite("iperf3", "tshark", "ethtool");
        if (missing != null) Assert.Ignore(missing);
        var (nsL, rootA) = ZoneBesideLinuxVxlan();
        // Linux leaves the inner TCP checksum of a vxlan device's frames to the NIC (checksum
        // offload); over veth no NIC fills it in, and the daemon's socket would hand the zone
        // segments with a partial checksum, which its stack drops. A machine's real NIC computes it.
        LinuxNet.Must("ip", "netns", "exec", nsL.Name, "ethtool", "-K", "vx0", "tx", "off");

        // The capture takes the first 200 datagrams of the transfers, whichever way they go.
        string pcap = Path.Combine(_dir, "iperf.pcap");
        var capture = Start("ip", "netns", "exec", nsL.Name, "timeout", "-s", "KILL", "90",
            "tshark", "-i", "ovl", "-f", "udp port 4789", "-c", "200", "-a", "duration:60", "-w", pcap);
        Assert.That(WaitForCapture(capture), Is.True, "tshark did not start capturing");
        long encapBefore = Kstat(rootA, "overlay:0:tenant0:encap");
        long decapBefore = Kstat(rootA, "overlay:0:tenant0:decap");
        // The zone's server serves both runs; it is ended with the daemon at the test's cleanup.
        var server = Start(Dotnet, SmartosDll, "--root", rootA, "zlogin", "red", "iperf", "-s");
        Assert.That(server.StandardOutput.ReadLineAsync().Wait(s_wait), Is.True, "the zone's iperf server started");
        long toZone = LinuxIperf3ToZone(nsL);
        long fromZone = LinuxIperf3ToZone(nsL, "-R");
        TestContext.Out.WriteLine($"iperf3 over VXLAN, 2 s each: Linux -> zone {toZone} bytes, zone -> Linux {fromZone} bytes");
        Assert.That(capture.WaitForExit(s_wait), Is.True, "tshark finished");
        var decoded = nsL.Exec("tshark", "-r", pcap, "-d", "udp.port==4789,vxlan", "-T", "fields", "-e", "vxlan.vni", "-e", "ip.src", "-e", "tcp.dstport");
        using (Assert.EnterMultipleScope())
        {
            // At least a megabyte each way: far more than a handshake, whatever the machine's load.
            Assert.That(toZone, Is.GreaterThan(1_000_000), "bytes Linux sent through vx0 that the zone received");
            Assert.That(fromZone, Is.GreaterThan(1_000_000), "bytes the zone sent that vx0 received (-R)");
            Assert.That(Kstat(rootA, "overlay:0:tenant0:decap") - decapBefore, Is.GreaterThan(toZone / 1400), "the zone's frames came through the overlay");
            Assert.That(Kstat(rootA, "overlay:0:tenant0:encap") - encapBefore, Is.GreaterThan(fromZone / 1400));
            Assert.That(decoded.Code, Is.Zero, decoded.Err);
            string[] rows = decoded.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(rows, Has.Length.EqualTo(200), "the capture filled");
            Assert.That(rows, Has.All.StartWith(Vnid + "\t"), "every datagram decodes as VXLAN with VNI " + Vnid);
            Assert.That(rows, Has.Some.Contains("\t5201"), "iperf3's TCP inside the VXLAN datagrams");
        }
    }
}
