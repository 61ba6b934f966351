using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>The connection states of RFC 9293 section 3.3.2, named as netstat prints them.</summary>
public enum TcpState
{
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// <summary>Socket errors with their errno names.</summary>
public enum TcpError
{
    None,
    ECONNREFUSED,
    ETIMEDOUT,
    ECONNRESET,
    EADDRINUSE,
    EADDRNOTAVAIL,
    ENETUNREACH,
    EHOSTUNREACH,
    ENOBUFS,
    ENOTCONN,
    EPIPE,
    EISCONN,
    EINVAL,
    ECONNABORTED,
}

/// <summary>A failed socket call; <see cref="Error"/> carries the errno name.</summary>
public sealed class TcpException : Exception
{
    public TcpException(TcpError error) : base(Describe(error)) { Error = error; }

    public TcpError Error { get; }

    private static string Describe(TcpError e) => e switch
    {
        TcpError.ECONNREFUSED => "ECONNREFUSED: Connection refused",
        TcpError.ETIMEDOUT => "ETIMEDOUT: Connection timed out",
        TcpError.ECONNRESET => "ECONNRESET: Connection reset by peer",
        TcpError.EADDRINUSE => "EADDRINUSE: Address already in use",
        TcpError.EADDRNOTAVAIL => "EADDRNOTAVAIL: Cannot assign requested address",
        TcpError.ENETUNREACH => "ENETUNREACH: Network is unreachable",
        TcpError.EHOSTUNREACH => "EHOSTUNREACH: No route to host",
        TcpError.ENOBUFS => "ENOBUFS: No buffer space available",
        TcpError.ENOTCONN => "ENOTCONN: Socket is not connected",
        TcpError.EPIPE => "EPIPE: Broken pipe",
        TcpError.EISCONN => "EISCONN: Socket is already connected",
        TcpError.EINVAL => "EINVAL: Invalid argument",
        TcpError.ECONNABORTED => "ECONNABORTED: Software caused connection abort",
        _ => e.ToString(),
    };
}

/// <summary>
/// Where a TcpProtocol charges the memory its connections hold (send and receive buffers). The
/// zones issue caps memory per zone by handing each zone's stack an account with a limit.
/// </summary>
public interface ITcpMemoryAccount
{
    /// <summary>Charges <paramref name="bytes"/>; false (and nothing charged) when over the cap.</summary>
    bool TryCharge(long bytes);

    void Release(long bytes);
}

/// <summary>A memory account with an optional cap, counting what is charged.</summary>
public sealed class TcpMemoryAccount : ITcpMemoryAccount
{
    public TcpMemoryAccount(long limit = long.MaxValue) { Limit = limit; }

    public long Limit { get; }
    public long Charged { get; private set; }
    public long Refused { get; private set; }

    public bool TryCharge(long bytes)
    {
        if (Charged + bytes > Limit) { Refused++; return false; }
        Charged += bytes;
        return true;
    }

    public void Release(long bytes) => Charged -= bytes;
}

/// <summary>
/// Tunables of one TCP instance, named after illumos's ndd/ipadm tcp properties where one exists.
/// Times are nanoseconds of scheduler time.
/// </summary>
public sealed class TcpConfig
{
    /// <summary>Lower bound of the retransmission timeout. RFC 6298 asks for 1 s; illumos uses
    /// 400 ms (tcp_rexmit_interval_min) and Linux 200 ms. We follow illumos.</summary>
    public long MinRto { get; init; } = 400 * Time.Millisecond;

    /// <summary>The RTO before any RTT sample (RFC 6298 section 2.1: 1 s).</summary>
    public long InitialRto { get; init; } = 1 * Time.Second;

    public long MaxRto { get; init; } = 60 * Time.Second;

    /// <summary>SYN retransmissions before connect fails with ETIMEDOUT (1+2+4+8+16+32 s = 63 s).</summary>
    public int SynRetries { get; init; } = 6;

    /// <summary>Data retransmissions before the connection is dropped with ETIMEDOUT.</summary>
    public int MaxRetries { get; init; } = 12;

    /// <summary>Maximum segment lifetime; TIME_WAIT lasts twice this (illumos: tcp_time_wait_interval 60 s).</summary>
    public long Msl { get; init; } = 30 * Time.Second;

    /// <summary>Delayed-ACK timer toward a peer behind a router (illumos tcp_deferred_ack_interval
    /// 100 ms; RFC 9293 caps it at 500 ms).</summary>
    public long DelayedAck { get; init; } = 100 * Time.Millisecond;

    /// <summary>Delayed-ACK timer toward an on-link peer (illumos _local_dack_interval, 50 ms).</summary>
    public long LocalDelayedAck { get; init; } = 50 * Time.Millisecond;

    /// <summary>In-order segments one ACK may cover toward a peer behind a router (illumos
    /// _deferred_acks_max, 2: RFC 1122's every second segment).</summary>
    public int DeferredAcksMax { get; init; } = 2;

    /// <summary>The same toward an on-link peer (illumos _local_dacks_max, 8).</summary>
    public int LocalDeferredAcksMax { get; init; } = 8;

    public int SendBufferSize { get; init; } = 128 * 1024;
    public int ReceiveBufferSize { get; init; } = 128 * 1024;

    /// <summary>Out-of-order ranges held per connection; segments that would need more are dropped.</summary>
    public int MaxOutOfOrderRanges { get; init; } = 32;

