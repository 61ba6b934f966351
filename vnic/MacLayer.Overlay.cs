using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>An overlay's creation-time settings as datalink.conf keeps them (class "overlay").</summary>
public sealed class OverlayRecord
{
    public string Encap { get; set; } = "vxlan";
    public string Search { get; set; } = "";
    public long Vnid { get; set; }
    /// <summary>vxlan/* and the search plugin's properties, by name.</summary>
    public Dictionary<string, string> Props { get; set; } = new();

    public OverlayRecord Clone() => new() { Encap = Encap, Search = Search, Vnid = Vnid, Props = new(Props) };
}

/// <summary>The hook through which a host chooses the underlay of a listen endpoint (Overlay.cs
/// rule 5): an underlay, or the status that refuses it (address in use, not supported).</summary>
public delegate DlStatus OverlayUnderlayProvider(UnderlayEndpoint listen, out IOverlayUnderlay? underlay);

public sealed partial class MacLayer
{
    public const string ListenIp = "vxlan/listen_ip", ListenPort = "vxlan/listen_port";

    /// <summary>vxlan's own properties (overlay(7)).</summary>
    public static readonly IReadOnlyList<OverlayPropInfo> VxlanProps =
    [
        new(ListenIp, Required: true),
        new(ListenPort, Required: true, Default: "4789", Possible: "1-65535"),
    ];

    private readonly Dictionary<UnderlayEndpoint, OverlayMux> _muxes = new();
    private OverlayUnderlayProvider? _underlayProvider;

    /// <summary>The search plugins this host knows (OverlaySearch.cs).</summary>
    public OverlaySearchPlugins SearchPlugins { get; } = new();

    /// <summary>How the host gets the underlay of a listen endpoint (Overlay.cs rule 5); null: none,
    /// and overlays are refused.</summary>
    public OverlayUnderlayProvider? UnderlayProvider => _underlayProvider;

    /// <summary>The counters of each listen endpoint in use (kstat overlay:0:mux_IP_PORT).</summary>
    public IEnumerable<(UnderlayEndpoint Listen, OverlayMuxStats Stats)> OverlayMuxes
    {
        get
        {
            foreach (var m in _muxes.Values) yield return (m.Listen, m.Stats);
        }
    }

    /// <summary>Installs the underlay hook (Overlay.cs rule 5) and moves every open listen endpoint to
    /// it. Returns the endpoints the new provider refused; their overlays keep their old underlay.</summary>
    public List<string> SetUnderlayProvider(OverlayUnderlayProvider? provider)
    {
        _underlayProvider = provider;
        var problems = new List<string>();
        if (provider == null) return problems;
        foreach (var mux in _muxes.Values)
        {
            var s = provider(mux.Listen, out var underlay);
            if (s.IsOk && underlay != null) mux.Replace(underlay);
            else problems.Add($"overlay listen endpoint {mux.Listen.Address}:{mux.Listen.Port}: {s.Message}");
        }
        return problems;
    }

    /// <summary>Whether a property name belongs to an overlay's creation settings.</summary>
    private static bool IsVxlanProp(string name) => name == ListenIp || name == ListenPort;

    /// <summary>dladm create-overlay: checks everything, creates the link live, opens (or joins) its
    /// listen endpoint's mux, applies the mtu and persists, or leaves nothing. On failure
    /// <paramref name="failedProp"/> names the property at fault, and <paramref name="missing"/> says
    /// whether it was missing rather than bad.</summary>
    public DlStatus CreateOverlay(string name, string encap, string searchName, long vnid,
        IReadOnlyList<(string Prop, string Value)> props, bool temporary, out OverlayLink? overlay, out string? failedProp, out bool missing)
    {
        overlay = null;
        failedProp = null;
        missing = false;
        var s = CheckNewName(name);
        if (!s.IsOk) return s;
        var rec = new OverlayRecord { Encap = encap, Search = searchName, Vnid = vnid };
        string? mtu = null;
        foreach (var (prop, value) in props)
        {
            if (prop == "mtu") mtu = value;
            else rec.Props[prop] = value;
        }
        s = CreateOverlayLive(name, rec, out overlay, out failedProp, out missing);
        if (!s.IsOk) return s;
        try
        {
            if (mtu != null)
            {
                failedProp = "mtu";
                s = CheckLinkProp(overlay!, "mtu", mtu);
                if (!s.IsOk)
                {
                    RemoveLive(overlay!);
                    overlay = null;
                    return s;
                }
                FindProperty("mtu")!.Apply(overlay!, mtu);
                failedProp = null;
            }
            if (!temporary)
            {
                var lr = new LinkRecord { Name = name, Class = "overlay", Overlay = rec };
                if (mtu != null) lr.Props = new() { ["mtu"] = mtu };
                Persist(l => l.Add(lr));
            }
        }
        catch
        {
            if (Find(name) is Datalink l) RemoveLive(l);
            overlay = null;
            throw;
        }
        return DlStatus.Ok;
    }

