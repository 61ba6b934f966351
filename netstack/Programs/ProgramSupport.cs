using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// What the socket programs (nc, iperf, httpd, curl) share: number parsing, a watchdog that aborts
/// a socket on a timeout or ^C (TCP socket calls take no cancellation token, TcpProtocol.cs "not
/// done yet"), and a buffered reader over a TCP socket. Everything runs on the loop.
/// </summary>
internal static class ProgramSupport
{
    public static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Seconds as a decimal ("1", "0.5") to nanoseconds; false when not positive.</summary>
    public static bool TryParseSeconds(string text, out long ns)
    {
        ns = 0;
        if (!decimal.TryParse(text, NumberStyles.AllowDecimalPoint, Inv, out decimal s) || s <= 0 || s > 1_000_000) return false;
        ns = (long)(s * Time.Second);
        return true;
    }

    /// <summary>A count with an optional K/M/G suffix; <paramref name="unit"/> is 1024 for sizes
    /// (iperf -l, -n) and 1000 for rates (iperf -b), as iperf3 reads them.</summary>
    public static bool TryParseScaled(string text, int unit, out long value)
    {
        value = 0;
        if (text.Length == 0) return false;
        double scale = 1;
        char last = char.ToUpperInvariant(text[^1]);
        if (last is 'K' or 'M' or 'G' or 'T')
        {
            scale = last switch { 'K' => unit, 'M' => (double)unit * unit, 'G' => (double)unit * unit * unit, _ => (double)unit * unit * unit * unit };
            text = text[..^1];
        }
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, Inv, out double v) || v < 0) return false;
        double r = v * scale;
        if (r > long.MaxValue / 2) return false;
        value = (long)r;
        return true;
    }

    public static bool TryParsePort(string text, out ushort port)
        => ushort.TryParse(text, NumberStyles.None, Inv, out port) && port != 0;

    /// <summary>The text of an errno as illumos's strerror words it.</summary>
    public static string Describe(TcpError e) => e switch
    {
        TcpError.ECONNREFUSED => "Connection refused",
        TcpError.ETIMEDOUT => "Connection timed out",
        TcpError.ECONNRESET => "Connection reset by peer",
        TcpError.EADDRINUSE => "Address already in use",
        TcpError.EADDRNOTAVAIL => "Cannot assign requested address",
        TcpError.ENETUNREACH => "Network is unreachable",
        TcpError.EHOSTUNREACH => "No route to host",
        TcpError.ENOBUFS => "No buffer space available",
        TcpError.ENOTCONN => "Socket is not connected",
        TcpError.EPIPE => "Broken pipe",
        TcpError.EISCONN => "Socket is already connected",
        TcpError.ECONNABORTED => "Software caused connection abort",
        _ => "Invalid argument",
    };
}

/// <summary>
/// Runs an action once, when the cancellation token fires or when a virtual-time deadline passes
/// (whichever is first); Dispose disarms it. <see cref="TimedOut"/> tells the two apart.
/// </summary>
internal sealed class Watchdog : IDisposable
{
    private readonly KTimer _timer;
    private readonly Action _action;
    private CancellationTokenRegistration _reg;
    private bool _fired;

    public Watchdog(Scheduler scheduler, CancellationToken cancel, Action action)
    {
        _action = action;
        _timer = new KTimer(scheduler, static s => ((Watchdog)s!).Fire(timedOut: true), this);
        if (cancel.CanBeCanceled) _reg = cancel.Register(static s => ((Watchdog)s!).Fire(timedOut: false), this);
    }

    public bool TimedOut { get; private set; }
    public bool Fired => _fired;

    /// <summary>(Re)arms the deadline <paramref name="after"/> from now; 0 or less disarms it.</summary>
    public void Arm(long after)
    {
        if (after > 0) _timer.ArmAfter(after);
        else _timer.Cancel();
    }

    private void Fire(bool timedOut)
    {
        if (_fired) return;
        _fired = true;
        TimedOut = timedOut;
        _timer.Cancel();
        _action();
    }

    public void Dispose()
    {
        _timer.Cancel();
        _reg.Dispose();
    }
}

/// <summary>Buffered reads from a TCP socket: lines (HTTP headers) and exact counts (iperf).</summary>
internal sealed class SocketReader
{
    private readonly TcpSocket _socket;
    private readonly byte[] _buffer;
    private int _start, _end;

    public SocketReader(TcpSocket socket, int size = 16 * 1024)
    {
        _socket = socket;
        _buffer = new byte[size];
    }

    public TcpSocket Socket => _socket;

    /// <summary>Bytes already buffered.</summary>
    public int Buffered => _end - _start;

    private async ValueTask<bool> FillAsync()
    {
        if (_start > 0 && _start == _end) _start = _end = 0;
        if (_end == _buffer.Length)
        {
            if (_start == 0) return false;
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end));
        _end += n;
        return n > 0;
    }

    /// <summary>A line without its CRLF (or LF); null at end of stream or past <paramref name="max"/> bytes.</summary>
    public async ValueTask<string?> ReadLineAsync(int max = 8192)
    {
        while (true)
        {
            int lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (lf >= 0)
            {
                int len = lf - _start;
                if (len > 0 && _buffer[lf - 1] == '\r') len--;
                string line = Encoding.Latin1.GetString(_buffer, _start, len);
                _start = lf + 1;
                return line;
            }
            if (_end - _start >= max) return null;
            if (!await FillAsync()) return null;
        }
    }

    /// <summary>Fills <paramref name="dest"/> entirely; false when the stream ends first.</summary>
    public async ValueTask<bool> ReadExactAsync(Memory<byte> dest)
    {
        int done = 0;
        while (done < dest.Length)
        {
            if (_start == _end && !await FillAsync()) return false;
            int n = Math.Min(dest.Length - done, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(dest.Span[done..]);
            _start += n;
            done += n;
        }
        return true;
    }

    /// <summary>Some bytes (buffered first); 0 at end of stream.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> dest)
    {
        if (_start == _end)
        {
            if (dest.Length >= _buffer.Length) return await _socket.ReceiveAsync(dest);
            if (!await FillAsync()) return 0;
        }
        int n = Math.Min(dest.Length, _end - _start);
        _buffer.AsSpan(_start, n).CopyTo(dest.Span);
        _start += n;
        return n;
    }
}
