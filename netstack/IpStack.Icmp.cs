using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

// ICMP (RFC 792, RFC 1191 path MTU discovery) and ICMPv6 (RFC 4443): echo, errors received (handed
// to the transport that sent the quoted datagram) and errors sent (RFC 1122 3.2.2, RFC 4443 2.4,
// one rate limit for both). Messages are read and written through IcmpV4Repr and IcmpV6Repr; NDP,
// which rides on ICMPv6, is in IpStack.Ndp.cs.
public sealed partial class IpStack
{
    /// <summary>ICMP errors: a token bucket of this many, refilled one per interval (illumos icmp_err_burst/interval).</summary>
    public const int IcmpErrorBurst = 10;
    public const long IcmpErrorInterval = 100 * Time.Millisecond;

    private int _icmpTokens = IcmpErrorBurst;
    private long _icmpRefill;

    // ---- ICMP -----------------------------------------------------------------------------------

    private void ReceiveIcmpV4(IpInterface ifc, Packet p, IpAddress src, IpAddress dst, byte ttl)
    {
        Icmp.icmpInMsgs++;
        var e = IcmpV4Repr.Parse(p.Data, ChecksumCaps.All, out var icmp);
        if (e != WireError.None)
        {
            if (e == WireError.BadChecksum) Icmp.icmpInCksumErrs++;
            else if (e == WireError.Unrecognized) Icmp.icmpInUnknowns++;
            else Icmp.icmpInErrors++;
            p.Free();
            return;
        }
        switch (icmp.Type)
        {
            case IcmpType.EchoRequest:
            {
                Icmp.icmpInEchos++;
                var from = dst;
                if (!_local.ContainsKey(dst))
                {
                    var a = InterfaceAddress(ifc, v4: true, toward: src);
                    if (a == null) { p.Free(); return; }
                    from = a.Address;
                }
                var reply = icmp;
                reply.Type = IcmpType.EchoReply;
                reply.TryEmit(p.Data); // in place: the echoed data is already behind the header
                Icmp.icmpOutMsgs++;
                Icmp.icmpOutEchoReps++;
                SendV4(p, from, src, IpProtocol.Icmp, DefaultTtl, dontFragment: false, null);
                return;
            }
            case IcmpType.EchoReply:
                Icmp.icmpInEchoReps++;
                DeliverToIcmpSockets(v6: false, p.Data, src, dst, ttl, icmp.Identifier, isError: false);
                p.Free();
                return;
            default:
                if (icmp.Type == IcmpType.DestinationUnreachable) Icmp.icmpInDestUnreachs++;
                else if (icmp.Type == IcmpType.TimeExceeded) Icmp.icmpInTimeExcds++;
                else Icmp.icmpInParmProbs++;
                HandleIcmpErrorV4(icmp.Type, icmp.Code, icmp.NextHopMtu, icmp.Data);
                DeliverToIcmpSockets(v6: false, p.Data, src, dst, ttl, 0, isError: true);
                p.Free();
                return;
        }
    }

    private void HandleIcmpErrorV4(byte type, byte code, int mtu, Span<byte> quoted)
    {
        // The quote is the header we sent and at least 8 bytes of what followed (RFC 792).
        if (!Ipv4View.TryCreateHeader(quoted, out var q) || q.Payload.Length < 8)
        {
            Icmp.icmpInBadQuote++;
            return;
        }
        IcmpErrorKind kind;
        if (type == IcmpType.TimeExceeded) kind = IcmpErrorKind.TimeExceeded;
        else if (type == IcmpType.ParameterProblem) return;
        else
        {
            kind = code switch
            {
                0 or 6 => IcmpErrorKind.NetUnreachable,
                2 => IcmpErrorKind.ProtocolUnreachable,
                3 => IcmpErrorKind.PortUnreachable,
                4 => IcmpErrorKind.FragmentationNeeded,
                9 or 10 or 13 => IcmpErrorKind.AdminProhibited,
                _ => IcmpErrorKind.HostUnreachable,
            };
        }
        if (kind == IcmpErrorKind.FragmentationNeeded)
        {
            Icmp.icmpInFragNeeded++;
            // RFC 1191 section 5: an old router sends 0; assume the next plateau below the quoted length.
            if (mtu == 0) mtu = Math.Max(68, q.TotalLength >= 1500 ? 1492 : 576);
            LearnPathMtu(q.Destination, mtu);
        }
        _transports[q.Protocol]?.ReceiveError(kind, mtu, q.Source, q.Destination, q.Payload);
    }

