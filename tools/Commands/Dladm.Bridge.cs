using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dladm's bridge subcommands (create-bridge, modify-bridge, add-bridge, remove-bridge,
/// delete-bridge, show-bridge), as illumos's dladm.c create_modify_add_bridge, do_remove_bridge,
/// do_delete_bridge and do_show_bridge parse, check and print them; the bridge is vnic/Bridge.cs.
/// Refused here, with the reason: -R (one root), TRILL (-P trill, show-bridge -t runs but finds no
/// TRILL), RSTP (-f 2: this bridge runs 802.1D STP, force protocol 0), and show-bridge -i.
/// </summary>
public static partial class Dladm
{
    private enum BridgeFunc { Create, Add, Modify }

    private static int CreateBridge(CommandContext ctx, string[] args) => CreateModifyAddBridge(ctx, args, BridgeFunc.Create, "create-bridge");
    private static int ModifyBridge(CommandContext ctx, string[] args) => CreateModifyAddBridge(ctx, args, BridgeFunc.Modify, "modify-bridge");
    private static int AddBridge(CommandContext ctx, string[] args) => CreateModifyAddBridge(ctx, args, BridgeFunc.Add, "add-bridge");

    /// <summary>The settings options in the order create_modify_add_bridge's switch checks them,
    /// with its "set more than once" and "incorrect" words.</summary>
    private static readonly (string Opt, string What, string Bad, int Min, int Max)[] s_bridgeSettings =
    [
        ("d", "forwarding delay", "incorrect forwarding delay", BridgeConfig.MinForwardDelay, BridgeConfig.MaxForwardDelay),
        ("f", "force protocol", "incorrect force protocol", 0, int.MaxValue),
        ("h", "hello time", "incorrect hello time", BridgeConfig.MinHelloTime, BridgeConfig.MaxHelloTime),
        ("m", "max age", "incorrect max age", BridgeConfig.MinMaxAge, BridgeConfig.MaxMaxAge),
        ("p", "priority", "incorrect priority", BridgeConfig.MinPriority, BridgeConfig.MaxPriority),
    ];

