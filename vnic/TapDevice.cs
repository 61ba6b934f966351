using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// A Linux TAP device opened through /dev/net/tun with IFF_TAP | IFF_NO_PI, so each read or write is
/// exactly one Ethernet frame with no packet-information header. Two users: TapNic (a physical NIC's
/// far side) and TapClient (an LX zone's interface, a MAC client of its VNIC).
///
/// Offloads (issue 17). Opened with offload, the device also has IFF_VNET_HDR and TUNSETOFFLOAD
/// with TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6: every read and write then starts with a struct
/// virtio_net_hdr (kernel/Wire/VirtioNet.cs), and Linux may hand us TCP segments of up to 64 KiB
/// with their checksum left to us, as it would to a NIC with TSO and checksum offload. Linux then
/// neither segments nor checksums what its sockets send here, and one read carries what took up to
/// 45. The reader thread hands a GSO frame to the loop whole, its TCP checksum left pending (rule 6),
/// marked with its MSS (Packet.LsoMss: a large receive, as a NIC with LRO would): the MAC
/// layer delivers it whole to a local IP stack and cuts it into MTU frames (TcpSegmentation) for
/// anything else on the path (MacLayer.cs rule 9), so wires and guests only ever carry frames a
/// wire could. A GSO frame too large for a large buffer (PacketPool.LsoSize) is cut by the reader. Writes towards Linux carry a header too: NEEDS_CSUM with the offsets when the frame's
/// TCP checksum is still pending (Packet.ChecksumPending), so Linux does not verify what never left
/// the machine, and no flags otherwise. A large-send frame (Packet.LsoMss, MacLayer.cs rule 9: a
/// zone's TCP segment of up to 64 KiB whose route leaves by this TAP) is written whole with a GSO
/// header (VirtioNetHeader.TryCreateGso), so Linux gets in one write what took 45, and its own
/// stack takes the segment whole without cutting it (a TAP's GSO frame is received as GRO would
/// have merged it).
///
/// Threads
///   reader    one background thread polls the (non-blocking) descriptor and, once it is readable,
///             reads every frame waiting (up to BatchMax) into its own buffer, copying each small
///             one into its batch's arena and handing a large one the buffer itself (rule 7); a
///             batch goes to the kernel loop with one RealTimeDriver.Invoke, and takes more frames
///             until the loop claims it, which delivers the frames in order and gives the batch
///             and the large buffers back (rule 8). The reader never touches kernel state (Kernel.cs
///             rule 2). Batching keeps the loop's wake-ups and the poll calls per frame low when
///             Linux sends fast.
///             Each time it wakes it also asks whether the Linux end is administratively up
///             (TapDevice.Link.cs) and tells the loop of a change, after the frames read before it.
///             The loop reads too, under the same lock, when a pass that did work is over (rule 9).
///   loop      Send runs on the loop and queues a frame; the queue is written with write(2) when the
///             pass is over (rule 10): a TAP write does not block, it either queues the frame in the
///             Linux stack or fails.
///
/// Rules
///   1. Open either returns a working device or a message naming what is missing (the device, the
///      privilege, the name), with nothing left open.
///   2. A failed write returns false for the caller to count; a read error stops the reader and is
///      reported to the loop once, never an exception on either thread.
///   3. Dispose stops the reader (it polls with a short timeout so it notices) and takes the read
///      lock (rule 9) before closing the descriptor, so the descriptor number is never reused under
///      a live read.
///   4. At most MaxPending frames wait for the loop: when Linux sends faster than the loop takes
///      frames, the reader drops them (a full receive ring) and the loop is told how many with the
///      next frame it gets, so memory stays bounded and every drop is counted.
///   5. A frame whose virtio_net_hdr cannot be honoured (a GSO type we did not offer, a GSO frame
///      that is not whole Ethernet/IP/TCP, checksum offsets outside the frame) is dropped and
///      counted as malformed, as Linux's virtio_net_hdr_to_skb refuses it.
///   6. Checksums are trusted only where the header says Linux left them to us. A GSO frame with
///      NEEDS_CSUM whose csum_start is its TCP header and csum_offset TCP's checksum field is handed
///      over with its checksum still pending (Packet.ChecksumPending, MacLayer.cs rule 7): it came
///      from a stack of this machine and crossed no wire, so a local stack takes it unverified, as it
///      takes its neighbours' frames, and the MAC layer fills it in (or Linux does, through another
///      TAP's NEEDS_CSUM) wherever it leaves. This spares two passes over 64 KiB per frame (the
///      reader's fill, the stack's verify). Any other NEEDS_CSUM frame is filled in on the reader,
///      and a frame without the flag (DATA_VALID or none) is passed as it is, to be verified.
///   7. A large frame (over CopyMax bytes) is not copied on the reader: the read buffer itself
///      goes to the loop and the reader takes another, so a 64 KiB frame is copied once on its way
///      to a packet instead of twice. Smaller frames (ACKs, MTU frames) are copied into their batch's
///      arena, so the large buffers are only ever held by large frames.
///   8. The hand-off allocates nothing in steady state (ARCHITECTURE.md, "hot paths"): a batch is
///      an object the loop gives back for the reader to fill again, with its arena, its frame slots
///      and the loop's work item (a delegate made once), and a large buffer likewise. The reader
///      makes one only when none has come back (Linux sent faster than the loop took frames), keeps
///      at most FreeMax of each, and counts what it allocates (ReaderAllocatedBytes, BatchesMade,
///      BuffersMade). It was a List, a closure and arrays from ArrayPool per batch; the pool's
///      arrays were rented on the reader and returned on the loop, a pattern its per-thread caches
///      do not serve. A handed batch keeps taking frames until the loop claims it (a CAS on its
///      published count), so a busy loop finds in one batch all that came meanwhile, rather than a
///      batch per wake-up of the reader, each with its own arena.
///   9. The loop reads as NAPI polls: when a pass that did work is over and the loop is about to
///      sleep (RealTimeDriver.AddIdlePoll), it reads what is waiting into the current batch and
///      hands it to itself, as the reader would, holding the read lock the reader holds while it
///      reads, so frames keep Linux's order (a batch handed earlier is ahead of it in the loop's
///      queue). Linux answers a window update or an ACK in the write that carries it (its TCP
///      sends the next segments there and then), so the frames are often waiting when the pass
///      ends, and then they reach the zone without the reader's wake-up and the loop's after it:
///      with iperf3 into a joyent zone about a third of the frames came this way (LoopFrames), where
///      a frame had waited 140-280 us on average from the reader's read to its delivery, the loop's
///      wake-up alone 80-280 us (timestamps along the path, load 3-24 on this 2-core machine). If
///      the reader holds the lock, the loop leaves it to it.
///      Only a device the pass wrote to or delivered from is read, so idle TAPs cost a pass nothing.
///  10. Frames towards Linux are queued (Send) and written when the pass is over (with rule 9's
///      poll, before its read) or when SendMax are queued, in order, each once; a pure ACK that a
///      later one of the same flow in the queue supersedes is not written (TapDevice.Send.cs).
///      A failed write is counted (WriteErrors and the callback given to Start); frames still queued
///      when the device closes are freed on the loop and counted the same way.
/// </summary>
public sealed partial class TapDevice : IDisposable
{
    private const int O_RDWR = 2;
    private const int O_NONBLOCK = 0x800;
    private const uint TUNSETIFF = 0x400454ca;
    private const short IFF_TAP = 0x0002;
    private const short IFF_NO_PI = 0x1000;
    private const short IFF_VNET_HDR = 0x4000;
    private const uint TUNSETOFFLOAD = 0x400454d0;
    private const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04;
    private const short POLLIN = 0x0001;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    // A TSO frame's IP packet may be 64 KiB; with Ethernet, a tag and the virtio_net_hdr it is more.
    // A read into a smaller buffer would be cut short and the frame lost (it was: 64 KiB + 10 here
    // took iperf3 into the zone from 720 to 250 Mbit/s through retransmissions).
    private const int MaxFrame = 128 * 1024;
    /// <summary>The payload of the segments cut from a GSO frame when Linux gives no size: Ethernet's.</summary>
    private const int DefaultMss = 1448;
    /// <summary>Frames handed to the loop and not yet taken (rule 4): a NIC receive ring's size.</summary>
    private const int MaxPending = 4096;
    /// <summary>Frames read in one go before they are handed to the loop.</summary>
    private const int BatchMax = 64;
    /// <summary>Frames up to this many bytes are copied out of the read buffer; larger ones take it (rule 7).</summary>
    internal const int CopyMax = 16 * 1024;
    /// <summary>How long the reader waits in poll before it checks for a stop: bounds Dispose's wait.</summary>
    private const int PollMs = 100;
    /// <summary>A batch's arena for small frames: four of the largest (CopyMax), some 43 MTU frames.</summary>
    private const int ArenaSize = 4 * CopyMax;
    /// <summary>Batches and large buffers kept for reuse (rule 8); a burst's extra ones go to the collector.</summary>
    private const int FreeMax = 32;

