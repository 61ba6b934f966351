namespace SmartOS.Storage.Tests;

/// <summary>The dataset tree (Dsl.cs): names, create, snapshot, clone, rollback, promote, rename, destroy and their refusals.</summary>
public class DatasetTests : DatasetFixture
{
    private static IReadOnlyList<string> All(Pool pool)
    {
        Ok(pool.Datasets.List(null, -1, DatasetKinds.All, out var names));
        return names;
    }

    [Test]
    public void A_new_pool_has_its_root_filesystem_named_as_the_pool()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank" }));
        Assert.That(Prop(pool, "tank", "type"), Is.EqualTo("filesystem"));
        Assert.That(Prop(pool, "tank", "mountpoint"), Is.EqualTo("/tank"));
    }

    [Test]
    public void Datasets_and_their_files_survive_export_and_import()
    {
        var content = Bytes(400_000, 1);
        long id;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Ok(pool.Datasets.Create("tank/home", DatasetType.Filesystem));
            Ok(pool.Datasets.Create("tank/home/user", DatasetType.Filesystem));
            id = NewFile(pool, "tank/home/user", content);
            Ok(pool.Datasets.Snapshot("tank/home/user@monday"));
            Ok(pool.Export());
        }
        using var reopened = Open("tank");
        Assert.That(All(reopened), Is.EqualTo(new[] { "tank", "tank/home", "tank/home/user", "tank/home/user@monday" }));
        Assert.That(ReadFile(reopened, "tank/home/user", id), Is.EqualTo(content));
        Assert.That(ReadFile(reopened, "tank/home/user@monday", id), Is.EqualTo(content));
    }

    [TestCase("tank/a b c", null)]
    [TestCase("tank/a%b", "invalid character '%' in name")]
    [TestCase("tank//a", "empty component in name")]
    [TestCase("tank/a/", "trailing slash in name")]
    [TestCase("/tank/a", "leading slash in name")]
    [TestCase("tank/a@b", "snapshot delimiter '@' is not expected here")]
    [TestCase("tank/..", "parent reference, '..' is found in name")]
    [TestCase("tank/x/y", "parent does not exist")]
    [TestCase("other/a", "no such pool 'other'")]
    public void Create_checks_names_as_zfs_does(string name, string? reason)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var result = pool.Datasets.Create(name, DatasetType.Filesystem);
        if (reason is null) { Ok(result); return; }
        Assert.That(result.Message, Is.EqualTo($"cannot create '{name}': {reason}"));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank" }), "nothing created");
    }

    [Test]
    public void A_name_of_256_bytes_is_too_long_and_an_existing_one_is_refused()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        string longName = "tank/" + new string('a', 251);
        Assert.That(pool.Datasets.Create(longName, DatasetType.Filesystem).Message, Is.EqualTo($"cannot create '{longName}': name is too long"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Assert.That(pool.Datasets.Create("tank/fs", DatasetType.Filesystem).Message, Is.EqualTo("cannot create 'tank/fs': dataset already exists"));
        Assert.That(pool.Datasets.Snapshot("tank/fs@a").IsOk, Is.True);
        Assert.That(pool.Datasets.Snapshot("tank/fs@a").Message, Is.EqualTo("cannot create snapshot 'tank/fs@a': dataset already exists"));
    }

    [Test]
    public void A_snapshot_keeps_the_data_as_it_was_and_refuses_writes()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        var before = Bytes(300_000, 1);
        long id = NewFile(pool, "tank/fs", before);
        Ok(pool.Datasets.Snapshot("tank/fs@a"));
        Ok(Objects(pool, "tank/fs").Write(id, 1000, Bytes(5000, 2)));
        Ok(pool.Commit());
        Assert.That(ReadFile(pool, "tank/fs@a", id), Is.EqualTo(before));
        Assert.That(ReadFile(pool, "tank/fs", id), Is.Not.EqualTo(before));
        var write = Objects(pool, "tank/fs@a").Write(id, 0, [1]);
        Assert.That(write.Message, Is.EqualTo("tank/fs@a: read-only file system"));
    }

    [Test]
    public void A_snapshot_writes_the_same_blocks_whatever_the_dataset_holds()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/small", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/large", DatasetType.Filesystem));
        NewFile(pool, "tank/small", Bytes(1000, 1));
        for (int i = 0; i < 300; i++) NewFile(pool, "tank/large", Bytes(20_000, (ulong)i));
        Ok(pool.Commit());
        long a = pool.Allocated;
        Ok(pool.Datasets.Snapshot("tank/small@s"));
        long small = pool.Allocated - a;
        a = pool.Allocated;
        Ok(pool.Datasets.Snapshot("tank/large@s"));
        long large = pool.Allocated - a;
        // The dataset holds 6 MB in 300 objects; either snapshot rewrites only the MOS's few changed blocks.
        Assert.That(large, Is.LessThan(16 * 1024), "a snapshot copies a root pointer, not the tree");
        Assert.That(small, Is.LessThan(16 * 1024));
        Assert.That(Num(pool, "tank/large@s", "referenced"), Is.GreaterThan(300 * 20_000));
    }

    [Test]
    public void Destroy_refuses_children_dependent_clones_and_busy_datasets_in_zfs_words()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/fs/child", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/fs@s"));
        Ok(pool.Datasets.Clone("tank/fs@s", "tank/clone"));
        var ds = pool.Datasets;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ds.Destroy("tank/fs").Message, Is.EqualTo(
                "cannot destroy 'tank/fs': filesystem has children\nuse '-r' to destroy the following datasets:\ntank/fs@s\ntank/fs/child"));
            Assert.That(ds.Destroy("tank/fs", DestroyFlags.Recursive).Message, Is.EqualTo(
                "cannot destroy 'tank/fs': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\ntank/clone"));
            Assert.That(ds.Destroy("tank/fs@s").Message, Is.EqualTo(
                "cannot destroy 'tank/fs@s': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\ntank/clone"));
            Assert.That(ds.Destroy("tank").Message, Does.StartWith("cannot destroy 'tank': operation does not apply to pools"));
            Assert.That(ds.Destroy("tank/nope").Message, Is.EqualTo("cannot destroy 'tank/nope': dataset does not exist"));
        }
        Ok(ds.Hold("tank/clone"));
        Assert.That(ds.Destroy("tank/fs", DestroyFlags.Dependents).Message, Is.EqualTo("cannot destroy 'tank/clone': dataset is busy"));
        Assert.That(All(pool), Has.Count.EqualTo(5), "nothing destroyed");
        Ok(ds.Release("tank/clone"));
        Ok(ds.Destroy("tank/fs", DestroyFlags.Dependents));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank" }));
        AuditSpace(pool);
    }

    [Test]
    public void Destroy_r_of_a_snapshot_takes_the_same_name_in_every_descendant()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/a/b", DatasetType.Filesystem));
        NewFile(pool, "tank/a/b", Bytes(200_000, 1));
        Ok(pool.Datasets.Snapshot("tank/a@now", recursive: true));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/a", "tank/a@now", "tank/a/b", "tank/a/b@now" }));
        Ok(pool.Datasets.Destroy("tank/a@now", DestroyFlags.Recursive));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/a", "tank/a/b" }));
        Assert.That(pool.Datasets.Destroy("tank/a@now").Message, Is.EqualTo(
            "cannot destroy 'tank/a@now': could not find any snapshots to destroy; check snapshot names."));
    }

    [Test]
    public void Destroy_R_of_a_snapshot_whose_clone_below_has_a_snapshot_of_that_name_takes_each_once()
    {
        // Found by ztest: the clone's own @s went with the clone, and was then destroyed a second time.
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
        NewFile(pool, "tank/a", Bytes(100_000, 1));
        Ok(pool.Datasets.Snapshot("tank/a@s"));
        Ok(pool.Datasets.Clone("tank/a@s", "tank/a/c"));
        NewFile(pool, "tank/a/c", Bytes(50_000, 2));
        Ok(pool.Datasets.Snapshot("tank/a/c@s"));
        Ok(pool.Datasets.Destroy("tank/a@s", DestroyFlags.Recursive | DestroyFlags.Dependents));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/a" }));
        AuditSpace(pool);
    }

    [Test]
    public void Rollback_returns_to_the_newest_snapshot_and_r_destroys_later_ones()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        var first = Bytes(200_000, 1);
        long id = NewFile(pool, "tank/fs", first);
        Ok(pool.Datasets.Snapshot("tank/fs@1"));
        Ok(Objects(pool, "tank/fs").Write(id, 0, Bytes(100_000, 2)));
        Ok(pool.Datasets.Snapshot("tank/fs@2"));
        long added = NewFile(pool, "tank/fs", Bytes(50_000, 3));
        Assert.That(pool.Datasets.Rollback("tank/fs@1").Message, Is.EqualTo(
            "cannot rollback to 'tank/fs@1': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\ntank/fs@2"));
        Ok(pool.Datasets.Rollback("tank/fs@2"));
        Assert.That(Objects(pool, "tank/fs").Exists(added), Is.False, "written after @2, gone");
        Ok(pool.Datasets.Rollback("tank/fs@1", DestroyFlags.Recursive));
        Assert.That(ReadFile(pool, "tank/fs", id), Is.EqualTo(first));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/fs", "tank/fs@1" }));
        AuditSpace(pool);
    }

    [Test]
    public void Rollback_refuses_to_destroy_clones_of_later_snapshots_without_R()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/fs@1"));
        Ok(pool.Datasets.Snapshot("tank/fs@2"));
        Ok(pool.Datasets.Clone("tank/fs@2", "tank/c"));
        Assert.That(pool.Datasets.Rollback("tank/fs@1", DestroyFlags.Recursive).Message, Is.EqualTo(
            "cannot rollback to 'tank/fs@1': clones of previous snapshots exist\nuse '-R' to force deletion of the following clones and dependents:\ntank/c"));
        Ok(pool.Datasets.Rollback("tank/fs@1", DestroyFlags.Dependents));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/fs", "tank/fs@1" }));
    }

    [Test]
    public void A_clone_starts_with_its_origins_data_and_diverges()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        var content = Bytes(300_000, 1);
        long id = NewFile(pool, "tank/fs", content);
        Ok(pool.Datasets.Snapshot("tank/fs@s"));
        Ok(pool.Datasets.Clone("tank/fs@s", "tank/c"));
        Assert.That(Prop(pool, "tank/c", "origin"), Is.EqualTo("tank/fs@s"));
        Assert.That(ReadFile(pool, "tank/c", id), Is.EqualTo(content));
        Assert.That(Num(pool, "tank/c", "used"), Is.LessThan(4096), "a clone shares its origin's blocks");
        Ok(Objects(pool, "tank/c").Write(id, 0, Bytes(10, 2)));
        Ok(pool.Commit());
        Assert.That(ReadFile(pool, "tank/fs", id), Is.EqualTo(content));
        Assert.That(pool.Datasets.Clone("tank/fs", "tank/d").Message, Is.EqualTo("cannot open 'tank/fs': missing '@' delimiter in snapshot name"));
    }

    [Test]
    public void Promote_swaps_origin_and_clone_as_zfs_promote_does()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        NewFile(pool, "tank/fs", Bytes(200_000, 1));
        Ok(pool.Datasets.Snapshot("tank/fs@1"));
        Ok(pool.Datasets.Snapshot("tank/fs@2"));
        Ok(pool.Datasets.Snapshot("tank/fs@3"));
        Ok(pool.Datasets.Clone("tank/fs@2", "tank/c"));
        Assert.That(pool.Datasets.Promote("tank/fs").Message, Is.EqualTo("cannot promote 'tank/fs': not a cloned filesystem"));
        Ok(pool.Datasets.Promote("tank/c"));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/c", "tank/c@1", "tank/c@2", "tank/fs", "tank/fs@3" }));
        Assert.That(Prop(pool, "tank/c", "origin"), Is.EqualTo("-"));
        Assert.That(Prop(pool, "tank/fs", "origin"), Is.EqualTo("tank/c@2"));
        Assert.That(pool.Datasets.Destroy("tank/c", DestroyFlags.Recursive).Message, Does.Contain("filesystem has dependent clones"));
        AuditSpace(pool);
        Ok(pool.Datasets.Snapshot("tank/fs@1"));
        Assert.That(pool.Datasets.Promote("tank/fs").Message, Is.EqualTo(
            "cannot promote 'tank/fs': snapshot name 'tank/c@1' from origin conflicts with 'tank/fs@1' from target"));
    }

    [Test]
    public void Rename_moves_a_filesystem_with_its_children_and_snapshots_stay_in_their_dataset()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/a/b", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/z", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/a/b@s"));
        Ok(pool.Datasets.Rename("tank/a", "tank/z/a"));
        Ok(pool.Datasets.Rename("tank/z/a/b@s", "tank/z/a/b@t"));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank", "tank/z", "tank/z/a", "tank/z/a/b", "tank/z/a/b@t" }));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Datasets.Rename("tank/z/a/b@t", "tank/z@t").Message, Is.EqualTo("cannot rename 'tank/z/a/b@t': snapshots must be part of same dataset"));
            Assert.That(pool.Datasets.Rename("tank/z", "tank/z/a/q").Message, Is.EqualTo("cannot rename 'tank/z': New dataset name cannot be a descendant of current dataset name"));
            Assert.That(pool.Datasets.Rename("tank/z/a", "tank/z").Message, Is.EqualTo("cannot rename to 'tank/z': dataset already exists"));
            Assert.That(pool.Datasets.Rename("tank/z/a", "other/a").Message, Is.EqualTo("cannot rename 'tank/z/a': datasets must be within same pool"));
            Assert.That(pool.Datasets.Rename("tank/z/a", "tank/q/a").Message, Is.EqualTo("cannot rename to 'tank/q/a': parent does not exist"));
        }
        pool.Export();
        using var reopened = Open("tank");
        Assert.That(All(reopened), Is.EqualTo(new[] { "tank", "tank/z", "tank/z/a", "tank/z/a/b", "tank/z/a/b@t" }));
    }

    [Test]
    public void A_volume_has_a_fixed_size_reserves_it_and_reads_zeros_where_unwritten()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var props = new Dictionary<string, string> { ["volsize"] = "4M", ["volblocksize"] = "16K" };
        Ok(pool.Datasets.Create("tank/vol", DatasetType.Volume, props));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Prop(pool, "tank/vol", "type"), Is.EqualTo("volume"));
            Assert.That(Num(pool, "tank/vol", "volsize"), Is.EqualTo(4L << 20));
            Assert.That(Num(pool, "tank/vol", "volblocksize"), Is.EqualTo(16384));
            Assert.That(Num(pool, "tank/vol", "refreservation"), Is.EqualTo(4L << 20));
            Assert.That(Num(pool, "tank/vol", "used"), Is.GreaterThanOrEqualTo(4L << 20));
            Assert.That(Prop(pool, "tank/vol", "mountpoint"), Is.EqualTo("-"));
        }
        var data = Bytes(100_000, 1);
        Ok(pool.Datasets.WriteVolume("tank/vol", 1 << 20, data));
        Assert.That(pool.Datasets.WriteVolume("tank/vol", (4 << 20) - 10, data).Message, Is.EqualTo("tank/vol: beyond the end of the volume"));
        var back = new byte[200_000];
        Ok(pool.Datasets.ReadVolume("tank/vol", (1 << 20) - 100_000, back, out int read));
        Assert.That(read, Is.EqualTo(back.Length));
        Assert.That(back[..100_000], Is.All.Zero);
        Assert.That(back[100_000..], Is.EqualTo(data));
        var bad = new Dictionary<string, string> { ["volsize"] = "1000000" };
        Assert.That(pool.Datasets.Create("tank/v2", DatasetType.Volume, bad).Message, Is.EqualTo(
            "cannot create 'tank/v2': volume size must be a multiple of volume block size"));
        Assert.That(pool.Datasets.Create("tank/vol/x", DatasetType.Filesystem).Message, Is.EqualTo("cannot create 'tank/vol/x': parent is not a filesystem"));
        AuditSpace(pool);
    }

    [Test]
    public void Destroy_r_of_the_pool_root_empties_the_pool_but_keeps_its_root()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/a/b", DatasetType.Filesystem));
        NewFile(pool, "tank/a/b", Bytes(300_000, 1));
        Ok(pool.Datasets.Snapshot("tank@s", recursive: true));
        Ok(pool.Datasets.Clone("tank/a@s", "tank/c"));
        Ok(pool.Datasets.Destroy("tank", DestroyFlags.Recursive));
        Assert.That(All(pool), Is.EqualTo(new[] { "tank" }));
        AuditSpace(pool);
    }

    [Test]
    public void Scrub_finds_and_repairs_a_damaged_block_of_a_snapshot_on_a_mirror()
    {
        var content = Bytes(200_000, 1);
        long id;
        Dva dva;
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1")))
        {
            Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
            id = NewFile(pool, "tank/fs", content);
            Ok(pool.Datasets.Snapshot("tank/fs@s"));
            Ok(Objects(pool, "tank/fs").Delete(id));
            Ok(pool.Commit());
            Ok(Objects(pool, "tank/fs@s").Locate(id, 0, out var bp));
            dva = bp.Dva0;
        }
        Damage("d1", FileOffset(dva), new byte[4096]);
        using var reopened = Open("tank");
        var scrub = reopened.Scrub();
        Assert.That(scrub.Errors, Is.Zero);
        Assert.That(reopened.Vdevs[0].Leaves[1].ChecksumErrors, Is.EqualTo(1), "the block only the snapshot holds was read");
        Assert.That(reopened.Vdevs[0].Leaves[1].RepairedBytes, Is.GreaterThan(0));
        Assert.That(ReadFile(reopened, "tank/fs@s", id), Is.EqualTo(content));
    }
}
