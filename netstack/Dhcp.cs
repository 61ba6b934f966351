using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack;

/// <summary>DHCP client states (RFC 2131 figure 5), as `ipadm show-addr` hints and dhcpinfo would show.</summary>
public enum DhcpState { Selecting, Requesting, Bound, Renewing, Rebinding }

/// <summary>
/// The DHCPv4 client of one interface (illumos: dhcpagent), started by ipadm create-addr -T dhcp.
/// DISCOVER/OFFER/REQUEST/ACK with the broadcast flag set (no address yet), retransmission at
/// 4, 8, 16, 32, 64 s (RFC 2131 4.1, without the ±1 s jitter so runs stay easy to read),
/// renewal at T1, rebinding at T2, and the address removed when the lease ends.
/// </summary>
public sealed class DhcpClient
{
    public const int ReadyAttempts = 4;
    private readonly IpStack _stack;
    private readonly KTimer _timer;
    private int _attempt;
    private uint _offered, _server, _mask, _router, _nameServer;
    private long _leaseEnd, _t1, _t2;

    internal DhcpClient(IpStack stack, IpInterface ifc, string addrObjName)
    {
        _stack = stack;
        Interface = ifc;
        AddrObjName = addrObjName;
        Xid = stack.Random.NextUInt32();
        _timer = new KTimer(stack.Scheduler, static s => ((DhcpClient)s!).TimerFired(), this);
    }

    public IpInterface Interface { get; }
    public string AddrObjName { get; }
    public uint Xid { get; private set; }
    public DhcpState State { get; private set; }
    public IpAddressObject? Address { get; private set; }
    public IpAddress Server => IpAddress.V4(_server);
    public IpAddress Router => IpAddress.V4(_router);
    /// <summary>The first name server of the lease (option 6), or 0.0.0.0 when it offered none.</summary>
    public IpAddress NameServer => IpAddress.V4(_nameServer);
    public long LeaseEnd => _leaseEnd;
    /// <summary>Completes when the first lease is bound, or fails after <see cref="ReadyAttempts"/> discovers.</summary>
    public Task<IpStatus> Ready => _ready.Task;
    // Completed on the loop; no RunContinuationsAsynchronously: it would send non-await
    // continuations (Task.WhenAny) to the thread pool, off the loop (IpStack.cs rule 4).
    private readonly TaskCompletionSource<IpStatus> _ready = new();
    internal bool Stopped;

    internal void Start()
    {
        State = DhcpState.Selecting;
        _attempt = 0;
        SendDiscover();
    }

    internal void Stop()
    {
        Stopped = true;
        _timer.Cancel();
        if (Address != null && State is DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding)
            Send(DhcpOption.Release, unicast: true);
        DropLease();
        _ready.TrySetResult(IpadmStatus.NotFound);
    }

    private long Backoff() => Math.Min(64, 4L << Math.Min(_attempt, 4)) * Time.Second;

    private void SendDiscover()
    {
        Send(DhcpOption.Discover, unicast: false);
        _timer.ArmAfter(Backoff());
        _attempt++;
    }

    private void TimerFired()
    {
        if (Stopped) return;
        long now = _stack.Scheduler.Now;
        switch (State)
        {
            case DhcpState.Selecting:
                if (_attempt >= ReadyAttempts) _ready.TrySetResult(IpadmStatus.DhcpIpcTimeout);
                SendDiscover();
                break;
            case DhcpState.Requesting:
                if (_attempt >= ReadyAttempts) { State = DhcpState.Selecting; _attempt = 0; SendDiscover(); break; }
                Send(DhcpOption.Request, unicast: false);
                _timer.ArmAfter(Backoff());
                _attempt++;
                break;
            case DhcpState.Bound:
                State = DhcpState.Renewing;
                Send(DhcpOption.Request, unicast: true);
                _timer.ArmAt(_t2);
                break;
            case DhcpState.Renewing:
                State = DhcpState.Rebinding;
                Send(DhcpOption.Request, unicast: false);
                _timer.ArmAt(_leaseEnd);
                break;
            case DhcpState.Rebinding:
                if (now < _leaseEnd) { _timer.ArmAt(_leaseEnd); break; }
                DropLease();
                Xid = _stack.Random.NextUInt32();
                Start();
                break;
        }
    }

