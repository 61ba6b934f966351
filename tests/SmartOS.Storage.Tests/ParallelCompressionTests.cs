using SmartOS.Kernel;

namespace SmartOS.Storage.Tests;

/// <summary>Pool.Compress.cs: a txg's blocks compressed on several threads land as the same bytes as on one.</summary>
public class ParallelCompressionTests : PoolFixture
{
    private static byte[] Mixed(int length, ulong seed)
    {
        var words = new[] { "zone ", "vnic ", "dataset ", "snapshot ", "txg ", "uberblock ", "mirror ", "raidz1 " };
        var random = new HostRandom(seed);
        var data = new byte[length];
        for (int at = 0; at < length;)
        {
            if (random.Next(8) == 0)
            {
                // a run of noise: some blocks do not compress, some only partly
                int n = Math.Min(length - at, 1 + random.Next(96 * 1024));
                random.NextBytes(data.AsSpan(at, n));
                at += n;
                continue;
            }
            var word = words[random.NextUInt64() % (ulong)words.Length];
            for (int i = 0; i < word.Length && at < length; i++) data[at++] = (byte)word[i];
        }
        return data;
    }

    /// <summary>Writes the same files, with each compression, into a pool made with threads workers; returns its vdev file's bytes.</summary>
    private byte[] WriteWith(int threads, string compression, ChecksumKind checksum, out long blocks)
    {
        string dir = Path.Combine(Dir, $"t{threads}");
        long now = 0;
        Assert.That(CompressionSetting.TryParse(compression, out var setting), Is.True);
        var options = new PoolOptions
        {
            Clock = () => now += 1000, Random = new HostRandom(9), Checksum = checksum, Compression = setting, CompressionThreads = threads,
        };
        Assert.That(Pool.Create(dir, "tank", [VdevSpec.Disk("d0")], VdevSize, options, out var created).Message, Is.EqualTo("ok"));
        using (var pool = created!)
        {
            Assert.That(pool.Datasets.Set("tank", "compression", compression).Message, Is.EqualTo("ok"));
            var set = RootSet(pool);
            for (int f = 0; f < 3; f++)
            {
                Assert.That(set.Create(out long id).IsOk, Is.True);
                Assert.That(set.Write(id, 0, Mixed(5 * 1024 * 1024 + f * 777, (ulong)f + 1)).Message, Is.EqualTo("ok"));
            }
            long before = pool.BlocksWritten;
            Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
            blocks = pool.BlocksWritten - before;
            Assert.That(pool.Export().Message, Is.EqualTo("ok"));
        }
        return File.ReadAllBytes(Path.Combine(dir, "d0"));
    }

    [TestCase("lz4", ChecksumKind.Fletcher4)]
    [TestCase("gzip-6", ChecksumKind.Fletcher4)]
    [TestCase("zstd", ChecksumKind.Sha256)]
    [TestCase("off", ChecksumKind.Blake3)]
    public void The_bytes_on_disk_are_the_same_whatever_the_number_of_compression_threads(string compression, ChecksumKind checksum)
    {
        var one = WriteWith(1, compression, checksum, out long blocksOne);
        var four = WriteWith(4, compression, checksum, out long blocksFour);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(blocksOne, Is.GreaterThan(100), "the commit wrote the files' blocks");
            Assert.That(blocksFour, Is.EqualTo(blocksOne));
            Assert.That(four.AsSpan().SequenceEqual(one), Is.True, "the vdev files differ");
        }
        // and what was written reads back (from the four-thread pool)
        long now = 0;
        Assert.That(Pool.Open(Path.Combine(Dir, "t4"), "tank", new PoolOptions { Clock = () => now += 1000, CompressionThreads = 2 }, out var pool).Message, Is.EqualTo("ok"));
        using (pool)
        {
            var set = RootSet(pool!);
            for (int f = 0; f < 3; f++)
            {
                var expected = Mixed(5 * 1024 * 1024 + f * 777, (ulong)f + 1);
                var actual = new byte[expected.Length];
                long id = ObjectOf(set, f);
                Assert.That(set.Read(id, 0, actual, out int n).Message, Is.EqualTo("ok"));
                Assert.That(n, Is.EqualTo(expected.Length));
                Assert.That(actual.AsSpan().SequenceEqual(expected), Is.True, $"file {f}");
            }
            Assert.That(pool!.Scrub().Errors, Is.Zero);
        }
    }

    /// <summary>The objects the test created, after the file system's own (master, table, root).</summary>
    private static long ObjectOf(ObjectSet set, int f)
    {
        int seen = -1;
        for (long id = 4; id < 100; id++)
            if (set.Exists(id) && ++seen == f) return id;
        Assert.Fail($"object {f} not found");
        return 0;
    }

    [Test]
    public void A_commit_that_runs_out_of_space_while_a_batch_is_being_compressed_leaves_the_last_txg()
    {
        // Incompressible data with lz4: every batch goes to the workers (rule C2) and the next one is
        // in flight while this thread places the one before (rule C3) when allocation fails.
        var options = Options() with { Compression = CompressionSetting.Lz4, CompressionThreads = 2 };
        var small = Bytes(300_000, 11);
        long id, txg;
        using (var pool = Create("tank", options, VdevSpec.Disk("d0")))
        {
            id = NewObject(pool, small);
            Assert.That(pool.Commit().Message, Is.EqualTo("ok"));
            txg = pool.Txg;
            NewObject(pool, Bytes(70 * 1024 * 1024, 12));
            Assert.That(pool.Commit().Status, Is.EqualTo(StorageStatus.NoSpace));
            Assert.That(pool.Commit().Status, Is.EqualTo(StorageStatus.NoSpace), "suspended");
            Assert.That(pool.Txg, Is.EqualTo(txg));
        }
        using var reopened = Open("tank", options);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reopened.Txg, Is.EqualTo(txg));
            Assert.That(ReadAll(reopened, id), Is.EqualTo(small));
            Assert.That(reopened.Scrub().Errors, Is.Zero);
        }
    }

    [TestCase(-1)]
    [TestCase(Pool.MaxCompressionThreads + 1)]
    public void A_thread_count_out_of_range_is_refused(int threads)
    {
        var result = Pool.Create(Dir, "tank", [VdevSpec.Disk("d0")], VdevSize, Options() with { CompressionThreads = threads }, out var pool);
        Assert.That(result.Message, Does.StartWith($"cannot create 'tank': compression threads must be 0 to {Pool.MaxCompressionThreads}"));
        Assert.That(pool, Is.Null);
        Assert.That(Directory.GetFiles(Dir), Is.Empty);
    }
}
