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
    DatasetExists,      // EEXIST / EZFS_EXISTS
    NoSuchDataset,      // ENOENT / EZFS_NOENT
    DatasetBusy,        // EBUSY / EZFS_BUSY
    QuotaExceeded,      // EDQUOT
    ReadOnly,           // EROFS
    HasDependents,      // EEXIST from destroy or rollback: children, clones or later snapshots
    PropertySpace,      // EZFS_PROPSPACE: a quota or reservation the space does not allow
    BadProperty,        // EZFS_BADPROP / EZFS_PROPREADONLY / EZFS_PROPTYPE
    NotSupported,       // EZFS_BADTYPE: an operation that does not apply to this kind of dataset
    Exists,             // EEXIST: the name is taken
    NotDirectory,       // ENOTDIR: a path component is not a directory
    IsDirectory,        // EISDIR: a file operation on a directory
    NotEmpty,           // ENOTEMPTY: rmdir or rename over a directory with entries (illumos's ZFS says EEXIST)
    NameTooLong,        // ENAMETOOLONG: a name over 255 bytes or a path over 1024
    SymlinkLoop,        // ELOOP: more than 40 symbolic links in one lookup
    NotPermitted,       // EPERM: unlink or link of a directory
    FileTooBig,         // EFBIG: a file past the largest object
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
        StorageStatus.DatasetExists => "dataset already exists",
        StorageStatus.NoSuchDataset => "dataset does not exist",
        StorageStatus.DatasetBusy => "dataset is busy",
        StorageStatus.QuotaExceeded => "disk quota exceeded",
        StorageStatus.ReadOnly => "read-only file system",
        StorageStatus.HasDependents => "dataset has dependents",
        StorageStatus.PropertySpace => "out of space",
        StorageStatus.BadProperty => "invalid property value",
        StorageStatus.NotSupported => "operation not applicable to datasets of this type",
        StorageStatus.Exists => "file exists",
        StorageStatus.NotDirectory => "not a directory",
        StorageStatus.IsDirectory => "is a directory",
        StorageStatus.NotEmpty => "directory not empty",
        StorageStatus.NameTooLong => "file name too long",
        StorageStatus.SymlinkLoop => "too many levels of symbolic links",
        StorageStatus.NotPermitted => "not owner",
        StorageStatus.FileTooBig => "file too large",
        StorageStatus.NoSuchDevice => "no such device in pool",
        StorageStatus.NoValidReplicas => "no valid replicas",
        StorageStatus.DeviceTooSmall => "device is too small",
        StorageStatus.DeviceInUse => "device is already in use",
        StorageStatus.NotMirror => "only applicable to mirror and replacing vdevs",
        StorageStatus.AttachUnsupported => "can only attach to mirrors and top-level disks",
        _ => status.ToString(),
    };
}

/// <summary>
/// A status with the detail that names the pool, vdev or file concerned, and optionally the reason
/// that replaces the status's standard wording (as libzfs's zfs_error_aux does: "cannot destroy
/// 'tank/fs': filesystem has children").
/// </summary>
public readonly record struct StorageResult(StorageStatus Status, string Detail, string? Reason = null)
{
    public static readonly StorageResult Success = new(StorageStatus.Ok, "");

    public bool IsOk => Status == StorageStatus.Ok;

    public string Message
    {
        get
        {
            string reason = Reason ?? StorageStatusText.Of(Status);
            return Detail.Length == 0 ? reason : Detail + ": " + reason;
        }
    }

    public override string ToString() => Message;
}
