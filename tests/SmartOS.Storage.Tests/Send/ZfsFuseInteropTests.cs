using System.Text;
using SmartOS.Storage.Send;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// Interoperability with zfs-fuse 0.7.0 (real ZFS, pool version 23, in user space): its streams
/// decode to the files written through its mount, and our streams receive into it with the same
/// tree read back through its mount. One private daemon and pool serve the fixture (see ZfsFuse).
/// </summary>
[TestFixture]
[NonParallelizable]
public class ZfsFuseInteropTests
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

    private string CreateFileSystem(string name, string options = "")
    {
        string dataset = $"{Zfs.Pool}/{name}";
        Zfs.Run($"zfs create {options} {dataset}");
        return dataset;
    }

    private byte[] SendFromZfsFuse(string command)
    {
        string file = Path.Combine(Zfs.Directory, Guid.NewGuid().ToString("N") + ".zs");
        Zfs.Run($"{command} > '{file}'");
        return File.ReadAllBytes(file);
    }

    private static ReceivedSnapshot Decode(byte[] stream, ReceivedSnapshot? baseSnapshot = null)
    {
        bool ok = SendStream.Receive(new MemoryStream(stream), baseSnapshot, out ReceivedSnapshot? snap, out ReceiveError? error);
        Assert.That(ok, Is.True, error?.Message);
        return snap!;
    }

    private static FileTreeImage Tree(ReceivedSnapshot snap)
    {
        Assert.That(snap.TryReadTree(out FileTreeImage? tree, out string? problem), Is.True, problem);
        return tree!;
    }

    [Test]
    public void A_zfs_fuse_stream_decodes_to_every_name_mode_and_byte_written_through_its_mount()
    {
        string fs = CreateFileSystem("fromfuse");
        string mount = Zfs.Outside(Zfs.MountOf(fs));
        var random = new Random(12);
        byte[] big = new byte[5 * 1024 * 1024 + 123];
        random.NextBytes(big);
        Directory.CreateDirectory(Path.Combine(mount, "etc/ssh"));
        File.WriteAllText(Path.Combine(mount, "etc/motd"), "Welcome to SmartOS\n");
        File.WriteAllBytes(Path.Combine(mount, "big.bin"), big);
        using (var sparse = File.Create(Path.Combine(mount, "sparse.img")))
        {
            sparse.SetLength(8 * 1024 * 1024);
            sparse.Position = 3 * 1024 * 1024 + 17;
            sparse.Write("in a hole"u8);
        }
        Zfs.Run($"cd '{Zfs.MountOf(fs)}' && chmod 640 etc/motd && ln -s etc/motd motd && ln etc/motd etc/motd.hard && chown 1001:99 etc/ssh && chmod 1777 etc/ssh");
        var names = new List<string>();
        for (int i = 0; i < 600; i++) names.Add($"entry-{i:D4}-" + new string('z', i % 60));
        Directory.CreateDirectory(Path.Combine(mount, "many"));
        foreach (string n in names) File.WriteAllText(Path.Combine(mount, "many", n), n);
        Zfs.Run($"zfs snapshot {fs}@one");

        FileTreeImage tree = Tree(Decode(SendFromZfsFuse($"zfs send {fs}@one")));

        FileNode sparseNode = tree.Lookup("sparse.img")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(tree.Lookup("etc/motd")!.ReadAll(), Is.EqualTo("Welcome to SmartOS\n"u8.ToArray()));
            Assert.That(tree.Lookup("etc/motd")!.Mode, Is.EqualTo(Convert.ToUInt32("640", 8)));
            Assert.That(tree.Lookup("etc/motd.hard"), Is.SameAs(tree.Lookup("etc/motd")));
            Assert.That(tree.Lookup("motd")!.SymlinkTarget, Is.EqualTo("etc/motd"));
            Assert.That(tree.Lookup("etc/ssh")!.Mode, Is.EqualTo(Convert.ToUInt32("1777", 8)));
            Assert.That((tree.Lookup("etc/ssh")!.Uid, tree.Lookup("etc/ssh")!.Gid), Is.EqualTo((1001u, 99u)));
            Assert.That(tree.Lookup("big.bin")!.ReadAll().AsSpan().SequenceEqual(big), Is.True, "big.bin's 5 MiB");
            Assert.That(sparseNode.Size, Is.EqualTo(8 * 1024 * 1024));
            Assert.That(sparseNode.Extents, Has.Count.EqualTo(1), "only the record written is data; the rest is a hole");
            Assert.That(sparseNode.Read(3 * 1024 * 1024 + 17, 9), Is.EqualTo("in a hole"u8.ToArray()));
            Assert.That(tree.Lookup("many")!.Entries.Keys, Is.EquivalentTo(names), "a fat ZAP directory (600 entries, long names)");
            Assert.That(Encoding.ASCII.GetString(tree.Lookup("many/" + names[599])!.ReadAll()), Is.EqualTo(names[599]));
        }
    }

    [Test]
    public void Our_stream_is_received_by_zfs_fuse_with_the_same_tree_through_its_mount()
    {
        FileTreeImage tree = SendStreamTests.SampleTree(entries: 2500);
        tree.Root.Entries[new string('L', 200)] = FileNode.File("a name too long for a microzap\n"u8.ToArray());
        string file = Path.Combine(Zfs.Directory, "ours.zs");
        using (var output = File.Create(file))
            SendStream.SendFull(tree, "zones/ours@sent", 0x5eed_0000_0000_0001, 1_700_000_000, output);

        Zfs.Run($"zfs receive {Zfs.Pool}/ours < '{file}'");

        string inside = Zfs.MountOf($"{Zfs.Pool}/ours");
        string mount = Zfs.Outside(inside);
        // One find inside the namespace gives type, mode, owner, inode and link count per path.
        var stat = new Dictionary<string, string[]>();
        foreach (string line in Zfs.Run($"cd '{inside}' && find . -mindepth 1 -printf '%P\\t%y\\t%m\\t%U\\t%G\\t%i\\t%n\\t%l\\n'").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split('\t');
            stat[f[0]] = f;
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Zfs.Run($"zfs list -H -o name -t snapshot -r {Zfs.Pool}/ours").Trim(), Is.EqualTo($"{Zfs.Pool}/ours@sent"));
            foreach (var (path, node) in tree.Walk())
            {
                if (path.Length == 0) continue;
                Assert.That(stat.TryGetValue(path, out string[]? f), Is.True, $"{path} is missing");
                if (f is null) continue;
                string type = node.Kind switch { FileKind.Directory => "d", FileKind.Symlink => "l", _ => "f" };
                Assert.That(f[1], Is.EqualTo(type), path);
                if (node.Kind != FileKind.Symlink) Assert.That(Convert.ToUInt32(f[2], 8), Is.EqualTo(node.Mode), path);
                Assert.That((uint.Parse(f[3]), uint.Parse(f[4])), Is.EqualTo((node.Uid, node.Gid)), path);
                if (node.Kind == FileKind.Symlink) Assert.That(f[7], Is.EqualTo(node.SymlinkTarget), path);
                if (node.Kind == FileKind.RegularFile && (node.Size < 1_000_000 || path == "big" || path == "sparse"))
                    Assert.That(File.ReadAllBytes(Path.Combine(mount, path)).AsSpan().SequenceEqual(node.ReadAll()), Is.True, $"{path}: bytes differ");
            }
            Assert.That(stat, Has.Count.EqualTo(tree.Walk().Count() - 1), "nothing more than the tree");
            Assert.That(stat["hardlink"][5], Is.EqualTo(stat["dir/hello.txt"][5]), "a hard link is one inode");
            Assert.That(stat["hardlink"][6], Is.EqualTo("2"));
        }

        // zfs-fuse then changes our fat ZAP directories itself (insert into a leaf's free chunks,
        // remove, rename) and sends the result back: its ZAP code accepted our layout.
        Zfs.Run($"cd '{inside}' && echo added > many/zz-added && rm many/f00007 && mv many/f00008 many/renamed-{new string('r', 60)} && echo top > '{new string('L', 200)}2'");
        Zfs.Run($"zfs snapshot {Zfs.Pool}/ours@changed");
        FileTreeImage back = Tree(Decode(SendFromZfsFuse($"zfs send {Zfs.Pool}/ours@changed")));
        FileNode many = back.Lookup("many")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(many.Entries, Has.Count.EqualTo(2500));
            Assert.That(many.Entries.ContainsKey("f00007"), Is.False);
            Assert.That(many.Entries["zz-added"].ReadAll(), Is.EqualTo("added\n"u8.ToArray()));
            Assert.That(many.Entries[$"renamed-{new string('r', 60)}"].ReadAll(), Is.EqualTo("8\n"u8.ToArray()));
            Assert.That(back.Lookup(new string('L', 200) + "2")!.ReadAll(), Is.EqualTo("top\n"u8.ToArray()));
            Assert.That(back.Lookup("big")!.ReadAll().AsSpan().SequenceEqual(tree.Lookup("big")!.ReadAll()), Is.True);
        }
    }

    [Test]
    public void Our_incremental_stream_is_received_by_zfs_fuse_onto_our_full_stream()
    {
        var root = FileNode.Directory();
        root.Entries["keep"] = FileNode.File("unchanged\n"u8.ToArray());
        root.Entries["grow"] = FileNode.File("small\n"u8.ToArray());
        root.Entries["gone"] = FileNode.File("bye\n"u8.ToArray());
        byte[] big = new byte[1024 * 1024];
        new Random(5).NextBytes(big);
        root.Entries["big"] = FileNode.File(big);
        var sub = FileNode.Directory();
        root.Entries["old"] = sub;
        var first = new FileTreeImage(root);
        ObjectSetImage a = ZplCodec.Encode(first);
        string fullFile = Path.Combine(Zfs.Directory, "ours-full.zs"), incrFile = Path.Combine(Zfs.Directory, "ours-incr.zs");
        using (var f = File.Create(fullFile)) SendStream.SendObjects(a, "zones/inc@a", 1001, 1_700_000_000, f);

        // The second snapshot shares the nodes (and so the object numbers) of the first.
        byte[] grown = Encoding.ASCII.GetBytes(new string('g', 3000));
        var second = new FileTreeImage(root);
        root.Entries.Remove("gone");
        root.Entries["grow"] = new FileNode(FileKind.RegularFile) { Id = root.Entries["grow"].Id, Mode = 0x1A4, Size = grown.Length };
        root.Entries["grow"].Extents.Add(new FileExtent(0, grown));
        root.Entries.Remove("old");
        root.Entries["new"] = sub;
        root.Entries["added"] = FileNode.File("hi\n"u8.ToArray());
        byte[] big2 = (byte[])big.Clone();
        big2[700_000] ^= 0xff;
        root.Entries["big"] = new FileNode(FileKind.RegularFile) { Id = root.Entries["big"].Id, Mode = 0x1A4, Size = big2.Length };
        root.Entries["big"].Extents.Add(new FileExtent(0, big2));
        ObjectSetImage b = ZplCodec.Encode(second);
        var incremental = new MemoryStream();
        SendStream.SendIncremental(a, b, 1001, "zones/inc@b", 1002, 1_700_000_100, incremental);
        File.WriteAllBytes(incrFile, incremental.ToArray());

        string dataset = $"{Zfs.Pool}/inc";
        Zfs.Run($"zfs receive {dataset} < '{fullFile}'");
        Zfs.Run($"zfs receive -F {dataset} < '{incrFile}'");

        string mount = Zfs.Outside(Zfs.MountOf(dataset));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Zfs.Run($"zfs list -H -o name -t snapshot -r {dataset}").Split('\n', StringSplitOptions.RemoveEmptyEntries),
                Is.EqualTo(new[] { $"{dataset}@a", $"{dataset}@b" }));
            Assert.That(Directory.GetFileSystemEntries(mount).Select(Path.GetFileName), Is.EquivalentTo(new[] { "keep", "grow", "big", "new", "added" }));
            Assert.That(File.ReadAllText(Path.Combine(mount, "keep")), Is.EqualTo("unchanged\n"));
            Assert.That(File.ReadAllBytes(Path.Combine(mount, "grow")).AsSpan().SequenceEqual(grown), Is.True, "grow: a 512-byte block grown to 3000 bytes");
            Assert.That(File.ReadAllBytes(Path.Combine(mount, "big")).AsSpan().SequenceEqual(big2), Is.True, "big: one changed block");
            Assert.That(File.ReadAllText(Path.Combine(mount, "added")), Is.EqualTo("hi\n"));
            Assert.That(Directory.Exists(Path.Combine(mount, "new")), Is.True);
            Assert.That(incremental.Length, Is.LessThan(big.Length / 2), "the incremental stream carries the changed block, not the file");
        }
    }

    [Test]
    public void A_zfs_fuse_incremental_stream_decodes_as_the_changes_made()
    {
        string fs = CreateFileSystem("incr");
        string mount = Zfs.Outside(Zfs.MountOf(fs));
        File.WriteAllText(Path.Combine(mount, "keep"), "same\n");
        File.WriteAllText(Path.Combine(mount, "grow"), "short\n");
        File.WriteAllText(Path.Combine(mount, "gone"), "bye\n");
        Directory.CreateDirectory(Path.Combine(mount, "old"));
        Zfs.Run($"zfs snapshot {fs}@a");
        File.AppendAllText(Path.Combine(mount, "grow"), "and longer\n");
        File.Delete(Path.Combine(mount, "gone"));
        Directory.Move(Path.Combine(mount, "old"), Path.Combine(mount, "new"));
        File.WriteAllText(Path.Combine(mount, "added"), "hi\n");
        Zfs.Run($"zfs snapshot {fs}@b");

        ReceivedSnapshot a = Decode(SendFromZfsFuse($"zfs send {fs}@a"));
        ReceivedSnapshot b = Decode(SendFromZfsFuse($"zfs send -i a {fs}@b"), a);
        var changes = FileTreeDiff.Compare(Tree(a), Tree(b)).Select(c => c.ToString()).ToList();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(changes, Does.Contain("M\tgrow"));
            Assert.That(changes, Does.Contain("-\tgone"));
            Assert.That(changes, Does.Contain("R\told -> new"));
            Assert.That(changes, Does.Contain("+\tadded"));
            Assert.That(changes, Has.None.EndsWith("\tkeep"));
            Assert.That(Tree(b).Lookup("grow")!.ReadAll(), Is.EqualTo("short\nand longer\n"u8.ToArray()));
        }
    }

    [Test]
    public void A_zfs_fuse_replication_stream_reads_as_a_compound_stream_of_checked_substreams()
    {
        string fs = CreateFileSystem("repl");
        CreateFileSystem("repl/child");
        File.WriteAllText(Path.Combine(Zfs.Outside(Zfs.MountOf(fs)), "f"), "replicated\n");
        Zfs.Run($"zfs snapshot -r {fs}@r");
        var reader = new SendStreamReader(new MemoryStream(SendFromZfsFuse($"zfs send -R {fs}@r")));
        var begins = new List<BeginRecord>();
        int ends = 0;
        while (reader.TryRead(out SendRecord? record))
        {
            if (record is BeginRecord b) begins.Add(b);
            if (record is EndRecord) ends++;
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.Error, Is.Null);
            Assert.That(begins[0].HeaderType, Is.EqualTo(SendFormat.HeaderTypeCompound));
            Assert.That(begins[0].Payload, Is.Not.Empty, "the outer BEGIN carries the packed nvlist of the datasets");
            Assert.That(begins.Skip(1).Select(b => b.ToName), Is.EquivalentTo(new[] { $"{fs}@r", $"{fs}/child@r" }));
            Assert.That(ends, Is.EqualTo(begins.Count + 1), "one END per substream and the closing one");
        }
    }

    [TestCase("cut")]
    [TestCase("flip")]
    [TestCase("magic")]
    public void A_damaged_stream_gets_the_same_words_from_zfs_fuse_and_from_us(string damage)
    {
        FileTreeImage tree = new(FileNode.Directory());
        tree.Root.Entries["file"] = FileNode.File(Encoding.ASCII.GetBytes(new string('d', 4000)));
        var stream = new MemoryStream();
        SendStream.SendFull(tree, "zones/bad@s", 99, 1_700_000_000, stream);
        byte[] bytes = stream.ToArray();
        int at = bytes.AsSpan().IndexOf("dddd"u8);
        bytes = damage switch
        {
            "cut" => bytes[..(bytes.Length - 400)],
            "flip" => Flip(bytes, at + 100),
            _ => Flip(bytes, 8),
        };
        string file = Path.Combine(Zfs.Directory, $"bad-{damage}.zs");
        File.WriteAllBytes(file, bytes);

        var (status, _, error) = Zfs.RunAllowingFailure($"zfs receive {Zfs.Pool}/bad{damage} < '{file}'");
        bool ok = SendStream.Receive(new MemoryStream(bytes), null, out _, out ReceiveError? ours);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(status, Is.Not.Zero);
            Assert.That(ok, Is.False);
            Assert.That(ours!.Message, Is.EqualTo(error.Trim()));
            Assert.That(Zfs.RunAllowingFailure($"zfs list {Zfs.Pool}/bad{damage}").Status, Is.Not.Zero, "nothing half-created");
        }
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        bytes[at] ^= 0x10;
        return bytes;
    }
}
