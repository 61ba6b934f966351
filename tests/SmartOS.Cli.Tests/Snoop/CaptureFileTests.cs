using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SharpPcap;
using SharpPcap.LibPcap;
using SmartOS.Cli.Snoop;

namespace SmartOS.Cli.Tests.Snoop;

/// <summary>
/// Capture files (tools/Snoop/CaptureFile.cs): our writers against our reader, against references
/// no one here wrote (libpcap through SharpPcap's file reader, tshark, editcap), and the reader
/// against files built byte by byte from RFC 1761 and draft-ietf-opsawg-pcap(ng).
/// </summary>
public class CaptureFileTests
{
    private const long Step = 1_234_567_891;   // ns between frames: exercises seconds and fractions
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("capture-tests-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private static List<byte[]> Frames() => TestFrames.All().ToList();

    /// <summary>Writes every test frame, frame i at i*Step ns, on link i % links.</summary>
    private string WriteAll(string name, CaptureFormat format, params string[] links)
    {
        string path = Path.Combine(_dir, name);
        using var writer = CaptureFileWriter.Create(path, format, links.Length == 0 ? ["net0"] : links, out string error);
        Assert.That(writer, Is.Not.Null, error);
        var frames = Frames();
        for (int i = 0; i < frames.Count; i++)
            Assert.That(writer!.Write(i % Math.Max(links.Length, 1), frames[i], i * Step), Is.True);
        return path;
    }

    private sealed record Read(List<(long Ns, int Link, int Original, byte[] Frame)> Records, string? Error, IReadOnlyList<string> Links);

    private static Read ReadAll(string path)
    {
        using var reader = CaptureFileReader.Open(path, out string error);
        if (reader == null) return new Read([], error, []);
        var records = new List<(long, int, int, byte[])>();
        while (reader.TryRead(out var r)) records.Add((r.TimestampNs, r.Link, r.OriginalLength, r.Frame.ToArray()));
        return new Read(records, reader.Error, reader.LinkNames.ToList());
    }

    [Test]
    public void Pcap_round_trip_gives_back_frames_and_microsecond_times()
    {
        var read = ReadAll(WriteAll("a.pcap", CaptureFormat.Pcap));
        var expected = Frames();
        Assert.That((read.Error, read.Records.Count), Is.EqualTo(((string?)null, expected.Count)));
        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.That(read.Records[i].Frame, Is.EqualTo(expected[i]), $"frame {i}");
                Assert.That(read.Records[i].Ns, Is.EqualTo(i * Step / 1000 * 1000), $"time {i}");
                Assert.That(read.Records[i].Original, Is.EqualTo(expected[i].Length), $"length {i}");
            }
        }
    }

    [Test]
    public void Pcap_writes_of_the_same_frames_and_times_are_byte_identical_with_libpcaps_header()
    {
        byte[] first = File.ReadAllBytes(WriteAll("a.pcap", CaptureFormat.Pcap));
        byte[] second = File.ReadAllBytes(WriteAll("b.pcap", CaptureFormat.Pcap));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second, Is.EqualTo(first));
            Assert.That(first[..8], Is.EqualTo(new byte[] { 0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0 }), "little-endian microsecond magic, version 2.4");
            Assert.That(BitConverter.ToInt32(first, 16), Is.EqualTo(65535), "snaplen");
            Assert.That(BitConverter.ToInt32(first, 20), Is.EqualTo(1), "link type Ethernet");
        }
    }

    [Test]
    public void Pcapng_round_trip_gives_back_frames_links_and_nanosecond_times()
    {
        var read = ReadAll(WriteAll("a.pcapng", CaptureFormat.Pcapng, "z2_net0", "e1000g0"));
        var expected = Frames();
        Assert.That((read.Error, read.Records.Count), Is.EqualTo(((string?)null, expected.Count)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read.Links, Is.EqualTo(new[] { "z2_net0", "e1000g0" }));
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.That(read.Records[i].Frame, Is.EqualTo(expected[i]), $"frame {i}");
                Assert.That(read.Records[i].Ns, Is.EqualTo(i * Step), $"time {i}");
                Assert.That(read.Records[i].Link, Is.EqualTo(i % 2), $"link {i}");
            }
        }
    }

    [Test]
    public void Pcapng_file_is_a_section_header_then_one_named_nanosecond_interface_per_link()
    {
        byte[] f = File.ReadAllBytes(WriteAll("a.pcapng", CaptureFormat.Pcapng, "z2_net0", "e1000g0"));
        uint U32(int at) => BinaryPrimitives.ReadUInt32LittleEndian(f.AsSpan(at));
        int shb = (int)U32(4);
        int idb1 = shb, idb2 = shb + (int)U32(shb + 4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((U32(0), U32(8), U32(shb - 4)), Is.EqualTo((0x0A0D0D0Au, 0x1A2B3C4Du, (uint)shb)), "SHB type, byte-order magic, trailing length");
            Assert.That((U32(idb1), BinaryPrimitives.ReadUInt16LittleEndian(f.AsSpan(idb1 + 8)), U32(idb1 + 12)), Is.EqualTo((1u, (ushort)1, 65535u)), "IDB: Ethernet, snaplen");
            // if_name (2), 7 bytes "z2_net0", one byte of padding; if_tsresol (9), 1 byte: 9; opt_endofopt.
            Assert.That(f.AsSpan(idb1 + 16, 24).ToArray(), Is.EqualTo((byte[])[2, 0, 7, 0, .. "z2_net0"u8, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]));
            Assert.That(Encoding.ASCII.GetString(f, idb2 + 20, 7), Is.EqualTo("e1000g0"));
            Assert.That(U32(idb2 + (int)U32(idb2 + 4)), Is.EqualTo(6u), "then Enhanced Packet Blocks");
        }
    }

    [Test]
    public void A_frame_longer_than_the_snaplen_is_cut_and_keeps_its_original_length()
    {
        var big = new byte[70_000];
        big[0] = 0xFF;
        foreach (var format in new[] { CaptureFormat.Pcap, CaptureFormat.Pcapng })
        {
            string path = Path.Combine(_dir, "big." + format);
            using (var w = CaptureFileWriter.Create(path, format, ["net0"], out _)!) w.Write(0, big, 0);
            var read = ReadAll(path);
            Assert.That((read.Error, read.Records.Single().Frame.Length, read.Records[0].Original), Is.EqualTo(((string?)null, 65535, 70_000)), format.ToString());
        }
    }

    [Test]
    public void Writer_says_why_it_cannot_create_a_file()
    {
        string path = Path.Combine(_dir, "no", "such", "dir.pcap");
        Assert.That(CaptureFileWriter.Create(path, CaptureFormat.Pcap, ["net0"], out string error), Is.Null);
        Assert.That(error, Is.EqualTo($"{path}: No such file or directory"));
    }

    /// <summary>/dev/full fails every write with ENOSPC: the writer keeps the error and stops.</summary>
    [Test]
    public void A_failed_write_ends_the_capture_with_illumos_words_not_an_exception()
    {
        if (!File.Exists("/dev/full")) Assert.Ignore("needs /dev/full");
        var writer = CaptureFileWriter.Create("/dev/full", CaptureFormat.Pcapng, ["net0"], out string error);
        Assert.That(writer, Is.Not.Null, error);
        var frame = new byte[1514];
        int written = 0;
        while (written < 1000 && writer!.Write(0, frame, 0)) written++;
        bool after = writer!.Write(0, frame, 0);
        Assert.That(() => writer.Dispose(), Throws.Nothing);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(written, Is.LessThan(1000), "the buffer's flush failed");
            Assert.That(writer.Error, Does.StartWith("cannot write packet to capture file: "));
            Assert.That(after, Is.False, "and the writer stays failed");
        }
    }

    // ---- files built byte by byte ----------------------------------------------------------------

    private static byte[] Cat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
    private static byte[] Be32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); return b; }
    private static byte[] Le32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    private static byte[] Be16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, v); return b; }
    private static byte[] Le16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    private static byte[] Zeros(int n) => new byte[n];

    private string Save(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>An RFC 1761 record: original length, included length, record length, cumulative
    /// drops, seconds, microseconds (all big-endian), the data, padding to 4 bytes.</summary>
    private static byte[] SnoopRecord(byte[] data, uint seconds, uint micros, uint? original = null)
    {
        int pad = (4 - data.Length % 4) % 4;
        return Cat(Be32(original ?? (uint)data.Length), Be32((uint)data.Length), Be32((uint)(24 + data.Length + pad)), Be32(0), Be32(seconds), Be32(micros), data, Zeros(pad));
    }

    private static byte[] SnoopHeader(uint version, uint? macType) =>
        macType is { } m ? Cat("snoop\0\0\0"u8.ToArray(), Be32(version), Be32(m)) : Cat("snoop\0\0\0"u8.ToArray(), Be32(version));

    [Test]
    public void A_snoop_file_as_rfc_1761_describes_it_reads_back_frames_times_and_lengths()
    {
        var frames = Frames();
        byte[] odd = frames.First(f => f.Length % 4 != 0);   // its record carries padding
        byte[] file = Cat(SnoopHeader(2, 4), SnoopRecord(odd, 1_700_000_000, 123_456), SnoopRecord(frames[0], 1_700_000_001, 999_999, original: 1514));
        var read = ReadAll(Save("cap.snoop", file));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read.Error, Is.Null);
            Assert.That(read.Records.Select(r => r.Frame), Is.EqualTo(new[] { odd, frames[0] }));
            Assert.That(read.Records.Select(r => r.Ns), Is.EqualTo(new[] { 1_700_000_000_123_456_000L, 1_700_000_001_999_999_000L }));
            Assert.That(read.Records[1].Original, Is.EqualTo(1514), "a record may hold less than the packet (snoop -s)");
        }
    }

    [Test]
    public void A_version_1_snoop_file_is_ethernet_without_a_mac_type_word()
    {
        var frame = Frames()[0];
        var read = ReadAll(Save("v1.snoop", Cat(SnoopHeader(1, null), SnoopRecord(frame, 5, 6))));
        Assert.That((read.Error, read.Records.Single().Frame, read.Records[0].Ns), Is.EqualTo(((string?)null, frame, 5_000_006_000L)));
    }

    [TestCase(2u, 8u, "{0}: Mac Type = 8 is not supported")]
    [TestCase(2u, 0x12u, "{0}: Mac Type = 12 is not supported")]
    [TestCase(3u, 4u, "capture file: {0}: Version 3 unrecognized")]
    public void Snoop_files_snoop_cannot_show_are_refused_in_illumos_words(uint version, uint macType, string message)
    {
        string path = Save("x.snoop", Cat(SnoopHeader(version, macType), SnoopRecord(Frames()[0], 0, 0)));
        Assert.That(ReadAll(path).Error, Is.EqualTo(string.Format(message, path)));
    }

    [Test]
    public void A_big_endian_nanosecond_pcap_reads_back()
    {
        var frame = Frames()[1];
        byte[] file = Cat(Be32(0xA1B23C4D), Be16(2), Be16(4), Be32(0), Be32(0), Be32(65535), Be32(1),
            Be32(7), Be32(123_456_789), Be32((uint)frame.Length), Be32((uint)frame.Length), frame);
        var read = ReadAll(Save("be.pcap", file));
        Assert.That((read.Error, read.Records.Single().Frame, read.Records[0].Ns), Is.EqualTo(((string?)null, frame, 7_123_456_789L)));
    }

    /// <summary>A pcapng block: type, total length, body padded to 4, total length.</summary>
    private static byte[] Block(bool be, uint type, params byte[][] body)
    {
        byte[] b = Cat(body);
        int pad = (4 - b.Length % 4) % 4;
        uint total = (uint)(12 + b.Length + pad);
        Func<uint, byte[]> u32 = be ? Be32 : Le32;
        return Cat(u32(type), u32(total), b, Zeros(pad), u32(total));
    }

    private static byte[] Option(bool be, ushort code, byte[] value)
        => Cat(be ? Be16(code) : Le16(code), be ? Be16((ushort)value.Length) : Le16((ushort)value.Length), value, Zeros((4 - value.Length % 4) % 4));

    [Test]
    public void A_pcapng_with_two_sections_either_byte_order_and_every_packet_block_reads_back()
    {
        var f = Frames();
        const bool B = true, L = false;
        byte[] file = Cat(
            // Section 1, big-endian: an interface with no options (microseconds), an EPB, a name
            // resolution block to skip, a simple packet block (interface 0, no time of its own).
            Block(B, 0x0A0D0D0A, Be32(0x1A2B3C4D), Be16(1), Be16(0), Zeros(8).Select(_ => (byte)0xFF).ToArray()),
            Block(B, 1, Be16(1), Be16(0), Be32(0)),
            Block(B, 6, Be32(0), Be32(0), Be32(1_500_000), Be32((uint)f[0].Length), Be32((uint)f[0].Length), f[0], Zeros((4 - f[0].Length % 4) % 4)),
            Block(B, 4, Be16(0), Be16(0)),
            Block(B, 3, Be32((uint)f[1].Length), f[1]),
            // Section 2, little-endian, with an option that is not ours (a comment): an interface
            // named "net1" (NUL-terminated, as some writers do) counting 2^-3 s, then an obsolete
            // packet block.
            Block(L, 0x0A0D0D0A, Le32(0x1A2B3C4D), Le16(1), Le16(0), Zeros(8), Option(L, 1, "made by hand"u8.ToArray()), Option(L, 0, [])),
            Block(L, 1, Le16(1), Le16(0), Le32(0), Option(L, 2, "net1\0"u8.ToArray()), Option(L, 9, [0x83]), Option(L, 0, [])),
            Block(L, 2, Le16(0), Le16(0), Le32(0), Le32(20), Le32((uint)f[2].Length), Le32((uint)f[2].Length), f[2], Zeros((4 - f[2].Length % 4) % 4)));
        var read = ReadAll(Save("hand.pcapng", file));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(read.Error, Is.Null);
            Assert.That(read.Links, Is.EqualTo(new[] { "", "net1" }));
            Assert.That(read.Records.Select(r => r.Frame), Is.EqualTo(f.Take(3)));
            Assert.That(read.Records.Select(r => r.Ns), Is.EqualTo(new[] { 1_500_000_000L, 1_500_000_000L, 2_500_000_000L }));
            Assert.That(read.Records.Select(r => r.Link), Is.EqualTo(new[] { 0, 0, 1 }));
        }
    }

    [Test]
    public void A_pcapng_interface_of_another_link_type_is_refused_by_name()
    {
        const bool L = false;
        var f = Frames()[0];
        byte[] file = Cat(
            Block(L, 0x0A0D0D0A, Le32(0x1A2B3C4D), Le16(1), Le16(0), Zeros(8)),
            Block(L, 1, Le16(101), Le16(0), Le32(0)),
            Block(L, 6, Le32(0), Le32(0), Le32(0), Le32((uint)f.Length), Le32((uint)f.Length), f, Zeros((4 - f.Length % 4) % 4)));
        string path = Save("raw.pcapng", file);
        Assert.That(ReadAll(path).Error, Is.EqualTo($"{path}: packet 1: interface 0 has link type 101, which is not supported (snoop reads Ethernet captures)"));
    }

    // ---- bad files -------------------------------------------------------------------------------

    [Test]
    public void Reader_rejects_a_missing_file_in_illumos_words()
    {
        string path = Path.Combine(_dir, "nope.pcap");
        Assert.That(ReadAll(path).Error, Is.EqualTo($"couldn't open {path}: No such file or directory"));
    }

    [TestCase("this is not a capture file, just some words\n")]
    [TestCase("")]
    [TestCase("sno")]
    public void Reader_rejects_a_file_that_is_not_a_capture_in_illumos_words(string content)
    {
        string path = Save("text.pcap", Encoding.ASCII.GetBytes(content));
        Assert.That(ReadAll(path).Error, Is.EqualTo($"not a capture file: {path}"));
    }

    /// <summary>The offsets at which a file of the test frames may end cleanly (after a record).</summary>
    private static HashSet<int> Boundaries(int header, Func<byte[], int> recordSize)
    {
        var set = new HashSet<int> { header };
        int at = header;
        foreach (var f in Frames().Take(4)) set.Add(at += recordSize(f));
        return set;
    }

    private static int Pad(int n) => (4 - n % 4) % 4;

    private IEnumerable<(string Name, byte[] File, HashSet<int> Ends)> SmallFiles()
    {
        var frames = Frames().Take(4).ToList();
        foreach (var format in new[] { CaptureFormat.Pcap, CaptureFormat.Pcapng })
        {
            string path = Path.Combine(_dir, "small." + format);
            using (var w = CaptureFileWriter.Create(path, format, ["net0"], out _)!)
                for (int i = 0; i < frames.Count; i++) w.Write(0, frames[i], i * Step);
            byte[] bytes = File.ReadAllBytes(path);
            int header = format == CaptureFormat.Pcap ? 24 : bytes.Length - frames.Sum(f => 32 + f.Length + Pad(f.Length));
            var ends = Boundaries(header, format == CaptureFormat.Pcap ? f => 16 + f.Length : f => 32 + f.Length + Pad(f.Length));
            if (format == CaptureFormat.Pcapng) ends.Add(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));   // a section with no interface yet
            yield return (format.ToString(), bytes, ends);
        }
        byte[] snoop = Cat([SnoopHeader(2, 4), .. frames.Select((f, i) => SnoopRecord(f, (uint)i, 0))]);
        yield return ("snoop", snoop, Boundaries(16, f => 24 + f.Length + Pad(f.Length)));
    }

    [Test]
    public void Every_truncation_of_each_format_gives_the_frames_before_it_and_a_clear_error()
    {
        var frames = Frames().Take(4).ToList();
        foreach (var (name, bytes, ends) in SmallFiles())
        {
            for (int cut = 0; cut < bytes.Length; cut++)
            {
                var read = ReadAll(Save("cut", bytes[..cut]));
                string where = $"{name} cut at {cut}";
                Assert.That(read.Records.Select(r => r.Frame), Is.EqualTo(frames.Take(read.Records.Count)), where);
                if (ends.Contains(cut)) Assert.That(read.Error, Is.Null, where);
                else Assert.That(read.Error ?? "no error", Does.Contain("truncated").Or.StartWith("not a capture file"), where);
            }
        }
    }

    [Test]
    public void Corrupted_files_end_in_an_error_or_frames_never_an_exception()
    {
        var random = new Random(11);
        foreach (var (name, bytes, _) in SmallFiles())
        {
            for (int round = 0; round < 300; round++)
            {
                byte[] bad = (byte[])bytes.Clone();
                for (int k = 0; k < 1 + round % 4; k++) bad[random.Next(bad.Length)] = (byte)random.Next(256);
                Read read = null!;
                Assert.That(() => read = ReadAll(Save("bad", bad)), Throws.Nothing, $"{name} round {round}");
                Assert.That(read.Records.All(r => r.Frame.Length <= CaptureFileReader.MaxFrame), Is.True);
                if (read.Error != null) Assert.That(read.Error, Does.Contain(Path.Combine(_dir, "bad")), "the message names the file");
            }
        }
    }

    // ---- references no one here wrote --------------------------------------------------------------

    /// <summary>libpcap (through SharpPcap's file reader) reads our pcap and pcapng files as we wrote them.</summary>
    [TestCase(CaptureFormat.Pcap)]
    [TestCase(CaptureFormat.Pcapng)]
    public void Libpcap_reads_our_files_frame_for_frame(CaptureFormat format)
    {
        string path = WriteAll("lib." + format, format, "net0");
        var frames = new List<(ulong Seconds, ulong Micros, byte[] Data)>();
        try
        {
            ReadWithLibpcap(path, frames);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            Assert.Ignore($"libpcap cannot be loaded ({e.GetType().Name}): install libpcap0.8 for this cross-check");
        }
        var expected = Frames();
        Assert.That(frames, Has.Count.EqualTo(expected.Count));
        using (Assert.EnterMultipleScope())
        {
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.That(frames[i].Data, Is.EqualTo(expected[i]), $"frame {i}");
                long micros = i * Step / 1000;
                Assert.That((frames[i].Seconds, frames[i].Micros), Is.EqualTo(((ulong)(micros / 1_000_000), (ulong)(micros % 1_000_000))), $"time {i}");
            }
        }
    }

    private static void ReadWithLibpcap(string path, List<(ulong, ulong, byte[])> frames)
    {
        var device = new CaptureFileReaderDevice(path);
        device.Open();
        try
        {
            while (device.GetNextPacket(out PacketCapture capture) == GetPacketStatus.PacketRead)
            {
                var raw = capture.GetPacket();
                frames.Add((raw.Timeval.Seconds, raw.Timeval.MicroSeconds, raw.Data));
            }
        }
        finally
        {
            device.Close();
        }
    }

    private static (int Code, string Out, string Err) RunTool(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(30_000))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{tool} did not finish in 30 s");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    private static void RequireTool(string path)
    {
        if (!File.Exists(path)) Assert.Ignore($"{Path.GetFileName(path)} is not installed (apt-get install tshark)");
    }

    [TestCase(CaptureFormat.Pcap)]
    [TestCase(CaptureFormat.Pcapng)]
    public void Tshark_reads_our_files_without_malformed_packets(CaptureFormat format)
    {
        RequireTool("/usr/bin/tshark");
        var (code, output, err) = RunTool("/usr/bin/tshark", "-n", "-r", WriteAll("t." + format, format, "net0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, err);
            Assert.That(output, Does.Not.Contain("Malformed"));
            Assert.That(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(Frames().Count));
            Assert.That(output, Does.Contain("ICMPv6"));
            Assert.That(output, Does.Contain("Who has 192.0.2.2"));
        }
    }

    [Test]
    public void Tshark_shows_each_pcapng_frames_link_name()
    {
        RequireTool("/usr/bin/tshark");
        string path = WriteAll("names.pcapng", CaptureFormat.Pcapng, "z2_net0", "e1000g0");
        var (code, output, err) = RunTool("/usr/bin/tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.time_epoch");
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, err);
            Assert.That(lines, Has.Length.EqualTo(Frames().Count));
            Assert.That(lines.Select(l => l.Split('\t')[0]), Is.EqualTo(Enumerable.Range(0, lines.Length).Select(i => i % 2 == 0 ? "z2_net0" : "e1000g0")));
            Assert.That(lines[1].Split('\t')[1], Is.EqualTo("1.234567891"), "nanosecond stamps");
        }
    }

    /// <summary>editcap (Wireshark's) converts our pcap into a snoop file and into its own pcapng:
    /// our reader gives back the same frames and times from both.</summary>
    [TestCase("snoop", 1000)]
    [TestCase("pcapng", 1000)]
    public void Files_editcap_writes_read_back_as_ours(string format, long resolutionNs)
    {
        RequireTool("/usr/bin/editcap");
        string pcap = WriteAll("src.pcap", CaptureFormat.Pcap);
        string converted = Path.Combine(_dir, "conv." + format);
        var (code, _, err) = RunTool("/usr/bin/editcap", "-F", format, pcap, converted);
        Assert.That(code, Is.Zero, err);
        var mine = ReadAll(pcap);
        var theirs = ReadAll(converted);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(theirs.Error, Is.Null);
            Assert.That(theirs.Records.Select(r => r.Frame), Is.EqualTo(mine.Records.Select(r => r.Frame)));
            Assert.That(theirs.Records.Select(r => r.Ns / resolutionNs), Is.EqualTo(mine.Records.Select(r => r.Ns / resolutionNs)));
        }
    }
}
