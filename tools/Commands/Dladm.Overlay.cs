using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// dladm's overlay subcommands (dladm(8), overlay(7)): create-overlay, delete-overlay,
/// modify-overlay (the target table of a dynamic search plugin) and show-overlay (properties, -f
/// status, -t target table). The MAC layer does the work (vnic/MacLayer.Overlay.cs); this file
/// parses and words the outcome.
/// </summary>
public static partial class Dladm
{
    private static int CreateOverlay(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "te:s:v:p:");
        if (g.Error != null) return OptError(ctx, g, "create-overlay");
        if (!g.Has("e")) return Fail(ctx, "missing required encapsulation plugin");
        if (!g.Has("s")) return Fail(ctx, "missing required search plugin");
        if (!g.Has("v")) return Fail(ctx, "missing required vnetid");
        if (g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(name)}'");
        string vtext = g.Value("v")!;
        if (!long.TryParse(vtext, NumberStyles.None, CultureInfo.InvariantCulture, out long vnid) || vnid > VxlanHeader.MaxVnid)
            return Fail(ctx, $"invalid vnetid: {ConfigText.Echo(vtext)} (vxlan's range is 0-{VxlanHeader.MaxVnid})");
        string encap = g.Value("e")!, search = g.Value("s")!;
        if (encap != "vxlan") return Fail(ctx, $"overlay creation failed: unknown encapsulation plugin '{ConfigText.Echo(encap)}'");
        if (ctx.Host.Mac.SearchPlugins.Find(search) == null)
            return Fail(ctx, $"overlay creation failed: unknown search plugin '{ConfigText.Echo(search)}' (this host has: {string.Join(", ", ctx.Host.Mac.SearchPlugins.Names)})");
        if (!TryParseProps(ctx, g.Values("p"), out var props, out code)) return code;
        foreach (var (prop, _) in props)
        {
            if (prop is "encap" or "search" or "vnetid" or "varpd/id")
                return Fail(ctx, $"overlay creation failed: property {prop} cannot be set with -p: {DlStatusText.Of(DladmStatus.PropRdOnly)}");
        }
        var s = ctx.Host.Mac.CreateOverlay(name, encap, search, vnid, props, g.Has("t"), out _, out string? failed, out bool missing);
        if (s.IsOk) return 0;
        if (missing) return Fail(ctx, $"overlay creation failed: missing required property {failed}");
        if (s.Code == DladmStatus.NotSup && failed != null)
            return Fail(ctx, $"overlay creation failed: {failed}: IPv6 underlays are not supported here");
        if (s.Code == DladmStatus.NotSup && ctx.Host.Mac.UnderlayProvider == null)
            return Fail(ctx, "overlay creation failed: this host has no underlay for overlays");
        if (s.Code == DladmStatus.InvalidMtu)
            return Fail(ctx, $"overlay creation failed: mtu: the underlay cannot carry {VxlanHeader.InnerOverhead} bytes of encapsulation over it: {s.Message}");
        if (s.Code == DladmStatus.Exist && ctx.Host.Mac.Find(name) == null && ctx.Host.Mac.FindPersistent(name) == null)
            return Fail(ctx, $"overlay creation failed: vnetid {vnid} already has an overlay on this listen address: {s.Message}");
        var given = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (prop, value) in props) given[prop] = value;
        if (failed != null && ctx.Host.Mac.SearchPlugins.Find(search)?.Explain is { } explain && explain(given) is string why)
            return Fail(ctx, $"overlay creation failed: {failed}: {why}"); // the mapping file and entry at fault
        if (failed != null) return Fail(ctx, $"overlay creation failed: {failed}: {s.Message}");
        if (s.Code == DladmStatus.AddrInUse)
        {
            string ip = given.GetValueOrDefault(MacLayer.ListenIp, "");
            string port = given.GetValueOrDefault(MacLayer.ListenPort, VxlanHeader.Port.ToString(CultureInfo.InvariantCulture));
            return Fail(ctx, $"overlay creation failed: {MacLayer.ListenIp} {ConfigText.Echo(ip)} port {ConfigText.Echo(port)}: {s.Message}");
        }
        return Fail(ctx, $"overlay creation failed: {s.Message}");
    }

    private static int DeleteOverlay(CommandContext ctx, string[] args) => DeleteLink(ctx, args, LinkClass.Overlay, "overlay");

    /// <summary>modify-overlay -d mac | -f | -s mac=ip:port: one change to a dynamic plugin's target table.</summary>
    private static int ModifyOverlay(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "d:fs:");
        if (g.Error != null) return OptError(ctx, g, "modify-overlay");
        int ops = (g.Has("d") ? 1 : 0) + (g.Has("f") ? 1 : 0) + (g.Has("s") ? 1 : 0);
        if (ops != 1 || g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        Func<IOverlayTargetTable, DlStatus> change;
        if (g.Has("f"))
        {
            change = t => { t.Flush(); return DlStatus.Ok; };
        }
        else if (g.Has("d"))
        {
            if (!MacAddress.TryParse(g.Value("d"), out var mac)) return Fail(ctx, $"invalid mac address: {ConfigText.Echo(g.Value("d")!)}");
            change = t => t.Delete(mac) ? DlStatus.Ok : DladmStatus.NotFound;
        }
        else
        {
            string spec = g.Value("s")!;
            int eq = spec.IndexOf('=');
            int colon = spec.LastIndexOf(':');
            if (eq < 0 || colon < eq || !MacAddress.TryParse(spec[..eq], out var mac)
                || !IpAddress.TryParse(spec[(eq + 1)..colon], out var ip) || !DirectSearch.TryParsePort(spec[(colon + 1)..], out ushort port))
                return Fail(ctx, $"invalid target specification '{ConfigText.Echo(spec)}': expected mac=ip:port");
            change = t => { t.Set(mac, new UnderlayEndpoint(ip, port)); return DlStatus.Ok; };
        }
        var s = ctx.Host.Mac.ModifyOverlay(name, change);
        if (s.IsOk) return 0;
        if (s.Code == DladmStatus.NotSup) return Fail(ctx, $"failed to modify overlay {ConfigText.Echo(name)}: its search plugin has no target table (point to point): {s.Message}");
        return Fail(ctx, $"failed to modify overlay {ConfigText.Echo(name)}: {s.Message}");
    }

    /// <summary>show-overlay: a row per property of each overlay (LINK PROPERTY PERM REQ VALUE DEFAULT
    /// POSSIBLE); -f its status; -t its target table.</summary>
    private static int ShowOverlay(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "ftpo:");
        if (g.Error != null) return OptError(ctx, g, "show-overlay");
        if (g.Has("f") && g.Has("t")) return Fail(ctx, "the option -f cannot be used with -t");
        if (g.Operands.Count > 1) return Usage(ctx);
        var overlays = Visible(ctx).OfType<OverlayLink>().ToList();
        if (g.Operands.Count == 1)
        {
            var l = FindVisible(ctx, g.Operands[0]);
            if (l is not OverlayLink o) return Fail(ctx, $"invalid overlay name '{ConfigText.Echo(g.Operands[0])}': {DlStatusText.Of(l == null ? DladmStatus.NotFound : DladmStatus.LinkInval)}");
            overlays = [o];
        }
        var rows = new List<IReadOnlyDictionary<string, string>>();
        OutputTable t;
        if (g.Has("f"))
        {
            t = new OutputTable(new("link", 20), new("status", 10), new("details", 60));
            foreach (var o in overlays) rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["status"] = "ONLINE", ["details"] = "--" });
        }
        else if (g.Has("t"))
        {
            t = new OutputTable(new("link", 20), new("target", 18), new("destination", 40));
            foreach (var o in overlays)
            {
                if (o.Search is DirectSearch d)
                    rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["target"] = "all", ["destination"] = Endpoint(d.Target) });
                else if (o.Search is IOverlayTargetTable table)
                    foreach (var (mac, target) in table.Entries)
                        rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["target"] = mac.ToString(), ["destination"] = Endpoint(target) });
            }
        }
        else
        {
            t = new OutputTable(new("link", 20), new("property", 20), new("perm", 5), new("req", 4), new("value", 11), new("default", 10), new("possible", 10));
            var mac = ctx.Host.Mac;
            foreach (var o in overlays)
            {
                void Row(string prop, string perm, bool req, string value, string def, string possible)
                    => rows.Add(new Dictionary<string, string>
                    {
                        ["link"] = o.Name, ["property"] = prop, ["perm"] = perm, ["req"] = req ? "y" : "-",
                        ["value"] = value, ["default"] = def, ["possible"] = possible,
                    });
                Row("mtu", "rw", false, o.Mtu.ToString(CultureInfo.InvariantCulture), OverlayLink.DefaultMtu.ToString(CultureInfo.InvariantCulture), "576-9000");
                Row("vnetid", "rw", false, o.Vnid.ToString(CultureInfo.InvariantCulture), "--", $"0-{VxlanHeader.MaxVnid}");
                Row("encap", "r-", false, o.Encap, "--", "vxlan");
                Row("varpd/id", "r-", false, o.LinkId.ToString(CultureInfo.InvariantCulture), "--", "--");
                Row("search", "r-", false, o.Search.Name, "--", string.Join(",", mac.SearchPlugins.Names));
                var plugin = mac.SearchPlugins.Find(o.Search.Name);
                IEnumerable<OverlayPropInfo> infos = plugin != null ? MacLayer.VxlanProps.Concat(plugin.Props) : MacLayer.VxlanProps;
                foreach (var pi in infos)
                    Row(pi.Name, "rw", pi.Required, o.Props.TryGetValue(pi.Name, out var v) ? v : "--", pi.Default, pi.Possible);
            }
        }
        if (!PrepareTable(ctx, g, t, out int code)) return code;
        ctx.Out.Write(t.Format(rows, g.Has("p")));
        return 0;
    }

    private static string Endpoint(UnderlayEndpoint e) => $"{e.Address}:{e.Port.ToString(CultureInfo.InvariantCulture)}";
}
