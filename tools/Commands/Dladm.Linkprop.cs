using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

public static partial class Dladm
{
    /// <summary>Parses -p prop=value[,...] lists. A value may itself hold commas when it is a list of
    /// items (allowed-ips=a,b): a word without '=' continues the previous property's value.</summary>
    private static bool TryParseProps(CommandContext ctx, IReadOnlyList<string> specs, out List<(string Prop, string Value)> props, out int code)
    {
        props = [];
        code = 0;
        foreach (string spec in specs)
        {
            foreach (string part in spec.Split(','))
            {
                int eq = part.IndexOf('=');
                if (eq < 0)
                {
                    if (props.Count == 0 || part.Length == 0) { code = Fail(ctx, $"invalid property specification '{spec}'"); return false; }
                    var last = props[^1];
                    props[^1] = (last.Prop, last.Value + "," + part);
                    continue;
                }
                string name = part[..eq].Trim();
                if (name.Length == 0) { code = Fail(ctx, $"invalid property specification '{spec}'"); return false; }
                if (props.Exists(p => p.Prop == name)) { code = Fail(ctx, $"property '{name}' specified more than once"); return false; }
                props.Add((name, part[(eq + 1)..]));
            }
        }
        return true;
    }

    /// <summary>Checks that every property named at creation exists (values are checked when applied).</summary>
    private static bool ValidateProps(CommandContext ctx, List<(string Prop, string Value)> props, string link, out int code)
    {
        code = 0;
        foreach (var (prop, _) in props)
        {
            if (ctx.Host.Mac.FindProperty(prop) == null)
            {
                code = Fail(ctx, $"invalid link property '{prop}'");
                return false;
            }
        }
        return true;
    }

    /// <summary>A -p list as dladm_parse_link_props reads it for set-, reset- and show-linkprop:
    /// "name=value[,value...]" items, a name with no '=' standing alone (a property without a value).
    /// Returns null when the list cannot be parsed (dladm.c: "invalid link properties specified").</summary>
    private static List<(string Prop, string Value)>? ParsePropList(IReadOnlyList<string> specs)
    {
        var props = new List<(string Prop, string Value)>();
        foreach (string spec in specs)
        {
            foreach (string part in spec.Split(','))
            {
                int eq = part.IndexOf('=');
                if (part.Length == 0 || eq == 0) return null;
                if (eq < 0 && props.Count > 0 && props[^1].Value.Length > 0)
                {
                    var last = props[^1];
                    props[^1] = (last.Prop, last.Value + "," + part);
                    continue;
                }
                string name = eq < 0 ? part : part[..eq];
                if (props.Exists(p => p.Prop == name)) return null;
                props.Add((name, eq < 0 ? "" : part[(eq + 1)..]));
            }
        }
        return props;
    }

    private static void Warn(CommandContext ctx, string message) => ctx.Err.WriteLine("dladm: warning: " + message);

    /// <summary>set_linkprop's wording for a value dladm_set_linkprop refused: an unknown property
    /// ("invalid link property"), a value not among the possible ones ("must be one of", listing the
    /// modifiable values), or the status text.</summary>
    private static int SetFailed(CommandContext ctx, Datalink link, string prop, DlStatus error, bool reset)
    {
        if (error.Code == DladmStatus.NotFound) Warn(ctx, $"invalid link property '{prop}'");
        else if (error.Code == DladmStatus.BadVal && !reset && ctx.Host.Mac.FindProperty(prop)?.Possible(link) is { Length: > 0 } possible)
            Warn(ctx, $"link property '{prop}' must be one of: {possible}");
        else Warn(ctx, $"cannot {(reset ? "reset" : "set")} link property '{prop}' on '{link.Name}': {error.Message}");
        return 1;
    }

