namespace SmartOS.Storage;

/// <summary>
/// What a pool operation ended with, named after the errno or libzfs error illumos reports for it;
/// Message gives the one wording (StorageStatusText).
/// </summary>
public enum StorageStatus
{
    Ok,
    ChecksumError,      // ECKSUM: no copy of a block matched its checksum
    IoError,            // EIO: no copy of a block could be read or written
    NoSpace,            // ENOSPC
    NoSuchObject,       // ENOENT
    InvalidArgument,    // EINVAL
    PoolExists,         // EZFS_EXISTS
    NoSuchPool,         // EZFS_NOENT on import
    DeviceUnavailable,  // EZFS_BADDEV / a vdev of the pool is missing
    LabelDamaged,       // every label of a vdev failed its checksum
    NoValidUberblock,   // no uberblock of the pool passed its checksum
    MetadataCorrupted,  // the committed tree could not be read at open
    InvalidConfig,      // a vdev layout that cannot be built
    NoSuchDevice,       // EZFS_NODEVICE: no leaf of that name in the pool
    NoValidReplicas,    // EZFS_NOREPLICAS: the change would leave a top vdev without its blocks
    DeviceTooSmall,     // EZFS_BADDEV on attach/replace: smaller than the leaves it joins
    DeviceInUse,        // EZFS_BADDEV: already a leaf of this pool
    NotMirror,          // EZFS_NOTSUP on detach
    AttachUnsupported,  // EZFS_BADTARGET on attach to a raidz
}

public static class StorageStatusText
{
    public static string Of(StorageStatus status) => status switch
    {
        StorageStatus.Ok => "ok",
        StorageStatus.ChecksumError => "checksum mismatch",
        StorageStatus.IoError => "I/O error",
        StorageStatus.NoSpace => "out of space",
        StorageStatus.NoSuchObject => "no such object",
        StorageStatus.InvalidArgument => "invalid argument",
        StorageStatus.PoolExists => "pool already exists",
        StorageStatus.NoSuchPool => "no such pool available",
        StorageStatus.DeviceUnavailable => "one or more devices is currently unavailable",
        StorageStatus.LabelDamaged => "invalid vdev label",
        StorageStatus.NoValidUberblock => "no valid uberblock found",
        StorageStatus.MetadataCorrupted => "the pool metadata is corrupted",
        StorageStatus.InvalidConfig => "invalid vdev specification",
        StorageStatus.NoSuchDevice => "no such device in pool",
        StorageStatus.NoValidReplicas => "no valid replicas",
        StorageStatus.DeviceTooSmall => "device is too small",
        StorageStatus.DeviceInUse => "device is already in use",
        StorageStatus.NotMirror => "only applicable to mirror and replacing vdevs",
        StorageStatus.AttachUnsupported => "can only attach to mirrors and top-level disks",
        _ => status.ToString(),
    };
}

/// <summary>A status with the detail that names the pool, vdev or file concerned.</summary>
public readonly record struct StorageResult(StorageStatus Status, string Detail)
{
    public static readonly StorageResult Success = new(StorageStatus.Ok, "");

    public bool IsOk => Status == StorageStatus.Ok;

    public string Message => Detail.Length == 0 ? StorageStatusText.Of(Status) : Detail + ": " + StorageStatusText.Of(Status);

    public override string ToString() => Message;
}
