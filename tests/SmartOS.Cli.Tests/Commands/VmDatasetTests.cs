using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Zones on datasets (zones/VmDatasets.cs): vmadm create/delete/update/get on zones/UUID, vm
/// snapshots, zoneadm install -t/-q and clone, on a host whose `zones` pool is a sparse file under
/// its root directory.
/// </summary>
public class VmDatasetTests
{
    private const string Image = "11111111-2222-4333-8444-555555555555";
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zoneds-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host with pool zones on a sparse file of <paramref name="size"/> bytes.</summary>
    private CliHost Zones(long size = 256L << 20)
    {
        using (var fs = new FileStream(Path.Combine(_root, "d0"), FileMode.CreateNew)) fs.SetLength(size);
        var h = Reboot();
        h.Ok(A("zpool create zones d0"));
        return h;
    }

    /// <summary>The same host booted again from its root directory.</summary>
    private CliHost Reboot() => new(store: new FileConfigStore(_root));

    /// <summary>An installed image, as imgadm leaves one: zones/IMAGE holding root/etc/motd, snapshot @final
    /// (made here if absent, so the test passes with or without the image store).</summary>
    private static void InstallImage(CliHost h)
    {
        var tree = h.Host.Pools.Find("zones")!.Datasets;
        if (tree.Exists($"zones/{Image}@final")) return;
        h.Ok("zfs", "create", $"zones/{Image}");
        var fs = h.Host.Mounts.Find($"zones/{Image}")!.FileSystem;
        Assert.That(fs.MakeDirectory("/root", 0x1ED, 0, 0, out _).IsOk);
        Assert.That(fs.MakeDirectory("/root/etc", 0x1ED, 0, 0, out _).IsOk);
        WriteFile(fs, "/root/etc/motd", "from the image\n"u8.ToArray());
        h.Ok("zfs", "snapshot", $"zones/{Image}@final");
        Images.ImageRecord.Register(h.Host, Image, "zone-dataset");
    }

    private static StorageResult WriteFile(ZplFileSystem fs, string path, byte[] data)
    {
        var made = fs.CreateFile(path, 0x1A4, 0, 0, out long inode);
        return made.IsOk ? fs.Write(inode, 0, data) : made;
    }

    private static string ReadFile(ZplFileSystem fs, string path)
    {
        Assert.That(fs.Lookup(path, out long inode).IsOk, path);
        var buf = new byte[4096];
        Assert.That(fs.Read(inode, 0, buf, out int n).IsOk);
        return System.Text.Encoding.UTF8.GetString(buf, 0, n);
    }