    private DlStatus CreateOverlayLive(string name, OverlayRecord rec, out OverlayLink? overlay, out string? failedProp, out bool missing)
    {
        overlay = null;
        failedProp = null;
        missing = false;
        if (!LinkNames.IsValid(name)) return DladmStatus.LinkInval;
        if (Exists(name)) return DladmStatus.Exist;
        if (rec.Encap != "vxlan") return DladmStatus.NotSup;
        if (rec.Vnid is < 0 or > VxlanHeader.MaxVnid) return DladmStatus.BadVal;
        var plugin = SearchPlugins.Find(rec.Search);
        if (plugin == null) return DladmStatus.NotSup;
        // Every property must be vxlan's or the plugin's (overlay(7)); the generic ones (encap,
        // search, vnetid) come from the options, never from -p.
        foreach (var key in rec.Props.Keys)
        {
            if (IsVxlanProp(key)) continue;
            bool ours = false;
            foreach (var pi in plugin.Props) ours |= pi.Name == key;
            if (!ours)
            {
                failedProp = key;
                return DladmStatus.BadProp;
            }
        }
        failedProp = ListenIp;
        if (!rec.Props.TryGetValue(ListenIp, out var ipText))
        {
            missing = true;
            return DladmStatus.BadArg;
        }
        if (!IpAddress.TryParse(ipText, out var listenIp) || listenIp.IsMulticast) return DladmStatus.BadVal;
        if (!listenIp.IsV4) return DladmStatus.NotSup; // Overlay.cs rule 6
        failedProp = ListenPort;
        ushort listenPort = VxlanHeader.Port;
        if (rec.Props.TryGetValue(ListenPort, out var portText) && !DirectSearch.TryParsePort(portText, out listenPort)) return DladmStatus.BadVal;
        var pluginProps = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pi in plugin.Props)
        {
            if (rec.Props.TryGetValue(pi.Name, out var v)) pluginProps[pi.Name] = v;
            else if (pi.Required && pi.Default == "--")
            {
                failedProp = pi.Name;
                missing = true;
                return DladmStatus.BadArg;
            }
        }
        var s = plugin.Create(pluginProps, out var search, out failedProp);
        if (!s.IsOk || search == null)
        {
            missing = s.Code == DladmStatus.BadArg;
            return s.IsOk ? DladmStatus.Failed : s;
        }
        failedProp = null;
        var listen = new UnderlayEndpoint(listenIp, listenPort);
        _muxes.TryGetValue(listen, out var mux);
        if (mux != null && mux.Has((uint)rec.Vnid)) return DladmStatus.Exist; // one VNID per endpoint
        if (mux == null)
        {
            var provider = _underlayProvider;
            if (provider == null) return DladmStatus.NotSup;
            s = provider(listen, out var underlay);
            if (!s.IsOk) return s;
            if (underlay == null) return DladmStatus.Failed;
            mux = new OverlayMux(listen, underlay);
            _muxes.Add(listen, mux);
            mux.Kstat = Kstats.Add("overlay", 0, $"mux_{listenIp}_{listenPort}", "net", mux.Stats);
        }
        var props = new Dictionary<string, string>(StringComparer.Ordinal) { [ListenIp] = listenIp.ToString(), [ListenPort] = listenPort.ToString(CultureInfo.InvariantCulture) };
        foreach (var (k, v) in pluginProps) props[k] = v;
        overlay = new OverlayLink(this, name, NextLinkId(), (uint)rec.Vnid, search, listen, props) { Mux = mux };
        // An mtu whose frames the underlay cannot carry is refused (rule 4); the default too.
        DlStatus fit = CheckOverlayMtu(overlay, overlay.Mtu);
        if (!fit.IsOk)
        {
            if (mux.Count == 0) CloseMux(mux);
            failedProp = "mtu";
            overlay = null;
            return fit;
        }
        mux.Add(overlay);
        Register(overlay);
        overlay.OverlayKstat = Kstats.Add("overlay", 0, name, "net", overlay.OverlayStats);
        return DlStatus.Ok;
    }

    /// <summary>Rule 4 of Overlay.cs: mtu + inner Ethernet, tag and VXLAN must fit the underlay's
    /// MaxPayload toward the plugin's destination, when the plugin has one and it is reachable.</summary>
    internal static DladmStatus CheckOverlayMtu(OverlayLink overlay, int mtu)
    {
        if (overlay.Search is not DirectSearch d || overlay.Mux == null) return DladmStatus.Ok;
        int max = overlay.Mux.Underlay.MaxPayload(d.Target);
        if (max >= 0 && mtu + VxlanHeader.InnerOverhead > max) return DladmStatus.InvalidMtu;
        return DladmStatus.Ok;
    }

    private void CloseMux(OverlayMux mux)
    {
        _muxes.Remove(mux.Listen);
        if (mux.Kstat != null) Kstats.Remove(mux.Kstat);
        mux.Close();
    }

    /// <summary>Takes an overlay out of its mux and its kstat (RemoveLive).</summary>
    private void DetachOverlay(OverlayLink o)
    {
        if (o.OverlayKstat != null) Kstats.Remove(o.OverlayKstat);
        o.OverlayKstat = null;
        var mux = o.Mux;
        if (mux == null) return;
        mux.Remove(o);
        o.Mux = null;
        if (mux.Count == 0) CloseMux(mux);
    }

    private DlStatus ReplayOverlay(LinkRecord r, out OverlayLink? overlay)
    {
        overlay = null;
        if (r.Overlay is not { } rec) return DladmStatus.BadArg;
        if (rec.Props == null) return DladmStatus.BadArg;
        return CreateOverlayLive(r.Name, rec, out overlay, out _, out _);
    }

    /// <summary>dladm modify-overlay: edits the target table of a dynamic plugin. A point-to-point
    /// plugin has none (NotSup).</summary>
    public DlStatus ModifyOverlay(string name, Func<IOverlayTargetTable, DlStatus> change)
    {
        var link = Find(name);
        if (link == null) return DladmStatus.NotFound;
        if (link is not OverlayLink o) return DladmStatus.LinkInval;
        if (o.Search is not IOverlayTargetTable table) return DladmStatus.NotSup;
        return change(table);
    }
}
