/*
 * virtio over PCI: a transitional virtio device (vendor 0x1AF4, device 0x1000 + virtio id - 1:
 * 0x1000 network, 0x1001 block; revision 0; subsystem id the virtio id) with the legacy register
 * layout in I/O BAR0 (virtio 1.x spec, section 4.1.4.8, "Legacy Interfaces: A Note on PCI Device
 * Layout"; the 0.9.5 layout that Linux's virtio_pci legacy driver takes). The device behind it is
 * the same VirtioNet or VirtioBlk that virtio-mmio carries (Devices/VirtioDevice.cs): this file is
 * only the transport.
 *
 * BAR0 (I/O, 64 bytes), little-endian:
 *   0x00 u32 device features (bits 0-31; read only)    0x04 u32 driver features
 *   0x08 u32 queue address, in 4 KiB pages (PFN)       0x0C u16 queue size (read only)
 *   0x0E u16 queue select                              0x10 u16 queue notify
 *   0x12 u8  device status                             0x13 u8  ISR status (a read clears it)
 *   0x14     the device's config space (no MSI-X, so no vector registers before it)
 * A legacy queue is one block at PFN * 4096: the descriptor table (16 bytes x size), the available
 * ring (6 + 2 x size bytes) right after it, the used ring at the next 4096-byte boundary. Its size
 * is the device's (the driver cannot choose it); a PFN of 0 takes the queue down.
 *
 * Interrupts: INTx pin A, level-triggered: the line is up while the ISR status is non-zero, and the
 * driver's read of the ISR both returns and clears it (which lowers the line). MSI-X is not offered.
 * The modern layout (virtio capabilities in configuration space, device ids 0x1041/0x1042) is not
 * done: VIRTIO_F_VERSION_1 sits in feature bit 32, which the legacy registers cannot show, so a
 * driver here always runs the device in legacy mode (the 10-byte virtio_net_hdr, VirtioNet.cs).
 */
using SmartOS.Virt.Devices;

namespace SmartOS.Virt;

/// <summary>A legacy virtio-pci function over a virtio device (see the theory statement above).</summary>
public sealed class VirtioPci : PciFunction
{
    public const ushort VirtioVendor = 0x1AF4;
    public const uint BarSizeBytes = 0x40;
    public const uint RegDeviceFeatures = 0x00, RegDriverFeatures = 0x04, RegQueuePfn = 0x08, RegQueueSize = 0x0C,
        RegQueueSelect = 0x0E, RegQueueNotify = 0x10, RegStatus = 0x12, RegIsr = 0x13, RegConfig = 0x14;
    public const int QueueAlign = 4096;

    private uint _queueSelect;

    public VirtioPci(VirtioDevice device)
        : base(VirtioVendor, (ushort)(0x1000 + device.DeviceId - 1), ClassOf(device.DeviceId), revision: 0, VirtioVendor, (ushort)device.DeviceId)
    {
        Device = device;
        DeclareBar(0, PciBarKind.Io, BarSizeBytes);
        UseInterruptPin();
        device.InterruptLevel = SetIntx;
        device.Legacy = true;
    }

    public VirtioDevice Device { get; }

    private static uint ClassOf(uint virtioId) => virtioId switch
    {
        1 => 0x02_00_00,    // network controller, Ethernet
        2 => 0x01_00_00,    // mass storage, SCSI (what QEMU's virtio-blk shows)
        _ => 0xFF_00_00,
    };

    protected internal override ulong ReadBar(int bar, uint offset, int size)
    {
        if (bar != 0) return base.ReadBar(bar, offset, size);
        if (offset >= RegConfig) return Device.ReadConfig(offset - RegConfig, size);
        var q = Device.QueueAt(_queueSelect);
        ulong value = offset switch
        {
            RegDeviceFeatures => (uint)Device.DeviceFeatures,
            RegDriverFeatures => (uint)Device.DriverFeatures,
            RegQueuePfn => q != null && q.Ready ? q.Desc / QueueAlign : 0,
            RegQueueSize => q != null ? (ulong)q.MaxSize : 0,
            RegQueueSelect => _queueSelect,
            RegStatus => Device.Status & 0xFF,
            RegIsr => TakeIsr(),
            _ => 0,
        };
        return size >= 8 ? value : value & ((1UL << (8 * size)) - 1);
    }

    protected internal override void WriteBar(int bar, uint offset, int size, ulong value)
    {
        if (bar != 0) return;
        uint v = (uint)value;
        switch (offset)
        {
            case RegDriverFeatures: Device.SetDriverFeatures(v); break;
            case RegQueuePfn: SetQueueAddress(v); break;
            case RegQueueSelect: _queueSelect = v & 0xFFFF; break;
            case RegQueueNotify: Device.Notify(v & 0xFFFF); break;
            case RegStatus:
                Device.WriteStatus(v & 0xFF);
                if ((v & 0xFF) == 0) _queueSelect = 0;
                break;
        }
    }

    /// <summary>The ISR status: returned, and cleared by the read (legacy rule).</summary>
    private uint TakeIsr()
    {
        uint isr = Device.InterruptStatus;
        if (isr != 0) Device.AcknowledgeInterrupt(isr);
        return isr;
    }

    /// <summary>The legacy queue layout: one block at pfn * 4096 (theory statement above).</summary>
    private void SetQueueAddress(uint pfn)
    {
        var q = Device.QueueAt(_queueSelect);
        if (q == null) return;
        if (pfn == 0)
        {
            q.Reset();
            return;
        }
        ulong num = (ulong)q.MaxSize;
        q.Num = (uint)num;
        q.Desc = (ulong)pfn * QueueAlign;
        q.Avail = q.Desc + 16 * num;
        q.Used = (q.Avail + 6 + 2 * num + QueueAlign - 1) & ~(ulong)(QueueAlign - 1);
        q.LastAvail = q.UsedIdx = 0;
        Device.TryMakeReady(_queueSelect, q);
    }
}
