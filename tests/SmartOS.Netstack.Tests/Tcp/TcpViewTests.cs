using System.Net;
using PacketDotNet;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests.Tcp;

public class TcpViewTests
{
    // A SYN as Linux sends it: ports 41684 -> 80, MSS 1460, SACK-permitted, timestamps, NOP, wscale 7.
    private static readonly byte[] s_linuxSyn =
    [
        0xa2, 0xd4, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
        0x00, 0x00, 0x00, 0x00,
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x03, 0x03, 0x07,
    ];

    // An ACK with NOP NOP TS and NOP NOP SACK(2 blocks) and 4 bytes of payload.
    private static readonly byte[] s_sackAck =
    [
        0x00, 0x50, 0xa2, 0xd4, 0x00, 0x00, 0x10, 0x00, 0x12, 0x34, 0x56, 0x79, 0xd0, 0x18, 0x01, 0xf5,
        0x00, 0x00, 0x00, 0x00,
        0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe2, 0x40,
        0x01, 0x01, 0x05, 0x12, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x40, 0x00,
        0x00, 0x00, 0x50, 0x00,
        0xde, 0xad, 0xbe, 0xef,
    ];

    [Test]
    public void Linux_syn_parses_with_every_option()
    {
        Assert.That(TcpView.TryCreate(s_linuxSyn, out var view), Is.True);
        Assert.That(TcpRepr.TryParse(view, out var repr), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(repr.SourcePort, Is.EqualTo(41684));
            Assert.That(repr.DestinationPort, Is.EqualTo(80));
            Assert.That(repr.Seq, Is.EqualTo(0x12345678u));
            Assert.That(repr.Flags, Is.EqualTo(TcpFlags.Syn));
            Assert.That(repr.Window, Is.EqualTo(64240));
            Assert.That(repr.Options.Mss, Is.EqualTo(1460));
            Assert.That(repr.Options.SackPermitted, Is.True);
            Assert.That(repr.Options.HasTimestamp, Is.True);
            Assert.That(repr.Options.TsVal, Is.EqualTo(123456u));
            Assert.That(repr.Options.HasWindowScale, Is.True);
            Assert.That(repr.Options.WindowScale, Is.EqualTo(7));
            Assert.That(view.HeaderLength, Is.EqualTo(40));
            Assert.That(view.Payload.Length, Is.Zero);
        }
    }

    [Test]
    public void Syn_representation_emits_the_linux_layout_byte_for_byte()
    {
        var repr = new TcpRepr { SourcePort = 41684, DestinationPort = 80, Seq = 0x12345678, Flags = TcpFlags.Syn, Window = 64240 };
        repr.Options = new TcpOptions { Mss = 1460, SackPermitted = true, HasTimestamp = true, TsVal = 123456, HasWindowScale = true, WindowScale = 7 };
        var buffer = new byte[repr.HeaderLength];
        Assert.That(repr.TryEmit(buffer, out int written), Is.True);
        Assert.That(written, Is.EqualTo(40));
        Assert.That(buffer, Is.EqualTo(s_linuxSyn));
    }

    [Test]
    public void Ack_with_timestamps_and_sack_blocks_round_trips()
    {
        Assert.That(TcpView.TryCreate(s_sackAck, out var view), Is.True);
        Assert.That(TcpRepr.TryParse(view, out var repr), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(repr.Flags, Is.EqualTo(TcpFlags.Ack | TcpFlags.Psh));
            Assert.That(repr.Options.TsVal, Is.EqualTo(5u));
            Assert.That(repr.Options.TsEcr, Is.EqualTo(123456u));
            Assert.That(repr.Options.SackCount, Is.EqualTo(2));
            Assert.That(repr.Options.Sack[0], Is.EqualTo(new TcpSackBlock(0x2000, 0x3000)));
            Assert.That(repr.Options.Sack[1], Is.EqualTo(new TcpSackBlock(0x4000, 0x5000)));
            Assert.That(view.Payload.ToArray(), Is.EqualTo(new byte[] { 0xde, 0xad, 0xbe, 0xef }));
        }
        var again = new byte[s_sackAck.Length];
        Assert.That(repr.TryEmit(again, out int hl), Is.True);
        view.Payload.CopyTo(again.AsSpan(hl));
        Assert.That(again, Is.EqualTo(s_sackAck));
    }

