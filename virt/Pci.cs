/*
 * PCI: one bus (bus 0) behind a host bridge, reached through configuration mechanism #1, as on a
 * PC (PCI Local Bus 3.0, section 3.2.2.3.2; the i440FX's and Q35's ports).
 *
 * Terms
 *   function     one PCI function (PciFunction): 256 bytes of type-0 configuration space, up to
 *                six base address registers (BARs) and a capability list. Slot n function 0 is
 *                device n on bus 0; there are no multi-function devices and no bridges.
 *   BAR          a window of I/O ports or of 32-bit memory that the function decodes. Its size is a
 *                power of two; software sizes it by writing all ones and reading back the mask.
 *   PCI hole     where memory BARs live: [PciMemoryBase, PciMemoryLimit), below the virtio-mmio
 *                window at 0xD000_0000 and the APICs at 0xFEC0_0000/0xFEE0_0000; guest RAM of a VM
 *                with a PCI bus ends at or below PciMemoryBase. I/O BARs go from PciIoBase up.
 *
 * The config mechanism: a dword write to 0xCF8 (bit 31 enable, bits 23:16 bus, 15:11 device,
 * 10:8 function, 7:2 register) selects a register; 0xCFC-0xCFF then read or write it a byte, a
 * word or the dword at a time. A function that is not there, another bus, or the enable bit clear
 * reads all ones, and writes go nowhere, as on hardware. Byte and word accesses to 0xCF8-0xCFB are
 * not the address register (0xCF9 is the chipset's reset control on a PC): ignored, read as ones.
 *
 * BARs are placed when a function is added, as firmware would before the OS runs (ascending
 * addresses, each aligned to its size), and the command register's I/O and memory decode bits
 * are set; the guest may move them. A BAR decodes only while its decode bit is set and it is not
 * being sized (all ones). The interrupt line register starts at the IRQ the bus chose for the
 * function (Vm: 10 or 11 by slot, as the PIIX's PCI links route them) and the interrupt pin at
 * INTA; the function raises its line through the IInterruptRouter on the GSI that the line
 * register names, whatever the guest wrote there last (255: none).
 *
 * Rules
 *   1. Nothing a guest writes to configuration space throws (Platform.cs rule 2): read-only bits
 *      keep their value, unknown registers read zero inside a present function.
 *   2. BAR placement is deterministic: the same functions in the same order get the same addresses.
 */
using System.Buffers.Binary;

namespace SmartOS.Virt;

public enum PciBarKind { None, Io, Memory32 }

/// <summary>One PCI function: configuration space and BARs (see the theory statement above).</summary>
public abstract class PciFunction
{
    public const int ConfigSize = 256;
    public const ushort CommandIo = 1, CommandMemory = 2, CommandBusMaster = 4, CommandIntxDisable = 0x400;
    protected const ushort StatusCapabilities = 0x10, StatusInterrupt = 0x08;

    private readonly byte[] _config = new byte[ConfigSize];
    private readonly uint[] _barSize = new uint[6];
    private readonly PciBarKind[] _barKind = new PciBarKind[6];
    private byte _lastCapability;
    private byte _nextCapabilityOffset = 0x40;
    private bool _intxAsserted;

    protected PciFunction(ushort vendor, ushort device, uint classCode, byte revision, ushort subsystemVendor = 0, ushort subsystem = 0)
    {
        W16(0x00, vendor);
        W16(0x02, device);
        _config[0x08] = revision;
        _config[0x09] = (byte)classCode;            // programming interface
        _config[0x0A] = (byte)(classCode >> 8);     // subclass
        _config[0x0B] = (byte)(classCode >> 16);    // base class
        W16(0x2C, subsystemVendor);
        W16(0x2E, subsystem);
        _config[0x3C] = 0xFF;                       // no interrupt line until the bus gives one
    }

    /// <summary>The bus this function is on (set by PciBus.Add).</summary>
    public PciBus? Bus { get; internal set; }
    /// <summary>The slot (device number) on bus 0.</summary>
    public int Slot { get; internal set; } = -1;

    public ushort VendorId => R16(0x00);
    public ushort DeviceId => R16(0x02);
    public ushort Command => R16(0x04);
    public byte InterruptLine => _config[0x3C];
    public byte InterruptPin => _config[0x3D];

