using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using SmartOS.Kernel;
using SmartOS.Testing;

namespace SmartOS.Storage.Tests.Fuse;

/// <summary>
/// A filesystem dataset mounted through FUSE (FuseMount.cs) and used by real Linux programs: what
/// they write is in the ZPL, and survives unmount, export and import. The pool runs on a real-time
/// loop (RealTimeDriver) as on a running host; the test thread plays Linux. The loop's thread first
/// moves into a mount namespace of its own (unshare(CLONE_NEWNS), every mount private, as `unshare -m`
/// does), so the FUSE mount it makes is seen only there: the programs run inside it through nsenter,
/// the rest of the machine never sees the mount, and it goes when the loop's thread ends. The mount is
/// still always unmounted in finally (forced, then `umount -l` if even that failed), and every program
/// runs with a bounded wait.
/// </summary>
[TestFixture]
[NonParallelizable]
public class FuseMountTests : PoolFixture
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private Scheduler _scheduler = null!;
    private RealTimeDriver _driver = null!;
    private string _mnt = "";
    private string _namespace = "";

    [SetUp]
    public void StartLoop()
    {
        if (FuseMount.Unavailable() is string why) Assert.Ignore(why);
        if (!File.Exists("/usr/bin/nsenter") && !File.Exists("/bin/nsenter")) Assert.Ignore("nsenter (util-linux) is missing");
        _scheduler = new Scheduler();
        _driver = new RealTimeDriver(_scheduler);
        _driver.Start("fuse-test-loop");
        string? failed = null;
        int tid = OnLoop(() =>
        {
            failed = MountNamespace.EnterPrivate();
            return MountNamespace.ThreadId();
        });
        if (failed is not null) Assert.Ignore(failed);
        _namespace = $"/proc/{Environment.ProcessId}/task/{tid}";
        _mnt = Path.Combine(Dir, "mnt");
    }

    [TearDown]
    public void StopLoop()
    {
        if (_namespace.Length > 0 && MountedHere()) Sh($"umount -l '{_mnt}'", check: false);
        _driver?.Dispose();
        _namespace = "";
    }

    private T OnLoop<T>(Func<T> work)
    {
        var task = _driver.InvokeAsync(work);
        Assert.That(task.Wait(Bound), Is.True, "the loop did not answer");
        return task.Result;
    }

    private FileSystemOptions FsOptions() => new() { Clock = () => 1_700_000_000L * 1_000_000_000 + _scheduler.Now };

    /// <summary>A pool with tank/fs (formatted at create), its file system opened on the loop.</summary>
    private (Pool Pool, ZplFileSystem Fs) NewDataset(long vdevSize = VdevSize) => OnLoop(() =>
    {
        Assert.That(Pool.Create(Dir, "tank", [VdevSpec.Disk("d0")], vdevSize, Options(), out var pool).Message, Is.EqualTo("ok"));
        Assert.That(pool!.Datasets.Create("tank/fs", DatasetType.Filesystem).Message, Is.EqualTo("ok"));
        return (pool!, OpenFs(pool!));
    });

    private ZplFileSystem OpenFs(Pool pool)
    {
        Assert.That(pool.Datasets.Open("tank/fs", out var set).Message, Is.EqualTo("ok"));
        Assert.That(ZplFileSystem.Open(set, FsOptions(), out var fs).Message, Is.EqualTo("ok"));
        return fs!;
    }

    private FuseMount MountIt(Pool pool, ZplFileSystem fs, long commitInterval = 0)
    {
        FuseMount? mount = null;
        var result = OnLoop(() => FuseMount.Mount(_scheduler, _driver, pool, fs, "tank/fs", _mnt, out mount, commitInterval: commitInterval));
        Assert.That(result.Message, Is.EqualTo("ok"));
        return mount!;
    }

    /// <summary>Is the mountpoint mounted in the loop's namespace (and, as a check of the isolation, not in ours)?</summary>
    private bool MountedHere()
    {
        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain($" {_mnt} "), "the mount is private to the loop's namespace");
        return File.ReadAllText($"{_namespace}/mountinfo").Contains($" {_mnt} ");
    }

    /// <summary>Runs a shell script in the loop's mount namespace (cwd: the mountpoint's parent) with a bounded wait; its stdout.</summary>
    private string Sh(string script, bool check = true) => ShWithStatus(script, check).Output;

    private (int Status, string Output, string Error) ShWithStatus(string script, bool check = true)
    {
        var psi = new ProcessStartInfo("nsenter", [$"--mount={_namespace}/ns/mnt", "--", "sh", "-c", $"cd '{Dir}' && {script}"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(Bound))
        {
            p.Kill(entireProcessTree: true);
            throw new AssertionException($"'{script}' did not finish in {Bound.TotalSeconds} s");
        }
        p.WaitForExit();
        if (check && p.ExitCode != 0) throw new AssertionException($"'{script}' exited {p.ExitCode}: {error.Result}");
        return (p.ExitCode, output.Result, error.Result);
    }

    private static byte[] ReadAll(ZplFileSystem fs, string path)
    {
        Assert.That(fs.Stat(path, out var a).Message, Is.EqualTo("ok"), path);
        var data = new byte[a.Size];
        Assert.That(fs.Read(a.Inode, 0, data, out int n).Message, Is.EqualTo("ok"));
        Assert.That(n, Is.EqualTo(data.Length));
        return data;
    }

    [Test]
    public void Linux_programs_read_and_write_a_mounted_dataset_and_every_change_survives_export_and_import()
    {
        var (pool, fs) = NewDataset();
        byte[] big = Bytes(5 * 1024 * 1024 + 77, 5);
        File.WriteAllBytes(Path.Combine(Dir, "src.bin"), big);
        string sha = Convert.ToHexStringLower(SHA256.HashData(big));
        FuseMount? mount = null;
        try
        {
            mount = MountIt(pool, fs);
            Sh("cp src.bin mnt/big.bin && mkdir -p mnt/a/b/c && echo hello > mnt/a/b/c/hello.txt && mv mnt/a/b/c/hello.txt mnt/a/greeting.txt"
             + " && ln -s greeting.txt mnt/a/link && ln mnt/a/greeting.txt mnt/a/hard && chmod 640 mnt/a/greeting.txt && chown 1001:99 mnt/a/greeting.txt"
             + " && truncate -s 1M mnt/sparse && printf 'in a hole' | dd of=mnt/sparse bs=1 seek=300000 conv=notrunc,fsync status=none"
             + " && touch -d '2001-02-03 04:05:06 UTC' mnt/a/greeting.txt && mkdir mnt/a/b/d && echo x > mnt/a/b/d/x && cp -r mnt/a/b mnt/copy"
             + " && rm -r mnt/a/b && dd if=src.bin of=mnt/head bs=64k count=3 status=none && cp mnt/big.bin out.bin");
            string listing = Sh("ls -l mnt mnt/a");
            string[] stat = Sh("stat -c '%i %h %a %u %g %s %Y %F' mnt/a/greeting.txt mnt/a/hard mnt/sparse mnt/a/link").Split('\n');
            var rmdir = ShWithStatus("rmdir mnt/a", check: false);
            var mkdir = ShWithStatus("mkdir mnt/a", check: false);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(Sh("sha256sum mnt/big.bin").Split(' ')[0], Is.EqualTo(sha), "sha256sum reads the 5 MiB back");
                Assert.That(File.ReadAllBytes(Path.Combine(Dir, "out.bin")), Is.EqualTo(big), "cp out of the mount");
                Assert.That(Sh("cat mnt/a/link"), Is.EqualTo("hello\n"));
                Assert.That(Sh("readlink mnt/a/link"), Is.EqualTo("greeting.txt\n"));
                Assert.That(listing, Does.Contain("big.bin").And.Contain("copy").And.Contain("link -> greeting.txt"));
                Assert.That(listing, Does.Not.Contain(" b\n"), "rm -r removed a/b");
                string[] g = stat[0].Split(' '), h = stat[1].Split(' ');
                Assert.That(h[0], Is.EqualTo(g[0]), "a hard link is the same inode");
                Assert.That(g[1..], Is.EqualTo(new[] { "2", "640", "1001", "99", "6", "981173106", "regular", "file" }));
                Assert.That(stat[2].Split(' ')[5], Is.EqualTo("1048576"));
                Assert.That(stat[3], Does.EndWith("symbolic link"));
                Assert.That(Sh("dd if=mnt/sparse bs=1 skip=300000 count=9 status=none"), Is.EqualTo("in a hole"));
                Assert.That(Sh("cmp -n 196608 src.bin mnt/head && echo same"), Is.EqualTo("same\n"));
                Assert.That(Sh("cat mnt/copy/d/x"), Is.EqualTo("x\n"));
                Assert.That(rmdir.Error, Does.Contain("Directory not empty"), "ENOTEMPTY");
                Assert.That(mkdir.Error, Does.Contain("File exists"), "EEXIST");
                Assert.That(Sh($"grep ' {_mnt} ' /proc/mounts"), Does.StartWith("tank/fs ").And.Contain(" fuse.zfs "));
                Assert.That(Sh("df -P mnt | tail -1"), Does.StartWith("tank/fs "));
            }

            // Through the ZPL, still mounted: the same names, modes and bytes.
            OnLoop(() =>
            {
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(fs.Stat("/a/greeting.txt", out var a).Message, Is.EqualTo("ok"));
                    Assert.That((a.Mode, a.Uid, a.Gid, a.Links), Is.EqualTo((0x1A0u, 1001u, 99u, 2L)));
                    Assert.That(fs.ReadLink("/a/link", out string target).Message, Is.EqualTo("ok"));
                    Assert.That(target, Is.EqualTo("greeting.txt"));
                    Assert.That(SHA256.HashData(ReadAll(fs, "/big.bin")), Is.EqualTo(SHA256.HashData(big)));
                }
                return 0;
            });

            Assert.That(OnLoop(() => mount.Unmount()).Message, Is.EqualTo("ok"));
            Assert.That(MountedHere(), Is.False, "unmounted");
            mount = null;
        }
        finally
        {
            if (mount is not null) OnLoop(() => mount.Unmount(force: true));
        }

        OnLoop(() => pool.Export());
        OnLoop(() =>
        {
            var imported = Open("tank");
            var again = OpenFs(imported);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ReadAll(again, "/big.bin"), Is.EqualTo(big));
                Assert.That(ReadAll(again, "/a/greeting.txt"), Is.EqualTo("hello\n"u8.ToArray()));
                Assert.That(again.Stat("/a/hard", out var hard).Message, Is.EqualTo("ok"));
                Assert.That(hard.Mtime, Is.EqualTo(981173106L * 1_000_000_000), "touch -d");
                Assert.That(again.ReadLink("/a/link", out string target).Message, Is.EqualTo("ok"));
                Assert.That(target, Is.EqualTo("greeting.txt"));
                Assert.That(again.Stat("/a/b", out _).Status, Is.EqualTo(StorageStatus.NoSuchObject));
                Assert.That(ReadAll(again, "/copy/d/x"), Is.EqualTo("x\n"u8.ToArray()));
                byte[] sparse = ReadAll(again, "/sparse");
                Assert.That(sparse, Has.Length.EqualTo(1 << 20));
                Assert.That(sparse.AsSpan(300000, 9).SequenceEqual("in a hole"u8), Is.True);
                Assert.That(again.Stat("/sparse", out var s).Message, Is.EqualTo("ok"));
                var extents = new List<DataExtent>();
                Assert.That(again.GetExtents(s.Inode, extents).Message, Is.EqualTo("ok"));
                Assert.That(extents, Has.Count.EqualTo(1), "truncate -s left a hole around the one record written");
            }
            imported.Dispose();
            return 0;
        });
    }

    [Test]
    public void Fsync_is_durable_before_it_returns_and_64_MiB_of_writes_commit_while_plain_writes_wait_for_the_interval()
    {
        var (pool, fs) = NewDataset(vdevSize: 256L * 1024 * 1024);
        FuseMount? mount = null;
        try
        {
            mount = MountIt(pool, fs, commitInterval: 3600 * Time.Second);
            long txg = OnLoop(() => { pool.Commit(); return pool.Txg; });
            Sh("printf one > mnt/plain");
            Assert.That(OnLoop(() => pool.Txg), Is.EqualTo(txg), "a write without fsync waits for the next txg");
            Sh("printf two | dd of=mnt/synced conv=fsync status=none");
            long synced = OnLoop(() => pool.Txg);
            Assert.That(synced, Is.GreaterThan(txg), "fsync committed before dd returned");
            // Its log is open now: the next fsync writes the dataset's intent log, not a txg (IntentLog.cs).
            long logBlocks = OnLoop(() => pool.LogBlocksWritten);
            Sh("printf three | dd of=mnt/logged conv=fsync status=none");
            Assert.That(OnLoop(() => pool.Txg), Is.EqualTo(synced), "the second fsync committed no txg");
            Assert.That(OnLoop(() => pool.LogBlocksWritten), Is.GreaterThan(logBlocks), "it wrote the intent log");
            Sh("dd if=/dev/urandom of=mnt/big bs=1M count=65 status=none");
            Assert.That(OnLoop(() => pool.Txg), Is.GreaterThan(synced), "64 MiB written forced a commit");
            Assert.That(OnLoop(() => mount.Unmount()).Message, Is.EqualTo("ok"));
            mount = null;

            // A short interval: a plain write is committed without anyone asking.
            mount = MountIt(pool, fs, commitInterval: 200 * Time.Millisecond);
            txg = OnLoop(() => pool.Txg);
            Sh("printf three > mnt/later");
            var wait = Stopwatch.StartNew();
            while (OnLoop(() => pool.Txg) == txg && wait.Elapsed < Bound) Thread.Sleep(50);
            Assert.That(OnLoop(() => pool.Txg), Is.GreaterThan(txg), "the interval's commit");
        }
        finally
        {
            if (mount is not null) OnLoop(() => mount.Unmount(force: true));
            OnLoop(() => { pool.Dispose(); return 0; });
        }
    }

    [Test]
    public void Unmount_is_refused_while_a_file_is_open_and_forced_unmount_still_ends_the_mount()
    {
        var (pool, fs) = NewDataset();
        FuseMount? mount = null;
        Process? holder = null;
        try
        {
            mount = MountIt(pool, fs);
            Sh("echo kept > mnt/open.txt");
            holder = Process.Start(new ProcessStartInfo("nsenter", [$"--mount={_namespace}/ns/mnt", "--", "sh", "-c", $"cd '{Dir}' && exec 3<mnt/open.txt; echo ready; exec sleep 60"])
            {
                RedirectStandardOutput = true, UseShellExecute = false,
            })!;
            var ready = holder.StandardOutput.ReadLineAsync();
            Assert.That(ready.Wait(Bound), Is.True, "the holder opened the file");
            var busy = OnLoop(() => mount.Unmount());
            Assert.That((busy.Status, busy.Message), Is.EqualTo((StorageStatus.DatasetBusy, $"{_mnt}: Device busy")));
            Assert.That(MountedHere(), Is.True, "a refused unmount leaves the mount");
            Assert.That(OnLoop(() => mount.Unmount(force: true)).Message, Is.EqualTo("ok"));
            Assert.That((MountedHere(), mount.IsConnected), Is.EqualTo((false, false)));
            mount = null;
        }
        finally
        {
            if (mount is not null) OnLoop(() => mount.Unmount(force: true));
            if (holder is not null)
            {
                if (!holder.HasExited) holder.Kill();
                holder.WaitForExit(10_000);
                holder.Dispose();
            }
        }
        OnLoop(() =>
        {
            Assert.That(ReadAll(fs, "/open.txt"), Is.EqualTo("kept\n"u8.ToArray()), "the data written before the forced unmount is kept");
            pool.Dispose();
            return 0;
        });
    }

    [Test]
    public void A_mountpoint_that_is_not_empty_is_refused_with_zfs_words_and_nothing_is_mounted()
    {
        var (pool, fs) = NewDataset();
        Directory.CreateDirectory(_mnt);
        File.WriteAllText(Path.Combine(_mnt, "stray"), "");
        var result = OnLoop(() => FuseMount.Mount(_scheduler, _driver, pool, fs, "tank/fs", _mnt, out _));
        Assert.That((result.Status, result.Message), Is.EqualTo((StorageStatus.DatasetBusy, $"{_mnt}: directory is not empty")));
        Assert.That(MountedHere(), Is.False);
        OnLoop(() => { pool.Dispose(); return 0; });
    }
}
