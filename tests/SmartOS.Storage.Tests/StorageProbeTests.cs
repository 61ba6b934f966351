using SmartOS.Kernel.Trace;

namespace SmartOS.Storage.Tests;

/// <summary>
/// The io and zfs providers (StorageProbes.cs) held against the pool's own counters: every byte a
/// leaf's I/O statistics count, and every uberblock a commit writes, fires io:::start once with its
/// size, and the txg and cache probes fire where the commit and the cache say they happened.
/// </summary>
public class StorageProbeTests : PoolFixture
{
    /// <summary>What a consumer saw: the probe's name and its typed arguments read when it fired.</summary>
    private sealed record Firing(string Name, long Flags, long Count, long BlkNo, long Resid, long Error, string Dev, string Path, long A1, long A2, string? S0);

    private sealed class Recorder : IProbeConsumer
    {
        public readonly List<Firing> Seen = [];

        public void Fired(Probe probe, in ProbeArgs args)
        {
            if (probe.Provider == "io")
            {
                object b = args.A0.Obj!;
                long Int(int arg, string member) => probe.ArgTypes[arg]!.Member(member)!.Int!(b);
                string Str(int arg, string member) => probe.ArgTypes[arg]!.Member(member)!.Str!(b);
                Seen.Add(new Firing(probe.Name, Int(0, "b_flags"), Int(0, "b_bcount"), Int(0, "b_blkno"), Int(0, "b_resid"),
                    Int(0, "b_error"), Str(1, "dev_statname"), Str(2, "fi_pathname"), 0, 0, null));
            }
            else if (probe.ArgTypes.Count > 0)
            {
                object h = args.A0.Obj!;
                Seen.Add(new Firing(probe.Name, 0, probe.ArgTypes[0]!.Member("b_size")!.Int!(h), 0, 0, 0, "", "",
                    probe.ArgTypes[0]!.Member("b_birth")!.Int!(h), args.A2.Int, null));
            }
            else Seen.Add(new Firing(probe.Name, 0, 0, 0, 0, 0, "", "", args.A1.Int, 0, args.A0.Str));
        }

        public void Attach(ProbeRegistry registry, string provider)
        {
            foreach (var p in registry.All) if (p.Provider == provider) p.Attach(this);
        }
    }

    private static long Sum(IEnumerable<Firing> firings) => firings.Sum(f => f.Count);

    [Test]
    public void Io_start_counts_every_byte_a_mirror_commit_writes_on_each_side()
    {
        var registry = new ProbeRegistry();
        using var pool = Create("tank", Options() with { Probes = registry }, VdevSpec.Mirror("d0", "d1"));
        var recorder = new Recorder();
        recorder.Attach(registry, "io");
        var before = pool.Vdevs[0].Leaves.Select(l => l.WriteBytes).ToArray();
        NewObject(pool, Bytes(256 * 1024, 7));
        pool.Commit();

        var starts = recorder.Seen.Where(f => f.Name == "start").ToList();
        using (Assert.EnterMultipleScope())
        {
            for (int l = 0; l < 2; l++)
            {
                var leaf = pool.Vdevs[0].Leaves[l];
                var mine = starts.Where(f => f.Dev == $"d{l}").ToList();
                Assert.That(mine.All(f => (f.Flags & StorageProbes.BWrite) != 0 && (f.Flags & StorageProbes.BRead) == 0), Is.True);
                // The data and metadata blocks the leaf's WRITE statistics count, plus the uberblock in each label.
                Assert.That(Sum(mine), Is.EqualTo(leaf.WriteBytes - before[l] + 2 * VdevLabel.UberblockSize), $"d{l}");
                // The two 128 KiB data blocks, incompressible, each written once on each side.
                Assert.That(mine.Count(f => f.Count == Pool.MaxBlockSize), Is.EqualTo(2), $"d{l}");
            }
            // Synchronous I/O: each request goes start, wait-start, done, wait-done.
            var names = recorder.Seen.Select(f => f.Name).ToList();
            Assert.That(names, Has.Count.EqualTo(4 * starts.Count));
            for (int i = 0; i < names.Count; i += 4)
                Assert.That(names.GetRange(i, 4), Is.EqualTo(new[] { "start", "wait-start", "done", "wait-done" }), $"request {i / 4}");
            Assert.That(recorder.Seen.Where(f => f.Name == "done").All(f => (f.Flags & StorageProbes.BDone) != 0 && f.Resid == 0 && f.Error == 0), Is.True);
            // Vdev I/O belongs to no file, as on illumos, and b_blkno is in 512-byte blocks past the front labels.
            Assert.That(starts.All(f => f.Path == "<none>"), Is.True);
            Assert.That(starts.Where(f => f.Count == Pool.MaxBlockSize).All(f => f.BlkNo * 512 >= VdevLabel.LabelSize), Is.True);
        }
    }

