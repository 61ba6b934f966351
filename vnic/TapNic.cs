using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>
/// A physical NIC's far side bound to a Linux TAP device (real time only; ARCHITECTURE.md, "Two
/// clocks"): frames the NIC sends to the wire are written to the device, frames Linux writes to it
/// arrive as from a wire (PhysLink.ReceiveFromWire), with the same switch, flow and protection rules.
/// Threads and descriptor rules: TapDevice.cs. A failed write counts oerrors; a frame that arrives
/// after the NIC was detached counts drop_link_down, one with no buffer (the pool or the reader's ring
/// full) drop_nobuf, one whose virtio_net_hdr cannot be honoured ierrors (MacLayer.cs rule 3). The
/// device has the offloads (TapDevice.cs): Linux hands it TSO frames and leaves checksums to it, the
/// TSO frames go on to the host whole (a large receive), and the host's large sends come to it whole
/// and leave as one GSO write (MacLayer.cs rule 9).
/// Carrier (issue 16): the NIC's link follows the Linux end's administrative state (`ip link set
/// down`/`up`, TapDevice.Link.cs), and goes down for good when the device breaks or is deleted, so an
/// aggregation's port leaves and a bridge's port reconverges as when a wire is pulled.
/// </summary>
public sealed class TapNic : IPhysBackend, IDisposable
{
    private readonly TapDevice _device;
    private PhysLink? _phys;

    private TapNic(TapDevice device) { _device = device; }

    /// <summary>The Linux interface name of the TAP device.</summary>
    public string Name => _device.Name;

    /// <summary>TAP devices have no line rate; dladm shows them as 1 Gbit/s.</summary>
    public long SpeedBps => 1_000_000_000;

    /// <summary>Opens the TAP device <paramref name="name"/>, with the offloads unless
    /// <paramref name="offload"/> is false, or says what is missing (TapDevice rule 1).</summary>
    public static TapNic? TryOpen(string name, out string? error, bool offload = true)
        => TapDevice.TryOpen(name, out error, offload) is { } d ? new TapNic(d) : null;

    /// <summary>As <see cref="TryOpen"/>, the device created in the network namespace at
    /// <paramref name="netns"/> (TapDevice.TryOpenIn): its link state is followed there.</summary>
    public static TapNic? TryOpenIn(string netns, string name, out string? error, bool offload = true)
        => TapDevice.TryOpenIn(netns, name, out error, offload) is { } d ? new TapNic(d) : null;

    /// <summary>Whether the device has the offloads (TapDevice.Offload).</summary>
    public bool Offload => _device.Offload;

    /// <summary>With offloads a pending TCP checksum goes to Linux to fill in (virtio_net_hdr NEEDS_CSUM).</summary>
    public bool OffloadsChecksum => _device.Offload;

    /// <summary>With offloads a large-send frame goes to Linux whole as a GSO frame (TapDevice.Send).</summary>
    public bool OffloadsSegmentation => _device.Offload;

    /// <summary>TSO frames from Linux cut into MTU-sized frames so far (TapDevice.SegmentedFrames).</summary>
    public long SegmentedFrames => _device.SegmentedFrames;

    /// <summary>TSO frames from Linux handed to the host whole so far (TapDevice.WholeFrames).</summary>
    public long WholeFrames => _device.WholeFrames;

    /// <summary>Frames from Linux handed over with their TCP checksum pending (TapDevice.cs rule 6).</summary>
    public long PendingChecksumFrames => _device.PendingChecksumFrames;

    /// <summary>Pure ACKs to Linux left out because a later one superseded them (TapDevice.cs rule 10).</summary>
    public long AcksSuperseded => _device.AcksSuperseded;

    /// <summary>Frames from Linux the loop read itself before it slept (TapDevice.cs rule 9).</summary>
    public long LoopFrames => _device.LoopFrames;

    /// <summary>Binds the device to <paramref name="phys"/> and starts its reader. Call on the loop.</summary>
    public void Start(PhysLink phys, RealTimeDriver driver)
    {
        _phys = phys;
        phys.Attach(this);
        _device.Start(driver, (frame, gso, csum) => phys.ReceiveFromBackend(this, frame, gso, csum), () => phys.Stats.IErrors++, lost => phys.Stats.DropNoBuf += lost,
            bad => phys.Stats.IErrors += bad, up => { if (phys.Backend == this) phys.SetCarrier(up); }, failed => phys.Stats.OErrors += failed);
    }

    public void Transmit(PhysLink from, Packet frame)
    {
        _device.Send(frame);
    }

    public void Detach(PhysLink phys) => _device.Dispose();

    /// <summary>Detaches from the NIC (if attached) and closes the device.</summary>
    public void Dispose()
    {
        if (_phys is { } phys && phys.Backend == this) phys.DetachBackend();
        _device.Dispose();
    }
}
