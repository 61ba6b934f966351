using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// flowadm(8): flows on a datalink (vnic/ResourceControl.cs). add-flow, remove-flow, set-flowprop,
/// reset-flowprop, show-flow, show-flowprop; messages follow illumos's flowadm.c and libdladm. Every
/// change is validated before it is applied (Dispatcher.cs rule 1).
/// </summary>
public static class Flowadm
{
    public static readonly CommandDescriptor Descriptor = new("flowadm", "administer bandwidth and priority of flows on data links", RunAsync);

    private delegate int Sub(CommandContext ctx, string[] args);

    private static readonly Dictionary<string, Sub> s_subs = new(StringComparer.Ordinal)
    {
        ["add-flow"] = AddFlow,
        ["remove-flow"] = RemoveFlow,
        ["set-flowprop"] = SetFlowprop,
        ["reset-flowprop"] = ResetFlowprop,
        ["show-flow"] = ShowFlow,
        ["show-flowprop"] = ShowFlowprop,
    };

    private static readonly string[] s_attrNames = ["local_ip", "remote_ip", "transport", "local_port", "remote_port", "dsfield"];

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (args.Length == 0) return Task.FromResult(Usage(ctx));
        if (!s_subs.TryGetValue(args[0], out var sub))
        {
            ctx.Err.WriteLine($"flowadm: unknown subcommand '{args[0]}'");
            return Task.FromResult(Usage(ctx));
        }
        return Task.FromResult(sub(ctx, args[1..]));
    }

    private static int Usage(CommandContext ctx)
    {
        ctx.Err.WriteLine("""
            usage:  flowadm <subcommand> <args> ...
                add-flow        [-t] -l <link> -a <attr>=<value>[,...]
                                [-p <prop>=<value>,...] <flow>
                remove-flow     [-t] {-l <link> | <flow>}
                show-flow       [-p] [-o <field>,...] [-l <link>] [<flow>]
                set-flowprop    [-t] -p <prop>=<value>[,...] <flow>
                reset-flowprop  [-t] [-p <prop>,...] <flow>
                show-flowprop   [-c] [-o <field>,...] [-l <link>] [-p <prop>,...] [<flow>]
            """.Replace("    ", "\t", StringComparison.Ordinal));
        return 1; // flowadm.c's usage() ends in exit(1)
    }

    private static int Fail(CommandContext ctx, string message)
    {
        ctx.Err.WriteLine("flowadm: " + message);
        return 1;
    }

    /// <summary>flowadm.c's die_opterr: "option '-%c' requires a value" or "unrecognized option
    /// '-%c'", through die(), so exit status 1 and no usage.</summary>
    private static int OptError(CommandContext ctx, Getopt g)
    {
        ctx.Err.WriteLine(g.ErrorMissingValue
            ? $"flowadm: option '-{g.ErrorOption}' requires a value"
            : $"flowadm: unrecognized option '-{g.ErrorOption}'");
        return 1;
    }

    /// <summary>-o handed to ofmt_open and checked as flowadm.c's flowadm_ofmt_check does: fatal in
    /// parsable output (and "no valid output fields" always), a warning otherwise.</summary>
    private static bool OpenTable(CommandContext ctx, OutputTable t, string? fields, bool parsable, out int code)
    {
        code = 0;
        var (fatal, warning) = t.Open(fields, parsable);
        if (fatal != null) { code = Fail(ctx, fatal); return false; }
        if (warning != null) ctx.Err.WriteLine("flowadm: warning: " + warning);
        return true;
    }


    private static Flow? FindVisible(CommandContext ctx, string name)
    {
        var f = ctx.Host.Mac.FindFlow(name);
        return f != null && ctx.Sees(f.Link) ? f : null;
    }

    /// <summary>-p prop=value[,...]: names must be flow properties and appear once.</summary>
    private static bool TryParseProps(CommandContext ctx, IReadOnlyList<string> specs, out List<(string Prop, string Value)> props, out int code)
    {
        props = [];
        code = 0;
        foreach (string spec in specs)
        {
            foreach (string part in spec.Split(','))
            {
                int eq = part.IndexOf('=');
                string name = eq < 0 ? part : part[..eq];
                if (eq <= 0 || Array.IndexOf(MacLayer.FlowPropertyNames, name) < 0 || props.Exists(p => p.Prop == name))
                {
                    code = Fail(ctx, "invalid flow property specified");
                    return false;
                }
                props.Add((name, part[(eq + 1)..]));
            }
        }
        return true;
    }

    private static int AddFlow(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tl:a:p:R:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Operands.Count != 1 || !g.Has("l") || !g.Has("a")) return Usage(ctx);
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        string name = g.Operands[0];
        if (name.Length > MacLayer.MaxFlowNameLength) return Fail(ctx, "flow name too long");
        string linkName = g.Value("l")!;
        var link = ctx.Host.Mac.Find(linkName);
        if (link == null || !ctx.Sees(link)) return Fail(ctx, $"invalid link '{linkName}'");
        string attrs = string.Join(',', g.Values("a"));
        // dladm_parse_flow_attrs: an unknown attribute or one given twice is a parse error
        // (flow_attrlist_check), which flowadm.c reports as "invalid flow attribute specified".
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string part in attrs.Split(','))
        {
            int eq = part.IndexOf('=');
            if (eq <= 0 || Array.IndexOf(s_attrNames, part[..eq]) < 0 || !seen.Add(part[..eq])) return Fail(ctx, "invalid flow attribute specified");
        }
        if (!TryParseProps(ctx, g.Values("p"), out var props, out int code)) return code;
        if (!MacLayer.IsValidFlowName(name)) return Fail(ctx, $"add flow failed: invalid flow name '{ConfigText.Echo(name)}'");
        var s = ctx.Host.Mac.AddFlow(name, linkName, attrs, props, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"add flow failed: {s.Message}");
    }

    private static int RemoveFlow(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tl:R:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Has("l") == (g.Operands.Count == 1) || g.Operands.Count > 1) return Usage(ctx);
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        var mac = ctx.Host.Mac;
        if (g.Has("l"))
        {
            var link = mac.Find(g.Value("l")!);
            if (link == null) return Fail(ctx, $"invalid link '{g.Value("l")}'");
            var ls = mac.RemoveFlowsOnLink(link.Name, g.Has("t"));
            return ls.IsOk ? 0 : Fail(ctx, $"remove flow failed: {ls.Message}");
        }
        var s = mac.RemoveFlow(g.Operands[0], g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"remove flow failed: {s.Message}");
    }

    private static int SetFlowprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:R:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Operands.Count != 1 || !g.Has("p")) return Usage(ctx);
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        var f = FindVisible(ctx, g.Operands[0]);
        if (f == null) return Fail(ctx, $"invalid flow: '{ConfigText.Echo(g.Operands[0])}'");
        if (!TryParseProps(ctx, g.Values("p"), out var props, out int code)) return code;
        foreach (var (prop, value) in props)
        {
            if (value.Length == 0) return Fail(ctx, $"property value required for '{prop}'");
            var c = MacLayer.CheckFlowProp(prop, value);
            if (!c.IsOk) return Fail(ctx, $"cannot set flow property '{prop}' on '{f.Name}': {c.Message}");
        }
        var s = ctx.Host.Mac.SetFlowProps(f, props, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"set flow property failed: {s.Message}");
    }

    private static int ResetFlowprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:R:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Operands.Count != 1) return Usage(ctx);
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        var f = FindVisible(ctx, g.Operands[0]);
        if (f == null) return Fail(ctx, $"invalid flow: '{ConfigText.Echo(g.Operands[0])}'");
        var names = g.Values("p").SelectMany(v => v.Split(',')).ToList();
        foreach (string n in names)
            if (Array.IndexOf(MacLayer.FlowPropertyNames, n) < 0) return Fail(ctx, "invalid flow property specified");
        var s = ctx.Host.Mac.ResetFlowProps(f, names, g.Has("t"));
        return s.IsOk ? 0 : Fail(ctx, $"reset flow property failed: {s.Message}");
    }

    /// <summary>The flows a command lists: those on visible links, narrowed by -l or a flow name.</summary>
    private static bool TrySelect(CommandContext ctx, Getopt g, out List<Flow> flows, out int code)
    {
        code = 0;
        flows = ctx.Host.Mac.Flows.Where(f => ctx.Sees(f.Link)).ToList();
        if (g.Has("l"))
        {
            var link = ctx.Host.Mac.Find(g.Value("l")!);
            if (link == null || !ctx.Sees(link)) { code = Fail(ctx, $"invalid link '{g.Value("l")}'"); return false; }
            flows = flows.Where(f => f.Link == link).ToList();
        }
        if (g.Operands.Count > 1) { code = Usage(ctx); return false; }
        if (g.Operands.Count == 1)
        {
            var f = FindVisible(ctx, g.Operands[0]);
            if (f == null) { code = Fail(ctx, $"invalid flow: '{ConfigText.Echo(g.Operands[0])}'"); return false; }
            flows = [f];
        }
        return true;
    }

    private static int ShowFlow(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "pPo:l:");
        if (g.Error != null) return OptError(ctx, g);
        var t = new OutputTable(new("flow", 12), new("link", 12), new("ipaddr", 26), new("proto", 7), new("lport", 8), new("rport", 8), new("dsfld", 10));
        if (!OpenTable(ctx, t, g.Value("o"), g.Has("p"), out int code)) return code;
        if (!TrySelect(ctx, g, out var flows, out code)) return code;
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var f in flows)
        {
            var s = f.Spec;
            bool hasProto = s.Type is FlowType.Transport or FlowType.LocalPort or FlowType.RemotePort;
            rows.Add(new Dictionary<string, string>
            {
                ["flow"] = f.Name, ["link"] = f.Link.Name, ["ipaddr"] = MacLayer.FlowAddressColumn(s),
                ["proto"] = hasProto ? FlowSpec.ProtocolName(s.Protocol) : "--",
                ["lport"] = s.Type == FlowType.LocalPort ? s.Port.ToString(CultureInfo.InvariantCulture) : "--",
                ["rport"] = s.Type == FlowType.RemotePort ? s.Port.ToString(CultureInfo.InvariantCulture) : "--",
                ["dsfld"] = MacLayer.FlowDsColumn(s),
            });
        }
        ctx.Out.Write(t.Format(rows, g.Has("p")));
        return 0;
    }

    private static int ShowFlowprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "cPo:l:p:");
        if (g.Error != null) return OptError(ctx, g);
        var t = new OutputTable(new("flow", 13), new("property", 16), new("value", 15), new("default", 15), new("possible", 20));
        if (!OpenTable(ctx, t, g.Value("o"), g.Has("c"), out int code)) return code;
        var wanted = g.Values("p").SelectMany(v => v.Split(',')).ToList();
        foreach (string w in wanted)
            if (Array.IndexOf(MacLayer.FlowPropertyNames, w) < 0) return Fail(ctx, "invalid flow property specified");
        if (!TrySelect(ctx, g, out var flows, out code)) return code;
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var f in flows)
        {
            foreach (string prop in MacLayer.FlowPropertyNames)
            {
                if (wanted.Count > 0 && !wanted.Contains(prop)) continue;
                string v = MacLayer.GetFlowProp(f, prop), d = MacLayer.FlowPropDefault(prop), p = MacLayer.FlowPropPossible(prop);
                rows.Add(new Dictionary<string, string>
                {
                    ["flow"] = f.Name, ["property"] = prop, ["value"] = v.Length == 0 ? "--" : v,
                    ["default"] = d.Length == 0 ? "--" : d, ["possible"] = p.Length == 0 ? "--" : p,
                });
            }
        }
        ctx.Out.Write(t.Format(rows, g.Has("c")));
        return 0;
    }
}
