namespace SmartOS.Virt.Devices;

/// <summary>
/// The PC's CMOS real-time clock (a Motorola MC146818A) at ports 0x70 (index, bit 7 masks NMI) and
/// 0x71 (data): the time and date registers (0x00-0x09, the century at 0x32), the alarm, status
/// registers A-D and the rest of the 128 bytes as battery-backed RAM.
///
/// The clock reads the host's clock through guest time: seconds = (epoch + guest time) / 1 s, where
/// the epoch is the host's WallClock epoch (0 in virtual time: 1970-01-01), so a boot is
/// deterministic; a guest that sets the time keeps its offset from there. Registers are BCD or
/// binary and the hour 24- or 12-hour as register B says. UIP (A bit 7) is set for the 244 us
/// before each second's update, as on the chip. Register C reports the update-ended, alarm and
/// periodic flags, raises IRQ 8 (IRQF) for those enabled in B, and is cleared by reading it.
/// </summary>
public sealed class CmosRtc : IPortDevice, IPlatformTimer
{
    public const int Irq = 8;
    private const long Second = 1_000_000_000, UipWindow = 244_000;
    private const byte BSet = 0x80, BPie = 0x40, BAie = 0x20, BUie = 0x10, BBinary = 0x04, B24Hour = 0x02;
    private const byte CIrqf = 0x80, CPf = 0x40, CAf = 0x20, CUf = 0x10;

    private readonly PlatformClock _clock;
    private readonly long _epoch;
    private readonly Action<int, bool> _setIrq;
    private readonly byte[] _ram = new byte[128];
    private byte _index, _a = 0x26, _b = B24Hour, _c;
    private long _offsetSeconds;          // the guest's setting of the time, relative to the host's
    private long _lastSecond, _lastPeriodic, _deadline = -1;
    private bool _irq;

    /// <param name="epoch">Unix time in ns at guest time 0 (kernel WallClock.Epoch)</param>
    /// <param name="setIrq">drives an ISA IRQ line</param>
    public CmosRtc(PlatformClock clock, long epoch, Action<int, bool> setIrq)
    {
        _clock = clock;
        _epoch = epoch;
        _setIrq = setIrq;
        long now = clock.Now;
        _lastSecond = SecondsAt(now);
        _lastPeriodic = PeriodicTicks(now);
    }

    /// <summary>Whether NMIs are masked (port 0x70 bit 7).</summary>
    public bool NmiMasked { get; private set; }
    /// <summary>Register A writes that chose a divider other than 32.768 kHz (the clock runs on).</summary>
    public long UnsupportedDividers { get; private set; }

    // ---- time --------------------------------------------------------------------------------------

    private long SecondsAt(long now) => Math.DivRem(_epoch + now, Second, out long r) - (r < 0 ? 1 : 0);

    private DateTime TimeAt(long now) => DateTime.UnixEpoch.AddSeconds(SecondsAt(now) + _offsetSeconds);

