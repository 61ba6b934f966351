using System.Buffers.Binary;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

/// <summary>
/// Where each layer of a captured frame starts, found in one pass over a read-only span (see the
/// theory statement in SnoopFilter.cs). Every offset is checked against the captured length before
/// it is recorded, so reading a field that a flag says is present never runs off the end; a layer
/// that is cut short simply leaves its flag false.
/// </summary>
internal readonly ref struct FrameLayout
{
    public const ushort EtherTypeRarp = 0x8035;
    private const byte Ipv6HopByHop = 0, Ipv6Routing = 43, Ipv6Fragment = 44, Ipv6DestOptions = 60;

    public readonly ReadOnlySpan<byte> Frame;
    /// <summary>The Ethernet header (and its tag, when tagged) is all there.</summary>
    public readonly bool HasEther;
    public readonly bool Tagged;
    public readonly ushort VlanId;
    public readonly byte Priority;
    /// <summary>The EtherType after the tag, if any.</summary>
    public readonly ushort EtherType;
    /// <summary>Offset of the network layer; equals Frame.Length when nothing follows.</summary>
    public readonly int L3;
    /// <summary>4 or 6 when an IPv4 or IPv6 header is complete; 0 otherwise.</summary>
    public readonly int IpVersion;
    /// <summary>The upper-layer protocol (after IPv6 extension headers).</summary>
    public readonly byte Protocol;
    /// <summary>This datagram is a fragment (the MF bit or a non-zero offset).</summary>
    public readonly bool IsFragment;
    /// <summary>The fragment offset is not zero: no transport header here.</summary>
    public readonly bool IsLaterFragment;
    /// <summary>IPv6: the fragment header's identification, offset in bytes and M flag.</summary>
    public readonly uint Fragment6Id;
    public readonly int Fragment6Offset;
    public readonly bool Fragment6More;
    /// <summary>Offset of the transport header; -1 when there is none.</summary>
    public readonly int L4;
    /// <summary>The transport bytes the IP length claims, clipped to what was captured.</summary>
    public readonly int L4Length;
    /// <summary>The transport bytes the IP header claims (may exceed what was captured).</summary>
    public readonly int L4ClaimedLength;
    /// <summary>An ARP/RARP body for Ethernet and IPv4 (28 bytes) is all there.</summary>
    public readonly bool HasArp;

    public FrameLayout(ReadOnlySpan<byte> frame)
    {
        Frame = frame;
        L3 = frame.Length;
        L4 = -1;
        if (frame.Length < EthernetView.HeaderLength) return;
        ushort outer = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (outer == Kernel.Wire.EtherType.Vlan)
        {
            if (frame.Length < EthernetView.HeaderLength + EthernetView.TagLength) return;
            Tagged = true;
            ushort tci = BinaryPrimitives.ReadUInt16BigEndian(frame[14..]);
            VlanId = (ushort)(tci & 0x0FFF);
            Priority = (byte)(tci >> 13);
            EtherType = BinaryPrimitives.ReadUInt16BigEndian(frame[16..]);
            L3 = 18;
        }
        else
        {
            EtherType = outer;
            L3 = 14;
        }
        HasEther = true;
        var net = frame[L3..];
        switch (EtherType)
        {
            case Kernel.Wire.EtherType.Arp or EtherTypeRarp:
                HasArp = net.Length >= 28 && net[4] == 6 && net[5] == 4;
                break;
            case Kernel.Wire.EtherType.Ipv4:
                if (net.Length < 20 || (net[0] >> 4) != 4) return;
                int ihl = (net[0] & 0xF) * 4;
                if (ihl < 20 || ihl > net.Length) return;
                IpVersion = 4;
                Protocol = net[9];
                ushort off = BinaryPrimitives.ReadUInt16BigEndian(net[6..]);
                IsLaterFragment = (off & 0x1FFF) != 0;
                IsFragment = IsLaterFragment || (off & 0x2000) != 0;
                int total = BinaryPrimitives.ReadUInt16BigEndian(net[2..]);
                L4ClaimedLength = Math.Max(0, total - ihl);
                if (!IsLaterFragment)
                {
                    L4 = L3 + ihl;
                    L4Length = Math.Min(L4ClaimedLength, net.Length - ihl);
                }
                break;
            case Kernel.Wire.EtherType.Ipv6:
                if (net.Length < 40 || (net[0] >> 4) != 6) return;
                IpVersion = 6;
                int remaining = BinaryPrimitives.ReadUInt16BigEndian(net[4..]);
                byte next = net[6];
                int at = 40;
                // Walk the extension headers snoop knows; stop at anything cut short.
                while (next is Ipv6HopByHop or Ipv6Routing or Ipv6Fragment or Ipv6DestOptions)
                {
                    if (net.Length - at < 8) { Protocol = next; return; }
                    int len = next == Ipv6Fragment ? 8 : 8 + net[at + 1] * 8;
                    if (next == Ipv6Fragment)
                    {
                        ushort fo = BinaryPrimitives.ReadUInt16BigEndian(net[(at + 2)..]);
                        IsLaterFragment |= (fo & 0xFFF8) != 0;
                        IsFragment = true;
                        Fragment6Offset = fo & 0xFFF8;
                        Fragment6More = (fo & 1) != 0;
                        Fragment6Id = BinaryPrimitives.ReadUInt32BigEndian(net[(at + 4)..]);
                    }
                    if (net.Length - at < len) { Protocol = next; return; }
                    next = net[at];
                    at += len;
                    remaining -= len;
                }
                Protocol = next;
                L4ClaimedLength = Math.Max(0, remaining);
                if (!IsLaterFragment)
                {
                    L4 = L3 + at;
                    L4Length = Math.Min(L4ClaimedLength, net.Length - at);
                }
                break;
        }
    }

    public MacAddress Destination => MacAddress.Read(Frame);
    public MacAddress Source => MacAddress.Read(Frame[6..]);
    public ReadOnlySpan<byte> Network => Frame[L3..];
    public ReadOnlySpan<byte> Transport => L4 < 0 ? default : Frame.Slice(L4, L4Length);

    public uint Ipv4Source => BinaryPrimitives.ReadUInt32BigEndian(Frame[(L3 + 12)..]);
    public uint Ipv4Destination => BinaryPrimitives.ReadUInt32BigEndian(Frame[(L3 + 16)..]);
    public ReadOnlySpan<byte> Ipv6Source => Frame.Slice(L3 + 8, 16);
    public ReadOnlySpan<byte> Ipv6Destination => Frame.Slice(L3 + 24, 16);

    public ushort ArpOperation => BinaryPrimitives.ReadUInt16BigEndian(Frame[(L3 + 6)..]);
    public MacAddress ArpSenderMac => MacAddress.Read(Frame[(L3 + 8)..]);
    public uint ArpSenderIp => BinaryPrimitives.ReadUInt32BigEndian(Frame[(L3 + 14)..]);
    public MacAddress ArpTargetMac => MacAddress.Read(Frame[(L3 + 18)..]);
    public uint ArpTargetIp => BinaryPrimitives.ReadUInt32BigEndian(Frame[(L3 + 24)..]);

    /// <summary>TCP or UDP with at least the two port fields captured.</summary>
    public bool HasPorts => L4 >= 0 && L4Length >= 4 && Protocol is IpProtocol.Tcp or IpProtocol.Udp;
    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(Frame[L4..]);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(Frame[(L4 + 2)..]);
}
