using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// dhcpd: a small DHCPv4 server (illumos's in.dhcpd takes its tables from dhtadm/pntadm; this one
/// takes its pool on the command line): `dhcpd -i IF -r FIRST-LAST [-g ROUTER] [-d DNS] [-l LEASE_SECONDS]`.
/// Serves until cancelled, then prints the leases it holds.
/// </summary>
public static class Dhcpd
{
    public static readonly ProgramDescriptor Descriptor = new("dhcpd", "i:r:g:d:l:", "Dynamic Host Configuration Protocol server", RunAsync);

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.ReportError(ctx.Err, "dhcpd") || g.Operands.Count > 0) return Usage(ctx);
        string? ifName = g.Value("i"), range = g.Value("r"), router = g.Value("g"), dns = g.Value("d");
        uint lease = 3600;
        if (g.Value("l") is { } leaseText && (!uint.TryParse(leaseText, NumberStyles.None, CultureInfo.InvariantCulture, out lease) || lease == 0)) return Usage(ctx);
        if (ifName == null || range == null) return Usage(ctx);
        string[] r = range.Split('-');
        if (r.Length != 2 || !IpAddress.TryParse(r[0], out var first) || !IpAddress.TryParse(r[1], out var last) || !first.IsV4 || !last.IsV4 || last.V4Raw < first.V4Raw)
        {
            ctx.Err.WriteLine($"dhcpd: invalid address range '{range}'");
            return 1;
        }
        var gw = IpAddress.AnyV4;
        if (router != null && (!IpAddress.TryParse(router, out gw) || !gw.IsV4))
        {
            ctx.Err.WriteLine($"dhcpd: invalid router address '{router}'");
            return 1;
        }
        var ns = IpAddress.AnyV4;
        if (dns != null && (!IpAddress.TryParse(dns, out ns) || !ns.IsV4))
        {
            ctx.Err.WriteLine($"dhcpd: invalid name server address '{dns}'");
            return 1;
        }
        var ifc = ctx.Stack.FindInterface(ifName);
        if (ifc == null)
        {
            ctx.Err.WriteLine($"dhcpd: {ifName}: {IpStatusText.Of(IpadmStatus.Enxio)}");
            return 1;
        }
        using var server = new DhcpServer(ctx.Stack, ifc, first, last, gw, lease, ns);
        ctx.Out.WriteLine($"dhcpd: serving {first}-{last} on {ifName}");
        var e = await server.RunAsync(ctx.Cancel);
        if (e != NetError.None)
        {
            ctx.Err.WriteLine($"dhcpd: cannot bind port 67 on {ifName}: {NetErrors.Message(e)}");
            return 1;
        }
        foreach (var l in server.Leases) ctx.Out.WriteLine($"dhcpd: lease {l.Address} to {l.Client}");
        return 0;
    }

    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage: dhcpd -i interface -r first-last [-g router] [-d name_server] [-l lease_seconds]");
        return 2;
    }
}
