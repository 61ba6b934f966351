namespace SmartOS.Cli.Daemon;

public sealed partial class DaemonServer
{
    /// <summary>
    /// Tells a peer with another uid why it is refused (an error and exit status 1, as a command would
    /// end) and closes, so it neither hangs nor mistakes the refusal for a crash (issue 20 item 8).
    /// Asynchronous and bounded in time, as every refusal is (SayAndCloseAsync).
    /// </summary>
    private void Refuse(System.Net.Sockets.Socket conn)
    {
        string root = Path.GetDirectoryName(SocketPath) ?? SocketPath;
        _ = SayAndCloseAsync(conn, $"smartos: the host on {root} belongs to uid {GetEuid()}: permission denied");
    }
}
