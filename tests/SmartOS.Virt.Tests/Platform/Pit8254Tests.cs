using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The 8254 against Intel's 8254 datasheet, in guest time (1.193182 MHz input clock).</summary>
public class Pit8254Tests
{
    private long _now;
    private Pit8254 _pit = null!;
    private int _pulses;

    [SetUp]
    public void SetUp()
    {
        _now = 0;
        _pulses = 0;
        _pit = new Pit8254(new PlatformClock(() => _now), irq => { Assert.That(irq, Is.Zero); _pulses++; });
    }

    private void Out(ushort port, byte value) => _pit.WritePort(port, 1, value);
    private byte In(ushort port) => (byte)_pit.ReadPort(port, 1);

    /// <summary>The guest time of input clock <paramref name="tick"/> (the first ns at which it has passed).</summary>
    private static long TimeOfTick(long tick) => (tick * 1_000_000_000 + Pit8254.FrequencyHz - 1) / Pit8254.FrequencyHz;

    private long RunChannel0For(long duration)
    {
        while (_pit.Deadline >= 0 && _pit.Deadline <= duration)
        {
            _now = _pit.Deadline;
            _pit.Advance(_now);
        }
        return _pit.Irq0Edges;
    }

    [Test]
    public void Mode_2_at_1_khz_raises_irq0_exactly_1000_times_in_a_virtual_second()
    {
        Out(0x43, 0x34);            // channel 0, LSB then MSB, mode 2, binary
        Out(0x40, 1193 & 0xFF);
        Out(0x40, 1193 >> 8);
        Assert.That(RunChannel0For(1_000_000_000), Is.EqualTo(1000));
        Assert.That(_pulses, Is.EqualTo(1000));
    }

    [Test]
    public void Mode_3_square_wave_also_raises_one_edge_a_period()
    {
        Out(0x43, 0x36);
        Out(0x40, 1193 & 0xFF);
        Out(0x40, 1193 >> 8);
        Assert.That(RunChannel0For(1_000_000_000), Is.EqualTo(1000));
    }

    [Test]
    public void Mode_0_one_shot_raises_one_edge_at_terminal_count()
    {
        Out(0x43, 0x30);
        Out(0x40, 100);
        Out(0x40, 0);
        Assert.That(_pit.Deadline, Is.EqualTo(TimeOfTick(100)));
        Assert.That(RunChannel0For(1_000_000_000), Is.EqualTo(1));
    }

    [Test]
    public void Channel_2_in_mode_0_shows_its_output_in_port_61_as_linux_calibration_expects()
    {
        Out(0x61, 0x01);            // gate 2 high, speaker off
        Out(0x43, 0xB0);            // channel 2, LSB then MSB, mode 0
        Out(0x42, 11931 & 0xFF);
        Out(0x42, 11931 >> 8);      // 10 ms
        long end = TimeOfTick(11931);
        _now = end - 1;
        Assert.That(In(0x61) & 0x20, Is.Zero, "OUT low while counting");
        _now = end;
        Assert.That(In(0x61) & 0x21, Is.EqualTo(0x21), "OUT high at terminal count; gate bit reads back");
        Assert.That(_pit.Irq0Edges, Is.Zero, "channel 2 raises no interrupt");
    }

    [Test]
    public void Counter_latch_holds_the_count_until_both_bytes_are_read()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 11931 & 0xFF);
        Out(0x42, 11931 >> 8);
        _now = 5_000_000;
        Out(0x43, 0x80);            // latch channel 2
        _now = 8_000_000;
        int count = In(0x42) | In(0x42) << 8;
        Assert.That(count, Is.EqualTo(11931 - 5965));
        int live = In(0x42) | In(0x42) << 8;
        Assert.That(live, Is.EqualTo(11931 - 9545), "after the latch is read, the live count");
    }

    [Test]
    public void Read_back_latches_status_then_count()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Assert.That(ReadBackStatus(), Is.EqualTo(0x70), "null count until a count is written");
        Out(0x42, 100);
        Out(0x42, 0);
        Assert.That(ReadBackStatus(), Is.EqualTo(0x30), "OUT low, mode 0, LSB/MSB");
        _now = TimeOfTick(40);
        Out(0x43, 0xC8);            // read-back: count and status of channel 2
        using (Assert.EnterMultipleScope())
        {
            Assert.That(In(0x42), Is.EqualTo(0x30));
            Assert.That(In(0x42) | In(0x42) << 8, Is.EqualTo(60));
        }
        _now = TimeOfTick(100);
        Assert.That(ReadBackStatus(), Is.EqualTo(0xB0), "OUT high at terminal count");
    }

    private byte ReadBackStatus()
    {
        Out(0x43, 0xE8);            // read-back: status only, channel 2
        return In(0x42);
    }

    [Test]
    public void Square_wave_output_is_high_for_the_first_half_of_each_period()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB6);            // channel 2, mode 3
        Out(0x42, 100);
        Out(0x42, 0);
        _now = TimeOfTick(50) - 1;
        Assert.That(In(0x61) & 0x20, Is.EqualTo(0x20));
        _now = TimeOfTick(50);
        Assert.That(In(0x61) & 0x20, Is.Zero);
        _now = TimeOfTick(100);
        Assert.That(In(0x61) & 0x20, Is.EqualTo(0x20));
    }

    [Test]
    public void Bcd_counting_reads_back_in_decimal_digits()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB1);            // channel 2, mode 0, BCD
        Out(0x42, 0x00);
        Out(0x42, 0x10);            // 1000
        _now = TimeOfTick(500);
        Assert.That(In(0x42) | In(0x42) << 8, Is.EqualTo(0x0500));
    }

    [Test]
    public void Gate_low_holds_the_count_in_mode_0()
    {
        Out(0x61, 0x01);
        Out(0x43, 0xB0);
        Out(0x42, 0xE8);
        Out(0x42, 0x03);            // 1000
        _now = TimeOfTick(300);
        Out(0x61, 0x00);            // gate low
        _now = TimeOfTick(900);
        Assert.That(In(0x42) | In(0x42) << 8, Is.EqualTo(700));
        Out(0x61, 0x01);
        _now += TimeOfTick(700);
        Assert.That(In(0x61) & 0x20, Is.EqualTo(0x20), "the remaining 700 clocks ran after the gate rose");
    }

    [Test]
    public void Lsb_only_access_and_the_control_port_reading_as_nothing()
    {
        Out(0x43, 0x10);            // channel 0, LSB only, mode 0
        Out(0x40, 50);
        _now = TimeOfTick(10);
        Assert.That(In(0x40), Is.EqualTo(40));
        Assert.That(In(0x43), Is.EqualTo(0xFF));
    }

    [Test]
    public void Periodic_channel_0_faster_than_the_minimum_period_is_held_to_it()
    {
        Out(0x43, 0x34);
        Out(0x40, 2);
        Out(0x40, 0);
        Assert.That(RunChannel0For(1_000_000_000), Is.EqualTo(Pit8254.FrequencyHz / 239));
        Assert.That(_pit.PeriodsClamped, Is.EqualTo(1));
    }

    [Test]
    public void New_count_in_mode_2_takes_effect_at_the_end_of_the_period()
    {
        Out(0x43, 0x34);
        Out(0x40, 1193 & 0xFF);
        Out(0x40, 1193 >> 8);       // 1 ms
        _now = 500_000;
        Out(0x40, 11932 & 0xFF);
        Out(0x40, 11932 >> 8);      // 10 ms, from the end of this period
        Assert.That(RunChannel0For(1_000_000 + 10_000_000), Is.EqualTo(2));
    }
}
