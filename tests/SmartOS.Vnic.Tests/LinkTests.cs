using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>Link names, create, delete and rename rules, and the link kstats.</summary>
public class LinkTests
{
    private Scheduler _s = null!;
    private MacLayer _h = null!;

    [SetUp]
    public void OneHost()
    {
        _s = new Scheduler();
        _h = Host(_s);
    }

    private static IEnumerable<TestCaseData> Names() => DataFile.Cases("link-names.txt", 2);

    [TestCaseSource(nameof(Names))]
    public void Link_names_follow_illumos_rules(DataCase c)
    {
        Assert.That(LinkNames.IsValid(c[0] == "(null)" ? null : c[0]), Is.EqualTo(c.Bool(1)), c.Where);
    }

    [TestCase("vnic01")]
    [TestCase("vnic")]
    [TestCase("9lives0")]
    public void Invalid_names_are_refused_everywhere(string name)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.CreateEtherstub(name, temporary: true).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.CreateVnic(name, "e1000g0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.CreateVlan(name, "e1000g0", 5, true, out _).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.RenameLink("e1000g0", name).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0" }));
        }
    }

    [Test]
    public void Duplicate_names_are_refused_across_classes()
    {
        _h.CreateEtherstub("stub0", temporary: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.CreateEtherstub("stub0", temporary: true).Message, Is.EqualTo("object already exists"));
            Assert.That(_h.CreateVnic("stub0", "e1000g0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("object already exists"));
            Assert.That(_h.CreateVnic("e1000g0", "stub0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("object already exists"));
        }
    }

    [Test]
    public void Vnic_over_a_missing_or_unsuitable_link_is_refused()
    {
        _h.Vnic("vnic0", "e1000g0");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.CreateVnic("vnic1", "nosuch0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("object not found"));
            Assert.That(_h.CreateVnic("vnic1", "vnic0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("invalid link"));
        }
    }

    [TestCase((ushort)0, DladmStatus.VidInval)]
    [TestCase((ushort)4095, DladmStatus.VidInval)]
    [TestCase((ushort)4094, DladmStatus.Ok)]
    [TestCase((ushort)1, DladmStatus.Ok)]
    public void Vlan_ids_run_from_1_to_4094(ushort vid, DladmStatus status)
    {
        Assert.That(_h.CreateVlan("net1", "e1000g0", vid, true, out _).Code, Is.EqualTo(status));
    }

    [Test]
    public void Vlan_rules()
    {
        _h.CreateEtherstub("stub0", temporary: true);
        Assert.That(_h.CreateVlan("net5", "e1000g0", 5, true, out var vlan).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(vlan!.MacAddress, Is.EqualTo(_h.Phys().MacAddress), "a VLAN link uses the NIC's address");
            Assert.That(vlan.Vid, Is.EqualTo(5));
            Assert.That(vlan.Over, Is.SameAs(_h.Phys()));
            Assert.That(_h.CreateVlan("net6", "e1000g0", 5, true, out _).Message, Is.EqualTo("object already exists"), "one VLAN link per VID per NIC");
            Assert.That(_h.CreateVlan("net7", "stub0", 7, true, out _).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.CreateVlan("net8", "nosuch0", 8, true, out _).Message, Is.EqualTo("object not found"));
        }
    }

    [Test]
    public void Etherstub_with_vnics_is_busy_until_they_are_gone()
    {
        _h.CreateEtherstub("stub0", temporary: true);
        _h.Vnic("vnic0", "stub0");

        Assert.That(_h.Delete("stub0", LinkClass.Etherstub, temporary: true).Message, Is.EqualTo("link busy"));
        Assert.That(_h.Exists("stub0"), Is.True);

        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).IsOk, Is.True);
        Assert.That(_h.Delete("stub0", LinkClass.Etherstub, temporary: true).IsOk, Is.True);
        Assert.That(_h.Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0" }));
    }

    [Test]
    public void Vnic_with_an_open_client_is_busy_until_it_closes()
    {
        var v = _h.Vnic("vnic0", "e1000g0");
        var c = v.OpenClient("zone1")!;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).Message, Is.EqualTo("link busy"));
            Assert.That(_h.RenameLink("vnic0", "vnic9").Message, Is.EqualTo("link busy"));
        }

        c.Close();
        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).IsOk, Is.True);
    }

    [Test]
    public void Vnic_assigned_to_a_zone_is_busy()
    {
        var v = _h.Vnic("vnic0", "e1000g0");
        v.Zone = "web";

        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).Message, Is.EqualTo("link busy"));
    }

    [Test]
    public void Delete_checks_the_class_and_the_name()
    {
        _h.Vnic("vnic0", "e1000g0");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Delete("vnic0", LinkClass.Etherstub, temporary: true).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.Delete("vnic0", LinkClass.Vlan, temporary: true).Message, Is.EqualTo("invalid link"));
            Assert.That(_h.Delete("nosuch0", LinkClass.Vnic, temporary: true).Message, Is.EqualTo("object not found"));
            Assert.That(_h.Exists("vnic0"), Is.True);
        }
    }

    [Test]
    public void Delete_removes_the_port_from_the_switch()
    {
        var a = Open(_h.Vnic("vnic0", "e1000g0"));
        var gone = _h.Vnic("vnic1", "e1000g0");
        var goneMac = gone.MacAddress;
        _h.Delete("vnic1", LinkClass.Vnic, temporary: true);

        a.Send(Frame(goneMac, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Phys().Switch.Ports, Has.None.SameAs(gone));
            Assert.That(_h.Phys().Stats.DropLinkDown, Is.EqualTo(1), "its address is now unknown, so the frame heads for the (unplugged) wire");
            Assert.That(_h.Kstats.Read("link", "vnic1", "opackets"), Is.Null, "its kstat is gone");
        }
    }

    [Test]
    public void Rename_moves_the_name_the_kstat_and_keeps_traffic_flowing()
    {
        var v = _h.Vnic("vnic0", "e1000g0");
        var b = Open(_h.Vnic("vnic1", "e1000g0"));

        Assert.That(_h.RenameLink("vnic0", "web0").IsOk, Is.True);
        var a = Open(v);
        a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Find("web0"), Is.SameAs(v));
            Assert.That(_h.Exists("vnic0"), Is.False);
            Assert.That(v.Name, Is.EqualTo("web0"));
            Assert.That(a.Client.LinkName, Is.EqualTo("web0"));
            Assert.That(b.Frames, Has.Count.EqualTo(1));
            Assert.That(_h.Stat("web0", "opackets"), Is.EqualTo(1));
            Assert.That(_h.Kstats.Read("link", "vnic0", "opackets"), Is.Null);
        }
    }

    [Test]
    public void Rename_refuses_taken_and_missing_names()
    {
        _h.Vnic("vnic0", "e1000g0");
        _h.CreateEtherstub("stub0", temporary: true);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.RenameLink("vnic0", "stub0").Message, Is.EqualTo("object already exists"));
            Assert.That(_h.RenameLink("nosuch0", "vnic5").Message, Is.EqualTo("object not found"));
            Assert.That(_h.Exists("vnic0"), Is.True);
        }
    }

    [Test]
    public void Rename_of_a_phys_keeps_the_links_over_it()
    {
        var v = _h.Vnic("vnic0", "e1000g0");

        Assert.That(_h.RenameLink("e1000g0", "net0").IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(v.Over!.Name, Is.EqualTo("net0"));
            Assert.That(((PhysLink)_h.Find("net0")!).Device, Is.EqualTo("e1000g0"), "the device keeps its name");
            Assert.That(_h.Vnic("vnic1", "net0").Over, Is.SameAs(_h.Find("net0")));
        }
    }

    [Test]
    public void Link_kstats_reflect_traffic()
    {
        var a = Open(_h.Vnic("vnic0", "e1000g0"));
        var b = Open(_h.Vnic("vnic1", "e1000g0"));

        for (int i = 0; i < 3; i++) a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress, 100));
        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress, 60));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Kstats.FormatParsable("link:0:vnic0:/^o/"), Is.EqualTo(
                "link:0:vnic0:obytes\t360\n" +
                "link:0:vnic0:oerrors\t0\n" +
                "link:0:vnic0:opackets\t4\n"));
            Assert.That(_h.Stat("vnic0", "brdcstxmt"), Is.EqualTo(1));
            Assert.That(_h.Stat("vnic1", "ipackets"), Is.EqualTo(4));
            Assert.That(_h.Stat("vnic1", "rbytes"), Is.EqualTo(360));
            Assert.That(_h.Stat("vnic1", "brdcstrcv"), Is.EqualTo(1));
            Assert.That(_h.Stat("e1000g0", "opackets"), Is.EqualTo(0), "the broadcast found no wire");
            Assert.That(_h.Stat("e1000g0", "drop_link_down"), Is.EqualTo(1));
            Assert.That(_h.Kstats.FormatParsable("link:0:vnic1:drop_*"), Does.Contain("link:0:vnic1:drop_noclient\t0\n"));
        }
    }

    [Test]
    public void Every_link_has_a_kstat_in_the_link_module()
    {
        _h.CreateEtherstub("stub0", temporary: true);
        _h.Vnic("vnic0", "stub0");
        _h.CreateVlan("net5", "e1000g0", 5, true, out _);

        var names = _h.Kstats.All.Where(k => k.Module == "link").Select(k => (k.Instance, k.Name, k.Class));

        Assert.That(names, Is.EquivalentTo(new[] { (0, "e1000g0", "net"), (0, "stub0", "net"), (0, "vnic0", "net"), (0, "net5", "net") }));
    }

    [Test]
    public void Links_are_listed_in_creation_order_with_their_classes()
    {
        _h.CreateEtherstub("stub0", temporary: true);
        _h.Vnic("vnic0", "stub0");
        _h.CreateVlan("net5", "e1000g0", 5, true, out _);

        Assert.That(_h.Links.Select(l => (l.Name, l.Class)), Is.EqualTo(new[]
        {
            ("e1000g0", LinkClass.Phys), ("stub0", LinkClass.Etherstub), ("vnic0", LinkClass.Vnic), ("net5", LinkClass.Vlan),
        }));
    }

    [Test]
    public void Mtu_property_is_bounded_by_the_link_below()
    {
        var v = _h.Vnic("vnic0", "e1000g0");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.SetLinkProp(v, "mtu", "1501", true).Message, Is.EqualTo("invalid value"));
            Assert.That(_h.SetLinkProp(v, "mtu", "575", true).Message, Is.EqualTo("invalid value"));
            Assert.That(_h.SetLinkProp(v, "mtu", "big", true).Message, Is.EqualTo("invalid value"));
            Assert.That(_h.SetLinkProp(v, "nosuch", "1", true).Message, Is.EqualTo("object not found"));
            Assert.That(_h.SetLinkProp(_h.Phys(), "mtu", "9000", true).IsOk, Is.True);
            Assert.That(_h.SetLinkProp(v, "mtu", "9000", true).IsOk, Is.True);
            Assert.That(_h.SetLinkProp(_h.Phys(), "mtu", "1500", true).Message, Is.EqualTo("link busy"), "a VNIC over it uses 9000");
            Assert.That(v.Mtu, Is.EqualTo(9000));
        }
    }
}
