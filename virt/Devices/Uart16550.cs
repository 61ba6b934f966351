using System.Text;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A 16550 UART (COM1 at 0x3F8): the VM console. Transmitted bytes are captured; bytes handed to
/// <see cref="Input"/> are received by the guest. No FIFO timing: the transmitter is always empty
/// (LSR THRE|TEMT), so a polling driver never waits.
///
/// Interrupts (once <see cref="ConnectIrq"/> wired it, on a PC platform): IER enables received
/// data (bit 0), transmitter empty (bit 1), line status (bit 2) and modem status (bit 3); IIR names
/// the highest-priority cause (line status 0x06 > received data 0x04 > transmitter empty 0x02 >
/// modem status 0x00; 0x01 for none), with bits 7:6 set once FCR enabled the FIFOs. The
/// transmitter-empty cause is set when the guest enables it or a byte has gone out, and cleared by
/// a write to THR or by the IIR read that reports it. The line reaches the IRQ only while MCR OUT2
/// (bit 3) is set, as on a PC. A guest that never enables an interrupt sees the UART as before.
/// </summary>
public sealed class Uart16550
{
    public const ushort Com1 = 0x3F8;
    /// <summary>Console bytes kept; past this the oldest output is kept and later bytes are counted.</summary>
    public const int MaxCaptured = 1 << 20;

    private readonly List<byte> _output = new();
    private readonly Queue<byte> _input = new();
    private byte _ier, _lcr, _mcr, _scr, _dll = 1, _dlm;
    private bool _fifo, _thrEmptyCause, _irqLevel;
    private IInterruptRouter? _router;
    private int _irq;

    public Uart16550(ushort basePort = Com1) { BasePort = basePort; }

    public ushort BasePort { get; }
    public long BytesDropped { get; private set; }

    /// <summary>Raised for every byte the guest writes (a live console).</summary>
    public event Action<byte>? ByteWritten;

    /// <summary>The console output so far, as the guest wrote it (the first MaxCaptured bytes).</summary>
    public byte[] CapturedBytes() => _output.ToArray();

    /// <summary>The console output so far, as UTF-8 text.</summary>
    public string Text => Encoding.UTF8.GetString(_output.ToArray());

    /// <summary>Received bytes waiting for the guest; past this, input is dropped and counted (a
    /// 16550's overrun, with a larger FIFO: a pasted line fits).</summary>
    public const int MaxInput = 4096;

    /// <summary>Input bytes dropped because the guest did not read its receiver (<see cref="MaxInput"/>).</summary>
    public long InputDropped { get; private set; }

    /// <summary>Bytes received from the console's other end (a followed `vmadm console`).</summary>
    public void Input(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (_input.Count < MaxInput) _input.Enqueue(b);
            else InputDropped++;
        }
        UpdateIrq();
    }

    /// <summary>Wires the interrupt output to ISA IRQ <paramref name="irq"/> (COM1: 4) of <paramref name="router"/>.</summary>
    public void ConnectIrq(IInterruptRouter router, int irq = 4)
    {
        _router = router;
        _irq = irq;
        UpdateIrq();
    }

    /// <summary>The IIR's interrupt identification (bits 3:0), highest priority first.</summary>
    private byte InterruptId
    {
        get
        {
            if ((_ier & 1) != 0 && _input.Count > 0) return 0x04;
            if ((_ier & 2) != 0 && _thrEmptyCause) return 0x02;
            return 0x01; // line status and modem status never change here: no errors, fixed modem lines
        }
    }

    private void UpdateIrq()
    {
        if (_router == null) return;
        bool level = InterruptId != 0x01 && (_mcr & 0x08) != 0;
        if (level == _irqLevel) return;
        _irqLevel = level;
        _router.SetLevel(_irq, level);
    }

    private ulong ReadIir()
    {
        byte id = InterruptId;
        if (id == 0x02) { _thrEmptyCause = false; UpdateIrq(); } // reading the cause clears it
        return (_fifo ? 0xC0u : 0u) | id;
    }

    public bool Owns(ushort port) => port >= BasePort && port < BasePort + 8;

    public ulong Read(ushort port)
    {
        bool dlab = (_lcr & 0x80) != 0;
        switch (port - BasePort)
        {
            case 0: return dlab ? _dll : ReadReceiver();
            case 1: return dlab ? _dlm : _ier;
            case 2: return ReadIir();
            case 3: return _lcr;
            case 4: return _mcr;
            case 5: return 0x60u | (_input.Count > 0 ? 1u : 0u); // LSR: THRE | TEMT | DR
            case 6: return 0xB0;                     // MSR: DCD, DSR, CTS
            default: return _scr;
        }
    }

    private ulong ReadReceiver()
    {
        if (_input.Count == 0) return 0;
        byte b = _input.Dequeue();
        UpdateIrq();
        return b;
    }

    public void Write(ushort port, byte value)
    {
        bool dlab = (_lcr & 0x80) != 0;
        switch (port - BasePort)
        {
            case 0:
                if (dlab) { _dll = value; break; }
                // The byte leaves at once, so THR is empty again: the transmitter-empty cause is set anew.
                _thrEmptyCause = true;
                if ((_mcr & 0x10) != 0) _input.Enqueue(value); // loopback mode
                else
                {
                    if (_output.Count < MaxCaptured) _output.Add(value);
                    else BytesDropped++;
                    ByteWritten?.Invoke(value);
                }
                UpdateIrq();
                break;
            case 1:
                if (dlab) { _dlm = value; break; }
                if ((value & 2) != 0 && (_ier & 2) == 0) _thrEmptyCause = true; // enabling it with THR empty
                _ier = (byte)(value & 0x0F);
                UpdateIrq();
                break;
            case 2:
                _fifo = (value & 1) != 0;
                if ((value & 2) != 0) _input.Clear();
                UpdateIrq();
                break;
            case 3: _lcr = value; break;
            case 4: _mcr = value; UpdateIrq(); break;
            case 7: _scr = value; break;
        }
    }
}
