using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>
/// route(8): `route add|delete [-net|-host] destination [gateway]` (destination "default", an
/// address, or network/len; -netmask M also accepted), `route get destination`. As illumos prints it,
/// each add/delete reports "add net DEST: gateway GW" and appends ": error" on failure.
/// </summary>
public static class Route
{
    /// <summary>route.c's getopt string: this route honours -n and refuses the others
    /// (<see cref="NotDone"/>) by name.</summary>
    public static readonly ProgramDescriptor Descriptor = new("route", "R:nqdtvfpz:", "manually manipulate the routing tables", RunAsync);

    /// <summary>The options of route.c's getopt string that this route does not do.</summary>
    private const string NotDone = "Rqdtvfpz";

    public static Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.ReportError(ctx.Err, "route")) return Task.FromResult(Usage(ctx));
        foreach (char f in NotDone)
        {
            if (!g.Has(f.ToString())) continue;
            ctx.Err.WriteLine($"route: option -{f} is not supported by this route");
            return Task.FromResult(1);
        }
        // -n: every address is printed as a number already. The qualifiers after the command
        // (-net, -host, -netmask ...) are route's own keywords, not getopt's.
        var a = g.Operands;
        if (a.Count == 0) return Task.FromResult(Usage(ctx));
        string cmd = a[0];
        a.RemoveAt(0);
        return Task.FromResult(cmd switch
        {
            "add" or "delete" => AddDelete(ctx, cmd, a),
            "get" => Get(ctx, a),
            _ => Usage(ctx, cmd),
        });
    }

    /// <summary>route.c's usage(): "botched keyword" for a word it does not know, the synopsis,
    /// exit(1).</summary>
    private static int Usage(ProgramContext ctx, string? keyword = null)
    {
        if (keyword != null) ctx.Err.WriteLine($"route: botched keyword: {keyword}");
        ctx.Err.WriteLine("usage: route [ -fnpqv ] [-z <zone> ] [ -R <root-dir> ] cmd [[ -<qualifers> ] args ]");
        return 1;
    }

    private static bool TryDestination(string text, bool? net, string? netmask, out IpAddress dst, out int prefix, out bool isNet)
    {
        dst = default; prefix = 0; isNet = true;
        if (text == "default")
        {
            dst = IpAddress.AnyV4;
            return true;
        }
        if (!Programs.TryParseCidr(text, out dst, out prefix)) return false;
        if (netmask != null)
        {
            if (!IpAddress.TryParse(netmask, out var m) || !m.IsV4) return false;
            prefix = System.Numerics.BitOperations.PopCount(m.V4Raw);
        }
        isNet = net ?? (text.Contains('/') || netmask != null);
        if (!isNet) prefix = dst.IsV4 ? 32 : 128;
        return true;
    }

    private static int AddDelete(ProgramContext ctx, string cmd, List<string> a)
    {
        bool? net = null;
        string? netmask = null;
        bool v6 = false;
        var pos = new List<string>();
        for (int i = 0; i < a.Count; i++)
        {
            switch (a[i])
            {
                case "-net": net = true; break;
                case "-host": net = false; break;
                case "-inet": break;
                case "-inet6": v6 = true; break;
                case "-netmask" when i + 1 < a.Count: netmask = a[++i]; break;
                case "-gateway" when i + 1 < a.Count: pos.Add(a[++i]); break;
                default:
                    if (a[i].StartsWith('-')) return Usage(ctx);
                    pos.Add(a[i]);
                    break;
            }
        }
        if (pos.Count < 1 || pos.Count > 2 || (cmd == "add" && pos.Count != 2)) return Usage(ctx);
        if (!TryDestination(pos[0], net, netmask, out var dst, out int prefix, out bool isNet))
        {
            ctx.Err.WriteLine($"route: bad address: {pos[0]}");
            return 1;
        }
        if (v6 && pos[0] == "default") dst = IpAddress.AnyV6;
        IpAddress gw = dst.IsV4 ? IpAddress.AnyV4 : IpAddress.AnyV6;
        if (pos.Count == 2 && (!IpAddress.TryParse(pos[1], out gw) || gw.IsV4 != dst.IsV4))
        {
            ctx.Err.WriteLine($"route: bad address: {pos[1]}");
            return 1;
        }
        string what = pos[0] == "default" ? "default" : isNet ? $"{IpStack.Network(dst, prefix)}/{prefix}" : dst.ToString();
        string line = $"{cmd} {(isNet ? "net" : "host")} {what}" + (pos.Count == 2 ? $": gateway {gw}" : "");
        var st = cmd == "add" ? ctx.Stack.AddRoute(dst, prefix, gw) : ctx.Stack.DeleteRoute(dst, prefix, gw);
        if (st != NetError.None)
        {
            ctx.Out.WriteLine($"{line}: {Describe(st)}");
            return 1;
        }
        ctx.Out.WriteLine(line);
        return 0;
    }

    /// <summary>route.c's wording of a routing-socket errno: its own for the routing errors, strerror
    /// for the rest.</summary>
    private static string Describe(NetError e) => e switch
    {
        NetError.NoSuchEntry => "not in table",
        NetError.Exists => "entry exists",
        NetError.NoBufferSpace => "routing table overflow",
        _ => NetErrors.Message(e),
    };

    private static int Get(ProgramContext ctx, List<string> a)
    {
        if (a.Count != 1) return Usage(ctx);
        if (!Programs.TryParseCidr(a[0] == "default" ? "0.0.0.0" : a[0], out var dst, out _))
        {
            ctx.Err.WriteLine($"route: bad address: {a[0]}");
            return 1;
        }
        var r = ctx.Stack.LookupRoute(dst);
        if (r == null)
        {
            ctx.Err.WriteLine("route: writing to routing socket: No such process");
            return 1;
        }
        ctx.Out.WriteLine($"   route to: {dst}");
        ctx.Out.WriteLine($"destination: {(r.IsDefault ? "default" : r.Destination.ToString())}");
        ctx.Out.WriteLine($"       mask: {(dst.IsV4 ? Programs.Mask(r.PrefixLength) : r.PrefixLength.ToString(CultureInfo.InvariantCulture))}");
        if ((r.Flags & RouteFlags.Gateway) != 0) ctx.Out.WriteLine($"    gateway: {r.Gateway}");
        ctx.Stack.TryRouteInterface(dst, out string ifName);
        ctx.Out.WriteLine($"  interface: {ifName}");
        var flags = new List<string> { "UP" };
        if ((r.Flags & RouteFlags.Gateway) != 0) flags.Add("GATEWAY");
        if ((r.Flags & RouteFlags.Host) != 0) flags.Add("HOST");
        flags.Add("DONE");
        if ((r.Flags & RouteFlags.Static) != 0) flags.Add("STATIC");
        if ((r.Flags & RouteFlags.Dynamic) != 0) flags.Add("DYNAMIC");
        ctx.Out.WriteLine($"      flags: <{string.Join(',', flags)}>");
        return 0;
    }
}
