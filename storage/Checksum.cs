using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Security.Cryptography;

namespace SmartOS.Storage;

/// <summary>The checksum a block pointer names for its block (ZFS's `checksum` property values).</summary>
public enum ChecksumKind : byte
{
    Fletcher4 = 1,
    Sha256 = 2,
    Blake3 = 3,
}

/// <summary>A 256-bit block checksum as ZFS's zio_cksum_t holds it: four 64-bit words.</summary>
public readonly record struct BlockChecksum(ulong W0, ulong W1, ulong W2, ulong W3)
{
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, W0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], W1);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], W2);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[24..], W3);
    }

    public static BlockChecksum ReadFrom(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[24..]));

    public override string ToString() => $"{W0:x}:{W1:x}:{W2:x}:{W3:x}";
}

/// <summary>
/// Block checksums (Pool.cs rule 2). Fletcher-4 is written here as OpenZFS computes it
/// (zfs_fletcher.c): the block is a sequence of 32-bit little-endian words w, and four 64-bit sums
/// run over it, a += w; b += a; c += b; d += c, wrapping modulo 2^64. The digests (sha256, blake3)
/// are taken as their 32 bytes read as four little-endian words, so one struct holds every kind.
/// </summary>
public static class Checksum
{
    public static BlockChecksum Compute(ChecksumKind kind, ReadOnlySpan<byte> data) => kind switch
    {
        ChecksumKind.Fletcher4 => Fletcher4(data),
        ChecksumKind.Sha256 => Sha256(data),
        ChecksumKind.Blake3 => Blake3(data),
        _ => ThrowUnknownKind(kind),
    };

    public static string Name(ChecksumKind kind) => kind switch
    {
        ChecksumKind.Fletcher4 => "fletcher4",
        ChecksumKind.Sha256 => "sha256",
        ChecksumKind.Blake3 => "blake3",
        _ => "unknown",
    };

    public static bool TryParse(string name, out ChecksumKind kind)
    {
        switch (name)
        {
            case "on": case "fletcher4": kind = ChecksumKind.Fletcher4; return true;
            case "sha256": kind = ChecksumKind.Sha256; return true;
            case "blake3": kind = ChecksumKind.Blake3; return true;
            default: kind = default; return false;
        }
    }

    /// <summary>
    /// Fletcher-4 over whole 32-bit words (a trailing partial word is ignored, as in OpenZFS; block
    /// sizes here are multiples of 512). Four interleaved lanes each run the four sums over every
    /// fourth word, so the additions of different lanes do not wait on each other; the lanes are then
    /// combined into the one serial result (the identities OpenZFS's superscalar4 variant uses: lane
    /// j's word k sits at serial position 4k+j, and b, c, d weight a word by its distance from the end
    /// as 1, n, n(n+1)/2 expand). The serial loop finishes the words that do not fill a group of four.
    /// Where 256-bit vectors are fast (AVX2) the four lanes are one Vector256 of ulongs, fed eight
    /// words at a time as two widened halves (OpenZFS's fletcher_4_avx2 does the same): the storage
    /// benchmark measured the scalar lanes as the largest cost of a read besides the copy itself.
    /// </summary>
    public static BlockChecksum Fletcher4(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<uint> words = MemoryMarshal.Cast<byte, uint>(data);
        if (!BitConverter.IsLittleEndian) return Fletcher4Serial(data, 0, 0, 0, 0);
        int groups = words.Length / 4;
        ulong a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        ulong c0 = 0, c1 = 0, c2 = 0, c3 = 0, d0 = 0, d1 = 0, d2 = 0, d3 = 0;
        int start = 0;
        if (Vector256.IsHardwareAccelerated && words.Length >= 8)
        {
            Vector256<ulong> va = default, vb = default, vc = default, vd = default;
            ref uint first = ref MemoryMarshal.GetReference(words);
            for (; start + 8 <= words.Length; start += 8)
            {
                var eight = Vector256.LoadUnsafe(ref first, (nuint)start);
                va += Vector256.WidenLower(eight); vb += va; vc += vb; vd += vc;
                va += Vector256.WidenUpper(eight); vb += va; vc += vb; vd += vc;
            }
            (a0, a1, a2, a3) = (va[0], va[1], va[2], va[3]);
            (b0, b1, b2, b3) = (vb[0], vb[1], vb[2], vb[3]);
            (c0, c1, c2, c3) = (vc[0], vc[1], vc[2], vc[3]);
            (d0, d1, d2, d3) = (vd[0], vd[1], vd[2], vd[3]);
        }
        for (int i = start; i < groups * 4; i += 4)
        {
            a0 += words[i]; a1 += words[i + 1]; a2 += words[i + 2]; a3 += words[i + 3];
            b0 += a0; b1 += a1; b2 += a2; b3 += a3;
            c0 += b0; c1 += b1; c2 += b2; c3 += b3;
            d0 += c0; d1 += c1; d2 += c2; d3 += c3;
        }
        ulong a = a0 + a1 + a2 + a3;
        ulong b = 0 - a1 - 2 * a2 - 3 * a3 + 4 * (b0 + b1 + b2 + b3);
        ulong c = a2 + 3 * a3 - 6 * b0 - 10 * b1 - 14 * b2 - 18 * b3 + 16 * (c0 + c1 + c2 + c3);
        ulong d = 0 - a3 + 4 * b0 + 10 * b1 + 20 * b2 + 34 * b3
                  - 48 * c0 - 64 * c1 - 80 * c2 - 96 * c3 + 64 * (d0 + d1 + d2 + d3);
        return Fletcher4Serial(data[(groups * 16)..], a, b, c, d);
    }

    /// <summary>The definition, one word at a time, continuing from a running state.</summary>
    public static BlockChecksum Fletcher4Serial(ReadOnlySpan<byte> data, ulong a, ulong b, ulong c, ulong d)
    {
        for (int i = 0; i + 4 <= data.Length; i += 4)
        {
            a += BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
            b += a; c += b; d += c;
        }
        return new BlockChecksum(a, b, c, d);
    }

    public static BlockChecksum Sha256(ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(data, digest);
        return BlockChecksum.ReadFrom(digest);
    }

    public static BlockChecksum Blake3(ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[32];
        global::Blake3.Hasher.Hash(data, digest);
        return BlockChecksum.ReadFrom(digest);
    }

    private static BlockChecksum ThrowUnknownKind(ChecksumKind kind) =>
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown checksum kind");
}
