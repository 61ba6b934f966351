/*
 * Resource control and isolation in the MAC layer: bandwidth (maxbw), priority, link protection and
 * flows. MacLayer.cs is the map of the data path; this statement covers what sits on it.
 *
 * Glossary
 *   maxbw       a link or flow property: the most bits per second its frames may use, counting whole
 *               Ethernet frames (header included, no FCS or preamble). Enforced by a Shaper per
 *               direction: on transmit before the switch, on receive before the client.
 *   priority    low | medium | high (links default high, flows medium). It becomes the frame's band
 *               (Packet.Band) and matters where frames wait for a shared resource: a NIC's queue for
 *               its wire (BandQueue), served strictly by band and fairly (DRR, Packet.FairKey) within one.
 *   protection  mac-nospoof, restricted, ip-nospoof, dhcp-nospoof with allowed-ips and
 *               allowed-dhcp-cids, allow-all-dhcp-cids, dynamic-methods (LinkProtection, after
 *               illumos-joyent's mac_protect.c).
 *   flow        a class of a link's IP traffic named by one of six attribute combinations (FlowSpec),
 *               with its own maxbw, priority and counters. Traffic that matches no flow belongs to the
 *               link's default flow, which is the link itself.
 *
 * Data path (only for links with a LinkControl: any of these properties set or a flow added)
 *   client tx:  PortLink.Transmit (VLAN, MTU) -> protection -> flow classify -> flow shaper
 *               -> link shaper -> PortLink.TransmitOut (counters, taps) -> VSwitch.Forward
 *   delivery:   PortLink.Deliver -> flow classify -> flow shaper -> link shaper -> DHCP snoop
 *               -> PortLink.DeliverOut (counters, taps) -> the client's receiver
 *   wire:       PhysLink.SendToWire -> Wire lane BandQueue (band, then DRR by sender) -> serialiser
 *
 * Rules
 *   1. Protection runs on transmit, below anything a tenant controls; a frame it drops is counted in
 *      its reason's kstat (macspoofed, restricted, ipspoofed, dhcpspoofed) and is seen by no tap, no
 *      switch and no other client.
 *   2. A shaper never lets a frame leave before its time and never loses time between frames: its
 *      clock is exact (picoseconds with the remainder carried). A full shaper queue, or maxbw=0,
 *      drops and counts (drop_maxbw on transmit, drop_maxbw_rx on receive; odrops/idrops per flow).
 *   3. Flow classification is one parse of the frame and a bounded number of hash probes per flow
 *      type, however many flows the link holds; a link holds flows of one type only.
 *   4. Steady state allocates nothing: shapers and queues are rings that grow only to their bound.
 *   5. Properties and flows are validated entirely before any change, and persist unless -t
 *      (datalink.conf for properties, flowadm.conf for flows; both replayed by MacLayer.Boot).
 *
 * Not done yet: maxbw on an etherstub itself (its VNICs take it), DHCPv6/NDP snooping and DHCP
 * RELEASE for ip-nospoof, priority where clients meet only inside an etherstub (nothing there is
 * congested: its switch is infinitely fast) or on a TAP backend (only Wire has a BandQueue), zone
 * administrators' own flows (flowadm is global-zone only), the cpus/pool properties, and shrinking a
 * BandQueue's per-sender map when flows and links go away.
 */
using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>The priority property's values. The numeric value is the band (0 is served first).</summary>
public enum MacPriority : byte { High = 0, Medium = 1, Low = 2 }

/// <summary>The resource controls of one port (see the theory statement above).</summary>
public sealed class LinkControl : IShaperSink
{
    internal const int StageTx = 0, StageRx = 1;
    /// <summary>Frames a shaper may hold (illumos's per-SRS hiwat is of this order).</summary>
    public const int ShaperQueueFrames = 1000;

    internal LinkControl(PortLink link) { Link = link; }

    public PortLink Link { get; }
    /// <summary>maxbw in bit/s, or null when unlimited.</summary>
    public long? MaxBw { get; private set; }
    public MacPriority Priority { get; internal set; } = MacPriority.High;
    public LinkProtection Protection { get; } = new();
    internal Shaper? Tx, Rx;
    internal FlowTable? Flows;

    internal void SetMaxBw(long? bps)
    {
        MaxBw = bps;
        if (bps is not long rate)
        {
            // Unlimited: what waits leaves now, in order, and later frames bypass the shapers.
            var tx = Tx; var rx = Rx;
            Tx = null; Rx = null;
            tx?.ReleaseAll();
            rx?.ReleaseAll();
            return;
        }
        var sched = Link.Mac.Scheduler;
        if (Tx == null) Tx = new Shaper(sched, this, StageTx, rate, ShaperQueueFrames, Link);
        else Link.Stats.DropMaxbw += Tx.SetRate(rate);
        if (Rx == null) Rx = new Shaper(sched, this, StageRx, rate, ShaperQueueFrames, Link);
        else Link.Stats.DropMaxbwRx += Rx.SetRate(rate);
    }

