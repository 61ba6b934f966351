using System.Globalization;
using System.Text.RegularExpressions;
using SmartOS.Testing;
using SmartOS.Vnic;

namespace SmartOS.Benchmarks;

/// <summary>
/// The real-edge figures (issue 6, "Speed"): the real iperf3 in a Linux network namespace against a
/// joyent zone's iperf server on a real-time host whose e1000g0 is a TAP device in that namespace,
/// both directions (iperf3 -c, then iperf3 -c -R), printed beside iperf3 between two Linux
/// namespaces over a veth pair, both directions, in the same run, with the TAP's offloads
/// (IFF_VNET_HDR: TSO and checksum offload) and without. Every rate is the receiver's line of the
/// real iperf3 client; each TAP figure is followed by veth's in the same direction, measured just
/// after it, and their ratio. Issue 17's goal: the TAP at least half of veth's rate in both directions.
/// With offloads the zone's TCP sends ~64 KiB large sends that Linux gets as one GSO frame, and
/// Linux's GSO frames reach the zone's stack whole (MacLayer.cs rule 9), their checksums left
/// pending (TapDevice.cs rule 6); the counts are printed, with the frames the loop read itself before
/// it slept and the ACKs to Linux that a later one superseded (TapDevice.cs rules 9 and 10), and
/// beside each TAP rate the CPU time this process spent per gigabyte (iperf3's own is not in it). The same for an lx zone: the real iperf3
/// server in the zone's own network namespace, so each frame crosses the NIC's TAP, the MAC layer
/// and the lx zone's TAP (both with offloads: GSO frames go through whole). `tap-lx` prints only the
/// lx rows.
///
/// Needs Linux, root, /dev/net/tun, ip(8), timeout(1) and iperf3; without them it prints what is
/// missing and measures nothing. Safety as in the integration tests: the TAP and the veth ends live
/// only in namespaces this benchmark creates (and deletes), addresses come from 198.18.0.0/15,
/// nothing is configured in the root namespace, every process is bounded in time and only processes
/// started here are ended.
/// </summary>
public static class TapBenchmarks
{
    private const string LinuxAddress = "198.18.0.1";
    private const string ZoneAddress = "198.18.0.2";
    private const string LxAddress = "198.18.0.3";
    private const int Seconds = 3;
    private const string Window = "4M";

    public static void Run(TextWriter o) => RunRows(o, "tap", (ns, veth, rows) =>
    {
        ZoneRates(ns, veth, rows, offload: true);
        ZoneRates(ns, veth, rows, offload: false);
        LxZoneRates(ns, veth, rows);
        rows.Add(("Linux ns -> veth -> Linux ns", veth.Rate()));
        rows.Add(("Linux ns <- veth <- Linux ns", veth.Rate("-R")));
    });

    /// <summary>Only the lx zone's rows, each beside veth (`tap-lx`): for working on that path.</summary>
    public static void RunLx(TextWriter o) => RunRows(o, "tap-lx", LxZoneRates);

    /// <summary>Checks the prerequisites, gives <paramref name="measure"/> a namespace and a veth pair,
    /// and prints the rows it adds.</summary>
    private static void RunRows(TextWriter o, string name, Action<NetNs, Veth, List<(string Path, string Rate)>> measure)
    {
        o.WriteLine($"{name}: iperf3 TCP, {Seconds} s each, receiver's rate");
        string? missing = LinuxNet.MissingPrerequisite("iperf3", "ping");
        if (missing != null)
        {
            o.WriteLine($"  skipped: {missing}");
            return;
        }
        var rows = new List<(string Path, string Rate)>();
        using (var ns = new NetNs())
        using (var veth = new Veth(ns))
            measure(ns, veth, rows);
        int width = rows.Max(r => r.Path.Length);
        foreach (var (path, rate) in rows) o.WriteLine($"  {path.PadRight(width)}  {rate}");
    }

