namespace SmartOS.Virt.Devices;

/// <summary>
/// What a virtio device is whatever transport carries it (virtio 1.x spec, sections 2 and 3):
/// feature negotiation, device status and reset, the interrupt status, and split-ring queues (no
/// indirect descriptors, no event index). VirtioNet and VirtioBlk derive from this (through
/// VirtioMmio, whose register window is one transport); VirtioPci (virt/PciVirtio.cs) is the other,
/// and drives the same state through the members marked "for transports". A device gives its id,
/// its features, its config space and what a queue notify does; the ring walking (TryNextAvail,
/// TryReadDesc, TryPutUsed) is here, with every guest address checked through GuestMemory (Vmm.cs
/// rule 2).
///
/// A ring the device cannot follow (outside RAM, an index past the queue size, an indirect
/// descriptor) stops the device: Fail sets DEVICE_NEEDS_RESET and the config-change interrupt bit,
/// <see cref="Error"/> says why, <see cref="RingErrors"/> counts it, and the device does nothing more
/// until the guest resets it (a write of 0 to the status). The rest of the VM and the host go on.
///
/// Interrupts: the interrupt status (bit 0 used buffers, bit 1 configuration change) is what the
/// transport shows; <see cref="InterruptLevel"/> hears it go from zero to non-zero and back, so a
/// PCI transport can drive its INTx line (level-triggered: up while any bit is set).
/// <see cref="Notification"/> hears each event itself (a used buffer on queue N, or a configuration
/// change as -1), for a transport that sends one message per event (MSI-X, PciVirtio.cs); a driver's
/// VRING_AVAIL_F_NO_INTERRUPT on the queue's available ring suppresses the used-buffer ones.
/// </summary>
public abstract class VirtioDevice
{
    protected const uint StatusDriverOk = 4, StatusNeedsReset = 0x40;
    protected const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    private const ushort AvailNoInterrupt = 1;
    protected const ulong FeatureVersion1 = 1UL << 32;

    private readonly VirtQueue[] _queues;
    private uint _status, _interruptStatus, _generation;
    private ulong _driverFeatures;
    private bool _detached;

    /// <summary>One split-ring queue as the driver set it up.</summary>
    protected internal sealed class VirtQueue(int index, int maxSize)
    {
        public readonly int Index = index;
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

    protected VirtioDevice(GuestMemory memory, int queueCount, int maxQueueSize)
    {
        Memory = memory;
        MaxQueueSizeOf = maxQueueSize;
        _queues = new VirtQueue[queueCount];
        for (int i = 0; i < queueCount; i++) _queues[i] = new VirtQueue(i, maxQueueSize);
    }

    protected GuestMemory Memory { get; }

    /// <summary>Why the device stopped (a broken ring), or null while it works.</summary>
    public string? Error { get; private set; }
    /// <summary>Broken rings that stopped the device.</summary>
    public long RingErrors { get; private set; }

    /// <summary>The virtio device id (1 network card, 2 block device).</summary>
    protected internal abstract uint DeviceId { get; }
    /// <summary>The features offered (VIRTIO_F_VERSION_1 among them).</summary>
    protected internal abstract ulong DeviceFeatures { get; }
    /// <summary>A read of the device's config space at offset.</summary>
    protected internal abstract ulong ReadConfig(uint offset, int size);
    /// <summary>The driver notified this queue index.</summary>
    protected internal abstract void Notify(uint queue);

    /// <summary>Hears the interrupt status become non-zero (true) and zero again (false).</summary>
    public Action<bool>? InterruptLevel { get; set; }

    /// <summary>Hears each interrupt event: a used buffer on queue N (N), unless the driver asked for
    /// none on that queue, or a configuration change (-1).</summary>
    public Action<int>? Notification { get; set; }

    protected VirtQueue Queue(int index) => _queues[index];

    /// <summary>The driver is done setting up, no ring has failed, and the VM still runs.</summary>
    protected bool Running => !_detached && Error == null && (_status & StatusDriverOk) != 0;

    // For transports.
    internal int QueueCount => _queues.Length;
    internal int MaxQueueSizeOf { get; }
    internal VirtQueue? QueueAt(uint index) => index < _queues.Length ? _queues[index] : null;
    internal uint Status => _status;
    internal uint InterruptStatus => _interruptStatus;
    internal uint Generation => _generation;
    /// <summary>The features the driver accepted (only those the device offers).</summary>
    public ulong DriverFeatures => _driverFeatures;

    /// <summary>The device is on a legacy (virtio 0.9.5) transport: legacy virtio-pci. Only there
    /// may a driver leave VIRTIO_F_VERSION_1 out (virtio-mmio version 2 is modern).</summary>
    public bool Legacy { get; internal set; }

    internal void SetDriverFeatures(ulong features) => _driverFeatures = features & DeviceFeatures;

    /// <summary>A status write: 0 resets the device; otherwise the driver's bits, keeping NEEDS_RESET.</summary>
    internal void WriteStatus(uint value)
    {
        if (value == 0) Reset();
        else _status = value | (_status & StatusNeedsReset);
    }

    /// <summary>The driver acknowledges these interrupt status bits.</summary>
    internal void AcknowledgeInterrupt(uint bits) => SetInterruptStatus(_interruptStatus & ~bits);

    /// <summary>Makes the queue ready with a size; false (and the device failed) if the size is not
    /// a power of two up to the maximum.</summary>
    internal bool TryMakeReady(uint index, VirtQueue q)
    {
        if (q.Num != 0 && q.Num <= MaxQueueSizeOf && (q.Num & (q.Num - 1)) == 0)
        {
            q.Ready = true;
            return true;
        }
        q.Ready = false;
        Fail($"queue {index}: size {q.Num} is not a power of two up to {MaxQueueSizeOf}");
        return false;
    }

    private void Reset()
    {
        _status = 0;
        _driverFeatures = 0;
        SetInterruptStatus(0);
        foreach (var q in _queues) q.Reset();
        Error = null;
        _generation++;
        OnReset();
    }

    /// <summary>A transport's own registers go back to their reset values.</summary>
    protected virtual void OnReset() { }

    private void SetInterruptStatus(uint value)
    {
        bool was = _interruptStatus != 0, now = value != 0;
        _interruptStatus = value;
        if (was != now) InterruptLevel?.Invoke(now);
    }

    /// <summary>Called when the VM stops (Vmm.cs rule 6): the device serves nothing more.</summary>
    internal virtual void Detach() => _detached = true;

    protected void Fail(string why)
    {
        Error ??= why;
        RingErrors++;
        _status |= StatusNeedsReset;
        SetInterruptStatus(_interruptStatus | 2);
        Notification?.Invoke(-1);
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
        SetInterruptStatus(_interruptStatus | 1);
        if (Notification != null && !(Memory.TryReadUInt16(q.Avail, out ushort availFlags) && (availFlags & AvailNoInterrupt) != 0))
            Notification(q.Index);
        return true;
    }
}
