namespace SmartOS.Virt.Devices;

/// <summary>
/// The 8254 programmable interval timer (Intel's 8254 datasheet) at ports 0x40-0x43, and the PC's
/// system control port B (0x61) with channel 2's gate and output. Three 16-bit down-counters at
/// 1.193182 MHz; channel 0's OUT is ISA IRQ 0, channel 2's gate and OUT are bits 0 and 5 of port
/// 0x61 (Linux calibrates the TSC by waiting for channel 2 in mode 0 there).
///
/// The counters are not stepped: a channel keeps when it started counting and its count, and its
/// value and OUT at any guest time are computed from the number of input clocks since then. So a
/// read is exact at the instruction, and the only scheduled work is channel 0's next rising edge of
/// OUT (<see cref="Deadline"/>). Modes 0-5, binary and BCD counting, counter latch, read-back
/// (count and status), and the LSB/MSB/both access modes. Channels 0 and 1 have their gates tied
/// high; in modes 1 and 5 they therefore never trigger, as on a PC.
///
/// A periodic channel 0 faster than <see cref="LocalApic.MinPeriodicNs"/> raises IRQ 0 at that rate
/// (KVM's min_timer_period_us); its count still reads at the programmed rate.
/// </summary>
public sealed class Pit8254 : IPortDevice, IPlatformTimer
{
    public const long FrequencyHz = 1_193_182;
    public const ushort Port61 = 0x61;

    private readonly PlatformClock _clock;
    private readonly Channel[] _channels = new Channel[3];
    private readonly Action<int> _pulse;
    private byte _port61;
    private long _deadline = -1;

    /// <param name="pulse">raises an edge on an ISA IRQ (channel 0 is IRQ 0)</param>
    public Pit8254(PlatformClock clock, Action<int> pulse)
    {
        _clock = clock;
        _pulse = pulse;
        for (int i = 0; i < 3; i++) _channels[i] = new Channel(i != 2);
    }

    /// <summary>Rising edges of channel 0's OUT (IRQ 0), missed periods of a late poll included.</summary>
    public long Irq0Edges { get; private set; }
    /// <summary>Periodic channel 0 programs held to the minimum period.</summary>
    public long PeriodsClamped { get; private set; }

    public long Deadline => _deadline;

    public void Advance(long now)
    {
        var ch = _channels[0];
        if (_deadline < 0 || now < _deadline) return;
        long edges = ch.TakeEdges(now, out long next);
        Irq0Edges += edges;
        _deadline = next;
        if (edges > 0) _pulse(0);
    }

    private void Rearm()
    {
        var ch = _channels[0];
        long next = ch.NextEdgeTime(_clock.Now, out bool clamped);
        if (clamped) PeriodsClamped++;
        _deadline = next;
        _clock.NoteDeadline();
    }

    // ---- ports ---------------------------------------------------------------------------------------

    public bool OwnsPort(ushort port) => port is >= 0x40 and <= 0x43 or Port61;

    public ulong ReadPort(ushort port, int size)
    {
        long now = _clock.Now;
        if (port == Port61)
        {
            // Bit 4 toggles with DRAM refresh (every 15.085 us); bit 5 is channel 2's OUT.
            bool refresh = (now / 15_085) % 2 == 1;
            return (uint)(_port61 & 0x0F) | (refresh ? 0x10u : 0u) | (_channels[2].Out(now) ? 0x20u : 0u);
        }
        if (port == 0x43) return 0xFF; // the control word register is write-only
        return _channels[port - 0x40].ReadByte(now);
    }

    public void WritePort(ushort port, int size, ulong value)
    {
        long now = _clock.Now;
        byte b = (byte)value;
        if (port == Port61)
        {
            _port61 = (byte)(b & 0x0F);
            _channels[2].SetGate((b & 1) != 0, now);
            return;
        }
        if (port == 0x43)
        {
            WriteControl(b, now);
            return;
        }
        int n = port - 0x40;
        if (_channels[n].WriteByte(b, now) && n == 0) Rearm();
    }

    private void WriteControl(byte b, long now)
    {
        int select = b >> 6;
        if (select == 3)
        {
            // Read-back: bit 5 clear latches the count, bit 4 clear the status, of the channels in bits 3:1.
            for (int i = 0; i < 3; i++)
            {
                if ((b & (2 << i)) == 0) continue;
                if ((b & 0x10) == 0) _channels[i].LatchStatus(now);
                if ((b & 0x20) == 0) _channels[i].LatchCount(now);
            }
            return;
        }
        var ch = _channels[select];
        if ((b & 0x30) == 0) { ch.LatchCount(now); return; }
        ch.Program(b);
        if (select == 0) Rearm();
    }

