/*
 * snoop: the pure parts of illumos snoop(8) - the filter language, the summary and verbose
 * formatters; capture files are CaptureFile.cs.
 *
 * Terms
 *   frame      an Ethernet II frame as a capture tap saw it, possibly with one 802.1Q tag; the
 *              network layer then starts after the tag.
 *   layout     FrameLayout: the offsets of each layer, found once per frame over a read-only span.
 *   filter     a SnoopFilter: the words after snoop's options, parsed once into a tree of nodes and
 *              evaluated over each frame's layout.
 *
 * Rules
 *   1. Frames are untrusted. Matching and formatting never throw: a truncated or malformed layer
 *      does not match a primitive that needs it, and the formatter says "short packet"/"truncated".
 *   2. Matching allocates nothing: the layout is a ref struct and the nodes read the span directly.
 *   3. The language is snoop's: not binds tighter than and, and tighter than or; two primitives
 *      side by side mean and. Qualifiers (src, dst, ether, host, net, port) apply to the next word.
 *   4. A capture file written from the same frames and timestamps is byte-identical (virtual time).
 *
 * Not done: hostname and ethers lookups (names are never resolved), the `ip[off:len]`-style
 * expressions, rpc/nofrag/gateway/zone primitives, and `apple`/`decnet`.
 */
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SmartOS.Kernel.Wire;

namespace SmartOS.Cli.Snoop;

/// <summary>A compiled snoop filter expression.</summary>
public sealed class SnoopFilter
{
    private readonly Node _root;

    private SnoopFilter(Node root) { _root = root; }

    /// <summary>
    /// Parses the words after snoop's options. The words may hold several tokens each (one quoted
    /// string is fine); parentheses need no spaces around them. No words gives a filter that
    /// matches everything. On failure, error says what was wrong, without the "snoop: " prefix.
    /// </summary>
    public static bool TryParse(IReadOnlyList<string> words, out SnoopFilter? filter, out string error)
    {
        filter = null;
        error = "";
        var tokens = Tokenize(words);
        if (tokens.Count == 0)
        {
            filter = new SnoopFilter(new TrueNode());
            return true;
        }
        var parser = new Parser(tokens);
        Node? root = parser.ParseExpression();
        if (root is not null && !parser.AtEnd)
        {
            root = null;
            parser.Fail(parser.Peek() == ")" ? "unbalanced ')'" : $"syntax error at '{parser.Peek()}'");
        }
        if (root is null)
        {
            error = parser.Error;
            return false;
        }
        filter = new SnoopFilter(root);
        return true;
    }

    /// <summary>True when the frame passes the filter. Never throws; allocates nothing.</summary>
    public bool Matches(ReadOnlySpan<byte> frame)
    {
        var layout = new FrameLayout(frame);
        return _root.Eval(in layout);
    }

    private static List<string> Tokenize(IReadOnlyList<string> words)
    {
        var tokens = new List<string>();
        foreach (string word in words)
        {
            foreach (string piece in word.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                int start = 0;
                for (int i = 0; i < piece.Length; i++)
                {
                    char c = piece[i];
                    // "!" splits off only at the front of a word ("!udp"); "!=" is not in the language.
                    if (c is '(' or ')' || (c == '!' && i == start))
                    {
                        if (i > start) tokens.Add(piece[start..i]);
                        tokens.Add(c.ToString());
                        start = i + 1;
                    }
                }
                if (start < piece.Length) tokens.Add(piece[start..]);
            }
        }
        return tokens;
    }

    private enum Dir { Either, Src, Dst }

    private sealed class Parser(List<string> tokens)
    {
        private int _pos;
        public string Error { get; private set; } = "";
        public bool AtEnd => _pos >= tokens.Count;
        public string? Peek() => AtEnd ? null : tokens[_pos];
        private string Next() => tokens[_pos++];

        public Node? Fail(string message)
        {
            if (Error.Length == 0) Error = message;
            return null;
        }

        private bool Is(params string[] words)
        {
            string? t = Peek();
            if (t is null) return false;
            foreach (string w in words)
                if (string.Equals(t, w, StringComparison.OrdinalIgnoreCase)) return true;
            return false;
        }

