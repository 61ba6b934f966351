using System.Text;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

/// <summary>
/// DHCP and BOOTP as snoop_dhcp.c (illumos usr/src/cmd/cmd-inet/usr.sbin/snoop/) prints them.
/// Summary: "DHCP/BOOTP DHCPDISCOVER" when the message type is the first option, else the BOOTP
/// operation. Detail: the fixed fields, then "(Options) field options" with one line per option in
/// snoop's words, then the sname and file fields, or the options they carry when option 52 says so.
/// The fields are read at DhcpView's offsets; DhcpView itself is not used because it takes only
/// well-formed Ethernet messages, and snoop shows any.
/// </summary>
public static partial class SnoopFormat
{
    private const int DhcpSnameOffset = 44, DhcpSnameLength = 64, DhcpFileOffset = 108, DhcpFileLength = 128;

    private sealed partial class Walk
    {
        private void Dhcp(ReadOnlySpan<byte> d)
        {
            bool cookie = d.Length >= DhcpView.OptionsOffset && U32(d, DhcpView.FixedLength) == DhcpView.MagicCookie;
            if (cookie && d.Length >= DhcpView.OptionsOffset + 3 && d[DhcpView.OptionsOffset] == DhcpOption.MessageType)
                SumLines.Add("DHCP/BOOTP " + DhcpMessageType(d[DhcpView.OptionsOffset + 2]));
            // snoop_dhcp.c switches on ntohs(dp->op), a byte widened to 16 bits: on a little-endian
            // host neither case matches and no line is added. The operation byte is what it means.
            else if (d[0] == DhcpView.BootRequest) SumLines.Add("DHCP/BOOTP BOOTREQUEST");
            else if (d[0] == DhcpView.BootReply) SumLines.Add("DHCP/BOOTP BOOTREPLY");
            if (!detail) return;

            Header("DHCP: ", "Dynamic Host Configuration Protocol");
            if (d.Length < DhcpView.FixedLength)
            {
                Line($"DHCP truncated: header missing {DhcpView.FixedLength - d.Length} bytes");
                Space();
                return;
            }
            byte htype = d[1];
            Line($"Hardware address type (htype) =  {htype} ({(htype == 1 ? "Ethernet (10Mb)" : "UNKNOWN")})");
            Line($"Hardware address length (hlen) = {d[2]} octets");
            Line($"Relay agent hops = {d[3]}");
            Line($"Transaction ID = 0x{U32(d, 4):x}");
            Line($"Time since boot = {U16(d, 8)} seconds");
            Line($"Flags = 0x{U16(d, 10):x4}");
            Line($"Client address (ciaddr) = {Ipv4Text(U32(d, 12))}");
            Line($"Your client address (yiaddr) = {Ipv4Text(U32(d, 16))}");
            Line($"Next server address (siaddr) = {Ipv4Text(U32(d, 20))}");
            Line($"Relay agent address (giaddr) = {Ipv4Text(U32(d, 24))}");
            if (htype == 1)
                Line($"Client hardware address (chaddr) = {d[28]:X2}:{d[29]:X2}:{d[30]:X2}:{d[31]:X2}:{d[32]:X2}:{d[33]:X2}");
            if (d.Length < DhcpView.OptionsOffset)
            {
                Line($"DHCP truncated: header missing {DhcpView.OptionsOffset - d.Length} bytes");
                Space();
                return;
            }
            if (!cookie)
            {
                // snoop's format ends in "\n", which prints as an empty line after this one.
                Line($"Unrecognized cookie: 0x{d[236]:X2}{d[237]:X2}{d[238]:X2}{d[239]:X2}\n");
                return;
            }
            var sname = d.Slice(DhcpSnameOffset, DhcpSnameLength);
            var file = d.Slice(DhcpFileOffset, DhcpFileLength);
            Space();
            Header("DHCP: ", "(Options) field options");
            int overload = DhcpOptions(d[DhcpView.OptionsOffset..]);
            switch (overload)
            {
                case 0:
                    if (sname[0] != 0) Line("Server Name = " + CString(sname));
                    if (file[0] != 0) Line("Boot File Name = " + CString(file));
                    break;
                case 1:
                    if (sname[0] != 0) Line("Server Name = " + CString(sname));
                    Space();
                    Header("DHCP: ", "(File) field options");
                    DhcpOptions(file);
                    break;
                case 2:
                    if (file[0] != 0) Line("Boot File Name = " + CString(file));
                    Space();
                    Header("DHCP: ", "(Sname) field options");
                    DhcpOptions(sname);
                    break;
                case 3:
                    Space();
                    Header("DHCP: ", "(File) field options");
                    DhcpOptions(file);
                    Space();
                    Header("DHCP: ", "(Sname) field options");
                    DhcpOptions(sname);
                    break;
            }
        }

