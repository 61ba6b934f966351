using System.Diagnostics;
using System.Globalization;
using SmartOS.Cli;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// The cost of resolving a path in a view (zones/FileView.cs) against the mount table's lexical lookup
/// it replaced for the file commands: a six-name path, resolved in the global zone's view, in a zone's
/// view (the zone's root is two names deeper on the host) and through a symbolic link with an absolute
/// target; then `ls` of a 10,000-file directory through the dispatcher in the global zone and through
/// zlogin in the zone. Prints microseconds and bytes allocated per resolution.
/// </summary>
public static class ZoneFileBenchmarks
{
    private const int Resolutions = 200_000;
    private const int DirectoryFiles = 10_000;

    public static void Run(TextWriter o)
    {
        string root = Directory.CreateTempSubdirectory("smartos-zonefiles-bench-").FullName;
        try
        {
            using (var fs = new FileStream(Path.Combine(root, "d0"), FileMode.CreateNew)) fs.SetLength(512L << 20);
            var world = new World();
            var host = world.AddHost("h1", 1, new FileConfigStore(root));
            Ok(world, host, "zpool create zones d0");
            Ok(world, host, "zfs create zones/web");
            Ok(world, host, "mkdir -p /zones/web/root/a/b/c/d/e");
            Ok(world, host, "touch /zones/web/root/a/b/c/d/e/f");
            Ok(world, host, "ln -s /a/b/c/d/e /zones/web/root/link");
            Ok(world, host, "zonecfg -z web create; set zonepath=/zones/web");
            var zone = host.Zones.Find("web")!;
            var global = FileView.Global(host.Mounts);
            var view = FileView.ForZone(host.Mounts, zone, out _)!;
            o.WriteLine("zone files: path resolution (FileView.Resolve, follow) against MountTable.Resolve");
            Measure(o, "mount table, lexical", () => host.Mounts.Resolve("/zones/web/root/a/b/c/d/e/f", out _, out _));
            Measure(o, "global view", () => global.Resolve("/zones/web/root/a/b/c/d/e/f", true, out _));
            Measure(o, "zone view", () => view.Resolve("/a/b/c/d/e/f", true, out _));
            Measure(o, "zone view, via a link", () => view.Resolve("/link/f", true, out _));
            Ok(world, host, "mkdir /zones/web/root/many");
            var fsys = host.Mounts.Find("zones/web")!.FileSystem;
            for (int i = 0; i < DirectoryFiles; i++)
                Check(fsys.CreateFile("/root/many/f" + i.ToString(CultureInfo.InvariantCulture), 0x1A4, 0, 0, out _));
            Check(host.Mounts.Commit());
            var sw = Stopwatch.StartNew();
            Ok(world, host, "ls -l /zones/web/root/many");
            double inGlobal = sw.Elapsed.TotalMilliseconds;
            Ok(world, host, "zoneadm -z web install");
            Ok(world, host, "zoneadm -z web boot");
            sw.Restart();
            Ok(world, host, "zlogin web ls -l /many");
            double inZone = sw.Elapsed.TotalMilliseconds;
            o.WriteLine($"  ls -l of {DirectoryFiles} files: global zone {inGlobal:F0} ms, through zlogin in the zone {inZone:F0} ms");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Measure(TextWriter o, string what, Action resolve)
    {
        for (int i = 0; i < 1000; i++) resolve();
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < Resolutions; i++) resolve();
        double us = sw.Elapsed.TotalMilliseconds * 1000 / Resolutions;
        long bytes = (GC.GetAllocatedBytesForCurrentThread() - allocated) / Resolutions;
        o.WriteLine($"  {what,-24} {us,8:F2} us/path {bytes,6} B/path");
    }

    private static void Ok(World world, Host host, string line)
    {
        string[] argv = line.StartsWith("zonecfg", StringComparison.Ordinal)
            ? ["zonecfg", "-z", "web", line[(line.IndexOf("web", StringComparison.Ordinal) + 4)..]]
            : line.Split(' ');
        var r = Dispatcher.Run(world, host, argv);
        if (r.ExitCode != 0) throw new InvalidOperationException($"{line}: {r.Stderr}");
    }

    private static void Check(StorageResult r)
    {
        if (!r.IsOk) throw new InvalidOperationException(r.Message);
    }
}
