using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// nc(1), the OpenBSD netcat that illumos ships, for TCP and UDP:
/// <code>
///   nc [-uvz] [-w SECS] [-m TEXT | --send TEXT | --bytes N] [--count] HOST PORT
///   nc -l [-uv] [-w SECS] [-m TEXT | --send TEXT | --bytes N] [--count] [-p] PORT
/// </code>
/// nc sends its standard input, byte for byte, when it has one (the daemon's client, `smartos run`'s
/// `< FILE`); an option sends instead: -m/--send TEXT sends TEXT and a newline (as `echo TEXT | nc`
/// would), --bytes N sends N bytes of a repeating printable pattern (made a chunk at a time).
/// What arrives is written to stdout as bytes, or with --count only "N bytes received" at the end.
/// Both directions stream: a read of stdin waits for the writer, a write to stdout waits for the
/// reader, so any length passes in bounded memory (tools/Dispatcher.cs rule 6).
/// A connecting nc sends, half-closes (as nc -N does) and reads until the peer closes; a listening
/// nc accepts one connection (TCP: on the wildcard of either family; UDP: IPv4), reads until the
/// peer closes, then sends its own data and closes.
/// -w bounds the connect and each wait for data (UDP: how long to wait for datagrams, default 1 s
/// for a client; a UDP listener waits until interrupted). -z only checks that the port accepts
/// a connection. Exit 0 on success, 1 on failure, as nc does.
/// </summary>
public static class Nc
{
    public static readonly ProgramDescriptor Descriptor = new("nc", "luvzNnp:w:m:", "arbitrary TCP and UDP connections and listens", RunAsync)
    {
        ReadsStdin = true,
        LongOptions = ["send:=m", "bytes:", "count"],
    };

    private sealed class Options
    {
        public bool Listen, Udp, Verbose, Zero, Count;
        public long Wait;
        public byte[] Payload = [];
        /// <summary>--bytes N: N bytes of <see cref="Pattern"/>, sent a chunk at a time.</summary>
        public long PatternLength;
        public string? Host;
        public ushort Port;
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var o = new Options();
        // OpenBSD nc reads its options with getopt (illumos's, which words the errors); operands
        // may come first, as GNU getopt permutes them.
        var g = Getopt.Parse(args, Descriptor.Options, Descriptor.LongOptions, permute: true);
        if (g.ReportError(ctx.Err, "nc")) return Usage(ctx);
        var positional = g.Operands;
        o.Listen = g.Has("l");
        o.Udp = g.Has("u");
        o.Verbose = g.Has("v");
        o.Zero = g.Has("z");
        o.Count = g.Has("count");
        if (g.Value("p") is { } p && !ProgramSupport.TryParsePort(p, out o.Port)) return Usage(ctx);
        if (g.Value("w") is { } w && !ProgramSupport.TryParseSeconds(w, out o.Wait))
        {
            ctx.Err.WriteLine($"nc: timeout invalid: {w}");
            return 1;
        }
        // -m/--send and --bytes each say what to send: both at once is refused, not one dropped.
        if (g.Has("m") && g.Has("bytes")) return Usage(ctx);
        if (g.Value("m") is { } m) o.Payload = Encoding.UTF8.GetBytes(m + "\n");
        if (g.Value("bytes") is { } b)
        {
            if (!ProgramSupport.TryParseScaled(b, 1024, out long n) || n > 1L << 30) return Usage(ctx);
            o.PatternLength = n;
        }
        if (o.Listen)
        {
            if (positional.Count == 1 && o.Port == 0 && ProgramSupport.TryParsePort(positional[0], out var lp)) o.Port = lp;
            else if (positional.Count != 0 || o.Port == 0) return Usage(ctx);
            return o.Udp ? await ListenUdp(ctx, o) : await ListenTcp(ctx, o);
        }
        if (positional.Count != 2) return Usage(ctx);
        o.Host = positional[0];
        if (!ProgramSupport.TryParsePort(positional[1], out o.Port))
        {
            ctx.Err.WriteLine($"nc: port number invalid: {positional[1]}");
            return 1;
        }
        if (!IpAddress.TryParse(o.Host, out var remote))
        {
            ctx.Err.WriteLine($"nc: getaddrinfo for host \"{o.Host}\" port {o.Port}: hostname nor servname provided, or not known");
            return 1;
        }
        return o.Udp ? await ConnectUdp(ctx, o, remote) : await ConnectTcp(ctx, o, remote);
    }

    private static int Usage(ProgramContext ctx)
    {
        ctx.Err.WriteLine("usage: nc [-luvz] [-w timeout] [-m text | --send text | --bytes n] [--count] [-p port] [host] [port]");
        return 1;
    }

