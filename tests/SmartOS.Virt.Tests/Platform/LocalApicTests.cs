using SmartOS.Virt.Devices;

namespace SmartOS.Virt.Tests.Platform;

/// <summary>The local APIC against the Intel SDM's chapter on the APIC (register by register).</summary>
public class LocalApicTests
{
    private long _now;
    private LocalApic _apic = null!;

    [SetUp]
    public void SetUp()
    {
        _now = 0;
        _apic = new LocalApic(new PlatformClock(() => _now));
        _apic.EnterVirtualWireMode();
    }

    private void Msi(int vector, bool level = false) => _apic.AcceptMsi(0xFEE0_0000, (uint)vector | (level ? 0xC000u : 0));

    [Test]
    public void Version_id_and_firmware_state_read_as_an_integrated_apic_in_virtual_wire_mode()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.ReadMmio(0xFEE0_0030, 4), Is.EqualTo(0x0005_0014UL), "version 0x14, six LVT entries");
            Assert.That(_apic.ReadMmio(0xFEE0_0020, 4), Is.Zero);
            Assert.That(_apic.ReadMmio(0xFEE0_00F0, 4), Is.EqualTo(0x1FFUL), "software enabled, spurious vector 0xFF");
            Assert.That(_apic.ReadMmio(0xFEE0_0350, 4), Is.EqualTo(0x700UL), "LINT0 ExtINT");
            Assert.That(_apic.ReadMmio(0xFEE0_0360, 4), Is.EqualTo(0x400UL), "LINT1 NMI");
            Assert.That(_apic.ReadMmio(0xFEE0_0320, 4), Is.EqualTo(0x10000UL), "the timer masked");
            Assert.That(_apic.ApicBaseMsr, Is.EqualTo(0xFEE0_0900UL));
        }
    }

    [Test]
    public void Highest_vector_is_taken_first_and_a_lower_class_waits_for_its_eoi()
    {
        Msi(0x31);
        Msi(0x52);
        Assert.That(_apic.HasPendingInterrupt, Is.True);
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x52));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.ReadMmio(0xFEE0_00A0, 4), Is.EqualTo(0x50UL), "PPR is the in-service class");
            Assert.That(_apic.HasPendingInterrupt, Is.False, "0x31 is below the class in service");
            Assert.That(_apic.ReadMmio(0xFEE0_0100 + 0x20, 4), Is.EqualTo(1UL << (0x52 - 0x40)), "ISR bit of 0x52");
            Assert.That(_apic.ReadMmio(0xFEE0_0200 + 0x10, 4), Is.EqualTo(1UL << (0x31 - 0x20)), "IRR bit of 0x31");
        }
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
        Assert.That(_apic.HasPendingInterrupt, Is.True);
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x31));
    }

    [Test]
    public void Tpr_holds_back_vectors_of_its_class_and_below()
    {
        _apic.WriteMmio(0xFEE0_0080, 4, 0x50);
        Msi(0x45);
        Msi(0x5F);
        Assert.That(_apic.HasPendingInterrupt, Is.False);
        Msi(0x61);
        Assert.That(_apic.HasPendingInterrupt, Is.True);
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x61));
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
        _apic.WriteMmio(0xFEE0_0080, 4, 0);
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x5F));
    }

    [Test]
    public void Eoi_of_a_level_vector_is_broadcast_and_of_an_edge_vector_is_not()
    {
        var eois = new List<int>();
        _apic.EoiBroadcast += eois.Add;
        Msi(0x40, level: true);
        Assert.That(_apic.IsLevel(0x40), Is.True);
        _apic.AcknowledgeInterrupt();
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
        Msi(0x41);
        _apic.AcknowledgeInterrupt();
        _apic.WriteMmio(0xFEE0_00B0, 4, 0);
        Assert.That(eois, Is.EqualTo(new[] { 0x40 }));
    }

    [Test]
    public void Software_disabled_apic_masks_its_lvt_and_refuses_fixed_interrupts()
    {
        _apic.WriteMmio(0xFEE0_00F0, 4, 0xFF);
        Msi(0x40);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.HasPendingInterrupt, Is.False);
            Assert.That(_apic.InterruptsDropped, Is.EqualTo(1));
            Assert.That(_apic.ReadMmio(0xFEE0_0350, 4) & 0x10000, Is.Not.Zero, "LINT0 masked");
        }
        _apic.WriteMmio(0xFEE0_0370, 4, 0x33); // the mask cannot be cleared while disabled
        Assert.That(_apic.ReadMmio(0xFEE0_0370, 4), Is.EqualTo(0x10033UL));
    }

    [Test]
    public void One_shot_timer_counts_down_through_the_divider_and_fires_once()
    {
        _apic.WriteMmio(0xFEE0_03E0, 4, 0x0);     // divide by 2
        _apic.WriteMmio(0xFEE0_0320, 4, 0x40);    // one-shot, vector 0x40
        _apic.WriteMmio(0xFEE0_0380, 4, 1000);
        Assert.That(_apic.Deadline, Is.EqualTo(2000));
        _now = 500;
        Assert.That(_apic.ReadMmio(0xFEE0_0390, 4), Is.EqualTo(750UL));
        _now = 2000;
        _apic.Advance(_now);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.IsRequested(0x40), Is.True);
            Assert.That(_apic.ReadMmio(0xFEE0_0390, 4), Is.Zero);
            Assert.That(_apic.Deadline, Is.EqualTo(-1));
            Assert.That(_apic.TimerExpiries, Is.EqualTo(1));
        }
    }

    [Test]
    public void Periodic_timer_at_1_khz_expires_1000_times_in_a_virtual_second()
    {
        _apic.WriteMmio(0xFEE0_03E0, 4, 0xB);       // divide by 1: one count per ns
        _apic.WriteMmio(0xFEE0_0320, 4, 0x20040);   // periodic, vector 0x40
        _apic.WriteMmio(0xFEE0_0380, 4, 1_000_000);
        int taken = 0;
        while (_apic.Deadline >= 0 && _apic.Deadline <= 1_000_000_000)
        {
            _now = _apic.Deadline;
            _apic.Advance(_now);
            while (_apic.HasPendingInterrupt)
            {
                Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x40));
                _apic.WriteMmio(0xFEE0_00B0, 4, 0);
                taken++;
            }
        }
        Assert.That(taken, Is.EqualTo(1000));
        Assert.That(_apic.TimerExpiries, Is.EqualTo(1000));
    }

    [Test]
    public void Late_periodic_timer_counts_missed_periods_and_raises_one_interrupt()
    {
        _apic.WriteMmio(0xFEE0_03E0, 4, 0xB);
        _apic.WriteMmio(0xFEE0_0320, 4, 0x20040);
        _apic.WriteMmio(0xFEE0_0380, 4, 1_000_000);
        _now = 10_500_000;
        _apic.Advance(_now);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.TimerExpiries, Is.EqualTo(10));
            Assert.That(_apic.Deadline, Is.EqualTo(11_000_000));
            Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x40));
            Assert.That(_apic.HasPendingInterrupt, Is.False);
        }
    }

    [Test]
    public void Periodic_timer_of_one_nanosecond_is_held_to_the_minimum_period()
    {
        _apic.WriteMmio(0xFEE0_03E0, 4, 0xB);
        _apic.WriteMmio(0xFEE0_0320, 4, 0x20040);
        _apic.WriteMmio(0xFEE0_0380, 4, 1);
        _now = 1_000_000_000;
        _apic.Advance(_now);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.PeriodsClamped, Is.EqualTo(1));
            Assert.That(_apic.TimerExpiries, Is.EqualTo(1_000_000_000 / LocalApic.MinPeriodicNs));
        }
    }

    [Test]
    public void Tsc_deadline_fires_at_its_tsc_and_disarms()
    {
        _apic.WriteTscDeadline(5000);
        Assert.That(_apic.Deadline, Is.EqualTo(-1), "ignored outside TSC-deadline mode");
        _apic.WriteMmio(0xFEE0_0320, 4, 0x40040);   // TSC-deadline, vector 0x40
        _apic.WriteTscDeadline(5000);
        _apic.WriteMmio(0xFEE0_0380, 4, 77);        // the initial count is ignored in this mode
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.ReadTscDeadline(), Is.EqualTo(5000UL));
            Assert.That(_apic.ReadMmio(0xFEE0_0380, 4), Is.Zero);
        }
        _now = 4999;
        _apic.Advance(_now);
        Assert.That(_apic.HasPendingInterrupt, Is.False);
        _now = 5000;
        _apic.Advance(_now);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.HasPendingInterrupt, Is.True);
            Assert.That(_apic.ReadTscDeadline(), Is.Zero);
            Assert.That(_apic.Deadline, Is.EqualTo(-1));
        }
    }

    [Test]
    public void Masked_timer_counts_but_raises_nothing()
    {
        _apic.WriteMmio(0xFEE0_03E0, 4, 0xB);
        _apic.WriteMmio(0xFEE0_0320, 4, 0x10040);
        _apic.WriteMmio(0xFEE0_0380, 4, 100);
        _now = 100;
        _apic.Advance(_now);
        Assert.That(_apic.TimerExpiries, Is.EqualTo(1));
        Assert.That(_apic.HasPendingInterrupt, Is.False);
    }

    [Test]
    public void Self_ipi_through_the_icr_and_an_illegal_vector_in_esr()
    {
        _apic.WriteMmio(0xFEE0_0300, 4, 0x40000 | 0x66); // shorthand self, fixed, vector 0x66
        Assert.That(_apic.IsRequested(0x66), Is.True);
        _apic.WriteMmio(0xFEE0_0300, 4, 0x40000 | 0x05); // vector 5: send illegal vector
        _apic.WriteMmio(0xFEE0_0280, 4, 0);              // ESR latches on write
        Assert.That(_apic.ReadMmio(0xFEE0_0280, 4), Is.EqualTo(0x20UL));
        _apic.WriteMmio(0xFEE0_0310, 4, 0x0300_0000);    // to APIC 3: nobody here
        _apic.WriteMmio(0xFEE0_0300, 4, 0x67);
        Assert.That(_apic.IsRequested(0x67), Is.False);
        Assert.That(_apic.IpisIgnored, Is.EqualTo(1));
    }

    [Test]
    public void Logical_destination_matches_the_ldr_in_flat_and_cluster_models()
    {
        _apic.WriteMmio(0xFEE0_00D0, 4, 0x0400_0000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.MatchesDestination(0x04, logical: true), Is.True);
            Assert.That(_apic.MatchesDestination(0x0C, logical: true), Is.True);
            Assert.That(_apic.MatchesDestination(0x02, logical: true), Is.False);
        }
        _apic.WriteMmio(0xFEE0_00E0, 4, 0x0FFF_FFFF); // cluster model
        _apic.WriteMmio(0xFEE0_00D0, 4, 0x2100_0000); // cluster 2, member bit 0
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.MatchesDestination(0x21, logical: true), Is.True);
            Assert.That(_apic.MatchesDestination(0x11, logical: true), Is.False);
        }
    }

    [Test]
    public void Pic_output_reaches_the_cpu_only_through_an_unmasked_extint_lint0()
    {
        var pic = new Pic8259Pair();
        _apic.Pic = pic;
        foreach (var (port, value) in new (ushort, byte)[] { (0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01) })
            pic.WritePort(port, 1, value);
        pic.SetIrq(1, true);
        Assert.That(_apic.HasPendingInterrupt, Is.True);
        _apic.WriteMmio(0xFEE0_0350, 4, 0x10700);
        Assert.That(_apic.HasPendingInterrupt, Is.False, "LINT0 masked");
        _apic.ApicBaseMsr = 0xFEE0_0000;              // globally disabled: the 8259 goes straight to the CPU
        Assert.That(_apic.HasPendingInterrupt, Is.True);
        Assert.That(_apic.AcknowledgeInterrupt(), Is.EqualTo(0x09));
    }

    [Test]
    public void Odd_sized_accesses_are_counted_and_do_not_change_registers()
    {
        _apic.WriteMmio(0xFEE0_0080, 2, 0x70);
        _apic.WriteMmio(0xFEE0_0084, 4, 0x70);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_apic.ReadMmio(0xFEE0_0080, 4), Is.Zero);
            Assert.That(_apic.BadAccesses, Is.EqualTo(2));
            Assert.That(_apic.ReadMmio(0xFEE0_0033, 1), Is.Zero, "byte 3 of the version");
            Assert.That(_apic.ReadMmio(0xFEE0_0030, 1), Is.EqualTo(0x14UL));
        }
    }
}
