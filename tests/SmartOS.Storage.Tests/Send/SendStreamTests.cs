using System.Text;
using SmartOS.Storage.Send;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// The send-stream codec against streams that zfs-fuse 0.7.0 wrote (Data/small-a.zs: a full stream
/// of tp/small@a; Data/small-a-b.zs: the incremental stream from @a to @b), and against damaged
/// copies of them. The tree below is what was written through zfs-fuse's mount before @a:
///   dir/hello.txt "hello, zfs\n" (touch -d with .123456789 seconds), hardlink → the same file,
///   dir/sub (uid 1000, gid 50), link → dir/hello.txt, longlink → 80 'x' (too long for the bonus),
///   five: 5000 'a', mode 4750, sparse: 40000 bytes with "tail" at 20000 (recordsize 4k).
/// Between @a and @b: "more\n" appended to five, link removed, dir/sub renamed dir/sub2, newfile added.
/// </summary>
public class SendStreamTests
{
    private static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(TestContext.CurrentContext.TestDirectory, "Send", "Data", name));

    private static ReceivedSnapshot ReceiveOk(byte[] stream, ReceivedSnapshot? baseSnapshot = null)
    {
        bool ok = SendStream.Receive(new MemoryStream(stream), baseSnapshot, out ReceivedSnapshot? snapshot, out ReceiveError? error);
        Assert.That(ok, Is.True, error?.Message);
        return snapshot!;
    }

    private static FileTreeImage Tree(ReceivedSnapshot snapshot)
    {
        Assert.That(snapshot.TryReadTree(out FileTreeImage? tree, out string? problem), Is.True, problem);
        return tree!;
    }

    private static ReceiveError Refusal(byte[] stream)
    {
        bool ok = SendStream.Receive(new MemoryStream(stream), null, out _, out ReceiveError? error);
        Assert.That(ok, Is.False);
        return error!;
    }

    [Test]
    public void Zfs_fuse_full_stream_decodes_to_the_tree_written_through_its_mount()
    {
        ReceivedSnapshot snap = ReceiveOk(Fixture("small-a.zs"));
        FileTreeImage tree = Tree(snap);
        FileNode hello = tree.Lookup("dir/hello.txt")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(snap.Name, Is.EqualTo("tp/small@a"));
            Assert.That(snap.FromGuid, Is.Zero);
            Assert.That(tree.Root.Entries.Keys, Is.EqualTo(new[] { "dir", "five", "hardlink", "link", "longlink", "sparse" }));
            Assert.That(Encoding.ASCII.GetString(hello.ReadAll()), Is.EqualTo("hello, zfs\n"));
            Assert.That(hello.Mode, Is.EqualTo(Convert.ToUInt32("644", 8)));
            // zfs-fuse 0.7.0 keeps whole seconds from a FUSE setattr: the nanoseconds touch gave are gone.
            Assert.That(hello.ModifyTime, Is.EqualTo(new FileTime(new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.Zero).ToUnixTimeSeconds(), 0)));
            Assert.That(tree.Lookup("hardlink"), Is.SameAs(hello), "a hard link is the same node under two names");
            Assert.That(tree.Lookup("dir/sub")!.Kind, Is.EqualTo(FileKind.Directory));
            Assert.That(tree.Lookup("dir/sub")!.Uid, Is.EqualTo(1000));
            Assert.That(tree.Lookup("dir/sub")!.Gid, Is.EqualTo(50));
            Assert.That(tree.Lookup("link")!.SymlinkTarget, Is.EqualTo("dir/hello.txt"));
            Assert.That(tree.Lookup("longlink")!.SymlinkTarget, Is.EqualTo(new string('x', 80)));
            Assert.That(tree.Lookup("five")!.Mode, Is.EqualTo(Convert.ToUInt32("4750", 8)));
            Assert.That(tree.Lookup("five")!.ReadAll(), Is.EqualTo(Enumerable.Repeat((byte)'a', 5000).ToArray()));
        }
    }

    [Test]
    public void A_sparse_file_from_zfs_fuse_keeps_its_hole_as_no_extent()
    {
        FileNode sparse = Tree(ReceiveOk(Fixture("small-a.zs"))).Lookup("sparse")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sparse.Size, Is.EqualTo(40000));
            Assert.That(sparse.Extents, Has.Count.EqualTo(1), "only the 4k record holding 'tail' is data");
            Assert.That(sparse.Extents[0].Offset, Is.EqualTo(16384));
            Assert.That(Encoding.ASCII.GetString(sparse.Read(20000, 4)), Is.EqualTo("tail"));
            Assert.That(sparse.Read(0, 16384), Is.All.Zero);
        }
    }

    [Test]
    public void Zfs_fuse_incremental_stream_decodes_as_the_changes_made_between_the_snapshots()
    {
        ReceivedSnapshot a = ReceiveOk(Fixture("small-a.zs"));
        ReceivedSnapshot b = ReceiveOk(Fixture("small-a-b.zs"), a);
        FileTreeImage before = Tree(a), after = Tree(b);
        var changes = FileTreeDiff.Compare(before, after).Select(c => c.ToString()).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.FromGuid, Is.EqualTo(a.Guid));
            Assert.That(changes, Does.Contain("M\tfive"));
            Assert.That(changes, Does.Contain("-\tlink"));
            Assert.That(changes, Does.Contain("R\tdir/sub -> dir/sub2"));
            Assert.That(changes, Does.Contain("+\tnewfile"));
            Assert.That(changes, Does.Not.Contain("M\tsparse"));
            Assert.That(Encoding.ASCII.GetString(after.Lookup("five")!.Read(4995, 10)), Is.EqualTo("aaaaamore\n"));
            Assert.That(before.Lookup("link"), Is.Not.Null, "the base snapshot is not changed by receiving onto it");
        }
    }

    [Test]
    public void An_incremental_stream_onto_the_wrong_base_is_refused()
    {
        ReceivedSnapshot a = ReceiveOk(Fixture("small-a.zs"));
        bool ok = SendStream.Receive(new MemoryStream(Fixture("small-a-b.zs")), a with { Guid = a.Guid + 1 }, out _, out ReceiveError? error);
        Assert.That(ok, Is.False);
        Assert.That(error!.Message, Is.EqualTo("cannot receive incremental stream: most recent snapshot does not match incremental source"));
    }

    [Test]
    public void Re_encoding_zfs_fuse_objects_gives_back_its_stream_checksum()
    {
        // Writing back the records read from zfs-fuse's stream gives its bytes exactly: every field
        // at its offset, and END's fletcher-4 as zfs-fuse computed it.
        byte[] original = Fixture("small-a.zs");
        var records = new List<SendRecord>();
        var reader = new SendStreamReader(new MemoryStream(original));
        while (reader.TryRead(out SendRecord? r)) records.Add(r);
        Assert.That(reader.Error, Is.Null);
        var copy = new MemoryStream();
        var writer = new SendStreamWriter(copy);
        foreach (SendRecord r in records) writer.Write(r);
        Assert.That(copy.ToArray(), Is.EqualTo(original), "every record re-encodes to zfs-fuse's bytes, END's checksum included");
    }

    [Test]
    public void Running_checksum_in_pieces_equals_fletcher4_of_the_whole()
    {
        byte[] data = new byte[4096 + 312];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + (i >> 8));
        var sum = new StreamChecksum();
        sum.Add(data.AsSpan(0, 312));
        sum.Add(data.AsSpan(312, 8));
        sum.Add(data.AsSpan(320));
        Assert.That(sum.Value, Is.EqualTo(Checksum.Fletcher4(data)));
    }

    [Test]
    public void A_tree_round_trips_through_our_stream()
    {
        FileTreeImage tree = SampleTree(entries: 10);
        var stream = new MemoryStream();
        SendStream.SendFull(tree, "zones/test@now", 0x1234, 1_700_000_000, stream);
        FileTreeImage back = Tree(ReceiveOk(stream.ToArray()));
        AssertSameTree(back, tree);
    }

    [Test]
    public void Our_incremental_stream_received_onto_our_full_stream_gives_the_later_tree()
    {
        FileTreeImage tree = SampleTree(entries: 5);
        ObjectSetImage a = ZplCodec.Encode(tree);
        var full = new MemoryStream();
        SendStream.SendObjects(a, "zones/t@a", 1, 1_700_000_000, full);
        tree.Root.Entries.Remove("link");
        tree.Root.Entries["many"].Entries["f00003"] = FileNode.File("changed\n"u8.ToArray());
        tree.Root.Entries["added"] = FileNode.Symlink("many");
        ObjectSetImage b = ZplCodec.Encode(tree, new ZplCodec.EncodeOptions(Generation: 2));
        var incremental = new MemoryStream();
        SendStream.SendIncremental(a, b, 1, "zones/t@b", 2, 1_700_000_001, incremental);

        ReceivedSnapshot first = ReceiveOk(full.ToArray());
        ReceivedSnapshot second = ReceiveOk(incremental.ToArray(), first);
        AssertSameTree(Tree(second), tree);
        var changes = FileTreeDiff.Compare(Tree(first), Tree(second)).Select(c => c.ToString()).ToList();
        Assert.That(changes, Is.SupersetOf(new[] { "-\tlink", "+\tadded", "-\tmany/f00003", "+\tmany/f00003" }), "numbers freed and reused are told apart by generation");
        Assert.That(changes, Has.None.EqualTo("M\tbig"));
    }

    [Test]
    public void A_large_directory_or_a_long_name_is_written_as_a_fat_zap_and_read_back()
    {
        FileTreeImage tree = SampleTree(entries: 3000);
        tree.Root.Entries[new string('n', 120)] = FileNode.File("long name"u8.ToArray());
        ObjectSetImage objects = ZplCodec.Encode(tree);
        Assert.That(objects.Objects[ZplCodec.RootObject].BlockSize, Is.EqualTo(Zap.FatBlockSize));
        var stream = new MemoryStream();
        SendStream.SendObjects(objects, "zones/test@now", 7, 1_700_000_000, stream);
        AssertSameTree(Tree(ReceiveOk(stream.ToArray())), tree);
    }

    [Test]
    public void Fat_zap_hash_is_crc64_of_the_name_seeded_with_the_salt()
    {
        // One byte: crc = (salt >> 8) ^ table[(salt ^ 'a') & 0xff], top 28 bits kept.
        ulong table = 0x61;
        for (int j = 0; j < 8; j++) table = (table >> 1) ^ (0 - (table & 1) & 0xC96C5795D7870F42);
        Assert.That(Zap.Hash("a", 0), Is.EqualTo(table & 0xFFFFFFF000000000));
    }

    // ---- bad input: each is refused with zfs receive's words (as zfs-fuse printed them) ----

    [Test]
    public void A_stream_cut_short_is_an_invalid_backup_stream()
    {
        byte[] full = Fixture("small-a.zs");
        Assert.That(Refusal(full[..(full.Length / 2)]).Message, Is.EqualTo("cannot receive new filesystem stream: invalid backup stream"));
        Assert.That(Refusal(full[..(full.Length - 1)]).Kind, Is.EqualTo(ReceiveErrorKind.InvalidStream));
    }

    [Test]
    public void A_stream_cut_inside_its_begin_record_fails_to_read()
    {
        Assert.That(Refusal(Fixture("small-a.zs")[..200]).Message, Is.EqualTo("cannot receive: failed to read from stream"));
        Assert.That(Refusal([]).Message, Is.EqualTo("cannot receive: failed to read from stream"));
    }

    [Test]
    public void A_flipped_bit_in_file_data_is_a_checksum_mismatch()
    {
        byte[] damaged = Fixture("small-a.zs");
        int at = IndexOf(damaged, "hello, zfs"u8);
        damaged[at] ^= 0x01;
        ReceiveError error = Refusal(damaged);
        Assert.That(error.Message, Is.EqualTo("cannot receive new filesystem stream: invalid stream (checksum mismatch)"));
        Assert.That(error.Kind, Is.EqualTo(ReceiveErrorKind.ChecksumMismatch));
    }

    [Test]
    public void A_wrong_magic_number_is_refused_before_anything_else()
    {
        byte[] damaged = Fixture("small-a.zs");
        damaged[8] = 0;
        Assert.That(Refusal(damaged).Message, Is.EqualTo("cannot receive: invalid stream (bad magic number)"));
    }

    [Test]
    public void A_stream_from_a_big_endian_host_is_refused_as_such()
    {
        byte[] swapped = Fixture("small-a.zs")[..SendFormat.RecordSize];
        Array.Reverse(swapped, 0, 4);  // drr_type
        Array.Reverse(swapped, 8, 8);  // drr_magic
        ReceiveError error = Refusal(swapped);
        Assert.That(error.Kind, Is.EqualTo(ReceiveErrorKind.UnsupportedFeature));
        Assert.That(error.Message, Does.StartWith("cannot receive: stream is from a big-endian host"));
    }

    [Test]
    public void An_unknown_record_type_is_an_invalid_backup_stream()
    {
        byte[] damaged = Fixture("small-a.zs");
        damaged[SendFormat.RecordSize] = 9; // the record after BEGIN
        Assert.That(Refusal(damaged).Message, Is.EqualTo("cannot receive new filesystem stream: invalid backup stream"));
    }

    [Test]
    public void A_stream_with_unknown_feature_flags_is_refused()
    {
        byte[] damaged = Fixture("small-a.zs");
        damaged[16] |= 1 << 4; // drr_versioninfo bit 4: feature flag 0x4 (features start at bit 2)
        Assert.That(Refusal(damaged).Message, Is.EqualTo("cannot receive: stream has unsupported feature, feature flags = 4"));
    }

    [Test]
    public void An_object_record_with_an_impossible_block_size_is_an_invalid_backup_stream()
    {
        var stream = new MemoryStream();
        var writer = new SendStreamWriter(stream);
        writer.Write(new BeginRecord(SendFormat.HeaderTypeSubstream, 0, SendFormat.ObjsetTypeZfs, 0, 1, 0, "p/f@s", []));
        writer.Write(new ObjectRecord(5, DmuObjectType.PlainFileContents, DmuObjectType.Znode, 1000, new byte[264], 0, 0, 1));
        writer.WriteEnd(1);
        Assert.That(Refusal(stream.ToArray()).Message, Is.EqualTo("cannot receive new filesystem stream: invalid backup stream"));
    }

    [Test]
    public void A_write_to_an_object_the_stream_never_created_is_an_invalid_backup_stream()
    {
        var stream = new MemoryStream();
        var writer = new SendStreamWriter(stream);
        writer.Write(new BeginRecord(SendFormat.HeaderTypeSubstream, 0, SendFormat.ObjsetTypeZfs, 0, 1, 0, "p/f@s", []));
        writer.Write(new WriteRecord(42, DmuObjectType.PlainFileContents, 0, new byte[512], 1, 7, 0, default, 0));
        writer.WriteEnd(1);
        ReceiveError error = Refusal(stream.ToArray());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error.Message, Is.EqualTo("cannot receive new filesystem stream: invalid backup stream"));
            Assert.That(error.Detail, Is.EqualTo("write to missing object 42"));
        }
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);

    internal static FileTreeImage SampleTree(int entries)
    {
        var root = FileNode.Directory();
        var dir = FileNode.Directory(0x1E8);
        dir.Uid = 1000; dir.Gid = 100;
        root.Entries["dir"] = dir;
        FileNode hello = FileNode.File("hello from SmartOS\n"u8.ToArray(), 0x180);
        hello.ModifyTime = new FileTime(1_600_000_000, 42);
        dir.Entries["hello.txt"] = hello;
        root.Entries["hardlink"] = hello;
        root.Entries["link"] = FileNode.Symlink("dir/hello.txt");
        root.Entries["longlink"] = FileNode.Symlink(new string('y', 100));
        byte[] big = new byte[3 * 1024 * 1024 + 1000];
        for (int i = 0; i < big.Length; i++) big[i] = (byte)(i * 31 + (i >> 12));
        root.Entries["big"] = FileNode.File(big);
        var sparse = new FileNode(FileKind.RegularFile) { Mode = 0x1A4, Size = 1024 * 1024 };
        sparse.Extents.Add(new FileExtent(512 * 1024, "in the middle"u8.ToArray()));
        root.Entries["sparse"] = sparse;
        root.Entries["empty"] = FileNode.File([]);
        var many = FileNode.Directory();
        for (int i = 0; i < entries; i++) many.Entries[$"f{i:D5}"] = FileNode.File(Encoding.ASCII.GetBytes($"{i}\n"));
        root.Entries["many"] = many;
        return new FileTreeImage(root);
    }

    internal static void AssertSameTree(FileTreeImage actual, FileTreeImage expected)
    {
        var got = actual.Walk().ToDictionary(p => p.Path, p => p.Node);
        using (Assert.EnterMultipleScope())
        {
            foreach (var (path, node) in expected.Walk())
            {
                Assert.That(got.TryGetValue(path, out FileNode? other), Is.True, path);
                if (other is null) continue;
                Assert.That(other.Kind, Is.EqualTo(node.Kind), path);
                Assert.That(other.Mode, Is.EqualTo(node.Mode), path);
                Assert.That((other.Uid, other.Gid), Is.EqualTo((node.Uid, node.Gid)), path);
                Assert.That(other.ModifyTime, Is.EqualTo(node.ModifyTime), path);
                Assert.That(other.SymlinkTarget, Is.EqualTo(node.SymlinkTarget), path);
                // SequenceEqual, not Is.EqualTo: NUnit compares arrays element by element, boxed (seconds for 3 MiB).
                if (node.Kind == FileKind.RegularFile) Assert.That(other.ReadAll().AsSpan().SequenceEqual(node.ReadAll()), Is.True, $"{path}: bytes differ");
            }
            Assert.That(got, Has.Count.EqualTo(expected.Walk().Count()));
        }
    }
}
