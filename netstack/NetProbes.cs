/*
 * The ip, tcp and udp DTrace providers (issue 14; kernel/Trace/Probe.cs).
 *
 * Every zone's IpStack fires the same probes (Probe.cs rule 5), as illumos's SDT probes of ip are
 * one set for all netstacks: each firing names its stack's zone (zonename) and its thread (self->):
 * the TCP connection for tcp probes, the UDP socket for a delivered datagram, else the stack.
 *
 * The arguments are illumos's stable structures (the Dynamic Tracing Guide's ip, tcp and udp
 * provider chapters; the translators in /usr/lib/dtrace/ip.d, tcp.d, udp.d):
 *   ip:::send, ip:::receive        args[0] pktinfo_t *, [1] csinfo_t *, [2] ipinfo_t *, [3] ifinfo_t *,
 *                                  [4] ipv4info_t * (NULL for IPv6), [5] ipv6info_t * (NULL for IPv4)
 *   tcp:::send, receive, connect-request, connect-established, connect-refused, accept-established,
 *   accept-refused                 [0] pktinfo_t *, [1] csinfo_t *, [2] ipinfo_t *, [3] tcpsinfo_t *,
 *                                  [4] tcpinfo_t *
 *   tcp:::state-change             [0] NULL, [1] csinfo_t *, [2] NULL, [3] tcpsinfo_t * (the new
 *                                  state), [4] NULL, [5] tcplsinfo_t * (the previous state)
 *   udp:::send, udp:::receive      [0] pktinfo_t *, [1] csinfo_t *, [2] ipinfo_t *, [3] udpsinfo_t *,
 *                                  [4] udpinfo_t *
 *
 * Rules
 *   1. Where the probes fire: ip:::send once a datagram this stack originates has its IP header
 *      (before fragmentation; forwarded datagrams do not fire), ip:::receive when a datagram is
 *      delivered locally (after reassembly); tcp:::send/receive for every segment TCP hands to or
 *      gets from IP, connection or not; udp:::send for every datagram, udp:::receive for one
 *      delivered to a socket. connect-request with the SYN of an active open, connect-established
 *      and accept-established when a handshake completes, connect-refused with the RST that answers
 *      a SYN, accept-refused with the RST sent for a SYN to a closed port.
 *   2. Zero cost when disabled: a site tests its probe's Enabled field and nothing else. When it
 *      fires it copies the headers into the stack's NetFiring (preallocated, one per provider) and
 *      passes that object as every typed argument; members are computed when a clause reads them.
 *   3. tcps_state and tcplsinfo_t's tcps_state use illumos's values (TCP_STATE_CLOSED -6 ..
 *      TCP_STATE_TIME_WAIT 6, tcp.d), so D's TCP_STATE_* inlines compare with them.
 *
 *   4. Each probe sits under the illumos function whose DTRACE_IP7/DTRACE_TCP5/DTRACE_UDP5 call
 *      fires it (illumos-gate: ip_input.c's ill_input_short_v4 and ip6_input.c's _v6 for receive;
 *      ip.c's ip_xmit for send; tcp_input.c's tcp_input_data for a connection's segments and its
 *      connect-established/-refused and accept-established, tcp_input_listener for a segment to a
 *      listener; tcp_output.c's tcp_send_data for a connection's segments, tcp_xmit_early_reset
 *      for a reset that belongs to no connection and its accept-refused, tcp_xmit_listeners_reset
 *      for a segment nobody takes; tcp.c's tcp_do_connect for connect-request; udp.c's udp_input,
 *      udp_output_connected and udp_output_newdst). Where illumos fires one name from several
 *      functions, so do these (tcp:::send matches two probes); the probes added for that come
 *      after the first twelve, whose IDs do not move. state-change is one probe, tcp_set_state
 *      (this project's: illumos fires it from a dozen functions). Match on provider and name
 *      (tcp:::send) as the guide's one-liners do.
 */
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack;

/// <summary>The ip, tcp and udp probes of one host (the theory statement above).</summary>
public sealed class NetProbes
{
    public readonly Probe IpSend, IpReceive, IpReceiveV6;
    public readonly Probe TcpSend, TcpSendNoConnection, TcpReceive, TcpReceiveListener, TcpReceiveNoConnection, TcpStateChange,
        TcpConnectRequest, TcpConnectEstablished, TcpConnectRefused, TcpAcceptEstablished, TcpAcceptRefused;
    public readonly Probe UdpSend, UdpSendConnected, UdpReceive;

