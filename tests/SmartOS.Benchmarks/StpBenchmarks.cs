using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Benchmarks;

/// <summary>
/// Spanning-tree convergence in a ring of 20 bridges (issue 16): 20 hosts, each bridging its two
/// NICs, cabled in a ring. Prints the virtual time from power-on until the last port state change
/// (802.1D-1998 predicts two forward delays: listening, then learning), the blocked ports (one),
/// the BPDUs sent, and the wall time the run took; then the same after one wire of the tree is cut
/// (max age for the stale information to expire, then two forward delays). Both with illumos's
/// default timers and with a hello of 1 s and the shortest forward delay that max age 20 allows.
/// (Max age bounds the diameter: with max age 6 a ring of 20, ten hops across, does not converge,
/// as 802.1D's diameter rule says.)
/// </summary>
public static class StpBenchmarks
{
    private const int Bridges = 20;

    public static void Run(TextWriter o)
    {
        o.WriteLine($"stp: a ring of {Bridges} bridges (802.1D STP), virtual convergence time and wall time");
        o.WriteLine($"{"timers (fd/hello/maxage)",-26} {"event",-12} {"converged",10} {"blocked",8} {"BPDUs",7} {"wall",9}");
        Ring(o, BridgeConfig.Default); // the JIT
        foreach (var cfg in new[] { BridgeConfig.Default, new BridgeConfig(BridgeConfig.DefaultPriority, 20, 1, 11, 0) })
        {
            var lines = Ring(o, cfg);
            foreach (string l in lines) o.WriteLine(l);
        }
    }

    private static List<string> Ring(TextWriter o, BridgeConfig cfg)
    {
        var s = new Scheduler();
        var hosts = new MacLayer[Bridges];
        var bridges = new Bridge[Bridges];
        long lastChange = 0;
        for (int i = 0; i < Bridges; i++)
        {
            hosts[i] = new MacLayer($"h{i}", s, new PacketPool(), new KstatRegistry(), new HostRandom((ulong)(1000 + i)));
            hosts[i].AddPhys("e1000g0");
            hosts[i].AddPhys("e1000g1");
        }
        var wires = new Wire[Bridges];
        for (int i = 0; i < Bridges; i++)
            wires[i] = new Wire(s, new HostRandom((ulong)(2000 + i)), (PhysLink)hosts[i].Find("e1000g0")!, (PhysLink)hosts[(i + 1) % Bridges].Find("e1000g1")!, delayNs: 5 * Time.Microsecond);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < Bridges; i++)
        {
            if (!hosts[i].CreateBridge("br", cfg, ["e1000g0", "e1000g1"]).IsOk) throw new InvalidOperationException("create-bridge failed");
            bridges[i] = hosts[i].FindBridge("br")!;
            bridges[i].PortStateChanged += (_, _) => lastChange = s.Now;
        }
        long horizon = (cfg.MaxAge + 4 * cfg.ForwardDelay) * Time.Second;
        s.RunFor(horizon);
        sw.Stop();
        string timers = $"{cfg.ForwardDelay}/{cfg.HelloTime}/{cfg.MaxAge} s";
        var lines = new List<string> { Line(timers, "power-on", lastChange, bridges, 0, sw.Elapsed) };

        // Cut a wire both of whose ends forward (a branch of the tree), and time the repair.
        var cut = wires.First(w => Port(w.A).State == StpPortState.Forwarding && Port(w.B).State == StpPortState.Forwarding);
        long at = s.Now;
        long sent = Bpdus(bridges);
        sw.Restart();
        cut.Disconnect();
        s.RunFor(horizon);
        sw.Stop();
        lines.Add(Line(timers, "wire cut", lastChange - at, bridges, sent, sw.Elapsed));
        if (bridges.SelectMany(b => b.Ports).Count(p => p.State == StpPortState.Blocking) != 0)
            throw new InvalidOperationException("after the cut the ring is a line: nothing should stay blocked");
        return lines;

        BridgePort Port(PhysLink l) => MacLayer.BridgeOf(l)!.PortOf(l)!;
    }

    private static long Bpdus(Bridge[] bridges) => bridges.SelectMany(b => b.Ports).Sum(p => p.TxBpdus);

    private static string Line(string timers, string what, long converged, Bridge[] bridges, long bpdusBefore, TimeSpan wall)
    {
        int blocked = bridges.SelectMany(b => b.Ports).Count(p => p.State == StpPortState.Blocking);
        long bpdus = Bpdus(bridges) - bpdusBefore;
        if (bridges.Select(b => b.DesignatedRoot).Distinct().Count() != 1) throw new InvalidOperationException("no single root");
        return string.Create(CultureInfo.InvariantCulture,
            $"{timers,-26} {what,-12} {converged / (double)Time.Second,8:F3} s {blocked,8} {bpdus,7} {wall.TotalMilliseconds,6:F1} ms");
    }
}
