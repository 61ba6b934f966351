using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dladm's aggregation subcommands (create-aggr, delete-aggr, add-aggr, remove-aggr, modify-aggr,
/// show-aggr), with dladm.c's options, defaults (policy L4, LACP off, timer short), refusals and
/// column layouts; the MAC layer does the work (vnic/MacLayer.Aggr.cs). An aggregation is named by
/// its link name or, as in illumos, by a number N meaning "aggrN".
/// </summary>
public static partial class Dladm
{
    private static readonly (string Name, string Args)[] s_aggrUsage =
    [
        ("create-aggr", "[-t] [-P <policy>] [-L <mode>] [-T <time>] [-u <address>]\n\t\t     -l <link> [-l <link>...] <link>"),
        ("delete-aggr", "[-t] <link>"),
        ("add-aggr", "[-t] -l <link> [-l <link>...] <link>"),
        ("remove-aggr", "[-t] -l <link> [-l <link>...] <link>"),
        ("modify-aggr", "[-t] [-P <policy>] [-L <mode>] [-T <time>] [-u <address>] <link>"),
        ("show-aggr", "[-pPLx] [-o <field>,..] [-s [-i <interval>]] [<link>]"),
    ];

    /// <summary>show-aggr's options (the descriptor's NeedsRunningHost reads -i from them too).</summary>
    internal const string ShowAggrOptions = "LpPxsi:o:";

    /// <summary>An aggregation operand: a link name, or a key N for "aggrN" (dladm.c str2int).</summary>
    private static string AggrName(string operand)
        => int.TryParse(operand, NumberStyles.None, CultureInfo.InvariantCulture, out int key) ? $"aggr{key}" : operand;

    /// <summary>The -l values of create/add/remove: at most MAXPORT of them.</summary>
    private static bool TakePorts(CommandContext ctx, Getopt g, out List<string> ports, out int code)
    {
        ports = [.. g.Values("l")];
        code = 0;
        if (ports.Count <= MacLayer.MaxAggrPorts) return true;
        code = Fail(ctx, "too many ports specified");
        return false;
    }