    /// <summary>N bytes of "0123456789abcdef...xyz\n" repeated: printable, easy to check.</summary>
    internal static byte[] Pattern(int n)
    {
        const string line = "0123456789abcdefghijklmnopqrstuvwxyz\n";
        var data = new byte[n];
        for (int i = 0; i < n; i++) data[i] = (byte)line[i % line.Length];
        return data;
    }

    private static async Task<int> ConnectTcp(ProgramContext ctx, Options o, IpAddress remote)
    {
        var sock = new TcpSocket(ctx.Stack.Tcp);
        using var dog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, sock.Abort);
        dog.Arm(o.Wait);
        try
        {
            await sock.ConnectAsync(remote, o.Port);
        }
        catch (TcpException e)
        {
            var err = dog.TimedOut ? TcpError.ETIMEDOUT : e.Error;
            if (!o.Zero || o.Verbose || err != TcpError.ECONNREFUSED)
                ctx.Err.WriteLine($"nc: connect to {o.Host} port {o.Port} (tcp) failed: {ProgramSupport.Describe(err)}");
            ctx.Cancel.ThrowIfCancellationRequested();
            return 1;
        }
        if (o.Verbose) ctx.Err.WriteLine($"Connection to {o.Host} {o.Port} port [tcp/*] succeeded!");
        if (o.Zero)
        {
            sock.Close();
            return 0;
        }
        return await Exchange(ctx, o, sock, dog, sendFirst: true);
    }

    private static async Task<int> ListenTcp(ProgramContext ctx, Options o)
    {
        // Both families, as nc -l listens on the wildcard of each; the first connection wins.
        var listener = new TcpListener(ctx.Stack.Tcp);
        var listener6 = new TcpListener(ctx.Stack.Tcp);
        try
        {
            listener.Listen(IpAddress.AnyV4, o.Port, 1);
            listener6.Listen(IpAddress.AnyV6, o.Port, 1);
        }
        catch (TcpException e)
        {
            listener.Close();
            listener6.Close();
            ctx.Err.WriteLine($"nc: {ProgramSupport.Describe(e.Error)}");
            return 1;
        }
        TcpSocket sock;
        using (var acceptDog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, () => { listener.Close(); listener6.Close(); }))
        {
            var four = listener.AcceptAsync().AsTask();
            var six = listener6.AcceptAsync().AsTask();
            var first = await Task.WhenAny(four, six);
            listener.Close();
            listener6.Close();
            if (!first.IsCompletedSuccessfully)
            {
                ctx.Cancel.ThrowIfCancellationRequested();
                return 1;
            }
            sock = first.Result;
            var other = first == four ? six : four;
            _ = other.ContinueWith(static t => t.Exception, TaskScheduler.Default);
        }
        if (o.Verbose) ctx.Err.WriteLine($"Connection received on {sock.RemoteAddress} {sock.RemotePort}");
        using var dog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, sock.Abort);
        return await Exchange(ctx, o, sock, dog, sendFirst: false);
    }

    /// <summary>Sends (first, for a client) and receives until the peer closes; -w bounds each wait.</summary>
    private static async Task<int> Exchange(ProgramContext ctx, Options o, TcpSocket sock, Watchdog dog, bool sendFirst)
    {
        long received = 0;
        try
        {
            if (sendFirst) await Send(ctx, sock, dog, o);
            var buffer = new byte[64 * 1024];
            while (true)
            {
                dog.Arm(o.Wait);
                int n = await sock.ReceiveAsync(buffer);
                if (n == 0) break;
                received += n;
                dog.Arm(0); // A slow reader of our output is not the peer being silent.
                if (!o.Count) await WriteOut(ctx, buffer, n);
            }
            if (!sendFirst) await Send(ctx, sock, dog, o);
            sock.Close();
        }
        catch (TcpException e)
        {
            if (dog.Fired && !dog.TimedOut) throw new OperationCanceledException(ctx.Cancel);
            if (!dog.TimedOut) ctx.Err.WriteLine($"nc: {ProgramSupport.Describe(e.Error)}");
            if (o.Count) ctx.Out.WriteLine($"{received} bytes received");
            return dog.TimedOut ? 0 : 1;
        }
        if (o.Count) ctx.Out.WriteLine($"{received} bytes received");
        return 0;
    }

    /// <summary>Sends what nc sends (an option's data, else standard input) and half-closes.</summary>
    private static async Task Send(ProgramContext ctx, TcpSocket sock, Watchdog dog, Options o)
    {
        dog.Arm(0);
        if (o.Payload.Length > 0) await sock.SendAsync(o.Payload);
        else if (o.PatternLength > 0)
        {
            // Whole lines per chunk, so each chunk starts where the pattern starts.
            var chunk = Pattern(PatternChunk);
            for (long left = o.PatternLength; left > 0; left -= PatternChunk)
                await sock.SendAsync(chunk.AsMemory(0, (int)Math.Min(left, PatternChunk)));
        }
        else if (ctx.StdinBytes is { } stdin)
        {
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await stdin.ReadAsync(buffer, ctx.Cancel)) > 0) await sock.SendAsync(buffer.AsMemory(0, n));
        }
        sock.Shutdown();
    }

    private const int PatternChunk = 37 * 1400; // Whole pattern lines and whole 1400-byte datagrams.

    /// <summary>Writes received data to stdout as bytes (as text where the caller captures only text).</summary>
    private static ValueTask WriteOut(ProgramContext ctx, byte[] buffer, int n)
    {
        if (ctx.StdoutBytes is { } stdout) return stdout.WriteAsync(buffer.AsMemory(0, n), ctx.Cancel);
        ctx.Out.Write(Encoding.UTF8.GetString(buffer, 0, n));
        return ValueTask.CompletedTask;
    }

    /// <summary>Sends what a UDP nc sends (an option's data, else its standard input as it is read),
    /// in datagrams of at most 1400 bytes.</summary>
    private static async Task<NetError> SendUdp(ProgramContext ctx, Options o, UdpSocket sock, IpEndpoint to)
    {
        if (o.PatternLength > 0)
        {
            var chunk = Pattern(PatternChunk);
            for (long left = o.PatternLength; left > 0; left -= PatternChunk)
                if (SendDatagrams(sock, chunk.AsSpan(0, (int)Math.Min(left, PatternChunk)), to) is var e && e != NetError.None) return e;
            return NetError.None;
        }
        if (o.Payload.Length > 0 || ctx.StdinBytes is not { } stdin) return SendDatagrams(sock, o.Payload, to);
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await stdin.ReadAsync(buffer, ctx.Cancel)) > 0)
            if (SendDatagrams(sock, buffer.AsSpan(0, n), to) is var e && e != NetError.None) return e;
        return NetError.None;
    }

    private static async Task<int> ConnectUdp(ProgramContext ctx, Options o, IpAddress remote)
    {
        using var sock = ctx.Stack.OpenUdpSocket();
        var e = sock.Connect(new IpEndpoint(remote, o.Port));
        if (e == NetError.None && !o.Zero) e = await SendUdp(ctx, o, sock, default);
        if (e == NetError.None && o.Zero) e = sock.Send("X"u8);
        if (e != NetError.None)
        {
            ctx.Err.WriteLine($"nc: connect to {o.Host} port {o.Port} (udp) failed: {NetErrors.Message(e)}");
            return 1;
        }
        if (o.Verbose) ctx.Err.WriteLine($"Connection to {o.Host} {o.Port} port [udp/*] succeeded!");
        if (o.Zero) return 0;
        return await ReceiveDatagrams(ctx, o, sock, o.Wait > 0 ? o.Wait : Time.Second, reply: false);
    }

    private static async Task<int> ListenUdp(ProgramContext ctx, Options o)
    {
        using var sock = ctx.Stack.OpenUdpSocket();
        // The IPv6 wildcard takes IPv4 datagrams too (UdpSocket.Match), as the TCP listen takes both.
        var e = sock.Bind(IpAddress.AnyV6, o.Port);
        if (e != NetError.None)
        {
            ctx.Err.WriteLine($"nc: {NetErrors.Message(e)}");
            return 1;
        }
        return await ReceiveDatagrams(ctx, o, sock, o.Wait, reply: true);
    }

    private static NetError SendDatagrams(UdpSocket sock, ReadOnlySpan<byte> payload, IpEndpoint to)
    {
        for (int off = 0; off < payload.Length; off += 1400)
        {
            var chunk = payload.Slice(off, Math.Min(1400, payload.Length - off));
            var e = to.Port == 0 ? sock.Send(chunk) : sock.SendTo(chunk, to);
            if (e != NetError.None) return e;
        }
        return NetError.None;
    }

    /// <summary>Prints datagrams until <paramref name="idle"/> passes without one (0: until interrupted).
    /// A listener answers the first sender with its own data.</summary>
    private static async Task<int> ReceiveDatagrams(ProgramContext ctx, Options o, UdpSocket sock, long idle, bool reply)
    {
        var buffer = new byte[UdpSocket.MaxPayload];
        long received = 0;
        bool replied = !reply;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ctx.Cancel);
        using var dog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, stop.Cancel);
        while (true)
        {
            dog.Arm(idle);
            var r = await sock.ReceiveFromAsync(buffer, stop.Token);
            if (r.Error != NetError.None) break;
            received += r.Length;
            if (!o.Count) await WriteOut(ctx, buffer, r.Length);
            if (!replied)
            {
                replied = true;
                await SendUdp(ctx, o, sock, r.From);
            }
        }
        if (o.Count) ctx.Out.WriteLine($"{received} bytes received");
        if (ctx.Cancel.IsCancellationRequested && !o.Listen) throw new OperationCanceledException(ctx.Cancel);
        return 0;
    }
}
