using System.Text;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

public static partial class SnoopFormat
{
    /// <summary>
    /// snoop_tcp.c's print_tcpoptions_summary: " Options=&lt;mss 1460,nop,wscale 7,...&gt;" after the
    /// window; nothing when the header has no options. An option cut short ends with "|", a zero
    /// length with "optlen 0", both as snoop_tcp.c marks them.
    /// </summary>
    internal static void TcpOptionsSummary(ReadOnlySpan<byte> opt, StringBuilder line)
    {
        if (opt.Length == 0) return;
        line.Append(" Options=<");
        while (opt.Length > 0)
        {
            int len = opt.Length > 1 ? opt[1] : 0;
            switch (opt[0])
            {
                case 0:
                    line.Append("eol>");
                    return;
                case 1:
                    line.Append("nop");
                    len = 1;
                    break;
                case 2 when opt.Length >= 4:
                    line.Append($"mss {U16(opt, 2)}");
                    break;
                case 3 when opt.Length >= 3:
                    line.Append($"wscale {opt[2]}");
                    break;
                case 8:
                    line.Append(opt.Length < 10 ? "tstamp|" : $"tstamp {U32(opt, 2)} {U32(opt, 6)}");
                    break;
                case 4:
                    line.Append("sackOK");
                    break;
                case 5:
                    if (opt.Length <= 2 || len < 2) { line.Append("sack|"); break; }
                    line.Append("sack");
                    for (int at = 2, left = len - 2; left > 0; at += 8, left -= 8)
                    {
                        if (at + 8 > opt.Length) { line.Append('|'); break; }
                        line.Append($" {U32(opt, at)}-{U32(opt, at + 4)}");
                    }
                    break;
                case 19:
                    if (opt.Length < 18 || len != 18) { line.Append("md5|"); break; }
                    line.Append("md5 0x").Append(Convert.ToHexStringLower(opt[2..18]));
                    break;
                default:
                    line.Append($"unknown {opt[0]}");
                    break;
            }
            if (len <= 0)
            {
                line.Append($"optlen {len}");
                break;
            }
            opt = opt[Math.Min(len, opt.Length)..];
            if (opt.Length > 0) line.Append(',');
        }
        line.Append('>');
    }

    /// <summary>
    /// snoop_tcp.c's print_tcpoptions: "No options", or "Options: (N bytes)" and one "  - " line
    /// per option, worded as snoop_tcp.c words them.
    /// </summary>
    internal static List<string> TcpOptionsDetail(ReadOnlySpan<byte> opt)
    {
        var lines = new List<string>();
        if (opt.Length == 0) { lines.Add("No options"); return lines; }
        lines.Add($"Options: ({opt.Length} bytes)");
        while (opt.Length > 0)
        {
            int len = opt.Length > 1 ? opt[1] : 0;
            switch (opt[0])
            {
                case 0:
                    lines.Add("  - End of option list");
                    return lines;
                case 1:
                    lines.Add("  - No operation");
                    len = 1;
                    break;
                case 2 when opt.Length >= 4:
                    lines.Add($"  - Maximum segment size = {U16(opt, 2)} bytes");
                    break;
                case 3 when opt.Length >= 3:
                    lines.Add($"  - Window scale = {opt[2]}");
                    break;
                case 8:
                    lines.Add(opt.Length < 10 ? "  - Incomplete TS option" : $"  - TS Val = {U32(opt, 2)}, TS Echo = {U32(opt, 6)}");
                    break;
                case 4:
                    lines.Add("  - SACK permitted option");
                    break;
                case 5:
                    {
                        if (opt.Length <= 2 || len < 2) { lines.Add("  - Incomplete SACK option"); break; }
                        lines.Add("  - SACK blocks:");
                        var blocks = new StringBuilder("        ");
                        for (int at = 2, left = len - 2; left > 0; at += 8, left -= 8)
                        {
                            if (at + 8 > opt.Length) { blocks.Append("...incomplete SACK block"); break; }
                            blocks.Append($"({U32(opt, at)}-{U32(opt, at + 4)}) ");
                        }
                        lines.Add(blocks.ToString());
                        break;
                    }
                case 19:
                    lines.Add(opt.Length < 18 || len != 18 ? "  - Incomplete MD5 option" : "  - TCP MD5 Signature = 0x" + Convert.ToHexStringLower(opt[2..18]));
                    break;
                default:
                    {
                        var data = len >= 2 ? opt[2..Math.Min(len, opt.Length)] : [];
                        lines.Add($"  - Option {opt[0]} (unknown - {len - 2} bytes) {Convert.ToHexStringLower(data)}");
                        break;
                    }
            }
            if (len <= 0)
            {
                // snoop_tcp.c overwrites the option's line with this one.
                lines[^1] = $"  - Incomplete option len {len}";
                break;
            }
            opt = opt[Math.Min(len, opt.Length)..];
        }
        return lines;
    }

