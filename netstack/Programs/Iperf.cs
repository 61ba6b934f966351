using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// iperf: an iperf3-compatible bandwidth tester, speaking iperf3's control protocol so that a real
/// `iperf3 -c` can test against `iperf -s` and `iperf -c` against a real `iperf3 -s` once frames
/// reach real interfaces (real-time mode).
/// <code>
///   iperf -s [-p PORT] [-i SECS] [-1]
///   iperf -c HOST [-p PORT] [-u] [-t SECS] [-n BYTES] [-b RATE] [-l LEN] [-P N] [-R] [-i SECS]
/// </code>
/// The protocol (iperf3's): the client opens a TCP control connection to PORT (5201) and sends a
/// 37-byte cookie (36 characters of [a-z2-7] and a NUL). The server answers with state bytes:
/// PARAM_EXCHANGE (9), after which the client sends its parameters as JSON behind a 4-byte
/// big-endian length; CREATE_STREAMS (10), after which the client opens the data streams (TCP: -P
/// connections to PORT that each start with the cookie; UDP, one stream only: a datagram "9876" to
/// PORT answered with "6789"); TEST_START (1) and TEST_RUNNING (2). The senders then write blocks of
/// -l bytes (UDP datagrams carry sec, usec and a packet count, big-endian, in their first 12
/// bytes). The client ends the test with TEST_END (4); the server sends EXCHANGE_RESULTS (13), the
/// client its results JSON (one entry per stream, ids 1, 3, 4, ... as iperf3 numbers them), the
/// server its own, then DISPLAY_RESULTS (14); the client closes with IPERF_DONE (16), after which
/// the server takes the next client. A server busy with a test answers a new control connection
/// with ACCESS_DENIED (-1).
/// Reports are iperf3's lines (iperf_locale.c formats): intervals every -i seconds (default 1, 0
/// turns them off), then the sender and receiver summary; with several streams a line per stream
/// and a [SUM] line. Sizes take K/M/G (x1024), rates K/M/G (x1000); UDP defaults to 1 Mbit/s and
/// TCP to as fast as the path allows; -b paces each stream and -n bounds them all, as in iperf3.
/// All times are virtual. The server listens on both families. CPU use is reported as 0. Streams
/// are printed as 5, 7, 9, ... as iperf3's data sockets usually are.
/// An etherstub has no speed and no delay, so nothing else would make virtual time pass during a
/// timed TCP test on one: an unlimited sender is held to <see cref="MaxTcpRate"/> (10 Gbit/s).
/// </summary>
public static class Iperf
{
    public static readonly ProgramDescriptor Descriptor = new("iperf", "s1uRc:p:t:i:n:b:l:P:", "measure network throughput", RunAsync);

    private const byte TestStart = 1, TestRunning = 2, TestEnd = 4, ParamExchange = 9, CreateStreams = 10,
        ServerTerminate = 11, ClientTerminate = 12, ExchangeResults = 13, DisplayResults = 14, IperfDone = 16,
        AccessDenied = 0xFF;
    private const int CookieSize = 37;
    private const int StreamId = 5;
    private const ushort DefaultPort = 5201;
    private static readonly byte[] s_udpConnect = "9876"u8.ToArray();
    private static readonly byte[] s_udpReply = "6789"u8.ToArray();
    private const string Separator = "- - - - - - - - - - - - - - - - - - - - - - - - -";
    /// <summary>The fastest an unlimited TCP sender goes, in bits per second of virtual time (a CPU's worth).</summary>
    public const long MaxTcpRate = 10_000_000_000;
    private const string ServerLine = "-----------------------------------------------------------";
    /// <summary>iperf3's MAX_STREAMS.</summary>
    private const int MaxStreams = 128;

    private sealed class Settings
    {
        public bool Server, Udp, Reverse, OneOff;
        public string? Host;
        public ushort Port = DefaultPort;
        public long Duration = 10 * Time.Second;
        public long Bytes;
        public long Rate = -1;
        public int Length;
        public long Interval = Time.Second;
        /// <summary>TCP streams in parallel (-P); -b applies to each, -n to them all, as in iperf3.</summary>
        public int Parallel = 1;
    }

    /// <summary>One TCP data stream of a test: its socket, its counters and the id iperf3 prints
    /// (5, 7, 9, ... like the descriptors iperf3's ids are).</summary>
    private sealed class DataStream(TcpSocket tcp, int index)
    {
        public TcpSocket Tcp { get; } = tcp;
        public int Id { get; } = StreamId + 2 * index;
        public Stats Stats { get; } = new();
    }

    /// <summary>One stream's counters, as iperf3's iperf_stream_result.</summary>
    private sealed class Stats
    {
        public long Bytes, Packets, Lost, OutOfOrder;
        public double Jitter;
        public long PrevTransit = long.MinValue;
        public long Start, End;
    }