        /// <summary>show_options: one or more lines per option up to the end option. Returns the
        /// option-overload value (option 52), 0 if none. An option whose length runs past the data
        /// ends the list with a line saying so (snoop reads on).</summary>
        private int DhcpOptions(ReadOnlySpan<byte> o)
        {
            int overload = 0;
            int i = 0;
            while (i < o.Length)
            {
                byte code = o[i];
                if (code == DhcpOption.Pad) { i++; continue; }
                if (code == DhcpOption.End) break;
                string name = DhcpOptionName(code);
                int have = o.Length - i - 2;
                if (have < 0 || o[i + 1] > have)
                {
                    Line($"Error: {(name.Length > 0 ? name : $"Option {code}")} truncated ({(have < 0 ? "no length" : $"{o[i + 1]} octets claimed, {have} present")})");
                    break;
                }
                int len = o[i + 1];
                var v = o.Slice(i + 2, len);
                i += 2 + len;
                switch (code)
                {
                    case 1 or 28 or 32 or 50 or 54:
                        Line(len != 4 ? $"Error: Bad {name}" : $"{name} = {Ipv4Text(U32(v, 0))}");
                        break;
                    case 3 or 4 or 5 or 6 or 7 or 8 or 9 or 10 or 11 or 16 or 41 or 42 or 44 or 45 or 48 or 49
                        or 65 or 68 or 69 or 70 or 71 or 72 or 73 or 74 or 75 or 76:
                        if (len % 4 != 0) Line($"Error: Bad {name} address");
                        else for (int k = 0; k < len; k += 4) Line($"{name} at = {Ipv4Text(U32(v, k))}");
                        break;
                    case 12 or 14 or 15 or 17 or 40 or 47 or 56 or 64 or 66 or 67 or 77:
                        Line($"{name} = {CString(v)}");
                        break;
                    case 2 or 23 or 24 or 35 or 37 or 38 or 51 or 58 or 59:
                        DhcpNumber(v, n => $"{name} = {n} seconds");
                        break;
                    case 19 or 20 or 27 or 29 or 30 or 31 or 34 or 36 or 39:
                        DhcpNumber(v, n => $"{name} flag = 0x{n:x}");
                        break;
                    case 22 or 26 or 57:
                        DhcpNumber(v, n => $"{name} = {n} bytes");
                        break;
                    case 60 or 61 or 62 or 63:
                        Line(AsciiHex(name, v));
                        break;
                    case 13:
                        DhcpNumber(v, n => $"Boot file size = {n} 512 byte blocks");
                        break;
                    case 21:
                        if (len % 8 != 0) { Line("Error: Bad Policy Filter option"); break; }
                        for (int k = 0; k < len; k += 8)
                        {
                            Line($"Policy Destination = {Ipv4Text(U32(v, k))}");
                            Line($"Mask = {Ipv4Text(U32(v, k + 4))}");
                        }
                        break;
                    case 25:
                        if (len % 2 != 0) { Line("Error: Bad Path MTU Table"); break; }
                        Line("\tPath MTU Plateau Table:");
                        Line("\t=======================");
                        for (int k = 0; k < len / 2; k++) Line($"\t\tEntry {k}:\t\t{U16(v, 2 * k)}");
                        break;
                    case 33:
                        if (len % 8 != 0) { Line($"Error: Bad Static Route option: {len}"); break; }
                        for (int k = 0; k < len; k += 8) Line($"Static route from {Ipv4Text(U32(v, k))} to {Ipv4Text(U32(v, k + 4))}");
                        break;
                    case 43:
                        DhcpVendorOptions(v);
                        break;
                    case 46:
                        if (len != 1) { Line($"Error: Bad '{name}' parameter"); break; }
                        string node = v[0] switch { 1 => "Broadcast Node", 2 => "Point To Point Node", 4 => "Mixed Mode Node", 8 => "Hybrid Node", _ => "??? Node" };
                        Line($"{name} = {node} ({v[0]})");
                        break;
                    case 52:
                        if (len != 1) Line("Bad Option Overload value.");
                        else overload = v[0];
                        break;
                    case DhcpOption.MessageType:
                        Line(len != 1 ? "Bad DHCP Message Type." : $"Message type = {DhcpMessageType(v[0])}");
                        break;
                    case DhcpOption.ParameterList:
                        Line("Requested Options:");
                        foreach (byte requested in v)
                        {
                            string what = requested < s_dhcpOptionNames.Length ? s_dhcpOptionNames[requested]
                                : requested is >= 128 and <= 254 ? "Site Option" : "Unrecognized Option";
                            Line($"\t{requested,2} ({what})");
                        }
                        break;
                    default:
                        // snoop asks dhcp_inittab for the option's name and decoding; without that
                        // table every other option reads as its class and value.
                        Line($"{(code is >= 128 and <= 254 ? "Site" : "Unrecognized")} Option = {code}, length = {len} octets");
                        Line(AsciiHex("\tValue =", v));
                        break;
                }
            }
            return overload;
        }

