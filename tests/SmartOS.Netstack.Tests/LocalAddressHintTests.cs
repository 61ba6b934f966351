using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// The receive path remembers the last local address a datagram was for (IpStack._lastLocal, issue
/// 17): a stream to one address skips the table's hash. Adding or removing an address must end the
/// hint, so a datagram is taken exactly when the address is one of ours at that moment.
/// </summary>
public class LocalAddressHintTests
{
    private static readonly MacAddress s_peer = new(0x020000000009);

    [Test]
    public void A_datagram_to_an_address_deleted_after_a_stream_to_it_is_not_taken_and_one_added_again_is()
    {
        var w = new World();
        w.Stub("stub0");
        var s = w.Stack("stub0", "10.0.0.1/24");
        var ifc = s.FindInterface("net0")!;
        w.AddAddress(s, "net0/b", "10.0.0.5/24");
        var frame = Frames.Ipv4(ifc.MacAddress, s_peer, "10.0.0.9", "10.0.0.5", IpProtocol.Udp, Frames.Udp("10.0.0.9", "10.0.0.5", 1000, 9, "hi"u8.ToArray()));
        void Send()
        {
            s.Inject(ifc, Packet.Unpooled(frame));
            w.Run(Time.Millisecond);
        }

        Send();
        Send();
        long delivered = s.Counters.ipInDelivers, refused = s.Counters.ipForwProhibits;
        Assert.That(s.DeleteAddress("net0/b").IsOk, Is.True);
        Send();
        long deliveredAfterDelete = s.Counters.ipInDelivers, refusedAfterDelete = s.Counters.ipForwProhibits;
        w.AddAddress(s, "net0/c", "10.0.0.5/24");
        Send();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(delivered, Is.EqualTo(2), "both datagrams of the stream");
            Assert.That(refused, Is.Zero);
            Assert.That(deliveredAfterDelete, Is.EqualTo(2), "the address is gone: not ours any more");
            Assert.That(refusedAfterDelete, Is.EqualTo(1), "counted as a datagram this host does not forward");
            Assert.That(s.Counters.ipInDelivers, Is.EqualTo(3), "the address is back");
        }
    }
}
