namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// Datasets sent and received both ways between our pools and zfs-fuse 0.7.0 (pool version 23): what
/// zfs-fuse wrote through its mount arrives in our dataset with every name, mode, owner, time and
/// byte (read back through our ZPL), and our snapshots arrive in zfs-fuse the same (read back
/// through its mount with stat and sha256sum), full and incremental. One daemon serves the fixture.
/// </summary>
[TestFixture]
[NonParallelizable]
public class DatasetInteropTests : DatasetStreamFixture
{
    private ZfsFuse? _zfs;

    [OneTimeSetUp]
    public void StartZfsFuse()
    {
        if (ZfsFuse.Unavailable() is string why) Assert.Ignore(why);
        _zfs = ZfsFuse.Start();
        // Reading through the mount must not move the access times being compared.
        Zfs.Run($"zfs set atime=off {Zfs.Pool}");
    }

    [OneTimeTearDown]
    public void StopZfsFuse() => _zfs?.Dispose();

    private ZfsFuse Zfs => _zfs!;

    /// <summary>zfs-fuse's view of a mounted dataset in the form of <see cref="DatasetStreamFixture.Listing"/>.</summary>
    private List<string> FuseListing(string dataset)
    {
        string inside = Zfs.MountOf(dataset);
        // A fresh mount: the kernel's page cache of the FUSE mount keeps a file's old pages across
        // a receive when its size and (whole-second) mtime look unchanged.
        Zfs.Run($"zfs unmount {dataset} && zfs mount {dataset}");
        var hashes = new Dictionary<string, string>();
        foreach (string line in Zfs.Run($"cd '{inside}' && find . -type f -exec sha256sum {{}} +").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            hashes[line[66..][2..]] = line[..64];
        var targets = new Dictionary<string, string>();
        foreach (string line in Zfs.Run($"cd '{inside}' && find . -type l -printf '%P\\t%l\\n'").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            targets[line[..line.IndexOf('\t')]] = line[(line.IndexOf('\t') + 1)..];
        var lines = new List<string>();
        foreach (string line in Zfs.Run($"cd '{inside}' && find . -mindepth 1 -exec stat --printf '%n\\t%F\\t%a\\t%u\\t%g\\t%h\\t%s\\t%.9X\\t%.9Y\\t%.9Z\\n' {{}} +")
                     .Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string path = line[2..line.IndexOf('\t')];
            lines.Add(line[2..] + "\t" + (hashes.GetValueOrDefault(path) ?? targets.GetValueOrDefault(path) ?? ""));
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

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

    [Test]
    public void A_zfs_fuse_filesystem_and_its_changes_arrive_in_our_dataset_intact()
    {
        string fs = $"{Zfs.Pool}/theirs";
        Zfs.Run($"zfs create {fs}");
        string m = Zfs.MountOf(fs);
        Zfs.Run($"cd '{m}' && mkdir -p etc/ssh empty && printf 'Welcome to SmartOS\\n' > etc/motd && chmod 640 etc/motd "
              + "&& ln etc/motd etc/motd.hard && ln -s etc/motd motd && ln -s $(printf 'x%.0s' $(seq 200)) long-link "
              + "&& chown 1001:99 etc/ssh && chmod 1777 etc/ssh && chmod 700 empty "
              + "&& head -c 3000000 /dev/urandom > big.bin && truncate -s 8M sparse.img "
              + "&& printf 'in a hole' | dd of=sparse.img bs=1 seek=3145745 conv=notrunc 2>/dev/null "
              + "&& touch -h -d '2021-03-04 05:06:07.123456789' motd && touch -d '2020-01-02 03:04:05.5' etc/motd");
        Zfs.Run($"zfs snapshot {fs}@a");
        var expectedA = FuseListing(fs);

        using var pool = Create("tank", VdevSpec.Disk("d0"));
        byte[] full = FromFuse($"zfs send {fs}@a");
        Ok(Receive(pool, full, "tank/copy"));
        // The stream's nanoseconds (which zfs-fuse's mount does not show) are kept too.
        Assert.That(SmartOS.Storage.Send.SendStream.Receive(new MemoryStream(full), null, out var decoded, out _), Is.True);
        Assert.That(decoded!.TryReadTree(out var tree, out _), Is.True);
        Ok(Mount(pool, "tank/copy@a", readOnly: true).StatLink("big.bin", out var bigAttributes));
        var sent = tree!.Lookup("big.bin")!.ChangeTime;
        Assert.That(bigAttributes.Ctime, Is.EqualTo(sent.Seconds * 1_000_000_000 + sent.Nanoseconds));
        Assert.That(sent.Nanoseconds, Is.Not.Zero);
        Assert.That(Listing(pool, "tank/copy@a", wholeSeconds: true), Is.EqualTo(expectedA));

        Zfs.Run($"cd '{m}' && printf more >> etc/motd && rm etc/motd.hard && mv etc/ssh ssh && echo new > ssh/new "
              + "&& dd if=/dev/urandom of=big.bin bs=4096 count=1 seek=100 conv=notrunc 2>/dev/null && chmod 755 empty && rm long-link");
        Zfs.Run($"zfs snapshot {fs}@b");
        var expectedB = FuseListing(fs);
        byte[] incremental = FromFuse($"zfs send -i a {fs}@b");
        Ok(Receive(pool, incremental, "tank/copy"));

        Assert.That(Listing(pool, "tank/copy@b", wholeSeconds: true), Is.EqualTo(expectedB));
        Assert.That(Listing(pool, "tank/copy@a", wholeSeconds: true), Is.EqualTo(expectedA), "the base snapshot is untouched");
        Assert.That(incremental.Length, Is.LessThan(1_000_000), "only the changes travel");
    }

    [Test]
    public void Our_dataset_and_its_changes_arrive_in_zfs_fuse_intact()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@a"));
        string fs = $"{Zfs.Pool}/ours";
        ToFuse(Send(pool, "tank/src@a"), fs);
        Assert.That(FuseListing(fs), Is.EqualTo(Listing(pool, "tank/src@a", wholeSeconds: true)));

        var zpl = Mount(pool, "tank/src");
        Ok(zpl.Lookup("big.bin", out long big));
        Ok(zpl.Write(big, 400_000, Bytes(5000, 3)));
        Ok(zpl.Unlink("etc/motd.hard"));
        Ok(zpl.Rename("etc/ssh", "ssh"));
        Write(zpl, "ssh/new", "fresh\n"u8.ToArray());
        Ok(zpl.ChangeOwner("empty", 4, 5));
        Ok(pool.Datasets.Snapshot("tank/src@b"));
        ToFuse(Send(pool, "tank/src@b", "@a"), fs);

        Assert.That(FuseListing(fs), Is.EqualTo(Listing(pool, "tank/src@b", wholeSeconds: true)));
        Assert.That(Zfs.Run($"zfs list -H -o name -t snapshot -r {fs}").Split('\n', StringSplitOptions.RemoveEmptyEntries),
            Is.EqualTo(new[] { $"{fs}@a", $"{fs}@b" }));
    }

    [Test]
    public void A_zfs_fuse_stream_for_another_base_is_refused_in_its_words_and_changes_nothing()
    {
        string fs = $"{Zfs.Pool}/other";
        Zfs.Run($"zfs create {fs} && zfs snapshot {fs}@a && touch '{Zfs.MountOf(fs)}/f' && zfs snapshot {fs}@b && touch '{Zfs.MountOf(fs)}/g' && zfs snapshot {fs}@c");
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(Receive(pool, FromFuse($"zfs send {fs}@a"), "tank/copy"));
        var before = All(pool);

        Assert.That(Receive(pool, FromFuse($"zfs send -i b {fs}@c"), "tank/copy").Message,
            Is.EqualTo("cannot receive incremental stream: most recent snapshot of tank/copy does not\nmatch incremental source"));
        Assert.That(All(pool), Is.EqualTo(before));
    }

    [Test]
    public void Intermediate_snapshots_travel_both_ways()
    {
        string fs = $"{Zfs.Pool}/inter";
        string m = Zfs.MountOf(fs);
        Zfs.Run($"zfs create {fs} && zfs create {fs}/child && echo a > '{m}/a' && zfs snapshot -r {fs}@a && echo b > '{m}/b' && zfs snapshot -r {fs}@b "
              + $"&& rm '{m}/a' && zfs snapshot -r {fs}@c");
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(Receive(pool, FromFuse($"zfs send {fs}@a"), "tank/copy"));
        Ok(pool.Datasets.Receive(new MemoryStream(FromFuse($"zfs send -I a {fs}@c")), "tank/copy", new ReceiveOptions(), out var summary));
        Assert.That(summary!.Verbose, Has.Count.EqualTo(2));
        Assert.That(All(pool), Does.Contain("tank/copy@b").And.Contains("tank/copy@c"));
        Assert.That(Mount(pool, "tank/copy@b", readOnly: true).Lookup("a", out _).IsOk, Is.True);
        Assert.That(Mount(pool, "tank/copy@c", readOnly: true).Lookup("a", out _).IsOk, Is.False);
        Assert.That(Mount(pool, "tank/copy@c", readOnly: true).Lookup("b", out _).IsOk, Is.True);

        // Back again: ours -I from @a into a zfs-fuse copy that has only @a.
        string back = $"{Zfs.Pool}/back";
        ToFuse(Send(pool, "tank/copy@a"), back);
        var stream = new MemoryStream();
        Ok(pool.Datasets.Send("tank/copy@c", new SendOptions { From = "@a", Intermediates = true }, stream));
        ToFuse(stream.ToArray(), back);
        Assert.That(Zfs.Run($"zfs list -H -o name -t snapshot -r {back}").Split('\n', StringSplitOptions.RemoveEmptyEntries),
            Is.EqualTo(new[] { $"{back}@a", $"{back}@b", $"{back}@c" }));
        Assert.That(FuseListing(back), Is.EqualTo(Listing(pool, "tank/copy@c", wholeSeconds: true)));
    }

    [Test]
    public void A_zfs_fuse_replication_stream_arrives_as_the_same_tree_with_its_properties()
    {
        string fs = $"{Zfs.Pool}/rtree";
        string m = Zfs.MountOf(fs);
        Zfs.Run($"zfs create {fs} && zfs create {fs}/kid && zfs create {fs}/kid/deep && zfs set compression=gzip {fs} && zfs set atime=off {fs}/kid "
              + $"&& zfs set quota=20M {fs}/kid/deep && echo top > '{m}/top' && mkdir '{m}/kid/dir' && head -c 300000 /dev/urandom > '{m}/kid/dir/blob' "
              + $"&& zfs snapshot -r {fs}@a && echo deeper > '{m}/kid/deep/d' && ln -s dir/blob '{m}/kid/link' && rm '{m}/top' && zfs snapshot -r {fs}@b");
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/in", DatasetType.Filesystem));
        Ok(pool.Datasets.Receive(new MemoryStream(FromFuse($"zfs send -R {fs}@b")), "tank/in", new ReceiveOptions { DiscardFirst = true }, out var summary));

        Assert.That(summary!.Filesystems, Is.EqualTo(new[] { "tank/in/rtree", "tank/in/rtree/kid", "tank/in/rtree/kid/deep" }));
        // Deepest first: FuseListing remounts one filesystem, and unmounting a parent unmounts its children.
        // A child's mountpoint directory in its parent is left out: the FUSE mount shows the child's root there.
        foreach (var (rel, child) in new[] { ("/kid/deep", ""), ("/kid", "deep\t"), ("", "kid\t") })
        {
            Assert.That(Listing(pool, $"tank/in/rtree{rel}@b", wholeSeconds: true).Where(l => child == "" || !l.StartsWith(child, StringComparison.Ordinal)),
                Is.EqualTo(FuseListing(fs + rel).Where(l => child == "" || !l.StartsWith(child, StringComparison.Ordinal))), rel);
            Assert.That(All(pool), Does.Contain($"tank/in/rtree{rel}@a"));
            Assert.That(Guid(pool, $"tank/in/rtree{rel}@b"), Is.EqualTo(ulong.Parse(Zfs.Run($"zfs get -Hp -o value guid {fs}{rel}@b").Trim())));
        }
        Assert.That(Prop(pool, "tank/in/rtree", "compression"), Is.EqualTo("gzip"));
        Assert.That(Prop(pool, "tank/in/rtree/kid", "atime"), Is.EqualTo("off"));
        Assert.That(Prop(pool, "tank/in/rtree/kid/deep", "quota"), Is.EqualTo((20 * 1024 * 1024).ToString()));
        Assert.That(Mount(pool, "tank/in/rtree@a", readOnly: true).Lookup("top", out _).IsOk, Is.True);
    }

    [Test]
    public void Our_replication_stream_arrives_in_zfs_fuse_as_the_same_tree_with_its_properties()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src", "compression", "gzip"));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Create("tank/src/kid", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src/kid", "atime", "off"));
        Ok(pool.Datasets.Create("tank/src/kid/deep", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src/kid/deep", "quota", "20M"));
        Write(Mount(pool, "tank/src/kid"), "note", Bytes(50_000, 9));
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@a", recursive: true));
        Write(Mount(pool, "tank/src/kid/deep"), "later", "later\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@b", recursive: true));
        var stream = new MemoryStream();
        Ok(pool.Datasets.Send("tank/src@b", new SendOptions { Replicate = true }, stream));

        string into = $"{Zfs.Pool}/ours-r";
        Zfs.Run($"zfs create {into}");
        ToFuse(stream.ToArray(), $"-d {into}");
        Assert.That(Zfs.Run($"zfs list -H -o name -t all -r {into}").Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
        {
            into, $"{into}/src", $"{into}/src@a", $"{into}/src@b", $"{into}/src/kid", $"{into}/src/kid@a", $"{into}/src/kid@b",
            $"{into}/src/kid/deep", $"{into}/src/kid/deep@a", $"{into}/src/kid/deep@b",
        }));
        // As above: deepest first, and zfs-fuse's mountpoint directories for the children left out.
        foreach (var (rel, child) in new[] { ("src/kid/deep", ""), ("src/kid", "deep\t"), ("src", "kid\t") })
            Assert.That(FuseListing($"{into}/{rel}").Where(l => child == "" || !l.StartsWith(child, StringComparison.Ordinal)),
                Is.EqualTo(Listing(pool, $"tank/{rel}@b", wholeSeconds: true)), rel);
        Assert.That(Zfs.Run($"zfs get -H -o value,source compression {into}/src"), Is.EqualTo("gzip\treceived\n"), "pool version 22's received source");
        Assert.That(Zfs.Run($"zfs get -H -o value,source atime {into}/src/kid"), Is.EqualTo("off\treceived\n"));
        Assert.That(Zfs.Run($"zfs get -Hp -o value quota {into}/src/kid/deep"), Is.EqualTo($"{20 * 1024 * 1024}\n"));
        Assert.That(Zfs.Run($"zfs get -Hp -o value guid {into}/src/kid@a").Trim(), Is.EqualTo(Guid(pool, "tank/src/kid@a").ToString()));
    }

    [Test]
    public void A_large_directory_changed_by_zfs_fuse_arrives_incrementally()
    {
        string fs = $"{Zfs.Pool}/fat";
        string m = Zfs.MountOf(fs);
        string tail = new('z', 54);
        Zfs.Run($"zfs create {fs} && mkdir '{m}/many' && cd '{m}/many' && for i in $(seq 1 600); do echo $i > entry-$i-{tail}; done && zfs snapshot {fs}@a "
              + $"&& echo new > added-one && rm entry-7-{tail} && mv entry-8-{tail} renamed && zfs snapshot {fs}@b");
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(Receive(pool, FromFuse($"zfs send {fs}@a"), "tank/copy"));

        var result = Receive(pool, FromFuse($"zfs send -i a {fs}@b"), "tank/copy");

        Assert.That(result.Message, Is.EqualTo("ok"));
        Assert.That(Listing(pool, "tank/copy@b", wholeSeconds: true), Is.EqualTo(FuseListing(fs)));
    }
}