    /// <summary>Declares BAR <paramref name="index"/> (before the function is added to a bus).</summary>
    protected void DeclareBar(int index, PciBarKind kind, uint size)
    {
        if (size < (kind == PciBarKind.Io ? 4u : 16u) || (size & (size - 1)) != 0)
            throw new ArgumentException($"BAR {index}: size {size} is not a power of two of at least {(kind == PciBarKind.Io ? 4 : 16)}");
        _barKind[index] = kind;
        _barSize[index] = size;
        W32(0x10 + 4 * index, kind == PciBarKind.Io ? 1u : 0u);
    }

    /// <summary>Uses interrupt pin INTA (1); the bus sets the line.</summary>
    protected void UseInterruptPin() => _config[0x3D] = 1;

    /// <summary>Appends a capability with id <paramref name="id"/> and <paramref name="body"/> (the
    /// bytes after the id and next pointer) to the capability list; returns its offset.</summary>
    protected byte AddCapability(byte id, ReadOnlySpan<byte> body)
    {
        byte at = _nextCapabilityOffset;
        if (at + 2 + body.Length > ConfigSize) throw new InvalidOperationException("configuration space is full");
        _config[at] = id;
        _config[at + 1] = 0;
        body.CopyTo(_config.AsSpan(at + 2));
        if (_lastCapability == 0) _config[0x34] = at;
        else _config[_lastCapability + 1] = at;
        W16(0x06, (ushort)(R16(0x06) | StatusCapabilities));
        _lastCapability = at;
        _nextCapabilityOffset = (byte)((at + 2 + body.Length + 3) & ~3);
        return at;
    }

    public PciBarKind BarKind(int index) => _barKind[index];
    public uint BarSize(int index) => _barSize[index];

    /// <summary>Where BAR <paramref name="index"/> is now (the port or the address).</summary>
    public uint BarAddress(int index) => R32(0x10 + 4 * index) & (_barKind[index] == PciBarKind.Io ? ~3u : ~15u);

    /// <summary>The BAR decodes: declared, its decode bit on, and not mid-sizing.</summary>
    private bool BarLive(int index, PciBarKind kind)
    {
        if (_barKind[index] != kind) return false;
        ushort bit = kind == PciBarKind.Io ? CommandIo : CommandMemory;
        if ((Command & bit) == 0) return false;
        uint a = BarAddress(index);
        return a != 0 && a != (~(_barSize[index] - 1) & (kind == PciBarKind.Io ? 0xFFFFu : ~15u));
    }

    /// <summary>Which I/O BAR decodes <paramref name="port"/>, or -1.</summary>
    internal int IoBarFor(ushort port)
    {
        for (int i = 0; i < 6; i++)
            if (BarLive(i, PciBarKind.Io) && port >= BarAddress(i) && port - BarAddress(i) < _barSize[i]) return i;
        return -1;
    }

    /// <summary>Which memory BAR decodes <paramref name="address"/>, or -1.</summary>
    internal int MemoryBarFor(ulong address)
    {
        for (int i = 0; i < 6; i++)
            if (BarLive(i, PciBarKind.Memory32) && address >= BarAddress(i) && address - BarAddress(i) < _barSize[i]) return i;
        return -1;
    }

    /// <summary>A read of BAR <paramref name="bar"/>'s registers at <paramref name="offset"/> from its start.</summary>
    protected internal virtual ulong ReadBar(int bar, uint offset, int size) => size == 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1;
    protected internal virtual void WriteBar(int bar, uint offset, int size, ulong value) { }

    /// <summary>A configuration read of <paramref name="size"/> bytes at <paramref name="offset"/>
    /// (aligned to the size, within the 256 bytes).</summary>
    public uint ReadConfig(int offset, int size)
    {
        uint v = 0;
        for (int i = 0; i < size; i++) v |= (uint)_config[offset + i] << (8 * i);
        return v;
    }

    /// <summary>A configuration write (rule 1: only the writable bits change).</summary>
    public void WriteConfig(int offset, int size, uint value)
    {
        for (int i = 0; i < size; i++) WriteConfigByte(offset + i, (byte)(value >> (8 * i)));
        if (offset <= 0x05 && offset + size > 0x04) UpdateIntx();
    }

