namespace SmartOS.Kernel;

/// <summary>What a block device says about one request: done, past its end, or failed below it.</summary>
public enum BlockStatus
{
    Ok,
    /// <summary>The range runs past the device's size (or starts before 0).</summary>
    OutOfRange,
    /// <summary>The store under the device failed (checksum, I/O error, a suspended pool, a gone volume).</summary>
    IoError,
}

/// <summary>
/// The block-device contract (ARCHITECTURE.md, "Layers and folders"): how virt reaches a disk without
/// knowing what holds it. storage implements it over a volume (VolumeDevice); zones wires a VM's disks
/// to volumes; tests implement it over an array.
/// </summary>
/// <remarks>
/// Rules
///   1. Offsets and lengths are in bytes; a caller that speaks in sectors multiplies. A request that
///      does not fit in [0, Size) is refused whole with OutOfRange: nothing is read or written.
///   2. A write is visible to the next read at once; it is durable (survives a crash or a host
///      restart) only after a Flush that returned Ok, as a disk with a volatile write cache.
///   3. Calls come from the thread that runs the host's scheduler (Vmm.cs rule 5); nothing here locks.
///   4. Untrusted callers (a guest's requests) get a status, never an exception.
/// </remarks>
public interface IBlockDevice
{
    /// <summary>The size in bytes; it may grow while the device is open (a resized volume).</summary>
    long Size { get; }

    BlockStatus Read(long offset, Span<byte> destination);

    BlockStatus Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every write so far durable (rule 2).</summary>
    BlockStatus Flush();
}
