namespace SmartOS.Vnic;

public sealed partial class MacLayer
{
    /// <summary>
    /// Installs the underlay hook (Overlay.cs rule 5) and moves to it only the open listen endpoints
    /// <paramref name="move"/> picks; the others keep their underlay. A real-time host uses it to give
    /// the endpoints on the Linux machine's own addresses a socket (UdpUnderlay.cs) while those on
    /// simulated addresses stay on the global zone's IP stack, where boot put them. Returns the
    /// endpoints the provider refused; their overlays keep their old underlay.
    /// </summary>
    public List<string> SetUnderlayProvider(OverlayUnderlayProvider provider, Func<UnderlayEndpoint, bool> move)
    {
        _underlayProvider = provider;
        var problems = new List<string>();
        foreach (var mux in _muxes.Values)
        {
            if (!move(mux.Listen)) continue;
            var s = provider(mux.Listen, out var underlay);
            if (s.IsOk && underlay != null) mux.Replace(underlay);
            else problems.Add($"overlay listen endpoint {mux.Listen.Address}:{mux.Listen.Port}: {s.Message}");
        }
        return problems;
    }
}
