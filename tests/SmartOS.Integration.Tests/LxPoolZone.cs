using System.Diagnostics;
using SmartOS.Storage;
using SmartOS.Testing;
using SmartOS.Zones;

namespace SmartOS.Integration.Tests;

/// <summary>
/// An lx zone on a dataset of a `zones` pool in a host running in real time, with BusyBox (and the
/// libraries ldd names when it is not static) copied into its root with the host's own file commands.
/// The loop's thread first moves into a mount namespace of its own, so the FUSE mounts are seen only
/// there and by the zone's programs (children of the loop's thread). Dispose halts and removes
/// everything it made, in a finally of the caller's using. Root, /dev/fuse, /dev/net/tun, ip(8),
/// chroot and busybox only: <see cref="Missing"/> says what is absent.
/// </summary>
internal sealed class LxPoolZone : IDisposable
{
    private readonly string _task = "";

    public RealTimeHost Host { get; }
    public string Zone { get; }
    public string RootDir { get; }

    /// <summary>Why the machine cannot run these tests, or null.</summary>
    public static string? Missing()
        => LinuxNet.MissingPrerequisite("chroot", "busybox", "ldd", "mount") ?? FuseMount.Unavailable();

    /// <param name="poolMiB">The size of the pool's one file vdev.</param>
    /// <param name="zonecfg">More zonecfg subcommands, after the net and before the install.</param>
    public LxPoolZone(int poolMiB = 256, string zonecfg = "")
    {
        Zone = "lx" + LinuxNet.Suffix();
        RootDir = Directory.CreateTempSubdirectory("smartos-lx-pool-").FullName;
        using (var fs = new FileStream(Path.Combine(RootDir, "d0"), FileMode.CreateNew)) fs.SetLength((long)poolMiB << 20);
        Host = new RealTimeHost(nics: 0, root: RootDir);
        string? failed = null;
        int tid = Host.OnLoop(() =>
        {
            failed = MountNamespace.EnterPrivate();
            return MountNamespace.ThreadId();
        });
        if (failed is not null)
        {
            Dispose();
            Assert.Ignore(failed);
        }
        _task = $"/proc/{Environment.ProcessId}/task/{tid}";
        Host.Ok("zpool", "create", "zones", "d0");
        Host.Ok("dladm", "create-etherstub", "-t", "stub0");
        Host.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "lx0");
        Host.Ok("zonecfg", "-z", Zone, $"create; set zonepath=/zones/{Zone}; set brand=lx; add net; set physical=lx0; set allowed-address=198.18.3.2/24; end; {zonecfg}");
        Host.Ok("zoneadm", "-z", Zone, "install");
        foreach (var (from, to) in BusyBoxFiles())
        {
            string inZone = $"/zones/{Zone}/root{to}";
            Host.Ok("mkdir", "-p", inZone[..inZone.LastIndexOf('/')]);
            var copied = Host.ShBytes(File.ReadAllBytes(from), "dd", "of=" + inZone, "bs=128k");
            Assert.That(copied.Code, Is.Zero, copied.Err);
            Host.Ok("chmod", "755", inZone);
        }
    }

    /// <summary>Runs a BusyBox shell script in the zone (zlogin).</summary>
    public (int Code, string Out, string Err) Sh(string script) => Host.Sh("zlogin", Zone, "/bin/busybox", "sh", "-c", script);

    /// <summary>A dataset's property as a number (zfs get -Hp).</summary>
    public long Number(string property, string dataset)
        => long.Parse(Host.Ok("zfs", "get", "-H", "-p", "-o", "value", property, dataset).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try
        {
            // FUSE mounts left in the loop's namespace are detached before the host (their server) goes.
            if (_task.Length > 0 && File.Exists($"{_task}/mountinfo"))
                foreach (string line in File.ReadAllLines($"{_task}/mountinfo"))
                    if (line.Split(' ') is { Length: > 4 } f && f[4].StartsWith(RootDir + "/mnt/", StringComparison.Ordinal))
                        Nsenter(_task, $"umount -l '{f[4]}'");
            Host.Dispose();
        }
        finally
        {
            LinuxNet.DeleteNamespace(LxZoneNetwork.NamespaceOf(Zone));
            Directory.Delete(RootDir, recursive: true);
        }
    }

    /// <summary>busybox, and the shared libraries it needs when it is not static (ldd's list).</summary>
    private static List<(string From, string To)> BusyBoxFiles()
    {
        string busybox = LinuxNet.Which("busybox")!;
        var files = new List<(string, string)> { (busybox, "/bin/busybox") };
        var (_, output, _) = LinuxNet.Run("ldd", busybox);
        foreach (string line in output.Split('\n'))
        {
            string[] words = line.Trim().Split(' ');
            string? library = words.Length >= 3 && words[1] == "=>" ? words[2] : words[0].StartsWith('/') ? words[0] : null;
            if (library is not null && File.Exists(library)) files.Add((library, library));
        }
        return files;
    }

    private static void Nsenter(string task, string script)
    {
        using var p = Process.Start(new ProcessStartInfo("nsenter", ["--mount=" + task + "/ns/mnt", "sh", "-c", script]))!;
        if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
    }
}
