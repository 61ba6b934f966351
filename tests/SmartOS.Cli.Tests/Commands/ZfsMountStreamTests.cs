using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// zfs mount/unmount and the changelist (Zfs.Mounts.cs), and zfs send/receive/diff on standard output
/// and input (Zfs.Streams.cs), on a host whose pool tank is a file under the host's root.
/// </summary>
public class ZfsMountStreamTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zfsmnt-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CliHost Tank()
    {
        using (var fs = new FileStream(Path.Combine(_root, "d0"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        var h = new CliHost(store: new FileConfigStore(_root));
        h.Ok(A("zpool create tank d0"));
        return h;
    }

    private static string Mounts(CliHost h) => h.Ok(A("zfs mount"));

    [Test]
    public void Create_mounts_mount_lists_and_unmount_takes_a_name_or_a_mountpoint()
    {
        var h = Tank();
        h.Ok(A("zfs create -p tank/a/b"));
        Assert.That(Mounts(h), Is.EqualTo($"{"tank",-30}  /tank\n{"tank/a",-30}  /tank/a\n{"tank/a/b",-30}  /tank/a/b\n"));
        h.Ok(A("mkfile 1k /tank/a/b/f"));
        Assert.That(h.Fails(A("zfs unmount tank/a")).Stderr, Is.EqualTo("cannot unmount '/tank/a': Device busy\n"));
        h.Ok(A("zfs unmount /tank/a/b"));
        Assert.That(Mounts(h), Does.Not.Contain("tank/a/b"));
        Assert.That(h.Fails(A("ls /tank/a/b/f")).ExitCode, Is.EqualTo(2));
        Assert.That(h.Fails(A("zfs unmount tank/a/b")).Stderr, Is.EqualTo("cannot unmount 'tank/a/b': not currently mounted\n"));
        h.Ok(A("zfs mount tank/a/b"));
        Assert.That(h.Ok(A("ls /tank/a/b")), Is.EqualTo("f\n"));
        Assert.That(h.Fails(A("zfs mount tank/a/b")).Stderr, Is.EqualTo("cannot mount 'tank/a/b': filesystem already mounted\n"));
        Assert.That(h.Fails(A("zfs mount -o ro tank/a")).Stderr, Is.EqualTo("zfs mount -o is not supported here: no mount options are honoured\n"));
        h.Ok(A("zfs create -V 1m tank/vol"));
        Assert.That(h.Ok(A("zfs list -H -o name,mounted")), Is.EqualTo("tank\tyes\ntank/a\tyes\ntank/a/b\tyes\ntank/vol\t-\n"));
        Assert.That(h.Ok(A("zfs get all tank/a")), Does.Contain("tank/a  mounted               yes"));
        h.Ok(A("zfs unmount -a"));
        Assert.That(Mounts(h), Is.Empty);
        Assert.That(h.Ok(A("zfs get -H -o value mounted tank/a/b")), Is.EqualTo("no\n"));
        h.Ok(A("zfs mount -a"));
        Assert.That(Mounts(h), Does.Contain("tank/a/b"));
    }

    [Test]
    public void Destroy_rollback_rename_and_set_unmount_and_mount_again_what_they_touch()
    {
        var h = Tank();
        h.Ok(A("zfs create -p tank/a/b"));
        Assert.That(h.Fails(A("zfs destroy tank/a")).Stderr, Does.StartWith("cannot destroy 'tank/a': filesystem has children"));
        Assert.That(Mounts(h), Does.Contain("tank/a/b"), "a refused destroy leaves its mounts");
        h.Ok(A("zfs snapshot tank/a/b@s"));
        h.Ok(A("mkfile 1k /tank/a/b/later"));
        h.Ok(A("zfs rollback tank/a/b@s"));
        Assert.That(h.Ok(A("ls -a /tank/a/b")), Is.EqualTo(".\n..\n"), "rolled back and mounted again");
        h.Ok(A("mkfile 1k /tank/a/b/kept"));
        h.Ok(A("zfs rename tank/a tank/z"));
        Assert.That(Mounts(h), Is.EqualTo($"{"tank",-30}  /tank\n{"tank/z",-30}  /tank/z\n{"tank/z/b",-30}  /tank/z/b\n"));
        Assert.That(h.Ok(A("ls /tank/z/b")), Is.EqualTo("kept\n"));
        h.Ok(A("zfs set mountpoint=/data tank/z"));
        Assert.That(Mounts(h), Does.Contain($"{"tank/z/b",-30}  /data/b\n"));
        h.Ok(A("zfs set canmount=off tank/z/b"));
        Assert.That(Mounts(h), Does.Not.Contain("tank/z/b"));
        h.Ok(A("zfs set canmount=on tank/z/b"));
        Assert.That(h.Ok(A("ls /data/b")), Is.EqualTo("kept\n"));
        h.Ok(A("zfs destroy -r tank/z"));
        Assert.That(Mounts(h), Is.EqualTo($"{"tank",-30}  /tank\n"));
    }

    [Test]
    public void Import_N_mounts_nothing()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zpool export tank"));
        h.Ok(A("zpool import -N tank"));
        Assert.That(Mounts(h), Is.Empty);
    }

    [Test]
    public void Send_to_standard_output_receives_from_standard_input_with_every_byte_and_diff_lists_changes()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/src"));
        h.Ok(A("mkfile 100k /tank/src/file"));
        h.Ok(A("zfs snapshot tank/src@a"));
        var full = h.Run(A("zfs send tank/src@a"));
        Assert.That(full.ExitCode, Is.Zero, full.Stderr);
        var received = Dispatcher.Run(h.World, h.Host, A("zfs receive -v tank/copy"), new MemoryStream(full.StdoutBytes));
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(received.Stdout, Is.EqualTo("receiving full stream of tank/src@a into tank/copy@a\n"));
        Assert.That(h.Ok(A("digest -a sha256 /tank/copy/file")), Is.EqualTo(h.Ok(A("digest -a sha256 /tank/src/file"))));
        Assert.That(Mounts(h), Does.Contain($"{"tank/copy",-30}  /tank/copy\n"), "a received filesystem is mounted");

        h.Ok(A("mkfile 1k /tank/src/new"));
        h.Ok(A("zfs snapshot tank/src@b"));
        Assert.That(h.Ok(A("zfs diff tank/src@a tank/src@b")), Is.EqualTo("M\t/tank/src/\n+\t/tank/src/new\n"));
        var incremental = h.Run(A("zfs send -i @a tank/src@b"));
        Assert.That(incremental.ExitCode, Is.Zero, incremental.Stderr);
        // Reading the copy changed its atimes since @a, so it takes -F, as in ZFS.
        var modified = Dispatcher.Run(h.World, h.Host, A("zfs recv tank/copy"), new MemoryStream(incremental.StdoutBytes));
        Assert.That(modified.Stderr, Is.EqualTo("cannot receive incremental stream: destination tank/copy has been modified\nsince most recent snapshot\n"));
        var again = Dispatcher.Run(h.World, h.Host, A("zfs recv -F tank/copy"), new MemoryStream(incremental.StdoutBytes));
        Assert.That(again.ExitCode, Is.Zero, again.Stderr);
        Assert.That(h.Ok(A("ls /tank/copy")), Is.EqualTo("file\nnew\n"));
        Assert.That(h.Ok(A("zpool history tank")), Does.Contain("zfs receive -v tank/copy\n").And.Contain("zfs recv -F tank/copy\n"));

        var cut = Dispatcher.Run(h.World, h.Host, A("zfs receive tank/cut"), new MemoryStream(full.StdoutBytes[..(full.StdoutBytes.Length / 2)]));
        Assert.That((cut.ExitCode, cut.Stderr), Is.EqualTo((1, "cannot receive new filesystem stream: invalid backup stream\n")));
        Assert.That(h.Fails(A("zfs list tank/cut")).Stderr, Is.EqualTo("cannot open 'tank/cut': dataset does not exist\n"));
        Assert.That(h.Fails(A("zfs receive tank/x")).Stderr, Is.EqualTo("Error: Backup stream can not be read from a terminal.\nYou must redirect standard input.\n"));
        Assert.That(h.Fails(A("zfs send -D tank/src@a")).Stderr, Is.EqualTo("zfs send -D is not supported here\n"));
    }

    [Test]
    public void Receive_s_keeps_a_cut_stream_that_send_t_finishes_and_receive_A_drops()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/src"));
        h.Ok(A("mkfile 300k /tank/src/file"));
        h.Ok(A("zfs snapshot tank/src@a"));
        byte[] full = h.Run(A("zfs send tank/src@a")).StdoutBytes;
        var cut = Dispatcher.Run(h.World, h.Host, A("zfs receive -s tank/copy"), new MemoryStream(full[..(full.Length / 2)]));
        Assert.That(cut.ExitCode, Is.EqualTo(1));
        string token = h.Ok(A("zfs get -H -o value receive_resume_token tank/copy")).Trim();
        Assert.That(cut.Stderr, Is.EqualTo("cannot receive new filesystem stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n"
                                           + $"A resuming stream can be generated on the sending system by running:\n    zfs send -t {token}\n"));
        Assert.That(Mounts(h), Does.Not.Contain("tank/copy"), "a partial filesystem is not mounted");
        var rest = h.Run(A($"zfs send -t {token}"));
        Assert.That(rest.ExitCode, Is.Zero, rest.Stderr);
        var resumed = Dispatcher.Run(h.World, h.Host, A("zfs receive -s tank/copy"), new MemoryStream(rest.StdoutBytes));
        Assert.That(resumed.ExitCode, Is.Zero, resumed.Stderr);
        Assert.That(h.Ok(A("digest -a sha256 /tank/copy/file")), Is.EqualTo(h.Ok(A("digest -a sha256 /tank/src/file"))));
        Assert.That(h.Ok(A("zfs get -H -o value receive_resume_token tank/copy")), Is.EqualTo("-\n"));

        Dispatcher.Run(h.World, h.Host, A("zfs receive -s tank/part"), new MemoryStream(full[..(full.Length / 3)]));
        h.Ok(A("zfs receive -A tank/part"));
        Assert.That(h.Fails(A("zfs list tank/part")).Stderr, Is.EqualTo("cannot open 'tank/part': dataset does not exist\n"));
        Assert.That(h.Fails(A("zfs receive -A tank/src")).Stderr, Is.EqualTo("'tank/src' does not have any resumable receive state to abort\n"));
        Assert.That(h.Fails(A("zfs send -t 1-nothex")).Stderr, Is.EqualTo("cannot resume send: resume token is corrupt (invalid format)\n"));
        Assert.That(h.Fails(A($"zfs send -t {token} tank/src@a")).Stderr, Does.Contain("no snapshot may be specified with -t"));
    }

    [Test]
    public void Send_R_carries_a_tree_that_receive_d_creates_mounts_and_sets_properties_on()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/src"));
        h.Ok(A("zfs create -o atime=off tank/src/kid"));
        h.Ok(A("mkfile 10k /tank/src/kid/f"));
        h.Ok(A("zfs snapshot -r tank/src@a"));
        h.Ok(A("zfs create tank/back"));
        var sent = h.Run(A("zfs send -R tank/src@a"));
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        var received = Dispatcher.Run(h.World, h.Host, A("zfs receive -d tank/back"), new MemoryStream(sent.StdoutBytes));
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(h.Ok(A("zfs list -H -o name -t all -r tank/back")), Is.EqualTo("tank/back\ntank/back/src\ntank/back/src@a\ntank/back/src/kid\ntank/back/src/kid@a\n"));
        Assert.That(h.Ok(A("zfs get -H -o value,source atime tank/back/src/kid")), Is.EqualTo("off\treceived\n"));
        Assert.That(Mounts(h), Does.Contain($"{"tank/back/src/kid",-30}  /tank/back/src/kid\n"), "every received filesystem is mounted");
        Assert.That(h.Ok(A("digest -a sha256 /tank/back/src/kid/f")), Is.EqualTo(h.Ok(A("digest -a sha256 /tank/src/kid/f"))));

        var unmounted = Dispatcher.Run(h.World, h.Host, A("zfs receive -u -e tank/back/e"), new MemoryStream(sent.StdoutBytes));
        Assert.That(unmounted.Stderr, Is.EqualTo("cannot receive: specified fs (tank/back/e) does not exist\n"));
        h.Ok(A("zfs create tank/back/e"));
        unmounted = Dispatcher.Run(h.World, h.Host, A("zfs receive -u -e tank/back/e"), new MemoryStream(sent.StdoutBytes));
        Assert.That(unmounted.ExitCode, Is.Zero, unmounted.Stderr);
        Assert.That(Mounts(h), Does.Not.Contain("tank/back/e/src"), "-u mounts nothing");
        Assert.That(h.Fails(A("zfs send -R tank/src/kid@nope")).Stderr, Is.EqualTo("cannot open 'tank/src/kid@nope': dataset does not exist\n"));
    }
}
