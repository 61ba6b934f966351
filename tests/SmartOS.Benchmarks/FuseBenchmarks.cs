using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Benchmarks;

/// <summary>
/// cp through a FUSE mount of a filesystem dataset (storage/Fuse/FuseMount.cs): a 256 MiB file of
/// random bytes copied in with cp (then `sync` on it: the fsync that commits the txg, timed apart),
/// and copied out again after an unmount and remount (the kernel's page cache is gone; the pool's
/// block cache, 64 MiB, holds at most a quarter of the file). Beside it, the same cp between two
/// plain files in the same directory: the disk's and cp's own limit. Needs root, /dev/fuse and
/// libfuse.so.2; otherwise says why and skips. Every request crosses from libfuse's thread to the
/// loop and back (RealTimeDriver.Invoke), so the figures include that hand-off per 128 KiB write.
/// </summary>
public static class FuseBenchmarks
{
    private const long Total = 256L * 1024 * 1024;

    public static void Run(TextWriter o, string dir)
    {
        if (FuseMount.Unavailable() is string why)
        {
            o.WriteLine($"storage: cp through a FUSE mount skipped: {why}");
            return;
        }
        string source = Path.Combine(dir, "fuse-src.bin"), mnt = Path.Combine(dir, "fusemnt");
        var data = new byte[1024 * 1024];
        new HostRandom(9).NextBytes(data);
        using (var f = File.Create(source))
            for (long done = 0; done < Total; done += data.Length) f.Write(data);
        double plainIn = Timed($"cp '{source}' '{dir}/fuse-plain.bin' && sync '{dir}/fuse-plain.bin'");
        File.Delete(Path.Combine(dir, "fuse-plain.bin"));

        var scheduler = new Scheduler();
        using var driver = new RealTimeDriver(scheduler);
        driver.Start("fuse-bench-loop");
        T OnLoop<T>(Func<T> work) => driver.InvokeAsync(work).Result;
        var fsOptions = new FileSystemOptions { Clock = () => scheduler.Now, Atime = false };
        var (pool, fs) = OnLoop(() =>
        {
            Check(Pool.Create(dir, "fusebench", [VdevSpec.Disk("fuse0")], Total + 256L * 1024 * 1024,
                              new PoolOptions { Clock = () => scheduler.Now, Random = new HostRandom(8) }, out var created));
            Check(created!.Datasets.Create("fusebench/fs", DatasetType.Filesystem));
            Check(created.Datasets.Open("fusebench/fs", out var set));
            Check(ZplFileSystem.Open(set, fsOptions, out var opened));
            return (created, opened!);
        });
        FuseMount? mount = null;
        try
        {
            mount = OnLoop(() => { Check(FuseMount.Mount(scheduler, driver, pool, fs, "fusebench/fs", mnt, out var m)); return m!; });
            double cpIn = Timed($"cp '{source}' '{mnt}/f'");
            double sync = Timed($"sync '{mnt}/f'");
            Check(OnLoop(() => mount.Unmount()));
            mount = OnLoop(() => { Check(FuseMount.Mount(scheduler, driver, pool, fs, "fusebench/fs", mnt, out var m)); return m!; });
            double cpOut = Timed($"cp '{mnt}/f' '{dir}/fuse-out.bin'");
            if (Run($"cmp '{source}' '{dir}/fuse-out.bin' && echo same") != "same\n") throw new InvalidOperationException("fuse: the copy out differs");
            Check(OnLoop(() => mount.Unmount()));
            mount = null;
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"storage: cp of {Total >> 20} MiB through a FUSE mount: in {Total / cpIn / 1e6:F0} MB/s (then sync, the txg commit: {sync:F2} s), out {Total / cpOut / 1e6:F0} MB/s; plain file cp with sync {Total / plainIn / 1e6:F0} MB/s"));
        }
        finally
        {
            if (mount is not null) OnLoop(() => mount.Unmount(force: true));
            OnLoop(() => { pool.Dispose(); return 0; });
            File.Delete(source);
            File.Delete(Path.Combine(dir, "fuse-out.bin"));
        }
    }

    private static double Timed(string script)
    {
        var sw = Stopwatch.StartNew();
        Run(script);
        return sw.Elapsed.TotalSeconds;
    }

    private static string Run(string script)
    {
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", script]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{script}' did not finish");
        }
        if (p.ExitCode != 0) throw new InvalidOperationException($"'{script}' exited {p.ExitCode}");
        return output.Result;
    }

    private static void Check(StorageResult result)
    {
        if (!result.IsOk) throw new InvalidOperationException(result.Message);
    }
}
