namespace SmartOS.Zones;

/// <summary>
/// The zone table's error codes: libzonecfg's Z_* codes (usr/src/head/libzonecfg.h), each with the
/// text zonecfg_strerror gives it (usr/src/lib/libzonecfg/common/libzonecfg.c). Z_SYSTEM is
/// zonecfg_strerror's strerror(errno): here every System status carries the failing layer's own
/// message (a datalink, the zone's network, its guest) as its detail.
/// </summary>
public enum ZoneError : byte
{
    Ok,
    EmptyDocument,
    WrongDocType,
    BadProperty,
    TempFile,
    SavingFile,
    NoEntry,
    BogusZoneName,
    ReqdResourceMissing,
    ReqdPropertyMissing,
    BadHandle,
    NoMem,
    Inval,
    Acces,
    TooBig,
    MiscFs,
    NoZone,
    NoResourceType,
    NoResourceId,
    NoPropertyType,
    NoPropertyId,
    BadZoneState,
    InvalidDocument,
    NameInUse,
    NoSuchId,
    UpdatingIndex,
    LockingFile,
    UnlockingFile,
    InsufficientSpec,
    ResolvedPath,
    Ipv6AddrPrefixLen,
    BogusAddress,
    PrivProhibited,
    PrivRequired,
    PrivUnknown,
    BrandError,
    Incompatible,
    AliasDisallow,
    ClearDisallow,
    Pool,
    PoolsNotActive,
    PoolEnable,
    NoPool,
    PoolCreate,
    PoolBind,
    InvalidProperty,
    System,
}

/// <summary>
/// The messages zoneadm and zonecfg compose themselves for a zone in the wrong state (zoneadm.c's
/// sanity_check, zonecfg.c's checks on an installed zone). Each goes with
/// <see cref="ZoneError.BadZoneState"/>; the status's subject and detail fill it in.
/// </summary>
public enum ZoneStateCheck : byte
{
    None,
    /// <summary>"must be installed before {command}."</summary>
    NotInstalled,
    /// <summary>"is already installed."</summary>
    AlreadyInstalled,
    /// <summary>"is already in state 'configured'."</summary>
    AlreadyConfigured,
    /// <summary>"{command} operation is invalid for {state} zones."</summary>
    InvalidForState,
    /// <summary>"zone is already booted"</summary>
    AlreadyBooted,
    /// <summary>"zone is incomplete; uninstall required."</summary>
    Incomplete,
    /// <summary>"not running"</summary>
    NotRunning,
    /// <summary>"Zone {zone} already installed; set {property} not allowed."</summary>
    InstalledSetNotAllowed,
    /// <summary>"Zone {zone} not in configured state; delete not allowed."</summary>
    DeleteNotAllowed,
}

/// <summary>
/// The outcome of a zone-table operation. A code (what callers decide on), zoneadm's own state
/// message where it has one, and, for a configuration or datalink problem found by another check
/// (zonecfg verify's, the MAC layer's), that check's composed message as the detail. Ok is the
/// default value: success builds no string.
/// </summary>
public readonly record struct ZoneStatus(ZoneError Code, ZoneStateCheck Check = ZoneStateCheck.None, string? Subject = null, string? Detail = null)
{
    public static readonly ZoneStatus Ok = default;
    public bool IsOk => Code == ZoneError.Ok;

    public static implicit operator ZoneStatus(ZoneError code) => new(code);

    /// <summary>A problem a check words itself (a property, a net, a link): the code and its message.</summary>
    public static ZoneStatus Problem(ZoneError code, string message) => new(code, Detail: message);

    /// <summary>A state refusal in zoneadm's or zonecfg's words.</summary>
    public static ZoneStatus State(ZoneStateCheck check, string? subject = null, string? detail = null)
        => new(ZoneError.BadZoneState, check, subject, detail);

    /// <summary>The message zoneadm prints after "zone 'NAME': " (or zonecfg after its prefix).</summary>
    public string Message => Check switch
    {
        ZoneStateCheck.NotInstalled => $"must be installed before {Subject}.",
        ZoneStateCheck.AlreadyInstalled => "is already installed.",
        ZoneStateCheck.AlreadyConfigured => "is already in state 'configured'.",
        ZoneStateCheck.InvalidForState => $"{Subject} operation is invalid for {Detail} zones.",
        ZoneStateCheck.AlreadyBooted => "zone is already booted",
        ZoneStateCheck.Incomplete => "zone is incomplete; uninstall required.",
        ZoneStateCheck.NotRunning => "not running",
        ZoneStateCheck.InstalledSetNotAllowed => $"Zone {Subject} already installed; set {Detail} not allowed.",
        ZoneStateCheck.DeleteNotAllowed => $"Zone {Subject} not in configured state; delete not allowed.",
        _ => Detail ?? ZoneStatusText.Of(Code),
    };

    public override string ToString() => Message;
}

