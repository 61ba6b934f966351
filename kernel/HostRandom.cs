namespace SmartOS.Kernel;

/// <summary>
/// The seeded random source of a host (Kernel.cs rule 1): xoshiro256** seeded through SplitMix64,
/// written out here so a seed gives the same sequence on every runtime version.
/// </summary>
public sealed class HostRandom : IIdentitySource
{
    private ulong _s0, _s1, _s2, _s3;

    public HostRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    /// <summary>Derives a stable seed from a world seed and a name (a host's, a wire's).</summary>
    public static ulong Derive(ulong seed, string name)
    {
        ulong h = 14695981039346656037UL ^ seed;
        foreach (char c in name) { h ^= c; h *= 1099511628211UL; }
        return h;
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    public uint NextUInt32() => (uint)(NextUInt64() >> 32);

    /// <summary>A double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>An integer in [0, max).</summary>
    public int Next(int max) => max <= 0 ? 0 : (int)((NextUInt64() >> 33) % (ulong)max);

    public void NextBytes(Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = (byte)(NextUInt64() >> 56);
    }
}