    /// <summary>Probes no consumer can reach: a stack's until it is given its host's (rule 2).</summary>
    public static readonly NetProbes None = new(new ProbeRegistry());

    private static readonly ConditionalWeakTable<ProbeRegistry, NetProbes> s_byRegistry = new();

    /// <summary>The host's probes, created in its registry the first time a stack asks.</summary>
    public static NetProbes For(ProbeRegistry registry) => s_byRegistry.GetValue(registry, static r => new NetProbes(r));

    private NetProbes(ProbeRegistry r)
    {
        var ip = new ProbeType?[] { NetTypes.PktInfo, NetTypes.CsInfo, NetTypes.IpInfo, NetTypes.IfInfo, NetTypes.Ipv4Info, NetTypes.Ipv6Info };
        var tcp = new ProbeType?[] { NetTypes.PktInfo, NetTypes.CsInfo, NetTypes.IpInfo, NetTypes.TcpsInfo, NetTypes.TcpInfo };
        var udp = new ProbeType?[] { NetTypes.PktInfo, NetTypes.CsInfo, NetTypes.IpInfo, NetTypes.UdpsInfo, NetTypes.UdpInfo };
        // The functions are illumos's that fire each probe (rule 4); probes added since the first
        // ones come last, so the first ones keep their IDs.
        IpSend = r.AddShared("ip", "ip", "ip_xmit", "send", ip);
        IpReceive = r.AddShared("ip", "ip", "ill_input_short_v4", "receive", ip);
        TcpSend = r.AddShared("tcp", "ip", "tcp_send_data", "send", tcp);
        TcpReceive = r.AddShared("tcp", "ip", "tcp_input_data", "receive", tcp);
        TcpStateChange = r.AddShared("tcp", "ip", "tcp_set_state", "state-change", null, NetTypes.CsInfo, null, NetTypes.TcpsInfo, null, NetTypes.TcplsInfo);
        TcpConnectRequest = r.AddShared("tcp", "ip", "tcp_do_connect", "connect-request", tcp);
        TcpConnectEstablished = r.AddShared("tcp", "ip", "tcp_input_data", "connect-established", tcp);
        TcpConnectRefused = r.AddShared("tcp", "ip", "tcp_input_data", "connect-refused", tcp);
        TcpAcceptEstablished = r.AddShared("tcp", "ip", "tcp_input_data", "accept-established", tcp);
        TcpAcceptRefused = r.AddShared("tcp", "ip", "tcp_xmit_early_reset", "accept-refused", tcp);
        UdpSend = r.AddShared("udp", "ip", "udp_output_newdst", "send", udp);
        UdpReceive = r.AddShared("udp", "ip", "udp_input", "receive", udp);
        IpReceiveV6 = r.AddShared("ip", "ip", "ill_input_short_v6", "receive", ip);
        TcpSendNoConnection = r.AddShared("tcp", "ip", "tcp_xmit_early_reset", "send", tcp);
        TcpReceiveListener = r.AddShared("tcp", "ip", "tcp_input_listener", "receive", tcp);
        TcpReceiveNoConnection = r.AddShared("tcp", "ip", "tcp_xmit_listeners_reset", "receive", tcp);
        UdpSendConnected = r.AddShared("udp", "ip", "udp_output_connected", "send", udp);
    }
}

/// <summary>
/// One firing's data (rule 2): the IP header (or the addresses when TCP or UDP fires before IP has
/// built one), the transport header, the connection and the stack. The getters of NetTypes read it.
/// </summary>
internal sealed class NetFiring
{
    public readonly byte[] Ip = new byte[60];
    public readonly byte[] L4 = new byte[60];
    public int IpHeaderLength, L4Length, PayloadLength;
    public bool V6;
    public IpAddress Source, Destination;
    public IpInterface? Interface;
    public IpStack? Stack;
    public TcpConnection? Connection;
    public TcpState State, PreviousState;
    public UdpSocket? Socket;