    private int _fd;
    private Thread? _reader;
    /// <summary>Held while frames are read and added to a batch, by the reader or the loop (rule 9):
    /// one reader at a time keeps the frames in Linux's order.</summary>
    private readonly object _readLock = new();
    /// <summary>Under _readLock: the batch being filled (handed or not) and the read buffer (rule 7).</summary>
    private Batch? _batch;
    private byte[] _buffer = null!;
    private long _loopFrames;
    /// <summary>On the loop: whether this pass queued a frame for Linux or delivered one from it (rule 9).</summary>
    private bool _activeInPass;
    private RealTimeDriver? _driver;
    private Action? _poll;
    private volatile bool _stop;
    private int _pending, _overflow, _malformed;
    private long _segmented, _whole, _pendingChecksums;
    private FrameHandler? _deliver;
    private Action<int>? _overflowed, _malformedTo;
    private readonly ConcurrentQueue<Batch> _freeBatches = new();
    private readonly ConcurrentQueue<byte[]> _freeBuffers = new();
    private int _freeBatchCount, _freeBufferCount;
    private long _batches, _batchesMade, _buffersMade, _readerAllocated;

    /// <summary>Batches the reader has handed to the loop (any thread).</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Frames the loop read itself before it slept (rule 9; any thread).</summary>
    public long LoopFrames => Interlocked.Read(ref _loopFrames);

