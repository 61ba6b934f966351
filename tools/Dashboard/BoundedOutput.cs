using System.Text;

namespace SmartOS.Cli.Dashboard;

/// <summary>
/// A console command's standard output or error (DashboardServer.cs rule 5): kept in memory up to a
/// limit; the first write beyond it keeps what fits, marks the output overflowed and calls
/// <c>overflow</c> (which cancels the command), so `snoop -d` or a `cat` of a large file cannot
/// fill the server's memory. Written on the loop, read by the handler after the command ends; the
/// lock covers a command that still writes while it is cancelled.
/// </summary>
internal sealed class BoundedOutput(int limit, Action overflow) : Stream
{
    private readonly MemoryStream _bytes = new();
    private bool _overflowed;

    public bool Overflowed
    {
        get { lock (_bytes) return _overflowed; }
    }

    public string Text
    {
        get { lock (_bytes) return Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length); }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        bool first = false;
        lock (_bytes)
        {
            if (_overflowed) return;
            int room = limit - (int)_bytes.Length;
            if (buffer.Length > room)
            {
                _bytes.Write(buffer[..room]);
                _overflowed = first = true;
            }
            else _bytes.Write(buffer);
        }
        if (first) overflow();
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
    // Stream's FlushAsync would run Flush on the thread pool, off the loop.
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
