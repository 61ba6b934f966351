using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// curl(1), the HTTP part:
/// <code>
///   curl [-s] [-S] [-I] [-f] [-o FILE] [-w FORMAT] [-m SECS] [--connect-timeout SECS] URL
/// </code>
/// GET (or HEAD with -I, which prints the response headers) of an http:// URL whose host is an IP
/// address (there is no resolver in a zone yet). The body goes to stdout or to FILE, relative to the
/// command's working directory. -w understands %{http_code}, %{size_download}, %{size_header},
/// %{remote_ip}, %{remote_port}, %{content_type}, %{time_total} (virtual seconds) and \n. Errors
/// and exit codes are curl's: 1 unsupported protocol, 3 bad URL, 6 unresolvable host, 7 connect
/// failed, 22 HTTP error with -f, 23 write error, 28 timeout, 52 empty reply, 56 receive failure.
/// -s silences the error message (unless -S). Header lines are printed with LF endings, not CRLF,
/// so scenario expectations can anchor on line ends.
/// </summary>
public static class Curl
{
    public static readonly ProgramDescriptor Descriptor = new("curl", "sSIfo:w:m:", "transfer a URL", RunAsync)
    {
        LongOptions =
        [
            "silent=s", "show-error=S", "head=I", "fail=f", "output:=o", "write-out:=w", "max-time:=m", "connect-timeout:",
        ],
    };

    private sealed class Options
    {
        public bool Silent, ShowError, Head, Fail;
        public string? Output, WriteOut, Url;
        public long MaxTime, ConnectTimeout;
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var o = new Options();
        // curl reads its own options (not with getopt) and words a bad one itself, -s or not.
        var g = Getopt.ParseLong(args, Descriptor.Options, Descriptor.LongOptions, permute: true);
        if (g.Error != null)
        {
            string typed = g.ErrorLongOption != null ? "--" + g.ErrorLongOption : "-" + g.ErrorOption;
            return OptionError(ctx, typed, g.ErrorMissingValue ? "requires parameter" : "is unknown");
        }
        o.Silent = g.Has("s");
        o.ShowError = g.Has("S");
        o.Head = g.Has("I");
        o.Fail = g.Has("f");
        o.Output = g.Value("o");
        o.WriteOut = g.Value("w");
        if (g.Value("m") is { } m && !ProgramSupport.TryParseSeconds(m, out o.MaxTime)) return OptionError(ctx, "-m", "expected a proper numerical parameter");
        if (g.Value("connect-timeout") is { } ct && !ProgramSupport.TryParseSeconds(ct, out o.ConnectTimeout))
            return OptionError(ctx, "--connect-timeout", "expected a proper numerical parameter");
        if (g.Operands.Count > 0) o.Url = g.Operands[^1];
        if (o.Url == null) return Error(ctx, o, 2, "no URL specified");
        return await Fetch(ctx, o);
    }

    /// <summary>curl's helpf for a bad command line: "curl: option -x: is unknown" and where to
    /// look, exit 2 (CURLE_FAILED_INIT).</summary>
    private static int OptionError(ProgramContext ctx, string option, string problem)
    {
        ctx.Err.WriteLine($"curl: option {option}: {problem}");
        ctx.Err.WriteLine("curl: try 'curl --help' for more information");
        return 2;
    }

    private static int Error(ProgramContext ctx, Options o, int code, string message)
    {
        if (!o.Silent || o.ShowError) ctx.Err.WriteLine($"curl: ({code}) {message}");
        return code;
    }

