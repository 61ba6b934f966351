using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

public static partial class SnoopFormat
{
    /// <summary>
    /// One walk down a frame's layers, like snoop's interpreters with F_SUM or F_DTAIL. Each layer
    /// appends its summary line; the deepest one is the plain summary. Names for "src -> dst" are
    /// set by the deepest layer that knows them (Ether, then IP or ARP).
    /// </summary>
    private sealed partial class Walk(bool detail)
    {
        private string _prefix = "";
        public readonly List<string> SumLines = [];
        public readonly List<string> Lines = [];
        public string? SrcName;
        public string DstName = "*";
        public int Number;
        public long TimestampNs;

        private void Header(string prefix, string title)
        {
            _prefix = prefix;
            Lines.Add($"{prefix}----- {title} -----");
            Space();
        }

        private void Line(string text) => Lines.Add(_prefix + text);
        private void Space() => Lines.Add(_prefix);

        public void Ether(in FrameLayout f)
        {
            var b = f.Frame;
            if (detail)
            {
                Header("ETHER:  ", "Ether Header");
                Line($"Packet {Number} arrived at {ArrivalTime(TimestampNs)}");
                Line($"Packet size = {b.Length} bytes");
            }
            if (!f.HasEther)
            {
                SumLines.Add($"ETHER (short packet, {b.Length} bytes)");
                if (detail) { Line("ETHER (short packet)"); Space(); }
                return;
            }
            SrcName = f.Source.ToString();
            DstName = EtherName(f.Destination);
            string typeName = EtherTypeName(f.EtherType);
            string tag = f.Tagged ? $"VLAN ID={f.VlanId}, Priority={f.Priority}, " : "";
            SumLines.Add($"ETHER {tag}Type={f.EtherType:X4} ({typeName}), size={b.Length} bytes");
            if (detail)
            {
                var dst = f.Destination;
                Line(dst.IsGroup ? $"Destination = {dst}, {EtherName(dst)}" : $"Destination = {dst}");
                Line($"Source      = {f.Source}");
                if (f.Tagged)
                {
                    Line($"VLAN ID = {f.VlanId}");
                    Line($"VLAN Priority = {f.Priority}");
                }
                Line($"Ethertype = {f.EtherType:X4} ({typeName})");
                Space();
            }
            switch (f.EtherType)
            {
                case EtherType.Arp or FrameLayout.EtherTypeRarp: Arp(in f); break;
                case EtherType.Ipv4: Ipv4(in f); break;
                case EtherType.Ipv6: Ipv6(in f); break;
            }
        }

        private void Arp(in FrameLayout f)
        {
            var a = f.Network;
            if (!f.HasArp)
            {
                string why = a.Length >= 6 && (a[4] != 6 || a[5] != 4) ? "ARP (not Ethernet/IPv4 addresses)" : "ARP (short packet)";
                SumLines.Add(why);
                if (detail) { Header("ARP:  ", "ARP/RARP Frame"); Line(why); Space(); }
                return;
            }
            ushort op = f.ArpOperation;
            string sip = Ipv4Text(f.ArpSenderIp), tip = Ipv4Text(f.ArpTargetIp);
            SrcName = sip;
            string sum = op switch
            {
                1 => $"ARP C Who is {tip}, {tip} ?",
                2 => $"ARP R {sip}, {sip} is {f.ArpSenderMac}",
                3 => $"RARP C Who is {f.ArpTargetMac} ?",
                4 => $"RARP R {f.ArpTargetMac} is {tip}, {tip}",
                _ => $"ARP Opcode {op}",
            };
            if (op is 2 or 4) DstName = tip;
            SumLines.Add(sum);
            if (!detail) return;
            Header("ARP:  ", "ARP/RARP Frame");
            Line($"Hardware type = {U16(a, 0)}");
            Line($"Protocol type = {U16(a, 2):x4} ({EtherTypeName(U16(a, 2))})");
            Line($"Length of hardware address = {a[4]} bytes");
            Line($"Length of protocol address = {a[5]} bytes");
            string opName = op switch { 1 => "ARP Request", 2 => "ARP Reply", 3 => "REVARP Request", 4 => "REVARP Reply", _ => "" };
            Line($"Opcode {op} ({opName})");
            Line($"Sender's hardware address = {f.ArpSenderMac}");
            Line($"Sender's protocol address = {sip}, {sip}");
            Line($"Target hardware address = {(op == 1 ? "?" : f.ArpTargetMac.ToString())}");
            Line($"Target protocol address = {(op == 3 ? "?" : $"{tip}, {tip}")}");
            Space();
        }