    /// <summary>One counter.</summary>
    private sealed class Channel(bool gateTiedHigh)
    {
        private int _access, _mode;           // RW bits (1 LSB, 2 MSB, 3 both), mode 0-5
        private bool _bcd, _gate = gateTiedHigh, _writeHigh, _readHigh, _nullCount;
        private byte _control, _lowWritten;
        private int _count;                   // the count in use (1..65536, or 1..10000 in BCD)
        private int _pendingCount;            // modes 2 and 3: a new count waits for the period to end
        private bool _loaded, _triggered, _frozen;
        private long _start, _frozenTicks;
        private int _latched = -1, _latchedStatus = -1;
        private bool _latchHighNext;

        private int Modulus => _bcd ? 10_000 : 65_536;

        private static long TicksBetween(long from, long to) => to <= from ? 0 : (long)((Int128)(to - from) * FrequencyHz / 1_000_000_000);
        private static long TimeOfTicks(long ticks) => (long)(((Int128)ticks * 1_000_000_000 + FrequencyHz - 1) / FrequencyHz);

        private bool Counting => _loaded && _gate && !_frozen && (_mode is not (1 or 5) || _triggered);

        private long Ticks(long now) => _frozen ? _frozenTicks : TicksBetween(_start, now);

        private bool Periodic => _mode is 2 or 3;

        /// <summary>Brings a pending count of a periodic mode into use once the period it waited for ended.</summary>
        private void Settle(long now)
        {
            if (_pendingCount == 0 || !Counting || Ticks(now) < _pendingAt) return;
            Restart(_start + TimeOfTicks(_pendingAt));
            _count = _pendingCount;
            _pendingCount = 0;
        }

        /// <summary>Counting starts afresh at <paramref name="at"/> (a load, a reload, a trigger).</summary>
        private void Restart(long at)
        {
            _start = at;
            _edgesTaken = 0;
            _frozen = false;
        }

        public void Program(byte control)
        {
            _control = (byte)(control & 0x3F);
            _access = (control >> 4) & 3;
            _mode = (control >> 1) & 7;
            if (_mode > 5) _mode -= 4;  // 6 and 7 are modes 2 and 3
            _bcd = (control & 1) != 0;
            _loaded = _triggered = _frozen = false;
            _pendingCount = 0;
            _writeHigh = _readHigh = false;
            _latched = _latchedStatus = -1;
            _nullCount = true;
        }

        /// <summary>A byte of a new count; returns true once the count is complete and loaded.</summary>
        public bool WriteByte(byte b, long now)
        {
            int raw;
            switch (_access)
            {
                case 1: raw = b; break;
                case 2: raw = b << 8; break;
                case 3:
                    if (!_writeHigh)
                    {
                        _lowWritten = b;
                        _writeHigh = true;
                        if (_mode == 0) _loaded = false; // mode 0: the first byte stops the count
                        return false;
                    }
                    _writeHigh = false;
                    raw = _lowWritten | b << 8;
                    break;
                default: return false;
            }
            int count = _bcd ? FromBcd(raw) : raw;
            if (count == 0) count = Modulus;
            Settle(now);
            if (Periodic && _loaded && Counting)
            {
                // Modes 2 and 3: the new count is used from the end of the current period (datasheet).
                _pendingCount = count;
                _pendingAt = (Ticks(now) / _count + 1) * _count;
            }
            else
            {
                _count = count;
                _loaded = true;
                Restart(now);
                if (!_gate && _mode is 0 or 2 or 3 or 4) { _frozen = true; _frozenTicks = 0; }
            }
            _nullCount = false;
            return true;
        }

        public void SetGate(bool gate, long now)
        {
            if (gate == _gate) return;
            Settle(now);
            _gate = gate;
            if (!_loaded) return;
            if (!gate)
            {
                if (_mode is 0 or 2 or 3 or 4) { _frozenTicks = TicksBetween(_start, now); _frozen = true; }
                return;
            }
            switch (_mode)
            {
                case 0 or 4:
                    // Counting resumes where it stopped.
                    _start = now - TimeOfTicks(_frozenTicks);
                    _frozen = false;
                    break;
                default:
                    // Modes 1, 5 trigger, and modes 2, 3 reload on the rising gate.
                    Restart(now);
                    _triggered = true;
                    break;
            }
        }

