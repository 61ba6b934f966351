using SmartOS.Kernel;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>MacLayer.Create.cs: create-with-properties is all or nothing, live and persistent.</summary>
public class CreateWithPropertiesTests
{
    /// <summary>A store whose writes fail once armed (a full disk, say).</summary>
    private sealed class FailingStore : IConfigStore
    {
        private readonly MemoryConfigStore _inner = new();
        public bool Fail { get; set; }
        public string? Read(string name) => _inner.Read(name);
        public void Write(string name, string content)
        {
            if (Fail) throw new IOException("disk full");
            _inner.Write(name, content);
        }
        public void Delete(string name) => _inner.Delete(name);
    }

    private FailingStore _store = null!;
    private MacLayer _h = null!;

    [SetUp]
    public void BootedHost()
    {
        _store = new FailingStore();
        _h = Host(new Scheduler(), nics: 2);
        Assert.That(_h.Boot(_store), Is.Empty);
    }

    [Test]
    public void A_vnic_is_created_with_its_properties_applied_and_persisted()
    {
        var s = _h.CreateVnic("v0", "e1000g0", new(MacAddressType.Auto), 0, [("mtu", "1400"), ("maxbw", "10M")], false, out var v, out int bad);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((s.IsOk, bad), Is.EqualTo((true, -1)));
            Assert.That(v!.Mtu, Is.EqualTo(1400));
            Assert.That(_h.FindPersistent("v0")!.Props, Is.EquivalentTo(new Dictionary<string, string> { ["mtu"] = "1400", ["maxbw"] = "10M" }));
        }
    }

    [Test]
    public void A_bad_last_property_leaves_no_vnic_and_names_the_property()
    {
        var s = _h.CreateVnic("v0", "e1000g0", new(MacAddressType.Auto), 0, [("mtu", "1400"), ("mtu", "9001")], false, out var v, out int bad);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((s.Code, bad), Is.EqualTo((DladmStatus.BadVal, 1)));
            Assert.That(v, Is.Null);
            Assert.That(_h.Find("v0"), Is.Null);
            Assert.That(_h.FindPersistent("v0"), Is.Null);
        }
    }

    [Test]
    public void A_persistent_write_that_throws_leaves_no_vnic_or_vlan()
    {
        _store.Fail = true;
        Assert.Throws<IOException>(() => _h.CreateVnic("v0", "e1000g0", new(MacAddressType.Auto), 0, [("mtu", "1400")], false, out _, out _));
        Assert.Throws<IOException>(() => _h.CreateVlan("vlan5", "e1000g0", 5, [("mtu", "1400")], false, out _, out _));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h.Find("v0"), Is.Null);
            Assert.That(_h.Find("vlan5"), Is.Null);
            Assert.That(_h.PersistentLinks.Select(r => r.Name), Does.Not.Contain("v0").And.Not.Contain("vlan5"));
        }
        _store.Fail = false;
        Assert.That(_h.CreateVnic("v0", "e1000g0", new(MacAddressType.Auto), 0, [("mtu", "1400")], false, out _, out _).IsOk, Is.True, "the name is free again");
    }

    [Test]
    public void A_bad_property_leaves_no_vlan()
    {
        var s = _h.CreateVlan("vlan5", "e1000g0", 5, [("colour", "red")], false, out var v, out int bad);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((s.Code, bad), Is.EqualTo((DladmStatus.NotFound, 0)));
            Assert.That(_h.Find("vlan5"), Is.Null);
            Assert.That(_h.FindPersistent("vlan5"), Is.Null);
        }
    }

    [Test]
    public void A_temporary_vnic_with_properties_is_not_persisted()
    {
        Assert.That(_h.CreateVnic("v0", "e1000g0", new(MacAddressType.Auto), 0, [("mtu", "1400")], true, out var v, out _).IsOk, Is.True);
        Assert.That((v!.Mtu, _h.FindPersistent("v0")), Is.EqualTo((1400, (LinkRecord?)null)));
    }
}
