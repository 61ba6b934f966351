using SmartOS.Kernel.Trace;

namespace SmartOS.Vnic;

/// <summary>
/// The mac provider's probes of one datalink (kernel/Trace/Probe.cs): mac:LINK:mac_tx:transmit and
/// mac:LINK:mac_rx:receive for each frame a link's client sends or is given (arg0 the link's name,
/// arg1 the frame's length, arg2 its VLAN id), and the link-protection drops under the names
/// illumos's mac_protect.c gives its SDT probes (arg0 the link's name, arg1 the frame's length).
/// The bandwidth shaper of the link and of each of its flows (maxbw; Shaper.cs) fires
/// mac:LINK:mac_bw:enqueue when a frame must wait, dequeue when a waiting frame leaves and drop
/// when a frame is dropped (the queue full, or the limit set to 0): arg0 the link's name, arg1 the
/// frame's length, arg2 the flow's name ("" for the link's own limit), arg3 1 on transmit and 0 on
/// receive, arg4 the frames waiting after the event. A frame that finds the shaper idle leaves at
/// once and fires neither. (illumos has no stable probes here; the names are this project's.)
/// The module is the link's name and the zone the link's zone, read when asked (rule 2 there).
/// </summary>
internal sealed class LinkProbes
{
    public readonly Probe Transmit, Receive, MacNoSpoof, IpNoSpoof, DhcpNoSpoof, Restricted, BwEnqueue, BwDequeue, BwDrop;

    /// <summary>Probes no consumer can reach: a link's until it is registered, so a firing site
    /// reads link.Probes.X.Enabled without a null check (one branch, Probe.cs rule 1).</summary>
    public static readonly LinkProbes None = new(new ProbeRegistry(), null);

    public LinkProbes(ProbeRegistry registry, Datalink? link)
    {
        string Module() => link?.Name ?? "";
        string Zone() => link?.Zone ?? "global";
        Transmit = registry.Add("mac", Module, "mac_tx", "transmit", Zone);
        Receive = registry.Add("mac", Module, "mac_rx", "receive", Zone);
        MacNoSpoof = registry.Add("mac", Module, "mac_protect_check_one", "mac-nospoof-fail", Zone);
        IpNoSpoof = registry.Add("mac", Module, "mac_protect_check_one", "ip-nospoof-fail", Zone);
        DhcpNoSpoof = registry.Add("mac", Module, "mac_protect_check_one", "dhcp-nospoof-fail", Zone);
        Restricted = registry.Add("mac", Module, "mac_protect_check_one", "restricted-fail", Zone);
        BwEnqueue = registry.Add("mac", Module, "mac_bw", "enqueue", Zone);
        BwDequeue = registry.Add("mac", Module, "mac_bw", "dequeue", Zone);
        BwDrop = registry.Add("mac", Module, "mac_bw", "drop", Zone);
    }

    public void RemoveFrom(ProbeRegistry registry)
    {
        registry.Remove(Transmit);
        registry.Remove(Receive);
        registry.Remove(MacNoSpoof);
        registry.Remove(IpNoSpoof);
        registry.Remove(DhcpNoSpoof);
        registry.Remove(Restricted);
        registry.Remove(BwEnqueue);
        registry.Remove(BwDequeue);
        registry.Remove(BwDrop);
    }

    /// <summary>The probe of a protection drop.</summary>
    public Probe For(ProtectionDrop why) => why switch
    {
        ProtectionDrop.MacSpoofed => MacNoSpoof,
        ProtectionDrop.IpSpoofed => IpNoSpoof,
        ProtectionDrop.DhcpSpoofed => DhcpNoSpoof,
        _ => Restricted,
    };
}