        public Node? ParseExpression()
        {
            Node? left = ParseAnd();
            while (left is not null && Is("or", "||"))
            {
                _pos++;
                Node? right = ParseAnd();
                if (right is null) return null;
                left = new OrNode(left, right);
            }
            return left;
        }

        private Node? ParseAnd()
        {
            Node? left = ParseUnary();
            while (left is not null && !AtEnd && !Is("or", "||", ")"))
            {
                if (Is("and", "&&")) _pos++;
                Node? right = ParseUnary();
                if (right is null) return null;
                left = new AndNode(left, right);
            }
            return left;
        }

        private Node? ParseUnary()
        {
            if (AtEnd) return Fail("expression is incomplete");
            if (Is("not", "!"))
            {
                _pos++;
                Node? inner = ParseUnary();
                return inner is null ? null : new NotNode(inner);
            }
            if (Is("("))
            {
                _pos++;
                Node? inner = ParseExpression();
                if (inner is null) return null;
                if (!Is(")")) return Fail(AtEnd ? "missing ')'" : $"syntax error at '{Peek()}'");
                _pos++;
                return inner;
            }
            return ParsePrimitive();
        }

        private string? Operand(string after)
        {
            if (AtEnd || Is("and", "&&", "or", "||", "not", "!", "(", ")"))
            {
                Fail($"'{after}' needs an operand");
                return null;
            }
            return Next();
        }

        private Node? ParsePrimitive()
        {
            string word = Next();
            switch (word.ToLowerInvariant())
            {
                case "src": return ParseDirected(Dir.Src);
                case "dst": return ParseDirected(Dir.Dst);
                case "host": return HostOperand(Dir.Either, "host");
                case "net": return NetOperand(Dir.Either);
                case "port": return PortOperand(Dir.Either);
                case "ether": return ParseEther();
                case "ethertype":
                {
                    string? n = Operand("ethertype");
                    if (n is null) return null;
                    return TryNumber(n, 0xFFFF, out int type) ? new EtherTypeNode((ushort)type) : Fail($"invalid ethertype '{n}'");
                }
                case "vlan":
                    if (!AtEnd && TryNumber(Peek()!, 4094, out int vid))
                    {
                        _pos++;
                        return new VlanNode(vid);
                    }
                    return new VlanNode(-1);
                case "ip" or "inet": return new EtherTypeNode(EtherType.Ipv4);
                case "ip6" or "inet6": return new EtherTypeNode(EtherType.Ipv6);
                case "arp": return new EtherTypeNode(EtherType.Arp);
                case "rarp": return new EtherTypeNode(FrameLayout.EtherTypeRarp);
                case "udp": return new ProtocolNode(IpProtocol.Udp, 0);
                case "tcp": return new ProtocolNode(IpProtocol.Tcp, 0);
                case "icmp": return new ProtocolNode(IpProtocol.Icmp, 4);
                case "icmp6": return new ProtocolNode(IpProtocol.Icmpv6, 6);
                case "broadcast": return new BroadcastNode();
                case "multicast": return new MulticastNode();
                case "greater":
                case "less":
                {
                    string? n = Operand(word);
                    if (n is null) return null;
                    if (!TryNumber(n, int.MaxValue, out int size)) return Fail($"invalid length '{n}'");
                    return new LengthNode(size, word.Equals("greater", StringComparison.OrdinalIgnoreCase));
                }
                default:
                    _pos--;
                    return AddressOperand(Dir.Either, bare: true);
            }
        }

        private Node? ParseDirected(Dir dir)
        {
            string name = dir == Dir.Src ? "src" : "dst";
            if (AtEnd) return Fail($"'{name}' needs an operand");
            if (Is("host")) { _pos++; return HostOperand(dir, "host"); }
            if (Is("net")) { _pos++; return NetOperand(dir); }
            if (Is("port")) { _pos++; return PortOperand(dir); }
            if (Is("ether"))
            {
                _pos++;
                string? m = Operand("ether");
                if (m is null) return null;
                return MacAddress.TryParse(m, out var mac) ? new EtherAddrNode(mac, dir) : Fail($"invalid ether address '{m}'");
            }
            return HostOperand(dir, name);
        }

