using SmartOS.Kernel.Trace;

namespace SmartOS.Vnic;

public sealed partial class MacLayer
{
    /// <summary>The host's probe sites (kernel/Trace/Probe.cs); each datalink adds the mac provider's
    /// (LinkProbes.cs) when it is registered and removes them when it goes.</summary>
    public ProbeRegistry Probes { get; } = new();
}