    /// <summary>
    /// snoop_rport.c's getportname: the well-known ports snoop names in its detail view, "(DNS)";
    /// "" for the others.
    /// </summary>
    internal static string PortName(byte protocol, int port)
    {
        string? name = protocol == IpProtocol.Udp ? UdpPortName(port) : TcpPortName(port);
        return name == null ? "" : $"({name})";
    }

    private static string? UdpPortName(int port) => port switch
    {
        7 => "ECHO", 9 => "DISCARD", 13 => "DAYTIME", 19 => "CHARGEN", 37 => "TIME", 42 => "NAME",
        53 => "DNS", 5353 => "MDNS", 67 => "BOOTPS", 68 => "BOOTPC", 69 => "TFTP", 79 => "FINGER",
        123 => "NTP", 137 => "NBNS", 138 => "NBDG", 389 => "LDAP", 427 => "SLP", 434 => "Mobile IP",
        512 => "BIFF", 513 => "WHO", 514 => "SYSLOG", 517 => "TALK", 520 => "RIP", 521 => "RIPng",
        546 => "DHCPv6C", 547 => "DHCPv6S", 550 => "NEW-RWHO", 560 => "RMONITOR", 561 => "MONITOR",
        1080 => "SOCKS", 4789 => "VXLAN",
        _ => null,
    };

    private static string? TcpPortName(int port) => port switch
    {
        1 => "TCPMUX", 7 => "ECHO", 9 => "DISCARD", 11 => "SYSTAT", 13 => "DAYTIME", 15 => "NETSTAT",
        19 => "CHARGEN", 20 => "FTP-DATA", 21 => "FTP", 23 => "TELNET", 25 => "SMTP", 37 => "TIME",
        39 => "RLP", 42 => "NAMESERVER", 43 => "NICNAME", 53 => "DNS", 70 => "GOPHER", 77 => "RJE",
        79 => "FINGER", 80 => "HTTP", 87 => "LINK", 95 => "SUPDUP", 101 => "HOSTNAME", 102 => "ISO-TSAP",
        103 => "X400", 104 => "X400-SND", 105 => "CSNET-NS", 109 => "POP-2", 113 => "AUTH",
        117 => "UUCP-PATH", 119 => "NNTP", 123 => "NTP", 139 => "NBT", 143 => "IMAP", 144 => "NeWS",
        389 => "LDAP", 427 => "SLP", 443 => "HTTPS", 445 => "SMB", 512 => "EXEC", 513 => "RLOGIN",
        514 => "RSHELL", 515 => "PRINTER", 530 => "COURIER", 540 => "UUCP", 600 => "PCSERVER",
        1080 => "SOCKS", 1296 => "SVP", 1524 => "INGRESLOCK", 2904 => "M2UA", 2905 => "M3UA",
        6000 => "XWIN", 8080 => "HTTP (proxy)", 9900 => "IUA",
        _ => null,
    };
}
