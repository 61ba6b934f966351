using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using SmartOS.Cli.Observe;

namespace SmartOS.Cli.Dashboard;

/// <summary>
/// The event streams of the dashboard (DashboardServer.cs rule 4).
///
/// The loop offers each tick's snapshot to one small inbox and returns at once (TryWrite; when the
/// broadcaster is behind, the oldest snapshot waiting is replaced: only the newest matters). The
/// broadcaster thread serialises each snapshot once into an SSE message and offers it to every
/// client's queue, bounded at QueueLength; a full queue (a browser that reads nothing, a stalled
/// tab) loses the message and the loss is counted in Dropped. Each client's writer task drains its
/// own queue into its response, so one slow client delays no one else, and never the loop.
///
/// A "topology" message (tools/Observe/Topology.cs, serialised) precedes a tick whenever the graph
/// differs from the last one sent, its clock aside, so pages redraw the graph only then.
/// </summary>
internal sealed class EventHub(int queueLength) : IDisposable
{
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private readonly Channel<(TickView Tick, Topology Topology)> _inbox =
        Channel.CreateBounded<(TickView, Topology)>(new BoundedChannelOptions(2) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly Lock _lock = new();
    private readonly List<Channel<byte[]>> _clients = [];
    private readonly CancellationTokenSource _stop = new();
    private Task? _broadcasting;
    private long _dropped;
    private string? _lastGraph;
    private byte[]? _lastTopology;

    /// <summary>Messages lost because a client's queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public int Clients
    {
        get { lock (_lock) return _clients.Count; }
    }

    public void Start() => _broadcasting = Task.Run(BroadcastAsync);

    /// <summary>Offers a tick and the topology, both copies taken on the loop; never waits.</summary>
    public void Offer(TickView tick, Topology topology) => _inbox.Writer.TryWrite((tick, topology));

    private async Task BroadcastAsync()
    {
        try
        {
            await foreach (var (tick, topology) in _inbox.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                string graph = JsonSerializer.Serialize(topology with { TimeNs = 0 }, s_json);
                if (graph != _lastGraph)
                {
                    _lastGraph = graph;
                    _lastTopology = Message("topology", topology);
                    Send(_lastTopology);
                }
                Send(Message("tick", tick));
            }
        }
        catch (OperationCanceledException) { }
    }

    private static byte[] Message<T>(string name, T body)
        => Encoding.UTF8.GetBytes($"event: {name}\ndata: {JsonSerializer.Serialize(body, s_json)}\n\n");

    private void Send(byte[] message)
    {
        lock (_lock)
        {
            foreach (var c in _clients)
                if (!c.Writer.TryWrite(message)) Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>Serves one client until it goes away or the hub stops: the last topology first, so a
    /// new page draws at once, then every message as it comes.</summary>
    public async Task ServeAsync(Stream body, Func<CancellationToken, Task> flush, CancellationToken aborted)
    {
        var queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(queueLength) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        lock (_lock)
        {
            if (_lastTopology != null) queue.Writer.TryWrite(_lastTopology);
            _clients.Add(queue);
        }
        using var both = CancellationTokenSource.CreateLinkedTokenSource(aborted, _stop.Token);
        try
        {
            await body.WriteAsync(": connected\n\n"u8.ToArray(), both.Token).ConfigureAwait(false);
            await flush(both.Token).ConfigureAwait(false);
            await foreach (var message in queue.Reader.ReadAllAsync(both.Token).ConfigureAwait(false))
            {
                await body.WriteAsync(message, both.Token).ConfigureAwait(false);
                await flush(both.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
        finally
        {
            lock (_lock) _clients.Remove(queue);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _inbox.Writer.TryComplete();
        _broadcasting?.Wait(TimeSpan.FromSeconds(2));
    }
}
