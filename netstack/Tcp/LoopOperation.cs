using System.Diagnostics;
using System.Threading.Tasks.Sources;
using SmartOS.Kernel;

namespace SmartOS.Netstack.Tcp;

/// <summary>Decides whether a pending socket call can finish now; throws its error.</summary>
internal delegate bool LoopResolver<T>(out T result);

/// <summary>
/// One pending socket call (TcpProtocol.cs rule 6). When the connection has news it calls
/// <see cref="Wake"/>; a reusable zero-delay KTimer then runs the resolver and the caller's
/// continuation on the loop with the loop's synchronization context current. Reused for every
/// call of its kind on a socket, so a steady stream of sends or receives allocates nothing here.
/// </summary>
internal sealed class LoopOperation<T> : IValueTaskSource<T>, IValueTaskSource
{
    private ManualResetValueTaskSourceCore<T> _core;
    private readonly KTimer _dispatch;
    private readonly SynchronizationContext _context;
    private readonly LoopResolver<T> _resolve;

    public LoopOperation(TcpProtocol tcp, LoopResolver<T> resolve)
    {
        _context = tcp.Context;
        _resolve = resolve;
        _dispatch = new KTimer(tcp.Scheduler, static s => ((LoopOperation<T>)s!).Dispatch(), this);
    }

    public bool Pending { get; private set; }

    /// <summary>Starts a call: completes at once when the resolver says so, otherwise waits for Wake.</summary>
    public ValueTask<T> Start()
    {
        if (Pending) throw new InvalidOperationException("another call of this kind is already pending on the socket");
        if (_resolve(out T now)) return new ValueTask<T>(now);
        Pending = true;
        _core.Reset();
        return new ValueTask<T>(this, _core.Version);
    }

    public ValueTask StartVoid()
    {
        if (Pending) throw new InvalidOperationException("another call of this kind is already pending on the socket");
        if (_resolve(out _)) return ValueTask.CompletedTask;
        Pending = true;
        _core.Reset();
        return new ValueTask(this, _core.Version);
    }

    public void Wake()
    {
        if (Pending && !_dispatch.IsArmed) _dispatch.ArmAfter(0);
    }

    private void Dispatch()
    {
        if (!Pending) return;
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(_context);
        try
        {
            T result;
            bool done;
            try { done = _resolve(out result); }
            catch (Exception e)
            {
                Pending = false;
                _core.SetException(e);
                return;
            }
            if (!done) return;
            Pending = false;
            _core.SetResult(result);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    public T GetResult(short token) => _core.GetResult(token);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    // The continuation runs inline from Dispatch, which is already on the loop with the loop's
    // context current; the caller's captured context is deliberately not used.
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        Debug.Assert(Pending || _core.GetStatus(token) != ValueTaskSourceStatus.Pending);
        _core.OnCompleted(continuation, state, token, ValueTaskSourceOnCompletedFlags.None);
    }
}
