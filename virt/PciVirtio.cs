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
 *   while MSI-X is enabled:
 *   0x14 u16 configuration-change vector               0x16 u16 the selected queue's vector
 *   0x18     the device's config space (0x14 while MSI-X is disabled)
 * A legacy queue is one block at PFN * 4096: the descriptor table (16 bytes x size), the available
 * ring (6 + 2 x size bytes) right after it, the used ring at the next 4096-byte boundary. Its size
 * is the device's (the driver cannot choose it); a PFN of 0 takes the queue down.
 *
 * Interrupts, legacy: INTx pin A, level-triggered: the line is up while the ISR status is non-zero,
 * and the driver's read of the ISR both returns and clears it (which lowers the line).
 * Interrupts, MSI-X (PCI 3.0 section 6.8.2): capability 0x11 with a table of one entry per queue
 * plus one for configuration changes, table and pending-bit array in memory BAR1 (table at 0,
 * PBA at MsixPbaOffset). Once the driver sets the capability's enable bit, INTx is silent and the
 * vector registers appear (above); each event (a used buffer on a queue, unless its available
 * ring's NO_INTERRUPT flag is set; a configuration change) sends the message of the vector written
 * for it: the entry's data written to its address, which the platform's router hands to the local
 * APIC (IInterruptRouter.DeliverMsi). A vector of 0xFFFF (NO_VECTOR) or one past the table sends
 * nothing (a vector register reads back 0xFFFF when the written value is past the table, which is
 * how a driver learns the device cannot map it). While the entry is masked or the function mask
 * is set, the event sets the entry's pending bit instead, and the message goes when it is unmasked.
 * The ISR status is not used for messages: the event's bit is cleared as the message goes.
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
    public const uint RegConfigVector = 0x14, RegQueueVector = 0x16, RegConfigMsix = 0x18;
    public const int QueueAlign = 4096;
    public const byte CapabilityMsix = 0x11;
    public const ushort NoVector = 0xFFFF;
    /// <summary>BAR1: the MSI-X table at 0, the pending-bit array here.</summary>
    public const uint MsixBarSize = 0x1000, MsixPbaOffset = 0x800;
    private const ushort MsixEnable = 0x8000, MsixFunctionMask = 0x4000;

    private uint _queueSelect;
    private readonly byte _msixCap;
    private readonly int _vectors;
    // The table: per entry address (64-bit), data, vector control (bit 0 masked); and pending bits.
    private readonly ulong[] _msgAddress;
    private readonly uint[] _msgData, _msgControl;
    private readonly bool[] _pendingBit;
    private readonly ushort[] _queueVector;
    private ushort _configVector = NoVector;
    private bool _isrPending;

    public VirtioPci(VirtioDevice device)
        : base(VirtioVendor, (ushort)(0x1000 + device.DeviceId - 1), ClassOf(device.DeviceId), revision: 0, VirtioVendor, (ushort)device.DeviceId)
    {
        Device = device;
        DeclareBar(0, PciBarKind.Io, BarSizeBytes);
        DeclareBar(1, PciBarKind.Memory32, MsixBarSize);
        UseInterruptPin();
        _vectors = device.QueueCount + 1;
        _msgAddress = new ulong[_vectors];
        _msgData = new uint[_vectors];
        _msgControl = new uint[_vectors];
        _pendingBit = new bool[_vectors];
        for (int i = 0; i < _vectors; i++) _msgControl[i] = 1; // entries start masked
        _queueVector = new ushort[device.QueueCount];
        Array.Fill(_queueVector, NoVector);
        Span<byte> cap = stackalloc byte[10];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(cap, (ushort)(_vectors - 1));  // table size - 1
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(cap[2..], 0 | 1u);              // table: BAR1 + 0
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(cap[6..], MsixPbaOffset | 1u);  // PBA: BAR1 + 0x800
        _msixCap = AddCapability(CapabilityMsix, cap);
        device.InterruptLevel = OnInterruptLevel;
        device.Notification = OnNotification;
        device.Legacy = true;
    }

    private ushort MessageControl => (ushort)(ConfigByte(_msixCap + 2) | ConfigByte(_msixCap + 3) << 8);

    /// <summary>The driver enabled MSI-X in the capability: messages instead of INTx, and the vector
    /// registers in BAR0.</summary>
    public bool MsixEnabled => (MessageControl & MsixEnable) != 0;

    /// <summary>Messages sent (MSI-X), for tests and kstats.</summary>
    public long MessagesSent { get; private set; }

    private void OnInterruptLevel(bool up)
    {
        _isrPending = up;
        if (!MsixEnabled) SetIntx(up);
    }

    private void OnNotification(int queue)
    {
        if (!MsixEnabled) return;
        // The ISR is INTx's: a message carries the event, so its bit goes as the message does.
        Device.AcknowledgeInterrupt(queue < 0 ? 2u : 1u);
        ushort vector = queue < 0 ? _configVector : _queueVector[queue];
        if (vector < _vectors) Signal(vector);
    }

    /// <summary>Sends entry <paramref name="vector"/>'s message, or marks it pending while masked.</summary>
    private void Signal(int vector)
    {
        if ((_msgControl[vector] & 1) != 0 || (MessageControl & MsixFunctionMask) != 0)
        {
            _pendingBit[vector] = true;
            return;
        }
        _pendingBit[vector] = false;
        MessagesSent++;
        Bus?.Router?.DeliverMsi(_msgAddress[vector], _msgData[vector]);
    }

    /// <summary>Sends what became deliverable: pending entries no longer masked.</summary>
    private void SendPending()
    {
        if (!MsixEnabled) return;
        for (int i = 0; i < _vectors; i++)
            if (_pendingBit[i]) Signal(i);
    }

    protected override void WriteCapabilityByte(int at, byte b)
    {
        if (at != _msixCap + 3) return; // only enable and function mask are writable
        bool wasEnabled = MsixEnabled;
        SetConfigByte(at, (byte)(b & 0xC0));
        if (wasEnabled != MsixEnabled) SetIntx(!MsixEnabled && _isrPending);
        SendPending();
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
        if (bar == 1) return ReadMsix(offset, size);
        if (bar != 0) return base.ReadBar(bar, offset, size);
        uint configAt = MsixEnabled ? RegConfigMsix : RegConfig;
        if (offset >= configAt) return Device.ReadConfig(offset - configAt, size);
        if (MsixEnabled && offset == RegConfigVector) return _configVector;
        if (MsixEnabled && offset == RegQueueVector) return _queueSelect < _queueVector.Length ? _queueVector[_queueSelect] : NoVector;
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
        if (bar == 1)
        {
            WriteMsix(offset, size, value);
            return;
        }
        if (bar != 0) return;
        uint v = (uint)value;
        if (MsixEnabled && offset == RegConfigVector && size == 2)
        {
            _configVector = v < _vectors ? (ushort)v : NoVector;
            return;
        }
        if (MsixEnabled && offset == RegQueueVector && size == 2)
        {
            if (_queueSelect < _queueVector.Length) _queueVector[_queueSelect] = v < _vectors ? (ushort)v : NoVector;
            return;
        }
        switch (offset)
        {
            case RegDriverFeatures: Device.SetDriverFeatures(v); break;
            case RegQueuePfn: SetQueueAddress(v); break;
            case RegQueueSelect: _queueSelect = v & 0xFFFF; break;
            case RegQueueNotify: Device.Notify(v & 0xFFFF); break;
            case RegStatus:
                Device.WriteStatus(v & 0xFF);
                if ((v & 0xFF) == 0)
                {
                    // A reset forgets the vectors (the table itself is the function's, as on hardware).
                    _queueSelect = 0;
                    _configVector = NoVector;
                    Array.Fill(_queueVector, NoVector);
                }
                break;
        }
    }

    /// <summary>A read of the MSI-X table or pending-bit array (dword or qword, aligned).</summary>
    private ulong ReadMsix(uint offset, int size)
    {
        if (size == 8) return ReadMsix(offset, 4) | ReadMsix(offset + 4, 4) << 32;
        if (size != 4 || (offset & 3) != 0) return (1UL << (8 * size)) - 1;
        if (offset >= MsixPbaOffset)
        {
            uint word = (offset - MsixPbaOffset) / 4, bits = 0;
            for (int i = 0; i < 32; i++)
                if (word * 32 + i < _vectors && _pendingBit[word * 32 + i]) bits |= 1u << i;
            return bits;
        }
        int entry = (int)(offset / 16);
        if (entry >= _vectors) return 0;
        return (offset % 16) switch
        {
            0 => (uint)_msgAddress[entry],
            4 => (uint)(_msgAddress[entry] >> 32),
            8 => _msgData[entry],
            _ => _msgControl[entry],
        };
    }

    /// <summary>A write to the MSI-X table; the pending-bit array is read only.</summary>
    private void WriteMsix(uint offset, int size, ulong value)
    {
        if (size == 8)
        {
            WriteMsix(offset, 4, value & 0xFFFF_FFFF);
            WriteMsix(offset + 4, 4, value >> 32);
            return;
        }
        if (size != 4 || (offset & 3) != 0 || offset >= MsixPbaOffset) return;
        int entry = (int)(offset / 16);
        if (entry >= _vectors) return;
        uint v = (uint)value;
        switch (offset % 16)
        {
            case 0: _msgAddress[entry] = (_msgAddress[entry] & ~0xFFFF_FFFFUL) | (v & ~3u); break;
            case 4: _msgAddress[entry] = (_msgAddress[entry] & 0xFFFF_FFFF) | (ulong)v << 32; break;
            case 8: _msgData[entry] = v; break;
            default:
                _msgControl[entry] = v & 1;
                if ((v & 1) == 0 && _pendingBit[entry]) SendPending();
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
