namespace SmartOS.Storage.Tests;

/// <summary>
/// ZplFileSystem.cs rule 5 on Pool.cs rule 5: a commit of file-system changes stopped at one of its
/// writes reopens as exactly the tree before it or exactly the tree after it.
/// </summary>
public class ZplCrashTests : PoolFixture
{
    private sealed class SimulatedCrash : Exception;

    /// <summary>Stops after Budget writes; logs what each write overwrote so a run can be undone.</summary>
    private sealed class Plan
    {
        public int Budget = int.MaxValue;
        public int Writes;
        public readonly List<(string Path, long Offset, byte[] Old)> Undo = [];

        public void Restore()
        {
            for (int i = Undo.Count - 1; i >= 0; i--)
            {
                using var io = new FileVdevIo(Undo[i].Path, writable: true);
                io.Write(Undo[i].Offset, Undo[i].Old);
            }
            Undo.Clear();
            Writes = 0;
        }
    }

    private sealed class CrashingIo(string path, IVdevIo inner, Plan plan) : IVdevIo
    {
        public int Read(long offset, Span<byte> destination) => inner.Read(offset, destination);

        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            var old = new byte[source.Length];
            inner.Read(offset, old);
            plan.Undo.Add((path, offset, old));
            if (plan.Writes == plan.Budget) throw new SimulatedCrash();
            plan.Writes++;
            inner.Write(offset, source);
        }

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }

    private static FileSystemOptions FsOptions() => new() { Clock = () => 1, Atime = false };

    private static ZplFileSystem Mount(Pool pool)
    {
        Assert.That(ZplFileSystem.Open(RootSet(pool), FsOptions(), out var fs).Message, Is.EqualTo("ok"));
        return fs!;
    }

    /// <summary>Every path with its type, size, links and a digest of its bytes, in walk order.</summary>
    private static List<string> Tree(ZplFileSystem fs)
    {
        var lines = new List<string>();
        var walked = fs.Walk("/", e =>
        {
            string digest = "";
            if (e.Attributes.Type == FileType.Regular)
            {
                var data = new byte[e.Attributes.Size];
                fs.Read(e.Attributes.Inode, 0, data, out _);
                digest = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data));
            }
            else if (e.Attributes.Type == FileType.Symlink)
            {
                fs.ReadLink(e.Attributes.Inode, out digest);
            }
            lines.Add($"{e.Path} {e.Attributes.Type} {e.Attributes.Size} {e.Attributes.Links} {digest}");
            return true;
        });
        Assert.That(walked.Message, Is.EqualTo("ok"));
        return lines;
    }

    private static void Change(ZplFileSystem fs)
    {
        Assert.That(fs.Rename("/home/user", "/export/user").Message, Is.EqualTo("ok"));
        Assert.That(fs.Lookup("/export/user/big", out long big).Message, Is.EqualTo("ok"));
        Assert.That(fs.Write(big, 100_000, Bytes(50_000, 3)).Message, Is.EqualTo("ok"));
        Assert.That(fs.Truncate(big, 700_000).Message, Is.EqualTo("ok"));
        Assert.That(fs.Unlink("/export/user/small").Message, Is.EqualTo("ok"));
        for (int i = 0; i < 400; i++)   // enough names to double the directory's table
            Assert.That(fs.CreateFile($"/export/user/n{i}", 0x1A4, 0, 0, out _).IsOk, Is.True);
        Assert.That(fs.CreateSymlink("/export/user", "/home/user", 0, 0, out _).Message, Is.EqualTo("ok"));
    }

    [Test]
    public void A_crash_during_a_commit_of_file_changes_opens_at_the_old_or_the_new_tree()
    {
        List<string> before, after;
        using (var pool = Create("tank", VdevSpec.Mirror("d0", "d1")))
        {
            var fs = Mount(pool);
            fs.MakeDirectory("/home", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/home/user", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/export", 0x1ED, 0, 0, out _);
            fs.CreateFile("/home/user/big", 0x1A4, 0, 0, out long big);
            fs.Write(big, 0, Bytes(1_000_000, 1));
            fs.CreateFile("/home/user/small", 0x1A4, 0, 0, out long small);
            fs.Write(small, 0, Bytes(100, 2));
            Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
            before = Tree(fs);
        }
        var plan = new Plan();
        var options = Options(opener: (path, writable) => new CrashingIo(path, FileVdevIo.Opener(path, writable), plan));
        using (var pool = Open("tank", options))
        {
            var fs = Mount(pool);
            Change(fs);
            Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
            after = Tree(fs);
        }
        int total = plan.Writes;
        plan.Restore();
        Assert.That(after, Is.Not.EqualTo(before));

        // Every write of a small commit is too slow for CI here; a spread of them, and the uberblocks.
        var budgets = new SortedSet<int> { 0, 1, total - 4, total - 3, total - 2, total - 1, total };
        for (int k = 1; k < 8; k++) budgets.Add(total * k / 8);
        foreach (int budget in budgets)
        {
            plan.Budget = budget;
            using (var pool = Open("tank", options))
            {
                Change(Mount(pool));
                if (budget < total) Assert.Throws<SimulatedCrash>(() => pool.Commit(), $"write {budget}");
                else Assert.That(pool.Commit().IsOk, Is.True);
            }
            plan.Budget = int.MaxValue;
            using (var reopened = Open("tank"))
            {
                var tree = Tree(Mount(reopened));
                Assert.That(tree.SequenceEqual(before) || tree.SequenceEqual(after), Is.True, $"crash at write {budget} of {total}");
                if (budget == total) Assert.That(tree, Is.EqualTo(after));
                if (budget == 0) Assert.That(tree, Is.EqualTo(before));
                Assert.That(reopened.Scrub().Errors, Is.Zero, $"crash at write {budget}: scrub");
            }
            plan.Restore();
        }
    }

    [Test]
    public void Changes_never_committed_are_gone_after_a_reopen()
    {
        List<string> committed;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            var fs = Mount(pool);
            fs.MakeDirectory("/home", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/home/user", 0x1ED, 0, 0, out _);
            fs.MakeDirectory("/export", 0x1ED, 0, 0, out _);
            fs.CreateFile("/home/user/big", 0x1A4, 0, 0, out long big);
            fs.Write(big, 0, Bytes(1_000_000, 1));
            fs.CreateFile("/home/user/small", 0x1A4, 0, 0, out _);
            pool.Commit();
            committed = Tree(fs);
            Change(fs);
        }
        using var reopened = Open("tank");
        Assert.That(Tree(Mount(reopened)), Is.EqualTo(committed));
    }
}
