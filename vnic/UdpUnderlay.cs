using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Threading.Channels;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// The real-time underlay of an overlay (OverlayContracts.cs): a UDP socket of the Linux host bound
/// to vxlan/listen_ip and vxlan/listen_port, so hosts in different `smartos boot` processes, network
/// namespaces or machines carry a tenant network between them with no TAP and no simulated wire.
///
/// Threads
///   reader    one background thread waits on the socket (poll with a short timeout, so Dispose is
///             noticed) and receives each datagram into a free slot: a preallocated buffer and socket
///             address, taken from the free channel. The filled slot goes to the ready channel, and
///             the loop is woken with one RealTimeDriver.Invoke of a cached delegate only when no
///             drain is pending. The reader never touches kernel state (Kernel.cs rule 2).
///   loop      the drain takes every ready slot, hands the datagram to the receiver and puts the
///             slot back on the free channel. Send runs on the loop and calls sendto(2).
///
/// Rules
///   1. Open either returns a bound socket or a message naming what is wrong (the address is not
///      one of this machine's, the port is in use), with nothing left open: `dladm create-overlay`
///      refuses the overlay with it.
///   2. The receive path allocates nothing per datagram: the slots, their buffers and socket
///      addresses are made once; the channels hold references; the wake-up delegate is cached.
///      Destinations are turned into socket addresses once each and kept.
///   3. At most <see cref="Slots"/> datagrams wait for the loop. When none is free the reader
///      receives into a scratch buffer and counts the datagram dropped (a full receive ring);
///      a datagram larger than a slot is dropped and counted too. Nothing throws on either thread:
///      a send that fails returns false for the overlay to count.
///   4. The receiver sees the datagram only during its call: the slot is reused after it.
/// </summary>
public sealed class UdpUnderlay : IOverlayUnderlay, IKstatSource, IDisposable
{
    /// <summary>Datagrams that may wait for the loop (rule 3).</summary>
    public const int Slots = 1024;

    /// <summary>The largest datagram received whole: an overlay MTU of 9000 (overlay(7)'s maximum)
    /// with its Ethernet header, a VLAN tag and the VXLAN header fits.</summary>
    public const int SlotBytes = 9216;

    private const int PollMicroseconds = 100_000;
    private const int SolSocket = 1, SoNoCheck = 11; // Linux's <asm-generic/socket.h>
    /// <summary>Datagrams taken in one go before the loop is woken.</summary>
    private const int BatchMax = 64;

    private sealed class Slot(AddressFamily family)
    {
        public readonly byte[] Buffer = new byte[SlotBytes + 1];
        public readonly SocketAddress From = new(family);
        public int Length;
    }

    private readonly Socket _socket;
    private readonly RealTimeDriver _driver;
    private readonly Channel<Slot> _free;
    private readonly Channel<Slot> _ready;
    private readonly Action _drain;
    private readonly Dictionary<UnderlayEndpoint, SocketAddress> _addresses = [];
    private readonly int _mtu;
    private Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? _receive;
    private Thread? _reader;
    private volatile bool _stop;
    private int _drainPending;
    private long _received, _sent, _sendErrors, _overflows, _oversize, _unheard, _receiveErrors;

    private UdpUnderlay(Socket socket, RealTimeDriver driver, UnderlayEndpoint local, int mtu)
    {
        _socket = socket;
        _driver = driver;
        Local = local;
        _mtu = mtu;
        _free = Channel.CreateBounded<Slot>(new BoundedChannelOptions(Slots) { SingleReader = true, SingleWriter = true });
        _ready = Channel.CreateBounded<Slot>(new BoundedChannelOptions(Slots) { SingleReader = true, SingleWriter = true });
        for (int i = 0; i < Slots; i++) _free.Writer.TryWrite(new Slot(socket.AddressFamily));
        _drain = Drain;
    }

    public UnderlayEndpoint Local { get; }

    /// <summary>The MTU of the Linux interface that holds the listen address.</summary>
    public int LinkMtu => _mtu;

    public long Received => Interlocked.Read(ref _received);
    public long Sent => _sent;
    public long SendErrors => _sendErrors;
    /// <summary>Datagrams dropped because the loop had not taken the earlier ones (rule 3).</summary>
    public long Overflows => Interlocked.Read(ref _overflows);
    /// <summary>Datagrams larger than <see cref="SlotBytes"/>, dropped.</summary>
    public long Oversize => Interlocked.Read(ref _oversize);
    /// <summary>Datagrams that arrived while no receiver was set.</summary>
    public long Unheard => _unheard;

