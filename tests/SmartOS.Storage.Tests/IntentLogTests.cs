using System.Text;

namespace SmartOS.Storage.Tests;

/// <summary>IntentLog.cs: fsync writes the dataset's log without a txg; import replays it.</summary>
public class IntentLogTests : PoolFixture
{
    private static VdevSpec[] Layout(string name) => name switch
    {
        "mirror" => [VdevSpec.Mirror("m0", "m1")],
        "raidz1" => [VdevSpec.Raidz1("r0", "r1", "r2")],
        _ => [VdevSpec.Disk("d0")],
    };

    private ZplFileSystem Mount(Pool pool)
    {
        long now = 0;
        Assert.That(ZplFileSystem.Open(RootSet(pool), new FileSystemOptions { Clock = () => now += 1000, Atime = false }, out var fs).Message, Is.EqualTo("ok"));
        return fs!;
    }

    private static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new SmartOS.Kernel.HostRandom((ulong)seed).NextBytes(data);
        return data;
    }

    private static long Create(ZplFileSystem fs, string path)
    {
        Assert.That(fs.CreateFile(path, 0x1A4, 0, 0, out long inode).Message, Is.EqualTo("ok"));
        return inode;
    }

    private static void Write(ZplFileSystem fs, long inode, long offset, byte[] data) =>
        Assert.That(fs.Write(inode, offset, data).Message, Is.EqualTo("ok"));

    private static byte[] Content(ZplFileSystem fs, string path)
    {
        Assert.That(fs.Stat(path, out var attributes).Message, Is.EqualTo("ok"), path);
        var content = new byte[attributes.Size];
        Assert.That(fs.Read(attributes.Inode, 0, content, out int n).Message, Is.EqualTo("ok"));
        Assert.That(n, Is.EqualTo(content.Length));
        return content;
    }

    private static void AssertClean(Pool pool)
    {
        Assert.That(pool.Scrub().Errors, Is.Zero, "scrub errors");
        Assert.That(pool.DataErrors, Is.Zero);
        foreach (var top in pool.Vdevs)
            foreach (var leaf in top.Leaves)
                Assert.That(leaf.ReadErrors + leaf.ChecksumErrors + leaf.RepairedBytes, Is.Zero, leaf.Path);
    }

    [TestCase("disk")]
    [TestCase("mirror")]
    [TestCase("raidz1")]
    public void What_an_fsync_held_survives_a_crash_without_a_commit_and_is_replayed_at_import(string layout)
    {
        var a = Bytes(300_000, 1);
        var b = Bytes(5000, 2);
        var patch = Bytes(7000, 3);
        using (var pool = Create("tank", Layout(layout)))
        {
            var fs = Mount(pool);
            long fa = Create(fs, "/a");
            Write(fs, fa, 0, a);
            long txg = pool.Txg;
            // The first fsync opens the log, with a commit (IntentLog L1).
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Assert.That(pool.Txg, Is.EqualTo(txg + 1));
            txg = pool.Txg;
            long blocks = pool.LogBlocksWritten;
            Assert.That(fs.MakeDirectory("/dir", 0x1ED, 0, 0, out _).Message, Is.EqualTo("ok"));
            long fb = Create(fs, "/dir/b");
            Write(fs, fb, 0, b);
            Write(fs, fa, 100_000, patch);
            Assert.That(fs.Truncate(fa, 250_000).Message, Is.EqualTo("ok"));
            Assert.That(fs.Rename("/dir/b", "/dir/c").Message, Is.EqualTo("ok"));
            long gone = Create(fs, "/gone");
            Write(fs, gone, 0, b);
            Assert.That(fs.Unlink("/gone").Message, Is.EqualTo("ok"));
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(pool.Txg, Is.EqualTo(txg), "the second fsync wrote the log, not a txg");
                Assert.That(pool.LogBlocksWritten, Is.GreaterThan(blocks));
            }
            // Not synced: lost in the crash.
            Write(fs, fa, 0, b);
            Create(fs, "/unsynced");
            // A crash: the files are closed without a commit.
        }
        using (var reopened = Open("tank"))
        {
            var expectedA = a[..250_000];
            patch.CopyTo(expectedA, 100_000);
            var fs = Mount(reopened);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(reopened.Datasets.Replays, Has.Count.EqualTo(1));
                Assert.That(reopened.Datasets.Replays[0].Commits, Is.EqualTo(1));
                Assert.That(reopened.Datasets.Replays[0].Dataset, Is.EqualTo("tank"));
                Assert.That(Content(fs, "/a"), Is.EqualTo(expectedA));
                Assert.That(Content(fs, "/dir/c"), Is.EqualTo(b));
                Assert.That(fs.Stat("/dir/b", out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
                Assert.That(fs.Stat("/gone", out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
                Assert.That(fs.Stat("/unsynced", out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
            }
            AssertClean(reopened);
        }
        // The replay was committed with the header emptied: a second import replays nothing.
        using (var again = Open("tank"))
        {
            Assert.That(again.Datasets.Replays, Is.Empty);
            Assert.That(Content(Mount(again), "/dir/c"), Is.EqualTo(b));
        }
    }

    [Test]
    public void A_damaged_log_block_ends_the_replay_at_the_last_good_commit()
    {
        var first = Encoding.ASCII.GetBytes("first synced version");
        var second = Encoding.ASCII.GetBytes("second synced version, never replayed");
        BlockPointer secondBlock;
        using (var pool = Create("tank", Layout("disk")))
        {
            var fs = Mount(pool);
            long f = Create(fs, "/f");
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));   // opens the log
            Write(fs, f, 0, first);
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Write(fs, f, 0, second);
            Create(fs, "/later");
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            var written = pool.Datasets.LogOf("tank")!.BlocksSinceCommit;
            // The first synced write takes one 4 KiB block (the chain's first size); the second fsync starts at the next.
            Assert.That(written, Has.Count.GreaterThanOrEqualTo(2));
            secondBlock = written[1];
        }
        // Flip bytes inside the second block's records, as a bad sector would.
        using (var file = new FileStream(Path.Combine(Dir, "d0"), FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = VdevLabel.LabelSize + secondBlock.Dva0.Offset + IntentLog.HeaderSize + 8;
            file.Write(Bytes(16, 9));
        }
        using var reopened = Open("tank");
        var fs2 = Mount(reopened);
        using (Assert.EnterMultipleScope())
        {
            var replay = reopened.Datasets.Replays[0];
            Assert.That(replay.Commits, Is.EqualTo(1));
            Assert.That(replay.Stopped, Does.StartWith("block 2 does not verify"));
            Assert.That(Content(fs2, "/f"), Is.EqualTo(first));
            Assert.That(fs2.Stat("/later", out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
        }
        // The end of a chain is read speculatively: the bad block counts no error.
        AssertClean(reopened);
    }

    [Test]
    public void The_log_blocks_are_freed_once_the_next_txg_has_committed()
    {
        using var pool = Create("tank", Layout("disk"));
        var fs = Mount(pool);
        long f = Create(fs, "/f");
        Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
        for (int i = 0; i < 4; i++)
        {
            Write(fs, f, i * 4096L, Bytes(4096, i));
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
        }
        var blocks = new List<BlockPointer>(pool.Datasets.LogOf("tank")!.BlocksSinceCommit);
        Assert.That(blocks, Has.Count.GreaterThanOrEqualTo(4), "a block or two for each fsync");
        var space = pool.Vdevs[0].Space;
        foreach (var bp in blocks) Assert.That(space.IsAllocated(bp.Dva0.Offset, bp.PhysicalSize), Is.True, "a written log block is allocated");
        Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Datasets.LogOf("tank")!.BlocksSinceCommit, Is.Empty);
            foreach (var bp in blocks) Assert.That(space.IsAllocated(bp.Dva0.Offset, bp.PhysicalSize), Is.False, "freed after the txg");
        }
        // After the commit, the log carries on from where it was: no txg for the next fsync.
        long txg = pool.Txg;
        Write(fs, f, 0, Bytes(100, 7));
        Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
        Assert.That(pool.Txg, Is.EqualTo(txg));
    }

    [Test]
    public void After_a_commit_only_the_later_records_are_replayed()
    {
        var one = Bytes(20_000, 1);
        var two = Bytes(9_000, 2);
        using (var pool = Create("tank", Layout("disk")))
        {
            var fs = Mount(pool);
            long f = Create(fs, "/f");
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Write(fs, f, 0, one);
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
            Write(fs, f, 20_000, two);
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
        }
        using var reopened = Open("tank");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reopened.Datasets.Replays[0].Commits, Is.EqualTo(1));
            Assert.That(Content(Mount(reopened), "/f"), Is.EqualTo(one.Concat(two).ToArray()));
        }
        AssertClean(reopened);
    }

    [Test]
    public void A_snapshot_closes_the_head_onto_a_shared_root_so_the_next_fsync_commits_and_a_clone_replays_nothing()
    {
        using (var pool = Create("tank", Layout("disk")))
        {
            var fs = Mount(pool);
            long f = Create(fs, "/f");
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Write(fs, f, 0, Bytes(1000, 1));
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Assert.That(pool.Datasets.Snapshot("tank@s").Message, Is.EqualTo("ok"));
            Assert.That(pool.Datasets.Clone("tank@s", "tank/c").Message, Is.EqualTo("ok"));
            long txg = pool.Txg;
            Write(fs, f, 0, Bytes(1000, 2));
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Assert.That(pool.Txg, Is.EqualTo(txg + 1), "the root the head shares with its snapshot carries no header of its own");
            Write(fs, f, 0, Bytes(1000, 3));
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Assert.That(pool.Txg, Is.EqualTo(txg + 1));
        }
        using var reopened = Open("tank");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reopened.Datasets.Replays, Has.Count.EqualTo(1), "the clone's root is its origin's: not its log");
            Assert.That(Content(Mount(reopened), "/f"), Is.EqualTo(Bytes(1000, 3)));
        }
        AssertClean(reopened);
    }

    /// <summary>Pool.cs rule 12: whole-block writes, logged and replayed, come back whole: a block
    /// placed during the replay could take the space of a later log block of the chain, not claimed
    /// yet, and cut the replay there (the pool places nothing while it replays).</summary>
    [Test]
    public void A_replay_of_whole_block_writes_reads_every_log_block_of_the_chain()
    {
        var first = Bytes(4 * 128 * 1024, 21);
        var second = Bytes(4 * 128 * 1024, 22);
        using (var pool = Create("tank", Layout("disk")))
        {
            var fs = Mount(pool);
            long fa = Create(fs, "/a"), fb = Create(fs, "/b");
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));   // opens the log, with a commit
            Write(fs, fa, 0, first);
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            Write(fs, fb, 0, second);
            Assert.That(fs.Fsync().Message, Is.EqualTo("ok"));
            // A crash: both fsyncs are in the log only.
        }
        using var reopened = Open("tank");
        var mounted = Mount(reopened);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Content(mounted, "/a"), Is.EqualTo(first));
            Assert.That(Content(mounted, "/b"), Is.EqualTo(second));
        }
        AssertClean(reopened);
    }
}
