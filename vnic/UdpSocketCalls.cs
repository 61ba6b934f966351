using System.Runtime.InteropServices;

namespace SmartOS.Vnic;

/// <summary>
/// The few Linux socket calls the real-time underlay makes itself (UdpUnderlay.Batch.cs), because
/// .NET's Socket has no way to pass a control message or to move many datagrams in one call:
/// sendmsg(2) with a UDP_SEGMENT control message (UDP GSO), sendmmsg(2), recvmsg(2) with UDP_GRO's
/// control message. The structures are x86-64 and arm64 Linux's (LP64), laid out by hand with their
/// offsets and sizes spelt out; tests/SmartOS.Vnic.Tests/UdpSocketLayoutTests.cs holds them against
/// what gcc says of &lt;sys/socket.h&gt; on the machine. Every buffer a call is given is pinned by the
/// caller for the life of the underlay, so no call pins or allocates.
/// </summary>
internal static unsafe partial class UdpSocketCalls
{
    public const int SolSocket = 1, SoNoCheck = 11;   // <asm-generic/socket.h>
    public const int SolUdp = 17;                       // IPPROTO_UDP
    public const int UdpSegment = 103, UdpGro = 104;    // <linux/udp.h>
    public const int MsgDontWait = 0x40, MsgTrunc = 0x20;
    public const int EAgain = 11, EIntr = 4, EInval = 22, EIo = 5, ENoSys = 38, ENoProtoOpt = 92, EOpNotSupp = 95;
    public const int AfInet = 2, AfInet6 = 10;

    /// <summary>UDP_MAX_SEGMENTS of Linux 4.18 (&lt;net/udp.h&gt;): the most datagrams one GSO send may make.</summary>
    public const int MaxGsoSegments = 64;
    /// <summary>The most payload one UDP send over IPv4 may carry (65535 less IPv4 and UDP headers):
    /// Linux refuses a GSO send whose datagrams add up to more.</summary>
    public const int MaxGsoBytes = 65535 - 20 - 8;

    // struct msghdr: name, namelen (4 + 4 padding), iov, iovlen, control, controllen, flags (4 + 4).
    public const int MsgHdrSize = 56;
    public const int MsgNameOffset = 0, MsgNameLenOffset = 8, MsgIovOffset = 16, MsgIovLenOffset = 24,
        MsgControlOffset = 32, MsgControlLenOffset = 40, MsgFlagsOffset = 48;
    // struct mmsghdr: a msghdr and the length the call moved (4 + 4 padding).
    public const int MMsgHdrSize = 64, MMsgLenOffset = 56;
    // struct iovec: base, len.
    public const int IovecSize = 16;
    // struct cmsghdr: len (size_t), level, type; the data at CMSG_DATA, 16.
    public const int CmsgHdrSize = 16, CmsgLevelOffset = 8, CmsgTypeOffset = 12;
    /// <summary>CMSG_SPACE(sizeof(int)): a control message holding one int, aligned to 8.</summary>
    public const int CmsgIntSpace = 24;
    /// <summary>CMSG_LEN(sizeof(uint16_t)), what UDP_SEGMENT's message says of itself.</summary>
    public const int CmsgUInt16Len = CmsgHdrSize + 2;
    /// <summary>CMSG_LEN(sizeof(int)).</summary>
    public const int CmsgIntLen = CmsgHdrSize + 4;
    /// <summary>sizeof(struct sockaddr_in6), room for either family's address.</summary>
    public const int SockAddrMax = 28;

    [StructLayout(LayoutKind.Explicit, Size = MsgHdrSize)]
    public struct MsgHdr
    {
        [FieldOffset(MsgNameOffset)] public byte* Name;
        [FieldOffset(MsgNameLenOffset)] public uint NameLen;
        [FieldOffset(MsgIovOffset)] public Iovec* Iov;
        [FieldOffset(MsgIovLenOffset)] public nuint IovLen;
        [FieldOffset(MsgControlOffset)] public byte* Control;
        [FieldOffset(MsgControlLenOffset)] public nuint ControlLen;
        [FieldOffset(MsgFlagsOffset)] public int Flags;
    }

    [StructLayout(LayoutKind.Explicit, Size = MMsgHdrSize)]
    public struct MMsgHdr
    {
        [FieldOffset(0)] public MsgHdr Hdr;
        [FieldOffset(MMsgLenOffset)] public uint Len;
    }

    [StructLayout(LayoutKind.Explicit, Size = IovecSize)]
    public struct Iovec
    {
        [FieldOffset(0)] public byte* Base;
        [FieldOffset(8)] public nuint Len;
    }

    /// <summary>Writes a control message of one value at <paramref name="at"/> (CmsgIntSpace bytes).</summary>
    public static void WriteCmsg(byte* at, int level, int type, int length, int value)
    {
        new Span<byte>(at, CmsgIntSpace).Clear();
        *(nuint*)at = (nuint)length;
        *(int*)(at + CmsgLevelOffset) = level;
        *(int*)(at + CmsgTypeOffset) = type;
        if (length == CmsgUInt16Len) *(ushort*)(at + CmsgHdrSize) = (ushort)value;
        else *(int*)(at + CmsgHdrSize) = value;
    }

    /// <summary>The UDP_GRO segment size in a received message's control buffer, or 0 when it has
    /// none (the datagram arrived alone).</summary>
    public static int ReadGroSize(byte* control, nuint controlLength)
    {
        nuint at = 0;
        while (at + CmsgHdrSize <= controlLength)
        {
            nuint length = *(nuint*)(control + at);
            if (length < CmsgHdrSize || at + length > controlLength) return 0;
            if (*(int*)(control + at + CmsgLevelOffset) == SolUdp && *(int*)(control + at + CmsgTypeOffset) == UdpGro
                && length >= CmsgIntLen)
                return *(int*)(control + at + CmsgHdrSize);
            at += (length + 7) & ~(nuint)7;
        }
        return 0;
    }

    /// <summary>setsockopt(2) of an int option; 0 or errno.</summary>
    public static int SetInt(int fd, int level, int name, int value)
        => SetSockOpt(fd, level, name, &value, sizeof(int)) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>getsockopt(2) of an int option; 0 or errno.</summary>
    public static int GetInt(int fd, int level, int name, out int value)
    {
        int v = 0;
        uint length = sizeof(int);
        int r = GetSockOpt(fd, level, name, &v, &length);
        value = v;
        return r == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "sendto", SetLastError = true)]
    public static partial nint SendTo(int fd, byte* buffer, nuint length, int flags, byte* to, uint toLength);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOpt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);
}