    private static int CreateModifyAddBridge(CommandContext ctx, string[] args, BridgeFunc func, string sub)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "P:R:d:f:h:l:m:p:");
        if (g.Error != null) return OptError(ctx, g, sub);
        // add-bridge takes only -l (and -R); modify-bridge everything but -l (die_opterr).
        foreach (char o in func == BridgeFunc.Add ? "Pdfhmp" : func == BridgeFunc.Modify ? "l" : "")
            if (g.Has(o.ToString())) return BridgeOptError(ctx, o, sub);
        if (g.Has("P"))
        {
            string prot = g.Value("P")!;
            if (prot == "trill") return Fail(ctx, $"protection {prot}: {DlStatusText.Of(DladmStatus.NotSup)} (TRILL is not implemented here; bridges run STP)");
            if (prot != "stp") return Fail(ctx, $"protection {prot}: {DlStatusText.Of(DladmStatus.BadArg)}");
        }
        var values = new Dictionary<string, int>();
        foreach (var (opt, what, bad, min, max) in s_bridgeSettings)
        {
            var given = g.Values(opt);
            if (given.Count == 0) continue;
            if (given.Count > 1) return Fail(ctx, $"{what} set more than once");
            if (!TryStr2Int(given[0], out int v) || v < min || v > max) return Fail(ctx, bad);
            values[opt] = v;
        }
        if (values.TryGetValue("f", out int force) && force != BridgeConfig.StpProtocol)
            return Fail(ctx, $"force protocol {force} is not supported: this bridge runs IEEE 802.1D STP (force protocol 0), not RSTP");
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        if (g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        if (!MacLayer.IsValidBridgeName(name)) return Fail(ctx, $"invalid bridge name '{ConfigText.Echo(name)}'");

        // Unset values come from the bridge's present settings, so the relations are checked on
        // what the bridge would run with (dladm_bridge_get_properties' merge).
        var mac = ctx.Host.Mac;
        var old = mac.FindBridge(name)?.Config ?? BridgeConfig.Default;
        var cfg = new BridgeConfig(
            values.TryGetValue("p", out int pr) ? pr & 0xF000 : (func == BridgeFunc.Create ? BridgeConfig.DefaultPriority : old.Priority),
            values.GetValueOrDefault("m", old.MaxAge), values.GetValueOrDefault("h", old.HelloTime),
            values.GetValueOrDefault("d", old.ForwardDelay), BridgeConfig.StpProtocol);
        if (!cfg.TimersConsistent) return TimerRelationError(ctx, cfg);

        var links = g.Values("l");
        foreach (string l in links)
        {
            var link = mac.Find(l);
            if (link == null || !ctx.Sees(link)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(l)}'");
            if (link is not (PhysLink or AggrLink or Etherstub)) return Fail(ctx, $"{ClassName(link.Class)} {l} cannot be bridged");
        }
        var bridge = mac.FindBridge(name);
        if (func == BridgeFunc.Create && (bridge != null || mac.Exists(name + "0")))
            return Fail(ctx, $"create operation failed: {DlStatusText.Of(DladmStatus.Exist)}");
        if (func == BridgeFunc.Modify && bridge == null)
            return Fail(ctx, $"create operation failed: {DlStatusText.Of(DladmStatus.NotFound)}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string l in links)
        {
            var s = seen.Add(l) ? mac.CheckBridgeLink(l, out _) : DladmStatus.LinkBusy;
            if (func == BridgeFunc.Add && bridge == null) s = DladmStatus.NotFound;
            if (!s.IsOk) return Fail(ctx, $"unable to add link {l} to bridge {name}: {s.Message}");
        }
        var status = func switch
        {
            BridgeFunc.Create => mac.CreateBridge(name, cfg, links),
            BridgeFunc.Modify => mac.ModifyBridge(name, cfg),
            _ => mac.AddBridgeLinks(name, links),
        };
        return status.IsOk ? 0 : Fail(ctx, $"create operation failed: {status.Message}");
    }

    private static int BridgeOptError(CommandContext ctx, char opt, string sub)
    {
        ctx.Err.WriteLine($"dladm: unrecognized option '-{opt}'");
        ctx.Err.WriteLine("usage: " + UsageLine(sub));
        return 1;
    }

    /// <summary>str2int: a whole decimal number, optionally signed, nothing after it.</summary>
    private static bool TryStr2Int(string s, out int v)
        => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v);

    /// <summary>The warning and the message dladm gives for timers that break 802.1D's relations
    /// 2 x (forward delay - 1) >= max age >= 2 x (hello time + 1), from libdlbridge's macros
    /// (NO_MAXAGE, SMALL_MAXAGE, CAPPED_MAXAGE, FLOORED_MAXAGE and the limits they suggest).</summary>
    private static int TimerRelationError(CommandContext ctx, BridgeConfig c)
    {
        const int MinFwd = BridgeConfig.MinForwardDelay, MaxHello = BridgeConfig.MaxHelloTime;
        const int MinAge = BridgeConfig.MinMaxAge, MaxAge = BridgeConfig.MaxMaxAge;
        ctx.Err.WriteLine("dladm: warning: illegal forward delay / max age / hello time combination");
        int minFwdNom = c.HelloTime < MinFwd - 2 ? MinFwd : c.HelloTime + 2;
        int maxHelloNom = c.ForwardDelay > MaxHello + 2 ? MaxHello : c.ForwardDelay - 2;
        int minMaxAge = c.HelloTime < MinAge / 2 - 1 ? MinAge : 2 * (c.HelloTime + 1);
        int maxHello = c.MaxAge > 2 * (MaxHello + 1) ? MaxHello : c.MaxAge / 2 - 1;
        int minFwdDelay = c.MaxAge / 2 + 1;
        int maxMaxAge = c.ForwardDelay > MaxAge / 2 + 1 ? MaxAge : 2 * (c.ForwardDelay - 1);
        if (c.ForwardDelay - 1 < c.HelloTime + 1)
            return Fail(ctx, $"no max age possible: need forward delay >= {minFwdNom} or hello time <= {maxHelloNom}");
        if (c.MaxAge < 2 * (c.HelloTime + 1))
        {
            if (c.ForwardDelay < MaxAge / 2 + 1)
                return Fail(ctx, $"max age too small: need age >= {minMaxAge} and <= {maxMaxAge} or hello time <= {maxHello}");
            return Fail(ctx, $"max age too small: need age >= {minMaxAge} or hello time <= {maxHello}");
        }
        if (c.HelloTime > MinAge / 2 - 1)
            return Fail(ctx, $"max age too large: need age >= {minMaxAge} and <= {maxMaxAge} or forward delay >= {minFwdDelay}");
        return Fail(ctx, $"max age too large: need age <= {maxMaxAge} or forward delay >= {minFwdDelay}");
    }

    private static int DeleteBridge(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "R:");
        if (g.Error != null) return OptError(ctx, g, "delete-bridge");
        if (g.Operands.Count != 1) return Usage(ctx);
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        var s = ctx.Host.Mac.DeleteBridge(g.Operands[0]);
        return s.IsOk ? 0 : Fail(ctx, $"delete operation failed: {s.Message}");
    }

    private static int RemoveBridge(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "R:l:");
        if (g.Error != null) return OptError(ctx, g, "remove-bridge");
        var links = g.Values("l");
        if (links.Count == 0 || g.Operands.Count != 1) return Usage(ctx);
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        string name = g.Operands[0];
        var mac = ctx.Host.Mac;
        foreach (string l in links)
        {
            var link = mac.Find(l);
            if (link == null || !ctx.Sees(link)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(l)}'");
            if (MacLayer.BridgeOf(link)?.Name != name) return Fail(ctx, $"link {l} is not on bridge {name}");
        }
        var s = mac.RemoveBridgeLinks(name, links);
        return s.IsOk ? 0 : Fail(ctx, $"unable to remove any links from bridge {name}");
    }

    // ---- show-bridge ------------------------------------------------------------------------------

    private static readonly OutputTable.Field[] s_bridgeFields =
    [
        new("bridge", 12), new("protect", 8), new("address", 19), new("priority", 9), new("bmaxage", 8),
        new("bhellotime", 11), new("bfwddelay", 10), new("forceproto", 11), new("tctime", 10), new("tccount", 10),
        new("tchange", 10), new("desroot", 23), new("rootcost", 11), new("rootport", 11), new("maxage", 8),
        new("hellotime", 10), new("fwddelay", 9), new("holdtime", 9),
    ];
    private static readonly OutputTable.Field[] s_bridgeStatFields =
        [new("bridge", 12), new("drops", 12), new("forwards", 12), new("mbcast", 12), new("unknown", 12), new("recv", 12), new("sent", 12)];
    private static readonly OutputTable.Field[] s_bridgeLinkFields =
    [
        new("link", 12), new("index", 8), new("state", 12), new("uptime", 8), new("opercost", 9), new("operp2p", 8),
        new("operedge", 9), new("desroot", 22), new("descost", 11), new("desbridge", 22), new("desport", 8), new("tcack", 6),
    ];
    private static readonly OutputTable.Field[] s_bridgeLinkStatFields =
    [
        new("link", 12), new("cfgbpdu", 9), new("tcnbpdu", 9), new("rstpbpdu", 9), new("txbpdu", 9),
        new("drops", 9), new("recv", 9), new("xmit", 9),
    ];
    private static readonly OutputTable.Field[] s_bridgeFwdFields = [new("dest", 17), new("age", 7), new("flags", 6), new("output", 12)];
    private static readonly OutputTable.Field[] s_bridgeTrillFields = [new("nick", 5), new("flags", 6), new("link", 12), new("nexthop", 17)];

    private static int ShowBridge(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "fi:lo:pst");
        if (g.Error != null) return OptError(ctx, g, "show-bridge");
        char mode = 'b';
        foreach (char o in ModeOptionsInOrder(args))
        {
            if (mode != 'b' && mode != o)
                return Fail(ctx, o switch
                {
                    'f' => "-f is incompatible with -l or -t",
                    'l' => "-l is incompatible with -f or -t",
                    _ => "-t is incompatible with -f or -l",
                });
            mode = o;
        }
        foreach (string o in new[] { "i", "p", "s" })
            if (g.Values(o).Count > 1) return Fail(ctx, $"the option -{o} cannot be specified more than once");
        bool stats = g.Has("s");
        if (g.Has("i") && (!TryStr2Int(g.Value("i")!, out int interval) || interval == 0)) return Fail(ctx, $"invalid interval value '{g.Value("i")}'");
        if (g.Has("i") && !stats) return Fail(ctx, "the -i option can be used only with -s");
        if (mode is 'f' or 't' && stats) return Fail(ctx, "the -f/-t and -s options cannot be used together");
        if (g.Has("i")) return Fail(ctx, "show-bridge -s -i is not supported here: run show-bridge -s again for each interval");
        if (g.Operands.Count > 1) return Usage(ctx);
        Bridge? only = null;
        if (g.Operands.Count == 1)
        {
            string name = g.Operands[0];
            var link = FindVisible(ctx, name + "0");
            if (link == null) return Fail(ctx, $"bridge {name} is not valid: {DlStatusText.Of(DladmStatus.NotFound)}");
            if (link is not BridgeLink bl) return Fail(ctx, $"{name} is not a bridge");
            only = bl.Bridge;
        }
        else if (mode != 'b')
        {
            return Fail(ctx, "bridge name required for -l, -f, or -t");
        }
        var (fields, dflt, all) = (mode, stats) switch
        {
            ('b', false) => (s_bridgeFields, "bridge,protect,address,priority,desroot", (string?)null),
            ('b', true) => (s_bridgeStatFields, "bridge,drops,forwards,mbcast,unknown", null),
            ('l', false) => (s_bridgeLinkFields, "link,state,uptime,desroot", null),
            ('l', true) => (s_bridgeLinkStatFields, "link,drops,recv,xmit", null),
            ('f', _) => (s_bridgeFwdFields, "dest,age,flags,output", null),
            _ => (s_bridgeTrillFields, "nick,flags,link,nexthop", null),
        };
        all ??= string.Join(',', fields.Select(f => f.Name));
        string? spec = g.Value("o");
        // do_show_bridge resolves the default and "all" itself, so -p needs no -o here.
        spec = spec == null ? dflt : spec.Equals("all", StringComparison.OrdinalIgnoreCase) ? all : spec;
        var table = new OutputTable(fields);
        if (!PrepareTable(ctx, spec, g.Has("p"), table, out int code)) return code;
        // No bridge here runs TRILL (create-bridge refuses -P trill), so -t finds no nickname table.
        if (mode == 't') return Fail(ctx, $"bridge {only!.Name} is not running TRILL");
        long now = ctx.Host.Mac.Scheduler.Now;
        IEnumerable<Dictionary<string, string>> rows = mode switch
        {
            'b' => (only != null ? [only] : ctx.Host.Mac.Bridges.Where(b => ctx.Sees(b.Link)))
                .Select(b => stats ? BridgeStatRow(b) : BridgeRow(b, now)),
            'l' => only!.Ports.Select(p => stats ? BridgeLinkStatRow(p) : BridgeLinkRow(p, now)),
            _ => only!.ForwardingTable().Select(BridgeFwdRow),
        };
        ctx.Out.Write(table.Format(rows.Select(r => (IReadOnlyDictionary<string, string>)r), g.Has("p")));
        return 0;
    }

    /// <summary>-f, -l and -t in the order getopt meets them (clusters such as -lf included), so the
    /// second of two that clash is the one named, as do_show_bridge's switch names it.</summary>
    private static IEnumerable<char> ModeOptionsInOrder(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--" || a.Length < 2 || a[0] != '-') yield break;
            for (int j = 1; j < a.Length; j++)
            {
                char c = a[j];
                if (c is 'f' or 'l' or 't') yield return c;
                if (c is 'i' or 'o')
                {
                    if (j == a.Length - 1) i++; // the value is the next word
                    break;
                }
            }
        }
    }

    private static string Secs(ushort units) => Num(units / Bpdu.TimerScale);

    private static Dictionary<string, string> BridgeRow(Bridge b, long now)
    {
        var c = b.Config;
        long tcSince = b.TopologyChangeCount == 0 ? 0 : (now - b.LastTopologyChange) / Time.Second;
        return new()
        {
            ["bridge"] = b.Name, ["protect"] = "stp", ["address"] = b.BridgeId.ToString(), ["priority"] = Num(c.Priority),
            ["bmaxage"] = Num(c.MaxAge), ["bhellotime"] = Num(c.HelloTime), ["bfwddelay"] = Num(c.ForwardDelay),
            ["forceproto"] = Num(c.ForceProtocol), ["tctime"] = Num(tcSince), ["tccount"] = Num(b.TopologyChangeCount),
            ["tchange"] = b.TopologyChange ? "1" : "0", ["desroot"] = b.DesignatedRoot.ToString(), ["rootcost"] = Num(b.RootPathCost),
            ["rootport"] = Num(b.RootPort?.PortId ?? 0), ["maxage"] = Secs(b.MaxAge), ["hellotime"] = Secs(b.HelloTime),
            ["fwddelay"] = Secs(b.ForwardDelay), ["holdtime"] = Num(BridgeConfig.HoldTime),
        };
    }

    private static Dictionary<string, string> BridgeStatRow(Bridge b) => new()
    {
        ["bridge"] = b.Name, ["drops"] = Num(b.Drops), ["forwards"] = Num(b.ForwardDirect), ["mbcast"] = Num(b.ForwardMbcast),
        ["unknown"] = Num(b.ForwardUnknown), ["recv"] = Num(b.Received), ["sent"] = Num(b.Sent),
    };

    /// <summary>STP_IN_state2str's words for the 802.1D-1998 states this bridge has.</summary>
    private static string StateName(StpPortState s) => s.ToString().ToLowerInvariant();

    private static Dictionary<string, string> BridgeLinkRow(BridgePort p, long now) => new()
    {
        ["link"] = p.Link.Name, ["index"] = Num(p.Number), ["state"] = StateName(p.State),
        ["uptime"] = Num(p.State == StpPortState.Disabled ? 0 : (now - p.UpSince) / Time.Second), ["opercost"] = Num(p.PathCost),
        ["operp2p"] = p.Link is UplinkLink ? "yes" : "no", ["operedge"] = "no", ["desroot"] = p.DesignatedRoot.ToString(),
        ["descost"] = Num(p.DesignatedCost), ["desbridge"] = p.DesignatedBridge.ToString(), ["desport"] = Num(p.DesignatedPort),
        ["tcack"] = p.TopologyChangeAck ? "yes" : "no",
    };

    private static Dictionary<string, string> BridgeLinkStatRow(BridgePort p) => new()
    {
        ["link"] = p.Link.Name, ["cfgbpdu"] = Num(p.RxConfigBpdus), ["tcnbpdu"] = Num(p.RxTcnBpdus), ["rstpbpdu"] = Num(p.RxRstBpdus),
        ["txbpdu"] = Num(p.TxBpdus), ["drops"] = Num(p.Drops), ["recv"] = Num(p.Recv), ["xmit"] = Num(p.Xmit),
    };

    /// <summary>show_bridge_fwd: a local entry has flag L and no age; a learned one its age as
    /// "%2d.%03d" seconds.</summary>
    private static Dictionary<string, string> BridgeFwdRow(Bridge.FdbRow r) => new()
    {
        ["dest"] = r.Destination.ToString(),
        ["age"] = r.AgeMs is long ms ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000,2}.{ms % 1000:000}") : "",
        ["flags"] = r.AgeMs == null ? "L" : "",
        ["output"] = r.Output,
    };
}
