using System.Buffers.Binary;
using System.Globalization;
using SmartOS.Cli.Snoop;
using SmartOS.Kernel.Wire;
using SmartOS.Testing;
using static SmartOS.Cli.Tests.Snoop.TestFrames;

namespace SmartOS.Cli.Tests.Snoop;

/// <summary>snoop's application-layer interpreters (DNS, DHCP/BOOTP, HTTP), one frame a line of
/// Data/snoop-application.txt, which says which illumos source each case follows.</summary>
public class SnoopApplicationTests
{
    private static IEnumerable<TestCaseData> Cases() => DataFile.Cases("snoop-application.txt", 5);

    /// <summary>The frames of the data file, for the robustness test.</summary>
    internal static IEnumerable<byte[]> Frames()
        => DataFile.Read("snoop-application.txt", 5, 5).Select(Frame);

    [TestCaseSource(nameof(Cases))]
    public void Snoop_interprets_the_payload_as_the_data_file_says(DataCase c)
    {
        byte[] frame = Frame(c);
        string expected = c[4];
        switch (c[3])
        {
            case "sum":
                Assert.That(SnoopFormat.Interpret(frame).Lines[^1], Is.EqualTo(expected), c.Where);
                break;
            case "V":
                Assert.That(string.Join('\n', SnoopFormat.Interpret(frame).Lines.Skip(2)), Is.EqualTo(expected), c.Where);
                break;
            case "v":
                Assert.That(string.Join('\n', Application(frame)), Is.EqualTo(expected), c.Where);
                break;
            case "v~":
                Assert.That(Application(frame), Is.SupersetOf(expected.Split('\n')), c.Where);
                break;
            default:
                c.Fail<int>($"form '{c[3]}' is not sum, V, v or v~");
                break;
        }
    }

    /// <summary>The -v lines below the transport layer.</summary>
    private static string[] Application(byte[] frame)
        => SnoopFormat.Verbose(frame, 1, 0).Split('\n')
            .Where(l => !l.StartsWith("ETHER:", StringComparison.Ordinal) && !l.StartsWith("IP:", StringComparison.Ordinal)
                && !l.StartsWith("UDP:", StringComparison.Ordinal) && !l.StartsWith("TCP:", StringComparison.Ordinal))
            .ToArray();

    /// <summary>A frame from 192.0.2.1 to 192.0.2.2 carrying the line's transport, ports ("S > D")
    /// and payload.</summary>
    private static byte[] Frame(DataCase c)
    {
        string[] ports = c[1].Split('>', StringSplitOptions.TrimEntries);
        if (ports.Length != 2 || !ushort.TryParse(ports[0], CultureInfo.InvariantCulture, out ushort sport)
            || !ushort.TryParse(ports[1], CultureInfo.InvariantCulture, out ushort dport))
            return c.Fail<byte[]>($"ports '{c[1]}' are not 'SOURCE > DESTINATION'");
        byte[] payload = Payload(c, c[2]);
        switch (c[0])
        {
            case "udp":
                {
                    var u = new byte[8 + payload.Length];
                    payload.CopyTo(u, 8);
                    UdpView.WriteIpv4(u, IpA, IpB, sport, dport);
                    return Ipv4(IpA, IpB, IpProtocol.Udp, u);
                }
            case "tcp":
                {
                    var t = new byte[20 + payload.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(t, sport);
                    BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(2), dport);
                    BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(4), 1);
                    BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(8), 1);
                    t[12] = 5 << 4;
                    t[13] = 0x18; // Push, Ack
                    BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(14), 65535);
                    payload.CopyTo(t, 20);
                    return Ipv4(IpA, IpB, IpProtocol.Tcp, t);
                }
            default:
                return c.Fail<byte[]>($"transport '{c[0]}' is not udp or tcp");
        }
    }

    /// <summary>Payload tokens: hex octets ("c0 0c"), 'text' in ASCII, zN for N zero octets.</summary>
    private static byte[] Payload(DataCase c, string text)
    {
        var bytes = new List<byte>();
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] == ' ') { i++; continue; }
            if (text[i] == '\'')
            {
                int end = text.IndexOf('\'', i + 1);
                if (end < 0) return c.Fail<byte[]>("a 'text' token is not closed");
                foreach (char ch in text[(i + 1)..end]) bytes.Add((byte)ch);
                i = end + 1;
                continue;
            }
            int stop = text.IndexOf(' ', i);
            string token = stop < 0 ? text[i..] : text[i..stop];
            i += token.Length;
            if (token[0] == 'z' && int.TryParse(token[1..], CultureInfo.InvariantCulture, out int zeros))
                bytes.AddRange(new byte[zeros]);
            else if (token.Length == 2 && byte.TryParse(token, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
                bytes.Add(b);
            else
                return c.Fail<byte[]>($"payload token '{token}' is not hex, 'text' or zN");
        }
        return [.. bytes];
    }
}