    /// <summary>The link is going away: frames still waiting in its shapers are dropped and counted.</summary>
    internal void Discard()
    {
        if (Tx != null) Link.Stats.DropMaxbw += Tx.SetRate(0);
        if (Rx != null) Link.Stats.DropMaxbwRx += Rx.SetRate(0);
    }

    /// <summary>Client transmit, after the VLAN and MTU checks. Consumes the packet.</summary>
    internal void Transmit(Packet p)
    {
        var prot = Protection;
        if (prot.Flags != ProtectionFlags.None)
        {
            var why = prot.Check(Link, p);
            if (why != ProtectionDrop.None)
            {
                CountProtection(why);
                if (Link.Probes.For(why) is { Enabled: true } probe) probe.Fire(new(Link.Name, p.Length));
                p.Free();
                return;
            }
        }
        p.Band = (byte)Priority;
        var flows = Flows;
        if (flows != null && flows.Classify(p.Data, transmit: true) is Flow f)
        {
            p.Band = (byte)f.Priority;
            p.FairKey = f.FairKey;
            if (f.Tx != null)
            {
                if (!f.Tx.Enqueue(p)) f.Stats.ODrops++;
                return;
            }
            f.Stats.OPackets++;
            f.Stats.OBytes += p.Length;
            AfterFlowTxCore(p);
            return;
        }
        AfterFlowTxCore(p);
    }

    internal void AfterFlowTxCore(Packet p)
    {
        var tx = Tx;
        if (tx != null)
        {
            if (!tx.Enqueue(p)) Link.Stats.DropMaxbw++;
            return;
        }
        Link.TransmitOut(p);
    }

    /// <summary>Delivery from the switch. Consumes the packet.</summary>
    internal void Receive(Packet p)
    {
        var flows = Flows;
        if (flows != null && flows.Classify(p.Data, transmit: false) is Flow f)
        {
            if (f.Rx != null)
            {
                if (!f.Rx.Enqueue(p)) f.Stats.IDrops++;
                return;
            }
            f.Stats.IPackets++;
            f.Stats.RBytes += p.Length;
        }
        AfterFlowRxCore(p);
    }

    internal void AfterFlowRxCore(Packet p)
    {
        var rx = Rx;
        if (rx != null)
        {
            if (!rx.Enqueue(p)) Link.Stats.DropMaxbwRx++;
            return;
        }
        Arrived(p);
    }

    private void Arrived(Packet p)
    {
        if ((Protection.Flags & ProtectionFlags.IpNoSpoof) != 0) Protection.Snoop(Link, p);
        Link.DeliverOut(p);
    }

    void IShaperSink.Release(Packet p, int stage)
    {
        if (stage == StageTx) Link.TransmitOut(p);
        else Arrived(p);
    }

    private void CountProtection(ProtectionDrop why)
    {
        var s = Link.Stats;
        switch (why)
        {
            case ProtectionDrop.MacSpoofed: s.MacSpoofed++; break;
            case ProtectionDrop.Restricted: s.Restricted++; break;
            case ProtectionDrop.IpSpoofed: s.IpSpoofed++; break;
            default: s.DhcpSpoofed++; break;
        }
    }

    // ---- maxbw and priority values ------------------------------------------------------------------

    /// <summary>Parses a maxbw value as libdladm's dladm_str2bw: an integer with K, M or G (no suffix:
    /// M); a decimal fraction is also taken ("1.2M"). Enforces the 1.2 Mbit/s minimum; 0 is allowed.</summary>
    public static DladmStatus TryParseMaxBw(string text, out long bps)
    {
        bps = 0;
        string s = text.Trim();
        if (s.Length == 0) return DladmStatus.BadVal;
        int end = 0;
        while (end < s.Length && (char.IsAsciiDigit(s[end]) || s[end] == '.')) end++;
        // As dladm_str2bw: more than one character after the number is a bad argument, one unknown
        // character a bad value.
        if (s.Length - end > 1) return DladmStatus.BadArg;
        long mult = 1_000_000;
        if (end < s.Length)
        {
            switch (s[end])
            {
                case 'k': case 'K': mult = 1_000; break;
                case 'm': case 'M': mult = 1_000_000; break;
                case 'g': case 'G': mult = 1_000_000_000; break;
                case '%': return DladmStatus.NotSup;
                default: return DladmStatus.BadVal;
            }
            s = s[..end];
        }
        if (s.Length == 0) return DladmStatus.BadVal;
        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal n)) return DladmStatus.BadArg;
        // Range first: decimal holds 29 digits, so "99999999999999999999999M" parses but its
        // product in bit/s would overflow decimal itself.
        if (n > long.MaxValue / 16 / mult) return DladmStatus.BadArg;
        decimal v = n * mult;
        if (v != decimal.Truncate(v)) return DladmStatus.BadArg;
        bps = (long)v;
        if (bps != 0 && bps < 1_200_000) return DladmStatus.MinMaxBw;
        return DladmStatus.Ok;
    }

    /// <summary>Formats bit/s as libdladm's dladm_bw2str: Mbit/s, "%5u" or "%5u.%03u" (kbit/s part).</summary>
    public static string FormatMaxBw(long bps)
    {
        long kbps = bps % 1_000_000 / 1000, mbps = bps / 1_000_000;
        if (kbps != 0)
            return mbps == 0 ? $"0.{kbps:D3}" : string.Create(CultureInfo.InvariantCulture, $"{mbps,5}.{kbps:D3}");
        return string.Create(CultureInfo.InvariantCulture, $"{mbps,5}");
    }

    public static bool TryParsePriority(string text, out MacPriority p)
    {
        switch (text)
        {
            case "high": p = MacPriority.High; return true;
            case "medium": p = MacPriority.Medium; return true;
            case "low": p = MacPriority.Low; return true;
            default: p = MacPriority.High; return false;
        }
    }

    public static string FormatPriority(MacPriority p) => p switch
    {
        MacPriority.High => "high",
        MacPriority.Medium => "medium",
        _ => "low",
    };
}

