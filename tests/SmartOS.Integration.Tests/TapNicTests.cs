using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Integration.Tests;

/// <summary>
/// A real-time host whose e1000g0 is a TAP device, against real Linux tools in a namespace of the
/// test's own (issue 6). The TAP is created in the root namespace by our descriptor and moved at
/// once into the test namespace, where its address (198.18.0.1/24) is configured; the descriptor
/// keeps carrying its frames. Run only as root with /dev/net/tun and ip(8); otherwise ignored, with
/// the reason.
/// </summary>
[NonParallelizable]
public class TapNicTests
{
    private static readonly TimeSpan s_wait = RealTimeHost.Wait;
    private const string LinuxAddress = "198.18.0.1";

    private NetNs? _ns;
    private TapNic? _tap;
    private RealTimeHost? _rt;

    private Host Host => _rt!.Host;

    [SetUp]
    public void BootHostOnTap()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping");
        if (missing != null) Assert.Ignore(missing);

        _ns = new NetNs();
        string tapName = "smt" + LinuxNet.Suffix();
        _tap = TapNic.TryOpen(tapName, out string? error);
        Assert.That(_tap, Is.Not.Null, error);
        LinuxNet.Must("ip", "link", "set", tapName, "netns", _ns.Name);
        LinuxNet.Must("ip", "-n", _ns.Name, "addr", "add", LinuxAddress + "/24", "dev", tapName);
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", tapName, "up");

