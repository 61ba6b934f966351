using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Cli.Commands;

/// <summary>
/// pktgen: a global-zone traffic generator for the datapath. Frames enter the MAC layer exactly as a
/// client of the link would send them, so protection, VLAN and switching rules all apply.
/// <code>pktgen -d LINK -c COUNT -s SIZE [-r RATE] [--dst MAC|broadcast] [--src MAC] [--vlan VID]
///        [--udp SRC_IP:PORT,DST_IP:PORT]</code>
/// RATE is frames per second (k and M suffixes allowed); without it the frames leave in one burst.
/// Frames without --udp carry EtherType 0x88B5 (IEEE local experimental) and a sequence number.
/// </summary>
public static class Pktgen
{
    private const string OptionString = "d:c:s:r:";

    public static readonly CommandDescriptor Descriptor = new("pktgen", "send generated Ethernet frames on a datalink (this project's load generator)", RunAsync)
    {
        Options = OptionString,
        LongOptions = ["dst:", "src:", "vlan:", "udp:"],
        ZoneRefusal = "pktgen: only the global zone may generate raw frames",
        NeedsRunningHost = static _ => true,
    };

    private const ushort ExperimentalEtherType = 0x88B5;

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine("pktgen: " + why);
        ctx.Err.WriteLine("usage: pktgen -d LINK [-c COUNT] [-s SIZE] [-r RATE] [--dst MAC|broadcast] [--src MAC] [--vlan VID] [--udp SRC_IP:PORT,DST_IP:PORT]");
        return 2;
    }

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options, Descriptor.LongOptions);
        if (g.Error != null) return Usage(ctx, g.Error);
        if (g.Operands.Count != 0) return Usage(ctx, $"unexpected argument '{g.Operands[0]}'");
        if (!g.Has("d")) return Usage(ctx, "-d LINK is required");
        string linkName = g.Value("d")!;
        var link = ctx.Host.Mac.Find(linkName);
        if (link == null) { ctx.Err.WriteLine($"pktgen: link {linkName} is not valid: object not found"); return 1; }
        if (link is not PortLink port) { ctx.Err.WriteLine($"pktgen: {linkName}: an etherstub has no client to send from; use a VNIC over it"); return 1; }

        if (!TryCount(g.Value("c") ?? "1", 1, 100_000_000, out long count)) return Usage(ctx, $"invalid count '{g.Value("c")}'");
        if (!TryCount(g.Value("s") ?? "60", 14, PacketPool.LargeSize - 4, out long size)) return Usage(ctx, $"invalid size '{g.Value("s")}'");
        double rate = 0;
        if (g.Has("r") && (!TryRate(g.Value("r")!, out rate) || rate <= 0)) return Usage(ctx, $"invalid rate '{g.Value("r")}'");

        var dst = MacAddress.Broadcast;
        if (g.Has("dst") && g.Value("dst") != "broadcast" && !MacAddress.TryParse(g.Value("dst"), out dst))
            return Usage(ctx, $"invalid MAC address '{g.Value("dst")}'");
        var src = port.MacAddress;
        if (g.Has("src") && !MacAddress.TryParse(g.Value("src"), out src)) return Usage(ctx, $"invalid MAC address '{g.Value("src")}'");
        ushort vid = 0;
        if (g.Has("vlan") && (!ushort.TryParse(g.Value("vlan"), NumberStyles.None, CultureInfo.InvariantCulture, out vid) || vid is < 1 or > 4094))
            return Usage(ctx, $"invalid VLAN identifier '{g.Value("vlan")}'");
        UdpSpec? udp = null;
        if (g.Has("udp"))
        {
            if (!UdpSpec.TryParse(g.Value("udp")!, out var u)) return Usage(ctx, $"invalid --udp '{g.Value("udp")}': expected SRC_IP:PORT,DST_IP:PORT (IPv4)");
            udp = u;
        }
        int header = EthernetView.HeaderLength + (vid != 0 ? EthernetView.TagLength : 0);
        int minimum = header + (udp != null ? Ipv4View.MinHeaderLength + UdpView.HeaderLength : 4);
        if (size < minimum) return Usage(ctx, $"size {size} is too small: at least {minimum} bytes for these headers");

        long sent = 0, bytes = 0, nobuf = 0;
        long interval = rate > 0 ? (long)Math.Round(Time.Second / rate) : 0;
        long start = ctx.Host.Scheduler.Now;
        for (long i = 0; i < count; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            if (interval > 0 && i > 0)
            {
                long due = start + i * interval;
                long wait = due - ctx.Host.Scheduler.Now;
                if (wait > 0) await ctx.Host.Sync.Delay(wait, ctx.Cancel);
            }
            var p = ctx.Host.Pool.Rent((int)size);
            if (p == null) { nobuf++; continue; }
            Build(p.Data, dst, src, vid, udp, (uint)i);
            sent++;
            bytes += size;
            port.TransmitAsClient(p);
        }
        ctx.Out.WriteLine($"pktgen: sent {sent} frames ({bytes} bytes) on {linkName}" + (nobuf > 0 ? $", {nobuf} not sent: no buffers" : ""));
        return nobuf > 0 ? 1 : 0;
    }

    private static void Build(Span<byte> f, MacAddress dst, MacAddress src, ushort vid, UdpSpec? udp, uint seq)
    {
        dst.Write(f);
        src.Write(f[6..]);
        int at = 12;
        if (vid != 0)
        {
            f[12] = 0x81; f[13] = 0x00;
            f[14] = (byte)(vid >> 8); f[15] = (byte)vid;
            at = 16;
        }
        ushort type = udp != null ? EtherType.Ipv4 : ExperimentalEtherType;
        f[at] = (byte)(type >> 8); f[at + 1] = (byte)type;
        var payload = f[(at + 2)..];
        if (udp is UdpSpec u)
        {
            var udpSeg = payload[Ipv4View.MinHeaderLength..];
            var data = udpSeg[UdpView.HeaderLength..];
            Fill(data, seq);
            UdpView.WriteIpv4(udpSeg, u.SrcIp, u.DstIp, u.SrcPort, u.DstPort);
            Ipv4View.Write(payload, u.SrcIp, u.DstIp, IpProtocol.Udp, udpSeg.Length, id: (ushort)seq);
        }
        else Fill(payload, seq);
    }

    /// <summary>A 32-bit sequence number, then a repeating byte ramp (easy to spot in a dump).</summary>
    private static void Fill(Span<byte> data, uint seq)
    {
        for (int i = 0; i < data.Length; i++) data[i] = (byte)i;
        if (data.Length >= 4) System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(data, seq);
    }

    private static bool TryCount(string text, long min, long max, out long value)
        => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;

    private static bool TryRate(string text, out double rate)
    {
        rate = 0;
        double scale = 1;
        if (text.EndsWith('k') || text.EndsWith('K')) { scale = 1e3; text = text[..^1]; }
        else if (text.EndsWith('M')) { scale = 1e6; text = text[..^1]; }
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v)) return false;
        rate = v * scale;
        return rate <= 100e6;
    }

    private readonly record struct UdpSpec(uint SrcIp, ushort SrcPort, uint DstIp, ushort DstPort)
    {
        public static bool TryParse(string text, out UdpSpec spec)
        {
            spec = default;
            string[] ends = text.Split(',');
            if (ends.Length != 2 || !TryEnd(ends[0], out uint sip, out ushort sport) || !TryEnd(ends[1], out uint dip, out ushort dport)) return false;
            spec = new UdpSpec(sip, sport, dip, dport);
            return true;
        }

        private static bool TryEnd(string text, out uint ip, out ushort port)
        {
            ip = 0; port = 0;
            int colon = text.LastIndexOf(':');
            if (colon <= 0) return false;
            if (!IpAddress.TryParse(text[..colon], out var a) || !a.IsV4) return false;
            if (!ushort.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port)) return false;
            ip = a.V4Raw;
            return true;
        }
    }
}