    private void DropLease()
    {
        if (Address != null)
        {
            _stack.RemoveAddressCore(Address);
            Address = null;
        }
        if (_router != 0) _stack.DeleteRoute(IpAddress.AnyV4, 0, IpAddress.V4(_router));
    }

    private void Send(byte type, bool unicast)
    {
        var p = _stack.Pool.Rent(DhcpView.OptionsOffset + 64);
        if (p == null) { _stack.Counters.noBuffers++; return; }
        var b = p.Data;
        bool haveAddress = Address != null && (State is DhcpState.Renewing or DhcpState.Rebinding || type == DhcpOption.Release);
        uint ciaddr = haveAddress ? Address!.Address.V4Raw : 0;
        DhcpView.TryWriteFixed(b, DhcpView.BootRequest, Xid, broadcast: !haveAddress, ciaddr, 0, 0, Interface.MacAddress);
        var w = new DhcpOptionWriter(b[DhcpView.OptionsOffset..]);
        w.AddByte(DhcpOption.MessageType, type);
        w.AddClientIdentifier(Interface.MacAddress);
        if (type == DhcpOption.Request && State == DhcpState.Requesting)
        {
            w.AddUInt32(DhcpOption.RequestedAddress, _offered);
            w.AddUInt32(DhcpOption.ServerIdentifier, _server);
        }
        if (type == DhcpOption.Release) w.AddUInt32(DhcpOption.ServerIdentifier, _server);
        w.Add(DhcpOption.ParameterList, [DhcpOption.SubnetMask, DhcpOption.Router, DhcpOption.DnsServers, DhcpOption.LeaseTime]);
        w.End();
        p.TrySetLength(DhcpView.OptionsOffset + w.Position);
        var from = new IpEndpoint(IpAddress.V4(ciaddr), DhcpView.ClientPort);
        var to = new IpEndpoint(unicast && haveAddress ? IpAddress.V4(_server) : IpAddress.BroadcastV4, DhcpView.ServerPort);
        _stack.Udp.Send(p, from, to, 64, unicast && haveAddress ? null : Interface, dontFragment: false);
    }

    /// <summary>A reply for our transaction (already matched by xid and hardware address).</summary>
    internal void Receive(DhcpView msg)
    {
        if (Stopped) return;
        byte type = msg.MessageType;
        long now = _stack.Scheduler.Now;
        if (type == DhcpOption.Offer && State == DhcpState.Selecting)
        {
            if (msg.YourIp == 0 || !msg.TryGetAddressOption(DhcpOption.ServerIdentifier, out _server)) return;
            _offered = msg.YourIp;
            State = DhcpState.Requesting;
            _attempt = 0;
            Send(DhcpOption.Request, unicast: false);
            _timer.ArmAfter(Backoff());
            _attempt++;
            return;
        }
        if (type == DhcpOption.Nak && State != DhcpState.Selecting && State != DhcpState.Bound)
        {
            DropLease();
            Xid = _stack.Random.NextUInt32();
            Start();
            return;
        }
        if (type != DhcpOption.Ack || State is DhcpState.Selecting or DhcpState.Bound) return;
        uint lease = msg.TryGetUInt32Option(DhcpOption.LeaseTime, out uint lt) ? lt : 3600;
        if (lease < 10) lease = 10;
        _leaseEnd = lease == uint.MaxValue ? long.MaxValue : now + lease * Time.Second;
        _t1 = lease == uint.MaxValue ? long.MaxValue : now + lease * Time.Second / 2;
        _t2 = lease == uint.MaxValue ? long.MaxValue : now + lease * Time.Second * 7 / 8;
        if (State == DhcpState.Requesting)
        {
            _mask = msg.TryGetAddressOption(DhcpOption.SubnetMask, out uint m) ? m : 0xFFFFFF00;
            int prefix = System.Numerics.BitOperations.PopCount(_mask);
            var address = IpAddress.V4(msg.YourIp);
            if (_stack.FindLocal(address) == null)
                Address = _stack.AddAddressCore(Interface, AddrObjName, address, prefix, AddressType.Dhcp, dad: false);
            if (msg.TryGetAddressOption(DhcpOption.Router, out _router) && _router != 0)
                _stack.AddRoute(IpAddress.AnyV4, 0, IpAddress.V4(_router));
        }
        if (!msg.TryGetAddressOption(DhcpOption.DnsServers, out _nameServer)) _nameServer = 0;
        if (Address != null) _stack.SetExpiry(Address, _leaseEnd);
        State = DhcpState.Bound;
        if (_t1 != long.MaxValue) _timer.ArmAt(_t1); else _timer.Cancel();
        _ready.TrySetResult(IpStatus.Ok);
    }
}

