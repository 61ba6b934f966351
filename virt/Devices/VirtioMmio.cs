namespace SmartOS.Virt.Devices;

/// <summary>
/// The virtio-mmio version 2 transport (virtio 1.x spec, section 4.2) that VirtioNet and VirtioBlk
/// share: the register window, feature negotiation, device status and reset, and split-ring queues
/// (no indirect descriptors, no event index). A device gives its id, its features, its config space
/// and what a queue notify does; the ring walking (TryNextAvail, TryReadDesc, TryPutUsed) is here,
/// with every guest address checked through GuestMemory (Vmm.cs rule 2).
///
/// A ring the device cannot follow (outside RAM, an index past the queue size, an indirect
/// descriptor) stops the device: Fail sets DEVICE_NEEDS_RESET and the config-change interrupt bit,
/// <see cref="Error"/> says why, <see cref="RingErrors"/> counts it, and the device does nothing more
/// until the guest resets it (a write of 0 to Status). The rest of the VM and the host go on.
/// </summary>
public abstract class VirtioMmio
{
    public const ulong RegionSize = 0x1000;

    protected const uint StatusDriverOk = 4, StatusNeedsReset = 0x40;
    protected const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    protected const ulong FeatureVersion1 = 1UL << 32;

    private readonly VirtQueue[] _queues;
    private readonly int _maxQueueSize;
    private uint _status, _deviceFeatureSel, _driverFeatureSel, _queueSel, _interruptStatus, _generation;
    private ulong _driverFeatures;
    private bool _detached;

    /// <summary>One split-ring queue as the driver set it up.</summary>
    protected sealed class VirtQueue(int maxSize)
    {
        public readonly int MaxSize = maxSize;
        public uint Num = (uint)maxSize;
        public bool Ready;
        public ulong Desc, Avail, Used;
        public ushort LastAvail, UsedIdx;

        public void Reset()
        {
            Num = (uint)MaxSize;
            Ready = false;
            Desc = Avail = Used = 0;
            LastAvail = UsedIdx = 0;
        }
    }

    protected VirtioMmio(GuestMemory memory, ulong baseAddress, int queueCount, int maxQueueSize)
    {
        Memory = memory;
        BaseAddress = baseAddress;
        _maxQueueSize = maxQueueSize;
        _queues = new VirtQueue[queueCount];
        for (int i = 0; i < queueCount; i++) _queues[i] = new VirtQueue(maxQueueSize);
    }

    protected GuestMemory Memory { get; }
    public ulong BaseAddress { get; }

    /// <summary>Why the device stopped (a broken ring), or null while it works.</summary>
    public string? Error { get; private set; }
    /// <summary>Broken rings that stopped the device.</summary>
    public long RingErrors { get; private set; }

    /// <summary>The virtio device id (1 network card, 2 block device).</summary>
    protected abstract uint DeviceId { get; }
    /// <summary>The features offered (VIRTIO_F_VERSION_1 among them).</summary>
    protected abstract ulong DeviceFeatures { get; }
    /// <summary>A read of the device's config space at offset (from 0x100).</summary>
    protected abstract ulong ReadConfig(uint offset, int size);
    /// <summary>The driver wrote QueueNotify with this queue index.</summary>
    protected abstract void Notify(uint queue);

    public bool Owns(ulong address) => address >= BaseAddress && address - BaseAddress < RegionSize;

    protected VirtQueue Queue(int index) => _queues[index];

    /// <summary>The driver is done setting up, no ring has failed, and the VM still runs.</summary>
    protected bool Running => !_detached && Error == null && (_status & StatusDriverOk) != 0;

    public ulong Read(ulong address, int size)
    {
        uint off = (uint)(address - BaseAddress);
        if (off >= 0x100) return ReadConfig(off - 0x100, size);
        var q = _queueSel < _queues.Length ? _queues[_queueSel] : null;
        return off switch
        {
            0x000 => 0x74726976,                    // "virt"
            0x004 => 2,                             // version 2 (modern)
            0x008 => DeviceId,
            0x00C => 0x534D4F53,                    // vendor "SMOS"
            0x010 => _deviceFeatureSel < 2 ? (uint)(DeviceFeatures >> (int)(32 * _deviceFeatureSel)) : 0u,
            0x034 => q != null ? (ulong)_maxQueueSize : 0,
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
        var q = _queueSel < _queues.Length ? _queues[_queueSel] : null;
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
                if (q != null && v == 1 && !q.Ready) Fail($"queue {_queueSel}: size {q.Num} is not a power of two up to {_maxQueueSize}");
                break;
            case 0x050: Notify(v); break;
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

    private bool ValidQueueSize(uint n) => n != 0 && n <= _maxQueueSize && (n & (n - 1)) == 0;

    private void Reset()
    {
        _status = 0;
        _driverFeatures = 0;
        _interruptStatus = 0;
        _queueSel = 0;
        foreach (var q in _queues) q.Reset();
        Error = null;
        _generation++;
    }

    /// <summary>Called when the VM stops (Vmm.cs rule 6): the device serves nothing more.</summary>
    internal virtual void Detach() => _detached = true;

    protected void Fail(string why)
    {
        Error ??= why;
        RingErrors++;
        _status |= StatusNeedsReset;
        _interruptStatus |= 2;
    }

    protected bool TryNextAvail(VirtQueue q, out ushort head)
    {
        head = 0;
        if (!Memory.TryReadUInt16(q.Avail + 2, out ushort availIdx)) { Fail($"avail ring at 0x{q.Avail:x} is outside guest memory"); return false; }
        if (availIdx == q.LastAvail) return false;
        if ((ushort)(availIdx - q.LastAvail) > q.Num) { Fail($"avail index {availIdx} runs more than the queue size ahead of {q.LastAvail}"); return false; }
        if (!Memory.TryReadUInt16(q.Avail + 4 + 2UL * (q.LastAvail % q.Num), out head)) { Fail("avail ring entry is outside guest memory"); return false; }
        if (head >= q.Num) { Fail($"descriptor index {head} is past the queue size {q.Num}"); return false; }
        q.LastAvail++;
        return true;
    }

    protected bool TryReadDesc(VirtQueue q, ushort index, out ulong addr, out uint len, out ushort flags, out ushort next)
    {
        addr = 0; len = 0; flags = 0; next = 0;
        ulong d = q.Desc + 16UL * index;
        if (!Memory.TryReadUInt64(d, out addr) || !Memory.TryReadUInt32(d + 8, out len)
            || !Memory.TryReadUInt16(d + 12, out flags) || !Memory.TryReadUInt16(d + 14, out next))
        {
            Fail($"descriptor table at 0x{q.Desc:x} is outside guest memory");
            return false;
        }
        if ((flags & DescIndirect) != 0) { Fail("indirect descriptors were not negotiated"); return false; }
        if ((flags & DescNext) != 0 && next >= q.Num) { Fail($"descriptor {index} chains to {next}, past the queue size"); return false; }
        return true;
    }

    protected bool TryPutUsed(VirtQueue q, ushort head, uint length)
    {
        ulong slot = q.Used + 4 + 8UL * (q.UsedIdx % q.Num);
        q.UsedIdx++;
        if (!Memory.TryWriteUInt32(slot, head) || !Memory.TryWriteUInt32(slot + 4, length) || !Memory.TryWriteUInt16(q.Used + 2, q.UsedIdx))
        {
            Fail($"used ring at 0x{q.Used:x} is outside guest memory");
            return false;
        }
        _interruptStatus |= 1;
        return true;
    }
}