    /// <summary>A real-time host with its e1000g0 on a TAP device in <paramref name="ns"/>, a joyent
    /// zone on a VNIC over it, and the namespace's iperf3 against the zone's iperf -s.</summary>
    private static void ZoneRates(NetNs ns, Veth veth, List<(string, string)> rows, bool offload)
    {
        string tapName = "smb" + LinuxNet.Suffix();
        using var tap = TapNic.TryOpen(tapName, out string? error, offload) ?? throw new InvalidOperationException(error);
        LinuxNet.Must("ip", "link", "set", tapName, "netns", ns.Name);
        LinuxNet.Must("ip", "-n", ns.Name, "addr", "add", LinuxAddress + "/24", "dev", tapName);
        LinuxNet.Must("ip", "-n", ns.Name, "link", "set", tapName, "up");

        using var rt = new RealTimeHost(nics: 1);
        var phys = (PhysLink)rt.Host.Mac.Find("e1000g0")!;
        rt.OnLoop(() => { tap.Start(phys, rt.Driver); return 0; });
        rt.Ok("dladm", "create-vnic", "-t", "-l", "e1000g0", "web0");
        rt.Ok("zonecfg", "-z", "web", $"create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address={ZoneAddress}/24; end");
        rt.Ok("zoneadm", "-z", "web", "install");
        rt.Ok("zoneadm", "-z", "web", "boot");
        WaitReachable(ns, ZoneAddress);

        var server = rt.Begin("zlogin", "web", "iperf", "-s");
        try
        {
            string how = offload ? "TAP NIC (offloads)" : "TAP NIC (none)";
            rows.Add(($"Linux ns -> {how} -> joyent zone", veth.Beside(WithCpu(() => Iperf3(ns, ZoneAddress)))));
            rows.Add(($"joyent zone -> {how} -> Linux ns", veth.Beside(WithCpu(() => Iperf3(ns, ZoneAddress, "-R")), "-R")));
            if (offload)
            {
                // The zone's iperf takes iperf3's window parameter (its buffers are otherwise a fixed
                // 512 KiB, where Linux's autotune): the same -w at both ends of both paths.
                rows.Add(($"Linux ns -> {how} -> joyent zone, -w {Window}", veth.Beside(WithCpu(() => Iperf3(ns, ZoneAddress, "-w", Window)), "-w", Window)));
            }
            rows.Add(($"  ({tap.WholeFrames:N0} TSO frames from Linux taken whole ({tap.PendingChecksumFrames:N0} checksums left pending), {tap.SegmentedFrames:N0} cut up, " +
                      $"{tap.LoopFrames:N0} frames read by the loop; {phys.Stats.LsoOut:N0} large sends to Linux, {phys.Stats.LsoSoft:N0} cut in software, " +
                      $"{tap.AcksSuperseded:N0} ACKs superseded)", ""));
        }
        finally
        {
            rt.Driver.Invoke(server.Cts.Cancel);
            server.Task.Wait(RealTimeHost.Wait);
        }
    }

    /// <summary>A real-time host with its e1000g0 on a TAP device (with offloads) in
    /// <paramref name="ns"/> and an lx zone on a VNIC over it: the real iperf3 server runs in the lx
    /// zone's own network namespace, so every frame crosses two TAPs (the lx zone's, then the NIC's)
    /// and the MAC layer between them.</summary>
    private static void LxZoneRates(NetNs ns, Veth veth, List<(string, string)> rows)
    {
        if (LxZoneNetworkUnavailable() is string why)
        {
            rows.Add(("Linux ns <-> TAP NIC <-> lx zone", "skipped: " + why));
            return;
        }
        string tapName = "smb" + LinuxNet.Suffix();
        using var tap = TapNic.TryOpen(tapName, out string? error) ?? throw new InvalidOperationException(error);
        LinuxNet.Must("ip", "link", "set", tapName, "netns", ns.Name);
        LinuxNet.Must("ip", "-n", ns.Name, "addr", "add", LinuxAddress + "/24", "dev", tapName);
        LinuxNet.Must("ip", "-n", ns.Name, "link", "set", tapName, "up");

        using var rt = new RealTimeHost(nics: 1);
        var phys = (PhysLink)rt.Host.Mac.Find("e1000g0")!;
        rt.OnLoop(() => { tap.Start(phys, rt.Driver); return 0; });
        string zone = "lxb" + LinuxNet.Suffix();
        rt.Ok("dladm", "create-vnic", "-t", "-l", "e1000g0", "lx0");
        rt.Ok("zonecfg", "-z", zone, $"create; set zonepath=/zones/{zone}; set brand=lx; add net; set physical=lx0; set allowed-address={LxAddress}/24; end");
        rt.Ok("zoneadm", "-z", zone, "install");
        rt.Ok("zoneadm", "-z", zone, "boot");
        try
        {
            WaitReachable(ns, LxAddress);
            using var server = LinuxNet.Start("ip", "netns", "exec", SmartOS.Zones.LxZoneNetwork.NamespaceOf(zone), "timeout", "-s", "KILL", "120",
                "iperf3", "-s", "-B", LxAddress);
            try
            {
                long whole = tap.WholeFrames, pending = tap.PendingChecksumFrames, lsoOut = phys.Stats.LsoOut, soft = phys.Stats.LsoSoft;
                long loopFrames = tap.LoopFrames, superseded = tap.AcksSuperseded;
                rows.Add(("Linux ns -> TAP NIC -> lx zone (its TAP)", veth.Beside(WithCpu(() => Iperf3(ns, LxAddress)))));
                rows.Add(("lx zone (its TAP) -> TAP NIC -> Linux ns", veth.Beside(WithCpu(() => Iperf3(ns, LxAddress, "-R")), "-R")));
                rows.Add(($"  ({tap.WholeFrames - whole:N0} TSO frames from Linux taken whole ({tap.PendingChecksumFrames - pending:N0} checksums left pending); " +
                          $"{tap.LoopFrames - loopFrames:N0} read by the loop; {phys.Stats.LsoOut - lsoOut:N0} large sends to Linux, " +
                          $"{phys.Stats.LsoSoft - soft:N0} cut in software, {tap.AcksSuperseded - superseded:N0} ACKs superseded)", ""));
            }
            finally
            {
                LinuxNet.Kill(server);
            }
        }
        finally
        {
            rt.Ok("zoneadm", "-z", zone, "halt");
        }
    }

