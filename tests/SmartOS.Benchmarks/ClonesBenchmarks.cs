using System.Diagnostics;
using System.Globalization;
using System.Text;
using SmartOS.Cli;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// 3,000 zones from one image (issue 13): the image installed as zones/IMAGE@final, then per zone
/// `vmadm create` with its image_uuid (which clones IMAGE@final into zones/UUID and makes the zone),
/// through the dispatcher as an operator types it. Two images: the joyent base of examples/images
/// (imgadm install of its manifest and stream) and a 128 MiB one (256 files of 512 KiB). Prints a
/// table of N, wall time, the CPU time of a zone, the pool space per clone and the process's RSS at
/// 100, 1,000 and 3,000 zones (clones must stay constant-time and constant-space), the share of the
/// image the first 1,000 clones take (the goal: under 1%), and beside it what a clone costs in ZFS.
/// SMARTOS_CLONES_ZONES=N stops at N zones (a quicker run).
/// </summary>
public static class ClonesBenchmarks
{
    private const string LargeUuid = "d34a4a52-0ef9-4a1c-9b6a-6c6b0f4a0001";
    private static readonly int[] s_rows = [100, 1_000, 3_000];

    public static void Run(TextWriter o)
    {
        int zones = int.TryParse(Environment.GetEnvironmentVariable("SMARTOS_CLONES_ZONES"), CultureInfo.InvariantCulture, out int z) && z >= 100 ? z : 3_000;
        string dir = Directory.CreateTempSubdirectory("smartos-clones-").FullName;
        try
        {
            Measure(o, Path.Combine(dir, "base"), zones, InstallBase);
            Measure(o, Path.Combine(dir, "large"), zones, (run, host, d) => MakeImage(run, host, 512 * 1024));
            ZfsFigures(o);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>imgadm install of examples/images/base-1.0.0 (the joyent base a scenario's web zone uses).</summary>
    private static string InstallBase(Func<string, byte[]?, CommandResult> run, Host host, string dir)
    {
        string images = FindImages();
        File.Copy(Path.Combine(images, "base-1.0.0.imgmanifest"), Path.Combine(dir, "base.imgmanifest"));
        File.Copy(Path.Combine(images, "base-1.0.0.zfs.gz"), Path.Combine(dir, "base.zfs.gz"));
        run("imgadm install -m base.imgmanifest -f base.zfs.gz", null);
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "base.imgmanifest")));
        return manifest.RootElement.GetProperty("uuid").GetString()!;
    }

