using System.Buffers.Binary;
using SmartOS.Kernel;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A virtio-blk device on virtio-mmio version 2 (virtio 1.x spec, sections 4.2 and 5.2), one block
/// device (kernel/BlockDevice.cs) behind it: a volume when vmadm runs the VM. It follows VirtioNet's
/// shape (the same registers, split rings only, no indirect descriptors). One queue, the request
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
public sealed class VirtioBlk
{
    public const ulong RegionSize = 0x1000;
    public const int MaxQueueSize = 256;
    public const int SectorSize = 512;
    public const int HeaderLength = 16;
    public const int IdLength = 20;

    public const uint TypeIn = 0, TypeOut = 1, TypeFlush = 4, TypeGetId = 8;
    public const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    private const uint StatusDriverOk = 4, StatusNeedsReset = 0x40;
    private const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    private const ulong FeatureFlush = 1UL << 9, FeatureVersion1 = 1UL << 32;

    private readonly GuestMemory _memory;
    private readonly Queue _queue = new();
    private readonly byte[] _serial = new byte[IdLength];
    // One chain at a time: its descriptors, gathered before the request is looked at.
    private readonly ulong[] _addr = new ulong[MaxQueueSize];
    private readonly uint[] _len = new uint[MaxQueueSize];
    private readonly bool[] _writable = new bool[MaxQueueSize];
    private uint _status, _deviceFeatureSel, _driverFeatureSel, _queueSel, _interruptStatus, _generation;
    private ulong _driverFeatures;
    private bool _detached;

    private sealed class Queue
    {
        public uint Num = MaxQueueSize;
        public bool Ready;
        public ulong Desc, Avail, Used;
        public ushort LastAvail, UsedIdx;
    }

    internal VirtioBlk(GuestMemory memory, ulong baseAddress, IBlockDevice device, string serial)
    {
        _memory = memory;
        BaseAddress = baseAddress;
        Device = device;
        int n = Math.Min(IdLength, serial.Length);
        for (int i = 0; i < n; i++) _serial[i] = (byte)(serial[i] < 0x80 ? serial[i] : '?');
        Serial = serial[..n];
    }

    public ulong BaseAddress { get; }
    public IBlockDevice Device { get; }
    /// <summary>What T_GET_ID answers (at most 20 ASCII characters).</summary>
    public string Serial { get; }

    /// <summary>Why the device stopped (a broken ring, rule 1), or null while it works.</summary>
    public string? Error { get; private set; }
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
    /// <summary>Broken rings that stopped the device (rule 1).</summary>
    public long RingErrors { get; private set; }

    public bool Owns(ulong address) => address >= BaseAddress && address - BaseAddress < RegionSize;

    /// <summary>The capacity in 512-byte sectors, as the config space shows it.</summary>
    public ulong Capacity => (ulong)Math.Max(0, Device.Size) / SectorSize;

    public ulong Read(ulong address, int size)
    {
        uint off = (uint)(address - BaseAddress);
        if (off >= 0x100)
        {
            // Config space: capacity u64 (struct virtio_blk_config); the optional fields read as zero.
            uint at = off - 0x100;
            ulong v = 0, capacity = Capacity;
            for (int i = 0; i < size; i++)
                if (at + i < 8) v |= ((capacity >> (int)(8 * (at + i))) & 0xFF) << (8 * i);
            return v;
        }
        bool q = _queueSel == 0;
        return off switch
        {
            0x000 => 0x74726976,                    // "virt"
            0x004 => 2,                             // version 2 (modern)
            0x008 => 2,                             // device id: block device
            0x00C => 0x534D4F53,                    // vendor "SMOS"
            0x010 => _deviceFeatureSel == 0 ? (uint)FeatureFlush : _deviceFeatureSel == 1 ? (uint)(FeatureVersion1 >> 32) : 0u,
            0x034 => q ? (ulong)MaxQueueSize : 0,
            0x044 => q && _queue.Ready ? 1UL : 0,
            0x060 => _interruptStatus,
            0x070 => _status,
            0x0FC => _generation,
            _ => 0,
        };
    }

