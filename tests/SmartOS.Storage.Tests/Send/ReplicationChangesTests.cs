namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// zfs send -R -i/-I received over an earlier copy, when the source changed its tree between the two
/// sends (Dsl.SendReplicateChanges.cs, libzfs's recv_incremental_replication): filesystems and
/// snapshots renamed, a clone promoted, snapshots and filesystems destroyed, properties set and
/// cleared. Each case is first received over a full -R copy, then checked name by name.
/// </summary>
public class ReplicationChangesTests : DatasetStreamFixture
{
    private static byte[] SendR(Pool pool, string snapshot, string? from = null, bool intermediates = false)
    {
        var output = new MemoryStream();
        Ok(pool.Datasets.Send(snapshot, new SendOptions { From = from, Intermediates = intermediates, Replicate = true }, output));
        return output.ToArray();
    }

    private static StorageResult ReceiveR(Pool pool, byte[] stream, string target, ReceiveOptions options, out ReceiveSummary? summary) =>
        pool.Datasets.Receive(new MemoryStream(stream), target, options, out summary);

    /// <summary>tank/src with children a and a/deep and b, files in each, @one everywhere; copied whole to backup/src.</summary>
    private (Pool Source, Pool Copy) Pair()
    {
        var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Write(Mount(pool, "tank/src"), "top", "top\n"u8.ToArray());
        foreach (string fs in new[] { "tank/src/a", "tank/src/a/deep", "tank/src/b" })
        {
            Ok(pool.Datasets.Create(fs, DatasetType.Filesystem));
            Write(Mount(pool, fs), "name", System.Text.Encoding.ASCII.GetBytes(fs + "\n"));
        }
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@one", recursive: true));
        var other = Create("backup", VdevSpec.Disk("d1"));
        Ok(ReceiveR(other, SendR(pool, "tank/src@one"), "backup/src", new ReceiveOptions(), out _));
        return (pool, other);
    }

    private List<string> Names(Pool pool, string root)
    {
        Ok(pool.Datasets.List(root, -1, DatasetKinds.Filesystem | DatasetKinds.Snapshot, out var names));
        return names.Select(n => n[(n.IndexOf('/') + 1)..]).ToList();
    }

