using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>ipadm without -t is persistent (illumos ipadm.conf, replayed at boot); with -t it is not.</summary>
public class IpadmPersistenceTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-ipadm-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CliHost Boot() => new(store: new FileConfigStore(_root));

    private static string Addresses(CliHost h) => h.Ok(A("ipadm show-addr"));

    [Test]
    public void Global_zone_addresses_made_without_t_come_back_after_the_host_boots_again()
    {
        var first = Boot();
        first.Ok(A("ipadm create-if e1000g0"));
        first.Ok(A("ipadm create-addr -T static -a 10.0.0.5/24 e1000g0/v4"));
        first.Ok(A("ipadm create-if e1000g1"));
        first.Ok(A("ipadm create-addr -t -T static -a 10.1.0.5/24 e1000g1/v4"));
        first.Ok(A("ipadm set-prop -p forwarding=on ipv4"));

        var second = Boot();
        second.World.Scheduler.RunFor(2 * Time.Second); // duplicate address detection
        string addrs = Addresses(second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Host.BootProblems, Is.Empty);
            Assert.That(addrs, Does.Contain("e1000g0/v4        static   ok           10.0.0.5/24"));
            Assert.That(addrs, Does.Not.Contain("10.1.0.5"), "a temporary address");
            Assert.That(second.Ok(A("ipadm show-if e1000g1")), Does.Contain("e1000g1"), "the interface was persistent");
            Assert.That(second.Host.Stack.ForwardingV4, Is.True);
            Assert.That(second.Ok(A("ipadm show-prop -p forwarding ipv4")), Does.Contain("ipv4  forwarding            rw   on           on "));
            Assert.That(File.ReadAllText(Path.Combine(_root, "etc", IpadmConfig.FileName("global"))),
                Is.EqualTo("create-if e1000g0\ncreate-addr -T static -a 10.0.0.5/24 e1000g0/v4\ncreate-if e1000g1\nset-prop -p forwarding=on ipv4\n"));
        }
    }

    [Test]
    public void Delete_addr_and_delete_if_remove_the_persistent_records_too()
    {
        var first = Boot();
        first.Ok(A("ipadm create-if e1000g0"));
        first.Ok(A("ipadm create-addr -T static -a 10.0.0.5/24 e1000g0/v4"));
        first.Ok(A("ipadm create-addr -T static -a 10.0.0.6/24 e1000g0/two"));
        first.Ok(A("ipadm delete-addr e1000g0/two"));
        var second = Boot();
        second.World.Scheduler.RunFor(2 * Time.Second);
        Assert.That(Addresses(second), Does.Contain("10.0.0.5/24").And.Not.Contain("10.0.0.6"));
        second.Ok(A("ipadm delete-if e1000g0"));
        var third = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(third.Run(A("ipadm show-if e1000g0")).ExitCode, Is.EqualTo(1));
            Assert.That(File.Exists(Path.Combine(_root, "etc", IpadmConfig.FileName("global"))), Is.False);
        }
    }

    [Test]
    public void A_zone_keeps_its_ipadm_changes_across_a_reboot_and_loses_them_with_the_zone()
    {
        var h = Boot();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address=10.0.0.2/24; end");
        h.Ok(A("zoneadm -z web install"));
        h.Ok(A("zoneadm -z web boot"));
        h.Ok(A("zlogin web ipadm create-addr -T static -a 10.0.0.9/24 net0/extra"));
        h.Ok(A("zlogin web ipadm create-addr -t -T static -a 10.0.0.10/24 net0/tmp"));
        var reboot = h.Run(A("zoneadm -z web reboot"));
        h.World.Scheduler.RunFor(2 * Time.Second);
        string addrs = h.Ok(A("zlogin web ipadm show-addr"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reboot.ExitCode, Is.Zero, reboot.Stderr);
            Assert.That(reboot.Stderr, Is.Empty);
            Assert.That(addrs, Does.Contain("net0/extra        static   ok           10.0.0.9/24"));
            Assert.That(addrs, Does.Not.Contain("10.0.0.10"));
        }
        h.Ok(A("zoneadm -z web halt"));
        h.Ok(A("zoneadm -z web uninstall -F"));
        h.Ok("zonecfg", "-z", "web", "delete -F");
        Assert.That(File.Exists(Path.Combine(_root, "etc", IpadmConfig.FileName("web"))), Is.False);
    }

    [Test]
    public void A_record_that_no_longer_applies_is_reported_when_the_zone_boots()
    {
        var h = Boot();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address=10.0.0.2/24; end");
        h.Ok(A("zoneadm -z web install"));
        File.WriteAllText(Path.Combine(_root, "etc", IpadmConfig.FileName("web")), "create-addr -T static -a 10.0.0.9/24 net7/gone\n");
        var boot = h.Run(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(boot.ExitCode, Is.Zero, "the zone runs without it");
            Assert.That(boot.Stderr, Does.StartWith("zoneadm: zone 'web': ipadm.web.conf: line 1: ipadm create-addr -T static -a 10.0.0.9/24 net7/gone: ipadm: Could not create address: "));
        }
    }
}
