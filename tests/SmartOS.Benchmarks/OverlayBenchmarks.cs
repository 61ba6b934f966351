using System.Diagnostics;
using SmartOS.Cli;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// Overlay VNIC to overlay VNIC across two hosts in virtual time (issue 15): h1 and h2 joined by a
/// 10 Gbit/s wire, each with an underlay address on a VNIC of its NIC and a direct VXLAN overlay to
/// the other, so every frame is encapsulated, routed and ARP-resolved by h1's global IP stack,
/// carried by the wire, and decapsulated by h2's. Beside it, the same pair of VNICs on the plain
/// wire. Each path carries 1,000-byte frames, one a microsecond, for 100 ms of virtual time. Prints
/// frames per second of wall time for each, the ratio of their cost per frame (goal: the overlay at
/// most 1.5 times the plain path) and the bytes allocated per frame on the sending thread.
/// </summary>
public static class OverlayBenchmarks
{
    private sealed class Sink : IMacReceiver
    {
        public long Frames;
        public bool AcceptsPendingChecksum => true;
        public void Receive(MacClient client, Packet packet)
        {
            Frames++;
            packet.Free();
        }
    }

    private static void Cmd(World w, Host h, string line)
    {
        var r = Dispatcher.Run(w, h, line.Split(' '));
        if (r.ExitCode != 0) throw new InvalidOperationException($"{h.Name}: {line}: {r.Stderr}");
    }

    public static void Run(TextWriter o)
    {
        const int Length = 1000;
        const long Duration = 100 * Time.Millisecond;
        var w = new World(1);
        var h1 = w.AddHost("h1", 1);
        var h2 = w.AddHost("h2", 1);
        w.Connect((PhysLink)h1.Mac.Find("e1000g0")!, (PhysLink)h2.Mac.Find("e1000g0")!, 10_000_000_000, 10 * Time.Microsecond);
        foreach (var (h, me, peer) in new[] { (h1, "10.0.0.1", "10.0.0.2"), (h2, "10.0.0.2", "10.0.0.1") })
        {
            Cmd(w, h, "dladm create-vnic -t -l e1000g0 under0");
            Cmd(w, h, "ipadm create-if under0");
            Cmd(w, h, $"ipadm create-addr -T static -a {me}/24 under0/v4");
            Cmd(w, h, $"dladm create-overlay -t -e vxlan -s direct -v 4242 -p vxlan/listen_ip={me},direct/dest_ip={peer},direct/dest_port=4789 ovl0");
        }
        Cmd(w, h1, "dladm create-vnic -t -l ovl0 -m 2:0:0:0:1:1 t0");
        Cmd(w, h2, "dladm create-vnic -t -l ovl0 -m 2:0:0:0:1:2 t0");
        Cmd(w, h1, "dladm create-vnic -t -l e1000g0 -m 2:0:0:0:2:1 p0");
        Cmd(w, h2, "dladm create-vnic -t -l e1000g0 -m 2:0:0:0:2:2 p0");

        var ovlPath = new Path(w, h1, (PortLink)h1.Mac.Find("t0")!, (PortLink)h2.Mac.Find("t0")!, Length);
        var plainPath = new Path(w, h1, (PortLink)h1.Mac.Find("p0")!, (PortLink)h2.Mac.Find("p0")!, Length);
        // Warm up both (ARP on the underlay, the pool's buffers, the JIT's tiers), then measure them
        // in turn, twice, keeping each one's best: the machine is shared, and a path measured while
        // the JIT still runs tier-0 code would look slower than it is. The runtime promotes a method
        // to optimised code only after its calls have been counted, which starts 100 ms after the last
        // tier-0 compile: a warm-up of a few tens of milliseconds measured the overlay's tier-0 code
        // (5-10x the plain path's cost, where fully optimised code gives about 2x), so each path warms
        // up for two seconds of wall time.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed < TimeSpan.FromSeconds(2))
        {
            ovlPath.Run(20 * Time.Millisecond);
            plainPath.Run(20 * Time.Millisecond);
        }
        Result ovl = default, plain = default;
        for (int round = 0; round < 2; round++)
        {
            ovl = Result.Best(ovl, ovlPath.Run(Duration));
            plain = Result.Best(plain, plainPath.Run(Duration));
        }
        var link = (OverlayLink)h1.Mac.Find("ovl0")!;
        o.WriteLine($"overlay: VXLAN VNIC to VNIC across two hosts over a 10 Gbit/s wire, {Length}-byte frames, one a microsecond, {Duration / Time.Millisecond} ms virtual, best of 2");
        o.WriteLine($"  overlay: {ovl.WallRate:N0} frames/s of wall time, {ovl.CpuRate:N0} per CPU second ({ovl.Delivered} of {ovl.Sent} delivered; encap {link.OverlayStats.Encap}, underlay_err {link.OverlayStats.UnderlayErr}), {ovl.AllocPerFrame:F1} bytes allocated per frame, {ovl.EventsPerFrame:F2} scheduler events per frame");
        o.WriteLine($"  plain:   {plain.WallRate:N0} frames/s of wall time, {plain.CpuRate:N0} per CPU second ({plain.Delivered} of {plain.Sent} delivered), {plain.AllocPerFrame:F1} bytes allocated per frame, {plain.EventsPerFrame:F2} scheduler events per frame");
        double ratio = ThreadCpuClock.Available ? plain.CpuRate / ovl.CpuRate : plain.WallRate / ovl.WallRate;
        o.WriteLine($"  cost per frame, overlay / plain ({(ThreadCpuClock.Available ? "CPU" : "wall")} time): {ratio:F2}x (goal: at most 1.5x) {(ratio <= 1.5 ? "met" : "NOT met")}");
    }

