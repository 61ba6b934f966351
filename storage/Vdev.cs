namespace SmartOS.Storage;

/// <summary>The shape of a top-level vdev.</summary>
public enum VdevKind : byte
{
    Disk = 1,
    Mirror = 2,
    Raidz1 = 3,
}

/// <summary>
/// A leaf vdev: one file. Its error counters are the READ, WRITE and CKSUM columns `zpool status`
/// prints; RepairedBytes is what self-healing rewrote on it.
/// </summary>
public sealed class LeafVdev
{
    internal LeafVdev(ulong guid, string path, IVdevIo io)
    {
        Guid = guid; Path = path; Io = io;
    }

    public ulong Guid { get; }
    public string Path { get; }
    internal IVdevIo Io { get; }

    public long ReadErrors { get; internal set; }
    public long WriteErrors { get; internal set; }
    public long ChecksumErrors { get; internal set; }
    public long RepairedBytes { get; internal set; }
}

/// <summary>
/// A top-level vdev: a single file or a mirror of files. Blocks are addressed in its data area, the
/// part of every child between the front and back labels; a mirror keeps the same block at the same
/// offset on every child.
/// </summary>
public sealed class TopVdev
{
    internal TopVdev(int id, ulong guid, VdevKind kind, long dataSize, LeafVdev[] leaves)
    {
        Id = id; Guid = guid; Kind = kind; DataSize = dataSize; Leaves = leaves;
        Space = new SpaceMap(dataSize);
    }

    public int Id { get; }
    public ulong Guid { get; }
    public VdevKind Kind { get; }
    public long DataSize { get; }
    public IReadOnlyList<LeafVdev> Leaves { get; }
    public SpaceMap Space { get; }

    public string Name => Kind switch
    {
        VdevKind.Mirror => "mirror-" + Id,
        VdevKind.Raidz1 => "raidz1-" + Id,
        _ => System.IO.Path.GetFileName(Leaves[0].Path),
    };

    /// <summary>
    /// Bytes a block of psize takes on each leaf at its offset: the block itself on a disk or mirror;
    /// on a raidz1 of n leaves, one column, psize split over n-1 data columns rounded up to a sector.
    /// </summary>
    public int AllocSize(int psize)
    {
        if (Kind != VdevKind.Raidz1) return psize;
        int dataColumns = Leaves.Count - 1;
        int sectors = (psize / Pool.SectorSize + dataColumns - 1) / dataColumns;
        return sectors * Pool.SectorSize;
    }
}

/// <summary>One top-level vdev asked of Pool.Create: its kind and its files' names in the pool directory.</summary>
public sealed record VdevSpec(VdevKind Kind, IReadOnlyList<string> Files)
{
    public static VdevSpec Disk(string file) => new(VdevKind.Disk, [file]);

    public static VdevSpec Mirror(params string[] files) => new(VdevKind.Mirror, files);

    public static VdevSpec Raidz1(params string[] files) => new(VdevKind.Raidz1, files);
}
