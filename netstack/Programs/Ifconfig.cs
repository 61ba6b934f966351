using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Netstack;

/// <summary>ifconfig(8) -a: every interface, IPv4 then IPv6, one logical interface (net0, net0:1,
/// ...) per address, with the flags word and names illumos prints.</summary>
public static class Ifconfig
{
    public static readonly ProgramDescriptor Descriptor = new("ifconfig", "a", "configure network interface parameters", RunAsync);

    public static Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        // ifconfig.c reads -a (and its modifiers) itself rather than with getopt, so a bad option
        // is only its usage, without getopt's line.
        var g = Getopt.Parse(args, Descriptor.Options);
        string? only = g.Operands.Count == 1 && !g.Has("a") ? g.Operands[0] : null;
        if (g.Error != null || (g.Has("a") ? g.Operands.Count != 0 : only == null))
        {
            ctx.Err.WriteLine("usage: ifconfig <interface> | -a[ 4 | 6 | D ][ u | d ][ Z ]");
            return Task.FromResult(2);
        }
        var s = ctx.Stack;
        if (only != null && s.FindInterface(only) == null)
        {
            ctx.Err.WriteLine($"ifconfig: {only}: no such interface");
            return Task.FromResult(1);
        }
        foreach (bool v4 in new[] { true, false })
        {
            foreach (var ifc in s.Interfaces)
            {
                if (only != null && ifc.Name != only) continue;
                int logical = 0;
                bool printed = false;
                foreach (var a in s.Addresses)
                {
                    if (a.Interface != ifc || a.Address.IsV4 != v4) continue;
                    Print(ctx, ifc, a, v4, logical++);
                    printed = true;
                }
                if (!printed && !ifc.IsLoopback && v4) Print(ctx, ifc, null, v4, 0);
            }
        }
        return Task.FromResult(0);
    }

    private static void Print(ProgramContext ctx, IpInterface ifc, IpAddressObject? a, bool v4, int logical)
    {
        // IFF_UP 0x1, BROADCAST 0x2, LOOPBACK 0x8, RUNNING 0x40, MULTICAST 0x800, IPv4 0x1000000,
        // IPv6 0x2000000, VIRTUAL 0x2000000000, DUPLICATE 0x4000000000... as illumos's if.h numbers them.
        ulong flags = 0x40 | 0x800;
        var names = new List<string>();
        bool up = a != null && a.State == AddressState.Ok;
        if (up) { flags |= 0x1; names.Add("UP"); }
        if (v4 && !ifc.IsLoopback) { flags |= 0x2; names.Add("BROADCAST"); }
        if (ifc.IsLoopback) { flags |= 0x8; names.Add("LOOPBACK"); }
        names.Add("RUNNING");
        names.Add("MULTICAST");
        if (a?.Type == AddressType.Dhcp) { flags |= 0x80000; names.Add("DHCP"); }
        if (a?.Type == AddressType.Addrconf && !a.Address.IsLinkLocalV6) { flags |= 0x200000000000; names.Add("ADDRCONF"); }
        if (a?.State == AddressState.Duplicate) { flags |= 0x4000000000; names.Add("DUPLICATE"); }
        if (v4) { flags |= 0x1000000; names.Add("IPv4"); } else { flags |= 0x2000000; names.Add("IPv6"); }
        if (ifc.IsLoopback) { flags |= 0x2000000000; names.Add("VIRTUAL"); }
        string name = logical == 0 ? ifc.Name : $"{ifc.Name}:{logical}";
        int mtu = ifc.IsLoopback ? (v4 ? 8232 : 8252) : ifc.Mtu;
        ctx.Out.WriteLine($"{name}: flags={flags.ToString("x", CultureInfo.InvariantCulture)}<{string.Join(',', names)}> mtu {mtu} index {ifc.Index}");
        if (a != null)
        {
            if (v4)
            {
                uint mask = a.PrefixLength == 0 ? 0 : 0xFFFFFFFFu << (32 - a.PrefixLength);
                string line = $"\tinet {a.Address} netmask {mask.ToString("x8", CultureInfo.InvariantCulture)} ";
                if (!ifc.IsLoopback && a.PrefixLength < 31) line += $"broadcast {a.Broadcast}";
                ctx.Out.WriteLine(line);
            }
            else ctx.Out.WriteLine($"\tinet6 {a.Address}/{a.PrefixLength} ");
        }
        else ctx.Out.WriteLine("\tinet 0.0.0.0 netmask 0 ");
        if (!ifc.IsLoopback && logical == 0) ctx.Out.WriteLine($"\tether {ifc.MacAddress} ");
    }
}
