using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using SmartOS.Zones;

namespace SmartOS.Cli.Daemon;

/// <summary>The bounds of <see cref="DaemonServer"/> (its rules 2 to 4). The defaults serve a shell
/// user and scripts; tests shrink them.</summary>
public sealed class DaemonLimits
{
    /// <summary>Connections served at once; the next is refused with a message.</summary>
    public int MaxConnections { get; init; } = 256;
    /// <summary>How long a client may take to send its whole request (W, S, A).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long one frame may wait on a client that reads nothing before it is dropped.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Output bytes waiting for a client beyond which a streaming writer waits.</summary>
    public int OutputBound { get; init; } = 256 * 1024;
    /// <summary>Output bytes waiting for a client beyond which output is dropped and the command cancelled.</summary>
    public int OutputLimit { get; init; } = 4 << 20;
}

/// <summary>
/// `smartos boot`'s CLI server (Dispatcher.cs, front ends): a Unix socket in the host's root
/// directory, mode 0600, that accepts only peers with the daemon's own uid (SO_PEERCRED on Linux).
/// Each connection runs one command on the kernel loop (Protocol.cs has the frames); its output
/// streams back as it is written, its input is pulled as it reads, and a cancel frame or a closed
/// connection cancels it, as Ctrl-C would.
///
/// Rules
///   1. No thread per connection: accepting, reading frames and writing them are async, so silent
///      or slow clients hold sockets and a little memory, never a thread (with a thread each, 64
///      silent clients starved the pool and `dladm show-link` took 50 s).
///   2. At most MaxConnections are served at once; the next client is told so and closed
///      (Refused). A client that has not sent its whole request within RequestTimeout is told so and
///      dropped (TimedOut).
///   3. One client cannot delay another: each connection's output waits in its own OutputQueue,
///      bounded (DaemonStreams.cs). A streaming command waits for its own reader; a client that
///      reads nothing for WriteTimeout, or lets OutputLimit pile up, is dropped and its command
///      cancelled (Dropped). The loop never waits on a socket.
///   4. Frames are at most Protocol.MaxPayload bytes; a larger one is refused with a message.
/// </summary>
public sealed partial class DaemonServer : IDisposable
{
    private readonly World _world;
    private readonly Host _host;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly DaemonLimits _limits;
    private Task? _accepting;
    private int _open;
    private long _refused, _timedOut, _dropped;

    public DaemonServer(World world, Host host, string socketPath, DaemonLimits? limits = null)
    {
        _limits = limits ?? new DaemonLimits();
        if (world.Driver == null) throw new InvalidOperationException("the daemon serves a world that runs in real time");
        _world = world;
        _host = host;
        SocketPath = socketPath;
        if (File.Exists(socketPath))
        {
            if (CanConnect(socketPath)) throw new IOException($"a host is already running on {socketPath}");
            File.Delete(socketPath); // Left behind by a killed daemon.
        }
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        // Owner only, before anyone can connect (listen comes after); SO_PEERCRED closes the rest.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _listener.Listen(512);
    }

    public string SocketPath { get; }

