using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class SnoopCommandTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-snoop-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CommandResult RunIn(CliHost h, params string[] argv)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        using var cts = new CancellationTokenSource();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, Cancel = cts.Token, WorkingDirectory = _dir };
        var task = Dispatcher.StartAsync(ctx, argv);
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        return new CommandResult(task.IsCompleted ? task.Result : -1, o.ToArray(), e.ToArray());
    }

    private static CliHost Stub() => CliHost.TwoVnicsOnAStub();

    /// <summary>Starts a snoop, sends frames, then lets the snoop finish.</summary>
    private (Task<int> Task, OutputCapture Out, OutputCapture Err) StartSnoop(CliHost h, string line)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, WorkingDirectory = _dir };
        return (Dispatcher.StartAsync(ctx, A(line)), o, e);
    }

    [Test]
    public void Snoop_prints_a_summary_line_per_packet_and_stops_at_the_count()
    {
        var h = Stub();
        var (task, o, e) = StartSnoop(h, "snoop -d b0 -c 2");
        h.Ok(A("pktgen -d a0 -c 3 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(task.IsCompleted, Is.True);
            // snoop.c's scan() ends a -c capture with "N packets captured" on standard error.
            Assert.That(e.ToString(), Is.EqualTo("Using device b0 (promiscuous mode)\n2 packets captured\n"));
            Assert.That(o.ToString(), Is.EqualTo("  198.18.0.1 -> 198.18.0.2   UDP D=9 S=7 LEN=46\n  198.18.0.1 -> 198.18.0.2   UDP D=9 S=7 LEN=46\n"));
        }
    }

    [Test]
    public void Snoop_filter_selects_packets()
    {
        var h = Stub();
        // -V: port 53 now goes on to snoop_dns.c, whose line would hide the UDP one.
        var (task, o, _) = StartSnoop(h, "snoop -d b0 -c 1 -V udp port 53");
        h.Ok(A("pktgen -d a0 -c 2 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.Ok(A("pktgen -d a0 -c 1 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:53"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(o.ToString(), Does.Contain("D=53").And.Not.Contain("D=9 "));
    }

    [Test]
    public void Snoop_o_writes_a_pcap_that_snoop_i_reads_back()
    {
        var h = Stub();
        var (task, o, _) = StartSnoop(h, "snoop -d stub0 -o cap.pcap -c 3");
        h.Ok(A("pktgen -d a0 -c 3 -s 64 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(o.ToString(), Is.EqualTo("snoop: 3 packets captured on stub0 to cap.pcap\n"));
        var r = RunIn(h, A("snoop -i cap.pcap"));
        string[] lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero);
            Assert.That(lines, Has.Length.EqualTo(3));
            Assert.That(lines[2], Is.EqualTo("  3   0.00000  2:0:0:0:0:1 -> 2:0:0:0:0:2  ETHER Type=88B5 (Unknown), size=64 bytes"));
        }
    }

    [Test]
    public void Snoop_v_prints_layer_detail()
    {
        var h = Stub();
        var (task, o, _) = StartSnoop(h, "snoop -d b0 -c 1 -v");
        h.Ok(A("pktgen -d a0 -c 1 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(o.ToString(), Does.Contain("ETHER:  ----- Ether Header -----").And.Contain("IP:   ----- IP Header -----").And.Contain("UDP:  ----- UDP Header -----"));
    }

    [TestCase("snoop -i missing.pcap", 1, "snoop: ")]
    [TestCase("snoop -d nosuch0", 1, "snoop: nosuch0: no such device\n")]
    [TestCase("snoop -d b0 frobnicate", 1, "snoop: ")]
    [TestCase("snoop -d b0 -c x", 2, "snoop: invalid count 'x'\n")]
    [TestCase("snoop", 2, "snoop: a device is required")]
    [TestCase("snoop -v -V -d b0", 2, "snoop: -v and -V cannot be used together\n")]
    [TestCase("snoop -d b0 -o x -F snoop", 2, "snoop: unknown capture file format 'snoop' (pcap or pcapng)\n")]
    [TestCase("snoop -d b0 -F pcapng", 2, "snoop: -F says how -o writes: give -o FILE\n")]
    [TestCase("snoop -i x.pcap -o y.pcap", 2, "snoop: -i and -o cannot be used together (saving a read capture is not supported)\n")]
    [TestCase("snoop -d b0 -o no/such/dir/x.pcap", 1, "snoop: ")]
    public void Snoop_rejects_bad_input(string line, int code, string start)
    {
        var h = Stub();
        var r = RunIn(h, A(line));
        Assert.That((r.ExitCode, r.Stderr.StartsWith(start, StringComparison.Ordinal)), Is.EqualTo((code, true)), r.Stderr);
    }

    [Test]
    public void Snoop_i_rejects_a_file_that_is_not_a_capture()
    {
        var h = Stub();
        File.WriteAllText(Path.Combine(_dir, "junk.pcap"), "this is not a capture file at all");
        var r = RunIn(h, A("snoop -i junk.pcap"));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"snoop: not a capture file: {Path.Combine(_dir, "junk.pcap")}\n")));
    }

    [Test]
    public void Interrupting_a_snoop_closes_its_file()
    {
        var h = Stub();
        var o = new OutputCapture();
        using var cts = new CancellationTokenSource();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = o, Cancel = cts.Token, WorkingDirectory = _dir };
        var task = Dispatcher.StartAsync(ctx, A("snoop -d b0 -o x.pcap"));
        h.Ok(A("pktgen -d a0 -c 5 -s 64 --dst 2:0:0:0:0:2"));
        cts.Cancel();
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(task.Result, Is.Zero);
        Assert.That(RunIn(h, A("snoop -i x.pcap")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(5));
    }

    private static uint Le32(byte[] b, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));

    [TestCase("snoop -d stub0 -o cap.pcapng -c 3", "cap.pcapng")]
    [TestCase("snoop -d stub0 -o cap.out -F pcapng -c 3", "cap.out")]
    public void Snoop_o_writes_pcapng_for_F_pcapng_or_a_pcapng_name_with_the_link_named(string line, string file)
    {
        var h = Stub();
        var (task, o, _) = StartSnoop(h, line);
        h.Ok(A("pktgen -d a0 -c 3 -s 64 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        byte[] bytes = File.ReadAllBytes(Path.Combine(_dir, file));
        int idb = (int)Le32(bytes, 4);
        var r = RunIn(h, A("snoop -i " + file));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o.ToString(), Is.EqualTo($"snoop: 3 packets captured on stub0 to {file}\n"));
            Assert.That((Le32(bytes, 0), Le32(bytes, idb)), Is.EqualTo((0x0A0D0D0Au, 1u)), "a section header, then an interface");
            Assert.That(System.Text.Encoding.ASCII.GetString(bytes, idb + 20, 5), Is.EqualTo("stub0"), "named after the link");
            Assert.That(r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(3));
        }
    }

    [Test]
    public void Snoop_o_keeps_pcap_for_other_names_and_F_pcap()
    {
        var h = Stub();
        var (task, _, _) = StartSnoop(h, "snoop -d stub0 -o cap.pcapng -F pcap -c 1");
        h.Ok(A("pktgen -d a0 -c 1 -s 64 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(Le32(File.ReadAllBytes(Path.Combine(_dir, "cap.pcapng")), 0), Is.EqualTo(0xA1B2C3D4u), "-F wins over the name");
    }

    /// <summary>An RFC 1761 file as illumos snoop -o writes it: snoop -i shows it as it shows a pcap.</summary>
    [Test]
    public void Snoop_i_reads_a_file_illumos_snoop_wrote()
    {
        var h = Stub();
        byte[] frame = SmartOS.Cli.Tests.Snoop.TestFrames.Udp(7, 9);
        static byte[] Be(uint v) { var b = new byte[4]; System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v); return b; }
        int pad = (4 - frame.Length % 4) % 4;
        byte[] file = [.. "snoop\0\0\0"u8, .. Be(2), .. Be(4),
            .. Be((uint)frame.Length), .. Be((uint)frame.Length), .. Be((uint)(24 + frame.Length + pad)), .. Be(0), .. Be(1_700_000_000), .. Be(0),
            .. frame, .. new byte[pad]];
        File.WriteAllBytes(Path.Combine(_dir, "illumos.snoop"), file);
        var r = RunIn(h, A("snoop -i illumos.snoop"));
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "  1   0.00000    192.0.2.1 -> 192.0.2.2    UDP D=9 S=7 LEN=26\n")));
    }

    [Test]
    public void Snoop_o_on_a_full_disk_stops_with_illumos_words_and_status_1()
    {
        if (!File.Exists("/dev/full")) Assert.Ignore("needs /dev/full");
        var h = Stub();
        var (task, o, e) = StartSnoop(h, "snoop -d b0 -o /dev/full");
        h.Ok(A("pktgen -d a0 -c 100 -s 1500 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(task.IsCompleted ? task.Result : -1, Is.EqualTo(1));
            Assert.That(e.ToString(), Does.Contain("snoop: cannot write packet to capture file: "));
            Assert.That(o.ToString(), Is.Empty);
        }
    }

    [Test]
    public void Snoop_i_of_a_truncated_file_shows_the_whole_packets_then_says_where_it_ends()
    {
        var h = Stub();
        var (task, _, _) = StartSnoop(h, "snoop -d stub0 -o cap.pcap -c 3");
        h.Ok(A("pktgen -d a0 -c 3 -s 64 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        string path = Path.Combine(_dir, "cap.pcap");
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        var r = RunIn(h, A("snoop -i cap.pcap"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(2));
            Assert.That(r.Stderr, Is.EqualTo($"snoop: {path}: truncated packet 3 (54 of its 64 bytes)\n"));
        }
    }
}