    private bool TakeIcmpToken()
    {
        long now = Scheduler.Now;
        if (now >= _icmpRefill)
        {
            long periods = (now - _icmpRefill) / IcmpErrorInterval + 1;
            _icmpTokens = (int)Math.Min(IcmpErrorBurst, _icmpTokens + periods);
            _icmpRefill = now + IcmpErrorInterval;
        }
        if (_icmpTokens == 0) return false;
        _icmpTokens--;
        return true;
    }

    /// <summary>
    /// Sends an ICMP error about <paramref name="original"/> (an IPv4 datagram from its header on),
    /// obeying RFC 1122 3.2.2: never about an ICMP error, a broadcast or multicast, a non-initial
    /// fragment, or a datagram whose source does not name a single host. Rate limited.
    /// <paramref name="nextHopMtu"/> goes with fragmentation needed (RFC 1191).
    /// </summary>
    internal void SendIcmpErrorV4(Span<byte> original, byte type, byte code, ushort nextHopMtu = 0, bool checkFragment = true)
    {
        if (!Ipv4View.TryCreateHeader(original, out var ip)) return;
        var src = ip.Source;
        var dst = ip.Destination;
        bool suppressed = src.IsUnspecified || src.IsMulticast || src == IpAddress.BroadcastV4 || src.IsLoopback
            || dst.IsMulticast || dst == IpAddress.BroadcastV4 || IsForUsBroadcast(dst)
            || (checkFragment && ip.FragmentOffset != 0);
        if (!suppressed && ip.Protocol == IpProtocol.Icmp && IcmpView.TryReadType(ip.Payload, out byte t))
            suppressed = t != IcmpType.EchoRequest && t != IcmpType.EchoReply;
        if (suppressed)
        {
            Icmp.icmpOutSuppressed++;
            return;
        }
        if (!TakeIcmpToken())
        {
            Icmp.icmpOutRateLimited++;
            return;
        }
        // Quote the header and as much as keeps the error within 576 bytes (RFC 1812 4.3.2.3).
        int quote = Math.Min(original.Length, 576 - Ipv4Repr.HeaderLength - IcmpV4Repr.HeaderLength);
        var error = new IcmpV4Repr { Type = type, Code = code, NextHopMtu = nextHopMtu, Data = original[..quote] };
        var p = Pool.Rent(error.BufferLength);
        if (p == null) { Counters.noBuffers++; return; }
        error.TryEmit(p.Data);
        Icmp.icmpOutMsgs++;
        Icmp.icmpOutErrors++;
        if (type == IcmpType.DestinationUnreachable)
        {
            Icmp.icmpOutDestUnreachs++;
            if (code == 4) Icmp.icmpOutFragNeeded++;
        }
        else if (type == IcmpType.TimeExceeded) Icmp.icmpOutTimeExcds++;
        IpAddress from = IsLocalAddress(dst) ? dst : default;
        if (from.IsUnspecified && TrySelectSource(src, out var s)) from = s;
        SendV4(p, from, src, IpProtocol.Icmp, DefaultTtl, dontFragment: false, null);
    }

    // ---- ICMPv6 ---------------------------------------------------------------------------------

    private void ReceiveIcmpV6(IpInterface ifc, Packet p, IpAddress src, IpAddress dst, byte hopLimit)
    {
        Icmp6.icmpInMsgs++;
        if (!IcmpView.TryCreate(p.Data, out var view))
        {
            Icmp6.icmpInErrors++;
            p.Free();
            return;
        }
        var e = IcmpV6Repr.Parse(view, src, dst, ChecksumCaps.All, out var icmp);
        if (e == WireError.BadChecksum)
        {
            Icmp6.icmpInCksumErrs++;
            p.Free();
            return;
        }
        byte type = view.Type;
        if (type is >= IcmpType.RouterSolicitation and <= IcmpType.NeighborAdvertisement)
        {
            // RFC 4861 7.1.1: NDP from off-link (hop limit below 255), with a code, short, or with
            // a bad option is invalid.
            if (hopLimit != 255 || e != WireError.None || ifc.IsLoopback) Counters6.ndpInMalformed++;
            else ReceiveNdp(ifc, icmp, src);
            p.Free();
            return;
        }
        if (e != WireError.None)
        {
            if (e == WireError.Unrecognized) Icmp6.icmpInUnknowns++;
            else Icmp6.icmpInErrors++;
            p.Free();
            return;
        }
        switch (type)
        {
            case IcmpType.V6EchoRequest:
            {
                Icmp6.icmpInEchos++;
                var from = dst;
                if (dst.IsMulticast)
                {
                    var a = InterfaceAddress(ifc, v4: false, preferGlobal: !src.IsLinkLocalV6, toward: src);
                    if (a == null) { p.Free(); return; }
                    from = a.Address;
                }
                var reply = icmp;
                reply.Type = IcmpType.V6EchoReply;
                reply.TryEmit(p.Data, from, src); // in place: the echoed data is already behind the header
                Icmp6.icmpOutMsgs++;
                Icmp6.icmpOutEchoReps++;
                SendV6(p, from, src, IpProtocol.Icmpv6, DefaultTtl, null);
                return;
            }
            case IcmpType.V6EchoReply:
                Icmp6.icmpInEchoReps++;
                DeliverToIcmpSockets(v6: true, p.Data, src, dst, hopLimit, icmp.Identifier, isError: false);
                p.Free();
                return;
            default:
                if (type == IcmpType.V6DestinationUnreachable) Icmp6.icmpInDestUnreachs++;
                else if (type == IcmpType.V6PacketTooBig) Icmp6.icmpInFragNeeded++;
                else if (type == IcmpType.V6TimeExceeded) Icmp6.icmpInTimeExcds++;
                else Icmp6.icmpInParmProbs++;
                HandleIcmpErrorV6(type, icmp.Code, (int)Math.Min(icmp.Mtu, int.MaxValue), icmp.Data);
                DeliverToIcmpSockets(v6: true, p.Data, src, dst, hopLimit, 0, isError: true);
                p.Free();
                return;
        }
    }

