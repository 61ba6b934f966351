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

    private static int SetLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:R:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Operands.Count != 1 || !g.Has("p")) { Usage(ctx); return 2; }
        var link = FindVisible(ctx, g.Operands[0]);
        if (link == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {MacStatus.NotFound}");
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        if (!TryParseProps(ctx, g.Values("p"), out var props, out int code)) return code;
        // Check every value first, so a bad one leaves all properties as they were (rule 1).
        foreach (var (prop, value) in props)
        {
            if (value.Length == 0) return Fail(ctx, $"property value required for '{prop}'");
            var s = ctx.Host.Mac.CheckLinkProp(link, prop, value);
            if (!s.IsOk) return Fail(ctx, $"warning: cannot set link property '{prop}' on '{link.Name}': {s.Error}");
        }
        foreach (var (prop, value) in props)
        {
            var s = ctx.Host.Mac.SetLinkProp(link, prop, value, g.Has("t"));
            if (!s.IsOk) return Fail(ctx, $"warning: cannot set link property '{prop}' on '{link.Name}': {s.Error}");
        }
        return 0;
    }

    private static int ResetLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "tp:");
        if (g.Error != null) return OptError(ctx, g);
        if (g.Operands.Count != 1) { Usage(ctx); return 2; }
        var link = FindVisible(ctx, g.Operands[0]);
        if (link == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {MacStatus.NotFound}");
        if (ctx.Zone != "global") return Fail(ctx, "insufficient privileges");
        var names = g.Has("p")
            ? g.Values("p").SelectMany(v => v.Split(',')).ToList()
            : ctx.Host.Mac.Properties.Where(p => p.AppliesTo(link) && p.Perm == "rw").Select(p => p.Name).ToList();
        foreach (string name in names)
        {
            var prop = ctx.Host.Mac.FindProperty(name);
            if (prop == null || !prop.AppliesTo(link)) return Fail(ctx, $"warning: cannot reset link property '{name}' on '{link.Name}': {MacStatus.NotFound}");
        }
        foreach (string name in names)
        {
            var s = ctx.Host.Mac.ResetLinkProp(link, name, g.Has("t"));
            if (!s.IsOk) return Fail(ctx, $"warning: cannot reset link property '{name}' on '{link.Name}': {s.Error}");
        }
        return 0;
    }

    private static int ShowLinkprop(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "cPo:p:");
        if (g.Error != null) return OptError(ctx, g);
        var links = Visible(ctx).ToList();
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l == null) return Fail(ctx, $"link {g.Operands[0]} is not valid: {MacStatus.NotFound}");
            links = [l];
        }
        var wanted = g.Has("p") ? g.Values("p").SelectMany(v => v.Split(',')).ToList() : null;
        if (wanted != null)
        {
            foreach (string w in wanted)
                if (ctx.Host.Mac.FindProperty(w) == null) return Fail(ctx, $"invalid link property '{w}'");
        }
        var t = new OutputTable(new("link", 13), new("property", 16), new("perm", 5), new("value", 15), new("default", 15), new("possible", 12));
        if (g.Has("c") && !g.Has("o")) return Fail(ctx, "-c requires -o");
        string? bad = t.Select(g.Value("o"));
        if (bad != null) return Fail(ctx, $"invalid field(s) specified: '{bad}'");
        var rows = new List<IReadOnlyDictionary<string, string>>();
        foreach (var link in links)
        {
            foreach (var p in ctx.Host.Mac.Properties)
            {
                if (!p.AppliesTo(link) || (wanted != null && !wanted.Contains(p.Name))) continue;
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
        return 0;
    }
}
