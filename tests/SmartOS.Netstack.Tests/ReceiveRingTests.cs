using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// The receive ring starts small and doubles up to IpStack.ReceiveRingSize (issue 17: an idle zone's
/// stack should not hold 64 KiB of empty ring): it still takes ReceiveRingSize frames before it
/// drains, drops and counts the rest (rule 3), and delivers in arrival order across a growth.
/// </summary>
public class ReceiveRingTests
{
    private static readonly MacAddress s_peer = new(0x020000000009);

    [Test]
    public void The_ring_grows_to_its_bound_then_counts_overflow()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        var ifc = s.FindInterface("net0")!;
        w.Run(Time.Second);
        long inBefore = ifc.InPackets;
        var frame = Frames.Ipv4(ifc.MacAddress, s_peer, "10.0.0.9", "10.0.0.1", IpProtocol.Udp, Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, "x"u8.ToArray()));
        for (int i = 0; i < IpStack.ReceiveRingSize + 10; i++) s.Inject(ifc, Packet.Unpooled(frame));
        Assert.That(s.Counters.rxQueueOverflow, Is.EqualTo(10));
        w.Run(Time.Second);
        Assert.That(ifc.InPackets - inBefore, Is.EqualTo(IpStack.ReceiveRingSize));
    }

    [Test]
    public void Frames_queued_across_a_growth_are_delivered_in_order()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        var ifc = s.FindInterface("net0")!;
        w.Run(Time.Second);
        var sock = s.OpenUdpSocket();
        Assert.That(sock.Bind(IpAddress.AnyV4, 9), Is.EqualTo(NetError.None));
        const int count = IpStack.InitialRingSize * 4 + 3;
        for (int i = 0; i < count; i++)
        {
            var udp = Frames.Udp("10.0.0.9", "10.0.0.1", 1000, 9, [(byte)i]);
            s.Inject(ifc, Packet.Unpooled(Frames.Ipv4(ifc.MacAddress, s_peer, "10.0.0.9", "10.0.0.1", IpProtocol.Udp, udp)));
        }
        w.Run(Time.Second);
        var got = new List<int>();
        var buf = new byte[16];
        while (sock.TryReceiveFrom(buf, out int n, out _)) got.Add(buf[0]);
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, count).ToList()));
    }
}
