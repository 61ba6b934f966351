using System.Diagnostics;
using System.Globalization;
using System.Text;
using SmartOS.Cli;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// 1,000 zones from one image (issue 13): an image dataset zones/IMAGE (a zone root of 256 files,
/// 4 MiB) snapshotted @final with its imgadm record, then, per zone, `vmadm create` with its
/// image_uuid (which clones IMAGE@final into zones/UUID and makes the zone), through the dispatcher
/// as an operator types it. Prints a table of N, wall time, the time of a zone and the process's RSS
/// at 100, 300 and 1,000 zones (clones must stay constant-time), the managed memory per zone, and the pool's extra space
/// for the 1,000 clones of the unmodified image beside the goal (under 1% of the image's size).
/// </summary>
public static class ClonesBenchmarks
{
    private const int Zones = 1_000;
    private const string ImageUuid = "d34a4a52-0ef9-4a1c-9b6a-6c6b0f4a0001";
    private const string Image = "zones/" + ImageUuid;

    public static void Run(TextWriter o)
    {
        string dir = Directory.CreateTempSubdirectory("smartos-clones-").FullName;
        try
        {
            // A 4 MiB image (256 files of 16 KiB) and one of 128 MiB (256 files of 512 KiB; SmartOS's
            // base images are larger still): a clone's cost is metadata, the same for both, so the
            // goal, a share of the image, holds or not by the image's size.
            Measure(o, Path.Combine(dir, "small"), 16 * 1024);
            Measure(o, Path.Combine(dir, "large"), 512 * 1024);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Measure(TextWriter o, string dir, int fileBytes)
    {
        Directory.CreateDirectory(dir);
        var world = new World();
        var host = world.AddHost("bench", 1);
        CommandResult Run(string line, byte[]? stdin = null)
        {
            var r = Dispatcher.Run(world, host, line.Split(' '), stdin == null ? null : new MemoryStream(stdin), workingDirectory: dir);
            if (r.ExitCode != 0) throw new InvalidOperationException($"{line}: {r.Stderr}");
            return r;
        }
        using (var fs = new FileStream(Path.Combine(dir, "d0"), FileMode.CreateNew)) fs.SetLength(2L << 30);
        Run("zpool create zones d0");
        var pool = host.Pools.Find("zones")!;
        Run($"zfs create {Image}");
        Run($"mkdir -p /{Image}/root/etc /{Image}/root/var/www /{Image}/root/usr/lib");
        var block = new byte[fileBytes];
        for (int i = 0; i < 256; i++)
        {
            for (int b = 0; b < block.Length; b++) block[b] = (byte)(b * 31 + i * 7 + (b >> 9));
            string sub = (i % 3) switch { 0 => "etc", 1 => "var/www", _ => "usr/lib" };
            Run(string.Create(CultureInfo.InvariantCulture, $"dd of=/{Image}/root/{sub}/f{i}"), block);
        }
        Run($"zfs snapshot {Image}@final");
        // The record imgadm install leaves beside the dataset (zones/Images/ImageStore.cs), so vmadm
        // finds an installed zone-dataset image: the set-up, not what is measured.
        host.Store.Write(SmartOS.Zones.Images.ImageStore.RecordName(ImageUuid),
            $$$"""{"zpool": "zones", "manifest": {"v": 2, "uuid": "{{{ImageUuid}}}", "name": "bench", "version": "1.0.0", "type": "zone-dataset", "os": "smartos"} }""");
        pool.Commit();
        pool.Datasets.Get(Image + "@final", "referenced", out var referenced);
        long imageBytes = referenced.Number ?? 0;
        long before = pool.Allocated;
        GC.Collect();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        var zone = new double[Zones + 1];
        var cpu = new double[Zones + 1];
        var rows = new List<(int N, double Wall, long Rss)>();
        var total = Stopwatch.StartNew();
        for (int n = 1; n <= Zones; n++)
        {
            string uuid = string.Create(CultureInfo.InvariantCulture, $"5e1f0000-0000-4000-8000-{n:D12}");
            long start = Stopwatch.GetTimestamp();
            double cpuStart = ThreadCpuClock.Now();
            Run("vmadm create", Encoding.UTF8.GetBytes($$"""{"uuid": "{{uuid}}", "brand": "joyent", "image_uuid": "{{ImageUuid}}", "autoboot": false}"""));
            zone[n] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            cpu[n] = (ThreadCpuClock.Now() - cpuStart) * 1e6;
            if (n is 100 or 300 or 1000)
            {
                using var self = Process.GetCurrentProcess();
                rows.Add((n, total.Elapsed.TotalSeconds, self.WorkingSet64));
            }
        }
        total.Stop();
        pool.Commit();
        long extra = pool.Allocated - before;
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);

        o.WriteLine($"clones: {Zones} zones from one image ({StorageText(imageBytes)} referenced), vmadm create with its image_uuid each (a clone of IMAGE@final)");
        // Wall time holds each commit's fsyncs (three a txg), which a busy machine's disk stretches;
        // the thread's CPU time is the work the dataset layer and the commands do.
        o.WriteLine($"{"N",6} {"wall",9} {"per zone",10} {"CPU/zone",10} {"RSS",9}   (per zone: mean of the 10 zones ending at N)");
        foreach (var (n, wall, rss) in rows)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{n,6} {wall,7:F2} s {Mean(zone, n) / 1000,7:F2} ms {Mean(cpu, n) / 1000,7:F2} ms {rss / 1048576.0,5:F0} MiB"));
        double growth = Mean(zone, 1000) / Math.Max(1, Mean(zone, 100)), cpuGrowth = Mean(cpu, 1000) / Math.Max(1, Mean(cpu, 100));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"zone time 1000th / 100th: {growth:F2}x wall, {cpuGrowth:F2}x CPU   (goal: constant time, about 1x)"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"total: {total.Elapsed.TotalSeconds:F2} s for {Zones} zones; managed heap {(heapAfter - heapBefore) / (double)Zones / 1024:F1} KiB per zone"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"pool space for {Zones} clones: {StorageText(extra)} = {100.0 * extra / imageBytes:F3}% of the image   (goal: under 1%)"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  = {extra / (double)Zones:F0} bytes of metadata per clone: under 1% for an image over {StorageText(extra * 100)}"));
        StorageOnly(o, pool);
        pool.Dispose();
    }

    /// <summary>The dataset layer's clone alone (DatasetTree.Clone: no mount, no history, no zone),
    /// 1,000 more of the same snapshot, to tell its cost from the commands' around it.</summary>
    private static void StorageOnly(TextWriter o, Storage.Pool pool)
    {
        var time = new double[Zones + 1];
        var cpu = new double[Zones + 1];
        long before = pool.Allocated;
        for (int n = 1; n <= Zones; n++)
        {
            long start = Stopwatch.GetTimestamp();
            double cpuStart = ThreadCpuClock.Now();
            var r = pool.Datasets.Clone(Image + "@final", string.Create(CultureInfo.InvariantCulture, $"zones/bare{n}"));
            time[n] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            cpu[n] = (ThreadCpuClock.Now() - cpuStart) * 1e6;
            if (!r.IsOk) throw new InvalidOperationException(r.Message);
        }
        pool.Commit();
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dataset layer alone, 1000 more clones: {Mean(time, 10):F0} us at the 10th, {Mean(time, 100):F0} us at the 100th, {Mean(time, 300):F0} us at the 300th, {Mean(time, 1000):F0} us at the 1000th (CPU {Mean(cpu, 10):F0}, {Mean(cpu, 100):F0}, {Mean(cpu, 300):F0}, {Mean(cpu, 1000):F0} us); {(pool.Allocated - before) / (double)Zones:F0} bytes each"));
    }

    /// <summary>The mean of the 10 samples ending at <paramref name="at"/> (one sample is noise).</summary>
    private static double Mean(double[] samples, int at)
    {
        double sum = 0;
        for (int i = at - 9; i <= at; i++) sum += samples[i];
        return sum / 10;
    }

    private static string StorageText(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB");
}
