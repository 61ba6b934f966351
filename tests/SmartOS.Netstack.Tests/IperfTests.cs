using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;
using static SmartOS.Netstack.Tests.SocketProgramTests;

namespace SmartOS.Netstack.Tests;

/// <summary>iperf client against iperf server, and the server against a hand-played iperf3 client.</summary>
public partial class IperfTests
{
    /// <summary>Two hosts over a 100 Mbit/s wire (a timed test on an etherstub would move 10 Gbit/s of data).</summary>
    private static (World w, IpStack a, IpStack b) Pair()
    {
        var w = new World();
        var mac2 = new Vnic.MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new Vnic.Wire(w.Scheduler, new HostRandom(5), p1, p2, 100_000_000, 100 * Time.Microsecond);
        return (w, w.Stack("e1000g0", "10.0.0.1/24"), w.Stack("e1000g0", "10.0.0.2/24", mac2));
    }

    [GeneratedRegex(@"^\[  5\] +(?<t0>[0-9.]+)-(?<t1>[0-9.]+) +sec +(?<xfer>[0-9.]+ [KMG]?Bytes) +(?<rate>[0-9.]+ [KMG]?bits/sec)(?<rest>.*)$", RegexOptions.Multiline)]
    private static partial Regex ReportLine();

    [TestCase("0", "0.00 Bytes")]
    [TestCase("1000", "1000 Bytes")]
    [TestCase("1181116006", "1.10 GBytes")]
    [TestCase("117440512", " 112 MBytes")]
    [TestCase("11744051", "11.2 MBytes")]
    public void Transfer_sizes_are_formatted_as_iperf3_does(string bytes, string expected)
        => Assert.That(Iperf.Bytes(double.Parse(bytes, System.Globalization.CultureInfo.InvariantCulture)), Is.EqualTo(expected));

    [TestCase(117_625_000.0, " 941 Mbits/sec")]
    [TestCase(131_250.0, "1.05 Mbits/sec")]
    [TestCase(0.0, "0.00 bits/sec")]
    public void Bitrates_are_formatted_as_iperf3_does(double bytesPerSecond, string expected)
        => Assert.That(Iperf.Bits(bytesPerSecond), Is.EqualTo(expected));