    /// <summary>A running test: its stream, its counters and the flag that stops the data loops.</summary>
    private sealed class Test
    {
        public required ProgramContext Ctx;
        public required Settings Settings;
        public bool Sending;
        public bool IsClient;
        /// <summary>The whole test's counters (a UDP test's only ones; the sum of the TCP streams').</summary>
        public readonly Stats Stats = new();
        public JsonElement? Peer;
        public IpEndpoint UdpPeer;
        public readonly List<DataStream> Streams = [];
        public UdpSocket? Udp;
        public void AbortStreams() { foreach (var d in Streams) d.Tcp.Abort(); }
        public bool Stopped;
        /// <summary>The client said IPERF_DONE: a new test may queue while this one is cleaned up.</summary>
        public bool Finished;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.None);
        public Scheduler Scheduler => Ctx.Stack.Scheduler;
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var s = new Settings();
        bool client = false;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? next = i + 1 < args.Length ? args[i + 1] : null;
            long v;
            switch (a)
            {
                case "-s" or "--server": s.Server = true; break;
                case "-1" or "--one-off": s.OneOff = true; break;
                case "-u" or "--udp": s.Udp = true; break;
                case "-R" or "--reverse": s.Reverse = true; break;
                case "-c" or "--client" when next != null: client = true; s.Host = next; i++; break;
                case "-p" or "--port" when next != null && ProgramSupport.TryParsePort(next, out s.Port): i++; break;
                case "-t" or "--time" when next != null && ProgramSupport.TryParseSeconds(next, out s.Duration): i++; break;
                case "-i" or "--interval" when next != null && decimal.TryParse(next, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal iv):
                    s.Interval = (long)(iv * Time.Second); i++; break;
                case "-n" or "--bytes" when next != null && ProgramSupport.TryParseScaled(next, 1024, out v) && v > 0: s.Bytes = v; i++; break;
                case "-b" or "--bitrate" or "--bandwidth" when next != null && ProgramSupport.TryParseScaled(next, 1000, out v): s.Rate = v; i++; break;
                case "-l" or "--length" when next != null && ProgramSupport.TryParseScaled(next, 1024, out v) && v is > 16 and <= 1 << 20: s.Length = (int)v; i++; break;
                case "-P" or "--parallel" when next != null && int.TryParse(next, NumberStyles.None, CultureInfo.InvariantCulture, out int par) && par is >= 1 and <= MaxStreams:
                    s.Parallel = par; i++; break;
                default:
                    return Usage(ctx, $"parameter error - unknown or invalid option {a}");
            }
        }
        if (s.Server == client) return Usage(ctx, "parameter error - must either be a client (-c) or server (-s)");
        if (s.Udp && s.Length > UdpSocket.MaxPayload) return Usage(ctx, $"parameter error - block size too large (maximum = {UdpSocket.MaxPayload} bytes)");
        if (s.Udp && s.Parallel > 1) return Usage(ctx, "parameter error - parallel streams (-P) are TCP only here");
        return s.Server ? await Server(ctx, s) : await Client(ctx, s);
    }

    private static int Usage(ProgramContext ctx, string message)
    {
        ctx.Err.WriteLine($"iperf: {message}");
        ctx.Err.WriteLine("Usage: iperf [-s|-c host] [options]");
        return 1;
    }

    // ---- client --------------------------------------------------------------------------------

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
                var data = new TcpSocket(stack.Tcp) { SendBufferSize = 512 * 1024, ReceiveBufferSize = 512 * 1024 };
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
            w.WriteNumber("pacing_timer", 1000);
            w.WriteString("client_version", "3.16");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    // ---- server --------------------------------------------------------------------------------

    private static async Task<int> Server(ProgramContext ctx, Settings s)
    {
        var stack = ctx.Stack;
        // Both families: a listener each, and one UDP socket on the IPv6 wildcard, which takes
        // IPv4 datagrams too (UdpSocket.Match).
        var listener = new TcpListener(stack.Tcp) { NoDelay = true, SendBufferSize = 512 * 1024, ReceiveBufferSize = 512 * 1024 };
        var listener6 = new TcpListener(stack.Tcp) { NoDelay = true, SendBufferSize = 512 * 1024, ReceiveBufferSize = 512 * 1024 };
        try
        {
            listener.Listen(IpAddress.AnyV4, s.Port);
            listener6.Listen(IpAddress.AnyV6, s.Port);
        }
        catch (TcpException e)
        {
            listener.Close();
            listener6.Close();
            ctx.Err.WriteLine($"iperf: error - unable to start listener for connections: {ProgramSupport.Describe(e.Error)}");
            return 1;
        }
        var udp = stack.OpenUdpSocket();
        if (udp.Bind(IpAddress.AnyV6, s.Port) != NetError.None)
        {
            listener.Close();
            listener6.Close();
            udp.Dispose();
            ctx.Err.WriteLine("iperf: error - unable to bind UDP port: Address already in use");
            return 1;
        }
        Test? current = null;
        var streamWaiters = new Dictionary<string, StreamWaiter>(StringComparer.Ordinal);
        using var dog = new Watchdog(stack.Scheduler, ctx.Cancel, () =>
        {
            listener.Close();
            listener6.Close();
            udp.Dispose();
            current?.AbortStreams();
            current?.Done.TrySetResult();
        });
        var tests = Channel();
        // Accept loop: every connection starts with a cookie; a known cookie is a data stream, a new
        // one a control connection (refused while a test runs).
        _ = AcceptLoop(listener);
        _ = AcceptLoop(listener6);
        while (!ctx.Cancel.IsCancellationRequested)
        {
            ctx.Out.WriteLine(ServerLine);
            ctx.Out.WriteLine($"Server listening on {s.Port}");
            ctx.Out.WriteLine(ServerLine);
            var next = await tests.Reader();
            if (next == null) break;
            var (control, cookie) = next.Value;
            current = new Test { Ctx = ctx, Settings = new Settings { Port = s.Port, Interval = s.Interval } };
            try { await ServeOne(current, control, cookie, udp, streamWaiters); }
            catch (TcpException) { }
            // A test that ran to IPERF_DONE closes its control connection as iperf3 does; one cut
            // short (an error, ^C) is aborted with its streams.
            if (current.Finished) control.Close();
            else
            {
                control.Abort();
                current.AbortStreams();
            }
            current = null;
            streamWaiters.Clear();
            if (s.OneOff) break;
        }
        listener.Close();
        listener6.Close();
        udp.Dispose();
        ctx.Cancel.ThrowIfCancellationRequested();
        return 0;

        async Task AcceptLoop(TcpListener listener)
        {
            while (true)
            {
                TcpSocket sock;
                try { sock = await listener.AcceptAsync(); }
                catch (TcpException) { tests.Complete(); return; }
                _ = Classify(sock);
            }
        }

        async Task Classify(TcpSocket sock)
        {
            var buffer = new byte[CookieSize];
            var reader = new SocketReader(sock, CookieSize);
            try
            {
                if (!await reader.ReadExactAsync(buffer)) { sock.Close(); return; }
            }
            catch (TcpException) { return; }
            string cookie = Encoding.ASCII.GetString(buffer, 0, CookieSize - 1);
            if (streamWaiters.TryGetValue(cookie, out var waiter))
            {
                if (!waiter.Add(sock)) sock.Close(); // more streams than the test asked for
                return;
            }
            if ((current != null && !current.Finished) || tests.Count > 0)
            {
                try { await sock.SendAsync(new[] { AccessDenied }); } catch (TcpException) { }
                sock.Close();
                return;
            }
            tests.Add((sock, cookie));
        }
    }

    /// <summary>The data connections a test waits for: they arrive through the accept loop, each
    /// starting with the test's cookie.</summary>
    private sealed class StreamWaiter(int want)
    {
        public readonly List<TcpSocket> Sockets = [];
        public readonly TaskCompletionSource All = new();

        public bool Add(TcpSocket sock)
        {
            if (Sockets.Count >= want) return false;
            Sockets.Add(sock);
            if (Sockets.Count == want) All.TrySetResult();
            return true;
        }
    }

    /// <summary>A one-slot hand-off of control connections from the accept loop to the server loop.</summary>
    private sealed class ControlQueue
    {
        private readonly Queue<(TcpSocket, string)> _queue = new();
        private TaskCompletionSource<(TcpSocket, string)?>? _waiter;
        private bool _complete;

        public int Count => _queue.Count;

        public void Add((TcpSocket, string) item)
        {
            if (_waiter != null) { var w = _waiter; _waiter = null; w.SetResult(item); }
            else _queue.Enqueue(item);
        }

        public void Complete()
        {
            _complete = true;
            if (_waiter != null) { var w = _waiter; _waiter = null; w.SetResult(null); }
        }

        public Task<(TcpSocket, string)?> Reader()
        {
            if (_queue.Count > 0) return Task.FromResult<(TcpSocket, string)?>(_queue.Dequeue());
            if (_complete) return Task.FromResult<(TcpSocket, string)?>(null);
            _waiter = new TaskCompletionSource<(TcpSocket, string)?>();
            return _waiter.Task;
        }
    }

    private static ControlQueue Channel() => new();

    private static async Task ServeOne(Test test, TcpSocket control, string cookie, UdpSocket udp, Dictionary<string, StreamWaiter> streamWaiters)
    {
        var ctx = test.Ctx;
        var s = test.Settings;
        var sched = test.Scheduler;
        ctx.Out.WriteLine($"Accepted connection from {control.RemoteAddress}, port {control.RemotePort}");
        var reader = new SocketReader(control);
        await control.SendAsync(new[] { ParamExchange });
        var p = await ReadJson(reader);
        if (p == null) return;
        var root = p.Value;
        s.Udp = root.TryGetProperty("udp", out var u) && u.ValueKind == JsonValueKind.True;
        s.Parallel = root.TryGetProperty("parallel", out var par) && par.TryGetInt32(out int streams) ? streams : 1;
        if (s.Parallel < 1 || s.Parallel > MaxStreams || (s.Udp && s.Parallel > 1))
        {
            // Refused rather than left to stall the client: its control connection is closed.
            ctx.Err.WriteLine(s.Udp
                ? $"iperf: error - {s.Parallel} parallel UDP streams (-P) are not supported; run one stream per test"
                : $"iperf: error - number of parallel streams too large (maximum = {MaxStreams})");
            return;
        }
        s.Reverse = root.TryGetProperty("reverse", out var r) && (r.ValueKind == JsonValueKind.True || (r.ValueKind == JsonValueKind.Number && r.GetInt32() != 0));
        s.Duration = root.TryGetProperty("time", out var t) && t.TryGetInt64(out long secs) && secs > 0 ? secs * Time.Second : 0;
        s.Bytes = root.TryGetProperty("num", out var n) && n.TryGetInt64(out long num) ? num : 0;
        s.Length = root.TryGetProperty("len", out var l) && l.TryGetInt32(out int len) && len > 0 ? Math.Min(len, s.Udp ? UdpSocket.MaxPayload : 1 << 20) : (s.Udp ? 1460 : 128 * 1024);
        s.Rate = root.TryGetProperty("bandwidth", out var b) && b.TryGetInt64(out long rate) ? rate : 0;
        bool sending = test.Sending = s.Reverse;
        var waiter = new StreamWaiter(s.Parallel);
        if (!s.Udp) streamWaiters[cookie] = waiter;
        await control.SendAsync(new[] { CreateStreams });
        if (!s.Udp)
        {
            using var dog = new Watchdog(sched, ctx.Cancel, () => waiter.All.TrySetCanceled());
            dog.Arm(10 * Time.Second);
            try { await waiter.All.Task; }
            catch (OperationCanceledException)
            {
                foreach (var early in waiter.Sockets) early.Abort();
                return;
            }
            for (int i = 0; i < waiter.Sockets.Count; i++)
            {
                var stream = new DataStream(waiter.Sockets[i], i);
                test.Streams.Add(stream);
                var t2 = stream.Tcp;
                ctx.Out.WriteLine($"[{stream.Id,3}] local {t2.LocalAddress} port {t2.LocalPort} connected to {t2.RemoteAddress} port {t2.RemotePort}");
            }
        }
        else
        {
            var buffer = new byte[UdpSocket.MaxPayload];
            using var stop = new CancellationTokenSource();
            using var dog = new Watchdog(sched, ctx.Cancel, stop.Cancel);
            dog.Arm(10 * Time.Second);
            while (true)
            {
                var rr = await udp.ReceiveFromAsync(buffer, stop.Token);
                if (rr.Error != NetError.None) return;
                if (rr.Length == 4 && (buffer.AsSpan(0, 4).SequenceEqual(s_udpConnect) || BinaryPrimitives.ReadUInt32LittleEndian(buffer) == 123456789))
                {
                    udp.SendTo(s_udpReply, rr.From);
                    test.UdpPeer = rr.From;
                    break;
                }
            }
            test.Udp = udp;
            ctx.Stack.TrySelectSource(test.UdpPeer.Address, out var local);
            ctx.Out.WriteLine($"[{StreamId,3}] local {local} port {s.Port} connected to {test.UdpPeer.Address} port {test.UdpPeer.Port}");
        }
        await control.SendAsync(new[] { TestStart, TestRunning });
        long start = sched.Now;
        test.Stats.Start = start;
        var dataLoop = sending ? SendLoop(test) : ReceiveLoop(test);
        var reports = Reports(test, start);
        // The client ends the test with TEST_END (or gives up with CLIENT_TERMINATE / EOF).
        var stateTask = ReadState(reader).AsTask();
        await Task.WhenAny(stateTask, test.Done.Task);
        test.Stopped = true;
        test.Stats.End = sched.Now;
        test.Done.TrySetResult();
        await reports;
        int state = stateTask.IsCompleted ? stateTask.Result : -1;
        if (state != TestEnd) return;
        await control.SendAsync(new[] { ExchangeResults });
        var peer = await ReadJson(reader);
        if (peer == null) return;
        test.Peer = peer;
        await SendJson(control, ResultsJson(test));
        await control.SendAsync(new[] { DisplayResults });
        Summary(test, peer.Value);
        await ReadState(reader);
        test.Finished = true;
        // A receiving server's streams end with the client's FIN. A sending one (-R) may be blocked
        // on a full window the client no longer reads: abort, or the next client would find the
        // server busy for the linger below.
        if (sending) test.AbortStreams();
        else foreach (var d in test.Streams) d.Tcp.Close();
        await Task.WhenAny(dataLoop, LoopSynchronizationContext.Delay(sched, Time.Second));
    }

    // ---- data ----------------------------------------------------------------------------------

    private static async Task SendLoop(Test test)
    {
        var s = test.Settings;
        var stats = test.Stats;
        var sched = test.Scheduler;
        long end = stats.Start + s.Duration;
        var block = new byte[s.Length];
        for (int i = 0; i < block.Length; i++) block[i] = (byte)("0123456789"[i % 10]);
        try
        {
            if (test.Streams.Count > 0)
            {
                await Task.WhenAll(test.Streams.Select(d => SendStream(test, d, block)));
            }
            else
            {
                var udp = test.Udp!;
                long perPacket = s.Rate > 0 ? Math.Max(1, (long)(s.Length * 8.0 * Time.Second / s.Rate)) : 0;
                while (!test.Stopped && (s.Bytes > 0 ? stats.Bytes < s.Bytes : s.Duration == 0 || sched.Now < end))
                {
                    // Send what is due by now, then sleep a pacing tick (iperf3's pacing_timer, 1 ms).
                    long due = perPacket == 0 ? stats.Packets + 64 : (sched.Now - stats.Start) / perPacket + 1;
                    while (stats.Packets < due && !(s.Bytes > 0 && stats.Bytes >= s.Bytes))
                    {
                        long now = sched.Now;
                        BinaryPrimitives.WriteUInt32BigEndian(block, (uint)(now / Time.Second));
                        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(4), (uint)(now % Time.Second / Time.Microsecond));
                        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(8), (uint)(stats.Packets + 1));
                        var e = test.UdpPeer.Port != 0 ? udp.SendTo(block, test.UdpPeer) : udp.Send(block);
                        if (e != NetError.None && e != NetError.NoBufferSpace) break;
                        stats.Packets++;
                        stats.Bytes += block.Length;
                    }
                    await LoopSynchronizationContext.Delay(sched, Time.Millisecond);
                }
            }
        }
        catch (TcpException) { }
        // A sending client ends the test; a sending server (-R) half-closes so the client's reads end.
        if (test.IsClient) test.Done.TrySetResult();
        else foreach (var d in test.Streams) try { d.Tcp.Shutdown(); } catch (TcpException) { }
    }

    /// <summary>One TCP stream's sender: -b paces each stream, -n bounds them all together.</summary>
    private static async Task SendStream(Test test, DataStream stream, byte[] block)
    {
        var s = test.Settings;
        var total = test.Stats;
        var mine = stream.Stats;
        var sched = test.Scheduler;
        long end = total.Start + s.Duration;
        try
        {
            while (!test.Stopped && (s.Bytes > 0 ? total.Bytes < s.Bytes : s.Duration == 0 || sched.Now < end))
            {
                int len = s.Bytes > 0 ? (int)Math.Min(block.Length, s.Bytes - total.Bytes) : block.Length;
                // Rate-limited TCP (-b): wait until the block is due. Unlimited TCP is held to
                // MaxTcpRate, or over an etherstub (no speed, no delay) virtual time would never
                // reach the end of a timed test.
                long rate = s.Rate > 0 ? s.Rate : MaxTcpRate;
                {
                    long due = total.Start + (long)(mine.Bytes * 8.0 * Time.Second / rate);
                    if (due > sched.Now) await LoopSynchronizationContext.Delay(sched, due - sched.Now);
                }
                await stream.Tcp.SendAsync(block.AsMemory(0, len));
                if (test.Stopped) break;
                mine.Bytes += len;
                mine.Packets++;
                total.Bytes += len;
                total.Packets++;
            }
        }
        catch (TcpException) { }
    }

    private static async Task ReceiveLoop(Test test)
    {
        var stats = test.Stats;
        var s = test.Settings;
        var sched = test.Scheduler;
        try
        {
            if (test.Streams.Count > 0)
            {
                await Task.WhenAll(test.Streams.Select(d => ReceiveStream(test, d)));
            }
            else
            {
                var buffer = new byte[UdpSocket.MaxPayload];
                var udp = test.Udp!;
                using var stop = new CancellationTokenSource();
                _ = test.Done.Task.ContinueWith(_ => stop.Cancel(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                while (!test.Stopped)
                {
                    var r = await udp.ReceiveFromAsync(buffer, stop.Token);
                    if (r.Error != NetError.None) break;
                    if (test.Stopped || r.Length < 12) continue;
                    UdpArrival(stats, buffer, r.Length, sched.Now);
                    if (test.IsClient && s.Bytes > 0 && stats.Bytes >= s.Bytes) test.Done.TrySetResult();
                }
            }
        }
        catch (TcpException) { }
    }

    private static async Task ReceiveStream(Test test, DataStream stream)
    {
        var s = test.Settings;
        var buffer = new byte[256 * 1024];
        try
        {
            while (true)
            {
                int n = await stream.Tcp.ReceiveAsync(buffer);
                if (n == 0) break;
                if (test.Stopped) continue;
                stream.Stats.Bytes += n;
                test.Stats.Bytes += n;
                if (test.IsClient && s.Bytes > 0 && test.Stats.Bytes >= s.Bytes) test.Done.TrySetResult();
            }
        }
        catch (TcpException) { }
    }

    /// <summary>Counts a datagram as iperf3's iperf_udp_recv does: loss from gaps in the packet
    /// count, out-of-order arrivals, and RFC 1889 jitter over the transit times.</summary>
    private static void UdpArrival(Stats stats, byte[] data, int length, long now)
    {
        long sent = BinaryPrimitives.ReadUInt32BigEndian(data) * Time.Second + BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4)) * Time.Microsecond;
        long pcount = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(8));
        stats.Bytes += length;
        if (pcount >= stats.Packets + 1)
        {
            if (pcount > stats.Packets + 1) stats.Lost += pcount - 1 - stats.Packets;
            stats.Packets = pcount;
        }
        else
        {
            stats.OutOfOrder++;
            if (stats.Lost > 0) stats.Lost--;
        }
        long transit = now - sent;
        if (stats.PrevTransit != long.MinValue)
        {
            double d = Math.Abs(transit - stats.PrevTransit) / (double)Time.Second;
            stats.Jitter += (d - stats.Jitter) / 16.0;
        }
        stats.PrevTransit = transit;
    }

    // ---- control messages ----------------------------------------------------------------------

    private static async ValueTask<int> ReadState(SocketReader reader)
    {
        var b = new byte[1];
        try { return await reader.ReadExactAsync(b) ? b[0] : -1; }
        catch (TcpException) { return -1; }
    }

    private static async Task SendJson(TcpSocket sock, string json)
    {
        byte[] body = Encoding.UTF8.GetBytes(json);
        var msg = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(msg, body.Length);
        body.CopyTo(msg, 4);
        await sock.SendAsync(msg);
    }

    private static async Task<JsonElement?> ReadJson(SocketReader reader)
    {
        var len = new byte[4];
        if (!await reader.ReadExactAsync(len)) return null;
        int n = BinaryPrimitives.ReadInt32BigEndian(len);
        if (n <= 0 || n > 1 << 20) return null;
        var body = new byte[n];
        if (!await reader.ReadExactAsync(body)) return null;
        try { return JsonDocument.Parse(body).RootElement.Clone(); }
        catch (JsonException) { return null; }
    }

    private static string ResultsJson(Test test)
    {
        var st = test.Stats;
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteNumber("cpu_util_total", 0);
            w.WriteNumber("cpu_util_user", 0);
            w.WriteNumber("cpu_util_system", 0);
            w.WriteNumber("sender_has_retransmits", test.Sending && !test.Settings.Udp ? 1 : 0);
            w.WriteString("congestion_used", "newreno");
            w.WriteStartArray("streams");
            int count = Math.Max(1, test.Streams.Count);
            for (int i = 0; i < count; i++)
            {
                var one = test.Streams.Count > 0 ? test.Streams[i].Stats : st;
                w.WriteStartObject();
                // iperf3 numbers its streams 1, 3, 4, 5, ... (iperf_add_stream) and matches results by id.
                w.WriteNumber("id", i == 0 ? 1 : i + 2);
                w.WriteNumber("bytes", one.Bytes);
                w.WriteNumber("retransmits", test.Sending && test.Streams.Count > 0 ? test.Streams[i].Tcp.Retransmits : -1);
                w.WriteNumber("jitter", one.Jitter);
                w.WriteNumber("errors", one.Lost);
                w.WriteNumber("omitted_errors", 0);
                w.WriteNumber("packets", one.Packets);
                w.WriteNumber("omitted_packets", 0);
                w.WriteNumber("start_time", 0);
                w.WriteNumber("end_time", (st.End - st.Start) / (double)Time.Second);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    // ---- reports -------------------------------------------------------------------------------

    private static async Task Reports(Test test, long start)
    {
        var s = test.Settings;
        var o = test.Ctx.Out;
        var sched = test.Scheduler;
        bool sendingTcp = test.Sending && !s.Udp;
        if (s.Interval > 0) o.WriteLine(s.Udp
            ? (test.Sending ? "[ ID] Interval           Transfer     Bitrate         Total Datagrams" : "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams")
            : (sendingTcp ? "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd" : "[ ID] Interval           Transfer     Bitrate"));
        long lastTime = start, lastBytes = 0, lastPackets = 0, lastLost = 0;
        int count = test.Streams.Count;
        var lastStream = new long[count];
        var lastRetr = new long[count];
        void Line(long now)
        {
            var st = test.Stats;
            double t0 = (lastTime - start) / (double)Time.Second, t1 = (now - start) / (double)Time.Second;
            double secs = (now - lastTime) / (double)Time.Second;
            string Head(string id, long bytes) => $"[{id}] {Interval(t0, t1)} sec  {Bytes(bytes)}  {Bits(secs > 0 ? bytes / secs : 0)}";
            if (s.Udp)
            {
                string head = Head($"{StreamId,3}", st.Bytes - lastBytes);
                if (test.Sending) o.WriteLine($"{head}  {st.Packets - lastPackets}  ");
                else
                {
                    long total = st.Packets - lastPackets, lost = st.Lost - lastLost;
                    o.WriteLine($"{head}  {st.Jitter * 1000,5:F3} ms  {lost}/{total} ({Percent(lost, total)}%)  ");
                }
            }
            else
            {
                long sumRetr = 0;
                // iperf3 separates interval groups of several streams, not the first from the header.
                if (count > 1 && lastTime > start) o.WriteLine(Separator);
                for (int i = 0; i < count; i++)
                {
                    var d = test.Streams[i];
                    string head = Head($"{d.Id,3}", d.Stats.Bytes - lastStream[i]);
                    lastStream[i] = d.Stats.Bytes;
                    if (sendingTcp)
                    {
                        long retr = d.Tcp.Retransmits - lastRetr[i];
                        lastRetr[i] += retr;
                        sumRetr += retr;
                        o.WriteLine($"{head}  {retr,3}   {Bytes(d.Tcp.CongestionWindow)}       ");
                    }
                    else o.WriteLine($"{head}                  ");
                }
                if (count > 1)
                {
                    // iperf3's [SUM] line for the interval, then a separator before the next one.
                    string sum = Head("SUM", st.Bytes - lastBytes);
                    o.WriteLine(sendingTcp ? $"{sum}  {sumRetr,3}             " : $"{sum}                  ");
                }
            }
            lastTime = now; lastBytes = st.Bytes; lastPackets = st.Packets; lastLost = st.Lost;
        }
        if (s.Interval > 0)
        {
            while (!test.Stopped)
            {
                long due = lastTime + s.Interval;
                var delay = LoopSynchronizationContext.Delay(sched, due - sched.Now);
                await Task.WhenAny(delay, test.Done.Task);
                if (test.Done.Task.IsCompleted) break;
                Line(sched.Now);
            }
            // The last, partial interval (iperf3 skips one too short to mean anything).
            long end = test.Stats.End > 0 ? test.Stats.End : sched.Now;
            if (end - lastTime > s.Interval / 10) Line(end);
        }
    }

    private static void Summary(Test test, JsonElement peer)
    {
        var o = test.Ctx.Out;
        var s = test.Settings;
        double mine = (test.Stats.End - test.Stats.Start) / (double)Time.Second;
        var peerStreams = peer.TryGetProperty("streams", out var ps) && ps.ValueKind == JsonValueKind.Array ? ps : default;
        int peerCount = peerStreams.ValueKind == JsonValueKind.Array ? peerStreams.GetArrayLength() : 0;
        bool peerHasRetr = peer.TryGetProperty("sender_has_retransmits", out var hr) && hr.ValueKind == JsonValueKind.Number && JsonLong(hr) == 1;
        o.WriteLine(Separator);
        int count = Math.Max(1, test.Streams.Count);
        long sumS = 0, sumR = 0, sumRetr = 0;
        double sumSTime = 0, sumRTime = 0;
        for (int i = 0; i < count; i++)
        {
            var st = test.Streams.Count > 0 ? test.Streams[i].Stats : test.Stats;
            string id = $"{(test.Streams.Count > 0 ? test.Streams[i].Id : StreamId),3}";
            long peerBytes = 0, peerPackets = 0, peerErrors = 0, peerRetr = -1;
            double peerJitter = 0, peerTime = mine;
            if (i < peerCount)
            {
                var p = peerStreams[i];
                // iperf3 writes numbers with cJSON, which may print an integral count as 1.2e+07.
                if (p.TryGetProperty("bytes", out var v)) peerBytes = JsonLong(v);
                if (p.TryGetProperty("packets", out v)) peerPackets = JsonLong(v);
                if (p.TryGetProperty("errors", out v)) peerErrors = JsonLong(v);
                if (p.TryGetProperty("retransmits", out v)) peerRetr = JsonLong(v);
                if (p.TryGetProperty("jitter", out v)) peerJitter = JsonDouble(v);
                if (p.TryGetProperty("end_time", out v) && p.TryGetProperty("start_time", out var v0)) peerTime = JsonDouble(v) - JsonDouble(v0);
            }
            // Sender and receiver, whichever side each is.
            long sBytes = test.Sending ? st.Bytes : peerBytes, rBytes = test.Sending ? peerBytes : st.Bytes;
            double sTime = test.Sending ? mine : peerTime, rTime = test.Sending ? peerTime : mine;
            if (s.Udp)
            {
                long sPackets = test.Sending ? st.Packets : peerPackets;
                long rPackets = test.Sending ? peerPackets : st.Packets, rLost = test.Sending ? peerErrors : st.Lost;
                double rJitter = test.Sending ? peerJitter : st.Jitter;
                o.WriteLine("[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams");
                o.WriteLine($"[{id}] {Interval(0, sTime)} sec  {Bytes(sBytes)}  {Bits(sTime > 0 ? sBytes / sTime : 0)}  {0.0,5:F3} ms  0/{sPackets} (0%)  sender");
                o.WriteLine($"[{id}] {Interval(0, rTime)} sec  {Bytes(rBytes)}  {Bits(rTime > 0 ? rBytes / rTime : 0)}  {rJitter * 1000,5:F3} ms  {rLost}/{rPackets} ({Percent(rLost, rPackets)}%)  receiver");
                return;
            }
            long retr = test.Sending ? (test.Streams.Count > 0 ? test.Streams[i].Tcp.Retransmits : 0) : peerHasRetr ? peerRetr : -1;
            if (i == 0) o.WriteLine(retr >= 0 ? "[ ID] Interval           Transfer     Bitrate         Retr" : "[ ID] Interval           Transfer     Bitrate");
            SenderReceiver(id, sBytes, sTime, rBytes, rTime, retr);
            sumS += sBytes; sumR += rBytes; sumRetr += Math.Max(0, retr);
            sumSTime = Math.Max(sumSTime, sTime); sumRTime = Math.Max(sumRTime, rTime);
            if (i == count - 1 && count > 1) SenderReceiver("SUM", sumS, sumSTime, sumR, sumRTime, retr >= 0 ? sumRetr : -1);
        }

        void SenderReceiver(string id, long sBytes, double sTime, long rBytes, double rTime, long retr)
        {
            string sender = $"[{id}] {Interval(0, sTime)} sec  {Bytes(sBytes)}  {Bits(sTime > 0 ? sBytes / sTime : 0)}";
            o.WriteLine(retr >= 0 ? $"{sender}  {retr,3}             sender" : $"{sender}                  sender");
            o.WriteLine($"[{id}] {Interval(0, rTime)} sec  {Bytes(rBytes)}  {Bits(rTime > 0 ? rBytes / rTime : 0)}                  receiver");
        }
    }

    private static string Interval(double t0, double t1)
        => t0.ToString("F2", CultureInfo.InvariantCulture).PadLeft(6) + "-" + t1.ToString("F2", CultureInfo.InvariantCulture).PadRight(6);

    /// <summary>iperf3's unit_snprintf for 'A' (bytes, units of 1024): "1.10 GBytes", " 112 MBytes".</summary>
    internal static string Bytes(double bytes) => Unit(bytes, 1024, ["Byte", "KByte", "MByte", "GByte", "TByte"]) + "s";

    /// <summary>unit_snprintf for 'a' (bits, units of 1000) per second: " 941 Mbits/sec".</summary>
    internal static string Bits(double bytesPerSecond) => Unit(bytesPerSecond * 8, 1000, ["bit", "Kbit", "Mbit", "Gbit", "Tbit"]) + "s/sec";

    private static string Unit(double value, double unit, string[] labels)
    {
        int conv = 0;
        while (value >= unit && conv < labels.Length - 1) { value /= unit; conv++; }
        string format = value < 9.995 ? "F2" : value < 99.95 ? "F1" : "F0";
        return value.ToString(format, CultureInfo.InvariantCulture).PadLeft(4) + " " + labels[conv];
    }

    /// <summary>printf's %.2g of a loss percentage.</summary>
    private static string Percent(long lost, long total)
    {
        if (total <= 0 || lost <= 0) return "0";
        double p = 100.0 * lost / total;
        return p.ToString("G2", CultureInfo.InvariantCulture);
    }

    private static long JsonLong(JsonElement e)
        => e.ValueKind != JsonValueKind.Number ? 0 : e.TryGetInt64(out long v) ? v : e.TryGetDouble(out double d) && !double.IsNaN(d) ? (long)d : 0;

    private static double JsonDouble(JsonElement e)
        => e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) ? d : 0;
}
