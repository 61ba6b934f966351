using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>The data streams of a test, on either side: the senders (paced by -b, bounded by -n)
/// and the receivers, with iperf3's UDP loss, order and jitter accounting.</summary>
public static partial class Iperf
{
    private static async Task SendLoop(Test test)
    {
        var s = test.Settings;
        var stats = test.Stats;
        var sched = test.Scheduler;
        long end = stats.Start + s.Duration;
        var block = new byte[s.Length];
        for (int i = 0; i < block.Length; i++) block[i] = (byte)("0123456789"[i % 10]);
        try
        {
            if (test.Streams.Count > 0)
            {
                await Task.WhenAll(test.Streams.Select(d => SendStream(test, d, block)));
            }
            else
            {
                var udp = test.Udp!;
                long perPacket = s.Rate > 0 ? Math.Max(1, (long)(s.Length * 8.0 * Time.Second / s.Rate)) : 0;
                while (!test.Stopped && (s.Bytes > 0 ? stats.Bytes < s.Bytes : s.Duration == 0 || sched.Now < end))
                {
                    // Send what is due by now, then sleep a pacing tick (iperf3's pacing_timer, 1 ms).
                    long due = perPacket == 0 ? stats.Packets + 64 : (sched.Now - stats.Start) / perPacket + 1;
                    while (stats.Packets < due && !(s.Bytes > 0 && stats.Bytes >= s.Bytes))
                    {
                        long now = sched.Now;
                        BinaryPrimitives.WriteUInt32BigEndian(block, (uint)(now / Time.Second));
                        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(4), (uint)(now % Time.Second / Time.Microsecond));
                        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(8), (uint)(stats.Packets + 1));
                        var e = test.UdpPeer.Port != 0 ? udp.SendTo(block, test.UdpPeer) : udp.Send(block);
                        if (e != NetError.None && e != NetError.NoBufferSpace) break;
                        stats.Packets++;
                        stats.Bytes += block.Length;
                    }
                    await LoopSynchronizationContext.Delay(sched, Time.Millisecond);
                }
            }
        }
        catch (TcpException) { }
        // A sending client ends the test; a sending server (-R) half-closes so the client's reads end.
        if (test.IsClient) test.Done.TrySetResult();
        else foreach (var d in test.Streams) try { d.Tcp.Shutdown(); } catch (TcpException) { }
    }

    /// <summary>One TCP stream's sender: -b paces each stream, -n bounds them all together.</summary>
    private static async Task SendStream(Test test, DataStream stream, byte[] block)
    {
        var s = test.Settings;
        var total = test.Stats;
        var mine = stream.Stats;
        var sched = test.Scheduler;
        long end = total.Start + s.Duration;
        try
        {
            while (!test.Stopped && (s.Bytes > 0 ? total.Bytes < s.Bytes : s.Duration == 0 || sched.Now < end))
            {
                int len = s.Bytes > 0 ? (int)Math.Min(block.Length, s.Bytes - total.Bytes) : block.Length;
                // Rate-limited TCP (-b): wait until the block is due. Unlimited TCP is held to
                // MaxTcpRate, or over an etherstub (no speed, no delay) virtual time would never
                // reach the end of a timed test.
                long rate = s.Rate > 0 ? s.Rate : MaxTcpRate;
                {
                    long due = total.Start + (long)(mine.Bytes * 8.0 * Time.Second / rate);
                    if (due > sched.Now) await LoopSynchronizationContext.Delay(sched, due - sched.Now);
                }
                await stream.Tcp.SendAsync(block.AsMemory(0, len));
                if (test.Stopped) break;
                mine.Bytes += len;
                mine.Packets++;
                total.Bytes += len;
                total.Packets++;
            }
        }
        catch (TcpException) { }
    }

    private static async Task ReceiveLoop(Test test)
    {
        var stats = test.Stats;
        var s = test.Settings;
        var sched = test.Scheduler;
        try
        {
            if (test.Streams.Count > 0)
            {
                await Task.WhenAll(test.Streams.Select(d => ReceiveStream(test, d)));
            }
            else
            {
                var buffer = new byte[UdpSocket.MaxPayload];
                var udp = test.Udp!;
                using var stop = new CancellationTokenSource();
                // The end of the test cancels the receive on the loop (an await, which resumes through
                // the loop's context): a continuation on the default task scheduler ran inline only
                // while the stack had room, and otherwise on a pool thread, off the host's loop
                // (kernel/Timeline.cs rule 6).
                _ = CancelWhenDone(test.Done.Task, stop);
                while (!test.Stopped)
                {
                    var r = await udp.ReceiveFromAsync(buffer, stop.Token);
                    if (r.Error != NetError.None) break;
                    if (test.Stopped || r.Length < 12) continue;
                    UdpArrival(stats, buffer, r.Length, sched.Now);
                    if (test.IsClient && s.Bytes > 0 && stats.Bytes >= s.Bytes) test.Done.TrySetResult();
                }
            }
        }
        catch (TcpException) { }
    }

    private static async Task CancelWhenDone(Task done, CancellationTokenSource stop)
    {
        await done;
        try { stop.Cancel(); }
        catch (ObjectDisposedException) { } // the receive loop ended first
    }

    private static async Task ReceiveStream(Test test, DataStream stream)
    {
        var s = test.Settings;
        var buffer = new byte[256 * 1024];
        try
        {
            while (true)
            {
                int n = await stream.Tcp.ReceiveAsync(buffer);
                if (n == 0) break;
                if (test.Stopped) continue;
                stream.Stats.Bytes += n;
                test.Stats.Bytes += n;
                if (test.IsClient && s.Bytes > 0 && test.Stats.Bytes >= s.Bytes) test.Done.TrySetResult();
            }
        }
        catch (TcpException) { }
    }

    /// <summary>Counts a datagram as iperf3's iperf_udp_recv does: loss from gaps in the packet
    /// count, out-of-order arrivals, and RFC 1889 jitter over the transit times.</summary>
    private static void UdpArrival(Stats stats, byte[] data, int length, long now)
    {
        long sent = BinaryPrimitives.ReadUInt32BigEndian(data) * Time.Second + BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4)) * Time.Microsecond;
        long pcount = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(8));
        stats.Bytes += length;
        if (pcount >= stats.Packets + 1)
        {
            if (pcount > stats.Packets + 1) stats.Lost += pcount - 1 - stats.Packets;
            stats.Packets = pcount;
        }
        else
        {
            stats.OutOfOrder++;
            if (stats.Lost > 0) stats.Lost--;
        }
        long transit = now - sent;
        if (stats.PrevTransit != long.MinValue)
        {
            double d = Math.Abs(transit - stats.PrevTransit) / (double)Time.Second;
            stats.Jitter += (d - stats.Jitter) / 16.0;
        }
        stats.PrevTransit = transit;
    }
}
