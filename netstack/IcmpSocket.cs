using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>An ICMP message handed to an <see cref="IcmpSocket"/>: the whole ICMP message, as received.</summary>
public sealed record IcmpMessage(byte Type, byte Code, IpAddress From, IpAddress To, int Ttl, byte[] Data, long Time)
{
    public ushort Identifier => IcmpView.TryCreate(Data, out var m) ? m.Identifier : (ushort)0;
    public ushort Sequence => IcmpView.TryCreate(Data, out var m) ? m.Sequence : (ushort)0;
    /// <summary>For an error: the quoted datagram (IP header onward).</summary>
    public ReadOnlySpan<byte> Body => IcmpView.TryCreate(Data, out var m) ? m.Body : default;

    /// <summary>For an error: the protocol of the quoted datagram and the start of its transport
    /// header (RFC 792 quotes at least 8 bytes); false when the quote holds no IP header of the
    /// error's family.</summary>
    public bool TryReadQuoted(out byte protocol, out Span<byte> transport)
    {
        protocol = 0;
        transport = default;
        if (!IcmpView.TryCreate(Data, out var m)) return false;
        if (From.IsV4)
        {
            if (!Ipv4View.TryCreateHeader(m.Body, out var ip)) return false;
            protocol = ip.Protocol;
            transport = ip.Payload;
        }
        else
        {
            if (!Ipv6View.TryCreateHeader(m.Body, out var ip)) return false;
            protocol = ip.NextHeader;
            transport = ip.Payload;
        }
        return true;
    }
}

/// <summary>
/// A raw ICMP endpoint for ping and traceroute (illumos: a SOCK_RAW IPPROTO_ICMP socket). It sees
/// echo replies carrying its identifier and every ICMP error of its family; the queue is bounded
/// (rule 3) and overflow is counted in icmpSocketOverflows.
/// </summary>
public sealed class IcmpSocket : IDisposable
{
    public const int QueueLimit = 256;
    private readonly IpStack _stack;
    private readonly Queue<IcmpMessage> _queue = new();
    private TaskCompletionSource<IcmpMessage?>? _waiter;
    private KTimer? _waitTimer;
    private CancellationTokenRegistration _cancelReg;

    internal IcmpSocket(IpStack stack, bool v6, ushort identifier)
    {
        _stack = stack; IsV6 = v6; Identifier = identifier;
    }

    public bool IsV6 { get; }
    public ushort Identifier { get; }
    public bool IsClosed { get; private set; }

    internal void Deliver(IcmpMessage m)
    {
        if (_waiter != null)
        {
            var w = _waiter;
            _waiter = null;
            _waitTimer?.Cancel();
            _cancelReg.Dispose();
            w.TrySetResult(m);
            return;
        }
        if (_queue.Count >= QueueLimit)
        {
            (IsV6 ? _stack.Icmp6 : _stack.Icmp).icmpSocketOverflows++;
            return;
        }
        _queue.Enqueue(m);
    }

    /// <summary>Sends an echo request with <paramref name="dataSize"/> bytes of data: the send time
    /// (8 bytes, as ping's timeval) then a byte pattern. <paramref name="tos"/> is the IPv4 type of
    /// service byte or the IPv6 traffic class (illumos: IP_TOS, sin6_flowinfo); <paramref name="via"/>
    /// sends a multicast or broadcast echo out of that interface (IP_MULTICAST_IF).</summary>
    public NetError SendEcho(IpAddress destination, ushort sequence, int dataSize, byte ttl = 0, bool dontFragment = false, byte tos = 0, IpInterface? via = null)
    {
        if (IsClosed) return NetError.Closed;
        if (destination.IsV6 != IsV6) return NetError.InvalidArgument;
        if (dataSize < 0 || dataSize > PacketPool.LargeSize - IcmpView.HeaderLength) return NetError.MessageTooLong;
        var p = _stack.Pool.Rent(IcmpView.HeaderLength + dataSize);
        if (p == null) return NetError.NoBufferSpace;
        // The data is ping's: a send timestamp (8 bytes, as illumos ping puts a timeval there), then a counting pattern.
        var body = p.Data[IcmpView.HeaderLength..];
        for (int i = 0; i < body.Length; i++) body[i] = (byte)i;
        if (body.Length >= 8) System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(body, _stack.Scheduler.Now);
        return _stack.SendIcmpEcho(p, destination, Identifier, sequence, ttl == 0 ? _stack.DefaultTtl : ttl, dontFragment, tos, via);
    }

