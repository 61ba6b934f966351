namespace SmartOS.Virt.Devices;

/// <summary>
/// The I/O APIC at 0xFEC00000, after Intel's 82093AA datasheet: an index register (IOREGSEL, +0x00)
/// and a data window (IOWIN, +0x10) over the ID (0x00), version (0x01: 0x11, 24 entries) and
/// arbitration (0x02) registers and 24 64-bit redirection entries (0x10 + 2n low, 0x11 + 2n high).
///
/// A pin's entry names a vector, a delivery mode, a destination, its polarity, and whether it is
/// edge- or level-triggered. An edge is delivered when it rises on an unmasked pin (an edge on a
/// masked pin is lost, as on the chip). A level is delivered while it is asserted and the entry's
/// remote IRR is clear; delivery sets remote IRR, and the local APIC's EOI of that vector clears it,
/// after which a line still asserted is delivered again. <see cref="SetLevel"/> takes the logical
/// level (asserted or not); the polarity bit is kept for the guest to read and the wiring (ACPI's
/// MADT) must agree with it.
///
/// An interrupt storm (a level line that never deasserts, EOIed and redelivered at once without end)
/// is bounded as KVM bounds it: after <see cref="StormLimit"/> successive EOI redeliveries of one
/// pin, the next is put off by <see cref="StormDelayNs"/> of guest time and counted.
/// </summary>
public sealed class IoApic : IMmioDevice, IPlatformTimer
{
    public const ulong DefaultBase = 0xFEC0_0000;
    public const int Pins = 24;
    public const uint Version = 0x0017_0011; // max redirection entry 23, version 0x11 (82093AA)
    public const int StormLimit = 10_000;
    public const long StormDelayNs = 10_000_000;

    private const ulong Masked = 1UL << 16, RemoteIrr = 1UL << 14, LevelTriggered = 1UL << 15, DeliveryStatus = 1UL << 12;
    private const ulong WritableBits = 0xFF00_0000_0001_AFFFUL; // all but delivery status and remote IRR

    private readonly LocalApic _lapic;
    private readonly ulong[] _entries = new ulong[Pins];
    private readonly bool[] _level = new bool[Pins];
    private readonly int[] _eoiRedeliveries = new int[Pins];
    private readonly long[] _delayedUntil = new long[Pins];
    private readonly PlatformClock _clock;
    private uint _select, _id;
    private long _deadline = -1;

    public IoApic(PlatformClock clock, LocalApic lapic, ulong baseAddress = DefaultBase)
    {
        _clock = clock;
        _lapic = lapic;
        BaseAddress = baseAddress;
        for (int i = 0; i < Pins; i++) { _entries[i] = Masked; _delayedUntil[i] = -1; }
        lapic.EoiBroadcast += Eoi;
    }

    public ulong BaseAddress { get; }
    /// <summary>Interrupts sent to the local APIC.</summary>
    public long Delivered { get; private set; }
    /// <summary>Redeliveries put off because a level line looked like a storm.</summary>
    public long StormDelays { get; private set; }

    /// <summary>The redirection entry of <paramref name="pin"/> (for tests and `info`).</summary>
    public ulong Entry(int pin) => _entries[pin];

    // ---- the lines ---------------------------------------------------------------------------------------

    /// <summary>Drives <paramref name="pin"/> (logical level: asserted or not).</summary>
    public void SetLevel(int pin, bool asserted)
    {
        if ((uint)pin >= Pins) return;
        bool rose = asserted && !_level[pin];
        _level[pin] = asserted;
        ulong e = _entries[pin];
        if ((e & LevelTriggered) != 0)
        {
            if (!asserted) _eoiRedeliveries[pin] = 0;
            if (asserted) Service(pin);
        }
        else if (rose && (e & Masked) == 0)
        {
            Deliver(pin, e);
        }
    }

