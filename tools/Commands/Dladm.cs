using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dladm(8): datalink administration. Subcommands, options, column layouts and messages follow
/// illumos; every change is validated before it is applied (Dispatcher.cs rule 1).
/// </summary>
public static partial class Dladm
{
    public static readonly CommandDescriptor Descriptor = new("dladm", "administer data links", RunAsync)
    {
        // show-link -i repeats every interval until ^C: a running host's clock must move.
        NeedsRunningHost = static a => a.Length > 0 && ((a[0] == "show-link" && Getopt.Parse(a[1..], ShowLinkOptions).Has("i"))
            || (a[0] == "show-aggr" && Getopt.Parse(a[1..], ShowAggrOptions).Has("i"))),
    };

    private delegate int Sub(CommandContext ctx, string[] args);

    private static readonly Dictionary<string, Sub> s_subs = new(StringComparer.Ordinal)
    {
        ["show-phys"] = ShowPhys,
        ["create-etherstub"] = CreateEtherstub,
        ["delete-etherstub"] = DeleteEtherstub,
        ["show-etherstub"] = ShowEtherstub,
        ["create-vnic"] = CreateVnic,
        ["delete-vnic"] = DeleteVnic,
        ["show-vnic"] = ShowVnic,
        ["create-vlan"] = CreateVlan,
        ["delete-vlan"] = DeleteVlan,
        ["show-vlan"] = ShowVlan,
        ["rename-link"] = RenameLink,
        ["set-linkprop"] = SetLinkprop,
        ["reset-linkprop"] = ResetLinkprop,
        ["show-linkprop"] = ShowLinkprop,
        ["create-bridge"] = CreateBridge, ["modify-bridge"] = ModifyBridge, ["delete-bridge"] = DeleteBridge,
        ["add-bridge"] = AddBridge, ["remove-bridge"] = RemoveBridge, ["show-bridge"] = ShowBridge,
        ["create-aggr"] = CreateAggr, ["delete-aggr"] = DeleteAggr, ["add-aggr"] = AddAggr, ["remove-aggr"] = RemoveAggr, ["modify-aggr"] = ModifyAggr,
        ["create-overlay"] = CreateOverlay, ["delete-overlay"] = DeleteOverlay, ["modify-overlay"] = ModifyOverlay, ["show-overlay"] = ShowOverlay,
    };

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0) return Task.FromResult(Usage(ctx));
        if (args[0] == "show-link") return ShowLinkAsync(ctx, args[1..]);
        if (args[0] == "show-aggr") return ShowAggrAsync(ctx, args[1..]);
        if (!s_subs.TryGetValue(args[0], out var sub))
        {
            ctx.Err.WriteLine($"dladm: unknown subcommand '{args[0]}'");
            return Task.FromResult(Usage(ctx));
        }
        return Task.FromResult(sub(ctx, args[1..]));
    }

    /// <summary>Each subcommand's usage line, as dladm.c's cmds[] table lays them out ("    name" padded
    /// to 21 columns, continuation lines indented by two tabs and five spaces), with the options this
    /// layer takes.</summary>
    private static readonly (string Name, string Args)[] s_usage =
    [
        ("rename-link", "<oldlink> <newlink>"),
        ("show-link", "[-pPZ] [-o <field>,..] [-s [-i <interval>]] [<link>]"),
        ("set-linkprop", "[-t] -p <prop>=<value>[,...] <name>"),
        ("reset-linkprop", "[-t] [-p <prop>,...] <name>"),
        ("show-linkprop", "[-cP] [-o <field>,...] [-p <prop>,...] <name>"),
        ("create-vlan", "[-ft] -l <link> -v <vid> [-p <prop>=<value>[,...]] <link>"),
        ("delete-vlan", "[-t] <link>"),
        ("show-vlan", "[-pP] [-o <field>,..] [<link>]"),
        ("show-phys", "[-pP] [-o <field>,..] [-H] [-m] [<link>]"),
        ("create-vnic", "[-t] -l <link> [-m <value> | auto |\n\t\t     {factory [-n <slot-id>]} | {random [-r <prefix>]}]\n\t\t     [-v <vid>] [-p <prop>=<value>[,...]] <vnic-link>"),
        ("delete-vnic", "[-t] <vnic-link>"),
        ("show-vnic", "[-pP] [-o <field>,..] [-l <link>] [-s] [<link>]"),
        ("create-etherstub", "[-t] <link>"),
        ("delete-etherstub", "[-t] <link>"),
        ("show-etherstub", "[-pP] [-o <field>,..] [<link>]"),
        ("create-bridge", "[-P <protect>] [-p <priority>]\n\t\t     [-m <max-age>] [-h <hello-time>] [-d <forward-delay>]\n\t\t     [-f <force-protocol>] [-l <link>]... <bridge>"),
        ("modify-bridge", "[-P <protect>] [-p <priority>]\n\t\t     [-m <max-age>] [-h <hello-time>] [-d <forward-delay>]\n\t\t     [-f <force-protocol>] <bridge>"),
        ("delete-bridge", "<bridge>"),
        ("add-bridge", "-l <link> [-l <link>]... <bridge>"),
        ("remove-bridge", "-l <link> [-l <link>]... <bridge>"),
        ("show-bridge", "[-p] [-o <field>,...] [-s] [<bridge>]\n    show-bridge      -l [-p] [-o <field>,...] [-s] <bridge>\n    show-bridge      -f [-p] [-o <field>,...] <bridge>\n    show-bridge      -t [-p] [-o <field>,...] <bridge>"),
        ("create-overlay", "[-t] -e <encap> -s <search> -v <vnetid>\n\t\t     [ -p <prop>=<value>[,...]] <overlay>"),
        ("delete-overlay", "[-t] <overlay>"),
        ("modify-overlay", "-d mac | -f | -s mac=ip:port <overlay>"),
        ("show-overlay", "[-f | -t] [[-p] -o <field>,...] [<overlay>]"),
    ];

    private static string UsageLine(string sub)
    {
        var (name, args) = Array.Find(s_usage, u => u.Name == sub);
        if (name == null) (name, args) = Array.Find(s_aggrUsage, u => u.Name == sub);
        return $"    {name,-17}{args}";
    }

    /// <summary>usage(): the synopsis of every subcommand, then exit(EXIT_FAILURE).</summary>
    private static int Usage(CommandContext ctx)
    {
        ctx.Err.WriteLine("usage:  dladm <subcommand> <args> ...");
        foreach (var (name, _) in s_usage) ctx.Err.WriteLine(UsageLine(name));
        foreach (var (name, _) in s_aggrUsage) ctx.Err.WriteLine(UsageLine(name));
        return 1;
    }

    private static int Fail(CommandContext ctx, string message)
    {
        ctx.Err.WriteLine("dladm: " + message);
        return 1;
    }

    /// <summary>die_opterr in dladm.c: "option '-%c' requires a value" or "unrecognized option '-%c'",
    /// then "usage: " and the subcommand's usage line; like every die(), exit status 1.</summary>
    private static int OptError(CommandContext ctx, Getopt g, string sub)
    {
        ctx.Err.WriteLine(g.ErrorMissingValue
            ? $"dladm: option '-{g.ErrorOption}' requires a value"
            : $"dladm: unrecognized option '-{g.ErrorOption}'");
        ctx.Err.WriteLine("usage: " + UsageLine(sub));
        return 1;
    }

    /// <summary>The links a zone may see: all in the global zone, only its own elsewhere (isolation rules).</summary>
    private static IEnumerable<Datalink> Visible(CommandContext ctx)
        => ctx.Host.Mac.Links.Where(ctx.Sees);

    private static Datalink? FindVisible(CommandContext ctx, string name)
    {
        var l = ctx.Host.Mac.Find(name);
        return l != null && ctx.Sees(l) ? l : null;
    }

    private static bool GlobalOnly(CommandContext ctx, out int code)
    {
        code = 0;
        if (ctx.Zone == "global") return true;
        code = Fail(ctx, "insufficient privileges");
        return false;
    }

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>-o and -p as dladm.c hands them to ofmt_open and dladm_ofmt_check: in parsable output
    /// every problem is fatal ("output fields must be specified in parsable mode", "output field `all'
    /// invalid in parsable mode", an unknown field); in human output unknown fields are left out with a
    /// warning, and only "no valid output fields" is fatal.</summary>
    private static bool PrepareTable(CommandContext ctx, Getopt g, OutputTable table, out int code)
        => PrepareTable(ctx, g.Value("o"), g.Has("p"), table, out code);

    private static bool PrepareTable(CommandContext ctx, string? fields, bool parsable, OutputTable table, out int code)
    {
        code = 0;
        var (fatal, warning) = table.Open(fields, parsable);
        if (fatal != null)
        {
            code = Fail(ctx, fatal);
            return false;
        }
        if (warning != null) ctx.Err.WriteLine("dladm: warning: " + warning);
        return true;
    }

    private static string ClassName(LinkClass c) => c switch
    {
        LinkClass.Phys => "phys",
        LinkClass.Etherstub => "etherstub",
        LinkClass.Vnic => "vnic",
        LinkClass.Bridge => "bridge",
        LinkClass.Aggr => "aggr",
        LinkClass.Overlay => "overlay",
        _ => "vlan",
    };

    // ---- show-phys ---------------------------------------------------------------------------------

    private static int ShowPhys(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pPo:mH");
        if (g.Error != null) return OptError(ctx, g, "show-phys");
        var phys = Visible(ctx).OfType<PhysLink>().ToList();
        if (g.Operands.Count > 1) return Fail(ctx, "too many arguments");
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l is not PhysLink p) return Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(l == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
            phys = [p];
        }
        if (g.Has("m"))
        {
            var mt = new OutputTable(new("link", 13), new("slot", 9), new("address", 19), new("inuse", 6), new("client", 12));
            if (!PrepareTable(ctx, g, mt, out int c)) return c;
            var rows = new List<Dictionary<string, string>>();
            foreach (var p in phys)
            {
                var users = ctx.Host.Mac.Links.OfType<VnicLink>().Where(v => v.OverLink == p).ToList();
                rows.Add(new() { ["link"] = p.Name, ["slot"] = "primary", ["address"] = p.FactoryMac.ToString(), ["inuse"] = "yes", ["client"] = p.Name });
                for (int slot = 1; slot <= MacLayer.FactorySlots; slot++)
                {
                    var user = users.FirstOrDefault(v => v.FactorySlot == slot);
                    rows.Add(new() { ["link"] = "", ["slot"] = Num(slot), ["address"] = MacLayer.FactoryAddress(p, slot).ToString(), ["inuse"] = user != null ? "yes" : "no", ["client"] = user?.Name ?? "--" });
                }
            }
            ctx.Out.Write(mt.Format(rows, g.Has("p")));
            return 0;
        }
        var t = new OutputTable(new("link", 13), new("media", 21), new("state", 11), new("speed", 7), new("duplex", 10), new("device", 12));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        ctx.Out.Write(t.Format(phys.Select(p => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["link"] = p.Name, ["media"] = "Ethernet", ["state"] = p.State, ["speed"] = Num(p.SpeedMbps),
            ["duplex"] = p.Duplex, ["device"] = p.Device,
        }), g.Has("p")));
        return 0;
    }

    // ---- show-link ---------------------------------------------------------------------------------

    /// <summary>show-link's options (its descriptor's NeedsRunningHost reads -i from them too).</summary>
    internal const string ShowLinkOptions = "pPo:sZi:";

    /// <summary>show-link; with -s the statistics, and with -s -i INTERVAL again every interval
    /// (IntervalStats), which is why it is asynchronous.</summary>
    private static Task<int> ShowLinkAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ShowLinkOptions);
        if (g.Error != null) return Task.FromResult(OptError(ctx, g, "show-link"));
        if (g.Has("i") && !g.Has("s")) return Task.FromResult(Fail(ctx, "the option -i can be used only with -s"));
        long interval = 0;
        if (g.Has("i") && !IntervalStats.TryParse(g.Value("i")!, out interval)) return Task.FromResult(Fail(ctx, $"invalid interval value '{g.Value("i")}'"));
        if (g.Operands.Count > 1) return Task.FromResult(Fail(ctx, "too many arguments"));
        Datalink? only = null;
        if (g.Operands.Count == 1)
        {
            only = FindVisible(ctx, g.Operands[0]);
            if (only == null) return Task.FromResult(Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(DladmStatus.NotFound)}"));
        }
        if (g.Has("s"))
        {
            var st = new OutputTable(new("link", 13), new("ipackets", 10), new("rbytes", 10), new("ierrors", 10), new("opackets", 10), new("obytes", 10), new("oerrors", 10));
            if (!PrepareTable(ctx, g, st, out int c)) return Task.FromResult(c);
            // The links are listed again at each report: one may come or go between intervals.
            return IntervalStats.RunAsync(ctx, interval, st, g.Has("p"), "link", ["ipackets", "rbytes", "ierrors", "opackets", "obytes", "oerrors"],
                () => (only != null ? [only] : Visible(ctx)).Select(l =>
                    (l.Name, new[] { l.Stats.IPackets, l.Stats.RBytes, l.Stats.IErrors, l.Stats.OPackets, l.Stats.OBytes, l.Stats.OErrors })).ToList());
        }
        return Task.FromResult(ShowLinkTable(ctx, g, only != null ? [only] : Visible(ctx).ToList()));
    }

    private static int ShowLinkTable(CommandContext ctx, Getopt g, List<Datalink> links)
    {
        // -Z adds the ZONE column, as illumos's dladm show-link -Z does.
        var t = g.Has("Z")
            ? new OutputTable(new("link", 12), new("zone", 12), new("class", 10), new("mtu", 7), new("state", 9), new("bridge", 11), new("over", 12))
            : new OutputTable(new("link", 12), new("class", 10), new("mtu", 7), new("state", 9), new("bridge", 11), new("over", 12));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        ctx.Out.Write(t.Format(links.Select(l => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["link"] = l.Name, ["zone"] = l.Zone, ["class"] = ClassName(l.Class), ["mtu"] = Num(l.Class == LinkClass.Etherstub ? 9000 : l.Mtu),
            ["state"] = l.State, ["bridge"] = MacLayer.BridgeOf(l)?.Name ?? "--",
            ["over"] = OverOf(l),
        }), g.Has("p")));
        return 0;
    }

    // ---- etherstubs --------------------------------------------------------------------------------

    private static int CreateEtherstub(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "t");
        if (g.Error != null) return OptError(ctx, g, "create-etherstub");
        if (g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(name)}'");
        var s = ctx.Host.Mac.CreateEtherstub(name, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"etherstub creation failed: {s.Message}");
    }

    private static int DeleteEtherstub(CommandContext ctx, string[] args) => DeleteLink(ctx, args, LinkClass.Etherstub, "etherstub");

    private static int ShowEtherstub(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pPo:");
        if (g.Error != null) return OptError(ctx, g, "show-etherstub");
        var stubs = Visible(ctx).OfType<Etherstub>().ToList();
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l is not Etherstub e) return Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(l == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
            stubs = [e];
        }
        var t = new OutputTable(new OutputTable.Field("link", 12));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        ctx.Out.Write(t.Format(stubs.Select(e => (IReadOnlyDictionary<string, string>)new Dictionary<string, string> { ["link"] = e.Name }), g.Has("p")));
        return 0;
    }

    private static int DeleteLink(CommandContext ctx, string[] args, LinkClass cls, string what)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "t");
        if (g.Error != null) return OptError(ctx, g, "delete-" + what);
        if (g.Operands.Count != 1) return Usage(ctx);
        var s = ctx.Host.Mac.Delete(g.Operands[0], cls, g.Has("t"));
        if (s.IsOk) return 0;
        if (s.Code == DladmStatus.LinkInval) return Fail(ctx, $"invalid {what} '{ConfigText.Echo(g.Operands[0])}'");
        return Fail(ctx, $"{what} deletion failed: {s.Message}");
    }

    // ---- VNICs -------------------------------------------------------------------------------------

    private static int CreateVnic(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "tl:m:n:r:v:p:H");
        if (g.Error != null) return OptError(ctx, g, "create-vnic");
        if (g.Operands.Count != 1 || !g.Has("l")) return Usage(ctx);
        string name = g.Operands[0];
        string over = g.Value("l")!;
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(name)}'");
        ushort vid = 0;
        if (g.Has("v") && !TryParseVid(g.Value("v")!, allowZero: true, out vid)) return Fail(ctx, $"invalid VLAN identifier '{g.Value("v")}'");
        if (!TryParseMacRequest(ctx, g, out var request, out code)) return code;
        if (!TryParseProps(ctx, g.Values("p"), out var props, out code)) return code;
        if (!ValidateProps(ctx, props, name, out code)) return code;

        // MacLayer.Create.cs checks every value, creates, applies and persists, or leaves nothing.
        var s = ctx.Host.Mac.CreateVnic(name, over, request, vid, props, g.Has("t"), out _, out _);
        return s.IsOk ? 0 : Fail(ctx, $"vnic creation over {over} failed: {s.Message}");
    }

    private static bool TryParseVid(string text, bool allowZero, out ushort vid)
    {
        vid = 0;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v)) return false;
        if (v < (allowZero ? 0 : 1) || v > 4094) return false;
        vid = (ushort)v;
        return true;
    }

    private static bool TryParseMacRequest(CommandContext ctx, Getopt g, out MacLayer.MacRequest request, out int code)
    {
        request = new MacLayer.MacRequest(MacAddressType.Auto);
        code = 0;
        string m = g.Value("m") ?? "auto";
        if (g.Has("n") && m != "factory") { code = Fail(ctx, "-n requires -m factory"); return false; }
        if (g.Has("r") && m != "random") { code = Fail(ctx, "-r requires -m random"); return false; }
        switch (m)
        {
            case "auto":
                return true;
            case "factory":
                {
                    int? slot = null;
                    if (g.Has("n"))
                    {
                        if (!int.TryParse(g.Value("n"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1)
                        { code = Fail(ctx, $"invalid slot '{g.Value("n")}'"); return false; }
                        slot = n;
                    }
                    request = new MacLayer.MacRequest(MacAddressType.Factory, Slot: slot);
                    return true;
                }
            case "random":
                {
                    byte[]? prefix = null;
                    if (g.Has("r") && !MacAddress.TryParsePrefix(g.Value("r")!, out prefix))
                    { code = Fail(ctx, $"invalid MAC address prefix '{g.Value("r")}'"); return false; }
                    if (prefix != null && (prefix[0] & 1) != 0)
                    { code = Fail(ctx, $"invalid MAC address prefix '{g.Value("r")}'"); return false; }
                    request = new MacLayer.MacRequest(MacAddressType.Random, Prefix: prefix);
                    return true;
                }
            default:
                if (!MacAddress.TryParse(m, out var fixedMac) || fixedMac.IsGroup || fixedMac.IsZero)
                { code = Fail(ctx, $"invalid MAC address '{m}'"); return false; }
                request = new MacLayer.MacRequest(MacAddressType.Fixed, fixedMac);
                return true;
        }
    }

    private static int DeleteVnic(CommandContext ctx, string[] args) => DeleteLink(ctx, args, LinkClass.Vnic, "vnic");

    private static int ShowVnic(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pPo:l:si:");
        if (g.Error != null) return OptError(ctx, g, "show-vnic");
        if (g.Has("i") && !g.Has("s")) return Fail(ctx, "the option -i can be used only with -s");
        if (g.Has("i")) return Fail(ctx, "show-vnic -s -i is not supported here: use show-link -s -i <vnic-link>");
        if (g.Operands.Count > 1) return Usage(ctx);
        var vnics = Visible(ctx).OfType<VnicLink>().ToList();
        Datalink? over = null;
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l is not VnicLink v) return Fail(ctx, $"invalid vnic name '{ConfigText.Echo(g.Operands[0])}': {DlStatusText.Of(l == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
            vnics = [v];
        }
        if (g.Has("l"))
        {
            over = FindVisible(ctx, g.Value("l")!);
            if (over == null) return Fail(ctx, $"invalid link name '{ConfigText.Echo(g.Value("l")!)}': {DlStatusText.Of(DladmStatus.NotFound)}");
            vnics = vnics.Where(v => v.OverLink == over).ToList();
        }
        var t = new OutputTable(new("link", 13), new("over", 13), new("speed", 7), new("macaddress", 18), new("macaddrtype", 12), new("vid", 5), new("zone", 12));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        if (g.Has("s")) return VnicStats(ctx, vnics, over, g.Operands.Count == 1 ? g.Operands[0] : null);
        ctx.Out.Write(t.Format(vnics.Select(v => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["link"] = v.Name, ["over"] = v.OverLink.Name, ["speed"] = Num(v.SpeedMbps), ["macaddress"] = v.MacAddress.ToString(),
            ["macaddrtype"] = MacAddrType(v), ["vid"] = Num(v.Vid), ["zone"] = v.Zone == "global" ? "--" : v.Zone,
        }), g.Has("p")));
        return 0;
    }

    /// <summary>MACADDRTYPE as print_vnic words it: a primary address shows as "fixed", a factory one
    /// with its slot.</summary>
    private static string MacAddrType(VnicLink v) => v.AddressType switch
    {
        MacAddressType.Factory => $"factory, slot {v.FactorySlot}",
        MacAddressType.Primary or MacAddressType.Fixed => "fixed",
        MacAddressType.Random => "random",
        _ => v.AddressType.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// show-vnic -s as dladm.c's vnic_stats prints it (not through libofmt): dump_vnics_head's header
    /// (the -l link's name first, and the %ipkts/%opkts titles, only with -l), a "Total" line when one
    /// VNIC or one link was named, then per VNIC its link counters and its share of the total packets
    /// ("-" when the total is zero), as dump_vnic_stat prints them.
    /// </summary>
    private static int VnicStats(CommandContext ctx, List<VnicLink> vnics, Datalink? over, string? vnicName)
    {
        if (vnicName != null && vnics.Count == 0) return Fail(ctx, $"non-existent vnic '{vnicName}'");
        if (over != null && vnics.Count == 0) return Fail(ctx, $"device {over.Name} has no vnics");
        var o = ctx.Out;
        string dev = over?.Name ?? "";
        o.Write(dev + "\tipackets  rbytes      opackets  obytes          ");
        o.Write(dev.Length > 0 ? "%ipkts  %opkts\n" : "\n");
        long ip = 0, rb = 0, op = 0, ob = 0;
        foreach (var v in vnics)
        {
            ip += v.Stats.IPackets; rb += v.Stats.RBytes; op += v.Stats.OPackets; ob += v.Stats.OBytes;
        }
        static string L(long v, int w) => v.ToString(CultureInfo.InvariantCulture).PadRight(w);
        static string Pct(long part, long total)
            => total == 0 ? "\t-" : "\t" + ((double)part / total * 100).ToString("F1", CultureInfo.InvariantCulture).PadRight(6);
        if (vnicName != null || over != null) o.Write($"Total\t{L(ip, 10)}{L(rb, 12)}{L(op, 10)}{L(ob, 12)}\n");
        foreach (var v in vnics)
        {
            var st = v.Stats;
            o.Write($"{v.Name}\t{L(st.IPackets, 10)}{L(st.RBytes, 12)}{L(st.OPackets, 10)}{L(st.OBytes, 12)}");
            o.Write(Pct(st.IPackets, ip) + Pct(st.OPackets, op) + "\n");
        }
        return 0;
    }

    // ---- VLANs -------------------------------------------------------------------------------------

    private static int CreateVlan(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "ftl:v:p:");
        if (g.Error != null) return OptError(ctx, g, "create-vlan");
        if (g.Operands.Count != 1 || !g.Has("l") || !g.Has("v")) return Usage(ctx);
        string name = g.Operands[0];
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(name)}'");
        if (!TryParseVid(g.Value("v")!, allowZero: false, out ushort vid)) return Fail(ctx, $"invalid VLAN identifier '{g.Value("v")}'");
        if (!TryParseProps(ctx, g.Values("p"), out var props, out code)) return code;
        if (!ValidateProps(ctx, props, name, out code)) return code;
        var s = ctx.Host.Mac.CreateVlan(name, g.Value("l")!, vid, props, g.Has("t"), out _, out _);
        return s.IsOk ? 0 : Fail(ctx, $"create operation over {g.Value("l")} failed: {s.Message}");
    }

    private static int DeleteVlan(CommandContext ctx, string[] args) => DeleteLink(ctx, args, LinkClass.Vlan, "vlan");

    private static int ShowVlan(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pPo:");
        if (g.Error != null) return OptError(ctx, g, "show-vlan");
        var vlans = Visible(ctx).OfType<VlanLink>().ToList();
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l is not VlanLink v) return Fail(ctx, $"invalid vlan name '{ConfigText.Echo(g.Operands[0])}': {DlStatusText.Of(l == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
            vlans = [v];
        }
        var t = new OutputTable(new("link", 16), new("vid", 9), new("over", 13), new("flags", 6));
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        ctx.Out.Write(t.Format(vlans.Select(v => (IReadOnlyDictionary<string, string>)new Dictionary<string, string>
        {
            ["link"] = v.Name, ["vid"] = Num(v.Vid), ["over"] = v.OverPhys.Name, ["flags"] = "-----",
        }), g.Has("p")));
        return 0;
    }

    // ---- rename-link -------------------------------------------------------------------------------

    private static int RenameLink(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "R:");
        if (g.Error != null) return OptError(ctx, g, "rename-link");
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        if (g.Operands.Count != 2) return Usage(ctx);
        if (!LinkNames.IsValid(g.Operands[1])) return Fail(ctx, $"invalid link name '{g.Operands[1]}'");
        var s = ctx.Host.Mac.RenameLink(g.Operands[0], g.Operands[1]);
        return s.IsOk ? 0 : Fail(ctx, $"rename operation failed: {s.Message}");
    }
}
