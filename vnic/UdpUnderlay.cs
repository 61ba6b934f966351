using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
///             noticed), then takes everything waiting with recvmsg(2) (MSG_DONTWAIT; up to 64
///             receives) into free slots: a preallocated, pinned buffer and socket address, taken
///             from the free channel. Each filled slot goes to the ready channel, and the loop is
///             woken with one RealTimeDriver.Invoke of a cached delegate for the lot, only when no
///             drain is pending. The reader never touches kernel state (Kernel.cs rule 2).
///   loop      the drain takes every ready slot, hands its datagrams to the receiver (rule 6) and
///             puts the slot back on the free channel. Sends run on the loop: one datagram by
///             sendto(2), a large send by UDP GSO (rule 5).
///
/// Rules
///   1. Open either returns a bound socket or a message naming what is wrong (the address is not
///      one of this machine's, the port is in use), with nothing left open: `dladm create-overlay`
///      refuses the overlay with it.
///   2. The receive and large-send paths allocate nothing per datagram: the slots, their buffers
///      and socket addresses, the send buffer and the message headers, iovecs and control messages
///      (UdpSocketCalls.cs, laid out by hand and held against gcc's headers by a test) are made and
///      pinned once; the channels hold references; the wake-up delegate is cached. Destinations are
///      turned into socket addresses once each and kept.
///   3. At most <see cref="Slots"/> receives (<see cref="GroSlots"/> under GRO) wait for the loop.
///      When no slot is free the reader receives into a scratch slot and counts its datagrams
///      dropped (overflows: a full receive ring); a datagram larger than <see cref="SlotBytes"/> is
///      dropped and counted too (oversize). Nothing throws on either thread: a send that fails
///      returns false (or counts as failed) for the overlay to count.
///   4. The receiver sees the datagram only during its call: the slot is reused after it.
///   5. Offloads of the Linux kernel, each found by asking the socket once at open. Large send
///      (IOverlayLargeSend, Overlay.LargeSend.cs): a VNIC over the overlay sends one TCP segment of
///      up to 64 KiB; it is cut here into MSS segments (TcpSegmentation: IPv4 length, ID and
///      checksum, sequence, flags and the full TCP checksum made right), each behind the VXLAN
///      header, back to back in one send buffer of equal-size datagrams, and handed to the kernel
///      with ONE sendmsg carrying UDP_SEGMENT = the datagram size (UDP GSO, Linux 4.18; up to 64
///      datagrams and 65507 bytes a call). Linux refuses UDP GSO on a socket that sends no UDP
///      checksum, so SO_NO_CHECK is lifted for those calls: a large send's datagrams carry the
///      outer checksum (the kernel's, offloaded where the device can), which RFC 7348 section 5
///      allows, while single datagrams keep the zero it recommends (the option is changed only when
///      the next send needs the other setting, not twice a call). A VNIC over the overlay is
///      offered large sends only as big as one call carries in full segments (OverlayLink.LsoMax:
///      61,280 bytes of IP for MTU 1400), so each is one call. When the kernel says GSO is not
///      there (no UDP_SEGMENT option; EINVAL, EIO, ENOPROTOOPT or EOPNOTSUPP from the call) the
///      socket steps down for good to sendmmsg(2), one call per run, and from ENOSYS to sendto(2)
///      per datagram; kstat overlay:0:udp_IP_PORT counts the calls of each (lso_gso_calls,
///      lso_mmsg_calls, lso_sendto_calls), the steps down (lso_fallbacks) and the method in use
///      (lso_method: 0 GSO, 1 sendmmsg, 2 sendto). Receive: UDP_GRO (Linux 5.0), so one recvmsg
///      returns a run of datagrams of one sender with their size in a control message (gro,
///      gro_receives); a slot then holds 64 KiB.
///   6. Large receive (UdpUnderlay.Coalesce.cs): consecutive datagrams of one drain (across its GRO
///      runs, up to 65507 bytes) that carry consecutive segments of one inner TCP flow are joined,
///      each piece's checksums verified (the TCP one summed while its payload is copied into the
///      joined frame), into one large segment handed to the overlay with its MSS
///      (IOverlayLargeReceive); the zone's stack takes it whole (MacLayer.cs rule 9) and anything
///      else gets MSS segments. Every other datagram is handed over alone, as without GRO, and so is
///      a piece whose checksum is wrong, unchanged, for the stack to drop and count (lro_segments,
///      lro_pieces; the overlay's decap counts the pieces).
///
/// Measured (tests/SmartOS.Benchmarks overlay-real: iperf between zones on two daemons in two
/// network namespaces over veth, after a warm-up run, beside Linux vxlan to Linux vxlan in the same
/// run; 2 cores shared with other builds, load average 17-31): without rules 5 and 6, 0.06 and 0.07
/// of Linux's rate (520 against 9,245 Mbit/s); with them 0.56 to 1.13 (4,630 against 6,887); on a
/// quiet machine 0.41-0.44 (6,910-7,450 against 16,509-16,839). A profile of both daemons then
/// put their time in system calls and wake-ups: the reader's poll, two setsockopt a GSO call, one
/// acknowledgement per ~23 pieces (a GRO receive holds one GSO call, and 64 KiB large sends went
/// as calls of 46 and 2). With the reader's waiting recvmsg, SO_NO_CHECK changed only when needed,
/// large sends fitting one call and runs joined across a drain (43 pieces a segment), at load
/// average 34-40 each daemon's CPU time per gigabyte fell from 844-898 ms to 705-811 (sender) and
/// from 829-844 to 743-765 (receiver), the rate from 4.2-4.4 to 4.8-4.9 Gbit/s (README). With the
/// real-time loop spinning once before it blocks (RealTimeDriver.cs), at load average 9-18: 8,610-
/// 8,700 Mbit/s against Linux's 12,178-13,824, 0.63-0.71 (main in turn: 0.40-0.47).
/// </summary>
public sealed unsafe partial class UdpUnderlay : IOverlayUnderlay, IOverlayLargeSend, IOverlayLargeReceive, IKstatSource, IDisposable
{
    /// <summary>Datagrams that may wait for the loop (rule 3), when each slot holds one.</summary>
    public const int Slots = 1024;

