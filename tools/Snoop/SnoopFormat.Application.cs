using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

/*
 * The application layer, as snoop_rport.c's interpret_reserved hands it out: the port that has a
 * name decides (the source port first, then the destination; a frame with no named port is left at
 * its transport line). DNS and multicast DNS go to snoop_dns.c over UDP only; with data, the BOOTP
 * ports go to snoop_dhcp.c and HTTP (80, 8080) to snoop_http.c. Those are the protocols this
 * system's programs speak (dhcpd and the DHCP client, curl and httpd) or that a capture file may
 * hold (DNS).
 *
 * Rules
 *   1. Payloads are untrusted: no interpreter reads past the data it was given and none throws.
 *      Where snoop reads on regardless (a DHCP option whose length runs past the end, a name
 *      whose compression pointer points at itself), the interpreter stops and says so.
 *   2. Wording, spacing and the order of lines are snoop's, including its trailing spaces.
 *
 * Not done: snoop's line for the other named ports ("ECHO C port=1234 ..."), and the interpreters
 * for protocols nothing here speaks (NFS/RPC, NTP, TFTP, SLP, NetBIOS, LDAP, RIP, SOCKS, syslog).
 */
public static partial class SnoopFormat
{
    private const int PortDns = 53, PortMdns = 5353, PortBootps = 67, PortBootpc = 68, PortHttp = 80, PortHttpAlt = 8080;

    private sealed partial class Walk
    {
        /// <summary>snoop_rport.c interpret_reserved: picks the interpreter by the named port.</summary>
        private void Reserved(byte protocol, int sport, int dport, ReadOnlySpan<byte> data)
        {
            int which;
            if (KnownPort(protocol, sport)) which = sport;
            else if (KnownPort(protocol, dport)) which = dport;
            else return;
            if ((sport is PortDns or PortMdns || dport is PortDns or PortMdns) && protocol != IpProtocol.Tcp)
            {
                Dns(data, which);
                return;
            }
            if (data.Length == 0) return;
            switch (which)
            {
                case PortBootps or PortBootpc: Dhcp(data); break;
                case PortHttp or PortHttpAlt: Http(data); break;
            }
        }

        private static bool KnownPort(byte protocol, int port)
            => (protocol == IpProtocol.Udp ? UdpPortName(port) : TcpPortName(port)) != null;

        // ---- HTTP (snoop_http.c) ------------------------------------------------------------------

        /// <summary>snoop_http.c: a summary shows at most 80 printable characters, and "(body)" when
        /// fewer than 10 start the data; the detail shows up to five lines, each cut at its first
        /// unprintable character, then "[...]" if data remains.</summary>
        private void Http(ReadOnlySpan<byte> data)
        {
            const int MinChars = 10, MaxChars = 80, MaxLines = 5;
            int c = Printable(data);
            SumLines.Add(c < MinChars ? "HTTP (body)" : "HTTP " + Ascii(data[..Math.Min(c, MaxChars)]));
            if (!detail) return;
            Header("HTTP: ", "HyperText Transfer Protocol");
            int p = 0, lines = 0;
            while (p < data.Length && lines < MaxLines)
            {
                var rest = data[p..];
                c = Printable(rest);
                if (c == 0 && rest[0] is not ((byte)'\r' or (byte)'\n')) break;
                // A line ends at CR LF, at CR alone, at LF alone, or at the end of the data.
                int end = rest.IndexOf((byte)'\r');
                if (end >= 0) { if (end < rest.Length - 1 && rest[end + 1] == '\n') end++; }
                else
                {
                    end = rest.IndexOf((byte)'\n');
                    if (end < 0) end = rest.Length - 1;
                }
                Line(Ascii(rest[..c]));
                lines++;
                p += end + 1;
            }
            if (p < data.Length) Line("[...]");
            Space();
        }

        /// <summary>snoop_http.c printable(): how many bytes from the start are printable ASCII or tab.</summary>
        private static int Printable(ReadOnlySpan<byte> b)
        {
            int n = 0;
            while (n < b.Length && (b[n] is >= 0x20 and < 0x7F || b[n] == '\t')) n++;
            return n;
        }

        private static string Ascii(ReadOnlySpan<byte> b) => System.Text.Encoding.ASCII.GetString(b);
    }
}
