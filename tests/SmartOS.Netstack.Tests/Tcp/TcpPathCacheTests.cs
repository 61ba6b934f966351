using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>
/// A connection keeps the path its segments take (TcpProtocol.cs, data path: send; PathCache.cs):
/// its segments skip the route and ARP lookups while the path holds, and the first segment after a
/// change of the neighbour entry goes where the full lookup would send it.
/// </summary>
public class TcpPathCacheTests
{
    private sealed class Recorder : ICaptureTap
    {
        public readonly List<byte[]> Frames = [];

        public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
        {
            if (direction == TapDirection.Transmitted) Frames.Add(frame.ToArray());
        }
    }

    [Test]
    public void A_connections_segments_take_its_cached_path_and_follow_a_changed_neighbour_entry()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var listener = new TcpListener(b.Tcp);
        listener.Listen(IpAddress.AnyV4, 80);
        var received = w.Loop.Start(async () =>
        {
            var s = await listener.AcceptAsync();
            var buffer = new byte[4096];
            long total = 0;
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) total += n;
            return total;
        });
        var client = new TcpSocket(a.Tcp);
        w.Await(async () =>
        {
            await client.ConnectAsync(World.Ip("10.0.0.2"), 80);
            await client.SendAsync(new byte[20_000]);
            return 0;
        });
        w.Run(Time.Second);
        var path = client.Connection!.Path;
        long hits = path.Hits;
        Assert.That(hits, Is.GreaterThan(10), "the transfer's segments took the cached path");

        // A static entry for the peer with another MAC: the stack's paths are invalid from now on.
        var moved = new MacAddress(0x0208_2000_0077UL);
        Assert.That(a.AddStaticArp(World.Ip("10.0.0.2"), moved), Is.EqualTo(NetError.None));
        var tap = new Recorder();
        a.FindInterface("net0")!.Client!.Link.AddTap(tap);
        w.Await(async () =>
        {
            await client.SendAsync(new byte[3000]);
            return 0;
        });
        w.Run(10 * Time.Millisecond);

        var tcp = tap.Frames.Where(f => f.Length >= 54 && f[12] == 0x08 && f[13] == 0x00 && f[23] == IpProtocol.Tcp).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(tcp, Is.Not.Empty);
            Assert.That(tcp.Select(f => MacAddress.Read(f)), Is.All.EqualTo(moved), "every segment after the change went to the new entry's MAC");
            Assert.That(path.Misses, Is.GreaterThan(0), "the first segment after the change took the full path");
            Assert.That(path.Hits, Is.GreaterThan(hits), "and the next ones the refilled cache");
            Assert.That(received.IsCompleted, Is.False);
        }
    }
}
