using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>The 802.1AX Marker Responder, as a conversation: the test plays the partner on the far side
/// of e1000g0 (its LACPDU makes it the port's partner), sends Marker PDUs and reads what comes back.</summary>
public class AggrMarkerTests
{
    private static readonly MacAddress s_peerSystem = new(0x0208_2077_0001UL), s_peerPort = new(0x0208_2077_0105UL);
    private const ushort PeerPortNumber = 5;

    /// <summary>The far side of the NIC: keeps a copy of every frame the host sends.</summary>
    private sealed class Peer : IPhysBackend
    {
        public readonly List<byte[]> Sent = [];
        public long SpeedBps => 1_000_000_000;
        public void Transmit(PhysLink from, Packet frame)
        {
            Sent.Add(frame.Data.ToArray());
            frame.Free();
        }
        public void Detach(PhysLink phys) { }

        public IEnumerable<byte[]> Markers() => Sent.Where(f => f.Length > 14 && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == 0x8809 && f[14] == 2);
    }

    private sealed class Setup
    {
        public readonly Scheduler S = new();
        public readonly MacLayer H;
        public readonly PhysLink Nic;
        public readonly Peer Far = new();
        public readonly AggrLink Aggr;

        public Setup(LacpMode mode)
        {
            H = Host(S, "h1", seed: 1, nics: 1);
            Nic = H.Phys("e1000g0");
            Nic.Attach(Far);
            var st = H.CreateAggr("aggr0", ["e1000g0"], AggrPolicy.L4, mode, LacpTimer.Short, null, temporary: true, out var a);
            Assert.That(st.Code, Is.EqualTo(DladmStatus.Ok));
            Aggr = a!;
        }

        public AggrLacp Lacp => Aggr.Ports[0].Lacp;

        /// <summary>The partner's LACPDU: it aggregates, in sync, and has heard us.</summary>
        public void PartnerSpeaks()
        {
            var f = new byte[LacpPdu.FrameLength];
            var actor = new LacpInfo(32768, s_peerSystem, 7, 32768, PeerPortNumber,
                LacpState.Activity | LacpState.Timeout | LacpState.Aggregation | LacpState.Synchronization);
            LacpPdu.Write(f, s_peerPort, actor, Lacp.Actor);
            Nic.ReceiveFromBackend(Far, f);
        }

        public void Marker(byte tlv, ushort port, MacAddress system, uint transaction)
        {
            var f = new byte[MarkerPdu.FrameLength];
            MarkerPdu.Write(f, s_peerPort, tlv, port, system, transaction);
            Nic.ReceiveFromBackend(Far, f);
        }
    }

    [Test]
    public void Marker_pdu_format_round_trips_with_illumos_and_802_1AX_offsets()
    {
        var f = new byte[MarkerPdu.FrameLength];
        MarkerPdu.Write(f, s_peerPort, MarkerPdu.TlvInformation, 0x0102, s_peerSystem, 0xA1B2C3D4);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(f, Has.Length.EqualTo(124));
            Assert.That(Convert.ToHexString(f.AsSpan(0, 34)), Is.EqualTo(
                "0180C2000002" + "020820770105" + "8809" + "02" + "01" + "01" + "10" + "0102" + "020820770001" + "A1B2C3D4" + "0000" + "0000"));
            Assert.That(f.AsSpan(34).ToArray(), Is.All.Zero, "reserved octets");
            Assert.That(MarkerPdu.TryParse(f, out byte tlv, out ushort port, out var system, out uint tx), Is.True);
            Assert.That((tlv, port, system, tx), Is.EqualTo((MarkerPdu.TlvInformation, (ushort)0x0102, s_peerSystem, 0xA1B2C3D4u)));
        }
        f[17] = 15; // TLV length
        Assert.That(MarkerPdu.TryParse(f, out _, out _, out _, out _), Is.False);
    }

    [Test]
    public void A_marker_from_the_partner_gets_a_response_with_its_fields_from_our_port()
    {
        var t = new Setup(LacpMode.Active);
        t.PartnerSpeaks();
        t.Marker(MarkerPdu.TlvInformation, PeerPortNumber, s_peerSystem, 0x01020304);
        var responses = t.Far.Markers().ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(responses, Has.Count.EqualTo(1));
            Assert.That(MarkerPdu.TryParse(responses[0], out byte tlv, out ushort port, out var system, out uint tx), Is.True);
            Assert.That((tlv, port, system, tx), Is.EqualTo((MarkerPdu.TlvResponse, PeerPortNumber, s_peerSystem, 0x01020304u)));
            Assert.That(MacAddress.Read(responses[0]), Is.EqualTo(LacpPdu.Group));
            Assert.That(MacAddress.Read(responses[0].AsSpan(6)), Is.EqualTo(t.Nic.MacAddress), "from the port's own address");
            Assert.That((t.Lacp.MarkersReceived, t.Lacp.MarkerResponsesSent, t.Lacp.MarkersIgnored), Is.EqualTo((1L, 1L, 0L)));
            Assert.That(t.Aggr.Stats.IPackets, Is.Zero, "a marker is never data for the aggregation");
        }
    }

    [Test]
    public void Markers_from_others_responses_and_malformed_ones_are_counted_not_answered()
    {
        var t = new Setup(LacpMode.Active);
        t.PartnerSpeaks();
        t.Marker(MarkerPdu.TlvInformation, PeerPortNumber + 1, s_peerSystem, 1); // another port of the partner
        t.Marker(MarkerPdu.TlvInformation, PeerPortNumber, new MacAddress(0x0208_2077_0999UL), 2); // another system
        t.Marker(MarkerPdu.TlvResponse, PeerPortNumber, s_peerSystem, 3); // a response we never asked for
        var bad = new byte[MarkerPdu.FrameLength];
        MarkerPdu.Write(bad, s_peerPort, 7, PeerPortNumber, s_peerSystem, 4); // neither TLV type
        t.Nic.ReceiveFromBackend(t.Far, bad);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Far.Markers(), Is.Empty);
            Assert.That((t.Lacp.MarkersReceived, t.Lacp.MarkersIgnored, t.Lacp.MarkerResponsesReceived, t.Lacp.PdusBad),
                Is.EqualTo((2L, 2L, 1L, 1L)));
        }
    }

    [Test]
    public void With_lacp_off_no_marker_is_answered()
    {
        var t = new Setup(LacpMode.Off);
        t.Marker(MarkerPdu.TlvInformation, 0, default, 1);
        Assert.That((t.Far.Markers().Count(), t.Lacp.MarkersIgnored), Is.EqualTo((0, 1L)));
    }
}
