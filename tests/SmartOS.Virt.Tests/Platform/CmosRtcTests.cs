using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The CMOS clock against the MC146818A datasheet.</summary>
public class CmosRtcTests
{
    private static readonly long s_epoch = new DateTimeOffset(2026, 12, 3, 8, 45, 21, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000;
    private long _now;
    private CmosRtc _rtc = null!;
    private readonly List<(int Irq, bool Level)> _irqs = new();

    [SetUp]
    public void SetUp()
    {
        _now = 0;
        _irqs.Clear();
        _rtc = new CmosRtc(new PlatformClock(() => _now), s_epoch, (irq, level) => _irqs.Add((irq, level)));
    }

    private byte Read(byte index)
    {
        _rtc.WritePort(0x70, 1, index);
        return (byte)_rtc.ReadPort(0x71, 1);
    }

    private void Write(byte index, byte value)
    {
        _rtc.WritePort(0x70, 1, index);
        _rtc.WritePort(0x71, 1, value);
    }

    private byte[] Clock() => [Read(0x32), Read(0x09), Read(0x08), Read(0x07), Read(0x06), Read(0x04), Read(0x02), Read(0x00)];

    [Test]
    public void The_clock_reads_the_hosts_time_at_boot_in_bcd_24_hour()
    {
        Assert.That(Clock(), Is.EqualTo(new byte[] { 0x20, 0x26, 0x12, 0x03, 5, 0x08, 0x45, 0x21 }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Read(0x0A), Is.EqualTo(0x26), "32.768 kHz divider, 1024 Hz rate");
            Assert.That(Read(0x0B), Is.EqualTo(0x02), "24-hour, BCD");
            Assert.That(Read(0x0D), Is.EqualTo(0x80), "valid RAM and time");
        }
    }

    [Test]
    public void The_clock_follows_guest_time_and_binary_and_12_hour_formats()
    {
        _now = 3_600_000_000_000L + 39_000_000_000L; // one hour and 39 s later: 09:46:00
        Assert.That(Clock()[5..], Is.EqualTo(new byte[] { 0x09, 0x46, 0x00 }));
        Write(0x0B, 0x04);                          // binary, 12-hour
        _now += 4 * 3_600_000_000_000L;              // 13:46:00 -> 1 PM
        Assert.That(Clock()[5..], Is.EqualTo(new byte[] { 0x81, 46, 0 }));
    }

    [Test]
    public void Update_in_progress_is_set_in_the_244_us_before_each_second()
    {
        _now = 1_000_000_000 - 244_001;
        Assert.That(Read(0x0A) & 0x80, Is.Zero);
        _now = 1_000_000_000 - 244_000;
        Assert.That(Read(0x0A) & 0x80, Is.EqualTo(0x80));
        _now = 1_000_000_000;
        Assert.That(Read(0x0A) & 0x80, Is.Zero);
    }

    [Test]
    public void Time_set_under_the_set_bit_runs_on_from_what_was_written()
    {
        Write(0x0B, 0x82);                          // SET
        Write(0x09, 0x99);
        Write(0x32, 0x19);
        Write(0x08, 0x12);
        Write(0x07, 0x31);
        Write(0x04, 0x23);
        Write(0x02, 0x59);
        Write(0x00, 0x58);
        _now = 5_000_000_000;
        Assert.That(Read(0x00), Is.EqualTo(0x58), "held while SET");
        Write(0x0B, 0x02);
        _now = 7_000_000_000;
        Assert.That(Clock(), Is.EqualTo(new byte[] { 0x20, 0x00, 0x01, 0x01, 7, 0x00, 0x00, 0x00 }), "two seconds later: Saturday 2000-01-01");
    }

    [Test]
    public void A_date_no_calendar_has_leaves_the_clock_and_is_counted()
    {
        Write(0x0B, 0x82);
        Write(0x08, 0x02);
        Write(0x07, 0x31);
        Write(0x0B, 0x02);
        Assert.That(_rtc.InvalidTimes, Is.EqualTo(1));
        Assert.That(Clock(), Is.EqualTo(new byte[] { 0x20, 0x26, 0x12, 0x03, 5, 0x08, 0x45, 0x21 }));
    }

    [Test]
    public void Periodic_interrupt_raises_irq8_until_register_c_is_read()
    {
        Write(0x0B, 0x42);                          // PIE
        Assert.That(_rtc.Deadline, Is.GreaterThan(0));
        _now = _rtc.Deadline;
        _rtc.Advance(_now);
        Assert.That(_irqs, Is.EqualTo(new[] { (8, true) }));
        Assert.That(Read(0x0C), Is.EqualTo(0xC0), "IRQF | PF");
        Assert.That(_irqs[^1], Is.EqualTo((8, false)));
        Assert.That(Read(0x0C), Is.Zero, "reading C cleared it");
    }

    [Test]
    public void Periodic_interrupt_at_1024_hz_fires_1024_times_a_second()
    {
        Write(0x0B, 0x42);
        int raised = 0;
        while (_rtc.Deadline <= 1_000_000_000)
        {
            _now = _rtc.Deadline;
            _rtc.Advance(_now);
            if ((Read(0x0C) & 0x40) != 0) raised++;
        }
        Assert.That(raised, Is.EqualTo(1024));
    }

    [Test]
    public void Update_ended_and_alarm_flags_come_with_the_second()
    {
        Write(0x0A, 0x20);                          // no periodic rate: PF stays clear
        Write(0x01, 0x22);                          // alarm at hh:mm:22, any hour and minute
        Write(0x03, 0xC0);
        Write(0x05, 0xC0);
        Write(0x0B, 0x32);                          // AIE | UIE
        _now = _rtc.Deadline;
        Assert.That(_now, Is.EqualTo(1_000_000_000));
        _rtc.Advance(_now);
        Assert.That(Read(0x0C), Is.EqualTo(0xB0), "IRQF | AF | UF at 08:45:22");
        _now = 2_000_000_000;
        _rtc.Advance(_now);
        Assert.That(Read(0x0C), Is.EqualTo(0x90), "IRQF | UF only");
    }

    [Test]
    public void Cmos_ram_keeps_what_is_written_and_port_70_bit_7_masks_nmi()
    {
        Write(0x40, 0xA5);
        Assert.That(Read(0x40), Is.EqualTo(0xA5));
        _rtc.WritePort(0x70, 1, 0x8F);
        Assert.That(_rtc.NmiMasked, Is.True);
    }
}
