namespace SmartOS.Virt.Devices;

/// <summary>
/// The PC's two 8259A interrupt controllers (Intel's 8259A datasheet): the master at 0x20/0x21 with
/// IRQs 0-7, the slave at 0xA0/0xA1 with IRQs 8-15, cascaded on the master's IRQ2, and the edge/level
/// control registers (ELCR, 0x4D0/0x4D1) of the PC's chipset, which make an IRQ level-triggered.
///
/// Each chip keeps IRR (requests), ISR (in service) and IMR (masks), is programmed by ICW1-ICW4
/// (vector base, cascade, auto-EOI, special fully nested mode) and commanded by OCW2 (specific and
/// non-specific EOI, rotation, set priority) and OCW3 (read IRR or ISR, poll, special mask mode).
/// An edge-triggered request is latched in IRR on a rising edge and cleared by INTA; a level one
/// follows its line. The master's INT output (<see cref="Output"/>) reaches the CPU through the local
/// APIC's LINT0 in ExtINT mode (virtual-wire mode, LocalApic.cs).
/// </summary>
public sealed class Pic8259Pair : IPortDevice
{
    private readonly Chip _master = new(0xF8), _slave = new(0xDE);

    /// <summary>The master's INT output changed (the local APIC re-evaluates what is pending).</summary>
    public event Action? OutputChanged;

    /// <summary>The master's INT line: an unmasked request outranks everything in service.</summary>
    public bool Output { get; private set; }

    /// <summary>Acknowledged interrupts that found no request (the spurious IRQ 7 or 15).</summary>
    public long Spurious { get; private set; }