    /// <summary>
    /// Binds a UDP socket to <paramref name="local"/> (rule 1) and starts its reader, which hands
    /// datagrams to <paramref name="driver"/>'s loop.
    /// </summary>
    public static UdpUnderlay? Open(UnderlayEndpoint local, RealTimeDriver driver, out string error)
        => Open(local, driver, out error, out _);

    /// <summary>As above; <paramref name="status"/> is the refusal's code (BadVal for an address not
    /// on this machine, AddrInUse for a port in use).</summary>
    public static UdpUnderlay? Open(UnderlayEndpoint local, RealTimeDriver driver, out string error, out DlStatus status)
    {
        error = "";
        status = DladmStatus.BadVal;
        IPAddress address = local.Address.ToIPAddress();
        int mtu = InterfaceMtu(address);
        if (mtu < 0)
        {
            error = $"vxlan/listen_ip {local.Address} is not an address of this machine";
            return null;
        }
        Socket? socket = null;
        try
        {
            socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(address, local.Port));
            // Room for bursts while the loop is busy: Linux's default (208 KiB) held ~140 frames of
            // 1450 bytes, fewer than one TCP window of a zone's transfer.
            socket.ReceiveBufferSize = 4 << 20;
            socket.SendBufferSize = 4 << 20;
            // RFC 7348 section 5: the outer UDP checksum SHOULD be zero over IPv4, as Linux's vxlan
            // driver sends it and the global zone's underlay does (SO_NO_CHECK).
            if (address.AddressFamily == AddressFamily.InterNetwork && OperatingSystem.IsLinux())
                socket.SetRawSocketOption(SolSocket, SoNoCheck, [1, 0, 0, 0]);
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            status = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => DladmStatus.AddrInUse,
                SocketError.AddressNotAvailable => DladmStatus.BadVal,
                SocketError.AccessDenied => DladmStatus.Denied,
                _ => DladmStatus.Failed,
            };
            error = e.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => $"vxlan/listen_port {local.Port} on {local.Address} is already in use",
                SocketError.AddressNotAvailable => $"vxlan/listen_ip {local.Address} is not an address of this machine",
                SocketError.AccessDenied => $"vxlan/listen_port {local.Port}: permission denied",
                _ => $"cannot listen on {local.Address} port {local.Port}: {e.Message}",
            };
            return null;
        }
        var port = (ushort)((IPEndPoint)socket.LocalEndPoint!).Port;
        status = DlStatus.Ok;
        var underlay = new UdpUnderlay(socket, driver, local with { Port = port }, mtu);
        underlay._reader = new Thread(underlay.ReadLoop) { IsBackground = true, Name = $"vxlan-{local.Address}:{port}" };
        underlay._reader.Start();
        return underlay;
    }

    /// <summary>Whether an interface of this machine (of the process's network namespace) has the
    /// address: the test for giving an overlay a socket rather than a simulated underlay.</summary>
    public static bool IsMachineAddress(IpAddress address) => InterfaceMtu(address.ToIPAddress()) >= 0;

    // The MTU of the interface that has the address, or -1 when no interface of this machine (or of
    // this network namespace) has it.
    private static int InterfaceMtu(IPAddress address)
    {
        foreach (NetworkInterface nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            IPInterfaceProperties props;
            try { props = nic.GetIPProperties(); }
            catch (NetworkInformationException) { continue; }
            foreach (UnicastIPAddressInformation u in props.UnicastAddresses)
            {
                if (!u.Address.Equals(address)) continue;
                try
                {
                    return address.AddressFamily == AddressFamily.InterNetwork
                        ? props.GetIPv4Properties().Mtu
                        : props.GetIPv6Properties().Mtu;
                }
                catch (NetworkInformationException) { return 1500; }
            }
        }
        return -1;
    }

    /// <inheritdoc/>
    public int MaxPayload(UnderlayEndpoint target)
    {
        if (target.Address.IsV4 != Local.Address.IsV4) return -1;
        return _mtu - (Local.Address.IsV4 ? 20 : 40) - UdpView.HeaderLength;
    }

    /// <inheritdoc/>
    public bool Send(UnderlayEndpoint target, ReadOnlySpan<byte> payload)
    {
        if (_stop || target.Address.IsV4 != Local.Address.IsV4)
        {
            _sendErrors++;
            return false;
        }
        if (!_addresses.TryGetValue(target, out SocketAddress? to))
        {
            to = new IPEndPoint(target.Address.ToIPAddress(), target.Port).Serialize();
            _addresses.Add(target, to);
        }
        try
        {
            if (_socket.SendTo(payload, SocketFlags.None, to) == payload.Length)
            {
                _sent++;
                return true;
            }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        _sendErrors++;
        return false;
    }

    /// <inheritdoc/>
    public void SetReceiver(Action<UnderlayEndpoint, ReadOnlyMemory<byte>>? receive) => _receive = receive;

    private void ReadLoop()
    {
        var scratch = new byte[SlotBytes + 1];
        var scratchFrom = new SocketAddress(_socket.AddressFamily);
        while (!_stop)
        {
            try
            {
                if (!_socket.Poll(PollMicroseconds, SelectMode.SelectRead)) continue;
                // Everything waiting, then one wake-up of the loop for the lot.
                int taken = 0;
                do
                {
                    if (!_free.Reader.TryRead(out Slot? slot))
                    {
                        ReceiveInto(scratch, scratchFrom);
                        Interlocked.Increment(ref _overflows);
                        continue;
                    }
                    int n = ReceiveInto(slot.Buffer, slot.From);
                    if (n < 0)
                    {
                        _free.Writer.TryWrite(slot);
                        continue;
                    }
                    slot.Length = n;
                    _ready.Writer.TryWrite(slot);
                    Interlocked.Increment(ref _received);
                    taken++;
                }
                while (!_stop && taken < BatchMax && _socket.Poll(0, SelectMode.SelectRead));
                if (taken > 0 && Interlocked.Exchange(ref _drainPending, 1) == 0) _driver.Invoke(_drain);
            }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) when (_stop) { return; }
            catch (SocketException) { Interlocked.Increment(ref _receiveErrors); }
        }
    }

    // One datagram into the buffer; -1 when it did not fit (counted) or the receive failed. The
    // buffer is one byte longer than a slot's datagram may be, so a longer one shows in the count.
    private int ReceiveInto(byte[] buffer, SocketAddress from)
    {
        int n;
        try
        {
            n = _socket.ReceiveFrom(buffer, SocketFlags.None, from);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
        {
            n = buffer.Length;
        }
        if (n <= SlotBytes) return n;
        Interlocked.Increment(ref _oversize);
        return -1;
    }

    // On the loop: every ready datagram to the receiver, its slot back to the free list.
    private void Drain()
    {
        Volatile.Write(ref _drainPending, 0);
        Interlocked.MemoryBarrier();
        while (_ready.Reader.TryRead(out Slot? slot))
        {
            var receive = _receive;
            if (receive is null) _unheard++;
            else if (TryEndpoint(slot.From, out UnderlayEndpoint from)) receive(from, slot.Buffer.AsMemory(0, slot.Length));
            _free.Writer.TryWrite(slot);
        }
    }

    // The sender of a datagram, read from the socket address .NET filled in (the platform's
    // sockaddr_in or sockaddr_in6: port at 2, IPv4 address at 4, IPv6 address at 8).
    private static bool TryEndpoint(SocketAddress address, out UnderlayEndpoint endpoint)
    {
        endpoint = default;
        ReadOnlySpan<byte> b = address.Buffer.Span;
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(b[2..]);
        if (address.Family == AddressFamily.InterNetwork && b.Length >= 8)
        {
            endpoint = new UnderlayEndpoint(IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(b[4..])), port);
            return true;
        }
        if (address.Family == AddressFamily.InterNetworkV6 && b.Length >= 24)
        {
            IpAddress a = IpAddress.Read(b[8..], v4: false);
            // A v4-mapped sender on a dual-stack socket is the IPv4 host it stands for.
            if (a.High == 0 && (a.Low >> 32) == 0xFFFF) a = IpAddress.V4((uint)a.Low);
            endpoint = new UnderlayEndpoint(a, port);
            return true;
        }
        return false;
    }

    /// <inheritdoc/>
    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("oversize", Oversize));
        into.Add(new("overflows", Overflows));
        into.Add(new("receive_errors", Interlocked.Read(ref _receiveErrors)));
        into.Add(new("received", Received));
        into.Add(new("send_errors", _sendErrors));
        into.Add(new("sent", _sent));
        into.Add(new("unheard", _unheard));
    }

    public void Dispose()
    {
        if (_stop) return;
        _stop = true;
        _reader?.Join(TimeSpan.FromSeconds(2));
        _socket.Dispose();
    }
}