    /// <summary>-P 2: two TCP streams share the 100 Mbit/s wire; each has its lines and the [SUM]
    /// lines add them up, on the client and on the server, as iperf3 prints them.</summary>
    [Test]
    public void Parallel_streams_share_the_wire_and_are_summed()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        var server = Start(w, b, ["iperf", "-s", "-1"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-t", "3", "-P", "2");
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + 5 * Time.Second);
        static double Mbits(string text, string id, string role)
        {
            var m = Regex.Match(text, $@"^\[{Regex.Escape(id)}\] +0\.00-[0-9.]+ +sec +[0-9.]+ [KMG]?Bytes +(?<rate>[0-9.]+) Mbits/sec.*{role}$", RegexOptions.Multiline);
            return m.Success ? double.Parse(m.Groups["rate"].Value, System.Globalization.CultureInfo.InvariantCulture) : -1;
        }
        double s5 = Mbits(client.Out, "  5", "receiver"), s7 = Mbits(client.Out, "  7", "receiver"), sum = Mbits(client.Out, "SUM", "receiver");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(client.Out, Does.Match(@"\[  7\] local 10\.0\.0\.1 port \d+ connected to 10\.0\.0\.2 port 5201\n"));
            Assert.That(client.Out, Does.Contain("\n[SUM]   0.00-1.00   sec  "));
            Assert.That(client.Out, Does.Contain("- - - - - - - - - - - - - - - - - - - - - - - - -\n[  5]   1.00-2.00   sec  "));
            Assert.That(s5, Is.GreaterThan(20), client.Out);
            Assert.That(s7, Is.GreaterThan(20), client.Out);
            Assert.That(sum, Is.InRange(85.0, 100.0), client.Out);
            Assert.That(Math.Abs(s5 + s7 - sum), Is.LessThan(2.0), "the sum is the streams'");
            Assert.That(server.Out.ToString(), Does.Contain("[SUM]   0.00-3.00   sec"));
        }
    }

    [Test]
    public void Parallel_udp_streams_are_refused_with_a_message()
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, Path.GetTempPath(), "iperf", "-c", "10.0.0.2", "-u", "-P", "2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Task.Result, Is.EqualTo(1));
            Assert.That(r.Err, Does.StartWith("iperf: parameter error - parallel streams (-P) are TCP only here\n"));
        }
    }

    [Test]
    public void Tcp_test_prints_intervals_and_a_summary_on_both_sides()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        var server = Start(w, b, ["iperf", "-s", "-1"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-t", "3");
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + 5 * Time.Second);
        string[] lines = client.Out.Split('\n');
        var reports = ReportLine().Matches(client.Out);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(lines[0], Is.EqualTo("Connecting to host 10.0.0.2, port 5201"));
            Assert.That(lines[1], Does.Match(@"^\[  5\] local 10\.0\.0\.1 port \d+ connected to 10\.0\.0\.2 port 5201$"));
            Assert.That(lines[2], Is.EqualTo("[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"));
            Assert.That(lines[3], Does.StartWith("[  5]   0.00-1.00   sec  "));
            Assert.That(client.Out, Does.Contain("- - - - - - - - - - - - - - - - - - - - - - - - -\n[ ID] Interval           Transfer     Bitrate         Retr\n"));
            Assert.That(client.Out, Does.EndWith("receiver\n\niperf Done.\n"));
            Assert.That(reports, Has.Count.EqualTo(5), "three intervals, sender, receiver");
            Assert.That(reports[3].Groups["rest"].Value, Does.EndWith("sender"));
            Assert.That(server.Task.Result, Is.Zero, server.Err);
            Assert.That(server.Out, Does.StartWith("-----------------------------------------------------------\nServer listening on 5201\n"));
            Assert.That(server.Out, Does.Contain("Accepted connection from 10.0.0.1, port "));
            Assert.That(server.Out, Does.Contain("[ ID] Interval           Transfer     Bitrate\n[  5]   0.00-1.00   sec  "));
        }
        // Both sides agree on what the receiver got.
        string clientReceiver = reports[4].Groups["xfer"].Value;
        var serverReports = ReportLine().Matches(server.Out);
        Assert.That(serverReports[^1].Groups["xfer"].Value, Is.EqualTo(clientReceiver));
        Assert.That(serverReports[^1].Groups["rest"].Value, Does.EndWith("receiver"));
    }

    [Test]
    public void Reverse_tcp_test_has_the_server_send()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        var server = Start(w, b, ["iperf", "-s"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-R", "-t", "2", "-i", "0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(client.Out, Does.Contain("Reverse mode, remote host 10.0.0.2 is sending\n"));
            var reports = ReportLine().Matches(client.Out);
            Assert.That(reports, Has.Count.EqualTo(2));
            Assert.That(reports[0].Groups["xfer"].Value, Is.Not.EqualTo("0.00 Bytes"));
            Assert.That(reports[1].Groups["xfer"].Value, Is.Not.EqualTo("0.00 Bytes"));
            Assert.That(Stop(w, server), Is.EqualTo(130));
            Assert.That(server.Out, Does.Contain("[ ID] Interval           Transfer     Bitrate         Retr  Cwnd\n"));
        }
    }

    [Test]
    public void Udp_test_at_a_set_rate_reports_datagrams_jitter_and_no_loss_on_a_clean_link()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        var server = Start(w, b, ["iperf", "-s"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-u", "-b", "10M", "-l", "1250", "-t", "2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(client.Out, Does.Contain("[ ID] Interval           Transfer     Bitrate         Total Datagrams\n[  5]   0.00-1.00   sec  1.19 MBytes  10.0 Mbits/sec  1000  \n"));
            Assert.That(client.Out, Does.Contain("[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams\n"));
            Assert.That(client.Out, Does.Contain("  0.000 ms  0/2000 (0%)  sender\n"));
            Assert.That(client.Out, Does.Match(@"\[  5\]   0\.00-2\.00 +sec  2\.38 MBytes  10\.0 Mbits/sec  0\.000 ms  0/2000 \(0%\)  receiver\n"));
            Assert.That(Stop(w, server), Is.EqualTo(130));
        }
    }

    [Test]
    public void Udp_over_a_lossy_wire_counts_lost_datagrams()
    {
        var w = new World();
        var mac2 = new Vnic.MacLayer("h2", w.Scheduler, w.Pool, w.Kstats, new HostRandom(9));
        var p1 = w.Mac.AddPhys("e1000g0");
        var p2 = mac2.AddPhys("e1000g0");
        _ = new Vnic.Wire(w.Scheduler, new HostRandom(5), p1, p2, 100_000_000, Time.Millisecond, 0.05);
        var a = w.Stack("e1000g0", "10.0.0.1/24");
        var b = w.Stack("e1000g0", "10.0.0.2/24", mac2);
        string dir = Path.GetTempPath();
        Start(w, b, ["iperf", "-s"], dir);
        // The control connection rides the same lossy wire: TCP carries it through.
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-u", "-b", "5M", "-t", "2", "-i", "0");
        Assert.That(client.Task.Result, Is.Zero, client.Err);
        var m = Regex.Match(client.Out, @"ms  (\d+)/(\d+) \(([0-9.e+]+)%\)  receiver");
        Assert.That(m.Success, Is.True, client.Out);
        int lost = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        int total = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(lost / (double)total, Is.InRange(0.02, 0.09));
    }

    [Test]
    public void Reverse_udp_test_has_the_server_send_at_the_rate()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        Start(w, b, ["iperf", "-s"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-u", "-R", "-b", "2M", "-l", "1000", "-t", "2", "-i", "0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(client.Out, Does.Contain("  0.000 ms  0/500 (0%)  sender\n"));
            Assert.That(client.Out, Does.Match(@"2\.0\d +sec +[0-9.]+ KBytes +[0-9.]+ Mbits/sec +[0-9.]+ ms +0/(49\d|500) \(0%\)  receiver\n"));
        }
    }

    [Test]
    public void A_server_busy_with_a_test_turns_a_second_client_away()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        Start(w, b, ["iperf", "-s"], dir);
        var first = Start(w, a, ["iperf", "-c", "10.0.0.2", "-t", "3", "-b", "1M"], dir);
        w.Run(Time.Second);
        var second = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-t", "1");
        w.Scheduler.RunUntil(() => first.Task.IsCompleted, w.Scheduler.Now + 10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.Task.Result, Is.EqualTo(1));
            Assert.That(second.Err, Is.EqualTo("iperf: error - the server is busy running a test. try again later\n"));
            Assert.That(first.Task.Result, Is.Zero, first.Err);
        }
    }

    [Test]
    public void Bytes_option_ends_the_test_after_that_many_bytes()
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        Start(w, b, ["iperf", "-s"], dir);
        var client = Run(w, a, dir, "iperf", "-c", "10.0.0.2", "-n", "10M", "-i", "0");
        Assert.That(client.Task.Result, Is.Zero, client.Err);
        Assert.That(client.Out, Does.Contain(" sec  10.0 MBytes  "));
    }

    [Test]
    public void Client_to_no_server_reports_connection_refused()
    {
        var (w, a, _) = Pair();
        var client = Run(w, a, Path.GetTempPath(), "iperf", "-c", "10.0.0.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.EqualTo(1));
            Assert.That(client.Err, Is.EqualTo("iperf: error - unable to connect to server: Connection refused\n"));
        }
    }

    /// <summary>The largest receive window among <paramref name="stack"/>'s established TCP connections
    /// to or from port 5201 (netstat's Rwind).</summary>
    private static int LargestIperfWindow(IpStack stack)
    {
        var rows = new List<TransportSocketInfo>();
        stack.ListSockets(rows);
        return rows.Where(r => r.State == "ESTABLISHED" && (r.Local.Port == 5201 || r.Remote.Port == 5201))
            .Select(r => r.ReceiveWindow).DefaultIfEmpty(0).Max();
    }

    /// <summary>-w (iperf3's window): the client's data sockets get buffers of that size, and the
    /// server's from the "window" parameter the client sends, so both ends' windows open that far;
    /// without it both stay at the default 512 KiB.</summary>
    [TestCase(null, 512 * 1024)]
    [TestCase("2M", 2 << 20)]
    public void Window_option_sizes_both_ends_data_sockets(string? window, int expected)
    {
        var (w, a, b) = Pair();
        string dir = Path.GetTempPath();
        var server = Start(w, b, ["iperf", "-s", "-1", "-i", "0"], dir);
        string[] argv = window == null ? ["iperf", "-c", "10.0.0.2", "-t", "2", "-i", "0"] : ["iperf", "-c", "10.0.0.2", "-t", "2", "-i", "0", "-w", window];
        var client = Start(w, a, argv, dir);
        w.Scheduler.RunUntil(() => client.Task.IsCompleted, w.Scheduler.Now + Time.Second);
        int serverWindow = LargestIperfWindow(b), clientWindow = LargestIperfWindow(a);
        w.Scheduler.RunUntil(() => client.Task.IsCompleted && server.Task.IsCompleted, w.Scheduler.Now + 10 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero, client.Err);
            Assert.That(clientWindow, Is.EqualTo(expected), "the client's data socket (it receives nothing)");
            Assert.That(serverWindow, Is.InRange(expected - 256 * 1024, expected), "the server's data socket, less what waits to be read");
            Assert.That(serverWindow, Is.GreaterThan(expected / 2));
        }
    }

    [Test]
    public void A_window_beyond_the_largest_socket_buffer_is_refused()
    {
        var (w, a, _) = Pair();
        var client = Run(w, a, Path.GetTempPath(), "iperf", "-c", "10.0.0.2", "-w", "128M");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.EqualTo(1));
            Assert.That(client.Err, Does.StartWith("iperf: parameter error - socket buffer size too large (maximum = 67108864 bytes)\n"));
        }
    }

    /// <summary>A "window" the server cannot honour ends that test with iperf3's message; the server goes on.</summary>
    [Test]
    public void Server_refuses_a_window_parameter_beyond_the_largest_socket_buffer()
    {
        var (w, a, b) = Pair();
        var server = Start(w, b, ["iperf", "-s", "-1", "-i", "0"], Path.GetTempPath());
        w.Await(async () =>
        {
            var control = new TcpSocket(a.Tcp);
            await control.ConnectAsync(World.Ip("10.0.0.2"), 5201);
            var reader = new SocketReader(control);
            var one = new byte[1];
            await control.SendAsync(Encoding.ASCII.GetBytes("abcdefghijklmnopqrstuvwxyz2345672345\0"));
            await reader.ReadExactAsync(one);
            byte[] json = Encoding.UTF8.GetBytes("{\"tcp\":true,\"time\":1,\"parallel\":1,\"len\":1000,\"window\":134217728}");
            var len = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, json.Length);
            await control.SendAsync(len);
            await control.SendAsync(json);
            await LoopSynchronizationContext.Delay(w.Scheduler, Time.Second);
            control.Close();
            return true;
        });
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + 5 * Time.Second);
        Assert.That(server.Err, Does.Contain("iperf: error - socket buffer size too large (maximum = 67108864 bytes)\n"));
    }

    /// <summary>Plays an iperf3 client byte by byte: the cookie, state bytes, length-prefixed JSON.</summary>
    [Test]
    public void Server_speaks_the_iperf3_control_protocol()
    {
        var (w, a, b) = Pair();
        var server = Start(w, b, ["iperf", "-s", "-1", "-i", "0"], Path.GetTempPath());
        var states = w.Await(async () =>
        {
            var seen = new List<int>();
            const string cookie = "abcdefghijklmnopqrstuvwxyz2345672345";
            var control = new TcpSocket(a.Tcp);
            await control.ConnectAsync(World.Ip("10.0.0.2"), 5201);
            var reader = new SocketReader(control);
            var one = new byte[1];
            await control.SendAsync(Encoding.ASCII.GetBytes(cookie + "\0"));
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            byte[] json = Encoding.UTF8.GetBytes("{\"tcp\":true,\"omit\":0,\"time\":1,\"num\":0,\"blockcount\":0,\"parallel\":1,\"len\":1000,\"pacing_timer\":1000,\"client_version\":\"3.9\"}");
            var len = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(len, json.Length);
            await control.SendAsync(len);
            await control.SendAsync(json);
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            var data = new TcpSocket(a.Tcp);
            await data.ConnectAsync(World.Ip("10.0.0.2"), 5201);
            await data.SendAsync(Encoding.ASCII.GetBytes(cookie + "\0"));
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            await data.SendAsync(new byte[5000]);
            await LoopSynchronizationContext.Delay(w.Scheduler, Time.Second);
            await control.SendAsync(new byte[] { 4 });
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            byte[] results = Encoding.UTF8.GetBytes("{\"cpu_util_total\":0,\"cpu_util_user\":0,\"cpu_util_system\":0,\"sender_has_retransmits\":0,\"streams\":[{\"id\":1,\"bytes\":5000,\"retransmits\":0,\"jitter\":0,\"errors\":0,\"packets\":5,\"start_time\":0,\"end_time\":1}]}");
            BinaryPrimitives.WriteInt32BigEndian(len, results.Length);
            await control.SendAsync(len);
            await control.SendAsync(results);
            await reader.ReadExactAsync(len);
            var body = new byte[BinaryPrimitives.ReadInt32BigEndian(len)];
            await reader.ReadExactAsync(body);
            using var doc = JsonDocument.Parse(body);
            long bytes = doc.RootElement.GetProperty("streams")[0].GetProperty("bytes").GetInt64();
            await reader.ReadExactAsync(one); seen.Add(one[0]);
            await control.SendAsync(new byte[] { 16 });
            control.Close();
            data.Close();
            seen.Add((int)bytes);
            return seen;
        });
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + 5 * Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(states, Is.EqualTo(new[] { 9, 10, 1, 2, 13, 14, 5000 }));
            Assert.That(server.Task.Result, Is.Zero);
            Assert.That(server.Out, Does.Contain("  0.00-1.00   sec  4.88 KBytes  40.0 Kbits/sec                  sender\n"));
        }
    }
}
