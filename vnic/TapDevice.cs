using System.Buffers;
using System.Runtime.InteropServices;
using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>
/// A Linux TAP device opened through /dev/net/tun with IFF_TAP | IFF_NO_PI, so each read or write is
/// exactly one Ethernet frame with no packet-information header. Two users: TapNic (a physical NIC's
/// far side) and TapClient (an LX zone's interface, a MAC client of its VNIC).
///
/// Threads
///   reader    one background thread polls the (non-blocking) descriptor and, once it is readable,
///             reads every frame waiting (up to BatchMax) into its own buffer, copying each into an
///             array from ArrayPool; the batch goes to the kernel loop with one RealTimeDriver.Invoke,
///             which delivers the frames in order and gives the arrays back. The reader never
///             touches kernel state (Kernel.cs rule 2). Batching keeps the loop's wake-ups and the
///             poll calls per frame low when Linux sends fast.
///   loop      Write runs on the loop and calls write(2): a TAP write does not block, it either
///             queues the frame in the Linux stack or fails.
///
/// Rules
///   1. Open either returns a working device or a message naming what is missing (the device, the
///      privilege, the name), with nothing left open.
///   2. A failed write returns false for the caller to count; a read error stops the reader and is
///      reported to the loop once, never an exception on either thread.
///   3. Dispose stops the reader (it polls with a short timeout so it notices) before closing the
///      descriptor, so the descriptor number is never reused under a live read.
///   4. At most MaxPending frames wait for the loop: when Linux sends faster than the loop takes
///      frames, the reader drops them (a full receive ring) and the loop is told how many with the
///      next frame it gets, so memory stays bounded and every drop is counted.
/// </summary>
public sealed partial class TapDevice : IDisposable
{
    private const int O_RDWR = 2;
    private const int O_NONBLOCK = 0x800;
    private const uint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short POLLIN = 0x0001;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int MaxFrame = 65536;
    /// <summary>Frames handed to the loop and not yet taken (rule 4): a NIC receive ring's size.</summary>
    private const int MaxPending = 4096;
    /// <summary>Frames read in one go before they are handed to the loop.</summary>
    private const int BatchMax = 64;
    /// <summary>How long the reader waits in poll before it checks for a stop: bounds Dispose's wait.</summary>
    private const int PollMs = 100;

    private int _fd;
    private Thread? _reader;
    private volatile bool _stop;
    private int _pending, _overflow;

    private TapDevice(int fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    /// <summary>The Linux interface name the device was created with.</summary>
    public string Name { get; }

    /// <summary>Opens (creating if needed) the TAP device <paramref name="name"/>; on failure returns
    /// null and says what is missing (rule 1).</summary>
    public static TapDevice? TryOpen(string name, out string? error)
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
        int fd = Open("/dev/net/tun", O_RDWR | O_NONBLOCK);
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
        return new TapDevice(fd, name);
    }

    /// <summary>Called on the loop with one frame from Linux; the span is valid only during the call.</summary>
    public delegate void FrameHandler(ReadOnlySpan<byte> frame);

    /// <summary>Starts the reader: each frame from Linux is passed to <paramref name="deliver"/> on
    /// the loop; a read error calls <paramref name="failed"/> on the loop; frames dropped because the
    /// loop fell behind are reported to <paramref name="overflowed"/>.</summary>
    public void Start(RealTimeDriver driver, FrameHandler deliver, Action failed, Action<int> overflowed)
    {
        if (_reader != null) throw new InvalidOperationException($"TAP device {Name} is already started");
        if (_fd < 0) throw new ObjectDisposedException(nameof(TapDevice));
        _reader = new Thread(() => ReadLoop(driver, deliver, failed, overflowed)) { IsBackground = true, Name = "tap-" + Name };
        _reader.Start();
    }

    /// <summary>Writes one frame to Linux; false when the device is closed or the write failed.</summary>
    public bool Write(Packet frame)
    {
        int fd = _fd;
        if (fd < 0 || frame.Length == 0) return false;
        return WriteRaw(fd, ref frame.Buffer[frame.Offset], (nuint)frame.Length) == frame.Length;
    }

    private void ReadLoop(RealTimeDriver driver, FrameHandler deliver, Action failed, Action<int> overflowed)
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
                driver.Invoke(failed);
                return;
            }
            if (ready == 0 || _stop) continue;
            var batch = new List<(byte[] Frame, int Length)>();
            bool broken = false;
            while (batch.Count < BatchMax && !_stop)
            {
                long n = ReadRaw(_fd, ref buffer[0], (nuint)buffer.Length);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    broken = errno != EAGAIN;
                    break;
                }
                if (n == 0) break;
                if (Volatile.Read(ref _pending) >= MaxPending)
                {
                    Interlocked.Increment(ref _overflow);
                    continue;
                }
                Interlocked.Increment(ref _pending);
                // One copy per frame: the reader's buffer is reused at once, and the packet pool
                // belongs to the loop, so the frame travels in a pooled array of its own.
                var frame = ArrayPool<byte>.Shared.Rent((int)n);
                buffer.AsSpan(0, (int)n).CopyTo(frame);
                batch.Add((frame, (int)n));
            }
            if (batch.Count > 0) driver.Invoke(() => DeliverBatch(batch, deliver, overflowed));
            if (broken)
            {
                driver.Invoke(failed);
                return;
            }
        }
    }

    /// <summary>On the loop: hands a batch of frames over in order and gives their arrays back.</summary>
    private void DeliverBatch(List<(byte[] Frame, int Length)> batch, FrameHandler deliver, Action<int> overflowed)
    {
        Interlocked.Add(ref _pending, -batch.Count);
        int lost = Interlocked.Exchange(ref _overflow, 0);
        if (lost > 0) overflowed(lost);
        foreach (var (frame, length) in batch)
        {
            try { deliver(frame.AsSpan(0, length)); }
            finally { ArrayPool<byte>.Shared.Return(frame); }
        }
    }

    /// <summary>Stops the reader and closes the device; Linux removes the interface unless it was
    /// made persistent.</summary>
    public void Dispose()
    {
        _stop = true;
        if (_reader != null && Thread.CurrentThread != _reader) _reader.Join(TimeSpan.FromSeconds(2));
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Close(fd);
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
}