        private void Ipv4(in FrameLayout f)
        {
            var ip = f.Network;
            if (f.IpVersion != 4)
            {
                string why = ip.Length < 20 ? $"IP truncated: header missing {20 - ip.Length} bytes"
                    : (ip[0] >> 4) != 4 ? $"IP bad version {ip[0] >> 4}"
                    : $"IP bad header length {(ip[0] & 0xF) * 4} bytes";
                SumLines.Add(why);
                if (detail) { Header("IP:   ", "IP Header"); Line(why); Space(); }
                return;
            }
            int hl = (ip[0] & 0xF) * 4;
            int total = U16(ip, 2);
            ushort id = U16(ip, 4), off = U16(ip, 6);
            int fragOffset = (off & 0x1FFF) * 8;
            bool more = (off & 0x2000) != 0;
            byte tos = ip[1], ttl = ip[8], proto = ip[9];
            bool cut = total > ip.Length || total < hl;
            string src = Ipv4Text(U32(ip, 12)), dst = Ipv4Text(U32(ip, 16));
            SrcName = src;
            DstName = dst;
            SumLines.Add(f.IsFragment
                ? $"{ProtocolName(proto)} IP fragment ID={id} Offset={fragOffset,-4} MF={(more ? 1 : 0)} TOS=0x{tos:x} TTL={ttl}"
                : $"IP  D={dst} S={src} LEN={total}{(cut ? "?" : "")}, ID={id}, TOS=0x{tos:x}, TTL={ttl}");
            if (detail)
            {
                Header("IP:   ", "IP Header");
                Line("Version = 4");
                Line($"Header length = {hl} bytes");
                Line($"Type of service = 0x{tos:x2}");
                Line($"      xxx. .... = {tos >> 5} (precedence)");
                Line("      " + Flag(tos, 0x10, "low delay", "normal delay"));
                Line("      " + Flag(tos, 0x08, "high throughput", "normal throughput"));
                Line("      " + Flag(tos, 0x04, "high reliability", "normal reliability"));
                Line("      " + Flag(tos, 0x02, "ECN capable transport", "not ECN capable transport"));
                Line("      " + Flag(tos, 0x01, "ECN congestion experienced", "no ECN congestion experienced"));
                Line($"Total length = {total} bytes{(cut ? " -- truncated" : "")}");
                Line($"Identification = {id}");
                Line($"Flags = 0x{off >> 12:x}");
                Line("      " + Flag(off >> 8, 0x40, "do not fragment", "may fragment"));
                Line("      " + Flag(off >> 8, 0x20, "more fragments", "last fragment"));
                Line($"Fragment offset = {fragOffset} bytes");
                Line($"Time to live = {ttl} seconds/hops");
                Line($"Protocol = {proto} ({ProtocolName(proto)})");
                Line($"Header checksum = {U16(ip, 10):x4}");
                Line($"Source address = {src}, {src}");
                Line($"Destination address = {dst}, {dst}");
                Line(hl > 20 ? $"Options: ({hl - 20} bytes)" : "No options");
                Space();
                if (f.IsLaterFragment)
                {
                    Lines.Add($"{ProtocolName(proto)}:  [{f.L4ClaimedLength} byte(s) of data, continuation of IP ident={id}]");
                    return;
                }
            }
            else if (f.IsFragment)
            {
                return;
            }
            Upper(in f);
        }

