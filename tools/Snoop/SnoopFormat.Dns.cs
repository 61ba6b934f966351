using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Cli.Snoop;

/// <summary>
/// DNS and multicast DNS as snoop_dns.c (illumos usr/src/cmd/cmd-inet/usr.sbin/snoop/) prints them.
/// Summary: "DNS C name. IN A ?" for a query, "DNS R name. IN A 192.0.2.7" (the first answer) for
/// a reply, "DNS R  Error: 3(Name Error)" for a failed one. Detail: the header fields, then every
/// question and record, four spaces in. A message shorter than its 12-byte header adds no line, as
/// in snoop; a name or record cut short shows what was there.
/// </summary>
public static partial class SnoopFormat
{
    private const int DnsHeaderLength = 12;
    private const int DnsMaxName = 1024; // NS_MAXDNAME less its terminating NUL
    private const string DnsIndent = "    ";

    private sealed partial class Walk
    {
        private void Dns(ReadOnlySpan<byte> m, int port)
        {
            if (m.Length < DnsHeaderLength) return;
            string proto = port == PortDns ? "DNS" : "MDNS";
            int id = U16(m, 0), qd = U16(m, 4), an = U16(m, 6), ns = U16(m, 8), ar = U16(m, 10);
            bool qr = (m[2] & 0x80) != 0, aa = (m[2] & 0x04) != 0, tc = (m[2] & 0x02) != 0, rd = (m[2] & 0x01) != 0;
            bool ra = (m[3] & 0x80) != 0;
            int opcode = (m[2] >> 3) & 0xF, rcode = m[3] & 0xF;

            var sum = new StringBuilder($"{proto} {(qr ? 'R' : 'C')} ");
            if (qr && rcode != 0)
            {
                sum.Append($" Error: {rcode}({DnsRcode(rcode)})");
            }
            else if (qr)
            {
                int at = DnsHeaderLength;
                bool whole = true;
                for (int i = 0; i < qd && whole; i++)
                {
                    if (at >= m.Length) whole = false;
                    else at += DnsSkipQuestion(m, at);
                }
                if (whole && an > 0) DnsAnswer(m, at, sum);
            }
            else if (DnsHeaderLength < m.Length)
            {
                DnsQuestion(m, DnsHeaderLength, sum);
            }
            SumLines.Add(sum.ToString());
            if (!detail) return;

            Header($"{proto}:  ", $"{proto} Header");
            if (qr)
            {
                Line($"Response ID = {id}");
                Line((aa ? "AA (Authoritative Answer) " : "") + (tc ? "TC (TrunCation) " : "") + (ra ? "RA (Recursion Available) " : ""));
                Line($"Response Code: {rcode} ({DnsRcode(rcode)})");
                Line($"Reply to {qd} question(s)");
            }
            else
            {
                Line($"Query ID = {id}");
                Line($"Opcode: {DnsOpcode(opcode)}");
                Line((tc ? "TC (TrunCation) " : "") + (rd ? "RD (Recursion Desired) " : ""));
                Line($"{qd} question(s)");
            }
            int rr = DnsHeaderLength;
            for (int i = 0; i < qd; i++)
            {
                if (rr >= m.Length) return;
                rr += DnsQuestion(m, rr, null);
                Space();
            }
            // As snoop_dns.c: a query shows these sections only when it claims records in them.
            (string Title, int Count)[] sections = [("answer(s)", an), ("name server resource(s)", ns), ("additional record(s)", ar)];
            foreach (var (title, count) in sections)
            {
                if (!qr && count == 0) continue;
                Line($"{count} {title}");
                for (int i = 0; i < count; i++)
                {
                    if (rr >= m.Length) return;
                    rr += DnsAnswer(m, rr, null);
                    Space();
                }
            }
        }

