using System.Globalization;
using System.Net;
using System.Text;
using SmartOS.Cli.Observe;

namespace SmartOS.Cli.Report;

/// <summary>
/// The topology of a report as plain SVG, laid out by rule rather than by a force simulation, so the
/// same Topology gives the same bytes.
///
/// Rules
///   1. Hosts stand side by side, left to right in the snapshot's order, each in its own frame.
///   2. Inside a host the links form a forest by Over: a link over nothing (a phys, an etherstub)
///      is a root on the top row, and each link stands one row below the one it is over. A node is
///      as wide as its children together (a leaf is one slot), so no two edges cross.
///   3. A zone stands one row below the deepest link, under the first link it has, joined to each
///      of its links; a zone with no link (not running) goes on a last row, in table order.
///   4. A wire is a curve from one NIC to the other over the hosts' frames, labelled with its speed.
///   5. Every coordinate is a whole number, and every text is XML-escaped.
/// </summary>
public static class TopologySvg
{
    private const int Slot = 150, Row = 80, BoxW = 136, BoxH = 44, Pad = 20, Title = 30, WireSpace = 50;

    private sealed class Node(LinkNode link)
    {
        public readonly LinkNode Link = link;
        public readonly List<Node> Children = [];
        public int Width, X, Depth;
    }

