using SmartOS.Kernel;

namespace SmartOS.Netstack;

// Counters of one stack (ARCHITECTURE.md: every drop has a reason and a counter). Names follow the
// MIB-II statistics illumos's ip, udp and icmp kstats print; the extra drop reasons say where a frame
// died. Plain fields, read only when kstat asks (Kernel.cs rule 5).

/// <summary>ip:N:ip: IPv4 and link-level receive statistics.</summary>
public sealed class IpCounters : IKstatSource
{
    public long ipInReceives, ipInHdrErrors, ipInCksumErrs, ipInAddrErrors, ipForwDatagrams, ipInUnknownProtos,
        ipInDiscards, ipInDelivers, ipOutRequests, ipOutDiscards, ipOutNoRoutes, ipReasmTimeout, ipReasmReqds,
        ipReasmOKs, ipReasmFails, ipReasmOverflows, ipFragOKs, ipFragFails, ipFragCreates, ipTtlExpired,
        ipForwProhibits, ipLoopback, etherShort, etherUnknownType, rxQueueOverflow, noBuffers, ipOutMtuExceeded;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        Add(into, nameof(ipInReceives), ipInReceives); Add(into, nameof(ipInHdrErrors), ipInHdrErrors);
        Add(into, nameof(ipInCksumErrs), ipInCksumErrs); Add(into, nameof(ipInAddrErrors), ipInAddrErrors);
        Add(into, nameof(ipForwDatagrams), ipForwDatagrams); Add(into, nameof(ipInUnknownProtos), ipInUnknownProtos);
        Add(into, nameof(ipInDiscards), ipInDiscards); Add(into, nameof(ipInDelivers), ipInDelivers);
        Add(into, nameof(ipOutRequests), ipOutRequests); Add(into, nameof(ipOutDiscards), ipOutDiscards);
        Add(into, nameof(ipOutNoRoutes), ipOutNoRoutes); Add(into, nameof(ipReasmTimeout), ipReasmTimeout);
        Add(into, nameof(ipReasmReqds), ipReasmReqds); Add(into, nameof(ipReasmOKs), ipReasmOKs);
        Add(into, nameof(ipReasmFails), ipReasmFails); Add(into, nameof(ipReasmOverflows), ipReasmOverflows);
        Add(into, nameof(ipFragOKs), ipFragOKs); Add(into, nameof(ipFragFails), ipFragFails);
        Add(into, nameof(ipFragCreates), ipFragCreates); Add(into, nameof(ipTtlExpired), ipTtlExpired);
        Add(into, nameof(ipForwProhibits), ipForwProhibits); Add(into, nameof(ipLoopback), ipLoopback);
        Add(into, nameof(etherShort), etherShort); Add(into, nameof(etherUnknownType), etherUnknownType);
        Add(into, nameof(rxQueueOverflow), rxQueueOverflow); Add(into, nameof(noBuffers), noBuffers);
        Add(into, nameof(ipOutMtuExceeded), ipOutMtuExceeded);
    }

    internal static void Add(List<KeyValuePair<string, long>> into, string name, long value) => into.Add(new(name, value));

    /// <summary>Every drop reason summed (tests: "every malformed frame was counted").</summary>
    public long TotalDrops => ipInHdrErrors + ipInCksumErrs + ipInAddrErrors + ipInUnknownProtos + ipInDiscards
        + ipReasmFails + ipTtlExpired + ipForwProhibits + etherShort + etherUnknownType + rxQueueOverflow + noBuffers;
}

