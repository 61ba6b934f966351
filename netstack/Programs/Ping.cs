using System.Buffers.Binary;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// ping(8) as illumos has it (usr/src/cmd/cmd-inet/usr.sbin/ping/ping.c): `ping host [timeout]` prints
/// "host is alive" or "no answer from host"; `ping -s host [data_size] [npackets]` prints each reply and
/// the statistics. Options follow ping.c's getopt: -c traffic_class (IPv6: the class in the flow
/// information, not a count as on Linux), -P tos (IPv4 type of service), -I interval (implies -s;
/// seconds, fractions allowed), -i interface (name, index or address; as IP_MULTICAST_IF it picks the
/// interface of multicast and broadcast echoes, unicast goes where the route says), -t ttl, -n (the
/// header names the address too), -v (also report ICMP messages meant for other programs), -a.
/// A class given for an IPv4 host or a tos for an IPv6 host is refused rather than ignored as
/// ping.c does. Exit 0 when any reply came back, 1 otherwise and on every error (EXIT_FAILURE).
/// </summary>
public static class Ping
{
    /// <summary>ping.c's getopt string: this ping honours -s -n -v -a -c -I -i -P -t and refuses the
    /// others (<see cref="NotDone"/>) by name.</summary>
    public static readonly ProgramDescriptor Descriptor = new("ping", "aA:c:dF:G:g:I:i:LlnP:p:rRSsTt:UvX:x:Y0123?", "send ICMP (ICMP6) ECHO_REQUEST packets to network hosts", RunAsync);

    /// <summary>The options of ping.c's getopt string that this ping does not do.</summary>
    private const string NotDone = "AdFGgLlpRrSTUXxY0123";

    private sealed class Options
    {
        public bool Stats, Numeric, Verbose, ClassSet, TosSet;
        public long Interval = Time.Second;
        public byte Ttl, Tos, Class;
        public string? Interface;
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var o = new Options();
        var g = Getopt.Parse(args, Descriptor.Options);
        // "-?" is in ping.c's string: its case '?' is the usage, with no getopt line before it.
        if (g.ReportError(ctx.Err, "ping") || g.Has("?")) return Usage(ctx);
        // The rest of ping.c's getopt string: known to illumos, not done here.
        foreach (char f in NotDone)
        {
            if (!g.Has(f.ToString())) continue;
            ctx.Err.WriteLine($"ping: option -{f} is not supported by this ping");
            return 1;
        }
        o.Stats = g.Has("s");
        o.Numeric = g.Has("n");
        o.Verbose = g.Has("v");
        // -a probes all addresses of a name: a literal address has one.
        foreach (char f in "cPtIi")
        {
            foreach (string v in g.Values(f.ToString()))
            {
                int r = Option(ctx, o, f, v);
                if (r != 0) return r;
            }
        }
        var positional = g.Operands;
        if (positional.Count == 0 || positional.Count > 3 || (!o.Stats && positional.Count > 2)) return Usage(ctx);
        string host = positional[0];
        if (!IpAddress.TryParse(host, out var dst))
        {
            ctx.Err.WriteLine($"ping: unknown host {host}");
            return 1;
        }
        int size = 56, count = -1;
        long timeout = 20 * Time.Second;
        if (o.Stats)
        {
            if (positional.Count > 1 && !IntArg(ctx, positional[1], "data size", out size)) return 1;
            if (positional.Count > 2)
            {
                if (!IntArg(ctx, positional[2], "packet count", out count)) return 1;
                if (count < 1)
                {
                    ctx.Err.WriteLine($"ping: packet count {count} out of range");
                    return 1;
                }
            }
            // ping.c: IP_MAXPACKET less the IP and ICMP headers.
            if (size > 65535 - (dst.IsV6 ? 40 : 20) - 8)
            {
                ctx.Err.WriteLine($"ping: data size too large for {(dst.IsV6 ? "IPv6" : "IPv4")} packet");
                return 1;
            }
        }
        else if (positional.Count > 1)
        {
            if (!IntArg(ctx, positional[1], "timeout", out int t)) return 1;
            timeout = t * Time.Second;
        }
        if (o.ClassSet && !dst.IsV6)
        {
            ctx.Err.WriteLine("ping: -c traffic_class applies to IPv6 hosts only; use -P tos for IPv4");
            return 1;
        }
        if (o.TosSet && dst.IsV6)
        {
            ctx.Err.WriteLine("ping: -P tos applies to IPv4 hosts only; use -c traffic_class for IPv6");
            return 1;
        }
        IpInterface? via = null;
        if (o.Interface != null)
        {
            via = FindInterface(ctx.Stack, o.Interface, dst.IsV6);
            if (via == null)
            {
                ctx.Err.WriteLine($"ping: {o.Interface} is an invalid {(dst.IsV6 ? "IPv6" : "IPv4")} interface");
                return 1;
            }
            if (dst.IsV6 && !dst.IsMulticast && !(ctx.Stack.TryRouteInterface(dst, out string routed) && routed == via.Name))
            {
                // illumos sends IPv6 unicast out of the -i interface (IPV6_PKTINFO); this stack routes
                // unicast by destination only, so an interface the route does not use is refused.
                ctx.Err.WriteLine($"ping: {o.Interface}: {host} is not reached through this interface here (IPv6 unicast follows the route)");
                return 1;
            }
            if (!dst.IsMulticast && dst != IpAddress.BroadcastV4) via = null;
        }
        var send = new Send(dst, o.Ttl, dst.IsV6 ? o.Class : o.Tos, via);
        using var sock = ctx.Stack.OpenIcmpSocket(dst.IsV6);
        return o.Stats ? await Statistics(ctx, sock, host, send, size, count, o)
                       : await Alive(ctx, sock, host, send, timeout);
    }