    public static string Render(Topology topology)
    {
        var body = new StringBuilder();
        var nicAt = new Dictionary<string, (int X, int Y)>(StringComparer.Ordinal);
        int x = Pad, height = 0;
        int wireSpace = topology.Wires.Count == 0 ? 0 : WireSpace;
        foreach (var host in topology.Hosts)
        {
            var (w, h) = RenderHost(host, x, wireSpace + Pad, body, nicAt);
            x += w + Pad;
            height = Math.Max(height, h);
        }
        var wires = new StringBuilder();
        foreach (var wire in topology.Wires)
        {
            if (!nicAt.TryGetValue(wire.A, out var a) || !nicAt.TryGetValue(wire.B, out var b)) continue;
            int top = Pad / 2 + 6;
            wires.Append(CultureInfo.InvariantCulture,
                $"<path class=\"wire\" d=\"M{a.X} {a.Y} C{a.X} {top} {b.X} {top} {b.X} {b.Y}\" fill=\"none\" stroke=\"#333\" stroke-width=\"2\"/>\n");
            wires.Append(CultureInfo.InvariantCulture,
                $"<text x=\"{(a.X + b.X) / 2}\" y=\"{top + 14}\" text-anchor=\"middle\" font-size=\"11\">{Esc(Speed(wire.SpeedBps))}</text>\n");
        }
        int width = Math.Max(x, 200), total = wireSpace + Pad + height + Pad;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{total}\" viewBox=\"0 0 {width} {total}\" font-family=\"monospace\">\n");
        svg.Append(body).Append(wires).Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>Rules 2 and 3 for one host at (x0, y0); returns its frame's size.</summary>
    private static (int W, int H) RenderHost(HostNode host, int x0, int y0, StringBuilder svg, Dictionary<string, (int X, int Y)> nicAt)
    {
        var nodes = new Dictionary<string, Node>(StringComparer.Ordinal);
        foreach (var l in host.Links) nodes.Add(l.Id, new Node(l));
        var roots = new List<Node>();
        foreach (var l in host.Links)
        {
            var n = nodes[l.Id];
            if (l.Over != null && nodes.TryGetValue(l.Over, out var parent) && !ReferenceEquals(parent, n)) parent.Children.Add(n);
            else roots.Add(n);
        }
        int slots = 0, depth = 0;
        foreach (var r in roots)
        {
            Measure(r, 0, ref depth);
            Place(r, slots);
            slots += r.Width;
        }
        int zoneRow = roots.Count == 0 ? 0 : depth + 1;
        int idleRow = zoneRow + 1;
        int idleSlot = 0;
        var zonePos = new List<(ZoneNode Zone, int Slot, int Row)>();
        var taken = new HashSet<int>();
        bool anyIdle = false;
        foreach (var z in host.Zones)
        {
            if (z.Links.Count > 0 && nodes.TryGetValue(z.Links[0], out var first))
            {
                int s = first.X;
                while (!taken.Add(s)) s++;
                zonePos.Add((z, s, zoneRow));
            }
            else
            {
                zonePos.Add((z, idleSlot++, idleRow));
                anyIdle = true;
            }
        }
        int cols = Math.Max(1, Math.Max(slots, Math.Max(idleSlot, taken.Count == 0 ? 0 : taken.Max() + 1)));
        int rows = (host.Zones.Count == 0 ? depth + 1 : zoneRow + 1) + (anyIdle ? 1 : 0);
        int w = cols * Slot + Pad, h = Title + rows * Row + Pad;
        svg.Append(CultureInfo.InvariantCulture,
            $"<g class=\"host\"><rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" rx=\"8\" fill=\"#f7f7f7\" stroke=\"#888\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0 + 10}\" y=\"{y0 + 20}\" font-size=\"14\" font-weight=\"bold\">host {Esc(host.Name)}</text></g>\n");

        (int X, int Y) Centre(int slot, int row) => (x0 + Pad / 2 + slot * Slot + Slot / 2, y0 + Title + row * Row + BoxH / 2);

        foreach (var n in nodes.Values)
            foreach (var c in n.Children)
            {
                var (px, py) = Centre(n.X, n.Depth);
                var (cx, cy) = Centre(c.X, c.Depth);
                svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{px}\" y1=\"{py + BoxH / 2}\" x2=\"{cx}\" y2=\"{cy - BoxH / 2}\" stroke=\"#666\"/>\n");
            }
        foreach (var (z, s, row) in zonePos)
        {
            var (zx, zy) = Centre(s, row);
            foreach (var id in z.Links)
                if (nodes.TryGetValue(id, out var l))
                {
                    var (lx, ly) = Centre(l.X, l.Depth);
                    svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{lx}\" y1=\"{ly + BoxH / 2}\" x2=\"{zx}\" y2=\"{zy - BoxH / 2}\" stroke=\"#396\" stroke-dasharray=\"4 3\"/>\n");
                }
        }
        foreach (var l in host.Links)
        {
            var n = nodes[l.Id];
            var (cx, cy) = Centre(n.X, n.Depth);
            if (l.Class == "phys") nicAt[l.Id] = (cx, cy - BoxH / 2);
            string detail = l.Class + (l.Vid != 0 ? $" vid {l.Vid}" : "") + (l.MaxBwBps is long bw ? $" {Speed(bw)}" : "");
            Box(svg, cx, cy, l.Name, detail, Fill(l.Class), 4, l.Id);
        }
        foreach (var (z, s, row) in zonePos)
        {
            var (zx, zy) = Centre(s, row);
            string name = z.Alias ?? z.Name;
            Box(svg, zx, zy, name.Length > 17 ? name[..16] + "~" : name, $"{z.Brand} {z.State}", z.State == "running" ? "#dff0d8" : "#eee", 14, z.Id);
        }
        return (w, h);
    }

    private static void Measure(Node n, int depth, ref int maxDepth)
    {
        n.Depth = depth;
        maxDepth = Math.Max(maxDepth, depth);
        int width = 0;
        foreach (var c in n.Children)
        {
            Measure(c, depth + 1, ref maxDepth);
            width += c.Width;
        }
        n.Width = Math.Max(1, width);
    }

    private static void Place(Node n, int slot)
    {
        n.X = slot + (n.Width - 1) / 2;
        int at = slot;
        foreach (var c in n.Children)
        {
            Place(c, at);
            at += c.Width;
        }
    }

    private static void Box(StringBuilder svg, int cx, int cy, string title, string detail, string fill, int rx, string id)
    {
        svg.Append(CultureInfo.InvariantCulture,
            $"<g class=\"node\" data-id=\"{Esc(id)}\"><rect x=\"{cx - BoxW / 2}\" y=\"{cy - BoxH / 2}\" width=\"{BoxW}\" height=\"{BoxH}\" rx=\"{rx}\" fill=\"{fill}\" stroke=\"#444\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{cx}\" y=\"{cy - 4}\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">{Esc(title)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{cx}\" y=\"{cy + 13}\" text-anchor=\"middle\" font-size=\"10\">{Esc(detail)}</text></g>\n");
    }

    private static string Fill(string cls) => cls switch
    {
        "phys" => "#cfe2f3",
        "etherstub" => "#fce5cd",
        "vnic" => "#fff2cc",
        "vlan" => "#d9d2e9",
        _ => "#e6e6e6",
    };

    /// <summary>A bit rate as dladm prints speeds: 1G, 100M, 50M, 1200K.</summary>
    internal static string Speed(long bps)
    {
        if (bps >= 1_000_000_000 && bps % 1_000_000_000 == 0) return (bps / 1_000_000_000).ToString(CultureInfo.InvariantCulture) + "G";
        if (bps >= 1_000_000 && bps % 1_000_000 == 0) return (bps / 1_000_000).ToString(CultureInfo.InvariantCulture) + "M";
        if (bps >= 1_000 && bps % 1_000 == 0) return (bps / 1_000).ToString(CultureInfo.InvariantCulture) + "K";
        return bps.ToString(CultureInfo.InvariantCulture);
    }

    internal static string Esc(string s) => WebUtility.HtmlEncode(s);
}
