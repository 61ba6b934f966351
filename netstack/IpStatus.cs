namespace SmartOS.Netstack;

/// <summary>
/// The IP stack's configuration error model (interfaces, addresses, DHCP, addrconf): one code per
/// failure, named after libipadm's ipadm_status_t (usr/src/lib/libipadm/common/libipadm.h), each with
/// the text ipadm_status2str gives it in SmartOS's illumos (the ipadm_errors table of
/// illumos-joyent's usr/src/lib/libipadm/common/libipadm.c). ipadm composes its messages from the
/// code ("ipadm: Could not create address: Address already in use"); callers decide by code.
/// Routes and ARP entries are set through the routing socket and ioctls, not libipadm, so those
/// operations report an errno (<see cref="NetError"/>), as route(8) and arp(8) see it.
/// </summary>
public enum IpadmStatus : byte
{
    Success,
    Failure,
    EAuth,
    EPerm,
    NoBufs,
    NoMemory,
    BadAddr,
    BadProtocol,
    DadFound,
    Exists,
    IfExists,
    AddrObjExists,
    AddrconfExists,
    Enxio,
    GrpNotEmpty,
    InvalidArg,
    InvalidName,
    DlpiFailure,
    DladmFailure,
    PropUnknown,
    ERange,
    ESrch,
    EOverflow,
    NotFound,
    IfInUse,
    AddrInUse,
    BadHostname,
    AddrNotAvail,
    AllAddrsNotEnabled,
    NdpdNotRunning,
    DhcpStartError,
    DhcpIpcError,
    DhcpIpcTimeout,
    TemporaryObj,
    IpcError,
    NotSup,
    OpDisableObj,
    EBade,
    GzPerm,
}

/// <summary>The outcome of an IP configuration operation: an <see cref="IpadmStatus"/> code, a struct
/// with no reference inside (returning one allocates nothing; the text is looked up when printed).</summary>
public readonly record struct IpStatus(IpadmStatus Code)
{
    public static readonly IpStatus Ok = default;
    public bool IsOk => Code == IpadmStatus.Success;
    /// <summary>ipadm_status2str's text for the code.</summary>
    public string Message => IpStatusText.Of(Code);

    public static implicit operator IpStatus(IpadmStatus code) => new(code);
    public override string ToString() => Message;
}

/// <summary>The one message table of the IP configuration API (ipadm_status2str).</summary>
public static class IpStatusText
{
    public static string Of(IpadmStatus code) => code switch
    {
        IpadmStatus.Success => "Operation succeeded",
        IpadmStatus.Failure => "Operation failed",
        IpadmStatus.EAuth => "Insufficient user authorizations",
        IpadmStatus.EPerm => "Permission denied",
        IpadmStatus.NoBufs => "No buffer space available",
        IpadmStatus.NoMemory => "Insufficient memory",
        IpadmStatus.BadAddr => "Invalid address",
        IpadmStatus.BadProtocol => "Incorrect protocol family for operation",
        IpadmStatus.DadFound => "Duplicate address detected",
        IpadmStatus.Exists => "Already exists",
        IpadmStatus.IfExists => "Interface already exists",
        IpadmStatus.AddrObjExists => "Address object already exists",
        IpadmStatus.AddrconfExists => "Addrconf already in progress",
        IpadmStatus.Enxio => "Interface does not exist",
        IpadmStatus.GrpNotEmpty => "IPMP group is not empty",
        IpadmStatus.InvalidArg => "Invalid argument provided",
        IpadmStatus.InvalidName => "Invalid name",
        IpadmStatus.DlpiFailure => "Could not open DLPI link",
        IpadmStatus.DladmFailure => "Datalink does not exist",
        IpadmStatus.PropUnknown => "Unknown property",
        IpadmStatus.ERange => "Value is outside the allowed range",
        IpadmStatus.ESrch => "Value does not exist",
        IpadmStatus.EOverflow => "Number of values exceeds the allowed limit",
        IpadmStatus.NotFound => "Object not found",
        IpadmStatus.IfInUse => "Interface already in use",
        IpadmStatus.AddrInUse => "Address already in use",
        IpadmStatus.BadHostname => "Hostname maps to multiple IP addresses",
        IpadmStatus.AddrNotAvail => "Can't assign requested address",
        IpadmStatus.AllAddrsNotEnabled => "All addresses could not be enabled",
        IpadmStatus.NdpdNotRunning => "IPv6 autoconf daemon in.ndpd not running",
        IpadmStatus.DhcpStartError => "Could not start dhcpagent",
        IpadmStatus.DhcpIpcError => "Could not communicate with dhcpagent",
        IpadmStatus.DhcpIpcTimeout => "Communication with dhcpagent timed out",
        IpadmStatus.TemporaryObj => "Persistent operation on temporary object",
        IpadmStatus.IpcError => "Could not communicate with ipmgmtd",
        IpadmStatus.NotSup => "Operation not supported",
        IpadmStatus.OpDisableObj => "Operation not supported on disabled object",
        IpadmStatus.EBade => "Invalid data exchange with daemon",
        IpadmStatus.GzPerm => "Operation not permitted on from-gz interface",
        _ => "<unknown error>",
    };
}