    /// <summary>Batch objects the reader had to make because none had come back (rule 8; any thread):
    /// it stops growing once the reader and the loop are in step.</summary>
    public long BatchesMade => Interlocked.Read(ref _batchesMade);

    /// <summary>Large read buffers made because none had come back (rule 8; any thread).</summary>
    public long BuffersMade => Interlocked.Read(ref _buffersMade);

    /// <summary>Bytes the reader thread allocated while reading and handing over frames (rule 8; any
    /// thread): the batches and large buffers it had to make, and nothing else.</summary>
    public long ReaderAllocatedBytes => Interlocked.Read(ref _readerAllocated);

    /// <summary>GSO frames from Linux that the reader cut into MTU-sized frames (any thread): those too
    /// large for a large buffer.</summary>
    public long SegmentedFrames => Interlocked.Read(ref _segmented);

    /// <summary>GSO frames from Linux handed to the loop whole (large receive; any thread).</summary>
    public long WholeFrames => Interlocked.Read(ref _whole);

    /// <summary>Frames from Linux handed to the loop with their TCP checksum still pending (rule 6;
    /// any thread).</summary>
    public long PendingChecksumFrames => Interlocked.Read(ref _pendingChecksums);

    private TapDevice(int fd, string name, bool offload)
    {
        _fd = fd;
        Name = name;
        Offload = offload;
    }

    /// <summary>The Linux interface name the device was created with.</summary>
    public string Name { get; }

    /// <summary>Whether frames carry a virtio_net_hdr and Linux may send TSO/GSO frames and leave
    /// checksums to us (see the theory statement).</summary>
    public bool Offload { get; }