    /// <summary>What every probe carries: destination, ttl, tos or class, and the -i interface.</summary>
    private readonly record struct Send(IpAddress Destination, byte Ttl, byte Tos, IpInterface? Via)
    {
        public NetError Echo(IcmpSocket sock, ushort seq, int size) => sock.SendEcho(Destination, seq, size, Ttl, false, Tos, Via);
    }

    private static int Option(ProgramContext ctx, Options o, char f, string v)
    {
        switch (f)
        {
            case 'c':
                if (!IntArg(ctx, v, "traffic class", out int c)) return 1;
                if (c > 255) { ctx.Err.WriteLine($"ping: traffic class {c} out of range"); return 1; }
                o.Class = (byte)c; o.ClassSet = true;
                return 0;
            case 'P':
                if (!IntArg(ctx, v, "type-of-service", out int tos)) return 1;
                if (tos > 255) { ctx.Err.WriteLine($"ping: tos value {tos} out of range"); return 1; }
                o.Tos = (byte)tos; o.TosSet = true;
                return 0;
            case 't':
                if (!IntArg(ctx, v, "ttl", out int ttl)) return 1;
                if (ttl > 255) { ctx.Err.WriteLine($"ping: ttl {ttl} out of range"); return 1; }
                if (ttl == 0) { ctx.Err.WriteLine("ping: ttl 0 out of range"); return 1; }
                o.Ttl = (byte)ttl;
                return 0;
            case 'I':
                // Fractions of a second, as current illumos ping takes them (ping -s -I 0.2 host).
                if (!decimal.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal sec) || sec <= 0 || sec > 3600)
                {
                    ctx.Err.WriteLine($"ping: bad interval: {v}");
                    return 1;
                }
                o.Interval = (long)(sec * Time.Second);
                o.Stats = true;
                return 0;
            default: // 'i'
                o.Interface = v;
                return 0;
        }
    }

    /// <summary>ping.c's int_arg: decimal or 0x hex, not negative, else "bad what: s".</summary>
    private static bool IntArg(ProgramContext ctx, string s, string what, out int value)
    {
        bool ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok) ctx.Err.WriteLine($"ping: bad {what}: {s}");
        return ok;
    }

    /// <summary>ping.c's find_if: an up, non-loopback interface named by index, name or address.</summary>
    private static IpInterface? FindInterface(IpStack stack, string id, bool v6)
    {
        if (IpAddress.TryParse(id, out var addr))
        {
            foreach (var a in stack.Addresses)
                if (a.Address == addr && !a.Interface.IsLoopback) return a.Interface;
            return null;
        }
        bool isIndex = int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out int index);
        foreach (var i in stack.Interfaces)
        {
            if (i.IsLoopback) continue;
            if (isIndex ? i.Index == index : i.Name == id)
            {
                foreach (var a in stack.Addresses)
                    if (a.Interface == i && a.Address.IsV6 == v6) return i;
                return null;
            }
        }
        return null;
    }

    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage: ping host [timeout]");
        ctx.Err.WriteLine("usage: ping -s [-anv] [-c traffic_class] [-I interval] [-i interface] [-P tos]\n\t[-t ttl] host [data_size] [npackets]");
        return 1;
    }

    private static async Task<int> Alive(ProgramContext ctx, IcmpSocket sock, string host, Send send, long timeout)
    {
        var s = ctx.Stack.Scheduler;
        long deadline = s.Now + timeout;
        ushort seq = 0;
        while (s.Now < deadline && !ctx.Cancel.IsCancellationRequested)
        {
            var e = send.Echo(sock, seq++, 56);
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

    private static async Task<int> Statistics(ProgramContext ctx, IcmpSocket sock, string host, Send send, int size, int count, Options o)
    {
        var s = ctx.Stack.Scheduler;
        long interval = o.Interval;
        // ping.c: with -n the header also names the address it resolved.
        ctx.Out.WriteLine(o.Numeric ? $"PING {host} ({send.Destination}): {size} data bytes" : $"PING {host}: {size} data bytes");
        int sent = 0, received = 0;
        long tmin = long.MaxValue, tmax = 0;
        double tsum = 0, tsum2 = 0;
        var sentAt = new Dictionary<ushort, long>();
        while (!ctx.Cancel.IsCancellationRequested && (count < 0 || sent < count))
        {
            ushort seq = (ushort)sent;
            sentAt[seq] = s.Now;
            var e = send.Echo(sock, seq, size);
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
                    long rtt = size >= 8 && m.Body.Length >= 8 ? m.Time - BinaryPrimitives.ReadInt64BigEndian(m.Body)
                             : sentAt.TryGetValue(m.Sequence, out long t0) ? m.Time - t0 : 0;
                    received++;
                    long us = rtt / Time.Microsecond;
                    tmin = Math.Min(tmin, us); tmax = Math.Max(tmax, us);
                    tsum += us; tsum2 += (double)us * us;
                    ctx.Out.WriteLine($"{m.Data.Length} bytes from {m.From}: icmp_seq={m.Sequence}. time={Programs.Ms(rtt)} ms");
                    if (count > 0 && received >= count && sent == count) break;
                }
                else if (m.Type != IcmpType.EchoReply && m.Type != IcmpType.V6EchoReply && (QuotesOurEcho(m, sock) || o.Verbose))
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
        return m.TryReadQuoted(out _, out var transport) && IcmpView.TryCreate(transport, out var echo) && echo.Identifier == sock.Identifier;
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