    private void WriteConfigByte(int at, byte b)
    {
        switch (at)
        {
            case 0x04: _config[at] = (byte)(b & (CommandIo | CommandMemory | CommandBusMaster)); break;
            case 0x05: _config[at] = (byte)(b & (CommandIntxDisable >> 8)); break;
            case 0x0C: case 0x0D: case 0x3C: _config[at] = b; break; // cache line size, latency timer, interrupt line
            case >= 0x10 and < 0x28:
            {
                int bar = (at - 0x10) / 4, shift = 8 * ((at - 0x10) % 4);
                if (_barKind[bar] == PciBarKind.None) break;
                uint writable = ~(_barSize[bar] - 1) & (_barKind[bar] == PciBarKind.Io ? 0xFFFCu : 0xFFFFFFF0u);
                uint old = R32(0x10 + 4 * bar);
                uint merged = (old & ~(0xFFu << shift)) | ((uint)b << shift);
                W32(0x10 + 4 * bar, (merged & writable) | (old & ~writable & 0xF));
                break;
            }
            default:
                WriteCapabilityByte(at, b);
                break;
        }
    }

    /// <summary>A write into the capability area (0x40 up); capabilities with writable fields override.</summary>
    protected virtual void WriteCapabilityByte(int at, byte b) { }

    protected byte ConfigByte(int at) => _config[at];
    protected void SetConfigByte(int at, byte b) => _config[at] = b;

    /// <summary>Drives the function's INTx line (level): the status register's interrupt bit follows
    /// it, and the router sees it unless the command register disables INTx.</summary>
    protected void SetIntx(bool asserted)
    {
        _intxAsserted = asserted;
        W16(0x06, (ushort)(asserted ? R16(0x06) | StatusInterrupt : R16(0x06) & ~StatusInterrupt));
        UpdateIntx();
    }

    private bool _lineUp;
    private int _lineGsi = -1;

    private void UpdateIntx()
    {
        bool up = _intxAsserted && (Command & CommandIntxDisable) == 0 && InterruptLine != 0xFF;
        int gsi = InterruptLine;
        var router = Bus?.Router;
        if (router == null) return;
        if (_lineUp && (!up || gsi != _lineGsi)) router.SetLevel(_lineGsi, false);
        if (up && (!_lineUp || gsi != _lineGsi)) router.SetLevel(gsi, true);
        _lineUp = up;
        _lineGsi = up ? gsi : -1;
    }

    internal void PlaceBars(ref uint nextIo, ref uint nextMemory, uint memoryLimit)
    {
        ushort command = Command;
        for (int i = 0; i < 6; i++)
        {
            uint size = _barSize[i];
            if (_barKind[i] == PciBarKind.Io)
            {
                nextIo = (nextIo + size - 1) & ~(size - 1);
                W32(0x10 + 4 * i, nextIo | 1);
                nextIo += size;
                command |= CommandIo;
            }
            else if (_barKind[i] == PciBarKind.Memory32)
            {
                nextMemory = (nextMemory + size - 1) & ~(size - 1);
                if ((ulong)nextMemory + size > memoryLimit) throw new InvalidOperationException($"the PCI hole is full: BAR {i} of {size} bytes does not fit");
                W32(0x10 + 4 * i, nextMemory);
                nextMemory += size;
                command |= CommandMemory;
            }
        }
        W16(0x04, command);
    }

    internal void SetLine(byte irq) => _config[0x3C] = irq;

    private ushort R16(int at) => BinaryPrimitives.ReadUInt16LittleEndian(_config.AsSpan(at));
    private uint R32(int at) => BinaryPrimitives.ReadUInt32LittleEndian(_config.AsSpan(at));
    private void W16(int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(at), v);
    private void W32(int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(at), v);
}

/// <summary>The host bridge at 00:00.0: Intel's 440FX (8086:1237), as bhyve and QEMU's pc machine
/// show it. It decodes nothing of its own.</summary>
public sealed class PciHostBridge : PciFunction
{
    public PciHostBridge() : base(0x8086, 0x1237, 0x06_00_00, revision: 2) { }
}

/// <summary>Bus 0 and configuration mechanism #1 (see the theory statement above); an I/O port
/// and MMIO device of the Vm (Platform.cs) that routes BAR accesses to the functions.</summary>
public sealed class PciBus : IPortDevice, IMmioDevice
{
    public const ushort ConfigAddressPort = 0xCF8, ConfigDataPort = 0xCFC;
    public const uint PciMemoryBase = 0xC000_0000, PciMemoryLimit = 0xD000_0000;
    public const uint PciIoBase = 0xC000, PciIoLimit = 0x1_0000;
    public const int MaxSlots = 32;

    private readonly PciFunction?[] _slots = new PciFunction?[MaxSlots];
    private readonly Func<IInterruptRouter?> _router;
    private uint _address;
    private uint _nextIo = PciIoBase, _nextMemory = PciMemoryBase;