        /// <summary>print_question: the name, then class and type (summary: " IN A ?"). Returns the
        /// bytes used, or all that remain when the question is cut short.</summary>
        private int DnsQuestion(ReadOnlySpan<byte> m, int at, StringBuilder? sum)
        {
            var name = new StringBuilder();
            int next = DnsName(m, at, name);
            if (sum != null) sum.Append(name);
            else Line(DnsIndent + "Domain Name: " + name);
            if (m.Length - next < 4) return m.Length - at;
            int type = U16(m, next), cls = U16(m, next + 2) & 0x7FFF; // mDNS uses the class's top bit
            if (sum != null)
            {
                sum.Append($" {DnsClass(cls, false)} {DnsType(type, false)} ?");
            }
            else
            {
                Line($"{DnsIndent}Class: {cls} ({DnsClass(cls, true)})");
                Line($"{DnsIndent}Type:  {type} ({DnsType(type, true)})");
            }
            return next + 4 - at;
        }

        private static int DnsSkipQuestion(ReadOnlySpan<byte> m, int at) => DnsName(m, at, new StringBuilder()) + 4 - at;

        /// <summary>print_answer: one resource record, summary (" IN A 192.0.2.7" after the name) or
        /// detail lines. Returns the bytes used, or all that remain when the record is cut short.</summary>
        private int DnsAnswer(ReadOnlySpan<byte> m, int at, StringBuilder? sum)
        {
            int end = m.Length - at;
            var name = new StringBuilder();
            int p = DnsName(m, at, name);
            if (sum != null) sum.Append(name);
            else Line(DnsIndent + "Domain Name: " + name);
            if (m.Length - p < 2) return end;
            int type = U16(m, p);
            p += 2;
            if (type == 41) return DnsOpt(m, at, p, sum);
            if (m.Length - p < 8) return end;
            int cls = U16(m, p) & 0x7FFF;
            int ttl = BinaryPrimitives.ReadInt32BigEndian(m[(p + 2)..]);
            int rdlen = U16(m, p + 6);
            p += 8;
            int valueLine = -1;
            if (sum != null)
            {
                sum.Append($" {DnsClass(cls, false)} {DnsType(type, false)} ");
            }
            else
            {
                Line($"{DnsIndent}Class: {cls} ({DnsClass(cls, true)})");
                Line($"{DnsIndent}Type:  {type} ({DnsType(type, true)})");
                Line($"{DnsIndent}TTL (Time To Live): {ttl}");
                Line($"{DnsIndent}{DnsType(type, true)}: ");
                valueLine = Lines.Count - 1;
            }
            if (rdlen > m.Length - p) return end;
            var rdata = m.Slice(p, rdlen);
            // The value goes on the summary line, or on the "Type: " detail line.
            void Value(string text)
            {
                if (sum != null) sum.Append(text);
                else Lines[valueLine] += text;
            }
            switch (type)
            {
                case 1 when rdlen == 4:
                    Value(Ipv4Text(BinaryPrimitives.ReadUInt32BigEndian(rdata)));
                    break;
                case 28 when rdlen == 16:
                    Value(Ipv6Text(rdata));
                    break;
                case 11: // WKS: the address; the protocol and service bitmap are not shown here
                    if (rdlen == 4) Value(Ipv4Text(BinaryPrimitives.ReadUInt32BigEndian(rdata)));
                    break;
                case 13: // HINFO: snoop writes "OS: " straight after the CPU string
                    {
                        int used = DnsCharString(rdata, out string cpu);
                        Value("CPU: " + cpu);
                        if (p + used >= m.Length) break;
                        DnsCharString(rdata[used..], out string os);
                        Value("OS: " + os);
                        break;
                    }
                case 2 or 5 or 7 or 8 or 9 or 12:
                    {
                        var target = new StringBuilder();
                        DnsName(m, p, target);
                        Value(target.ToString());
                        break;
                    }
                case 15 when rdlen >= 2:
                    {
                        var exchange = new StringBuilder();
                        DnsName(m, p + 2, exchange);
                        Value(exchange.ToString());
                        if (sum == null) Line($"{DnsIndent}Preference: {U16(rdata, 0)}");
                        break;
                    }
                case 6 when sum == null:
                    {
                        var mname = new StringBuilder();
                        int q = DnsName(m, p, mname);
                        Line($"{DnsIndent}MNAME (Server name): {mname}");
                        if (q >= m.Length) break;
                        var rname = new StringBuilder();
                        q = DnsName(m, q, rname);
                        Line($"{DnsIndent}RNAME (Resposible mailbox): {rname}");
                        if (m.Length - q < 20) break;
                        Line($"{DnsIndent}Serial: {U32(m, q)}");
                        Line($"{DnsIndent}Refresh: {U32(m, q + 4)}  Retry: {U32(m, q + 8)}  Expire: {U32(m, q + 12)} Minimum: {U32(m, q + 16)}");
                        break;
                    }
                case 14 when sum == null:
                    {
                        var rmailbx = new StringBuilder();
                        int q = DnsName(m, p, rmailbx);
                        Line($"{DnsIndent}RMAILBX (Resposible mailbox): {rmailbx}");
                        var emailbx = new StringBuilder();
                        DnsName(m, q, emailbx);
                        Line($"{DnsIndent}EMAILBX (mailbox to receive err message): {emailbx}");
                        break;
                    }
            }
            return p + rdlen - at;
        }

