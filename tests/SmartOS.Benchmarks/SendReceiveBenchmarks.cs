using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Benchmarks;

/// <summary>
/// zfs send and zfs receive over datasets (storage/Dsl.Send.cs) on a single file vdev: a filesystem
/// of 256 MiB in files (64 of 4 MiB and 2,048 of 4 KiB, incompressible) is snapshotted and sent to a
/// stream in memory, the stream received into a new filesystem (written and committed), and an
/// incremental stream of one changed 1 MiB range sent and received. Rates are the file bytes over
/// wall time; the stream is held in memory whole, as the send path builds it.
/// </summary>
public static class SendReceiveBenchmarks
{
    private const int BigFiles = 64, BigSize = 4 * 1024 * 1024, SmallFiles = 2048, SmallSize = 4096;

    public static void Run(TextWriter o, string dir)
    {
        long now = 0, fsNow = 0;
        var options = new PoolOptions { Clock = () => now += 1_000_000, Random = new HostRandom(6) };
        var fsOptions = new FileSystemOptions { Clock = () => fsNow += 1, Atime = false };
        long bytes = (long)BigFiles * BigSize + (long)SmallFiles * SmallSize;
        Check(Pool.Create(dir, "send", [VdevSpec.Disk("send0")], 3 * bytes + 256L * 1024 * 1024, options, out var created));
        using var pool = created!;
        Check(pool.Datasets.Create("send/src", DatasetType.Filesystem));
        Check(pool.Datasets.Open("send/src", out var set));
        Check(ZplFileSystem.Open(set, fsOptions, out var fs));
        var data = new byte[BigSize];
        new HostRandom(7).NextBytes(data);
        Check(fs!.MakeDirectory("small", 0x1ED, 0, 0, out _));
        for (int i = 0; i < BigFiles; i++)
        {
            data[0] = (byte)i;
            Check(fs.CreateFile("big" + i.ToString(CultureInfo.InvariantCulture), 0x1A4, 0, 0, out long inode));
            Check(fs.Write(inode, 0, data));
            if (i % 8 == 7) Check(pool.Commit());
        }
        for (int i = 0; i < SmallFiles; i++)
        {
            Check(fs.CreateFile("small/f" + i.ToString(CultureInfo.InvariantCulture), 0x1A4, 0, 0, out long inode));
            Check(fs.Write(inode, 0, data.AsSpan(i * 16, SmallSize)));
        }
        Check(pool.Datasets.Snapshot("send/src@a"));

        var stream = new MemoryStream();
        var sw = Stopwatch.StartNew();
        Check(pool.Datasets.Send("send/src@a", new SendOptions(), stream));
        double send = sw.Elapsed.TotalSeconds;
        stream.Position = 0;
        sw.Restart();
        Check(pool.Datasets.Receive(stream, "send/copy", new ReceiveOptions(), out _));
        double receive = sw.Elapsed.TotalSeconds;

        Check(pool.Datasets.Open("send/src", out set));
        Check(ZplFileSystem.Open(set, fsOptions, out fs));
        Check(fs!.Lookup("big3", out long changed));
        Check(fs.Write(changed, 1024 * 1024, data.AsSpan(0, 1024 * 1024)));
        Check(pool.Datasets.Snapshot("send/src@b"));
        var incremental = new MemoryStream();
        sw.Restart();
        Check(pool.Datasets.Send("send/src@b", new SendOptions { From = "@a" }, incremental));
        double sendIncremental = sw.Elapsed.TotalSeconds;
        incremental.Position = 0;
        sw.Restart();
        Check(pool.Datasets.Receive(incremental, "send/copy", new ReceiveOptions(), out _));
        double receiveIncremental = sw.Elapsed.TotalSeconds;

        double mib = bytes / (1024.0 * 1024);
        o.WriteLine("storage: zfs send/receive over datasets, single file vdev");
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  full, {mib:F0} MiB in {BigFiles + SmallFiles} files: send {mib / send,7:F1} MB/s  receive {mib / receive,7:F1} MB/s  (stream {stream.Length / (1024.0 * 1024):F0} MiB)"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  incremental, 1 MiB changed:  send {sendIncremental * 1000,7:F0} ms     receive {receiveIncremental * 1000,7:F0} ms  (stream {incremental.Length / 1024.0:F0} KiB)"));
    }

    private static void Check(StorageResult result)
    {
        if (!result.IsOk) throw new InvalidOperationException(result.Message);
    }
}