    private readonly record struct Result(double WallRate, double CpuRate, double AllocPerFrame, long Delivered, long Sent, double EventsPerFrame)
    {
        public static Result Best(Result a, Result b) => b.CpuRate + b.WallRate > a.CpuRate + a.WallRate ? b : a;
    }

    /// <summary>One sender and one receiver, and the timer that offers a frame every microsecond.</summary>
    private sealed class Path
    {
        private readonly World _w;
        private readonly Scheduler _s;
        private readonly MacClient _tx;
        private readonly Sink _sink = new();
        private readonly byte[] _frame;
        private readonly KTimer _timer;
        private long _sent, _end;

        public Path(World w, Host h, PortLink from, PortLink to, int length)
        {
            _w = w;
            _s = h.Scheduler;
            _tx = from.OpenClient("bench")!;
            to.OpenClient("bench")!.Receiver = _sink;
            _frame = new byte[length];
            EthernetView.WriteHeader(_frame, to.MacAddress, from.MacAddress, 0x88B5);
            _timer = new KTimer(_s, _ =>
            {
                var p = _tx.Pool.Rent(_frame);
                if (p != null)
                {
                    _tx.Transmit(p);
                    _sent++;
                }
                if (_s.Now + Time.Microsecond < _end) _timer!.ArmAfter(Time.Microsecond);
            });
        }

        public Result Run(long duration)
        {
            long got0 = _sink.Frames;
            _sent = 0;
            _end = _s.Now + duration;
            long alloc0 = GC.GetAllocatedBytesForCurrentThread();
            long events0 = _w.Scheduler.EventsRun;
            double cpu0 = ThreadCpuClock.Now();
            var sw = Stopwatch.StartNew();
            _timer.ArmAfter(0);
            _w.Scheduler.RunFor(duration + Time.Millisecond);
            sw.Stop();
            double cpu = ThreadCpuClock.Now() - cpu0;
            long alloc = GC.GetAllocatedBytesForCurrentThread() - alloc0;
            long got = _sink.Frames - got0;
            long events = _w.Scheduler.EventsRun - events0;
            return new Result(got / sw.Elapsed.TotalSeconds, cpu > 0 ? got / cpu : 0, (double)alloc / Math.Max(1, got), got, _sent, (double)events / Math.Max(1, got));
        }
    }
}
