using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel.Tests;

public class MacAddressTests
{
    [TestCase("2:8:20:a:b:c", 0x0208_200A_0B0CUL)]
    [TestCase("02:08:20:0a:0b:0c", 0x0208_200A_0B0CUL)]
    [TestCase("02-08-20-0A-0B-0C", 0x0208_200A_0B0CUL)]
    [TestCase("ff:ff:ff:ff:ff:ff", 0xFFFF_FFFF_FFFFUL)]
    [TestCase("0:0:0:0:0:1", 1UL)]
    public void Parses_illumos_and_padded_forms(string text, ulong value)
    {
        Assert.That(MacAddress.TryParse(text, out var mac), Is.True);
        Assert.That(mac.Value, Is.EqualTo(value));
    }

    [TestCase(null)]
    [TestCase("")]
    [TestCase("2:8:20:a:b")]
    [TestCase("2:8:20:a:b:c:d")]
    [TestCase("2:8:20:a:b:")]
    [TestCase("2:8:20:a:b:100")]
    [TestCase("2:8:20:a:b:g")]
    [TestCase("2:8:20-a:b:c")]
    [TestCase("+2:8:20:a:b:c")]
    [TestCase("020820:0a0b0c")]
    [TestCase("random")]
    public void Rejects_malformed_addresses(string? text)
    {
        Assert.That(MacAddress.TryParse(text, out _), Is.False);
    }

    [Test]
    public void Formats_without_and_with_leading_zeros()
    {
        var mac = new MacAddress(0x0208_200A_0B0CUL);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(mac.ToString(), Is.EqualTo("2:8:20:a:b:c"));
            Assert.That(mac.ToPaddedString(), Is.EqualTo("02:08:20:0a:0b:0c"));
            Assert.That(MacAddress.Zero.ToString(), Is.EqualTo("0:0:0:0:0:0"));
            Assert.That(MacAddress.Broadcast.ToString(), Is.EqualTo("ff:ff:ff:ff:ff:ff"));
        }
    }

    [Test]
    public void Group_local_and_broadcast_bits_are_read_from_the_first_octet()
    {
        MacAddress.TryParse("1:0:5e:0:0:1", out var multicast);
        MacAddress.TryParse("2:8:20:a:b:c", out var local);
        MacAddress.TryParse("0:8:20:a:b:c", out var global);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(multicast.IsGroup, Is.True);
            Assert.That(multicast.IsMulticast, Is.True);
            Assert.That(multicast.IsBroadcast, Is.False);
            Assert.That(MacAddress.Broadcast.IsGroup, Is.True);
            Assert.That(MacAddress.Broadcast.IsMulticast, Is.False);
            Assert.That(local.IsLocal, Is.True);
            Assert.That(local.IsGroup, Is.False);
            Assert.That(global.IsLocal, Is.False);
        }
    }

    [Test]
    public void Read_and_Write_use_network_byte_order()
    {
        byte[] six = [0x02, 0x08, 0x20, 0x0a, 0x0b, 0x0c];
        var mac = MacAddress.Read(six);
        var back = new byte[6];
        mac.Write(back);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(mac.Value, Is.EqualTo(0x0208_200A_0B0CUL));
            Assert.That(back, Is.EqualTo(six));
            Assert.That(mac[0], Is.EqualTo(0x02));
            Assert.That(mac[5], Is.EqualTo(0x0c));
        }
    }

    [Test]
    public void Constructor_keeps_only_48_bits()
    {
        Assert.That(new MacAddress(0xFFFF_0208_200A_0B0CUL), Is.EqualTo(new MacAddress(0x0208_200A_0B0CUL)));
    }

    [TestCase("2:8:20", new byte[] { 2, 8, 0x20 })]
    [TestCase("a", new byte[] { 0xa })]
    [TestCase("0:1:2:3:4", new byte[] { 0, 1, 2, 3, 4 })]
    public void Prefix_parses_one_to_five_octets(string text, byte[] expected)
    {
        Assert.That(MacAddress.TryParsePrefix(text, out var prefix), Is.True);
        Assert.That(prefix, Is.EqualTo(expected));
    }

    [TestCase("")]
    [TestCase("0:1:2:3:4:5")]
    [TestCase("2::20")]
    [TestCase("2:8:zz")]
    public void Prefix_rejects_bad_input(string text)
    {
        Assert.That(MacAddress.TryParsePrefix(text, out _), Is.False);
    }
}

