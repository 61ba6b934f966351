using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A virtio-net device on virtio-mmio version 2 (virtio 1.x spec, sections 4.2 and 5.1), one MAC
/// client behind it. Queue 0 is receive, queue 1 transmit; split rings only, no indirect
/// descriptors, no offloads. Features offered: VIRTIO_NET_F_MAC and VIRTIO_F_VERSION_1, so every
/// frame carries the 12-byte virtio_net_hdr (num_buffers included).
///
/// Every ring entry is untrusted guest data (Vmm.cs rule 4): a descriptor outside RAM, a chain
/// longer than the queue (a loop), a chain bigger than a frame or a bad index stops the device:
/// its status gets DEVICE_NEEDS_RESET, <see cref="Error"/> says why, and it carries no more frames
/// until the guest resets it. The host and the rest of the VM are untouched.
/// </summary>
public sealed class VirtioNet : IMacReceiver
{
    public const ulong RegionSize = 0x1000;
    public const int HeaderLength = 12;
    public const int MaxQueueSize = 256;
    /// <summary>Largest chain accepted: a jumbo frame plus the header.</summary>
    public const int MaxChainBytes = 9216 + HeaderLength;

    private const uint StatusDriverOk = 4, StatusNeedsReset = 0x40;
    private const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    private const ulong FeatureMac = 1UL << 5, FeatureVersion1 = 1UL << 32;

    private readonly GuestMemory _memory;
    private readonly Action _wake;
    private readonly Queue[] _queues = [new(), new()];
    private readonly byte[] _chain = new byte[MaxChainBytes];
    private uint _status, _deviceFeatureSel, _driverFeatureSel, _queueSel, _interruptStatus, _generation;
    private ulong _driverFeatures;

    private sealed class Queue
    {
        public uint Num = MaxQueueSize;
        public bool Ready;
        public ulong Desc, Avail, Used;
        public ushort LastAvail, UsedIdx;
    }

    internal VirtioNet(GuestMemory memory, ulong baseAddress, MacClient client, Action wake)
    {
        _memory = memory;
        BaseAddress = baseAddress;
        Client = client;
        _wake = wake;
        client.Receiver = this;
    }

    public ulong BaseAddress { get; }
    public MacClient Client { get; }
    public MacAddress MacAddress => Client.MacAddress;

    /// <summary>Why the device stopped, or null while it works.</summary>
    public string? Error { get; private set; }
    public long TxFrames { get; private set; }
    public long RxFrames { get; private set; }
    /// <summary>Frames that arrived while the guest had no receive buffer posted (or the driver was not ready).</summary>
    public long RxDropped { get; private set; }
    public long TxErrors { get; private set; }

    public bool Owns(ulong address) => address >= BaseAddress && address - BaseAddress < RegionSize;

