using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>
/// iperf: an iperf3-compatible bandwidth tester, speaking iperf3's control protocol so that a real
/// `iperf3 -c` can test against `iperf -s` and `iperf -c` against a real `iperf3 -s` once frames
/// reach real interfaces (real-time mode).
/// <code>
///   iperf -s [-p PORT] [-i SECS] [-1]
///   iperf -c HOST [-p PORT] [-u] [-t SECS] [-n BYTES] [-b RATE] [-l LEN] [-P N] [-R] [-i SECS] [-w SIZE]
/// </code>
/// The data sockets' buffers (so the receive window) are DefaultWindow, fixed where Linux's would
/// autotune, unless the client asks for a window (-w, iperf3's "window" parameter): the client's
/// data sockets take it, and the server sets its listeners to it before CREATE_STREAMS, so the
/// streams' SYN-ACKs carry the window scale it needs; the next test starts from the default again.
/// The protocol (iperf3's): the client opens a TCP control connection to PORT (5201) and sends a
/// 37-byte cookie (36 characters of [a-z2-7] and a NUL). The server answers with state bytes:
/// PARAM_EXCHANGE (9), after which the client sends its parameters as JSON behind a 4-byte
/// big-endian length; CREATE_STREAMS (10), after which the client opens the data streams (TCP: -P
/// connections to PORT that each start with the cookie; UDP, one stream only: a datagram "9876" to
/// PORT answered with "6789"); TEST_START (1) and TEST_RUNNING (2). The senders then write blocks of
/// -l bytes (UDP datagrams carry sec, usec and a packet count, big-endian, in their first 12
/// bytes). The client ends the test with TEST_END (4); the server sends EXCHANGE_RESULTS (13), the
/// client its results JSON (one entry per stream, ids 1, 3, 4, ... as iperf3 numbers them), the
/// server its own, then DISPLAY_RESULTS (14); the client closes with IPERF_DONE (16), after which
/// the server takes the next client. A server busy with a test answers a new control connection
/// with ACCESS_DENIED (-1).
/// Reports are iperf3's lines (iperf_locale.c formats): intervals every -i seconds (default 1, 0
/// turns them off), then the sender and receiver summary; with several streams a line per stream
/// and a [SUM] line. Sizes take K/M/G (x1024), rates K/M/G (x1000); UDP defaults to 1 Mbit/s and
/// TCP to as fast as the path allows; -b paces each stream and -n bounds them all, as in iperf3.
/// All times are virtual. The server listens on both families. CPU use is reported as 0. Streams
/// are printed as 5, 7, 9, ... as iperf3's data sockets usually are.
/// An etherstub has no speed and no delay, so nothing else would make virtual time pass during a
/// timed TCP test on one: an unlimited sender is held to <see cref="MaxTcpRate"/> (10 Gbit/s).
/// The files: Iperf.cs (this statement, the test's shared state), Iperf.Options.cs (the command
/// line), Iperf.Client.cs, Iperf.Server.cs, Iperf.Data.cs (the data streams, both sides),
/// Iperf.Control.cs (the control messages) and Iperf.Reports.cs (what is printed).
/// </summary>
public static partial class Iperf
{
    /// <summary>iperf3's options that this iperf has, short and long (getopt_long, as iperf3 reads them).</summary>
    public static readonly ProgramDescriptor Descriptor = new("iperf", "s1uRc:p:t:i:n:b:l:P:w:", "measure network throughput", RunAsync)
    {
        LongOptions =
        [
            "server=s", "one-off=1", "udp=u", "reverse=R", "client:=c", "port:=p", "time:=t", "interval:=i",
            "bytes:=n", "bitrate:=b", "bandwidth:=b", "length:=l", "parallel:=P", "window:=w",
        ],
    };

    private const byte TestStart = 1, TestRunning = 2, TestEnd = 4, ParamExchange = 9, CreateStreams = 10,
        ServerTerminate = 11, ClientTerminate = 12, ExchangeResults = 13, DisplayResults = 14, IperfDone = 16,
        AccessDenied = 0xFF;
    private const int CookieSize = 37;
    private const int StreamId = 5;
    private const ushort DefaultPort = 5201;
    private static readonly byte[] s_udpConnect = "9876"u8.ToArray();
    private static readonly byte[] s_udpReply = "6789"u8.ToArray();
    private const string Separator = "- - - - - - - - - - - - - - - - - - - - - - - - -";
    /// <summary>The fastest an unlimited TCP sender goes, in bits per second of virtual time (a CPU's worth).</summary>
    public const long MaxTcpRate = 10_000_000_000;
    private const string ServerLine = "-----------------------------------------------------------";
    /// <summary>The data sockets' send and receive buffers (so the receive window) when the client
    /// asks for no window (-w): fixed, where Linux's would autotune.</summary>
    private const int DefaultWindow = 512 * 1024;
    /// <summary>The largest -w: the largest socket buffer this TCP takes (TcpSocket.ValidBufferSize).</summary>
    private const int MaxWindow = 64 << 20;
    /// <summary>iperf3's MAX_STREAMS.</summary>
    private const int MaxStreams = 128;

    /// <summary>One TCP data stream of a test: its socket, its counters and the id iperf3 prints
    /// (5, 7, 9, ... like the descriptors iperf3's ids are).</summary>
    private sealed class DataStream(TcpSocket tcp, int index)
    {
        public TcpSocket Tcp { get; } = tcp;
        public int Id { get; } = StreamId + 2 * index;
        public Stats Stats { get; } = new();
    }

    /// <summary>One stream's counters, as iperf3's iperf_stream_result.</summary>
    private sealed class Stats
    {
        public long Bytes, Packets, Lost, OutOfOrder;
        public double Jitter;
        public long PrevTransit = long.MinValue;
        public long Start, End;
    }

    /// <summary>A running test: its stream, its counters and the flag that stops the data loops.</summary>
    private sealed class Test
    {
        public required ProgramContext Ctx;
        public required Settings Settings;
        public bool Sending;
        public bool IsClient;
        /// <summary>The whole test's counters (a UDP test's only ones; the sum of the TCP streams').</summary>
        public readonly Stats Stats = new();
        public JsonElement? Peer;
        public IpEndpoint UdpPeer;
        public readonly List<DataStream> Streams = [];
        public UdpSocket? Udp;
        public void AbortStreams() { foreach (var d in Streams) d.Tcp.Abort(); }
        public bool Stopped;
        /// <summary>The client said IPERF_DONE: a new test may queue while this one is cleaned up.</summary>
        public bool Finished;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.None);
        public Scheduler Scheduler => Ctx.Stack.Scheduler;
    }

    public static async Task<int> RunAsync(ProgramContext ctx, string[] args)
    {
        var s = ParseSettings(ctx, args, out int status);
        if (s == null) return status;
        return s.Server ? await Server(ctx, s) : await Client(ctx, s);
    }
}