    [Test]
    public void A_filesystem_renamed_on_the_source_is_renamed_in_the_copy_and_gets_its_new_snapshot()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Rename("tank/src/a", "tank/src/b/moved"));
        Write(Mount(pool, "tank/src/b/moved"), "later", Bytes(9_000, 3));
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));

        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one"), "backup/src", new ReceiveOptions(), out var summary));
        Assert.That(Names(other, "backup/src"), Is.EqualTo(Names(pool, "tank/src")));
        Assert.That(Listing(other, "backup/src/b/moved/deep@two"), Is.EqualTo(Listing(pool, "tank/src/b/moved/deep@two")));
        Assert.That(Listing(other, "backup/src/b/moved@two"), Is.EqualTo(Listing(pool, "tank/src/b/moved@two")));
        Assert.That(summary!.Verbose, Does.Contain("attempting rename backup/src/a to backup/src/b/moved"));
    }

    [Test]
    public void Two_filesystems_that_swapped_names_go_through_a_temporary_name()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Rename("tank/src/a", "tank/src/tmp"));
        Ok(pool.Datasets.Rename("tank/src/b", "tank/src/a"));
        Ok(pool.Datasets.Rename("tank/src/tmp", "tank/src/b"));
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));

        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one"), "backup/src", new ReceiveOptions(), out var summary));
        Assert.That(Names(other, "backup/src"), Is.EqualTo(Names(pool, "tank/src")));
        Assert.That(Listing(other, "backup/src/a@two"), Is.EqualTo(Listing(pool, "tank/src/a@two")), "the old b, under its new name");
        Assert.That(Listing(other, "backup/src/b/deep@two"), Is.EqualTo(Listing(pool, "tank/src/b/deep@two")));
        Assert.That(summary!.Verbose.Any(l => l.StartsWith("failed - trying rename backup/src/", StringComparison.Ordinal)), Is.True,
            string.Join("\n", summary.Verbose));
    }

    [Test]
    public void A_snapshot_renamed_on_the_source_is_renamed_in_the_copy()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Snapshot("tank/src/b@mid"));
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one", intermediates: true), "backup/src", new ReceiveOptions(), out _));
        Ok(pool.Datasets.Rename("tank/src/b@mid", "tank/src/b@middle"));
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));

        Ok(ReceiveR(other, SendR(pool, "tank/src@three", "@two"), "backup/src", new ReceiveOptions(), out _));
        Assert.That(Names(other, "backup/src"), Is.EqualTo(Names(pool, "tank/src")));
        Assert.That(Guid(other, "backup/src/b@middle"), Is.EqualTo(Guid(pool, "tank/src/b@middle")));
    }

    [Test]
    public void A_clone_promoted_on_the_source_is_promoted_in_the_copy()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Clone("tank/src/a@one", "tank/src/c"));
        Write(Mount(pool, "tank/src/c"), "own", "clone's\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one", intermediates: true), "backup/src", new ReceiveOptions(), out _));
        Assert.That(Prop(other, "backup/src/c", "origin"), Is.EqualTo("backup/src/a@one"));

        Ok(pool.Datasets.Promote("tank/src/c"));
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@three", "@two"), "backup/src", new ReceiveOptions(), out var summary));
        Assert.That(summary!.Verbose, Does.Contain("promoting backup/src/c"));
        Assert.That(Prop(other, "backup/src/a", "origin"), Is.EqualTo("backup/src/c@one"));
        Assert.That(Prop(other, "backup/src/c", "origin"), Is.EqualTo("-"));
        Assert.That(Names(other, "backup/src"), Is.EqualTo(Names(pool, "tank/src")));
        Assert.That(Listing(other, "backup/src/c@three"), Is.EqualTo(Listing(pool, "tank/src/c@three")));
    }

    [Test]
    public void A_package_that_fails_after_its_promote_and_rename_has_both_undone()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Clone("tank/src/a@one", "tank/src/c"));
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one", intermediates: true), "backup/src", new ReceiveOptions(), out _));
        Ok(pool.Datasets.Promote("tank/src/c"));
        Ok(pool.Datasets.Rename("tank/src/b", "tank/src/renamed"));
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));
        Write(Mount(other, "backup/src/a/deep"), "local", "changed here\n"u8.ToArray());
        Ok(other.Commit());
        var before = All(other);

        var refused = ReceiveR(other, SendR(pool, "tank/src@three", "@two"), "backup/src", new ReceiveOptions(), out _);
        Assert.That(refused.Message, Is.EqualTo("cannot receive incremental stream: destination backup/src/a/deep has been modified\nsince most recent snapshot"));
        Assert.That(All(other), Is.EqualTo(before));
        Assert.That(Prop(other, "backup/src/c", "origin"), Is.EqualTo("backup/src/a@one"), "the promote is undone");
    }

    [Test]
    public void With_F_destroyed_snapshots_and_filesystems_go_and_a_rename_into_a_destroyed_name_lands()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Snapshot("tank/src/a@extra"));
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one", intermediates: true), "backup/src", new ReceiveOptions(), out _));
        Ok(pool.Datasets.Destroy("tank/src/a@extra"));
        Ok(pool.Datasets.Destroy("tank/src/b", DestroyFlags.Recursive));
        Ok(pool.Datasets.Rename("tank/src/a", "tank/src/b"));
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));
        byte[] stream = SendR(pool, "tank/src@three", "@two");

        var before = All(other);
        var refused = ReceiveR(other, stream, "backup/src", new ReceiveOptions(), out _);
        Assert.That(refused.IsOk, Is.False, "without -F the old b stays, and the renamed a cannot take its name");
        Assert.That(All(other), Is.EqualTo(before), "the renames of the failed package are undone");

        Ok(ReceiveR(other, stream, "backup/src", new ReceiveOptions { Force = true }, out var summary));
        Assert.That(Names(other, "backup/src"), Is.EqualTo(Names(pool, "tank/src")), string.Join("\n", summary!.Verbose));
        Assert.That(Listing(other, "backup/src/b/deep@three"), Is.EqualTo(Listing(pool, "tank/src/b/deep@three")));
        Assert.That(summary.Verbose, Does.Contain("attempting destroy backup/src/b@extra"));
    }

    [Test]
    public void Properties_set_and_cleared_on_the_source_follow_in_the_copy()
    {
        var (pool, other) = Pair();
        using var source = pool;
        using var copy = other;
        Ok(pool.Datasets.Set("tank/src/a", "atime", "off"));
        Ok(pool.Datasets.Set("tank/src/b", "compression", "gzip"));
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@two", "@one"), "backup/src", new ReceiveOptions(), out _));
        Assert.That(Prop(other, "backup/src/a", "atime"), Is.EqualTo("off"));
        Assert.That(Prop(other, "backup/src/b", "compression"), Is.EqualTo("gzip"));

        Ok(pool.Datasets.Inherit("tank/src/a", "atime"));
        Ok(pool.Datasets.Set("tank/src/b", "compression", "lz4"));
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));
        Ok(ReceiveR(other, SendR(pool, "tank/src@three", "@two"), "backup/src", new ReceiveOptions(), out _));
        Assert.That(Prop(other, "backup/src/a", "atime"), Is.EqualTo("on"), "a received value the source no longer sends is cleared");
        Assert.That(Prop(other, "backup/src/b", "compression"), Is.EqualTo("lz4"));
    }
}