    public ulong Read(ulong address, int size)
    {
        uint off = (uint)(address - BaseAddress);
        if (off >= 0x100)
        {
            // Config space: mac[6], status u16 (link up).
            ulong v = 0;
            Span<byte> cfg = stackalloc byte[8];
            MacAddress.Write(cfg);
            cfg[6] = 1;
            for (int i = 0; i < size && off - 0x100 + i < 8; i++) v |= (ulong)cfg[(int)(off - 0x100) + i] << (8 * i);
            return v;
        }
        var q = _queueSel < 2 ? _queues[_queueSel] : null;
        return off switch
        {
            0x000 => 0x74726976,                    // "virt"
            0x004 => 2,                             // version 2 (modern)
            0x008 => 1,                             // device id: network card
            0x00C => 0x534D4F53,                    // vendor "SMOS"
            0x010 => _deviceFeatureSel == 0 ? (uint)FeatureMac : _deviceFeatureSel == 1 ? (uint)(FeatureVersion1 >> 32) : 0u,
            0x034 => q != null ? (ulong)MaxQueueSize : 0,
            0x044 => q != null && q.Ready ? 1UL : 0,
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
        var q = _queueSel < 2 ? _queues[_queueSel] : null;
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
                if (q != null && v == 1 && !q.Ready) Fail($"queue {_queueSel}: size {q.Num} is not a power of two up to {MaxQueueSize}");
                break;
            case 0x050:
                if (v == 1) ProcessTx();
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
        foreach (var q in _queues)
        {
            q.Num = MaxQueueSize;
            q.Ready = false;
            q.Desc = q.Avail = q.Used = 0;
            q.LastAvail = q.UsedIdx = 0;
        }
        Error = null;
        _generation++;
    }

    private bool Running => !_detached && Error == null && (_status & StatusDriverOk) != 0;

    private bool _detached;

    /// <summary>Called when the VM stops: the device lets go of the MAC client and of guest memory
    /// (which may be freed next); frames that still reach it are dropped and counted.</summary>
    internal void Detach()
    {
        _detached = true;
        if (Client.Receiver == this) Client.Receiver = null;
    }

    private void Fail(string why)
    {
        Error ??= why;
        _status |= StatusNeedsReset;
        _interruptStatus |= 2;
    }

    private bool TryNextAvail(Queue q, out ushort head)
    {
        head = 0;
        if (!_memory.TryReadUInt16(q.Avail + 2, out ushort availIdx)) { Fail($"avail ring at 0x{q.Avail:x} is outside guest memory"); return false; }
        if (availIdx == q.LastAvail) return false;
        if ((ushort)(availIdx - q.LastAvail) > q.Num) { Fail($"avail index {availIdx} runs more than the queue size ahead of {q.LastAvail}"); return false; }
        if (!_memory.TryReadUInt16(q.Avail + 4 + 2UL * (q.LastAvail % q.Num), out head)) { Fail("avail ring entry is outside guest memory"); return false; }
        if (head >= q.Num) { Fail($"descriptor index {head} is past the queue size {q.Num}"); return false; }
        q.LastAvail++;
        return true;
    }

    private bool TryReadDesc(Queue q, ushort index, out ulong addr, out uint len, out ushort flags, out ushort next)
    {
        addr = 0; len = 0; flags = 0; next = 0;
        ulong d = q.Desc + 16UL * index;
        if (!_memory.TryReadUInt64(d, out addr) || !_memory.TryReadUInt32(d + 8, out len)
            || !_memory.TryReadUInt16(d + 12, out flags) || !_memory.TryReadUInt16(d + 14, out next))
        {
            Fail($"descriptor table at 0x{q.Desc:x} is outside guest memory");
            return false;
        }
        if ((flags & DescIndirect) != 0) { Fail("indirect descriptors were not negotiated"); return false; }
        if ((flags & DescNext) != 0 && next >= q.Num) { Fail($"descriptor {index} chains to {next}, past the queue size"); return false; }
        return true;
    }

    private bool TryPutUsed(Queue q, ushort head, uint length)
    {
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

    private void ProcessTx()
    {
        var q = _queues[1];
        if (!Running || !q.Ready) return;
        while (TryNextAvail(q, out ushort head))
        {
            int total = 0;
            ushort index = head;
            for (int n = 0; ; n++)
            {
                if (n >= q.Num) { Fail($"transmit descriptor chain from {head} loops"); return; }
                if (!TryReadDesc(q, index, out ulong addr, out uint len, out ushort flags, out ushort next)) return;
                if (len > MaxChainBytes - total) { Fail($"transmit chain from {head} is larger than {MaxChainBytes} bytes"); return; }
                if (!_memory.TryRead(addr, _chain.AsSpan(total, (int)len))) { Fail($"transmit buffer 0x{addr:x}+{len} is outside guest memory"); return; }
                total += (int)len;
                if ((flags & DescNext) == 0) break;
                index = next;
            }
            if (!TryPutUsed(q, head, 0)) return;
            int frameLength = total - HeaderLength;
            if (frameLength < EthernetView.HeaderLength)
            {
                TxErrors++;
                continue;
            }
            var packet = Client.Pool.Rent(_chain.AsSpan(HeaderLength, frameLength));
            if (packet == null)
            {
                TxErrors++;
                continue;
            }
            packet.Timestamp = Client.Scheduler.Now;
            TxFrames++;
            Client.Transmit(packet);
        }
    }

    /// <summary>A frame from the MAC layer (IMacReceiver): copied into the guest's next receive buffer.</summary>
    public void Receive(MacClient client, Packet packet)
    {
        try
        {
            var q = _queues[0];
            if (!Running || !q.Ready || !TryNextAvail(q, out ushort head))
            {
                RxDropped++;
                return;
            }
            var frame = packet.Data;
            Span<byte> header = stackalloc byte[HeaderLength];
            header.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(header[10..], 1); // num_buffers
            int need = HeaderLength + frame.Length, written = 0;
            ushort index = head;
            for (int n = 0; written < need; n++)
            {
                if (n >= q.Num) { Fail($"receive descriptor chain from {head} loops"); return; }
                if (!TryReadDesc(q, index, out ulong addr, out uint len, out ushort flags, out ushort next)) return;
                if ((flags & DescWrite) == 0) { Fail($"receive descriptor {index} is not device-writable"); return; }
                int chunk = (int)Math.Min(len, (uint)(need - written));
                if (!_memory.TryGetSpan(addr, chunk, out var dst)) { Fail($"receive buffer 0x{addr:x}+{len} is outside guest memory"); return; }
                for (int i = 0; i < chunk; i++)
                {
                    int at = written + i;
                    dst[i] = at < HeaderLength ? header[at] : frame[at - HeaderLength];
                }
                _memory.NoteWritten(addr, (ulong)chunk);
                written += chunk;
                if ((flags & DescNext) == 0) break;
                index = next;
            }
            if (written < need)
            {
                // The guest's buffer is too small for this frame: hand the buffer back empty.
                RxDropped++;
                TryPutUsed(q, head, 0);
                return;
            }
            if (!TryPutUsed(q, head, (uint)written)) return;
            RxFrames++;
            _wake();
        }
        finally
        {
            packet.Free();
        }
    }
}
