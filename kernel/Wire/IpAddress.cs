using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace SmartOS.Kernel.Wire;

/// <summary>
/// An IPv4 or IPv6 address as a value (no allocation, unlike System.Net.IPAddress). IPv4 is held
/// in the low 32 bits of <see cref="Low"/> with <see cref="IsV4"/> set.
/// </summary>
public readonly struct IpAddress : IEquatable<IpAddress>, IComparable<IpAddress>
{
    public readonly ulong High;
    public readonly ulong Low;
    public readonly bool IsV4;

    private IpAddress(ulong high, ulong low, bool v4) { High = high; Low = low; IsV4 = v4; }

    public static IpAddress V4(uint raw) => new(0, raw, true);
    public static IpAddress V6(ulong high, ulong low) => new(high, low, false);
    public static readonly IpAddress AnyV4 = V4(0);
    public static readonly IpAddress BroadcastV4 = V4(0xFFFFFFFF);
    public static readonly IpAddress AnyV6 = V6(0, 0);

    public uint V4Raw => (uint)Low;
    public bool IsV6 => !IsV4;
    public bool IsUnspecified => High == 0 && Low == 0;
    public bool IsMulticast => IsV4 ? (V4Raw >> 28) == 0xE : (High >> 56) == 0xFF;
    public bool IsLinkLocalV6 => !IsV4 && (High >> 54) == (0xFE80UL >> 6);
    public bool IsLoopback => IsV4 ? (V4Raw >> 24) == 127 : High == 0 && Low == 1;

    public static IpAddress Read(ReadOnlySpan<byte> b, bool v4)
        => v4 ? V4(BinaryPrimitives.ReadUInt32BigEndian(b))
              : V6(BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadUInt64BigEndian(b[8..]));

    public void Write(Span<byte> b)
    {
        if (IsV4) BinaryPrimitives.WriteUInt32BigEndian(b, V4Raw);
        else
        {
            BinaryPrimitives.WriteUInt64BigEndian(b, High);
            BinaryPrimitives.WriteUInt64BigEndian(b[8..], Low);
        }
    }

    public int ByteLength => IsV4 ? 4 : 16;

    public static bool TryParse(string? text, out IpAddress address)
    {
        address = default;
        if (string.IsNullOrEmpty(text) || !IPAddress.TryParse(text, out var ip)) return false;
        if (ip.AddressFamily == AddressFamily.InterNetwork && !text.Contains(':'))
        {
            // IPAddress.TryParse accepts "1" or "1.2"; dotted quads only.
            if (text.Split('.').Length != 4) return false;
        }
        address = FromIPAddress(ip);
        return true;
    }

    public static IpAddress FromIPAddress(IPAddress ip)
    {
        Span<byte> b = stackalloc byte[16];
        ip.TryWriteBytes(b, out int n);
        return Read(b, n == 4);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> b = stackalloc byte[16];
        Write(b);
        return new IPAddress(b[..ByteLength]);
    }

    /// <summary>True when the first <paramref name="prefix"/> bits equal <paramref name="network"/>'s.</summary>
    public bool InPrefix(IpAddress network, int prefix)
    {
        if (IsV4 != network.IsV4) return false;
        if (IsV4)
        {
            if (prefix <= 0) return true;
            uint mask = prefix >= 32 ? 0xFFFFFFFF : ~(0xFFFFFFFFu >> prefix);
            return (V4Raw & mask) == (network.V4Raw & mask);
        }
        if (prefix <= 0) return true;
        if (prefix <= 64)
        {
            ulong m = prefix == 64 ? ulong.MaxValue : ~(ulong.MaxValue >> prefix);
            return (High & m) == (network.High & m);
        }
        ulong ml = prefix >= 128 ? ulong.MaxValue : ~(ulong.MaxValue >> (prefix - 64));
        return High == network.High && (Low & ml) == (network.Low & ml);
    }

    public override string ToString() => IsV4
        ? $"{V4Raw >> 24}.{(V4Raw >> 16) & 0xFF}.{(V4Raw >> 8) & 0xFF}.{V4Raw & 0xFF}"
        : ToIPAddress().ToString();

    public bool Equals(IpAddress o) => High == o.High && Low == o.Low && IsV4 == o.IsV4;
    public override bool Equals(object? obj) => obj is IpAddress o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(High, Low, IsV4);
    public int CompareTo(IpAddress o)
    {
        int c = IsV4.CompareTo(o.IsV4);
        if (c != 0) return -c;
        c = High.CompareTo(o.High);
        return c != 0 ? c : Low.CompareTo(o.Low);
    }
    public static bool operator ==(IpAddress a, IpAddress b) => a.Equals(b);
    public static bool operator !=(IpAddress a, IpAddress b) => !a.Equals(b);
}