    [TestCase(19, TestName = "Header_shorter_than_twenty_bytes_is_refused")]
    [TestCase(4, TestName = "Data_offset_below_five_words_is_refused")]
    [TestCase(15, TestName = "Data_offset_past_the_segment_is_refused")]
    public void Bad_headers_are_refused(int variant)
    {
        byte[] b = (byte[])s_linuxSyn.Clone();
        if (variant == 19) b = b[..19];
        else b[12] = (byte)(variant << 4);
        Assert.That(TcpView.TryCreate(b, out _), Is.False);
    }

    [TestCase(new byte[] { 0x02, 0x05, 0x05, 0xb4, 0x00 }, TestName = "Mss_option_of_wrong_length_is_malformed")]
    [TestCase(new byte[] { 0x08, 0x0a, 0x00 }, TestName = "Option_running_past_the_header_is_malformed")]
    [TestCase(new byte[] { 0x05, 0x01 }, TestName = "Option_length_below_two_is_malformed")]
    [TestCase(new byte[] { 0x05, 0x07, 0, 0, 0, 0, 0 }, TestName = "Sack_option_not_a_multiple_of_eight_is_malformed")]
    public void Malformed_options_fail_to_parse(byte[] options)
    {
        Assert.That(TcpOptions.TryParse(options, out _), Is.False);
    }

    [Test]
    public void Unknown_options_are_skipped_and_end_of_list_stops_parsing()
    {
        byte[] options = [0x1e, 0x04, 0xaa, 0xbb, 0x02, 0x04, 0x02, 0x18, 0x00, 0x99, 0x99];
        Assert.That(TcpOptions.TryParse(options, out var o), Is.True);
        Assert.That(o.Mss, Is.EqualTo(536));
    }

    [Test]
    public void Checksum_matches_packetdotnet_over_ipv4()
    {
        var bytes = (byte[])s_sackAck.Clone();
        var src = IpAddress.V4(0xC0A80001);
        var dst = IpAddress.V4(0xC0A80002);
        TcpView.TryCreate(bytes, out var view);
        view.FillChecksum(src, dst);
        Assert.That(view.ChecksumValid(src, dst), Is.True);

        var ip = new IPv4Packet(IPAddress.Parse("192.168.0.1"), IPAddress.Parse("192.168.0.2")) { Protocol = PacketDotNet.ProtocolType.Tcp };
        var tcp = new TcpPacket(new PacketDotNet.Utils.ByteArraySegment(bytes));
        ip.PayloadPacket = tcp;
        Assert.That(tcp.Checksum, Is.EqualTo(view.ChecksumField));
        Assert.That(tcp.CalculateTcpChecksum(), Is.EqualTo(view.ChecksumField));
    }

    [Test]
    public void Wide_checksum_agrees_with_the_rfc_1071_reference_for_every_length()
    {
        var random = new SmartOS.Kernel.HostRandom(12);
        var src = IpAddress.V4(0x0A000001);
        var dst = IpAddress.V4(0x0A000002);
        for (int length = 0; length < 300; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            if (length > 0) data[0] = 0xFF;
            uint pseudo = 0x0A00 + 0x0001 + 0x0A00 + 0x0002 + IpProtocol.Tcp + (uint)length;
            for (int i = 0; i < length; i += 2) pseudo += (uint)(data[i] << 8 | (i + 1 < length ? data[i + 1] : 0));
            ushort reference = Checksum.Fold(pseudo);
            Assert.That(TcpChecksum.Compute(src, dst, data), Is.EqualTo(reference), $"length {length}");
        }
    }

    [Test]
    public void Checksum_matches_packetdotnet_over_ipv6()
    {
        var bytes = (byte[])s_linuxSyn.Clone();
        var src = IpAddress.FromIPAddress(IPAddress.Parse("fd00::1"));
        var dst = IpAddress.FromIPAddress(IPAddress.Parse("fd00::abcd:2"));
        TcpView.TryCreate(bytes, out var view);
        view.FillChecksum(src, dst);

        var ip = new IPv6Packet(IPAddress.Parse("fd00::1"), IPAddress.Parse("fd00::abcd:2")) { NextHeader = PacketDotNet.ProtocolType.Tcp };
        var tcp = new TcpPacket(new PacketDotNet.Utils.ByteArraySegment(bytes));
        ip.PayloadPacket = tcp;
        Assert.That(tcp.CalculateTcpChecksum(), Is.EqualTo(view.ChecksumField));
    }
}