    /// <summary>Connections being served now.</summary>
    public int OpenConnections => Volatile.Read(ref _open);
    /// <summary>Clients refused because MaxConnections were open (rule 2).</summary>
    public long Refused => Interlocked.Read(ref _refused);
    /// <summary>Clients dropped for not sending a request within RequestTimeout (rule 2).</summary>
    public long TimedOut => Interlocked.Read(ref _timedOut);
    /// <summary>Clients dropped for not reading their output (rule 3).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public static bool CanConnect(string socketPath)
    {
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Start() => _accepting = Task.Run(AcceptLoopAsync);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try { conn = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException) { return; }
            if (!PeerIsOwner(conn))
            {
                Refuse(conn);
                continue;
            }
            if (Interlocked.Increment(ref _open) > _limits.MaxConnections)
            {
                Interlocked.Decrement(ref _open);
                Interlocked.Increment(ref _refused);
                _ = SayAndCloseAsync(conn, $"smartos: the host is serving {_limits.MaxConnections} connections, the most it takes; try again later");
                continue;
            }
            _ = ServeAsync(conn);
        }
    }

    /// <summary>Tells a client why it is not served (an E and an X frame), then closes: the client
    /// has a moment to read it, and what it sent meanwhile is read and dropped, so the close does
    /// not reset the connection under the message.</summary>
    private static async Task SayAndCloseAsync(Socket conn, string message, int code = 1)
    {
        using var stream = new NetworkStream(conn, ownsSocket: true);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await stream.WriteAsync(Protocol.Frame(Protocol.Stderr, Encoding.UTF8.GetBytes(message + "\n")), bound.Token).ConfigureAwait(false);
            await stream.WriteAsync(Protocol.Frame(Protocol.Exit, Protocol.Int32(code)), bound.Token).ConfigureAwait(false);
            conn.Shutdown(SocketShutdown.Send);
            var sink = new byte[4096];
            while (await stream.ReadAsync(sink, bound.Token).ConfigureAwait(false) > 0) { }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    /// <summary>Whether the peer runs as our uid (Linux SO_PEERCRED); elsewhere the socket's mode is the guard.</summary>
    private static bool PeerIsOwner(Socket conn)
    {
        if (!OperatingSystem.IsLinux()) return true;
        const int SolSocket = 1, SoPeerCred = 17;
        Span<byte> cred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            int n = conn.GetRawSocketOption(SolSocket, SoPeerCred, cred);
            if (n < 8) return false;
        }
        catch (SocketException)
        {
            return false;
        }
        uint uid = BitConverter.ToUInt32(cred[4..8]);
        return uid == GetEuid();
    }

    /// <summary>Serves one connection: reads the request (bounded in time), runs the command, and
    /// streams its frames both ways until it exits.</summary>
    private async Task ServeAsync(Socket conn)
    {
        try
        {
            string cwd = Environment.CurrentDirectory;
            bool hasStdin = false;
            string[]? argv = null;
            using (var request = new CancellationTokenSource(_limits.RequestTimeout))
            {
                var stream = new NetworkStream(conn, ownsSocket: false);
                try
                {
                    while (argv == null)
                    {
                        var frame = await Protocol.ReadAsync(stream, request.Token).ConfigureAwait(false);
                        if (frame == null) break;
                        var (type, payload) = frame.Value;
                        switch (type)
                        {
                            case Protocol.WorkingDirectory: cwd = Encoding.UTF8.GetString(payload); break;
                            case Protocol.HasStdin: hasStdin = true; break;
                            case Protocol.Argv: argv = Protocol.DecodeArgv(payload); break;
                            case Protocol.Cancel: break;
                            default: throw new InvalidDataException($"unexpected frame '{(char)type}' before the command");
                        }
                        if (type == Protocol.Cancel) break;
                    }
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _timedOut);
                    await SayAndCloseAsync(conn, $"smartos: no command within {_limits.RequestTimeout.TotalSeconds:0.#}s; closing the connection").ConfigureAwait(false);
                    return;
                }
                catch (InvalidDataException e)
                {
                    await SayAndCloseAsync(conn, "smartos: " + e.Message, 2).ConfigureAwait(false);
                    return;
                }
            }
            if (argv == null)
            {
                conn.Dispose();
                return;
            }
            await new Connection(this, conn, cwd, hasStdin, argv).RunAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            conn.Dispose(); // A broken client: nothing to report back to.
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }

    /// <summary>One command being served: its output queue and sender, its input, its frame reader.</summary>
    private sealed class Connection
    {
        private readonly DaemonServer _server;
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly string _cwd;
        private readonly string[] _argv;
        private readonly OutputQueue _output;
        private readonly RemoteInputStream? _input;
        private readonly CancellationTokenSource _cancel = new();
        private readonly Kernel.RealTimeDriver _driver;
        private volatile bool _finished;

        public Connection(DaemonServer server, Socket socket, string cwd, bool hasStdin, string[] argv)
        {
            _server = server;
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            _cwd = cwd;
            _argv = argv;
            _driver = server._world.Driver!;
            _output = new OutputQueue(server._limits, () =>
            {
                Interlocked.Increment(ref _server._dropped);
                CancelCommand();
            });
            _input = hasStdin ? new RemoteInputStream(_output) : null;
        }

        /// <summary>Cancels the command on the loop, where its cancellation callbacks must run.</summary>
        private void CancelCommand() => _driver.Invoke(() => { if (!_finished) _cancel.Cancel(); });

        public async Task RunAsync()
        {
            using var stream = _stream;
            var sender = SendAsync();
            var ctx = new CommandContext
            {
                World = _server._world, Host = _server._host, Cancel = _cancel.Token, WorkingDirectory = _cwd,
                StdoutBytes = new FrameOutputStream(_output, Protocol.Stdout),
                StderrBytes = new FrameOutputStream(_output, Protocol.Stderr),
                StdinBytes = _input,
            };
            Task<int> started;
            try { started = await _driver.InvokeAsync(() => Dispatcher.StartAsync(ctx, _argv)).ConfigureAwait(false); }
            catch (Exception e) { started = Task.FromException<int>(e); } // Reported below as an internal error.
            var reader = ReadAsync();
            int code;
            try { code = await started.ConfigureAwait(false); }
            catch (Exception e)
            {
                _output.Add(Protocol.Stderr, Encoding.UTF8.GetBytes($"smartos: {_argv.FirstOrDefault()}: internal error: {e.Message}\n"), control: true);
                code = 1;
            }
            _finished = true;
            if (_output.Overflowed)
                _output.Add(Protocol.Stderr, "smartos: output dropped: the client did not read it\n"u8, control: true);
            _output.Add(Protocol.Exit, Protocol.Int32(code), control: true);
            _output.Complete();
            await sender.ConfigureAwait(false);
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (SocketException) { }
            stream.Dispose();
            await reader.ConfigureAwait(false);
            _cancel.Dispose();
        }

        /// <summary>Writes queued frames to the client; a client that takes none for WriteTimeout is
        /// dropped and its command cancelled (rule 3).</summary>
        private async Task SendAsync()
        {
            using var stalled = new CancellationTokenSource();
            try
            {
                var batch = new byte[Protocol.Chunk + 5];
                while (await _output.TakeAsync().ConfigureAwait(false) is { } frame)
                {
                    // Small frames that wait together (a text command's lines) go in one write.
                    int n = 0;
                    var next = frame;
                    while (next != null && n + next.Length <= batch.Length)
                    {
                        next.CopyTo(batch, n);
                        n += next.Length;
                        next = _output.TryTake(batch.Length - n);
                    }
                    stalled.CancelAfter(_server._limits.WriteTimeout);
                    if (n > 0) await _stream.WriteAsync(batch.AsMemory(0, n), stalled.Token).ConfigureAwait(false);
                    if (next != null) await _stream.WriteAsync(next, stalled.Token).ConfigureAwait(false);
                    stalled.CancelAfter(Timeout.InfiniteTimeSpan);
                }
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _server._dropped);
                Gone();
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                Gone();
            }
        }

        /// <summary>Reads the client's I and C frames until it closes; a closed connection or a bad
        /// frame cancels the command.</summary>
        private async Task ReadAsync()
        {
            try
            {
                while (await Protocol.ReadAsync(_stream, CancellationToken.None).ConfigureAwait(false) is { } f)
                {
                    if (f.Type == Protocol.Cancel) CancelCommand();
                    else if (f.Type != Protocol.Stdin || _input == null || !_input.Supply(f.Payload))
                    {
                        _output.Add(Protocol.Stderr, Encoding.UTF8.GetBytes($"smartos: unexpected frame '{(char)f.Type}' while the command runs\n"), control: true);
                        break;
                    }
                }
            }
            catch (InvalidDataException e)
            {
                _output.Add(Protocol.Stderr, Encoding.UTF8.GetBytes($"smartos: {e.Message}\n"), control: true);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
            _input?.End();
            CancelCommand();
        }

        /// <summary>The client is gone: nothing more goes to it, and its command stops.</summary>
        private void Gone()
        {
            _output.Abandon();
            _input?.End();
            CancelCommand();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { File.Delete(SocketPath); }
        catch (IOException) { }
        _accepting?.Wait(TimeSpan.FromSeconds(2));
    }
}
