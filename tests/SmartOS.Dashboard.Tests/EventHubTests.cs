using SmartOS.Cli.Dashboard;
using SmartOS.Cli.Observe;

namespace SmartOS.Dashboard.Tests;

/// <summary>The event hub's bounded queues (DashboardServer.cs rule 4), with streams the test
/// controls: a client that reads nothing loses messages, counted, and delays no other client.</summary>
public class EventHubTests
{
    /// <summary>A response body whose writes never complete: a browser that stopped reading.</summary>
    private sealed class StalledStream : MemoryStream
    {
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Task.Delay(Timeout.Infinite, cancellationToken);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            => new(Task.Delay(Timeout.Infinite, cancellationToken));
    }

    /// <summary>A response body that counts the messages written to it.</summary>
    private sealed class CountingStream : MemoryStream
    {
        private int _ticks;
        public int Ticks => Volatile.Read(ref _ticks);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (System.Text.Encoding.UTF8.GetString(buffer.Span).StartsWith("event: tick", StringComparison.Ordinal)) Interlocked.Increment(ref _ticks);
            return ValueTask.CompletedTask;
        }
    }

    private static TickView Tick(int i) => new(i, [], [], []);

    [Test]
    public async Task A_client_that_reads_nothing_loses_messages_counted_and_another_gets_them_all()
    {
        using var hub = new EventHub(queueLength: 4);
        hub.Start();
        using var stop = new CancellationTokenSource();
        var stalled = hub.ServeAsync(new StalledStream(), _ => Task.CompletedTask, stop.Token);
        var fast = new CountingStream();
        var serving = hub.ServeAsync(fast, _ => Task.CompletedTask, stop.Token);
        var topology = new Topology(0, [], []);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (hub.Clients < 2) await Task.Delay(10, bound.Token);
        for (int i = 0; i < 20; i++)
        {
            hub.Offer(Tick(i), topology);
            // One at a time, as the loop's ticks come: the inbox keeps only the newest two.
            while (fast.Ticks <= i) await Task.Delay(5, bound.Token);
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fast.Ticks, Is.EqualTo(20));
            // The stalled client took the topology and one tick into its write, held four, and lost the rest.
            Assert.That(hub.Dropped, Is.InRange(14, 17));
        }
        stop.Cancel();
        await Task.WhenAll(stalled, serving).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(hub.Clients, Is.Zero, "a client that leaves is forgotten");
    }
}