public sealed partial class IpStack
{
    private readonly Dictionary<IpInterface, DhcpClient> _dhcp = new();

    /// <summary>ipadm create-addr -T dhcp: starts the DHCP client on the interface (one per interface).</summary>
    public IpStatus StartDhcp(string addrObj, out DhcpClient? client)
    {
        client = null;
        int slash = addrObj.IndexOf('/');
        string ifName = slash < 0 ? addrObj : addrObj[..slash];
        var ifc = FindInterface(ifName);
        if (ifc == null || ifc.IsLoopback) return IpadmStatus.Enxio;
        string name = slash < 0 ? ifName + "/dhcp" : addrObj;
        if (FindAddressObject(name) != null) return IpadmStatus.AddrObjExists;
        if (_dhcp.ContainsKey(ifc)) return IpadmStatus.AddrObjExists;
        client = new DhcpClient(this, ifc, name);
        _dhcp[ifc] = client;
        Udp.Port68Hook ??= ReceiveDhcp;
        client.Start();
        return IpStatus.Ok;
    }

    public DhcpClient? FindDhcpClient(string ifName)
    {
        var ifc = FindInterface(ifName);
        return ifc != null && _dhcp.TryGetValue(ifc, out var c) ? c : null;
    }

    internal void StopDhcp(IpInterface ifc)
    {
        if (!_dhcp.Remove(ifc, out var c)) return;
        c.Stop();
    }

    private bool ReceiveDhcp(Packet p, IpAddress src, IpAddress dst, ushort sport)
    {
        if (sport != DhcpView.ServerPort || !UdpView.TryCreate(p.Data, out var udp)) return false;
        if (!DhcpView.TryCreate(udp.Payload, out var msg) || msg.Op != DhcpView.BootReply) return false;
        foreach (var c in _dhcp.Values)
        {
            if (c.Xid != msg.TransactionId || c.Interface.MacAddress != msg.ClientMac) continue;
            c.Receive(msg);
            p.Free();
            return true;
        }
        return false;
    }
}

/// <summary>
/// A DHCPv4 server on one interface (the dhcpd program): leases addresses from a range, remembers
/// them by client hardware address, offers the subnet mask of the interface's address and an
/// optional router. Replies are broadcast on the interface (clients here set the broadcast flag).
/// </summary>
public sealed class DhcpServer : IDisposable
{
    private readonly IpStack _stack;
    private readonly IpInterface _ifc;
    private readonly uint _first, _last;
    private readonly uint _router;
    private readonly uint _dns;
    private readonly uint _leaseSeconds;
    private readonly Dictionary<MacAddress, (uint Address, long Expires)> _leases = new();
    private UdpSocket? _socket;

    /// <param name="dns">The name server offered in option 6, or unspecified for none.</param>
    public DhcpServer(IpStack stack, IpInterface ifc, IpAddress first, IpAddress last, IpAddress router, uint leaseSeconds, IpAddress dns = default)
    {
        _stack = stack; _ifc = ifc; _first = first.V4Raw; _last = last.V4Raw; _router = router.IsUnspecified ? 0 : router.V4Raw;
        _dns = dns.IsV4 && !dns.IsUnspecified ? dns.V4Raw : 0;
        _leaseSeconds = leaseSeconds;
    }

    public int LeaseCount => _leases.Count;
    public long Offers, Acks, Naks, Ignored;

    /// <summary>Leases for display: (client, address, expiry).</summary>
    public IEnumerable<(MacAddress Client, IpAddress Address, long Expires)> Leases
    {
        get { foreach (var kv in _leases) yield return (kv.Key, IpAddress.V4(kv.Value.Address), kv.Value.Expires); }
    }