/// <summary>ip:N:ip6: IPv6 statistics.</summary>
public sealed class Ip6Counters : IKstatSource
{
    public long ipv6InReceives, ipv6InHdrErrors, ipv6InAddrErrors, ipv6InUnknownProtos, ipv6InDiscards, ipv6InDelivers,
        ipv6OutRequests, ipv6OutDiscards, ipv6OutNoRoutes, ipv6ForwDatagrams, ipv6InTooBigErrors, ipv6HopLimitExpired,
        ipv6ReasmReqds, ipv6ReasmOKs, ipv6ReasmFails, ipv6ReasmTimeout, ipv6ReasmOverflows, ipv6OutFragOKs, ipv6OutFragFails,
        ipv6OutFragCreates, ndpInMalformed, ndpDadDuplicates, ndpResolveFailed, ndpPendingDrops, ndpCacheEvictions, slaacAddresses;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        IpCounters.Add(into, nameof(ipv6InReceives), ipv6InReceives); IpCounters.Add(into, nameof(ipv6InHdrErrors), ipv6InHdrErrors);
        IpCounters.Add(into, nameof(ipv6InAddrErrors), ipv6InAddrErrors); IpCounters.Add(into, nameof(ipv6InUnknownProtos), ipv6InUnknownProtos);
        IpCounters.Add(into, nameof(ipv6InDiscards), ipv6InDiscards); IpCounters.Add(into, nameof(ipv6InDelivers), ipv6InDelivers);
        IpCounters.Add(into, nameof(ipv6OutRequests), ipv6OutRequests); IpCounters.Add(into, nameof(ipv6OutDiscards), ipv6OutDiscards);
        IpCounters.Add(into, nameof(ipv6OutNoRoutes), ipv6OutNoRoutes); IpCounters.Add(into, nameof(ipv6ForwDatagrams), ipv6ForwDatagrams);
        IpCounters.Add(into, nameof(ipv6InTooBigErrors), ipv6InTooBigErrors); IpCounters.Add(into, nameof(ipv6HopLimitExpired), ipv6HopLimitExpired);
        IpCounters.Add(into, nameof(ipv6ReasmReqds), ipv6ReasmReqds); IpCounters.Add(into, nameof(ipv6ReasmOKs), ipv6ReasmOKs);
        IpCounters.Add(into, nameof(ipv6ReasmFails), ipv6ReasmFails); IpCounters.Add(into, nameof(ipv6ReasmTimeout), ipv6ReasmTimeout);
        IpCounters.Add(into, nameof(ipv6ReasmOverflows), ipv6ReasmOverflows); IpCounters.Add(into, nameof(ipv6OutFragOKs), ipv6OutFragOKs);
        IpCounters.Add(into, nameof(ipv6OutFragFails), ipv6OutFragFails); IpCounters.Add(into, nameof(ipv6OutFragCreates), ipv6OutFragCreates);
        IpCounters.Add(into, nameof(ndpInMalformed), ndpInMalformed);
        IpCounters.Add(into, nameof(ndpDadDuplicates), ndpDadDuplicates); IpCounters.Add(into, nameof(ndpResolveFailed), ndpResolveFailed);
        IpCounters.Add(into, nameof(ndpPendingDrops), ndpPendingDrops); IpCounters.Add(into, nameof(ndpCacheEvictions), ndpCacheEvictions);
        IpCounters.Add(into, nameof(slaacAddresses), slaacAddresses);
    }

    public long TotalDrops => ipv6InHdrErrors + ipv6InAddrErrors + ipv6InUnknownProtos + ipv6InDiscards + ipv6HopLimitExpired
        + ipv6ReasmFails + ndpInMalformed;
}

/// <summary>ip:N:arp: the ARP cache and IPv4 duplicate address detection.</summary>
public sealed class ArpCounters : IKstatSource
{
    public long arpInRequests, arpInReplies, arpInMalformed, arpInIgnored, arpOutRequests, arpOutReplies, arpOutGratuitous,
        arpResolveFailed, arpPendingDrops, arpCacheEvictions, arpDadDuplicates, arpDefends;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        IpCounters.Add(into, nameof(arpInRequests), arpInRequests); IpCounters.Add(into, nameof(arpInReplies), arpInReplies);
        IpCounters.Add(into, nameof(arpInMalformed), arpInMalformed); IpCounters.Add(into, nameof(arpInIgnored), arpInIgnored);
        IpCounters.Add(into, nameof(arpOutRequests), arpOutRequests); IpCounters.Add(into, nameof(arpOutReplies), arpOutReplies);
        IpCounters.Add(into, nameof(arpOutGratuitous), arpOutGratuitous); IpCounters.Add(into, nameof(arpResolveFailed), arpResolveFailed);
        IpCounters.Add(into, nameof(arpPendingDrops), arpPendingDrops); IpCounters.Add(into, nameof(arpCacheEvictions), arpCacheEvictions);
        IpCounters.Add(into, nameof(arpDadDuplicates), arpDadDuplicates); IpCounters.Add(into, nameof(arpDefends), arpDefends);
    }
}

