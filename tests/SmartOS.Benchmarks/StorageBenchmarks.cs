using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Benchmarks;

/// <summary>
/// The pool engine against the disk (issue 12): checksum rates on one 128 KiB block, then 256 MiB
/// written sequentially into one object (committed every 32 MiB, as a txg's dirty limit would) and
/// read back after a reopen, on a single file vdev, a two-way mirror and a raidz1 of three, beside a plain file of the
/// same size written with the same 1 MiB writes and one fsync and read back. Allocated bytes per
/// 128 KiB block show whether the data path allocates: what remains is the indirect-block cache
/// filling once (an Indirect of 1024 pointers per 1024 blocks, about 100 B a block) and per-txg
/// bookkeeping; a warm read allocates nothing (AllocationTests).
/// </summary>
public static class StorageBenchmarks
{
    private const int Chunk = 1024 * 1024;
    private const long Total = 256L * 1024 * 1024;
    private const long CommitEvery = 32L * 1024 * 1024;

    public static void Run(TextWriter o)
    {
        string dir = Path.Combine(Path.GetTempPath(), "smartos-storage-bench-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            Checksums(o);
            var data = new byte[Chunk];
            new HostRandom(1).NextBytes(data);
            o.WriteLine($"storage: sequential {Total >> 20} MiB in {Chunk >> 20} MiB writes (incompressible), files in {dir}");
            o.WriteLine($"{"target",-28} {"write MB/s",11} {"read MB/s",10} {"alloc B/block w",16} {"r",6}");
            PlainFile(o, Path.Combine(dir, "plain"), data);
            Engine(o, dir, "pool, single file vdev", [VdevSpec.Disk("s0")], data);
            Engine(o, dir, "pool, 2-way mirror", [VdevSpec.Mirror("m0", "m1")], data);
            Engine(o, dir, "pool, raidz1 of 3", [VdevSpec.Raidz1("z0", "z1", "z2")], data);
            ZplBenchmarks.Run(o, dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Checksums(TextWriter o)
    {
        var block = new byte[128 * 1024];
        new HostRandom(2).NextBytes(block);
        o.WriteLine("storage: checksum of one 128 KiB block");
        foreach (var kind in (ChecksumKind[])[ChecksumKind.Fletcher4, ChecksumKind.Sha256, ChecksumKind.Blake3])
        {
            Checksum.Compute(kind, block);
            int rounds = kind == ChecksumKind.Fletcher4 ? 20_000 : 2_000;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < rounds; i++) Checksum.Compute(kind, block);
            sw.Stop();
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {Checksum.Name(kind),-10} {rounds * (double)block.Length / sw.Elapsed.TotalSeconds / 1e6,8:F0} MB/s"));
        }
    }

    private static void PlainFile(TextWriter o, string path, byte[] data)
    {
        var sw = Stopwatch.StartNew();
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0))
        {
            for (long done = 0; done < Total; done += Chunk) fs.Write(data);
            fs.Flush(flushToDisk: true);
        }
        double write = sw.Elapsed.TotalSeconds;
        var buffer = new byte[Chunk];
        sw.Restart();
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, 0))
            while (fs.Read(buffer) > 0) { }
        double read = sw.Elapsed.TotalSeconds;
        File.Delete(path);
        Row(o, "plain file", write, read, double.NaN, double.NaN);
    }

    private static void Engine(TextWriter o, string dir, string name, VdevSpec[] layout, byte[] data)
    {
        long now = 0;
        var options = new PoolOptions { Clock = () => now += 1, Random = new HostRandom(3) };
        string poolName = "bench" + layout[0].Files[0];
        Check(Pool.Create(dir, poolName, layout, Total + 64L * 1024 * 1024, options, out var created));
        var pool = created!;
        Check(pool.Objects.Create(out long id));
        // The first txg warms the JIT and the buffer stack; the rest is steady state.
        long allocStart = 0, blocksAfterWarmup = 0;
        var sw = Stopwatch.StartNew();
        for (long offset = 0; offset < Total; offset += Chunk)
        {
            Check(pool.Objects.Write(id, offset, data));
            if ((offset + Chunk) % CommitEvery == 0)
            {
                Check(pool.Commit());
                if (offset + Chunk == CommitEvery) allocStart = GC.GetAllocatedBytesForCurrentThread();
                else blocksAfterWarmup += CommitEvery / Pool.MaxBlockSize;
            }
        }
        Check(pool.Commit());
        double writeAlloc = (GC.GetAllocatedBytesForCurrentThread() - allocStart) / (double)blocksAfterWarmup;
        double write = sw.Elapsed.TotalSeconds;
        pool.Dispose();

        Check(Pool.Open(dir, poolName, options, out var opened));
        pool = opened!;
        var buffer = new byte[Chunk];
        Check(pool.Objects.Read(id, 0, buffer, out _));
        long readAllocStart = GC.GetAllocatedBytesForCurrentThread();
        sw.Restart();
        for (long offset = 0; offset < Total; offset += Chunk)
        {
            Check(pool.Objects.Read(id, offset, buffer, out int n));
            if (n != Chunk || !buffer.AsSpan().SequenceEqual(data)) throw new InvalidOperationException($"{name}: wrong data at {offset}");
        }
        double read = sw.Elapsed.TotalSeconds;
        double readAlloc = (GC.GetAllocatedBytesForCurrentThread() - readAllocStart) / (double)(Total / Pool.MaxBlockSize);
        pool.Dispose();
        foreach (var spec in layout) foreach (var file in spec.Files) File.Delete(Path.Combine(dir, file));
        Row(o, name, write, read, writeAlloc, readAlloc);
    }

    private static void Row(TextWriter o, string name, double write, double read, double writeAlloc, double readAlloc) =>
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-28} {Total / write / 1e6,11:F0} {Total / read / 1e6,10:F0} {writeAlloc,16:F0} {readAlloc,6:F0}"));

    private static void Check(StorageResult result)
    {
        if (!result.IsOk) throw new InvalidOperationException(result.Message);
    }
}
