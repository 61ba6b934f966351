using SmartOS.Kernel;
using System.Globalization;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// netstat(8): -rn (routing tables), -an (sockets: UDP from this stack; TCP and any other
/// transport through ISocketLister, the hook the TCP transport implements) and -s (the stack's
/// MIB counters as illumos prints them: a section per protocol, two "name = value" pairs a line;
/// -P ip|ipv6|icmp|icmpv6|tcp|udp picks one). -f inet|inet6 limits the family.
/// illumos's netstat.c prints every table with printf (it does not use libofmt), so these tables keep
/// its printf layouts rather than going through OutputTable.
/// </summary>
public static class Netstat
{
    public static readonly ProgramDescriptor Descriptor = new("netstat", "anvrsif:P:", "show network status", RunAsync);

    /// <summary>netstat.c's usage(): its synopsis lines for what this netstat does, then
    /// exit(EXIT_FAILURE).</summary>
    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage: netstat [-anv] [-f address_family]\n       netstat -r [-anv] [-f address_family]\n       netstat -s [-f address_family] [-P protocol]");
        return 1;
    }

    public static Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.ReportError(ctx.Err, "netstat")) return Task.FromResult(Usage(ctx));
        if (g.Has("i"))
        {
            ctx.Err.WriteLine("netstat: option -i is not supported by this netstat");
            return Task.FromResult(1);
        }
        if (g.Operands.Count > 0)
        {
            ctx.Err.WriteLine("netstat: extra arguments");
            return Task.FromResult(Usage(ctx));
        }
        bool routes = g.Has("r"), stats = g.Has("s");
        bool v4 = true, v6 = true;
        string? protocol = g.Value("P");
        if (protocol != null && protocol is not ("ip" or "ipv6" or "icmp" or "icmpv6" or "tcp" or "udp"))
        {
            ctx.Err.WriteLine($"netstat: unknown protocol: {protocol}");
            return Task.FromResult(2);
        }
        if (g.Value("f") is { } f)
        {
            if (f == "inet") v6 = false; else if (f == "inet6") v4 = false;
            else { ctx.Err.WriteLine($"netstat: unknown address family: {f}"); return Task.FromResult(2); }
        }
        if (stats) Statistics(ctx, v4, v6, protocol);
        else if (routes) Routes(ctx, v4, v6);
        else Sockets(ctx, v4, v6);
        return Task.FromResult(0);
    }

    /// <summary>netstat -s: each protocol's counters, "\tname = value" two to a line after the
    /// protocol's label, as illumos's prval does.</summary>
    private static void Statistics(ProgramContext ctx, bool v4, bool v6, string? protocol)
    {
        var s = ctx.Stack;
        var sections = new List<(string Label, string Protocol, bool Show, IKstatSource Source)>
        {
            ("UDP", "udp", true, s.UdpStats),
            ("TCP", "tcp", true, s.Tcp.Stats),
            ("IPv4", "ip", v4, s.Counters),
            ("IPv6", "ipv6", v6, s.Counters6),
            ("ICMPv4", "icmp", v4, s.Icmp),
            ("ICMPv6", "icmpv6", v6, s.Icmp6),
        };
        var o = ctx.Out;
        var values = new List<KeyValuePair<string, long>>();
        foreach (var (label, proto, show, source) in sections)
        {
            if (!show || (protocol != null && protocol != proto)) continue;
            values.Clear();
            source.Snapshot(values);
            o.Write("\n" + label);
            for (int i = 0; i < values.Count; i++)
            {
                o.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"\t{values[i].Key,-20}={values[i].Value,6}"));
                if ((i & 1) == 1) o.Write("\n");
            }
            if ((values.Count & 1) == 1) o.Write("\n");
        }
        o.Write("\n");
    }

    private static string Flags(RouteEntry r)
    {
        var f = "U";
        if ((r.Flags & RouteFlags.Gateway) != 0) f += "G";
        if ((r.Flags & RouteFlags.Host) != 0) f += "H";
        if ((r.Flags & RouteFlags.Dynamic) != 0) f += "D";
        return f;
    }

    private static void Routes(ProgramContext ctx, bool v4, bool v6)
    {
        var s = ctx.Stack;
        if (v4)
        {
            ctx.Out.WriteLine();
            ctx.Out.WriteLine("Routing Table: IPv4");
            ctx.Out.WriteLine("  Destination           Gateway           Flags  Ref     Use     Interface");
            ctx.Out.WriteLine("-------------------- -------------------- ----- ----- ---------- ---------");
            foreach (var r in s.Routes(v4: true))
            {
                string dst = r.IsDefault ? "default" : r.Destination.ToString();
                string ifName = r.Interface?.Name ?? "";
                ctx.Out.WriteLine($"{dst,-20} {r.Gateway,-20} {Flags(r),-5} {1,5} {r.Use,10} {ifName}");
            }
            ctx.Out.WriteLine($"{"127.0.0.1",-20} {"127.0.0.1",-20} {"UH",-5} {2,5} {0,10} lo0");
        }
        if (v6)
        {
            ctx.Out.WriteLine();
            ctx.Out.WriteLine("Routing Table: IPv6");
            ctx.Out.WriteLine("  Destination/Mask            Gateway                   Flags Ref   Use    If   ");
            ctx.Out.WriteLine("--------------------------- --------------------------- ----- --- ------- -----");
            foreach (var r in s.Routes(v4: false))
            {
                string dst = r.IsDefault ? "default" : $"{r.Destination}/{r.PrefixLength}";
                string gw = r.Gateway.IsUnspecified && r.Interface != null ? (FirstAddress(s, r.Interface) ?? "::") : r.Gateway.ToString();
                ctx.Out.WriteLine($"{dst,-27} {gw,-27} {Flags(r),-5} {1,3} {r.Use,7} {r.Interface?.Name ?? ""}");
            }
            ctx.Out.WriteLine($"{"::1",-27} {"::1",-27} {"UH",-5} {2,3} {0,7} lo0");
        }
    }

    private static string? FirstAddress(IpStack s, IpInterface ifc)
    {
        foreach (var a in s.Addresses) if (a.Interface == ifc && a.Address.IsV6 && a.IsUsable) return a.Address.ToString();
        return null;
    }

    /// <summary>An endpoint as netstat prints it: "addr.port", and a wildcard address as "*"
    /// indented six columns ("      *.22", "      *.*").</summary>
    private static string Ep(IpEndpoint e)
    {
        string port = e.Port == 0 ? "*" : e.Port.ToString(CultureInfo.InvariantCulture);
        return e.Address.IsUnspecified ? "      *." + port : e.Address + "." + port;
    }

    private static void Sockets(ProgramContext ctx, bool v4, bool v6)
    {
        var s = ctx.Stack;
        var others = new List<TransportSocketInfo>();
        s.ListSockets(others);
        foreach (bool fam4 in new[] { true, false })
        {
            if ((fam4 && !v4) || (!fam4 && !v6)) continue;
            string fam = fam4 ? "IPv4" : "IPv6";
            bool any = false;
            foreach (var t in others) if (t.Protocol == IpProtocol.Tcp && t.Local.Address.IsV4 == fam4) any = true;
            if (any)
            {
                ctx.Out.WriteLine();
                ctx.Out.WriteLine($"TCP: {fam}");
                ctx.Out.WriteLine("   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State");
                ctx.Out.WriteLine("-------------------- -------------------- ----- ------ ----- ------ -----------");
                foreach (var t in others)
                {
                    if (t.Protocol != IpProtocol.Tcp || t.Local.Address.IsV4 != fam4) continue;
                    ctx.Out.WriteLine($"{Ep(t.Local),-20} {Ep(t.Remote),-20} {t.SendWindow,5} {t.SendQueue,6} {t.ReceiveWindow,5} {t.ReceiveQueue,6} {t.State}");
                }
            }
            any = false;
            foreach (var u in s.UdpSockets) if (u.IsBound && u.Local.Address.IsV4 == fam4) any = true;
            if (!any) continue;
            ctx.Out.WriteLine();
            ctx.Out.WriteLine($"UDP: {fam}");
            ctx.Out.WriteLine("   Local Address        Remote Address      State");
            ctx.Out.WriteLine("-------------------- -------------------- ----------");
            foreach (var u in s.UdpSockets)
            {
                if (!u.IsBound || u.Local.Address.IsV4 != fam4) continue;
                string remote = u.IsConnected ? Ep(u.Remote) : "";
                ctx.Out.WriteLine($"{Ep(u.Local),-20} {remote,-20} {(u.IsConnected ? "Connected" : "Idle")}");
            }
        }
    }
}