    /// <summary>Drives ISA IRQ <paramref name="irq"/> (0-15; 2 is the cascade and is not a device line).</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq > 15 || irq == 2) return;
        if (irq < 8) _master.SetLine(irq, level);
        else _slave.SetLine(irq - 8, level);
        Update();
    }

    /// <summary>INTA: the vector of the highest-priority request, which goes in service.</summary>
    public int Acknowledge()
    {
        int vector;
        int irq = _master.PendingIrq();
        if (irq < 0)
        {
            Spurious++;
            vector = _master.VectorBase + 7;
        }
        else
        {
            _master.Acknowledge(irq);
            if (irq == 2)
            {
                int irq2 = _slave.PendingIrq();
                if (irq2 >= 0) _slave.Acknowledge(irq2);
                else { irq2 = 7; Spurious++; }
                vector = _slave.VectorBase + irq2;
            }
            else vector = _master.VectorBase + irq;
        }
        Update();
        return vector;
    }

    private void Update()
    {
        if (_slave.PendingIrq() >= 0)
        {
            // The slave's INT is wired to the master's IR2: an edge there.
            _master.SetLine(2, true);
            _master.SetLine(2, false);
        }
        bool output = _master.PendingIrq() >= 0;
        if (output == Output) return;
        Output = output;
        OutputChanged?.Invoke();
    }

    // ---- ports -------------------------------------------------------------------------------------

    public bool OwnsPort(ushort port) => port is 0x20 or 0x21 or 0xA0 or 0xA1 or 0x4D0 or 0x4D1;

    public ulong ReadPort(ushort port, int size)
    {
        ulong value = port switch
        {
            0x20 => ReadCommand(_master, false),
            0x21 => _master.Imr,
            0xA0 => ReadCommand(_slave, true),
            0xA1 => _slave.Imr,
            0x4D0 => _master.Elcr,
            _ => _slave.Elcr,
        };
        if (size == 2 && port is 0x4D0) value |= (ulong)_slave.Elcr << 8;
        return value;
    }

    public void WritePort(ushort port, int size, ulong value)
    {
        byte b = (byte)value;
        switch (port)
        {
            case 0x20: _master.WriteCommand(b); break;
            case 0x21: _master.WriteData(b); break;
            case 0xA0: _slave.WriteCommand(b); break;
            case 0xA1: _slave.WriteData(b); break;
            case 0x4D0:
                _master.WriteElcr(b);
                if (size == 2) _slave.WriteElcr((byte)(value >> 8));
                break;
            case 0x4D1: _slave.WriteElcr(b); break;
        }
        Update();
    }

    private byte ReadCommand(Chip chip, bool isSlave)
    {
        if (!chip.Polling) return chip.ReadIsr ? chip.Isr : chip.Irr;
        // Poll mode (OCW3 P): the read acknowledges the highest request and returns 0x80 | its level.
        chip.Polling = false;
        int irq = chip.PendingIrq();
        if (irq < 0) return 0;
        chip.Acknowledge(irq);
        if (isSlave) _master.ClearCascadeRequest();
        Update();
        return (byte)(0x80 | irq);
    }

    /// <summary>The IRR, ISR and IMR of both chips, master in the low byte (for tests and `info`).</summary>
    public (ushort Irr, ushort Isr, ushort Imr) Registers =>
        ((ushort)(_master.Irr | _slave.Irr << 8), (ushort)(_master.Isr | _slave.Isr << 8), (ushort)(_master.Imr | _slave.Imr << 8));

    /// <summary>One 8259A.</summary>
    private sealed class Chip(byte elcrMask)
    {
        private readonly byte _elcrMask = elcrMask;
        private byte _lines;         // the input lines as last driven (the edge-sense latch)
        private int _priorityAdd;    // the IRQ with the highest priority (rotation)
        private int _initStep;       // 0 ready; 1, 2, 3 waiting for ICW2, ICW3, ICW4
        private bool _needIcw4, _single, _levelMode, _autoEoi, _rotateOnAutoEoi, _specialMask, _fullyNested;

        public byte Irr, Isr, Imr, Elcr;
        public int VectorBase;
        public bool ReadIsr, Polling;

        private bool IsLevel(int irq) => _levelMode || (Elcr & (1 << irq)) != 0;

        public void SetLine(int irq, bool level)
        {
            byte bit = (byte)(1 << irq);
            if (IsLevel(irq))
            {
                if (level) Irr |= bit; else Irr &= (byte)~bit;
            }
            else if (level && (_lines & bit) == 0) Irr |= bit;
            if (level) _lines |= bit; else _lines &= (byte)~bit;
        }

        public void WriteElcr(byte value)
        {
            Elcr = (byte)(value & _elcrMask);
            for (int irq = 0; irq < 8; irq++)
                if (IsLevel(irq)) SetLine(irq, (_lines & (1 << irq)) != 0);
        }

        /// <summary>0-7 in rotation order from <see cref="_priorityAdd"/>, or 8 for none.</summary>
        private int Priority(int bits)
        {
            if (bits == 0) return 8;
            int p = 0;
            while ((bits & (1 << ((p + _priorityAdd) & 7))) == 0) p++;
            return p;
        }

        /// <summary>The request INT stands for, or -1.</summary>
        public int PendingIrq()
        {
            int p = Priority(Irr & ~Imr);
            if (p == 8) return -1;
            int inService = Isr;
            if (_specialMask) inService &= ~Imr;       // special mask mode: masked levels do not block
            if (_fullyNested && IsMaster) inService &= ~(1 << 2); // the slave may nest
            return p < Priority(inService) ? (p + _priorityAdd) & 7 : -1;
        }

        private bool IsMaster => _elcrMask == 0xF8;

        public void Acknowledge(int irq)
        {
            byte bit = (byte)(1 << irq);
            if (_autoEoi)
            {
                if (_rotateOnAutoEoi) _priorityAdd = (irq + 1) & 7;
            }
            else Isr |= bit;
            if (!IsLevel(irq)) Irr &= (byte)~bit;
        }

        public void ClearCascadeRequest() => Irr &= unchecked((byte)~(1 << 2));

        public void WriteCommand(byte value)
        {
            if ((value & 0x10) != 0)
            {
                // ICW1: initialisation resets the chip and waits for ICW2 (and ICW3, ICW4 as told).
                Irr = 0;
                Isr = 0;
                Imr = 0;
                _priorityAdd = 0;
                ReadIsr = Polling = _specialMask = _autoEoi = _rotateOnAutoEoi = _fullyNested = false;
                _needIcw4 = (value & 1) != 0;
                _single = (value & 2) != 0;
                _levelMode = (value & 8) != 0;
                for (int irq = 0; irq < 8; irq++)
                    if (IsLevel(irq) && (_lines & (1 << irq)) != 0) Irr |= (byte)(1 << irq);
                _initStep = 1;
                return;
            }
            if ((value & 0x08) != 0)
            {
                // OCW3
                if ((value & 4) != 0) Polling = true;
                if ((value & 2) != 0) ReadIsr = (value & 1) != 0;
                if ((value & 0x40) != 0) _specialMask = (value & 0x20) != 0;
                return;
            }
            // OCW2
            int command = value >> 5;
            switch (command)
            {
                case 0: _rotateOnAutoEoi = false; break;
                case 4: _rotateOnAutoEoi = true; break;
                case 1:
                case 5:
                {
                    int p = Priority(Isr);
                    if (p == 8) break;
                    int irq = (p + _priorityAdd) & 7;
                    Isr &= (byte)~(1 << irq);
                    if (command == 5) _priorityAdd = (irq + 1) & 7;
                    break;
                }
                case 3: Isr &= (byte)~(1 << (value & 7)); break;
                case 7:
                    Isr &= (byte)~(1 << (value & 7));
                    _priorityAdd = ((value & 7) + 1) & 7;
                    break;
                case 6: _priorityAdd = ((value & 7) + 1) & 7; break;
            }
        }

        public void WriteData(byte value)
        {
            switch (_initStep)
            {
                case 0: Imr = value; break;
                case 1:
                    VectorBase = value & 0xF8;
                    _initStep = _single ? (_needIcw4 ? 3 : 0) : 2;
                    break;
                case 2: _initStep = _needIcw4 ? 3 : 0; break; // ICW3: the cascade is wired, not chosen
                default:
                    _fullyNested = (value & 0x10) != 0;
                    _autoEoi = (value & 2) != 0;
                    _initStep = 0;
                    break;
            }
        }
    }
}
