namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// zfs send -R -I between our pools and zfs-fuse 0.7.0 (pool version 23; it has no resumable
/// receive, so only the replication side is held against it) when the source renamed a filesystem
/// and a snapshot, destroyed a snapshot and changed a property between the two sends: zfs-fuse's
/// package received here (Dsl.SendReplicateChanges.cs) and ours received by zfs-fuse's libzfs
/// (its own recv_incremental_replication reading our "fss") end with the same names and guids.
/// </summary>
[TestFixture]
[NonParallelizable]
public class ReplicationChangesInteropTests : DatasetStreamFixture
{
    private ZfsFuse? _zfs;

    [OneTimeSetUp]
    public void StartZfsFuse()
    {
        if (ZfsFuse.Unavailable() is string why) Assert.Ignore(why);
        _zfs = ZfsFuse.Start();
    }

    [OneTimeTearDown]
    public void StopZfsFuse() => _zfs?.Dispose();

    private ZfsFuse Zfs => _zfs!;

    private byte[] FromFuse(string command)
    {
        string file = Path.Combine(Zfs.Directory, System.Guid.NewGuid().ToString("N") + ".zs");
        Zfs.Run($"{command} > '{file}'");
        return File.ReadAllBytes(file);
    }

    private void ToFuse(byte[] stream, string arguments)
    {
        string file = Path.Combine(Zfs.Directory, System.Guid.NewGuid().ToString("N") + ".zs");
        File.WriteAllBytes(file, stream);
        Zfs.Run($"zfs receive {arguments} < '{file}'");
    }

    /// <summary>Every name under a zfs-fuse dataset with its guid, the dataset's own name replaced by <paramref name="asName"/>.</summary>
    private List<string> FuseNames(string dataset, string asName) =>
        Zfs.Run($"zfs list -H -o name -t snapshot -r {dataset}").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(n => asName + n[dataset.Length..] + " " + Zfs.Run($"zfs get -Hp -o value guid {n}").Trim())
            .Order(StringComparer.Ordinal).ToList();

    private static List<string> OurNames(Pool pool, string dataset)
    {
        Ok(pool.Datasets.List(dataset, -1, DatasetKinds.Snapshot, out var names));
        return names.Where(n => n.Contains('@')).Select(n => n + " " + Guid(pool, n)).Order(StringComparer.Ordinal).ToList();
    }

    [Test]
    public void A_zfs_fuse_package_with_renames_and_a_destroy_lands_here_with_F()
    {
        string fs = $"{Zfs.Pool}/rsrc";
        Zfs.Run($"zfs create {fs} && zfs create {fs}/a && zfs create {fs}/b && echo a > '{Zfs.MountOf(fs)}/a/f' && echo b > '{Zfs.MountOf(fs)}/b/f' "
              + $"&& zfs snapshot -r {fs}@one && zfs snapshot {fs}/b@gone && zfs snapshot {fs}/a@mid && zfs snapshot -r {fs}@two");
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(Receive(pool, FromFuse($"zfs send -R {fs}@two"), "tank/copy"));
        Assert.That(OurNames(pool, "tank/copy"), Is.EqualTo(FuseNames(fs, "tank/copy")));

        // zfs-fuse renames only what it has unmounted ("dataset is busy" otherwise).
        Zfs.Run($"zfs unmount {fs}/a && zfs rename {fs}/a {fs}/b/moved && zfs mount {fs}/b/moved && zfs rename {fs}/b/moved@mid {fs}/b/moved@middle && zfs destroy {fs}/b@gone "
              + $"&& zfs set atime=off {fs}/b && echo more > '{Zfs.MountOf(fs)}/b/moved/g' && zfs snapshot -r {fs}@three");
        Ok(pool.Datasets.Receive(new MemoryStream(FromFuse($"zfs send -R -I @two {fs}@three")), "tank/copy", new ReceiveOptions { Force = true }, out var summary));
        Assert.That(OurNames(pool, "tank/copy"), Is.EqualTo(FuseNames(fs, "tank/copy")), string.Join("\n", summary!.Verbose));
        Assert.That(Prop(pool, "tank/copy/b", "atime"), Is.EqualTo("off"));
        Assert.That(Listing(pool, "tank/copy/b/moved@three").Where(l => l.StartsWith("g\t", StringComparison.Ordinal)), Has.Exactly(1).Items);
    }

    [Test]
    public void Our_package_with_renames_lands_in_zfs_fuse()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/osrc", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/osrc/a", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/osrc/b", DatasetType.Filesystem));
        Write(Mount(pool, "tank/osrc/a"), "f", "a\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/osrc@one", recursive: true));
        Ok(pool.Datasets.Snapshot("tank/osrc/a@mid"));
        Ok(pool.Datasets.Snapshot("tank/osrc@two", recursive: true));
        var first = new MemoryStream();
        Ok(pool.Datasets.Send("tank/osrc@two", new SendOptions { Replicate = true }, first));
        string into = $"{Zfs.Pool}/ours-rr";
        Zfs.Run($"zfs create {into}");
        ToFuse(first.ToArray(), $"-u -d {into}");

        Ok(pool.Datasets.Rename("tank/osrc/a", "tank/osrc/b/moved"));
        Ok(pool.Datasets.Rename("tank/osrc/b/moved@mid", "tank/osrc/b/moved@middle"));
        Write(Mount(pool, "tank/osrc/b/moved"), "g", "more\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/osrc@three", recursive: true));
        var next = new MemoryStream();
        Ok(pool.Datasets.Send("tank/osrc@three", new SendOptions { Replicate = true, From = "@two", Intermediates = true }, next));
        ToFuse(next.ToArray(), $"-u -d {into}");
        Assert.That(FuseNames($"{into}/osrc", "tank/osrc"), Is.EqualTo(OurNames(pool, "tank/osrc")));
        Assert.That(Zfs.Run($"zfs mount {into}/osrc/b/moved && cat '{Zfs.MountOf(into)}/osrc/b/moved/g'"), Is.EqualTo("more\n"));
    }
}