        _rt = new RealTimeHost(nics: 1);
        var phys = (PhysLink)Host.Mac.Find("e1000g0")!;
        _rt.OnLoop(() => { _tap.Start(phys, _rt.Driver); return 0; });
    }

    [TearDown]
    public void Teardown()
    {
        try
        {
            _rt?.Dispose();
            _tap?.Dispose();
        }
        finally
        {
            _ns?.Dispose();
        }
    }

    private (int Code, string Out, string Err) Sh(params string[] argv) => _rt!.Sh(argv);
    private (Task<int> Task, CancellationTokenSource Cts, SmartOS.Cli.OutputCapture Out, SmartOS.Cli.OutputCapture Err) Begin(params string[] argv) => _rt!.Begin(argv);
    private string Ok(params string[] argv) => _rt!.Ok(argv);

    private void BootZone(string address)
    {
        Ok("dladm", "create-vnic", "-t", "-l", "e1000g0", "web0");
        Ok("zonecfg", "-z", "web", $"create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address={address}/24; end");
        Ok("zoneadm", "-z", "web", "install");
        Ok("zoneadm", "-z", "web", "boot");
    }

    /// <summary>Pings from the namespace until one reply comes back (the address passes duplicate
    /// detection first), at most five tries of a second each.</summary>
    private void WaitReachable(string address)
    {
        for (int i = 0; i < 5; i++)
        {
            if (_ns!.Exec("ping", "-n", "-c", "1", "-W", "1", address).Code == 0) return;
        }
        Assert.Fail($"{address} never answered a ping from the namespace");
    }

    private long Kstat(string link, string statistic)
    {
        string line = Ok("kstat", "-p", $"link:0:{link}:{statistic}").Trim();
        return long.Parse(line[(line.IndexOf('\t') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public void Linux_ping_reaches_a_zone_through_the_tap_nic_and_the_zone_pings_back()
    {
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");

        // -w: keep sending until three replies came (a loaded machine may drop one on the TAP's way), at most 10 s.
        var linux = _ns!.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-w", "10", "198.18.0.2");
        var zone = Sh("zlogin", "web", "ping", "-s", "-I", "0.2", LinuxAddress, "56", "3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(linux.Code, Is.Zero, linux.Err + linux.Out);
            Assert.That(linux.Out, Does.Contain("3 received"));
            Assert.That(zone.Code, Is.Zero, zone.Err + zone.Out);
            Assert.That(zone.Out, Does.Contain($"from {LinuxAddress}"));
        }
    }

    [Test]
    public void Linux_ping_reaches_the_global_zone_stack_on_the_phys()
    {
        Ok("ipadm", "create-if", "-t", "e1000g0");
        Ok("ipadm", "create-addr", "-t", "-T", "static", "-a", "198.18.0.3/24", "e1000g0/v4");
        WaitReachable("198.18.0.3");

        var linux = _ns!.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.3");
        Assert.That(linux.Out, Does.Contain("3 received"), linux.Err + linux.Out);
    }

    [Test]
    public void Frames_from_linux_show_up_in_snoop_and_kstat_on_the_phys()
    {
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        long before = Kstat("e1000g0", "ipackets");

        var snoop = Begin("snoop", "-d", "e1000g0", "-c", "2", "icmp");
        var linux = _ns!.Exec("ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.2");
        Assert.That(snoop.Task.Wait(s_wait), Is.True, "snoop saw fewer than two ICMP frames");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(linux.Code, Is.Zero, linux.Err + linux.Out);
            Assert.That(snoop.Task.Result, Is.Zero, snoop.Err.ToString());
            Assert.That(Words(snoop.Out.ToString()), Does.Contain($"{LinuxAddress} -> 198.18.0.2 ICMP Echo request"));
            Assert.That(Kstat("e1000g0", "ipackets"), Is.GreaterThanOrEqualTo(before + 2));
        }
    }

    [Test]
    public void A_zone_is_unreachable_once_the_tap_nic_is_detached()
    {
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        var phys = (PhysLink)Host.Mac.Find("e1000g0")!;
        Assert.That(_rt!.OnLoop(() => { phys.DetachBackend(); return phys.State; }), Is.EqualTo("down"));

        var linux = _ns!.Exec("ping", "-n", "-c", "1", "-W", "1", "198.18.0.2");
        Assert.That(linux.Code, Is.Not.Zero, linux.Out);
    }

    /// <summary>Real Linux curl fetches a page from the zone's httpd through the TAP NIC.</summary>
    [Test]
    public void Linux_curl_gets_a_page_from_a_zone_httpd()
    {
        string? missing = LinuxNet.MissingPrerequisite("curl");
        if (missing != null) Assert.Ignore(missing);
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        var httpd = Begin("zlogin", "web", "httpd");
        try
        {
            var curl = _ns!.Exec("curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "http://198.18.0.2/");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(curl.Code, Is.Zero, curl.Err);
                Assert.That(curl.Out, Does.Contain("<h1>It works!</h1>"));
                Assert.That(curl.Out, Does.EndWith("\n200"));
            }
        }
        finally
        {
            httpd.Cts.Cancel();
            httpd.Task.Wait(s_wait);
        }
    }

    /// <summary>The real iperf3 client runs a TCP test against the zone's iperf server.</summary>
    [Test]
    public void Linux_iperf3_client_runs_against_a_zone_iperf_server()
    {
        WithZoneIperfServer(_ =>
        {
            var client = _ns!.Exec("iperf3", "-c", "198.18.0.2", "-t", "2", "-b", "50M");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(client.Code, Is.Zero, client.Err + client.Out);
                Assert.That(client.Out, Does.Contain("sender").And.Contain("receiver"));
            }
        });
    }

    /// <summary>Boots the zone, starts its `iperf -s` and runs <paramref name="body"/> with the
    /// server's stderr reader; the server is stopped afterwards. Ignored without iperf3.</summary>
    private void WithZoneIperfServer(Action<Func<string>> body)
    {
        string? missing = LinuxNet.MissingPrerequisite("iperf3");
        if (missing != null) Assert.Ignore(missing);
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        var server = Begin("zlogin", "web", "iperf", "-s");
        try
        {
            body(() => _rt!.OnLoop(() => server.Err.ToString()));
        }
        finally
        {
            server.Cts.Cancel();
            server.Task.Wait(s_wait);
        }
    }

    /// <summary>The real iperf3 with two parallel streams against the zone's server, both ways; two
    /// parallel UDP streams are refused with a message.</summary>
    [Test]
    public void Linux_iperf3_with_parallel_streams_runs_against_a_zone_iperf_server()
    {
        WithZoneIperfServer(serverErr =>
        {
            var up = _ns!.Exec("iperf3", "-c", "198.18.0.2", "-t", "1", "-P", "2", "-b", "20M");
            var down = _ns.Exec("iperf3", "-c", "198.18.0.2", "-t", "1", "-P", "2", "-b", "20M", "-R");
            string quiet = serverErr();
            var udp = _ns.Exec("iperf3", "-c", "198.18.0.2", "-t", "1", "-P", "2", "-u");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(up.Code, Is.Zero, up.Err + up.Out);
                Assert.That(up.Out, Does.Contain("[SUM]").And.Contain("receiver"));
                Assert.That(down.Code, Is.Zero, down.Err + down.Out);
                Assert.That(down.Out, Does.Contain("[SUM]").And.Contain("receiver"));
                Assert.That(quiet, Is.Empty);
                // Parallel UDP is refused: the client hears of it at once, the server says why.
                Assert.That(udp.Code, Is.Not.Zero, udp.Out);
                Assert.That(serverErr(), Does.Contain("iperf: error - 2 parallel UDP streams (-P) are not supported; run one stream per test"));
            }
        });
    }

    /// <summary>The zone's iperf client runs a TCP test against the real iperf3 server.</summary>
    [Test]
    public void Zone_iperf_client_runs_against_a_linux_iperf3_server()
    {
        var r = ZoneIperfAgainstLinux("-t", "2", "-b", "50M");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err + r.Out);
            Assert.That(r.Out, Does.Contain("sender").And.Contain("receiver").And.Contain("iperf Done."));
        }
    }

    /// <summary>The zone's iperf client with two parallel streams against the real iperf3 server.</summary>
    [Test]
    public void Zone_iperf_client_runs_parallel_streams_against_a_linux_iperf3_server()
    {
        var r = ZoneIperfAgainstLinux("-t", "1", "-P", "2", "-b", "20M");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err + r.Out);
            Assert.That(r.Out, Does.Contain("[  7]").And.Contain("[SUM]").And.Contain("iperf Done."));
        }
    }

    /// <summary>Boots the zone and runs its iperf client against a one-off real iperf3 server in the
    /// namespace (ended afterwards). Ignored without iperf3.</summary>
    private (int Code, string Out, string Err) ZoneIperfAgainstLinux(params string[] options)
    {
        string? missing = LinuxNet.MissingPrerequisite("iperf3");
        if (missing != null) Assert.Ignore(missing);
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        using var server = _ns!.StartIn("iperf3", "-s", "-1", "-B", LinuxAddress);
        try
        {
            Thread.Sleep(500);
            return Sh(["zlogin", "web", "iperf", "-c", LinuxAddress, .. options]);
        }
        finally
        {
            LinuxNet.Kill(server);
        }
    }

    /// <summary>tshark on the Linux end of the TAP and snoop on the phys see the same exchange.</summary>
    [Test]
    public void Tshark_on_the_linux_side_sees_the_frames_snoop_sees_on_the_phys()
    {
        string? missing = LinuxNet.MissingPrerequisite("tshark");
        if (missing != null) Assert.Ignore(missing);
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");
        string tap = _tap!.Name;

        var tshark = _ns!.StartIn("tshark", "-l", "-n", "-i", tap, "-c", "4", "-f", "icmp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type");
        var capturing = Task.Run(() =>
        {
            for (string? l; (l = tshark.StandardError.ReadLine()) != null;)
            {
                if (l.Contains("Capturing on", StringComparison.Ordinal)) return true;
            }
            return false;
        });
        Assert.That(capturing.Wait(s_wait) && capturing.Result, Is.True, "tshark did not start capturing");
        // tshark may miss the first frames after it says it is capturing, so ping one echo at a time
        // until it has four frames; snoop runs throughout, and tshark's four frames must be four
        // consecutive frames of snoop's (tshark may stop between a request and its reply).
        var snoop = Begin("snoop", "-d", "e1000g0", "icmp");
        var seen = tshark.StandardOutput.ReadToEndAsync();
        for (int i = 0; i < 8 && !tshark.HasExited; i++)
        {
            _ns.Exec("ping", "-n", "-c", "1", "-W", "1", "198.18.0.2");
            tshark.WaitForExit(200);
        }
        bool tsharkDone = tshark.WaitForExit(s_wait);
        if (!tsharkDone) LinuxNet.Kill(tshark);
        _rt!.Driver.Invoke(snoop.Cts.Cancel);
        Assert.That(snoop.Task.Wait(s_wait), Is.True, "snoop did not stop");
        var linux = (seen.Wait(s_wait) ? seen.Result : "").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('\t'))
            .Select(f => $"{f[0]} -> {f[1]} ICMP Echo {(f[2] == "8" ? "request" : "reply")}")
            .ToArray();
        // snoop pads its address columns (snoop.c's "%12s -> %-12s"): compare words, not spacing.
        var snoopLines = snoop.Out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Words).ToArray();
        Assert.That(tsharkDone, Is.True, "tshark saw fewer than four ICMP frames");
        Assert.That(linux, Has.Length.EqualTo(4));
        Assert.That(snoopLines, Has.Length.GreaterThanOrEqualTo(4));
        int at = Enumerable.Range(0, snoopLines.Length - 3)
            .FirstOrDefault(k => Enumerable.Range(0, 4).All(i => snoopLines[k + i].Contains(linux[i], StringComparison.Ordinal)), -1);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(at, Is.Not.EqualTo(-1), () => "tshark's frames are not consecutive frames of snoop's:\n" + string.Join('\n', linux) + "\n--\n" + string.Join('\n', snoopLines));
            Assert.That(linux.Count(l => l.StartsWith(LinuxAddress + " -> 198.18.0.2 ICMP Echo request", StringComparison.Ordinal)), Is.EqualTo(2));
        }
        tshark.Dispose();
    }

    /// <summary>Real iperf3 at both ends: an lx zone's client through its VNIC, the phys and the TAP
    /// NIC to a server in the test namespace. Prints the rate it measured beside iperf3 between two
    /// Linux namespaces over a veth pair, in the same run (issue 6, "Speed").</summary>
    [Test]
    public void An_lx_zone_runs_iperf3_against_a_linux_server_through_the_tap_nic()
    {
        string? missing = LinuxNet.MissingPrerequisite("iperf3");
        if (missing != null) Assert.Ignore(missing);
        string zone = BootLxZone();
        try
        {
            var (code, output, receiver, mbps) = Iperf3From(zone);
            TestContext.Out.WriteLine($"iperf3 lx zone -> TAP NIC -> Linux: {receiver}");
            TestContext.Out.WriteLine($"iperf3 Linux -> veth -> Linux:      {VethRate()}");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(code, Is.Zero, output);
                Assert.That(mbps, Is.GreaterThan(0), receiver);
                // The lx zone's GSO frames are large sends through its VNIC, and the TAP NIC hands
                // them to Linux whole (MacLayer.cs rule 9).
                Assert.That(Host.Mac.Find("e1000g0")!.Stats.LsoOut, Is.Positive, "the lx zone's large sends left whole");
            }
        }
        finally
        {
            Sh("zoneadm", "-z", zone, "halt");
        }
    }

    /// <summary>Linux to an lx zone, both ends real Linux stacks: Linux's TSO frames cross the TAP
    /// NIC whole with their checksums left pending (TapDevice.cs rule 6), and go on whole to the lx
    /// zone's TAP as GSO frames whose checksum Linux fills in (NEEDS_CSUM); 4 MiB arrive intact.</summary>
    [Test]
    public void Data_from_linux_reaches_an_lx_zone_whole_through_both_taps_intact()
    {
        string? missing = LinuxNet.MissingPrerequisite("python3");
        if (missing != null) Assert.Ignore(missing);
        string zone = BootLxZone();
        var data = new byte[4 << 20];
        new HostRandom(18).NextBytes(data);
        string expected = $"{data.Length} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data))}";
        string file = Path.Combine(Path.GetTempPath(), "smartos-tap-" + LinuxNet.Suffix());
        File.WriteAllBytes(file, data);
        try
        {
            WaitReachable("198.18.0.4");
            var nic = Host.Mac.Find("e1000g0")!;
            long whole = _tap!.WholeFrames, pending = _tap.PendingChecksumFrames, soft = nic.Stats.LsoSoft;
            using var sink = LinuxNet.Start("ip", "netns", "exec", LxZoneNetwork.NamespaceOf(zone), "python3", "-c", PythonSink, "198.18.0.4");
            try
            {
                if (sink.StandardOutput.ReadLine() != "ready") Assert.Fail("the lx zone's receiver did not start: " + sink.StandardError.ReadToEnd());
                var sent = _ns!.Exec("python3", "-c", PythonSource, file, "198.18.0.4", "7001");
                Assert.That(sink.WaitForExit(30_000), Is.True, "the lx zone's receiver never finished");
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(sent.Code, Is.Zero, sent.Err + sent.Out);
                    Assert.That(sink.StandardOutput.ReadToEnd().Trim(), Is.EqualTo(expected));
                    Assert.That(_tap.WholeFrames - whole, Is.Positive, "Linux's TSO frames crossed the TAP NIC whole");
                    Assert.That(_tap.PendingChecksumFrames - pending, Is.Positive, "their checksums were left pending");
                    Assert.That(nic.Stats.LsoSoft - soft, Is.Zero, "none was cut in software on the way to the lx zone's TAP");
                }
            }
            finally
            {
                LinuxNet.Kill(sink);
            }
        }
        finally
        {
            File.Delete(file);
            Sh("zoneadm", "-z", zone, "halt");
        }
    }

    /// <summary>The lx zone's TAP is a MAC client of its VNIC, so the VNIC's maxbw caps real Linux TCP.</summary>
    [Test]
    public void The_vnic_maxbw_caps_an_lx_zone_iperf3()
    {
        string? missing = LinuxNet.MissingPrerequisite("iperf3");
        if (missing != null) Assert.Ignore(missing);
        string zone = BootLxZone();
        try
        {
            Ok("dladm", "set-linkprop", "-t", "-p", "maxbw=20M", "lx0");
            var (code, output, receiver, mbps) = Iperf3From(zone);
            TestContext.Out.WriteLine($"iperf3 lx zone with maxbw=20M: {receiver}");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(code, Is.Zero, output);
                Assert.That(mbps, Is.InRange(5.0, 22.0), receiver);
            }
        }
        finally
        {
            Sh("zoneadm", "-z", zone, "halt");
        }
    }

    private string BootLxZone()
    {
        string zone = "lx" + LinuxNet.Suffix();
        Ok("dladm", "create-vnic", "-t", "-l", "e1000g0", "lx0");
        Ok("zonecfg", "-z", zone, "create; set zonepath=/zones/lx; set brand=lx; add net; set physical=lx0; set allowed-address=198.18.0.4/24; end");
        Ok("zoneadm", "-z", zone, "install");
        Ok("zoneadm", "-z", zone, "boot");
        return zone;
    }

    /// <summary>Runs a real iperf3 client in the lx zone against a one-off server in the namespace.</summary>
    private (int Code, string Output, string Receiver, double Mbps) Iperf3From(string zone)
    {
        using var server = _ns!.StartIn("iperf3", "-s", "-1", "-B", LinuxAddress);
        (int Code, string Out, string Err) client = (-1, "", "");
        for (int i = 0; i < 5 && client.Code != 0; i++)
        {
            if (i > 0) Thread.Sleep(200);
            client = Sh("zlogin", zone, "iperf3", "-c", LinuxAddress, "-t", "2", "-f", "m");
        }
        LinuxNet.Kill(server);
        string receiver = (client.Out.Split('\n').FirstOrDefault(l => l.Contains("receiver", StringComparison.Ordinal)) ?? "").Trim();
        var m = System.Text.RegularExpressions.Regex.Match(receiver, @"([0-9.]+) Mbits/sec");
        double mbps = m.Success ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return (client.Code, client.Err + client.Out, receiver, mbps);
    }

    /// <summary>iperf3 from a second namespace to the test namespace over a veth pair (the reference).</summary>
    private string VethRate()
    {
        using var other = new NetNs();
        LinuxNet.Must("ip", "-n", _ns!.Name, "link", "add", "vx", "type", "veth", "peer", "name", "vy", "netns", other.Name);
        LinuxNet.Must("ip", "-n", _ns.Name, "addr", "add", "198.18.6.1/24", "dev", "vx");
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", "vx", "up");
        LinuxNet.Must("ip", "-n", other.Name, "addr", "add", "198.18.6.2/24", "dev", "vy");
        LinuxNet.Must("ip", "-n", other.Name, "link", "set", "vy", "up");
        using var server = _ns.StartIn("iperf3", "-s", "-1", "-B", "198.18.6.1");
        (int Code, string Out, string Err) client = (-1, "", "");
        for (int i = 0; i < 5 && client.Code != 0; i++)
        {
            if (i > 0) Thread.Sleep(200);
            client = other.Exec("iperf3", "-c", "198.18.6.1", "-t", "2", "-f", "m");
        }
        LinuxNet.Kill(server);
        return (client.Out.Split('\n').FirstOrDefault(l => l.Contains("receiver", StringComparison.Ordinal)) ?? client.Err).Trim();
    }

    /// <summary>Linux's receiver: accepts one connection on 7001, reads to the end, prints the byte
    /// count and SHA-256 of what came. Prints "ready" once it listens.</summary>
    private const string PythonSink = """
        import socket, hashlib, sys
        l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((sys.argv[1], 7001)); l.listen(1); l.settimeout(40)
        print("ready", flush=True)
        c, _ = l.accept(); c.settimeout(40); h = hashlib.sha256(); n = 0
        while True:
            b = c.recv(1 << 20)
            if not b: break
            h.update(b); n += len(b)
        print(n, h.hexdigest(), flush=True)
        """;

    /// <summary>Linux's sender: connects to 7000 (retrying while the zone's listener starts), sends
    /// the file, half-closes and waits for the zone to close.</summary>
    private const string PythonSource = """
        import socket, sys, time
        d = open(sys.argv[1], "rb").read()
        for i in range(50):
            try:
                s = socket.create_connection((sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 7000), timeout=40); break
            except OSError:
                time.sleep(0.2)
        s.sendall(d); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
        """;

    /// <summary>With the TAP's offloads on (IFF_VNET_HDR, TSO and checksum offload), 4 MiB go each
    /// way intact: Linux's TSO frames reach the zone's stack whole (large receive), and the zone's
    /// large sends reach Linux's socket as GSO frames with their checksums.</summary>
    [Test]
    public void Data_crosses_a_tap_nic_with_offloads_both_ways_intact()
    {
        string? missing = LinuxNet.MissingPrerequisite("python3");
        if (missing != null) Assert.Ignore(missing);
        Assert.That(_tap!.Offload, Is.True, "TAP NICs open with the offloads");
        BootZone("198.18.0.2");
        WaitReachable("198.18.0.2");

        var data = new byte[4 << 20];
        new HostRandom(17).NextBytes(data);
        string expected = $"{data.Length} {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data))}";
        string file = Path.Combine(Path.GetTempPath(), "smartos-tap-" + LinuxNet.Suffix());
        File.WriteAllBytes(file, data);
        try
        {
            // Linux -> zone: the zone's nc -l writes what it reads to its stdout.
            var listener = Begin("zlogin", "web", "nc", "-l", "7000");
            var sent = _ns!.Exec("python3", "-c", PythonSource, file, "198.18.0.2");
            Assert.That(listener.Task.Wait(s_wait), Is.True, "the zone's nc -l never finished");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(sent.Code, Is.Zero, sent.Err + sent.Out);
                Assert.That(listener.Task.Result, Is.Zero, listener.Err.ToString());
                Assert.That(listener.Out.ToArray().AsSpan().SequenceEqual(data), Is.True, $"the zone got {listener.Out.ToArray().Length} bytes, not the 4 MiB sent");
                Assert.That(_tap.WholeFrames, Is.Positive, "Linux's TSO frames reached the zone's stack whole (large receive)");
            }

            // Zone -> Linux: the zone's nc sends its stdin to Linux's receiver.
            using var sink = _ns.StartIn("python3", "-c", PythonSink, LinuxAddress);
            try
            {
                if (sink.StandardOutput.ReadLine() != "ready") Assert.Fail("Linux's receiver did not start: " + sink.StandardError.ReadToEnd());
                using var stdin = new MemoryStream(data);
                var zone = _rt!.Begin(stdin, ["zlogin", "web", "nc", LinuxAddress, "7001"]);
                Assert.That(zone.Task.Wait(s_wait), Is.True, "the zone's nc never finished");
                Assert.That(sink.WaitForExit(30_000), Is.True, "Linux's receiver never finished");
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(zone.Task.Result, Is.Zero, zone.Err.ToString());
                    Assert.That(sink.StandardOutput.ReadToEnd().Trim(), Is.EqualTo(expected));
                    Assert.That(Host.Mac.Find("e1000g0")!.Stats.LsoOut, Is.Positive, "the zone's large sends went to Linux as GSO frames");
                }
            }
            finally
            {
                LinuxNet.Kill(sink);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The text with each run of spaces as one space (snoop's columns are padded).</summary>
    private static string Words(string text) => System.Text.RegularExpressions.Regex.Replace(text.Trim(), " +", " ");
}
