using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class PersistenceTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-root-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CliHost Boot() => new(store: new FileConfigStore(_root));

    private static string State(CliHost h)
        => h.Ok(A("dladm show-link -p -o link,class,mtu,over")) + h.Ok(A("dladm show-vnic -p -o link,over,macaddress,macaddrtype,vid"))
           + h.Ok(A("dladm show-vlan -p -o link,vid,over"));

    [Test]
    public void Configuration_is_replayed_when_the_host_boots_again()
    {
        var first = Boot();
        first.Ok(A("dladm create-etherstub stub0"));
        first.Ok(A("dladm create-vnic -l stub0 -m random db0"));
        first.Ok(A("dladm create-vnic -l e1000g0 -v 12 -m factory -n 3 web0"));
        first.Ok(A("dladm create-vnic -l e1000g0 -p mtu=1400 small0"));
        first.Ok(A("dladm create-vlan -l e1000g1 -v 77 vlan77"));
        first.Ok(A("dladm set-linkprop -p mtu=9000 e1000g1"));
        first.Ok(A("dladm rename-link e1000g1 net1"));
        string before = State(first);

        var second = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Host.BootProblems, Is.Empty);
            Assert.That(State(second), Is.EqualTo(before));
            Assert.That(second.Ok(A("dladm show-linkprop -c -o value -p mtu net1")), Is.EqualTo("9000\n"));
            Assert.That(second.Ok(A("dladm show-linkprop -c -o value -p mtu small0")), Is.EqualTo("1400\n"));
        }
    }

    [Test]
    public void Temporary_changes_are_gone_after_boot()
    {
        var first = Boot();
        first.Ok(A("dladm create-vnic -t -l e1000g0 tmp0"));
        first.Ok(A("dladm create-etherstub -t stub0"));
        first.Ok(A("dladm create-vnic -l e1000g0 keep0"));
        first.Ok(A("dladm set-linkprop -t -p mtu=1400 keep0"));
        var second = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\nkeep0\n"));
            Assert.That(second.Ok(A("dladm show-linkprop -c -o value -p mtu keep0")), Is.EqualTo("1500\n"));
        }
    }

    [Test]
    public void Temporary_delete_keeps_the_link_for_the_next_boot()
    {
        var first = Boot();
        first.Ok(A("dladm create-vnic -l e1000g0 -m 2:0:0:0:0:5 v0"));
        first.Ok(A("dladm delete-vnic -t v0"));
        Assert.That(first.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
        var second = Boot();
        Assert.That(second.Ok(A("dladm show-vnic -p -o link,macaddress")), Is.EqualTo("v0:2\\:0\\:0\\:0\\:0\\:5\n"));
        second.Ok(A("dladm delete-vnic v0"));
        Assert.That(Boot().Ok(A("dladm show-vnic -p -o link")), Is.Empty);
    }

    [Test]
    public void Config_is_written_atomically_as_json_under_etc()
    {
        var h = Boot();
        h.Ok(A("dladm create-etherstub stub0"));
        string path = Path.Combine(_root, "etc", MacLayer.ConfigName);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.ReadAllText(path), Does.Contain("\"Name\": \"stub0\""));
            Assert.That(Directory.GetFiles(Path.Combine(_root, "etc"), "*.tmp"), Is.Empty);
        }
    }

    [Test]
    public void A_corrupt_config_is_reported_and_the_host_still_boots()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc", MacLayer.ConfigName), "{ not json");
        var h = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Has.Count.EqualTo(1));
            Assert.That(h.Host.BootProblems[0], Does.StartWith("datalink.conf:"));
            Assert.That(h.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\n"));
        }
    }

    [Test]
    public void A_record_that_cannot_be_replayed_is_skipped_and_named()
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(Path.Combine(_root, "etc", MacLayer.ConfigName),
            """[{"Name":"v0","Class":"vnic","Over":"e1000g7","Mac":"2:0:0:0:0:1","MacType":"fixed"},{"Name":"stub0","Class":"etherstub"}]""");
        var h = Boot();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Is.EqualTo(new[] { "datalink.conf: record 1 (line 1): v0: object not found" }));
            Assert.That(h.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\nstub0\n"));
        }
    }

    [Test]
    public void The_one_shot_cli_persists_into_its_root()
    {
        var world = new World();
        var host = world.AddHost("h1", 2, new FileConfigStore(_root));
        Assert.That(Dispatcher.Run(world, host, A("dladm create-etherstub stub0")).ExitCode, Is.Zero);
        var again = new World().AddHost("h1", 2, new FileConfigStore(_root));
        Assert.That(again.Mac.Find("stub0"), Is.Not.Null);
    }
}