        public int Value(long now)
        {
            Settle(now);
            if (!_loaded || (_mode is 1 or 5 && !_triggered)) return _count & (Modulus - 1);
            long k = Ticks(now);
            switch (_mode)
            {
                case 2: return _count - (int)(k % _count);
                case 3:
                {
                    // The count drops by two a clock, from the (even) count down, once per half period.
                    int half = Math.Max(1, (_count + 1) / 2);
                    long phase = k % _count;
                    long inHalf = phase < half ? phase : phase - half;
                    long v = (_count - 2 * inHalf) & ~1L;
                    return v > 0 ? (int)v : 2;
                }
                default:
                    return (int)(((_count - k) % Modulus + Modulus) % Modulus);
            }
        }

        public bool Out(long now)
        {
            Settle(now);
            if (!_loaded) return _mode != 0;
            if (_mode is 1 or 5 && !_triggered) return true;
            long k = Ticks(now);
            return _mode switch
            {
                0 or 1 => k >= _count,
                2 => k % _count != _count - 1 || _count == 1,
                3 => k % _count < (_count + 1) / 2,
                _ => k != _count,
            };
        }

        /// <summary>The guest time of the next rising edge of OUT after <paramref name="now"/>, or -1.</summary>
        public long NextEdgeTime(long now, out bool clamped)
        {
            clamped = false;
            if (!Counting) return -1;
            long k = Ticks(now);
            long edge;
            if (Periodic)
            {
                long period = IrqPeriod(out clamped);
                edge = (k / period + 1) * period;
            }
            else
            {
                edge = _mode is 0 or 1 ? _count : _count + 1;
                if (k >= edge) return -1;
            }
            return _start + TimeOfTicks(edge);
        }

        /// <summary>Counts the rising edges up to <paramref name="now"/>; <paramref name="next"/> is the following one or -1.</summary>
        public long TakeEdges(long now, out long next)
        {
            next = -1;
            if (!Counting) return 0;
            long edges = 0;
            if (_pendingCount != 0 && Ticks(now) >= _pendingAt)
            {
                // The edges of the old count up to the end of its last period, then the new count.
                edges = _pendingAt / IrqPeriod(out _) - _edgesTaken;
                Settle(now);
            }
            long k = Ticks(now);
            if (Periodic)
            {
                long period = IrqPeriod(out _);
                edges += k / period - _edgesTaken;
                _edgesTaken = k / period;
                next = _start + TimeOfTicks((_edgesTaken + 1) * period);
                return edges;
            }
            long edge = _mode is 0 or 1 ? _count : _count + 1;
            if (k >= edge && _edgesTaken == 0) { _edgesTaken = 1; edges++; }
            return edges;
        }

        private long _edgesTaken, _pendingAt;

        /// <summary>The period of IRQ 0 in input clocks: the count, held to the minimum period.</summary>
        private long IrqPeriod(out bool clamped)
        {
            long min = (LocalApic.MinPeriodicNs * FrequencyHz + 999_999_999) / 1_000_000_000;
            clamped = _count < min;
            return clamped ? min : _count;
        }

        public void LatchCount(long now)
        {
            if (_latched >= 0) return; // a second latch before the read is ignored (datasheet)
            int v = Value(now);
            _latched = _bcd ? ToBcd(v) : v & 0xFFFF;
            _latchHighNext = false;
        }

        public void LatchStatus(long now)
        {
            if (_latchedStatus >= 0) return;
            _latchedStatus = (Out(now) ? 0x80 : 0) | (_nullCount ? 0x40 : 0) | _control;
        }

        public byte ReadByte(long now)
        {
            if (_latchedStatus >= 0)
            {
                byte s = (byte)_latchedStatus;
                _latchedStatus = -1;
                return s;
            }
            if (_latched >= 0) return ReadLatched();
            int v = Value(now);
            int raw = _bcd ? ToBcd(v) : v & 0xFFFF;
            switch (_access)
            {
                case 1: return (byte)raw;
                case 2: return (byte)(raw >> 8);
                default:
                    _readHigh = !_readHigh;
                    return _readHigh ? (byte)raw : (byte)(raw >> 8);
            }
        }

        private byte ReadLatched()
        {
            int v = _latched;
            switch (_access)
            {
                case 1: _latched = -1; return (byte)v;
                case 2: _latched = -1; return (byte)(v >> 8);
                default:
                    if (!_latchHighNext) { _latchHighNext = true; return (byte)v; }
                    _latched = -1;
                    return (byte)(v >> 8);
            }
        }

        private static int FromBcd(int raw) => (raw & 0xF) + ((raw >> 4) & 0xF) * 10 + ((raw >> 8) & 0xF) * 100 + ((raw >> 12) & 0xF) * 1000;
        private static int ToBcd(int v) => v % 10 | (v / 10 % 10) << 4 | (v / 100 % 10) << 8 | (v / 1000 % 10) << 12;
    }
}