        /// <summary>display_number: a one-, two- or four-octet number; a longer one prints snoop's
        /// 0xdeadbeef marker (as a signed decimal), any other length nothing.</summary>
        private void DhcpNumber(ReadOnlySpan<byte> v, Func<long, string> text)
        {
            switch (v.Length)
            {
                case > 4: Line(text(unchecked((int)0xDEADBEEF))); break;
                case 1: Line(text(v[0])); break;
                case 2: Line(text(U16(v, 0))); break;
                case 4: Line(text(unchecked((int)U32(v, 0)))); break; // printed with %d
            }
        }

        /// <summary>Option 43: "(code) length octets" and the value of each sub-option.</summary>
        private void DhcpVendorOptions(ReadOnlySpan<byte> v)
        {
            Line($"Vendor-specific Options ({v.Length} total octets):");
            int j = 0;
            while (j < v.Length && v[j] != DhcpOption.End)
            {
                if (v[j] == DhcpOption.Pad) { j++; continue; }
                if (j + 1 >= v.Length || v[j + 1] > v.Length - j - 2)
                {
                    Line($"Error: Vendor-specific option {v[j]} truncated");
                    break;
                }
                int len = v[j + 1];
                Line(AsciiHex($"\t({v[j]:00}) {len:00} octets", v.Slice(j + 2, len)));
                j += 2 + len;
            }
        }
    }

    /// <summary>display_ascii_hex: the value in quotes when every octet is printable, else as
    /// "0xNN" octets, cut with "..." where snoop's 512-byte buffer ends, and "(unprintable)".</summary>
    private static string AsciiHex(string what, ReadOnlySpan<byte> v)
    {
        if (v.Length >= 255) return $"\t{what} <TOO LONG>";
        bool printable = true;
        foreach (byte b in v) printable &= b is >= 0x20 and < 0x7F;
        if (printable) return $"{what}\t\"{Encoding.ASCII.GetString(v)}\"";
        const int Fits = 102; // octets of "0xNN " that fit the buffer with room for the last
        var hex = new StringBuilder();
        for (int k = 0; k < Math.Min(v.Length, Fits); k++) hex.Append($"0x{v[k]:X2} ");
        hex.Length--;
        if (v.Length > Fits) { hex.Length -= 3; hex.Append("..."); }
        return $"{what}\t{hex} (unprintable)";
    }