    private static int CreateAggr(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "tfP:L:T:u:l:");
        if (g.Error != null) return OptError(ctx, g, "create-aggr");
        if (g.Has("f")) return Fail(ctx, "-f is not supported here: every port has link up/down detection");
        if (!ParseAggrSettings(ctx, g, out var policy, out var mode, out var timer, out var address, out code)) return code;
        if (!TakePorts(ctx, g, out var ports, out code)) return code;
        if (ports.Count == 0 || g.Operands.Count != 1) return Usage(ctx);
        string operand = g.Operands[0];
        if (operand.Length > LinkNames.MaxLength) return Fail(ctx, $"link name too long '{ConfigText.Echo(operand)}'");
        string name = AggrName(operand);
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(operand)}'");
        var s = ctx.Host.Mac.CreateAggr(name, ports, policy ?? AggrPolicy.L4, mode ?? LacpMode.Off, timer ?? LacpTimer.Short,
            address, g.Has("t"), out _);
        return s.IsOk ? 0 : Fail(ctx, $"create operation failed: {s.Message}");
    }

    /// <summary>-P, -L, -T and -u as dladm.c checks them (each value named in its refusal).</summary>
    private static bool ParseAggrSettings(CommandContext ctx, Getopt g, out AggrPolicy? policy, out LacpMode? mode, out LacpTimer? timer,
        out MacAddress? address, out int code)
    {
        policy = null; mode = null; timer = null; address = null; code = 0;
        if (g.Value("P") is { } p)
        {
            if (!MacLayer.TryParseAggrPolicy(p, out var v)) { code = Fail(ctx, $"invalid policy '{p}'"); return false; }
            policy = v;
        }
        if (g.Value("L") is { } l)
        {
            if (!MacLayer.TryParseLacpMode(l, out var v)) { code = Fail(ctx, $"invalid LACP mode '{l}'"); return false; }
            mode = v;
        }
        if (g.Value("T") is { } t)
        {
            if (!MacLayer.TryParseLacpTimer(t, out var v)) { code = Fail(ctx, $"invalid LACP timer value '{t}'"); return false; }
            timer = v;
        }
        if (g.Value("u") is { } u && u != "auto")
        {
            if (!MacAddress.TryParse(u, out var m) || m.IsGroup || m.IsZero) { code = Fail(ctx, $"invalid MAC address '{u}'"); return false; }
            address = m;
        }
        return true;
    }

    private static int DeleteAggr(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "t");
        if (g.Error != null) return OptError(ctx, g, "delete-aggr");
        if (g.Operands.Count != 1) return Usage(ctx);
        var s = ctx.Host.Mac.DeleteAggr(AggrName(g.Operands[0]), g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"delete operation failed: {s.Message}");
    }

    private static int AddAggr(CommandContext ctx, string[] args) => ChangeAggrPorts(ctx, args, "add");

    private static int RemoveAggr(CommandContext ctx, string[] args) => ChangeAggrPorts(ctx, args, "remove");

    private static int ChangeAggrPorts(CommandContext ctx, string[] args, string verb)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, verb == "add" ? "tfl:" : "tl:");
        if (g.Error != null) return OptError(ctx, g, verb + "-aggr");
        if (g.Has("f")) return Fail(ctx, "-f is not supported here: every port has link up/down detection");
        if (!TakePorts(ctx, g, out var ports, out code)) return code;
        if (ports.Count == 0 || g.Operands.Count != 1) return Usage(ctx);
        var mac = ctx.Host.Mac;
        string name = AggrName(g.Operands[0]);
        if (mac.Find(name) is not AggrLink) return Fail(ctx, $"{verb} operation failed: {DlStatusText.Of(mac.Find(name) == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
        foreach (string port in ports)
            if (mac.Find(port) == null) return Fail(ctx, $"invalid <link> '{ConfigText.Echo(port)}': {DlStatusText.Of(DladmStatus.NotFound)}");
        var s = verb == "add" ? mac.AddAggrPorts(name, ports, g.Has("t")) : mac.RemoveAggrPorts(name, ports, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"{verb} operation failed: {s.Message}");
    }

    private static int ModifyAggr(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "tP:L:T:u:");
        if (g.Error != null) return OptError(ctx, g, "modify-aggr");
        if (!ParseAggrSettings(ctx, g, out var policy, out var mode, out var timer, out var address, out code)) return code;
        if (!g.Has("P") && !g.Has("L") && !g.Has("T") && !g.Has("u")) return Fail(ctx, "at least one of the -PulT options must be specified");
        if (g.Operands.Count != 1) return Usage(ctx);
        var s = ctx.Host.Mac.ModifyAggr(AggrName(g.Operands[0]), policy, address, g.Value("u") == "auto", mode, timer, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"modify operation failed: {s.Message}");
    }

    // ---- show-aggr ---------------------------------------------------------------------------------

    private static Task<int> ShowAggrAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ShowAggrOptions);
        if (g.Error != null) return Task.FromResult(OptError(ctx, g, "show-aggr"));
        bool L = g.Has("L"), x = g.Has("x"), s = g.Has("s"), P = g.Has("P"), p = g.Has("p");
        if (g.Has("i") && !s) return Task.FromResult(Fail(ctx, "the option -i can be used only with -s"));
        if (s && (L || p || x || P)) return Task.FromResult(Fail(ctx, $"the option -{(L ? 'L' : p ? 'p' : x ? 'x' : 'P')} cannot be used with -s"));
        if (L && P) return Task.FromResult(Fail(ctx, "the option -P cannot be used with -L"));
        if (x && (L || P)) return Task.FromResult(Fail(ctx, $"the option -{(L ? 'L' : 'P')} cannot be used with -x"));
        long interval = 0;
        if (g.Has("i") && !IntervalStats.TryParse(g.Value("i")!, out interval)) return Task.FromResult(Fail(ctx, $"invalid interval value '{g.Value("i")}'"));
        if (g.Operands.Count > 1) return Task.FromResult(Usage(ctx));
        string? only = g.Operands.Count == 1 ? AggrName(g.Operands[0]) : null;
        if (only != null && (P ? ctx.Host.Mac.FindPersistent(only)?.Class != "aggr" : FindVisible(ctx, only) is not AggrLink))
            return Task.FromResult(Fail(ctx, $"non-existent aggregation '{ConfigText.Echo(g.Operands[0])}'"));
        if (P) return Task.FromResult(ShowAggrPersistent(ctx, g, only));
        var aggrs = Visible(ctx).OfType<AggrLink>().Where(a => only == null || a.Name == only).ToList();
        if (L) return Task.FromResult(ShowAggrLacp(ctx, g, aggrs));
        if (x) return Task.FromResult(ShowAggrExtended(ctx, g, aggrs));
        if (s) return ShowAggrStatsAsync(ctx, g, interval, aggrs);
        var t = AggrTable();
        if (!PrepareTable(ctx, g, t, out int code)) return Task.FromResult(code);
        ctx.Out.Write(t.Format(aggrs.Select(a => AggrRow(a.Name, a.Policy, a.FixedAddress, a.Mode, a.Timer)), p));
        return Task.FromResult(0);
    }

    private static OutputTable AggrTable()
        => new(new("link", 16), new("policy", 9), new("addrpolicy", 21), new("lacpactivity", 14), new("lacptimer", 12), new("flags", 8));

    /// <summary>print_aggr_info: the policy, "auto" or "fixed (ADDRESS)", LACP mode and timer, and
    /// flags "-----" (the first would be f for an aggregation forced with -f).</summary>
    private static IReadOnlyDictionary<string, string> AggrRow(string name, AggrPolicy policy, MacAddress? fixedAddress, LacpMode mode, LacpTimer timer)
        => new Dictionary<string, string>
        {
            ["link"] = name, ["policy"] = MacLayer.AggrPolicyText(policy),
            ["addrpolicy"] = fixedAddress is { } f ? $"fixed ({f})" : "auto",
            ["lacpactivity"] = MacLayer.LacpModeText(mode), ["lacptimer"] = MacLayer.LacpTimerText(timer), ["flags"] = "-----",
        };

    /// <summary>show-aggr -P: the aggregations as datalink.conf has them.</summary>
    private static int ShowAggrPersistent(CommandContext ctx, Getopt g, string? only)
    {
        var t = AggrTable();
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var r in ctx.Host.Mac.PersistentLinks)
        {
            if (r.Class != "aggr" || r.Aggr is not { } a || (only != null && r.Name != only)) continue;
            if (!MacLayer.TryParseAggrPolicy(a.Policy, out var policy) || !MacLayer.TryParseLacpMode(a.Lacp, out var mode)
                || !MacLayer.TryParseLacpTimer(a.Timer, out var timer))
                continue; // a record the boot refused is reported there, not shown here
            MacAddress? f = a.Address != null && MacAddress.TryParse(a.Address, out var m) ? m : null;
            rows.Add(AggrRow(r.Name, policy, f, mode, timer));
        }
        ctx.Out.Write(t.Format(rows, g.Has("p")));
        return 0;
    }

    private static string YesNo(bool b) => b ? "yes" : "no";

    /// <summary>show-aggr -L (print_lacp_cb): per port the actor's state bits; the aggregation's name
    /// on its first port's row only.</summary>
    private static int ShowAggrLacp(CommandContext ctx, Getopt g, List<AggrLink> aggrs)
    {
        var t = new OutputTable(new("link", 12), new("port", 13), new("aggregatable", 13), new("sync", 5), new("coll", 5), new("dist", 5),
            new("defaulted", 10), new("expired", 15));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var a in aggrs)
        {
            for (int i = 0; i < a.Ports.Count; i++)
            {
                var port = a.Ports[i];
                var st = port.Lacp.ActorState;
                rows.Add(new Dictionary<string, string>
                {
                    ["link"] = i > 0 ? "" : a.Name, ["port"] = port.Phys.Name,
                    ["aggregatable"] = YesNo((st & LacpState.Aggregation) != 0), ["sync"] = YesNo((st & LacpState.Synchronization) != 0),
                    ["coll"] = YesNo((st & LacpState.Collecting) != 0), ["dist"] = YesNo((st & LacpState.Distributing) != 0),
                    ["defaulted"] = YesNo((st & LacpState.Defaulted) != 0), ["expired"] = YesNo((st & LacpState.Expired) != 0),
                });
            }
        }
        ctx.Out.Write(t.Format(rows, g.Has("p")));
        return 0;
    }

    /// <summary>show-aggr -x (print_xaggr_cb): the aggregation's row, then one per port; SPEED in Mb.</summary>
    private static int ShowAggrExtended(CommandContext ctx, Getopt g, List<AggrLink> aggrs)
    {
        var t = new OutputTable(new("link", 12), new("port", 15), new("speed", 5), new("duplex", 10), new("state", 10), new("address", 19), new("portstate", 16));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        bool parsable = g.Has("p");
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var a in aggrs)
        {
            rows.Add(new Dictionary<string, string>
            {
                ["link"] = a.Name, ["port"] = "--", ["speed"] = Num(a.SpeedMbps) + "Mb", ["duplex"] = a.Duplex, ["state"] = a.State,
                ["address"] = a.MacAddress.ToString(), ["portstate"] = "--",
            });
            foreach (var port in a.Ports)
            {
                rows.Add(new Dictionary<string, string>
                {
                    ["link"] = parsable ? a.Name : " ", ["port"] = port.Phys.Name, ["speed"] = Num(port.Phys.SpeedMbps) + "Mb",
                    ["duplex"] = port.Phys.Duplex, ["state"] = port.Phys.State, ["address"] = port.Phys.MacAddress.ToString(),
                    ["portstate"] = port.PortState,
                });
            }
        }
        ctx.Out.Write(t.Format(rows, parsable));
        return 0;
    }

    /// <summary>show-aggr -s (print_aggr_stats): per aggregation the sum of its ports' device counters,
    /// then each port's with its share of the packets in and out ("%-6.1f" of the sum); with -i again
    /// every interval, the counts since the last report.</summary>
    private static async Task<int> ShowAggrStatsAsync(CommandContext ctx, Getopt g, long interval, List<AggrLink> aggrs)
    {
        var t = new OutputTable(new("link", 12), new("port", 10), new("ipackets", 8), new("rbytes", 8), new("opackets", 8), new("obytes", 8),
            new("ipktdist", 9), new("opktdist", 15));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        var previous = new Dictionary<PhysLink, long[]>();
        while (true)
        {
            var rows = new List<IReadOnlyDictionary<string, string>>();
            var now = new Dictionary<PhysLink, long[]>();
            foreach (var a in aggrs)
            {
                var diffs = new List<(string Port, long[] D)>();
                var total = new long[4];
                foreach (var port in a.Ports)
                {
                    var st = port.Phys.Stats;
                    long[] c = [st.IPackets, st.RBytes, st.OPackets, st.OBytes];
                    now[port.Phys] = c;
                    previous.TryGetValue(port.Phys, out var before);
                    var d = new long[4];
                    for (int i = 0; i < 4; i++) { d[i] = c[i] - (before?[i] ?? 0); total[i] += d[i]; }
                    diffs.Add((port.Phys.Name, d));
                }
                rows.Add(new Dictionary<string, string>
                {
                    ["link"] = a.Name, ["port"] = "--", ["ipackets"] = Num(total[0]), ["rbytes"] = Num(total[1]), ["opackets"] = Num(total[2]),
                    ["obytes"] = Num(total[3]), ["ipktdist"] = "--", ["opktdist"] = "--",
                });
                foreach (var (port, d) in diffs)
                {
                    rows.Add(new Dictionary<string, string>
                    {
                        ["link"] = "", ["port"] = port, ["ipackets"] = Num(d[0]), ["rbytes"] = Num(d[1]), ["opackets"] = Num(d[2]),
                        ["obytes"] = Num(d[3]), ["ipktdist"] = Share(d[0], total[0]), ["opktdist"] = Share(d[2], total[2]),
                    });
                }
            }
            ctx.Out.Write(t.Format(rows, false));
            if (interval <= 0) return 0;
            ctx.Out.Flush();
            previous = now;
            try { await LoopSynchronizationContext.Delay(ctx.Host.Scheduler, interval, ctx.Cancel); }
            catch (OperationCanceledException) { return 0; }
        }
    }

    /// <summary>A port's share as "%-6.1f" prints it; with no packets at all 0.0 (C would print nan).</summary>
    private static string Share(long part, long total)
        => (total == 0 ? 0.0 : (double)part / total * 100).ToString("0.0", CultureInfo.InvariantCulture).PadRight(6);

    /// <summary>show-link's OVER for an aggregation: its ports, space-separated, as print_link_topology lists them.</summary>
    private static string OverOf(Datalink l)
        => l switch
        {
            AggrLink a => a.Ports.Count == 0 ? "--" : string.Join(' ', a.Ports.Select(p => p.Phys.Name)),
            BridgeLink b => string.Join(' ', b.Bridge.Ports.Select(p => p.Link.Name)),
            _ => l.Over?.Name ?? "--",
        };
}