    /// <summary>vmadm create with a payload; the new VM's UUID.</summary>
    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
    }

    private static JsonObject Get(CliHost h, string uuid) => (JsonObject)JsonNode.Parse(h.Ok("vmadm", "get", uuid))!;

    private static string Datasets(CliHost h) => h.Ok(A("zfs list -H -t all -o name"));

    private static ZplFileSystem Root(CliHost h, string uuid) => h.Host.Mounts.Find("zones/" + uuid)!.FileSystem;

    // ---- vmadm create, get, delete ----

    [Test]
    public void Create_without_an_image_makes_an_empty_dataset_with_root_at_the_zonepath_and_get_shows_it()
    {
        var h = Zones();
        var created = h.WithStdin("""{ "alias": "empty", "autoboot": false, "zfs_io_priority": 50 }""", "vmadm", "create");
        Assert.That(created.Stderr, Does.StartWith("Warning, not enforced on this host (kept, shown by vmadm get): zfs_io_priority.\n"));
        string uuid = created.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
        var vm = Get(h, uuid);
        Assert.That(Root(h, uuid).Stat("/root", out var root).IsOk);
        var entries = new List<DirectoryEntry>();
        Assert.That(Root(h, uuid).ReadDirectory("/root", entries).IsOk);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "mountpoint,quota,origin", "zones/" + uuid), Is.EqualTo($"/zones/{uuid}\n10G\n-\n"));
            Assert.That(root.Type, Is.EqualTo(FileType.Directory));
            Assert.That(root.Mode, Is.EqualTo(0x1EDu), "root/ is 0755");
            Assert.That(entries.Select(e => e.Name).Where(n => n is not ("." or "..")), Is.Empty);
            Assert.That((string?)vm["zfs_filesystem"], Is.EqualTo("zones/" + uuid));
            Assert.That((string?)vm["zpool"], Is.EqualTo("zones"));
            Assert.That((string?)vm["zonepath"], Is.EqualTo("/zones/" + uuid));
            Assert.That((long?)vm["quota"], Is.EqualTo(VmDatasets.DefaultQuotaGiB), "VM.js's default quota");
            Assert.That(vm["snapshots"]!.AsArray(), Is.Empty);
            Assert.That(vm.ContainsKey("datasets"), Is.False);
            Assert.That((long?)vm["zfs_io_priority"], Is.EqualTo(50), "kept and shown");
        }
    }

    [Test]
    public void Create_with_an_image_clones_its_final_snapshot_and_delete_leaves_the_image()
    {
        var h = Zones();
        InstallImage(h);
        string uuid = Create(h, $$"""{ "alias": "web", "image_uuid": "{{Image}}", "quota": 3, "autoboot": false }""");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin,quota", "zones/" + uuid), Is.EqualTo($"zones/{Image}@final\n3G\n"));
            Assert.That(h.Ok("zfs", "get", "-Hp", "-o", "value", "used", "zones/" + uuid), Is.EqualTo("0\n"), "a clone of an image costs nothing until the zone writes");
            Assert.That(ReadFile(Root(h, uuid), "/root/etc/motd"), Is.EqualTo("from the image\n"));
            Assert.That((long?)Get(h, uuid)["quota"], Is.EqualTo(3));
        }
        var r = h.Run("vmadm", "delete", uuid);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        var zonesRoot = h.Host.Mounts.Find("zones")!.FileSystem;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Is.EqualTo($"Successfully deleted VM {uuid}\n"));
            Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\n"));
            Assert.That(zonesRoot.Stat("/" + uuid, out _).IsOk, Is.False, "the mountpoint directory goes too");
            Assert.That(h.Host.Zones.Find(uuid), Is.Null);
        }
    }

    [Test]
    public void An_image_that_is_not_installed_is_refused_as_vmadm_refuses_it_and_nothing_is_made()
    {
        var h = Zones();
        string before = Datasets(h);
        var r = h.WithStdin("""{ "alias": "x", "image_uuid": "99999999-2222-4333-8444-555555555555", "autoboot": false }""", "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo("Invalid value(s) for: image_uuid\n"));
            Assert.That(Datasets(h), Is.EqualTo(before));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_create_that_fails_at_the_mount_leaves_no_dataset_and_no_zone()
    {
        var h = Zones();
        const string uuid = "aaaaaaaa-2222-4333-8444-555555555555";
        // A file where the zonepath should be: the dataset is made, then cannot be mounted.
        Assert.That(WriteFile(h.Host.Mounts.Find("zones")!.FileSystem, "/" + uuid, [1]).IsOk);
        string before = Datasets(h);
        var r = h.WithStdin($$"""{ "uuid": "{{uuid}}", "autoboot": false }""", "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.StartWith($"Failed to create VM {uuid}: cannot mount 'zones/{uuid}'"));
            Assert.That(Datasets(h), Is.EqualTo(before));
            Assert.That(h.Host.Zones.Find(uuid), Is.Null);
            Assert.That(h.Host.Mounts.Find("zones")!.FileSystem.Stat("/" + uuid, out var file).IsOk && file.Type == FileType.Regular, "the file that was there stays");
        }
    }

    [Test]
    public void A_dataset_already_there_refuses_the_create_and_is_left_alone()
    {
        var h = Zones();
        const string uuid = "bbbbbbbb-2222-4333-8444-555555555555";
        h.Ok("zfs", "create", "zones/" + uuid);
        var r = h.WithStdin($$"""{ "uuid": "{{uuid}}", "autoboot": false }""", "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo($"Failed to create VM {uuid}: cannot create 'zones/{uuid}': dataset already exists\n"));
            Assert.That(h.Host.Zones.Find(uuid), Is.Null);
            Assert.That(Datasets(h), Does.Contain($"zones/{uuid}\n"));
        }
    }

    [Test]
    public void Delegate_dataset_makes_zones_uuid_data_and_delete_takes_it_too()
    {
        var h = Zones();
        string uuid = Create(h, """{ "alias": "d", "delegate_dataset": true, "autoboot": false }""");
        var vm = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{uuid}\nzones/{uuid}/data\n"));
            Assert.That(vm["datasets"]!.ToJsonString(), Is.EqualTo($"[\"zones/{uuid}/data\"]"));
        }
        h.Ok("vmadm", "delete", uuid);
        Assert.That(Datasets(h), Is.EqualTo("zones\n"));
    }

    [Test]
    public void Without_a_zones_pool_delegate_dataset_is_refused_and_quota_is_only_recorded()
    {
        var h = new CliHost();
        var r = h.WithStdin("""{ "delegate_dataset": true, "autoboot": false }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("Unsupported property(s): delegate_dataset"));
        string uuid = Create(h, """{ "quota": 5, "autoboot": false }""");
        var vm = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.Zones.Zones, Has.Count.EqualTo(1));
            Assert.That((long?)vm["quota"], Is.EqualTo(5));
            Assert.That(vm.ContainsKey("zfs_filesystem"), Is.False);
            Assert.That(vm.ContainsKey("snapshots"), Is.False);
        }
    }

    [Test]
    public void Validate_takes_delegate_dataset_as_a_boolean_of_os_vms()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.WithStdin("""{ "brand": "joyent", "delegate_dataset": true }""", "vmadm", "validate", "create").Stdout,
                Is.EqualTo("VALID 'create' payload for joyent brand VMs.\n"));
            Assert.That(h.WithStdin("""{ "brand": "joyent", "delegate_dataset": "yes" }""", "vmadm", "validate", "create").Stderr, Does.Contain("\"delegate_dataset\""));
            Assert.That(h.WithStdin("""{ "brand": "bhyve", "delegate_dataset": true }""", "vmadm", "validate", "create").Stderr, Does.Contain("\"bad_properties\": [\n    \"delegate_dataset\"\n  ]"));
        }
    }

    // ---- quota ----

    /// <summary>
    /// A VM with quota 1 (GiB) whose delegated dataset reserves 1000M of it, so that the room left to
    /// its root is about 24M and a write reaches the quota quickly. The pool file is sparse: 2 GiB costs
    /// what is written.
    /// </summary>
    private (CliHost H, string Uuid) NearlyFullVm()
    {
        var h = Zones(2L << 30);
        string uuid = Create(h, """{ "alias": "q", "quota": 1, "delegate_dataset": true, "autoboot": false }""");
        h.Ok("zfs", "set", "reservation=1000M", $"zones/{uuid}/data");
        return (h, uuid);
    }

    /// <summary>Writes 1 MiB blocks of random bytes to root/fill until the storage layer refuses one or
    /// <paramref name="max"/> are written; the refusal, or success.</summary>
    private static StorageResult Fill(CliHost h, string uuid, int max)
    {
        var fs = Root(h, uuid);
        if (!fs.Lookup("/root/fill", out long inode).IsOk) Assert.That(fs.CreateFile("/root/fill", 0x1A4, 0, 0, out inode).IsOk);
        Assert.That(fs.GetAttributes(inode, out var a).IsOk);
        var block = new byte[1 << 20];
        var random = new Random(7);
        for (int i = 0; i < max; i++)
        {
            random.NextBytes(block);
            var w = fs.Write(inode, a.Size + ((long)i << 20), block);
            if (!w.IsOk) return w;
        }
        return h.Host.Pools.Find("zones")!.Commit();
    }

    [Test]
    public void The_quota_is_the_dataset_quota_a_write_past_it_is_EDQUOT_and_vmadm_update_raises_it_live()
    {
        var (h, uuid) = NearlyFullVm();
        var refused = Fill(h, uuid, 40);
        Assert.That(refused.Status, Is.EqualTo(StorageStatus.QuotaExceeded), "a write past the quota: EDQUOT");
        var r = h.Run("vmadm", "update", uuid, "quota=2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stderr);
            Assert.That(r.Stderr, Is.EqualTo($"Successfully updated VM {uuid}\n"), "no 'not enforced' warning: it is");
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "quota", "zones/" + uuid), Is.EqualTo("2G\n"));
            Assert.That((long?)Get(h, uuid)["quota"], Is.EqualTo(2));
            Assert.That(Fill(h, uuid, 40).IsOk, "the same writes fit under the raised quota, on the same mount");
        }
        h.Ok("vmadm", "update", uuid, "quota=0");
        Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "quota", "zones/" + uuid), Is.EqualTo("none\n"), "0 is no quota, as VM.js sets it");
    }

    [Test]
    public void A_quota_below_usage_is_refused_with_zfs_words_and_nothing_changes()
    {
        var (h, uuid) = NearlyFullVm();
        h.Ok("vmadm", "update", uuid, "quota=3");
        h.Ok("zfs", "set", "reservation=1500M", $"zones/{uuid}/data");
        string conf = File.ReadAllText(Path.Combine(_root, "etc", ZoneTable.ConfigName));
        var r = h.Run("vmadm", "update", uuid, "quota=1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo($"cannot set property for 'zones/{uuid}': size is less than current used or reserved space\n"));
            Assert.That((long?)Get(h, uuid)["quota"], Is.EqualTo(3));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "quota", "zones/" + uuid), Is.EqualTo("3G\n"));
            Assert.That(File.ReadAllText(Path.Combine(_root, "etc", ZoneTable.ConfigName)), Is.EqualTo(conf));
        }
    }

    [Test]
    public void Datasets_quota_and_snapshots_survive_a_reboot_of_the_host()
    {
        var h = Zones();
        InstallImage(h);
        string uuid = Create(h, $$"""{ "alias": "p", "image_uuid": "{{Image}}", "quota": 4, "autoboot": false }""");
        h.Ok("vmadm", "create-snapshot", uuid, "before");
        Assert.That(WriteFile(Root(h, uuid), "/root/etc/after", [42]).IsOk);
        Assert.That(h.Host.Pools.Find("zones")!.Commit().IsOk);
        var h2 = Reboot();
        var vm = Get(h2, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)vm["zfs_filesystem"], Is.EqualTo("zones/" + uuid));
            Assert.That((long?)vm["quota"], Is.EqualTo(4));
            Assert.That(vm["snapshots"]!.AsArray().Select(s => (string?)s!["name"]), Is.EqualTo(new[] { "before" }));
            Assert.That(h2.Ok("zfs", "get", "-H", "-o", "value", "quota,origin", "zones/" + uuid), Is.EqualTo($"4G\nzones/{Image}@final\n"));
            Assert.That(ReadFile(Root(h2, uuid), "/root/etc/after"), Is.EqualTo("\u002a"));
        }
        h2.Ok("vmadm", "delete", uuid);
        Assert.That(Datasets(h2), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\n"));
    }

    // ---- vm snapshots ----

    [Test]
    public void Create_snapshot_takes_vmsnap_NAME_and_get_lists_snapshots_newest_first()
    {
        var h = Zones();
        string uuid = Create(h, """{ "alias": "s", "autoboot": false }""");
        var r = h.Run("vmadm", "create-snapshot", uuid, "one");
        Assert.That(r.Stderr, Is.EqualTo($"Created snapshot one for VM {uuid}\n"));
        h.World.Scheduler.RunFor(2 * Time.Second);
        h.Ok("vmadm", "create-snapshot", uuid, "two:2._-x");
        h.Ok("zfs", "snapshot", $"zones/{uuid}@other");
        var snaps = Get(h, uuid)["snapshots"]!.AsArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name"),
                Is.EqualTo($"zones/{uuid}@vmsnap-one\nzones/{uuid}@vmsnap-two:2._-x\nzones/{uuid}@other\n"));
            Assert.That(snaps.Select(s => (string?)s!["name"]), Is.EqualTo(new[] { "two:2._-x", "one" }), "only vmsnap- ones, newest first");
            Assert.That((string?)snaps[1]!["created_at"], Is.EqualTo("1970-01-01T00:00:00.000Z"));
            Assert.That((string?)snaps[0]!["created_at"], Is.EqualTo("1970-01-01T00:00:02.000Z"));
            Assert.That(snaps[0]!["size"]!.GetValueKind(), Is.EqualTo(System.Text.Json.JsonValueKind.Number));
        }
    }

    [TestCase("bad/name")]
    [TestCase("has space")]
    [TestCase("")]
    [TestCase("x1234567890123456789012345678901234567890123456789012345678901234")]
    public void A_bad_snapshot_name_is_refused_as_VM_js_refuses_it(string name)
    {
        var h = Zones();
        string uuid = Create(h, """{ "autoboot": false }""");
        var r = h.Run("vmadm", "create-snapshot", uuid, name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo("Invalid snapshot name\n"));
            Assert.That(h.Ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name"), Is.Empty);
        }
    }

    [Test]
    public void Snapshot_refusals_are_VM_js_words()
    {
        var h = Zones();
        string uuid = Create(h, """{ "autoboot": false }""");
        string delegated = Create(h, """{ "delegate_dataset": true, "autoboot": false }""");
        h.Ok("vmadm", "create-snapshot", uuid, "a");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails("vmadm", "create-snapshot", uuid, "a").Stderr, Is.EqualTo("snapshot with name \"a\" already exists.\n"));
            Assert.That(h.Fails("vmadm", "delete-snapshot", uuid, "b").Stderr, Is.EqualTo($"No snapshot named \"b\" for {uuid}\n"));
            Assert.That(h.Fails("vmadm", "rollback-snapshot", uuid, "b").Stderr, Is.EqualTo($"No snapshot named \"b\" for {uuid}\n"));
            Assert.That(h.Fails("vmadm", "create-snapshot", delegated, "a").Stderr, Is.EqualTo("Cannot currently snapshot zones that have datasets\n"));
            Assert.That(h.Fails("vmadm", "create-snapshot", uuid).Stderr, Does.StartWith("vmadm: Wrong number of parameters to \"create-snapshot\""));
            Assert.That(h.Fails("vmadm", "create-snapshot", "cccccccc-2222-4333-8444-555555555555", "a").Stderr,
                Is.EqualTo("zoneadm: cccccccc-2222-4333-8444-555555555555: No such zone configured\n"));
        }
    }

    [Test]
    public void A_VM_without_a_dataset_has_no_snapshots()
    {
        var h = new CliHost();
        string uuid = Create(h, """{ "autoboot": false }""");
        var r = h.Fails("vmadm", "create-snapshot", uuid, "a");
        Assert.That(r.Stderr, Is.EqualTo("vmobj missing zfs_filesystem, cannot create snapshot\n"));
    }

    [Test]
    public void Rollback_stops_the_VM_restores_its_files_destroys_later_snapshots_and_starts_it_again()
    {
        var h = Zones();
        string uuid = Create(h, """{ "alias": "r" }""");
        Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Running));
        Assert.That(WriteFile(Root(h, uuid), "/root/kept", [1]).IsOk);
        h.Ok("vmadm", "create-snapshot", uuid, "s1");
        Assert.That(WriteFile(Root(h, uuid), "/root/lost", [2]).IsOk);
        h.Ok("vmadm", "create-snapshot", uuid, "s2");
        Assert.That(WriteFile(Root(h, uuid), "/root/lost-too", [3]).IsOk);
        var r = h.Run("vmadm", "rollback-snapshot", uuid, "s1");
        var fs = Root(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stderr);
            Assert.That(r.Stderr, Is.EqualTo($"Rolled back snapshot s1 for VM {uuid}\n"));
            Assert.That(fs.Stat("/root/kept", out _).IsOk);
            Assert.That(fs.Stat("/root/lost", out _).IsOk, Is.False);
            Assert.That(fs.Stat("/root/lost-too", out _).IsOk, Is.False);
            Assert.That(Get(h, uuid)["snapshots"]!.AsArray().Select(s => (string?)s!["name"]), Is.EqualTo(new[] { "s1" }));
            Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Running), "VM.js starts the VM after the rollback");
        }
        var d = h.Run("vmadm", "delete-snapshot", uuid, "s1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(d.Stderr, Is.EqualTo($"Deleted snapshot s1 for VM {uuid}\n"));
            Assert.That(h.Ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name"), Is.Empty);
            Assert.That(Get(h, uuid)["snapshots"]!.AsArray(), Is.Empty);
        }
    }

    // ---- zoneadm install, clone, uninstall ----

    private static void Configure(CliHost h, string zone, string zonepath = "")
        => h.Ok("zonecfg", "-z", zone, $"create; set zonepath={(zonepath.Length > 0 ? zonepath : "/zones/" + zone)}");

    [Test]
    public void Zoneadm_install_t_clones_the_image_with_the_q_quota_and_uninstall_destroys_it()
    {
        var h = Zones();
        InstallImage(h);
        Configure(h, "web");
        Configure(h, "bare");
        h.Ok("zoneadm", "-z", "web", "install", "-t", Image, "-q", "2");
        h.Ok("zoneadm", "-z", "bare", "install");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin,quota,mountpoint", "zones/web"), Is.EqualTo($"zones/{Image}@final\n2G\n/zones/web\n"));
            Assert.That(ReadFile(h.Host.Mounts.Find("zones/web")!.FileSystem, "/root/etc/motd"), Is.EqualTo("from the image\n"));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin,quota", "zones/bare"), Is.EqualTo("-\nnone\n"));
            Assert.That(h.Host.Mounts.Find("zones/bare")!.FileSystem.Stat("/root", out _).IsOk);
        }
        h.Ok("zoneadm", "-z", "web", "uninstall");
        Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\nzones/bare\n"));
    }

    [Test]
    public void An_install_on_an_existing_dataset_uses_it_as_it_is()
    {
        var h = Zones();
        Configure(h, "got");
        Configure(h, "none");
        h.Ok("zfs", "create", "-o", "quota=5G", "zones/got");
        h.Ok("zfs", "unmount", "zones/got");
        var existing = new VmDatasets.InstallOptions(null, null, Existing: true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.Zones.Install("got", existing).IsOk);
            Assert.That(h.Host.Mounts.Find("zones/got")?.MountPoint, Is.EqualTo("/zones/got"));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "quota", "zones/got"), Is.EqualTo("5G\n"));
            Assert.That(h.Host.Zones.Install("none", existing).Message, Is.EqualTo("Brand error: cannot open 'zones/none': dataset does not exist"));
            Assert.That(h.Host.Zones.Find("none")!.State, Is.EqualTo(ZoneState.Configured));
        }
    }

    [Test]
    public void Zoneadm_install_refusals_leave_the_zone_configured_and_no_dataset()
    {
        var h = Zones();
        Configure(h, "z");
        Configure(h, "far", "/elsewhere/far");
        string before = Datasets(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails("zoneadm", "-z", "z", "install", "-q", "ten").Stderr, Is.EqualTo("zoneadm: zone 'z': Brand error: The quota ten is not a number\n"));
            Assert.That(h.Fails("zoneadm", "-z", "z", "install", "-t", "99999999-2222-4333-8444-555555555555").Stderr,
                Is.EqualTo("zoneadm: zone 'z': Brand error: image \"99999999-2222-4333-8444-555555555555\" was not found on zpool \"zones\"\n"));
            Assert.That(h.Fails("zoneadm", "-z", "far", "install").Stderr, Is.EqualTo("zoneadm: zone 'far': Brand error: missing parent ZFS dataset for /elsewhere\n"));
            Assert.That(h.Host.Zones.Find("z")!.State, Is.EqualTo(ZoneState.Configured));
            Assert.That(h.Host.Zones.Find("far")!.State, Is.EqualTo(ZoneState.Configured));
            Assert.That(Datasets(h), Is.EqualTo(before));
        }
    }

    [Test]
    public void Zoneadm_install_t_without_a_zones_pool_is_refused()
    {
        var h = new CliHost();
        Configure(h, "z");
        var r = h.Fails("zoneadm", "-z", "z", "install", "-t", Image);
        Assert.That(r.Stderr, Is.EqualTo("zoneadm: zone 'z': Brand error: an image or a quota needs the zones pool (zpool create zones DISK)\n"));
        h.Ok("zoneadm", "-z", "z", "install");
        Assert.That(h.Host.Zones.Find("z")!.State, Is.EqualTo(ZoneState.Installed));
    }

    [Test]
    public void Zoneadm_clone_snapshots_the_source_as_SUNWzoneN_and_clones_it()
    {
        var h = Zones();
        InstallImage(h);
        foreach (string z in (string[])["src", "c1", "c2", "c3"]) Configure(h, z);
        h.Ok("zoneadm", "-z", "src", "install", "-t", Image);
        Assert.That(WriteFile(h.Host.Mounts.Find("zones/src")!.FileSystem, "/root/etc/src", [7]).IsOk);
        var r = h.Run("zoneadm", "-z", "c1", "clone", "src");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        h.Ok("zoneadm", "-z", "c2", "clone", "src");
        var s = h.Run("zoneadm", "-z", "c3", "clone", "-s", "SUNWzone1", "src");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stdout, Is.EqualTo("Cloning snapshot zones/src@SUNWzone1\nInstead of copying, a ZFS clone has been created for this zone.\n"));
            Assert.That(s.Stdout, Is.EqualTo("Cloning snapshot zones/src@SUNWzone1\n"));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin", "zones/c1", "zones/c2", "zones/c3"),
                Is.EqualTo("zones/src@SUNWzone1\nzones/src@SUNWzone2\nzones/src@SUNWzone1\n"));
            Assert.That(h.Host.Zones.Find("c1")!.State, Is.EqualTo(ZoneState.Installed));
            Assert.That(ReadFile(h.Host.Mounts.Find("zones/c1")!.FileSystem, "/root/etc/src"), Is.EqualTo("\u0007"));
        }
        h.Ok("zoneadm", "-z", "c1", "uninstall");
        Assert.That(Datasets(h), Does.Contain("zones/src@SUNWzone1\n"), "c3 still uses it");
        h.Ok("zoneadm", "-z", "c3", "uninstall");
        h.Ok("zoneadm", "-z", "c2", "uninstall");
        Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\nzones/src\n"), "clone snapshots go with their last clone");
    }

    [Test]
    public void Zoneadm_uninstall_of_a_cloned_zone_promotes_its_clone_which_keeps_its_files()
    {
        var h = Zones();
        InstallImage(h);
        Configure(h, "src");
        Configure(h, "c1");
        h.Ok("zoneadm", "-z", "src", "install", "-t", Image);
        Assert.That(WriteFile(h.Host.Mounts.Find("zones/src")!.FileSystem, "/root/etc/src", [7]).IsOk);
        h.Ok("zoneadm", "-z", "c1", "clone", "src");
        h.Ok("zoneadm", "-z", "src", "uninstall");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.Zones.Find("src")!.State, Is.EqualTo(ZoneState.Configured));
            Assert.That(h.Host.Zones.Find("c1")!.State, Is.EqualTo(ZoneState.Installed));
            Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\nzones/c1\n"),
                "the promoted clone took the clone snapshot, which went with src");
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin", "zones/c1"), Is.EqualTo($"zones/{Image}@final\n"));
            Assert.That(ReadFile(h.Host.Mounts.Find("zones/c1")!.FileSystem, "/root/etc/src"), Is.EqualTo("\u0007"));
            Assert.That(ReadFile(h.Host.Mounts.Find("zones/c1")!.FileSystem, "/root/etc/motd"), Is.EqualTo("from the image\n"));
        }
        h.Ok("zoneadm", "-z", "c1", "uninstall");
        Assert.That(Datasets(h), Is.EqualTo($"zones\nzones/{Image}\nzones/{Image}@final\n"));
    }

    [Test]
    public void Zoneadm_uninstall_promotes_the_clone_of_the_youngest_snapshot_and_renames_SUNWzone_snapshots_past_it()
    {
        var h = Zones();
        foreach (string z in (string[])["src", "c1", "c2"]) Configure(h, z);
        h.Ok("zoneadm", "-z", "src", "install");
        h.Ok("zoneadm", "-z", "c1", "clone", "src");
        h.Ok("zfs", "snapshot", "zones/src@keep");
        h.Ok("zfs", "clone", "zones/src@keep", "zones/other");
        h.Ok("zoneadm", "-z", "c2", "clone", "src");
        h.Ok("zoneadm", "-z", "src", "uninstall");
        using (Assert.EnterMultipleScope())
        {
            // src@SUNWzone1, @keep, @SUNWzone2: c2's origin is the youngest. src's SUNWzone snapshots are
            // renamed 3 and 4, c2 takes all three, and src@SUNWzone4 (src's origin then) went with it.
            Assert.That(Datasets(h), Is.EqualTo("zones\nzones/c1\nzones/c2\nzones/c2@SUNWzone3\nzones/c2@keep\nzones/other\n"));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "value", "origin", "zones/c1", "zones/c2", "zones/other"),
                Is.EqualTo("zones/c2@SUNWzone3\n-\nzones/c2@keep\n"));
        }
        h.Ok("zoneadm", "-z", "c2", "uninstall");
        h.Ok("zoneadm", "-z", "c1", "uninstall");
        Assert.That(Datasets(h), Is.EqualTo("zones\nzones/other\nzones/other@keep\n"), "each uninstall handed its snapshots on");
    }

    [Test]
    public void Zoneadm_uninstall_that_zfs_refuses_after_the_promote_undoes_it_and_leaves_the_zone_whole()
    {
        var h = Zones();
        Configure(h, "src");
        Configure(h, "c1");
        h.Ok("zoneadm", "-z", "src", "install");
        h.Ok("zfs", "create", "zones/src/data");
        h.Ok("zfs", "snapshot", "zones/src/data@s");
        h.Ok("zfs", "clone", "zones/src/data@s", "zones/dc");
        h.Ok("zfs", "unmount", "zones/src/data");
        h.Ok("zoneadm", "-z", "c1", "clone", "src");
        string before = Datasets(h);
        string origins = h.Ok("zfs", "get", "-H", "-o", "name,value", "-r", "origin", "zones");
        var r = h.Fails("zoneadm", "-z", "src", "uninstall");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.StartWith("zoneadm: zone 'src': cannot destroy 'zones/src': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\nzones/dc"));
            Assert.That(Datasets(h), Is.EqualTo(before));
            Assert.That(h.Ok("zfs", "get", "-H", "-o", "name,value", "-r", "origin", "zones"), Is.EqualTo(origins), "the promote was undone");
            Assert.That(h.Host.Zones.Find("src")!.State, Is.EqualTo(ZoneState.Installed));
            Assert.That(h.Host.Mounts.Find("zones/src")?.MountPoint, Is.EqualTo("/zones/src"), "mounted again");
        }
    }

    [Test]
    public void Zoneadm_clone_refusals_are_zoneadm_words_and_change_nothing()
    {
        var h = Zones();
        Configure(h, "src");
        Configure(h, "t");
        Configure(h, "done");
        h.Ok("zoneadm", "-z", "done", "install");
        string before = Datasets(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails("zoneadm", "-z", "t", "clone", "src").Stderr, Is.EqualTo("zoneadm: zone src is configured; installed is required.\n"));
            Assert.That(h.Fails("zoneadm", "-z", "t", "clone", "nope").Stderr, Is.EqualTo("zoneadm: nope: could not get state: No such zone configured\n"));
            Assert.That(h.Fails("zoneadm", "-z", "t", "clone", "global").Stderr, Is.EqualTo("zoneadm: zone 't': clone operation is invalid for the global zone.\n"));
            Assert.That(h.Fails("zoneadm", "-z", "done", "clone", "done").Stderr, Is.EqualTo("zoneadm: zone 'done': is already installed.\n"));
            Assert.That(h.Fails("zoneadm", "-z", "t", "clone", "-s", "nosuch", "done").Stderr,
                Is.EqualTo("zoneadm: zone 't': cannot open 'zones/done@nosuch': dataset does not exist\n"));
            Assert.That(h.Host.Zones.Find("t")!.State, Is.EqualTo(ZoneState.Configured));
            Assert.That(Datasets(h), Is.EqualTo(before));
        }
    }

    [Test]
    public void Deleting_a_VM_whose_dataset_has_clones_is_refused_with_zfs_words_and_leaves_it_whole()
    {
        var h = Zones();
        string vm = Create(h, """{ "autoboot": false }""");
        Configure(h, "copy");
        h.Ok("zoneadm", "-z", "copy", "clone", vm);
        string before = Datasets(h);
        var r = h.Fails("vmadm", "delete", vm);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.StartWith($"Failed to delete VM {vm}: cannot destroy 'zones/{vm}': filesystem has dependent clones"));
            Assert.That(Datasets(h), Is.EqualTo(before));
            Assert.That(h.Host.Zones.Find(vm)!.State, Is.EqualTo(ZoneState.Installed));
            Assert.That(h.Host.Mounts.Find("zones/" + vm)?.MountPoint, Is.EqualTo("/zones/" + vm), "mounted again");
        }
        h.Ok("zoneadm", "-z", "copy", "uninstall", "-F");
        h.Ok("vmadm", "delete", vm);
        Assert.That(Datasets(h), Is.EqualTo("zones\n"));
    }

    [Test]
    public void Zoneadm_clone_refuses_a_source_with_file_systems_mounted_beneath_its_zonepath()
    {
        var h = Zones();
        string vm = Create(h, """{ "delegate_dataset": true, "autoboot": false }""");
        Configure(h, "t");
        var r = h.Fails("zoneadm", "-z", "t", "clone", vm);
        Assert.That(r.Stderr, Is.EqualTo($"zoneadm: zone 't': These file-systems are mounted on subdirectories of /zones/{vm}.\n  /zones/{vm}/data\n"));
        Assert.That(h.Ok("zfs", "list", "-H", "-t", "snapshot", "-o", "name"), Is.Empty);
    }
}
