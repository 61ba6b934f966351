using System.Text;

namespace SmartOS.Cli;

/// <summary>
/// A command's bounded reads of its input (Dispatcher.cs rules 5 and 7): a payload file named with
/// -f, or all of standard input, read as text of at most <see cref="MaxBytes"/> bytes. On a host
/// that runs in real time the read happens off the kernel loop (a FIFO or a slow pipe must not stop
/// the zones' traffic) and the command awaits it; ^C abandons the wait. In virtual time (tests,
/// `smartos run`, the one-shot CLI) nothing else runs meanwhile, so the read is direct, which keeps
/// those runs deterministic.
/// </summary>
public static class CommandInput
{
    /// <summary>The most a command reads as one payload, and the largest frame of the daemon's socket
    /// (Daemon/Protocol.cs): a configuration is kilobytes, and each of hundreds of clients may hold one.</summary>
    public const int MaxBytes = 1 << 20;

    /// <summary>"1 MiB": how messages name the limit.</summary>
    public static string MaxBytesText => $"{MaxBytes >> 20} MiB";

    /// <summary>All of a binary stream (a zfs or vmadm send stream), or null past <paramref name="max"/>
    /// bytes; the caller reads it off the loop on a running host, as the text reads here are.</summary>
    public static byte[]? ReadBytes(Stream input, long max)
    {
        using var all = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = input.Read(buffer)) > 0)
        {
            if (all.Length + n > max) return null;
            all.Write(buffer, 0, n);
        }
        return all.ToArray();
    }

    /// <summary>Reads a file as UTF-8 text, or returns null with why (no such file, too large).</summary>
    public static async Task<(string? Text, string? Error)> ReadFileAsync(CommandContext ctx, string path)
    {
        string full = ctx.ResolvePath(path);
        if (ctx.World.Driver == null) return ReadFile(full);
        return await Task.Run(() => ReadFile(full)).WaitAsync(ctx.Cancel);
    }

    /// <summary>Reads all of standard input as UTF-8 text, or returns null with why. The caller has
    /// checked that there is a standard input.</summary>
    public static async Task<(string? Text, string? Error)> ReadStdinAsync(CommandContext ctx)
    {
        var stdin = ctx.StdinBytes ?? throw new InvalidOperationException("the command has no standard input");
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await stdin.ReadAsync(chunk, ctx.Cancel)) > 0)
        {
            if (buffer.Length + n > MaxBytes) return (null, TooLarge("standard input"));
            buffer.Write(chunk, 0, n);
        }
        return (Decode(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)), null);
    }

    private static (string? Text, string? Error) ReadFile(string path)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            var buffer = new byte[MaxBytes + 1];
            int got = 0, n;
            while (got < buffer.Length && (n = f.Read(buffer, got, buffer.Length - got)) > 0) got += n;
            if (got > MaxBytes) return (null, TooLarge(path));
            return (Decode(buffer.AsSpan(0, got)), null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, e.Message);
        }
    }

    private static string TooLarge(string what) => $"{what} is larger than {MaxBytesText}, the most a command reads as one payload";

    private static string Decode(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}

/// <summary>Collects a command's output bytes in memory for a front end that shows them afterwards
/// (tests, `smartos run`'s transcript, the dashboard's console). Writes may come from the loop while
/// another thread reads what is there so far, so every access holds the lock.
/// With a <c>limit</c> (the dashboard's console: DashboardServer.cs rule 5) the first write beyond it
/// keeps what fits, marks the capture <see cref="Overflowed"/> and calls <c>overflow</c> (which
/// cancels the command), so `snoop -d` or a `cat` of a large file cannot fill the memory; later
/// writes are dropped.</summary>
public sealed class OutputCapture(int limit = int.MaxValue, Action? overflow = null) : Stream
{
    private readonly MemoryStream _bytes = new();
    private bool _overflowed;

    /// <summary>True once a write went beyond the limit.</summary>
    public bool Overflowed
    {
        get { lock (_bytes) return _overflowed; }
    }

    public byte[] ToArray()
    {
        lock (_bytes) return _bytes.ToArray();
    }

    /// <summary>What was written, decoded as UTF-8 (bytes that are not UTF-8 show as U+FFFD).</summary>
    public override string ToString()
    {
        lock (_bytes) return Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        bool first = false;
        lock (_bytes)
        {
            if (_overflowed) return;
            long room = limit - _bytes.Length;
            if (buffer.Length > room)
            {
                _bytes.Write(buffer[..(int)room]);
                _overflowed = first = true;
            }
            else _bytes.Write(buffer);
        }
        if (first) overflow?.Invoke();
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    public override void Flush() { }
    // Stream's FlushAsync would run Flush on the thread pool, outside the loop's virtual time.
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length { get { lock (_bytes) return _bytes.Length; } }
    public override long Position { get => Length; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// A file or console stream for a front end in virtual time (`smartos run`'s redirections, the
/// one-shot CLI): its async reads and writes run synchronously on the caller's thread. A FileStream's
/// own async methods may finish on a pool thread, and a continuation that came back from there would
/// make the run depend on thread timing (Kernel.cs, determinism).
/// </summary>
public sealed class SynchronousStream(Stream inner) : Stream
{
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(inner.Read(buffer.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        inner.Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        inner.Flush();
        return Task.CompletedTask;
    }

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Keys typed at a terminal, as bytes, for a command line that takes keys (a guest's console:
/// CommandDescriptor.TerminalInput). Each read waits for one key, without echo (the guest echoes)
/// and with ^C read as a key (byte 3, for the guest, as on a real console; `~.` detaches instead).
/// Enter is CR, as a terminal in raw mode sends it. Keys without a character (arrows, function keys)
/// are not sent.
/// </summary>
public sealed class TerminalKeyStream : InputOnlyStream
{
    private readonly bool _treatControlC;

    public TerminalKeyStream()
    {
        _treatControlC = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        Span<char> one = stackalloc char[1];
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            one[0] = key.Key == ConsoleKey.Enter ? '\r' : key.KeyChar;
            if (one[0] == '\0') continue;
            if (Encoding.UTF8.GetByteCount(one) > buffer.Length) return 0;
            return Encoding.UTF8.GetBytes(one, buffer);
        }
    }


    protected override void Dispose(bool disposing)
    {
        if (disposing) Console.TreatControlCAsInput = _treatControlC;
        base.Dispose(disposing);
    }
}

/// <summary>What every read-only, unseekable stream of the command layer says of itself (a key
/// source, a daemon client's standard input, a capture's prefixed input): readable, never written,
/// no length or position, flushing nothing.</summary>
public abstract class InputOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>The same for a write-only, unseekable stream whose writes take effect at once, so
/// flushing has nothing to do.</summary>
public abstract class OutputOnlyStream : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
