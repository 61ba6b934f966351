using System.Buffers.Binary;
using SmartOS.Kernel;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A virtio-blk device on virtio-mmio version 2 (virtio 1.x spec, sections 4.2 and 5.2; the
/// transport, shared with VirtioNet, is VirtioMmio.cs), one block device (kernel/BlockDevice.cs)
/// behind it: a volume when vmadm runs the VM. Split rings only, no indirect descriptors. One queue, the request
/// queue; features offered: VIRTIO_BLK_F_FLUSH and VIRTIO_F_VERSION_1. The config space holds the
/// capacity in 512-byte sectors (read live, so a disk grown while stopped shows its new size).
///
/// A request is a descriptor chain: the 16-byte header (type u32, reserved u32, sector u64) and, for
/// VIRTIO_BLK_T_OUT, the data, all device-readable; then, device-writable, the data for T_IN and
/// T_GET_ID and last the status byte (the last byte of the chain). Types served: T_IN (read), T_OUT
/// (write), T_FLUSH (commit: Flush on the block device, which for a volume commits the pool's txg)
/// and T_GET_ID (the serial, up to 20 bytes, NUL-padded). Data moves between the block device and
/// guest RAM in place, through spans of GuestMemory: no copy, no allocation per request.
///
/// Rules
///   1. Every ring entry is untrusted guest data (Vmm.cs rule 1). Two kinds of bad input:
///      - a broken ring (avail ring or descriptor table outside RAM, a head or next index past the
///        queue size, a chain that loops, an indirect descriptor): the device cannot tell where a
///        request ends, so it stops as VirtioNet stops: DEVICE_NEEDS_RESET, <see cref="Error"/> says
///        why, <see cref="RingErrors"/> counts it;
///      - a bad request in a sound chain (a data buffer outside RAM, a readable descriptor after a
///        writable one, a header shorter than 16 bytes, a length not a multiple of 512, a range past
///        the capacity, an unknown type): the request completes with VIRTIO_BLK_S_IOERR (or
///        VIRTIO_BLK_S_UNSUPP for an unknown type) in its status byte and a counter says which;
///        a chain without a writable last byte gets no status and counts in BadRequests.
///      No exception leaves the device, and the block device is not touched by a refused request.
///   2. Requests are served in ring order, at once, when the guest notifies (a write to
///      QueueNotify): the used ring holds the result before the guest's next instruction. Guest
///      time does not pass for I/O (the device has no latency model).
///   3. A write is durable only after a T_FLUSH that completed with S_OK (BlockDevice.cs rule 2); the
///      brand also flushes when the VM stops (HvmGuest.cs).
///   4. Once the VM stops the device is detached: it serves nothing more (Vmm.cs rule 6).
/// </summary>
public sealed class VirtioBlk : VirtioMmio
{
    public const int MaxQueueSize = 256;
    public const int SectorSize = 512;
    public const int HeaderLength = 16;
    public const int IdLength = 20;

    public const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8;
    public const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    private const ulong FeatureFlush = 1UL << 9;

    private readonly byte[] _serial = new byte[IdLength];
    // One chain at a time: its descriptors, gathered before the request is looked at.
    private readonly ulong[] _addr = new ulong[MaxQueueSize];
    private readonly uint[] _len = new uint[MaxQueueSize];
    private readonly bool[] _writable = new bool[MaxQueueSize];

    internal VirtioBlk(GuestMemory memory, ulong baseAddress, IBlockDevice device, string serial)
        : base(memory, baseAddress, queueCount: 1, MaxQueueSize)
    {
        Device = device;
        int n = Math.Min(IdLength, serial.Length);
        for (int i = 0; i < n; i++) _serial[i] = (byte)(serial[i] < 0x80 ? serial[i] : '?');
        Serial = serial[..n];
    }

    public IBlockDevice Device { get; }
    /// <summary>What T_GET_ID answers (at most 20 ASCII characters).</summary>
    public string Serial { get; }

    public long Reads { get; private set; }
    public long Writes { get; private set; }
    public long Flushes { get; private set; }
    public long BytesRead { get; private set; }
    public long BytesWritten { get; private set; }
    /// <summary>Requests for sectors past the capacity, or whose length is not whole sectors (S_IOERR).</summary>
    public long OutOfRange { get; private set; }
    /// <summary>Requests the block device failed (S_IOERR): the store below the disk.</summary>
    public long DeviceErrors { get; private set; }
    /// <summary>Requests of a type this device does not serve (S_UNSUPP).</summary>
    public long Unsupported { get; private set; }
    /// <summary>Requests in a sound chain that are malformed (rule 1): S_IOERR, or no status at all.</summary>
    public long BadRequests { get; private set; }

    /// <summary>The capacity in 512-byte sectors, as the config space shows it.</summary>
    public ulong Capacity => (ulong)Math.Max(0, Device.Size) / SectorSize;

    protected internal override uint DeviceId => 2; // block device
    protected internal override ulong DeviceFeatures => FeatureFlush | FeatureVersion1;

    /// <summary>Config space: capacity u64 (struct virtio_blk_config); the optional fields read as zero.</summary>
    protected internal override ulong ReadConfig(uint offset, int size)
    {
        ulong v = 0, capacity = Capacity;
        for (int i = 0; i < size; i++)
            if (offset + i < 8) v |= ((capacity >> (int)(8 * (offset + i))) & 0xFF) << (8 * i);
        return v;
    }

    protected internal override void Notify(uint queue)
    {
        if (queue == 0) ProcessRequests();
    }

    /// <summary>Reads the chain from head into _addr/_len/_writable; false (the device stopped) on a broken ring.</summary>
    private bool TryGather(VirtQueue q, ushort head, out int count)
    {
        count = 0;
        ushort index = head;
        for (; ; )
        {
            if (count >= q.Num) { Fail($"descriptor chain from {head} loops"); return false; }
            if (!TryReadDesc(q, index, out ulong addr, out uint len, out ushort flags, out ushort next)) return false;
            _addr[count] = addr;
            _len[count] = len;
            _writable[count] = (flags & DescWrite) != 0;
            count++;
            if ((flags & DescNext) == 0) return true;
            index = next;
        }
    }

    private void ProcessRequests()
    {
        var q = Queue(0);
        if (!Running || !q.Ready) return;
        while (TryNextAvail(q, out ushort head))
        {
            if (!TryGather(q, head, out int count)) return;
            uint written = Serve(count);
            if (!TryPutUsed(q, head, written)) return;
        }
    }

    /// <summary>Serves one gathered request; returns the bytes written into device-writable buffers
    /// (the used length), status byte included. A chain has at least one descriptor.</summary>
    private uint Serve(int count)
    {
        // The layout: readable descriptors, then writable ones, the last of which ends in the status byte.
        if (!_writable[count - 1] || _len[count - 1] == 0) return Bad();
        ulong statusAddress = _addr[count - 1] + _len[count - 1] - 1;
        if (!Memory.Contains(statusAddress, 1)) return Bad();
        int firstWritable = 0;
        while (!_writable[firstWritable]) firstWritable++;
        for (int i = firstWritable; i < count; i++)
            if (!_writable[i]) return Finish(statusAddress, StatusIoError, 1, bad: true);
        long readable = 0, writable = 0;
        for (int i = 0; i < count; i++)
        {
            // Every buffer must lie in RAM before anything moves (rule 1: a refused request touches nothing).
            if (!Memory.Contains(_addr[i], _len[i])) return Finish(statusAddress, StatusIoError, 1, bad: true);
            if (_writable[i]) writable += _len[i];
            else readable += _len[i];
        }
        Span<byte> header = stackalloc byte[HeaderLength];
        if (readable < HeaderLength || !TryCopyReadable(firstWritable, header)) return Finish(statusAddress, StatusIoError, 1, bad: true);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        long dataIn = writable - 1;     // device-writable bytes before the status byte
        switch (type)
        {
            case TypeIn:
                return Transfer(sector, firstWritable, count, dataIn, statusAddress, write: false);
            case TypeOut:
                return Transfer(sector, 0, firstWritable, readable - HeaderLength, statusAddress, write: true);
            case TypeFlush:
                Flushes++;
                return Finish(statusAddress, Device.Flush() == BlockStatus.Ok ? StatusOk : DeviceError(), 1);
            case TypeGetId:
                return GetId(firstWritable, count, dataIn, statusAddress);
            default:
                Unsupported++;
                return Finish(statusAddress, StatusUnsupported, 1);
        }
    }

    private uint Bad()
    {
        BadRequests++;
        return 0;
    }

    private byte DeviceError()
    {
        DeviceErrors++;
        return StatusIoError;
    }

    private uint Finish(ulong statusAddress, byte status, long used, bool bad = false)
    {
        if (bad) BadRequests++;
        Memory.TryGetSpan(statusAddress, 1, out var s);
        s[0] = status;
        Memory.NoteWritten(statusAddress, 1);
        return (uint)used;
    }

    /// <summary>Copies the first bytes of the readable descriptors [0, readableCount) into destination.</summary>
    private bool TryCopyReadable(int readableCount, Span<byte> destination)
    {
        int done = 0;
        long skip = 0;
        for (int i = 0; i < readableCount && done < destination.Length; i++)
        {
            long len = _len[i];
            if (skip >= len) { skip -= len; continue; }
            int chunk = (int)Math.Min(len - skip, destination.Length - done);
            if (!Memory.TryRead(_addr[i] + (ulong)skip, destination.Slice(done, chunk))) return false;
            done += chunk;
            skip = 0;
        }
        return done == destination.Length;
    }

    /// <summary>T_IN or T_OUT: the data segments of descriptors [from, to) (less the header of an OUT
    /// and the status byte of an IN) go to or from the device at sector * 512, segment by segment.</summary>
    private uint Transfer(ulong sector, int from, int to, long length, ulong statusAddress, bool write)
    {
        long size = Device.Size;
        if (length % SectorSize != 0 || sector > (ulong)(size / SectorSize) || length > size - (long)sector * SectorSize)
        {
            OutOfRange++;
            return Finish(statusAddress, StatusIoError, 1);
        }
        long offset = (long)sector * SectorSize, left = length, skip = write ? HeaderLength : 0;
        for (int i = from; i < to && left > 0; i++)
        {
            long len = _len[i];
            if (skip >= len) { skip -= len; continue; }
            int chunk = (int)Math.Min(len - skip, left);
            ulong at = _addr[i] + (ulong)skip;
            skip = 0;
            Memory.TryGetSpan(at, chunk, out var span);
            BlockStatus result;
            if (write) result = Device.Write(offset, span);
            else
            {
                result = Device.Read(offset, span);
                Memory.NoteWritten(at, (ulong)chunk);
            }
            if (result != BlockStatus.Ok)
            {
                if (result == BlockStatus.OutOfRange) OutOfRange++;
                else DeviceErrors++;
                return Finish(statusAddress, StatusIoError, write ? 1 : 1 + (length - left));
            }
            offset += chunk;
            left -= chunk;
        }
        if (write) { Writes++; BytesWritten += length; }
        else { Reads++; BytesRead += length; }
        return Finish(statusAddress, StatusOk, write ? 1 : 1 + length);
    }

    /// <summary>T_GET_ID: the serial into the data-in buffer, NUL-padded to 20 bytes (or cut to the buffer).</summary>
    private uint GetId(int from, int to, long length, ulong statusAddress)
    {
        long left = Math.Min(length, IdLength);
        int at = 0;
        for (int i = from; i < to && left > 0; i++)
        {
            int chunk = (int)Math.Min(_len[i], left);
            Memory.TryWrite(_addr[i], _serial.AsSpan(at, chunk));
            Memory.NoteWritten(_addr[i], (ulong)chunk);
            at += chunk;
            left -= chunk;
        }
        return Finish(statusAddress, StatusOk, 1 + at);
    }
}
