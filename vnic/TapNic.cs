using System.Runtime.InteropServices;
using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>
/// A physical NIC's far side bound to a Linux TAP device (real time only; ARCHITECTURE.md, "Two
/// clocks"). The device is opened through /dev/net/tun with IFF_TAP | IFF_NO_PI, so each read or
/// write is exactly one Ethernet frame with no packet-information header.
///
/// Threads
///   reader    one background thread polls the descriptor and reads frames into its own buffer; each
///             frame is copied and handed to the kernel loop with RealTimeDriver.Invoke, where it is
///             put in a pooled Packet and given to PhysLink.ReceiveFromWire. The reader never touches
///             kernel state (Kernel.cs rule 2).
///   loop      Transmit runs on the loop (PhysLink.SendToWire) and writes the frame with write(2): a
///             TAP write does not block, it either queues the frame in the Linux stack or fails.
///
/// Rules
///   1. Open either returns a working device or a message naming what is missing (the device, the
///      privilege, the name), with nothing left open.
///   2. A failed write counts oerrors and frees the packet (MacLayer.cs rule 3); a read error stops
///      the reader and counts ierrors, never an exception on either thread.
///   3. Detach stops the reader (it polls with a short timeout so it notices) before closing the
///      descriptor, so the descriptor number is never reused under a live read.
/// </summary>
public sealed partial class TapNic : IPhysBackend, IDisposable
{
    private const int O_RDWR = 2;
    private const uint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short POLLIN = 0x0001;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int MaxFrame = 65536;
    /// <summary>How long the reader waits in poll before it checks for a stop: bounds Detach's wait.</summary>
    private const int PollMs = 100;

    private int _fd;
    private PhysLink? _phys;
    private RealTimeDriver? _driver;
    private Thread? _reader;
    private volatile bool _stop;

    private TapNic(int fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    /// <summary>The Linux interface name of the TAP device.</summary>
    public string Name { get; }

    /// <summary>TAP devices have no line rate; dladm shows them as 1 Gbit/s.</summary>
    public long SpeedBps => 1_000_000_000;

    /// <summary>Opens (creating if needed) the TAP device <paramref name="name"/>; on failure returns
    /// null and says what is missing (rule 1).</summary>
    public static TapNic? TryOpen(string name, out string? error)
    {
        error = null;
        if (!OperatingSystem.IsLinux()) { error = "TAP devices need Linux"; return null; }
        if (name.Length is 0 or > 15 || name.Contains('/') || name.Contains(' ') || name.Contains(':'))
        {
            error = $"invalid TAP device name '{name}' (1 to 15 characters, no '/', ':' or space)";
            return null;
        }
        if (!File.Exists("/dev/net/tun"))
        {
            error = "/dev/net/tun does not exist (load the tun module: modprobe tun)";
            return null;
        }
        int fd = Open("/dev/net/tun", O_RDWR);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            error = $"cannot open /dev/net/tun: {Marshal.GetPInvokeErrorMessage(errno)} (TAP devices need root or CAP_NET_ADMIN)";
            return null;
        }
        // struct ifreq: char ifr_name[16]; short ifr_flags; then the rest of the 40-byte union.
        var ifreq = new byte[40];
        System.Text.Encoding.ASCII.GetBytes(name, ifreq);
        BitConverter.TryWriteBytes(ifreq.AsSpan(16), (short)(IFF_TAP | IFF_NO_PI));
        if (Ioctl(fd, TUNSETIFF, ifreq) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Close(fd);
            error = errno == 1
                ? $"cannot create TAP device '{name}': {Marshal.GetPInvokeErrorMessage(errno)} (needs root or CAP_NET_ADMIN)"
                : $"cannot create TAP device '{name}': {Marshal.GetPInvokeErrorMessage(errno)}";
            return null;
        }
        return new TapNic(fd, name);
    }

    /// <summary>Binds the device to <paramref name="phys"/> and starts the reader. Call on the loop.</summary>
    public void Start(PhysLink phys, RealTimeDriver driver)
    {
        if (_reader != null) throw new InvalidOperationException($"TAP device {Name} is already started");
        if (_fd < 0) throw new ObjectDisposedException(nameof(TapNic));
        _phys = phys;
        _driver = driver;
        phys.Attach(this);
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "tap-" + Name };
        _reader.Start();
    }

    public void Transmit(PhysLink from, Packet frame)
    {
        int fd = _fd;
        long n = fd < 0 ? -1 : Write(fd, frame.Buffer, frame.Offset, frame.Length);
        if (n != frame.Length) from.Stats.OErrors++;
        frame.Free();
    }

    public void Detach(PhysLink phys) => Stop();

    private void ReadLoop()
    {
        var buffer = new byte[MaxFrame];
        var pfd = new PollFd { Fd = _fd, Events = POLLIN };
        while (!_stop)
        {
            pfd.Revents = 0;
            int ready = Poll(ref pfd, 1, PollMs);
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR) continue;
                ReportReadError();
                return;
            }
            if (ready == 0 || _stop) continue;
            long n = Read(_fd, buffer, 0, buffer.Length);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is EINTR or EAGAIN) continue;
                ReportReadError();
                return;
            }
            if (n == 0) continue;
            // One copy per frame: the reader's buffer is reused at once, and the pool belongs to the
            // loop, so the frame travels to the loop as its own array.
            byte[] frame = buffer.AsSpan(0, (int)n).ToArray();
            var phys = _phys!;
            _driver!.Invoke(() => Deliver(phys, frame));
        }
    }

    private void ReportReadError()
    {
        var phys = _phys!;
        _driver!.Invoke(() => phys.Stats.IErrors++);
    }

    /// <summary>On the loop: a frame from Linux enters the host as if from a wire.</summary>
    private void Deliver(PhysLink phys, byte[] frame)
    {
        if (phys.Backend != this)
        {
            phys.Stats.DropLinkDown++;
            return;
        }
        var p = phys.Mac.Pool.Rent(frame);
        if (p == null)
        {
            phys.Stats.IErrors++;
            return;
        }
        phys.ReceiveFromWire(p);
    }

    private void Stop()
    {
        _stop = true;
        if (_reader != null && Thread.CurrentThread != _reader) _reader.Join(TimeSpan.FromSeconds(2));
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Close(fd);
    }

    /// <summary>Detaches from the NIC (if attached) and closes the device; the TAP device disappears
    /// from Linux unless it was made persistent.</summary>
    public void Dispose()
    {
        if (_phys is { } phys && phys.Backend == this) phys.DetachBackend();
        Stop();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, byte[] arg);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollFd fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, ref byte buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, ref byte buffer, nuint count);

    private static long Read(int fd, byte[] buffer, int offset, int count)
        => ReadRaw(fd, ref buffer[offset], (nuint)count);

    private static long Write(int fd, byte[] buffer, int offset, int count)
        => count == 0 ? 0 : WriteRaw(fd, ref buffer[offset], (nuint)count);
}
