namespace SmartOS.Storage.Tests;

/// <summary>
/// Crash safety (Pool.cs rule 5): a txg is stopped at every one of its writes, cleanly or with the
/// write torn in half, and the pool must reopen at the previous txg or the new one, with exactly that
/// txg's content. Its writes are its commit's and the whole blocks its object writes placed at once
/// (Pool.cs rule 12), so the crash may come inside a write as well as inside the commit. Each run's writes are undone from a log afterwards, so every run starts from the
/// same committed state without copying the files.
/// </summary>
public class CrashTests : DatasetFixture
{
    private sealed class SimulatedCrash : Exception;

    /// <summary>Shared by every leaf of one pool: the write budget, and the undo log.</summary>
    private sealed class CrashPlan
    {
        public int Budget = int.MaxValue;
        public bool Tear;
        public int Writes;
        public readonly List<(string Path, long Offset, byte[] Old)> Undo = [];

        public void Restore()
        {
            for (int i = Undo.Count - 1; i >= 0; i--)
            {
                var (path, offset, old) = Undo[i];
                using var io = new FileVdevIo(path, writable: true);
                io.Write(offset, old);
            }
            Undo.Clear();
            Writes = 0;
        }
    }

    private sealed class CrashingIo(string path, IVdevIo inner, CrashPlan plan) : IVdevIo
    {
        public int Read(long offset, Span<byte> destination) => inner.Read(offset, destination);

        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            var old = new byte[source.Length];
            int n = inner.Read(offset, old);
            Assert.That(n, Is.EqualTo(old.Length));
            plan.Undo.Add((path, offset, old));
            if (plan.Writes == plan.Budget)
            {
                if (plan.Tear) inner.Write(offset, source[..(source.Length / 2)]);
                throw new SimulatedCrash();
            }
            plan.Writes++;
            inner.Write(offset, source);
        }

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }

    private static readonly byte[] s_kept = Bytes(150_000, 1);
    private static readonly byte[] s_oldChanged = Bytes(300_000, 2);
    private static readonly byte[] s_oldDeleted = Bytes(5000, 3);
    private static readonly byte[] s_newChanged = Bytes(200_000, 4);
    private static readonly byte[] s_added = Bytes(140_000, 5);

    // The MOS's object ids of the three objects made before the crash (the dataset directory is the first object).
    private long _kept, _changed, _deleted;

    private void MakeObjects(Pool pool)
    {
        _kept = NewObject(pool, s_kept); _changed = NewObject(pool, s_oldChanged); _deleted = NewObject(pool, s_oldDeleted);
    }

    /// <summary>The change a crashed commit carries: overwrite part of one object, delete one, add one.</summary>
    private void ApplyChange(Pool pool)
    {
        Assert.That(pool.Objects.Write(_changed, 50_000, s_newChanged).IsOk, Is.True);
        Assert.That(pool.Objects.Delete(_deleted).IsOk, Is.True);
        Assert.That(NewObject(pool, s_added), Is.EqualTo(_deleted + 1));
    }

    private void AssertOldState(Pool pool, long txg)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Txg, Is.EqualTo(txg));
            Assert.That(ReadAll(pool, _kept), Is.EqualTo(s_kept));
            Assert.That(ReadAll(pool, _changed), Is.EqualTo(s_oldChanged));
            Assert.That(ReadAll(pool, _deleted), Is.EqualTo(s_oldDeleted));
            Assert.That(pool.Objects.Exists(_deleted + 1), Is.False);
        }
    }

    private void AssertNewState(Pool pool, long txg)
    {
        var changed = (byte[])s_oldChanged.Clone();
        s_newChanged.CopyTo(changed, 50_000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Txg, Is.EqualTo(txg + 1));
            Assert.That(ReadAll(pool, _kept), Is.EqualTo(s_kept));
            Assert.That(ReadAll(pool, _changed), Is.EqualTo(changed));
            Assert.That(pool.Objects.Exists(_deleted), Is.False);
            Assert.That(ReadAll(pool, _deleted + 1), Is.EqualTo(s_added));
        }
    }

    /// <summary>Pool.Admin.cs rule A3: an attach stopped at any write (its resilver, its labels, its
    /// commit) opens as the disk it was or the mirror it became, with every byte.</summary>
    [TestCase(false)]
    [TestCase(true)]
    public void A_crash_at_any_write_of_an_attach_opens_the_old_or_the_new_tree_with_every_byte(bool tear)
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            _kept = NewObject(pool, s_kept); _changed = NewObject(pool, s_oldChanged);
            Assert.That(pool.Commit().IsOk, Is.True);
        }
        string d1 = Path.Combine(Dir, "d1");
        using (var fs = new FileStream(d1, FileMode.CreateNew)) fs.SetLength(VdevSize);
        var plan = new CrashPlan();
        VdevOpener opener = (path, writable) => new CrashingIo(path, FileVdevIo.Opener(path, writable), plan);
        var options = Options(opener: opener);
        using (var pool = Open("tank", options))
            Assert.That(pool.Attach("d0", d1, 4242, opener).IsOk, Is.True);
        int total = plan.Writes;
        plan.Restore();
        var seen = new HashSet<int>();
        for (int budget = 0; budget < total; budget++)
        {
            plan.Budget = budget; plan.Tear = tear;
            using (var pool = Open("tank", options))
                Assert.Throws<SimulatedCrash>(() => pool.Attach("d0", d1, 4242, opener), $"write {budget}");
            plan.Budget = int.MaxValue;
            using (var pool = Open("tank"))
            {
                int leaves = pool.Vdevs[0].Leaves.Count;
                seen.Add(leaves);
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(pool.Vdevs[0].Kind, Is.EqualTo(leaves == 1 ? VdevKind.Disk : VdevKind.Mirror), $"write {budget}");
                    Assert.That(ReadAll(pool, _kept), Is.EqualTo(s_kept), $"write {budget}");
                    Assert.That(ReadAll(pool, _changed), Is.EqualTo(s_oldChanged), $"write {budget}");
                    Assert.That(pool.Vdevs[0].Leaves.Sum(l => l.ChecksumErrors + l.ReadErrors), Is.Zero, $"write {budget}");
                }
            }
            plan.Restore();
        }
        Assert.That(seen, Is.EquivalentTo(new[] { 1, 2 }), "crashes before and after the commit");
    }

    [TestCase(VdevKind.Disk, false)]
    [TestCase(VdevKind.Disk, true)]
    [TestCase(VdevKind.Mirror, false)]
    [TestCase(VdevKind.Mirror, true)]
    [TestCase(VdevKind.Raidz1, true)]
    public void A_crash_at_any_write_of_a_commit_opens_at_the_old_or_the_new_txg_complete(VdevKind kind, bool tear)
    {
        VdevSpec layout = kind switch
        {
            VdevKind.Mirror => VdevSpec.Mirror("d0", "d1"),
            VdevKind.Raidz1 => VdevSpec.Raidz1("d0", "d1", "d2"),
            _ => VdevSpec.Disk("d0"),
        };
        int leaves = layout.Files.Count;
        long txg;
        using (var pool = Create("tank", layout))
        {
            MakeObjects(pool);
            Assert.That(pool.Commit().IsOk, Is.True);
            txg = pool.Txg;
        }
        var plan = new CrashPlan();
        var options = Options(opener: (path, writable) => new CrashingIo(path, FileVdevIo.Opener(path, writable), plan));

        // A full run counts the txg's writes; the last 2 * leaves are its uberblocks (L0, then L1).
        using (var pool = Open("tank", options))
        {
            ApplyChange(pool);
            Assert.That(pool.Commit().IsOk, Is.True);
        }
        int total = plan.Writes;
        int firstUberblock = total - 2 * leaves;
        Assert.That(firstUberblock, Is.GreaterThan(4));
        plan.Restore();

        for (int budget = 0; budget <= total; budget++)
        {
            plan.Budget = budget; plan.Tear = tear;
            using (var pool = Open("tank", options))
            {
                if (budget < total) Assert.Throws<SimulatedCrash>(() => { ApplyChange(pool); pool.Commit(); }, $"write {budget}");
                else { ApplyChange(pool); Assert.That(pool.Commit().IsOk, Is.True); }
            }
            plan.Budget = int.MaxValue;
            using (var reopened = Open("tank"))
            {
                if (budget <= firstUberblock) AssertOldState(reopened, txg);
                else AssertNewState(reopened, txg);
                Assert.That(reopened.Scrub().Errors, Is.Zero, $"crash at write {budget}: scrub");
            }
            plan.Restore();
        }
    }

    [Test]
    public void After_a_crash_the_pool_commits_again_from_the_surviving_txg()
    {
        long txg;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            MakeObjects(pool);
            pool.Commit();
            txg = pool.Txg;
        }
        var plan = new CrashPlan { Budget = 3, Tear = true };
        var options = Options(opener: (path, writable) => new CrashingIo(path, FileVdevIo.Opener(path, writable), plan));
        using (var pool = Open("tank", options))
        {
            ApplyChange(pool);
            Assert.Throws<SimulatedCrash>(() => pool.Commit());
        }
        using (var pool = Open("tank"))
        {
            AssertOldState(pool, txg);
            ApplyChange(pool);
            Assert.That(pool.Commit().IsOk, Is.True);
        }
        using var final = Open("tank");
        AssertNewState(final, txg);
        Assert.That(final.Scrub().Errors, Is.Zero);
    }

    [Test]
    public void A_crash_at_any_write_of_a_dataset_commit_keeps_snapshots_dead_lists_and_space_consistent()
    {
        var kept = Bytes(300_000, 11);
        var overwrite = Bytes(200_000, 12);
        long keptId, goneId;
        long txg;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
            keptId = NewFile(pool, "tank/fs", kept);
            goneId = NewFile(pool, "tank/fs", Bytes(400_000, 13));
            Ok(pool.Datasets.Snapshot("tank/fs@s"));
            txg = pool.Txg;
        }
        var plan = new CrashPlan();
        var options = Options(opener: (path, writable) => new CrashingIo(path, FileVdevIo.Opener(path, writable), plan));
        void Change(Pool pool)
        {
            // Under the snapshot: the overwritten and deleted blocks go on the head's dead list.
            Ok(Objects(pool, "tank/fs").Write(keptId, 0, overwrite));
            Ok(Objects(pool, "tank/fs").Delete(goneId));
        }
        using (var pool = Open("tank", options))
        {
            Change(pool);
            Ok(pool.Commit());
        }
        int total = plan.Writes;
        plan.Restore();
        var changed = (byte[])kept.Clone();
        overwrite.CopyTo(changed, 0);
        for (int budget = 0; budget <= total; budget++)
        {
            plan.Budget = budget; plan.Tear = true;
            using (var pool = Open("tank", options))
            {
                if (budget < total) Assert.Throws<SimulatedCrash>(() => { Change(pool); pool.Commit(); }, $"write {budget}");
                else { Change(pool); Ok(pool.Commit()); }
            }
            plan.Budget = int.MaxValue;
            using (var reopened = Open("tank"))
            {
                bool isNew = reopened.Txg > txg;
                Assert.That(ReadFile(reopened, "tank/fs", keptId), Is.EqualTo(isNew ? changed : kept), $"crash at write {budget}");
                Assert.That(ReadFile(reopened, "tank/fs@s", keptId), Is.EqualTo(kept));
                Assert.That(Objects(reopened, "tank/fs").Exists(goneId), Is.EqualTo(!isNew));
                Assert.That(reopened.Scrub().Errors, Is.Zero, $"crash at write {budget}: scrub");
                AuditSpace(reopened);
            }
            plan.Restore();
        }
    }
}
