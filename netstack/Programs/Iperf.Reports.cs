using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>What iperf prints: the interval lines and the summaries, in iperf3's formats
/// (iperf_locale.c), and the units of its unit_snprintf.</summary>
public static partial class Iperf
{
    private static async Task Reports(Test test, long start)
    {
        var s = test.Settings;
        var o = test.Ctx.Out;
        var sched = test.Scheduler;
        bool sendingTcp = test.Sending && !s.Udp;
        if (s.Interval > 0) o.WriteLine(s.Udp
            ? (test.Sending ? "[ ID] Interval           Transfer     Bitrate         Total Datagrams" : "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams")
            : (sendingTcp ? "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd" : "[ ID] Interval           Transfer     Bitrate"));
        long lastTime = start, lastBytes = 0, lastPackets = 0, lastLost = 0;
        int count = test.Streams.Count;
        var lastStream = new long[count];
        var lastRetr = new long[count];
        void Line(long now)
        {
            var st = test.Stats;
            double t0 = (lastTime - start) / (double)Time.Second, t1 = (now - start) / (double)Time.Second;
            double secs = (now - lastTime) / (double)Time.Second;
            string Head(string id, long bytes) => $"[{id}] {Interval(t0, t1)} sec  {Bytes(bytes)}  {Bits(secs > 0 ? bytes / secs : 0)}";
            if (s.Udp)
            {
                string head = Head($"{StreamId,3}", st.Bytes - lastBytes);
                if (test.Sending) o.WriteLine($"{head}  {st.Packets - lastPackets}  ");
                else
                {
                    long total = st.Packets - lastPackets, lost = st.Lost - lastLost;
                    o.WriteLine($"{head}  {st.Jitter * 1000,5:F3} ms  {lost}/{total} ({Percent(lost, total)}%)  ");
                }
            }
            else
            {
                long sumRetr = 0;
                // iperf3 separates interval groups of several streams, not the first from the header.
                if (count > 1 && lastTime > start) o.WriteLine(Separator);
                for (int i = 0; i < count; i++)
                {
                    var d = test.Streams[i];
                    string head = Head($"{d.Id,3}", d.Stats.Bytes - lastStream[i]);
                    lastStream[i] = d.Stats.Bytes;
                    if (sendingTcp)
                    {
                        long retr = d.Tcp.Retransmits - lastRetr[i];
                        lastRetr[i] += retr;
                        sumRetr += retr;
                        o.WriteLine($"{head}  {retr,3}   {Bytes(d.Tcp.CongestionWindow)}       ");
                    }
                    else o.WriteLine($"{head}                  ");
                }
                if (count > 1)
                {
                    // iperf3's [SUM] line for the interval, then a separator before the next one.
                    string sum = Head("SUM", st.Bytes - lastBytes);
                    o.WriteLine(sendingTcp ? $"{sum}  {sumRetr,3}             " : $"{sum}                  ");
                }
            }
            lastTime = now; lastBytes = st.Bytes; lastPackets = st.Packets; lastLost = st.Lost;
        }
        if (s.Interval > 0)
        {
            while (!test.Stopped)
            {
                long due = lastTime + s.Interval;
                var delay = LoopSynchronizationContext.Delay(sched, due - sched.Now);
                await Task.WhenAny(delay, test.Done.Task);
                if (test.Done.Task.IsCompleted) break;
                Line(sched.Now);
            }
            // The last, partial interval (iperf3 skips one too short to mean anything).
            long end = test.Stats.End > 0 ? test.Stats.End : sched.Now;
            if (end - lastTime > s.Interval / 10) Line(end);
        }
    }

