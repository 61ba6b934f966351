using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>iperf -c: the client side of a test (see Iperf.cs): the control connection, the
/// parameter exchange, the data streams it opens, and the end of the test.</summary>
public static partial class Iperf
{
    private static async Task<int> Client(ProgramContext ctx, Settings s)
    {
        if (!IpAddress.TryParse(s.Host!, out var server))
        {
            ctx.Err.WriteLine($"iperf: error - unable to resolve host: {s.Host}");
            return 1;
        }
        var stack = ctx.Stack;
        var control = new TcpSocket(stack.Tcp) { NoDelay = true };
        var sockets = new List<Action> { control.Abort };
        using var dog = new Watchdog(stack.Scheduler, ctx.Cancel, () => { foreach (var abort in sockets) abort(); });
        ctx.Out.WriteLine($"Connecting to host {s.Host}, port {s.Port}");
        if (s.Reverse) ctx.Out.WriteLine($"Reverse mode, remote host {s.Host} is sending");
        try
        {
            try { await control.ConnectAsync(server, s.Port); }
            catch (TcpException e)
            {
                ctx.Err.WriteLine($"iperf: error - unable to connect to server: {ProgramSupport.Describe(e.Error)}");
                return 1;
            }
            var reader = new SocketReader(control);
            string cookie = NewCookie(stack.Random);
            await control.SendAsync(Encoding.ASCII.GetBytes(cookie + "\0"));
            if (s.Length == 0) s.Length = s.Udp ? Math.Max(64, control.Mss > 0 ? control.Mss : 1460) : 128 * 1024;
            if (s.Rate < 0) s.Rate = s.Udp ? 1024 * 1024 : 0;
            var test = new Test { Ctx = ctx, Settings = s, Sending = !s.Reverse, IsClient = true };
            Task? dataLoop = null;
            long testStart = 0;
            while (true)
            {
                int state = await ReadState(reader);
                switch (state)
                {
                    case ParamExchange:
                        await SendJson(control, ParamsJson(s));
                        break;
                    case CreateStreams:
                        if (!await ConnectStream(test, server, cookie, sockets))
                        {
                            ctx.Err.WriteLine("iperf: error - unable to connect stream");
                            return 1;
                        }
                        break;
                    case TestStart:
                        break;
                    case TestRunning:
                        testStart = stack.Scheduler.Now;
                        test.Stats.Start = testStart;
                        dataLoop = test.Sending ? SendLoop(test) : ReceiveLoop(test);
                        var reports = Reports(test, testStart);
                        _ = EndAfter(test, testStart);
                        await test.Done.Task;
                        test.Stopped = true;
                        test.Stats.End = stack.Scheduler.Now;
                        await reports;
                        await control.SendAsync(new[] { TestEnd });
                        break;
                    case ExchangeResults:
                        await SendJson(control, ResultsJson(test));
                        var peer = await ReadJson(reader);
                        if (peer == null) return Fail(ctx, "unable to receive results");
                        test.Peer = peer;
                        break;
                    case DisplayResults:
                        Summary(test, test.Peer!.Value);
                        ctx.Out.WriteLine();
                        ctx.Out.WriteLine("iperf Done.");
                        await control.SendAsync(new[] { IperfDone });
                        control.Close();
                        foreach (var d in test.Streams) d.Tcp.Close();
                        test.Udp?.Dispose();
                        if (dataLoop != null) await Task.WhenAny(dataLoop, LoopSynchronizationContext.Delay(stack.Scheduler, Time.Second));
                        return 0;
                    case AccessDenied:
                        return Fail(ctx, "the server is busy running a test. try again later");
                    case ServerTerminate:
                        return Fail(ctx, "the server has terminated");
                    case -1:
                        ctx.Cancel.ThrowIfCancellationRequested();
                        return Fail(ctx, "control socket has closed unexpectedly");
                    default:
                        return Fail(ctx, $"received an unknown control message (state {state})");
                }
            }
        }
        catch (TcpException e)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            return Fail(ctx, $"control connection failed: {ProgramSupport.Describe(e.Error)}");
        }
    }

    private static int Fail(ProgramContext ctx, string message)
    {
        ctx.Err.WriteLine($"iperf: error - {message}");
        return 1;
    }

    private static async Task EndAfter(Test test, long start)
    {
        // The client's timer ends a timed test, as iperf3's does, even while a write is pending;
        // a receiving client's server sends until TEST_END.
        if (test.Settings.Bytes > 0) return;
        long due = start + test.Settings.Duration - test.Scheduler.Now;
        if (due > 0) await LoopSynchronizationContext.Delay(test.Scheduler, due);
        test.Done.TrySetResult();
    }

    private static async Task<bool> ConnectStream(Test test, IpAddress server, string cookie, List<Action> sockets)
    {
        var s = test.Settings;
        var stack = test.Ctx.Stack;
        if (!s.Udp)
        {
            for (int i = 0; i < s.Parallel; i++)
            {
                int window = s.Window > 0 ? s.Window : DefaultWindow;
                var data = new TcpSocket(stack.Tcp) { SendBufferSize = window, ReceiveBufferSize = window };
                sockets.Add(data.Abort);
                var stream = new DataStream(data, i);
                test.Streams.Add(stream);
                try
                {
                    await data.ConnectAsync(server, s.Port);
                    await data.SendAsync(Encoding.ASCII.GetBytes(cookie + "\0"));
                }
                catch (TcpException) { return false; }
                test.Ctx.Out.WriteLine($"[{stream.Id,3}] local {data.LocalAddress} port {data.LocalPort} connected to {data.RemoteAddress} port {data.RemotePort}");
            }
            return true;
        }
        var udp = stack.OpenUdpSocket();
        sockets.Add(udp.Dispose);
        test.Udp = udp;
        if (udp.Connect(new IpEndpoint(server, s.Port)) != NetError.None || udp.Send(s_udpConnect) != NetError.None) return false;
        var buffer = new byte[16];
        using var stop = new CancellationTokenSource();
        using var dog = new Watchdog(stack.Scheduler, test.Ctx.Cancel, stop.Cancel);
        dog.Arm(5 * Time.Second);
        var r = await udp.ReceiveFromAsync(buffer, stop.Token);
        if (r.Error != NetError.None || r.Length != 4) return false;
        stack.TrySelectSource(server, out var local);
        test.Ctx.Out.WriteLine($"[{StreamId,3}] local {local} port {udp.Local.Port} connected to {server} port {s.Port}");
        return true;
    }

    private static string NewCookie(HostRandom random)
    {
        const string chars = "abcdefghijklmnopqrstuvwxyz234567";
        var sb = new StringBuilder(CookieSize - 1);
        for (int i = 0; i < CookieSize - 1; i++) sb.Append(chars[random.Next(chars.Length)]);
        return sb.ToString();
    }

    private static string ParamsJson(Settings s)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteBoolean(s.Udp ? "udp" : "tcp", true);
            w.WriteNumber("omit", 0);
            w.WriteNumber("time", s.Bytes > 0 ? 0 : (int)Math.Ceiling(s.Duration / (double)Time.Second));
            w.WriteNumber("num", s.Bytes);
            w.WriteNumber("blockcount", 0);
            w.WriteNumber("parallel", s.Parallel);
            if (s.Reverse) w.WriteBoolean("reverse", true);
            w.WriteNumber("len", s.Length);
            if (s.Rate > 0) w.WriteNumber("bandwidth", s.Rate);
            if (s.Window > 0) w.WriteNumber("window", s.Window);
            w.WriteNumber("pacing_timer", 1000);
            w.WriteString("client_version", "3.16");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
