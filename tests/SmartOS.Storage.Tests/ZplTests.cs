namespace SmartOS.Storage.Tests;

/// <summary>The file layer (ZplFileSystem.cs) on the pool-wide object set: names, data, holes, errors, persistence.</summary>
public class ZplTests : PoolFixture
{
    private long _fsNow;

    private FileSystemOptions FsOptions(bool readOnly = false, bool atime = true) =>
        new() { Clock = () => _fsNow += 1000, ReadOnly = readOnly, Atime = atime };

    private ZplFileSystem Mount(Pool pool, bool readOnly = false, bool atime = true)
    {
        var result = ZplFileSystem.Open(RootSet(pool), FsOptions(readOnly, atime), out var fs);
        Assert.That(result.Message, Is.EqualTo("ok"));
        return fs!;
    }

    private static long NewFile(ZplFileSystem fs, string path, byte[]? content = null)
    {
        Assert.That(fs.CreateFile(path, 0x1A4, 100, 10, out long inode).Message, Is.EqualTo("ok"));
        if (content is not null) Assert.That(fs.Write(inode, 0, content).Message, Is.EqualTo("ok"));
        return inode;
    }

    private static byte[] Contents(ZplFileSystem fs, string path)
    {
        Assert.That(fs.Stat(path, out var attributes).Message, Is.EqualTo("ok"));
        var data = new byte[attributes.Size];
        Assert.That(fs.Read(attributes.Inode, 0, data, out int n).Message, Is.EqualTo("ok"));
        Assert.That(n, Is.EqualTo(data.Length));
        return data;
    }

    private static List<string> Names(ZplFileSystem fs, string path)
    {
        var entries = new List<DirectoryEntry>();
        Assert.That(fs.ReadDirectory(path, entries).Message, Is.EqualTo("ok"));
        return entries.ConvertAll(e => e.Name);
    }

    private static StorageStatus Status(StorageResult result) => result.Status;

