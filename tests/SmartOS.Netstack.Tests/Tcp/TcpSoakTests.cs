using SmartOS.Kernel;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>
/// Seeded variety: each seed picks options (SACK, timestamps, IPv6, buffer sizes), a wire (delay, up
/// to 20% loss, reordering, duplication) and a reader speed, then runs a request, a reply and both
/// closes. 300 seeds passed when this was written; the suite keeps a spread of them. Seed 142 once
/// stalled CUBIC for minutes: timestamp RTT samples spanning a whole backoff (see ProcessAck).
/// </summary>
public class TcpSoakTests
{
    private static readonly ulong[] s_seeds = [1, 3, 5, 10, 17, 23, 35, 40, 101, 104, 111, 119, 142];

    [TestCaseSource(nameof(s_seeds))]
    public void Transfer_completes_intact_and_leaves_no_connection_or_packet_behind(ulong seed)
    {
        var cfg = new TcpConfig
        {
            Sack = seed % 3 != 0,
            Timestamps = seed % 2 == 0,
            ReceiveBufferSize = seed % 4 == 0 ? 16 * 1024 : 128 * 1024,
            SendBufferSize = seed % 5 == 0 ? 8 * 1024 : 128 * 1024,
            CongestionControl = seed % 11 < 6 ? TcpCongestionControl.Cubic : TcpCongestionControl.NewReno,
        };
        var w = new TcpWorld(cfg, seed: seed, v6: seed % 7 == 0);
        w.Wire.Delay = (long)(1 + seed % 10) * Time.Millisecond;
        w.Wire.Loss = 0.04 * (seed % 6);
        w.Wire.Reorder = 0.05 * (seed % 4);
        w.Wire.Duplicate = 0.02 * (seed % 3);
        bool slowReader = seed > 100 && seed % 2 == 1;
        var listener = new TcpListener(w.TcpA);
        listener.Listen(w.A.Address, 80);
        var data = new byte[(int)(300_000 + seed * 7919)];
        new HostRandom(seed).NextBytes(data);

        var server = w.Start(async () =>
        {
            var s = await listener.AcceptAsync();
            var got = new MemoryStream();
            var buf = new byte[10000];
            while (true)
            {
                int n = await s.ReceiveAsync(buf);
                if (n == 0) break;
                got.Write(buf, 0, n);
                if (slowReader) await w.TcpA.Context.Delay((long)(seed % 13) * Time.Millisecond);
            }
            await s.SendAsync(new byte[] { 42 });
            s.Close();
            return got.ToArray();
        });
        var client = w.Start(async () =>
        {
            var s = new TcpSocket(w.TcpB);
            await s.ConnectAsync(w.A.Address, 80);
            for (int off = 0; off < data.Length; off += 33333)
                await s.SendAsync(data.AsMemory(off, Math.Min(33333, data.Length - off)));
            s.Shutdown();
            var b = new byte[4];
            int reply = await s.ReceiveAsync(b);
            int eof = await s.ReceiveAsync(b);
            s.Close();
            return (reply, b[0], eof);
        });
        w.RunUntil(Task.WhenAll(server, client), 600 * Time.Second);

        Assert.That(server.IsCompletedSuccessfully, Is.True, () => $"server: {server.Status} {server.Exception?.InnerException?.Message}");
        Assert.That(client.IsCompletedSuccessfully, Is.True, () => $"client: {client.Status} {client.Exception?.InnerException?.Message}");
        Assert.That(server.Result.AsSpan().SequenceEqual(data), Is.True, "bytes differ");
        Assert.That(client.Result, Is.EqualTo((1, (byte)42, 0)));
        w.Scheduler.RunFor(300 * Time.Second);
        Assert.That(w.TcpA.ConnectionCount + w.TcpB.ConnectionCount, Is.Zero, "connections left behind");
        Assert.That(w.Pool.Outstanding, Is.Zero, "packets leaked");
    }
}