        private Node? ParseEther()
        {
            if (Is("src", "dst"))
            {
                Dir dir = Is("src") ? Dir.Src : Dir.Dst;
                _pos++;
                if (Is("host")) _pos++;
                string? m = Operand("ether");
                if (m is null) return null;
                return MacAddress.TryParse(m, out var mac) ? new EtherAddrNode(mac, dir) : Fail($"invalid ether address '{m}'");
            }
            if (Is("broadcast")) { _pos++; return new BroadcastNode(); }
            if (Is("multicast")) { _pos++; return new MulticastNode(); }
            if (Is("host")) _pos++;
            string? a = Operand("ether");
            if (a is null) return null;
            return MacAddress.TryParse(a, out var m2) ? new EtherAddrNode(m2, Dir.Either) : Fail($"invalid ether address '{a}'");
        }

        private Node? HostOperand(Dir dir, string keyword)
        {
            if (AtEnd || Is("and", "&&", "or", "||", "not", "!", "(", ")")) return Fail($"'{keyword}' needs an operand");
            return AddressOperand(dir, bare: false);
        }

        private Node? AddressOperand(Dir dir, bool bare)
        {
            string word = Next();
            if (IPAddress.TryParse(word, out var ip) && (word.Contains('.') || word.Contains(':')))
            {
                if (ip.AddressFamily == AddressFamily.InterNetwork) return new Ipv4NetNode(Ipv4View.ToRaw(ip), 0xFFFF_FFFF, dir, arp: true);
                return new Ipv6NetNode(ip.GetAddressBytes(), 128, dir);
            }
            if (MacAddress.TryParse(word, out var mac)) return new EtherAddrNode(mac, dir);
            return Fail(bare ? $"syntax error at '{word}'" : $"host '{word}' not known (names are not resolved)");
        }

        private Node? NetOperand(Dir dir)
        {
            string? text = Operand("net");
            if (text is null) return null;
            int slash = text.IndexOf('/');
            string addrText = slash < 0 ? text : text[..slash];
            if (!IPAddress.TryParse(addrText, out var addr) || !(addrText.Contains('.') || addrText.Contains(':')))
                return Fail($"invalid network '{text}'");
            bool v4 = addr.AddressFamily == AddressFamily.InterNetwork;
            int max = v4 ? 32 : 128;
            int len;
            if (slash >= 0)
            {
                if (!TryNumber(text[(slash + 1)..], max, out len)) return Fail($"invalid prefix length in '{text}'");
            }
            else if (v4 && Is("mask"))
            {
                _pos++;
                string? m = Operand("mask");
                if (m is null) return null;
                if (!IPAddress.TryParse(m, out var mask) || mask.AddressFamily != AddressFamily.InterNetwork)
                    return Fail($"invalid netmask '{m}'");
                return new Ipv4NetNode(Ipv4View.ToRaw(addr), Ipv4View.ToRaw(mask), dir, arp: false);
            }
            else if (v4)
            {
                // snoop takes the classful mask when none is given.
                uint raw = Ipv4View.ToRaw(addr);
                len = (raw >> 31) == 0 ? 8 : (raw >> 30) == 2 ? 16 : 24;
            }
            else
            {
                len = 64;
            }
            if (v4)
            {
                uint mask = len == 0 ? 0 : 0xFFFF_FFFFu << (32 - len);
                return new Ipv4NetNode(Ipv4View.ToRaw(addr), mask, dir, arp: false);
            }
            return new Ipv6NetNode(addr.GetAddressBytes(), len, dir);
        }

        private Node? PortOperand(Dir dir)
        {
            string? text = Operand("port");
            if (text is null) return null;
            if (TryNumber(text, 65535, out int port) || TryService(text, out port)) return new PortNode((ushort)port, dir);
            return Fail($"unknown port '{text}'");
        }
    }

    private static bool TryNumber(string text, int max, out int value)
    {
        value = 0;
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        return ok && value >= 0 && value <= max;
    }

    /// <summary>The few /etc/services names snoop users type most.</summary>
    private static bool TryService(string name, out int port)
    {
        port = name.ToLowerInvariant() switch
        {
            "echo" => 7, "discard" => 9, "ftp-data" => 20, "ftp" => 21, "ssh" => 22, "telnet" => 23,
            "smtp" => 25, "domain" => 53, "bootps" => 67, "bootpc" => 68, "tftp" => 69, "http" or "www" => 80,
            "sunrpc" => 111, "ntp" => 123, "snmp" => 161, "https" => 443, "syslog" => 514,
            "dhcpv6-client" => 546, "dhcpv6-server" => 547, "nfsd" or "nfs" => 2049,
            _ => -1,
        };
        return port >= 0;
    }

