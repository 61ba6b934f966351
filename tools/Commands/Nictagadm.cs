using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// nictagadm(8) (SmartOS): add, delete, exists, list, update and vms for nic tags (zones/NicTags.cs).
/// Errors are "Error: ..." with exit 1, usage exits 2, as the SmartOS script does.
/// SmartOS's nictagadm is a shell script that prints its list with printf, not libofmt, so `list`
/// keeps that fixed layout (<see cref="Line"/>) rather than going through OutputTable.
/// </summary>
public static class Nictagadm
{
    public static readonly CommandDescriptor Descriptor = new("nictagadm", "add, delete and list nic tags", RunAsync)
    {
        ZoneRefusal = "Error: This program can only be run in the global zone.",
    };

    private const string UsageText = """
        Manage nic tags

        Usage:
                nictagadm [OPTIONS] <subcommand> <args...> ...

        Subcommands:
                add             [-l] [-p prop=value,...] <name> [mac]
                delete          [-f] <name>
                exists          <name>
                list            [-l | -L] [-p] [-d delim]
                update          [-p prop=value,...] <name> [mac]
                vms             <name>
        """;

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine(why);
        ctx.Err.WriteLine(UsageText);
        return 2;
    }

    private static int Fatal(CommandContext ctx, string message)
    {
        ctx.Err.WriteLine("Error: " + message);
        return 1;
    }

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        int i = 0;
        while (i < args.Length && args[i] == "-v") i++;
        if (i >= args.Length) return Task.FromResult(Usage(ctx));
        string[] rest = args[(i + 1)..];
        int code = args[i] switch
        {
            "add" => AddOrUpdate(ctx, rest, add: true),
            "update" => AddOrUpdate(ctx, rest, add: false),
            "delete" => Delete(ctx, rest),
            "exists" => Exists(ctx, rest),
            "list" => List(ctx, rest),
            "vms" => Vms(ctx, rest),
            _ => Usage(ctx),
        };
        return Task.FromResult(code);
    }

    private static int AddOrUpdate(CommandContext ctx, string[] args, bool add)
    {
        var g = Getopt.Parse(args, "lp:");
        if (g.Error != null) return Usage(ctx, "invalid option: " + g.Error);
        if (g.Operands.Count is 0 or > 2) return Usage(ctx);
        string name = g.Operands[0];
        string? mac = g.Operands.Count == 2 ? g.Operands[1] : null;
        int? mtu = null;
        foreach (string spec in g.Values("p"))
        {
            foreach (string kv in spec.Split(','))
            {
                int eq = kv.IndexOf('=');
                if (eq <= 0 || eq == kv.Length - 1) return Fatal(ctx, $"invalid property {spec}");
                string key = kv[..eq], value = kv[(eq + 1)..];
                switch (key)
                {
                    case "mtu":
                        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int m)) return Fatal(ctx, $"invalid mtu: {value}");
                        mtu = m;
                        break;
                    case "mac":
                        if (mac != null) return Fatal(ctx, "mac address specified twice");
                        mac = value;
                        break;
                    default:
                        return Fatal(ctx, $"invalid property {key}");
                }
            }
        }
        var tags = ctx.Host.NicTags;
        var st = add ? tags.Add(name, mac, mtu, g.Has("l"))
            : g.Has("l") ? NicTagError.LocalUpdate : tags.Update(name, mac, mtu);
        if (!st.IsOk) return Fatal(ctx, st.Message);
        if (mtu != null) ctx.Out.WriteLine("MTU changes will not take effect until next reboot");
        return 0;
    }

    private static IEnumerable<Zone> Users(CommandContext ctx, string tag)
        => ctx.Host.Zones.Zones.Where(z => z.Config.Nets.Exists(n => n.GlobalNic == tag));

    private static int Delete(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "f");
        if (g.Error != null) return Usage(ctx, "invalid option: " + g.Error);
        if (g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        bool inUse = !g.Has("f") && Users(ctx, name).Any();
        var st = ctx.Host.NicTags.Delete(name, inUse);
        return st.IsOk ? 0 : Fatal(ctx, st.Message);
    }

    private static int Exists(CommandContext ctx, string[] args)
    {
        if (args.Length != 1) return Fatal(ctx, "tag_exists: no tag specified");
        return ctx.Host.NicTags.Find(args[0]) != null ? 0 : 1;
    }

    private static int Vms(CommandContext ctx, string[] args)
    {
        if (args.Length != 1) return Usage(ctx);
        foreach (var z in Users(ctx, args[0])) if (z.IsVm) ctx.Out.WriteLine(z.Name);
        return 0;
    }

    private static int List(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "lLpd:");
        if (g.Error != null) return Usage(ctx, "invalid option: " + g.Error);
        if (g.Operands.Count > 0) return Usage(ctx);
        if (g.Has("l") && g.Has("L")) return Fatal(ctx, "Cannot specify both local and non-local options");
        if (g.Has("d") && !g.Has("p")) return Fatal(ctx, "Delimiter option requires parsable option to be set");
        string delim = g.Value("d") ?? ":";
        var sb = new StringBuilder();
        if (!g.Has("p")) sb.Append(Line("NAME", "MACADDRESS", "LINK", "TYPE"));
        foreach (var t in ctx.Host.NicTags.Tags)
        {
            if (g.Has("l") && !t.Local) continue;
            if (g.Has("L") && t.Local) continue;
            string mac = t.Mac ?? "-";
            string link = t.Local ? "-" : ctx.Host.NicTags.FindNic(t.Mac!)?.Name ?? "-";
            string type = t.Local ? "etherstub" : "normal";
            if (g.Has("p"))
            {
                if (delim == ":") mac = mac.Replace(":", "\\:", StringComparison.Ordinal);
                sb.Append(t.Name).Append(delim).Append(mac).Append(delim).Append(link).Append(delim).Append(type).Append('\n');
            }
            else sb.Append(Line(t.Name, mac, link, type));
        }
        ctx.Out.Write(sb.ToString());
        return 0;
    }

    private static string Line(string name, string mac, string link, string type)
        => string.Create(CultureInfo.InvariantCulture, $"{name,-14} {mac,-18} {link,-14} {type}\n");
}
