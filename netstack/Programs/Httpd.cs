using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// httpd: a small HTTP/1.1 static file server (RFC 9110/9112 subset).
/// <code>
///   httpd [-p PORT] [-d DIR] [-c COUNT]
/// </code>
/// Listens on PORT of both families. Serves the files under DIR (relative to the command's working directory; the scenario's
/// directory in `smartos run`), a directory's index.html for its path, or without -d a built-in
/// index page at "/". In a zone with files (ProgramContext.Files: a zone on a dataset) DIR is a
/// directory of the zone's tree, and without -d httpd serves the zone's /var/www, the document root
/// of the base image (examples/images), as Apache and nginx serve their htdocs; a zone whose tree
/// has no /var/www gets the built-in page. Paths resolve in the zone's root, so no link or ".."
/// reaches outside it. GET and HEAD; other methods get 501. Responses carry Content-Length and
/// Content-Type; connections stay open (HTTP/1.1 keep-alive, or HTTP/1.0 with "Connection:
/// keep-alive") until the client closes, says "Connection: close", or is idle for 5 s. Each
/// request is logged on stdout in the common log format, with virtual seconds for the date (there
/// is no wall clock in a zone). -c COUNT exits after COUNT requests; otherwise it serves until
/// interrupted. No Date header: RFC 9110 section 6.6.1 lets a server without a clock omit it.
/// </summary>
public static class Httpd
{
    public static readonly ProgramDescriptor Descriptor = new("httpd", "p:d:c:", "serve files over HTTP", RunAsync);

    public const string IndexPage =
        "<!DOCTYPE html>\n<html><head><title>SmartOS httpd</title></head>\n" +
        "<body><h1>It works!</h1><p>Served by httpd on a SmartOS-in-C# IP stack.</p></body></html>\n";

    private const long IdleTimeout = 5 * Time.Second;

    /// <summary>Where httpd in a zone with files serves from without -d.</summary>
    public const string ZoneDocumentRoot = "/var/www";

    /// <summary>The largest file served from a zone's tree (read whole into one response).</summary>
    private const int MaxZoneFile = 64 << 20;

    private sealed class Server
    {
        public required ProgramContext Ctx;
        public string? Root;
        /// <summary>The zone's files when Root is a path of the zone's tree, else null (Root is the machine's).</summary>
        public IProgramFiles? Files;
        public int Remaining = -1;
        public TcpListener Listener = null!;
        public TcpListener Listener6 = null!;

        public void Close()
        {
            Listener.Close();
            Listener6.Close();
        }
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        ushort port = 80;
        string? dir = null;
        int count = -1;
        var g = Getopt.Parse(args, Descriptor.Options);
        bool bad = g.ReportError(ctx.Err, "httpd") || g.Operands.Count > 0
            || (g.Value("p") is { } p && !ProgramSupport.TryParsePort(p, out port))
            || (g.Value("c") is { } c && (!int.TryParse(c, System.Globalization.NumberStyles.None, ProgramSupport.Inv, out count) || count <= 0));
        if (bad)
        {
            ctx.Err.WriteLine("usage: httpd [-p port] [-d directory] [-c count]");
            return 2;
        }
        dir = g.Value("d");
        string? root = null;
        if (ctx.Files is { } files)
        {
            root = ZoneRoot(files, dir ?? ZoneDocumentRoot);
            if (dir != null && root == null)
            {
                ctx.Err.WriteLine($"httpd: {dir}: No such file or directory");
                return 1;
            }
        }
        else if (dir != null)
        {
            root = Path.GetFullPath(Path.IsPathRooted(dir) ? dir : Path.Combine(ctx.WorkingDirectory, dir));
            if (!Directory.Exists(root))
            {
                ctx.Err.WriteLine($"httpd: {dir}: No such file or directory");
                return 1;
            }
        }
        var server = new Server
        {
            Ctx = ctx, Root = root, Files = root == null ? null : ctx.Files, Remaining = count,
            Listener = new TcpListener(ctx.Stack.Tcp) { NoDelay = true },
            Listener6 = new TcpListener(ctx.Stack.Tcp) { NoDelay = true },
        };
        try
        {
            server.Listener.Listen(IpAddress.AnyV4, port);
            server.Listener6.Listen(IpAddress.AnyV6, port);
        }
        catch (TcpException e)
        {
            server.Close();
            ctx.Err.WriteLine($"httpd: could not bind to port {port}: {ProgramSupport.Describe(e.Error)}");
            return 1;
        }
        using var dog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, server.Close);
        var connections = new List<Task>();
        await Task.WhenAll(AcceptLoop(server.Listener), AcceptLoop(server.Listener6));
        await Task.WhenAll(connections);
        ctx.Cancel.ThrowIfCancellationRequested();
        return 0;