public class EthernetViewTests
{
    private static readonly byte[] s_untagged =
    [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
        0x02, 0x08, 0x20, 0x0a, 0x0b, 0x0c, // source 2:8:20:a:b:c
        0x08, 0x06,                         // ARP
        0xde, 0xad,                         // payload
    ];

    private static readonly byte[] s_tagged =
    [
        0x02, 0x08, 0x20, 0x01, 0x02, 0x03, // destination 2:8:20:1:2:3
        0x02, 0x08, 0x20, 0x0a, 0x0b, 0x0c, // source 2:8:20:a:b:c
        0x81, 0x00,                         // 802.1Q
        0xa0, 0x64,                         // PCP 5, DEI 0, VID 100
        0x08, 0x00,                         // IPv4
        0xde, 0xad,                         // payload
    ];

    [Test]
    public void Reads_an_untagged_header()
    {
        Assert.That(EthernetView.TryCreate(s_untagged.ToArray(), out var eth), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(eth.Destination, Is.EqualTo(MacAddress.Broadcast));
            Assert.That(eth.Source.ToString(), Is.EqualTo("2:8:20:a:b:c"));
            Assert.That(eth.IsTagged, Is.False);
            Assert.That(eth.VlanId, Is.Zero);
            Assert.That(eth.Priority, Is.Zero);
            Assert.That(eth.EtherType, Is.EqualTo(EtherType.Arp));
            Assert.That(eth.HeaderSize, Is.EqualTo(14));
            Assert.That(eth.Payload.ToArray(), Is.EqualTo(new byte[] { 0xde, 0xad }));
        }
    }