        /// <summary>An EDNS0 OPT record (RFC 2671): the sender's UDP payload size, the extended
        /// rcode (its top eight bits over the header's four), the version and the data length.</summary>
        private int DnsOpt(ReadOnlySpan<byte> m, int at, int p, StringBuilder? sum)
        {
            if (m.Length - p < 8) return m.Length - at;
            int size = U16(m, p), xrcode = m[p + 2], version = m[p + 3], zero = U16(m, p + 4), rdlen = U16(m, p + 6);
            int rcode = (0xFF & (xrcode << 4)) + (m[3] & 0xF);
            p += 8;
            if (sum != null)
            {
                sum.Append($" {DnsType(41, false)} UDP {size} rc {rcode} ver {version} len {rdlen}");
            }
            else
            {
                Line($"{DnsIndent}Type:  41 ({DnsType(41, true)})");
                Line($"{DnsIndent}UDP payload size: {size} (0x{size:x4})");
                Line($"{DnsIndent}Extended rcode: {xrcode} (translates to {rcode} ({DnsRcode(rcode)}))");
                Line($"{DnsIndent}EDNS0 Version: {version}");
                Line($"{DnsIndent}zero: {zero}");
                Line($"{DnsIndent}Data length: {rdlen}");
            }
            if (rdlen > m.Length - p) return m.Length - at;
            return p + rdlen - at;
        }
    }

    /// <summary>
    /// get_domain_name: labels joined with '.', each followed by one ("www.example.com."), with
    /// RFC 1035 compression pointers followed from the message start. Returns where the name ends
    /// in the message (after the first pointer if there is one; the message end if a label is cut).
    /// snoop takes a pointer to anywhere not after itself, so one that points at itself never ends;
    /// here a pointer must go back before the labels read so far, which bounds the walk (rule 1).
    /// </summary>
    private static int DnsName(ReadOnlySpan<byte> m, int at, StringBuilder name)
    {
        int resume = -1, floor = at;
        while (name.Length < DnsMaxName && at < m.Length)
        {
            int len = m[at++];
            if (len == 0) break;
            if ((len & 0xC0) == 0xC0)
            {
                if (at >= m.Length)
                {
                    at = m.Length;
                    break;
                }
                int target = (len & 0x3F) << 8 | m[at++];
                if (resume < 0) resume = at;
                if (target >= floor || target >= m.Length) break;
                floor = target;
                at = target;
                continue;
            }
            if (len > m.Length - at)
            {
                at = m.Length;
                break;
            }
            for (int i = 0; i < len && name.Length < DnsMaxName - 1; i++) name.Append((char)m[at + i]);
            name.Append('.');
            at += len;
        }
        return resume >= 0 ? resume : at;
    }

