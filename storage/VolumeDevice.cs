using SmartOS.Kernel;

namespace SmartOS.Storage;

/// <summary>
/// A volume as a block device (kernel/BlockDevice.cs): what a VM's virtio-blk disk reads and writes
/// (zones/HvmGuest.cs). Reads and writes go through DatasetTree.ReadVolume/WriteVolume, so they land
/// in the pool's open txg, copy-on-write and checksummed like any other write; Flush commits that
/// txg (Pool.cs rule 5), which is what makes a guest's writes survive a host restart.
/// </summary>
/// <remarks>
/// A pool exported or destroyed under an open volume has closed its files: every request then fails
/// with IoError, as a pulled disk's do (BlockDevice.cs rule 4), and the host goes on.
/// While open the volume is held (DatasetTree.Hold), so `zfs destroy` and `zfs rollback` of a disk
/// under a running guest say "dataset is busy", as illumos's zvol does while open. Close lets go and
/// commits, as a zvol's last close does (zvol_last_close syncs its intent log).
/// </remarks>
public sealed class VolumeDevice : IBlockDevice
{
    private readonly Pool _pool;
    private bool _open;

    private VolumeDevice(Pool pool, string name)
    {
        _pool = pool;
        Name = name;
    }

    /// <summary>Opens the volume <paramref name="name"/> of <paramref name="pool"/>; an error (with
    /// zfs's wording) if it is not there or not a volume.</summary>
    public static StorageResult Open(Pool pool, string name, out VolumeDevice device)
    {
        device = null!;
        if (pool.Datasets.VolumeSize(name) < 0)
            return new StorageResult(pool.Datasets.Exists(name) ? StorageStatus.NotSupported : StorageStatus.NoSuchDataset, $"cannot open '{name}'");
        var held = pool.Datasets.Hold(name);
        if (!held.IsOk) return held;
        device = new VolumeDevice(pool, name) { _open = true };
        return StorageResult.Success;
    }

    public string Name { get; }

    /// <summary>The volume's volsize now; 0 once it is gone or closed.</summary>
    public long Size => _open ? Math.Max(0, _pool.Datasets.VolumeSize(Name)) : 0;

    public BlockStatus Read(long offset, Span<byte> destination)
    {
        if (!_pool.IsOpen) return BlockStatus.IoError;
        if (!Fits(offset, destination.Length)) return BlockStatus.OutOfRange;
        return Status(_pool.Datasets.ReadVolume(Name, offset, destination, out _));
    }

    public BlockStatus Write(long offset, ReadOnlySpan<byte> source)
    {
        if (!_pool.IsOpen) return BlockStatus.IoError;
        if (!Fits(offset, source.Length)) return BlockStatus.OutOfRange;
        return Status(_pool.Datasets.WriteVolume(Name, offset, source));
    }

    public BlockStatus Flush() => _open && _pool.IsOpen ? Status(_pool.Commit()) : BlockStatus.IoError;

    /// <summary>Lets go of the volume and commits what was written (see remarks). Once only.</summary>
    public StorageResult Close()
    {
        if (!_open) return StorageResult.Success;
        _open = false;
        if (!_pool.IsOpen) return new StorageResult(StorageStatus.IoError, $"cannot close '{Name}'", "the pool is no longer open");
        _pool.Datasets.Release(Name);
        return _pool.Commit();
    }

    private bool Fits(long offset, int length) => offset >= 0 && offset <= Size - length;

    private static BlockStatus Status(StorageResult r) => r.IsOk ? BlockStatus.Ok
        : r.Status == StorageStatus.InvalidArgument ? BlockStatus.OutOfRange : BlockStatus.IoError;
}

public sealed partial class DatasetTree
{
    /// <summary>A volume's volsize in bytes, or -1 when <paramref name="name"/> is not a volume
    /// (absent, a filesystem, a snapshot): a lookup that allocates nothing, for the block path.</summary>
    public long VolumeSize(string name)
        => name.IndexOf('@') < 0 && _byName.TryGetValue(name, out var dir) && dir.Type == DatasetType.Volume ? dir.VolSize : -1;
}
