using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>iperf -s: the server side (see Iperf.cs): the accept loop that hands control
/// connections and data streams to one test at a time, and the test it serves.</summary>
public static partial class Iperf
{
    private static async Task<int> Server(ProgramContext ctx, Settings s)
    {
        var stack = ctx.Stack;
        // Both families: a listener each, and one UDP socket on the IPv6 wildcard, which takes
        // IPv4 datagrams too (UdpSocket.Match).
        var listener = new TcpListener(stack.Tcp) { NoDelay = true, SendBufferSize = DefaultWindow, ReceiveBufferSize = DefaultWindow };
        var listener6 = new TcpListener(stack.Tcp) { NoDelay = true, SendBufferSize = DefaultWindow, ReceiveBufferSize = DefaultWindow };
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
            try { await ServeOne(current, control, cookie, udp, streamWaiters, window => SetWindow(window, listener, listener6)); }
            catch (TcpException) { }
            SetWindow(DefaultWindow, listener, listener6);
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

    /// <summary>The buffers of the data connections the listeners accept from now on: a test's "window"
    /// parameter (iperf3 -w) sets them before its streams connect, so their SYN-ACKs carry the window
    /// scale it needs, and the next test starts again from the default.</summary>
    private static void SetWindow(int window, TcpListener listener, TcpListener listener6)
    {
        listener.SendBufferSize = listener.ReceiveBufferSize = window;
        listener6.SendBufferSize = listener6.ReceiveBufferSize = window;
    }

    private static async Task ServeOne(Test test, TcpSocket control, string cookie, UdpSocket udp, Dictionary<string, StreamWaiter> streamWaiters,
        Action<int> setWindow)
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
        if (root.TryGetProperty("window", out var win))
        {
            // iperf3 -w: the client's socket buffer size, which the server's data sockets take too.
            if (!win.TryGetInt64(out long window) || window < 1024 || window > MaxWindow)
            {
                ctx.Err.WriteLine(win.TryGetInt64(out window) && window > MaxWindow
                    ? $"iperf: error - {WindowTooLarge}"
                    : $"iperf: error - invalid window {win.GetRawText()} (at least 1024 bytes)");
                return;
            }
            setWindow((int)window);
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
}
