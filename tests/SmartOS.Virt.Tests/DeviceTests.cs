using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests;

public class DeviceTests
{
    [Test]
    public void Uart_reports_an_empty_transmitter_and_received_bytes_in_lsr()
    {
        var uart = new Uart16550();
        Assert.That(uart.Read(Uart16550.Com1 + 5), Is.EqualTo(0x60UL));
        uart.Input("k"u8);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(uart.Read(Uart16550.Com1 + 5), Is.EqualTo(0x61UL));
            Assert.That(uart.Read(Uart16550.Com1), Is.EqualTo((ulong)'k'));
            Assert.That(uart.Read(Uart16550.Com1 + 5), Is.EqualTo(0x60UL));
        }
    }

    [Test]
    public void Uart_divisor_latch_writes_do_not_reach_the_console()
    {
        var uart = new Uart16550();
        var live = new List<byte>();
        uart.ByteWritten += live.Add;
        uart.Write(Uart16550.Com1 + 3, 0x80);   // DLAB on
        uart.Write(Uart16550.Com1, 1);           // divisor low: 115200 baud
        uart.Write(Uart16550.Com1 + 3, 0x03);   // 8N1, DLAB off
        uart.Write(Uart16550.Com1, (byte)'A');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(uart.Text, Is.EqualTo("A"));
            Assert.That(live, Is.EqualTo(new[] { (byte)'A' }));
        }
    }

    [Test]
    public void Uart_loopback_mode_returns_written_bytes_to_the_receiver()
    {
        var uart = new Uart16550();
        uart.Write(Uart16550.Com1 + 4, 0x10);
        uart.Write(Uart16550.Com1, 0x5A);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(uart.Text, Is.Empty);
            Assert.That(uart.Read(Uart16550.Com1), Is.EqualTo(0x5AUL));
        }
    }

    [Test]
    public void Timer_reports_guest_time_and_expiry_of_its_deadline()
    {
        long now = 0x1_2345_6789;
        long armed = -2;
        var timer = new GuestTimer(() => now, t => armed = t);
        ulong low = timer.Read(GuestTimer.BasePort);
        ulong high = timer.Read(GuestTimer.BasePort + 4);
        timer.Write(GuestTimer.BasePort + 8, 5);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(high << 32 | low, Is.EqualTo((ulong)now));
            Assert.That(armed, Is.EqualTo(now + 5_000));
            Assert.That(timer.Read(GuestTimer.BasePort + 12), Is.Zero);
        }
        now += 5_000;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(timer.Read(GuestTimer.BasePort + 12), Is.EqualTo(1UL));
            Assert.That(timer.Read(GuestTimer.BasePort + 12), Is.Zero, "reading clears it");
        }
    }
}