    [Test]
    public void A_cold_read_misses_the_cache_and_reads_the_vdev_a_second_read_hits_and_reads_nothing()
    {
        long id;
        using (var created = Create("tank", VdevSpec.Disk("d0")))
        {
            id = NewObject(created, Bytes(128 * 1024, 3));
            created.Commit();
        }
        var registry = new ProbeRegistry();
        using var pool = Open("tank", Options() with { Probes = registry });
        var recorder = new Recorder();
        recorder.Attach(registry, "io");
        recorder.Attach(registry, "zfs");
        var leaf = pool.Vdevs[0].Leaves[0];
        long readBefore = leaf.ReadBytes;
        var buffer = new byte[4096];
        Assert.That(pool.Objects.Read(id, 0, buffer, out _).IsOk, Is.True);

        var misses = recorder.Seen.Where(f => f.Name == "arc-miss").ToList();
        var reads = recorder.Seen.Where(f => f.Name == "start").ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(misses.Count(f => f.Count == Pool.MaxBlockSize && f.A2 == Pool.MaxBlockSize), Is.EqualTo(1), "the data block's miss, with its size");
            Assert.That(reads.All(f => (f.Flags & StorageProbes.BRead) != 0 && f.Dev == "d0"), Is.True);
            Assert.That(Sum(reads), Is.EqualTo(leaf.ReadBytes - readBefore));
            Assert.That(reads.Count(f => f.Count == Pool.MaxBlockSize), Is.EqualTo(1));
        }

        recorder.Seen.Clear();
        Assert.That(pool.Objects.Read(id, 8192, buffer, out _).IsOk, Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(recorder.Seen.Where(f => f.Name == "arc-hit").Select(f => f.Count), Has.Member((long)Pool.MaxBlockSize));
            Assert.That(recorder.Seen.Where(f => f.Name is "arc-miss" or "start"), Is.Empty);
        }
    }

    [Test]
    public void Txg_syncing_and_synced_name_the_pool_and_the_txg_a_commit_writes()
    {
        var registry = new ProbeRegistry();
        using var pool = Create("tank", Options() with { Probes = registry }, VdevSpec.Disk("d0"));
        var recorder = new Recorder();
        recorder.Attach(registry, "zfs");
        long txg = pool.Txg;
        NewObject(pool, Bytes(1000, 1));
        pool.Commit();
        pool.Commit();   // nothing dirty: no txg
        var txgs = recorder.Seen.Where(f => f.Name.StartsWith("txg-", StringComparison.Ordinal)).ToList();
        Assert.That(txgs, Is.EqualTo(new[]
        {
            new Firing("txg-syncing", 0, 0, 0, 0, 0, "", "", txg + 1, 0, "tank"),
            new Firing("txg-synced", 0, 0, 0, 0, 0, "", "", txg + 1, 0, "tank"),
        }));
        Assert.That(pool.Txg, Is.EqualTo(txg + 1));
    }

    private sealed class FailingReads(IVdevIo inner) : IVdevIo
    {
        public bool Fail;
        public int Read(long offset, Span<byte> destination) => Fail ? throw new IOException("injected") : inner.Read(offset, destination);
        public void Write(long offset, ReadOnlySpan<byte> source) => inner.Write(offset, source);
        public void Flush() => inner.Flush();
        public void Dispose() => inner.Dispose();
    }

    [Test]
    public void A_failed_read_is_done_with_B_ERROR_EIO_and_nothing_transferred()
    {
        long id;
        using (var created = Create("tank", VdevSpec.Disk("d0")))
        {
            id = NewObject(created, Bytes(128 * 1024, 3));
            created.Commit();
        }
        FailingReads? io = null;
        var registry = new ProbeRegistry();
        using var pool = Open("tank", Options(opener: (path, writable) => io = new FailingReads(new FileVdevIo(path, writable))) with { Probes = registry });
        var recorder = new Recorder();
        recorder.Attach(registry, "io");
        io!.Fail = true;
        Assert.That(pool.Objects.Read(id, 0, new byte[4096], out _).IsOk, Is.False);
        var done = recorder.Seen.Where(f => f.Name == "done").ToList();
        Assert.That(done, Is.Not.Empty);
        Assert.That(done.All(f => (f.Flags & StorageProbes.BError) != 0 && f.Error == StorageProbes.Eio && f.Resid == f.Count), Is.True);
    }
}
