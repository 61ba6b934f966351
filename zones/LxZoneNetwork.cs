using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>
/// The network of an lx-branded zone (real time only): the zone's programs are real Linux programs
/// on the Linux kernel's own stack, in a network namespace the host creates at boot and removes at
/// halt.
///
/// Data path
///   Linux program ─▶ Linux stack in NS ─▶ TAP netN ─▶ TapClient ─▶ MAC client of the zone's VNIC
///     ─▶ [protection, flows, bandwidth] ─▶ virtual switch ─▶ ...        (and the reverse)
///
/// Rules
///   1. The namespace is smartos-lx-ZONE; each of the zone's interfaces is a TAP device created in
///      the root namespace by our descriptor, moved at once into the zone's namespace, and renamed
///      there to the zone's interface name (net0, ...) with its VNIC's MAC address and MTU. Nothing
///      is configured in the root namespace. The TAPs have the offloads (IFF_VNET_HDR, TSO and
///      checksum; vnic/TapDevice.cs): the zone's GSO frames are large sends through its VNIC, large
///      segments for it are written whole as GSO frames, and checksums left pending on either side
///      are filled in by the side that needs them, so Linux to an lx zone and back carries 64 KiB
///      frames end to end (the tap benchmark's lx rows, `tap-lx`). Each frame costs a read on one
///      TAP's reader, a hand-off to the loop that allocates nothing (TapDevice.cs rule 8), one copy
///      into a packet and a write to the other TAP; the write dominates the loop's time, because
///      Linux runs the receiving stack in the writer's context (README, the TAP figures' profile).
///   2. Addresses, default routes and resolvers come from the zone's configuration (allowed-address,
///      defrouter, vmadm resolvers, written to /etc/netns/NS/resolv.conf for `ip netns exec`).
///      addrconf is Linux's own default. dhcp runs BusyBox udhcpc on the interface in the namespace,
///      in the foreground as the host's child for as long as the zone runs (renewing its lease), with
///      an event script of ours that configures only that interface: address, default route and,
///      when the zone has no resolvers of its own, the lease's name servers in the namespace's
///      resolv.conf. The boot does not wait for the lease, as for joyent zones. Without udhcpc a
///      dhcp interface stops the boot with a message.
///   3. A zone that fails to start leaves nothing behind: DHCP clients ended, TAPs closed,
///      namespace, resolv.conf and event scripts removed. A namespace of the same name left by a
///      killed host is replaced.
///   4. Starting runs ip(8) on the loop: it blocks the loop for the few tens of milliseconds a boot
///      takes, which only real-time hosts allow (virtual time refuses lx before this, ZoneTable).
/// </summary>
public sealed partial class LxZoneNetwork : IZoneNetwork
{
    private static readonly TimeSpan s_ipLimit = TimeSpan.FromSeconds(10);
    private readonly RealTimeDriver _driver;
    private int _nextTap;

    public LxZoneNetwork(RealTimeDriver driver) { _driver = driver; }

    /// <summary>The Linux network namespace of an lx zone.</summary>
    public static string NamespaceOf(string zone) => "smartos-lx-" + zone;