    private static string FindImages()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string images = Path.Combine(d.FullName, "examples", "images");
            if (File.Exists(Path.Combine(images, "base-1.0.0.imgmanifest"))) return images;
        }
        throw new InvalidOperationException("examples/images not found above " + AppContext.BaseDirectory);
    }

    /// <summary>A zone root of 256 files of fileBytes each, snapshotted @final, with the record imgadm
    /// install leaves beside the dataset (zones/Images/ImageStore.cs), so vmadm finds an installed image.</summary>
    private static string MakeImage(Func<string, byte[]?, CommandResult> run, Host host, int fileBytes)
    {
        const string image = "zones/" + LargeUuid;
        run($"zfs create {image}", null);
        run($"mkdir -p /{image}/root/etc /{image}/root/var/www /{image}/root/usr/lib", null);
        var block = new byte[fileBytes];
        for (int i = 0; i < 256; i++)
        {
            for (int b = 0; b < block.Length; b++) block[b] = (byte)(b * 31 + i * 7 + (b >> 9));
            string sub = (i % 3) switch { 0 => "etc", 1 => "var/www", _ => "usr/lib" };
            run(string.Create(CultureInfo.InvariantCulture, $"dd of=/{image}/root/{sub}/f{i}"), block);
        }
        run($"zfs snapshot {image}@final", null);
        host.Store.Write(SmartOS.Zones.Images.ImageStore.RecordName(LargeUuid),
            $$$"""{"zpool": "zones", "manifest": {"v": 2, "uuid": "{{{LargeUuid}}}", "name": "bench", "version": "1.0.0", "type": "zone-dataset", "os": "smartos"} }""");
        return LargeUuid;
    }

    private static void Measure(TextWriter o, string dir, int zones, Func<Func<string, byte[]?, CommandResult>, Host, string, string> install)
    {
        Directory.CreateDirectory(dir);
        var world = new World();
        var host = world.AddHost("bench", 1);
        CommandResult Run(string line, byte[]? stdin)
        {
            var r = Dispatcher.Run(world, host, line.Split(' '), stdin == null ? null : new MemoryStream(stdin), workingDirectory: dir);
            if (r.ExitCode != 0) throw new InvalidOperationException($"{line}: {r.Stderr}");
            return r;
        }
        using (var fs = new FileStream(Path.Combine(dir, "d0"), FileMode.CreateNew)) fs.SetLength(2L << 30);
        Run("zpool create zones d0", null);
        var pool = host.Pools.Find("zones")!;
        string imageUuid = install(Run, host, dir);
        pool.Commit();
        pool.Datasets.Get($"zones/{imageUuid}@final", "referenced", out var referenced);
        long imageBytes = referenced.Number ?? 0;
        long before = pool.Allocated;
        GC.Collect();

        var wall = new double[zones + 1];
        var cpu = new double[zones + 1];
        var rows = new List<(int N, double Wall, long Space, long Rss)>();
        var total = Stopwatch.StartNew();
        for (int n = 1; n <= zones; n++)
        {
            string uuid = string.Create(CultureInfo.InvariantCulture, $"5e1f0000-0000-4000-8000-{n:D12}");
            long start = Stopwatch.GetTimestamp();
            double cpuStart = ThreadCpuClock.Now();
            Run("vmadm create", Encoding.UTF8.GetBytes($$"""{"uuid": "{{uuid}}", "brand": "joyent", "image_uuid": "{{imageUuid}}", "autoboot": false}"""));
            wall[n] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            cpu[n] = (ThreadCpuClock.Now() - cpuStart) * 1e6;
            if (Array.IndexOf(s_rows, n) >= 0 || n == zones)
            {
                using var self = Process.GetCurrentProcess();
                rows.Add((n, total.Elapsed.TotalSeconds, pool.Allocated - before, self.WorkingSet64));
            }
        }
        total.Stop();

        o.WriteLine($"clones: {zones} zones from one image ({imageBytes} bytes referenced), vmadm create with its image_uuid each (a clone of IMAGE@final)");
        // Wall time holds each commit's fsyncs (three a txg), which a busy machine's disk stretches;
        // the thread's CPU time is the work the dataset layer and the commands do.
        o.WriteLine($"{"N",6} {"wall",9} {"wall/zone",10} {"CPU/zone",10} {"B/clone",8} {"RSS",9}   (per zone: mean of the 50 zones ending at N; B/clone: pool space over the N clones)");
        foreach (var (n, w, space, rss) in rows)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{n,6} {w,7:F1} s {Mean(wall, n) / 1000,7:F2} ms {Mean(cpu, n) / 1000,7:F2} ms {space / (double)n,8:F0} {rss / 1048576.0,5:F0} MiB"));
        int last = rows[^1].N;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"CPU per zone at {last} / at 100: {Mean(cpu, last) / Math.Max(1, Mean(cpu, 100)):F2}x   (goal: constant time, about 1x)"));
        var at1000 = rows.FirstOrDefault(r => r.N == 1_000);
        if (at1000.N == 1_000)
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pool space for 1000 clones: {at1000.Space} bytes = {100.0 * at1000.Space / imageBytes:F3}% of the image   (goal: under 1%; holds for an image over {at1000.Space * 100 / 1_048_576.0:F1} MiB)"));
        StorageOnly(o, pool, $"zones/{imageUuid}@final");
        pool.Dispose();
    }

    /// <summary>The dataset layer's clone alone (DatasetTree.Clone: no mount, no history, no zone),
    /// 1,000 more of the same snapshot, to tell its cost from the commands' around it.</summary>
    private static void StorageOnly(TextWriter o, Storage.Pool pool, string snapshot)
    {
        const int Clones = 1_000;
        var cpu = new double[Clones + 1];
        long before = pool.Allocated;
        for (int n = 1; n <= Clones; n++)
        {
            double cpuStart = ThreadCpuClock.Now();
            var r = pool.Datasets.Clone(snapshot, string.Create(CultureInfo.InvariantCulture, $"zones/bare{n}"));
            cpu[n] = (ThreadCpuClock.Now() - cpuStart) * 1e6;
            if (!r.IsOk) throw new InvalidOperationException(r.Message);
        }
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dataset layer alone, 1000 more clones: CPU {Mean(cpu, 100):F0} us at the 100th, {Mean(cpu, 1000):F0} us at the 1000th; {(pool.Allocated - before) / (double)Clones:F0} bytes each"));
    }

    /// <summary>
    /// What a clone costs in ZFS, for comparison. A ZFS clone shares its origin's objset block (it
    /// writes none of its own until changed); the MOS gains a dsl_dir and a dsl_dataset dnode, the
    /// dir's child-dir and props ZAPs, the dataset's snapnames ZAP and dead list (and bpobj): 6 dnodes
    /// of 512 bytes, in 16 KiB dnode blocks that compress, 3 microzaps of one sector each, entries in
    /// the parent's child ZAP and the origin's next-clones ZAP; and every txg appends to the space
    /// maps. Measured with zfs-fuse by zfs-clone-cost.sh beside this file (200 clones of a 4 MiB
    /// image, the pool's `used` before and after): printed as measured there, not here.
    /// </summary>
    private static void ZfsFigures(TextWriter o)
    {
        const int dnodes = 6, microzaps = 3;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ZFS, a clone: {dnodes} MOS dnodes of 512 B + {microzaps} microzap blocks = {dnodes * 512 + microzaps * 512} B before compression at ashift 9 ({dnodes * 512 + microzaps * 4096} B at ashift 12);"));
        o.WriteLine("  measured in zfs-fuse 0.7 (pool v23) by tests/SmartOS.Benchmarks/zfs-clone-cost.sh, 200 clones: 6673 B a clone at ashift 9, 39874 B at ashift 12");
        o.WriteLine("  so in ZFS too 1,000 clones stay under 1% of an image only from about 650 MiB (ashift 9) or 3.8 GiB (ashift 12)");
    }

    /// <summary>The mean of the 50 samples ending at <paramref name="at"/> (one sample is noise).</summary>
    private static double Mean(double[] samples, int at)
    {
        double sum = 0;
        int from = Math.Max(1, at - 49);
        for (int i = from; i <= at; i++) sum += samples[i];
        return sum / (at - from + 1);
    }
}
