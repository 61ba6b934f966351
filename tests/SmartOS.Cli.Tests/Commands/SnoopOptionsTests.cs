using System.Buffers.Binary;
using SmartOS.Cli.Snoop;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;
using static SmartOS.Cli.Tests.Snoop.TestFrames;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// snoop's display options and columns as illumos's snoop prints them; each test names the
/// illumos source file (usr/src/cmd/cmd-inet/usr.sbin/snoop/) it follows.
/// </summary>
public class SnoopOptionsTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-snoopopt-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private static CliHost Stub() => CliHost.TwoVnicsOnAStub();

    private CommandResult Run(CliHost h, string line)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, WorkingDirectory = _dir };
        var task = Dispatcher.StartAsync(ctx, A(line));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        return new CommandResult(task.IsCompleted ? task.Result : -1, o.ToArray(), e.ToArray());
    }

    /// <summary>Writes frames at the given virtual times (seconds) into cap.pcap.</summary>
    private void Capture(params (double Seconds, byte[] Frame)[] packets)
    {
        using var w = CaptureFileWriter.Create(Path.Combine(_dir, "cap.pcap"), CaptureFormat.Pcap, ["net0"], out string error)!;
        Assert.That(error, Is.Empty.Or.Null);
        foreach (var (seconds, frame) in packets) Assert.That(w.Write(0, frame, (long)(seconds * 1e9)), Is.True);
    }

    private void ThreeUdpPackets() => Capture((1.0, Udp(7, 9)), (1.5, Udp(7, 10)), (3.25, Udp(7, 11)));

    private const string Who = "   192.0.2.1 -> 192.0.2.2    ";

    // snoop.c main(): -i adds F_NUM | F_TIME; show_pktinfo prints "%3d " and, without F_RTIME or
    // F_ATIME, "%3d.%05d " of the time since the previous packet shown (snoop_display.c process_pkt).
    [Test]
    public void Reading_a_file_shows_the_time_since_the_previous_packet()
    {
        ThreeUdpPackets();
        var r = Run(Stub(), "snoop -i cap.pcap");
        Assert.That(r.Stdout, Is.EqualTo(
            $"  1   0.00000 {Who}UDP D=9 S=7 LEN=26\n" +
            $"  2   0.50000 {Who}UDP D=10 S=7 LEN=26\n" +
            $"  3   1.75000 {Who}UDP D=11 S=7 LEN=26\n"));
    }

    private static IEnumerable<TestCaseData> ColumnCases() => DataFile.Cases("snoop-packet-columns.txt", 2);

    // Data/snoop-packet-columns.txt: -t and -p over the three packets, number and time columns.
    [TestCaseSource(nameof(ColumnCases))]
    public void Snoop_shows_the_packets_and_times_the_data_file_lists(DataCase c)
    {
        ThreeUdpPackets();
        string[] lines = Run(Stub(), $"snoop -i cap.pcap {c[0]}").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] expected = c.List(1);
        Assert.That(lines, Has.Length.EqualTo(expected.Length), c.Where);
        for (int i = 0; i < expected.Length; i++)
        {
            string[] want = expected[i].Split(' ');
            string[] got = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(got[..want.Length], Is.EqualTo(want), $"{c.Where}: line {i + 1} '{lines[i]}'");
        }
    }

    // snoop_capture.c scan(): only packets that pass the filter are counted, so numbers and the
    // previous packet's time are those of the packets shown.
    [Test]
    public void Numbers_and_times_count_only_packets_that_pass_the_filter()
    {
        ThreeUdpPackets();
        var r = Run(Stub(), "snoop -i cap.pcap udp port 11");
        Assert.That(r.Stdout, Is.EqualTo($"  1   0.00000 {Who}UDP D=11 S=7 LEN=26\n"));
    }

    // snoop.c main(): a live capture has no number or time column unless -t asks for one.
    [Test]
    public void A_live_capture_shows_time_only_when_t_asks()
    {
        var h = Stub();
        var plain = StartLive(h, "snoop -d b0 -c 1");
        h.Ok(A("pktgen -d a0 -c 1 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => plain.Task.IsCompleted);
        var timed = StartLive(h, "snoop -d b0 -c 2 -t d");
        h.Ok(A("pktgen -d a0 -c 2 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => timed.Task.IsCompleted);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plain.Out.ToString(), Is.EqualTo("  198.18.0.1 -> 198.18.0.2   UDP D=9 S=7 LEN=46\n"));
            Assert.That(timed.Out.ToString(), Does.StartWith("  0.00000   198.18.0.1 -> 198.18.0.2   UDP D=9"));
            Assert.That(timed.Out.ToString().Split('\n')[1], Does.Match(@"^ +\d+\.\d{5}   198\.18\.0\.1 -> 198\.18\.0\.2   UDP D=9"));
        }
    }

    private (Task<int> Task, OutputCapture Out, OutputCapture Err) StartLive(CliHost h, string line)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, WorkingDirectory = _dir };
        return (Dispatcher.StartAsync(ctx, A(line)), o, e);
    }

    // snoop.c show_pktinfo: with F_ALLSUM a line of 32 underscores, then every summary line after
    // the same number, time and "src -> dst" prefix.
    [Test]
    public void Snoop_V_puts_the_prefix_on_every_layer()
    {
        Capture((1.0, Udp(7, 9)));
        var r = Run(Stub(), "snoop -i cap.pcap -V");
        Assert.That(r.Stdout, Is.EqualTo(
            "________________________________\n" +
            $"  1   0.00000 {Who}ETHER Type=0800 (IP), size=60 bytes\n" +
            $"  1   0.00000 {Who}IP  D=192.0.2.2 S=192.0.2.1 LEN=46, ID=0, TOS=0x0, TTL=64\n" +
            $"  1   0.00000 {Who}UDP D=9 S=7 LEN=26\n"));
    }

    // snoop.c show_pktinfo: -S (F_LEN) adds "length: %4d  " after the addresses.
    [Test]
    public void Snoop_S_shows_the_length_on_the_wire()
    {
        Capture((1.0, Udp(7, 9)));
        Assert.That(Run(Stub(), "snoop -i cap.pcap -S").Stdout, Is.EqualTo($"  1   0.00000 {Who}length:   60  UDP D=9 S=7 LEN=26\n"));
    }

    // snoop_display.c hexdump(): "\t%4d: ", 16-bit words "%04x ", padding for a short last line,
    // three spaces, then printable characters or '.'; a blank line before and after.
    [Test]
    public void Snoop_x_dumps_the_bytes_in_snoops_layout()
    {
        Capture((1.0, Udp(7, 9)));
        var r = Run(Stub(), "snoop -i cap.pcap -x 0,18");
        Assert.That(r.Stdout, Is.EqualTo(
            $"  1   0.00000 {Who}UDP D=9 S=7 LEN=26\n" +
            "\n" +
            "\t   0: 0208 2001 0203 0208 200a 0b0c 0800 4500    .. ..... .....E.\n" +
            "\t  16: 002e " + new string(' ', 7 * 5) + "   ..\n" +
            "\n"));
    }

    // snoop_display.c process_pkt: the offset is rounded down to an even byte; an odd last byte
    // prints as "%02x   ".
    [Test]
    public void Hex_dump_rounds_the_offset_down_and_prints_an_odd_byte_alone()
        => Assert.That(SnoopDisplay.HexDump(Udp(7, 9), 13, 3), Is.EqualTo("\n\t   0: 0800 45   " + new string(' ', 6 * 5) + "   ..E\n\n"));

    // snoop.c usage(): "snoop -i saved -tr -v -p19", options with their values attached. -t r
    // counts from the first packet shown (show_pktinfo's tvp0), so packet 3 alone is at 0.
    [Test]
    public void Snoop_takes_the_usage_examples_attached_values()
    {
        ThreeUdpPackets();
        var r = Run(Stub(), "snoop -i cap.pcap -tr -p3");
        Assert.That(r.Stdout, Is.EqualTo($"  3   0.00000 {Who}UDP D=11 S=7 LEN=26\n"));
    }

    // snoop_capture.c scan(): at -c COUNT, "%d packets captured" on standard error.
    [Test]
    public void Snoop_c_on_a_file_stops_and_says_how_many()
    {
        ThreeUdpPackets();
        var r = Run(Stub(), "snoop -i cap.pcap -c 2");
        Assert.That((r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, r.Stderr), Is.EqualTo((2, "2 packets captured\n")));
    }

    // snoop.c -s snaplen (bufmod's SBIOCSSNAP): the interpreters see only the first snaplen bytes,
    // and a capture file keeps that much with the whole length recorded.
    [Test]
    public void Snoop_s_truncates_live_packets_for_display_and_file()
    {
        var h = Stub();
        var shown = StartLive(h, "snoop -d b0 -c 1 -s 40 -S");
        var saved = StartLive(h, "snoop -d b0 -c 1 -s 40 -o cut.pcap");
        h.Ok(A("pktgen -d a0 -c 1 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => shown.Task.IsCompleted && saved.Task.IsCompleted);
        using var reader = CaptureFileReader.Open(Path.Combine(_dir, "cut.pcap"), out _)!;
        Assert.That(reader.TryRead(out var record), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(shown.Out.ToString(), Is.EqualTo("  198.18.0.1 -> 198.18.0.2   length:   80  UDP truncated: header missing 2 bytes\n"));
            Assert.That((record.Frame.Length, record.OriginalLength), Is.EqualTo((40, 80)));
        }
    }

    // snoop.c: -q suppresses the packet count shown while writing -o FILE.
    [Test]
    public void Snoop_q_leaves_out_the_count_of_packets_written()
    {
        var h = Stub();
        var s = StartLive(h, "snoop -d b0 -c 1 -q -o q.pcap");
        h.Ok(A("pktgen -d a0 -c 1 -s 64 --dst 2:0:0:0:0:2"));
        h.World.Scheduler.RunUntil(() => s.Task.IsCompleted);
        Assert.That((s.Task.Result, s.Out.ToString()), Is.EqualTo((0, "")));
    }

    private static IEnumerable<TestCaseData> RefusedCases() => DataFile.Cases("snoop-option-errors.txt", 3);

    // Data/snoop-option-errors.txt: options refused by name, and options of the other mode.
    [TestCaseSource(nameof(RefusedCases))]
    public void Options_snoop_cannot_honour_here_are_refused_by_name(DataCase c)
    {
        ThreeUdpPackets();
        var r = Run(Stub(), c[0]);
        Assert.That((r.ExitCode, r.Stderr.StartsWith(c[2], StringComparison.Ordinal)), Is.EqualTo((c.Int(1), true)), $"{c.Where}: {r.Stderr}");
    }

    [Test]
    public void Snoop_r_f_and_U_are_accepted()
    {
        ThreeUdpPackets();
        var r = Run(Stub(), "snoop -r -f -U -i cap.pcap -p 1");
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, $"  1   0.00000 {Who}UDP D=9 S=7 LEN=26\n")));
    }

    private static byte[] TcpWithOptions(byte flags, uint seq, ushort urgent, ReadOnlySpan<byte> options)
    {
        var t = new byte[20 + options.Length];
        BinaryPrimitives.WriteUInt16BigEndian(t, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), 80);
        BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), seq);
        t[12] = (byte)(t.Length / 4 << 4);
        t[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), 65535);
        BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(18), urgent);
        options.CopyTo(t.AsSpan(20));
        return Ipv4(IpA, IpB, IpProtocol.Tcp, t);
    }

    private static readonly byte[] s_synOptions =
    [
        2, 4, 0x05, 0xB4,           // mss 1460
        1,                          // nop
        3, 3, 7,                    // wscale 7
        4, 2,                       // sackOK
        8, 10, 0, 0, 0, 5, 0, 0, 0, 0, // tstamp 5 0
        0, 0, 0, 0,                 // eol, then padding to a 4-byte boundary
    ];

    // snoop_tcp.c interpret_tcp / print_tcpoptions_summary: flags, then " Options=<...>" after Win.
    [Test]
    public void Tcp_summary_shows_its_options()
        => Assert.That(SnoopFormat.Summary(TcpWithOptions(0x02, 1, 0, s_synOptions)),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    TCP D=80 S=40000 Syn Seq=1 Len=0 Win=65535 Options=<mss 1460,nop,wscale 7,sackOK,tstamp 5 0,eol>"));

    // snoop_tcp.c interpret_tcp: Seq and Len only for a non-zero sequence number; Urg with the
    // urgent pointer before Ack; ECE and CWR after Push.
    [Test]
    public void Tcp_summary_leaves_out_a_zero_sequence_and_shows_urgent_and_ecn_flags()
        => Assert.That(SnoopFormat.Summary(TcpWithOptions(0xF8, 0, 9, [])),
            Is.EqualTo("   192.0.2.1 -> 192.0.2.2    TCP D=80 S=40000 Push ECE CWR Urg=9 Ack=0 Win=65535"));

    // snoop_tcp.c print_tcpoptions and its flag wording; snoop_rport.c names port 80 "HTTP".
    [Test]
    public void Tcp_detail_lists_each_option_as_snoop_tcp_words_it()
    {
        string[] lines = SnoopFormat.Verbose(TcpWithOptions(0x82, 1, 0, s_synOptions), 1, 0).Split('\n');
        string[] tail = lines.SkipWhile(l => !l.StartsWith("TCP:  Urgent pointer", StringComparison.Ordinal)).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.Contain("TCP:  Destination port = 80 (HTTP)"));
            Assert.That(lines, Does.Contain("TCP:        1... .... = ECN congestion window reduced"));
            Assert.That(tail, Is.EqualTo(new[]
            {
                "TCP:  Urgent pointer = 0",
                "TCP:  Options: (24 bytes)",
                "TCP:    - Maximum segment size = 1460 bytes",
                "TCP:    - No operation",
                "TCP:    - Window scale = 7",
                "TCP:    - SACK permitted option",
                "TCP:    - TS Val = 5, TS Echo = 0",
                "TCP:    - End of option list",
                "TCP:  ",
            }));
        }
    }

    // snoop_udp.c: "Destination port = %d %s", "Length = %d %s", "Checksum = %04X %s".
    [Test]
    public void Udp_detail_is_worded_as_snoop_udp_prints_it()
    {
        string[] lines = SnoopFormat.Verbose(Udp(7, 53), 1, 0).Split('\n');
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Does.Contain("UDP:  Destination port = 53 (DNS)"));
            Assert.That(lines, Does.Contain("UDP:  Length = 26 "));
            Assert.That(lines.Count(l => l.StartsWith("UDP:  Checksum = ", StringComparison.Ordinal) && l.EndsWith(' ')), Is.EqualTo(1));
        }
    }
}
