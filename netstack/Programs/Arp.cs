using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>arp(8): -a prints the ARP table as illumos does ("Net to Media Table"); `arp host`
/// prints one entry; -s host ether adds a permanent entry; -d host deletes one.</summary>
public static class Arp
{
    public static readonly ProgramDescriptor Descriptor = new("arp", "nadfs", "address resolution display and control", RunAsync);

    public static Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        // arp.c: getopt "nadfs"; at most one of -a -d -f -s; -n only with -a; a bad option or a
        // bad combination is usage() and exit(1).
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.ReportError(ctx.Err, "arp")) return Task.FromResult(Usage(ctx));
        var operands = g.Operands;
        int modes = (g.Has("a") ? 1 : 0) + (g.Has("d") ? 1 : 0) + (g.Has("f") ? 1 : 0) + (g.Has("s") ? 1 : 0);
        if (modes > 1 || (g.Has("n") && !g.Has("a"))) return Task.FromResult(Usage(ctx));
        if (g.Has("f"))
        {
            ctx.Err.WriteLine("arp: option -f is not supported by this arp");
            return Task.FromResult(1);
        }
        // -n (numeric): every address here is printed as a number already.
        if (g.Has("a") && operands.Count == 0) return Task.FromResult(All(ctx));
        if (g.Has("s") && operands.Count >= 2)
        {
            string setHost = operands[0], ether = operands[1];
            // arp.c's set(): the keywords after the address; this arp makes permanent entries only.
            foreach (string keyword in operands.Skip(2))
            {
                bool known = keyword.StartsWith("temp", StringComparison.Ordinal) || keyword.StartsWith("pub", StringComparison.Ordinal)
                    || keyword.StartsWith("trail", StringComparison.Ordinal) || keyword == "permanent";
                ctx.Err.WriteLine(known ? $"arp: keyword '{keyword}' is not supported by this arp" : $"arp: unknown keyword '{keyword}'");
                return Task.FromResult(1);
            }
            if (!IpAddress.TryParse(setHost, out var ip) || !ip.IsV4) { ctx.Err.WriteLine($"arp: {setHost}: unknown host"); return Task.FromResult(1); }
            if (!MacAddress.TryParse(ether, out var mac)) { ctx.Err.WriteLine($"arp: invalid ethernet address '{ether}'"); return Task.FromResult(1); }
            var st = ctx.Stack.AddStaticArp(ip, mac);
            if (st != NetError.None) { ctx.Err.WriteLine($"arp: {NetErrors.Message(st)}"); return Task.FromResult(1); }
            return Task.FromResult(0);
        }
        if (g.Has("d") && operands.Count == 1)
        {
            string host = operands[0];
            if (!IpAddress.TryParse(host, out var ip)) { ctx.Err.WriteLine($"arp: {host}: unknown host"); return Task.FromResult(1); }
            if (ctx.Stack.DeleteArp(ip) != NetError.None) { ctx.Err.WriteLine($"{host} ({host}) -- no entry"); return Task.FromResult(1); }
            ctx.Out.WriteLine($"{host} ({host}) deleted");
            return Task.FromResult(0);
        }
        if (modes == 0 && operands.Count == 1)
        {
            if (!IpAddress.TryParse(operands[0], out var ip)) { ctx.Err.WriteLine($"arp: {operands[0]}: unknown host"); return Task.FromResult(1); }
            foreach (var n in ctx.Stack.ArpTable())
            {
                if (n.Address != ip || n.State == NeighborState.Incomplete) continue;
                ctx.Out.WriteLine($"{ip} ({ip}) at {n.Mac.ToPaddedString()}" + (n.State == NeighborState.Permanent ? " permanent" : ""));
                return Task.FromResult(0);
            }
            ctx.Out.WriteLine($"{ip} ({ip}) -- no entry");
            return Task.FromResult(1);
        }
        return Task.FromResult(Usage(ctx));
    }

    /// <summary>arp.c's usage(): printed on standard output, then exit(1); the forms this arp does.</summary>
    private static int Usage(ProgramContext ctx)
    {
        ctx.Out.WriteLine("Usage: arp hostname\n       arp -a [-n]\n       arp -d hostname\n       arp -s hostname ether_addr");
        return 1;
    }

    private static int All(ProgramContext ctx)
    {
        ctx.Out.WriteLine();
        ctx.Out.WriteLine("Net to Media Table: IPv4");
        ctx.Out.WriteLine("Device   IP Address               Mask      Flags      Phys Addr");
        ctx.Out.WriteLine("------ -------------------- --------------- -------- ---------------");
        foreach (var n in ctx.Stack.ArpTable())
        {
            string flags = n.IsLocal ? "SPLA" : n.State == NeighborState.Permanent ? "S" : n.State == NeighborState.Incomplete ? "U" : "";
            string mac = n.State == NeighborState.Incomplete ? "" : n.Mac.ToPaddedString();
            ctx.Out.WriteLine($"{n.Interface,-6} {n.Address,-20} {"255.255.255.255",-15} {flags,-8} {mac}");
        }
        return 0;
    }
}