/// <summary>The one message table of the zone table's codes (zonecfg_strerror).</summary>
public static class ZoneStatusText
{
    public static string Of(ZoneError code) => code switch
    {
        ZoneError.Ok => "OK",
        ZoneError.EmptyDocument => "Empty document",
        ZoneError.WrongDocType => "Wrong document type",
        ZoneError.BadProperty => "Bad document property",
        ZoneError.TempFile => "Problem creating temporary file",
        ZoneError.SavingFile => "Problem saving file",
        ZoneError.NoEntry => "No such entry",
        ZoneError.BogusZoneName => "Bogus zone name",
        ZoneError.ReqdResourceMissing => "Required resource missing",
        ZoneError.ReqdPropertyMissing => "Required property missing",
        ZoneError.BadHandle => "Bad handle",
        ZoneError.NoMem => "Out of memory",
        ZoneError.Inval => "Invalid argument",
        ZoneError.Acces => "Permission denied",
        ZoneError.TooBig => "Argument list too long",
        ZoneError.MiscFs => "Miscellaneous file system error",
        ZoneError.NoZone => "No such zone configured",
        ZoneError.NoResourceType => "No such resource type",
        ZoneError.NoResourceId => "No such resource with that id",
        ZoneError.NoPropertyType => "No such property type",
        ZoneError.NoPropertyId => "No such property with that id",
        ZoneError.BadZoneState => "Zone state is invalid for the requested operation",
        ZoneError.InvalidDocument => "Invalid document",
        ZoneError.NameInUse => "Zone name already in use",
        ZoneError.NoSuchId => "No such zone ID",
        ZoneError.UpdatingIndex => "Problem updating index file",
        ZoneError.LockingFile => "Locking index file",
        ZoneError.UnlockingFile => "Unlocking index file",
        ZoneError.InsufficientSpec => "Insufficient specification",
        ZoneError.ResolvedPath => "Resolved path mismatch",
        ZoneError.Ipv6AddrPrefixLen => "IPv6 address missing required prefix length",
        ZoneError.BogusAddress => "Neither an IPv4 nor an IPv6 address nor a host name",
        ZoneError.PrivProhibited => "Specified privilege is prohibited",
        ZoneError.PrivRequired => "Required privilege is missing",
        ZoneError.PrivUnknown => "Specified privilege is unknown",
        ZoneError.BrandError => "Brand-specific error",
        ZoneError.Incompatible => "Incompatible settings",
        ZoneError.AliasDisallow => "An incompatible rctl already exists for this property",
        ZoneError.ClearDisallow => "Clearing this property is not allowed",
        ZoneError.Pool => "libpool(3LIB) error",
        ZoneError.PoolsNotActive => "Pools facility not active; zone will not be bound to pool",
        ZoneError.PoolEnable => "Could not enable pools facility",
        ZoneError.NoPool => "Pool not found; using default pool",
        ZoneError.PoolCreate => "Could not create a temporary pool",
        ZoneError.PoolBind => "Could not bind zone to pool",
        ZoneError.InvalidProperty => "Specified property is invalid",
        ZoneError.System => "System error",
        _ => "Unknown error",
    };
}