    private static string? LxZoneNetworkUnavailable() => SmartOS.Zones.LxZoneNetwork.Unavailable();

    /// <summary>The reference: iperf3 between the benchmark's namespace and a second one over a veth
    /// pair (a one-off server for each measurement: processes in a namespace are bounded in time),
    /// so each TAP figure is printed beside veth's measured
    /// just after it in the same direction (the machine's load drifts; a ratio of neighbours holds).</summary>
    private sealed class Veth : IDisposable
    {
        public const string Server = "198.18.6.2";
        private readonly NetNs _ns;
        private readonly NetNs _other = new();

        public Veth(NetNs ns)
        {
            _ns = ns;
            LinuxNet.Must("ip", "-n", ns.Name, "link", "add", "vx", "type", "veth", "peer", "name", "vy", "netns", _other.Name);
            LinuxNet.Must("ip", "-n", ns.Name, "addr", "add", "198.18.6.1/24", "dev", "vx");
            LinuxNet.Must("ip", "-n", ns.Name, "link", "set", "vx", "up");
            LinuxNet.Must("ip", "-n", _other.Name, "addr", "add", Server + "/24", "dev", "vy");
            LinuxNet.Must("ip", "-n", _other.Name, "link", "set", "vy", "up");
        }

        /// <summary>iperf3 over the veth pair with <paramref name="extra"/>, against a one-off server.</summary>
        public string Rate(params string[] extra)
        {
            using var server = _other.StartIn("iperf3", "-s", "-1", "-B", Server);
            try { return Iperf3(_ns, Server, extra); }
            finally { LinuxNet.Kill(server); }
        }

        /// <summary><paramref name="tap"/>'s rate, then veth's with the same iperf3 options
        /// (<paramref name="extra"/>: the direction, a window) and the ratio.</summary>
        public string Beside(string tap, params string[] extra)
        {
            string veth = Rate(extra);
            double t = Mbps(tap), v = Mbps(veth);
            return t > 0 && v > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{tap}   veth just after: {veth}   TAP/veth {t / v:0.00}")
                : $"{tap}   veth just after: {veth}";
        }

        public void Dispose() => _other.Dispose();
    }

    /// <summary><paramref name="measure"/>'s rate with the CPU time this process (the loop, the TAP
    /// readers; not iperf3) spent per gigabyte moved, which swings less with the machine's load.</summary>
    private static string WithCpu(Func<string> measure)
    {
        var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        string rate = measure();
        double ms = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
        double gigabytes = Mbps(rate) * Seconds / 8000;
        return gigabytes > 0 ? string.Create(CultureInfo.InvariantCulture, $"{rate} ({ms / gigabytes:0} ms CPU/GB)") : rate;
    }

    /// <summary>The Mbit/s of a rate Iperf3 returned (it asks for -f m), or 0.</summary>
    private static double Mbps(string rate)
    {
        var m = Regex.Match(rate, @"^([0-9.]+) Mbits/sec");
        return m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>Runs the real iperf3 client in <paramref name="ns"/> (retrying while the server
    /// starts) and returns its receiver line's rate, or why there is none.</summary>
    private static string Iperf3(NetNs ns, string server, params string[] extra)
    {
        (int Code, string Out, string Err) r = (-1, "", "");
        for (int i = 0; i < 5 && r.Code != 0; i++)
        {
            if (i > 0) Thread.Sleep(300);
            r = ns.Exec(["iperf3", "-c", server, "-t", Seconds.ToString(CultureInfo.InvariantCulture), "-f", "m", .. extra]);
        }
        string receiver = r.Out.Split('\n').FirstOrDefault(l => l.Contains("receiver", StringComparison.Ordinal)) ?? "";
        var m = Regex.Match(receiver, @"([0-9.]+ [KMG]?bits/sec)");
        return r.Code == 0 && m.Success ? m.Groups[1].Value : $"failed (exit {r.Code}): {(r.Err + r.Out).Trim()}";
    }

    private static void WaitReachable(NetNs ns, string address)
    {
        for (int i = 0; i < 5; i++)
        {
            if (ns.Exec("ping", "-n", "-c", "1", "-W", "1", address).Code == 0) return;
        }
        throw new InvalidOperationException($"{address} never answered a ping from {ns.Name}");
    }
}
