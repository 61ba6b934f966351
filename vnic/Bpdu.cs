using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>A bridge identifier (IEEE 802.1D 9.2.5): a 16-bit priority and a MAC address, compared
/// as one 64-bit number (lower is better). Printed as dladm's fmt_bridge_id prints it: the priority in
/// decimal, a slash, and the address in lowercase hex without leading zeros ("32768/0:8:20:1a:0:1").</summary>
public readonly record struct BridgeId(ulong Value) : IComparable<BridgeId>
{
    public BridgeId(ushort priority, MacAddress address) : this(((ulong)priority << 48) | address.Value) { }

    public ushort Priority => (ushort)(Value >> 48);
    public MacAddress Address => new(Value & 0xFFFF_FFFF_FFFFUL);
    public int CompareTo(BridgeId other) => Value.CompareTo(other.Value);
    public static bool operator <(BridgeId a, BridgeId b) => a.Value < b.Value;
    public static bool operator >(BridgeId a, BridgeId b) => a.Value > b.Value;

    public override string ToString()
    {
        var a = Address;
        return $"{Priority}/{a[0]:x}:{a[1]:x}:{a[2]:x}:{a[3]:x}:{a[4]:x}:{a[5]:x}";
    }
}

public enum BpduType : byte { Config = 0x00, Tcn = 0x80, Rst = 0x02 }

/// <summary>
/// A spanning-tree BPDU (IEEE 802.1D-1998 clause 9), the representation of its two 802.1D kinds:
/// a Configuration BPDU (35 octets) and a Topology Change Notification (4 octets). On the wire it
/// rides in an 802.3 frame to the Bridge Group Address 01:80:c2:00:00:00 with an LLC header (DSAP and
/// SSAP 0x42, UI), padded to the 60-octet minimum; timers are in units of 1/256 s (9.2.8). Parse
/// accepts what 9.3.4 calls valid: a Config BPDU of at least 35 octets, a TCN of at least 4, an RST
/// BPDU (version 2, type 2, 36 octets) reported as such so the caller can count and ignore it.
/// </summary>
public readonly record struct Bpdu(
    BpduType Type, bool TopologyChange, bool TopologyChangeAck, BridgeId RootId, uint RootPathCost,
    BridgeId BridgeId, ushort PortId, ushort MessageAge, ushort MaxAge, ushort HelloTime, ushort ForwardDelay)
{
    public static readonly MacAddress GroupAddress = new(0x0180_C200_0000UL);
    public const int ConfigLength = 35;
    public const int TcnLength = 4;
    private const int LlcOffset = EthernetView.HeaderLength;
    private const int BpduOffset = LlcOffset + 3;
    public const int FrameLength = 60;

    /// <summary>Timer units per second in a BPDU (802.1D 9.2.8).</summary>
    public const int TimerScale = 256;

    public static Bpdu Tcn() => new(BpduType.Tcn, false, false, default, 0, default, 0, 0, 0, 0, 0);

    /// <summary>Whether a frame is addressed to the Bridge Group Address (the only reserved address
    /// this bridge consumes; 802.1D 7.12.6 says the others are never forwarded either).</summary>
    public static bool IsReserved(MacAddress dst) => (dst.Value & ~0xFUL) == GroupAddress.Value;

    /// <summary>Writes the frame (Ethernet, LLC, BPDU, padding) into <paramref name="frame"/>, which
    /// must be <see cref="FrameLength"/> long.</summary>
    public void Emit(Span<byte> frame, MacAddress source)
    {
        frame.Clear();
        GroupAddress.Write(frame);
        source.Write(frame[6..]);
        int length = 3 + (Type == BpduType.Tcn ? TcnLength : ConfigLength);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], (ushort)length);
        frame[LlcOffset] = 0x42;
        frame[LlcOffset + 1] = 0x42;
        frame[LlcOffset + 2] = 0x03;
        var b = frame[BpduOffset..];
        b[2] = 0; // protocol version 0: 802.1D STP
        b[3] = (byte)Type;
        if (Type == BpduType.Tcn) return;
        b[4] = (byte)((TopologyChange ? 0x01 : 0) | (TopologyChangeAck ? 0x80 : 0));
        BinaryPrimitives.WriteUInt64BigEndian(b[5..], RootId.Value);
        BinaryPrimitives.WriteUInt32BigEndian(b[13..], RootPathCost);
        BinaryPrimitives.WriteUInt64BigEndian(b[17..], BridgeId.Value);
        BinaryPrimitives.WriteUInt16BigEndian(b[25..], PortId);
        BinaryPrimitives.WriteUInt16BigEndian(b[27..], MessageAge);
        BinaryPrimitives.WriteUInt16BigEndian(b[29..], MaxAge);
        BinaryPrimitives.WriteUInt16BigEndian(b[31..], HelloTime);
        BinaryPrimitives.WriteUInt16BigEndian(b[33..], ForwardDelay);
    }

    /// <summary>Parses a frame to the group address; false for anything that is not a valid BPDU
    /// (no LLC 0x42, a protocol other than 0, too short for its type, an unknown type).</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, out Bpdu bpdu)
    {
        bpdu = default;
        if (frame.Length < BpduOffset + TcnLength) return false;
        int lengthField = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        if (lengthField > 1500 || lengthField < 3 + TcnLength) return false; // an EtherType, not an 802.3 length
        if (frame[LlcOffset] != 0x42 || frame[LlcOffset + 1] != 0x42 || frame[LlcOffset + 2] != 0x03) return false;
        var b = frame.Slice(BpduOffset, Math.Min(lengthField - 3, frame.Length - BpduOffset));
        if (BinaryPrimitives.ReadUInt16BigEndian(b) != 0) return false;
        byte type = b[3];
        if (type == (byte)BpduType.Tcn)
        {
            bpdu = Tcn();
            return true;
        }
        if (type == (byte)BpduType.Rst)
        {
            if (b.Length < ConfigLength + 1) return false;
            bpdu = new Bpdu(BpduType.Rst, false, false, default, 0, default, 0, 0, 0, 0, 0);
            return true;
        }
        if (type != (byte)BpduType.Config || b.Length < ConfigLength) return false;
        bpdu = new Bpdu(BpduType.Config, (b[4] & 0x01) != 0, (b[4] & 0x80) != 0,
            new BridgeId(BinaryPrimitives.ReadUInt64BigEndian(b[5..])), BinaryPrimitives.ReadUInt32BigEndian(b[13..]),
            new BridgeId(BinaryPrimitives.ReadUInt64BigEndian(b[17..])), BinaryPrimitives.ReadUInt16BigEndian(b[25..]),
            BinaryPrimitives.ReadUInt16BigEndian(b[27..]), BinaryPrimitives.ReadUInt16BigEndian(b[29..]),
            BinaryPrimitives.ReadUInt16BigEndian(b[31..]), BinaryPrimitives.ReadUInt16BigEndian(b[33..]));
        return true;
    }

    /// <summary>Nanoseconds in a BPDU timer value (1/256 s units).</summary>
    public static long ToNs(ushort units) => units * Time.Second / TimerScale;

    /// <summary>A BPDU timer value for nanoseconds, rounded down and clamped to 16 bits.</summary>
    public static ushort FromNs(long ns) => (ushort)Math.Clamp(ns * TimerScale / Time.Second, 0, ushort.MaxValue);
}