        private void Ipv6(in FrameLayout f)
        {
            var ip = f.Network;
            if (f.IpVersion != 6)
            {
                string why = ip.Length < 40 ? $"IPv6 truncated: header missing {40 - ip.Length} bytes" : $"IPv6 bad version {ip[0] >> 4}";
                SumLines.Add(why);
                if (detail) { Header("IPv6:   ", "IPv6 Header"); Line(why); Space(); }
                return;
            }
            uint vcf = U32(ip, 0);
            uint tclass = (vcf >> 20) & 0xFF, flow = vcf & 0xFFFFF;
            int plen = U16(ip, 4);
            byte next = ip[6], hops = ip[7];
            string src = Ipv6Text(f.Ipv6Source), dst = Ipv6Text(f.Ipv6Destination);
            SrcName = src;
            DstName = dst;
            SumLines.Add($"IPv6  S={src} D={dst} LEN={plen} HOPS={hops} CLASS=0x{tclass:x} FLOW=0x{flow:x}");
            if (detail)
            {
                Header("IPv6:   ", "IPv6 Header");
                Line("Version = 6");
                Line($"Traffic Class = {tclass}");
                Line($"Flow label = 0x{flow:x}");
                Line($"Payload length = {plen}");
                Line($"Next Header = {next} ({ProtocolName(next)})");
                Line($"Hop Limit = {hops}");
                Line($"Source address = {src}");
                Line($"Destination address = {dst}");
                Space();
                if (f.IsLaterFragment)
                {
                    Lines.Add($"{ProtocolName(f.Protocol)}:  [fragment of {f.L4ClaimedLength} byte(s), not the first]");
                    return;
                }
            }
            else if (f.IsFragment)
            {
                SumLines.Add($"{ProtocolName(f.Protocol)} IPv6 fragment ID={f.Fragment6Id} Offset={f.Fragment6Offset,-4} MF={(f.Fragment6More ? 1 : 0)}");
                return;
            }
            Upper(in f);
        }

        private void Upper(in FrameLayout f)
        {
            if (f.L4 < 0) return;
            switch (f.Protocol)
            {
                case IpProtocol.Udp: Udp(in f); break;
                case IpProtocol.Tcp: Tcp(in f); break;
                case IpProtocol.Icmp: Icmp(in f, v6: false); break;
                case IpProtocol.Icmpv6: Icmp(in f, v6: true); break;
            }
        }

        private void Short(string proto, string title, int need, int have)
        {
            string why = $"{proto} truncated: header missing {need - have} bytes";
            SumLines.Add(why);
            if (detail) { Header($"{proto}:  ", title); Line(why); Space(); }
        }

        private void Udp(in FrameLayout f)
        {
            var u = f.Transport;
            if (u.Length < 8) { Short("UDP", "UDP Header", 8, u.Length); return; }
            int sport = U16(u, 0), dport = U16(u, 2), len = U16(u, 4);
            SumLines.Add($"UDP D={dport} S={sport} LEN={len}");
            // snoop_udp.c hands the data the length field covers, as far as it was captured.
            var data = u[8..Math.Clamp(len, 8, u.Length)];
            if (!detail)
            {
                Reserved(IpProtocol.Udp, sport, dport, data);
                return;
            }
            Header("UDP:  ", "UDP Header");
            Line($"Source port = {sport}");
            // snoop_udp.c prints "%d %s" for these three, so a line with nothing to add ends in a space.
            Line($"Destination port = {dport} {PortName(IpProtocol.Udp, dport)}");
            Line($"Length = {len} {(len > u.Length ? "(Not all data contained in this fragment)" : "")}");
            ushort sum = U16(u, 6);
            Line($"Checksum = {sum:X4} {(sum == 0 ? "(no checksum)" : "")}");
            Space();
            Reserved(IpProtocol.Udp, sport, dport, data);
        }

