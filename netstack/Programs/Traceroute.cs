using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// traceroute(8): UDP probes to port 33434 and up with rising TTL; a time exceeded names each hop,
/// a port unreachable ends the trace. `traceroute [-n] [-m max_hops] [-q nqueries] [-w waittime]
/// [-p port] host [packetlen]`. The header line goes to stderr, as illumos prints it.
/// </summary>
public static class Traceroute
{
    /// <summary>traceroute.c's getopt string: this traceroute honours -n -m -q -w -p and refuses the
    /// others (<see cref="NotDone"/>) by name.</summary>
    public static readonly ProgramDescriptor Descriptor = new("traceroute", "adFIlnrSvxA:c:f:g:i:L:m:P:p:Q:q:s:t:w:", "print the route packets take to network host", RunAsync);

    /// <summary>The options of traceroute.c's getopt string that this traceroute does not do.</summary>
    private const string NotDone = "adFIlrSvxAcfgiLPQst";

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        int maxHops = 30, queries = 3, port = 33434, waitSec = 5;
        var g = Getopt.Parse(args, Descriptor.Options);
        // traceroute.c sets opterr = 0: getopt prints nothing, and a bad option or a missing value
        // is only the usage.
        if (g.Error != null) return Usage(ctx);
        foreach (char f in NotDone)
        {
            if (!g.Has(f.ToString())) continue;
            ctx.Err.WriteLine($"traceroute: option -{f} is not supported by this traceroute");
            return 1;
        }
        foreach (char f in "mqwp")
        {
            foreach (string value in g.Values(f.ToString()))
            {
                if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v <= 0)
                {
                    ctx.Err.WriteLine($"traceroute: bad value for -{f}");
                    return 2;
                }
                if (f == 'm') maxHops = Math.Min(v, 255); else if (f == 'q') queries = v; else if (f == 'w') waitSec = v; else port = v;
            }
        }
        bool numeric = g.Has("n");
        var positional = g.Operands;
        if (positional.Count is 0 or > 2) return Usage(ctx);
        if (!IpAddress.TryParse(positional[0], out var dst))
        {
            ctx.Err.WriteLine($"traceroute: unknown host {positional[0]}");
            return 1;
        }
        int packetLen = dst.IsV4 ? 40 : 60;
        if (positional.Count == 2 && !int.TryParse(positional[1], NumberStyles.None, CultureInfo.InvariantCulture, out packetLen)) return Usage(ctx);
        int header = dst.IsV4 ? 28 : 48;
        int dataLen = Math.Max(0, packetLen - header);
        ctx.Err.WriteLine($"traceroute to {positional[0]} ({dst}), {maxHops} hops max, {packetLen} byte packets");

        var s = ctx.Stack.Scheduler;
        using var icmp = ctx.Stack.OpenIcmpSocket(dst.IsV6);
        using var udp = ctx.Stack.OpenUdpSocket();
        if (udp.Bind(dst.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6, 0) != NetError.None) return 1;
        var payload = new byte[dataLen];
        int probe = 0;
        for (int ttl = 1; ttl <= maxHops && !ctx.Cancel.IsCancellationRequested; ttl++)
        {
            var line = new System.Text.StringBuilder(ttl.ToString(CultureInfo.InvariantCulture).PadLeft(2));
            IpAddress last = default;
            bool reached = false, any = false;
            for (int q = 0; q < queries; q++)
            {
                ushort dport = (ushort)(port + probe++);
                udp.Ttl = (byte)ttl;
                long sentAt = s.Now;
                var e = udp.SendTo(payload, new IpEndpoint(dst, dport));
                if (e != NetError.None)
                {
                    ctx.Err.WriteLine($"traceroute: sendto: {NetErrors.Message(e)}");
                    return 1;
                }
                long deadline = s.Now + waitSec * Time.Second;
                IcmpMessage? hit = null;
                while (s.Now < deadline)
                {
                    var m = await icmp.ReceiveAsync(deadline - s.Now, ctx.Cancel);
                    if (m == null) break;
                    if (QuotedPort(m) == dport) { hit = m; break; }
                }
                if (hit == null) { line.Append("  *"); continue; }
                if (!any || hit.From != last)
                {
                    line.Append("  ").Append(hit.From.ToString());
                    if (!numeric) line.Append(" (").Append(hit.From.ToString()).Append(')');
                }
                any = true;
                last = hit.From;
                line.Append("  ").Append(Programs.Ms(hit.Time - sentAt)).Append(" ms");
                bool unreachable = dst.IsV4 ? hit.Type == IcmpType.DestinationUnreachable : hit.Type == IcmpType.V6DestinationUnreachable;
                bool port3 = dst.IsV4 ? hit.Code == 3 : hit.Code == 4;
                if (unreachable)
                {
                    reached = true;
                    if (!port3) line.Append(hit.Code switch { 0 => " !N", 1 => " !H", 2 => " !P", 4 => " !F", _ => " !X" });
                }
            }
            ctx.Out.WriteLine(line.ToString());
            if (reached) return 0;
        }
        return 0;
    }

    private static int QuotedPort(IcmpMessage m)
    {
        if (!m.TryReadQuoted(out byte proto, out var transport) || proto != IpProtocol.Udp) return -1;
        return UdpView.TryCreateHeader(transport, out var udp) ? udp.DestinationPort : -1;
    }

    private static int Usage(ProgramContext ctx)
    {
        // traceroute.c usage(): exit(EXIT_FAILURE).
        ctx.Err.WriteLine("Usage: traceroute [-n] [-m max_hop] [-p port] [-q nqueries] [-w wait_time] host [packetlen]");
        return 1;
    }
}