    /// <summary>Why lx zones cannot boot in this process, or null when they can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "brand lx needs Linux (its network is a Linux network namespace)";
        if (GetEuid() != 0) return "brand lx needs root: its network is a Linux network namespace with TAP devices";
        if (!File.Exists("/dev/net/tun")) return "brand lx needs /dev/net/tun (load the tun module: modprobe tun)";
        if (FindIp() == null) return "brand lx needs ip(8) from iproute2";
        return null;
    }

    public bool TryStart(ZoneNetworkPlan plan, out IZoneStack? stack, out string? error)
    {
        stack = null;
        error = Unavailable();
        if (error != null) return false;
        foreach (var nic in plan.Interfaces)
        {
            foreach (string a in nic.Addresses)
            {
                if (a == "dhcp" && FindUdhcpc() == null) { error = $"{nic.Name}: dhcp in an lx zone needs udhcpc (BusyBox's DHCP client; apt-get install udhcpc)"; return false; }
                if (!ZoneAddresses.IsValidAddress(a)) { error = $"{nic.Name}: invalid address '{a}'"; return false; }
            }
            foreach (string g in nic.Gateways)
            {
                if (!ZoneAddresses.IsValidIp(g)) { error = $"{nic.Name}: invalid gateway '{g}'"; return false; }
            }
        }
        var lx = new LxZoneStack(plan, NamespaceOf(plan.Zone));
        error = Build(lx);
        if (error != null)
        {
            lx.Stop();
            return false;
        }
        stack = lx;
        return true;
    }

    private string? Build(LxZoneStack lx)
    {
        string ns = lx.Namespace;
        if (File.Exists(Path.Combine("/run/netns", ns)))
        {
            EndLeftovers(ns);
            Ip("netns", "del", ns);
        }
        if (Ip("netns", "add", ns) is string e) return $"cannot create network namespace {ns}: {e}";
        lx.Created = true;
        Ip("-n", ns, "link", "set", "lo", "up");
        foreach (var nic in lx.Plan.Interfaces)
        {
            string tapName = string.Create(CultureInfo.InvariantCulture, $"lx{Environment.ProcessId % 100000}t{_nextTap++}");
            var device = TapDevice.TryOpen(tapName, out string? why);
            if (device == null) return $"{nic.Name}: {why}";
            if (Ip("link", "set", tapName, "netns", ns) is string m)
            {
                device.Dispose();
                return $"{nic.Name}: cannot move {tapName} into {ns}: {m}";
            }
            lx.Taps.Add(TapClient.Start(nic.Client, device, _driver));
            string mtu = nic.Mtu.ToString(CultureInfo.InvariantCulture);
            if (Ip("-n", ns, "link", "set", "dev", tapName, "name", nic.Name, "address", nic.Client.MacAddress.ToString(), "mtu", mtu) is string r)
                return $"{nic.Name}: {r}";
            if (Ip("-n", ns, "link", "set", nic.Name, "up") is string u) return $"{nic.Name}: {u}";
            foreach (string a in nic.Addresses)
            {
                if (a == "addrconf") continue;
                if (a == "dhcp")
                {
                    if (StartDhcp(lx, nic.Name) is string d) return $"{nic.Name}: dhcp: {d}";
                    continue;
                }
                if (Ip("-n", ns, "addr", "add", a, "dev", nic.Name) is string x) return $"{nic.Name}: {a}: {x}";
            }
        }
        foreach (var nic in lx.Plan.Interfaces)
        {
            foreach (string g in nic.Gateways)
            {
                string family = g.Contains(':') ? "-6" : "-4";
                if (Ip(family, "-n", ns, "route", "add", "default", "via", g, "dev", nic.Name) is string x)
                    return $"{nic.Name}: default route via {g}: {x}";
            }
        }
        if (lx.Plan.Resolvers.Count > 0)
        {
            string dir = Path.Combine("/etc/netns", ns);
            Directory.CreateDirectory(dir);
            lx.ResolvDir = dir;
            File.WriteAllLines(Path.Combine(dir, "resolv.conf"), lx.Plan.Resolvers.Select(r => "nameserver " + r));
        }
        return null;
    }

    /// <summary>Starts udhcpc on <paramref name="ifName"/> in the zone's namespace (rule 2); null on
    /// success, else why not.</summary>
    private static string? StartDhcp(LxZoneStack lx, string ifName)
    {
        string dir = Path.Combine("/run", "smartos-lx", lx.Namespace);
        Directory.CreateDirectory(dir);
        lx.ScriptDir = dir;
        string resolv = Path.Combine("/etc/netns", lx.Namespace, "resolv.conf");
        string script = Path.Combine(dir, ifName + ".udhcpc");
        File.WriteAllText(script, UdhcpcScript(lx.Plan.Resolvers.Count == 0 ? resolv : null));
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (lx.Plan.Resolvers.Count == 0) lx.ResolvDir = Path.GetDirectoryName(resolv);

        var psi = new ProcessStartInfo(FindIp()!) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in (string[])["netns", "exec", lx.Namespace, FindUdhcpc()!, "-f", "-i", ifName, "-s", script, "-t", "3", "-T", "1", "-A", "2", "-x", "hostname:" + lx.Plan.Zone])
            psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e) { return e.Message; }
        p.StandardInput.Close();
        // udhcpc's log lines are read and dropped so that it never blocks on a full pipe.
        p.OutputDataReceived += static (_, _) => { };
        p.ErrorDataReceived += static (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        lx.DhcpClients.Add(p);
        return null;
    }

    /// <summary>udhcpc's event script: configures the interface it is called for, nothing else.
    /// BusyBox passes the lease in the environment: ip, mask (a prefix length), router, dns.</summary>
    private static string UdhcpcScript(string? resolv)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append("#!/bin/sh\n# udhcpc events for an lx zone; written by the smartos host, removed at halt.\n");
        sb.Append("case \"$1\" in\n");
        sb.Append("deconfig)\n\tip -4 addr flush dev \"$interface\" scope global\n\t;;\n");
        sb.Append("bound|renew)\n");
        sb.Append("\tif [ \"$1\" = bound ]; then ip -4 addr flush dev \"$interface\" scope global; fi\n");
        sb.Append("\tip addr replace \"$ip/${mask:-24}\" dev \"$interface\"\n");
        sb.Append("\tif [ -n \"$router\" ]; then set -- $router; ip route replace default via \"$1\" dev \"$interface\"; fi\n");
        if (resolv != null)
        {
            string dir = Path.GetDirectoryName(resolv)!;
            sb.Append(CultureInfo.InvariantCulture, $"\tif [ -n \"$dns\" ]; then\n\t\tmkdir -p '{dir}'\n");
            sb.Append(CultureInfo.InvariantCulture, $"\t\tfor d in $dns; do echo \"nameserver $d\"; done > '{resolv}.new' && mv '{resolv}.new' '{resolv}'\n\tfi\n");
        }
        sb.Append("\t;;\nesac\nexit 0\n");
        return sb.ToString();
    }

    /// <summary>The path of BusyBox's udhcpc, or null when it is not installed.</summary>
    public static string? FindUdhcpc() => FindTool("udhcpc");

    /// <summary>Ends the processes still running in a namespace a killed host of ours left behind
    /// (its DHCP clients, a zlogin's program): they were started by that host, for that zone.</summary>
    private static void EndLeftovers(string ns)
    {
        if (Ip(out string pids, "netns", "pids", ns) != null) return;
        foreach (string line in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            try
            {
                using var leftover = Process.GetProcessById(pid);
                leftover.Kill(entireProcessTree: true);
                leftover.WaitForExit(2000);
            }
            catch (ArgumentException) { } // Gone already.
            catch (InvalidOperationException) { }
        }
    }

    /// <summary>Runs ip(8) bounded in time; null on success, else its message.</summary>
    internal static string? Ip(params string[] args) => Ip(out _, args);

    /// <summary>As <see cref="Ip(string[])"/>, keeping what ip(8) printed.</summary>
    private static string? Ip(out string stdout, params string[] args)
    {
        stdout = "";
        string? ip = FindIp();
        if (ip == null) return "ip(8) not found";
        var psi = new ProcessStartInfo(ip) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(s_ipLimit))
        {
            p.Kill(entireProcessTree: true);
            return $"ip {string.Join(' ', args)}: no answer within {s_ipLimit.TotalSeconds}s";
        }
        p.WaitForExit();
        return p.ExitCode == 0 ? null : err.Result.Trim();
    }

    /// <summary>The path of ip(8), or null when iproute2 is missing.</summary>
    public static string? FindIp() => FindTool("ip");

    /// <summary>A system tool in the directories root's tools live in, or null.</summary>
    private static string? FindTool(string name)
    {
        foreach (string dir in (string[])["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        {
            string path = Path.Combine(dir, name);
            if (File.Exists(path)) return path;
        }
        return null;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>A running lx zone's network: its namespace and the TAP devices that carry its VNICs.</summary>
public sealed class LxZoneStack(ZoneNetworkPlan plan, string ns) : IZoneStack
{
    public ZoneNetworkPlan Plan { get; } = plan;
    /// <summary>The Linux network namespace the zone's programs run in (zlogin: ip netns exec).</summary>
    public string Namespace { get; } = ns;
    internal List<TapClient> Taps { get; } = [];
    internal List<Process> DhcpClients { get; } = [];
    internal bool Created { get; set; }
    internal string? ResolvDir { get; set; }
    internal string? ScriptDir { get; set; }

    /// <summary>Ends the DHCP clients, closes the TAPs (before the zone closes its MAC clients) and
    /// removes the namespace.</summary>
    public void Stop()
    {
        foreach (var p in DhcpClients)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(2000);
            }
            catch (InvalidOperationException) { } // Already gone.
            p.Dispose();
        }
        DhcpClients.Clear();
        if (ScriptDir != null && Directory.Exists(ScriptDir))
        {
            Directory.Delete(ScriptDir, recursive: true);
            string parent = Path.GetDirectoryName(ScriptDir)!;
            try { if (!Directory.EnumerateFileSystemEntries(parent).Any()) Directory.Delete(parent); }
            catch (IOException) { } // Another zone's scripts arrived meanwhile; it removes the directory later.
        }
        ScriptDir = null;
        foreach (var t in Taps) t.Dispose();
        Taps.Clear();
        if (Created) LxZoneNetwork.Ip("netns", "del", Namespace);
        Created = false;
        if (ResolvDir != null && Directory.Exists(ResolvDir)) Directory.Delete(ResolvDir, recursive: true);
        ResolvDir = null;
    }
}
