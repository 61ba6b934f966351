using System.Diagnostics;
using SmartOS.Storage;
using SmartOS.Testing;
using SmartOS.Zones;

namespace SmartOS.Integration.Tests;

/// <summary>
/// An lx zone on a dataset (zones/ZoneFiles.cs LinuxRoot, tools/Commands/Zlogin.cs): its root dataset is
/// shown to Linux through FUSE and its programs run chrooted into root/ there, so what a Linux program
/// writes lands in the pool, counts against the quota and is in the snapshots. BusyBox (and, when it is
/// not static, the libraries ldd names) is copied into the zone's root with the host's own file
/// commands. The loop's thread first moves into a mount namespace of its own, so the FUSE mount is seen
/// only there and by the zone's programs (children of the loop's thread). Root, /dev/fuse, /dev/net/tun,
/// ip(8), chroot and busybox only.
/// </summary>
[NonParallelizable]
public class LxZoneRootTests
{
    [Test]
    public void A_linux_programs_writes_land_in_the_zones_dataset_count_against_its_quota_and_are_in_snapshots()
    {
        if (LinuxNet.MissingPrerequisite("chroot", "busybox", "ldd") is string missing) Assert.Ignore(missing);
        if (FuseMount.Unavailable() is string why) Assert.Ignore(why);
        string zone = "lx" + LinuxNet.Suffix();
        string root = Directory.CreateTempSubdirectory("smartos-lx-root-").FullName;
        using (var fs = new FileStream(Path.Combine(root, "d0"), FileMode.CreateNew)) fs.SetLength(256L << 20);
        var host = new RealTimeHost(nics: 0, root: root);
        string task = "";
        string shown = Path.Join(root, "mnt", "zones", zone);
        try
        {
            string? failed = null;
            int tid = host.OnLoop(() =>
            {
                failed = MountNamespace.EnterPrivate();
                return MountNamespace.ThreadId();
            });
            if (failed is not null) Assert.Ignore(failed);
            task = $"/proc/{Environment.ProcessId}/task/{tid}";
            host.Ok("zpool", "create", "zones", "d0");
            host.Ok("dladm", "create-etherstub", "-t", "stub0");
            host.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "lx0");
            host.Ok("zonecfg", "-z", zone, $"create; set zonepath=/zones/{zone}; set brand=lx; add net; set physical=lx0; set allowed-address=198.18.3.2/24; end");
            host.Ok("zoneadm", "-z", zone, "install");
            // The contract with vmadm create and zoneadm install on datasets: made here when absent.
            if (host.Sh("zfs", "list", $"zones/{zone}").Code != 0) host.Ok("zfs", "create", $"zones/{zone}");
            foreach (var (from, to) in BusyBoxFiles())
            {
                string inZone = $"/zones/{zone}/root{to}";
                host.Ok("mkdir", "-p", inZone[..inZone.LastIndexOf('/')]);
                var copied = host.ShBytes(File.ReadAllBytes(from), "dd", "of=" + inZone, "bs=128k");
                Assert.That(copied.Code, Is.Zero, copied.Err);
                host.Ok("chmod", "755", inZone);
            }
            host.Ok("zoneadm", "-z", zone, "boot");

            var written = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "echo written by linux > /hello && /bin/busybox ls /");
            Assert.That(written.Code, Is.Zero, written.Err);
            Assert.That(written.Out, Does.Contain("hello"), "the program sees the zone's root as /");
            Assert.That(written.Out, Does.Not.Contain("proc").And.Not.Contain("etc"), "and nothing of the machine's root");
            Assert.That(host.Ok("cat", $"/zones/{zone}/root/hello"), Is.EqualTo("written by linux\n"), "the write is in the pool");
            Assert.That(host.Ok("zlogin", zone, "/bin/busybox", "cat", "/../../../hello"), Is.EqualTo("written by linux\n"), ".. stops at the zone's root");

            // Snapshots hold what the program wrote.
            host.Ok("zfs", "snapshot", $"zones/{zone}@one");
            host.Ok("zlogin", zone, "/bin/busybox", "rm", "/hello");
            host.Ok("zfs", "clone", $"zones/{zone}@one", "zones/copy");
            Assert.That(host.Ok("cat", "/zones/copy/root/hello"), Is.EqualTo("written by linux\n"));
            Assert.That(host.Sh("cat", $"/zones/{zone}/root/hello").Code, Is.Not.Zero);

            // What a Linux program writes is charged to the dataset, and its quota stops the writer.
            long Used() => long.Parse(host.Ok("zfs", "get", "-H", "-p", "-o", "value", "used", $"zones/{zone}").Trim(), System.Globalization.CultureInfo.InvariantCulture);
            long before = Used();
            var grown = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "/bin/busybox head -c 262144 /bin/busybox > /grown && /bin/busybox sync /grown");
            Assert.That(grown.Code, Is.Zero, grown.Err);
            Assert.That(Used(), Is.GreaterThanOrEqualTo(before + (200L << 10)), "the file counts in the dataset's used");
            long quota = Used() + (64L << 10);
            host.Ok("zfs", "set", $"quota={quota}", $"zones/{zone}");
            var filler = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "/bin/busybox head -c 262144 /bin/busybox > /big");
            Assert.That(filler.Code, Is.EqualTo(1), "the writer is stopped");
            // The ZPL refuses the write with EDQUOT (ZoneFileTests); through FUSE, Linux reports it as EIO
            // (head: I/O error), a storage/Fuse matter noted in this branch's report.
            Assert.That(filler.Err, Does.Contain("quota exceeded").IgnoreCase.Or.Contain("I/O error"));
            Assert.That(Used(), Is.LessThanOrEqualTo(quota));
            var after = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "/bin/busybox rm /big && echo again > /small && /bin/busybox cat /small");
            Assert.That((after.Code, after.Out), Is.EqualTo((0, "again\n")), after.Err);
            host.Ok("zoneadm", "-z", zone, "halt");
        }
        finally
        {
            if (task.Length > 0 && File.Exists($"{task}/mountinfo") && File.ReadAllText($"{task}/mountinfo").Contains(" " + shown + " "))
                Nsenter(task, $"umount -l '{shown}'");
            host.Dispose();
            LinuxNet.DeleteNamespace(LxZoneNetwork.NamespaceOf(zone));
            Directory.Delete(root, recursive: true);
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
