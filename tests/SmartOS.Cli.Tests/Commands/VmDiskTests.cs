using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Virt;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// bhyve and kvm disks as volumes of the zones pool (zones/VmDisks.cs), the guest's virtio-blk disk on
/// them (zones/HvmGuest.cs rule 5), and the blkcheck guest's data across a VM restart, a rollback
/// and a host restart.
/// </summary>
public class VmDiskTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-vmdisk-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host on the test's root with a 64 MiB zones pool (or none).</summary>
    private CliHost ZonesHost(bool pool = true)
    {
        var h = new CliHost(store: new FileConfigStore(_root));
        if (pool && h.Host.Pools.Find("zones") == null)
        {
            string file = Path.Combine(_root, "d0");
            if (!File.Exists(file))
                using (var fs = new FileStream(file, FileMode.CreateNew)) fs.SetLength(64L << 20);
            h.Ok(A("zpool create zones d0"));
        }
        return h;
    }

    /// <summary>A flat image that idles (sti; hlt; jmp back): a running VM without gcc.</summary>
    private string IdleImage()
    {
        string path = Path.Combine(_root, "idle.bin");
        File.WriteAllBytes(path, [0xFB, 0xF4, 0xEB, 0xFC]);
        return path;
    }

    private static string Payload(string brand, string disks, string image = """{ "guest": "blkcheck" }""")
        => $$"""{ "alias": "d", "brand": "{{brand}}", "ram": 32, "autoboot": false, "image": {{image}}, "disks": {{disks}} }""";

    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
    }

    private static JsonObject Get(CliHost h, string uuid) => JsonNode.Parse(h.Ok("vmadm", "get", uuid))!.AsObject();

    private static string Volumes(CliHost h) => h.Ok(A("zfs list -t volume -Hp -o name,volsize"));

    private static void AssertRefused(CliHost h, CommandResult r, string message, string volumesBefore = "")
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.Contain(message));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
            Assert.That(Volumes(h), Is.EqualTo(volumesBefore), "nothing half-made");
        }
    }

    // ---- create, get, delete ----

    [TestCase("bhyve")]
    [TestCase("kvm")]
    public void Disks_are_volumes_of_the_zones_pool_shown_by_get_and_destroyed_by_delete(string brand)
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload(brand, """[ { "size": 8, "boot": true, "model": "virtio" }, { "size": 4, "compression": "lz4", "block_size": 4096 } ]"""));
        Assert.That(Volumes(h), Is.EqualTo($"zones/{uuid}-disk0\t{8 << 20}\nzones/{uuid}-disk1\t{4 << 20}\n"));
        var disks = Get(h, uuid)["disks"]!.AsArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(disks, Has.Count.EqualTo(2));
            Assert.That(disks[0]!.ToJsonString(), Is.EqualTo(
                $$"""{"block_size":8192,"boot":true,"compression":"off","media":"disk","model":"virtio","path":"/dev/zvol/rdsk/zones/{{uuid}}-disk0","refreservation":8,"size":8,"zfs_filesystem":"zones/{{uuid}}-disk0","zpool":"zones"}"""));
            Assert.That((string?)disks[1]!["compression"], Is.EqualTo("lz4"));
            Assert.That((int?)disks[1]!["block_size"], Is.EqualTo(4096));
            Assert.That((bool?)disks[1]!["boot"], Is.False);
        }
        h.Ok(A($"zfs snapshot zones/{uuid}-disk0@before"));
        Assert.That(h.Run(A($"vmadm delete {uuid}")).Stderr, Is.EqualTo($"Successfully deleted VM {uuid}\n"));
        Assert.That(h.Ok(A("zfs list -t all -H -o name")), Is.EqualTo("zones\n"), "the volumes and their snapshots are gone");
    }

    [Test]
    public void A_disk_cloned_from_a_zvol_image_shares_its_blocks_and_shows_the_image()
    {
        var h = ZonesHost();
        const string image = "4b2d1e3c-5a6f-4d7e-8f90-a1b2c3d4e5f6";
        h.Ok(A($"zfs create -V 4m zones/{image}"));
        var pool = h.Host.Pools.Find("zones")!;
        Assert.That(pool.Datasets.WriteVolume($"zones/{image}", 0, "IMAGE"u8).IsOk);
        h.Ok(A($"zfs snapshot zones/{image}@final"));
        Images.ImageRecord.Register(h.Host, image, "zvol");
        var r = h.WithStdin(Payload("kvm", $$"""[ { "image_uuid": "{{image}}", "boot": true, "size": 99 } ]"""), "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Does.StartWith("Warning, invalid create property: [disks.0.size] removing from payload."));
        string uuid = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
        var disk = Get(h, uuid)["disks"]![0]!;
        var head = new byte[5];
        pool.Datasets.ReadVolume($"zones/{uuid}-disk0", 0, head, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)disk["image_uuid"], Is.EqualTo(image));
            Assert.That((int?)disk["image_size"], Is.EqualTo(4));
            Assert.That((int?)disk["size"], Is.EqualTo(4));
            Assert.That(h.Ok(A($"zfs get -H -o value origin zones/{uuid}-disk0")), Is.EqualTo($"zones/{image}@final\n"));
            Assert.That(head, Is.EqualTo("IMAGE"u8.ToArray()));
        }
    }

    [Test]
    public void An_image_that_is_not_installed_or_not_a_volume_or_of_another_size_is_refused()
    {
        var h = ZonesHost();
        const string image = "4b2d1e3c-5a6f-4d7e-8f90-a1b2c3d4e5f6";
        AssertRefused(h, h.WithStdin(Payload("bhyve", $$"""[ { "image_uuid": "{{image}}" } ]"""), "vmadm", "create"),
            $"Invalid value(s) for: disks.0.image_uuid (image \"{image}\" was not found on zpool \"zones\")");
        h.Ok(A($"zfs create zones/{image}"));
        h.Ok(A($"zfs snapshot zones/{image}@final"));
        Images.ImageRecord.Register(h.Host, image, "zone-dataset");
        AssertRefused(h, h.WithStdin(Payload("bhyve", $$"""[ { "image_uuid": "{{image}}" } ]"""), "vmadm", "create"),
            $"(image {image} is type zone-dataset, but must be one of: [\"zvol\"])");
        h.Ok(A($"zfs destroy -r zones/{image}"));
        h.Ok(A($"zfs create -V 4m zones/{image}"));
        h.Ok(A($"zfs snapshot zones/{image}@final"));
        Images.ImageRecord.Register(h.Host, image, "zvol");
        string before = Volumes(h);
        AssertRefused(h, h.WithStdin(Payload("bhyve", $$"""[ { "image_uuid": "{{image}}", "image_size": 5 } ]"""), "vmadm", "create"),
            $"incorrect image_size value for image {image} passed: 5 should be: 4", before);
    }

    [Test]
    public void A_disk_larger_than_the_pool_is_refused_with_zfs_words_and_the_disks_made_before_it_are_undone()
    {
        var h = ZonesHost();
        const string uuid = "11111111-2222-4333-8444-555555555555";
        string payload = Payload("bhyve", """[ { "size": 8 }, { "size": 1024 } ]""").Replace("{ \"alias\"", $"{{ \"uuid\": \"{uuid}\", \"alias\"", StringComparison.Ordinal);
        var r = h.WithStdin(payload, "vmadm", "create");
        AssertRefused(h, r, $"Failed to create VM {uuid}: cannot create 'zones/{uuid}-disk1': out of space");
        Assert.That(h.Ok(A("zfs list -H -o name")), Is.EqualTo("zones\n"));
    }

    [TestCase("""[ { "size": 8, "model": "ide" } ]""", "\"ide\" is not a valid disk model for kvm brand. Valid are: virtio,scsi,ide (this VMM has virtio only)")]
    [TestCase("""[ { "size": 8, "media": "cdrom" } ]""", "Unsupported property(s): disks.0.media=cdrom (this VMM has disks only, no cdrom)")]
    [TestCase("""[ { "boot": true } ]""", "Missing required properties: disks.0.size")]
    [TestCase("""[ { "size": 0 } ]""", "Invalid value(s) for: disks.0.size (0: MiB from 1 to ")]
    [TestCase("""[ { "size": 8, "path": "/dev/zvol/rdsk/zones/x" } ]""", "Unsupported property(s): disks.*.path (not enforced by this SmartOS yet)")]
    [TestCase("""[ { "size": 8, "zpool": "tank" } ]""", "Invalid value(s) for: disks.0.zpool (tank: this host keeps VM disks on the 'zones' pool)")]
    [TestCase("""[ { "size": 8, "compression": "fast" } ]""", "invalid compression type for disk, must be one of: on, off,")]
    [TestCase("""[ { "size": 8, "block_size": 3000 } ]""", "invalid .block_size(3000), must be 512-131072 and a power of 2")]
    [TestCase("""[ 8 ]""", "Invalid value(s) for: disks")]
    [TestCase("""[ {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1}, {"size": 1} ]""",
        "Invalid value(s) for: disks (9 disks: the VMM has 8 virtio-blk slots)")]
    public void A_bad_disk_is_refused_and_nothing_is_made(string disks, string message)
    {
        var h = ZonesHost();
        AssertRefused(h, h.WithStdin(Payload("kvm", disks), "vmadm", "create"), message);
    }

    [Test]
    public void An_unknown_disk_property_is_warned_about_and_dropped_as_vmadm_does()
    {
        var h = ZonesHost();
        var r = h.WithStdin(Payload("kvm", """[ { "size": 8, "colour": "red" } ]"""), "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Does.StartWith("Warning, invalid create property: [disks.0.colour] removing from payload."));
    }

    [Test]
    public void Without_a_zones_pool_disks_are_refused_and_say_why()
    {
        var h = ZonesHost(pool: false);
        AssertRefused(h, h.WithStdin(Payload("bhyve", """[ { "size": 8 } ]"""), "vmadm", "create"),
            "Invalid value(s) for: disks (this host has no 'zones' pool to keep VM disks on; create it first: zpool create zones DEVICE)");
    }

    [Test]
    public void Joyent_zones_still_refuse_disks()
    {
        var h = ZonesHost();
        var r = h.WithStdin("""{ "brand": "joyent", "disks": [ { "size": 8 } ] }""", "vmadm", "create");
        AssertRefused(h, r, "Unsupported property(s): disks");
    }

    [Test]
    public void Validate_checks_disks_of_a_bhyve_payload()
    {
        var h = ZonesHost();
        var ok = h.WithStdin(Payload("bhyve", """[ { "size": 8, "boot": true } ]"""), "vmadm", "validate", "create");
        var bad = h.WithStdin(Payload("bhyve", """[ { "size": "big", "colour": 1 } ]"""), "vmadm", "validate", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ok.ExitCode, Is.Zero, ok.Stderr);
            Assert.That(bad.ExitCode, Is.Not.Zero);
            Assert.That(bad.Stderr, Does.Contain("\"disks.*.size\"").And.Contain("\"disks.*.colour\""));
        }
    }

    // ---- update ----

    [Test]
    public void Update_adds_grows_changes_and_removes_disks_of_a_stopped_vm()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 8, "boot": true } ]"""));
        string disk0 = $"/dev/zvol/rdsk/zones/{uuid}-disk0", disk1 = $"/dev/zvol/rdsk/zones/{uuid}-disk1";
        Assert.That(h.WithStdin("""{ "add_disks": [ { "size": 4 } ] }""", "vmadm", "update", uuid).ExitCode, Is.Zero);
        Assert.That(Volumes(h), Is.EqualTo($"zones/{uuid}-disk0\t{8 << 20}\nzones/{uuid}-disk1\t{4 << 20}\n"));
        var grow = h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "size": 16, "compression": "lz4", "boot": false } ] }""", "vmadm", "update", uuid);
        Assert.That(grow.Stderr, Is.EqualTo($"Successfully updated VM {uuid}\n"));
        var d0 = Get(h, uuid)["disks"]![0]!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That((int?)d0["size"], Is.EqualTo(16));
            Assert.That((int?)d0["refreservation"], Is.EqualTo(16), "a volume that reserved its size keeps doing so");
            Assert.That((string?)d0["compression"], Is.EqualTo("lz4"));
            Assert.That((bool?)d0["boot"], Is.False);
        }
        var shrink = h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "size": 8 } ] }""", "vmadm", "update", uuid);
        Assert.That(shrink.Stderr, Is.EqualTo("cannot resize disk: new size must be greater than current size. (16 > 8)\n"));
        Assert.That(h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "size": 8, "dangerous_allow_shrink": true } ] }""", "vmadm", "update", uuid).ExitCode, Is.Zero);
        Assert.That(h.WithStdin($$"""{ "remove_disks": [ "{{disk0}}" ] }""", "vmadm", "update", uuid).ExitCode, Is.Zero);
        Assert.That(Volumes(h), Is.EqualTo($"zones/{uuid}-disk1\t{4 << 20}\n"));
        // The next disk takes the lowest free number again (VmDisks.cs rule 1).
        Assert.That(h.WithStdin("""{ "add_disks": [ { "size": 2 } ] }""", "vmadm", "update", uuid).ExitCode, Is.Zero);
        var paths = Get(h, uuid)["disks"]!.AsArray().Select(d => (string?)d!["path"]);
        Assert.That(paths, Is.EqualTo(new[] { disk1, disk0 }));
    }

    [Test]
    public void An_update_whose_new_disk_does_not_fit_takes_back_the_resize_made_before_it()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 8 } ]"""));
        string before = h.Ok(A($"zfs get -Hp -o property,value volsize,refreservation,compression zones/{uuid}-disk0"));
        var r = h.WithStdin($$"""{ "update_disks": [ { "path": "/dev/zvol/rdsk/zones/{{uuid}}-disk0", "size": 16, "compression": "lz4" } ], "add_disks": [ { "size": 1024 } ] }""",
            "vmadm", "update", uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Is.EqualTo($"Failed to update VM {uuid}: cannot create 'zones/{uuid}-disk1': out of space\n"));
            Assert.That(h.Ok(A($"zfs get -Hp -o property,value volsize,refreservation,compression zones/{uuid}-disk0")), Is.EqualTo(before));
            Assert.That(Volumes(h), Is.EqualTo($"zones/{uuid}-disk0\t{8 << 20}\n"));
        }
    }

    [Test]
    public void Update_of_disks_is_refused_as_vmadm_refuses_it_and_changes_nothing()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("kvm", """[ { "size": 8 } ]"""));
        string disk0 = $"/dev/zvol/rdsk/zones/{uuid}-disk0";
        string before = Volumes(h), get = h.Ok("vmadm", "get", uuid);
        (string Payload, string Message)[] cases =
        [
            ("""{ "add_disks": [ { "size": 1024 } ] }""", $"Failed to update VM {uuid}: cannot create 'zones/{uuid}-disk1': out of space"),
            ($$"""{ "update_disks": [ { "path": "{{disk0}}", "block_size": 4096 } ] }""", "cannot change .block_size for a disk after creation"),
            ($$"""{ "update_disks": [ { "path": "{{disk0}}", "model": "scsi" } ] }""", "\"scsi\" is not a valid disk model for kvm brand."),
            ("""{ "update_disks": [ { "path": "/dev/zvol/rdsk/zones/nope", "boot": true } ] }""", "Invalid value(s) for: update_disks.0.path (no disk with path /dev/zvol/rdsk/zones/nope)"),
            ("""{ "remove_disks": [ "/dev/zvol/rdsk/zones/nope" ] }""", "Invalid value(s) for: remove_disks (no disk with path /dev/zvol/rdsk/zones/nope)"),
        ];
        foreach (var (payload, message) in cases)
        {
            var r = h.WithStdin(payload, "vmadm", "update", uuid);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(r.ExitCode, Is.EqualTo(1), payload);
                Assert.That(r.Stderr, Does.Contain(message), payload);
                Assert.That(Volumes(h), Is.EqualTo(before), payload);
                Assert.That(h.Ok("vmadm", "get", uuid), Is.EqualTo(get), payload);
            }
        }
        // kvm disks keep their size (proptable.js: update_disks' size is bhyve's): warned and dropped.
        var kvmSize = h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "size": 16 } ] }""", "vmadm", "update", uuid);
        Assert.That(kvmSize.Stderr, Does.StartWith("Warning, invalid update property: [update_disks.0.size] removing from payload."));
        Assert.That(Volumes(h), Is.EqualTo(before));
    }

    [Test]
    public void A_running_vm_takes_only_live_disk_updates_and_its_volumes_are_busy()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 8 } ]""", $$"""{ "path": "{{IdleImage()}}" }"""));
        string disk0 = $"/dev/zvol/rdsk/zones/{uuid}-disk0";
        h.Ok(A($"zfs snapshot zones/{uuid}-disk0@s"));
        h.Ok(A($"vmadm start {uuid}"));
        h.World.Scheduler.RunFor(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.WithStdin("""{ "add_disks": [ { "size": 4 } ] }""", "vmadm", "update", uuid).Stderr,
                Is.EqualTo("updates to disks are only allowed when state is \"stopped\", currently: running (running)\n"));
            Assert.That(h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "size": 16 } ] }""", "vmadm", "update", uuid).Stderr,
                Is.EqualTo("at least one specified update to disks is only allowed when state is \"stopped\", currently: running (running)\n"));
            Assert.That(h.WithStdin($$"""{ "update_disks": [ { "path": "{{disk0}}", "compression": "lz4" } ] }""", "vmadm", "update", uuid).ExitCode, Is.Zero);
            Assert.That(h.Fails(A($"zfs rollback zones/{uuid}-disk0@s")).Stderr, Is.EqualTo($"cannot rollback 'zones/{uuid}-disk0': dataset is busy\n"));
            Assert.That(h.Host.Zones.Find(uuid)!.Guest!.Disks[0].Capacity, Is.EqualTo(8UL << 11), "8 MiB in sectors");
        }
        h.Ok(A($"vmadm stop {uuid}"));
        h.Ok(A($"zfs rollback zones/{uuid}-disk0@s"));
    }

    [Test]
    public void A_vm_whose_volume_is_gone_does_not_start_and_names_the_disk()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 8 } ]""", $$"""{ "path": "{{IdleImage()}}" }"""));
        h.Ok(A($"zfs destroy zones/{uuid}-disk0"));
        var r = h.Run(A($"vmadm start {uuid}"));
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain($"disk 0: cannot open 'zones/{uuid}-disk0': dataset does not exist"));
        Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Installed));
    }

    [Test]
    public void Stopping_a_vm_commits_what_its_guest_wrote_so_a_crash_after_the_stop_keeps_it()
    {
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 1 } ]""", $$"""{ "path": "{{IdleImage()}}" }"""));
        byte[] first = [1, 2, 3, 4], second = [5, 6, 7, 8];
        h.Ok(A($"vmadm start {uuid}"));
        Assert.That(h.Host.Zones.Find(uuid)!.Guest!.Disks[0].Device.Write(0, first), Is.EqualTo(BlockStatus.Ok));
        h.Host.Pools.Find("zones")!.Dispose(); // the host crashes with the guest running: the open txg is lost
        var h2 = ZonesHost();
        Assert.That(Head(h2, uuid), Is.EqualTo(new byte[4]), "not flushed, not stopped: lost");
        h2.Ok(A($"vmadm start {uuid}"));
        Assert.That(h2.Host.Zones.Find(uuid)!.Guest!.Disks[0].Device.Write(0, second), Is.EqualTo(BlockStatus.Ok));
        h2.Ok(A($"vmadm stop {uuid}"));
        h2.Host.Pools.Find("zones")!.Dispose(); // a crash after the stop
        Assert.That(Head(ZonesHost(), uuid), Is.EqualTo(second), "the stop committed it");
    }

    private static byte[] Head(CliHost h, string uuid)
    {
        var head = new byte[4];
        Assert.That(h.Host.Pools.Find("zones")!.Datasets.ReadVolume($"zones/{uuid}-disk0", 0, head, out _).IsOk);
        return head;
    }

    // ---- the guest on its disk ----

    private static void NeedGcc()
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore(why);
    }

    /// <summary>Starts the VM and runs until blkcheck powers off; its console.</summary>
    private static string RunGuest(CliHost h, string uuid)
    {
        h.Ok(A($"vmadm start {uuid}"));
        var zone = h.Host.Zones.Find(uuid)!;
        h.World.Scheduler.RunUntil(() => zone.State != ZoneState.Running, h.World.Scheduler.Now + 10 * Time.Second);
        var j = Get(h, uuid);
        Assert.That((string?)j["vm_stop_reason"], Is.EqualTo("powered_off"), (string?)j["vm_stop_detail"] + "\n" + h.Ok("vmadm", "console", uuid));
        return h.Ok("vmadm", "console", uuid);
    }

    /// <summary>blkcheck.c's checksum of the volume's data area, computed here from the pool.</summary>
    private static string VolumeSum(CliHost h, string uuid)
    {
        var data = new byte[32768];
        Assert.That(h.Host.Pools.Find("zones")!.Datasets.ReadVolume($"zones/{uuid}-disk0", 512, data, out _).IsOk);
        ulong sum = 0xcbf29ce484222325UL;
        foreach (byte b in data)
        {
            sum ^= b;
            sum *= 0x100000001b3UL;
        }
        return "0x" + sum.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public void The_guest_writes_its_disk_and_finds_it_again_after_a_restart_a_rollback_and_a_host_reboot()
    {
        NeedGcc();
        var h = ZonesHost();
        string uuid = Create(h, Payload("bhyve", """[ { "size": 1, "boot": true } ]"""));
        string first = RunGuest(h, uuid);
        string sum1 = VolumeSum(h, uuid);
        Assert.That(first, Is.EqualTo($"disk disk0 capacity 2048 sectors\nfound no earlier run\nwrote generation 1 checksum {sum1} read back equal\nflushed\nread past the end: status 1\n"));
        h.Ok(A($"zfs snapshot zones/{uuid}-disk0@gen1"));
        string second = RunGuest(h, uuid);
        Assert.That(second, Does.Contain($"found generation 1 checksum {sum1} intact\nwrote generation 2 "));
        h.Ok(A($"zfs rollback zones/{uuid}-disk0@gen1"));
        Assert.That(RunGuest(h, uuid), Does.Contain($"found generation 1 checksum {sum1} intact\nwrote generation 2 "), "the rollback took the disk back to generation 1");
        string sum2 = VolumeSum(h, uuid);
        // A host reboot: a new host on the same root and vdev file imports the pool from zpool.cache.
        var h2 = ZonesHost();
        Assert.That(h2.Host.Zones.Find(uuid), Is.Not.Null);
        Assert.That(RunGuest(h2, uuid), Does.Contain($"found generation 2 checksum {sum2} intact\nwrote generation 3 "));
    }
}
