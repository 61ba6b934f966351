using System.Buffers.Binary;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// ping(8) as illumos has it: `ping host [timeout]` prints "host is alive" or "no answer from host";
/// `ping -s host [data_size] [npackets]` prints each reply and the statistics. Also accepted, as the
/// brief of this project asks: -c count (implies -s), -i interval in seconds (illumos: -I), -t ttl,
/// -D (don't fragment), -n. Exit 0 when any reply came back, 1 otherwise, 2 on usage errors.
/// </summary>
public static class Ping
{
    public static readonly ProgramDescriptor Descriptor = new("ping", "sDnvac:i:I:t:", "send ICMP (ICMP6) ECHO_REQUEST packets to network hosts", RunAsync);

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        bool stats = false, df = false;
        int count = -1;
        long interval = Time.Second;
        byte ttl = 0;
        var positional = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a.Length > 1 && a[0] == '-')
            {
                switch (a)
                {
                    case "-s": stats = true; break;
                    case "-n": case "-v": case "-a": break;
                    case "-D": df = true; break;
                    case "-c" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int c) && c > 0:
                        count = c; stats = true; i++; break;
                    case "-i" or "-I" when i + 1 < args.Length:
                        if (!decimal.TryParse(args[i + 1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal sec) || sec <= 0)
                        {
                            if (a == "-I") { ctx.Err.WriteLine($"ping: bad interval: {args[i + 1]}"); return 1; }
                            i++; // illumos -i names an outgoing interface; routing picks it here
                            break;
                        }
                        interval = (long)(sec * Time.Second); i++; break;
                    case "-t" when i + 1 < args.Length && byte.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out byte t) && t > 0:
                        ttl = t; i++; break;
                    default: return Usage(ctx);
                }
                continue;
            }
            positional.Add(a);
        }
        if (positional.Count == 0 || positional.Count > 3 || (!stats && positional.Count > 2)) return Usage(ctx);
        string host = positional[0];
        if (!IpAddress.TryParse(host, out var dst))
        {
            ctx.Err.WriteLine($"ping: unknown host {host}");
            return 1;
        }
        int size = 56;
        long timeout = 20 * Time.Second;
        if (stats)
        {
            if (positional.Count > 1 && (!int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out size) || size > 65507))
            {
                ctx.Err.WriteLine($"ping: bad data size: {positional[1]}");
                return 1;
            }
            if (positional.Count > 2)
            {
                if (!int.TryParse(positional[2], NumberStyles.None, CultureInfo.InvariantCulture, out count) || count <= 0)
                {
                    ctx.Err.WriteLine($"ping: bad npackets: {positional[2]}");
                    return 1;
                }
            }
        }
        else if (positional.Count > 1)
        {
            if (!int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out int t) || t <= 0)
            {
                ctx.Err.WriteLine($"ping: bad timeout: {positional[1]}");
                return 1;
            }
            timeout = t * Time.Second;
        }
        using var sock = ctx.Stack.OpenIcmpSocket(dst.IsV6);
        return stats ? await Statistics(ctx, sock, host, dst, size, count, interval, ttl, df)
                     : await Alive(ctx, sock, host, dst, timeout, ttl, df);
    }

    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage: ping host [timeout]");
        ctx.Err.WriteLine("usage: ping -s [-l | -U] [-abdDLnRrv] [-A addr_family] [-c traffic_class]\n\t[-g gateway [-g gateway ...]] [-N nexthop] [-F flow_label] [-I interval]\n\t[-i interface] [-P tos] [-p port] [-t ttl] host [data_size] [npackets]");
        return 2;
    }

    private static async Task<int> Alive(ProgramContext ctx, IcmpSocket sock, string host, IpAddress dst, long timeout, byte ttl, bool df)
    {
        var s = ctx.Stack.Scheduler;
        long deadline = s.Now + timeout;
        ushort seq = 0;
        while (s.Now < deadline && !ctx.Cancel.IsCancellationRequested)
        {
            var e = sock.SendEcho(dst, seq++, 56, ttl, df);
            if (e != NetError.None)
            {
                ctx.Err.WriteLine($"ping: sendto {NetErrors.Message(e)}");
                return 1;
            }
            long until = Math.Min(deadline, s.Now + Time.Second);
            while (s.Now < until)
            {
                var m = await sock.ReceiveAsync(until - s.Now, ctx.Cancel);
                if (m == null) break;
                if (IsReply(m, sock))
                {
                    ctx.Out.WriteLine($"{host} is alive");
                    return 0;
                }
            }
        }
        ctx.Out.WriteLine($"no answer from {host}");
        return 1;
    }

    private static bool IsReply(IcmpMessage m, IcmpSocket sock)
        => m.Type == (sock.IsV6 ? IcmpType.V6EchoReply : IcmpType.EchoReply) && m.Identifier == sock.Identifier;

    private static async Task<int> Statistics(ProgramContext ctx, IcmpSocket sock, string host, IpAddress dst, int size, int count, long interval, byte ttl, bool df)
    {
        var s = ctx.Stack.Scheduler;
        ctx.Out.WriteLine($"PING {host}: {size} data bytes");
        int sent = 0, received = 0;
        long tmin = long.MaxValue, tmax = 0;
        double tsum = 0, tsum2 = 0;
        var sentAt = new Dictionary<ushort, long>();
        while (!ctx.Cancel.IsCancellationRequested && (count < 0 || sent < count))
        {
            ushort seq = (ushort)sent;
            sentAt[seq] = s.Now;
            var e = sock.SendEcho(dst, seq, size, ttl, df);
            sent++;
            if (e != NetError.None) ctx.Err.WriteLine($"ping: sendto {NetErrors.Message(e)}");
            // After the last probe, wait one more interval (at least a second) for stragglers.
            long until = s.Now + (count > 0 && sent == count ? Math.Max(interval, Time.Second) : interval);
            while (s.Now < until && !ctx.Cancel.IsCancellationRequested)
            {
                var m = await sock.ReceiveAsync(until - s.Now, ctx.Cancel);
                if (m == null) break;
                if (IsReply(m, sock))
                {
                    long rtt = size >= 8 && m.Data.Length >= 16 ? m.Time - BinaryPrimitives.ReadInt64BigEndian(m.Data.AsSpan(8))
                             : sentAt.TryGetValue(m.Sequence, out long t0) ? m.Time - t0 : 0;
                    received++;
                    long us = rtt / Time.Microsecond;
                    tmin = Math.Min(tmin, us); tmax = Math.Max(tmax, us);
                    tsum += us; tsum2 += (double)us * us;
                    ctx.Out.WriteLine($"{m.Data.Length} bytes from {m.From}: icmp_seq={m.Sequence}. time={Programs.Ms(rtt)} ms");
                    if (count > 0 && received >= count && sent == count) break;
                }
                else if (m.Type != IcmpType.EchoReply && m.Type != IcmpType.V6EchoReply && QuotesOurEcho(m, sock))
                {
                    ctx.Out.WriteLine($"ICMP {Describe(m, sock.IsV6)} from gateway {m.From}");
                }
            }
        }
        ctx.Out.WriteLine();
        ctx.Out.WriteLine($"----{host} PING Statistics----");
        string loss = sent == 0 ? "" : received <= sent ? $"{(sent - received) * 100 / sent}% packet loss" : $"{(double)received / sent:F2} times amplification";
        ctx.Out.WriteLine($"{sent} packets transmitted, {received} packets received, {loss}");
        if (size >= 8 && received > 0)
        {
            double mean = tsum / received, smean = tsum2 / received;
            double sd = received > 1 ? Math.Sqrt(Math.Max(0, (smean - mean * mean) * received / (received - 1))) : 0;
            var ci = CultureInfo.InvariantCulture;
            ctx.Out.WriteLine(string.Format(ci, "round-trip (ms)  min/avg/max/stddev = {0:F3}/{1:F3}/{2:F3}/{3:F3}", tmin / 1000.0, mean / 1000, tmax / 1000.0, sd / 1000));
        }
        return received > 0 ? 0 : 1;
    }

    private static bool QuotesOurEcho(IcmpMessage m, IcmpSocket sock)
    {
        var q = m.Body;
        int ihl = sock.IsV6 ? 40 : (q.Length > 0 ? (q[0] & 0xF) * 4 : 0);
        return q.Length >= ihl + 8 && BinaryPrimitives.ReadUInt16BigEndian(q[(ihl + 4)..]) == sock.Identifier;
    }

    internal static string Describe(IcmpMessage m, bool v6) => v6
        ? m.Type switch
        {
            IcmpType.V6TimeExceeded => "Time exceeded in transit",
            IcmpType.V6PacketTooBig => "Packet too big",
            IcmpType.V6DestinationUnreachable => "Destination Unreachable",
            _ => $"type {m.Type} code {m.Code}",
        }
        : (m.Type, m.Code) switch
        {
            (IcmpType.TimeExceeded, 0) => "Time exceeded in transit",
            (IcmpType.TimeExceeded, _) => "Fragment reassembly time exceeded",
            (IcmpType.DestinationUnreachable, 0) => "Net Unreachable",
            (IcmpType.DestinationUnreachable, 1) => "Host Unreachable",
            (IcmpType.DestinationUnreachable, 2) => "Protocol Unreachable",
            (IcmpType.DestinationUnreachable, 3) => "Port Unreachable",
            (IcmpType.DestinationUnreachable, 4) => "Fragmentation needed and DF set",
            _ => $"type {m.Type} code {m.Code}",
        };
}
