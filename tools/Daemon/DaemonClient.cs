using System.Net.Sockets;
using System.Text;

namespace SmartOS.Cli.Daemon;

/// <summary>`smartos COMMAND ...` against a running daemon (Protocol.cs): sends the command,
/// copies its output as it streams, forwards Ctrl-C as a cancel, and exits with its status.</summary>
public static class DaemonClient
{
    /// <summary>Connects to the daemon's socket, or returns null when none is listening.</summary>
    public static Socket? TryConnect(string socketPath)
    {
        if (!File.Exists(socketPath)) return null;
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(socketPath));
            return s;
        }
        catch (SocketException)
        {
            s.Dispose();
            return null;
        }
    }

    /// <summary>Runs <paramref name="argv"/> on the daemon. Output bytes go to the given streams as
    /// they come; <paramref name="stdin"/>, when given, is read only as the command asks for it (on a
    /// thread of its own, so a slow input never holds up output) and sent as I frames.</summary>
    public static int Run(Socket socket, string[] argv, Stream? stdin, Stream stdout, Stream stderr)
    {
        using var stream = new NetworkStream(socket, ownsSocket: true);
        var sendLock = new object();
        int interrupts = 0;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl-C asks the command to stop, as it would stop in a local shell; a second one
            // leaves at once.
            if (Interlocked.Increment(ref interrupts) > 1) return;
            e.Cancel = true;
            try { lock (sendLock) Protocol.Write(stream, Protocol.Cancel, []); }
            catch (IOException) { }
        };
        Console.CancelKeyPress += onCancel;
        using var requests = new SemaphoreSlim(0);
        using var done = new CancellationTokenSource();
        Thread? feeder = null;
        try
        {
            try
            {
                lock (sendLock)
                {
                    Protocol.WriteString(stream, Protocol.WorkingDirectory, Environment.CurrentDirectory);
                    if (stdin != null) Protocol.Write(stream, Protocol.HasStdin, []);
                    Protocol.Write(stream, Protocol.Argv, Protocol.EncodeArgv(argv));
                }
            }
            catch (IOException)
            {
                // A daemon that refused us has said why and closed: read what it said.
            }
            int asked = 0;
            while (true)
            {
                var frame = Protocol.Read(stream);
                if (frame == null) break;
                var (type, payload) = frame.Value;
                switch (type)
                {
                    case Protocol.Stdout: stdout.Write(payload); stdout.Flush(); break;
                    case Protocol.Stderr: stderr.Write(payload); stderr.Flush(); break;
                    case Protocol.ReadRequest when stdin != null && payload.Length == 4:
                        Volatile.Write(ref asked, Math.Clamp(System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(payload), 1, Protocol.Chunk));
                        if (feeder == null)
                        {
                            feeder = new Thread(() => Feed(stream, sendLock, stdin, requests, () => Volatile.Read(ref asked), done.Token)) { IsBackground = true, Name = "smartos-stdin" };
                            feeder.Start();
                        }
                        requests.Release();
                        break;
                    case Protocol.Exit: return System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(payload);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or SocketException)
        {
            stderr.Write(Encoding.UTF8.GetBytes($"smartos: lost the connection to the host: {e.Message}\n"));
            return 1;
        }
        finally
        {
            done.Cancel();
            Console.CancelKeyPress -= onCancel;
        }
        stderr.Write(Encoding.UTF8.GetBytes("smartos: the host closed the connection before the command finished\n"));
        return 1;
    }

    /// <summary>Answers each R frame with one read of standard input (an empty I at its end).</summary>
    private static void Feed(Stream stream, object sendLock, Stream stdin, SemaphoreSlim requests, Func<int> asked, CancellationToken done)
    {
        var buffer = new byte[Protocol.Chunk];
        try
        {
            while (true)
            {
                requests.Wait(done);
                int n = stdin.Read(buffer, 0, asked());
                lock (sendLock) Protocol.Write(stream, Protocol.Stdin, buffer.AsSpan(0, n));
                if (n == 0) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or SocketException) { }
    }
}
