using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>tshark, where it is installed, reads what the stack emits without a malformed packet or a
/// bad checksum (issue 4, "Cross-check").</summary>
public class TcpPcapTests
{
    private static string? FindTshark()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            var candidate = Path.Combine(dir, "tshark");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>A pcap of raw IPv4 packets (LINKTYPE_RAW), stamped with scheduler time.</summary>
    private sealed class PcapWriter(Stream stream)
    {
        private readonly BinaryWriter _w = new(stream);

        public void Header()
        {
            _w.Write(0xa1b2c3d4u);
            _w.Write((ushort)2);
            _w.Write((ushort)4);
            _w.Write(0);
            _w.Write(0u);
            _w.Write(65535u);
            _w.Write(101u);
        }

        public void Segment(long time, IpAddress src, IpAddress dst, ReadOnlySpan<byte> segment)
        {
            var packet = new byte[20 + segment.Length];
            Ipv4View.Write(packet, src.V4Raw, dst.V4Raw, IpProtocol.Tcp, segment.Length);
            segment.CopyTo(packet.AsSpan(20));
            _w.Write((uint)(time / Time.Second));
            _w.Write((uint)(time % Time.Second / Time.Microsecond));
            _w.Write((uint)packet.Length);
            _w.Write((uint)packet.Length);
            _w.Write(packet);
        }
    }

    [Test]
    public void Tshark_finds_no_malformed_segment_and_no_bad_checksum_in_a_lossy_transfer()
    {
        var tshark = FindTshark();
        if (tshark == null) Assert.Ignore("tshark is not installed");

        var path = Path.Combine(Path.GetTempPath(), $"smartos-tcp-{Environment.ProcessId}.pcap");
        int frames = 0;
        using (var file = File.Create(path))
        {
            var pcap = new PcapWriter(file);
            pcap.Header();
            var w = new TcpWorld(seed: 21);
            w.Wire.Loss = 0.03;
            w.Wire.Reorder = 0.05;
            w.Wire.Delay = 2 * Time.Millisecond;
            foreach (var ip in new[] { w.A, w.B })
            {
                var onward = ip.Output!;
                ip.Output = (p, s, d) => { pcap.Segment(w.Scheduler.Now, s, d, p.Data); frames++; onward(p, s, d); };
            }
            var listener = new TcpListener(w.TcpA);
            listener.Listen(w.A.Address, 80);
            var server = w.Start(async () =>
            {
                var s = await listener.AcceptAsync();
                var buffer = new byte[8192];
                long total = 0;
                int n;
                while ((n = await s.ReceiveAsync(buffer)) > 0) total += n;
                s.Close();
                return total;
            });
            var client = w.Start(async () =>
            {
                var s = new TcpSocket(w.TcpB);
                await s.ConnectAsync(w.A.Address, 80);
                await s.SendAsync(new byte[300_000]);
                s.Shutdown();
                await s.ReceiveAsync(new byte[1]);
                s.Close();
                return true;
            });
            w.RunUntil(Task.WhenAll(server, client), 60 * Time.Second);
            Assert.That(server.Result, Is.EqualTo(300_000));
        }

        var psi = new ProcessStartInfo(tshark, ["-n", "-r", path, "-o", "tcp.check_checksum:TRUE", "-Y", "_ws.malformed || tcp.checksum.status == 0 || _ws.expert.severity == error", "-T", "fields", "-e", "frame.number"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(psi)!;
        string output = process.StandardOutput.ReadToEnd();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        File.Delete(path);
        Assert.That(process.ExitCode, Is.Zero, errors);
        Assert.That(frames, Is.GreaterThan(200));
        Assert.That(output.Trim(), Is.Empty, "frames tshark flags as malformed or with a bad checksum");
    }
}
