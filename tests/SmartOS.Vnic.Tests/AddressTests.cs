using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>dladm create-vnic -m: auto, random (-r prefix), factory (-n slot), a fixed address.</summary>
public class AddressTests
{
    private MacLayer _h = null!;

    [SetUp]
    public void OneHost()
    {
        _h = Host(new Scheduler(), nics: 2);
        _h.CreateEtherstub("stub0", temporary: true);
    }

    private DlStatus Create(string name, string over, MacLayer.MacRequest req, ushort vid, out VnicLink? v)
        => _h.CreateVnic(name, over, req, vid, temporary: true, out v);

    [Test]
    public void Phys_factory_addresses_are_stable_per_seed_and_distinct_per_nic()
    {
        var again = Host(new Scheduler(), nics: 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Phys("e1000g0").FactoryMac, Is.EqualTo(again.Phys("e1000g0").FactoryMac));
            Assert.That(_h.Phys("e1000g0").FactoryMac, Is.Not.EqualTo(_h.Phys("e1000g1").FactoryMac));
            Assert.That(_h.Phys("e1000g0").MacAddress.ToString(), Does.StartWith("0:8:20:"));
        }
    }

    [Test]
    public void Auto_takes_factory_slots_in_order_then_a_random_address()
    {
        var phys = _h.Phys();
        var vnics = new List<VnicLink>();
        for (int i = 0; i <= MacLayer.FactorySlots; i++)
        {
            Assert.That(Create($"vnic{i}", "e1000g0", new(MacAddressType.Auto), 0, out var v).IsOk, Is.True);
            vnics.Add(v!);
        }

        using (Assert.EnterMultipleScope())
        {
            for (int slot = 1; slot <= MacLayer.FactorySlots; slot++)
            {
                var v = vnics[slot - 1];
                Assert.That(v.AddressType, Is.EqualTo(MacAddressType.Factory));
                Assert.That(v.FactorySlot, Is.EqualTo(slot));
                Assert.That(v.MacAddress, Is.EqualTo(MacLayer.FactoryAddress(phys, slot)));
            }
            var last = vnics[^1];
            Assert.That(last.AddressType, Is.EqualTo(MacAddressType.Random));
            Assert.That(last.FactorySlot, Is.Null);
            Assert.That(last.MacAddress.ToString(), Does.StartWith("2:8:20:"));
            Assert.That(vnics.Select(v => v.MacAddress).Distinct().Count(), Is.EqualTo(vnics.Count));
        }
    }

    [Test]
    public void Auto_over_an_etherstub_is_random()
    {
        Assert.That(Create("vnic0", "stub0", new(MacAddressType.Auto), 0, out var v).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(v!.AddressType, Is.EqualTo(MacAddressType.Random));
            Assert.That(v.MacAddress.IsLocal, Is.True);
            Assert.That(v.MacAddress.IsGroup, Is.False);
        }
    }

    [TestCase(new byte[] { 0x02, 0x08, 0x20 }, "2:8:20:")]
    [TestCase(new byte[] { 0x0a, 0xbc }, "a:bc:")]
    [TestCase(new byte[] { 0x02, 0x00, 0x00, 0x00, 0x01 }, "2:0:0:0:1:")]
    public void Random_with_a_prefix_keeps_the_prefix(byte[] prefix, string start)
    {
        for (int i = 0; i < 20; i++)
        {
            Assert.That(Create($"vnic{i}", "stub0", new(MacAddressType.Random, Prefix: prefix), 0, out var v).IsOk, Is.True);
            Assert.That(v!.MacAddress.ToString(), Does.StartWith(start));
            Assert.That(v.AddressType, Is.EqualTo(MacAddressType.Random));
        }
    }

    [Test]
    public void Random_with_a_group_prefix_is_an_invalid_prefix()
    {
        var s = Create("vnic0", "stub0", new(MacAddressType.Random, Prefix: [0x01, 0x00, 0x5e]), 0, out _);

        Assert.That(s.Message, Is.EqualTo("Invalid MAC address prefix value"));
        Assert.That(_h.Exists("vnic0"), Is.False);
    }

    [Test]
    public void Factory_runs_out_after_the_last_slot()
    {
        for (int i = 1; i <= MacLayer.FactorySlots; i++)
            Assert.That(Create($"vnic{i}", "e1000g0", new(MacAddressType.Factory), 0, out _).IsOk, Is.True);

        var s = Create("vnic99", "e1000g0", new(MacAddressType.Factory), 0, out var v);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(s.Message, Is.EqualTo("all factory MAC address slots are in use"));
            Assert.That(v, Is.Null);
            Assert.That(_h.Exists("vnic99"), Is.False);
        }
    }

    [Test]
    public void Factory_slots_are_per_nic_and_freed_by_delete()
    {
        Create("vnic1", "e1000g0", new(MacAddressType.Factory, Slot: 3), 0, out var a);
        Create("vnic2", "e1000g1", new(MacAddressType.Factory, Slot: 3), 0, out var b);
        var taken = Create("vnic3", "e1000g0", new(MacAddressType.Factory, Slot: 3), 0, out _);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a!.MacAddress, Is.EqualTo(MacLayer.FactoryAddress(_h.Phys("e1000g0"), 3)));
            Assert.That(b!.MacAddress, Is.EqualTo(MacLayer.FactoryAddress(_h.Phys("e1000g1"), 3)));
            Assert.That(taken.Message, Is.EqualTo("factory MAC address slot already used"));
        }

        Assert.That(_h.Delete("vnic1", LinkClass.Vnic, temporary: true).IsOk, Is.True);
        Assert.That(Create("vnic3", "e1000g0", new(MacAddressType.Factory, Slot: 3), 0, out _).IsOk, Is.True);
    }

    [TestCase(0)]
    [TestCase(MacLayer.FactorySlots + 1)]
    public void Factory_slot_out_of_range_is_an_invalid_slot(int slot)
    {
        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Factory, Slot: slot), 0, out _).Message, Is.EqualTo("invalid factory MAC address slot"));
    }

    [Test]
    public void Factory_over_an_etherstub_is_not_supported()
    {
        Assert.That(Create("vnic0", "stub0", new(MacAddressType.Factory), 0, out _).Message, Is.EqualTo("factory MAC address slots not supported"));
    }

    [TestCase("1:0:5e:0:0:1")]
    [TestCase("ff:ff:ff:ff:ff:ff")]
    [TestCase("0:0:0:0:0:0")]
    public void Fixed_group_or_zero_address_is_an_invalid_mac(string mac)
    {
        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Fixed, Mac(mac)), 0, out _).Message, Is.EqualTo("invalid MAC address value"));
    }

    [Test]
    public void Fixed_address_is_used_as_given()
    {
        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Fixed, Mac("2:8:20:a:b:c")), 0, out var v).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(v!.MacAddress.ToString(), Is.EqualTo("2:8:20:a:b:c"));
            Assert.That(v.AddressType, Is.EqualTo(MacAddressType.Fixed));
        }
    }

    [Test]
    public void Duplicate_mac_in_the_same_vlan_is_refused_but_another_vlan_or_switch_is_fine()
    {
        var mac = Mac("2:8:20:a:b:c");
        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Fixed, mac), 5, out _).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Create("vnic1", "e1000g0", new(MacAddressType.Fixed, mac), 5, out _).Message, Is.EqualTo("MAC address is already in use"));
            Assert.That(_h.Exists("vnic1"), Is.False);
            Assert.That(Create("vnic2", "e1000g0", new(MacAddressType.Fixed, mac), 6, out _).IsOk, Is.True);
            Assert.That(Create("vnic3", "e1000g1", new(MacAddressType.Fixed, mac), 5, out _).IsOk, Is.True);
            Assert.That(Create("vnic4", "stub0", new(MacAddressType.Fixed, mac), 5, out _).IsOk, Is.True);
        }
    }

    [Test]
    public void The_phys_address_is_taken_in_vlan_0()
    {
        var physMac = _h.Phys().MacAddress;

        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Fixed, physMac), 0, out _).Message, Is.EqualTo("MAC address is already in use"));
    }

    [TestCase((ushort)4095)]
    [TestCase((ushort)5000)]
    public void Vid_above_4094_is_invalid(ushort vid)
    {
        Assert.That(Create("vnic0", "e1000g0", new(MacAddressType.Auto), vid, out _).Message, Is.EqualTo("invalid VLAN identifier"));
        Assert.That(_h.Exists("vnic0"), Is.False);
    }

    [Test]
    public void Random_never_repeats_an_address_in_use()
    {
        var seen = new HashSet<MacAddress>();
        for (int i = 0; i < 200; i++)
        {
            Assert.That(Create($"vnic{i}", "stub0", new(MacAddressType.Random, Prefix: [2, 8, 0x20, 0, 0]), 0, out var v).IsOk, Is.True, $"vnic{i}");
            Assert.That(seen.Add(v!.MacAddress), Is.True);
        }
    }

    [Test]
    public void Random_reports_in_use_when_the_prefix_has_no_address_left()
    {
        // A five-octet prefix leaves 256 addresses; the 257th VNIC must fail, not search forever.
        for (int i = 0; i < 256; i++)
            Assert.That(Create($"vnic{i}", "stub0", new(MacAddressType.Random, Prefix: [2, 8, 0x20, 0, 0]), 0, out _).IsOk, Is.True, $"vnic{i}");

        var s = Create("vnic256", "stub0", new(MacAddressType.Random, Prefix: [2, 8, 0x20, 0, 0]), 0, out _);

        Assert.That(s.Message, Is.EqualTo("MAC address is already in use"));
    }
}
