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
        // shares (512 to a block, so it grows until a block fills, then starts again): printed, not held.
        TestContext.Out.WriteLine($"directory bytes a clone's commit writes: {directory[10]}; device bytes: {device[10..20].Average():F0} at the 10th, {device[290..300].Average():F0} at the 300th");
        Ok(pool.Export());
        using var reopened = Open("tank");
        Assert.That(All(reopened), Has.Count.EqualTo(directory.Length + 3));
        Assert.That(Prop(reopened, "tank/z299", "origin"), Is.EqualTo("tank/base@final"));
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
