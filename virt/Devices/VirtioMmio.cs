namespace SmartOS.Virt.Devices;

/// <summary>
/// The virtio-mmio version 2 transport (virtio 1.x spec, section 4.2): a 4 KiB register window at
/// <see cref="BaseAddress"/> over the device state of VirtioDevice.cs (features, status, queues,
/// rings). VirtioNet and VirtioBlk derive from this; a device that a VM puts on PCI instead
/// (virt/PciVirtio.cs) is made with <see cref="NoWindow"/> and owns no MMIO address.
/// </summary>
public abstract class VirtioMmio : VirtioDevice
{
    public const ulong RegionSize = 0x1000;
    /// <summary>The base of a device that has no virtio-mmio window (it is on another transport).</summary>
    public const ulong NoWindow = ulong.MaxValue;

    private uint _deviceFeatureSel, _driverFeatureSel, _queueSel;

    protected VirtioMmio(GuestMemory memory, ulong baseAddress, int queueCount, int maxQueueSize)
        : base(memory, queueCount, maxQueueSize)
    {
        BaseAddress = baseAddress;
    }

    public ulong BaseAddress { get; }

    public bool Owns(ulong address) => BaseAddress != NoWindow && address >= BaseAddress && address - BaseAddress < RegionSize;

    public ulong Read(ulong address, int size)
    {
        uint off = (uint)(address - BaseAddress);
        if (off >= 0x100) return ReadConfig(off - 0x100, size);
        var q = QueueAt(_queueSel);
        return off switch
        {
            0x000 => 0x74726976,                    // "virt"
            0x004 => 2,                             // version 2 (modern)
            0x008 => DeviceId,
            0x00C => 0x534D4F53,                    // vendor "SMOS"
            0x010 => _deviceFeatureSel < 2 ? (uint)(DeviceFeatures >> (int)(32 * _deviceFeatureSel)) : 0u,
            0x034 => q != null ? (ulong)MaxQueueSizeOf : 0,
            0x044 => q != null && q.Ready ? 1UL : 0,
            0x060 => InterruptStatus,
            0x070 => Status,
            0x0FC => Generation,
            _ => 0,
        };
    }

    public void Write(ulong address, int size, ulong value)
    {
        uint off = (uint)(address - BaseAddress);
        uint v = (uint)value;
        var q = QueueAt(_queueSel);
        switch (off)
        {
            case 0x014: _deviceFeatureSel = v; break;
            case 0x020:
                if (_driverFeatureSel < 2)
                {
                    int shift = (int)(32 * _driverFeatureSel);
                    SetDriverFeatures((DriverFeatures & ~(0xFFFFFFFFUL << shift)) | ((ulong)v << shift));
                }
                break;
            case 0x024: _driverFeatureSel = v; break;
            case 0x030: _queueSel = v; break;
            case 0x038:
                if (q != null) q.Num = v;
                break;
            case 0x044:
                if (q != null)
                {
                    if (v == 1) TryMakeReady(_queueSel, q);
                    else q.Ready = false;
                }
                break;
            case 0x050: Notify(v); break;
            case 0x064: AcknowledgeInterrupt(v); break;
            case 0x070: WriteStatus(v); break;
            case 0x080: if (q != null) q.Desc = (q.Desc & ~0xFFFFFFFFUL) | v; break;
            case 0x084: if (q != null) q.Desc = (q.Desc & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
            case 0x090: if (q != null) q.Avail = (q.Avail & ~0xFFFFFFFFUL) | v; break;
            case 0x094: if (q != null) q.Avail = (q.Avail & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
            case 0x0A0: if (q != null) q.Used = (q.Used & ~0xFFFFFFFFUL) | v; break;
            case 0x0A4: if (q != null) q.Used = (q.Used & 0xFFFFFFFFUL) | ((ulong)v << 32); break;
        }
    }

    protected override void OnReset() => _queueSel = 0;
}
