namespace SmartOS.Cli.Daemon;

/// <summary>
/// The frames waiting to go to one daemon client (DaemonServer.cs rule 3), in the order the command
/// made them, stdout and stderr interleaved as written. Thread-safe: the command adds frames on the
/// loop (or its copies' threads), the connection's sender takes them off on the thread pool.
///
/// Two bounds. A writer that can wait (WriteAsync: nc, zlogin's copies) waits while more than
/// <see cref="DaemonLimits.OutputBound"/> bytes wait, which passes a slow reader's pace back to the
/// data's source (a TCP window, a Linux pipe). A synchronous write (a text command's WriteLine on the
/// loop) cannot wait without stopping the loop, so it always goes in; past
/// <see cref="DaemonLimits.OutputLimit"/> the queue overflows: further output is dropped and the
/// command is cancelled, as a client that does not read its output has gone in all but name.
/// Control frames (R, X, the daemon's own messages) go in regardless.
/// </summary>
internal sealed class OutputQueue(DaemonLimits limits, Action overflowed)
{
    private readonly Queue<byte[]> _frames = new();
    private long _bytes;
    private bool _done, _overflowed;
    private TaskCompletionSource? _dataWaiter, _roomWaiter;

    public bool Overflowed
    {
        get { lock (_frames) return _overflowed; }
    }

    /// <summary>Adds a frame; false when it was dropped (overflow, or the connection is done).</summary>
    public bool Add(byte type, ReadOnlySpan<byte> payload, bool control = false)
    {
        var frame = Protocol.Frame(type, payload);
        TaskCompletionSource? wake = null;
        bool overflow = false;
        lock (_frames)
        {
            if (_done || (_overflowed && !control)) return false;
            if (!control && _bytes + frame.Length > limits.OutputLimit)
            {
                _overflowed = overflow = true;
            }
            else
            {
                _frames.Enqueue(frame);
                _bytes += frame.Length;
                wake = _dataWaiter;
                _dataWaiter = null;
            }
        }
        wake?.TrySetResult();
        if (overflow) overflowed();
        return !overflow;
    }

    /// <summary>Completes when the waiting bytes are within the bound (or the connection is done).</summary>
    public Task WaitForRoomAsync(CancellationToken cancel)
    {
        lock (_frames)
        {
            if (_bytes <= limits.OutputBound || _done) return Task.CompletedTask;
            _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _roomWaiter.Task.WaitAsync(cancel);
        }
    }

    /// <summary>The next frame, if one waits and is at most <paramref name="most"/> bytes.</summary>
    public byte[]? TryTake(int most)
    {
        lock (_frames) return _frames.Count > 0 && _frames.Peek().Length <= most ? TakeLocked() : null;
    }

    private byte[] TakeLocked()
    {
        var frame = _frames.Dequeue();
        _bytes -= frame.Length;
        if (_bytes <= limits.OutputBound)
        {
            _roomWaiter?.TrySetResult();
            _roomWaiter = null;
        }
        return frame;
    }

    /// <summary>The next frame to send; null when the queue is complete and empty.</summary>
    public async Task<byte[]?> TakeAsync()
    {
        while (true)
        {
            Task wait;
            lock (_frames)
            {
                if (_frames.Count > 0) return TakeLocked();
                if (_done) return null;
                _dataWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _dataWaiter.Task;
            }
            await wait.ConfigureAwait(false);
        }
    }

    /// <summary>No more frames will be added: the sender ends once the queue is empty, and writers stop waiting.</summary>
    public void Complete()
    {
        TaskCompletionSource? data, room;
        lock (_frames)
        {
            _done = true;
            data = _dataWaiter;
            room = _roomWaiter;
            _dataWaiter = _roomWaiter = null;
        }
        data?.TrySetResult();
        room?.TrySetResult();
    }

    /// <summary>Drops what waits and completes (the client is gone).</summary>
    public void Abandon()
    {
        lock (_frames)
        {
            _frames.Clear();
            _bytes = 0;
        }
        Complete();
    }
}

/// <summary>A command's stdout or stderr on a daemon connection: what it writes goes out as O or E
/// frames of at most <see cref="Protocol.Chunk"/> bytes, through the connection's OutputQueue.</summary>
internal sealed class FrameOutputStream(OutputQueue queue, byte type) : OutputOnlyStream
{
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        for (int off = 0; off < buffer.Length; off += Protocol.Chunk)
            if (!queue.Add(type, buffer.Slice(off, Math.Min(Protocol.Chunk, buffer.Length - off)))) return;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        for (int off = 0; off < buffer.Length; off += Protocol.Chunk)
        {
            await queue.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
            if (!queue.Add(type, buffer.Span.Slice(off, Math.Min(Protocol.Chunk, buffer.Length - off)))) return;
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

}

/// <summary>
/// A command's stdin on a daemon connection (Protocol.cs, "input is pulled"): a read that finds
/// nothing buffered asks the client for up to <see cref="Protocol.Chunk"/> bytes with an R frame and
/// waits for the I frame that answers; one request is kept ahead, so at most two chunks are held.
/// Reads are async only: a blocking read would stop the kernel loop (Dispatcher.cs rule 6).
/// </summary>
internal sealed class RemoteInputStream(OutputQueue queue) : InputOnlyStream
{
    private readonly Queue<byte[]> _chunks = new();
    private int _offset;
    private long _buffered;
    private bool _eof, _requested;
    private TaskCompletionSource? _waiter;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0) return 0;
        while (true)
        {
            Task wait;
            lock (_chunks)
            {
                if (_chunks.Count > 0)
                {
                    var head = _chunks.Peek();
                    int n = Math.Min(buffer.Length, head.Length - _offset);
                    head.AsSpan(_offset, n).CopyTo(buffer.Span);
                    _offset += n;
                    _buffered -= n;
                    if (_offset == head.Length)
                    {
                        _chunks.Dequeue();
                        _offset = 0;
                    }
                    RequestLocked();
                    return n;
                }
                if (_eof) return 0;
                RequestLocked();
                _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _waiter.Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void RequestLocked()
    {
        if (_requested || _eof || _buffered >= Protocol.Chunk) return;
        _requested = true;
        queue.Add(Protocol.ReadRequest, Protocol.Int32(Protocol.Chunk), control: true);
    }

    /// <summary>An I frame from the client; false when none was asked for or it is too long (a
    /// protocol error).</summary>
    public bool Supply(byte[] data)
    {
        TaskCompletionSource? wake;
        lock (_chunks)
        {
            if (!_requested || data.Length > Protocol.Chunk) return false;
            _requested = false;
            if (data.Length == 0) _eof = true;
            else
            {
                _chunks.Enqueue(data);
                _buffered += data.Length;
            }
            wake = _waiter;
            _waiter = null;
        }
        wake?.TrySetResult();
        return true;
    }

    /// <summary>The client is gone: reads see end of input.</summary>
    public void End()
    {
        TaskCompletionSource? wake;
        lock (_chunks)
        {
            _eof = true;
            wake = _waiter;
            _waiter = null;
        }
        wake?.TrySetResult();
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
        => throw new NotSupportedException("a daemon client's standard input is read with ReadAsync: a blocking read would stop the kernel loop");

}
