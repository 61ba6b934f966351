using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Netstack;

/// <summary>iperf's command line: iperf3's options, read with getopt_long as iperf3 reads them
/// (operands may come anywhere; an unknown option or a missing value is getopt_long's message,
/// then the usage line, exit 1); a bad value or a bad combination is iperf3's "parameter error".</summary>
public static partial class Iperf
{
    private sealed class Settings
    {
        public bool Server, Udp, Reverse, OneOff;
        public string? Host;
        public ushort Port = DefaultPort;
        public long Duration = 10 * Time.Second;
        public long Bytes;
        public long Rate = -1;
        public int Length;
        public long Interval = Time.Second;
        /// <summary>TCP streams in parallel (-P); -b applies to each, -n to them all, as in iperf3.</summary>
        public int Parallel = 1;
        /// <summary>-w: the data sockets' buffer size, so the window (0: DefaultWindow); the client
        /// sends it to the server as iperf3's "window" parameter.</summary>
        public int Window;
    }

    /// <summary>The settings of a command line; null (with the exit status) when it is refused,
    /// after saying why on stderr.</summary>
    private static Settings? ParseSettings(ProgramContext ctx, string[] args, out int status)
    {
        status = 1;
        var g = Getopt.ParseLong(args, Descriptor.Options, Descriptor.LongOptions, permute: true);
        if (g.ReportError(ctx.Err, "iperf"))
        {
            ctx.Err.WriteLine(UsageLine);
            return null;
        }
        var s = new Settings
        {
            Server = g.Has("s"),
            OneOff = g.Has("1"),
            Udp = g.Has("u"),
            Reverse = g.Has("R"),
            Host = g.Value("c"),
        };
        long v;
        string? bad = g.Operands.Count > 0 ? g.Operands[0] : null;
        if (g.Value("p") is { } port && !ProgramSupport.TryParsePort(port, out s.Port)) bad ??= "-p";
        if (g.Value("t") is { } time && !ProgramSupport.TryParseSeconds(time, out s.Duration)) bad ??= "-t";
        if (g.Value("i") is { } interval)
        {
            if (decimal.TryParse(interval, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal iv)) s.Interval = (long)(iv * Time.Second);
            else bad ??= "-i";
        }
        if (g.Value("n") is { } bytes)
        {
            if (ProgramSupport.TryParseScaled(bytes, 1024, out v) && v > 0) s.Bytes = v;
            else bad ??= "-n";
        }
        if (g.Value("b") is { } rate)
        {
            if (ProgramSupport.TryParseScaled(rate, 1000, out v)) s.Rate = v;
            else bad ??= "-b";
        }
        if (g.Value("l") is { } length)
        {
            if (ProgramSupport.TryParseScaled(length, 1024, out v) && v is > 16 and <= 1 << 20) s.Length = (int)v;
            else bad ??= "-l";
        }
        if (g.Value("P") is { } parallel)
        {
            if (int.TryParse(parallel, NumberStyles.None, CultureInfo.InvariantCulture, out int par) && par is >= 1 and <= MaxStreams) s.Parallel = par;
            else bad ??= "-P";
        }
        if (g.Value("w") is { } window)
        {
            if (!ProgramSupport.TryParseScaled(window, 1024, out v) || v < 1024) bad ??= "-w";
            else s.Window = (int)Math.Min(v, int.MaxValue);
        }
        string? error = bad != null ? $"parameter error - unknown or invalid option {bad}"
            : s.Server == (s.Host != null) ? "parameter error - must either be a client (-c) or server (-s)"
            : s.Udp && s.Length > UdpSocket.MaxPayload ? $"parameter error - block size too large (maximum = {UdpSocket.MaxPayload} bytes)"
            : s.Udp && s.Parallel > 1 ? "parameter error - parallel streams (-P) are TCP only here"
            : s.Window > MaxWindow ? "parameter error - " + WindowTooLarge
            : null;
        if (error == null) return s;
        ctx.Err.WriteLine($"iperf: {error}");
        ctx.Err.WriteLine(UsageLine);
        return null;
    }

    /// <summary>iperf3's IEBUFSIZE, with this TCP's largest socket buffer.</summary>
    private static readonly string WindowTooLarge = $"socket buffer size too large (maximum = {MaxWindow} bytes)";

    private const string UsageLine = "Usage: iperf [-s|-c host] [options]";
}