    /// <param name="router">Where INTx lines go (read at each change: the platform may set it late).</param>
    public PciBus(Func<IInterruptRouter?> router)
    {
        _router = router;
        Add(new PciHostBridge());
    }

    public IInterruptRouter? Router => _router();

    /// <summary>The function in <paramref name="slot"/>, or null.</summary>
    public PciFunction? this[int slot] => slot is >= 0 and < MaxSlots ? _slots[slot] : null;

    /// <summary>Puts <paramref name="function"/> in the next free slot, places its BARs and gives it
    /// an interrupt line (10 for even slots, 11 for odd); returns the slot.</summary>
    public int Add(PciFunction function)
    {
        int slot = Array.IndexOf(_slots, null);
        if (slot < 0) throw new InvalidOperationException($"bus 0 has no free slot of {MaxSlots}");
        function.PlaceBars(ref _nextIo, ref _nextMemory, PciMemoryLimit);
        if (_nextIo > PciIoLimit) throw new InvalidOperationException("the PCI I/O space is full");
        if (function.InterruptPin != 0) function.SetLine((byte)(slot % 2 == 0 ? 10 : 11));
        function.Bus = this;
        function.Slot = slot;
        _slots[slot] = function;
        return slot;
    }

    public bool OwnsPort(ushort port)
    {
        if (port >= ConfigAddressPort && port <= ConfigDataPort + 3) return true;
        return FindIo(port, out _, out _);
    }

    public ulong ReadPort(ushort port, int size)
    {
        if (port >= ConfigAddressPort && port < ConfigDataPort)
            return port == ConfigAddressPort && size == 4 ? _address : Ones(size);
        if (port >= ConfigDataPort && port <= ConfigDataPort + 3)
        {
            var f = Selected(port, size, out int offset);
            return f == null ? Ones(size) : f.ReadConfig(offset, size);
        }
        if (FindIo(port, out var fn, out int bar)) return fn!.ReadBar(bar, port - fn.BarAddress(bar), size);
        return Ones(size);
    }

    public void WritePort(ushort port, int size, ulong value)
    {
        if (port >= ConfigAddressPort && port < ConfigDataPort)
        {
            if (port == ConfigAddressPort && size == 4) _address = (uint)value & 0x80FF_FFFC;
            return;
        }
        if (port >= ConfigDataPort && port <= ConfigDataPort + 3)
        {
            Selected(port, size, out int offset)?.WriteConfig(offset, size, (uint)value);
            return;
        }
        if (FindIo(port, out var fn, out int bar)) fn!.WriteBar(bar, port - fn.BarAddress(bar), size, value);
    }

    public bool OwnsAddress(ulong address) => FindMemory(address, out _, out _);

    public ulong ReadMmio(ulong address, int size)
        => FindMemory(address, out var fn, out int bar) ? fn!.ReadBar(bar, (uint)(address - fn.BarAddress(bar)), size) : Ones(size);

    public void WriteMmio(ulong address, int size, ulong value)
    {
        if (FindMemory(address, out var fn, out int bar)) fn!.WriteBar(bar, (uint)(address - fn.BarAddress(bar)), size, value);
    }

    /// <summary>The function and register a data-port access at <paramref name="port"/> reaches:
    /// enabled, bus 0, function 0 of a present slot, and not crossing the dword.</summary>
    private PciFunction? Selected(ushort port, int size, out int offset)
    {
        int within = port - ConfigDataPort;
        offset = (int)(_address & 0xFC) + within;
        if ((_address & 0x8000_0000) == 0 || ((_address >> 16) & 0xFF) != 0 || ((_address >> 8) & 7) != 0) return null;
        if (within + size > 4 || offset % size != 0) return null;
        return _slots[(_address >> 11) & 0x1F];
    }

    private bool FindIo(ushort port, out PciFunction? function, out int bar)
    {
        foreach (var f in _slots)
        {
            if (f == null) continue;
            bar = f.IoBarFor(port);
            if (bar >= 0) { function = f; return true; }
        }
        function = null;
        bar = -1;
        return false;
    }

    private bool FindMemory(ulong address, out PciFunction? function, out int bar)
    {
        if (address >= PciMemoryBase && address < PciMemoryLimit)
        {
            foreach (var f in _slots)
            {
                if (f == null) continue;
                bar = f.MemoryBarFor(address);
                if (bar >= 0) { function = f; return true; }
            }
        }
        function = null;
        bar = -1;
        return false;
    }

    private static ulong Ones(int size) => size >= 8 ? ulong.MaxValue : (1UL << (8 * size)) - 1;
}
