using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>arp(8): -a prints the ARP table as illumos does ("Net to Media Table"); `arp host`
/// prints one entry; -s host ether adds a permanent entry; -d host deletes one.</summary>
public static class Arp
{
    public static readonly ProgramDescriptor Descriptor = new("arp", "as:d:", "address resolution display and control", RunAsync);

    public static Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        if (args.Length == 1 && args[0] == "-a") return Task.FromResult(All(ctx));
        if (args.Length == 3 && args[0] == "-s")
        {
            if (!IpAddress.TryParse(args[1], out var ip) || !ip.IsV4) { ctx.Err.WriteLine($"arp: {args[1]}: unknown host"); return Task.FromResult(1); }
            if (!MacAddress.TryParse(args[2], out var mac)) { ctx.Err.WriteLine($"arp: invalid ethernet address '{args[2]}'"); return Task.FromResult(1); }
            var st = ctx.Stack.AddStaticArp(ip, mac);
            if (st != NetError.None) { ctx.Err.WriteLine($"arp: {NetErrors.Message(st)}"); return Task.FromResult(1); }
            return Task.FromResult(0);
        }
        if (args.Length == 2 && args[0] == "-d")
        {
            if (!IpAddress.TryParse(args[1], out var ip)) { ctx.Err.WriteLine($"arp: {args[1]}: unknown host"); return Task.FromResult(1); }
            if (ctx.Stack.DeleteArp(ip) != NetError.None) { ctx.Err.WriteLine($"{args[1]} ({args[1]}) -- no entry"); return Task.FromResult(1); }
            ctx.Out.WriteLine($"{args[1]} ({args[1]}) deleted");
            return Task.FromResult(0);
        }
        if (args.Length == 1 && !args[0].StartsWith('-'))
        {
            if (!IpAddress.TryParse(args[0], out var ip)) { ctx.Err.WriteLine($"arp: {args[0]}: unknown host"); return Task.FromResult(1); }
            foreach (var n in ctx.Stack.ArpTable())
            {
                if (n.Address != ip || n.State == NeighborState.Incomplete) continue;
                ctx.Out.WriteLine($"{ip} ({ip}) at {n.Mac.ToPaddedString()}" + (n.State == NeighborState.Permanent ? " permanent" : ""));
                return Task.FromResult(0);
            }
            ctx.Out.WriteLine($"{ip} ({ip}) -- no entry");
            return Task.FromResult(1);
        }
        ctx.Err.WriteLine("Usage: arp hostname\n       arp -a [-n]\n       arp -d hostname\n       arp -s hostname ether_addr [temp] [pub]");
        return Task.FromResult(2);
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
