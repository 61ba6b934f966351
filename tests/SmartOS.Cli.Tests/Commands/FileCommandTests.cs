using System.Security.Cryptography;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;
using CommandsDf = SmartOS.Cli.Commands.Df;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>The file commands over the host's mount table (zones/MountTable.cs, tools/Commands/Files.cs),
/// on a pool `tank` whose root dataset is mounted at /tank.</summary>
public class FileCommandTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-files-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host on the root with pool tank on one sparse 64 MiB file; its clock at 2026-01-02 03:04:05 UTC.</summary>
    private CliHost Tank()
    {
        using (var fs = new FileStream(Path.Combine(_root, "d0"), FileMode.CreateNew)) fs.SetLength(Pool.MinVdevSize);
        var h = new CliHost(store: new FileConfigStore(_root), epoch: Epoch);
        h.Ok(A("zpool create tank d0"));
        return h;
    }

    private static readonly long Epoch = (new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc) - DateTime.UnixEpoch).Ticks * 100;

    private static CommandResult Stdin(CliHost h, byte[] input, string line)
        => Dispatcher.Run(h.World, h.Host, A(line), new MemoryStream(input));

    [Test]
    public void Pool_root_is_mounted_at_slash_pool_and_files_round_trip()
    {
        var h = Tank();
        Assert.That(h.Host.Mounts.List.Select(m => (m.Dataset, m.MountPoint)), Is.EqualTo(new[] { ("tank", "/tank") }));
        h.Ok(A("mkdir /tank/d"));
        h.WithStdin("hello\n", "dd", "of=/tank/d/f");
        Assert.That(h.Ok(A("cat /tank/d/f")), Is.EqualTo("hello\n"));
        Assert.That(h.Ok(A("ls /tank")), Is.EqualTo("d\n"));
        Assert.That(h.Ok(A("ls /tank/d /tank")), Is.EqualTo("/tank:\nd\n\n/tank/d:\nf\n"));
    }

    [Test]
    public void Ls_l_prints_illumos_long_lines_with_host_clock_dates()
    {
        var h = Tank();
        h.Ok(A("mkdir /tank/d"));
        h.WithStdin("hello\n", "dd", "of=/tank/f");
        h.Ok(A("ln -s f /tank/l"));
        h.Ok(A("touch -t 202001020304 /tank/old"));
        string listing = h.Ok(A("ls -l /tank"));
        Assert.That(listing, Is.EqualTo(
            "total 2\n" +
            "drwxr-xr-x   2 root     root           2 Jan  2 03:04 d\n" +
            "-rw-r--r--   1 root     root           6 Jan  2 03:04 f\n" +
            "lrwxrwxrwx   1 root     root           1 Jan  2 03:04 l -> f\n" +
            "-rw-r--r--   1 root     root           0 Jan  2  2020 old\n"));
        Assert.That(h.Ok(A("ls -n /tank/f")), Is.EqualTo("-rw-r--r--   1 0        0              6 Jan  2 03:04 /tank/f\n"));
        Assert.That(h.Ok(A("ls -ld /tank/d")), Does.StartWith("drwxr-xr-x   2 root     root           2 Jan  2 03:04 /tank/d\n"));
    }

    [Test]
    public void Ls_options_mark_sort_and_recurse()
    {
        var h = Tank();
        h.Ok(A("mkdir -p /tank/a/b"));
        h.Ok(A("touch /tank/.hidden /tank/z"));
        h.Ok(A("ln -s z /tank/y"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("ls -a /tank")), Is.EqualTo(".\n..\n.hidden\na\ny\nz\n"));
            Assert.That(h.Ok(A("ls -A /tank")), Is.EqualTo(".hidden\na\ny\nz\n"));
            Assert.That(h.Ok(A("ls -F /tank")), Is.EqualTo("a/\ny@\nz\n"));
            Assert.That(h.Ok(A("ls -p /tank")), Is.EqualTo("a/\ny\nz\n"));
            Assert.That(h.Ok(A("ls -r /tank")), Is.EqualTo("z\ny\na\n"));
            Assert.That(h.Ok(A("ls -1 -d /tank/a")), Is.EqualTo("/tank/a\n"));
            Assert.That(h.Ok(A("ls -R /tank")), Is.EqualTo("/tank:\na\ny\nz\n\n/tank/a:\nb\n\n/tank/a/b:\n"));
            Assert.That(h.Ok(A("ls -i /tank/z")), Does.Match(@"^ +\d+ /tank/z\n$"));
            Assert.That(h.Ok(A("ls -s /tank/z")), Is.EqualTo("   0 /tank/z\n"));
        }
        h.World.Scheduler.RunFor(Time.Second * 60);
        h.Ok(A("touch /tank/a"));
        Assert.That(h.Ok(A("ls -t /tank")), Is.EqualTo("a\ny\nz\n"));
    }

    [Test]
    public void Ls_h_and_missing_operands()
    {
        var h = Tank();
        h.Ok(A("mkfile -n 3m /tank/big"));
        Assert.That(h.Ok(A("ls -lh /tank/big")), Does.Contain("root          3M Jan  2 03:04 /tank/big"));
        var r = h.Line("ls /tank/nosuch /nowhere");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "/tank/nosuch: No such file or directory\n/nowhere: No such file or directory\n")));
        r = h.Line("ls -z /tank");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "ls: illegal option -- z\nusage: ls -1aAdFhilnprRst [files]\n")));
    }

    [Test]
    public void Mkdir_rmdir_rm_and_their_errors()
    {
        var h = Tank();
        h.Ok(A("mkdir -m 700 /tank/p"));
        Assert.That(h.Ok(A("ls -ld /tank/p")), Does.StartWith("drwx------"));
        var r = h.Line("mkdir /tank/p");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "mkdir: Failed to make directory \"/tank/p\"; File exists\n")));
        r = h.Line("mkdir /tank/x/y");
        Assert.That(r.Stderr, Is.EqualTo("mkdir: Failed to make directory \"/tank/x/y\"; No such file or directory\n"));
        h.Ok(A("mkdir -p /tank/x/y/z"));
        h.Ok(A("touch /tank/x/y/f"));
        r = h.Line("rmdir /tank/x/y");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "rmdir: directory \"/tank/x/y\": Directory not empty\n")));
        r = h.Line("rmdir /tank/x/nosuch");
        Assert.That(r.Stderr, Is.EqualTo("rmdir: directory \"/tank/x/nosuch\": Directory does not exist\n"));
        r = h.Line("rm /tank/x");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "rm: /tank/x is a directory\n")));
        r = h.Line("rm /tank/nosuch");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "/tank/nosuch: No such file or directory\n")));
        Assert.That(h.Line("rm -f /tank/nosuch").ExitCode, Is.Zero);
        r = h.Line("mkdir -p /tank/x/y/f");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "mkdir: \"/tank/x/y/f\": Exists but is not a directory\n")));
        Assert.That(h.Line("mkdir -p /tank/x/y").ExitCode, Is.Zero);
        r = h.Line("rmdir -p /tank/x/y/z");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "rmdir: directory \"/tank/x/y/z\": /tank/x/y not removed; Directory not empty\n")));
        Assert.That(h.Ok(A("ls /tank/x/y")), Is.EqualTo("f\n"));
        r = h.Line("rm -r /tank/.");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "rm of /tank/. is not allowed\n")));
        h.Ok(A("rm -r /tank/x"));
        h.Ok(A("rmdir /tank/p"));
        Assert.That(h.Ok(A("ls -a /tank")), Is.EqualTo(".\n..\n"));
        r = h.Line("rmdir /tank");
        Assert.That(r.Stderr, Is.EqualTo("rmdir: directory \"/tank\": Directory is a mount point or in use\n"));
    }

    [Test]
    public void Cp_mv_ln_copy_move_and_link()
    {
        var h = Tank();
        h.WithStdin("data\n", "dd", "of=/tank/a");
        h.Ok(A("cp /tank/a /tank/b"));
        h.Ok(A("mkdir /tank/d"));
        h.Ok(A("cp /tank/a /tank/b /tank/d"));
        Assert.That(h.Ok(A("ls /tank/d")), Is.EqualTo("a\nb\n"));
        h.Ok(A("cp -r /tank/d /tank/e"));
        Assert.That(h.Ok(A("cat /tank/e/b")), Is.EqualTo("data\n"));
        h.Ok(A("mv /tank/e /tank/f"));
        Assert.That(h.Ok(A("ls /tank")), Is.EqualTo("a\nb\nd\nf\n"));
        h.Ok(A("ln /tank/a /tank/hard"));
        Assert.That(h.Ok(A("ls -l /tank/a")), Does.StartWith("-rw-r--r--   2 "));
        var r = h.Line("ln -s a /tank/hard");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "ln: cannot create /tank/hard: File exists\n")));
        h.Ok(A("ln -sf a /tank/hard"));
        Assert.That(h.Ok(A("ls -l /tank/hard")), Does.EndWith("/tank/hard -> a\n"));
        r = h.Line("cp /tank/d /tank/g");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "cp: /tank/d: is a directory\n")));
        r = h.Line("cp /tank/nosuch /tank/g");
        Assert.That(r.Stderr, Is.EqualTo("cp: cannot access /tank/nosuch\n"));
        r = h.Line("cp /tank/a /tank/a");
        Assert.That(r.Stderr, Is.EqualTo("cp: /tank/a and /tank/a are identical\n"));
        r = h.Line("mv /tank/a /tank/b /tank/nosuch");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "mv: /tank/nosuch not found\n")));
        r = h.Line("cp /tank/a /tank/b /tank/hard");
        Assert.That((r.ExitCode, r.Stderr.StartsWith("cp: Target /tank/hard must be a directory\nUsage: cp ", StringComparison.Ordinal)), Is.EqualTo((2, true)));
        r = h.Line("cp /tank/a");
        Assert.That(r.Stderr, Does.StartWith("cp: Insufficient arguments (1)\nUsage: cp "));
        r = h.Line("ln /tank/d /tank/dl");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "ln: /tank/d is a directory\n")));
        r = h.Line("ln /tank/a /tank/b");
        Assert.That(r.Stderr, Is.EqualTo("ln: cannot create link /tank/b: File exists\n"));
        h.Ok(A("mkdir /tank/f/sub"));
        r = h.Line("ln -sf /tank/sub /tank/f");
        Assert.That(r.Stderr, Is.EqualTo("ln: cannot create link over directory /tank/f/sub\n"));
        r = h.Line("mv /tank/d /tank/d/x");
        Assert.That(r.Stderr, Is.EqualTo("mv: cannot rename /tank/d to /tank/d/x: Invalid argument\n"));
        r = h.Line("cp -i /tank/a /tank/c");
        Assert.That(r.Stderr, Does.StartWith("cp: illegal option -- i\n"));
    }

    [Test]
    public void Cp_p_keeps_mode_and_times()
    {
        var h = Tank();
        h.Ok(A("touch -t 201001010000 /tank/a"));
        h.World.Scheduler.RunFor(Time.Second * 600);
        h.Ok(A("cp -p /tank/a /tank/b"));
        h.Ok(A("cp /tank/a /tank/c"));
        Assert.That(h.Ok(A("ls -l /tank/b /tank/c")), Is.EqualTo(
            "-rw-r--r--   1 root     root           0 Jan  1  2010 /tank/b\n" +
            "-rw-r--r--   1 root     root           0 Jan  2 03:14 /tank/c\n"));
    }

    [Test]
    public void Touch_options()
    {
        var h = Tank();
        Assert.That(h.Line("touch -c /tank/none").ExitCode, Is.Zero);
        Assert.That(h.Ok(A("ls /tank")), Is.Empty);
        h.Ok(A("touch -m -t 199912312359.30 /tank/none"));
        Assert.That(h.Ok(A("ls -l /tank/none")), Does.Contain(" Dec 31  1999 "));
        h.Ok(A("touch -r /tank/none /tank/copy"));
        Assert.That(h.Ok(A("ls -l /tank/copy")), Does.Contain(" Dec 31  1999 "));
        var r = h.Line("touch -t 9999 /tank/x");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "touch: bad time specification\n")));
        Assert.That(h.Ok(A("ls /tank")), Is.EqualTo("copy\nnone\n"));
    }

    [Test]
    public void Df_and_du_print_illumos_columns()
    {
        var h = Tank();
        Stdin(h, new byte[1 << 20].Select((_, i) => (byte)(i * 7 + 1)).ToArray(), "dd of=/tank/f bs=128k");
        string df = h.Ok(A("df -h"));
        var lines = df.Split('\n');
        Assert.That(lines[0], Is.EqualTo("Filesystem             size   used  avail capacity  Mounted on"));
        Assert.That(lines[1], Does.Match(@"^tank {16} +\S+ +\S+ +\S+ +\d+%    /tank$"));
        Assert.That(h.Ok(A("df -k /tank/f")), Does.StartWith("Filesystem            kbytes    used   avail capacity  Mounted on\ntank "));
        Assert.That(h.Ok(A("df")), Does.Match(@"^/tank +\(tank +\): *\d+ blocks +\d+ files\n$"));
        Assert.That(h.Ok(A("df -F ufs")), Is.Empty);
        var r = h.Line("df -F ufs /tank");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "df: Warning: /tank mounted as a zfs file system\n")));
        r = h.Line("df -q");
        Assert.That((r.ExitCode, r.Stderr.StartsWith("df: unknown option: q\nUsage: df [-F FSType]", StringComparison.Ordinal)), Is.EqualTo((1, true)));
        Assert.That(CommandsDf.Scaled(2560), Is.EqualTo("   2K"));
        Assert.That(CommandsDf.Scaled(33_554_432), Is.EqualTo("  32M"));
        Assert.That(CommandsDf.Scaled(1_572_864), Is.EqualTo("1.5M"));
        h.Ok(A("mkdir /tank/d"));
        h.Ok(A("mkfile -n 1g /tank/d/sparse"));
        string du = h.Ok(A("du -a -k /tank"));
        Assert.That(du, Does.Match(@"(^|\n)\d\t/tank/d/sparse\n"));
        Assert.That(du, Does.EndWith("\t/tank\n"));
        Assert.That(h.Ok(A("du -s -k /tank/d/sparse")), Does.Match(@"^[0-4]\t/tank/d/sparse\n$"));
        Assert.That(h.Ok(A("du -sh /tank/f")), Does.Match(@"^1(\.\d+)?M\t/tank/f\n$"));
    }

    [Test]
    public void Digest_prints_the_hash_of_files_and_stdin()
    {
        var h = Tank();
        h.WithStdin("abc", "dd", "of=/tank/a");
        string sha = Convert.ToHexStringLower(SHA256.HashData("abc"u8));
        Assert.That(h.Ok(A("digest -a sha256 /tank/a")), Is.EqualTo(sha + "\n"));
        Assert.That(h.Ok(A("digest -v -a sha256 /tank/a")), Is.EqualTo($"sha256 (/tank/a) = {sha}\n"));
        Assert.That(h.Ok(A("digest -a md5 /tank/a /tank/a")), Is.EqualTo("(/tank/a) = 900150983cd24fb0d6963f7d28e17f72\n(/tank/a) = 900150983cd24fb0d6963f7d28e17f72\n"));
        Assert.That(h.WithStdin("abc", "digest", "-a", "sha1").Stdout, Is.EqualTo("a9993e364706816aba3e25717850c26c9cd0d89d\n"));
        var r = h.Line("digest -a crc /tank/a");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "digest: unknown algorithm -- crc\n")));
    }

    [Test]
    public void Cat_and_dd_pass_bytes_unchanged()
    {
        var h = Tank();
        var bytes = new byte[300_000];
        new Random(7).NextBytes(bytes);
        var r = Stdin(h, bytes, "dd of=/tank/bin bs=64k");
        Assert.That(r.Stderr, Is.EqualTo("4+1 records in\n4+1 records out\n"));
        Assert.That(h.Run(A("cat /tank/bin")).StdoutBytes, Is.EqualTo(bytes));
        Assert.That(Stdin(h, bytes, "cat").StdoutBytes, Is.EqualTo(bytes));
        r = Stdin(h, bytes, "cat - /tank/bin");
        Assert.That(r.StdoutBytes, Is.EqualTo(bytes.Concat(bytes).ToArray()));
        r = h.Run(A("dd if=/tank/bin bs=1k skip=2 count=3"));
        Assert.That((r.StdoutBytes, r.Stderr), Is.EqualTo((bytes[2048..5120], "3+0 records in\n3+0 records out\n")));
        r = h.Run(A("dd if=/tank/bin ibs=1000 obs=4096 count=5"));
        Assert.That((r.StdoutBytes, r.Stderr), Is.EqualTo((bytes[..5000], "5+0 records in\n1+1 records out\n")));
        r = Stdin(h, "abc"u8.ToArray(), "dd bs=8 conv=sync");
        Assert.That((r.StdoutBytes, r.Stderr), Is.EqualTo(("abc\0\0\0\0\0"u8.ToArray(), "0+1 records in\n1+0 records out\n")));
        r = Stdin(h, "a\tb\x01\n\nc\u00e9\n"u8.ToArray(), "cat -n -v -t -e");
        Assert.That(r.Stdout, Is.EqualTo("     1\ta^Ib^A$\n     2\t$\n     3\tcM-CM-)$\n"));
        Assert.That(Stdin(h, "x\n\ny\n"u8.ToArray(), "cat -b").Stdout, Is.EqualTo("     1\tx\n\n     2\ty\n"));
        Assert.That(h.Line("cat -s /tank/nosuch").Stderr, Is.Empty);
        r = h.Line("cat /tank");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "cat: input error on /tank: Is a directory\n")));
        r = h.Line("cat /tank/nosuch");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "cat: cannot open /tank/nosuch: No such file or directory\n")));
        r = h.Line("dd if=/tank/bin of=/tank/x conv=ascii");
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(h.Line("ls /tank/x").ExitCode, Is.EqualTo(2), "a refused dd creates nothing");
    }

    [Test]
    public void Holes_from_mkfile_n_and_dd_seek_take_no_space()
    {
        var h = Tank();
        h.Ok(A("mkfile -nv 8m /tank/sparse"));
        Stdin(h, "tail"u8.ToArray(), "dd of=/tank/seek bs=1m seek=4");
        Stdin(h, "X"u8.ToArray(), "dd of=/tank/sparse bs=1 seek=100 conv=notrunc");
        Assert.That(h.Ok(A("ls -ls /tank/seek /tank/sparse")), Does.Match(
            @"^ +\d +-rw-r--r--   1 root     root     4194308 .* /tank/seek\n +\d +-rw-r--r--   1 root     root     8388608 .* /tank/sparse\n$"));
        var data = h.Run(A("cat /tank/sparse")).StdoutBytes;
        Assert.That((data.Length, data[100], data.Count(b => b != 0)), Is.EqualTo((8 << 20, (byte)'X', 1)));
        var full = h.Run(A("dd if=/tank/seek bs=1m skip=4")).StdoutBytes;
        Assert.That(Encoding.ASCII.GetString(full), Is.EqualTo("tail"));
    }

    [Test]
    public void Changes_survive_export_and_import()
    {
        var h = Tank();
        h.Ok(A("mkdir /tank/keep"));
        h.WithStdin("kept\n", "dd", "of=/tank/keep/f");
        h.Ok(A("zpool export tank"));
        Assert.That(h.Line("ls /tank").ExitCode, Is.EqualTo(2));
        Assert.That(h.Host.Mounts.List, Is.Empty);
        h.Ok(A("zpool import -d . tank".Replace(".", _root)));
        Assert.That(h.Ok(A("cat /tank/keep/f")), Is.EqualTo("kept\n"));
        // A fresh host on the same root imports the cached pool on first use and mounts it.
        var again = new CliHost(store: new FileConfigStore(_root));
        Assert.That(again.Ok(A("cat /tank/keep/f")), Is.EqualTo("kept\n"));
    }

    [Test]
    public void Nested_mounts_resolve_to_the_deepest_and_readonly_refuses_with_erofs()
    {
        var h = Tank();
        var pool = h.Host.Pools.Find("tank")!;
        Assert.That(pool.Datasets.Create("tank/home", DatasetType.Filesystem).IsOk);
        Assert.That(pool.Datasets.Create("tank/ro", DatasetType.Filesystem, new Dictionary<string, string> { ["readonly"] = "on" }).IsOk);
        Assert.That(h.Host.Mounts.Mount("tank/home").IsOk);
        Assert.That(h.Host.Mounts.Mount("tank/ro").IsOk);
        Assert.That(h.Host.Mounts.Mount("tank/home").Message, Is.EqualTo("cannot mount 'tank/home': filesystem already mounted"));
        h.Ok(A("touch /tank/home/mine"));
        Assert.That(h.Ok(A("ls /tank")), Is.EqualTo("home\nro\n"));
        Assert.That(h.Ok(A("ls /tank/home")), Is.EqualTo("mine\n"));
        Assert.That(h.Host.Mounts.Resolve("/tank/home/x/../mine", out var m, out string inner) && m!.Dataset == "tank/home" && inner == "/mine");
        var r = h.Line("touch /tank/ro/x");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "touch: cannot create /tank/ro/x: Read-only file system\n")));
        r = h.Line("mkdir /tank/ro/d");
        Assert.That(r.Stderr, Is.EqualTo("mkdir: Failed to make directory \"/tank/ro/d\"; Read-only file system\n"));
        Assert.That(h.Line("mv /tank/home /tank/elsewhere").Stderr, Is.EqualTo("mv: cannot rename /tank/home to /tank/elsewhere: Device busy\n"));
        // Across file systems mv copies and removes.
        h.Ok(A("mv /tank/home/mine /tank/moved"));
        Assert.That(h.Ok(A("ls /tank/home")), Is.Empty);
        Assert.That(h.Ok(A("ls /tank")), Is.EqualTo("home\nmoved\nro\n"));
        Assert.That(h.Host.Mounts.Unmount("tank").Message, Is.EqualTo("cannot unmount '/tank': Device busy"));
        Assert.That(h.Host.Mounts.Unmount("tank/home").IsOk);
        Assert.That(h.Host.Mounts.Unmount("tank/home").Message, Is.EqualTo("cannot unmount 'tank/home': not currently mounted"));
        Assert.That(h.Ok(A("ls /tank/home")), Is.Empty, "the mountpoint directory stays in tank");
        Assert.That(h.Host.Mounts.Unmount("tank", force: true).IsOk);
        Assert.That(h.Host.Mounts.List, Is.Empty);
    }

    [Test]
    public void Mounted_dataset_is_held_against_destroy()
    {
        var h = Tank();
        var pool = h.Host.Pools.Find("tank")!;
        pool.Datasets.Create("tank/fs", DatasetType.Filesystem);
        h.Host.Mounts.Mount("tank/fs");
        Assert.That(pool.Datasets.Destroy("tank/fs").Status, Is.EqualTo(StorageStatus.DatasetBusy));
        h.Host.Mounts.Unmount("tank/fs");
        Assert.That(pool.Datasets.Destroy("tank/fs").IsOk);
    }

    [Test]
    public void File_commands_in_an_unknown_zone_are_refused_and_change_nothing()
    {
        var h = Tank();
        var ctx = new CommandContext
        {
            World = h.World, Host = h.Host, StdoutBytes = new MemoryStream(), StderrBytes = new MemoryStream(), Zone = "z1",
        };
        var task = Dispatcher.StartAsync(ctx, A("mkdir /tank/z"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(task.Result, Is.EqualTo(1));
        Assert.That(Encoding.UTF8.GetString(((MemoryStream)ctx.StderrBytes).ToArray()),
            Is.EqualTo("mkdir: zone 'z1' is not configured\n"));
        Assert.That(h.Ok(A("ls /tank")), Is.Empty);
    }

    [Test]
    public void Mkfile_and_dd_errors()
    {
        var h = Tank();
        var r = h.Line("mkfile 10q /tank/f");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "mkfile: invalid size: 10q\nUsage: mkfile [-nv] <size>[g|k|b|m] <name1> [<name2>] ...\n")));
        h.Ok(A("mkdir /tank/d"));
        r = h.Line("mkfile 1k /tank/d");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "/tank/d: Is a directory\n")));
        r = h.Line("dd if=/tank/nosuch");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, "dd: /tank/nosuch: open: No such file or directory\n")));
        r = h.Line("dd bs=0");
        Assert.That(r.Stderr, Is.EqualTo("dd: bad numeric argument: \"0\"\n"));
        r = h.Line("dd foo");
        Assert.That(r.Stderr, Is.EqualTo("dd: bad argument: \"foo\"\n"));
    }
}
