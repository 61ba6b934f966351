namespace SmartOS.Storage.Tests;

/// <summary>Leaf states, attach, detach, replace, resilver and DEGRADED import (Pool.Admin.cs).</summary>
public sealed class AdminTests : PoolFixture
{
    private static readonly byte[] s_data = Bytes(700_000, 11);
    private static readonly byte[] s_later = Bytes(300_000, 12);

    private static long Write(Pool pool, byte[] data)
    {
        Assert.That(pool.Objects.Create(out long id).IsOk, Is.True);
        Assert.That(pool.Objects.Write(id, 0, data).IsOk, Is.True);
        Assert.That(pool.Commit().IsOk, Is.True);
        return id;
    }

    private static byte[] Read(Pool pool, long id, int length)
    {
        var back = new byte[length];
        var result = pool.Objects.Read(id, 0, back, out int n);
        Assert.That(result.Message, Is.EqualTo("ok"));
        Assert.That(n, Is.EqualTo(length));
        return back;
    }

    private string NewFile(string name, long size = VdevSize)
    {
        string path = Path.Combine(Dir, name);
        using var fs = new FileStream(path, FileMode.CreateNew);
        fs.SetLength(size);
        return path;
    }

    [Test]
    public void A_mirror_leaf_brought_back_online_is_resilvered_with_what_was_written_while_it_was_offline()
    {
        using var pool = Create("tank", VdevSpec.Mirror("d0", "d1"));
        long first = Write(pool, s_data);
        Assert.That(pool.Offline("d0", temporary: false).IsOk, Is.True);
        Assert.That(pool.Health, Is.EqualTo("DEGRADED"));
        long second = Write(pool, s_later);
        Assert.That(pool.Online("d0", FileVdevIo.Opener).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Health, Is.EqualTo("ONLINE"));
            Assert.That(pool.LastScan!.Kind, Is.EqualTo(ScanKind.Resilver));
            Assert.That(pool.LastScan.Bytes, Is.GreaterThanOrEqualTo(s_data.Length + s_later.Length));
            Assert.That(pool.Vdevs[0].Leaves[0].ChecksumErrors, Is.Zero);
        }
        // Only the resilvered side left: every byte must come from it.
        Assert.That(pool.Offline("d1", temporary: true).IsOk, Is.True);
        Assert.That(Read(pool, first, s_data.Length), Is.EqualTo(s_data));
        Assert.That(Read(pool, second, s_later.Length), Is.EqualTo(s_later));
    }

    [Test]
    public void An_offline_that_would_leave_no_valid_replica_is_refused_and_changes_nothing()
    {
        using var pool = Create("tank", VdevSpec.Mirror("d0", "d1"), VdevSpec.Disk("d2"));
        Assert.That(pool.Offline("d0", temporary: false).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Offline("d1", temporary: false).Message, Is.EqualTo("cannot offline d1: no valid replicas"));
            Assert.That(pool.Offline("d2", temporary: false).Message, Is.EqualTo("cannot offline d2: no valid replicas"));
            Assert.That(pool.Offline("nothere", temporary: false).Message, Is.EqualTo("cannot offline nothere: no such device in pool"));
            Assert.That(pool.Vdevs[0].Leaves[1].State, Is.EqualTo(LeafState.Online));
        }
    }

    [Test]
    public void A_persistent_offline_survives_export_and_import_and_a_temporary_one_does_not()
    {
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1", "d2")))
        {
            Write(pool, s_data);
            Assert.That(pool.Offline("d0", temporary: false).IsOk, Is.True);
            Assert.That(pool.Offline("d1", temporary: true).IsOk, Is.True);
            Assert.That(pool.Export().IsOk, Is.True);
        }
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools[0].State, Is.EqualTo("DEGRADED"));
        using var again = Open("tank");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Vdevs[0].Leaves[0].State, Is.EqualTo(LeafState.Offline));
            Assert.That(again.Vdevs[0].Leaves[1].State, Is.EqualTo(LeafState.Online));
            Assert.That(again.Health, Is.EqualTo("DEGRADED"));
        }
    }

    [Test]
    public void Attach_makes_a_disk_a_mirror_and_detach_of_the_original_keeps_every_byte()
    {
        long id;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            id = Write(pool, s_data);
            string d1 = NewFile("d1");
            var attached = pool.Attach("d0", d1, 1234, FileVdevIo.Opener);
            Assert.That(attached.Message, Is.EqualTo("ok"));
            Assert.That(pool.Vdevs[0].Kind, Is.EqualTo(VdevKind.Mirror));
            Assert.That(pool.Detach("d0").Message, Is.EqualTo("ok"));
            Assert.That(pool.Vdevs[0].Kind, Is.EqualTo(VdevKind.Disk));
            Assert.That(pool.Detach("d1").Message, Is.EqualTo("cannot detach d1: only applicable to mirror and replacing vdevs"));
            Assert.That(pool.Export().IsOk, Is.True);
        }
        // d0 left the pool: its labels are cleared, so only d1 is found, and it holds everything.
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools, Has.Count.EqualTo(1));
        Assert.That(scan.Pools[0].Paths.Values, Is.EqualTo(new[] { Path.Combine(Dir, "d1") }));
        using var again = Open("tank");
        Assert.That(Read(again, id, s_data.Length), Is.EqualTo(s_data));
    }

    [Test]
    public void Attach_refuses_a_raidz_and_a_file_smaller_than_the_leaves()
    {
        using var pool = Create("tank", VdevSpec.Raidz1("d0", "d1", "d2"));
        string small = NewFile("small", VdevSize / 2);
        string big = NewFile("big");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Attach("d0", big, 1, FileVdevIo.Opener).Message, Is.EqualTo($"cannot attach {big} to d0: can only attach to mirrors and top-level disks"));
            Assert.That(pool.Replace("d0", small, 1, FileVdevIo.Opener).Message, Is.EqualTo($"cannot replace d0 with {small}: device is too small"));
        }
    }

    [Test]
    public void Replace_of_a_raidz1_leaf_rebuilds_its_column_from_parity()
    {
        using (var pool = Create("tank", VdevSpec.Raidz1("d0", "d1", "d2")))
        {
            long id = Write(pool, s_data);
            string fresh = NewFile("d3");
            Assert.That(pool.Replace("d1", fresh, 99, FileVdevIo.Opener).Message, Is.EqualTo("ok"));
            Assert.That(pool.Vdevs[0].Leaves[1].Path, Is.EqualTo(fresh));
            // With another column gone, the data must come through the new leaf.
            Assert.That(pool.Offline("d0", temporary: true).IsOk, Is.True);
            Assert.That(Read(pool, id, s_data.Length), Is.EqualTo(s_data));
            Assert.That(pool.Online("d0", FileVdevIo.Opener).IsOk, Is.True);
            Assert.That(pool.Scrub().Errors, Is.Zero);
            Assert.That(pool.Export().IsOk, Is.True);
        }
        using var again = Open("tank");
        Assert.That(again.Vdevs[0].Leaves.Select(l => Path.GetFileName(l.Path)), Is.EqualTo(new[] { "d0", "d3", "d2" }));
    }

    [Test]
    public void Replace_of_a_single_disk_goes_through_a_mirror_and_ends_a_disk_again()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = Write(pool, s_data);
        string fresh = NewFile("n0");
        Assert.That(pool.Replace("d0", fresh, 5, FileVdevIo.Opener).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Vdevs[0].Kind, Is.EqualTo(VdevKind.Disk));
            Assert.That(pool.Vdevs[0].Leaves[0].Path, Is.EqualTo(fresh));
            Assert.That(Read(pool, id, s_data.Length), Is.EqualTo(s_data));
        }
    }

    [Test]
    public void A_mirror_with_a_missing_file_imports_degraded_and_a_new_file_there_is_resilvered_on_online()
    {
        long id;
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1")))
        {
            id = Write(pool, s_data);
            Assert.That(pool.Export().IsOk, Is.True);
        }
        File.Delete(Path.Combine(Dir, "d1"));
        Assert.That(Pool.Import(Dir).Pools[0].State, Is.EqualTo("DEGRADED"));
        using (var pool = Open("tank"))
        {
            Assert.That(pool.Health, Is.EqualTo("DEGRADED"));
            Assert.That(pool.Vdevs[0].Leaves[1].State, Is.EqualTo(LeafState.Unavail));
            long later = Write(pool, s_later);
            NewFile("d1");
            Assert.That(pool.Online("d1", FileVdevIo.Opener).Message, Is.EqualTo("ok"));
            Assert.That(pool.Health, Is.EqualTo("ONLINE"));
            Assert.That(pool.Offline("d0", temporary: true).IsOk, Is.True);
            Assert.That(Read(pool, id, s_data.Length), Is.EqualTo(s_data));
            Assert.That(Read(pool, later, s_later.Length), Is.EqualTo(s_later));
        }
    }

    [Test]
    public void A_disk_pool_with_its_file_missing_is_not_importable()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0"), VdevSpec.Disk("d1")))
            Assert.That(pool.Export().IsOk, Is.True);
        File.Delete(Path.Combine(Dir, "d1"));
        Assert.That(Pool.Open(Dir, "tank", Options(), out _).Status, Is.EqualTo(StorageStatus.DeviceUnavailable));
    }

    [Test]
    public void Labels_rewritten_without_the_txg_that_commits_them_leave_the_older_tree_to_import()
    {
        long id;
        PoolConfig config;
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1")))
        {
            id = Write(pool, s_data);
            config = pool.Config;
            Assert.That(pool.Export().IsOk, Is.True);
        }
        // As a crash after an attach's label rewrite and before its commit leaves them: a newer tree
        // (a third leaf) in the labels, and no uberblock with its guid sum (Pool.Admin.cs rule A3).
        var grown = config with
        {
            Txg = config.Txg + 10,
            Tops = [config.Tops[0] with { Leaves = [.. config.Tops[0].Leaves, new LeafConfig(777, "d2")] }],
        };
        var block = new byte[VdevLabel.ConfigSize];
        foreach (var leaf in grown.Tops[0].Leaves.Take(2))
        {
            string path = Path.Combine(Dir, leaf.FileName);
            VdevLabel.EncodeConfig(grown with { LeafGuid = leaf.Guid }, block);
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
            fs.Position = VdevLabel.LabelOffset(0, fs.Length);
            fs.Write(block);
        }
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools[0].Config.Tops[0].Leaves, Has.Count.EqualTo(2));
        using var again = Open("tank");
        Assert.That(Read(again, id, s_data.Length), Is.EqualTo(s_data));
    }

    [Test]
    public void History_entries_are_kept_in_the_pool_across_an_export()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Assert.That(pool.AppendHistory(10, false, "zpool create tank d0").IsOk, Is.True);
            Assert.That(pool.AppendHistory(20, true, "scrub done").IsOk, Is.True);
            Assert.That(pool.Export().IsOk, Is.True);
        }
        using var again = Open("tank");
        Assert.That(again.ReadHistory(out var entries).IsOk, Is.True);
        Assert.That(entries, Is.EqualTo(new[] { new HistoryEntry(10, false, "zpool create tank d0"), new HistoryEntry(20, true, "scrub done") }));
    }
}