    /// <summary>A NUL-terminated string in a fixed field, as %s prints it.</summary>
    private static string CString(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        var b = new StringBuilder();
        foreach (byte c in end < 0 ? field : field[..end]) b.Append((char)c);
        return b.ToString();
    }

    private static string DhcpMessageType(byte type) => type switch
    {
        0 => "BOOTP",
        1 => "DHCPDISCOVER",
        2 => "DHCPOFFER",
        3 => "DHCPREQUEST",
        4 => "DHCPDECLINE",
        5 => "DHCPACK",
        6 => "DHCPNAK",
        7 => "DHCPRELEASE",
        8 => "DHCPINFORM",
        _ => "UNKNOWN",
    };

    private static string DhcpOptionName(byte code) => code < s_dhcpOptionNames.Length ? s_dhcpOptionNames[code] : "";

    /// <summary>snoop_dhcp.c's option_types[], options 0-77.</summary>
    private static readonly string[] s_dhcpOptionNames =
    [
        "", "Subnet Mask", "UTC Time Offset", "Router", "RFC868 Time Servers", "IEN 116 Name Servers",
        "DNS Servers", "UDP LOG Servers", "RFC 865 Cookie Servers", "RFC 1179 Line Printer Servers (LPR)",
        "Impress Servers", "RFC 887 Resource Location Servers", "Client Hostname",
        "Boot File size in 512 byte Blocks", "Merit Dump File", "DNS Domain Name", "SWAP Server",
        "Client Root Path", "BOOTP options extensions path", "IP Forwarding Flag",
        "NonLocal Source Routing Flag", "Policy Filters for NonLocal Routing",
        "Maximum Datagram Reassembly Size", "Default IP Time To Live", "Path MTU Aging Timeout",
        "Path MTU Size Plateau Table", "Interface MTU Size", "All Subnets are Local Flag",
        "Broadcast Address", "Perform Mask Discovery Flag", "Mask Supplier Flag",
        "Perform Router Discovery Flag", "Router Solicitation Address", "Static Routes",
        "Trailer Encapsulation Flag", "ARP Cache Timeout Seconds", "Ethernet Encapsulation Flag",
        "TCP Default Time To Live", "TCP Keepalive Interval Seconds", "TCP Keepalive Garbage Flag",
        "NIS Domainname", "NIS Servers", "Network Time Protocol Servers", "Vendor Specific Options",
        "NetBIOS RFC 1001/1002 Name Servers", "NetBIOS Datagram Dist. Servers", "NetBIOS Node Type",
        "NetBIOS Scope", "X Window Font Servers", "X Window Display Manager Servers",
        "Requested IP Address", "IP Address Lease Time", "Option Field Overload Flag",
        "DHCP Message Type", "DHCP Server Identifier", "Option Request List", "Error Message",
        "Maximum DHCP Message Size", "Renewal (T1) Time Value", "Rebinding (T2) Time Value",
        "Client Class Identifier =", "Client Identifier =", "Netware IP Domain =",
        "Netware IP Options =", "NISPLUS Domainname", "NISPLUS Servers", "TFTP Server Name",
        "Option BootFile Name", "Mobile IP Agents", "Simple Mail (SMTP) Servers",
        "Post Office (POP3) Servers", "Net News (NNTP) Servers", "WorldWideWeb Servers",
        "Finger Servers", "Internet Relay Chat (IRC) Servers", "StreetTalk Servers",
        "StreetTalk Directory Assist. Servers", "User Class Identifier",
    ];
}
