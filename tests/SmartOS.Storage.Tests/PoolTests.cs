namespace SmartOS.Storage.Tests;

public class PoolTests : PoolFixture
{
    [Test]
    public void Objects_written_and_committed_read_back_after_reopen()
    {
        byte[] small = Bytes(1, 1), medium = Bytes(200_000, 2), large = Bytes(5 * 1024 * 1024 + 77, 3);
        long a, b, c, empty;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            a = NewObject(pool, small); b = NewObject(pool, medium); c = NewObject(pool, large);
            Assert.That(pool.Objects.Create(out empty).IsOk, Is.True);
            Assert.That(pool.Commit().IsOk, Is.True);
            Assert.That(pool.Txg, Is.EqualTo(2));
        }
        using (var pool = Open("tank"))
        {
            using (Assert.EnterMultipleScope())
            {
                Assert.That(pool.Txg, Is.EqualTo(2));
                Assert.That(ReadAll(pool, a), Is.EqualTo(small));
                Assert.That(ReadAll(pool, b), Is.EqualTo(medium));
                Assert.That(ReadAll(pool, c), Is.EqualTo(large));
                Assert.That(ReadAll(pool, empty), Is.Empty);
            }
        }
    }

    [Test]
    public void Uncommitted_changes_are_gone_after_close()
    {
        long id;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            id = NewObject(pool, Bytes(1000, 1));
            pool.Commit();
            pool.Objects.Write(id, 0, Bytes(1000, 2));
        }
        using var reopened = Open("tank");
        Assert.That(ReadAll(reopened, id), Is.EqualTo(Bytes(1000, 1)));
    }

    [Test]
    public void A_sparse_object_reads_zeros_in_its_holes_and_grows_its_tree()
    {
        // Block 1025 needs two levels of indirect blocks (1024 pointers each).
        long far = 1025L * 128 * 1024 + 5;
        long id;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Assert.That(pool.Objects.Create(out id).IsOk, Is.True);
            pool.Objects.Write(id, 3, [7, 8, 9]);
            pool.Objects.Write(id, far, [1, 2, 3]);
            pool.Commit();
        }
        using var reopened = Open("tank");
        var buffer = new byte[8];
        reopened.Objects.Read(id, far - 2, buffer, out int n);
        Assert.That(buffer[..n], Is.EqualTo(new byte[] { 0, 0, 1, 2, 3 }));
        reopened.Objects.Read(id, 0, buffer, out _);
        Assert.That(buffer, Is.EqualTo(new byte[] { 0, 0, 0, 7, 8, 9, 0, 0 }));
        reopened.Objects.Read(id, 64L * 128 * 1024, buffer, out _);
        Assert.That(buffer, Is.All.Zero);
        Assert.That(reopened.Allocated, Is.LessThan(64 * 1024), "holes take no space");
    }

    [Test]
    public void A_partial_overwrite_keeps_the_bytes_around_it()
    {
        var content = Bytes(300_000, 1);
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = NewObject(pool, content);
        pool.Commit();
        var patch = Bytes(140_000, 2);
        pool.Objects.Write(id, 100_000, patch);
        patch.CopyTo(content, 100_000);
        Assert.That(ReadAll(pool, id), Is.EqualTo(content), "before commit");
        pool.Commit();
        Assert.That(ReadAll(pool, id), Is.EqualTo(content), "after commit");
    }

    [Test]
    public void An_overwrite_writes_new_blocks_and_frees_the_old_ones_after_its_commit()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = NewObject(pool, Bytes(1024 * 1024, 1));
        pool.Commit();
        pool.Objects.Locate(id, 0, out var before);
        long allocated = pool.Allocated;
        pool.Objects.Write(id, 0, Bytes(1024 * 1024, 2));
        pool.Commit();
        pool.Objects.Locate(id, 0, out var after);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(after.Dva0, Is.Not.EqualTo(before.Dva0), "copy-on-write: the live block is not overwritten");
            Assert.That(after.BirthTxg, Is.EqualTo(pool.Txg));
            Assert.That(pool.Allocated, Is.EqualTo(allocated), "the old blocks are free again");
        }
    }

    [Test]
    public void Space_rebuilt_at_open_equals_the_space_held_before_close()
    {
        long allocated;
        using (var pool = Create("tank", VdevSpec.Disk("d0"), VdevSpec.Disk("d1")))
        {
            var ids = new long[5];
            for (int i = 0; i < 5; i++) ids[i] = NewObject(pool, Bytes(300_000 * i + 1, (ulong)i));
            pool.Commit();
            pool.Objects.Write(ids[1], 0, Bytes(10_000, 9));
            pool.Commit();
            allocated = pool.Allocated;
        }
        using var reopened = Open("tank");
        Assert.That(reopened.Allocated, Is.EqualTo(allocated));
    }

    [Test]
    public void A_deleted_object_is_gone_and_its_space_is_freed_by_the_commit()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long empty = pool.Allocated;
        long id = NewObject(pool, Bytes(2 * 1024 * 1024, 1));
        pool.Commit();
        Assert.That(pool.Objects.Delete(id).IsOk, Is.True);
        Assert.That(pool.Objects.Exists(id), Is.False);
        Assert.That(pool.Objects.Read(id, 0, new byte[1], out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
        pool.Commit();
        Assert.That(pool.Allocated, Is.LessThan(empty + 8 * 1024));
        pool.Dispose();
        using var reopened = Open("tank");
        Assert.That(reopened.Objects.Exists(id), Is.False);
    }

    [Test]
    public void A_commit_with_nothing_changed_writes_no_txg()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long txg = pool.Txg;
        Assert.That(pool.Commit().IsOk, Is.True);
        Assert.That(pool.Txg, Is.EqualTo(txg));
    }

    [TestCase(ChecksumKind.Fletcher4)]
    [TestCase(ChecksumKind.Sha256)]
    [TestCase(ChecksumKind.Blake3)]
    public void Every_checksum_kind_round_trips_and_is_recorded_in_the_block_pointer(ChecksumKind kind)
    {
        var content = Bytes(400_000, 5);
        long id;
        using (var pool = Create("tank", Options(kind), VdevSpec.Disk("d0")))
        {
            id = NewObject(pool, content);
            pool.Commit();
        }
        using var reopened = Open("tank");
        reopened.Objects.Locate(id, 0, out var bp);
        Assert.That(bp.ChecksumKind, Is.EqualTo(kind));
        Assert.That(ReadAll(reopened, id), Is.EqualTo(content));
    }

    [Test]
    public void Copies_put_each_block_on_different_top_level_vdevs()
    {
        using var pool = Create("tank", Options(copies: 2), VdevSpec.Disk("d0"), VdevSpec.Disk("d1"));
        long id = NewObject(pool, Bytes(100_000, 1));
        pool.Commit();
        pool.Objects.Locate(id, 0, out var bp);
        Assert.That(bp.Copies, Is.EqualTo(2));
        Assert.That(bp.Dva1.Vdev, Is.Not.EqualTo(bp.Dva0.Vdev));
    }

    [Test]
    public void Writing_more_than_the_pool_holds_fails_with_no_space_and_suspends_the_pool()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = NewObject(pool, Bytes(70 * 1024 * 1024, 1));
        var result = pool.Commit();
        Assert.That(result.Status, Is.EqualTo(StorageStatus.NoSpace));
        Assert.That(pool.Objects.Write(id, 0, [1]).Status, Is.EqualTo(StorageStatus.NoSpace), "suspended");
    }

    [TestCase("1tank", "invalid pool name")]
    [TestCase("mirror", "invalid pool name")]
    [TestCase("ta nk", "invalid pool name")]
    public void Bad_pool_names_are_refused(string name, string why)
    {
        var result = Pool.Create(Dir, name, [VdevSpec.Disk("d0")], VdevSize, Options(), out var pool);
        Assert.That(result.Message, Does.Contain(why));
        Assert.That(pool, Is.Null);
        Assert.That(Directory.GetFiles(Dir), Is.Empty, "nothing created");
    }

    [Test]
    public void A_vdev_smaller_than_64M_is_refused()
    {
        var result = Pool.Create(Dir, "tank", [VdevSpec.Disk("d0")], 16 * 1024 * 1024, Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot create 'tank': one or more devices is less than the minimum size (64M): invalid vdev specification"));
    }

    [Test]
    public void A_mirror_of_one_file_is_refused()
    {
        var result = Pool.Create(Dir, "tank", [VdevSpec.Mirror("d0")], VdevSize, Options(), out _);
        Assert.That(result.Status, Is.EqualTo(StorageStatus.InvalidConfig));
    }

    [Test]
    public void A_pool_name_already_in_the_directory_is_refused()
    {
        Create("tank", VdevSpec.Disk("d0")).Dispose();
        var result = Pool.Create(Dir, "tank", [VdevSpec.Disk("d1")], VdevSize, Options(), out _);
        Assert.That(result.Status, Is.EqualTo(StorageStatus.PoolExists));
        Assert.That(File.Exists(Path.Combine(Dir, "d1")), Is.False);
    }

    [Test]
    public void An_existing_file_is_never_overwritten_by_create()
    {
        File.WriteAllText(Path.Combine(Dir, "d0"), "mine");
        var result = Pool.Create(Dir, "tank", [VdevSpec.Disk("d0")], VdevSize, Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot create 'tank': 'd0' already exists: pool already exists"));
        Assert.That(File.ReadAllText(Path.Combine(Dir, "d0")), Is.EqualTo("mine"));
    }
}