    private static readonly int[] s_timeFields = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32];

    /// <summary>Periodic interrupt rate (A bits 3:0) as a period in 1/32768 s units, or 0 for none.</summary>
    private long PeriodUnits
    {
        get
        {
            int rate = _a & 0xF;
            return rate switch { 0 => 0, 1 => 128, 2 => 256, _ => 1L << (rate - 1) };
        }
    }

    private long PeriodicTicks(long now)
    {
        long units = PeriodUnits;
        return units == 0 ? 0 : (long)((Int128)(_epoch + now) * 32768 / Second / units);
    }

    private long PeriodicTime(long tick)
        => (long)(((Int128)tick * PeriodUnits * Second + 32767) / 32768) - _epoch;

    public long Deadline => _deadline;

    /// <summary>Sets the flags of register C for what happened up to <paramref name="now"/> (the
    /// update at each second, the alarm, the periodic flag); missed ones are merged, not replayed.</summary>
    public void Advance(long now)
    {
        long second = SecondsAt(now);
        if (second > _lastSecond && (_b & BSet) == 0)
        {
            _lastSecond = second;
            _c |= CUf;
            if (AlarmMatches(TimeAt(now))) _c |= CAf;
        }
        long periodic = PeriodicTicks(now);
        if (periodic > _lastPeriodic)
        {
            _lastPeriodic = periodic;
            if (PeriodUnits != 0) _c |= CPf;
        }
        UpdateIrq();
        Rearm(now);
    }

    private void Rearm(long now)
    {
        long d = -1;
        if ((_b & (BUie | BAie)) != 0 && (_b & BSet) == 0) d = (SecondsAt(now) + 1) * Second - _epoch;
        if ((_b & BPie) != 0 && PeriodUnits != 0)
        {
            long p = PeriodicTime(PeriodicTicks(now) + 1);
            if (d < 0 || p < d) d = p;
        }
        if (d == _deadline) return;
        _deadline = d;
        _clock.NoteDeadline();
    }

    private void UpdateIrq()
    {
        bool irq = (_c & _b & (CPf | CAf | CUf)) != 0;
        if (irq) _c |= CIrqf;
        if (irq == _irq) return;
        _irq = irq;
        _setIrq(Irq, irq);
    }

    private bool AlarmMatches(DateTime t)
        => AlarmField(_ram[1], t.Second) && AlarmField(_ram[3], t.Minute) && AlarmField(_ram[5], t.Hour, hour: true);

    private bool AlarmField(byte alarm, int value, bool hour = false)
        => alarm >= 0xC0 || alarm == Encode(value, hour);

    // ---- encoding ------------------------------------------------------------------------------------

    private bool Binary => (_b & BBinary) != 0;

    private byte Encode(int value, bool hour = false)
    {
        bool pm = false;
        if (hour && (_b & B24Hour) == 0)
        {
            pm = value >= 12;
            value %= 12;
            if (value == 0) value = 12;
        }
        byte b = Binary ? (byte)value : (byte)(value / 10 << 4 | value % 10);
        return pm ? (byte)(b | 0x80) : b;
    }

    private int Decode(byte b, bool hour = false)
    {
        bool pm = hour && (_b & B24Hour) == 0 && (b & 0x80) != 0;
        if (hour && (_b & B24Hour) == 0) b &= 0x7F;
        int v = Binary ? b : (b >> 4) * 10 + (b & 0xF);
        if (hour && (_b & B24Hour) == 0) v = v % 12 + (pm ? 12 : 0);
        return v;
    }

    // ---- ports ---------------------------------------------------------------------------------------

    public bool OwnsPort(ushort port) => port is 0x70 or 0x71;

    public ulong ReadPort(ushort port, int size)
    {
        if (port == 0x70) return 0xFF; // the index register is write-only
        long now = _clock.Now;
        return ReadRegister(_index, now);
    }

    public void WritePort(ushort port, int size, ulong value)
    {
        byte b = (byte)value;
        if (port == 0x70)
        {
            _index = (byte)(b & 0x7F);
            NmiMasked = (b & 0x80) != 0;
            return;
        }
        WriteRegister(_index, b, _clock.Now);
    }

    public byte ReadRegister(int index, long now)
    {
        if ((_b & BSet) != 0 && Array.IndexOf(s_timeFields, index) >= 0) return _ram[index];
        var t = TimeAt(now);
        switch (index)
        {
            case 0x00: return Encode(t.Second);
            case 0x02: return Encode(t.Minute);
            case 0x04: return Encode(t.Hour, hour: true);
            case 0x06: return (byte)((int)t.DayOfWeek + 1);
            case 0x07: return Encode(t.Day);
            case 0x08: return Encode(t.Month);
            case 0x09: return Encode(t.Year % 100);
            case 0x32: return Encode(t.Year / 100);
            case 0x0A:
            {
                long intoSecond = _epoch + now - SecondsAt(now) * Second;
                bool uip = (_b & BSet) == 0 && intoSecond >= Second - UipWindow;
                return (byte)(_a | (uip ? 0x80 : 0));
            }
            case 0x0B: return _b;
            case 0x0C:
            {
                Advance(now);
                byte c = _c;
                _c = 0;
                UpdateIrq();
                return c;
            }
            case 0x0D: return 0x80; // VRT: the battery is good
            default: return _ram[index];
        }
    }

    public void WriteRegister(int index, byte value, long now)
    {
        switch (index)
        {
            case 0x00 or 0x02 or 0x04 or 0x06 or 0x07 or 0x08 or 0x09 or 0x32:
                SetTimeField(index, value, now);
                break;
            case 0x0A:
                if ((value & 0x70) != 0x20) UnsupportedDividers++;
                _a = (byte)(value & 0x7F);
                _lastPeriodic = PeriodicTicks(now);
                Rearm(now);
                break;
            case 0x0B:
            {
                bool wasSet = (_b & BSet) != 0;
                if (!wasSet && (value & BSet) != 0) HoldTime(now);
                // The time fields are held in the encoding they were read in: a format change under
                // SET applies to what the guest writes next, as on the chip.
                _b = (byte)(value & ((value & BSet) != 0 ? ~BUie : 0xFF)); // SET clears UIE (datasheet)
                if (wasSet && (_b & BSet) == 0)
                {
                    ReleaseTime(now);
                    _lastSecond = SecondsAt(now);
                }
                UpdateIrq();
                Rearm(now);
                break;
            }
            case 0x0C or 0x0D: break; // read-only
            default: _ram[index] = value; break;
        }
    }

    private void SetTimeField(int index, byte value, long now)
    {
        if ((_b & BSet) != 0) { _ram[index] = value; return; }
        // Without SET the write takes effect at once: as if SET had held the clock around it.
        HoldTime(now);
        _ram[index] = value;
        ReleaseTime(now);
    }

    /// <summary>SET: the time fields stop in RAM, where the guest rewrites them.</summary>
    private void HoldTime(long now)
    {
        foreach (int index in s_timeFields) _ram[index] = ReadRegister(index, now);
    }

    /// <summary>SET cleared: the clock runs on from the fields. A date no calendar has (the
    /// 31st of February) leaves the clock where it was and is counted.</summary>
    private void ReleaseTime(long now)
    {
        int year = Decode(_ram[0x32]) * 100 + Decode(_ram[0x09]), month = Decode(_ram[0x08]), day = Decode(_ram[0x07]);
        int hour = Decode(_ram[0x04], hour: true), minute = Decode(_ram[0x02]), second = Decode(_ram[0x00]);
        if (year < 1 || year > 9999 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)
            || hour > 23 || minute > 59 || second > 59)
        {
            InvalidTimes++;
            return;
        }
        var set = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc);
        _offsetSeconds = (long)(set - DateTime.UnixEpoch).TotalSeconds - SecondsAt(now);
    }

    /// <summary>Times set that no calendar has (the clock kept its time).</summary>
    public long InvalidTimes { get; private set; }
}
