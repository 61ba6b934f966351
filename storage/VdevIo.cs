using Microsoft.Win32.SafeHandles;

namespace SmartOS.Storage;

/// <summary>
/// The byte-level I/O of one leaf vdev. The pool reaches its files only through this, so a test can
/// wrap it to stop a commit after N writes, tear a write, or fail reads (Pool.cs rule 5).
/// </summary>
public interface IVdevIo : IDisposable
{
    /// <summary>Reads up to destination.Length bytes at offset; returns how many were read (short at end of file).</summary>
    int Read(long offset, Span<byte> destination);

    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every earlier write durable before any later one (fsync).</summary>
    void Flush();
}

/// <summary>Opens the I/O of a leaf vdev by path; the pool's default opens the file itself.</summary>
public delegate IVdevIo VdevOpener(string path, bool writable);

/// <summary>A file vdev: positional reads and writes on an unbuffered handle.</summary>
public sealed class FileVdevIo : IVdevIo
{
    private readonly SafeFileHandle _handle;
    private readonly FileStream _stream;   // only for Flush(true), which is fsync(3C)

    public FileVdevIo(string path, bool writable)
    {
        var access = writable ? FileAccess.ReadWrite : FileAccess.Read;
        _handle = File.OpenHandle(path, FileMode.Open, access, FileShare.ReadWrite, FileOptions.RandomAccess);
        _stream = new FileStream(_handle, access, bufferSize: 0);
    }

    public static readonly VdevOpener Opener = (path, writable) => new FileVdevIo(path, writable);

    public int Read(long offset, Span<byte> destination)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = RandomAccess.Read(_handle, destination[total..], offset + total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public void Write(long offset, ReadOnlySpan<byte> source) => RandomAccess.Write(_handle, source, offset);

    public void Flush() => _stream.Flush(flushToDisk: true);

    public void Dispose() => _stream.Dispose();
}

/// <summary>The I/O of a leaf whose file was missing at import: nothing reaches it (its state is Unavail).</summary>
internal sealed class MissingVdevIo : IVdevIo
{
    public static readonly MissingVdevIo Instance = new();

    public int Read(long offset, Span<byte> destination) => throw new IOException("device unavailable");

    public void Write(long offset, ReadOnlySpan<byte> source) => throw new IOException("device unavailable");

    public void Flush() => throw new IOException("device unavailable");

    public void Dispose() { }
}
