using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using static SmartOS.Vnic.Tests.TestNet;

namespace SmartOS.Vnic.Tests;

/// <summary>The virtual switch (MacLayer.cs rules 1-4): who receives what, and what is counted.</summary>
public class SwitchTests
{
    private Scheduler _s = null!;
    private MacLayer _h1 = null!, _h2 = null!;
    private Wire _wire = null!;

    [SetUp]
    public void TwoHostsOnOneWire()
    {
        _s = new Scheduler();
        _h1 = Host(_s, "h1", seed: 1);
        _h2 = Host(_s, "h2", seed: 2);
        _wire = new Wire(_s, new HostRandom(3), _h1.Phys(), _h2.Phys());
    }

    [TearDown]
    public void NoPacketLeaks()
    {
        _s.RunUntilIdle();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h1.Pool.Outstanding, Is.Zero, "h1 packets not freed");
            Assert.That(_h2.Pool.Outstanding, Is.Zero, "h2 packets not freed");
        }
    }

    [Test]
    public void Unicast_between_vnics_on_one_phys_never_reaches_the_wire()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));
        var b = Open(_h1.Vnic("vnic1", "e1000g0"));
        var peer = Open(_h2.Phys());
        var peerTap = new TapRecorder();
        _h2.Phys().AddTap(peerTap);

        a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(1));
            Assert.That(b.Frames[0].Frame, Is.EqualTo(Frame(b.Client.MacAddress, a.Client.MacAddress)));
            Assert.That(a.Frames, Is.Empty);
            Assert.That(_h1.Phys().Stats.OPackets, Is.Zero);
            Assert.That(_wire.FramesCarried, Is.Zero);
            Assert.That(_h2.Phys().Stats.IPackets, Is.Zero);
            Assert.That(peer.Frames, Is.Empty);
            Assert.That(peerTap.Frames, Is.Empty);
        }
    }

    [Test]
    public void Ports_added_and_removed_after_traffic_has_flowed_are_switched_by_the_next_frame()
    {
        // MacLayer.cs rule 8: tables change at once for unicast and at the next frame for VLANs.
        var a = Open(_h1.Vnic("vnic0", "e1000g0", vid: 5));
        var b = Open(_h1.Vnic("vnic1", "e1000g0", vid: 5));
        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        _s.RunUntilIdle();
        var c = Open(_h1.Vnic("vnic2", "e1000g0", vid: 5));
        var d = Open(_h1.Vnic("vnic3", "e1000g0", vid: 7));
        var gone = b.Client.MacAddress;
        b.Client.Close();
        Assert.That(_h1.Delete("vnic1", LinkClass.Vnic, temporary: true).IsOk, Is.True);

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        a.Send(Frame(c.Client.MacAddress, a.Client.MacAddress));
        a.Send(Frame(gone, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(1), "only the first broadcast");
            Assert.That(c.Frames.Select(f => f.Destination), Is.EqualTo(new[] { MacAddress.Broadcast, c.Client.MacAddress }));
            Assert.That(d.Frames, Is.Empty, "another VLAN");
            Assert.That(_wire.FramesCarried, Is.EqualTo(3), "both broadcasts and the frame to the deleted address leave by the wire");
        }
    }

    [Test]
    public void A_stream_from_the_wire_follows_its_address_when_the_port_that_held_it_goes_and_another_takes_it()
    {
        // VSwitch keeps the uplink's last unicast port (issue 17): a change of ports must end it.
        var m = Mac("2:8:20:0:0:99");
        var first = Open(_h1.Vnic("vnic0", "e1000g0", fixedMac: m));
        var peer = Open(_h2.Vnic("vnic5", "e1000g0"));
        peer.Send(Frame(m, peer.Client.MacAddress));
        peer.Send(Frame(m, peer.Client.MacAddress));
        _s.RunUntilIdle();
        first.Client.Close();
        Assert.That(_h1.Delete("vnic0", LinkClass.Vnic, temporary: true).IsOk, Is.True);

        peer.Send(Frame(m, peer.Client.MacAddress));
        _s.RunUntilIdle();
        long unknown = _h1.Phys().Stats.DropUnknownDst;
        var second = Open(_h1.Vnic("vnic1", "e1000g0", fixedMac: m));
        peer.Send(Frame(m, peer.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.Frames, Has.Count.EqualTo(2), "the two frames before its VNIC went");
            Assert.That(unknown, Is.EqualTo(1), "the frame while no port had the address is dropped and counted");
            Assert.That(second.Frames, Has.Count.EqualTo(1), "the new holder of the address");
            Assert.That(_h1.Phys().Stats.DropUnknownDst, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_vlan_whose_last_port_goes_takes_no_more_frames_and_the_other_vlans_keep_theirs()
    {
        // VSwitch rebuilds only the VLANs that changed (issue 17): the one emptied loses its array.
        var a5 = Open(_h1.Vnic("vnic0", "e1000g0", vid: 5));
        var a7 = Open(_h1.Vnic("vnic1", "e1000g0", vid: 7));
        var b5 = Open(_h1.Vnic("vnic2", "e1000g0", vid: 5));
        var peer5 = Open(_h2.Vnic("vnic5", "e1000g0", vid: 5));
        var peer7 = Open(_h2.Vnic("vnic7", "e1000g0", vid: 7));
        peer7.Send(Frame(MacAddress.Broadcast, peer7.Client.MacAddress));
        _s.RunUntilIdle();
        a7.Client.Close();
        Assert.That(_h1.Delete("vnic1", LinkClass.Vnic, temporary: true).IsOk, Is.True);

        peer7.Send(Frame(MacAddress.Broadcast, peer7.Client.MacAddress));
        peer5.Send(Frame(MacAddress.Broadcast, peer5.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a7.Frames, Has.Count.EqualTo(1), "only the broadcast before its VNIC went");
            Assert.That(a5.Frames, Has.Count.EqualTo(1));
            Assert.That(b5.Frames, Has.Count.EqualTo(1));
            Assert.That(_h1.Phys().Stats.DropNoVlan, Is.EqualTo(1), "VLAN 7 has no port on h1 any more");
        }
    }

    [Test]
    public void Broadcast_reaches_every_client_of_its_vlan_once_and_leaves_the_phys_tagged()
    {
        var sender = Open(_h1.Vnic("vnic0", "e1000g0", vid: 5));
        var same1 = Open(_h1.Vnic("vnic1", "e1000g0", vid: 5));
        var same2 = Open(_h1.Vnic("vnic2", "e1000g0", vid: 5));
        Assert.That(_h1.CreateVlan("e1000g5", "e1000g0", 5, temporary: true, out var vlan).IsOk, Is.True);
        var sameVlan = Open(vlan!);
        var otherVid = Open(_h1.Vnic("vnic3", "e1000g0", vid: 6));
        var untagged = Open(_h1.Vnic("vnic4", "e1000g0"));
        var primary = Open(_h1.Phys());
        var wireTap = new TapRecorder();
        _h1.Phys().AddTap(wireTap);
        var peer5 = Open(_h2.Vnic("vnic5", "e1000g0", vid: 5));
        var peer6 = Open(_h2.Vnic("vnic6", "e1000g0", vid: 6));

        var frame = Frame(MacAddress.Broadcast, sender.Client.MacAddress);
        sender.Send(frame);
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            foreach (var r in new[] { same1, same2, sameVlan })
            {
                Assert.That(r.Frames, Has.Count.EqualTo(1), r.Client.LinkName);
                Assert.That(r.Frames[0].Frame, Is.EqualTo(frame), $"{r.Client.LinkName} receives it untagged");
                Assert.That(r.Frames[0].Vid, Is.EqualTo(5));
            }
            Assert.That(sender.Frames, Is.Empty, "the sender does not hear itself");
            Assert.That(otherVid.Frames, Is.Empty, "VLAN 6");
            Assert.That(untagged.Frames, Is.Empty, "VLAN 0");
            Assert.That(primary.Frames, Is.Empty, "the phys primary port is in VLAN 0");

            Assert.That(wireTap.Frames, Has.Count.EqualTo(1));
            Assert.That(EthernetView.TryCreate(wireTap.Frames[0].Frame, out var eth), Is.True);
            Assert.That(eth.IsTagged, Is.True);
            Assert.That(eth.VlanId, Is.EqualTo(5));
            Assert.That(wireTap.Frames[0].Frame, Has.Length.EqualTo(frame.Length + 4));
            Assert.That(_h1.Phys().Stats.OPackets, Is.EqualTo(1));
            Assert.That(_h1.Phys().Stats.BrdcstXmt, Is.EqualTo(1));

            Assert.That(peer5.Frames, Has.Count.EqualTo(1), "the peer's VLAN 5 gets it");
            Assert.That(peer5.Frames[0].Frame, Is.EqualTo(frame));
            Assert.That(peer6.Frames, Is.Empty);
        }
    }

    [Test]
    public void Vnic_on_other_vlan_never_sees_broadcast_from_the_wire()
    {
        var v5 = Open(_h1.Vnic("vnic5", "e1000g0", vid: 5));
        var v6 = Open(_h1.Vnic("vnic6", "e1000g0", vid: 6));
        var v0 = Open(_h1.Vnic("vnic0", "e1000g0"));
        var peer = Open(_h2.Phys());

        peer.Send(Frame(MacAddress.Broadcast, peer.Client.MacAddress, vid: 6));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(v6.Frames, Has.Count.EqualTo(1));
            Assert.That(v6.Frames[0].IsTagged, Is.False, "the tag is removed on the way in");
            Assert.That(v5.Frames, Is.Empty);
            Assert.That(v0.Frames, Is.Empty);
        }
    }

    [Test]
    public void Etherstubs_are_separate_broadcast_domains()
    {
        Assert.That(_h1.CreateEtherstub("stub0", temporary: true).IsOk, Is.True);
        Assert.That(_h1.CreateEtherstub("stub1", temporary: true).IsOk, Is.True);
        var a = Open(_h1.Vnic("vnic0", "stub0"));
        var b = Open(_h1.Vnic("vnic1", "stub0"));
        var c = Open(_h1.Vnic("vnic2", "stub1"));
        var onPhys = Open(_h1.Vnic("vnic3", "e1000g0"));

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        a.Send(Frame(c.Client.MacAddress, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(1));
            Assert.That(c.Frames, Is.Empty, "another etherstub");
            Assert.That(onPhys.Frames, Is.Empty, "a phys");
            Assert.That(_h1.Phys().Stats.OPackets, Is.Zero);
            Assert.That(_h1.Find("stub0")!.Stats.IPackets, Is.EqualTo(2), "the stub sees every frame it forwards");
            Assert.That(_h1.Find("stub0")!.Stats.DropUnknownDst, Is.EqualTo(1), "vnic2's address is unknown on stub0");
            Assert.That(_h1.Find("stub1")!.Stats.IPackets, Is.Zero);
        }
    }

    [Test]
    public void Same_vid_on_two_etherstubs_does_not_join_them()
    {
        _h1.CreateEtherstub("stub0", temporary: true);
        _h1.CreateEtherstub("stub1", temporary: true);
        var a = Open(_h1.Vnic("vnic0", "stub0", vid: 9));
        var b = Open(_h1.Vnic("vnic1", "stub1", vid: 9));

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        _s.RunUntilIdle();

        Assert.That(b.Frames, Is.Empty);
    }

    [Test]
    public void Multicast_is_replicated_like_broadcast()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));
        var b = Open(_h1.Vnic("vnic1", "e1000g0"));
        var peer = Open(_h2.Phys());

        a.Send(Frame(Mac("1:0:5e:0:0:1"), a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(1));
            Assert.That(peer.Frames, Has.Count.EqualTo(1));
            Assert.That(_h1.Find("vnic0")!.Stats.MultiXmt, Is.EqualTo(1));
            Assert.That(_h1.Find("vnic1")!.Stats.MultiRcv, Is.EqualTo(1));
        }
    }

    [Test]
    public void Unknown_unicast_leaves_by_the_phys()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));
        var peerVnic = Open(_h2.Vnic("vnic0", "e1000g0", fixedMac: Mac("2:8:20:99:99:1")));

        a.Send(Frame(Mac("2:8:20:99:99:1"), a.Client.MacAddress));
        a.Send(Frame(Mac("2:8:20:99:99:2"), a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h1.Phys().Stats.OPackets, Is.EqualTo(2));
            Assert.That(peerVnic.Frames, Has.Count.EqualTo(1));
            Assert.That(_h2.Phys().Stats.DropUnknownDst, Is.EqualTo(1), "the peer NIC's filter drops the other");
        }
    }

    [Test]
    public void Unknown_unicast_on_an_etherstub_is_dropped_and_counted()
    {
        _h1.CreateEtherstub("stub0", temporary: true);
        var a = Open(_h1.Vnic("vnic0", "stub0"));

        a.Send(Frame(Mac("2:8:20:99:99:1"), a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h1.Find("stub0")!.Stats.DropUnknownDst, Is.EqualTo(1));
            Assert.That(_h1.Find("vnic0")!.Stats.OPackets, Is.EqualTo(1));
            Assert.That(_h1.Phys().Stats.OPackets, Is.Zero);
        }
    }

    [Test]
    public void A_frame_to_ones_own_address_is_dropped_and_counted()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));

        a.Send(Frame(a.Client.MacAddress, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.Frames, Is.Empty);
            Assert.That(_h1.Find("vnic0")!.Stats.DropUnknownDst, Is.EqualTo(1));
            Assert.That(_h1.Phys().Stats.OPackets, Is.Zero);
        }
    }

    [Test]
    public void Tagged_frame_from_a_vnic_client_is_dropped_and_counted()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0", vid: 5));
        var b = Open(_h1.Vnic("vnic1", "e1000g0", vid: 6));

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress, vid: 6));
        a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress, vid: 6));
        _s.RunUntilIdle();

        var stats = _h1.Find("vnic0")!.Stats;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Is.Empty, "a VNIC cannot choose its VLAN");
            Assert.That(stats.DropTagged, Is.EqualTo(2));
            Assert.That(stats.OErrors, Is.EqualTo(2));
            Assert.That(stats.OPackets, Is.Zero);
            Assert.That(_h1.Phys().Stats.OPackets, Is.Zero);
        }
    }

    [Test]
    public void Tagged_frame_from_a_vlan_link_client_is_dropped_and_counted()
    {
        _h1.CreateVlan("e1000g5", "e1000g0", 5, temporary: true, out var vlan);
        var a = Open(vlan!);

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress, vid: 6));
        _s.RunUntilIdle();

        Assert.That(vlan!.Stats.DropTagged, Is.EqualTo(1));
    }

    [Test]
    public void Phys_primary_client_may_send_tagged_frames_into_a_vlan()
    {
        var v5 = Open(_h1.Vnic("vnic5", "e1000g0", vid: 5));
        var v0 = Open(_h1.Vnic("vnic0", "e1000g0"));
        var primary = Open(_h1.Phys());
        var wireTap = new TapRecorder();
        _h1.Phys().AddTap(wireTap);

        var frame = Frame(MacAddress.Broadcast, primary.Client.MacAddress, vid: 5, pcp: 3);
        primary.Send(frame);
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_h1.Phys().Stats.DropTagged, Is.Zero);
            Assert.That(v5.Frames, Has.Count.EqualTo(1));
            Assert.That(v5.Frames[0].IsTagged, Is.False);
            Assert.That(v5.Frames[0].Vid, Is.EqualTo(5));
            Assert.That(v0.Frames, Is.Empty);
            Assert.That(wireTap.Frames.Where(f => f.Direction == TapDirection.Transmitted).Select(f => f.Frame).Last(), Is.EqualTo(frame),
                "it leaves by the wire with its tag and priority");
        }
    }

    [TestCase(1514, 1)]
    [TestCase(1515, 0)]
    public void Frames_over_the_mtu_are_dropped_and_counted(int length, int delivered)
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));
        var b = Open(_h1.Vnic("vnic1", "e1000g0"));

        a.Send(Frame(b.Client.MacAddress, a.Client.MacAddress, length));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Frames, Has.Count.EqualTo(delivered));
            Assert.That(_h1.Find("vnic0")!.Stats.DropMtu, Is.EqualTo(1 - delivered));
            Assert.That(_h1.Find("vnic0")!.Stats.OErrors, Is.EqualTo(1 - delivered));
        }
    }

    [Test]
    public void A_smaller_vnic_mtu_is_enforced_on_transmit()
    {
        var vnic = _h1.Vnic("vnic0", "e1000g0");
        Assert.That(_h1.SetLinkProp(vnic, "mtu", "1000", temporary: true).IsOk, Is.True);
        var a = Open(vnic);

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress, 14 + 1001));
        _s.RunUntilIdle();

        Assert.That(vnic.Stats.DropMtu, Is.EqualTo(1));
    }

    [Test]
    public void A_frame_from_the_wire_for_an_unknown_vlan_is_counted()
    {
        Open(_h1.Vnic("vnic0", "e1000g0", vid: 5));
        var phys = _h1.Phys();

        phys.ReceiveFromWire(_h1.Pool.Rent(Frame(MacAddress.Broadcast, Mac("2:0:0:0:0:1"), vid: 77))!);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(phys.Stats.DropNoVlan, Is.EqualTo(1));
            Assert.That(phys.Stats.IPackets, Is.EqualTo(1));
            Assert.That(phys.Stats.IErrors, Is.Zero);
        }
    }

    [Test]
    public void A_frame_over_the_phys_mtu_from_the_wire_is_an_input_error()
    {
        var phys = _h1.Phys();

        phys.ReceiveFromWire(_h1.Pool.Rent(Frame(MacAddress.Broadcast, Mac("2:0:0:0:0:1"), 1515))!);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(phys.Stats.DropMtu, Is.EqualTo(1));
            Assert.That(phys.Stats.IErrors, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_tagged_1518_byte_frame_from_the_wire_fits_a_1500_mtu()
    {
        var v5 = Open(_h1.Vnic("vnic5", "e1000g0", vid: 5));

        _h1.Phys().ReceiveFromWire(_h1.Pool.Rent(Frame(v5.Client.MacAddress, Mac("2:0:0:0:0:1"), 1518, vid: 5))!);

        Assert.That(v5.Frames, Has.Count.EqualTo(1));
        Assert.That(v5.Frames[0].Frame, Has.Length.EqualTo(1514));
    }

    [Test]
    public void A_port_without_a_client_counts_what_it_cannot_deliver()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));
        var idle = _h1.Vnic("vnic1", "e1000g0");

        a.Send(Frame(idle.MacAddress, a.Client.MacAddress));
        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(idle.Stats.DropNoClient, Is.EqualTo(2));
            Assert.That(idle.Stats.IPackets, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_closed_client_cannot_send_and_the_link_can_be_opened_again()
    {
        var vnic = _h1.Vnic("vnic0", "e1000g0");
        var a = Open(vnic);
        Assert.That(vnic.OpenClient("second"), Is.Null, "one client at a time");

        a.Client.Close();
        a.Send(Frame(MacAddress.Broadcast, vnic.MacAddress));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(vnic.Stats.OErrors, Is.EqualTo(1));
            Assert.That(vnic.Stats.OPackets, Is.Zero);
            Assert.That(vnic.Client, Is.Null);
            Assert.That(vnic.OpenClient("again"), Is.Not.Null);
        }
    }

    [Test]
    public void Runt_frames_from_a_client_are_output_errors()
    {
        var a = Open(_h1.Vnic("vnic0", "e1000g0"));

        a.Send(new byte[13]);
        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress, 60, vid: 5)[..16]);
        _s.RunUntilIdle();

        Assert.That(_h1.Find("vnic0")!.Stats.OErrors, Is.EqualTo(2));
    }

    [Test]
    public void Malformed_frames_from_the_wire_count_input_errors_and_never_throw()
    {
        var v0 = Open(_h1.Vnic("vnic0", "e1000g0"));
        var v5 = Open(_h1.Vnic("vnic5", "e1000g0", vid: 5));
        _h1.Vnic("vnic6", "e1000g0", vid: 6); // no client: deliveries to it are counted and freed
        _h1.CreateVlan("e1000g7", "e1000g0", 7, temporary: true, out _);
        var tap = new TapRecorder();
        _h1.Phys().AddTap(tap);
        var phys = _h1.Phys();
        MacAddress[] dsts = [MacAddress.Broadcast, v0.Client.MacAddress, v5.Client.MacAddress, phys.MacAddress, Mac("1:0:5e:0:0:9"), Mac("2:8:20:0:0:1")];
        ushort?[] vids = [null, 0, 5, 6, 7, 77, 4095];
        var random = new HostRandom(2026);
        long malformed = 0;

        for (int i = 0; i < 5000; i++)
        {
            byte[] full = Frame(dsts[random.Next(dsts.Length)], Mac("2:0:0:0:0:1"), 64, vids[random.Next(vids.Length)]);
            if (random.Next(4) == 0) random.NextBytes(full.AsSpan(random.Next(20)));
            int length = random.Next(3) == 0 ? random.Next(20) : random.Next(65);
            byte[] frame = full[..length];
            if (length < 14 || (frame[12] == 0x81 && frame[13] == 0x00 && length < 18)) malformed++;

            phys.ReceiveFromWire(_h1.Pool.Rent(frame)!);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(malformed, Is.GreaterThan(500), "the generator makes enough bad frames");
            Assert.That(phys.Stats.IErrors, Is.EqualTo(malformed));
            Assert.That(phys.Stats.IPackets, Is.EqualTo(5000 - malformed));
            Assert.That(tap.Frames, Has.Count.EqualTo(5000), "snoop sees bad frames too");
            Assert.That(v0.Frames.Count + v5.Frames.Count, Is.GreaterThan(0));
        }
    }

    [Test]
    public void A_broadcast_from_the_wire_is_counted_and_tapped_once_on_the_phys()
    {
        Open(_h1.Phys());
        var tap = new TapRecorder();
        _h1.Phys().AddTap(tap);

        _h1.Phys().ReceiveFromWire(_h1.Pool.Rent(Frame(MacAddress.Broadcast, Mac("2:0:0:0:0:1"), 100))!);

        var stats = _h1.Phys().Stats;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stats.IPackets, Is.EqualTo(1));
            Assert.That(stats.RBytes, Is.EqualTo(100));
            Assert.That(stats.BrdcstRcv, Is.EqualTo(1));
            Assert.That(tap.Frames, Has.Count.EqualTo(1));
        }
    }

    [Test]
    public void A_frame_sent_by_the_phys_primary_client_is_counted_and_tapped_once()
    {
        var primary = Open(_h1.Phys());
        var tap = new TapRecorder();
        _h1.Phys().AddTap(tap);

        primary.Send(Frame(MacAddress.Broadcast, primary.Client.MacAddress, 100));
        primary.Send(Frame(Mac("2:8:20:99:99:1"), primary.Client.MacAddress, 100, vid: 5));
        _s.RunUntilIdle();

        var stats = _h1.Phys().Stats;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stats.OPackets, Is.EqualTo(2));
            Assert.That(stats.OBytes, Is.EqualTo(200), "a phys counts what is on its wire, tags included");
            Assert.That(stats.BrdcstXmt, Is.EqualTo(1));
            Assert.That(tap.Frames, Has.Count.EqualTo(2));
            Assert.That(tap.Frames[1].Frame, Has.Length.EqualTo(100), "the tap shows the tag");
            Assert.That(_h2.Phys().Stats.IPackets, Is.EqualTo(2));
        }
    }

    [Test]
    public void Broadcast_copies_are_returned_to_the_pool()
    {
        var clients = Enumerable.Range(0, 6).Select(i => Open(_h1.Vnic($"vnic{i}", "e1000g0"))).ToList();

        clients[0].Send(Frame(MacAddress.Broadcast, clients[0].Client.MacAddress));
        _s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(clients.Skip(1).Select(c => c.Frames.Count), Is.All.EqualTo(1));
            Assert.That(_h1.Pool.Outstanding, Is.Zero);
        }
    }

    [Test]
    public void A_phys_without_a_wire_drops_and_counts_link_down()
    {
        var s = new Scheduler();
        var h = Host(s, "h3", seed: 3);
        var a = Open(h.Vnic("vnic0", "e1000g0"));

        a.Send(Frame(MacAddress.Broadcast, a.Client.MacAddress));
        s.RunUntilIdle();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Phys().Stats.DropLinkDown, Is.EqualTo(1));
            Assert.That(h.Phys().State, Is.EqualTo("down"));
            Assert.That(h.Pool.Outstanding, Is.Zero);
        }
    }
}
