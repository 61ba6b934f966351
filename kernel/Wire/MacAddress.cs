using System.Buffers.Binary;
using System.Globalization;

namespace SmartOS.Kernel.Wire;

/// <summary>A 48-bit Ethernet address held in the low bits of a ulong: cheap to compare and hash.</summary>
public readonly struct MacAddress : IEquatable<MacAddress>, IComparable<MacAddress>
{
    private readonly ulong _value;

    public MacAddress(ulong value) { _value = value & 0xFFFF_FFFF_FFFFUL; }

    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);
    public static readonly MacAddress Zero = new(0);

    public ulong Value => _value;
    public bool IsBroadcast => _value == 0xFFFF_FFFF_FFFFUL;
    /// <summary>The I/G bit: group (multicast or broadcast) addresses.</summary>
    public bool IsGroup => (_value & 0x0100_0000_0000UL) != 0;
    public bool IsMulticast => IsGroup && !IsBroadcast;
    /// <summary>The U/L bit: locally administered.</summary>
    public bool IsLocal => (_value & 0x0200_0000_0000UL) != 0;
    public bool IsZero => _value == 0;

    public static MacAddress Read(ReadOnlySpan<byte> six)
        => new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(six) << 32) | BinaryPrimitives.ReadUInt32BigEndian(six[2..]));

    public void Write(Span<byte> six)
    {
        BinaryPrimitives.WriteUInt16BigEndian(six, (ushort)(_value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(six[2..], (uint)_value);
    }

    public byte this[int i] => (byte)(_value >> (8 * (5 - i)));

    /// <summary>Parses "2:8:20:a:b:c", "02:08:20:0a:0b:0c" or "02-08-20-0a-0b-0c", as dladm accepts.</summary>
    public static bool TryParse(string? text, out MacAddress mac)
    {
        mac = default;
        if (string.IsNullOrEmpty(text)) return false;
        string[] parts = text.Split(text.Contains('-') ? '-' : ':');
        if (parts.Length != 6) return false;
        ulong v = 0;
        foreach (string part in parts)
        {
            if (part.Length is < 1 or > 2) return false;
            if (!byte.TryParse(part, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b)) return false;
            v = (v << 8) | b;
        }
        mac = new MacAddress(v);
        return true;
    }

    /// <summary>Parses a prefix of one to five octets ("2:8:20"), for dladm's -r option.</summary>
    public static bool TryParsePrefix(string text, out byte[] prefix)
    {
        prefix = [];
        string[] parts = text.Split(':');
        if (parts.Length is < 1 or > 5) return false;
        var bytes = new byte[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i].Length is < 1 or > 2) return false;
            if (!byte.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out bytes[i])) return false;
        }
        prefix = bytes;
        return true;
    }

    /// <summary>illumos style, as dladm and snoop print it: no leading zeros ("2:8:20:a:b:c").</summary>
    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"{this[0]:x}:{this[1]:x}:{this[2]:x}:{this[3]:x}:{this[4]:x}:{this[5]:x}");

    /// <summary>Two hex digits per octet ("02:08:20:0a:0b:0c"), as vmadm and Linux print it.</summary>
    public string ToPaddedString()
        => string.Create(CultureInfo.InvariantCulture, $"{this[0]:x2}:{this[1]:x2}:{this[2]:x2}:{this[3]:x2}:{this[4]:x2}:{this[5]:x2}");

    public bool Equals(MacAddress other) => _value == other._value;
    public override bool Equals(object? obj) => obj is MacAddress m && Equals(m);
    public override int GetHashCode() => _value.GetHashCode();
    public int CompareTo(MacAddress other) => _value.CompareTo(other._value);
    public static bool operator ==(MacAddress a, MacAddress b) => a._value == b._value;
    public static bool operator !=(MacAddress a, MacAddress b) => a._value != b._value;
}
