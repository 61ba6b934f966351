using System.Buffers.Binary;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>snoop -o - and snoop -i -: a capture as bytes on standard output and standard input
/// (issue 21), so captures go through pipes, the daemon and scenario redirections unchanged.</summary>
public class SnoopStreamTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static CliHost Stub() => CliHost.TwoVnicsOnAStub();

    /// <summary>Captures three frames on b0 with the given -o arguments; returns the command's streams.</summary>
    private static (int Code, byte[] Out, string Err) Capture(CliHost h, string options)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e };
        var task = Dispatcher.StartAsync(ctx, A("snoop -d b0 -c 3 " + options));
        h.Ok(A("pktgen -d a0 -c 3 -s 80 --dst 2:0:0:0:0:2 --udp 198.18.0.1:7,198.18.0.2:9"));
        h.World.Scheduler.RunUntil(() => task.IsCompleted);
        Assert.That(task.IsCompleted, Is.True);
        return (task.Result, o.ToArray(), e.ToString());
    }

    [Test]
    public void Snoop_o_dash_writes_a_pcap_to_standard_output_and_its_count_to_standard_error()
    {
        var (code, bytes, err) = Capture(Stub(), "-o -");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, err);
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(bytes), Is.EqualTo(0xA1B2C3D4u), "pcap's magic");
            // 24-byte file header, then three records of a 16-byte header and 80 bytes each.
            Assert.That(bytes, Has.Length.EqualTo(24 + 3 * (16 + 80)));
            Assert.That(err, Does.EndWith("snoop: 3 packets captured on b0 to -\n"));
        }
    }

    [Test]
    public void Snoop_i_dash_reads_what_snoop_o_dash_wrote()
    {
        var h = Stub();
        var (_, pcapng, _) = Capture(h, "-o - -F pcapng");
        var read = Dispatcher.Run(h.World, h.Host, A("snoop -i -"), new MemoryStream(pcapng));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read.ExitCode, Is.Zero, read.Stderr);
            Assert.That(read.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(3));
            Assert.That(read.Stdout, Does.Contain("198.18.0.1 -> 198.18.0.2"));
        }
    }

    [Test]
    public void Snoop_i_dash_without_a_capture_on_standard_input_says_so()
    {
        var h = Stub();
        var none = Dispatcher.Run(h.World, h.Host, A("snoop -i -"), (Stream?)null);
        var text = Dispatcher.Run(h.World, h.Host, A("snoop -i -"), new MemoryStream("hello"u8.ToArray()));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((none.ExitCode, none.Stderr), Is.EqualTo((1, "snoop: -i -: there is no standard input to read a capture from\n")));
            Assert.That((text.ExitCode, text.Stderr), Is.EqualTo((1, "snoop: not a capture file: (standard input)\n")));
        }
    }
}
