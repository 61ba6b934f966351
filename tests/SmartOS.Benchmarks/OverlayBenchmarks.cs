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

        var (ovlRate, ovlAlloc, ovlGot, ovlSent) = Measure(w, h1, (PortLink)h1.Mac.Find("t0")!, (PortLink)h2.Mac.Find("t0")!, Length, Duration);
        var (plainRate, plainAlloc, plainGot, plainSent) = Measure(w, h1, (PortLink)h1.Mac.Find("p0")!, (PortLink)h2.Mac.Find("p0")!, Length, Duration);
        var ovl = (OverlayLink)h1.Mac.Find("ovl0")!;
        o.WriteLine($"overlay: VXLAN VNIC to VNIC across two hosts over a 10 Gbit/s wire, {Length}-byte frames, one a microsecond, {Duration / Time.Millisecond} ms virtual");
        o.WriteLine($"  overlay: {ovlRate:N0} frames/s of wall time ({ovlGot} of {ovlSent} delivered, encap {ovl.OverlayStats.Encap}, underlay_err {ovl.OverlayStats.UnderlayErr}), {ovlAlloc:F1} bytes allocated per frame");
        o.WriteLine($"  plain:   {plainRate:N0} frames/s of wall time ({plainGot} of {plainSent} delivered), {plainAlloc:F1} bytes allocated per frame");
        double ratio = plainRate / ovlRate;
        o.WriteLine($"  cost per frame, overlay / plain: {ratio:F2}x (goal: at most 1.5x) {(ratio <= 1.5 ? "met" : "NOT met")}");
    }

    private static (double Rate, double AllocPerFrame, long Delivered, long Sent) Measure(World w, Host h, PortLink from, PortLink to, int length, long duration)
    {
        var tx = from.OpenClient("bench")!;
        var sink = new Sink();
        to.OpenClient("bench")!.Receiver = sink;
        var frame = new byte[length];
        EthernetView.WriteHeader(frame, to.MacAddress, from.MacAddress, 0x88B5);
        long sent = 0, end = 0;
        var s = h.Scheduler;
        KTimer? timer = null;
        timer = new KTimer(s, _ =>
        {
            var p = tx.Pool.Rent(frame);
            if (p != null)
            {
                tx.Transmit(p);
                sent++;
            }
            if (s.Now + Time.Microsecond < end) timer!.ArmAfter(Time.Microsecond);
        });
        // Warm up: ARP on the underlay, the pool's buffers, the JIT.
        end = s.Now + 5 * Time.Millisecond;
        timer.ArmAfter(0);
        w.Scheduler.RunFor(10 * Time.Millisecond);
        long got0 = sink.Frames;
        sent = 0;
        end = s.Now + duration;
        long alloc0 = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        timer.ArmAfter(0);
        w.Scheduler.RunFor(duration + Time.Millisecond);
        sw.Stop();
        long alloc = GC.GetAllocatedBytesForCurrentThread() - alloc0;
        long got = sink.Frames - got0;
        return (got / sw.Elapsed.TotalSeconds, (double)alloc / Math.Max(1, got), got, sent);
    }
}
