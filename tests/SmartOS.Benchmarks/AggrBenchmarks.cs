using System.Buffers.Binary;
using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Benchmarks;

/// <summary>
/// An aggregation of two 10 Gbit/s wires carrying many flows (issue 16): two hosts, LACP active on
/// both, a VNIC on each aggregation; once LACP is in sync, the sender offers 1,000 UDP flows of
/// 1,514-byte frames at 24 Gbit/s (more than the two wires carry) for 50 ms of virtual time. Prints
/// the share of 20 Gbit/s the receiver got in virtual time, how the L4 hash split the frames over
/// the ports, and frames per second of wall time.
/// </summary>
public static class AggrBenchmarks
{
    private sealed class Sink : IMacReceiver
    {
        public long Frames, Bytes;
        public void Receive(MacClient client, Packet packet)
        {
            Frames++;
            Bytes += packet.Length;
            packet.Free();
        }
    }

    public static void Run(TextWriter o)
    {
        const int Flows = 1000, Length = 1514;
        const long Duration = 50 * Time.Millisecond;
        var s = new Scheduler();
        MacLayer Host(string name, ulong seed)
        {
            var m = new MacLayer(name, s, new PacketPool(1 << 17), new KstatRegistry(), new HostRandom(seed));
            m.AddPhys("e1000g0");
            m.AddPhys("e1000g1");
            return m;
        }
        var h1 = Host("h1", 1);
        var h2 = Host("h2", 2);
        for (int i = 0; i < 2; i++)
            _ = new Wire(s, new HostRandom(10 + (ulong)i), (PhysLink)h1.Find($"e1000g{i}")!, (PhysLink)h2.Find($"e1000g{i}")!, 10_000_000_000, 10 * Time.Microsecond);
        foreach (var h in new[] { h1, h2 })
            h.CreateAggr("aggr0", ["e1000g0", "e1000g1"], AggrPolicy.L4, LacpMode.Active, LacpTimer.Short, null, true, out _);
        h1.CreateVnic("vnic0", "aggr0", new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(0x020000000001)), 0, true, out var a);
        h2.CreateVnic("vnic0", "aggr0", new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(0x020000000002)), 0, true, out var b);
        var tx = a!.OpenClient("bench")!;
        var sink = new Sink();
        b!.OpenClient("bench")!.Receiver = sink;
        s.RunFor(3 * Time.Second); // LACP in sync (2 s aggregate wait)
        var aggr = (AggrLink)h1.Find("aggr0")!;

        var frame = new byte[Length];
        EthernetView.WriteHeader(frame, b.MacAddress, a.MacAddress, EtherType.Ipv4);
        frame[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), Length - 14);
        frame[22] = 64;
        frame[23] = 17;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(26), 0xC6120001);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(30), 0xC6120002);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(36), 5201);

        // Two frames every microsecond: 24.2 Gbit/s offered.
        int flow = 0;
        long sent = 0, end = s.Now + Duration;
        long[] before = aggr.Ports.Select(p => p.OutPackets).ToArray();
        KTimer? timer = null;
        timer = new KTimer(s, _ =>
        {
            for (int i = 0; i < 2; i++)
            {
                var p = tx.Pool.Rent(frame);
                if (p == null) continue;
                BinaryPrimitives.WriteUInt16BigEndian(p.Data[34..], (ushort)(10000 + flow));
                flow = (flow + 1) % Flows;
                tx.Transmit(p);
                sent++;
            }
            if (s.Now + Time.Microsecond < end) timer!.ArmAfter(Time.Microsecond);
        });
        long startBytes = sink.Bytes, startFrames = sink.Frames, start = s.Now;
        var sw = Stopwatch.StartNew();
        timer.ArmAfter(0);
        s.RunFor(Duration + Time.Millisecond);
        sw.Stop();
        long bytes = sink.Bytes - startBytes, frames = sink.Frames - startFrames;
        // Over the whole run (the queues drain for 1 ms after the last frame is offered).
        double gbps = bytes * 8.0 / ((s.Now - start) / 1e9) / 1e9;
        o.WriteLine($"aggr: 2 x 10 Gbit/s, LACP, L4 hash, {Flows} flows of {Length}-byte frames offered at 24.2 Gbit/s for {Duration / Time.Millisecond} ms virtual");
        o.WriteLine($"  received {gbps:F2} Gbit/s = {gbps / 20 * 100:F1}% of 20 Gbit/s (frames {frames} of {sent} offered)");
        o.WriteLine($"  per port: " + string.Join(", ", aggr.Ports.Select((p, i) => $"{p.Phys.Name} {p.OutPackets - before[i]} frames")));
        o.WriteLine($"  wall: {sw.Elapsed.TotalMilliseconds:F0} ms, {frames / sw.Elapsed.TotalSeconds:N0} frames/s delivered");
    }
}
