using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>Why a nic tag operation was refused. SmartOS's nictagadm is a shell script with its own
/// messages (usr/src/cmd/nictagadm in smartos-live); each code is one of them.</summary>
public enum NicTagError : byte
{
    Ok,
    LocalWithMac,
    NonLocalWithoutMac,
    LocalWithMtu,
    BadMtu,
    Exists,
    BadName,
    NoNic,
    BadMac,
    EtherstubFailed,
    NothingToUpdate,
    NoSuchTag,
    LocalUpdate,
    InUse,
    EtherstubBusy,
}

/// <summary>The outcome of a nic tag operation: the code, the tag or address it names, and for an
/// etherstub the MAC layer refused, that layer's code. Ok is the default value.</summary>
public readonly record struct NicTagStatus(NicTagError Code, string? Subject = null, DladmStatus Link = DladmStatus.Ok)
{
    public static readonly NicTagStatus Ok = default;
    public bool IsOk => Code == NicTagError.Ok;

    public static implicit operator NicTagStatus(NicTagError code) => new(code);

    /// <summary>nictagadm's message (after "nictagadm: " or "ERROR: ").</summary>
    public string Message => NicTagStatusText.Of(this);

    public override string ToString() => Message;
}

/// <summary>The one message table of the nic tags.</summary>
public static class NicTagStatusText
{
    public static string Of(NicTagStatus s) => s.Code switch
    {
        NicTagError.Ok => "ok",
        NicTagError.LocalWithMac => "create local tag, but mac address specified",
        NicTagError.NonLocalWithoutMac => "create non-local tag, but no mac address specified",
        NicTagError.LocalWithMtu => "Cannot specify MTU for local nic tag",
        NicTagError.BadMtu => "mtu must be between 1500-9000",
        NicTagError.Exists => $"nic tag '{s.Subject}' already exists",
        NicTagError.BadName => "nic tag name is invalid",
        NicTagError.NoNic => $"No physical nic found with MAC address '{s.Subject}'",
        NicTagError.BadMac => $"MAC address '{s.Subject}' is invalid",
        NicTagError.EtherstubFailed => $"Could not create etherstub '{s.Subject}': {DlStatusText.Of(s.Link)}",
        NicTagError.NothingToUpdate => "nothing to update",
        NicTagError.NoSuchTag => $"nic tag '{s.Subject}' does not exist",
        NicTagError.LocalUpdate => "cannot update a local tag",
        NicTagError.InUse => $"nic tag '{s.Subject}' is in use",
        NicTagError.EtherstubBusy => $"could not remove etherstub '{s.Subject}'",
        _ => "unknown error",
    };
}
