using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The 8259 pair against Intel's 8259A datasheet, programmed as Linux and the BIOS do.</summary>
public class Pic8259Tests
{
    private Pic8259Pair _pic = null!;

    [SetUp]
    public void SetUp()
    {
        _pic = new Pic8259Pair();
        Init(autoEoi: false);
    }

    private void Init(bool autoEoi)
    {
        Out(0x20, 0x11); Out(0x21, 0x20); Out(0x21, 0x04); Out(0x21, autoEoi ? (byte)0x03 : (byte)0x01);
        Out(0xA0, 0x11); Out(0xA1, 0x28); Out(0xA1, 0x02); Out(0xA1, autoEoi ? (byte)0x03 : (byte)0x01);
    }

    private void Out(ushort port, byte value) => _pic.WritePort(port, 1, value);
    private byte In(ushort port) => (byte)_pic.ReadPort(port, 1);

    [Test]
    public void An_irq_is_acknowledged_with_its_vector_and_stays_in_service_until_eoi()
    {
        _pic.SetIrq(1, true);
        Assert.That(_pic.Output, Is.True);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x21));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_pic.Output, Is.False);
            Assert.That(_pic.Registers.Isr, Is.EqualTo(0x0002));
            Assert.That(_pic.Registers.Irr, Is.Zero, "an edge request is cleared by INTA");
        }
        Out(0x20, 0x20); // non-specific EOI
        Assert.That(_pic.Registers.Isr, Is.Zero);
    }

    [Test]
    public void Lower_irq_number_has_priority_and_nests_above_one_in_service()
    {
        _pic.SetIrq(3, true);
        _pic.SetIrq(1, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x21));
        Assert.That(_pic.Output, Is.False, "IRQ 3 waits below IRQ 1 in service");
        _pic.SetIrq(0, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x20), "IRQ 0 nests");
        Out(0x20, 0x20);
        Out(0x20, 0x20);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x23));
    }

    [Test]
    public void Slave_irq_cascades_through_irq2()
    {
        _pic.SetIrq(10, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x2A));
        Assert.That(_pic.Registers.Isr, Is.EqualTo((ushort)(1 << 2 | 1 << 10)));
        Out(0xA0, 0x20);
        Out(0x20, 0x20);
        Assert.That(_pic.Registers.Isr, Is.Zero);
    }

    [Test]
    public void Imr_masks_and_ocw3_selects_irr_or_isr_for_reads()
    {
        Out(0x21, 0x02);
        _pic.SetIrq(1, true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_pic.Output, Is.False);
            Assert.That(In(0x21), Is.EqualTo(0x02));
            Assert.That(In(0x20), Is.EqualTo(0x02), "IRR is read by default");
        }
        Out(0x20, 0x0B); // OCW3: read ISR
        Assert.That(In(0x20), Is.Zero);
        Out(0x21, 0x00);
        _pic.Acknowledge();
        Assert.That(In(0x20), Is.EqualTo(0x02));
    }

    [Test]
    public void Auto_eoi_leaves_nothing_in_service()
    {
        Init(autoEoi: true);
        _pic.SetIrq(4, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x24));
        Assert.That(_pic.Registers.Isr, Is.Zero);
    }

    [Test]
    public void Elcr_makes_an_irq_level_triggered_and_redelivered_while_asserted()
    {
        Out(0x4D1, 0x02); // IRQ 9 level
        Assert.That(In(0x4D1), Is.EqualTo(0x02));
        _pic.SetIrq(9, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x29));
        Out(0xA0, 0x20);
        Out(0x20, 0x20);
        Assert.That(_pic.Output, Is.True, "still asserted: requested again");
        _pic.Acknowledge();
        _pic.SetIrq(9, false);
        Out(0xA0, 0x20);
        Out(0x20, 0x20);
        Assert.That(_pic.Output, Is.False);
        Out(0x4D0, 0xFF);
        Assert.That(In(0x4D0), Is.EqualTo(0xF8), "IRQs 0-2 cannot be level-triggered");
    }

    [Test]
    public void Acknowledge_with_nothing_requested_gives_the_spurious_irq7()
    {
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x27));
        Assert.That(_pic.Spurious, Is.EqualTo(1));
        Assert.That(_pic.Registers.Isr, Is.Zero);
    }

    [Test]
    public void Poll_command_acknowledges_the_highest_request_on_read()
    {
        _pic.SetIrq(5, true);
        Out(0x20, 0x0C); // OCW3: poll
        Assert.That(In(0x20), Is.EqualTo(0x85));
        Assert.That(_pic.Registers.Isr, Is.EqualTo(0x0020));
        Out(0x20, 0x0C);
        Assert.That(In(0x20), Is.Zero, "nothing left");
    }

    [Test]
    public void Specific_eoi_and_rotation_change_which_irq_comes_first()
    {
        _pic.SetIrq(6, true);
        _pic.Acknowledge();
        Out(0x20, 0x60 | 6);  // specific EOI for IRQ 6
        Assert.That(_pic.Registers.Isr, Is.Zero);
        Out(0x20, 0xC0 | 3);  // set priority: IRQ 3 lowest, IRQ 4 highest
        _pic.SetIrq(1, true);
        _pic.SetIrq(5, true);
        Assert.That(_pic.Acknowledge(), Is.EqualTo(0x25));
    }
}
