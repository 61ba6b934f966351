using System.Diagnostics;
using System.Globalization;
using System.Text;
using SmartOS.Cli.Scenario;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// Issue 17's zone-scale scenario: `smartos run` of a script that creates N joyent zones from vmadm
/// JSON on one nic tag (an etherstub) and pings the first from the last, for N = 100 .. 10,000. The
/// script is built as text and run by the scenario runner, the path `smartos run` takes. Each N runs
/// in a child process of its own, so its RSS is its own and a slow N can be cut off.
///
/// Two builds side by side:
///   flat   every zone in one L2 domain (VLAN 0 of the etherstub). Each broadcast (duplicate
///          address detection at create, the ping's ARP request) reaches every other port: N-1
///          deliveries, so the frames a create carries grow with N. The table says how many.
///   vlan   the same zones, 100 to a VLAN of the same etherstub (vlan_id 2, 3, ...), each VLAN its
///          own /24; the last zone pings the first of its own VLAN. A broadcast reaches 99 ports.
///
/// Printed per N: wall time of the whole run, the process's CPU time (all threads: the loop and
/// the GC; the figure to trust on a loaded machine), wall per zone, peak RSS, the managed heap after a full
/// collection with every zone idle (and that divided by N: memory per idle zone: its IP stack, VNIC
/// and zone state), and the frames delivered by the first create, the last create and the ping.
/// </summary>
public static class ZoneScaleBenchmarks
{
    private static readonly int[] s_sizes = [100, 1_000, 3_000, 10_000];
    private const int ZonesPerVlan = 100;
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(300);

    /// <summary>Issue 17's figures for the flat build before this work (same machine kind).</summary>
    private static string Reference(int n) => n switch
    {
        100 => "0.8 s",
        1_000 => "10.9-13.2 s, 340-360 MB",
        3_000 => "96 s, 700 MB",
        _ => "goal < 10 s, < 2 GiB",
    };

    public static void Run(TextWriter o)
    {
        o.WriteLine("zones: `smartos run` of N joyent zones from vmadm JSON on one nic tag, then a ping from the last to the first");
        o.WriteLine("  goal: 10,000 zones in < 10 s and < 2 GiB, per-zone cost flat in N, < 100 KiB per idle zone");
        o.WriteLine("  frames: delivered to VNICs by the first create, the last create and the ping (a broadcast reaches every other port of its L2 domain)");
        o.WriteLine($"  {"build",-5} {"N",6} {"wall",8} {"cpu",8} {"per zone",9} {"peak RSS",9} {"heap",8} {"/zone",8} {"1st create",10} {"last create",11} {"ping",6}  issue 17 (flat, before)");
        foreach (string build in new[] { "flat", "vlan" })
            foreach (int n in s_sizes)
                o.WriteLine(Child(build, n) is string line ? line : $"  {build,-5} {n,6} did not finish in {s_limit.TotalSeconds:F0} s");
    }

