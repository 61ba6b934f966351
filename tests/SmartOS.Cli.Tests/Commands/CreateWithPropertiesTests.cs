using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// MacLayer.Create.cs and ZoneNets.cs through their callers: a link property refused after the link
/// exists leaves no link, live or persistent, whether dladm, zone boot or vmadm asked; and the same bad
/// net gets the same words from zonecfg, vmadm and boot.
/// </summary>
public class CreateWithPropertiesTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A nic whose static ips and allowed_ips (13, the most VM.js takes) come to 33 addresses:
    /// one more than the allowed-ips property takes (LinkProtection.MaxAllowedIps), which only the MAC
    /// layer knows, once the VNIC exists.</summary>
    private static string NicWithTooManyAllowedIps()
    {
        int statics = LinkProtection.MaxAllowedIps + 1 - VmModel.MaxAllowedIps;
        string ips = string.Join(", ", Enumerable.Range(2, statics).Select(i => $"\"10.0.0.{i}/24\""));
        string allowed = string.Join(", ", Enumerable.Range(1, VmModel.MaxAllowedIps).Select(i => $"\"10.0.1.{i}\""));
        return $$"""{ "nic_tag": "admin", "ips": [{{ips}}], "allowed_ips": [{{allowed}}] }""";
    }

    private static (CliHost Host, MemoryConfigStore Store) Tagged()
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(store: store);
        h.Ok(A("nictagadm add admin e1000g0"));
        return (h, store);
    }

    private static void AssertNoVnic(CliHost h, MemoryConfigStore store, string? configBefore)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
            Assert.That(store.Read(MacLayer.ConfigName), Is.EqualTo(configBefore));
        }
    }

    [TestCase("dladm create-vnic -l e1000g0 -p maxbw=10M,mtu=9001 v0", "dladm: vnic creation over e1000g0 failed: invalid value\n")]
    [TestCase("dladm create-vnic -t -l e1000g0 -p maxbw=10M,mtu=9001 v0", "dladm: vnic creation over e1000g0 failed: invalid value\n")]
    [TestCase("dladm create-vlan -l e1000g0 -v 5 -p mtu=9001 vlan5", "dladm: create operation over e1000g0 failed: invalid value\n")]
    public void Dladm_create_with_a_refused_property_leaves_no_link(string line, string message)
    {
        var (h, store) = Tagged();
        string? before = store.Read(MacLayer.ConfigName);
        var r = h.Fails(A(line));
        Assert.That(r.Stderr, Is.EqualTo(message));
        AssertNoVnic(h, store, before);
        Assert.That(h.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\n"));
    }

    [Test]
    public void Zone_boot_with_a_refused_property_leaves_no_link_and_the_zone_installed()
    {
        var (h, store) = Tagged();
        var c = h.WithStdin($$"""{ "alias": "web", "autoboot": false, "nics": [ {{NicWithTooManyAllowedIps()}} ] }""", "vmadm", "create");
        Assert.That(c.ExitCode, Is.Zero, c.Stderr);
        string uuid = h.Host.Zones.Zones.Single().Name;
        string? before = store.Read(MacLayer.ConfigName);

        var r = h.Fails("zoneadm", "-z", uuid, "boot");

        Assert.That(r.Stderr, Does.Contain("net z1_net0: cannot set link property 'allowed-ips' to '10.0.0.2,10.0.0.3,").And.Contain(": invalid number of values"));
        AssertNoVnic(h, store, before);
        Assert.That(h.Ok("zoneadm", "-z", uuid, "list", "-p"), Does.Contain(":installed:"));
    }

    [Test]
    public void Vmadm_create_with_a_refused_property_leaves_no_link()
    {
        var (h, store) = Tagged();
        string? before = store.Read(MacLayer.ConfigName);

        var r = h.WithStdin($$"""{ "alias": "web", "autoboot": true, "nics": [ {{NicWithTooManyAllowedIps()}} ] }""", "vmadm", "create");

        Assert.That(r.ExitCode, Is.Not.Zero);
        Assert.That(r.Stderr, Does.Contain("Failed to start VM").And.Contain($"cannot set link property 'allowed-ips'").And.Contain("invalid number of values"));
        AssertNoVnic(h, store, before);
    }

    /// <summary>A VM's nic asks for mtu 1500; then its NIC is set to 1400. zonecfg verify, zoneadm boot
    /// and a second vmadm create with the same nic all refuse it in the same words.</summary>
    [Test]
    public void The_same_bad_net_gets_the_same_words_from_zonecfg_vmadm_and_boot()
    {
        var (h, _) = Tagged();
        const string Nic = """{ "nic_tag": "admin", "ips": ["dhcp"], "mtu": 1500 }""";
        var c = h.WithStdin($$"""{ "alias": "web", "autoboot": false, "nics": [ {{Nic}} ] }""", "vmadm", "create");
        Assert.That(c.ExitCode, Is.Zero, c.Stderr);
        string uuid = h.Host.Zones.Zones.Single().Name;
        h.Ok(A("dladm set-linkprop -p mtu=1400 e1000g0"));
        const string Detail = "1500 is larger than the MTU of e1000g0, 1400";

        var zonecfg = h.Fails("zonecfg", "-z", uuid, "verify");
        var boot = h.Fails("zoneadm", "-z", uuid, "boot");
        var vmadm = h.WithStdin($$"""{ "alias": "web2", "autoboot": false, "nics": [ {{Nic}} ] }""", "vmadm", "create");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(zonecfg.Stderr, Does.Contain("net z1_net0: mtu " + Detail + "\n"));
            Assert.That(boot.Stderr, Does.Contain("net z1_net0: mtu " + Detail + "\n"));
            Assert.That(vmadm.Stderr, Is.EqualTo($"Invalid value(s) for: nics.*.mtu (nics.0: {Detail})\n"));
            Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
        }
    }

    [Test]
    public void A_missing_nic_tag_gets_the_same_words_from_zonecfg_verify_zoneadm_verify_and_install()
    {
        var (h, _) = Tagged();
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; set global-nic=nosuch; end");
        const string Words = "net web0: global-nic 'nosuch' does not exist\n";
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails("zonecfg", "-z", "web", "verify").Stderr, Does.EndWith(Words));
            Assert.That(h.Fails(A("zoneadm -z web verify")).Stderr, Does.EndWith(Words));
            Assert.That(h.Fails(A("zoneadm -z web install")).Stderr, Does.EndWith(Words));
        }
    }
}