    /// <summary>Slots when the socket has UDP_GRO (rule 5): each holds up to 64 KiB, so fewer.</summary>
    public const int GroSlots = 512;

    /// <summary>The largest datagram received whole: an overlay MTU of 9000 (overlay(7)'s maximum)
    /// with its Ethernet header, a VLAN tag and the VXLAN header fits.</summary>
    public const int SlotBytes = 9216;

    /// <summary>A slot's buffer under UDP_GRO: the largest UDP payload there is, so a run of
    /// coalesced datagrams is never cut short.</summary>
    public const int GroSlotBytes = 65536;

    /// <summary>How long the reader's waiting receive may block (SO_RCVTIMEO), so Dispose is noticed.</summary>
    private const int ReceiveWaitMilliseconds = 100;
    /// <summary>Receives made in one go before the loop is woken.</summary>
    private const int BatchMax = 64;
    private const int ControlBytes = 64;

    private sealed class Slot
    {
        public readonly byte[] Buffer;
        public readonly byte* Data;
        public readonly byte[] From = GC.AllocateArray<byte>(UdpSocketCalls.SockAddrMax, pinned: true);
        public readonly byte* FromPtr;
        public int Length;
        /// <summary>UDP_GRO's segment size: the datagrams in Buffer are this long, the last perhaps
        /// shorter; 0 when it holds one datagram.</summary>
        public int Segment;