    // ---- the compiled tree: each node reads the layout, never allocates, never throws ----

    private abstract class Node
    {
        public abstract bool Eval(in FrameLayout f);
    }

    private sealed class TrueNode : Node
    {
        public override bool Eval(in FrameLayout f) => true;
    }

    private sealed class AndNode(Node left, Node right) : Node
    {
        public override bool Eval(in FrameLayout f) => left.Eval(in f) && right.Eval(in f);
    }

    private sealed class OrNode(Node left, Node right) : Node
    {
        public override bool Eval(in FrameLayout f) => left.Eval(in f) || right.Eval(in f);
    }

    private sealed class NotNode(Node inner) : Node
    {
        public override bool Eval(in FrameLayout f) => !inner.Eval(in f);
    }

    private sealed class EtherTypeNode(ushort type) : Node
    {
        public override bool Eval(in FrameLayout f)
            => f.HasEther && (f.EtherType == type || (f.Tagged && type == EtherType.Vlan));
    }

    private sealed class VlanNode(int vid) : Node
    {
        public override bool Eval(in FrameLayout f) => f.Tagged && (vid < 0 || f.VlanId == vid);
    }

    private sealed class EtherAddrNode(MacAddress mac, Dir dir) : Node
    {
        public override bool Eval(in FrameLayout f)
            => f.HasEther && ((dir != Dir.Src && f.Destination == mac) || (dir != Dir.Dst && f.Source == mac));
    }

    private sealed class Ipv4NetNode(uint addr, uint mask, Dir dir, bool arp) : Node
    {
        private readonly uint _net = addr & mask;

        private bool In(uint a) => (a & mask) == _net;

        public override bool Eval(in FrameLayout f)
        {
            if (f.IpVersion == 4)
                return (dir != Dir.Src && In(f.Ipv4Destination)) || (dir != Dir.Dst && In(f.Ipv4Source));
            // snoop's host primitive also finds the address in ARP and RARP bodies.
            if (arp && f.HasArp)
                return (dir != Dir.Src && In(f.ArpTargetIp)) || (dir != Dir.Dst && In(f.ArpSenderIp));
            return false;
        }
    }

    private sealed class Ipv6NetNode(byte[] prefix, int length, Dir dir) : Node
    {
        private bool In(ReadOnlySpan<byte> a)
        {
            int whole = length / 8;
            if (!a[..whole].SequenceEqual(prefix.AsSpan(0, whole))) return false;
            int bits = length % 8;
            if (bits == 0) return true;
            int mask = 0xFF << (8 - bits) & 0xFF;
            return (a[whole] & mask) == (prefix[whole] & mask);
        }

        public override bool Eval(in FrameLayout f)
            => f.IpVersion == 6 && ((dir != Dir.Src && In(f.Ipv6Destination)) || (dir != Dir.Dst && In(f.Ipv6Source)));
    }

    private sealed class ProtocolNode(byte protocol, int version) : Node
    {
        public override bool Eval(in FrameLayout f)
            => f.IpVersion != 0 && (version == 0 || f.IpVersion == version) && f.Protocol == protocol;
    }

    private sealed class PortNode(ushort port, Dir dir) : Node
    {
        public override bool Eval(in FrameLayout f)
            => f.HasPorts && ((dir != Dir.Src && f.DestinationPort == port) || (dir != Dir.Dst && f.SourcePort == port));
    }

    private sealed class BroadcastNode : Node
    {
        public override bool Eval(in FrameLayout f)
            => f.HasEther && (f.Destination.IsBroadcast || (f.IpVersion == 4 && f.Ipv4Destination == 0xFFFF_FFFF));
    }

    private sealed class MulticastNode : Node
    {
        // snoop(8): "Equivalent to ether[0] & 1 != 0", so broadcast counts too.
        public override bool Eval(in FrameLayout f) => f.HasEther && f.Destination.IsGroup;
    }

    private sealed class LengthNode(int size, bool greater) : Node
    {
        public override bool Eval(in FrameLayout f) => greater ? f.Frame.Length >= size : f.Frame.Length <= size;
    }
}
