using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.Compression;

namespace SmartOS.Storage.Send;

/// <summary>
/// OpenZFS's receive_resume_token (dsl_dataset.c get_receive_resume_stats, and libzfs's
/// zfs_send_resume_token_to_nvlist): "1-&lt;checksum&gt;-&lt;length&gt;-&lt;payload&gt;", where the payload
/// is the hex of a zlib stream (level 6) of a natively packed nvlist (<see cref="NvList.PackNative"/>)
/// holding "fromguid" (incremental only), "object", "offset", "bytes", "toguid" and "toname";
/// length is the packed nvlist's size and checksum the first word of the fletcher-4 of the
/// compressed bytes (whole 4-byte words only, as fletcher_4_native_varsize sums them), both in hex.
/// Decoding checks each of these in that order and refuses with libzfs's words.
/// </summary>
public static class ResumeToken
{
    public const uint Version = 1;

    public static string Encode(NvList contents)
    {
        byte[] packed = contents.PackNative();
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, new ZLibCompressionOptions { CompressionLevel = 6 }, leaveOpen: true))
            z.Write(packed);
        byte[] bytes = compressed.ToArray();
        return string.Create(CultureInfo.InvariantCulture, $"{Version}-{FirstWord(bytes):x}-{packed.Length:x}-{Convert.ToHexString(bytes).ToLowerInvariant()}");
    }

    /// <summary>The token's nvlist, or libzfs's reason ("resume token is corrupt (...)").</summary>
    public static bool TryDecode(string token, [NotNullWhen(true)] out NvList? contents, [NotNullWhen(false)] out string? error)
    {
        contents = null;
        string[] parts = token.Split('-');
        if (parts.Length < 4 || !uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out uint version)
            || !ulong.TryParse(parts[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong checksum)
            || !ulong.TryParse(parts[2], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong length))
        {
            error = "resume token is corrupt (invalid format)";
            return false;
        }
        if (version != Version)
        {
            error = $"resume token is corrupt (invalid version {version})";
            return false;
        }
        string hex = parts[^1];
        byte[] compressed;
        try { compressed = Convert.FromHexString(hex.Length % 2 == 0 ? hex : hex[..^1]); }
        catch (FormatException)
        {
            error = "resume token is corrupt (payload is not hex-encoded)";
            return false;
        }
        if (FirstWord(compressed) != checksum)
        {
            error = "resume token is corrupt (incorrect checksum)";
            return false;
        }
        byte[] packed;
        try
        {
            if (length > 1 << 20) throw new InvalidDataException();
            using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
            var output = new MemoryStream();
            z.CopyTo(output);
            packed = output.ToArray();
        }
        catch (InvalidDataException) { packed = []; }
        if (packed.Length == 0 || (ulong)packed.Length != length)
        {
            error = "resume token is corrupt (decompression failed)";
            return false;
        }
        if (!NvList.TryUnpackNative(packed, out contents, out _))
        {
            error = "resume token is corrupt (nvlist_unpack failed)";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>fletcher-4's first word (the plain sum of the little-endian 32-bit words).</summary>
    private static ulong FirstWord(ReadOnlySpan<byte> bytes)
    {
        ulong a = 0;
        for (int i = 0; i + 4 <= bytes.Length; i += 4) a += BinaryPrimitives.ReadUInt32LittleEndian(bytes[i..]);
        return a;
    }
}
