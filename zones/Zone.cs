using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>The zone states of zones(7), in illumos's order (a state compares greater than the
/// states before it, as zoneadm's sanity checks rely on).</summary>
public enum ZoneState { Configured, Incomplete, Installed, Ready, Running, ShuttingDown, Down }

/// <summary>One zone of a host (Host.cs theory statement).</summary>
public sealed class Zone
{
    internal Zone(ZoneConfig config, ZoneState state)
    {
        Config = config;
        State = state;
    }

    public string Name => Config.Name;
    /// <summary>The committed configuration.</summary>
    public ZoneConfig Config { get; internal set; }
    public ZoneState State { get; internal set; }
    /// <summary>The zone ID while ready or running; null otherwise (zoneadm prints "-").</summary>
    public int? Id { get; internal set; }
    /// <summary>The memory account while ready or running.</summary>
    public MemoryAccount? Memory { get; internal set; }
    /// <summary>The IP stack while running.</summary>
    public IZoneStack? Stack { get; internal set; }
    /// <summary>What the last boot could not replay of the zone's persistent ipadm configuration
    /// (zoneadm prints it; the zone runs without it).</summary>
    public IReadOnlyList<string> BootWarnings { get; internal set; } = [];
    /// <summary>bhyve/kvm: the guest of the last start, kept after it stops for its reason and console
    /// (HvmGuest.cs rule 2, 4); null for other brands and before the first start.</summary>
    public SmartOS.Virt.Vm? Guest { get; internal set; }
    /// <summary>The Unix time, in nanoseconds, of the zone's last boot (the host's WallClock, Host.cs
    /// rule 7): the kernel's boot_time that vmadm shows as boot_timestamp while the zone runs. Not
    /// kept across a host restart, as a zone's boot time is not.</summary>
    public long? BootedAt { get; internal set; }

    /// <summary>The lofs mounts (zonecfg add fs) made when the zone readied: what its file view shows
    /// while it is ready or running (FileView.cs); a change committed since applies at the next boot.</summary>
    public IReadOnlyList<ZoneFs> FsMounts { get; internal set; } = [];

    /// <summary>The datalinks lent to or created for the zone while it is ready or running.</summary>
    public IReadOnlyList<Datalink> Links => _links;
    internal readonly List<Datalink> _links = [];
    /// <summary>Links created at ready from a nic tag (deleted at halt) rather than lent.</summary>
    internal readonly HashSet<Datalink> _created = [];
    internal readonly List<MacClient> _clients = [];
    /// <summary>The nets the links were made from at ready (a commit while ready must not shift them).</summary>
    internal List<ZoneNet> _nets = [];
    /// <summary>The maxbw=0 flows that block the nics' blocked_outgoing_ports while the zone runs.</summary>
    internal readonly List<string> _blockFlows = [];
    internal Kernel.Kstat? _memoryKstat;

    public bool IsVm => Config.Vm != null;

    public static string StateName(ZoneState s) => s switch
    {
        ZoneState.Configured => "configured",
        ZoneState.Incomplete => "incomplete",
        ZoneState.Installed => "installed",
        ZoneState.Ready => "ready",
        ZoneState.Running => "running",
        ZoneState.ShuttingDown => "shutting_down",
        _ => "down",
    };
}
