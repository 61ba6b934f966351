using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The I/O APIC against Intel's 82093AA datasheet.</summary>
public class IoApicTests
{
    private long _now;
    private LocalApic _apic = null!;
    private IoApic _io = null!;

    [SetUp]
    public void SetUp()
    {
        _now = 0;
        var clock = new PlatformClock(() => _now);
        _apic = new LocalApic(clock);
        _apic.EnterVirtualWireMode();
        _io = new IoApic(clock, _apic);
    }

    private void Program(int pin, ulong entry)
    {
        _io.WriteMmio(IoApic.DefaultBase, 4, (ulong)(0x11 + 2 * pin));
        _io.WriteMmio(IoApic.DefaultBase + 0x10, 4, entry >> 32);
        _io.WriteMmio(IoApic.DefaultBase, 4, (ulong)(0x10 + 2 * pin));
        _io.WriteMmio(IoApic.DefaultBase + 0x10, 4, entry & 0xFFFF_FFFF);
    }

    private uint Read(uint index)
    {
        _io.WriteMmio(IoApic.DefaultBase, 4, index);
        return (uint)_io.ReadMmio(IoApic.DefaultBase + 0x10, 4);
    }

    private void Eoi()
    {
        _apic.AcknowledgeInterrupt();
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
    }

    [Test]
    public void Version_says_24_entries_and_entries_start_masked()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Read(0x01), Is.EqualTo(0x0017_0011u));
            Assert.That(Read(0x10), Is.EqualTo(0x0001_0000u));
            Assert.That(Read(0x10 + 2 * 23), Is.EqualTo(0x0001_0000u));
        }
        _io.WriteMmio(IoApic.DefaultBase, 4, 0x00);
        _io.WriteMmio(IoApic.DefaultBase + 0x10, 4, 0x0A00_0000);
        Assert.That(Read(0x00), Is.EqualTo(0x0A00_0000u));
    }

    [Test]
    public void Edge_entry_delivers_on_a_rising_edge_and_loses_an_edge_while_masked()
    {
        Program(4, 0x34);
        _io.SetLevel(4, true);
        Assert.That(_apic.IsRequested(0x34), Is.True);
        Eoi();
        _io.SetLevel(4, true);
        Assert.That(_apic.IsRequested(0x34), Is.False, "no new edge while the line stays up");
        _io.SetLevel(4, false);
        Program(4, 0x1_0034);
        _io.SetLevel(4, true);
        _io.SetLevel(4, false);
        Program(4, 0x34);
        Assert.That(_apic.IsRequested(0x34), Is.False, "the edge on the masked pin is lost");
    }

    [Test]
    public void Level_entry_holds_remote_irr_until_eoi_and_redelivers_a_line_still_asserted()
    {
        Program(16, 0x8000 | 0x51);
        _io.SetLevel(16, true);
        Assert.That(Read(0x10 + 32) & 0x4000, Is.Not.Zero, "remote IRR");
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x51));
        _io.SetLevel(16, true);
        Assert.That(_apic.IsRequested(0x51), Is.False, "not again while in service");
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
        Assert.That(_apic.IsRequested(0x51), Is.True, "EOI with the line up: delivered again");
        _io.SetLevel(16, false);                    // the device is serviced
        Eoi();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Read(0x10 + 32) & 0x4000, Is.Zero);
            Assert.That(_apic.HasPendingInterrupt, Is.False);
            Assert.That(_io.Delivered, Is.EqualTo(2));
        }
    }

    [Test]
    public void Unmasking_an_asserted_level_line_delivers_it()
    {
        Program(17, 0x1_8000 | 0x52);
        _io.SetLevel(17, true);
        Assert.That(_apic.HasPendingInterrupt, Is.False);
        Program(17, 0x8000 | 0x52);
        Assert.That(_apic.IsRequested(0x52), Is.True);
    }

    [Test]
    public void Destination_field_selects_the_local_apic()
    {
        Program(5, 0x0300_0000_0000_0000UL | 0x35);  // physical destination 3: no such APIC
        _io.SetLevel(5, true);
        Assert.That(_apic.HasPendingInterrupt, Is.False);
        Program(6, 0x0000_0000_0000_0036UL);          // physical destination 0: ours
        _io.SetLevel(6, true);
        Assert.That(_apic.IsRequested(0x36), Is.True);
    }

    [Test]
    public void A_level_line_that_never_deasserts_is_put_off_after_the_storm_limit()
    {
        Program(18, 0x8000 | 0x60);
        _io.SetLevel(18, true);
        for (int i = 0; i < IoApic.StormLimit; i++) Eoi();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_io.StormDelays, Is.EqualTo(1));
            Assert.That(_apic.HasPendingInterrupt, Is.False);
            Assert.That(_io.Deadline, Is.EqualTo(IoApic.StormDelayNs));
        }
        _now = IoApic.StormDelayNs;
        _io.Advance(_now);
        Assert.That(_apic.IsRequested(0x60), Is.True);
        Assert.That(_io.Deadline, Is.EqualTo(-1));
    }
}
