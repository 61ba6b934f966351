using System.Buffers.Binary;
using System.Text;
using SmartOS.Storage.Send;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// zfs send -R and the receive of its package (Dsl.SendReplicate.cs) between our pools, the packed
/// XDR nvlist of its header (Send/PackedNvList.cs) against the one zfs-fuse 0.7.0 wrote
/// (Data/zfs-fuse-replicated.zs: `zfs send -R s12p/a@two` of s12p/a, compression=gzip, with
/// s12p/a/b, atime=off and com.example:tag=hello, both with snapshots one and two), and damaged
/// packages refused with nothing changed.
/// </summary>
public class ReplicationStreamTests : DatasetStreamFixture
{
    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(TestContext.CurrentContext.TestDirectory, "Send", "Data", name));

    private static byte[] SendR(Pool pool, string snapshot, string? from = null, bool intermediates = false)
    {
        var output = new MemoryStream();
        Ok(pool.Datasets.Send(snapshot, new SendOptions { From = from, Intermediates = intermediates, Replicate = true }, output));
        return output.ToArray();
    }

    /// <summary>tank/src (compression=gzip, files), tank/src/child (atime=off), tank/src/child/deep, snapshots one and two.</summary>
    private void Tree(Pool pool)
    {
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src", "compression", "gzip"));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Create("tank/src/child", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src/child", "atime", "off"));
        Write(Mount(pool, "tank/src/child"), "note", "child one\n"u8.ToArray());
        Ok(pool.Datasets.Create("tank/src/child/deep", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/src/child/deep", "quota", "10M"));
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@one", recursive: true));
        var child = Mount(pool, "tank/src/child");
        Write(child, "later", Bytes(20_000, 5));
        Write(Mount(pool, "tank/src/child/deep"), "bottom", "deep\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@two", recursive: true));
    }

    private static NvList Header(byte[] stream)
    {
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(stream.AsSpan(16)) & 3, Is.EqualTo(SendFormat.HeaderTypeCompound));
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4));
        Assert.That(NvList.TryUnpackXdr(stream.AsSpan(SendFormat.RecordSize, (int)length), out var header, out string? problem), Is.True, problem);
        return header!;
    }

    [Test]
    public void Zfs_fuses_replication_header_decodes_and_packs_again_to_the_same_bytes()
    {
        byte[] stream = Fixture("zfs-fuse-replicated.zs");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4));
        var header = Header(stream);
        Assert.That(header.TryGet<string>("tosnap", out var tosnap) && tosnap == "two");
        Assert.That(header.Has("fromsnap"), Is.False);
        Assert.That(header.TryGet<NvList>("fss", out var fss), Is.True);
        Assert.That(fss!.Pairs.Select(p => p.Key), Is.EqualTo(new[] { "0x683795a5c12ca9e3", "0x1f741e501c53cf3a" }));
        var a = (NvList)fss.Pairs[0].Value;
        var b = (NvList)fss.Pairs[1].Value;
        Assert.That(a.TryGet<string>("name", out var name) && name == "s12p/a");
        Assert.That(a.TryGetUInt64("parentfromsnap", out ulong top) && top == 0);
        Assert.That(a.TryGet<NvList>("props", out var props) && props!.TryGetUInt64("compression", out ulong gzip) && gzip == 10, "compression=gzip is index 10");
        Assert.That(a.TryGet<NvList>("snaps", out var snaps) && snaps!.TryGetUInt64("two", out ulong two) && two == 5704005344116758267UL);
        Assert.That(b.TryGetUInt64("parentfromsnap", out ulong parent) && parent == 5704005344116758267UL, "a child's parentfromsnap is its parent's tosnap");
        Assert.That(b.TryGet<NvList>("props", out var bprops) && bprops!.TryGet<string>("com.example:tag", out var tag) && tag == "hello");
        Assert.That(bprops!.TryGetUInt64("atime", out ulong atime) && atime == 0);
        Assert.That(header.PackXdr(), Is.EqualTo(stream.AsSpan(SendFormat.RecordSize, (int)length).ToArray()), "our encoder writes zfs-fuse's bytes, sizes included");
    }

    [Test]
    public void A_header_cut_or_altered_anywhere_is_refused_or_read_never_thrown()
    {
        byte[] stream = Fixture("zfs-fuse-replicated.zs");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4));
        byte[] header = stream.AsSpan(SendFormat.RecordSize, (int)length).ToArray();
        for (int cut = 0; cut < header.Length; cut++)
            Assert.That(NvList.TryUnpackXdr(header.AsSpan(0, cut), out _, out string? problem), Is.False, $"cut at {cut}: {problem}");
        for (int at = 0; at < header.Length; at++)
        {
            byte[] altered = (byte[])header.Clone();
            altered[at] ^= 0x81;
            Assert.DoesNotThrow(() => NvList.TryUnpackXdr(altered, out _, out _), $"byte {at}");
        }
        byte[] packed = new NvList().Add("object", 7UL).Add("toname", "a@b").Add("flag", NvList.Flag.Value).PackNative();
        for (int cut = 0; cut < packed.Length; cut++)
            Assert.That(NvList.TryUnpackNative(packed.AsSpan(0, cut), out _, out _), Is.False, $"native cut at {cut}");
        Assert.That(NvList.TryUnpackNative(packed, out var back, out _) && back!.Has("flag") && back.TryGetUInt64("object", out ulong seven) && seven == 7);
    }

    [Test]
    public void Zfs_fuses_replication_stream_is_received_whole_with_its_properties()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/backup", DatasetType.Filesystem));
        Ok(pool.Datasets.Receive(new MemoryStream(Fixture("zfs-fuse-replicated.zs")), "tank/backup", new ReceiveOptions { DiscardFirst = true }, out var summary));
        Assert.That(All(pool).Where(n => n.StartsWith("tank/backup/", StringComparison.Ordinal)), Is.EqualTo(new[]
        {
            "tank/backup/a", "tank/backup/a@one", "tank/backup/a@two", "tank/backup/a/b", "tank/backup/a/b@one", "tank/backup/a/b@two",
        }));
        Assert.That(Guid(pool, "tank/backup/a/b@two"), Is.EqualTo(15704392205402631786UL));
        Assert.That(Prop(pool, "tank/backup/a", "compression"), Is.EqualTo("gzip"));
        Assert.That(Prop(pool, "tank/backup/a/b", "atime"), Is.EqualTo("off"));
        Assert.That(summary!.Warnings, Is.EqualTo(new[] { "cannot receive com.example:tag property on tank/backup/a/b: user properties are not supported here" }));
        var fs = Mount(pool, "tank/backup/a/b@two", readOnly: true);
        Ok(fs.Lookup("g", out long g));
        var data = new byte[4];
        Ok(fs.Read(g, 0, data, out int got));
        Assert.That(Encoding.ASCII.GetString(data, 0, got), Is.EqualTo("two\n"));
        Assert.That(summary.Filesystems, Is.EqualTo(new[] { "tank/backup/a", "tank/backup/a/b" }));
    }

    [Test]
    public void A_tree_travels_with_its_snapshots_properties_and_bytes()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        byte[] stream = SendR(pool, "tank/src@two");
        var header = Header(stream);
        Assert.That(header.TryGet<NvList>("fss", out var fss) && fss!.Pairs.Count == 3);
        var names = fss!.Pairs.Select(p => ((NvList)p.Value).TryGet<string>("name", out var n) ? n : "").ToList();
        Assert.That(names, Is.EqualTo(new[] { "tank/src", "tank/src/child", "tank/src/child/deep" }));

        using var other = Create("backup", VdevSpec.Disk("d1"));
        Ok(other.Datasets.Receive(new MemoryStream(stream), "backup", new ReceiveOptions { DiscardFirst = true }, out var summary));
        foreach (string fs in new[] { "src", "src/child", "src/child/deep" })
            foreach (string snap in new[] { "one", "two" })
            {
                Assert.That(Listing(other, $"backup/{fs}@{snap}"), Is.EqualTo(Listing(pool, $"tank/{fs}@{snap}")), $"{fs}@{snap}");
                Assert.That(Guid(other, $"backup/{fs}@{snap}"), Is.EqualTo(Guid(pool, $"tank/{fs}@{snap}")));
            }
        Assert.That(Prop(other, "backup/src", "compression"), Is.EqualTo("gzip"));
        Assert.That(Prop(other, "backup/src/child", "atime"), Is.EqualTo("off"));
        Assert.That(Prop(other, "backup/src/child/deep", "quota"), Is.EqualTo((10 * 1024 * 1024).ToString()));
        Assert.That(Prop(other, "backup/src/child/deep", "compression"), Is.EqualTo("gzip"), "inherited, not set");
        Ok(other.Datasets.Get("backup/src/child/deep", "compression", out var inherited));
        Assert.That(inherited.Source, Is.EqualTo(PropertySource.Inherited));
        Ok(other.Datasets.Get("backup/src/child", "atime", out var received));
        Assert.That(received.Source, Is.EqualTo(PropertySource.Received));
        Ok(other.Datasets.Set("backup/src/child", "atime", "on"));
        Assert.That(Prop(other, "backup/src/child", "atime"), Is.EqualTo("on"), "a local value overrides the received one");
        Ok(other.Datasets.Inherit("backup/src/child", "atime"));
        Ok(other.Datasets.Get("backup/src/child", "atime", out received));
        Assert.That((received.Value, received.Source), Is.EqualTo(("off", PropertySource.Received)), "zfs inherit brings the received value back");
        var again = new MemoryStream();
        Ok(other.Datasets.Send("backup/src@two", new SendOptions { Replicate = true }, again));
        var resent = (NvList)Header(again.ToArray()).Pairs.First(p => p.Key == "fss").Value;
        Assert.That(((NvList)resent.Pairs[1].Value).TryGet<NvList>("props", out var childProps) && childProps!.TryGetUInt64("atime", out ulong off) && off == 0,
            "received values travel on with -R");
        Assert.That(summary!.Warnings, Is.Empty);

        // Without -d: the tree lands under the named filesystem.
        Ok(other.Datasets.Receive(new MemoryStream(stream), "backup/again", new ReceiveOptions(), out _));
        Assert.That(Listing(other, "backup/again/child/deep@two"), Is.EqualTo(Listing(pool, "tank/src/child/deep@two")));
        // With -e: the sent top's last element and below.
        Ok(other.Datasets.Create("backup/e", DatasetType.Filesystem));
        Ok(other.Datasets.Receive(new MemoryStream(stream), "backup/e", new ReceiveOptions { KeepLast = true }, out _));
        Assert.That(other.Datasets.Exists("backup/e/src/child@one"), Is.True);
    }

    [Test]
    public void An_incremental_package_brings_new_snapshots_and_filesystems_and_with_F_drops_what_the_source_dropped()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        using var other = Create("backup", VdevSpec.Disk("d1"));
        Ok(Receive(other, SendR(pool, "tank/src@one"), "backup/src"));
        Assert.That(other.Datasets.Exists("backup/src/child/deep@two"), Is.False);

        Ok(pool.Datasets.Create("tank/src/new", DatasetType.Filesystem));
        Write(Mount(pool, "tank/src/new"), "n", "new\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@three", recursive: true));
        byte[] incremental = SendR(pool, "tank/src@three", "@one", intermediates: true);
        Assert.That(Header(incremental).TryGet<string>("fromsnap", out var fromsnap) && fromsnap == "one");
        Ok(Receive(other, incremental, "backup/src"));
        Assert.That(Listing(other, "backup/src/child/deep@three"), Is.EqualTo(Listing(pool, "tank/src/child/deep@three")));
        Assert.That(Listing(other, "backup/src/child@two"), Is.EqualTo(Listing(pool, "tank/src/child@two")));
        Assert.That(Listing(other, "backup/src/new@three"), Is.EqualTo(Listing(pool, "tank/src/new@three")), "a filesystem new since @one travels whole");

        // The source drops @two and tank/src/new; -F makes the copy follow.
        Ok(pool.Datasets.Destroy("tank/src@two", DestroyFlags.Recursive));
        Ok(pool.Datasets.Destroy("tank/src/new", DestroyFlags.Recursive));
        Ok(pool.Datasets.Snapshot("tank/src@four", recursive: true));
        byte[] next = SendR(pool, "tank/src@four", "@three");
        Ok(Receive(other, next, "backup/src"));
        Assert.That(other.Datasets.Exists("backup/src@two"), Is.True, "without -F nothing is destroyed");
        Ok(other.Datasets.Destroy("backup/src@four", DestroyFlags.Recursive));
        Ok(Receive(other, next, "backup/src", new ReceiveOptions { Force = true }));
        Assert.That(other.Datasets.Exists("backup/src@two"), Is.False);
        Assert.That(other.Datasets.Exists("backup/src/child@two"), Is.False);
        Assert.That(other.Datasets.Exists("backup/src/new"), Is.False);
        Assert.That(other.Datasets.Exists("backup/src/child/deep@four"), Is.True);
    }

    [Test]
    public void A_package_that_fails_part_way_is_undone()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        using var other = Create("backup", VdevSpec.Disk("d1"));
        Ok(Receive(other, SendR(pool, "tank/src@one"), "backup/src"));
        Write(Mount(other, "backup/src/child/deep"), "local", "changed here\n"u8.ToArray());
        Ok(other.Commit());
        var before = All(other);
        var listing = Listing(other, "backup/src/child");

        var refused = Receive(other, SendR(pool, "tank/src@two", "@one"), "backup/src");
        Assert.That(refused.Message, Is.EqualTo("cannot receive incremental stream: destination backup/src/child/deep has been modified\nsince most recent snapshot"));
        Assert.That(All(other), Is.EqualTo(before), "backup/src@two and backup/src/child@two, received before the refusal, are gone again");
        Assert.That(Listing(other, "backup/src/child"), Is.EqualTo(listing));
    }

    [Test]
    public void A_clone_in_the_tree_is_received_as_a_clone_of_its_received_origin()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        Ok(pool.Datasets.Clone("tank/src/child@one", "tank/src/kid"));
        Write(Mount(pool, "tank/src/kid"), "own", "mine\n"u8.ToArray());
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src/kid@two"));
        byte[] stream = SendR(pool, "tank/src@two");
        using var other = Create("backup", VdevSpec.Disk("d1"));
        Ok(Receive(other, stream, "backup/src"));
        Assert.That(Prop(other, "backup/src/kid", "origin"), Is.EqualTo("backup/src/child@one"));
        Assert.That(Listing(other, "backup/src/kid@two"), Is.EqualTo(Listing(pool, "tank/src/kid@two")));
    }

    [Test]
    public void Damaged_packages_are_refused_with_zfs_words_and_change_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        byte[] stream = SendR(pool, "tank/src@two");
        using var other = Create("backup", VdevSpec.Disk("d1"));
        var before = All(other);

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4));
        byte[] altered = (byte[])stream.Clone();
        altered[SendFormat.RecordSize + (int)length + 8] ^= 0x20;   // the header's END: its checksum no longer matches
        var refused = Receive(other, altered, "backup/x");
        Assert.That(refused.Message, Is.EqualTo("cannot receive: incorrect header checksum"));

        // zfs unpacks the nvlist before it reads END: a damaged one is malformed, whatever the sum says.
        byte[] damaged = (byte[])stream.Clone();
        damaged[SendFormat.RecordSize + 40] ^= 0x20;
        Assert.That(Receive(other, damaged, "backup/x").Message, Is.EqualTo("cannot receive: invalid stream (malformed nvlist)"));

        // A malformed nvlist whose checksum was recomputed: a pair's size field is wrong.
        byte[] malformed = (byte[])stream.Clone();
        BinaryPrimitives.WriteInt32BigEndian(malformed.AsSpan(SendFormat.RecordSize + 12), 999);
        var sum = new StreamChecksumProbe(malformed.AsSpan(0, SendFormat.RecordSize + (int)length));
        sum.WriteTo(malformed.AsSpan(SendFormat.RecordSize + (int)length + 8));
        Assert.That(Receive(other, malformed, "backup/x").Message, Is.EqualTo("cannot receive: invalid stream (malformed nvlist)"));

        // Cut short in the last substream: the filesystems before it are not left behind.
        Assert.That(Receive(other, stream[..^400], "backup/x").Message, Does.StartWith("cannot receive"));
        Assert.That(Receive(other, stream, "backup/x@snap").Message, Is.EqualTo("cannot receive: cannot specify snapshot name for multi-snapshot stream"));
        Assert.That(All(other), Is.EqualTo(before));

        // Targets that exist: refused before the first change.
        Ok(other.Datasets.Create("backup/y", DatasetType.Filesystem));
        Ok(other.Datasets.Create("backup/y/src", DatasetType.Filesystem));
        Ok(other.Datasets.Create("backup/y/src/child", DatasetType.Filesystem));
        Ok(other.Datasets.Snapshot("backup/y/src/child@mine"));
        Assert.That(Receive(other, stream, "backup/y", new ReceiveOptions { DiscardFirst = true }).Message,
            Is.EqualTo("cannot receive new filesystem stream: destination 'backup/y/src' exists\nmust specify -F to overwrite it"));
        var snapshots = Receive(other, stream, "backup/y", new ReceiveOptions { DiscardFirst = true, Force = true });
        Assert.That(snapshots.Message, Is.EqualTo("cannot receive new filesystem stream: destination has snapshots (eg. backup/y/src/child@mine)\nmust destroy them to overwrite it"));
        Assert.That(other.Datasets.Exists("backup/y/src@one"), Is.False, "nothing received before the refusal");
    }

    [Test]
    public void Send_R_refuses_a_tree_where_a_filesystem_lacks_the_snapshot()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Tree(pool);
        Ok(pool.Datasets.Create("tank/src/late", DatasetType.Filesystem));
        var output = new MemoryStream();
        var sent = pool.Datasets.Send("tank/src@two", new SendOptions { Replicate = true }, output);
        Assert.That(sent.Message, Is.EqualTo("cannot send 'tank/src@two': snapshot tank/src/late@two does not exist"));
        Assert.That(output.Length, Is.Zero);
    }

    /// <summary>fletcher-4 of a span, as END carries it.</summary>
    private readonly ref struct StreamChecksumProbe
    {
        private readonly ulong _a, _b, _c, _d;

        public StreamChecksumProbe(ReadOnlySpan<byte> data)
        {
            for (int i = 0; i + 4 <= data.Length; i += 4)
            {
                _a += BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
                _b += _a; _c += _b; _d += _c;
            }
        }

        public void WriteTo(Span<byte> target)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(target, _a);
            BinaryPrimitives.WriteUInt64LittleEndian(target[8..], _b);
            BinaryPrimitives.WriteUInt64LittleEndian(target[16..], _c);
            BinaryPrimitives.WriteUInt64LittleEndian(target[24..], _d);
        }
    }
}