    private void HandleIcmpErrorV6(byte type, byte code, int mtu, Span<byte> quoted)
    {
        if (!Ipv6View.TryCreateHeader(quoted, out var q) || q.Payload.Length < 8)
        {
            Icmp6.icmpInBadQuote++;
            return;
        }
        var qdst = q.Destination;
        IcmpErrorKind kind;
        switch (type)
        {
            case IcmpType.V6PacketTooBig:
                kind = IcmpErrorKind.PacketTooBig;
                LearnPathMtu(qdst, mtu);
                break;
            case IcmpType.V6TimeExceeded: kind = IcmpErrorKind.TimeExceeded; break;
            case IcmpType.V6DestinationUnreachable:
                kind = code switch { 0 => IcmpErrorKind.NetUnreachable, 1 => IcmpErrorKind.AdminProhibited, 4 => IcmpErrorKind.PortUnreachable, _ => IcmpErrorKind.HostUnreachable };
                break;
            default: return;
        }
        _transports[q.NextHeader]?.ReceiveError(kind, mtu, q.Source, qdst, q.Payload);
    }

    /// <summary>Sends an ICMPv6 error about <paramref name="original"/> (IPv6 header onward), per
    /// RFC 4443 2.4: never about an error, never to a multicast source; packet too big and
    /// parameter problems may answer multicast. Rate limited. <paramref name="mtuOrPointer"/> is
    /// the MTU of a packet too big, the pointer of a parameter problem.</summary>
    internal void SendIcmpErrorV6(Span<byte> original, byte type, byte code, uint mtuOrPointer)
    {
        if (!Ipv6View.TryCreateHeader(original, out var ip)) return;
        var src = ip.Source;
        var dst = ip.Destination;
        bool suppressed = src.IsUnspecified || src.IsMulticast || (dst.IsMulticast && type != IcmpType.V6PacketTooBig);
        if (!suppressed && ip.NextHeader == IpProtocol.Icmpv6 && IcmpView.TryReadType(ip.Payload, out byte t))
            suppressed = t < 128; // RFC 4443 2.1: types below 128 are errors
        if (suppressed) { Icmp6.icmpOutSuppressed++; return; }
        if (!TakeIcmpToken()) { Icmp6.icmpOutRateLimited++; return; }
        int quote = Math.Min(original.Length, MinimumMtuV6 - Ipv6Repr.HeaderLength - IcmpView.HeaderLength);
        var error = new IcmpV6Repr { Type = type, Code = code, Mtu = mtuOrPointer, Pointer = mtuOrPointer, Data = original[..quote] };
        var p = Pool.Rent(error.BufferLength);
        if (p == null) { Counters.noBuffers++; return; }
        IpAddress from = IsLocalAddress(dst) ? dst : default;
        if (from.IsUnspecified && !TrySelectSource(src, out from)) { p.Free(); return; }
        error.TryEmit(p.Data, from, src);
        Icmp6.icmpOutMsgs++;
        Icmp6.icmpOutErrors++;
        if (type == IcmpType.V6DestinationUnreachable) Icmp6.icmpOutDestUnreachs++;
        else if (type == IcmpType.V6TimeExceeded) Icmp6.icmpOutTimeExcds++;
        else if (type == IcmpType.V6PacketTooBig) Icmp6.icmpOutFragNeeded++;
        SendV6(p, from, src, IpProtocol.Icmpv6, DefaultTtl, null);
    }
}
