using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// A MAC client carried to a Linux TAP device (an LX zone's interface; ARCHITECTURE.md: "an LX zone's
/// TAP device is a MAC client"). Frames the client receives from its VNIC are written to the TAP;
/// frames Linux writes to the TAP are transmitted through the client, so the VNIC's VLAN, protection,
/// flows and bandwidth limits apply as for any zone. Threads and descriptor rules: TapDevice.cs.
/// A frame that cannot be written to Linux counts ierrors on the link; one from Linux with no buffer
/// (the pool or the reader's ring full) counts drop_nobuf, one after the client closed or whose
/// virtio_net_hdr cannot be honoured oerrors (MacLayer.cs rule 3). With the device's offloads
/// (TapDevice.cs) a frame's pending TCP checksum goes to Linux to fill in (NEEDS_CSUM), as to a NIC,
/// a GSO frame from the lx zone is a large send through the VNIC (its checksum left pending when
/// Linux left it to us, TapDevice.cs rule 6), and a large segment delivered to it is written as one
/// GSO frame (MacLayer.cs rule 9).
/// </summary>
public sealed class TapClient : IMacReceiver, IDisposable
{
    private readonly MacClient _client;
    private readonly TapDevice _device;

    private TapClient(MacClient client, TapDevice device)
    {
        _client = client;
        _device = device;
    }

    public string DeviceName => _device.Name;

    /// <summary>The TAP device (its counters: TapDevice.WholeFrames, PendingChecksumFrames).</summary>
    public TapDevice Device => _device;

    /// <summary>Joins <paramref name="client"/> and <paramref name="device"/> and starts the reader.
    /// Call on the loop. The TapClient owns the device; the caller still owns the client.</summary>
    public static TapClient Start(MacClient client, TapDevice device, RealTimeDriver driver)
    {
        var t = new TapClient(client, device);
        client.Receiver = t;
        device.Start(driver, t.FromLinux, () => client.Link.Stats.IErrors++, lost => client.Link.Stats.DropNoBuf += lost,
            bad => client.Link.Stats.OErrors += bad, null, failed => client.Link.Stats.IErrors += failed);
        return t;
    }

    /// <summary>A device with offloads passes a pending checksum on to Linux (MacLayer.cs rule 7).</summary>
    public bool AcceptsPendingChecksum => _device.Offload;

    /// <summary>A device with offloads writes a large segment as one GSO frame (TapDevice.Send).</summary>
    public bool AcceptsLargeReceive => _device.Offload;

    public void Receive(MacClient client, Packet packet)
    {
        _device.Send(packet);
    }

    /// <summary>On the loop: a frame the Linux side sent leaves through the VNIC.</summary>
    private void FromLinux(ReadOnlySpan<byte> frame, ushort gsoSize, int pendingChecksum)
    {
        if (!_client.IsOpen)
        {
            _client.Link.Stats.OErrors++;
            return;
        }
        var pool = _client.Pool;
        var p = gsoSize != 0 && frame.Length > PacketPool.LargeSize ? pool.RentLso(frame.Length) : pool.Rent(frame.Length);
        if (p != null)
        {
            frame.CopyTo(p.Data);
            p.LsoMss = gsoSize; // a large send from the lx zone (MacLayer.cs rule 9)
            // Linux left its TCP checksum to us (TapDevice.cs rule 6): filled in where it leaves (rule 7).
            if (pendingChecksum != 0) p.SetChecksumPending(pendingChecksum, frame.Length - pendingChecksum, TcpView.ChecksumOffset);
            _client.Transmit(p);
            return;
        }
        if (gsoSize == 0 || !TcpSegmentation.TryCreate(frame, gsoSize, out var seg))
        {
            _client.Link.Stats.DropNoBuf++;
            return;
        }
        for (int i = 0; i < seg.Count; i++) // no large buffer free: MSS frames
        {
            var q = pool.Rent(seg.SegmentLength(i));
            if (q == null)
            {
                _client.Link.Stats.DropNoBuf++;
                continue;
            }
            seg.Write(i, q.Data);
            _client.Transmit(q);
        }
    }

    /// <summary>Stops the reader and closes the device; call before the client is closed.</summary>
    public void Dispose()
    {
        if (_client.Receiver == this) _client.Receiver = null;
        _device.Dispose();
    }
}
