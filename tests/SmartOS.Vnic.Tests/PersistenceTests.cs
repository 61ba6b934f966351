using SmartOS.Kernel;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>datalink.conf: what is written, what a boot replays, and bad files.</summary>
public class PersistenceTests
{
    private MemoryConfigStore _store = null!;
    private MacLayer _h = null!;

    [SetUp]
    public void BootedHost()
    {
        _store = new MemoryConfigStore();
        _h = Host(new Scheduler(), nics: 2);
        Assert.That(_h.Boot(_store), Is.Empty);
    }

    /// <summary>A second host with the same NICs (same seed, so the same factory addresses), booted from the store.</summary>
    private MacLayer Reboot(out List<string> problems)
    {
        var next = Host(new Scheduler(), nics: 2);
        problems = next.Boot(_store);
        return next;
    }

    private static List<string> Describe(MacLayer mac) => mac.Links.Select(l => l switch
    {
        VnicLink v => $"{v.Name} vnic over={v.Over!.Name} mac={v.MacAddress} type={v.AddressType} slot={v.FactorySlot} vid={v.Vid} mtu={v.Mtu}",
        VlanLink v => $"{v.Name} vlan over={v.Over!.Name} vid={v.Vid} mtu={v.Mtu}",
        PhysLink p => $"{p.Name} phys device={p.Device} mac={p.MacAddress} mtu={p.Mtu}",
        _ => $"{l.Name} {l.Class}",
    }).ToList();

    [Test]
    public void A_boot_recreates_links_macs_vids_and_mtu()
    {
        Assert.That(_h.CreateEtherstub("stub0", temporary: false).IsOk, Is.True);
        Assert.That(_h.SetLinkProp(_h.Phys(), "mtu", "9000", temporary: false).IsOk, Is.True);
        Assert.That(_h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, false, out var v0).IsOk, Is.True);
        Assert.That(_h.CreateVnic("vnic1", "stub0", new(MacAddressType.Random), 12, false, out _).IsOk, Is.True);
        Assert.That(_h.CreateVnic("vnic2", "e1000g1", new(MacAddressType.Fixed, Mac("2:8:20:a:b:c")), 7, false, out _).IsOk, Is.True);
        Assert.That(_h.CreateVnic("vnic3", "e1000g0", new(MacAddressType.Factory, Slot: 5), 0, false, out _).IsOk, Is.True);
        Assert.That(_h.CreateVnic("vnic4", "stub0", new(MacAddressType.Random, Prefix: [0x0a, 0xbc]), 0, false, out _).IsOk, Is.True);
        Assert.That(_h.CreateVlan("net9", "e1000g1", 9, false, out _).IsOk, Is.True);
        Assert.That(_h.SetLinkProp(v0!, "mtu", "1400", temporary: false).IsOk, Is.True);