public sealed partial class MacLayer
{
    /// <summary>The resource-control rows of the link-property table (LinkProperties.cs).</summary>
    private void RegisterResourceProperties()
    {
        static bool IsPort(Datalink l) => l is PortLink;
        static LinkControl C(Datalink l) => ((PortLink)l).EnsureControl();
        static LinkControl? Peek(Datalink l) => ((PortLink)l).Control;

        RegisterProperty(new LinkProperty
        {
            Name = "maxbw",
            AppliesTo = IsPort,
            Get = l => Peek(l)?.MaxBw is long bps ? LinkControl.FormatMaxBw(bps) : "",
            Default = _ => "",
            Possible = _ => "",
            Validate = (l, v) => v.Length == 0 ? DladmStatus.Ok : LinkControl.TryParseMaxBw(v, out _),
            Apply = (l, v) =>
            {
                if (v.Length == 0) { if (Peek(l) is LinkControl c) c.SetMaxBw(null); return; }
                LinkControl.TryParseMaxBw(v, out long bps);
                C(l).SetMaxBw(bps);
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "priority",
            AppliesTo = IsPort,
            Get = l => LinkControl.FormatPriority(Peek(l)?.Priority ?? MacPriority.High),
            Default = _ => "high",
            Possible = _ => "low,medium,high",
            Validate = (l, v) => LinkControl.TryParsePriority(v, out _) ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) =>
            {
                LinkControl.TryParsePriority(v, out var p);
                if (p != MacPriority.High || Peek(l) != null) C(l).Priority = p;
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "protection",
            AppliesTo = IsPort,
            Get = l => LinkProtection.FormatFlags(Peek(l)?.Protection.Flags ?? ProtectionFlags.None),
            Default = _ => "",
            Possible = _ => "mac-nospoof,restricted,ip-nospoof,dhcp-nospoof",
            Validate = (l, v) => LinkProtection.TryParseFlags(v, out _) ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) =>
            {
                LinkProtection.TryParseFlags(v, out var f);
                if (f != ProtectionFlags.None || Peek(l) != null) C(l).Protection.Flags = f;
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "allowed-ips",
            AppliesTo = IsPort,
            Get = l => LinkProtection.FormatAllowedIps(Peek(l)?.Protection.AllowedIps ?? []),
            Default = _ => "",
            Possible = _ => "",
            Validate = (l, v) => LinkProtection.TryParseAllowedIps(v, out _),
            Apply = (l, v) =>
            {
                LinkProtection.TryParseAllowedIps(v, out var list);
                if (list.Count > 0 || Peek(l) != null) C(l).Protection.AllowedIps = list;
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "allowed-dhcp-cids",
            AppliesTo = IsPort,
            Get = l => string.Join(',', Peek(l)?.Protection.AllowedCidsText ?? []),
            Default = _ => "",
            Possible = _ => "",
            Validate = (l, v) => LinkProtection.TryParseCids(v, out _, out _),
            Apply = (l, v) =>
            {
                LinkProtection.TryParseCids(v, out var cids, out var text);
                if (cids.Count == 0 && Peek(l) == null) return;
                C(l).Protection.AllowedCids = cids;
                C(l).Protection.AllowedCidsText = text;
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "allow-all-dhcp-cids",
            AppliesTo = IsPort,
            Get = l => Peek(l)?.Protection.AllowAllCids == true ? "true" : "false",
            Default = _ => "false",
            Possible = _ => "true,false",
            Validate = (l, v) => v is "true" or "false" or "" ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) =>
            {
                bool on = v == "true";
                if (on || Peek(l) != null) C(l).Protection.AllowAllCids = on;
            },
        });
        RegisterProperty(new LinkProperty
        {
            Name = "dynamic-methods",
            AppliesTo = IsPort,
            Get = l => LinkProtection.FormatMethods(Peek(l)?.Protection.Dynamic ?? DynamicMethods.None),
            Default = _ => "",
            Possible = _ => "slaac,dhcpv4,dhcpv6,addrconf",
            Validate = (l, v) => LinkProtection.TryParseMethods(v, out _) ? DladmStatus.Ok : DladmStatus.BadVal,
            Apply = (l, v) =>
            {
                LinkProtection.TryParseMethods(v, out var m);
                if (m != DynamicMethods.None || Peek(l) != null) C(l).Protection.Dynamic = m;
            },
        });
    }
}
