using System.Runtime.InteropServices;

namespace SmartOS.Zones.Images;

/// <summary>
/// xz files for imgadm create -c xz, through liblzma (liblzma.so.5, XZ Utils' library: on every Debian
/// machine, since apt and dpkg link it), one buffer at a time with lzma_easy_buffer_encode: preset 6
/// and a CRC64 check, xz(1)'s defaults, so the file is what `xz -6` makes and the same bytes for the same
/// stream. No managed xz encoder restores here (SharpCompress reads xz but does not write it), and
/// reading stays managed (ImageStore). A machine without liblzma gets a clear error, not an exception.
/// </summary>
internal static unsafe partial class Xz
{
    private const string Library = "liblzma.so.5";
    private const uint Preset = 6;
    private const int CheckCrc64 = 4;   // LZMA_CHECK_CRC64
    private const int LzmaOk = 0;       // LZMA_OK

    [LibraryImport(Library)]
    private static partial nuint lzma_stream_buffer_bound(nuint uncompressedSize);

    [LibraryImport(Library)]
    private static partial int lzma_easy_buffer_encode(uint preset, int check, IntPtr allocator,
        byte* input, nuint inputSize, byte* output, nuint* outputPosition, nuint outputSize);

    /// <summary>The xz file of <paramref name="data"/>, or null with why.</summary>
    public static byte[]? Encode(ReadOnlySpan<byte> data, out string? error)
    {
        error = null;
        try
        {
            nuint bound = lzma_stream_buffer_bound((nuint)data.Length);
            if (bound == 0 || bound > int.MaxValue) { error = "the stream is too large for one xz buffer"; return null; }
            var output = new byte[(int)bound];
            nuint written = 0;
            int status;
            fixed (byte* input = data)
            fixed (byte* o = output)
                status = lzma_easy_buffer_encode(Preset, CheckCrc64, IntPtr.Zero, input, (nuint)data.Length, o, &written, bound);
            if (status != LzmaOk) { error = $"liblzma failed (lzma_ret {status})"; return null; }
            return output.AsSpan(0, (int)written).ToArray();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            error = $"xz compression needs {Library} (Debian's liblzma5), which this machine lacks";
            return null;
        }
    }
}
