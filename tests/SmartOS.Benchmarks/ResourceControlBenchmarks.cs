using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Benchmarks;

/// <summary>
/// Resource-control figures (vnic/ResourceControl.cs): maxbw accuracy in virtual time, classifier
/// throughput and allocation against the number of flows, and priority shares on a saturated wire.
/// Rates count whole Ethernet frames as the MAC layer sees them (header and payload, no FCS).
/// </summary>
public static class ResourceControlBenchmarks
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    public static void Run(TextWriter o)
    {
        o.WriteLine("== maxbw accuracy: 10 s of virtual time, 1514-byte frames offered at 1.2x the limit");
        o.WriteLine("  maxbw        achieved bit/s        error      wall");
        foreach (long bps in new[] { 10_000_000L, 100_000_000L, 1_000_000_000L, 5_000_000_000L })
            MaxBw(o, bps);
        o.WriteLine();
        o.WriteLine("== classification: a VNIC with N flows (transport=udp,local_port=P); whole transmit path");
        o.WriteLine("   (classify, count, switch, deliver to the peer VNIC). The six set-ups are timed in turn, 9 rounds");
        o.WriteLine("   of 500k frames each, best round kept, so load from other processes hits them alike.");
        o.WriteLine("   one hot flow: every frame matches the same flow; spread: 256 ports over the flows (one unmatched)");
        o.WriteLine("  flows   one hot flow frames/s  vs 1     spread frames/s  vs 1    allocated bytes/frame");
        int[] sizes = [1, 100, 10_000];
        var rigs = new List<ClassifierRig>();
        foreach (int n in sizes)
        {
            rigs.Add(new ClassifierRig(n, spread: false));
            rigs.Add(new ClassifierRig(n, spread: true));
        }
        for (int round = 0; round < 9; round++)
            foreach (var r in rigs) r.Round(500_000);
        for (int i = 0; i < sizes.Length; i++)
        {
            var hot = rigs[2 * i];
            var spread = rigs[2 * i + 1];
            o.WriteLine(string.Create(s_inv,
                $"  {sizes[i],6}  {hot.Best,16:N0}  {rigs[0].Best / hot.Best,5:F2}x  {spread.Best,15:N0}  {rigs[1].Best / spread.Best,5:F2}x   {Math.Max(hot.AllocatedPerFrame, spread.AllocatedPerFrame),8:F3}"));
        }
        o.WriteLine();
        o.WriteLine("== priority: two VNICs each offering 800 Mbit/s to one 1 Gbit/s wire for 1 s of virtual time");
        Priority(o, "high", "low");
        Priority(o, "high", "medium");
        Priority(o, "high", "high");
    }

    private sealed class Counter : IMacReceiver
    {
        public long Bytes, Frames;
        public void Receive(MacClient client, Packet packet)
        {
            Bytes += packet.Length;
            Frames++;
            packet.Free();
        }
    }

    private static (Scheduler, MacLayer) Host(int nics = 2)
    {
        var sched = new Scheduler();
        var mac = new MacLayer("bench", sched, new PacketPool(), new KstatRegistry(), new HostRandom(7));
        for (int i = 0; i < nics; i++) mac.AddPhys($"e1000g{i}");
        mac.Boot(new MemoryConfigStore());
        return (sched, mac);
    }

    private static VnicLink Vnic(MacLayer mac, string name, string over, int n)
    {
        var s = mac.CreateVnic(name, over, new MacLayer.MacRequest(MacAddressType.Fixed, MacOf(n)), 0, true, out var v);
        if (!s.IsOk) throw new InvalidOperationException(s.Message);
        return v!;
    }

    private static MacAddress MacOf(int n) => new(0x0208_2000_0000UL + (ulong)n);

    private static byte[] Udp(int from, int to, ushort sport, ushort dport, int size)
    {
        var f = new byte[size];
        EthernetView.WriteHeader(f, MacOf(to), MacOf(from), EtherType.Ipv4);
        var ip = f.AsSpan(14);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[20..], sport);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[22..], dport);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip[24..], (ushort)(size - 34));
        Ipv4View.Write(ip, 0x0A000001, 0x0A000002, IpProtocol.Udp, size - 34);
        return f;
    }

    /// <summary>Offers <paramref name="bps"/> from a link in 100 µs bursts until <paramref name="until"/>.</summary>
    private sealed class BurstPump
    {
        private readonly PortLink _from;
        private readonly PacketPool _pool;
        private readonly byte[] _frame;
        private readonly long _until;
        private readonly KTimer _timer;
        private readonly double _perTick;
        private double _owed;
        private readonly Scheduler _sched;
        private const long Tick = 100 * Time.Microsecond;

        public BurstPump(Scheduler sched, MacLayer mac, PortLink from, byte[] frame, long bps, long until)
        {
            _sched = sched; _from = from; _pool = mac.Pool; _frame = frame; _until = until;
            _perTick = bps / 8.0 / frame.Length * Tick / Time.Second;
            _timer = new KTimer(sched, static s => ((BurstPump)s!).Fire(), this);
            _timer.ArmAt(sched.Now);
        }

        private void Fire()
        {
            _owed += _perTick;
            for (; _owed >= 1; _owed--) _from.TransmitAsClient(_pool.Rent(_frame)!);
            if (_sched.Now + Tick < _until) _timer.ArmAfter(Tick);
        }
    }

    private static void MaxBw(TextWriter o, long bps)
    {
        var (sched, mac) = Host();
        mac.CreateEtherstub("stub0", true);
        var a = Vnic(mac, "vnic0", "stub0", 1);
        var b = Vnic(mac, "vnic1", "stub0", 2);
        var sink = new Counter();
        b.OpenClient("bench")!.Receiver = sink;
        var s = mac.SetLinkProp(a, "maxbw", (bps / 1000).ToString(s_inv) + "K", true);
        if (!s.IsOk) throw new InvalidOperationException(s.Message);
        const long duration = 10 * Time.Second;
        _ = new BurstPump(sched, mac, a, Udp(1, 2, 1000, 2000, 1514), bps * 6 / 5, duration);
        var wall = Stopwatch.StartNew();
        sched.RunUntil(duration);
        double achieved = sink.Bytes * 8.0 / (duration / (double)Time.Second);
        double err = (achieved - bps) / bps * 100;
        o.WriteLine(string.Create(s_inv, $"  {LinkControl.FormatMaxBw(bps).Trim(),5}M  {achieved,18:N0}   {err,+8:F4}%   {wall.Elapsed.TotalSeconds,5:F2}s"));
    }

    /// <summary>A VNIC with N flows and a 256-frame mix, timed in rounds.</summary>
    private sealed class ClassifierRig
    {
        private readonly VnicLink _a;
        private readonly PacketPool _pool;
        private readonly byte[][] _frames = new byte[256][];
        private long _framesSent, _allocated;

        public ClassifierRig(int flows, bool spread)
        {
            var (_, mac) = Host();
            mac.CreateEtherstub("stub0", true);
            _a = Vnic(mac, "vnic0", "stub0", 1);
            var b = Vnic(mac, "vnic1", "stub0", 2);
            b.OpenClient("bench")!.Receiver = new Counter();
            for (int i = 0; i < flows; i++)
            {
                var s = mac.AddFlow($"f{i}", "vnic0", $"transport=udp,local_port={i + 1}", [], true);
                if (!s.IsOk) throw new InvalidOperationException(s.Message);
            }
            for (int i = 0; i < _frames.Length; i++)
            {
                ushort port = !spread ? (ushort)flows : i == 255 ? (ushort)65000 : (ushort)(1 + (long)i * flows / 255 % flows);
                _frames[i] = Udp(1, 2, port, 53, 128);
            }
            _pool = mac.Pool;
            Send(100_000); // warm-up: pool, JIT
        }

        public double Best { get; private set; }
        public double AllocatedPerFrame => _allocated / (double)_framesSent;

        private void Send(int n)
        {
            for (int i = 0; i < n; i++) _a.TransmitAsClient(_pool.Rent(_frames[i & 255])!);
        }

        public void Round(int n)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var wall = Stopwatch.StartNew();
            Send(n);
            wall.Stop();
            _allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            _framesSent += n;
            Best = Math.Max(Best, n / wall.Elapsed.TotalSeconds);
        }
    }

    private static void Priority(TextWriter o, string x, string y)
    {
        var (sched, mac) = Host();
        _ = new Wire(sched, new HostRandom(3), (PhysLink)mac.Find("e1000g0")!, (PhysLink)mac.Find("e1000g1")!, speedBps: 1_000_000_000);
        var a = Vnic(mac, "vnic0", "e1000g0", 1);
        var b = Vnic(mac, "vnic1", "e1000g0", 2);
        var ca = Vnic(mac, "vnic2", "e1000g1", 3);
        var cb = Vnic(mac, "vnic3", "e1000g1", 4);
        var sa = new Counter();
        var sb = new Counter();
        ca.OpenClient("bench")!.Receiver = sa;
        cb.OpenClient("bench")!.Receiver = sb;
        mac.SetLinkProp(a, "priority", x, true);
        mac.SetLinkProp(b, "priority", y, true);
        _ = new BurstPump(sched, mac, a, Udp(1, 3, 1000, 2000, 1514), 800_000_000, Time.Second);
        _ = new BurstPump(sched, mac, b, Udp(2, 4, 1000, 2000, 1514), 800_000_000, Time.Second);
        sched.RunUntil(Time.Second);
        double total = sa.Bytes + sb.Bytes;
        o.WriteLine(string.Create(s_inv,
            $"  {x,-6} vs {y,-6}: {sa.Bytes * 8 / 1e6,7:F1} vs {sb.Bytes * 8 / 1e6,7:F1} Mbit/s  share {sa.Bytes / total * 100,5:F1}% / {sb.Bytes / total * 100,5:F1}%  wire {total * 8 / 1e6,6:F1} Mbit/s"));
    }
}