    /// <summary>Runs one size in a child process ("zones-one BUILD N"); its one line of output, or null on timeout.</summary>
    private static string? Child(string build, int n)
    {
        string self = typeof(ZoneScaleBenchmarks).Assembly.Location;
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Under the dotnet host the child needs the assembly; the apphost (named SmartOS.Benchmarks, which
        // GetFileNameWithoutExtension would cut to "SmartOS") runs it by itself.
        if (Path.GetFileName(Environment.ProcessPath!) is "dotnet" or "dotnet.exe")
            psi.ArgumentList.Add(self);
        psi.ArgumentList.Add("zones-one");
        psi.ArgumentList.Add(build);
        psi.ArgumentList.Add(n.ToString(CultureInfo.InvariantCulture));
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(s_limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return null;
        }
        return output.Result.TrimEnd('\n');
    }

    /// <summary>The child: one build at one size, one line on standard output.</summary>
    public static int RunOne(string build, int n, TextWriter o)
    {
        bool vlans = build == "vlan";
        string script = Script(n, vlans);
        string dir = Directory.CreateTempSubdirectory("smartos-zones-bench-").FullName;
        try
        {
            long baseline = GC.GetTotalMemory(forceFullCollection: true);
            var steps = new StepWriter();
            var err = new StringWriter();
            var runner = new ScenarioRunner(steps, err, dir);
            steps.Mac = () => runner.World.FindHost("h1")?.Mac;
            steps.Watch = n;
            var self = Process.GetCurrentProcess();
            var cpu0 = self.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            int rc = runner.Run(script, Path.Combine(dir, "zones.scn"));
            double wall = sw.Elapsed.TotalSeconds;
            self.Refresh();
            double cpu = (self.TotalProcessorTime - cpu0).TotalSeconds;
            steps.Close();
            if (rc != 0)
            {
                o.WriteLine($"  {build,-5} {n,6} FAILED: {err.ToString().Split('\n')[0]}");
                return 1;
            }
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            long heap = GC.GetTotalMemory(forceFullCollection: true) - baseline;
            long rss = Process.GetCurrentProcess().PeakWorkingSet64;
            GC.KeepAlive(runner);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {build,-5} {n,6} {wall,6:F2} s {cpu,6:F2} s {wall * 1e6 / n,6:F0} us {rss >> 20,6} MB {heap >> 20,5} MB {heap / n / 1024.0,5:F1} KiB {steps.FirstCreate,10} {steps.LastCreate,11} {steps.Ping,6}  {(vlans ? "" : Reference(n))}"));
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The scenario text: one etherstub nic tag, N vmadm creates, the ping.</summary>
    public static string Script(int n, bool vlans)
    {
        var s = new StringBuilder();
        s.Append("host h1 nics=1\nnictagadm add -l stub0\n");
        for (int i = 0; i < n; i++)
        {
            s.Append("vmadm create <<JSON\n{ \"alias\": \"z").Append(i + 1)
             .Append("\", \"brand\": \"joyent\", \"uuid\": \"").Append(Uuid(i))
             .Append("\", \"max_physical_memory\": 64, \"nics\": [ { \"nic_tag\": \"stub0\"");
            if (vlans) s.Append(", \"vlan_id\": ").Append(2 + i / ZonesPerVlan);
            s.Append(", \"ips\": [\"").Append(Address(i, vlans)).Append("\"] } ] }\nJSON\n");
        }
        int target = vlans ? (n - 1) / ZonesPerVlan * ZonesPerVlan : 0;
        string to = Address(target, vlans);
        s.Append("zlogin ").Append(Uuid(n - 1)).Append(" ping -s ").Append(to[..to.IndexOf('/')]).Append(" 56 1\n");
        s.Append("expect 1 packets transmitted, 1 packets received\n");
        return s.ToString();
    }

    private static string Uuid(int i) => string.Create(CultureInfo.InvariantCulture, $"{i + 1:x8}-0000-4000-8000-000000000000");

    /// <summary>Flat: 10.0.0.1/8 upward. VLANs: VLAN k has 10.(k/256).(k%256).1-100/24.</summary>
    private static string Address(int i, bool vlans)
    {
        if (!vlans)
        {
            int a = i + 1;
            return string.Create(CultureInfo.InvariantCulture, $"10.{a >> 16}.{(a >> 8) & 255}.{a & 255}/8");
        }
        int k = i / ZonesPerVlan, h = i % ZonesPerVlan + 1;
        return string.Create(CultureInfo.InvariantCulture, $"10.{k >> 8}.{k & 255}.{h}/24");
    }

    /// <summary>
    /// The transcript, dropped, except that each command's echo ("h1# ...") marks a step: the frames
    /// delivered to VNICs so far are read at the echoes around the first create, the last create and
    /// the ping (a sum over the links: only there, so that counting costs nothing per step).
    /// </summary>
    private sealed class StepWriter : TextWriter
    {
        public Func<MacLayer?> Mac = () => null;
        public int Watch;
        private int _step;
        private long _before;
        public long FirstCreate, LastCreate, Ping;

        public override Encoding Encoding => Encoding.UTF8;
        public override void Write(char value) { }
        public override void Write(string? value) { }

        public override void WriteLine(string? value)
        {
            if (value == null || !value.StartsWith("h1# ", StringComparison.Ordinal)) return;
            // Steps: 1 nictagadm, 2 .. Watch+1 the creates, Watch+2 the ping.
            _step++;
            bool mark = _step == 2 || _step == 3 || _step == Watch + 1 || _step == Watch + 2;
            if (!mark) return;
            long now = Delivered();
            if (_step == 3) FirstCreate = now - _before;
            if (_step == Watch + 2) LastCreate = now - _before;
            _before = now;
        }

        protected override void Dispose(bool disposing)
        {
            if (_step == Watch + 2) Ping = Delivered() - _before;
            base.Dispose(disposing);
        }

        private long Delivered()
        {
            long sum = 0;
            if (Mac() is MacLayer mac)
                foreach (var l in mac.Links)
                    if (l is VnicLink) sum += l.Stats.IPackets;
            return sum;
        }
    }
}
