using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The 16550's interrupts (IER, IIR priorities, OUT2) as National's datasheet has them.</summary>
public class UartInterruptTests
{
    private sealed class Line : IInterruptRouter
    {
        public bool Level;
        public int Irq = -1;
        public void SetLevel(int gsi, bool asserted) { Irq = gsi; Level = asserted; }
        public void Pulse(int gsi) => throw new InvalidOperationException("the UART drives a level");
        public void DeliverMsi(ulong address, uint data) => throw new InvalidOperationException();
    }

    private const ushort Com1 = Uart16550.Com1;

    [Test]
    public void A_polled_guest_sees_no_interrupt_identified_whatever_it_does()
    {
        var uart = new Uart16550();
        uart.Write(Com1 + 4, 0x0B);
        uart.Write(Com1, (byte)'x');
        uart.Input("y"u8);
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0x01UL));
    }

    [Test]
    public void Transmitter_empty_interrupt_is_raised_by_enabling_it_and_cleared_by_reading_iir()
    {
        var uart = new Uart16550();
        var line = new Line();
        uart.ConnectIrq(line, 4);
        uart.Write(Com1 + 4, 0x08);                 // OUT2: the IRQ reaches the bus
        uart.Write(Com1 + 1, 0x02);                 // ETBEI
        Assert.That(line is { Irq: 4, Level: true });
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0x02UL));
        Assert.That(line.Level, Is.False, "the IIR read that reported it cleared it");
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0x01UL));
        uart.Write(Com1, (byte)'a');
        Assert.That(line.Level, Is.True, "the byte went out: THR empty again");
    }

    [Test]
    public void Received_data_outranks_the_transmitter_and_clears_when_read()
    {
        var uart = new Uart16550();
        var line = new Line();
        uart.ConnectIrq(line, 4);
        uart.Write(Com1 + 4, 0x08);
        uart.Write(Com1 + 1, 0x03);                 // ERBFI | ETBEI
        uart.Input("k"u8);
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0x04UL));
        Assert.That(uart.Read(Com1), Is.EqualTo((ulong)'k'));
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0x02UL));
        Assert.That(line.Level, Is.False);
    }

    [Test]
    public void Without_out2_the_line_stays_low_and_fifo_enable_shows_in_iir()
    {
        var uart = new Uart16550();
        var line = new Line();
        uart.ConnectIrq(line, 4);
        uart.Write(Com1 + 1, 0x01);
        uart.Input("z"u8);
        Assert.That(line.Level, Is.False);
        uart.Write(Com1 + 2, 0x07);                 // FIFO on, both cleared
        Assert.That(uart.Read(Com1 + 2), Is.EqualTo(0xC1UL), "FIFOs enabled, the received byte cleared");
    }
}