    /// <summary>From an IP header (ip probes): data is the datagram from its IP header on.</summary>
    public void FromIpHeader(ReadOnlySpan<byte> data, bool v6, IpInterface? ifc)
    {
        V6 = v6;
        Interface = ifc;
        if (v6)
        {
            IpHeaderLength = Ipv6View.HeaderLength;
            data[..IpHeaderLength].CopyTo(Ip);
            Source = IpAddress.Read(Ip.AsSpan(8), v4: false);
            Destination = IpAddress.Read(Ip.AsSpan(24), v4: false);
            PayloadLength = BinaryPrimitives.ReadUInt16BigEndian(Ip.AsSpan(4));
        }
        else
        {
            IpHeaderLength = (data[0] & 0xF) * 4;
            data[..IpHeaderLength].CopyTo(Ip);
            Source = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(Ip.AsSpan(12)));
            Destination = IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(Ip.AsSpan(16)));
            PayloadLength = BinaryPrimitives.ReadUInt16BigEndian(Ip.AsSpan(2)) - IpHeaderLength;
        }
    }

    /// <summary>From a transport segment and its addresses (tcp and udp probes).</summary>
    public void FromSegment(ReadOnlySpan<byte> segment, int headerLength, IpAddress source, IpAddress destination)
    {
        V6 = !source.IsV4;
        Source = source;
        Destination = destination;
        PayloadLength = segment.Length;
        L4Length = Math.Min(headerLength, L4.Length);
        segment[..L4Length].CopyTo(L4);
    }

    public ushort L4U16(int at) => L4Length >= at + 2 ? BinaryPrimitives.ReadUInt16BigEndian(L4.AsSpan(at)) : (ushort)0;
    public uint L4U32(int at) => L4Length >= at + 4 ? BinaryPrimitives.ReadUInt32BigEndian(L4.AsSpan(at)) : 0;

    /// <summary>illumos's TCPS_* values (tcp.d's TCP_STATE_*), rule 3.</summary>
    public static long IllumosState(TcpState s) => s switch
    {
        TcpState.Closed => -6,
        TcpState.Listen => -3,
        TcpState.SynSent => -2,
        TcpState.SynReceived => -1,
        TcpState.Established => 0,
        TcpState.CloseWait => 1,
        TcpState.FinWait1 => 2,
        TcpState.Closing => 3,
        TcpState.LastAck => 4,
        TcpState.FinWait2 => 5,
        _ => 6,
    };
}

/// <summary>The stable structures' members (rule 2), as the guide lists them.</summary>
internal static class NetTypes
{
    private static NetFiring F(object o) => (NetFiring)o;

    public static readonly ProbeType PktInfo = new("pktinfo_t",
        ProbeMember.Integer("pkt_addr", "uintptr_t", static _ => 0));

    public static readonly ProbeType CsInfo = new("csinfo_t",
        ProbeMember.Integer("cs_addr", "uintptr_t", static _ => 0),
        ProbeMember.Integer("cs_cid", "uint64_t", static o => F(o).Connection?.ProbeId ?? 0),
        ProbeMember.Integer("cs_pid", "pid_t", static _ => 0),
        ProbeMember.Integer("cs_zoneid", "zoneid_t", static o => F(o).Stack?.Instance ?? 0));

    public static readonly ProbeType IpInfo = new("ipinfo_t",
        ProbeMember.Integer("ip_ver", "uint8_t", static o => F(o).V6 ? 6 : 4),
        ProbeMember.Integer("ip_plength", "uint32_t", static o => F(o).PayloadLength),
        ProbeMember.IpAddress("ip_saddr", static o => F(o).Source.ToString()),
        ProbeMember.IpAddress("ip_daddr", static o => F(o).Destination.ToString()));

    public static readonly ProbeType IfInfo = new("ifinfo_t",
        ProbeMember.Text("if_name", static o => F(o).Interface?.Name ?? "<null>"),
        ProbeMember.Integer("if_local", "int8_t", static o => F(o).Interface is { IsLoopback: true } ? 1 : 0),
        ProbeMember.Integer("if_ipstack", "netstackid_t", static o => F(o).Stack?.Instance ?? 0),
        ProbeMember.Integer("if_addr", "uintptr_t", static _ => 0));