    public void Write(ulong address, int size, ulong value)
    {
        uint off = (uint)(address - BaseAddress);
        uint v = (uint)value;
        var q = _queueSel == 0 ? _queue : null;
        switch (off)
        {
            case 0x014: _deviceFeatureSel = v; break;
            case 0x020:
                if (_driverFeatureSel < 2) _driverFeatures = (_driverFeatures & ~(0xFFFFFFFFUL << (int)(32 * _driverFeatureSel))) | ((ulong)v << (int)(32 * _driverFeatureSel));
                break;
            case 0x024: _driverFeatureSel = v; break;
            case 0x030: _queueSel = v; break;
            case 0x038:
                if (q != null) q.Num = v;
                break;
            case 0x044:
                if (q != null) q.Ready = v == 1 && ValidQueueSize(q.Num);
                if (q != null && v == 1 && !q.Ready) Fail($"queue 0: size {q.Num} is not a power of two up to {MaxQueueSize}");
                break;
            case 0x050:
                if (v == 0) ProcessRequests();
                break;
            case 0x064: _interruptStatus &= ~v; break;
            case 0x070:
                if (v == 0) Reset();
                else _status = v | (_status & StatusNeedsReset);
                break;
            case 0x080: if (q != null) q.Desc = (q.Desc & ~0xFFFFFFFFUL) | v; break;
            case 0x084: if (q != null) q.Desc = (q.Desc & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
            case 0x090: if (q != null) q.Avail = (q.Avail & ~0xFFFFFFFFUL) | v; break;
            case 0x094: if (q != null) q.Avail = (q.Avail & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
            case 0x0A0: if (q != null) q.Used = (q.Used & ~0xFFFFFFFFUL) | v; break;
            case 0x0A4: if (q != null) q.Used = (q.Used & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
        }
    }

    private static bool ValidQueueSize(uint n) => n != 0 && n <= MaxQueueSize && (n & (n - 1)) == 0;

    private void Reset()
    {
        _status = 0;
        _driverFeatures = 0;
        _interruptStatus = 0;
        _queueSel = 0;
        _queue.Num = MaxQueueSize;
        _queue.Ready = false;
        _queue.Desc = _queue.Avail = _queue.Used = 0;
        _queue.LastAvail = _queue.UsedIdx = 0;
        Error = null;
        _generation++;
    }

    private bool Running => !_detached && Error == null && (_status & StatusDriverOk) != 0;

    /// <summary>Called when the VM stops (rule 4): guest memory may be freed next.</summary>
    internal void Detach() => _detached = true;

    private void Fail(string why)
    {
        Error ??= why;
        RingErrors++;
        _status |= StatusNeedsReset;
        _interruptStatus |= 2;
    }

    private bool TryNextAvail(out ushort head)
    {
        var q = _queue;
        head = 0;
        if (!_memory.TryReadUInt16(q.Avail + 2, out ushort availIdx)) { Fail($"avail ring at 0x{q.Avail:x} is outside guest memory"); return false; }
        if (availIdx == q.LastAvail) return false;
        if ((ushort)(availIdx - q.LastAvail) > q.Num) { Fail($"avail index {availIdx} runs more than the queue size ahead of {q.LastAvail}"); return false; }
        if (!_memory.TryReadUInt16(q.Avail + 4 + 2UL * (q.LastAvail % q.Num), out head)) { Fail("avail ring entry is outside guest memory"); return false; }
        if (head >= q.Num) { Fail($"descriptor index {head} is past the queue size {q.Num}"); return false; }
        q.LastAvail++;
        return true;
    }

    /// <summary>Reads the chain from head into _addr/_len/_writable; false (the device stopped) on a broken ring.</summary>
    private bool TryGather(ushort head, out int count)
    {
        var q = _queue;
        count = 0;
        ushort index = head;
        for (; ; )
        {
            if (count >= q.Num) { Fail($"descriptor chain from {head} loops"); return false; }
            ulong d = q.Desc + 16UL * index;
            if (!_memory.TryReadUInt64(d, out ulong addr) || !_memory.TryReadUInt32(d + 8, out uint len)
                || !_memory.TryReadUInt16(d + 12, out ushort flags) || !_memory.TryReadUInt16(d + 14, out ushort next))
            {
                Fail($"descriptor table at 0x{q.Desc:x} is outside guest memory");
                return false;
            }
            if ((flags & DescIndirect) != 0) { Fail("indirect descriptors were not negotiated"); return false; }
            _addr[count] = addr;
            _len[count] = len;
            _writable[count] = (flags & DescWrite) != 0;
            count++;
            if ((flags & DescNext) == 0) return true;
            if (next >= q.Num) { Fail($"descriptor {index} chains to {next}, past the queue size"); return false; }
            index = next;
        }
    }

    private bool TryPutUsed(ushort head, uint length)
    {
        var q = _queue;
        ulong slot = q.Used + 4 + 8UL * (q.UsedIdx % q.Num);
        q.UsedIdx++;
        if (!_memory.TryWriteUInt32(slot, head) || !_memory.TryWriteUInt32(slot + 4, length) || !_memory.TryWriteUInt16(q.Used + 2, q.UsedIdx))
        {
            Fail($"used ring at 0x{q.Used:x} is outside guest memory");
            return false;
        }
        _interruptStatus |= 1;
        return true;
    }

    private void ProcessRequests()
    {
        if (!Running || !_queue.Ready) return;
        while (TryNextAvail(out ushort head))
        {
            if (!TryGather(head, out int count)) return;
            uint written = Serve(count);
            if (!TryPutUsed(head, written)) return;
        }
    }

    /// <summary>Serves one gathered request; returns the bytes written into device-writable buffers
    /// (the used length), status byte included. A chain has at least one descriptor.</summary>
    private uint Serve(int count)
    {
        // The layout: readable descriptors, then writable ones, the last of which ends in the status byte.
        if (!_writable[count - 1] || _len[count - 1] == 0) return Bad();
        ulong statusAddress = _addr[count - 1] + _len[count - 1] - 1;
        if (!_memory.Contains(statusAddress, 1)) return Bad();
        int firstWritable = 0;
        while (!_writable[firstWritable]) firstWritable++;
        for (int i = firstWritable; i < count; i++)
            if (!_writable[i]) return Finish(statusAddress, StatusIoError, 1, bad: true);
        long readable = 0, writable = 0;
        for (int i = 0; i < count; i++)
        {
            // Every buffer must lie in RAM before anything moves (rule 1: a refused request touches nothing).
            if (!_memory.Contains(_addr[i], _len[i])) return Finish(statusAddress, StatusIoError, 1, bad: true);
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
        _memory.TryGetSpan(statusAddress, 1, out var s);
        s[0] = status;
        _memory.NoteWritten(statusAddress, 1);
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
            if (!_memory.TryRead(_addr[i] + (ulong)skip, destination.Slice(done, chunk))) return false;
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
            _memory.TryGetSpan(at, chunk, out var span);
            BlockStatus result;
            if (write) result = Device.Write(offset, span);
            else
            {
                result = Device.Read(offset, span);
                _memory.NoteWritten(at, (ulong)chunk);
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
            _memory.TryWrite(_addr[i], _serial.AsSpan(at, chunk));
            _memory.NoteWritten(_addr[i], (ulong)chunk);
            at += chunk;
            left -= chunk;
        }
        return Finish(statusAddress, StatusOk, 1 + at);
    }
}
