using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SmartOS.Testing;

namespace SmartOS.Benchmarks;

/// <summary>
/// The real-time overlay figure (issue 15, "Benchmark"): iperf between two joyent zones on two
/// `smartos boot` daemons, each in a network namespace of its own, whose tenant network is a files
/// overlay over the real UDP underlay (vnic/UdpUnderlay.cs) across a veth pair; printed beside the
/// real iperf3 between two Linux `vxlan` devices on the same VNI over a veth pair, in the same run.
/// Goal: the daemons reach at least half of Linux-to-Linux vxlan. Every rate is the receiver's.
///
/// Needs Linux, root, ip(8), timeout(1) and iperf3; without them it prints what is missing and
/// measures nothing. Everything lives in namespaces this benchmark creates and deletes, addresses
/// come from 198.18.0.0/15, every process is bounded in time and only processes started here are
/// ended.
/// </summary>
public static class OverlayRealBenchmarks
{
    private const int Seconds = 3;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);

    private static string SmartosDll => Path.Combine(AppContext.BaseDirectory, "smartos.dll");
    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    public static void Run(TextWriter o)
    {
        o.WriteLine($"overlay-real: TCP over VXLAN across a veth pair, {Seconds} s each, receiver's rate");
        string? missing = LinuxNet.MissingPrerequisite("iperf3");
        if (missing != null)
        {
            o.WriteLine($"  skipped: {missing}");
            return;
        }
        double daemons = Daemons(o);
        double linux = LinuxVxlan(o);
        if (daemons > 0 && linux > 0)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  daemons / Linux vxlan: {daemons / linux:F2} (goal >= 0.50)"));
    }

    private static void Veth(NetNs a, string aName, string aAddress, NetNs b, string bName, string bAddress)
    {
        LinuxNet.Must("ip", "-n", a.Name, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.Name);
        LinuxNet.Must("ip", "-n", a.Name, "addr", "add", aAddress + "/24", "dev", aName);
        LinuxNet.Must("ip", "-n", b.Name, "addr", "add", bAddress + "/24", "dev", bName);
        LinuxNet.Must("ip", "-n", a.Name, "link", "set", aName, "up");
        LinuxNet.Must("ip", "-n", b.Name, "link", "set", bName, "up");
    }

    private static (int Code, string Out, string Err) Smartos(string root, params string[] args)
        => LinuxNet.Run(Dotnet, [SmartosDll, "--root", root, .. args]);

    private static void Ok(string root, params string[] args)
    {
        var r = Smartos(root, args);
        if (r.Code != 0) throw new InvalidOperationException($"{string.Join(' ', args)}: {r.Err}{r.Out}");
    }

    /// <summary>Two daemons, a zone on each over a files overlay, the zones' iperf.</summary>
    private static double Daemons(TextWriter o)
    {
        string dir = Directory.CreateTempSubdirectory("smartos-ovl-bench-").FullName;
        var processes = new List<Process>();
        using var nsA = new NetNs();
        using var nsB = new NetNs();
        try
        {
            Veth(nsA, "ova", "198.18.52.1", nsB, "ovb", "198.18.52.2");
            string map = Path.Combine(dir, "tenant.json");
            File.WriteAllText(map, """
                {
                    "2:0:0:0:a:1": { "ip": "198.18.52.1", "port": 4789, "arp": "192.168.72.1" },
                    "2:0:0:0:b:1": { "ip": "198.18.52.2", "port": 4789, "arp": "192.168.72.2" }
                }
                """);
            string Boot(NetNs ns, string name, string listen, string mac, string zone, string address)
            {
                string root = Path.Combine(dir, name);
                var daemon = LinuxNet.Start("ip", "netns", "exec", ns.Name, "timeout", "-s", "KILL", "300", Dotnet, SmartosDll, "boot", "--root", root, "--nics", "1");
                processes.Add(daemon);
                var line = daemon.StandardOutput.ReadLineAsync();
                if (!line.Wait(s_wait) || line.Result?.Contains("listening on", StringComparison.Ordinal) != true)
                    throw new InvalidOperationException($"the daemon {name} did not come up");
                Ok(root, "dladm", "create-overlay", "-t", "-e", "vxlan", "-s", "files", "-v", "4000", "-p", $"vxlan/listen_ip={listen},files/config={map}", "tenant0");
                Ok(root, "dladm", "create-vnic", "-t", "-l", "tenant0", "-m", mac, zone + "0");
                Ok(root, "zonecfg", "-z", zone, $"create; set zonepath=/zones/{zone}; add net; set physical={zone}0; set allowed-address={address}/24; end");
                Ok(root, "zoneadm", "-z", zone, "install");
                Ok(root, "zoneadm", "-z", zone, "boot");
                return root;
            }
            string rootA = Boot(nsA, "a", "198.18.52.1", "2:0:0:0:a:1", "red", "192.168.72.1");
            string rootB = Boot(nsB, "b", "198.18.52.2", "2:0:0:0:b:1", "blue", "192.168.72.2");
            for (int i = 0; i < 10; i++)
            {
                if (Smartos(rootA, "zlogin", "red", "ping", "192.168.72.2", "1").Out.Contains("is alive", StringComparison.Ordinal)) break;
            }
            // A warm-up run first: the daemons are fresh processes whose data path is still being
            // compiled (a profile of an unwarmed run showed a third of the daemons' CPU in the JIT's
            // thread), which Linux's in-kernel path never pays.
            (int Code, string Out, string Err) r = default;
            for (int run = 0; run < 2; run++)
            {
                var server = LinuxNet.Start(Dotnet, SmartosDll, "--root", rootB, "zlogin", "blue", "iperf", "-s", "-1");
                processes.Add(server);
                Thread.Sleep(1000);
                r = Smartos(rootA, "zlogin", "red", "iperf", "-c", "192.168.72.2", "-t", (run == 0 ? 2 : Seconds).ToString(CultureInfo.InvariantCulture));
                server.WaitForExit(10_000);
            }
            double rate = Report(o, "zone -> daemon -> UDP -> daemon -> zone", r);
            // How the sockets moved the datagrams (UdpUnderlay.cs rules 5 and 6): GSO calls, GRO
            // receives, large segments joined.
            foreach (var (root, side) in new[] { (rootA, "sender"), (rootB, "receiver") })
            {
                var k = Smartos(root, "kstat", "-p", "-m", "overlay");
                var counters = k.Out.Split('\n').Where(l => l.Contains(":udp_", StringComparison.Ordinal)
                    && (l.Contains(":lso_", StringComparison.Ordinal) || l.Contains(":gro", StringComparison.Ordinal)
                        || l.Contains(":lro_", StringComparison.Ordinal) || l.Contains(":sent\t", StringComparison.Ordinal)
                        || l.Contains(":received\t", StringComparison.Ordinal) || l.Contains(":overflows", StringComparison.Ordinal)))
                    .Select(l => l[(l.LastIndexOf(':') + 1)..].Replace('\t', '='));
                o.WriteLine($"    {side} socket: {string.Join(' ', counters)}");
            }
            return rate;
        }
        finally
        {
            foreach (var p in processes)
            {
                LinuxNet.Kill(p);
                p.Dispose();
            }
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The reference: iperf3 between two Linux vxlan devices on VNI 4000 over veth.</summary>
    private static double LinuxVxlan(TextWriter o)
    {
        using var nsA = new NetNs();
        using var nsB = new NetNs();
        Veth(nsA, "ova", "198.18.53.1", nsB, "ovb", "198.18.53.2");
        foreach (var (ns, dev, local, remote, inner) in new[] { (nsA, "ova", "198.18.53.1", "198.18.53.2", "192.168.73.1"), (nsB, "ovb", "198.18.53.2", "198.18.53.1", "192.168.73.2") })
        {
            LinuxNet.Must("ip", "-n", ns.Name, "link", "add", "vx0", "type", "vxlan", "id", "4000", "dstport", "4789", "remote", remote, "local", local, "dev", dev);
            LinuxNet.Must("ip", "-n", ns.Name, "link", "set", "vx0", "mtu", "1400");
            LinuxNet.Must("ip", "-n", ns.Name, "addr", "add", inner + "/24", "dev", "vx0");
            LinuxNet.Must("ip", "-n", ns.Name, "link", "set", "vx0", "up");
        }
        using var server = nsB.StartIn("iperf3", "-s", "-B", "192.168.73.2");
        try
        {
            (int Code, string Out, string Err) r = (-1, "", "");
            for (int i = 0; i < 5 && r.Code != 0; i++)
            {
                if (i > 0) Thread.Sleep(300);
                r = nsA.Exec("iperf3", "-c", "192.168.73.2", "-t", Seconds.ToString(CultureInfo.InvariantCulture), "-f", "m");
            }
            return Report(o, "Linux vxlan -> veth -> Linux vxlan", r);
        }
        finally
        {
            LinuxNet.Kill(server);
        }
    }

    /// <summary>Prints the receiver line's rate and returns it in Mbit/s (0 when there is none).</summary>
    private static double Report(TextWriter o, string path, (int Code, string Out, string Err) r)
    {
        string receiver = r.Out.Split('\n').FirstOrDefault(l => l.Contains("receiver", StringComparison.Ordinal)) ?? "";
        var m = Regex.Match(receiver, @"([0-9.]+) ([KMG]?)bits/sec");
        if (r.Code != 0 || !m.Success)
        {
            o.WriteLine($"  {path,-42}  failed (exit {r.Code}): {(r.Err + r.Out).Trim()}");
            return 0;
        }
        double mbits = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * m.Groups[2].Value switch
        {
            "G" => 1000,
            "K" => 0.001,
            "" => 0.000001,
            _ => 1,
        };
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {path,-42}  {mbits:F0} Mbits/sec"));
        return mbits;
    }
}