    /// <summary>Opens (creating if needed) the TAP device <paramref name="name"/>, with the offloads
    /// unless <paramref name="offload"/> is false; on failure returns null and says what is missing
    /// (rule 1).</summary>
    public static TapDevice? TryOpen(string name, out string? error, bool offload = true)
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
        BitConverter.TryWriteBytes(ifreq.AsSpan(16), (short)(IFF_TAP | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0)));
        if (Ioctl(fd, TUNSETIFF, ifreq) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Close(fd);
            error = errno == 1
                ? $"cannot create TAP device '{name}': {Marshal.GetPInvokeErrorMessage(errno)} (TAP devices need root or CAP_NET_ADMIN)"
                : $"cannot create TAP device '{name}': {Marshal.GetPInvokeErrorMessage(errno)}";
            return null;
        }
        if (offload && IoctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Close(fd);
            error = $"cannot enable offloads on TAP device '{name}': {Marshal.GetPInvokeErrorMessage(errno)}";
            return null;
        }
        return new TapDevice(fd, name, offload);
    }

    /// <summary>Called on the loop with one frame from Linux; the span is valid only during the call.
    /// <paramref name="gsoSize"/> is 0, or the MSS of a GSO frame from Linux handed over whole (a large
    /// receive: the MAC layer cuts it where it must, MacLayer.cs rule 9). <paramref name="pendingChecksum"/>
    /// is 0, or where the frame's TCP header starts when its checksum was left to us (rule 6): the
    /// field holds the pseudo-header sum, for Packet.SetChecksumPending.</summary>
    public delegate void FrameHandler(ReadOnlySpan<byte> frame, ushort gsoSize, int pendingChecksum);

    /// <summary>Starts the reader: each frame from Linux is passed to <paramref name="deliver"/> on
    /// the loop; a read error calls <paramref name="failed"/> on the loop; frames dropped because the
    /// loop fell behind are reported to <paramref name="overflowed"/>.</summary>
    public void Start(RealTimeDriver driver, FrameHandler deliver, Action failed, Action<int> overflowed)
        => Start(driver, deliver, failed, overflowed, overflowed);

    /// <summary>As above; frames whose virtio_net_hdr cannot be honoured (rule 5) are reported to
    /// <paramref name="malformed"/>.</summary>
    public void Start(RealTimeDriver driver, FrameHandler deliver, Action failed, Action<int> overflowed, Action<int> malformed)
        => Start(driver, deliver, failed, overflowed, malformed, null);

    /// <summary>As above; when the Linux end goes down or up (TapDevice.Link.cs), or the device
    /// breaks (down), <paramref name="carrier"/> is called on the loop with the new state. The state
    /// before the first call is up.</summary>
    public void Start(RealTimeDriver driver, FrameHandler deliver, Action failed, Action<int> overflowed, Action<int> malformed,
        Action<bool>? carrier, Action<int>? writeFailed = null)
    {
        if (_reader != null) throw new InvalidOperationException($"TAP device {Name} is already started");
        if (_fd < 0) throw new ObjectDisposedException(nameof(TapDevice));
        _writeFailed = writeFailed;
        _deliver = deliver;
        _overflowed = overflowed;
        _malformedTo = malformed;
        _buffer = TakeBuffer();
        _driver = driver;
        _poll = () => PollFromLoop(driver);
        driver.AddIdlePoll(_poll);
        _reader = new Thread(() => ReadLoop(driver, failed, carrier)) { IsBackground = true, Name = "tap-" + Name };
        _reader.Start();
    }

    /// <summary>Writes one frame to Linux; false when the device is closed or the write failed. With
    /// offload the frame's virtio_net_hdr goes into its headroom in front of it.</summary>
    private bool Write(Packet frame)
    {
        int fd = _fd;
        if (fd < 0 || frame.Length == 0) return false;
        if (frame.LsoMss != 0)
        {
            // A large-send frame (MacLayer.cs rule 9): one GSO write, Linux cuts it (or its stack
            // takes it whole). Only a device with offloads is ever given one (TapNic.OffloadsSegmentation).
            if (!Offload || !VirtioNetHeader.TryCreateGso(frame.Data, frame.LsoMss, out var gso)) return false;
            if (!frame.TryPrepend(VirtioNetHeader.Length)) return false;
            gso.TryEmit(frame.Data);
        }
        else if (Offload)
        {
            var header = new VirtioNetHeader();
            if (frame.TryGetPendingChecksum(out int start, out int field))
            {
                header.Flags = VirtioNetHeader.NeedsChecksum;
                header.ChecksumStart = (ushort)start;
                header.ChecksumOffset = (ushort)(field - start);
            }
            else
            {
                frame.FinishChecksum(); // pending in a form the header cannot describe (or none)
            }
            if (!frame.TryPrepend(VirtioNetHeader.Length)) return false;
            header.TryEmit(frame.Data);
        }
        return WriteRaw(fd, ref frame.Buffer[frame.Offset], (nuint)frame.Length) == frame.Length;
    }

    private void ReadLoop(RealTimeDriver driver, Action failed, Action<bool>? carrier)
    {
        using var watch = carrier != null ? new LinkWatch(_fd) : null;
        bool up = true;
        try
        {
            ReadFrames(driver, failed, watch, carrier, ref up);
        }
        finally
        {
            lock (_readLock)
            {
                GiveBuffer(_buffer);
                _buffer = null!;
            }
            // A device that broke (or was deleted under us) has no link; a stop asked by Dispose is not
            // a carrier change.
            if (carrier != null && up && !_stop) driver.Invoke(() => carrier(false));
        }
    }

    private void ReadFrames(RealTimeDriver driver, Action failed, LinkWatch? watch, Action<bool>? carrier, ref bool up)
    {
        var pfd = new PollFd { Fd = _fd, Events = POLLIN };
        bool seenUp = false;
        while (!_stop)
        {
            // The Linux end's state, once per wake-up (at least every PollMs): TapDevice.Link.cs. A
            // down is followed only once the interface has been seen up: Linux makes a TAP down, and
            // one moved to another namespace before it was brought up is never seen up here.
            if (watch?.IsUp() is { } now)
            {
                seenUp |= now;
                if (seenUp && now != up)
                {
                    up = now;
                    driver.Invoke(() => carrier!(now));
                }
            }
            pfd.Revents = 0;
            int ready = Poll(ref pfd, 1, PollMs);
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR) continue;
                driver.Invoke(failed);
                return;
            }
            if (ready == 0 || _stop) continue;
            bool broken;
            lock (_readLock) broken = ReadWaiting(driver);
            if (broken)
            {
                driver.Invoke(failed);
                return;
            }
        }
    }

    /// <summary>On the loop, before it sleeps (RealTimeDriver.AddIdlePoll): writes what the pass queued
    /// for Linux (rule 10), then reads what Linux sent meanwhile, as the reader would, unless the
    /// reader is reading now (rule 9). A read error is left to the reader, which finds it at its
    /// next poll.</summary>
    private void PollFromLoop(RealTimeDriver driver)
    {
        // Only a device this pass wrote to or delivered from: Linux's answer comes to those, and a
        // host with many idle TAPs pays no read for each of them per pass.
        if (!_activeInPass) return;
        _activeInPass = false;
        if (_queued > 0) Flush();
        if (_stop || !Monitor.TryEnter(_readLock)) return;
        try
        {
            if (!_stop && _buffer != null) ReadWaiting(driver);
        }
        finally
        {
            Monitor.Exit(_readLock);
        }
    }

    /// <summary>Under the read lock, on the reader or the loop: reads every frame waiting (up to
    /// BatchMax) into the current batch, handing it to the loop if it was not yet; true when the
    /// device broke.</summary>
    private bool ReadWaiting(RealTimeDriver driver)
    {
        // Rule 8: what this wake-up allocates is counted (ReaderAllocatedBytes); in steady state nothing.
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var batch = _batch ??= TakeBatch();
        bool onLoop = driver.IsLoopThread;
        bool broken = false;
        for (int reads = 0; reads < BatchMax && !_stop; reads++)
        {
            long n = ReadRaw(_fd, ref _buffer[0], MaxFrame);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                broken = errno != EAGAIN;
                break;
            }
            if (n == 0) break;
            if (onLoop) _loopFrames++;
            if (Offload) TakeOffloaded(driver, ref _buffer, (int)n, ref batch);
            else Take(driver, ref _buffer, 0, (int)n, ref batch);
        }
        // A fresh batch goes to the loop now; one already handed over took its frames as they came.
        if (!batch.Handed && batch.Count > 0) Hand(driver, batch);
        _batch = batch;
        Interlocked.Add(ref _readerAllocated, GC.GetAllocatedBytesForCurrentThread() - allocated);
        return broken;
    }

    /// <summary>One frame on its way to the loop: its bytes (in its batch's arena, or a large buffer
    /// of its own, rule 7), its GSO size and where its pending TCP checksum's segment starts (0 for none).</summary>
    private readonly record struct Frame(byte[] Array, int Offset, int Length, ushort Gso, int PendingChecksum);

    /// <summary>Frames on their way to the loop with one Invoke (rule 8). Small frames are copied
    /// into the arena one after another; a large frame brings the read buffer it was read into. Once
    /// handed over, the batch still takes the reader's frames until the loop claims it (Published
    /// swapped for Claimed), so a loop that is busy finds all that came meanwhile in one batch. Reused:
    /// the loop gives it back once it has delivered it, and the reader empties it when it takes it.</summary>
    private sealed class Batch
    {
        public const int Claimed = -1;
        public readonly byte[] Arena = GC.AllocateUninitializedArray<byte>(ArenaSize);
        public readonly Frame[] Frames = new Frame[BatchMax];
        /// <summary>The loop's work item, made once: handing the batch over allocates nothing.</summary>
        public readonly Action Deliver;
        /// <summary>The reader's: frames written, arena bytes used, whether the loop has been given it.</summary>
        public int Count, ArenaUsed;
        public bool Handed;
        /// <summary>Shared: the frames the loop may take, or Claimed once it has taken them.</summary>
        public int Published;

        public Batch(TapDevice device) { Deliver = () => device.DeliverBatch(this); }

        /// <summary>Whether a frame of <paramref name="length"/> bytes fits: a slot, and for a small
        /// frame (<paramref name="copied"/>) room in the arena.</summary>
        public bool HasRoom(int length, bool copied)
            => Count < Frames.Length && (!copied || ArenaUsed + length <= Arena.Length);

        /// <summary>On the reader: adds <paramref name="frame"/> (its bytes already in place); false
        /// when the loop claimed the batch first, and the frame is not in it.</summary>
        public bool TryAdd(in Frame frame)
        {
            Frames[Count] = frame;
            if (Handed && Interlocked.CompareExchange(ref Published, Count + 1, Count) != Count) return false;
            Count++;
            return true;
        }
    }

    /// <summary>On the reader: an empty batch, reused when the loop has given one back.</summary>
    private Batch TakeBatch()
    {
        if (_freeBatches.TryDequeue(out var b))
        {
            Interlocked.Decrement(ref _freeBatchCount);
            b.Count = b.ArenaUsed = b.Published = 0;
            b.Handed = false;
            return b;
        }
        Interlocked.Increment(ref _batchesMade);
        return new Batch(this);
    }

    /// <summary>On the reader: hands a batch to the loop (one Invoke of its cached work item).</summary>
    private void Hand(RealTimeDriver driver, Batch batch)
    {
        Interlocked.Increment(ref _batches);
        batch.Handed = true;
        Volatile.Write(ref batch.Published, batch.Count);
        driver.Invoke(batch.Deliver);
    }

    /// <summary>On the reader: <paramref name="batch"/>, or when it has no room for a frame of
    /// <paramref name="length"/> bytes, a fresh one (the full one handed over if it was not yet:
    /// a batch is cut short, never a frame).</summary>
    private Batch RoomFor(RealTimeDriver driver, ref Batch batch, int length, bool copied)
    {
        if (!batch.HasRoom(length, copied))
        {
            if (!batch.Handed) Hand(driver, batch);
            batch = TakeBatch();
        }
        return batch;
    }

    /// <summary>A large read buffer: one the loop gave back, or a new one.</summary>
    private byte[] TakeBuffer()
    {
        if (_freeBuffers.TryDequeue(out var b))
        {
            Interlocked.Decrement(ref _freeBufferCount);
            return b;
        }
        Interlocked.Increment(ref _buffersMade);
        return GC.AllocateUninitializedArray<byte>(MaxFrame);
    }

    /// <summary>Keeps a large buffer for the reader's next one, up to FreeMax of them (what a burst
    /// needed beyond that goes to the collector).</summary>
    private void GiveBuffer(byte[] buffer)
    {
        if (Interlocked.Increment(ref _freeBufferCount) > FreeMax)
        {
            Interlocked.Decrement(ref _freeBufferCount);
            return;
        }
        _freeBuffers.Enqueue(buffer);
    }

    /// <summary>On the reader: adds the frame at <paramref name="offset"/> in the read buffer to the
    /// batch for the loop, or counts it lost (rule 4). The packet pool belongs to the loop, so the
    /// frame travels in the batch: a small frame copied into its arena, a large one in the read
    /// buffer itself, the reader taking another for its next read (rule 7).</summary>
    private void Take(RealTimeDriver driver, ref byte[] buffer, int offset, int length, ref Batch batch, ushort gso = 0, int pendingChecksum = 0)
    {
        if (!Reserve()) return;
        bool copied = length <= CopyMax;
        while (true)
        {
            var b = RoomFor(driver, ref batch, length, copied);
            if (!copied)
            {
                if (b.TryAdd(new Frame(buffer, offset, length, gso, pendingChecksum)))
                {
                    buffer = TakeBuffer();
                    return;
                }
            }
            else
            {
                buffer.AsSpan(offset, length).CopyTo(b.Arena.AsSpan(b.ArenaUsed));
                if (b.TryAdd(new Frame(b.Arena, b.ArenaUsed, length, gso, pendingChecksum)))
                {
                    b.ArenaUsed += length;
                    return;
                }
            }
            batch = TakeBatch(); // the loop claimed it meanwhile: a fresh batch (that cannot refuse)
        }
    }

    private bool Reserve()
    {
        if (Volatile.Read(ref _pending) >= MaxPending)
        {
            Interlocked.Increment(ref _overflow);
            return false;
        }
        Interlocked.Increment(ref _pending);
        return true;
    }

    /// <summary>On the reader: does what a NIC with TSO, LRO and checksum offload does with one frame
    /// read with its virtio_net_hdr (theory statement): a GSO frame goes on whole with its TCP checksum
    /// pending (rule 6) or filled in, or, too large for a large buffer, as MTU-sized frames with their
    /// checksums; any other NEEDS_CSUM frame gets its checksum; anything else is malformed (rule 5).</summary>
    private void TakeOffloaded(RealTimeDriver driver, ref byte[] buffer, int length, ref Batch batch)
    {
        var read = buffer.AsSpan(0, length);
        if (!VirtioNetHeader.TryParse(read, out var header))
        {
            Interlocked.Increment(ref _malformed);
            return;
        }
        var frame = read[VirtioNetHeader.Length..];
        byte gso = header.Gso;
        if (gso == VirtioGso.None)
        {
            if (!header.TryFinishChecksum(frame))
            {
                Interlocked.Increment(ref _malformed);
                return;
            }
            Take(driver, ref buffer, VirtioNetHeader.Length, frame.Length, ref batch);
            return;
        }
        int mss = header.GsoSize != 0 ? header.GsoSize : DefaultMss;
        if (gso is not (VirtioGso.TcpV4 or VirtioGso.TcpV6) || !TcpSegmentation.TryCreate(frame, mss, out var segments))
        {
            Interlocked.Increment(ref _malformed);
            return;
        }
        // Rule 6: Linux left exactly the TCP checksum to us, so it stays pending.
        bool pending = header.NeedsCsum && header.ChecksumStart == segments.TransportOffset
            && header.ChecksumOffset == TcpView.ChecksumOffset;
        if (frame.Length <= PacketPool.LsoSize && (pending || header.TryFinishChecksum(frame)))
        {
            // Large receive: the frame goes to the loop whole, its checksum pending or filled in as
            // one segment's, and the MAC layer cuts it only where something needs MTU frames
            // (MacLayer.cs rule 9).
            Interlocked.Increment(ref _whole);
            if (pending) Interlocked.Increment(ref _pendingChecksums);
            Take(driver, ref buffer, VirtioNetHeader.Length, frame.Length, ref batch, (ushort)mss, pending ? segments.TransportOffset : 0);
            return;
        }
        Interlocked.Increment(ref _segmented);
        for (int i = 0; i < segments.Count; i++)
        {
            if (!Reserve()) continue;
            int size = segments.SegmentLength(i);
            bool copied = size <= CopyMax;
            // A segment of a huge MSS is a large frame with a buffer of its own (rule 7).
            byte[]? own = copied ? null : TakeBuffer();
            while (true)
            {
                var b = RoomFor(driver, ref batch, size, copied);
                if (own != null)
                {
                    if (b.TryAdd(new Frame(own, 0, segments.Write(i, own), 0, 0))) break;
                }
                else
                {
                    int written = segments.Write(i, b.Arena.AsSpan(b.ArenaUsed));
                    if (b.TryAdd(new Frame(b.Arena, b.ArenaUsed, written, 0, 0)))
                    {
                        b.ArenaUsed += written;
                        break;
                    }
                }
                batch = TakeBatch();
            }
        }
    }

    /// <summary>On the loop: claims a batch (the reader adds no more to it), hands its frames over
    /// in order, gives their large buffers back and then the batch itself, for the reader to reuse.</summary>
    private void DeliverBatch(Batch batch)
    {
        int count = Interlocked.Exchange(ref batch.Published, Batch.Claimed);
        _activeInPass = true;
        Interlocked.Add(ref _pending, -count);
        int lost = Interlocked.Exchange(ref _overflow, 0);
        if (lost > 0) _overflowed!(lost);
        int bad = Interlocked.Exchange(ref _malformed, 0);
        if (bad > 0) _malformedTo!(bad);
        var deliver = _deliver!;
        try
        {
            for (int i = 0; i < count; i++)
            {
                ref var f = ref batch.Frames[i];
                try { deliver(f.Array.AsSpan(f.Offset, f.Length), f.Gso, f.PendingChecksum); }
                finally
                {
                    if (f.Array != batch.Arena) GiveBuffer(f.Array);
                    f = default;
                }
            }
        }
        finally
        {
            if (Interlocked.Increment(ref _freeBatchCount) <= FreeMax) _freeBatches.Enqueue(batch);
            else Interlocked.Decrement(ref _freeBatchCount);
        }
    }

    /// <summary>Stops the reader and closes the device; Linux removes the interface unless it was
    /// made persistent.</summary>
    public void Dispose()
    {
        _stop = true;
        if (_poll != null)
        {
            _driver!.RemoveIdlePoll(_poll);
            // Frames still queued for Linux (rule 10) belong to the loop's pool.
            if (_driver.IsLoopThread) DropQueued();
            else _driver.Invoke(DropQueued);
        }
        if (_reader != null && Thread.CurrentThread != _reader) _reader.Join(TimeSpan.FromSeconds(2));
        // Under the read lock: the loop may be reading (rule 9), and the number must not be reused under it.
        lock (_readLock)
        {
            int fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0) Close(fd);
        }
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

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlValue(int fd, nuint request, nuint value);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollFd fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, ref byte buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, ref byte buffer, nuint count);
}
