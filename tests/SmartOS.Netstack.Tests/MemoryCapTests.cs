using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests;

public class MemoryCapTests
{
    [Test]
    public void Queued_udp_datagrams_are_charged_to_the_stack_cap_and_released_when_read()
    {
        var w = new World();
        w.Stub("stub0");
        var account = new TcpMemoryAccount(limit: 10 * (PacketPool.SmallSize + Packet.Headroom));
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24", memory: account);
        using var server = b.OpenUdpSocket();
        Assert.That(server.Bind(IpAddress.AnyV4, 9), Is.EqualTo(NetError.None));
        using var client = a.OpenUdpSocket();
        for (int i = 0; i < 50; i++) client.SendTo("x"u8, new IpEndpoint(World.Ip("10.0.0.2"), 9));
        w.Run(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.QueuedDatagrams, Is.EqualTo(10), "the cap holds ten buffers");
            Assert.That(account.Refused, Is.EqualTo(40));
            Assert.That(b.UdpStats.udpInOverflows, Is.EqualTo(40));
        }
        var buf = new byte[16];
        while (server.TryReceiveFrom(buf, out _, out _)) { }
        Assert.That(account.Charged, Is.Zero, "reading releases the charge");
    }

    [Test]
    public void Reassembly_buffers_are_charged_and_a_full_cap_loses_the_datagram()
    {
        var w = new World();
        w.Stub("stub0");
        var account = new TcpMemoryAccount(limit: 0);
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24", memory: account);
        using var server = b.OpenUdpSocket();
        Assert.That(server.Bind(IpAddress.AnyV4, 9), Is.EqualTo(NetError.None));
        using var client = a.OpenUdpSocket();
        client.SendTo(new byte[3000], new IpEndpoint(World.Ip("10.0.0.2"), 9)); // two fragments
        w.Run(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(server.QueuedDatagrams, Is.Zero);
            Assert.That(b.Counters.ipReasmFails, Is.GreaterThan(0));
            Assert.That(account.Charged, Is.Zero);
        }
    }
}
