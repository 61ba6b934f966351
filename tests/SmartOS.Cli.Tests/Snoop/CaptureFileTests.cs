using System.Diagnostics;
using SmartOS.Cli.Snoop;

namespace SmartOS.Cli.Tests.Snoop;

public class PcapFileTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory()
    {
        _dir = Path.Combine(Path.GetTempPath(), "snoop-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private string WriteAll(string name)
    {
        string path = Path.Combine(_dir, name);
        using var writer = new PcapFileWriter(path);
        long t = 0;
        foreach (byte[] frame in TestFrames.All())
        {
            writer.Write(frame, t);
            t += 1_234_567_891;
        }
        return path;
    }

    [Test]
    public void Pcap_round_trip_gives_back_frames_and_microsecond_times()
    {
        string path = WriteAll("a.pcap");
        var read = PcapFileReader.Read(path).ToList();
        var expected = TestFrames.All().ToList();
        Assert.That(read, Has.Count.EqualTo(expected.Count));
        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < read.Count; i++)
            {
                Assert.That(read[i].Frame, Is.EqualTo(expected[i]), $"frame {i}");
                Assert.That(read[i].TimestampNs, Is.EqualTo(i * 1_234_567_891L / 1000 * 1000), $"time {i}");
            }
        }
    }

    [Test]
    public void Pcap_writes_of_the_same_frames_and_times_are_byte_identical()
    {
        byte[] first = File.ReadAllBytes(WriteAll("a.pcap"));
        byte[] second = File.ReadAllBytes(WriteAll("b.pcap"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second, Is.EqualTo(first));
            Assert.That(first[..4], Is.EqualTo(new byte[] { 0xD4, 0xC3, 0xB2, 0xA1 }), "classic little-endian microsecond magic");
            Assert.That(BitConverter.ToInt32(first, 16), Is.EqualTo(65535), "snaplen");
            Assert.That(BitConverter.ToInt32(first, 20), Is.EqualTo(1), "link type Ethernet");
        }
    }

    [Test]
    public void Pcap_reader_rejects_a_missing_file()
    {
        string path = Path.Combine(_dir, "nope.pcap");
        Assert.That(() => PcapFileReader.Read(path),
            Throws.TypeOf<SnoopFileException>().With.Message.EqualTo($"{path}: No such file or directory"));
    }

    [Test]
    public void Pcap_reader_rejects_a_file_that_is_not_a_capture()
    {
        string path = Path.Combine(_dir, "text.pcap");
        File.WriteAllText(path, "this is not a capture file, just some words\n");
        Assert.That(() => PcapFileReader.Read(path),
            Throws.TypeOf<SnoopFileException>().With.Message.EqualTo($"{path}: not a capture file"));
    }

    [Test]
    public void Tshark_reads_our_pcap_without_malformed_packets()
    {
        const string tshark = "/usr/bin/tshark";
        if (!File.Exists(tshark)) Assert.Ignore("tshark is not installed");
        string path = WriteAll("t.pcap");
        var start = new ProcessStartInfo(tshark, ["-n", "-r", path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool exited = process.WaitForExit(20_000);
        if (!exited) process.Kill(entireProcessTree: true);
        string output = stdout.Result;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exited, Is.True, "tshark did not finish in 20 s");
            Assert.That(process.ExitCode, Is.Zero, stderr.Result);
            Assert.That(output, Does.Not.Contain("Malformed"));
            Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(TestFrames.All().Count()));
            Assert.That(output, Does.Contain("ICMPv6"));
            Assert.That(output, Does.Contain("Who has 192.0.2.2"));
        }
    }
}