    private static void Summary(Test test, JsonElement peer)
    {
        var o = test.Ctx.Out;
        var s = test.Settings;
        double mine = (test.Stats.End - test.Stats.Start) / (double)Time.Second;
        var peerStreams = peer.TryGetProperty("streams", out var ps) && ps.ValueKind == JsonValueKind.Array ? ps : default;
        int peerCount = peerStreams.ValueKind == JsonValueKind.Array ? peerStreams.GetArrayLength() : 0;
        bool peerHasRetr = peer.TryGetProperty("sender_has_retransmits", out var hr) && hr.ValueKind == JsonValueKind.Number && JsonLong(hr) == 1;
        o.WriteLine(Separator);
        int count = Math.Max(1, test.Streams.Count);
        long sumS = 0, sumR = 0, sumRetr = 0;
        double sumSTime = 0, sumRTime = 0;
        for (int i = 0; i < count; i++)
        {
            var st = test.Streams.Count > 0 ? test.Streams[i].Stats : test.Stats;
            string id = $"{(test.Streams.Count > 0 ? test.Streams[i].Id : StreamId),3}";
            long peerBytes = 0, peerPackets = 0, peerErrors = 0, peerRetr = -1;
            double peerJitter = 0, peerTime = mine;
            if (i < peerCount)
            {
                var p = peerStreams[i];
                // iperf3 writes numbers with cJSON, which may print an integral count as 1.2e+07.
                if (p.TryGetProperty("bytes", out var v)) peerBytes = JsonLong(v);
                if (p.TryGetProperty("packets", out v)) peerPackets = JsonLong(v);
                if (p.TryGetProperty("errors", out v)) peerErrors = JsonLong(v);
                if (p.TryGetProperty("retransmits", out v)) peerRetr = JsonLong(v);
                if (p.TryGetProperty("jitter", out v)) peerJitter = JsonDouble(v);
                if (p.TryGetProperty("end_time", out v) && p.TryGetProperty("start_time", out var v0)) peerTime = JsonDouble(v) - JsonDouble(v0);
            }
            // Sender and receiver, whichever side each is.
            long sBytes = test.Sending ? st.Bytes : peerBytes, rBytes = test.Sending ? peerBytes : st.Bytes;
            double sTime = test.Sending ? mine : peerTime, rTime = test.Sending ? peerTime : mine;
            if (s.Udp)
            {
                long sPackets = test.Sending ? st.Packets : peerPackets;
                long rPackets = test.Sending ? peerPackets : st.Packets, rLost = test.Sending ? peerErrors : st.Lost;
                double rJitter = test.Sending ? peerJitter : st.Jitter;
                o.WriteLine("[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams");
                o.WriteLine($"[{id}] {Interval(0, sTime)} sec  {Bytes(sBytes)}  {Bits(sTime > 0 ? sBytes / sTime : 0)}  {0.0,5:F3} ms  0/{sPackets} (0%)  sender");
                o.WriteLine($"[{id}] {Interval(0, rTime)} sec  {Bytes(rBytes)}  {Bits(rTime > 0 ? rBytes / rTime : 0)}  {rJitter * 1000,5:F3} ms  {rLost}/{rPackets} ({Percent(rLost, rPackets)}%)  receiver");
                return;
            }
            long retr = test.Sending ? (test.Streams.Count > 0 ? test.Streams[i].Tcp.Retransmits : 0) : peerHasRetr ? peerRetr : -1;
            if (i == 0) o.WriteLine(retr >= 0 ? "[ ID] Interval           Transfer     Bitrate         Retr" : "[ ID] Interval           Transfer     Bitrate");
            SenderReceiver(id, sBytes, sTime, rBytes, rTime, retr);
            sumS += sBytes; sumR += rBytes; sumRetr += Math.Max(0, retr);
            sumSTime = Math.Max(sumSTime, sTime); sumRTime = Math.Max(sumRTime, rTime);
            if (i == count - 1 && count > 1) SenderReceiver("SUM", sumS, sumSTime, sumR, sumRTime, retr >= 0 ? sumRetr : -1);
        }

        void SenderReceiver(string id, long sBytes, double sTime, long rBytes, double rTime, long retr)
        {
            string sender = $"[{id}] {Interval(0, sTime)} sec  {Bytes(sBytes)}  {Bits(sTime > 0 ? sBytes / sTime : 0)}";
            o.WriteLine(retr >= 0 ? $"{sender}  {retr,3}             sender" : $"{sender}                  sender");
            o.WriteLine($"[{id}] {Interval(0, rTime)} sec  {Bytes(rBytes)}  {Bits(rTime > 0 ? rBytes / rTime : 0)}                  receiver");
        }
    }

    private static string Interval(double t0, double t1)
        => t0.ToString("F2", CultureInfo.InvariantCulture).PadLeft(6) + "-" + t1.ToString("F2", CultureInfo.InvariantCulture).PadRight(6);

    /// <summary>iperf3's unit_snprintf for 'A' (bytes, units of 1024): "1.10 GBytes", " 112 MBytes".</summary>
    internal static string Bytes(double bytes) => Unit(bytes, 1024, ["Byte", "KByte", "MByte", "GByte", "TByte"]) + "s";

    /// <summary>unit_snprintf for 'a' (bits, units of 1000) per second: " 941 Mbits/sec".</summary>
    internal static string Bits(double bytesPerSecond) => Unit(bytesPerSecond * 8, 1000, ["bit", "Kbit", "Mbit", "Gbit", "Tbit"]) + "s/sec";

    private static string Unit(double value, double unit, string[] labels)
    {
        int conv = 0;
        while (value >= unit && conv < labels.Length - 1) { value /= unit; conv++; }
        string format = value < 9.995 ? "F2" : value < 99.95 ? "F1" : "F0";
        return value.ToString(format, CultureInfo.InvariantCulture).PadLeft(4) + " " + labels[conv];
    }

    /// <summary>printf's %.2g of a loss percentage.</summary>
    private static string Percent(long lost, long total)
    {
        if (total <= 0 || lost <= 0) return "0";
        double p = 100.0 * lost / total;
        return p.ToString("G2", CultureInfo.InvariantCulture);
    }

    private static long JsonLong(JsonElement e)
        => e.ValueKind != JsonValueKind.Number ? 0 : e.TryGetInt64(out long v) ? v : e.TryGetDouble(out double d) && !double.IsNaN(d) ? (long)d : 0;

    private static double JsonDouble(JsonElement e)
        => e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) ? d : 0;
}