/// <summary>icmp:N:icmp (and icmp6, the same fields for ICMPv6).</summary>
public sealed class IcmpCounters : IKstatSource
{
    public long icmpInMsgs, icmpInErrors, icmpInCksumErrs, icmpInUnknowns, icmpInEchos, icmpInEchoReps, icmpInDestUnreachs,
        icmpInTimeExcds, icmpInFragNeeded, icmpInParmProbs, icmpInBadQuote, icmpOutMsgs, icmpOutErrors, icmpOutEchos,
        icmpOutEchoReps, icmpOutDestUnreachs, icmpOutTimeExcds, icmpOutFragNeeded, icmpOutRateLimited, icmpOutSuppressed,
        icmpInNeighborSolicits, icmpInNeighborAdvertisements, icmpInRouterSolicits, icmpInRouterAdvertisements,
        icmpOutNeighborSolicits, icmpOutNeighborAdvertisements, icmpOutRouterSolicits, icmpOutRouterAdvertisements,
        icmpSocketOverflows;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        IpCounters.Add(into, nameof(icmpInMsgs), icmpInMsgs); IpCounters.Add(into, nameof(icmpInErrors), icmpInErrors);
        IpCounters.Add(into, nameof(icmpInCksumErrs), icmpInCksumErrs); IpCounters.Add(into, nameof(icmpInUnknowns), icmpInUnknowns);
        IpCounters.Add(into, nameof(icmpInEchos), icmpInEchos); IpCounters.Add(into, nameof(icmpInEchoReps), icmpInEchoReps);
        IpCounters.Add(into, nameof(icmpInDestUnreachs), icmpInDestUnreachs); IpCounters.Add(into, nameof(icmpInTimeExcds), icmpInTimeExcds);
        IpCounters.Add(into, nameof(icmpInFragNeeded), icmpInFragNeeded); IpCounters.Add(into, nameof(icmpInParmProbs), icmpInParmProbs);
        IpCounters.Add(into, nameof(icmpInBadQuote), icmpInBadQuote); IpCounters.Add(into, nameof(icmpOutMsgs), icmpOutMsgs);
        IpCounters.Add(into, nameof(icmpOutErrors), icmpOutErrors); IpCounters.Add(into, nameof(icmpOutEchos), icmpOutEchos);
        IpCounters.Add(into, nameof(icmpOutEchoReps), icmpOutEchoReps); IpCounters.Add(into, nameof(icmpOutDestUnreachs), icmpOutDestUnreachs);
        IpCounters.Add(into, nameof(icmpOutTimeExcds), icmpOutTimeExcds); IpCounters.Add(into, nameof(icmpOutFragNeeded), icmpOutFragNeeded);
        IpCounters.Add(into, nameof(icmpOutRateLimited), icmpOutRateLimited); IpCounters.Add(into, nameof(icmpOutSuppressed), icmpOutSuppressed);
        IpCounters.Add(into, nameof(icmpInNeighborSolicits), icmpInNeighborSolicits); IpCounters.Add(into, nameof(icmpInNeighborAdvertisements), icmpInNeighborAdvertisements);
        IpCounters.Add(into, nameof(icmpInRouterSolicits), icmpInRouterSolicits); IpCounters.Add(into, nameof(icmpInRouterAdvertisements), icmpInRouterAdvertisements);
        IpCounters.Add(into, nameof(icmpOutNeighborSolicits), icmpOutNeighborSolicits); IpCounters.Add(into, nameof(icmpOutNeighborAdvertisements), icmpOutNeighborAdvertisements);
        IpCounters.Add(into, nameof(icmpOutRouterSolicits), icmpOutRouterSolicits); IpCounters.Add(into, nameof(icmpOutRouterAdvertisements), icmpOutRouterAdvertisements);
        IpCounters.Add(into, nameof(icmpSocketOverflows), icmpSocketOverflows);
    }

    public long TotalDrops => icmpInErrors + icmpInCksumErrs + icmpInUnknowns + icmpInBadQuote;
}

/// <summary>udp:N:udp.</summary>
public sealed class UdpCounters : IKstatSource
{
    public long udpInDatagrams, udpInErrors, udpInCksumErrs, udpNoPorts, udpInOverflows, udpOutDatagrams, udpOutErrors;

    public void Snapshot(List<KeyValuePair<string, long>> into)
    {
        IpCounters.Add(into, nameof(udpInDatagrams), udpInDatagrams); IpCounters.Add(into, nameof(udpInErrors), udpInErrors);
        IpCounters.Add(into, nameof(udpInCksumErrs), udpInCksumErrs); IpCounters.Add(into, nameof(udpNoPorts), udpNoPorts);
        IpCounters.Add(into, nameof(udpInOverflows), udpInOverflows); IpCounters.Add(into, nameof(udpOutDatagrams), udpOutDatagrams);
        IpCounters.Add(into, nameof(udpOutErrors), udpOutErrors);
    }

    public long TotalDrops => udpInErrors + udpInCksumErrs + udpNoPorts + udpInOverflows;
}