    /// <summary>Binds port 67 and serves until cancelled. Returns the bind error, if any.</summary>
    public async Task<NetError> RunAsync(CancellationToken cancel)
    {
        var own = _stack.InterfaceAddress(_ifc, v4: true);
        if (own == null) return NetError.AddressNotAvailable;
        _socket = _stack.OpenUdpSocket();
        var e = _socket.Bind(IpAddress.AnyV4, DhcpView.ServerPort);
        if (e != NetError.None) { _socket.Dispose(); return e; }
        _socket.BoundInterface = _ifc;
        var buffer = new byte[1500];
        while (!cancel.IsCancellationRequested)
        {
            var r = await _socket.ReceiveFromAsync(buffer, cancel);
            if (r.Error != NetError.None) break;
            Handle(buffer.AsSpan(0, r.Length), own);
        }
        _socket.Dispose();
        return NetError.None;
    }

    private void Handle(Span<byte> data, IpAddressObject own)
    {
        if (!DhcpView.TryCreate(data, out var msg) || msg.Op != DhcpView.BootRequest) { Ignored++; return; }
        var mac = msg.ClientMac;
        uint serverId = own.Address.V4Raw;
        long now = _stack.Scheduler.Now;
        switch (msg.MessageType)
        {
            case DhcpOption.Discover:
            {
                uint a = Choose(mac, now);
                if (a == 0) { Ignored++; return; }
                _leases[mac] = (a, now + 60 * Time.Second); // held for the offer
                Offers++;
                Reply(msg, DhcpOption.Offer, a, own);
                return;
            }
            case DhcpOption.Request:
            {
                if (msg.TryGetAddressOption(DhcpOption.ServerIdentifier, out uint sid) && sid != serverId) { _leases.Remove(mac); return; }
                uint wanted = msg.TryGetAddressOption(DhcpOption.RequestedAddress, out uint req) ? req : msg.ClientIp;
                bool ok = _leases.TryGetValue(mac, out var lease) ? lease.Address == wanted : wanted >= _first && wanted <= _last && !InUse(wanted, now);
                if (!ok) { Naks++; Reply(msg, DhcpOption.Nak, 0, own); return; }
                _leases[mac] = (wanted, now + _leaseSeconds * Time.Second);
                Acks++;
                Reply(msg, DhcpOption.Ack, wanted, own);
                return;
            }
            case DhcpOption.Release:
                _leases.Remove(mac);
                return;
            default:
                Ignored++;
                return;
        }
    }

    private bool InUse(uint a, long now)
    {
        foreach (var l in _leases.Values) if (l.Address == a && l.Expires > now) return true;
        return false;
    }

    private uint Choose(MacAddress mac, long now)
    {
        if (_leases.TryGetValue(mac, out var l)) return l.Address;
        for (uint a = _first; a <= _last && a != 0; a++)
            if (!InUse(a, now) && !_stack.IsLocalAddress(IpAddress.V4(a))) return a;
        return 0;
    }

    private void Reply(DhcpView request, byte type, uint yiaddr, IpAddressObject own)
    {
        Span<byte> b = stackalloc byte[DhcpView.OptionsOffset + 64];
        DhcpView.TryWriteFixed(b, DhcpView.BootReply, request.TransactionId, request.Broadcast, 0, yiaddr, own.Address.V4Raw, request.ClientMac);
        var w = new DhcpOptionWriter(b[DhcpView.OptionsOffset..]);
        w.AddByte(DhcpOption.MessageType, type);
        w.AddUInt32(DhcpOption.ServerIdentifier, own.Address.V4Raw);
        if (type != DhcpOption.Nak)
        {
            w.AddUInt32(DhcpOption.LeaseTime, _leaseSeconds);
            w.AddUInt32(DhcpOption.SubnetMask, own.PrefixLength == 0 ? 0 : 0xFFFFFFFFu << (32 - own.PrefixLength));
            if (_router != 0) w.AddUInt32(DhcpOption.Router, _router);
            if (_dns != 0) w.AddUInt32(DhcpOption.DnsServers, _dns);
        }
        w.End();
        _socket!.SendTo(b[..(DhcpView.OptionsOffset + w.Position)], new IpEndpoint(IpAddress.BroadcastV4, DhcpView.ClientPort));
    }

    public void Dispose() => _socket?.Dispose();
}
