namespace SmartOS.Storage.Send;

/// <summary>
/// The running fletcher-4 of a send stream (fletcher_4_incremental_native): the sums continue
/// across records as if the stream were one buffer. A chunk's own sums (A, B, C, D over its n words)
/// join the running state (a, b, c, d) by the identities a' = a + A, b' = b + n·a + B,
/// c' = c + n·b + n(n+1)/2·a + C, d' = d + n·c + n(n+1)/2·b + n(n+1)(n+2)/6·a + D (each earlier
/// word's weight grows by the n words that follow it), so a chunk is summed by the vectorised
/// <see cref="Checksum.Fletcher4"/> and not one word at a time.
/// </summary>
public struct StreamChecksum
{
    private ulong _a, _b, _c, _d;

    public readonly BlockChecksum Value => new(_a, _b, _c, _d);

    public void Add(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        BlockChecksum chunk = Checksum.Fletcher4(data);
        ulong n = (ulong)(data.Length / 4);
        ulong t2 = n * (n + 1) / 2;
        // n(n+1)(n+2)/6 without overflow for any n that fits a span: divide before multiplying.
        ulong t3 = Tetrahedral(n);
        ulong a = _a, b = _b, c = _c, d = _d;
        _a = a + chunk.W0;
        _b = b + n * a + chunk.W1;
        _c = c + n * b + t2 * a + chunk.W2;
        _d = d + n * c + t2 * b + t3 * a + chunk.W3;
    }

    private static ulong Tetrahedral(ulong n)
    {
        ulong x = n, y = n + 1, z = n + 2;
        if (x % 2 == 0) x /= 2; else y /= 2;
        if (x % 3 == 0) x /= 3; else if (y % 3 == 0) y /= 3; else z /= 3;
        return x * y * z;
    }
}
