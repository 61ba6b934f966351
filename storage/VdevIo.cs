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

/// <summary>
/// A file vdev: positional reads and writes on an unbuffered handle. On Linux, once WritebackChunk
/// bytes have been written since the last start, the range they span is handed to the kernel's
/// writeback at once (sync_file_range with SYNC_FILE_RANGE_WRITE: start writing, wait for nothing),
/// as ZFS issues a txg's writes while it goes on preparing the next ones: the disk works while the
/// pool compresses and checksums, and the fsync that ends the txg (Flush) waits only for the tail.
/// It is advice only: what is durable is still what Flush made so; where the call fails it stops.
/// </summary>
public sealed partial class FileVdevIo : IVdevIo
{
    /// <summary>Bytes written between two starts of writeback (8 MiB: 64 blocks of 128 KiB).</summary>
    public const long WritebackChunk = 8L * 1024 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly FileStream _stream;   // only for Flush(true), which is fsync(3C)
    private long _dirtyLow = long.MaxValue, _dirtyHigh, _dirtyBytes;
    private bool _writeback = OperatingSystem.IsLinux();

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

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        RandomAccess.Write(_handle, source, offset);
        if (!_writeback) return;
        _dirtyLow = Math.Min(_dirtyLow, offset);
        _dirtyHigh = Math.Max(_dirtyHigh, offset + source.Length);
        _dirtyBytes += source.Length;
        if (_dirtyBytes >= WritebackChunk) StartWriteback();
    }

    private void StartWriteback()
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            if (SyncFileRange((int)_handle.DangerousGetHandle(), _dirtyLow, _dirtyHigh - _dirtyLow, SyncFileRangeWrite) != 0) _writeback = false;
        }
        finally
        {
            if (added) _handle.DangerousRelease();
        }
        _dirtyLow = long.MaxValue; _dirtyHigh = 0; _dirtyBytes = 0;
    }

    public void Flush()
    {
        _dirtyLow = long.MaxValue; _dirtyHigh = 0; _dirtyBytes = 0;
        _stream.Flush(flushToDisk: true);
    }

    private const uint SyncFileRangeWrite = 2;   // SYNC_FILE_RANGE_WRITE

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "sync_file_range")]
    private static partial int SyncFileRange(int fd, long offset, long length, uint flags);

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
