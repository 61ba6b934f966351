using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Channels;
using SmartOS.Zones;

namespace SmartOS.Cli.Daemon;

/// <summary>
/// `smartos boot`'s CLI server (Dispatcher.cs, front ends): a Unix socket in the host's root
/// directory, mode 0600, that accepts only peers with the daemon's own uid (SO_PEERCRED on Linux).
/// Each connection runs one command on the kernel loop; its output streams back as it is written,
/// and a cancel frame or a closed connection cancels it, as Ctrl-C would.
/// </summary>
public sealed partial class DaemonServer : IDisposable
{
    private readonly World _world;
    private readonly Host _host;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private Thread? _acceptThread;

    public DaemonServer(World world, Host host, string socketPath)
    {
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
        _listener.Listen(16);
    }

    public string SocketPath { get; }

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

    public void Start()
    {
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "smartos-accept" };
        _acceptThread.Start();
    }

    private void AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try { conn = _listener.Accept(); }
            catch (SocketException) { return; }
            catch (ObjectDisposedException) { return; }
            if (!PeerIsOwner(conn))
            {
                Refuse(conn);
                continue;
            }
            _ = Task.Run(() => Serve(conn));
        }
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

    private async Task Serve(Socket conn)
    {
        using var stream = new NetworkStream(conn, ownsSocket: true);
        var output = Channel.CreateUnbounded<(byte Type, byte[] Data)>(new UnboundedChannelOptions { SingleReader = true });
        var sender = Task.Run(async () =>
        {
            try
            {
                await foreach (var (type, data) in output.Reader.ReadAllAsync())
                    Protocol.Write(stream, type, data);
            }
            catch (IOException) { } // The client went away; the command is cancelled by the reader.
        });
        try
        {
            string cwd = Environment.CurrentDirectory;
            string? stdin = null;
            string[]? argv = null;
            while (argv == null)
            {
                var frame = Protocol.Read(stream);
                if (frame == null) return;
                var (type, payload) = frame.Value;
                switch (type)
                {
                    case Protocol.WorkingDirectory: cwd = Encoding.UTF8.GetString(payload); break;
                    case Protocol.Stdin: stdin = Encoding.UTF8.GetString(payload); break;
                    case Protocol.Argv: argv = Protocol.DecodeArgv(payload); break;
                    case Protocol.Cancel: return;
                    default: throw new InvalidDataException($"unexpected frame '{(char)type}'");
                }
            }
            var driver = _world.Driver!;
            var cts = new CancellationTokenSource();
            var ctx = new CommandContext
            {
                World = _world, Host = _host, Cancel = cts.Token, WorkingDirectory = cwd,
                Out = new FrameWriter(output.Writer, Protocol.Stdout), Err = new FrameWriter(output.Writer, Protocol.Stderr),
                In = stdin == null ? null : new StringReader(stdin),
            };
            var started = await driver.InvokeAsync(() => Dispatcher.StartAsync(ctx, argv));
            // Cancel frames (Ctrl-C) and a closed connection cancel the command, on the loop.
            var reader = Task.Run(() =>
            {
                try
                {
                    while (Protocol.Read(stream) is { } f)
                        if (f.Type == Protocol.Cancel) break;
                }
                catch (IOException) { }
                catch (InvalidDataException) { }
                driver.Invoke(() => cts.Cancel());
            });
            int code;
            try { code = await started; }
            catch (Exception e)
            {
                output.Writer.TryWrite((Protocol.Stderr, Encoding.UTF8.GetBytes($"smartos: {argv.FirstOrDefault()}: internal error: {e.Message}\n")));
                code = 1;
            }
            var exit = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(exit, code);
            output.Writer.TryWrite((Protocol.Exit, exit));
            output.Writer.TryComplete();
            await sender;
            conn.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or SocketException)
        {
            // A broken client: nothing to report back to.
        }
        finally
        {
            output.Writer.TryComplete();
        }
    }

    /// <summary>A writer whose text goes to the client as O or E frames, in order, as it is written.</summary>
    private sealed class FrameWriter(ChannelWriter<(byte, byte[])> channel, byte type) : TextWriter
    {
        public override Encoding Encoding => Encoding.UTF8;
        public override void Write(char value) => Write(value.ToString());
        public override void Write(string? value)
        {
            if (!string.IsNullOrEmpty(value)) channel.TryWrite((type, Encoding.UTF8.GetBytes(value)));
        }
        public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));
        public override void WriteLine(string? value) => Write(value + "\n");
        public override void WriteLine() => Write("\n");
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { File.Delete(SocketPath); }
        catch (IOException) { }
        _acceptThread?.Join(TimeSpan.FromSeconds(2));
    }
}
