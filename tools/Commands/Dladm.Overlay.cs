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
        // dladm.c's do_create_overlay checks in this order, with these words ("networkd" is its own
        // spelling); a vnetid beyond the encapsulation's range is the kernel's EINVAL there.
        if (!g.Has("v")) return Fail(ctx, "missing required virtual network id");
        if (!g.Has("e")) return Fail(ctx, "missing required encapsulation plugin");
        if (!g.Has("s")) return Fail(ctx, "missing required search plugin");
        if (g.Operands.Count != 1) return Fail(ctx, "missing device name");
        string name = g.Operands[0];
        string vtext = g.Value("v")!;
        if (!long.TryParse(vtext, NumberStyles.None, CultureInfo.InvariantCulture, out long vnid))
            return Fail(ctx, $"couldn't parse virtual networkd id: {ConfigText.Echo(vtext)}");
        if (!LinkNames.IsValid(name)) return Fail(ctx, $"invalid link name '{ConfigText.Echo(name)}'");
        if (vnid > VxlanHeader.MaxVnid)
            return Fail(ctx, $"overlay creation failed: {DlStatusText.Of(DladmStatus.BadArg)}: vnetid {vnid} is outside vxlan's range 0-{VxlanHeader.MaxVnid}");
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

    /// <summary>delete-overlay [-t] NAME: every failure is do_delete_overlay's "failed to delete NAME"
    /// with the status (a link that is not an overlay is libdladm's invalid argument).</summary>
    private static int DeleteOverlay(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "t");
        if (g.Error != null) return OptError(ctx, g, "delete-overlay");
        if (g.Operands.Count != 1) return Usage(ctx);
        string name = g.Operands[0];
        var s = ctx.Host.Mac.Delete(name, LinkClass.Overlay, g.Has("t"));
        if (s.IsOk) return 0;
        string why = s.Code == DladmStatus.LinkInval ? DlStatusText.Of(DladmStatus.BadArg) : s.Message;
        return Fail(ctx, $"failed to delete {ConfigText.Echo(name)}: {why}");
    }

    /// <summary>modify-overlay -d mac | -f | -s mac=ip:port: one change to a dynamic plugin's target
    /// table, refused in do_modify_overlay's words.</summary>
    private static int ModifyOverlay(CommandContext ctx, string[] args)
    {
        if (!GlobalOnly(ctx, out int code)) return code;
        var g = Getopt.Parse(args, "d:fs:");
        if (g.Error != null) return OptError(ctx, g, "modify-overlay");
        foreach (char o in "dfs")
        {
            if (g.Values(o.ToString()).Count > 1) return Fail(ctx, $"the option -{o} cannot be specified more than once");
        }
        int ops = (g.Has("d") ? 1 : 0) + (g.Has("f") ? 1 : 0) + (g.Has("s") ? 1 : 0);
        if (ops == 0) return Fail(ctx, "need to specify one of -d, -f, or -s");
        if (ops > 1) return Fail(ctx, "only one of -d, -f, or -s may be used");
        if (g.Operands.Count == 0) return Fail(ctx, "missing required overlay device");
        if (g.Operands.Count > 1) return Fail(ctx, "only one overlay device may be specified");
        string name = g.Operands[0];
        Func<IOverlayTargetTable, DlStatus> change;
        string failed;
        if (g.Has("f"))
        {
            change = t => { t.Flush(); return DlStatus.Ok; };
            failed = $"failed to flush target cache for overlay {ConfigText.Echo(name)}";
        }
        else if (g.Has("d"))
        {
            string spec = g.Value("d")!;
            if (!MacAddress.TryParse(spec, out var mac)) return Fail(ctx, $"invalid mac specification: {ConfigText.Echo(spec)}");
            change = t => t.Delete(mac) ? DlStatus.Ok : DladmStatus.NotFound;
            failed = $"failed to flush target {ConfigText.Echo(spec)} from overlay target cache {ConfigText.Echo(name)}";
        }
        else
        {
            string spec = g.Value("s")!;
            int eq = spec.IndexOf('=');
            if (eq < 0) return Fail(ctx, $"malformed value, expected mac=dest, got: {ConfigText.Echo(spec)}");
            if (!MacAddress.TryParse(spec[..eq], out var mac)) return Fail(ctx, $"invalid mac specification: {ConfigText.Echo(spec[..eq])}");
            failed = $"failed to set target {ConfigText.Echo(spec[..eq])} for overlay target cache {ConfigText.Echo(name)}";
            // The destination is libdladm's to parse (ip:port for vxlan): a bad one is its EINVAL.
            string dest = spec[(eq + 1)..];
            int colon = dest.LastIndexOf(':');
            if (colon < 0 || !IpAddress.TryParse(dest[..colon], out var ip) || !DirectSearch.TryParsePort(dest[(colon + 1)..], out ushort port))
                return Fail(ctx, $"{failed}: {DlStatusText.Of(DladmStatus.BadArg)}");
            change = t => { t.Set(mac, new UnderlayEndpoint(ip, port)); return DlStatus.Ok; };
        }
        if (ctx.Host.Mac.Find(name) == null)
            return Fail(ctx, $"failed to find overlay {ConfigText.Echo(name)}: {DlStatusText.Of(DladmStatus.NotFound)}");
        var s = ctx.Host.Mac.ModifyOverlay(name, change);
        if (s.IsOk) return 0;
        return Fail(ctx, $"{failed}: {s.Message}");
    }

    /// <summary>show-overlay: a row per property of each overlay (LINK PROPERTY PERM REQ VALUE DEFAULT
    /// POSSIBLE); -f its status; -t its target table.</summary>
    private static int ShowOverlay(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, "ftpo:");
        if (g.Error != null) return OptError(ctx, g, "show-overlay");
        if (g.Has("f") && g.Has("t")) return Fail(ctx, "the option -f cannot be used with -t");
        // Named links are shown in turn; one that is missing or not an overlay is warned about and
        // skipped, and the exit status is 1 (do_show_overlay).
        var overlays = Visible(ctx).OfType<OverlayLink>().ToList();
        int status = 0;
        if (g.Operands.Count > 0)
        {
            overlays = [];
            foreach (string operand in g.Operands)
            {
                var l = FindVisible(ctx, operand);
                if (l is OverlayLink o) overlays.Add(o);
                else status = Fail(ctx, l == null ? $"failed to find {ConfigText.Echo(operand)}: {DlStatusText.Of(DladmStatus.NotFound)}" : $"{ConfigText.Echo(operand)} is not an overlay");
            }
        }
        var rows = new List<IReadOnlyDictionary<string, string>>();
        OutputTable t;
        if (g.Has("f"))
        {
            t = new OutputTable(new("link", 20), new("status", 8), new("details", 52));
            foreach (var o in overlays) rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["status"] = "ONLINE", ["details"] = "-" });
        }
        else if (g.Has("t"))
        {
            t = new OutputTable(new("link", 20), new("target", 18), new("destination", 42));
            foreach (var o in overlays)
            {
                if (o.Search is DirectSearch d)
                    rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["target"] = DefaultTarget, ["destination"] = Endpoint(d.Target) });
                else if (o.Search is IOverlayTargetTable table)
                    foreach (var (mac, target) in table.Entries)
                        rows.Add(new Dictionary<string, string> { ["link"] = o.Name, ["target"] = mac.ToString(), ["destination"] = Endpoint(target) });
            }
        }
        else
        {
            t = new OutputTable(new("link", 19), new("property", 19), new("perm", 5), new("req", 4), new("value", 11), new("default", 10), new("possible", 10));
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
        return status;
    }

    /// <summary>The target column of a point-to-point overlay's one entry, which answers for every
    /// MAC (print_overlay_targ_cb's DLADM_OVERLAY_F_DEFAULT row).</summary>
    private const string DefaultTarget = "*:*:*:*:*:*";

    private static string Endpoint(UnderlayEndpoint e) => $"{e.Address}:{e.Port.ToString(CultureInfo.InvariantCulture)}";
}
