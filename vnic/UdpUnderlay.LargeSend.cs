using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>How the underlay hands the datagrams of one large send to the kernel (rule 5 of
/// UdpUnderlay.cs), best first; the socket starts at the best its kernel has and steps down for good
/// when a call says the method is not there.</summary>
public enum LargeSendMethod
{
    /// <summary>One sendmsg(2) with a UDP_SEGMENT control message per up to 64 datagrams (UDP GSO,
    /// Linux 4.18): the kernel cuts the buffer into datagrams, in the NIC when it can.</summary>
    Gso,
    /// <summary>One sendmmsg(2) per up to 64 datagrams, each its own message.</summary>
    SendMmsg,
    /// <summary>One sendto(2) per datagram.</summary>
    SendTo,
}

public sealed unsafe partial class UdpUnderlay
{
    private readonly byte[] _sendBuffer;
    private readonly byte[] _sendControl;
    private readonly Dictionary<UnderlayEndpoint, byte[]> _sockaddrs = [];
    private readonly bool _noCheck;
    // Whether SO_NO_CHECK is off now (datagrams carry a checksum): only around GSO sends.
    private bool _checksumOn;
    private LargeSendMethod _largeSend;
    private long _gsoCalls, _mmsgCalls, _sendtoCalls, _fallbacks;

    /// <summary>The method large sends use now (rule 5). Set only lower, to force a fallback (tests);
    /// a higher one is refused with false.</summary>
    public LargeSendMethod LargeSend => _largeSend;

    /// <summary>Steps down to <paramref name="method"/>; false (nothing changed) if it is higher than
    /// the current one.</summary>
    public bool TryUseLargeSend(LargeSendMethod method)
    {
        if (method < _largeSend) return false;
        _largeSend = method;
        return true;
    }

    /// <summary>GSO sendmsg calls made for large sends.</summary>
    public long GsoCalls => _gsoCalls;
    /// <summary>sendmmsg calls made for large sends.</summary>
    public long MmsgCalls => _mmsgCalls;
    /// <summary>sendto calls made for large sends (one per datagram).</summary>
    public long SendToCalls => _sendtoCalls;
    /// <summary>Times a method failed as absent and the socket stepped down.</summary>
    public long Fallbacks => _fallbacks;

    /// <inheritdoc/>
    public bool TakesLargeSend => !_stop && _fd >= 0;

    /// <inheritdoc/>
    public int RunBytes => UdpSocketCalls.MaxGsoBytes;

    /// <inheritdoc/>
    public int RunDatagrams => UdpSocketCalls.MaxGsoSegments;

    /// <inheritdoc/>
    public int SendSegmented(UnderlayEndpoint target, ReadOnlySpan<byte> vxlan, ReadOnlySpan<byte> frame, int mss, out int failed)
    {
        failed = 0;
        if (!TcpSegmentation.TryCreate(frame, mss, out var seg)) return -1;
        int datagram = vxlan.Length + seg.HeaderLength + mss;
        if (_stop || _fd < 0 || target.Address.IsV4 != Local.Address.IsV4 || datagram > UdpSocketCalls.MaxGsoBytes)
        {
            failed = seg.Count;
            _sendErrors += failed;
            return 0;
        }
        byte[] to = SockAddr(target);
        byte* toPtr = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(to));
        byte* buffer = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sendBuffer));
        // Every datagram but a run's last is exactly `datagram` bytes, as UDP GSO requires.
        int per = Math.Min(UdpSocketCalls.MaxGsoSegments, UdpSocketCalls.MaxGsoBytes / datagram);
        int sent = 0;
        for (int first = 0; first < seg.Count; first += per)
        {
            int n = Math.Min(per, seg.Count - first), bytes = 0;
            var into = _sendBuffer.AsSpan();
            for (int i = 0; i < n; i++)
            {
                vxlan.CopyTo(into[bytes..]);
                bytes += vxlan.Length;
                bytes += seg.Write(first + i, into[bytes..]);
            }
            int ok = SendRun(toPtr, to.Length, buffer, n, datagram, bytes);
            sent += ok;
            failed += n - ok;
        }
        _sent += sent;
        _sendErrors += failed;
        GC.KeepAlive(to);
        return sent;
    }

    // One run of n datagrams (`size` bytes each, the last perhaps shorter; `bytes` in all) at buffer;
    // returns how many the kernel took, stepping down a method that is absent (rule 5).
    private int SendRun(byte* to, int toLength, byte* buffer, int n, int size, int bytes)
    {
        if (_largeSend == LargeSendMethod.Gso && n > 1)
        {
            int errno = SendGso(to, toLength, buffer, size, bytes);
            if (errno == 0) return n;
            // The kernel has no UDP GSO for this socket or route (EINVAL, EIO: a device without
            // checksum offload; ENOPROTOOPT, EOPNOTSUPP: no UDP_SEGMENT): step down, send this run so.
            if (errno is not (UdpSocketCalls.EInval or UdpSocketCalls.EIo or UdpSocketCalls.ENoProtoOpt or UdpSocketCalls.EOpNotSupp))
                return 0;
            _largeSend = LargeSendMethod.SendMmsg;
            _fallbacks++;
        }
        CheckOutgoing(false); // datagrams sent one by one keep the zero checksum
        if (_largeSend == LargeSendMethod.SendMmsg && n > 1)
        {
            int done = SendMmsg(to, toLength, buffer, n, size, bytes, out int errno);
            if (done >= 0) return done;
            if (errno != UdpSocketCalls.ENoSys) return 0;
            _largeSend = LargeSendMethod.SendTo;
            _fallbacks++;
        }
        int ok = 0;
        for (int i = 0; i < n; i++)
        {
            int length = Math.Min(size, bytes - i * size);
            _sendtoCalls++;
            if (UdpSocketCalls.SendTo(_fd, buffer + i * size, (nuint)length, 0, to, (uint)toLength) == length) ok++;
        }
        return ok;
    }

    // UDP GSO: one sendmsg with UDP_SEGMENT = size. Linux refuses it on a socket that sends no UDP
    // checksum (SO_NO_CHECK), so the checksum is turned on around it: a large send's datagrams carry
    // an outer UDP checksum (the kernel's, offloaded where the device can), which RFC 7348 section 5
    // allows; single datagrams keep the zero checksum it recommends (Overlay.cs rule 2).
    private int SendGso(byte* to, int toLength, byte* buffer, int size, int bytes)
    {
        byte* space = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sendControl));
        var msg = (UdpSocketCalls.MsgHdr*)space;
        var iov = (UdpSocketCalls.Iovec*)(space + UdpSocketCalls.MsgHdrSize);
        byte* control = space + UdpSocketCalls.MsgHdrSize + UdpSocketCalls.IovecSize;
        iov->Base = buffer;
        iov->Len = (nuint)bytes;
        *msg = default;
        msg->Name = to;
        msg->NameLen = (uint)toLength;
        msg->Iov = iov;
        msg->IovLen = 1;
        msg->Control = control;
        msg->ControlLen = UdpSocketCalls.CmsgIntSpace;
        UdpSocketCalls.WriteCmsg(control, UdpSocketCalls.SolUdp, UdpSocketCalls.UdpSegment, UdpSocketCalls.CmsgUInt16Len, size);
        CheckOutgoing(true);
        _gsoCalls++;
        nint r = UdpSocketCalls.SendMsg(_fd, msg, 0);
        int errno = r < 0 ? Marshal.GetLastPInvokeError() : 0;
        if (r == bytes) return 0;
        return errno == 0 ? UdpSocketCalls.EIo + 1000 : errno; // a short send is a failure, never a step down
    }

    // SO_NO_CHECK as the next send needs it: on (checksum) for a GSO send, off for any other, changed
    // only when it differs from what the socket has, so a stream of large sends (or of single
    // datagrams: a receiver's acknowledgements) pays no setsockopt per call. Was two per GSO call:
    // 8% of a sending daemon's samples.
    private void CheckOutgoing(bool checksum)
    {
        if (!_noCheck || _checksumOn == checksum) return;
        if (UdpSocketCalls.SetInt(_fd, UdpSocketCalls.SolSocket, UdpSocketCalls.SoNoCheck, checksum ? 0 : 1) == 0)
            _checksumOn = checksum;
    }

    // sendmmsg: one message per datagram, all pointing into the buffer; a partial send is retried
    // from where it stopped. Returns the datagrams sent, or -1 with errno when the first call failed.
    private int SendMmsg(byte* to, int toLength, byte* buffer, int n, int size, int bytes, out int errno)
    {
        errno = 0;
        byte* space = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sendControl));
        var msgs = (UdpSocketCalls.MMsgHdr*)space;
        var iovs = (UdpSocketCalls.Iovec*)(space + UdpSocketCalls.MMsgHdrSize * UdpSocketCalls.MaxGsoSegments);
        for (int i = 0; i < n; i++)
        {
            iovs[i].Base = buffer + i * size;
            iovs[i].Len = (nuint)Math.Min(size, bytes - i * size);
            msgs[i] = default;
            msgs[i].Hdr.Name = to;
            msgs[i].Hdr.NameLen = (uint)toLength;
            msgs[i].Hdr.Iov = iovs + i;
            msgs[i].Hdr.IovLen = 1;
        }
        int done = 0;
        while (done < n)
        {
            _mmsgCalls++;
            int r = UdpSocketCalls.SendMMsg(_fd, msgs + done, (uint)(n - done), 0);
            if (r <= 0)
            {
                if (done == 0)
                {
                    errno = Marshal.GetLastPInvokeError();
                    return -1;
                }
                break;
            }
            done += r;
        }
        return done;
    }

    // The destination as a sockaddr_in or sockaddr_in6, made once per target and kept, pinned.
    private byte[] SockAddr(UnderlayEndpoint target)
    {
        if (_sockaddrs.TryGetValue(target, out var a)) return a;
        bool v4 = target.Address.IsV4;
        a = GC.AllocateArray<byte>(v4 ? 16 : UdpSocketCalls.SockAddrMax, pinned: true);
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)(v4 ? UdpSocketCalls.AfInet : UdpSocketCalls.AfInet6));
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), target.Port);
        target.Address.Write(a.AsSpan(v4 ? 4 : 8));
        _sockaddrs.Add(target, a);
        return a;
    }

    private void SnapshotLargeSend(List<KeyValuePair<string, long>> into)
    {
        into.Add(new("lso_fallbacks", _fallbacks));
        into.Add(new("lso_gso_calls", _gsoCalls));
        into.Add(new("lso_method", (long)_largeSend));
        into.Add(new("lso_mmsg_calls", _mmsgCalls));
        into.Add(new("lso_sendto_calls", _sendtoCalls));
    }
}