    /// <summary>Sends a level-triggered pin's interrupt if it is asserted, unmasked and not in service.</summary>
    private void Service(int pin)
    {
        ulong e = _entries[pin];
        if (!_level[pin] || (e & (Masked | RemoteIrr)) != 0 || _delayedUntil[pin] >= 0) return;
        if ((e & LevelTriggered) != 0) _entries[pin] = e | RemoteIrr;
        Deliver(pin, e);
    }

    private void Deliver(int pin, ulong e)
    {
        Delivered++;
        _lapic.AcceptMessage((uint)(e >> 56), (e & 0x800) != 0, (int)(e >> 8) & 7, (int)(e & 0xFF), (e & LevelTriggered) != 0);
    }

    /// <summary>The local APIC retired level-triggered <paramref name="vector"/>.</summary>
    private void Eoi(int vector)
    {
        for (int pin = 0; pin < Pins; pin++)
        {
            ulong e = _entries[pin];
            if ((e & 0xFF) != (ulong)vector || (e & RemoteIrr) == 0) continue;
            _entries[pin] = e & ~RemoteIrr;
            if (!_level[pin] || (e & Masked) != 0) continue;
            if (++_eoiRedeliveries[pin] >= StormLimit)
            {
                // Real hardware does not redeliver in the same instant; neither do we, forever.
                _eoiRedeliveries[pin] = 0;
                StormDelays++;
                _delayedUntil[pin] = _clock.Now + StormDelayNs;
                UpdateDeadline();
                continue;
            }
            Service(pin);
        }
    }

    public long Deadline => _deadline;

    public void Advance(long now)
    {
        if (_deadline < 0 || now < _deadline) return;
        for (int pin = 0; pin < Pins; pin++)
        {
            if (_delayedUntil[pin] < 0 || _delayedUntil[pin] > now) continue;
            _delayedUntil[pin] = -1;
            Service(pin);
        }
        UpdateDeadline();
    }

    private void UpdateDeadline()
    {
        long d = -1;
        foreach (long t in _delayedUntil)
            if (t >= 0 && (d < 0 || t < d)) d = t;
        _deadline = d;
        _clock.NoteDeadline();
    }

    // ---- registers ---------------------------------------------------------------------------------------

    public bool OwnsAddress(ulong address) => address - BaseAddress < 0x1000;

    public ulong ReadMmio(ulong address, int size)
    {
        ulong offset = address - BaseAddress;
        uint value = offset switch
        {
            0x00 => _select,
            0x10 => ReadRegister(_select),
            _ => 0,
        };
        return size >= 4 ? value : value & ((1UL << (size * 8)) - 1);
    }

    public void WriteMmio(ulong address, int size, ulong value)
    {
        ulong offset = address - BaseAddress;
        if (offset == 0x00) _select = (uint)value & 0xFF;
        else if (offset == 0x10 && size == 4) WriteRegister(_select, (uint)value);
    }

    public uint ReadRegister(uint index)
    {
        switch (index)
        {
            case 0x00: return _id;
            case 0x01: return Version;
            case 0x02: return _id; // arbitration ID: the APIC ID after reset
            case >= 0x10 and < 0x10 + 2 * Pins:
            {
                ulong e = _entries[(index - 0x10) >> 1];
                return (index & 1) == 0 ? (uint)e : (uint)(e >> 32);
            }
            default: return 0xFFFF_FFFF;
        }
    }

    public void WriteRegister(uint index, uint value)
    {
        if (index == 0x00) { _id = value & 0x0F00_0000; return; }
        if (index < 0x10 || index >= 0x10 + 2 * Pins) return;
        int pin = (int)(index - 0x10) >> 1;
        ulong old = _entries[pin];
        ulong e = (index & 1) == 0
            ? (old & 0xFFFF_FFFF_0000_0000UL) | value
            : (old & 0xFFFF_FFFFUL) | ((ulong)value << 32);
        e = (e & WritableBits) | (old & RemoteIrr);
        if ((e & LevelTriggered) == 0) e &= ~RemoteIrr; // remote IRR is for level entries only
        _entries[pin] = e & ~DeliveryStatus;
        if ((e & LevelTriggered) != 0) Service(pin); // unmasking an asserted level line delivers it
    }
}