    public long KeepaliveIdle { get; init; } = 2 * 3600 * Time.Second;
    public long KeepaliveInterval { get; init; } = 75 * Time.Second;
    public int KeepaliveProbes { get; init; } = 9;

    /// <summary>Half-open (SYN_RECEIVED) connections per listener; when full the oldest is dropped.</summary>
    public int MaxHalfOpen { get; init; } = 128;

    /// <summary>Upper bound on any listener's accept backlog (illumos tcp_conn_req_max_q).</summary>
    public int MaxBacklog { get; init; } = 128;

    public bool WindowScaling { get; init; } = true;
    public bool Timestamps { get; init; } = true;
    public bool Sack { get; init; } = true;

    /// <summary>Ephemeral port range (illumos tcp_smallest_anon_port .. tcp_largest_anon_port).</summary>
    public ushort EphemeralLow { get; init; } = 32768;
    public ushort EphemeralHigh { get; init; } = 65535;

    public TcpCongestionControl CongestionControl { get; init; } = TcpCongestionControl.NewReno;

    /// <summary>Initial congestion window in segments (RFC 6928).</summary>
    public int InitialWindowSegments { get; init; } = 10;

    public static readonly TcpConfig Default = new();
}

/// <summary>The congestion-avoidance algorithm (illumos: ipadm set-prop -p congestion-control=... tcp).</summary>
public enum TcpCongestionControl
{
    /// <summary>Reno growth with NewReno/SACK recovery (RFC 5681, 6582, 6675): illumos's default.</summary>
    NewReno,

    /// <summary>CUBIC (RFC 9438), with the same loss recovery.</summary>
    Cubic,
}

/// <summary>One line of `netstat -an`.</summary>
public readonly record struct TcpConnectionInfo(
    IpAddress LocalAddress, ushort LocalPort, IpAddress RemoteAddress, ushort RemotePort,
    TcpState State, int SendQueue, int ReceiveQueue);

/// <summary>The counters of one TCP instance (illumos's tcp MIB, kstat module "tcp").</summary>
public sealed class TcpStats : IKstatSource
{
    public long ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab;
    public long InSegs, OutSegs, RetransSegs, InErrs, ChecksumErrors, OutRsts;
    public long ListenDrops, HalfOpenDrops, OutOfOrderSegs, OutOfOrderDrops, DupAcks;
    public long FastRetransmits, Timeouts, PersistProbes, KeepaliveProbes, KeepaliveDrops;
    public long TimeWaitExpired, NoPort, PacketPoolExhausted, MemoryRefused, ChallengeAcks, PawsDrops, SpuriousRetransmits;
    public long OutAckDelayed, OutWinUpdate;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("tcpActiveOpens", ActiveOpens));
        into.Add(new("tcpPassiveOpens", PassiveOpens));
        into.Add(new("tcpAttemptFails", AttemptFails));
        into.Add(new("tcpEstabResets", EstabResets));
        into.Add(new("tcpCurrEstab", CurrEstab));
        into.Add(new("tcpInSegs", InSegs));
        into.Add(new("tcpOutSegs", OutSegs));
        into.Add(new("tcpRetransSegs", RetransSegs));
        into.Add(new("tcpInErrs", InErrs));
        into.Add(new("tcpInChecksumErrs", ChecksumErrors));
        into.Add(new("tcpOutRsts", OutRsts));
        into.Add(new("tcpListenDrop", ListenDrops));
        into.Add(new("tcpHalfOpenDrop", HalfOpenDrops));
        into.Add(new("tcpInDataUnorderSegs", OutOfOrderSegs));
        into.Add(new("tcpInDataUnorderDrops", OutOfOrderDrops));
        into.Add(new("tcpInDupAck", DupAcks));
        into.Add(new("tcpOutFastRetrans", FastRetransmits));
        into.Add(new("tcpTimRetrans", Timeouts));
        into.Add(new("tcpOutWinProbe", PersistProbes));
        into.Add(new("tcpTimKeepaliveProbe", KeepaliveProbes));
        into.Add(new("tcpTimKeepaliveDrop", KeepaliveDrops));
        into.Add(new("tcpTimeWaitExpired", TimeWaitExpired));
        into.Add(new("tcpNoPort", NoPort));
        into.Add(new("tcpPacketPoolExhausted", PacketPoolExhausted));
        into.Add(new("tcpMemoryRefused", MemoryRefused));
        into.Add(new("tcpChallengeAcks", ChallengeAcks));
        into.Add(new("tcpPawsDrops", PawsDrops));
        into.Add(new("tcpSpuriousRtxUndo", SpuriousRetransmits));
        into.Add(new("tcpOutAckDelayed", OutAckDelayed));
        into.Add(new("tcpOutWinUpdate", OutWinUpdate));
    }
}

/// <summary>Sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4).</summary>
internal static class Seq
{
    public static bool Lt(uint a, uint b) => (int)(a - b) < 0;
    public static bool Le(uint a, uint b) => (int)(a - b) <= 0;
    public static bool Gt(uint a, uint b) => (int)(a - b) > 0;
    public static bool Ge(uint a, uint b) => (int)(a - b) >= 0;
    public static uint Max(uint a, uint b) => Gt(a, b) ? a : b;
    public static uint Min(uint a, uint b) => Lt(a, b) ? a : b;
}
