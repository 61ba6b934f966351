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

    public static int Run(Socket socket, string[] argv, string? stdin, Stream stdout, Stream stderr)
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
        try
        {
            lock (sendLock)
            {
                Protocol.WriteString(stream, Protocol.WorkingDirectory, Environment.CurrentDirectory);
                if (stdin != null) Protocol.WriteString(stream, Protocol.Stdin, stdin);
                Protocol.Write(stream, Protocol.Argv, Protocol.EncodeArgv(argv));
            }
            while (true)
            {
                var frame = Protocol.Read(stream);
                if (frame == null) break;
                var (type, payload) = frame.Value;
                switch (type)
                {
                    case Protocol.Stdout: stdout.Write(payload); stdout.Flush(); break;
                    case Protocol.Stderr: stderr.Write(payload); stderr.Flush(); break;
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
            Console.CancelKeyPress -= onCancel;
        }
        stderr.Write(Encoding.UTF8.GetBytes("smartos: the host closed the connection before the command finished\n"));
        return 1;
    }
}