        private void Tcp(in FrameLayout f)
        {
            var t = f.Transport;
            if (t.Length < 20) { Short("TCP", "TCP Header", 20, t.Length); return; }
            int sport = U16(t, 0), dport = U16(t, 2);
            uint seq = U32(t, 4), ack = U32(t, 8);
            int dataOffset = (t[12] >> 4) * 4;
            byte flags = t[13];
            int win = U16(t, 14);
            int dataLen = Math.Max(0, f.L4ClaimedLength - dataOffset);
            int urgent = U16(t, 18);
            var options = t[20..Math.Clamp(dataOffset, 20, t.Length)];
            // snoop_tcp.c's summary: the flags in its tcp_flags[] order, Urg and Ack with their
            // values, Seq and Len only for a non-zero sequence number, the window, then the options.
            var sum = new System.Text.StringBuilder($"TCP D={dport} S={sport}");
            if ((flags & 0x02) != 0) sum.Append(" Syn");
            if ((flags & 0x01) != 0) sum.Append(" Fin");
            if ((flags & 0x04) != 0) sum.Append(" Rst");
            if ((flags & 0x08) != 0) sum.Append(" Push");
            if ((flags & 0x40) != 0) sum.Append(" ECE");
            if ((flags & 0x80) != 0) sum.Append(" CWR");
            if ((flags & 0x20) != 0) sum.Append($" Urg={urgent}");
            if ((flags & 0x10) != 0) sum.Append($" Ack={ack}");
            if (seq != 0) sum.Append($" Seq={seq} Len={dataLen}");
            sum.Append($" Win={win}");
            TcpOptionsSummary(options, sum);
            SumLines.Add(sum.ToString());
            var data = t[Math.Clamp(dataOffset, 20, t.Length)..];
            if (!detail)
            {
                Reserved(IpProtocol.Tcp, sport, dport, data);
                return;
            }
            Header("TCP:  ", "TCP Header");
            Line($"Source port = {sport}");
            Line($"Destination port = {dport} {PortName(IpProtocol.Tcp, dport)}");
            Line($"Sequence number = {seq}");
            Line($"Acknowledgement number = {ack}");
            Line($"Data offset = {dataOffset} bytes");
            Line($"Flags = 0x{flags:x2}");
            Line("      " + Flag(flags, 0x80, "ECN congestion window reduced", "No ECN congestion window reduced"));
            Line("      " + Flag(flags, 0x40, "ECN echo", "No ECN echo"));
            Line("      " + Flag(flags, 0x20, "Urgent pointer", "No urgent pointer"));
            Line("      " + Flag(flags, 0x10, "Acknowledgement", "No acknowledgement"));
            Line("      " + Flag(flags, 0x08, "Push", "No push"));
            Line("      " + Flag(flags, 0x04, "Reset", "No reset"));
            Line("      " + Flag(flags, 0x02, "Syn", "No Syn"));
            Line("      " + Flag(flags, 0x01, "Fin", "No Fin"));
            Line($"Window = {win}");
            Line($"Checksum = 0x{U16(t, 16):x4}");
            Line($"Urgent pointer = {urgent}");
            foreach (string option in TcpOptionsDetail(options)) Line(option);
            Space();
            Reserved(IpProtocol.Tcp, sport, dport, data);
        }

        private void Icmp(in FrameLayout f, bool v6)
        {
            var c = f.Transport;
            string proto = v6 ? "ICMPv6" : "ICMP";
            if (c.Length < 4) { Short(proto, $"{proto} Header", 4, c.Length); return; }
            byte type = c[0], code = c[1];
            bool echo = v6 ? type is 128 or 129 : type is 8 or 0;
            string name = v6 ? Icmp6Name(type) : Icmp4Name(type, code);
            string detailText = name;
            string codeText = "";
            if (echo)
            {
                if (c.Length < 8) { Short(proto, $"{proto} Header", 8, c.Length); return; }
                codeText = $"(ID: {U16(c, 4)} Sequence number: {U16(c, 6)})";
                detailText = $"{name} {codeText}";
            }
            SumLines.Add($"{proto} {detailText}");
            if (!detail) return;
            Header($"{proto}:  ", $"{proto} Header");
            Line($"Type = {type} ({name})");
            Line(codeText.Length > 0 ? $"Code = {code} {codeText}" : $"Code = {code}");
            Line($"Checksum = {U16(c, 2):x}");
            Space();
        }

        private static string Icmp4Name(byte type, byte code) => type switch
        {
            0 => "Echo reply",
            3 => code switch
            {
                0 => "Destination unreachable (Bad network)",
                1 => "Destination unreachable (Bad host)",
                2 => "Destination unreachable (Bad protocol)",
                3 => "Destination unreachable (Bad port)",
                4 => "Destination unreachable (Needed to fragment)",
                _ => $"Destination unreachable (code {code})",
            },
            4 => "Source quench",
            5 => "Redirect",
            8 => "Echo request",
            11 => code == 0 ? "Time exceeded (Time to live exceeded in transit)" : "Time exceeded (Fragment reassembly time exceeded)",
            12 => "Parameter problem",
            13 => "Timestamp request",
            14 => "Timestamp reply",
            _ => $"Unknown type {type}",
        };

        private static string Icmp6Name(byte type) => type switch
        {
            1 => "Destination unreachable",
            2 => "Packet too big",
            3 => "Time exceeded",
            4 => "Parameter problem",
            128 => "Echo request",
            129 => "Echo reply",
            130 => "Group membership query",
            131 => "Group membership report",
            133 => "Router solicitation",
            134 => "Router advertisement",
            135 => "Neighbor solicitation",
            136 => "Neighbor advertisement",
            137 => "Redirect",
            143 => "Multicast listener report v2",
            _ => $"Unknown type {type}",
        };
    }
}
