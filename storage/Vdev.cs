namespace SmartOS.Storage;

/// <summary>The shape of a top-level vdev.</summary>
public enum VdevKind : byte
{
    Disk = 1,
    Mirror = 2,
    Raidz1 = 3,
}

/// <summary>What a leaf can do (the STATE column of `zpool status` for a leaf).</summary>
public enum LeafState : byte
{
    Online,
    Offline,    // taken offline by `zpool offline`: no I/O until `zpool online`
    Unavail,    // its file was missing or could not be opened at import
}

/// <summary>
/// A leaf vdev: one file. Its error counters are the READ, WRITE and CKSUM columns `zpool status`
/// prints; RepairedBytes is what self-healing rewrote on it. Only an Online leaf is read or written
/// (Pool.Admin.cs); a Resilvering one is written but not trusted by a read until its resilver ends.
/// </summary>
public sealed class LeafVdev
{
    internal LeafVdev(ulong guid, string path, IVdevIo io, long length, LeafState state = LeafState.Online)
    {
        Guid = guid; Path = path; Io = io; Length = length; State = state;
    }

    public ulong Guid { get; }
    public string Path { get; }
    internal IVdevIo Io { get; set; }

    /// <summary>The file's size: its back label L1 sits at the end of it.</summary>
    public long Length { get; internal set; }

    public LeafState State { get; internal set; }

    /// <summary>Offline until the next import only (`zpool offline -t`): not written to the labels.</summary>
    public bool TemporarilyOffline { get; internal set; }

    /// <summary>Being rebuilt from the other leaves of its top vdev: written, never read as a good copy.</summary>
    public bool Resilvering { get; internal set; }

    /// <summary>Whether a write reaches this leaf.</summary>
    internal bool Writable => State == LeafState.Online;

    /// <summary>Whether a read may take this leaf's copy as a candidate.</summary>
    internal bool Readable => State == LeafState.Online && !Resilvering;

    public long ResilveredBytes { get; internal set; }

    // I/O since the leaf was opened (`zpool iostat`).
    public long ReadOps { get; internal set; }
    public long WriteOps { get; internal set; }
    public long ReadBytes { get; internal set; }
    public long WriteBytes { get; internal set; }

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
        Id = id; Guid = guid; Kind = kind; DataSize = dataSize; LeafList = [.. leaves];
        Space = new SpaceMap(dataSize);
    }

    public int Id { get; }
    public ulong Guid { get; }
    /// <summary>A disk becomes a mirror on attach and a mirror of two a disk on detach (Pool.Admin.cs).</summary>
    public VdevKind Kind { get; internal set; }
    public long DataSize { get; }
    public IReadOnlyList<LeafVdev> Leaves => LeafList;
    internal List<LeafVdev> LeafList { get; }
    public SpaceMap Space { get; }

    /// <summary>
    /// ONLINE with every leaf online; DEGRADED while it still has every block (a mirror with one leaf
    /// online, a raidz1 with one leaf down); UNAVAIL when it has not.
    /// </summary>
    public string Health
    {
        get
        {
            int down = 0;
            foreach (var leaf in LeafList) if (leaf.State != LeafState.Online) down++;
            if (down == 0) return "ONLINE";
            bool usable = Kind switch
            {
                VdevKind.Mirror => down < LeafList.Count,
                VdevKind.Raidz1 => down == 1,
                _ => false,
            };
            return usable ? "DEGRADED" : "UNAVAIL";
        }
    }

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
