namespace SmartOS.Dtrace;

/// <summary>
/// What D programs get without declaring it: the inlines of illumos's D library files (tcp.d's
/// TCP_STATE_* and tcp_state_string[], the TH_* flags, ip.d's protocol numbers, socket.h's AF_*,
/// io.d's B_* buf flags),
/// the C integer types casts name (Syntax.cs rule 7), and the string subroutines' rules.
/// </summary>
internal static class DLibrary
{
    /// <summary>The string size (dtrace -x strsize, 256 by default): longer results are cut.</summary>
    public const int StringSize = 256;

    public static readonly Dictionary<string, long> Inlines = new(StringComparer.Ordinal)
    {
        ["TCP_STATE_CLOSED"] = -6, ["TCP_STATE_IDLE"] = -5, ["TCP_STATE_BOUND"] = -4, ["TCP_STATE_LISTEN"] = -3,
        ["TCP_STATE_SYN_SENT"] = -2, ["TCP_STATE_SYN_RECEIVED"] = -1, ["TCP_STATE_ESTABLISHED"] = 0,
        ["TCP_STATE_CLOSE_WAIT"] = 1, ["TCP_STATE_FIN_WAIT_1"] = 2, ["TCP_STATE_CLOSING"] = 3,
        ["TCP_STATE_LAST_ACK"] = 4, ["TCP_STATE_FIN_WAIT_2"] = 5, ["TCP_STATE_TIME_WAIT"] = 6,
        ["TH_FIN"] = 0x01, ["TH_SYN"] = 0x02, ["TH_RST"] = 0x04, ["TH_PUSH"] = 0x08, ["TH_ACK"] = 0x10,
        ["TH_URG"] = 0x20, ["TH_ECE"] = 0x40, ["TH_CWR"] = 0x80,
        ["IPPROTO_IP"] = 0, ["IPPROTO_ICMP"] = 1, ["IPPROTO_TCP"] = 6, ["IPPROTO_UDP"] = 17, ["IPPROTO_ICMPV6"] = 58,
        ["AF_INET"] = 2, ["AF_INET6"] = 26,
        // io.d's buf flags (sys/buf.h), for bufinfo_t's b_flags.
        ["B_BUSY"] = 0x1, ["B_DONE"] = 0x2, ["B_ERROR"] = 0x4, ["B_PAGEIO"] = 0x10, ["B_PHYS"] = 0x20,
        ["B_READ"] = 0x40, ["B_WRITE"] = 0x100, ["B_ASYNC"] = 0x400,
    };

    private static readonly string[] s_tcpStates =
    [
        "state-closed", "state-idle", "state-bound", "state-listen", "state-syn-sent", "state-syn-received",
        "state-established", "state-close-wait", "state-fin-wait-1", "state-closing", "state-last-ack",
        "state-fin-wait-2", "state-time-wait",
    ];

    /// <summary>tcp.d's tcp_state_string[]: a TCP_STATE_* value's name, "&lt;unknown&gt;" otherwise.</summary>
    public static string TcpStateString(long state) => state is >= -6 and <= 6 ? s_tcpStates[state + 6] : "<unknown>";

    public static string Bound(string s) => s.Length < StringSize ? s : s[..(StringSize - 1)];

    /// <summary>substr(s, index[, length]) as dtrace.c's DIF_SUBR_SUBSTR: a negative index counts
    /// from the end, a negative length leaves that many characters off the end, and anything past
    /// the string is cut, never an error.</summary>
    public static string Substr(string s, long index, long? length)
    {
        long len = s.Length;
        long remaining = length ?? StringSize;
        if (index < 0)
        {
            index += len;
            if (index < 0 && index + remaining > 0)
            {
                remaining += index;
                index = 0;
            }
        }
        if (index >= len || index < 0) remaining = 0;
        else if (remaining < 0)
        {
            remaining += len - index;
            if (remaining < 0) remaining = 0;
        }
        else if (index + remaining > len) remaining = len - index;
        return remaining == 0 ? "" : s.Substring((int)index, (int)remaining);
    }

    /// <summary>The width and signedness of a C integer type name, (0, false) when it is none.</summary>
    public static (int Bits, bool Signed) IntegerBits(string type) => type switch
    {
        "char" or "signed char" or "int8_t" => (8, true),
        "unsigned char" or "uint8_t" => (8, false),
        "short" or "signed short" or "short int" or "int16_t" => (16, true),
        "unsigned short" or "unsigned short int" or "uint16_t" => (16, false),
        "int" or "signed" or "signed int" or "int32_t" => (32, true),
        "unsigned" or "unsigned int" or "uint32_t" => (32, false),
        "long" or "long int" or "signed long" or "long long" or "long long int" or "signed long long" or "int64_t" or "intptr_t" or "ssize_t" => (64, true),
        "unsigned long" or "unsigned long int" or "unsigned long long" or "unsigned long long int" or "uint64_t" or "uintptr_t" or "size_t" => (64, false),
        _ => (0, false),
    };
}