    /// <summary>Waits for the next message; null after <paramref name="timeout"/> nanoseconds.</summary>
    public Task<IcmpMessage?> ReceiveAsync(long timeout, CancellationToken cancel = default)
    {
        if (_queue.Count > 0) return Task.FromResult<IcmpMessage?>(_queue.Dequeue());
        if (IsClosed) return Task.FromResult<IcmpMessage?>(null);
        // No RunContinuationsAsynchronously: see IpAddressObject._ready.
        var tcs = new TaskCompletionSource<IcmpMessage?>();
        _waiter = tcs;
        _waitTimer ??= new KTimer(_stack.Scheduler, static s => ((IcmpSocket)s!).TimedOut(), this);
        _waitTimer.ArmAfter(timeout);
        if (cancel.CanBeCanceled)
        {
            // Cancellation may come from another thread; hand it to the loop (IpStack.cs rule 4).
            var ctx = SynchronizationContext.Current;
            _cancelReg = cancel.Register(static s =>
            {
                var (sock, c) = ((IcmpSocket, SynchronizationContext?))s!;
                if (c != null) c.Post(static o => ((IcmpSocket)o!).TimedOut(), sock);
                else sock.TimedOut();
            }, (this, ctx));
        }
        return tcs.Task;
    }

    private void TimedOut()
    {
        var w = _waiter;
        _waiter = null;
        _waitTimer?.Cancel();
        _cancelReg.Dispose();
        w?.TrySetResult(null);
    }

    public void Dispose()
    {
        if (IsClosed) return;
        IsClosed = true;
        TimedOut();
        _queue.Clear();
        _stack.CloseIcmpSocket(this);
    }
}

public sealed partial class IpStack
{
    private readonly List<IcmpSocket> _icmpSockets = [];
    private ushort _nextIcmpId;

    /// <summary>Opens a raw ICMP (or ICMPv6) endpoint with a fresh echo identifier.</summary>
    public IcmpSocket OpenIcmpSocket(bool v6)
    {
        if (_nextIcmpId == 0) _nextIcmpId = (ushort)(Random.NextUInt32() | 1);
        var s = new IcmpSocket(this, v6, _nextIcmpId++);
        _icmpSockets.Add(s);
        return s;
    }

    internal void CloseIcmpSocket(IcmpSocket s) => _icmpSockets.Remove(s);

    /// <summary>Sends an echo request whose data is already in place behind the ICMP header.</summary>
    internal NetError SendIcmpEcho(Packet p, IpAddress destination, ushort identifier, ushort sequence, byte ttl, bool dontFragment, byte tos = 0, IpInterface? via = null)
    {
        var data = p.Data[IcmpView.HeaderLength..];
        if (!TrySelectSource(destination, out var src))
        {
            p.Free();
            return destination.IsV4 ? NetError.NetworkUnreachable : NetError.HostUnreachable;
        }
        if (destination.IsV4)
        {
            new IcmpV4Repr { Type = IcmpType.EchoRequest, Identifier = identifier, Sequence = sequence, Data = data }.TryEmit(p.Data);
            Icmp.icmpOutMsgs++;
            Icmp.icmpOutEchos++;
            if (!SendV4(p, src, destination, IpProtocol.Icmp, ttl, dontFragment, via, tos))
                return dontFragment ? NetError.MessageTooLong : NetError.NoBufferSpace;
        }
        else
        {
            new IcmpV6Repr { Type = IcmpType.V6EchoRequest, Identifier = identifier, Sequence = sequence, Data = data }.TryEmit(p.Data, src, destination);
            Icmp6.icmpOutMsgs++;
            Icmp6.icmpOutEchos++;
            if (!SendV6(p, src, destination, IpProtocol.Icmpv6, ttl, via, tos)) return NetError.MessageTooLong;
        }
        return NetError.None;
    }

    private void DeliverToIcmpSockets(bool v6, Span<byte> message, IpAddress from, IpAddress to, byte ttl, ushort id, bool isError)
    {
        if (_icmpSockets.Count == 0) return;
        IcmpMessage? m = null;
        for (int i = 0; i < _icmpSockets.Count; i++)
        {
            var s = _icmpSockets[i];
            if (s.IsV6 != v6 || (!isError && s.Identifier != id)) continue;
            if (m == null)
            {
                IcmpView.TryCreate(message, out var view); // the caller parsed it
                m = new IcmpMessage(view.Type, view.Code, from, to, ttl, message.ToArray(), Scheduler.Now);
            }
            s.Deliver(m);
        }
    }
}
