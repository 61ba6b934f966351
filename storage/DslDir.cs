using System.Diagnostics;

namespace SmartOS.Storage;

/// <summary>What a dataset is (zfs's `type` property).</summary>
public enum DatasetType { Filesystem, Volume, Snapshot }

/// <summary>
/// A filesystem or volume and everything charged to it (ZFS's dsl_dir_t): its head, its snapshots
/// (oldest first), its children, its local properties and the space its blocks take, split as
/// `zfs get usedby*` splits it (Dsl.cs rule 4).
/// </summary>
internal sealed class DslDir
{
    public required long Id;
    public DslDir? Parent;
    public required string Name;
    public required DatasetType Type;
    public readonly List<DslDir> Children = [];
    public DslDataset Head = null!;
    public readonly List<DslDataset> Snapshots = [];
    /// <summary>The snapshot this clone was made from (its `origin`), or null.</summary>
    public DslDataset? Origin;
    public readonly SortedDictionary<string, string> Local = new(StringComparer.Ordinal);
    public long VolBlockSize;
    public long CreateTxg;

    // Where the dataset directory keeps this dir's record (Dsl.Sync.cs): its slot in the slot table,
    // the MOS object holding the record, and whether the record must be rewritten at the next commit.
    public int Slot = -1;
    public long RecordObject;
    public bool RecordDirty;
    // Queued for the next commit (Dsl.Sync.cs): the head changed, or a write reserved room here.
    public bool HeadQueued, PendingQueued;

    /// <summary>Blocks of the head born after the origin (usedbydataset).</summary>
    public long HeadUsed;
    /// <summary>Blocks only snapshots hold, born after the origin (usedbysnapshots).</summary>
    public long SnapUsed;
    /// <summary>Sum over the children of max(used, reservation) (usedbychildren).</summary>
    public long ChildrenUsed;
    /// <summary>Dirty bytes reserved in the open txg, here and below (charged as children charge).</summary>
    public long Pending;

    // Parsed from Local when it changes (Dsl.Properties.cs).
    public long Quota, RefQuota, Reservation, RefReservation, VolSize;

    public long OriginTxg => Origin?.Txg ?? 0;

    public string FullName => Parent is null ? Name : Parent.FullName + "/" + Name;

    public long RefReservationUsed => Math.Max(0, RefReservation - Head.Unique);

    /// <summary>The `used` property: everything charged to this dataset and its descendants.</summary>
    public long Used => HeadUsed + SnapUsed + ChildrenUsed + RefReservationUsed;

    /// <summary>What the parent is charged for this dataset: its use or its reservation, whichever is larger.</summary>
    public long Charged => Math.Max(Used, Reservation);

    public long ChargedWithPending => Math.Max(Used + Pending, Reservation);

    /// <summary>The dataset after snapshot s in this lineage: the next snapshot or the head.</summary>
    public DslDataset Next(DslDataset s)
    {
        int i = Snapshots.IndexOf(s);
        Debug.Assert(i >= 0);
        return i + 1 < Snapshots.Count ? Snapshots[i + 1] : Head;
    }

    public bool IsAncestorOf(DslDir other)
    {
        for (var d = other.Parent; d is not null; d = d.Parent)
            if (d == this) return true;
        return false;
    }
}

/// <summary>
/// A dataset proper (ZFS's dsl_dataset_t): the head of a filesystem or volume, or one of its
/// snapshots. It holds a root block (the dnode of its meta object), the previous snapshot of its
/// lineage (for a clone's head or first snapshot, the origin), what it references, and its dead list.
/// A head is the BlockOwner of its object set (Dsl.cs rule 3).
/// </summary>
internal sealed class DslDataset(DatasetTree tree) : BlockOwner
{
    public required long Id;
    public required DslDir Dir;
    /// <summary>"" for the head, the part after '@' for a snapshot.</summary>
    public required string SnapName;
    /// <summary>For a snapshot, the txg whose state it keeps.</summary>
    public long Txg;
    public long Creation;
    /// <summary>A snapshot's guid (zfs get guid; a send stream's toguid): derived from the pool's guid
    /// and the dataset id when taken here, the stream's when received.</summary>
    public ulong Guid;
    public DslDataset? Prev;
    public BlockPointer Root;
    public long Referenced;
    /// <summary>Head: bytes born after Prev (written since the last snapshot).</summary>
    public long Unique;
    /// <summary>Snapshot: bytes it holds born after its Prev.</summary>
    public long Written;
    public Deadlist Deadlist = new();
    public ObjectSet? Objects;
    public bool RootDirty;
    public int Holds;
    public long PendingOwn;

    public bool IsSnapshot => SnapName.Length > 0;

    public long PrevTxg => Prev?.Txg ?? 0;

    public override string Name => IsSnapshot ? Dir.FullName + "@" + SnapName : Dir.FullName;

    public override bool IsReadOnly => IsSnapshot || tree.IsReadOnly(Dir);

    public override ChecksumKind? Checksum => tree.ChecksumOf(Dir);

    public override CompressionSetting? Compression => tree.CompressionOf(Dir);

    public override void Born(in BlockPointer bp) => tree.Born(this, bp);

    public override void Kill(in BlockPointer bp) => tree.Kill(this, bp);

    public override StorageResult Reserve(long bytes) => tree.Reserve(this, bytes);

    public override bool RoomIsInFlight(long bytes) => tree.RoomIsInFlight(this, bytes);

    public override void Dirtied() => tree.QueueHead(Dir);

    /// <summary>The log header the committed root block holds (IntentLog.cs: a hole when the log is closed).</summary>
    public BlockPointer LogHeader;

    private IntentLog? _log;

    public override IntentLog? Log => IsSnapshot ? null : _log ??= new IntentLog(tree.Pool, this);
}

/// <summary>
/// Blocks a snapshot still holds that the head let go of while this dataset was the head (ZFS's
/// deadlist): each was born at or before Prev's txg. Kept in memory and appended to its own object
/// of the MOS at each commit; Persisted counts the entries already there.
/// </summary>
internal sealed class Deadlist
{
    public long ObjectId;
    public readonly List<BlockPointer> Entries = [];
    public int Persisted;

    /// <summary>Bytes of the entries born after txg.</summary>
    public long SpaceBornAfter(Pool pool, long txg)
    {
        long n = 0;
        foreach (var bp in Entries)
            if (bp.BirthTxg > txg) n += pool.AllocatedSize(bp);
        return n;
    }
}
