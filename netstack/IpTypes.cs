using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Netstack;

/// <summary>Socket errors, worded as illumos strerror prints them.</summary>
public enum NetError
{
    None, AddressInUse, AddressNotAvailable, NetworkUnreachable, HostUnreachable, MessageTooLong,
    NoBufferSpace, InvalidArgument, ConnectionRefused, TimedOut, Closed, Cancelled,
    /// <summary>EEXIST: a route or entry that is already there.</summary>
    Exists,
    /// <summary>ESRCH: no such route (the routing socket's answer to a delete of a missing one).</summary>
    NoSuchEntry,
    /// <summary>ENXIO: no such ARP entry or interface.</summary>
    NoSuchDevice,
}

public static class NetErrors
{
    public static string Message(NetError e) => e switch
    {
        NetError.None => "Success",
        NetError.AddressInUse => "Address already in use",
        NetError.AddressNotAvailable => "Cannot assign requested address",
        NetError.NetworkUnreachable => "Network is unreachable",
        NetError.HostUnreachable => "No route to host",
        NetError.MessageTooLong => "Message too long",
        NetError.NoBufferSpace => "No buffer space available",
        NetError.InvalidArgument => "Invalid argument",
        NetError.ConnectionRefused => "Connection refused",
        NetError.TimedOut => "Connection timed out",
        NetError.Closed => "Bad file number",
        NetError.Cancelled => "Operation canceled",
        NetError.Exists => "File exists",
        NetError.NoSuchEntry => "No such process",
        NetError.NoSuchDevice => "No such device or address",
        _ => "Error " + (int)e,
    };
}

/// <summary>An address and a port (sockets, netstat).</summary>
public readonly record struct IpEndpoint(IpAddress Address, ushort Port)
{
    /// <summary>"address.port", as netstat prints endpoints of both families.</summary>
    public override string ToString() => $"{Address}.{Port}";
}

/// <summary>How an address was configured (ipadm show-addr TYPE).</summary>
public enum AddressType { Static, Dhcp, Addrconf }

/// <summary>ipadm show-addr STATE.</summary>
public enum AddressState { Ok, Tentative, Duplicate }

/// <summary>One configured address (illumos: an address object, "net0/v4").</summary>
public sealed class IpAddressObject
{
    internal IpAddressObject(string name, IpInterface ifc, IpAddress address, int prefixLength, AddressType type)
    {
        Name = name; Interface = ifc; Address = address; PrefixLength = prefixLength; Type = type;
    }

    public string Name { get; }
    public IpInterface Interface { get; }
    public IpAddress Address { get; }
    public int PrefixLength { get; }
    public AddressType Type { get; }
    public AddressState State { get; internal set; } = AddressState.Tentative;
    /// <summary>When the address expires (DHCP lease, SLAAC valid lifetime); long.MaxValue: never.</summary>
    public long Expires { get; internal set; } = long.MaxValue;

    /// <summary>The IPv4 directed broadcast of the subnet (all host bits set).</summary>
    public IpAddress Broadcast => Address.IsV4 && PrefixLength < 31
        ? IpAddress.V4(Address.V4Raw | (PrefixLength <= 0 ? 0xFFFFFFFF : 0xFFFFFFFFu >> PrefixLength)) : IpAddress.AnyV4;

    public bool IsUsable => State == AddressState.Ok;

    /// <summary>Completes when duplicate address detection ends (Ok or DuplicateAddress).</summary>
    public Task<IpStatus> Ready => _ready.Task;

    // Completed on the loop. Not RunContinuationsAsynchronously: that sends non-await continuations
    // (Task.WhenAny, ContinueWith) to the thread pool, off the loop; awaits still resume through the
    // captured LoopSynchronizationContext.
    internal readonly TaskCompletionSource<IpStatus> _ready = new();
    internal Kernel.KTimer? Timer;
    internal int DadProbesLeft;
    internal bool Removed;
}

/// <summary>An IP interface plumbed on a datalink (ipadm create-if), or the loopback lo0.</summary>
public sealed class IpInterface
{
    internal IpInterface(IpStack stack, string name, MacClient? client, int index)
    {
        Stack = stack; Name = name; Client = client; Index = index;
        Arp = new NeighborCache(stack, this, v6: false);
        Ndp = new NeighborCache(stack, this, v6: true);
        // The loopback interface has no MAC: its interface ID is 1 (::1).
        InterfaceId = client != null ? Ipv6View.InterfaceIdFromMac(client.MacAddress) : 1;
    }

    public IpStack Stack { get; }
    public string Name { get; }
    public MacClient? Client { get; }
    public bool IsLoopback => Client == null;
    /// <summary>The interface index (ifconfig "index N").</summary>
    public int Index { get; }
    public MacAddress MacAddress => Client?.MacAddress ?? MacAddress.Zero;
    /// <summary>The IP MTU: the link's MTU unless lowered with SetInterfaceMtu.</summary>
    public int Mtu => _mtuOverride > 0 ? _mtuOverride : Client?.Mtu ?? 8232;
    /// <summary>Whether stateless autoconfiguration runs (ipadm create-addr -T addrconf).</summary>
    public bool Addrconf { get; internal set; }
    public ulong InterfaceId { get; }
    public long InPackets, OutPackets, InErrors, OutErrors;

    internal int _mtuOverride;
    /// <summary>Entries in the interface's ARP and NDP caches (bounded by NeighborCache.Limit).</summary>
    public int ArpEntryCount => Arp.Count;
    public int NdpEntryCount => Ndp.Count;
    internal readonly NeighborCache Arp;
    internal readonly NeighborCache Ndp;
    internal IpAddress RouterPrefix;
    internal int RouterPrefixLength;
    internal bool AdvertiseRouter;
    internal string? AddrconfName;
    internal Kernel.KTimer? RouterTimer;
    internal int RouterSolicitsLeft;
    internal Kernel.KTimer? SolicitTimer;
}

[Flags]
public enum RouteFlags { None = 0, Up = 1, Gateway = 2, Host = 4, Static = 8, Dynamic = 16, Local = 32 }

/// <summary>One entry of the routing table (netstat -rn).</summary>
public sealed class RouteEntry
{
    internal RouteEntry(IpAddress destination, int prefixLength, IpAddress gateway, IpInterface? ifc, RouteFlags flags)
    {
        Destination = destination; PrefixLength = prefixLength; Gateway = gateway; Interface = ifc; Flags = flags;
    }

    public IpAddress Destination { get; }
    public int PrefixLength { get; }
    /// <summary>The next hop; for an interface (connected) route, the interface's own address.</summary>
    public IpAddress Gateway { get; }
    /// <summary>The outgoing interface of a connected route; null for a gateway route (found through the gateway).</summary>
    public IpInterface? Interface { get; }
    public RouteFlags Flags { get; }
    public bool IsDefault => PrefixLength == 0;
    public long Use;
    internal IpAddressObject? Owner;
    internal long Expires = long.MaxValue;
}

/// <summary>A socket row for netstat -an, as a transport reports it.</summary>
public readonly record struct TransportSocketInfo(byte Protocol, IpEndpoint Local, IpEndpoint Remote, string State,
    int SendWindow, int SendQueue, int ReceiveWindow, int ReceiveQueue);

/// <summary>
/// The netstat hook: a transport registered with <see cref="IpStack.RegisterTransport"/> that also
/// implements this interface has its sockets listed by `netstat -an` (the TCP helper's TCP does so).
/// </summary>
public interface ISocketLister
{
    void ListSockets(List<TransportSocketInfo> into);
}