        var next = Reboot(out var problems);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.Empty);
            Assert.That(Describe(next), Is.EqualTo(Describe(_h)));
            Assert.That(next.Find("vnic0")!.Mtu, Is.EqualTo(1400));
            Assert.That(next.Phys().Mtu, Is.EqualTo(9000));
            Assert.That(next.PersistentLinks.Select(r => r.Name), Is.EqualTo(_h.PersistentLinks.Select(r => r.Name)));
        }
    }

    [Test]
    public void A_rebooted_host_allocates_the_next_factory_slot_after_the_replayed_ones()
    {
        _h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, false, out _);

        var next = Reboot(out _);
        next.CreateVnic("vnic1", "e1000g0", new(MacAddressType.Auto), 0, true, out var v1);

        Assert.That(v1!.FactorySlot, Is.EqualTo(2));
    }

    [Test]
    public void Temporary_links_are_not_persisted()
    {
        _h.CreateEtherstub("stub0", temporary: true);
        _h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, true, out _);
        _h.CreateVlan("net5", "e1000g0", 5, true, out _);
        _h.SetLinkProp(_h.Phys(), "mtu", "9000", temporary: true);

        var next = Reboot(out var problems);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.PersistentLinks, Is.Empty);
            Assert.That(_store.Read(MacLayer.ConfigName), Is.Null, "nothing was ever written");
            Assert.That(problems, Is.Empty);
            Assert.That(next.Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1" }));
            Assert.That(next.Phys().Mtu, Is.EqualTo(1500));
        }
    }

    [Test]
    public void Temporary_mtu_on_a_persistent_vnic_is_not_written()
    {
        _h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, false, out var v);
        _h.SetLinkProp(v!, "mtu", "1400", temporary: true);

        var next = Reboot(out _);

        Assert.That(next.Find("vnic0")!.Mtu, Is.EqualTo(1500));
    }

    [Test]
    public void Temporary_delete_keeps_the_persistent_record()
    {
        _h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, false, out var v);
        var mac = v!.MacAddress;

        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Exists("vnic0"), Is.False);
            Assert.That(_h.FindPersistent("vnic0"), Is.Not.Null);
            Assert.That(_h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Auto), 0, true, out _).Message, Is.EqualTo("object already exists"),
                "the name still belongs to the persistent link");
            Assert.That(((VnicLink)Reboot(out _).Find("vnic0")!).MacAddress, Is.EqualTo(mac));
        }

        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: true).Message, Is.EqualTo("object not found"));
        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: false).IsOk, Is.True);
        Assert.That(Reboot(out _).Exists("vnic0"), Is.False);
    }

    [Test]
    public void Persistent_delete_removes_link_and_record()
    {
        _h.CreateEtherstub("stub0", temporary: false);
        _h.CreateVnic("vnic0", "stub0", new(MacAddressType.Auto), 0, false, out _);

        Assert.That(_h.Delete("vnic0", LinkClass.Vnic, temporary: false).IsOk, Is.True);
        Assert.That(_h.Delete("stub0", LinkClass.Etherstub, temporary: false).IsOk, Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.PersistentLinks, Is.Empty);
            Assert.That(Reboot(out _).Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1" }));
        }
    }

    [Test]
    public void Failed_operations_write_nothing()
    {
        _h.CreateVnic("vnic0", "e1000g0", new(MacAddressType.Fixed, Mac("2:8:20:a:b:c")), 0, false, out _);
        string? before = _store.Read(MacLayer.ConfigName);

        _h.CreateVnic("vnic1", "e1000g0", new(MacAddressType.Fixed, Mac("2:8:20:a:b:c")), 0, false, out _);
        _h.CreateVnic("vnic01", "e1000g0", new(MacAddressType.Auto), 0, false, out _);
        _h.CreateEtherstub("vnic0", temporary: false);
        _h.CreateVlan("net0", "e1000g0", 4095, false, out _);

        Assert.That(_store.Read(MacLayer.ConfigName), Is.EqualTo(before));
    }

    [Test]
    public void Rename_is_persisted_and_links_over_it_follow()
    {
        _h.CreateEtherstub("stub0", temporary: false);
        _h.CreateVnic("vnic0", "stub0", new(MacAddressType.Auto), 0, false, out _);
        _h.CreateVnic("vnic1", "e1000g0", new(MacAddressType.Auto), 0, false, out _);

        Assert.That(_h.RenameLink("stub0", "tenant0").IsOk, Is.True);
        Assert.That(_h.RenameLink("e1000g0", "net0").IsOk, Is.True);
        Assert.That(_h.RenameLink("vnic1", "web1").IsOk, Is.True);
        var next = Reboot(out var problems);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.Empty);
            Assert.That(Describe(next), Is.EqualTo(Describe(_h)));
            Assert.That(next.Find("vnic0")!.Over!.Name, Is.EqualTo("tenant0"));
            Assert.That(next.Find("web1")!.Over!.Name, Is.EqualTo("net0"));
            Assert.That(((PhysLink)next.Find("net0")!).Device, Is.EqualTo("e1000g0"));
        }
    }

    [TestCase("this is not json")]
    [TestCase("{")]
    [TestCase("{\"Name\":\"vnic0\"}")]
    [TestCase("[1, 2]")]
    [TestCase("[null]")]
    [TestCase("[{\"Name\":\"vnic0\",\"Class\":\"warp\"}]")]
    [TestCase("[{\"Name\":null,\"Class\":\"etherstub\"}]")]
    [TestCase("[{\"Name\":\"vnic0\",\"Class\":\"vnic\",\"Over\":\"e1000g0\",\"Mac\":\"zz\"}]")]
    [TestCase("[{\"Name\":\"vnic0\",\"Class\":\"vnic\",\"Over\":\"nosuch0\",\"Mac\":\"2:8:20:a:b:c\"}]")]
    [TestCase("[{\"Name\":\"vnic0\",\"Class\":\"vnic\",\"Over\":\"e1000g0\",\"Mac\":\"2:8:20:a:b:c\",\"Vid\":65541}]")]
    [TestCase("[{\"Name\":\"vnic0\",\"Class\":\"vnic\",\"Over\":\"e1000g0\",\"Mac\":\"2:8:20:a:b:c\",\"Vid\":-1}]")]
    [TestCase("[{\"Name\":\"net0\",\"Class\":\"vlan\",\"Over\":\"e1000g0\",\"Vid\":65537}]")]
    [TestCase("[{\"Name\":\"x0\",\"Class\":\"phys\",\"Device\":\"nosuch\"}]")]
    public void A_corrupt_datalink_conf_is_reported_and_does_not_throw(string text)
    {
        _store.Write(MacLayer.ConfigName, text);

        List<string> problems = [];
        MacLayer? next = null;
        Assert.DoesNotThrow(() => next = Reboot(out problems));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.Not.Empty);
            Assert.That(problems, Has.All.StartsWith("datalink.conf: "));
            Assert.That(next!.Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1" }), "nothing half-applied");
        }
    }

    [Test]
    public void A_bad_record_is_skipped_and_the_good_ones_are_replayed()
    {
        _store.Write(MacLayer.ConfigName, """
            [
              {"Name": "stub0", "Class": "etherstub"},
              {"Name": "vnic0", "Class": "vnic", "Over": "stub0", "Mac": "2:8:20:1:2:3", "MacType": "random"},
              {"Name": "vnic1", "Class": "vnic", "Over": "stub0", "Mac": "2:8:20:1:2:3", "MacType": "random"},
              {"Name": "vnic2", "Class": "vnic", "Over": "stub0", "Mac": "2:8:20:1:2:4", "Props": {"mtu": "99999"}}
            ]
            """);

        var next = Reboot(out var problems);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(problems, Is.EqualTo(new[]
            {
                "datalink.conf: record 3 (line 4): vnic1: MAC address is already in use",
                "datalink.conf: record 4 (line 5): vnic2: cannot set link property 'mtu': invalid value",
            }));
            Assert.That(next.Links.Select(l => l.Name), Is.EqualTo(new[] { "e1000g0", "e1000g1", "stub0", "vnic0", "vnic2" }));
            Assert.That(next.Find("vnic2")!.Mtu, Is.EqualTo(1500));
            Assert.That(next.FindPersistent("vnic1"), Is.Null);
        }
    }

    [Test]
    public void A_file_store_survives_a_new_process()
    {
        string root = Path.Combine(Path.GetTempPath(), "smartos-vnic-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            var h = Host(new Scheduler());
            h.Boot(new FileConfigStore(root));
            h.CreateEtherstub("stub0", temporary: false);
            h.CreateVnic("vnic0", "stub0", new(MacAddressType.Auto), 3, false, out var v);

            var next = Host(new Scheduler());
            var problems = next.Boot(new FileConfigStore(root));

            using (Assert.EnterMultipleScope())
            {
                Assert.That(problems, Is.Empty);
                Assert.That(((VnicLink)next.Find("vnic0")!).MacAddress, Is.EqualTo(v!.MacAddress));
                Assert.That(((VnicLink)next.Find("vnic0")!).Vid, Is.EqualTo(3));
                Assert.That(Directory.GetFiles(Path.Combine(root, "etc")).Select(Path.GetFileName), Is.EqualTo(new[] { "datalink.conf" }));
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