        async Task AcceptLoop(TcpListener listener)
        {
            while (true)
            {
                TcpSocket sock;
                try { sock = await listener.AcceptAsync(); }
                catch (TcpException) { return; }
                connections.RemoveAll(t => t.IsCompleted);
                connections.Add(Serve(server, sock));
            }
        }
    }

    /// <summary>One connection: requests until close, error or idle timeout.</summary>
    private static async Task Serve(Server server, TcpSocket sock)
    {
        var ctx = server.Ctx;
        var reader = new SocketReader(sock);
        using var dog = new Watchdog(ctx.Stack.Scheduler, ctx.Cancel, sock.Abort);
        try
        {
            while (true)
            {
                dog.Arm(IdleTimeout);
                string? requestLine = await reader.ReadLineAsync();
                if (requestLine == null) break;
                if (requestLine.Length == 0) continue;
                var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                bool tooLong = false;
                while (true)
                {
                    string? h = await reader.ReadLineAsync();
                    if (h == null) { tooLong = true; break; }
                    if (h.Length == 0) break;
                    int colon = h.IndexOf(':');
                    if (colon > 0) headers[h[..colon].Trim()] = h[(colon + 1)..].Trim();
                    if (headers.Count > 100) { tooLong = true; break; }
                }
                dog.Arm(0);
                bool keepAlive = await Respond(server, sock, requestLine, headers, tooLong);
                if (server.Remaining > 0 && --server.Remaining == 0) server.Close();
                if (!keepAlive || server.Remaining == 0) break;
            }
            sock.Close();
        }
        catch (TcpException)
        {
            sock.Abort();
        }
    }

    private static async Task<bool> Respond(Server server, TcpSocket sock, string requestLine, Dictionary<string, string> headers, bool bad)
    {
        string[] parts = requestLine.Split(' ');
        int status;
        byte[] body;
        string type = "text/html";
        string method = parts.Length > 0 ? parts[0] : "";
        string version = parts.Length == 3 ? parts[2] : "HTTP/1.0";
        bool keepAlive = version == "HTTP/1.1"
            ? !(headers.TryGetValue("Connection", out var c) && c.Equals("close", StringComparison.OrdinalIgnoreCase))
            : headers.TryGetValue("Connection", out var k) && k.Equals("keep-alive", StringComparison.OrdinalIgnoreCase);
        if (bad || parts.Length != 3 || !version.StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[1].Length == 0 || parts[1][0] != '/'
            || (version == "HTTP/1.1" && !headers.ContainsKey("Host")))
        {
            status = 400;
            keepAlive = false;
            body = ErrorPage(400, "Bad Request");
        }
        else if (method is not ("GET" or "HEAD"))
        {
            status = 501;
            body = ErrorPage(501, "Not Implemented");
        }
        else
        {
            (status, body, type) = Lookup(server.Root, server.Files, parts[1]);
        }
        var head = new StringBuilder();
        head.Append("HTTP/1.1 ").Append(status).Append(' ').Append(Reason(status)).Append("\r\n");
        head.Append("Server: httpd (SmartOS)\r\n");
        head.Append("Content-Type: ").Append(type).Append("\r\n");
        head.Append("Content-Length: ").Append(body.Length).Append("\r\n");
        if (status == 501) head.Append("Allow: GET, HEAD\r\n");
        head.Append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
        head.Append("\r\n");
        await sock.SendAsync(Encoding.ASCII.GetBytes(head.ToString()));
        if (method != "HEAD" && body.Length > 0) await sock.SendAsync(body);
        var ctx = server.Ctx;
        ctx.Out.WriteLine($"{sock.RemoteAddress} - - [{Time.FormatSeconds(ctx.Stack.Scheduler.Now, 6)}] \"{requestLine}\" {status} {(method == "HEAD" ? 0 : body.Length)}");
        return keepAlive;
    }

    /// <summary>A directory of the zone's tree as an absolute path, or null when it is none.</summary>
    private static string? ZoneRoot(IProgramFiles files, string dir)
    {
        string path = "/" + dir.Trim('/');
        return files.Probe(path) == ProgramFileStatus.IsDirectory ? path : null;
    }

    private static (int Status, byte[] Body, string Type) Lookup(string? root, IProgramFiles? files, string target)
    {
        string path = target;
        int q = path.IndexOfAny(['?', '#']);
        if (q >= 0) path = path[..q];
        path = Uri.UnescapeDataString(path);
        if (root == null)
        {
            return path is "/" or "/index.html"
                ? (200, Encoding.UTF8.GetBytes(IndexPage), "text/html")
                : (404, ErrorPage(404, "Not Found"), "text/html");
        }
        foreach (string segment in path.Split('/'))
            if (segment == ".." || segment.Contains('\\') || segment.Contains('\0')) return (403, ErrorPage(403, "Forbidden"), "text/html");
        if (files != null) return LookupZone(files, root, path);
        string full = Path.GetFullPath(Path.Combine(root, path.TrimStart('/')));
        if (!full.StartsWith(root, StringComparison.Ordinal)) return (403, ErrorPage(403, "Forbidden"), "text/html");
        if (Directory.Exists(full)) full = Path.Combine(full, "index.html");
        if (!File.Exists(full)) return (404, ErrorPage(404, "Not Found"), "text/html");
        try { return (200, File.ReadAllBytes(full), ContentType(full)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return (403, ErrorPage(403, "Forbidden"), "text/html"); }
    }

    /// <summary>A request path under the zone's document root (no ".." in it: Lookup refused those).</summary>
    private static (int Status, byte[] Body, string Type) LookupZone(IProgramFiles files, string root, string path)
    {
        string full = root.TrimEnd('/') + "/" + path.TrimStart('/');
        if (files.Probe(full) == ProgramFileStatus.IsDirectory) full = full.TrimEnd('/') + "/index.html";
        return files.ReadAll(full, MaxZoneFile, out byte[] body) switch
        {
            ProgramFileStatus.Ok => (200, body, ContentType(full)),
            ProgramFileStatus.NotFound or ProgramFileStatus.NotDirectory => (404, ErrorPage(404, "Not Found"), "text/html"),
            _ => (403, ErrorPage(403, "Forbidden"), "text/html"),
        };
    }

    private static string ContentType(string file) => Path.GetExtension(file).ToLowerInvariant() switch
    {
        ".html" or ".htm" => "text/html",
        ".txt" or ".scn" => "text/plain",
        ".css" => "text/css",
        ".js" => "text/javascript",
        ".json" => "application/json",
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };

    internal static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        501 => "Not Implemented",
        _ => "Unknown",
    };

    private static byte[] ErrorPage(int status, string reason)
        => Encoding.UTF8.GetBytes($"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body></html>\n");
}
