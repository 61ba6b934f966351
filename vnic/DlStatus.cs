namespace SmartOS.Vnic;

/// <summary>
/// The MAC layer's error model: one code per failure, named after libdladm's dladm_status_t
/// (usr/src/lib/libdladm/common/libdladm.h), each with the text dladm_status2str gives it in
/// SmartOS's illumos (illumos-joyent, usr/src/lib/libdladm/common/libdladm.c). Commands compose
/// their messages from the code ("dladm: cannot set link property 'x' on 'y': invalid value"), and
/// decide by code, never by comparing texts.
/// The enum holds the codes of objects this layer has: the InfiniBand, IP-tunnel, CPU-binding and
/// hardware-ring codes are left out, as no operation here can meet them.
/// </summary>
public enum DladmStatus : byte
{
    Ok,
    BadArg,
    Failed,
    TooSmall,
    NotSup,
    NotFound,
    BadVal,
    NoMem,
    Exist,
    LinkInval,
    PropRdOnly,
    BadValCnt,
    DbNotFound,
    Denied,
    IoErr,
    TempOnly,
    TimedOut,
    RepositoryInval,
    MacAddrInval,
    InvalidMacAddrLen,
    InvalidMacAddrType,
    LinkBusy,
    VidInval,
    TryAgain,
    BadTimeVal,
    InvalidMacAddr,
    InvalidMacAddrNic,
    InvalidMacAddrInUse,
    MacFactorySlotInvalid,
    MacFactorySlotUsed,
    MacFactorySlotAllUsed,
    MacFactoryNotSup,
    InvalidMacPrefix,
    InvalidMacPrefixLen,
    TooManyElements,
    BadRange,
    DbParseErr,
    PropParseErr,
    AttrParseErr,
    FlowDbErr,
    FlowDbParseErr,
    FlowAddErr,
    FlowIdentical,
    FlowIncompatible,
    FlowExists,
    PersistFlowExists,
    InvalidIp,
    InvalidPrefixLen,
    InvalidProtocol,
    InvalidPort,
    InvalidDsf,
    InvalidDsfMask,
    InvalidMacMargin,
    BadProp,
    MinMaxBw,
    PermOnly,
    AddrInUse,
    PortNoProto,
    InvalidMtu,
    PersistOnTemp,
}

/// <summary>The outcome of a MAC-layer operation: a <see cref="DladmStatus"/> code. A struct with no
/// reference inside, so returning one allocates nothing; the text is looked up only when printed.</summary>
public readonly record struct DlStatus(DladmStatus Code)
{
    public static readonly DlStatus Ok = default;
    public bool IsOk => Code == DladmStatus.Ok;
    /// <summary>dladm_status2str's text for the code.</summary>
    public string Message => DlStatusText.Of(Code);

    public static implicit operator DlStatus(DladmStatus code) => new(code);
    public override string ToString() => Message;
}

/// <summary>The one message table of the MAC layer (dladm_status2str).</summary>
public static class DlStatusText
{
    public static string Of(DladmStatus code) => code switch
    {
        DladmStatus.Ok => "ok",
        DladmStatus.BadArg => "invalid argument",
        DladmStatus.Failed => "operation failed",
        DladmStatus.TooSmall => "buffer size too small",
        DladmStatus.NotSup => "operation not supported",
        DladmStatus.NotFound => "object not found",
        DladmStatus.BadVal => "invalid value",
        DladmStatus.NoMem => "insufficient memory",
        DladmStatus.Exist => "object already exists",
        DladmStatus.LinkInval => "invalid link",
        DladmStatus.PropRdOnly => "read-only property",
        DladmStatus.BadValCnt => "invalid number of values",
        DladmStatus.DbNotFound => "database not found",
        DladmStatus.Denied => "permission denied",
        DladmStatus.IoErr => "I/O error",
        DladmStatus.TempOnly => "change cannot be persistent",
        DladmStatus.TimedOut => "operation timed out",
        DladmStatus.RepositoryInval => "invalid configuration repository",
        DladmStatus.MacAddrInval => "invalid MAC address",
        DladmStatus.InvalidMacAddrLen => "invalid MAC address length",
        DladmStatus.InvalidMacAddrType => "invalid MAC address type",
        DladmStatus.LinkBusy => "link busy",
        DladmStatus.VidInval => "invalid VLAN identifier",
        DladmStatus.TryAgain => "try again later",
        DladmStatus.BadTimeVal => "invalid time range",
        DladmStatus.InvalidMacAddr => "invalid MAC address value",
        DladmStatus.InvalidMacAddrNic => "MAC address reserved for use by underlying data-link",
        DladmStatus.InvalidMacAddrInUse => "MAC address is already in use",
        DladmStatus.MacFactorySlotInvalid => "invalid factory MAC address slot",
        DladmStatus.MacFactorySlotUsed => "factory MAC address slot already used",
        DladmStatus.MacFactorySlotAllUsed => "all factory MAC address slots are in use",
        DladmStatus.MacFactoryNotSup => "factory MAC address slots not supported",
        DladmStatus.InvalidMacPrefix => "Invalid MAC address prefix value",
        DladmStatus.InvalidMacPrefixLen => "Invalid MAC address prefix length",
        DladmStatus.TooManyElements => "too many elements specified",
        DladmStatus.BadRange => "invalid range",
        DladmStatus.DbParseErr => "database parse error",
        DladmStatus.PropParseErr => "property parse error",
        DladmStatus.AttrParseErr => "attribute parse error",
        DladmStatus.FlowDbErr => "flow database error",
        DladmStatus.FlowDbParseErr => "flow database parse error",
        DladmStatus.FlowAddErr => "flow add error",
        DladmStatus.FlowIdentical => "a flow with identical attributes exists",
        DladmStatus.FlowIncompatible => "flow(s) with incompatible attributes exists",
        DladmStatus.FlowExists => "link still has flows",
        DladmStatus.PersistFlowExists => "persistent flow with the same name exists",
        DladmStatus.InvalidIp => "invalid IP address",
        DladmStatus.InvalidPrefixLen => "invalid IP prefix length",
        DladmStatus.InvalidProtocol => "invalid IP protocol",
        DladmStatus.InvalidPort => "invalid port number",
        DladmStatus.InvalidDsf => "invalid dsfield",
        DladmStatus.InvalidDsfMask => "invalid dsfield mask",
        DladmStatus.InvalidMacMargin => "MTU check failed, use lower MTU or -f option",
        DladmStatus.BadProp => "invalid property",
        DladmStatus.MinMaxBw => "minimum value for maxbw is 1200K",
        DladmStatus.PermOnly => "change must be persistent",
        DladmStatus.AddrInUse => "address already in use",
        DladmStatus.PortNoProto => "local or remote port requires transport",
        DladmStatus.InvalidMtu => "MTU check failed, MTU outside of device's supported range",
        DladmStatus.PersistOnTemp => "can't create persistent object on top of temporary object",
        _ => "<unknown error>",
    };
}
