using System.Text;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A 16550 UART (COM1 at 0x3F8): the VM console. Transmitted bytes are captured; bytes handed to
/// <see cref="Input"/> are received by the guest. No FIFO timing, no interrupts: the transmitter
/// is always empty (LSR THRE|TEMT), so a polling driver never waits.
/// </summary>
public sealed class Uart16550
{
    public const ushort Com1 = 0x3F8;
    /// <summary>Console bytes kept; past this the oldest output is kept and later bytes are counted.</summary>
    public const int MaxCaptured = 1 << 20;

    private readonly List<byte> _output = new();
    private readonly Queue<byte> _input = new();
    private byte _ier, _lcr, _mcr, _scr, _dll = 1, _dlm;

    public Uart16550(ushort basePort = Com1) { BasePort = basePort; }

    public ushort BasePort { get; }
    public long BytesDropped { get; private set; }

    /// <summary>Raised for every byte the guest writes (a live console).</summary>
    public event Action<byte>? ByteWritten;

    /// <summary>The console output so far, as UTF-8 text.</summary>
    public string Text => Encoding.UTF8.GetString(_output.ToArray());

    public void Input(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _input.Enqueue(b);
    }

    public bool Owns(ushort port) => port >= BasePort && port < BasePort + 8;

    public ulong Read(ushort port)
    {
        bool dlab = (_lcr & 0x80) != 0;
        switch (port - BasePort)
        {
            case 0: return dlab ? _dll : _input.Count > 0 ? _input.Dequeue() : 0u;
            case 1: return dlab ? _dlm : _ier;
            case 2: return 0x01;                     // IIR: no interrupt pending
            case 3: return _lcr;
            case 4: return _mcr;
            case 5: return 0x60u | (_input.Count > 0 ? 1u : 0u); // LSR: THRE | TEMT | DR
            case 6: return 0xB0;                     // MSR: DCD, DSR, CTS
            default: return _scr;
        }
    }

    public void Write(ushort port, byte value)
    {
        bool dlab = (_lcr & 0x80) != 0;
        switch (port - BasePort)
        {
            case 0:
                if (dlab) { _dll = value; break; }
                if ((_mcr & 0x10) != 0) { _input.Enqueue(value); break; } // loopback mode
                if (_output.Count < MaxCaptured) _output.Add(value);
                else BytesDropped++;
                ByteWritten?.Invoke(value);
                break;
            case 1: if (dlab) _dlm = value; else _ier = (byte)(value & 0x0F); break;
            case 3: _lcr = value; break;
            case 4: _mcr = value; break;
            case 7: _scr = value; break;
        }
    }
}
