using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Benchmarks;

/// <summary>
/// The file layer (storage/ZplFileSystem.cs) on a single file vdev: 256 MiB written through
/// ZplFileSystem.Write in 1 MiB writes (committed every 32 MiB) and read back after a reopen, with the
/// bytes allocated per 128 KiB block after the first txg; then 100,000 files created in one directory
/// (committed every 10,000), looked up one by one and listed after a reopen, to show that a name costs
/// the same in a directory of 100,000 as in an empty one.
/// </summary>
public static class ZplBenchmarks
{
    private const int Chunk = 1024 * 1024;
    private const long Total = 256L * 1024 * 1024;
    private const int Files = 100_000;

    public static void Run(TextWriter o, string dir)
    {
        long now = 0, fsNow = 0;
        var options = new PoolOptions { Clock = () => now += 1, Random = new HostRandom(4) };
        var fsOptions = new FileSystemOptions { Clock = () => fsNow += 1, Atime = false };
        // Room for the data, metadata and the slop space datasets may not take (128 MiB: DatasetTree.SlopSpace).
        Check(Pool.Create(dir, "zpl", [VdevSpec.Disk("zpl0")], Total + 256L * 1024 * 1024, options, out var created));
        var pool = created!;
        Check(ZplFileSystem.Open(RootSet(pool), fsOptions, out var fs));
        Check(fs!.CreateFile("/data", 0x1A4, 0, 0, out long inode));
        var data = new byte[Chunk];
        new HostRandom(5).NextBytes(data);
        long allocStart = 0, blocks = 0;
        var sw = Stopwatch.StartNew();
        for (long offset = 0; offset < Total; offset += Chunk)
        {
            Check(fs.Write(inode, offset, data));
            if ((offset + Chunk) % (32L << 20) != 0) continue;
            Check(pool.Commit());
            if (offset + Chunk == 32L << 20) allocStart = GC.GetAllocatedBytesForCurrentThread();
            else blocks += (32L << 20) / Pool.MaxBlockSize;
        }
        double write = sw.Elapsed.TotalSeconds;
        double writeAlloc = (GC.GetAllocatedBytesForCurrentThread() - allocStart) / (double)blocks;
        pool.Dispose();

        Check(Pool.Open(dir, "zpl", options, out var opened));
        pool = opened!;
        Check(ZplFileSystem.Open(RootSet(pool), fsOptions, out fs));
        var buffer = new byte[Chunk];
        Check(fs!.Read(inode, 0, buffer, out _));
        long readStart = GC.GetAllocatedBytesForCurrentThread();
        sw.Restart();
        for (long offset = 0; offset < Total; offset += Chunk)
        {
            Check(fs.Read(inode, offset, buffer, out int n));
            if (n != Chunk || !buffer.AsSpan().SequenceEqual(data)) throw new InvalidOperationException($"zpl: wrong data at {offset}");
        }
        double read = sw.Elapsed.TotalSeconds;
        double readAlloc = (GC.GetAllocatedBytesForCurrentThread() - readStart) / (double)(Total / Pool.MaxBlockSize);
        o.WriteLine("storage: file layer, single file vdev");
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {"file write/read MB/s",-28} {Total / write / 1e6,11:F0} {Total / read / 1e6,10:F0} {writeAlloc,16:F0} {readAlloc,6:F0}"));

        Check(fs.MakeDirectory("/many", 0x1ED, 0, 0, out _));
        var perTenThousand = new List<double>();
        sw.Restart();
        for (int i = 0; i < Files; i++)
        {
            Check(fs.CreateFile("/many/file" + i.ToString(CultureInfo.InvariantCulture), 0x1A4, 0, 0, out _));
            if ((i + 1) % 10_000 != 0) continue;
            Check(pool.Commit());
            perTenThousand.Add(sw.Elapsed.TotalMilliseconds * 1000 / 10_000);
            sw.Restart();
        }
        pool.Dispose();
        Check(Pool.Open(dir, "zpl", options, out opened));
        pool = opened!;
        Check(ZplFileSystem.Open(RootSet(pool), fsOptions, out fs));
        sw.Restart();
        for (int i = 0; i < Files; i++) Check(fs!.Stat("/many/file" + i.ToString(CultureInfo.InvariantCulture), out _));
        double lookup = sw.Elapsed.TotalMilliseconds * 1000 / Files;
        var entries = new List<DirectoryEntry>();
        sw.Restart();
        Check(fs!.ReadDirectory("/many", entries));
        double list = sw.Elapsed.TotalMilliseconds;
        if (entries.Count != Files + 2) throw new InvalidOperationException($"zpl: listed {entries.Count} names");
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  create in one directory, us per file for each 10,000 (with commit): {string.Join(' ', perTenThousand.ConvertAll(t => t.ToString("F1", CultureInfo.InvariantCulture)))}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  after reopen: stat {lookup:F1} us per name, listing {Files:N0} names {list:F0} ms"));
        pool.Dispose();
        File.Delete(Path.Combine(dir, "zpl0"));
    }

    private static void Check(StorageResult result)
    {
        if (!result.IsOk) throw new InvalidOperationException(result.Message);
    }

    private static ObjectSet RootSet(Pool pool)
    {
        Check(pool.Datasets.Open(pool.Name, out var objects));
        return objects;
    }
}