    [Test]
    public void A_formatted_file_system_has_an_empty_root_listing_dot_and_dot_dot()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        Assert.That(fs.Stat("/", out var root).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(root.Type, Is.EqualTo(FileType.Directory));
            Assert.That(root.FullMode, Is.EqualTo(0x41EDu));   // drwxr-xr-x
            Assert.That(root.Links, Is.EqualTo(2));
            Assert.That(root.Size, Is.EqualTo(2));
            Assert.That(Names(fs, "/"), Is.EqualTo(new[] { ".", ".." }));
            Assert.That(Status(ZplFileSystem.Format(RootSet(pool), 0)), Is.EqualTo(StorageStatus.Exists));
        }
    }

    [Test]
    public void Files_directories_and_symlinks_survive_commit_and_reimport()
    {
        var data = Bytes(300_000, 7);
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1")))
        {
            var fs = Mount(pool);
            Assert.That(fs.MakeDirectory("/etc", 0x1ED, 0, 3, out _).Message, Is.EqualTo("ok"));
            NewFile(fs, "/etc/motd", data);
            Assert.That(fs.CreateSymlink("etc/motd", "/motd", 0, 0, out _).Message, Is.EqualTo("ok"));
            Assert.That(fs.Link("/etc/motd", "/etc/motd.bak").Message, Is.EqualTo("ok"));
            Assert.That(pool.Export().Message, Is.EqualTo("ok"));
        }
        using var reopened = Open("tank");
        var again = Mount(reopened);
        Assert.That(again.StatLink("/motd", out var link).Message, Is.EqualTo("ok"));
        Assert.That(again.ReadLink("/motd", out string target).Message, Is.EqualTo("ok"));
        Assert.That(again.Stat("/etc/motd.bak", out var file).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Contents(again, "/motd"), Is.EqualTo(data));
            Assert.That(target, Is.EqualTo("etc/motd"));
            Assert.That(link.Type, Is.EqualTo(FileType.Symlink));
            Assert.That(link.Size, Is.EqualTo(8));
            Assert.That(file.Links, Is.EqualTo(2));
            Assert.That(file.Uid, Is.EqualTo(100u));
            Assert.That(file.Gid, Is.EqualTo(10u));
            Assert.That(file.FullMode, Is.EqualTo(0x81A4u));   // -rw-r--r--
            Assert.That(Names(again, "/etc"), Is.EquivalentTo(new[] { ".", "..", "motd", "motd.bak" }));
            Assert.That(again.StatFs().Files, Is.EqualTo(4));
            Assert.That(reopened.Scrub().Errors, Is.Zero);
        }
    }

    [Test]
    public void Writing_past_the_end_leaves_a_hole_that_reads_zeros_and_holds_no_blocks()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/sparse");
        var tail = Bytes(1000, 3);
        Assert.That(fs.Write(inode, 100L << 20, tail).Message, Is.EqualTo("ok"));
        pool.Commit();
        var extents = new List<DataExtent>();
        Assert.That(fs.GetExtents(inode, extents).Message, Is.EqualTo("ok"));
        Assert.That(fs.SpaceUsed(inode, out long used).Message, Is.EqualTo("ok"));
        var middle = new byte[4096];
        Assert.That(fs.Read(inode, 50L << 20, middle, out int n).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(extents, Is.EqualTo(new[] { new DataExtent(100L << 20, 1000) }));
            Assert.That(used, Is.LessThan(128 * 1024), "a 1 KiB data block and one indirect block, not 100 MiB");
            Assert.That(n, Is.EqualTo(4096));
            Assert.That(middle, Is.All.Zero);
            Assert.That(RootSet(pool).Locate(inode, 10L << 20, out var bp).IsOk && bp.IsHole, Is.True);
        }
    }

    [Test]
    public void Truncating_frees_the_blocks_past_the_new_end_and_a_regrown_file_reads_zeros_there()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        var data = Bytes(1 << 20, 4);
        long inode = NewFile(fs, "/big", data);
        pool.Commit();
        long before = pool.Allocated;
        Assert.That(fs.Truncate(inode, 200_000).Message, Is.EqualTo("ok"));
        Assert.That(fs.Truncate(inode, 1 << 20).Message, Is.EqualTo("ok"));
        var expected = new byte[1 << 20];
        data.AsSpan(0, 200_000).CopyTo(expected);
        Assert.That(Contents(fs, "/big"), Is.EqualTo(expected), "before commit");
        pool.Commit();
        pool.Commit();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Contents(fs, "/big"), Is.EqualTo(expected), "after commit");
            Assert.That(pool.Allocated, Is.LessThan(before - 600_000));
            Assert.That(pool.Scrub().Errors, Is.Zero);
        }
    }

    [Test]
    public void Punching_a_hole_zeroes_the_range_frees_its_whole_blocks_and_keeps_the_size()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        var data = Bytes(1 << 20, 5);
        long inode = NewFile(fs, "/f", data);
        pool.Commit();
        Assert.That(fs.FreeRange(inode, 100_000, 500_000).Message, Is.EqualTo("ok"));
        pool.Commit();
        var expected = (byte[])data.Clone();
        expected.AsSpan(100_000, 500_000).Clear();
        var extents = new List<DataExtent>();
        fs.GetExtents(inode, extents);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Contents(fs, "/f"), Is.EqualTo(expected));
            Assert.That(extents, Is.EqualTo(new[] { new DataExtent(0, 131_072), new DataExtent(524_288, 524_288) }));
        }
    }

    [Test]
    public void Lookups_follow_symlinks_and_report_loops_missing_names_and_non_directories()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        fs.MakeDirectory("/a", 0x1ED, 0, 0, out _);
        fs.MakeDirectory("/a/b", 0x1ED, 0, 0, out long b);
        NewFile(fs, "/a/b/file");
        fs.CreateSymlink("/a/b", "/abs", 0, 0, out _);
        fs.CreateSymlink("b/../b", "/a/rel", 0, 0, out _);
        fs.CreateSymlink("loop2", "/loop1", 0, 0, out _);
        fs.CreateSymlink("loop1", "/loop2", 0, 0, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fs.Lookup("/abs", out long viaAbs).IsOk && viaAbs == b, Is.True);
            Assert.That(fs.Lookup("a/rel/", out long viaRel).IsOk && viaRel == b, Is.True);
            Assert.That(fs.Lookup("/abs/file/../..//b/./file", out _).Status, Is.EqualTo(StorageStatus.NotDirectory));
            Assert.That(fs.Lookup("/abs/../../a/b/file", out _).IsOk, Is.True);
            Assert.That(fs.Lookup("/../../a", out _).IsOk, Is.True, "the root's .. is the root");
            Assert.That(Status(fs.Lookup("/loop1", out _)), Is.EqualTo(StorageStatus.SymlinkLoop));
            Assert.That(Status(fs.Lookup("/loop1", out _, follow: false)), Is.EqualTo(StorageStatus.Ok));
            Assert.That(Status(fs.Lookup("/a/missing/x", out _)), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(fs.Lookup(b, "file", out long inDirectory).IsOk && fs.Lookup("/a/b/file", out long viaPath).IsOk && inDirectory == viaPath, Is.True);
            Assert.That(fs.Lookup(b, "..", out long up).IsOk && fs.Lookup("/a", out long a).IsOk && up == a, Is.True);
            Assert.That(Status(fs.Lookup(b, "x/y", out _)), Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(Status(fs.Lookup(b, "nope", out _)), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(Status(fs.Lookup("/a/b/file/", out _)), Is.EqualTo(StorageStatus.NotDirectory));
            Assert.That(Status(fs.Lookup("/" + new string('n', 256), out _)), Is.EqualTo(StorageStatus.NameTooLong));
            Assert.That(Status(fs.Lookup("/" + string.Join('/', Enumerable.Repeat("a", 600)), out _)), Is.EqualTo(StorageStatus.NameTooLong));
        }
    }

    [Test]
    public void A_chain_of_forty_symlinks_resolves_and_forty_one_is_a_loop()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long target = NewFile(fs, "/l0");
        for (int i = 1; i <= 41; i++) fs.CreateSymlink($"l{i - 1}", $"/l{i}", 0, 0, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fs.Lookup("/l40", out long found).IsOk && found == target, Is.True);
            Assert.That(Status(fs.Lookup("/l41", out _)), Is.EqualTo(StorageStatus.SymlinkLoop));
        }
    }

    [Test]
    public void Create_unlink_and_rmdir_refuse_as_illumos_does_and_change_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        fs.MakeDirectory("/d", 0x1ED, 0, 0, out _);
        NewFile(fs, "/d/f");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Status(fs.CreateFile("/d/f", 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.Exists));
            Assert.That(Status(fs.MakeDirectory("/d", 0x1ED, 0, 0, out _)), Is.EqualTo(StorageStatus.Exists));
            Assert.That(Status(fs.CreateFile("/nope/f", 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(Status(fs.CreateFile("/d/f/g", 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.NotDirectory));
            Assert.That(Status(fs.Unlink("/d")), Is.EqualTo(StorageStatus.NotPermitted));
            Assert.That(Status(fs.Unlink("/d/nope")), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(Status(fs.RemoveDirectory("/d")), Is.EqualTo(StorageStatus.NotEmpty));
            Assert.That(Status(fs.RemoveDirectory("/d/f")), Is.EqualTo(StorageStatus.NotDirectory));
            Assert.That(Status(fs.RemoveDirectory("/")), Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(Status(fs.Link("/d", "/d2")), Is.EqualTo(StorageStatus.NotPermitted));
            Assert.That(Status(fs.ReadLink("/d/f", out _)), Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(Status(fs.Write(fs.Lookup("/d", out long d).IsOk ? d : 0, 0, new byte[1])), Is.EqualTo(StorageStatus.IsDirectory));
            Assert.That(Names(fs, "/d"), Is.EquivalentTo(new[] { ".", "..", "f" }));
        }
        Assert.That(fs.Unlink("/d/f").Message, Is.EqualTo("ok"));
        Assert.That(fs.RemoveDirectory("/d").Message, Is.EqualTo("ok"));
        Assert.That(fs.Stat("/", out var root).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(root.Links, Is.EqualTo(2));
            Assert.That(root.Size, Is.EqualTo(2));
            Assert.That(fs.StatFs().Files, Is.EqualTo(1));
        }
    }

    [Test]
    public void Unlinking_the_last_name_frees_the_file_and_its_blocks()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/f", Bytes(1 << 20, 6));
        fs.Link("/f", "/g");
        pool.Commit();
        long before = pool.Allocated;
        Assert.That(fs.Unlink("/f").Message, Is.EqualTo("ok"));
        Assert.That(fs.Stat("/g", out var g).Message, Is.EqualTo("ok"));
        Assert.That(g.Links, Is.EqualTo(1));
        Assert.That(fs.Unlink("/g").Message, Is.EqualTo("ok"));
        pool.Commit();
        pool.Commit();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(RootSet(pool).Exists(inode), Is.False);
            Assert.That(Status(fs.GetAttributes(inode, out _)), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(pool.Allocated, Is.LessThan(before - (1 << 20)));
        }
    }

    [Test]
    public void Rename_replaces_files_moves_directories_and_refuses_a_move_into_itself()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        fs.MakeDirectory("/src", 0x1ED, 0, 0, out long src);
        fs.MakeDirectory("/src/sub", 0x1ED, 0, 0, out _);
        fs.MakeDirectory("/dst", 0x1ED, 0, 0, out long dst);
        fs.MakeDirectory("/full", 0x1ED, 0, 0, out _);
        NewFile(fs, "/full/x");
        long a = NewFile(fs, "/a", [1]);
        long b = NewFile(fs, "/b", [2]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Status(fs.Rename("/src", "/src/sub/inner")), Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(Status(fs.Rename("/src", "/src")), Is.EqualTo(StorageStatus.Ok));
            Assert.That(Status(fs.Rename("/src", "/a")), Is.EqualTo(StorageStatus.NotDirectory));
            Assert.That(Status(fs.Rename("/a", "/dst")), Is.EqualTo(StorageStatus.IsDirectory));
            Assert.That(Status(fs.Rename("/src", "/full")), Is.EqualTo(StorageStatus.NotEmpty));
            Assert.That(Status(fs.Rename("/missing", "/z")), Is.EqualTo(StorageStatus.NoSuchObject));
            Assert.That(Status(fs.Rename("/src/..", "/z")), Is.EqualTo(StorageStatus.InvalidArgument));
        }
        Assert.That(fs.Rename("/a", "/b").Message, Is.EqualTo("ok"));
        Assert.That(fs.Rename("/src", "/dst").Message, Is.EqualTo("ok"), "over an empty directory");
        Assert.That(fs.Rename("/dst", "/full/moved").Message, Is.EqualTo("ok"));
        Assert.That(fs.Stat("/full", out var full).Message, Is.EqualTo("ok"));
        Assert.That(fs.Stat("/", out var root).Message, Is.EqualTo("ok"));
        Assert.That(fs.Lookup("/full/moved/sub/..", out long viaDotDot).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Contents(fs, "/b"), Is.EqualTo(new byte[] { 1 }));
            Assert.That(fs.GetAttributes(b, out _).Status, Is.EqualTo(StorageStatus.NoSuchObject), "the replaced file is freed");
            Assert.That(fs.GetAttributes(dst, out _).Status, Is.EqualTo(StorageStatus.NoSuchObject), "the replaced directory is freed");
            Assert.That(fs.Lookup("/full/moved", out long moved).IsOk && moved == src, Is.True);
            Assert.That(viaDotDot, Is.EqualTo(src));
            Assert.That(Names(fs, "/"), Is.EquivalentTo(new[] { ".", "..", "full", "b" }));
            Assert.That(full.Links, Is.EqualTo(3), ". , its name in / and moved/..");
            Assert.That(root.Links, Is.EqualTo(3));
            Assert.That(fs.StatFs().Files, Is.EqualTo(6));
            Assert.That(a, Is.Not.EqualTo(b));
        }
    }

    [Test]
    public void Modes_owners_and_times_change_as_chmod_chown_and_utimes_say()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/f");
        fs.GetAttributes(inode, out var created);
        Assert.That(fs.ChangeMode("/f", 0xFFF).Message, Is.EqualTo("ok"));
        Assert.That(fs.ChangeOwner("/f", 7, uint.MaxValue).Message, Is.EqualTo("ok"));
        Assert.That(fs.SetTimes("/f", 111, 222).Message, Is.EqualTo("ok"));
        fs.GetAttributes(inode, out var changed);
        fs.Write(inode, 0, [1, 2, 3]);
        fs.GetAttributes(inode, out var written);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(created.Atime, Is.EqualTo(created.Crtime));
            Assert.That(changed.Mode, Is.EqualTo(0xFFFu));
            Assert.That(changed.Uid, Is.EqualTo(7u));
            Assert.That(changed.Gid, Is.EqualTo(10u));
            Assert.That(changed.Atime, Is.EqualTo(111));
            Assert.That(changed.Mtime, Is.EqualTo(222));
            Assert.That(changed.Ctime, Is.GreaterThan(created.Ctime));
            Assert.That(changed.Crtime, Is.EqualTo(created.Crtime));
            Assert.That(written.Mtime, Is.GreaterThan(changed.Ctime));
            Assert.That(written.Size, Is.EqualTo(3));
            Assert.That(Status(fs.ChangeMode("/f", 0x10000)), Is.EqualTo(StorageStatus.InvalidArgument));
        }
    }

    [TestCase(true)]
    [TestCase(false)]
    public void A_read_updates_atime_only_when_atime_is_on(bool atime)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/f", [1, 2, 3]);
        pool.Commit();
        var mounted = Mount(pool, atime: atime);
        mounted.GetAttributes(inode, out var before);
        mounted.Read(inode, 0, new byte[3], out _);
        mounted.GetAttributes(inode, out var after);
        Assert.That(after.Atime > before.Atime, Is.EqualTo(atime));
    }

    [Test]
    public void A_read_only_mount_refuses_every_change_with_erofs_and_reads()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/f", [1, 2, 3]);
        pool.Commit();
        var ro = Mount(pool, readOnly: true);
        long txg = pool.Txg;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Status(ro.CreateFile("/g", 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.MakeDirectory("/g", 0x1ED, 0, 0, out _)), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.Write(inode, 0, [9])), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.Truncate(inode, 0)), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.Unlink("/f")), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.Rename("/f", "/g")), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.ChangeMode("/f", 0)), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Status(ro.SetTimes("/f", 0, 0)), Is.EqualTo(StorageStatus.ReadOnly));
            Assert.That(Contents(ro, "/f"), Is.EqualTo(new byte[] { 1, 2, 3 }));
            Assert.That(pool.Commit().IsOk && pool.Txg == txg, Is.True, "nothing to commit: no atime update either");
        }
    }

    [Test]
    public void A_directory_of_100000_names_looks_up_lists_in_a_stable_order_and_persists()
    {
        const int Count = 100_000;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            var fs = Mount(pool);
            fs.MakeDirectory("/many", 0x1ED, 0, 0, out _);
            long inode = NewFile(fs, "/many/f0");
            for (int i = 1; i < Count; i++)
                Assert.That(fs.Link("/many/f0", "/many/f" + i).IsOk, Is.True);
            Assert.That(pool.Export().Message, Is.EqualTo("ok"));
        }
        using var reopened = Open("tank");
        var again = Mount(reopened, atime: false);
        var first = Names(again, "/many");
        Assert.That(again.Unlink("/many/f500").Message, Is.EqualTo("ok"));
        Assert.That(again.Stat("/many/f99999", out var file).Message, Is.EqualTo("ok"));
        // A listing continued from a cookie after a change misses nothing before or after it.
        var part = new List<DirectoryEntry>();
        Assert.That(again.Lookup("/many", out long dir).Message, Is.EqualTo("ok"));
        again.ReadDirectory(dir, 0, part, 1000);
        again.CreateFile("/many/new", 0x1A4, 0, 0, out _);
        var rest = new List<DirectoryEntry>();
        again.ReadDirectory(dir, part[^1].Next, rest);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(first, Has.Count.EqualTo(Count + 2));
            Assert.That(new HashSet<string>(first), Has.Count.EqualTo(Count + 2));
            Assert.That(file.Links, Is.EqualTo(Count - 1));
            Assert.That(part.ConvertAll(e => e.Name), Is.EqualTo(first.GetRange(0, 1000)));
            Assert.That(rest.Exists(e => e.Name == "new"), Is.True);
            Assert.That(part.Count + rest.Count, Is.EqualTo(Count + 2));
        }
    }

    [Test]
    public void A_listing_continued_after_the_directory_doubled_misses_and_repeats_no_name()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        fs.MakeDirectory("/d", 0x1ED, 0, 0, out long dir);
        for (int i = 0; i < 300; i++) NewFile(fs, $"/d/old{i}");
        var head = new List<DirectoryEntry>();
        fs.ReadDirectory(dir, 0, head, 100);
        for (int i = 0; i < 3000; i++) NewFile(fs, $"/d/new{i}");
        var rest = new List<DirectoryEntry>();
        fs.ReadDirectory(dir, head[^1].Next, rest);
        var seen = new HashSet<string>(head.ConvertAll(e => e.Name));
        var later = rest.ConvertAll(e => e.Name);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(later.Exists(seen.Contains), Is.False, "no name twice");
            for (int i = 0; i < 300; i++)
                Assert.That(seen.Contains($"old{i}") || later.Contains($"old{i}"), Is.True, $"old{i}");
            Assert.That(head.Count + rest.Count, Is.LessThanOrEqualTo(3302));
        }
    }

    [Test]
    public void Names_are_utf8_bytes_up_to_255_and_a_moved_directory_keeps_its_parent_after_reimport()
    {
        string longest = new('x', 255), accented = "caf\u00e9-\u65e5\u672c";
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            var fs = Mount(pool);
            NewFile(fs, "/" + longest);
            NewFile(fs, "/" + accented);
            Assert.That(Status(fs.CreateFile("/" + new string('\u00e9', 128), 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.NameTooLong), "256 bytes");
            Assert.That(Status(fs.CreateFile("/a\0b", 0x1A4, 0, 0, out _)), Is.EqualTo(StorageStatus.InvalidArgument));
            fs.MakeDirectory("/p", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/q", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/p/child", 0x1ED, 0, 0, out _);
            Assert.That(fs.Rename("/p/child", "/q/child").Message, Is.EqualTo("ok"));
            Assert.That(pool.Export().Message, Is.EqualTo("ok"));
        }
        using var reopened = Open("tank");
        var again = Mount(reopened);
        Assert.That(again.Lookup("/q/child/..", out long parent).Message, Is.EqualTo("ok"));
        Assert.That(again.Lookup("/q", out long q).Message, Is.EqualTo("ok"));
        again.Stat("/p", out var p);
        again.Stat("/q", out var qAttributes);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(parent, Is.EqualTo(q));
            Assert.That(p.Links, Is.EqualTo(2));
            Assert.That(qAttributes.Links, Is.EqualTo(3));
            Assert.That(Names(again, "/"), Does.Contain(longest).And.Contain(accented));
        }
    }

    [Test]
    public void Walk_visits_every_path_and_enumeration_every_inode_with_its_attributes()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        fs.MakeDirectory("/a", 0x1ED, 0, 0, out _);
        fs.MakeDirectory("/a/b", 0x1ED, 0, 0, out _);
        NewFile(fs, "/a/b/c", [1]);
        fs.Link("/a/b/c", "/a/c2");
        fs.CreateSymlink("a", "/s", 0, 0, out _);
        var paths = new List<string>();
        Assert.That(fs.Walk("/", e => { paths.Add(e.Path); return true; }).Message, Is.EqualTo("ok"));
        var inodes = new List<FileType>();
        Assert.That(fs.EnumerateInodes(a => { inodes.Add(a.Type); return true; }).Message, Is.EqualTo("ok"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(paths, Is.EquivalentTo(new[] { "/", "/a", "/a/b", "/a/b/c", "/a/c2", "/s" }));
            Assert.That(paths.IndexOf("/a/b/c"), Is.GreaterThan(paths.IndexOf("/a/b")));
            Assert.That(inodes, Is.EqualTo(new[] { FileType.Directory, FileType.Directory, FileType.Directory, FileType.Regular, FileType.Symlink }));
        }
    }

    [Test]
    public void Reading_and_writing_file_data_allocates_nothing_in_steady_state()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var fs = Mount(pool);
        long inode = NewFile(fs, "/f", Bytes(1 << 20, 8));
        pool.Commit();
        var buffer = new byte[64 * 1024];
        var chunk = Bytes(64 * 1024, 9);
        for (int i = 0; i < 16; i++) { fs.Write(inode, i * chunk.Length, chunk); fs.Read(inode, i * buffer.Length, buffer, out _); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) { fs.Write(inode, i * chunk.Length, chunk); fs.Read(inode, i * buffer.Length, buffer, out _); }
        long writes = GC.GetAllocatedBytesForCurrentThread() - before;
        pool.Commit();
        for (int i = 0; i < 16; i++) fs.Read(inode, i * buffer.Length, buffer, out _);
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) fs.Read(inode, i * buffer.Length, buffer, out _);
        long reads = GC.GetAllocatedBytesForCurrentThread() - before;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(writes, Is.Zero);
            Assert.That(reads, Is.Zero);
        }
    }

    [Test]
    public void A_created_filesystem_has_its_file_system_a_clone_shares_it_and_a_volume_has_none()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Assert.That(pool.Datasets.Create("tank/fs", DatasetType.Filesystem).Message, Is.EqualTo("ok"));
        Assert.That(pool.Datasets.Open("tank/fs", out var set).Message, Is.EqualTo("ok"));
        Assert.That(ZplFileSystem.Open(set, FsOptions(), out var fs).Message, Is.EqualTo("ok"));
        Assert.That(Names(fs!, "/"), Is.EqualTo(new[] { ".", ".." }));
        NewFile(fs!, "/kept", [1, 2, 3]);
        Assert.That(pool.Datasets.Snapshot("tank/fs@a").Message, Is.EqualTo("ok"));
        Assert.That(pool.Datasets.Clone("tank/fs@a", "tank/copy").Message, Is.EqualTo("ok"));
        Assert.That(pool.Datasets.Open("tank/copy", out var copy).Message, Is.EqualTo("ok"));
        Assert.That(ZplFileSystem.Open(copy, FsOptions(), out var cloned).Message, Is.EqualTo("ok"));
        Assert.That(Names(cloned!, "/"), Is.EqualTo(new[] { ".", "..", "kept" }));
        var volume = new Dictionary<string, string> { ["volsize"] = "1M" };
        Assert.That(pool.Datasets.Create("tank/vol", DatasetType.Volume, volume).Message, Is.EqualTo("ok"));
        Assert.That(pool.Datasets.Open("tank/vol", out var raw).Message, Is.EqualTo("ok"));
        Assert.That(Status(ZplFileSystem.Open(raw, FsOptions(), out _)), Is.EqualTo(StorageStatus.InvalidArgument));
    }

    [Test]
    public void Open_refuses_an_object_set_without_a_file_system()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        NewObject(pool, [1, 2, 3]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Status(ZplFileSystem.Open(pool.Objects, FsOptions(), out _)), Is.EqualTo(StorageStatus.InvalidArgument));
            Assert.That(Status(ZplFileSystem.Format(pool.Objects, 0)), Is.EqualTo(StorageStatus.Exists));
        }
    }
}