    public static readonly ProbeType Ipv4Info = new("ipv4info_t",
        ProbeMember.Integer("ipv4_ver", "uint8_t", static o => F(o).Ip[0] >> 4),
        ProbeMember.Integer("ipv4_ihl", "uint8_t", static o => (F(o).Ip[0] & 0xF) * 4),
        ProbeMember.Integer("ipv4_tos", "uint8_t", static o => F(o).Ip[1]),
        ProbeMember.Integer("ipv4_length", "uint16_t", static o => BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip.AsSpan(2))),
        ProbeMember.Integer("ipv4_ident", "uint16_t", static o => BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip.AsSpan(4))),
        ProbeMember.Integer("ipv4_flags", "uint8_t", static o => F(o).Ip[6] & 0xE0),
        ProbeMember.Integer("ipv4_offset", "uint16_t", static o => (BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip.AsSpan(6)) & 0x1FFF) * 8),
        ProbeMember.Integer("ipv4_ttl", "uint8_t", static o => F(o).Ip[8]),
        ProbeMember.Integer("ipv4_protocol", "uint8_t", static o => F(o).Ip[9]),
        ProbeMember.Text("ipv4_protostr", static o => ProtocolName(F(o).Ip[9])),
        ProbeMember.Integer("ipv4_checksum", "uint16_t", static o => BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip.AsSpan(10))),
        ProbeMember.Integer("ipv4_src", "ipaddr_t", static o => BinaryPrimitives.ReadUInt32LittleEndian(F(o).Ip.AsSpan(12))),
        ProbeMember.Integer("ipv4_dst", "ipaddr_t", static o => BinaryPrimitives.ReadUInt32LittleEndian(F(o).Ip.AsSpan(16))),
        ProbeMember.IpAddress("ipv4_saddr", static o => F(o).Source.ToString()),
        ProbeMember.IpAddress("ipv4_daddr", static o => F(o).Destination.ToString()));

    public static readonly ProbeType Ipv6Info = new("ipv6info_t",
        ProbeMember.Integer("ipv6_ver", "uint8_t", static o => F(o).Ip[0] >> 4),
        ProbeMember.Integer("ipv6_tclass", "uint8_t", static o => (BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip) >> 4) & 0xFF),
        ProbeMember.Integer("ipv6_flow", "uint32_t", static o => BinaryPrimitives.ReadUInt32BigEndian(F(o).Ip) & 0xFFFFF),
        ProbeMember.Integer("ipv6_plen", "uint16_t", static o => BinaryPrimitives.ReadUInt16BigEndian(F(o).Ip.AsSpan(4))),
        ProbeMember.Integer("ipv6_nexthdr", "uint8_t", static o => F(o).Ip[6]),
        ProbeMember.Text("ipv6_nextstr", static o => ProtocolName(F(o).Ip[6])),
        ProbeMember.Integer("ipv6_hlim", "uint8_t", static o => F(o).Ip[7]),
        ProbeMember.IpAddress("ipv6_saddr", static o => F(o).Source.ToString()),
        ProbeMember.IpAddress("ipv6_daddr", static o => F(o).Destination.ToString()));

    public static readonly ProbeType TcpInfo = new("tcpinfo_t",
        ProbeMember.Integer("tcp_sport", "uint16_t", static o => F(o).L4U16(0)),
        ProbeMember.Integer("tcp_dport", "uint16_t", static o => F(o).L4U16(2)),
        ProbeMember.Integer("tcp_seq", "uint32_t", static o => F(o).L4U32(4)),
        ProbeMember.Integer("tcp_ack", "uint32_t", static o => F(o).L4U32(8)),
        ProbeMember.Integer("tcp_offset", "uint8_t", static o => F(o).L4Length > 12 ? (F(o).L4[12] >> 4) * 4 : 0),
        ProbeMember.Integer("tcp_flags", "uint8_t", static o => F(o).L4Length > 13 ? F(o).L4[13] : 0),
        ProbeMember.Integer("tcp_window", "uint16_t", static o => F(o).L4U16(14)),
        ProbeMember.Integer("tcp_checksum", "uint16_t", static o => F(o).L4U16(16)),
        ProbeMember.Integer("tcp_urgent", "uint16_t", static o => F(o).L4U16(18)));

    private static long Conn(object o, Func<TcpConnection, long> get) => F(o).Connection is { } c ? get(c) : 0;

    public static readonly ProbeType TcpsInfo = new("tcpsinfo_t",
        ProbeMember.Integer("tcps_addr", "uintptr_t", static o => F(o).Connection?.ProbeId ?? 0),
        ProbeMember.Integer("tcps_local", "int", static o => F(o).Connection is { } c && (c.Key.Remote.IsLoopback || F(o).Stack?.IsLocalAddress(c.Key.Remote) == true) ? 1 : 0),
        ProbeMember.Integer("tcps_active", "int", static o => Conn(o, static c => c.ProbeActive ? 1 : 0)),
        ProbeMember.Integer("tcps_lport", "uint16_t", static o => F(o).Connection?.Key.LocalPort ?? 0),
        ProbeMember.Integer("tcps_rport", "uint16_t", static o => F(o).Connection?.Key.RemotePort ?? 0),
        ProbeMember.IpAddress("tcps_laddr", static o => F(o).Connection?.Key.Local.ToString() ?? ""),
        ProbeMember.IpAddress("tcps_raddr", static o => F(o).Connection?.Key.Remote.ToString() ?? ""),
        ProbeMember.Integer("tcps_state", "int32_t", static o => F(o).Connection == null ? -6 : NetFiring.IllumosState(F(o).State)),
        ProbeMember.Integer("tcps_iss", "uint32_t", static o => Conn(o, static c => c.ProbeIss)),
        ProbeMember.Integer("tcps_suna", "uint32_t", static o => Conn(o, static c => c.ProbeSndUna)),
        ProbeMember.Integer("tcps_snxt", "uint32_t", static o => Conn(o, static c => c.ProbeSndNxt)),
        ProbeMember.Integer("tcps_rack", "uint32_t", static o => Conn(o, static c => c.ProbeRcvAcked)),
        ProbeMember.Integer("tcps_rnxt", "uint32_t", static o => Conn(o, static c => c.ProbeRcvNxt)),
        ProbeMember.Integer("tcps_swnd", "uint32_t", static o => Conn(o, static c => c.SendWindow)),
        ProbeMember.Integer("tcps_snd_ws", "int32_t", static o => Conn(o, static c => c.SendScale)),
        ProbeMember.Integer("tcps_rwnd", "uint32_t", static o => Conn(o, static c => c.ReceiveWindow)),
        ProbeMember.Integer("tcps_rcv_ws", "int32_t", static o => Conn(o, static c => c.ReceiveScale)),
        ProbeMember.Integer("tcps_cwnd", "uint32_t", static o => Conn(o, static c => Math.Min(uint.MaxValue, c.CongestionWindow))),
        ProbeMember.Integer("tcps_cwnd_ssthresh", "uint32_t", static o => Conn(o, static c => Math.Min(uint.MaxValue, c.SlowStartThreshold))),
        ProbeMember.Integer("tcps_rto", "uint32_t", static o => Conn(o, static c => c.Rto / Kernel.Time.Millisecond)),
        ProbeMember.Integer("tcps_mss", "uint32_t", static o => Conn(o, static c => c.ProbeMss)));

    public static readonly ProbeType TcplsInfo = new("tcplsinfo_t",
        ProbeMember.Integer("tcps_state", "int32_t", static o => NetFiring.IllumosState(F(o).PreviousState)));

    public static readonly ProbeType UdpInfo = new("udpinfo_t",
        ProbeMember.Integer("udp_sport", "uint16_t", static o => F(o).L4U16(0)),
        ProbeMember.Integer("udp_dport", "uint16_t", static o => F(o).L4U16(2)),
        ProbeMember.Integer("udp_length", "uint16_t", static o => F(o).L4U16(4)),
        ProbeMember.Integer("udp_checksum", "uint16_t", static o => F(o).L4U16(6)));

    public static readonly ProbeType UdpsInfo = new("udpsinfo_t",
        ProbeMember.Integer("udps_addr", "uintptr_t", static _ => 0),
        ProbeMember.Integer("udps_lport", "uint16_t", static o => F(o).Socket is { IsBound: true } s ? s.Local.Port : 0),
        ProbeMember.Integer("udps_rport", "uint16_t", static o => F(o).Socket is { IsConnected: true } s ? s.Remote.Port : 0),
        ProbeMember.IpAddress("udps_laddr", static o => F(o).Socket is { IsBound: true } s ? s.Local.Address.ToString() : ""),
        ProbeMember.IpAddress("udps_raddr", static o => F(o).Socket is { IsConnected: true } s ? s.Remote.Address.ToString() : ""));

    private static string ProtocolName(byte p) => p switch
    {
        IpProtocol.Icmp => "ICMP",
        IpProtocol.Tcp => "TCP",
        IpProtocol.Udp => "UDP",
        IpProtocol.Icmpv6 => "ICMPV6",
        _ => p.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