    private static bool TryParseUrl(string url, out string scheme, out string host, out ushort port, out string path)
    {
        scheme = "http"; host = ""; port = 80; path = "/";
        string rest = url;
        int sep = url.IndexOf("://", StringComparison.Ordinal);
        if (sep >= 0)
        {
            scheme = url[..sep].ToLowerInvariant();
            rest = url[(sep + 3)..];
        }
        int slash = rest.IndexOfAny(['/', '?']);
        string authority = slash < 0 ? rest : rest[..slash];
        if (slash >= 0) path = rest[slash] == '?' ? "/" + rest[slash..] : rest[slash..];
        if (authority.Length == 0) return false;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']');
            if (close < 0) return false;
            host = authority[1..close];
            authority = authority[(close + 1)..];
            if (authority.Length > 0 && (authority[0] != ':' || !ushort.TryParse(authority[1..], NumberStyles.None, CultureInfo.InvariantCulture, out port))) return false;
            return true;
        }
        int colon = authority.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!ushort.TryParse(authority[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port)) return false;
            host = authority[..colon];
        }
        else host = authority;
        return host.Length > 0;
    }

    private static async Task<int> Fetch(ProgramContext ctx, Options o)
    {
        if (!TryParseUrl(o.Url!, out string scheme, out string host, out ushort port, out string path))
            return Error(ctx, o, 3, "URL using bad/illegal format or missing URL");
        if (scheme != "http") return Error(ctx, o, 1, $"Protocol \"{scheme}\" not supported");
        if (!IpAddress.TryParse(host, out var address)) return Error(ctx, o, 6, $"Could not resolve host: {host}");
        var s = ctx.Stack.Scheduler;
        long start = s.Now;
        var sock = new TcpSocket(ctx.Stack.Tcp) { NoDelay = true };
        using var dog = new Watchdog(s, ctx.Cancel, sock.Abort);
        long connectLimit = o.ConnectTimeout > 0 ? o.ConnectTimeout : o.MaxTime;
        dog.Arm(o.MaxTime > 0 && o.ConnectTimeout > 0 ? Math.Min(o.MaxTime, o.ConnectTimeout) : connectLimit);
        try { await sock.ConnectAsync(address, port); }
        catch (TcpException e)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            long ms = (s.Now - start) / Time.Millisecond;
            if (dog.TimedOut || e.Error == TcpError.ETIMEDOUT)
                return Error(ctx, o, 28, $"Failed to connect to {host} port {port} after {ms} ms: Timeout was reached");
            return Error(ctx, o, 7, $"Failed to connect to {host} port {port}: {ProgramSupport.Describe(e.Error)}");
        }
        dog.Arm(o.MaxTime > 0 ? o.MaxTime - (s.Now - start) : 0);
        string hostHeader = port == 80 ? host : (address.IsV4 ? host : "[" + host + "]") + ":" + port.ToString(CultureInfo.InvariantCulture);
        if (!address.IsV4 && port == 80) hostHeader = "[" + host + "]";
        string request = $"{(o.Head ? "HEAD" : "GET")} {path} HTTP/1.1\r\nHost: {hostHeader}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
        var reader = new SocketReader(sock);
        int status = 0;
        long bodyBytes = 0, headerBytes = 0;
        string contentType = "";
        var body = new MemoryStream();
        try
        {
            await sock.SendAsync(Encoding.ASCII.GetBytes(request));
            string? statusLine = await reader.ReadLineAsync();
            if (statusLine == null)
            {
                sock.Abort();
                return Error(ctx, o, 52, "Empty reply from server");
            }
            string[] sp = statusLine.Split(' ', 3);
            if (sp.Length < 2 || !sp[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(sp[1], NumberStyles.None, CultureInfo.InvariantCulture, out status))
            {
                sock.Abort();
                return Error(ctx, o, 1, "Received HTTP/0.9 when not allowed");
            }
            headerBytes += statusLine.Length + 2;
            var headerText = new StringBuilder(statusLine).Append('\n');
            long contentLength = -1;
            bool chunked = false;
            while (true)
            {
                string? h = await reader.ReadLineAsync();
                if (h == null) return Error(ctx, o, 56, "Recv failure: Connection reset by peer");
                headerBytes += h.Length + 2;
                headerText.Append(h).Append('\n');
                if (h.Length == 0) break;
                int colon = h.IndexOf(':');
                if (colon <= 0) continue;
                string name = h[..colon].Trim(), value = h[(colon + 1)..].Trim();
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out contentLength);
                else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) chunked = value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
                else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)) contentType = value;
            }
            if (o.Head)
            {
                ctx.Out.Write(headerText.ToString());
            }
            else if (o.Fail && status >= 400)
            {
                sock.Abort();
                return Error(ctx, o, 22, $"The requested URL returned error: {status}");
            }
            else if (chunked) bodyBytes = await ReadChunked(reader, body);
            else bodyBytes = await ReadBody(reader, body, contentLength);
            sock.Close();
        }
        catch (TcpException e)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            if (dog.TimedOut)
                return Error(ctx, o, 28, $"Operation timed out after {(s.Now - start) / Time.Millisecond} milliseconds with {body.Length} bytes received");
            return Error(ctx, o, 56, $"Recv failure: {ProgramSupport.Describe(e.Error)}");
        }
        if (!o.Head)
        {
            if (o.Output != null)
            {
                try { File.WriteAllBytes(Path.IsPathRooted(o.Output) ? o.Output : Path.Combine(ctx.WorkingDirectory, o.Output), body.ToArray()); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return Error(ctx, o, 23, $"Failure writing output to destination, passed {body.Length} returned 0");
                }
            }
            else ctx.Out.Write(Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length));
        }
        if (o.WriteOut != null)
        {
            var ci = CultureInfo.InvariantCulture;
            string w = o.WriteOut
                .Replace("%{http_code}", status.ToString("D3", ci), StringComparison.Ordinal)
                .Replace("%{response_code}", status.ToString("D3", ci), StringComparison.Ordinal)
                .Replace("%{size_download}", bodyBytes.ToString(ci), StringComparison.Ordinal)
                .Replace("%{size_header}", headerBytes.ToString(ci), StringComparison.Ordinal)
                .Replace("%{remote_ip}", host, StringComparison.Ordinal)
                .Replace("%{remote_port}", port.ToString(ci), StringComparison.Ordinal)
                .Replace("%{content_type}", contentType, StringComparison.Ordinal)
                .Replace("%{time_total}", ((s.Now - start) / (double)Time.Second).ToString("F6", ci), StringComparison.Ordinal)
                .Replace("\\n", "\n", StringComparison.Ordinal)
                .Replace("\\t", "\t", StringComparison.Ordinal);
            ctx.Out.Write(w);
        }
        return 0;
    }

    private static async Task<long> ReadBody(SocketReader reader, MemoryStream body, long length)
    {
        var buffer = new byte[16 * 1024];
        while (length < 0 || body.Length < length)
        {
            int want = length < 0 ? buffer.Length : (int)Math.Min(buffer.Length, length - body.Length);
            int n = await reader.ReadAsync(buffer.AsMemory(0, want));
            if (n == 0)
            {
                if (length >= 0) throw new TcpException(TcpError.ECONNRESET);
                break;
            }
            body.Write(buffer, 0, n);
        }
        return body.Length;
    }

    private static async Task<long> ReadChunked(SocketReader reader, MemoryStream body)
    {
        while (true)
        {
            string? line = await reader.ReadLineAsync() ?? throw new TcpException(TcpError.ECONNRESET);
            int semi = line.IndexOf(';');
            if (!long.TryParse(semi < 0 ? line.Trim() : line[..semi].Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long size) || size < 0)
                throw new TcpException(TcpError.ECONNRESET);
            if (size == 0)
            {
                while (await reader.ReadLineAsync() is { Length: > 0 }) { }
                return body.Length;
            }
            var chunk = new byte[size];
            if (!await reader.ReadExactAsync(chunk)) throw new TcpException(TcpError.ECONNRESET);
            body.Write(chunk);
            await reader.ReadLineAsync();
        }
    }
}