    /// <summary>get_char_string: a length octet and that many characters; nothing when the data
    /// holds fewer than two octets. Returns the octets used.</summary>
    private static int DnsCharString(ReadOnlySpan<byte> data, out string text)
    {
        text = "";
        if (data.Length <= 1) return 0;
        int len = Math.Min(data[0], data.Length - 1);
        var b = new StringBuilder(len);
        for (int i = 0; i < len; i++) b.Append((char)data[1 + i]);
        text = b.ToString();
        return 1 + len;
    }

    private static string DnsOpcode(int opcode) => opcode switch
    {
        0 => "Query",
        1 => "Inverse Query",
        2 => "Status",
        _ => $"Unknown ({opcode})",
    };

    private static string DnsRcode(int rcode) => rcode switch
    {
        0 => "OK",
        1 => "Format Error",
        2 => "Server Fail",
        3 => "Name Error",
        4 => "Unimplemented",
        5 => "Refused",
        16 => "Bad Version",
        _ => $"Unknown ({rcode})",
    };

    private static string DnsClass(int cls, bool detail) => cls switch
    {
        1 => detail ? "Internet" : "IN",
        3 => detail ? "CHAOS" : "CH",
        4 => detail ? "Hesiod" : "HS",
        255 => detail ? "* (Any class)" : "*",
        _ => $"Unknown ({cls})",
    };

    private static string DnsType(int type, bool detail) => type switch
    {
        1 => detail ? "Address" : "A",
        2 => detail ? "Authoritative Name Server" : "NS",
        5 => detail ? "Canonical Name" : "CNAME",
        6 => detail ? "Start Of a zone Authority" : "SOA",
        7 => detail ? "Mailbox domain name" : "MB",
        8 => detail ? "Mailbox Group member" : "MG",
        9 => detail ? "Mail Rename domain name" : "MR",
        10 => "NULL",
        11 => detail ? "Well Known Service" : "WKS",
        12 => detail ? "Domain Name Pointer" : "PTR",
        13 => detail ? "Host Information" : "HINFO",
        14 => detail ? "Mailbox or maillist Info" : "MINFO",
        15 => detail ? "Mail Exchange" : "MX",
        16 => detail ? "Text strings" : "TXT",
        28 => detail ? "IPv6 Address" : "AAAA",
        29 => detail ? "Location Information" : "LOC",
        33 => detail ? "Server Selection" : "SRV",
        35 => detail ? "Naming Authority Pointer" : "NAPTR",
        37 => detail ? "Certificate record" : "CERT",
        41 => detail ? "EDNS0 option" : "OPT",
        44 => detail ? "SSH Fingerprint" : "SSHFP",
        45 => detail ? "IPsec Key" : "IPSECKEY",
        46 => detail ? "DNSSEC signature" : "RRSIG",
        47 => detail ? "Next Secure record" : "NSEC",
        48 => detail ? "DNS Key record" : "DNSKEY",
        49 => detail ? "DHCP identifier" : "DHCID",
        50 => detail ? "NSEC3 record" : "NSEC3",
        51 => detail ? "NSEC3 parameter" : "NSEC3PARAM",
        52 => detail ? "TLSA certificate association" : "TLSA",
        53 => detail ? "S/MIME cert association" : "SMIMEA",
        55 => detail ? "Host Identity record" : "HIP",
        59 => detail ? "Child DS" : "CDS",
        60 => detail ? "Child copy of DNSKEY record" : "CDNSKEY",
        61 => detail ? "OpenPGP public key record" : "OPENPGPKEY",
        62 => detail ? "Child-to-Parent Synchronization" : "CSYNC",
        252 => detail ? "Transfer of entire zone" : "AXFR",
        253 => detail ? "Mailbox related records" : "MAILB",
        254 => detail ? "Mail agent RRs" : "MAILA",
        255 => detail ? "All records" : "*",
        257 => detail ? "Certification Authority Restriction" : "CAA",
        _ => $"Unknown ({type})",
    };
}
