using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>nc, httpd and curl between two stacks on an etherstub, in virtual time.</summary>
public class SocketProgramTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-programs-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    internal sealed class Running(Task<int> task, StringWriter output, StringWriter error, CancellationTokenSource stop)
    {
        public Task<int> Task { get; } = task;
        public string Out => output.ToString();
        public string Err => error.ToString();
        public CancellationTokenSource Stop { get; } = stop;
    }

    internal static Running Start(World w, IpStack stack, string[] argv, string dir)
    {
        Assert.That(Programs.TryGet(argv[0], out var run), Is.True, argv[0]);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var stop = new CancellationTokenSource();
        var ctx = new ProgramContext { Out = o, Err = e, Cancel = stop.Token, Stack = stack, WorkingDirectory = dir };
        var task = w.Loop.Start(async () =>
        {
            try { return await run(ctx, argv[1..]); }
            catch (OperationCanceledException) { return 130; }
        });
        return new Running(task, o, e, stop);
    }

    /// <summary>Runs a command to completion (60 s of virtual time at most).</summary>
    internal static Running Run(World w, IpStack stack, string dir, params string[] argv)
    {
        var r = Start(w, stack, argv, dir);
        w.Scheduler.RunUntil(() => r.Task.IsCompleted, w.Scheduler.Now + 60 * Time.Second);
        Assert.That(r.Task.IsCompleted, Is.True, $"'{string.Join(' ', argv)}' did not finish");
        return r;
    }

    internal static int Stop(World w, Running r)
    {
        r.Stop.Cancel();
        w.Scheduler.RunUntil(() => r.Task.IsCompleted, w.Scheduler.Now + 10 * Time.Second);
        Assert.That(r.Task.IsCompleted, Is.True, "the background program did not stop when interrupted");
        return r.Task.Result;
    }

    private static (World w, IpStack a, IpStack b) Pair()
    {
        var w = new World();
        w.Stub("stub0");
        return (w, w.Stack("stub0", "10.0.0.1/24"), w.Stack("stub0", "10.0.0.2/24"));
    }

    [Test]
    public void Nc_listening_for_udp_takes_ipv4_and_ipv6_datagrams()
    {
        var (w, a, b) = Pair();
        w.AddAddress(a, "net0/v6", "2001:db8::1/64");
        w.AddAddress(b, "net0/v6", "2001:db8::2/64");
        var server = Start(w, b, ["nc", "-l", "-u", "7010"], _dir);
        var v4 = Run(w, a, _dir, "nc", "-u", "-m", "over-v4", "10.0.0.2", "7010");
        var v6 = Run(w, a, _dir, "nc", "-u", "-m", "over-v6", "2001:db8::2", "7010");
        w.Run(Time.Second);
        Stop(w, server);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(v4.Task.Result, Is.Zero, v4.Err);
            Assert.That(v6.Task.Result, Is.Zero, v6.Err);
            Assert.That(server.Out, Does.Contain("over-v4\n").And.Contain("over-v6\n"));
            Assert.That(a.Icmp6.icmpInDestUnreachs, Is.Zero);
        }
    }

    [Test]
    public void Nc_sends_a_message_to_a_listener_and_gets_its_reply()
    {
        var (w, a, b) = Pair();
        var server = Start(w, b, ["nc", "-l", "-m", "pong", "7000"], _dir);
        var client = Run(w, a, _dir, "nc", "-m", "ping", "10.0.0.2", "7000");
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero);
            Assert.That(client.Out, Is.EqualTo("pong\n"));
            Assert.That(server.Task.Result, Is.Zero);
            Assert.That(server.Out, Is.EqualTo("ping\n"));
        }
    }

    [Test]
    public void Nc_bytes_sends_a_pattern_that_the_listener_counts()
    {
        var (w, a, b) = Pair();
        var server = Start(w, b, ["nc", "-l", "-p", "7001", "--count"], _dir);
        var client = Run(w, a, _dir, "nc", "--bytes", "1M", "10.0.0.2", "7001");
        w.Scheduler.RunUntil(() => server.Task.IsCompleted, w.Scheduler.Now + Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero);
            Assert.That(server.Out, Is.EqualTo("1048576 bytes received\n"));
        }
    }

    [Test]
    public void Nc_to_a_closed_port_says_connection_refused()
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, _dir, "nc", "10.0.0.2", "9");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Task.Result, Is.EqualTo(1));
            Assert.That(r.Err, Is.EqualTo("nc: connect to 10.0.0.2 port 9 (tcp) failed: Connection refused\n"));
        }
    }

    [Test]
    public void Nc_z_reports_an_open_port_and_a_closed_one_by_exit_status()
    {
        var (w, a, b) = Pair();
        Start(w, b, ["nc", "-l", "7002"], _dir);
        var open = Run(w, a, _dir, "nc", "-zv", "10.0.0.2", "7002");
        var closed = Run(w, a, _dir, "nc", "-z", "10.0.0.2", "7003");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(open.Task.Result, Is.Zero);
            Assert.That(open.Err, Is.EqualTo("Connection to 10.0.0.2 7002 port [tcp/*] succeeded!\n"));
            Assert.That(closed.Task.Result, Is.EqualTo(1));
            Assert.That(closed.Err, Is.Empty);
        }
    }

    [Test]
    public void Nc_w_times_out_a_connect_to_a_silent_host()
    {
        var (w, a, _) = Pair();
        long start = w.Scheduler.Now;
        var r = Run(w, a, _dir, "nc", "-w", "2", "10.0.0.9", "80");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Task.Result, Is.EqualTo(1));
            Assert.That(r.Err, Is.EqualTo("nc: connect to 10.0.0.9 port 80 (tcp) failed: Connection timed out\n"));
            Assert.That(w.Scheduler.Now - start, Is.EqualTo(2 * Time.Second));
        }
    }

    [Test]
    public void Nc_u_exchanges_datagrams_with_a_udp_listener()
    {
        var (w, a, b) = Pair();
        var server = Start(w, b, ["nc", "-u", "-l", "-m", "hello back", "7004"], _dir);
        var client = Run(w, a, _dir, "nc", "-u", "-w", "1", "-m", "hello", "10.0.0.2", "7004");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(client.Task.Result, Is.Zero);
            Assert.That(client.Out, Is.EqualTo("hello back\n"));
            Assert.That(Stop(w, server), Is.Zero);
            Assert.That(server.Out, Is.EqualTo("hello\n"));
        }
    }

    [Test]
    public void Curl_gets_the_built_in_index_page_and_httpd_logs_the_request()
    {
        var (w, a, b) = Pair();
        var httpd = Start(w, b, ["httpd", "-p", "8080"], _dir);
        var r = Run(w, a, _dir, "curl", "-s", "-w", "%{http_code} %{size_download}\\n", "http://10.0.0.2:8080/");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Task.Result, Is.Zero);
            Assert.That(r.Out, Is.EqualTo(Httpd.IndexPage + $"200 {Httpd.IndexPage.Length}\n"));
            Assert.That(Stop(w, httpd), Is.EqualTo(130));
            Assert.That(httpd.Out, Does.Match(@"^10\.0\.0\.1 - - \[[0-9.]+\] ""GET / HTTP/1\.1"" 200 \d+\n$"));
        }
    }

    [Test]
    public void Httpd_serves_files_from_its_directory_and_curl_writes_them_with_o()
    {
        var (w, a, b) = Pair();
        Directory.CreateDirectory(Path.Combine(_dir, "www", "sub"));
        var big = Nc.Pattern(300_000);
        File.WriteAllBytes(Path.Combine(_dir, "www", "sub", "big.txt"), big);
        File.WriteAllText(Path.Combine(_dir, "www", "index.html"), "<p>home</p>\n");
        Start(w, b, ["httpd", "-d", "www"], _dir);
        var home = Run(w, a, _dir, "curl", "-s", "http://10.0.0.2/");
        var file = Run(w, a, _dir, "curl", "-s", "-o", "got.txt", "-w", "%{http_code} %{content_type}", "http://10.0.0.2/sub/big.txt");
        var missing = Run(w, a, _dir, "curl", "-s", "-w", "%{http_code}", "-o", "missing.html", "http://10.0.0.2/nothing");
        var escape = Run(w, a, _dir, "curl", "-s", "-w", "%{http_code}", "-o", "x.html", "http://10.0.0.2/../www/index.html");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(home.Out, Is.EqualTo("<p>home</p>\n"));
            Assert.That(file.Out, Is.EqualTo("200 text/plain"));
            Assert.That(File.ReadAllBytes(Path.Combine(_dir, "got.txt")), Is.EqualTo(big));
            Assert.That(missing.Out, Is.EqualTo("404"));
            Assert.That(missing.Task.Result, Is.Zero);
            Assert.That(escape.Out, Is.EqualTo("403"));
        }
    }

    [Test]
    public void Curl_I_prints_the_headers_of_a_head_request()
    {
        var (w, a, b) = Pair();
        Start(w, b, ["httpd"], _dir);
        var r = Run(w, a, _dir, "curl", "-I", "http://10.0.0.2/");
        Assert.That(r.Out, Is.EqualTo(
            "HTTP/1.1 200 OK\n" +
            "Server: httpd (SmartOS)\n" +
            "Content-Type: text/html\n" +
            $"Content-Length: {Httpd.IndexPage.Length}\n" +
            "Connection: keep-alive\n" +
            "\n"));
    }

    [Test]
    public void Httpd_keeps_a_connection_alive_for_a_second_request()
    {
        var (w, a, b) = Pair();
        Start(w, b, ["httpd", "-c", "2"], _dir);
        var result = w.Await(async () =>
        {
            var s = new SmartOS.Netstack.Tcp.TcpSocket(a.Tcp);
            await s.ConnectAsync(World.Ip("10.0.0.2"), 80);
            var reader = new SocketReader(s);
            var statuses = new List<string>();
            for (int i = 0; i < 2; i++)
            {
                await s.SendAsync("GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"u8.ToArray());
                statuses.Add((await reader.ReadLineAsync())!);
                string? h;
                int length = 0;
                while ((h = await reader.ReadLineAsync()) is { Length: > 0 })
                    if (h.StartsWith("Content-Length: ", StringComparison.Ordinal)) length = int.Parse(h[16..], System.Globalization.CultureInfo.InvariantCulture);
                await reader.ReadExactAsync(new byte[length]);
            }
            int eof = await reader.ReadAsync(new byte[1]);
            return (statuses, eof, s.LocalPort);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.statuses, Is.EqualTo(new[] { "HTTP/1.1 200 OK", "HTTP/1.1 200 OK" }));
            Assert.That(result.eof, Is.Zero, "httpd -c 2 closes after the second request");
        }
    }

    [Test]
    public void Curl_to_a_closed_port_fails_like_curl_with_exit_7()
    {
        var (w, a, _) = Pair();
        var r = Run(w, a, _dir, "curl", "http://10.0.0.2:81/");
        var silent = Run(w, a, _dir, "curl", "-s", "http://10.0.0.2:81/");
        var bad = Run(w, a, _dir, "curl", "http://name.example/");
        var timeout = Run(w, a, _dir, "curl", "-m", "3", "http://10.0.0.9/");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Task.Result, Is.EqualTo(7));
            Assert.That(r.Err, Is.EqualTo("curl: (7) Failed to connect to 10.0.0.2 port 81: Connection refused\n"));
            Assert.That(silent.Task.Result, Is.EqualTo(7));
            Assert.That(silent.Err, Is.Empty);
            Assert.That(bad.Task.Result, Is.EqualTo(6));
            Assert.That(bad.Err, Is.EqualTo("curl: (6) Could not resolve host: name.example\n"));
            Assert.That(timeout.Task.Result, Is.EqualTo(28));
            Assert.That(timeout.Err, Is.EqualTo("curl: (28) Failed to connect to 10.0.0.9 port 80 after 3000 ms: Timeout was reached\n"));
        }
    }

    [Test]
    public void Nc_curl_and_iperf_work_over_ipv6_against_servers_listening_on_both_families()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        w.AddAddress(a, "net0/v6", "fd00::1/64");
        w.AddAddress(b, "net0/v6", "fd00::2/64");
        var nc = Start(w, b, ["nc", "-l", "7000"], _dir);
        Start(w, b, ["httpd"], _dir);
        Start(w, b, ["iperf", "-s"], _dir);
        var sent = Run(w, a, _dir, "nc", "-m", "over six", "fd00::2", "7000");
        var page = Run(w, a, _dir, "curl", "-s", "-w", "%{http_code}", "-o", "page.html", "http://[fd00::2]/");
        var v4page = Run(w, a, _dir, "curl", "-s", "-w", "%{http_code}", "-o", "page4.html", "http://10.0.0.2/");
        var iperf = Run(w, a, _dir, "iperf", "-c", "fd00::2", "-n", "1M", "-i", "0");
        w.Scheduler.RunUntil(() => nc.Task.IsCompleted, w.Scheduler.Now + Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sent.Task.Result, Is.Zero, sent.Err);
            Assert.That(nc.Out, Is.EqualTo("over six\n"));
            Assert.That(page.Out, Is.EqualTo("200"));
            Assert.That(v4page.Out, Is.EqualTo("200"));
            Assert.That(iperf.Task.Result, Is.Zero, iperf.Err);
            Assert.That(iperf.Out, Does.Contain("connected to fd00::2 port 5201"));
        }
    }

    [Test]
    public void Netstat_an_shows_a_listening_httpd()
    {
        var (w, _, b) = Pair();
        Start(w, b, ["httpd"], _dir);
        w.Run(Time.Millisecond);
        var r = Run(w, b, _dir, "netstat", "-an", "-f", "inet");
        Assert.That(r.Out, Does.Contain("      *.80                 *.*                0      0 131072      0 LISTEN\n"));
    }
}
