namespace SmartOS.Storage.Tests;

/// <summary>ObjectSet.Truncate, FreeRange and NextData: holes made after writing, at every tree height.</summary>
public class HoleTests : PoolFixture
{
    [Test]
    public void Truncating_to_zero_frees_every_block_of_a_tall_object_after_commit_and_reopen()
    {
        long baseline, id;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            pool.Commit();
            baseline = pool.Allocated;
            id = NewObject(pool, Bytes(3 * 128 * 1024, 1));
            Assert.That(pool.Objects.Write(id, 300L << 20, Bytes(5000, 2)).IsOk, Is.True);   // height 2
            pool.Commit();
            Assert.That(pool.Objects.Truncate(id, 0).Message, Is.EqualTo("ok"));
            pool.Commit();
            pool.Commit();
            Assert.That(pool.Export().Message, Is.EqualTo("ok"));
        }
        using var reopened = Open("tank");
        Assert.That(reopened.Objects.GetLength(id, out long length).IsOk, Is.True);
        Assert.That(reopened.Objects.AllocatedBytes(id, out long held).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(length, Is.Zero);
            Assert.That(held, Is.Zero);
            Assert.That(reopened.Allocated - baseline, Is.LessThan(8 * 1024), "only the meta object's blocks");
            Assert.That(reopened.Scrub().Errors, Is.Zero);
        }
    }

    [Test]
    public void Next_data_skips_holes_across_indirect_levels_and_freed_blocks()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = NewObject(pool, [1]);
        Assert.That(pool.Objects.Write(id, 300L << 20, [2]).IsOk, Is.True);
        Assert.That(pool.Objects.Write(id, 500L << 20, Bytes(10, 3)).IsOk, Is.True);
        pool.Commit();
        Assert.That(pool.Objects.FreeRange(id, 300L << 20, 1).IsOk, Is.True);
        Assert.That(pool.Objects.NextData(id, 1, out long inFirst).IsOk, Is.True);
        Assert.That(pool.Objects.NextData(id, 128 * 1024, out long afterFirst).IsOk, Is.True);
        Assert.That(pool.Objects.NextData(id, (500L << 20) + 1, out long inLast).IsOk, Is.True);
        Assert.That(pool.Objects.NextData(id, (500L << 20) + 1000, out long none).IsOk, Is.True);
        var buffer = new byte[1];
        pool.Objects.Read(id, 300L << 20, buffer, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(inFirst, Is.EqualTo(1), "inside a block that holds data");
            Assert.That(afterFirst, Is.EqualTo(500L << 20), "the block at 300 MiB is freed whole: nothing else follows");
            Assert.That(inLast, Is.EqualTo((500L << 20) + 1));
            Assert.That(none, Is.EqualTo(-1), "past the end");
            Assert.That(buffer[0], Is.Zero);
        }
    }

    [Test]
    public void Freeing_part_of_an_uncommitted_block_zeroes_just_that_part()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var data = Bytes(10_000, 3);
        long id = NewObject(pool, data);
        Assert.That(pool.Objects.FreeRange(id, 1000, 2000).IsOk, Is.True);
        data.AsSpan(1000, 2000).Clear();
        Assert.That(ReadAll(pool, id), Is.EqualTo(data));
        pool.Commit();
        Assert.That(ReadAll(pool, id), Is.EqualTo(data));
    }

    [Test]
    public void Bad_ranges_are_refused_and_change_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long id = NewObject(pool, [1, 2, 3]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Objects.Truncate(id, -1).Status, Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(pool.Objects.FreeRange(id, -5, 1).Status, Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(pool.Objects.Truncate(99, 0).Status, Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(ReadAll(pool, id), Is.EqualTo(new byte[] { 1, 2, 3 }));
        }
    }
}