        public Slot(int bytes)
        {
            Buffer = GC.AllocateUninitializedArray<byte>(bytes, pinned: true);
            Data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Buffer));
            FromPtr = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(From));
        }
    }

    private readonly Socket _socket;
    private readonly int _fd;
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
    private long _received, _sent, _sendErrors, _overflows, _oversize, _unheard, _receiveErrors, _groReceives;

    private UdpUnderlay(Socket socket, RealTimeDriver driver, UnderlayEndpoint local, int mtu)
    {
        _socket = socket;
        _fd = OperatingSystem.IsLinux() ? (int)socket.Handle : -1;
        _driver = driver;
        Local = local;
        _mtu = mtu;
        // Rule 5: the kernel's offloads when it has them, each found by asking it once.
        Gro = _fd >= 0 && UdpSocketCalls.SetInt(_fd, UdpSocketCalls.SolUdp, UdpSocketCalls.UdpGro, 1) == 0;
        _largeSend = _fd < 0 ? LargeSendMethod.SendTo
            : UdpSocketCalls.GetInt(_fd, UdpSocketCalls.SolUdp, UdpSocketCalls.UdpSegment, out _) == 0 ? LargeSendMethod.Gso
            : LargeSendMethod.SendMmsg;
        _noCheck = local.Address.IsV4 && OperatingSystem.IsLinux();
        int slots = Gro ? GroSlots : Slots;
        _free = Channel.CreateBounded<Slot>(new BoundedChannelOptions(slots) { SingleReader = true, SingleWriter = true });
        _ready = Channel.CreateBounded<Slot>(new BoundedChannelOptions(slots) { SingleReader = true, SingleWriter = true });
        for (int i = 0; i < slots; i++) _free.Writer.TryWrite(new Slot(Gro ? GroSlotBytes : SlotBytes + 1));
        _drain = Drain;
        _sendBuffer = GC.AllocateUninitializedArray<byte>(UdpSocketCalls.MaxGsoBytes, pinned: true);
        _sendControl = GC.AllocateArray<byte>(UdpSocketCalls.MMsgHdrSize * UdpSocketCalls.MaxGsoSegments
            + UdpSocketCalls.IovecSize * UdpSocketCalls.MaxGsoSegments + UdpSocketCalls.CmsgIntSpace, pinned: true);
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
            socket.Blocking = true;
            socket.ReceiveTimeout = ReceiveWaitMilliseconds;
            socket.SendBufferSize = 4 << 20;
            // RFC 7348 section 5: the outer UDP checksum SHOULD be zero over IPv4, as Linux's vxlan
            // driver sends it and the global zone's underlay does (SO_NO_CHECK).
            if (address.AddressFamily == AddressFamily.InterNetwork && OperatingSystem.IsLinux())
                socket.SetRawSocketOption(UdpSocketCalls.SolSocket, UdpSocketCalls.SoNoCheck, [1, 0, 0, 0]);
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
        if (_fd >= 0)
        {
            // The socket's own sendto on the kept sockaddr: no marshalling of .NET's SocketAddress.
            CheckOutgoing(false);
            byte[] raw = SockAddr(target);
            fixed (byte* data = payload)
            fixed (byte* toPtr = raw)
            {
                if (UdpSocketCalls.SendTo(_fd, data, (nuint)payload.Length, 0, toPtr, (uint)raw.Length) == payload.Length)
                {
                    _sent++;
                    return true;
                }
            }
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

    /// <summary>Whether the socket coalesces datagrams on receive (UDP_GRO, rule 5).</summary>
    public bool Gro { get; }

    /// <summary>Receives that returned more than one datagram (UDP_GRO).</summary>
    public long GroReceives => Interlocked.Read(ref _groReceives);

    private void ReadLoop()
    {
        // The reader's own message header, iovec and control buffer, pinned for its life (rule 2).
        byte[] header = GC.AllocateArray<byte>(UdpSocketCalls.MsgHdrSize + UdpSocketCalls.IovecSize + ControlBytes, pinned: true);
        var scratch = new Slot(Gro ? GroSlotBytes : SlotBytes + 1);
        byte* h = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(header));
        var msg = (UdpSocketCalls.MsgHdr*)h;
        var iov = (UdpSocketCalls.Iovec*)(h + UdpSocketCalls.MsgHdrSize);
        byte* control = h + UdpSocketCalls.MsgHdrSize + UdpSocketCalls.IovecSize;
        if (_fd < 0) return; // no socket calls of our own here: nothing is ever received
        while (!_stop)
        {
            // The first receive waits (at most the socket's SO_RCVTIMEO, so Dispose is noticed): one
            // system call where poll(2) and then recvmsg(2) took two for every wake-up.
            bool wait = true;
            // Everything waiting, then one wake-up of the loop for the lot.
            int taken = 0;
            while (!_stop && taken < BatchMax)
            {
                bool spare = !_free.Reader.TryRead(out Slot? slot);
                slot ??= scratch;
                int r = ReceiveInto(slot, msg, iov, control, wait);
                wait = false;
                if (r == 0) // nothing more waiting (or the wait timed out)
                {
                    if (!spare) _free.Writer.TryWrite(slot);
                    break;
                }
                if (r < 0 || spare)
                {
                    if (spare && r > 0) Interlocked.Add(ref _overflows, r); // rule 3: no slot was free
                    if (!spare) _free.Writer.TryWrite(slot);
                    continue;
                }
                _ready.Writer.TryWrite(slot);
                Interlocked.Add(ref _received, r);
                taken++;
            }
            if (taken > 0 && Interlocked.Exchange(ref _drainPending, 1) == 0) _driver.Invoke(_drain);
        }
        GC.KeepAlive(header);
    }

    // One recvmsg into the slot, waiting up to the socket's receive timeout when `wait`, else not.
    // Returns the datagrams it holds (more than one under UDP_GRO), 0 when none was waiting, -1 when the receive failed or did not fit (counted). A slot
    // without GRO is one byte longer than a datagram may be, so a longer one shows in the count.
    private int ReceiveInto(Slot slot, UdpSocketCalls.MsgHdr* msg, UdpSocketCalls.Iovec* iov, byte* control, bool wait)
    {
        iov->Base = slot.Data;
        iov->Len = (nuint)slot.Buffer.Length;
        *msg = default;
        msg->Name = slot.FromPtr;
        msg->NameLen = UdpSocketCalls.SockAddrMax;
        msg->Iov = iov;
        msg->IovLen = 1;
        msg->Control = control;
        msg->ControlLen = ControlBytes;
        nint n = UdpSocketCalls.RecvMsg(_fd, msg, wait ? 0 : UdpSocketCalls.MsgDontWait);
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == UdpSocketCalls.EAgain) return 0;
            if (errno != UdpSocketCalls.EIntr) Interlocked.Increment(ref _receiveErrors);
            return -1;
        }
        int segment = UdpSocketCalls.ReadGroSize(control, msg->ControlLen);
        if ((msg->Flags & UdpSocketCalls.MsgTrunc) != 0 || (segment <= 0 ? n > SlotBytes : segment > SlotBytes))
        {
            Interlocked.Increment(ref _oversize);
            return -1;
        }
        slot.Length = (int)n;
        slot.Segment = segment <= 0 || segment >= n ? 0 : segment;
        if (slot.Segment == 0) return 1;
        Interlocked.Increment(ref _groReceives);
        return (int)((n + segment - 1) / segment);
    }

    // On the loop: every ready datagram to the receiver (a GRO slot's one by one, rule 5), its slot
    // back to the free list.
    private void Drain()
    {
        Volatile.Write(ref _drainPending, 0);
        Interlocked.MemoryBarrier();
        var receive = _receive;
        var large = _receiveLarge;
        while (_ready.Reader.TryRead(out Slot? slot))
        {
            if (receive is null) _unheard++;
            else if (TryEndpoint(slot.From, out UnderlayEndpoint from))
            {
                int length = slot.Length, step = slot.Segment == 0 ? length : slot.Segment;
                for (int at = 0; at < length; at += step)
                {
                    var datagram = slot.Buffer.AsMemory(at, Math.Min(step, length - at));
                    if (large is null) receive(from, datagram);
                    else Offer(from, datagram, receive, large); // rule 6
                }
            }
            _free.Writer.TryWrite(slot);
        }
        if (receive is not null && large is not null) FlushRun(receive, large);
    }

    // The sender of a datagram, from the sockaddr_in or sockaddr_in6 recvmsg filled in: family at 0
    // (host order), port at 2, IPv4 address at 4, IPv6 address at 8.
    private static bool TryEndpoint(ReadOnlySpan<byte> b, out UnderlayEndpoint endpoint)
    {
        endpoint = default;
        ushort family = BinaryPrimitives.ReadUInt16LittleEndian(b);
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(b[2..]);
        if (family == UdpSocketCalls.AfInet)
        {
            endpoint = new UnderlayEndpoint(IpAddress.V4(BinaryPrimitives.ReadUInt32BigEndian(b[4..])), port);
            return true;
        }
        if (family == UdpSocketCalls.AfInet6)
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
        into.Add(new("gro", Gro ? 1 : 0));
        into.Add(new("gro_receives", GroReceives));
        into.Add(new("lro_pieces", _coalescedPieces));
        into.Add(new("lro_segments", _coalesced));
        into.Add(new("oversize", Oversize));
        into.Add(new("overflows", Overflows));
        into.Add(new("receive_errors", Interlocked.Read(ref _receiveErrors)));
        into.Add(new("received", Received));
        into.Add(new("send_errors", _sendErrors));
        into.Add(new("sent", _sent));
        SnapshotLargeSend(into);
        into.Add(new("unheard", _unheard));
    }

    /// <summary>Shows the socket's counters as kstat overlay:0:NAME until it is disposed (the
    /// daemon's real-time underlays: zones/RealTimeUnderlays.cs). On the loop.</summary>
    public void RegisterKstat(KstatRegistry kstats, string name)
    {
        _kstats = kstats;
        _kstat = kstats.Add("overlay", 0, name, "net", this);
    }

    private KstatRegistry? _kstats;
    private Kstat? _kstat;

    public void Dispose()
    {
        if (_stop) return;
        _stop = true;
        if (_kstat != null) _kstats!.Remove(_kstat);
        _reader?.Join(TimeSpan.FromSeconds(2));
        _socket.Dispose();
    }
}