    /// <summary>set-linkprop. Unlike dladm.c, which applies each property in turn, every value is
    /// checked before any is applied, so a bad one leaves all properties as they were (rule 1).</summary>
    private static int SetLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:R:");
        if (g.Error != null) return OptError(ctx, g, "set-linkprop");
        if (g.Operands.Count != 1) return Usage(ctx);
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        var props = ParsePropList(g.Values("p"));
        if (props == null) return Fail(ctx, "invalid link properties specified");
        if (props.Count == 0) return Fail(ctx, "link property must be specified");
        var link = FindVisible(ctx, g.Operands[0]);
        if (link == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(DladmStatus.NotFound)}");
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        foreach (var (prop, value) in props)
        {
            if (value.Length == 0) { Warn(ctx, $"no value specified for '{prop}'"); return 1; }
            var s = ctx.Host.Mac.CheckLinkProp(link, prop, value, g.Has("t"));
            if (!s.IsOk) return SetFailed(ctx, link, prop, s, reset: false);
        }
        foreach (var (prop, value) in props)
        {
            var s = ctx.Host.Mac.SetLinkProp(link, prop, value, g.Has("t"));
            if (!s.IsOk) return SetFailed(ctx, link, prop, s, reset: false);
        }
        return 0;
    }

    private static int ResetLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:R:");
        if (g.Error != null) return OptError(ctx, g, "reset-linkprop");
        if (g.Operands.Count != 1) return Usage(ctx);
        if (g.Has("R")) return Fail(ctx, "-R is not supported: this host has one root");
        var list = ParsePropList(g.Values("p"));
        if (list == null) return Fail(ctx, "invalid link properties specified");
        var link = FindVisible(ctx, g.Operands[0]);
        if (link == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(DladmStatus.NotFound)}");
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        // With no -p every property is reset; read-only ones are passed over, as reset_one_linkprop
        // ignores DLADM_STATUS_PROPRDONLY.
        var names = list.Count > 0
            ? list.Select(p => p.Prop).ToList()
            : ctx.Host.Mac.PropertiesOf(link).Where(p => p.Perm == "rw").Select(p => p.Name).ToList();
        foreach (string name in names)
        {
            var prop = ctx.Host.Mac.FindProperty(name);
            if (prop == null) return SetFailed(ctx, link, name, DladmStatus.NotFound, reset: true);
        }
        foreach (string name in names)
        {
            var s = ctx.Host.Mac.ResetLinkProp(link, name, g.Has("t"));
            if (!s.IsOk) return SetFailed(ctx, link, name, s, reset: true);
        }
        return 0;
    }

    /// <summary>show-linkprop: every property illumos lists for the link's class (MacLayer.PropertiesOf),
    /// or those named by -p in their order. A named property the link does not have is warned about as
    /// print_linkprop does, its row printed with libofmt's "?" for the values it could not get, and the
    /// exit status is 1.</summary>
    private static int ShowLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "cPo:p:");
        if (g.Error != null) return OptError(ctx, g, "show-linkprop");
        if (g.Has("P")) return Fail(ctx, "-P is not supported: persistent values are shown after a reboot");
        if (g.Operands.Count > 1) return Usage(ctx);
        var links = Visible(ctx).ToList();
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {DlStatusText.Of(DladmStatus.NotFound)}");
            links = [l];
        }
        var wanted = ParsePropList(g.Values("p"));
        if (wanted == null) return Fail(ctx, "invalid link properties specified");
        var t = new OutputTable(new("link", 13), new("property", 16), new("perm", 5), new("value", 15), new("default", 15), new("possible", 20));
        if (!PrepareTable(ctx, g.Value("o"), g.Has("c"), t, out int code)) return code;
        var rows = new List<IReadOnlyDictionary<string, string>>();
        int status = 0;
        foreach (var link in links)
        {
            var shown = ctx.Host.Mac.PropertiesOf(link);
            var props = wanted.Count == 0 ? shown : wanted.Select(w => shown.FirstOrDefault(p => p.Name == w.Prop) ?? Missing(w.Prop)).ToList();
            foreach (var p in props)
            {
                if (p.Perm == "?")
                {
                    Warn(ctx, $"cannot get link property '{p.Name}' for {link.Name}: {DlStatusText.Of(ctx.Host.Mac.FindProperty(p.Name) == null ? DladmStatus.NotFound : DladmStatus.BadArg)}");
                    status = 1;
                    rows.Add(new Dictionary<string, string>
                    {
                        ["link"] = link.Name, ["property"] = p.Name, ["perm"] = "?", ["value"] = "?", ["default"] = "?", ["possible"] = "?",
                    });
                    continue;
                }
                string value = p.Get(link);
                rows.Add(new Dictionary<string, string>
                {
                    ["link"] = link.Name, ["property"] = p.Name, ["perm"] = p.Perm,
                    ["value"] = value.Length == 0 ? "--" : value, ["default"] = p.Default(link) is { Length: > 0 } d ? d : "--",
                    ["possible"] = p.Possible(link) is { Length: > 0 } ps ? ps : "--",
                });
            }
        }
        ctx.Out.Write(t.Format(rows, g.Has("c")));
        return status;
    }

    /// <summary>A property -p named that the link does not have: its row shows libofmt's "?".</summary>
    private static LinkProperty Missing(string name) => new()
    {
        Name = name, Perm = "?", AppliesTo = _ => false, Get = _ => "", Default = _ => "", Possible = _ => "",
        Validate = (_, _) => DladmStatus.NotFound, Apply = (_, _) => { },
    };
}
