using System.Globalization;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>One property of a search plugin as show-overlay lists it (overlay(7): name, whether it
/// is required, its default and its range).</summary>
public sealed record OverlayPropInfo(string Name, bool Required, string Default = "--", string Possible = "--");

/// <summary>Makes a search plugin instance for one overlay from its properties (all of the plugin's,
/// by name; only the plugin's own are passed). Returns the status and, on failure, the property at
/// fault (null when the failure is not one property's).</summary>
public delegate DlStatus OverlaySearchFactory(IReadOnlyDictionary<string, string> props, out IOverlaySearch? search, out string? failedProp);

/// <summary>A search plugin as varpd loads it: its name, its properties and how to instantiate it.</summary>
public sealed record OverlaySearchPlugin(string Name, IReadOnlyList<OverlayPropInfo> Props, OverlaySearchFactory Create)
{
    /// <summary>Why Create refuses these properties, in words (for files: the mapping file and the
    /// entry at fault), or null; create-overlay prints it after the status.</summary>
    public Func<IReadOnlyDictionary<string, string>, string?>? Explain { get; init; }
}

/// <summary>
/// The search plugins a host knows, by name (varpd's plugin directory). `direct` is built in; the
/// `files` plugin registers itself here. `dladm create-overlay -s NAME` with a name not registered
/// is refused.
/// </summary>
public sealed class OverlaySearchPlugins
{
    private readonly Dictionary<string, OverlaySearchPlugin> _plugins = new(StringComparer.Ordinal);

    public OverlaySearchPlugins()
    {
        Register(DirectSearch.Plugin);
        Register(OverlayFilesSearch.Plugin);
    }

    public void Register(OverlaySearchPlugin plugin)
    {
        if (_plugins.ContainsKey(plugin.Name)) throw new InvalidOperationException($"search plugin {plugin.Name} registered twice");
        _plugins.Add(plugin.Name, plugin);
    }

    public OverlaySearchPlugin? Find(string name) => _plugins.GetValueOrDefault(name);

    /// <summary>The names, sorted (show-overlay's POSSIBLE for search).</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            var names = new List<string>(_plugins.Keys);
            names.Sort(StringComparer.Ordinal);
            return names;
        }
    }
}

/// <summary>
/// The direct plugin (overlay(7)): a point-to-point overlay whose every non-local frame, unicast or
/// not, goes to one underlay destination, direct/dest_ip:direct/dest_port. It answers nothing by
/// proxy and has no target table.
/// </summary>
public sealed class DirectSearch : IOverlaySearch
{
    public const string DestIp = "direct/dest_ip", DestPort = "direct/dest_port";

    public static readonly OverlaySearchPlugin Plugin = new("direct",
        [new OverlayPropInfo(DestIp, Required: true), new OverlayPropInfo(DestPort, Required: true, Possible: "1-65535")],
        Create);

    public DirectSearch(UnderlayEndpoint target) => Target = target;

    public string Name => "direct";
    public UnderlayEndpoint Target { get; }

    public OverlayLookupStatus Lookup(MacAddress destination, out UnderlayEndpoint target)
    {
        target = Target;
        return OverlayLookupStatus.Found;
    }

    public int TryAnswer(ReadOnlySpan<byte> frame, Span<byte> reply) => 0;

    private static DlStatus Create(IReadOnlyDictionary<string, string> props, out IOverlaySearch? search, out string? failedProp)
    {
        search = null;
        failedProp = DestIp;
        if (!props.TryGetValue(DestIp, out var ipText)) return DladmStatus.BadArg;
        if (!IpAddress.TryParse(ipText, out var ip) || ip.IsUnspecified || ip.IsMulticast) return DladmStatus.BadVal;
        if (!ip.IsV4) return DladmStatus.NotSup; // Overlay.cs rule 6
        failedProp = DestPort;
        if (!props.TryGetValue(DestPort, out var portText)) return DladmStatus.BadArg;
        if (!TryParsePort(portText, out ushort port)) return DladmStatus.BadVal;
        failedProp = null;
        search = new DirectSearch(new UnderlayEndpoint(ip, port));
        return DlStatus.Ok;
    }

    /// <summary>A UDP port 1-65535 in decimal.</summary>
    public static bool TryParsePort(string text, out ushort port)
    {
        port = 0;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1 || v > 65535) return false;
        port = (ushort)v;
        return true;
    }
}
