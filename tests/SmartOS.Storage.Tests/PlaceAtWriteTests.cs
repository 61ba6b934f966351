namespace SmartOS.Storage.Tests;

/// <summary>
/// Pool.cs rule 12: a write's whole data blocks are written at once, as blocks of the open txg that
/// its commit links; one taken back in its own txg (overwritten, freed, deleted) frees its space at
/// once; a crash before the commit leaves them as unreferenced free space; with a leaf not online
/// nothing is placed early, so a resilver never misses a block.
/// </summary>
public class PlaceAtWriteTests : PoolFixture
{
    private const int Block = Pool.MaxBlockSize;

    [Test]
    public void Whole_blocks_are_written_by_the_write_and_a_crash_before_the_commit_keeps_the_last_txg()
    {
        var old = Bytes(1000, 1);
        var whole = Bytes(4 * Block, 2);
        long id, txg, allocated;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            id = NewObject(pool, old);
            Assert.That(pool.Commit().IsOk, Is.True);
            txg = pool.Txg;
            allocated = pool.Allocated;
            var leaf = pool.Vdevs[0].Leaves[0];
            long written = leaf.WriteBytes;
            Assert.That(pool.Objects.Write(id, Block, whole).Message, Is.EqualTo("ok"));
            var expected = new byte[5 * Block];
            old.CopyTo(expected, 0);
            whole.CopyTo(expected, Block);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(leaf.WriteBytes - written, Is.EqualTo(4 * Block), "the four blocks went to the leaf with the write");
                Assert.That(pool.Allocated - allocated, Is.EqualTo(4 * Block), "and took their space in the open txg");
                Assert.That(pool.Txg, Is.EqualTo(txg), "nothing committed");
                Assert.That(ReadAll(pool, id), Is.EqualTo(expected), "read back before the commit");
            }
        }   // closed without a commit: a crash
        using (var reopened = Open("tank"))
        {
            using (Assert.EnterMultipleScope())
            {
                Assert.That(reopened.Txg, Is.EqualTo(txg));
                Assert.That(ReadAll(reopened, id), Is.EqualTo(old));
                Assert.That(reopened.Allocated, Is.EqualTo(allocated), "the placed blocks are free space again");
                Assert.That(reopened.Scrub().Errors, Is.Zero);
            }
        }
    }

    [Test]
    public void A_placed_block_taken_back_in_its_own_txg_frees_its_space_at_once()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Assert.That(pool.Objects.Create(out long id).IsOk, Is.True);
        Assert.That(pool.Objects.Create(out long gone).IsOk, Is.True);
        Assert.That(pool.Commit().IsOk, Is.True);
        long start = pool.Allocated;
        var expected = Bytes(3 * Block, 3);
        Assert.That(pool.Objects.Write(id, 0, expected).Message, Is.EqualTo("ok"));
        Assert.That(pool.Allocated - start, Is.EqualTo(3 * Block));

        // Overwritten whole: the new block is placed, the first freed.
        var again = Bytes(Block, 4);
        Assert.That(pool.Objects.Write(id, 0, again).Message, Is.EqualTo("ok"));
        again.CopyTo(expected, 0);
        Assert.That(pool.Allocated - start, Is.EqualTo(3 * Block), "block 0 placed again in the space it had");

        // Overwritten in part: the block becomes a dirty buffer for the commit, its placed copy is freed.
        var part = Bytes(100, 5);
        Assert.That(pool.Objects.Write(id, Block + 10, part).Message, Is.EqualTo("ok"));
        part.CopyTo(expected, Block + 10);
        Assert.That(pool.Allocated - start, Is.EqualTo(2 * Block));

        // Freed: a hole, and no space.
        Assert.That(pool.Objects.FreeRange(id, 2 * Block, Block).Message, Is.EqualTo("ok"));
        expected.AsSpan(2 * Block).Clear();
        Assert.That(pool.Allocated - start, Is.EqualTo(Block));

        // Deleted with its object.
        Assert.That(pool.Objects.Write(gone, 0, Bytes(2 * Block, 6)).Message, Is.EqualTo("ok"));
        Assert.That(pool.Allocated - start, Is.EqualTo(3 * Block));
        Assert.That(pool.Objects.Delete(gone).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Allocated - start, Is.EqualTo(Block));
            Assert.That(ReadAll(pool, id), Is.EqualTo(expected), "before the commit");
        }

        Assert.That(pool.Commit().IsOk, Is.True);
        pool.Dispose();
        using var reopened = Open("tank");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ReadAll(reopened, id), Is.EqualTo(expected), "after the commit");
            Assert.That(reopened.Objects.Exists(gone), Is.False);
            Assert.That(reopened.Scrub().Errors, Is.Zero);
        }
    }

    [Test]
    public void With_a_leaf_offline_writes_wait_for_the_commit_and_the_online_leaves_every_block_on_both_sides()
    {
        using var pool = Create("tank", VdevSpec.Mirror("d0", "d1"));
        Assert.That(pool.Objects.Create(out long id).IsOk, Is.True);
        Assert.That(pool.Commit().IsOk, Is.True);
        Assert.That(pool.Offline("d1", temporary: true).IsOk, Is.True);
        var d0 = pool.Vdevs[0].Leaves[0];
        long written = d0.WriteBytes;
        var content = Bytes(2 * Block, 7);
        Assert.That(pool.Objects.Write(id, 0, content).Message, Is.EqualTo("ok"));
        Assert.That(d0.WriteBytes, Is.EqualTo(written), "nothing placed while the mirror is degraded");
        Assert.That(pool.Online("d1", FileVdevIo.Opener).IsOk, Is.True);
        Assert.That(pool.Commit().IsOk, Is.True);
        var scrub = pool.Scrub();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(scrub.Errors, Is.Zero);
            Assert.That(pool.Vdevs[0].Leaves.Sum(l => l.ChecksumErrors + l.ReadErrors), Is.Zero, "both sides hold every block");
            Assert.That(ReadAll(pool, id), Is.EqualTo(content));
        }
    }
}