    [Test]
    public void Reads_a_tagged_header()
    {
        Assert.That(EthernetView.TryCreate(s_tagged.ToArray(), out var eth), Is.True);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(eth.Destination.ToString(), Is.EqualTo("2:8:20:1:2:3"));
            Assert.That(eth.Source.ToString(), Is.EqualTo("2:8:20:a:b:c"));
            Assert.That(eth.IsTagged, Is.True);
            Assert.That(eth.VlanId, Is.EqualTo(100));
            Assert.That(eth.Priority, Is.EqualTo(5));
            Assert.That(eth.EtherType, Is.EqualTo(EtherType.Ipv4));
            Assert.That(eth.HeaderSize, Is.EqualTo(18));
            Assert.That(eth.Payload.ToArray(), Is.EqualTo(new byte[] { 0xde, 0xad }));
        }
    }

    [Test]
    public void WriteHeader_emits_the_untagged_bytes()
    {
        var frame = new byte[16];
        frame[14] = 0xde; frame[15] = 0xad;
        MacAddress.TryParse("2:8:20:a:b:c", out var src);

        EthernetView.WriteHeader(frame, MacAddress.Broadcast, src, EtherType.Arp);

        Assert.That(frame, Is.EqualTo(s_untagged));
    }

    [Test]
    public void Setters_rewrite_addresses_and_type_after_the_tag()
    {
        var frame = s_tagged.ToArray();
        EthernetView.TryCreate(frame, out var eth);
        MacAddress.TryParse("2:0:0:0:0:9", out var dst);

        eth.Destination = dst;
        eth.EtherType = EtherType.Ipv6;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(frame[..6], Is.EqualTo(new byte[] { 2, 0, 0, 0, 0, 9 }));
            Assert.That(frame[16..18], Is.EqualTo(new byte[] { 0x86, 0xdd }));
            Assert.That(frame[12..16], Is.EqualTo(new byte[] { 0x81, 0x00, 0xa0, 0x64 }), "the tag is untouched");
        }
    }

    [TestCase(0)]
    [TestCase(6)]
    [TestCase(13)]
    public void Frames_shorter_than_a_header_are_rejected(int length)
    {
        Assert.That(EthernetView.TryCreate(new byte[length], out _), Is.False);
    }

    [TestCase(14)]
    [TestCase(17)]
    public void Tagged_frames_shorter_than_the_tagged_header_are_rejected(int length)
    {
        Assert.That(EthernetView.TryCreate(s_tagged.AsSpan(0, length).ToArray(), out _), Is.False);
    }

    [Test]
    public void Tagged_header_of_exactly_18_bytes_is_accepted_with_an_empty_payload()
    {
        Assert.That(EthernetView.TryCreate(s_tagged.AsSpan(0, 18).ToArray(), out var eth), Is.True);
        Assert.That(eth.Payload.Length, Is.Zero);
    }

    [Test]
    public void PushTag_gives_the_tagged_bytes_and_PopTag_gives_the_original_back()
    {
        byte[] untagged = [.. s_tagged[..12], 0x08, 0x00, 0xde, 0xad];
        var p = Packet.Unpooled(untagged);

        Assert.That(EthernetView.TryPushTag(p, 100, 5), Is.True);
        Assert.That(p.Data.ToArray(), Is.EqualTo(s_tagged));

        Assert.That(EthernetView.TryPopTag(p), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(p.Data.ToArray(), Is.EqualTo(untagged));
            Assert.That(p.Offset, Is.EqualTo(Packet.Headroom));
        }
    }

    [Test]
    public void PushTag_keeps_only_twelve_bits_of_the_vid()
    {
        var p = Packet.Unpooled(s_untagged);

        EthernetView.TryPushTag(p, 0xF123, 0);

        EthernetView.TryCreate(p.Data, out var eth);
        Assert.That(eth.VlanId, Is.EqualTo(0x123));
    }

    [Test]
    public void PushTag_on_a_short_frame_fails_and_leaves_it_alone()
    {
        var p = Packet.Unpooled(new byte[10]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(EthernetView.TryPushTag(p, 5, 0), Is.False);
            Assert.That(p.Length, Is.EqualTo(10));
        }
    }

    [Test]
    public void PushTag_on_an_already_tagged_frame_fails()
    {
        var p = Packet.Unpooled(s_tagged);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(EthernetView.TryPushTag(p, 5, 0), Is.False);
            Assert.That(p.Data.ToArray(), Is.EqualTo(s_tagged));
        }
    }

    [Test]
    public void PushTag_without_headroom_fails()
    {
        var p = Packet.Unpooled(s_untagged);
        Assert.That(p.TryPrepend(Packet.Headroom - 2), Is.True);

        Assert.That(EthernetView.TryPushTag(p, 5, 0), Is.False);
    }

    [Test]
    public void PopTag_on_an_untagged_frame_fails_and_leaves_it_alone()
    {
        var p = Packet.Unpooled(s_untagged);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(EthernetView.TryPopTag(p), Is.False);
            Assert.That(p.Data.ToArray(), Is.EqualTo(s_untagged));
        }
    }

    [Test]
    public void Tag_round_trip_agrees_with_PacketDotNet()
    {
        var p = Packet.Unpooled(s_untagged);
        EthernetView.TryPushTag(p, 4094, 7);

        var parsed = PacketDotNet.Packet.ParsePacket(PacketDotNet.LinkLayers.Ethernet, p.Data.ToArray());
        var vlan = parsed.Extract<PacketDotNet.Ieee8021QPacket>();

        Assert.That(vlan, Is.Not.Null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vlan.VlanIdentifier, Is.EqualTo(4094));
            Assert.That((int)vlan.PriorityControlPoint, Is.EqualTo(7));
            Assert.That(vlan.Type, Is.EqualTo(PacketDotNet.EthernetType.Arp));
        }
    }
}
