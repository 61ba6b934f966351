using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Delegated datasets (zones/ZoneDatasets.cs): zonecfg's dataset resource, vmadm's delegate_dataset,
/// and zfs and zpool run in the zone (zlogin) seeing and managing only the delegated tree.
/// </summary>
public class ZoneDatasetTests
{
    private const string Uuid = "66666666-6666-4666-8666-666666666666";
    private const string Data = $"zones/{Uuid}/data";
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zoneds-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host with a zones pool, zones/other beside the VM, and the VM (delegate_dataset)
    /// running; what engineer B's vmadm create makes is made here if absent.</summary>
    private CliHost Delegated()
    {
        using (var fs = new FileStream(Path.Combine(_root, "d0"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        var h = new CliHost(store: new FileConfigStore(_root));
        h.Ok(A("zpool create zones d0"));
        h.Ok(A("zfs create zones/other"));
        var r = h.WithStdin($$"""{"uuid": "{{Uuid}}", "brand": "joyent", "autoboot": false, "delegate_dataset": true}""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        h.Ok(A($"zfs create -p {Data}"));
        h.Ok(A($"vmadm start {Uuid}"));
        return h;
    }

    private static string[] InZone(string line) => [.. A($"zlogin {Uuid}"), .. A(line)];

    [Test]
    public void Zfs_in_the_zone_lists_the_delegated_tree_and_its_parents_only()
    {
        var h = Delegated();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(InZone("zfs list -H -o name")), Is.EqualTo($"zones\nzones/{Uuid}\n{Data}\n"));
            Assert.That(h.Ok(InZone($"zfs get -H -o value zoned {Data}")), Is.EqualTo("on\n"));
            Assert.That(h.Ok(A($"zfs get -H -o value,source zoned {Data}")), Is.EqualTo("on\tlocal\n"));
            Assert.That(h.Fails(InZone("zfs list zones/other")).Stderr, Is.EqualTo("cannot open 'zones/other': dataset does not exist\n"));
            Assert.That(h.Ok(A($"vmadm get {Uuid}")), Does.Contain($"\"datasets\": [\n    \"{Data}\"\n  ]"));
        }
    }

    [Test]
    public void Zfs_in_the_zone_manages_what_is_below_the_delegated_dataset()
    {
        var h = Delegated();
        h.Ok(InZone($"zfs create {Data}/db"));
        h.Ok(InZone($"zfs set quota=10m {Data}/db"));
        h.Ok(InZone($"zfs snapshot -r {Data}@daily"));
        h.Ok(InZone($"zfs rollback {Data}/db@daily"));
        h.Ok(InZone($"zfs rename {Data}/db {Data}/pg"));
        Assert.That(h.Ok(InZone($"zfs list -H -o name -t all -r {Data}")), Is.EqualTo($"{Data}\n{Data}@daily\n{Data}/pg\n{Data}/pg@daily\n"));
        h.Ok(InZone($"zfs destroy -r {Data}/pg"));
        Assert.That(h.Ok(A($"zfs list -H -o name -r {Data}")), Is.EqualTo($"{Data}\n"));
    }

    [TestCase("zfs create zones/evil", "cannot create 'zones/evil': permission denied")]
    [TestCase("zfs destroy zones/UUID", "cannot destroy 'zones/UUID': permission denied")]
    [TestCase("zfs snapshot zones/UUID@x", "cannot create snapshot 'zones/UUID@x': dataset does not exist")]
    [TestCase("zfs set atime=off zones", "cannot set property for 'zones': permission denied")]
    [TestCase("zfs set quota=1g zones/UUID/data", "cannot set property for 'zones/UUID/data': permission denied")]
    [TestCase("zfs set zoned=off zones/UUID/data", "cannot set property for 'zones/UUID/data': permission denied")]
    [TestCase("zfs inherit zoned zones/UUID/data", "cannot inherit zoned for 'zones/UUID/data': permission denied")]
    [TestCase("zfs rename zones/UUID/data zones/UUID/mine", "cannot rename 'zones/UUID/mine': permission denied")]
    [TestCase("zfs destroy zones/other", "cannot open 'zones/other': dataset does not exist")]
    [TestCase("zfs get quota zones/other", "cannot open 'zones/other': dataset does not exist")]
    [TestCase("zfs unmount zones/UUID/data", "cannot unmount 'zones/UUID/data': permission denied")]
    [TestCase("zpool destroy zones", "cannot destroy 'zones': permission denied")]
    [TestCase("zpool scrub zones", "cannot scrub 'zones': permission denied")]
    public void Changes_outside_the_delegated_tree_are_refused_and_change_nothing(string line, string why)
    {
        var h = Delegated();
        string before = h.Ok(A("zfs list -H -o name,quota,zoned,atime -t all"));
        var r = h.Run(InZone(line.Replace("UUID", Uuid, StringComparison.Ordinal)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo(why.Replace("UUID", Uuid, StringComparison.Ordinal) + "\n"));
            Assert.That(h.Ok(A("zfs list -H -o name,quota,zoned,atime -t all")), Is.EqualTo(before));
        }
    }

    [Test]
    public void Zpool_in_the_zone_shows_only_the_pool_of_its_dataset()
    {
        var h = Delegated();
        using (var fs = new FileStream(Path.Combine(_root, "d1"), FileMode.CreateNew)) fs.SetLength(64L << 20);
        h.Ok(A("zpool create tank d1"));
        Assert.That(h.Ok(A("zpool list -H -o name")), Is.EqualTo("tank\nzones\n"));
        Assert.That(h.Ok(InZone("zpool list -H -o name")), Is.EqualTo("zones\n"));
        Assert.That(h.Fails(InZone("zpool status tank")).Stderr, Is.EqualTo("cannot open 'tank': no such pool\n"));
        Assert.That(h.Fails(InZone("zfs list tank")).Stderr, Is.EqualTo("cannot open 'tank': dataset does not exist\n"));
    }

    [Test]
    public void A_zone_without_delegated_datasets_sees_no_dataset_and_no_pool()
    {
        var h = Delegated();
        const string Plain = "77777777-7777-4777-8777-777777777777";
        var r = h.WithStdin($$"""{"uuid": "{{Plain}}", "brand": "joyent"}""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A($"zlogin {Plain} zfs list")), Is.EqualTo("no datasets available\n"));
            Assert.That(h.Fails(A($"zlogin {Plain} zfs list {Data}")).Stderr, Is.EqualTo($"cannot open '{Data}': dataset does not exist\n"));
            Assert.That(h.Fails(A($"zlogin {Plain} zpool list")).Stderr, Is.EqualTo("internal error: failed to initialize ZFS library\n"));
        }
    }

    [Test]
    public void Zonecfg_adds_shows_exports_and_removes_a_dataset_resource()
    {
        var h = Delegated();
        h.Ok(A("zfs create zones/shared"));
        h.Ok("zonecfg", "-z", "z1", "create; set zonepath=/zones/z1; add dataset; set name=zones/shared; end");
        Assert.That(h.Ok("zonecfg", "-z", "z1", "info dataset"), Is.EqualTo("dataset:\n\tname: zones/shared\n"));
        Assert.That(h.Ok("zonecfg", "-z", "z1", "export"), Does.Contain("add dataset\nset name=zones/shared\nend\n"));
        h.Ok("zonecfg", "-z", "z1", "verify");
        Assert.That(h.Fails("zonecfg", "-z", "z1", "add dataset; set name=zones/shared; end").Stderr,
            Is.EqualTo("zonecfg:z1: on command 3 (end): A dataset resource with the name 'zones/shared' already exists.\n"));
        Assert.That(h.Fails("zonecfg", "-z", "z1", "add dataset; end").Stderr, Is.EqualTo("zonecfg:z1: on command 2 (end): name not specified\n"));
        Assert.That(h.Fails("zonecfg", "-z", "z1", "add dataset; set name=zones/x@snap; end").Stderr,
            Is.EqualTo("zonecfg:z1: on command 3 (end): invalid dataset name 'zones/x@snap': snapshots cannot be delegated\n"));
        Assert.That(h.Fails("zonecfg", "-z", "z1", "add dataset; set alias=x; end").Stderr, Is.EqualTo("zonecfg:z1: on command 2 (set alias=x): alias: unknown property for dataset\n"));
        h.Ok("zonecfg", "-z", "z1", "remove dataset name=zones/shared");
        Assert.That(h.Ok("zonecfg", "-z", "z1", "info dataset"), Is.Empty);
    }

    [Test]
    public void A_delegated_dataset_that_does_not_exist_fails_verify_and_boot()
    {
        var h = Delegated();
        h.Ok("zonecfg", "-z", "z2", "create; set zonepath=/zones/z2; add dataset; set name=zones/missing; end");
        Assert.That(h.Fails("zonecfg", "-z", "z2", "verify").Stderr, Is.EqualTo("zonecfg:z2: could not verify zfs dataset zones/missing: dataset does not exist\n"));
        h.Ok(A("zoneadm -z z2 install"));
        Assert.That(h.Fails(A("zoneadm -z z2 boot")).Stderr, Does.Contain("could not verify zfs dataset zones/missing: dataset does not exist"));
        Assert.That(h.Ok(A("zoneadm -z z2 list -p")), Does.Contain(":installed:"));
    }
}
