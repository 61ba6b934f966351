using System.Buffers.Binary;
using System.Net;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

/// <summary>
/// snoop's three ways of printing a frame: the one-line summary (default), one line per layer
/// (-V) and the full header detail (-v). Each is a walk down the layers, as snoop's interpreters
/// are: every layer adds a summary line and, in detail mode, a block of "PROTO:  " lines. A layer
/// that is cut short says so and stops the walk (SnoopFilter.cs rule 1).
/// </summary>
public static partial class SnoopFormat
{
    /// <summary>
    /// What the interpreters found in one frame: the names for snoop's "src -> dst" column (src_name
    /// and dst_name, "?" and "*" until a layer knows them, as snoop_display.c's process_pkt starts
    /// them), the VLAN ID of a tagged frame (0 if untagged) and one summary line per layer, outermost
    /// first; the last is the one a plain summary shows.
    /// </summary>
    public readonly record struct Interpretation(string Source, string Destination, int VlanId, IReadOnlyList<string> Lines);

    /// <summary>Runs the interpreters over a frame in summary mode (snoop's F_SUM).</summary>
    public static Interpretation Interpret(ReadOnlySpan<byte> frame)
    {
        var walk = new Walk(detail: false);
        var f = new FrameLayout(frame);
        walk.Ether(in f);
        return new Interpretation(walk.SrcName ?? "?", walk.DstName, f.Tagged ? f.VlanId : 0, walk.SumLines);
    }

    /// <summary>
    /// snoop.c's "src -> dst" column: "%12s -> %-12s " (show_pktinfo, F_WHO).
    /// </summary>
    public static string Who(string source, string destination) => $"{source,12} -> {destination,-12} ";

    /// <summary>
    /// The summary line without number or time, as snoop.c's show_pktinfo prints it: "VLAN#N: " for
    /// a tagged frame, the "src -> dst" column, then the deepest layer's line, e.g.
    /// "   192.0.2.1 -> 192.0.2.2    UDP D=9 S=1234 LEN=72".
    /// </summary>
    public static string Summary(ReadOnlySpan<byte> frame)
    {
        var i = Interpret(frame);
        string vlan = i.VlanId != 0 ? $"VLAN#{i.VlanId}: " : "";
        return vlan + Who(i.Source, i.Destination) + i.Lines[^1];
    }

    /// <summary>snoop -V: one summary line per layer, joined with '\n'.</summary>
    public static string VerboseSummary(ReadOnlySpan<byte> frame)
    {
        var walk = new Walk(detail: false);
        var f = new FrameLayout(frame);
        walk.Ether(in f);
        return string.Join('\n', walk.SumLines);
    }

    /// <summary>
    /// snoop -v: every header field, one "PROTO:  " line each, joined with '\n'. The number and the
    /// time (nanoseconds of virtual time) go into the Ether block's "Packet N arrived at" line.
    /// </summary>
    public static string Verbose(ReadOnlySpan<byte> frame, int number, long timestampNs)
    {
        var walk = new Walk(detail: true) { Number = number, TimestampNs = timestampNs };
        var f = new FrameLayout(frame);
        walk.Ether(in f);
        return string.Join('\n', walk.Lines);
    }

    internal static string EtherTypeName(ushort type) => type switch
    {
        EtherType.Ipv4 => "IP",
        EtherType.Arp => "ARP",
        FrameLayout.EtherTypeRarp => "RARP",
        EtherType.Ipv6 => "IPv6",
        EtherType.Vlan => "VLAN",
        0x88CC => "LLDP",
        0x8808 => "PAUSE",
        _ => "Unknown",
    };

    internal static string ProtocolName(byte protocol) => protocol switch
    {
        0 => "IPv6-HopOpts",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        43 => "IPv6-Route",
        44 => "IPv6-Frag",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "IPv6-NoNxt",
        60 => "IPv6-Opts",
        89 => "OSPF",
        132 => "SCTP",
        _ => "Unknown",
    };

    internal static string EtherName(MacAddress mac)
        => mac.IsBroadcast ? "(broadcast)" : mac.IsGroup ? "(multicast)" : mac.ToString();

    internal static string Ipv4Text(uint raw)
        => $"{raw >> 24}.{(raw >> 16) & 0xFF}.{(raw >> 8) & 0xFF}.{raw & 0xFF}";

    internal static string Ipv6Text(ReadOnlySpan<byte> sixteen) => new IPAddress(sixteen).ToString();

    /// <summary>
    /// snoop_ether.c's "Packet N arrived at" time, "%d:%02d:%d.%05d": hour of the day, minute,
    /// second (not padded), hundred-thousandths; in UTC (SnoopDisplay.cs rule 5).
    /// </summary>
    internal static string ArrivalTime(long ns)
    {
        if (ns < 0) ns = 0;
        long totalSeconds = ns / Time.Second;
        long hundredThousandths = ns % Time.Second / (10 * Time.Microsecond);
        return $"{totalSeconds / 3600 % 24}:{totalSeconds / 60 % 60:00}:{totalSeconds % 60}.{hundredThousandths:00000}";
    }

    /// <summary>snoop's getflag(): "..1. .... = text" for the lowest set bit of mask in an octet.</summary>
    internal static string Flag(int value, int mask, string whenSet, string whenClear)
    {
        Span<char> bits = stackalloc char[9];
        ".... ....".AsSpan().CopyTo(bits);
        int bit = BitOperationsLowest(mask);
        int column = 7 - bit;
        int index = column < 4 ? column : column + 1;
        bool set = (value & (1 << bit)) != 0;
        bits[index] = set ? '1' : '0';
        return $"{bits} = {(set ? whenSet : whenClear)}";
    }

    private static int BitOperationsLowest(int mask) => mask == 0 ? 0 : System.Numerics.BitOperations.TrailingZeroCount(mask);

    private static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16BigEndian(b[at..]);
    private static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32BigEndian(b[at..]);
}
