using System.Net.Sockets;

namespace SmartOS.Cli.Daemon;

public sealed partial class DaemonServer
{
    /// <summary>
    /// Tells a peer with another uid why it is refused (an error and exit status 1, as a command would
    /// end) and closes, so it neither hangs nor mistakes the refusal for a crash (issue 20 item 8).
    /// Off the accept thread, and bounded: a peer that does not read holds nothing for long.
    /// </summary>
    private void Refuse(Socket conn)
    {
        string root = Path.GetDirectoryName(SocketPath) ?? SocketPath;
        _ = Task.Run(() =>
        {
            try
            {
                conn.SendTimeout = 1000;
                conn.ReceiveTimeout = 1000;
                using var stream = new NetworkStream(conn, ownsSocket: true);
                Protocol.WriteString(stream, Protocol.Stderr, $"smartos: the host on {root} belongs to uid {GetEuid()}: permission denied\n");
                Protocol.WriteExit(stream, 1);
                conn.Shutdown(SocketShutdown.Send);
                // Read what the peer sent: closing with unread data would reset the connection before
                // the peer reads the refusal.
                var sink = new byte[4096];
                for (int i = 0; i < 64 && conn.Receive(sink) > 0; i++) { }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The peer went away: nothing to tell it.
            }
        });
    }
}
