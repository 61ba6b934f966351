using System.Diagnostics;
using SmartOS.Storage;
using SmartOS.Testing;

namespace SmartOS.Integration.Tests;

/// <summary>
/// `zfs mount` on a running host shows a dataset to Linux through FUSE under ROOT/mnt (Zfs.Mounts.cs
/// rule 2): what a Linux program writes there is what the host's own file commands read, and
/// unmounting takes the FUSE mount away. The loop's thread first moves into a mount namespace of its
/// own with every mount private, so the FUSE mount is seen only there: Linux programs run inside it
/// through nsenter, and the rest of the machine never sees it.
/// </summary>
[NonParallelizable]
public class ZfsMountFuseTests
{
    [Test]
    public void A_dataset_mounted_on_a_running_host_is_read_and_written_by_Linux_programs()
    {
        if (FuseMount.Unavailable() is string why) Assert.Ignore(why);
        if (!File.Exists("/usr/bin/nsenter") && !File.Exists("/bin/nsenter")) Assert.Ignore("nsenter (util-linux) is missing");
        string root = Directory.CreateTempSubdirectory("smartos-zfs-fuse-").FullName;
        using (var fs = new FileStream(Path.Combine(root, "d0"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        var host = new RealTimeHost(root: root);
        string task = "";
        string path = Path.Join(root, "mnt", "tank", "a");
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
            host.Ok("zpool", "create", "tank", "d0");
            host.Ok("zfs", "create", "tank/a");
            Assert.That(host.Ok("zfs", "mount", "tank/a"), Is.Empty);
            Assert.That(File.ReadAllText($"{task}/mountinfo"), Does.Contain(" " + path + " "), "mounted in the loop's namespace");
            Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(path), "and nowhere else");
            Assert.That(Linux(task, $"echo hello from linux > '{path}/f' && mkdir '{path}/d' && ls '{path}'"), Is.EqualTo("d\nf\n"));
            Assert.That(host.Ok("cat", "/tank/a/f"), Is.EqualTo("hello from linux\n"));
            host.Ok("mkfile", "2k", "/tank/a/d/made-here");
            Assert.That(Linux(task, $"stat -c %s '{path}/d/made-here'"), Is.EqualTo("2048\n"));
            host.Ok("zfs", "unmount", "tank/a");
            Assert.That(File.ReadAllText($"{task}/mountinfo"), Does.Not.Contain(" " + path + " "), "unmount takes the FUSE mount away");
            host.Ok("zfs", "mount", "tank/a");
            Assert.That(Linux(task, $"cat '{path}/f'"), Is.EqualTo("hello from linux\n"));
            host.Ok("zpool", "export", "tank");
            Assert.That(File.ReadAllText($"{task}/mountinfo"), Does.Not.Contain(" " + path + " "), "export takes it away first");
        }
        finally
        {
            if (task.Length > 0 && File.Exists($"{task}/mountinfo") && File.ReadAllText($"{task}/mountinfo").Contains(" " + path + " "))
                Linux(task, $"umount -l '{path}'", check: false);
            host.Dispose();
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Runs sh -c inside the loop thread's mount namespace, bounded in time; its standard output.</summary>
    private static string Linux(string task, string script, bool check = true)
    {
        var psi = new ProcessStartInfo("nsenter", ["--mount=" + task + "/ns/mnt", "sh", "-c", script])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{script}: did not finish in 30 s");
        }
        if (check) Assert.That(p.ExitCode, Is.Zero, $"{script}: {stderr.Result}");
        return stdout.Result;
    }
}
