using SharpPcap;
using SharpPcap.LibPcap;
using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Cli.Daemon;

/// <summary>
/// A physical NIC's far side bound to an existing Linux interface through libpcap (SharpPcap): live
/// capture of the frames the interface receives, injection of the frames the NIC sends. Real time
/// only. Threads as for TAP (vnic/TapDevice.cs): SharpPcap's capture thread copies each frame and
/// hands it to the loop with RealTimeDriver.Invoke; injection runs on the loop.
///
/// Only inbound frames are captured (the "inbound" filter): frames Linux itself sends on the
/// interface never reached a wire the NIC is on, and Linux does not loop our own injections back to
/// the socket that sent them. The NIC shares the interface with Linux, so it runs promiscuous.
/// </summary>
public sealed class PcapNic : IPhysBackend, IDisposable
{
    private readonly LibPcapLiveDevice _device;
    private PhysLink? _phys;
    private RealTimeDriver? _driver;
    private bool _capturing;

    private PcapNic(LibPcapLiveDevice device) { _device = device; }

    public string Name => _device.Name;
    public long SpeedBps => 1_000_000_000;

    /// <summary>Opens <paramref name="iface"/> for capture and injection, or says what is missing.</summary>
    public static PcapNic? TryOpen(string iface, out string? error)
    {
        error = null;
        LibPcapLiveDevice? device;
        try
        {
            device = LibPcapLiveDeviceList.Instance.FirstOrDefault(d => d.Name == iface);
        }
        catch (Exception e) when (e is DllNotFoundException or PcapException or TypeInitializationException)
        {
            error = $"cannot use libpcap: {e.Message} (install libpcap0.8)";
            return null;
        }
        if (device == null)
        {
            error = $"no such interface '{iface}' for pcap (ip link shows the interfaces)";
            return null;
        }
        try
        {
            device.Open(new DeviceConfiguration { Mode = DeviceModes.Promiscuous, ReadTimeout = 100, Immediate = true, Snaplen = 65536 });
            device.Filter = "inbound";
        }
        catch (PcapException e)
        {
            try { device.Close(); } catch (PcapException) { }
            error = $"cannot open '{iface}' for capture: {e.Message} (needs root or CAP_NET_RAW)";
            return null;
        }
        return new PcapNic(device);
    }

    /// <summary>Binds the interface to <paramref name="phys"/> and starts capturing. Call on the loop.</summary>
    public void Start(PhysLink phys, RealTimeDriver driver)
    {
        _phys = phys;
        _driver = driver;
        phys.Attach(this);
        _device.OnPacketArrival += Arrived;
        _device.StartCapture();
        _capturing = true;
    }

    /// <summary>On SharpPcap's capture thread: copy the frame and hand it to the loop.</summary>
    private void Arrived(object sender, PacketCapture e)
    {
        byte[] frame = e.Data.ToArray();
        var phys = _phys!;
        _driver!.Invoke(() => Deliver(phys, frame));
    }

    private void Deliver(PhysLink phys, byte[] frame) => phys.ReceiveFromBackend(this, frame);

    public void Transmit(PhysLink from, Packet frame)
    {
        try { _device.SendPacket(frame.Data); }
        catch (PcapException) { from.Stats.OErrors++; }
        frame.Free();
    }

    public void Detach(PhysLink phys) => Close();

    private void Close()
    {
        if (_capturing)
        {
            _capturing = false;
            try { _device.StopCapture(); } catch (PcapException) { }
        }
        try { _device.Close(); } catch (PcapException) { }
    }

    public void Dispose()
    {
        if (_phys is { } phys && phys.Backend == this) phys.DetachBackend();
        Close();
    }
}
