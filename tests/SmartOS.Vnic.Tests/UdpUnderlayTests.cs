using System.Net.Sockets;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic.Tests;

/// <summary>
/// The real-time underlay over a Linux UDP socket (vnic/UdpUnderlay.cs), on the loopback address:
/// datagrams reach the receiver on the loop thread, refusals name what is wrong, and the receive
/// path allocates nothing per datagram.
/// </summary>
public class UdpUnderlayTests
{
    private static readonly IpAddress s_loopback = IpAddress.V4(0x7F000001);

    private Scheduler _scheduler = null!;
    private RealTimeDriver _driver = null!;
    private readonly List<IDisposable> _open = [];

    [SetUp]
    public void StartLoop()
    {
        _scheduler = new Scheduler();
        _driver = new RealTimeDriver(_scheduler);
        _driver.Start("udp-underlay-test");
    }

    [TearDown]
    public void StopLoop()
    {
        foreach (var d in _open) d.Dispose();
        _open.Clear();
        _driver.Dispose();
    }

    private UdpUnderlay Open(ushort port = 0)
    {
        var u = UdpUnderlay.Open(new UnderlayEndpoint(s_loopback, port), _driver, out string error);
        Assert.That(u, Is.Not.Null, error);
        _open.Add(u!);
        return u!;
    }

    // Waits (bounded) until the condition, read on the loop, holds.
    private bool WaitFor(Func<bool> condition)
    {
        for (int i = 0; i < 500; i++)
        {
            if (_driver.InvokeAsync(condition).Wait(TimeSpan.FromSeconds(5)) && _driver.InvokeAsync(condition).Result) return true;
            Thread.Sleep(10);
        }
        return false;
    }

    [Test]
    public void Datagram_reaches_the_receiver_on_the_loop_with_its_sender()
    {
        var a = Open();
        var b = Open();
        var got = new List<(UnderlayEndpoint From, byte[] Data, bool OnLoop)>();
        b.SetReceiver((from, data) => got.Add((from, data.ToArray(), _driver.IsLoopThread)));
        byte[] payload = [0x08, 0, 0, 0, 0, 0, 0x2A, 0, 1, 2, 3];
        Assert.That(_driver.InvokeAsync(() => a.Send(b.Local, payload)).Result, Is.True);
        Assert.That(WaitFor(() => got.Count == 1), Is.True, "the datagram arrived");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(got[0].From, Is.EqualTo(a.Local));
            Assert.That(got[0].Data, Is.EqualTo(payload));
            Assert.That(got[0].OnLoop, Is.True);
            Assert.That(a.Sent, Is.EqualTo(1));
            Assert.That(b.MaxPayload(a.Local), Is.EqualTo(b.LinkMtu - 28));
        }
    }

    [Test]
    public void Address_not_on_this_machine_is_refused()
    {
        var u = UdpUnderlay.Open(new UnderlayEndpoint(IpAddress.V4(0xC612FE63), 4789), _driver, out string error);
        Assert.That(u, Is.Null);
        Assert.That(error, Is.EqualTo("vxlan/listen_ip 198.18.254.99 is not an address of this machine"));
    }

    [Test]
    public void Port_in_use_is_refused()
    {
        var a = Open();
        var u = UdpUnderlay.Open(a.Local, _driver, out string error);
        Assert.That(u, Is.Null);
        Assert.That(error, Is.EqualTo($"vxlan/listen_port {a.Local.Port} on 127.0.0.1 is already in use"));
    }

    [Test]
    public void Oversize_datagram_is_counted_and_dropped()
    {
        var a = Open();
        var b = Open();
        int heard = 0;
        b.SetReceiver((_, _) => heard++);
        Assert.That(_driver.InvokeAsync(() => a.Send(b.Local, new byte[UdpUnderlay.SlotBytes + 100])).Result, Is.True);
        Assert.That(_driver.InvokeAsync(() => a.Send(b.Local, new byte[64])).Result, Is.True);
        Assert.That(WaitFor(() => heard == 1), Is.True);
        Assert.That(b.Oversize, Is.EqualTo(1));
    }

    [Test]
    public void Receive_path_allocates_nothing_per_datagram()
    {
        var a = Open();
        var b = Open();
        const int warmup = 3000, measured = 4000;
        long heard = 0, startBytes = 0, endBytes = 0;
        // Read on the loop thread, which runs only the drains while the test thread waits without
        // handing it work: what it allocates between two datagrams is what the receive path costs.
        b.SetReceiver((_, _) =>
        {
            long n = Interlocked.Increment(ref heard);
            if (n == warmup) startBytes = GC.GetAllocatedBytesForCurrentThread();
            if (n == warmup + measured) endBytes = GC.GetAllocatedBytesForCurrentThread();
        });
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var to = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, b.Local.Port);
        var payload = new byte[1450];
        for (int burst = 0; burst < 200 && Interlocked.Read(ref heard) < warmup + measured; burst++)
        {
            long target = Interlocked.Read(ref heard) + 50;
            for (int i = 0; i < 50; i++) sender.SendTo(payload, to);
            for (int w = 0; w < 500 && Interlocked.Read(ref heard) < target - b.Overflows; w++) Thread.Sleep(2);
        }
        Assume.That(Interlocked.Read(ref heard), Is.GreaterThanOrEqualTo(warmup + measured), "enough datagrams arrived");
        Assert.That(Volatile.Read(ref endBytes) - Volatile.Read(ref startBytes), Is.Zero, "bytes allocated on the loop");
        Assert.That(a.Sent, Is.Zero);
    }
}
