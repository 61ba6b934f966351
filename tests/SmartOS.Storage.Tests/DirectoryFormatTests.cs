using System.IO.Compression;

namespace SmartOS.Storage.Tests;

/// <summary>
/// The dataset directory's on-disk form (Dsl.Sync.cs): a slot table of per-dataset records, so a
/// commit writes what changed and not the whole directory; pools of the first format still open.
/// </summary>
public class DirectoryFormatTests : DatasetFixture
{
    private static IReadOnlyList<string> All(Pool pool)
    {
        Ok(pool.Datasets.List(null, -1, DatasetKinds.All, out var names));
        return names;
    }

    [Test]
    public void A_commit_that_clones_writes_as_much_of_the_directory_with_300_datasets_as_with_10()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/base", DatasetType.Filesystem));
        NewFile(pool, "tank/base", Bytes(30_000, 1));
        Ok(pool.Datasets.Snapshot("tank/base@final"));
        var directory = new long[300];
        var device = new long[directory.Length];
        var leaf = pool.Vdevs[0].Leaves[0];
        for (int n = 0; n < directory.Length; n++)
        {
            long before = pool.Datasets.DirectoryBytesWritten, bytes = leaf.WriteBytes;
            Ok(pool.Datasets.Clone("tank/base@final", $"tank/z{n:D3}"));
            directory[n] = pool.Datasets.DirectoryBytesWritten - before;
            device[n] = leaf.WriteBytes - bytes;
        }
        // The first format wrote every dataset's entry at each commit (about 200 bytes a dataset).
        // Now: the header, the new clone's slot and its record, the same at the 300th as at the 10th.
        Assert.That(directory[299], Is.EqualTo(directory[10]));
        Assert.That(directory[299], Is.LessThan(1024));
        // What reaches the device also holds the MOS's block of dnodes that the new record's object
        // shares (64 to a 16 KiB block, so it grows until a block fills, then starts again) and the
        // indirect block above: printed here, bounded in the test below.
        TestContext.Out.WriteLine($"directory bytes a clone's commit writes: {directory[10]}; device bytes: {device[10..20].Average():F0} at the 10th, {device[290..300].Average():F0} at the 300th");
        Ok(pool.Export());
        using var reopened = Open("tank");
        Assert.That(All(reopened), Has.Count.EqualTo(directory.Length + 3));
        Assert.That(Prop(reopened, "tank/z299", "origin"), Is.EqualTo("tank/base@final"));
    }

    /// <summary>
    /// Issue 13: the Nth clone's commit touches a bounded number of blocks. It writes the new record,
    /// the directory's header block and the block of the new slot (4 KiB each) and, once the directory
    /// has more than one block, its indirect block; the 16 KiB dnode blocks holding the directory's
    /// dnode and the record's, and the MOS's indirect block above them: 7 blocks, the same at the
    /// 1,000th clone as at the 500th. The first 64 clones write fewer (their dnodes and slots share
    /// the first blocks), never more. The pool space a clone adds is the same at the 50th, 500th and
    /// 1,000th (each a mean over 64 clones, one dnode block's worth, since a block's compressed size
    /// grows as it fills and starts again).
    /// </summary>
    [Test]
    public void The_1000th_clone_writes_as_many_blocks_and_takes_as_much_space_as_the_500th_and_the_50th()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/image", DatasetType.Filesystem));
        NewFile(pool, "tank/image", Bytes(100_000, 3));
        Ok(pool.Datasets.Snapshot("tank/image@final"));
        Ok(pool.Datasets.Create("tank/zones", DatasetType.Filesystem));
        const int Clones = 1_064;
        var blocks = new long[Clones + 1];
        var space = new long[Clones + 1];
        var device = new long[Clones + 1];
        var leaf = pool.Vdevs[0].Leaves[0];
        for (int n = 1; n <= Clones; n++)
        {
            long written = pool.BlocksWritten, allocated = pool.Allocated, bytes = leaf.WriteBytes;
            Ok(pool.Datasets.Clone("tank/image@final", $"tank/zones/z{n:D4}"));
            blocks[n] = pool.BlocksWritten - written;
            space[n] = pool.Allocated - allocated;
            device[n] = leaf.WriteBytes - bytes;
        }
        static double Mean(long[] a, int from) => a.Skip(from).Take(64).Average();
        static long Most(long[] a, int from) => a.Skip(from).Take(64).Max();
        TestContext.Out.WriteLine($"blocks per clone commit (most, mean of 64): {Most(blocks, 50)} {Mean(blocks, 50):F2} from the 50th, "
            + $"{Most(blocks, 500)} {Mean(blocks, 500):F2} from the 500th, {Most(blocks, 1000)} {Mean(blocks, 1000):F2} from the 1000th; "
            + $"pool space per clone: {Mean(space, 50):F0}, {Mean(space, 500):F0}, {Mean(space, 1000):F0} bytes; "
            + $"device bytes per commit: {Mean(device, 50):F0}, {Mean(device, 500):F0}, {Mean(device, 1000):F0}");
        Assert.That(Most(blocks, 1000), Is.EqualTo(Most(blocks, 500)).And.EqualTo(7), "most blocks one clone's commit writes");
        Assert.That(Mean(blocks, 1000), Is.EqualTo(Mean(blocks, 500)).Within(0.1), "blocks a clone's commit writes");
        Assert.That(Most(blocks, 50), Is.LessThanOrEqualTo(Most(blocks, 500)), "most blocks one clone's commit writes");
        Assert.That(Mean(space, 500), Is.EqualTo(Mean(space, 50)).Within(16), "pool space a clone takes");
        Assert.That(Mean(space, 1000), Is.EqualTo(Mean(space, 500)).Within(16), "pool space a clone takes");
        Assert.That(Mean(space, 1000), Is.LessThan(1024), "pool space a clone takes");
        // What a commit writes to the device is bounded too (each block at most 16 KiB of dnodes, 4 KiB
        // of directory or 128 KiB of indirect pointers); the MOS's indirect block grows with the
        // number of dnode blocks until it holds 1,024 pointers, as ZFS's does.
        Assert.That(device.Skip(1000).Take(64).Max(), Is.LessThan(7 * Pool.MaxBlockSize));
    }

    [Test]
    public void Destroyed_datasets_free_their_slots_for_new_ones_and_everything_survives_reopen()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            for (int n = 0; n < 6; n++) Ok(pool.Datasets.Create($"tank/d{n}", DatasetType.Filesystem));
            Ok(pool.Datasets.Destroy("tank/d1"));
            Ok(pool.Datasets.Destroy("tank/d3"));
            Ok(pool.Datasets.Create("tank/d2/child", DatasetType.Filesystem, new Dictionary<string, string> { ["quota"] = "5M" }));
            Ok(pool.Datasets.Create("tank/e", DatasetType.Volume, new Dictionary<string, string> { ["volsize"] = "1M" }));
            Ok(pool.Datasets.Rename("tank/d4", "tank/d2/moved"));
            Ok(pool.Datasets.Snapshot("tank/d2@s"));
            Ok(pool.Export());
        }
        using var reopened = Open("tank");
        Assert.That(All(reopened), Is.EqualTo(new[]
        {
            "tank", "tank/d0", "tank/d2", "tank/d2@s", "tank/d2/child", "tank/d2/moved", "tank/d5", "tank/e",
        }));
        Assert.That(Prop(reopened, "tank/d2/child", "quota"), Is.EqualTo("5242880"));
        Assert.That(Prop(reopened, "tank/e", "type"), Is.EqualTo("volume"));
    }

    /// <summary>
    /// A pool written by the first format (the whole directory in one stream). Made by commit
    /// 4da0611's code: tank/fs (quota=10M) with a 20,000-byte object 4 of Bytes(20_000, 7), @a, the
    /// clone tank/clone of @a, a 5,000-byte object of Bytes(5_000, 8), @b, and the 1M volume tank/vol.
    /// </summary>
    [Test]
    public void A_pool_of_the_first_directory_format_opens_and_is_converted_at_its_next_commit()
    {
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(TestContext.CurrentContext.TestDirectory, "Data", "dsl1-pool-d0.gz")), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(Dir, "d0")))
            gz.CopyTo(file);
        var expected = new[] { "tank", "tank/clone", "tank/fs", "tank/fs@a", "tank/fs@b", "tank/vol" };
        void Check(Pool pool)
        {
            Assert.That(All(pool), Is.EqualTo(expected));
            Assert.That(Prop(pool, "tank/clone", "origin"), Is.EqualTo("tank/fs@a"));
            Assert.That(Prop(pool, "tank/fs", "quota"), Is.EqualTo("10485760"));
            Assert.That(Num(pool, "tank/fs", "used"), Is.EqualTo(29184));
            Assert.That(Num(pool, "tank/clone", "referenced"), Is.EqualTo(23040));
            Assert.That(Num(pool, "tank/fs@b", "creation"), Is.EqualTo(12));
            Assert.That(ReadFile(pool, "tank/clone", 4), Is.EqualTo(Bytes(20_000, 7)));
            Assert.That(Prop(pool, "tank/vol", "volsize"), Is.EqualTo("1048576"));
        }
        using (var pool = Open("tank"))
        {
            Check(pool);
            Ok(pool.Datasets.Create("tank/new", DatasetType.Filesystem));
            Ok(pool.Export());
        }
        expected = ["tank", "tank/clone", "tank/fs", "tank/fs@a", "tank/fs@b", "tank/new", "tank/vol"];
        using var reopened = Open("tank");
        Check(reopened);
        Assert.That(reopened.Scrub().Errors, Is.Zero);
    }
}
