using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class ZonePersistenceTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zones-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CliHost Boot() => new(store: new FileConfigStore(_root));

    [Test]
    public void Zones_vms_and_nic_tags_survive_a_reboot_of_the_host()
    {
        var first = Boot();
        first.Ok(A("nictagadm add admin e1000g0"));
        first.Ok(A("nictagadm add -l stub0"));
        first.Ok(A("dladm create-vnic -l e1000g1 web0"));
        first.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; set autoboot=true; add net; set physical=web0; end; add capped-memory; set physical=1g; end");
        first.Ok(A("zoneadm -z web install"));
        first.Ok(A("zoneadm -z web boot"));
        var r = first.WithStdin("""{ "alias": "db", "nics": [ { "nic_tag": "stub0", "ips": ["10.1.0.2/24"], "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        string vmBefore = first.Ok(A("vmadm list -p -o uuid,alias,ram"));
        string exportBefore = first.Ok(A("zonecfg -z web export"));

        var second = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Host.BootProblems, Is.Empty);
            Assert.That(second.Ok(A("zoneadm list -cp")), Does.Contain("-:web:installed:/zones/web::joyent:excl"));
            Assert.That(second.Ok(A("zonecfg -z web export")), Is.EqualTo(exportBefore));
            Assert.That(second.Ok(A("vmadm list -p -o uuid,alias,ram")), Is.EqualTo(vmBefore));
            Assert.That(second.Ok(A("nictagadm list -p -d ,")), Does.Contain("admin,").And.Contain("stub0,-,-,etherstub"));
            Assert.That(second.Ok(A("dladm show-etherstub -p -o link")), Is.EqualTo("stub0\n"));
        }
        // Booting the host does not boot zones; the daemon boots the autoboot ones.
        Assert.That(second.Host.Zones.BootAutoboot(), Is.Empty);
        Assert.That(second.Ok(A("zoneadm list")), Does.Contain("web\n").And.Contain(vmBefore.Split(':')[0] + "\n"));
    }

    [Test]
    public void Zone_configs_are_written_atomically_as_json_under_etc()
    {
        var h = Boot();
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.ReadAllText(Path.Combine(_root, "etc", ZoneTable.ConfigName)), Does.Contain("\"Name\": \"web\""));
            Assert.That(Directory.GetFiles(Path.Combine(_root, "etc"), "*.tmp"), Is.Empty);
        }
    }

    [Test]
    public void A_corrupt_zones_conf_is_reported_and_the_host_still_boots()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc", ZoneTable.ConfigName), "[{ \"Config\": ");
        File.WriteAllText(Path.Combine(_root, "etc", NicTagTable.ConfigName), "nonsense");
        var h = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Has.Count.EqualTo(2));
            Assert.That(h.Host.BootProblems[0], Does.StartWith("nictags.conf:"));
            Assert.That(h.Host.BootProblems[1], Does.StartWith("zones.conf:"));
            Assert.That(h.Ok(A("zoneadm list -c")), Is.EqualTo("global\n"));
        }
    }

    [Test]
    public void A_zone_record_that_fails_its_checks_is_skipped_and_named()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc", ZoneTable.ConfigName),
            """[{"Config":{"Name":"bad","Brand":"native","ZonePath":"/zones/bad"},"State":"installed"},{"Config":{"Name":"good","ZonePath":"/zones/good"},"State":"installed"}]""");
        var h = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems.Single(), Does.StartWith("zones.conf: record 1 (line 1): bad: "));
            Assert.That(h.Ok(A("zoneadm list -ip")), Does.Contain("-:good:installed"));
        }
    }

    [Test]
    public void Runtime_commands_on_a_host_that_is_not_booted_say_how_to_boot_it()
    {
        var h = Boot();
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web");
        foreach (string line in new[] { "zoneadm -z web boot", "zlogin web zonename", "snoop -d e1000g0", "pktgen -d e1000g0 -c 1 -s 60" })
        {
            var r = Dispatcher.Run(h.World, h.Host, A(line), stdin: null, hostRunning: false);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(r.ExitCode, Is.EqualTo(1), line);
                Assert.That(r.Stderr, Does.Contain("the host is not booted: start it with 'smartos boot"), line);
            }
        }
        // Configuration commands still work and persist.
        Assert.That(Dispatcher.Run(h.World, h.Host, A("zoneadm -z web install"), stdin: null, hostRunning: false).ExitCode, Is.Zero);
        Assert.That(Boot().Host.Zones.Find("web")!.State, Is.EqualTo(ZoneState.Installed));
    }

    [Test]
    public void Vmadm_create_on_a_host_that_is_not_booted_leaves_the_vm_for_the_next_boot()
    {
        var h = Boot();
        var r = Dispatcher.Run(h.World, h.Host, ["vmadm", "create"], stdin: """{ "alias": "later" }""", hostRunning: false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero);
            Assert.That(r.Stderr, Does.Contain("the VM will start when 'smartos boot' boots it"));
            Assert.That(h.Host.Zones.Zones.Single().State, Is.EqualTo(ZoneState.Installed));
        }
    }
}
