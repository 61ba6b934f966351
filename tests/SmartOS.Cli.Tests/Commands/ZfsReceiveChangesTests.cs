using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Through the zfs command: an incremental stream cut short and received with -s, finished with
/// zfs send -t (the hidden tank/copy/%recv never shown), and an incremental -R package that replays
/// a rename and a promote, with zfs receive -v's lines.
/// </summary>
public class ZfsReceiveChangesTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zfsrecv-").FullName;

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

    private static CommandResult Receive(CliHost h, string line, byte[] stream) => Dispatcher.Run(h.World, h.Host, A(line), new MemoryStream(stream));

    [Test]
    public void Receive_s_of_a_cut_incremental_stream_keeps_it_hidden_until_send_t_finishes_it()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/src"));
        h.Ok(A("mkfile 100k /tank/src/old"));
        h.Ok(A("zfs snapshot tank/src@a"));
        Assert.That(Receive(h, "zfs receive -u tank/copy", h.Run(A("zfs send tank/src@a")).StdoutBytes).ExitCode, Is.Zero);
        h.Ok(A("mkfile 400k /tank/src/new"));
        h.Ok(A("zfs snapshot tank/src@b"));
        byte[] incremental = h.Run(A("zfs send -i @a tank/src@b")).StdoutBytes;

        var cut = Receive(h, "zfs receive -s -u tank/copy", incremental[..(incremental.Length / 2)]);
        string token = h.Ok(A("zfs get -H -o value receive_resume_token tank/copy")).Trim();
        Assert.That((cut.ExitCode, cut.Stderr), Is.EqualTo((1, "cannot receive incremental stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n"
                                                              + $"A resuming stream can be generated on the sending system by running:\n    zfs send -t {token}\n")));
        Assert.That(h.Ok(A("zfs list -H -o name -t all -r tank/copy")), Is.EqualTo("tank/copy\ntank/copy@a\n"));
        Assert.That(h.Fails(A("zfs list tank/copy/%recv")).Stderr, Is.EqualTo("cannot open 'tank/copy/%recv': invalid character '%' in name\n"));
        Assert.That(h.Fails(A("zfs destroy tank/copy@a")).Stderr, Does.StartWith("cannot destroy 'tank/copy@a': snapshot has dependent clones\n"));
        Assert.That(Receive(h, "zfs receive -u tank/copy", incremental).Stderr,
            Is.EqualTo("cannot receive incremental stream: destination tank/copy contains partially-complete state from \"zfs receive -s\".\n"));

        var rest = h.Run(A($"zfs send -t {token}"));
        Assert.That(rest.ExitCode, Is.Zero, rest.Stderr);
        var resumed = Receive(h, "zfs receive -s -u tank/copy", rest.StdoutBytes);
        Assert.That(resumed.ExitCode, Is.Zero, resumed.Stderr);
        Assert.That(h.Ok(A("zfs list -H -o name -t all -r tank/copy")), Is.EqualTo("tank/copy\ntank/copy@a\ntank/copy@b\n"));
        Assert.That(h.Ok(A("zfs get -H -o value receive_resume_token tank/copy")), Is.EqualTo("-\n"));
    }

    [Test]
    public void Receive_v_of_an_incremental_R_package_says_what_it_renamed_and_promoted()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/src"));
        h.Ok(A("zfs create tank/src/a"));
        h.Ok(A("mkfile 10k /tank/src/a/f"));
        h.Ok(A("zfs snapshot -r tank/src@one"));
        h.Ok(A("zfs clone tank/src/a@one tank/src/c"));
        h.Ok(A("zfs snapshot -r tank/src@two"));
        h.Ok(A("zfs create tank/back"));
        Assert.That(Receive(h, "zfs receive -u -d tank/back", h.Run(A("zfs send -R tank/src@two")).StdoutBytes).ExitCode, Is.Zero);

        h.Ok(A("zfs promote tank/src/c"));
        h.Ok(A("zfs rename tank/src/a tank/src/b"));
        h.Ok(A("zfs snapshot -r tank/src@three"));
        var received = Receive(h, "zfs receive -v -u -d tank/back", h.Run(A("zfs send -R -i @two tank/src@three")).StdoutBytes);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(received.Stdout, Does.Contain("attempting rename tank/back/src/a to tank/back/src/b\nsuccess\n"));
        Assert.That(received.Stdout, Does.Contain("promoting tank/back/src/c\n"));
        Assert.That(h.Ok(A("zfs get -H -o value origin tank/back/src/b tank/back/src/c")), Is.EqualTo("tank/back/src/c@one\n-\n"));
        Assert.That(h.Ok(A("zfs get -H -o value origin tank/src/b tank/src/c")), Is.EqualTo("tank/src/c@one\n-\n"), "the source is left alone");
        Assert.That(h.Ok(A("zfs list -H -o name -t all -r tank/back/src")),
            Is.EqualTo(h.Ok(A("zfs list -H -o name -t all -r tank/src")).Replace("tank/src", "tank/back/src")));
    }
}
