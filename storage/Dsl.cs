/*
 * The dataset layer (ZFS's DSL): filesystems, volumes, snapshots and clones on one pool.
 *
 * Pool.Objects stays the pool-wide meta object set (MOS). Object 1 of the MOS is the dataset
 * directory: a slot table naming, for each filesystem or volume, the MOS object of its record (its
 * name, place in the tree, local properties, and for it and each snapshot the root block pointer,
 * previous snapshot, space counters and the MOS object of its dead list; Dsl.Sync.cs). Each
 * filesystem or volume (DslDir) has a head dataset whose ObjectSet is rooted at a block of its own
 * (BlockType ObjectSetRoot, the dnode of its meta object, then its intent log's header: IntentLog.cs), so a commit writes: each dirty head's
 * blocks, its new root block, its dead list entries, the records of the dirs that changed, the MOS,
 * the uberblock (Pool.cs rule 5). What a commit writes does not grow with the number of datasets,
 * nor does the work of finding it: a head is queued when its root or object set first changes in a
 * txg, and a dir when a write reserves room in it, and the commit visits those alone. A clone writes
 * no block of its own (its root is its origin's) until it is changed: its commit writes its record,
 * the directory's header and slot blocks and the MOS's dnode blocks for them, 7 blocks at most
 * (DirectoryFormatTests), about 570 bytes of pool space a clone.
 *
 * Terms
 *   head       the writable state of a filesystem or volume (`tank/fs`).
 *   snapshot   a head's root block kept as it was at a txg (`tank/fs@a`): the blocks it reaches are
 *              never freed while it exists. Taking one copies one pointer: constant time.
 *   prev       the snapshot before a dataset in its lineage: a head's newest snapshot, or for a
 *              clone without snapshots its origin. PrevTxg is that snapshot's txg (0 if none).
 *   clone      a new head whose root starts as a snapshot's (its origin); it shares every block born
 *              at or before the origin's txg.
 *   dead list  the blocks a head let go of that its prev still holds (ZFS's deadlist).
 *
 * Rules
 *   1. Birth decides (ZFS's born-txg arithmetic): a block a head lets go of (a pointer replaced or
 *      an object deleted) is freed if it was born after PrevTxg, since no snapshot can hold it;
 *      otherwise it goes on the head's dead list. Taking a snapshot hands the head's dead list to
 *      the snapshot and starts an empty one.
 *   2. Destroying snapshot S (prev P, next N) frees exactly the entries of N's dead list born after
 *      P's txg (they were S's alone) and keeps the others, which P also holds, as N's dead list
 *      together with S's own. Rollback to the newest snapshot frees the head's blocks born after it
 *      and drops the head's dead list (the snapshot still holds those blocks).
 *   3. Copy-on-write never makes a child block younger than its parent, so a walk for blocks born
 *      after a txg skips every subtree whose pointer is older (ObjectSet.Walk). Open claims each
 *      dataset's blocks born after its PrevTxg, which claims every live block exactly once.
 *   4. Space, as ZFS charges it to a dsl_dir: usedbydataset is the head's blocks born after the
 *      origin; usedbysnapshots the dead list entries of the lineage born after the origin (blocks
 *      only snapshots hold); usedbychildren the sum of max(used, reservation) of the children;
 *      usedbyrefreservation what refreservation sets aside beyond the head's unique blocks. A
 *      snapshot's used is the next dataset's dead list born after the snapshot's prev; referenced is
 *      every block its root reaches. The counters change as blocks are born and killed, and a test
 *      holds them against walks of the trees after every kind of change.
 *   5. A write asks its head for room before it changes anything: each block it dirties counts up to
 *      the last byte that can be non-zero, rounded to a sector (the bound of Pool.StoredSize; the
 *      real size is known only at commit), less what earlier writes to that block reserved. The room is the least of
 *      each ancestor's quota less its use, refquota less referenced, and the pool's free space less
 *      the slop space and other datasets' unused reservations (dsl_dir_space_available); EDQUOT when a quota binds,
 *      ENOSPC otherwise, and the write is refused whole.
 *   6. Every change of the tree (create, destroy, snapshot, clone, rollback, promote, rename, set,
 *      inherit) is committed as a txg of its own before the call returns, as a ZFS sync task is;
 *      creation times come from the pool's clock (Pool.cs rule 1).
 *   7. Errors are StorageResults worded as zfs prints them ("cannot destroy 'tank/fs': filesystem
 *      has children"), and a refused call changes nothing.
 *
 * Not done yet (issue 12): holds and bookmarks, user properties, worst-case
 * indirect-block overhead in write reservations (a quota can be passed by a commit's metadata), a
 * volume's refreservation including its metadata, dead lists split by snapshot txg (ZFS's bpobj
 * sublists: here a snapshot's `used` scans the next dead list), and promote recomputing the two
 * lineages' space by walking them.
 */
using System.Diagnostics;

namespace SmartOS.Storage;

/// <summary>What Destroy may take with it (`zfs destroy -r`, `-R`).</summary>
[Flags]
public enum DestroyFlags
{
    None = 0,
    Recursive = 1,   // -r: children and snapshots
    Dependents = 2,  // -R: also clones, wherever they are
    DryRun = 4,      // -n: every check, then nothing destroyed
}

/// <summary>Which kinds List returns (`zfs list -t`).</summary>
[Flags]
public enum DatasetKinds
{
    Filesystem = 1,
    Volume = 2,
    Snapshot = 4,
    All = 7,
}

/// <summary>The datasets of one pool (Dsl.cs). Used from the pool's thread only (Pool.cs rule 9).</summary>
public sealed partial class DatasetTree
{
    internal const long DirectoryObject = 1;

    private readonly Pool _pool;
    private readonly List<DslDir> _dirs = [];
    private readonly Dictionary<string, DslDir> _byName = new(StringComparer.Ordinal);
    private readonly List<(DslDataset Head, string Snap)> _pendingSnapshots = [];
    private long _nextId = 1;
    // Dirs whose directory records the next commit rewrites, in the order they changed (Dsl.Sync.cs),
    // and the slots of destroyed dirs it empties; the slots free for new dirs; the slot table's size.
    private readonly List<DslDir> _changed = [];
    private readonly List<(int Slot, long Record)> _forgotten = [];
    private readonly SortedSet<int> _freeSlots = [];
    private readonly MemoryStream _record = new();
    // Dirs whose head changed since the last commit (its root or its object set), and dirs holding
    // room reserved in the open txg, in the order they were queued: a commit visits these, never
    // every dataset of the pool (Dsl.Sync.cs).
    private readonly List<DslDir> _queuedHeads = [];
    private readonly List<DslDir> _queuedPending = [];
    private int _slotCount;
    private bool _legacyDirectory;
    private DslDir _root = null!;

    internal DatasetTree(Pool pool) { _pool = pool; }

    internal Pool Pool => _pool;

    internal bool IsDirty
    {
        get
        {
            if (_changed.Count > 0 || _forgotten.Count > 0 || _pendingSnapshots.Count > 0) return true;
            foreach (var dir in _queuedHeads)
                if (dir.Head.RootDirty || dir.Head.Objects is { IsDirty: true }) return true;
            return false;
        }
    }

    /// <summary>
    /// Space no dataset may take (spa_get_slop_space): 1/32 of the pool, but at least half the pool
    /// or 128 MiB, whichever is less, so that the MOS and the metadata of a commit always find room
    /// and a full pool never suspends for want of space to commit (Pool.cs rule 8).
    /// </summary>
    public long SlopSpace => Math.Max(_pool.Size >> 5, Math.Min(_pool.Size >> 1, 128L << 20));

    /// <summary>Bytes the MOS takes (the pool's metadata, not charged to any dataset).</summary>
    public long MetaAllocated => ((MosOwner)_pool.MosOwner).Bytes;

    // ---- block accounting (rules 1, 4, 5) ----

    internal void Born(DslDataset head, in BlockPointer bp)
    {
        Debug.Assert(!head.IsSnapshot);
        long size = _pool.AllocatedSize(bp);
        head.Referenced += size;
        var dir = head.Dir;
        long before = dir.Charged;
        head.Unique += size;
        dir.HeadUsed += size;
        Propagate(dir, dir.Charged - before);
    }

    internal void Kill(DslDataset head, in BlockPointer bp)
    {
        Debug.Assert(!head.IsSnapshot);
        long size = _pool.AllocatedSize(bp);
        head.Referenced -= size;
        var dir = head.Dir;
        if (bp.BirthTxg > head.PrevTxg)
        {
            long before = dir.Charged;
            head.Unique -= size;
            dir.HeadUsed -= size;
            Propagate(dir, dir.Charged - before);
            _pool.FreeBlock(bp);
            return;
        }
        head.Deadlist.Entries.Add(bp);
        if (bp.BirthTxg > dir.OriginTxg)
        {
            dir.HeadUsed -= size;
            dir.SnapUsed += size;
        }
    }

    /// <summary>Passes a change of what dir is charged (delta) up to its ancestors' usedbychildren.</summary>
    private static void Propagate(DslDir dir, long delta)
    {
        for (var d = dir; delta != 0 && d.Parent is not null; d = d.Parent)
        {
            var parent = d.Parent;
            long before = parent.Charged;
            parent.ChildrenUsed += delta;
            delta = parent.Charged - before;
        }
    }

    internal StorageResult Reserve(DslDataset head, long bytes)
    {
        if (bytes == 0) return StorageResult.Success;
        long avail = Available(head, out bool byQuota);
        if (bytes > avail)
            return new StorageResult(byQuota ? StorageStatus.QuotaExceeded : StorageStatus.NoSpace, head.Name);
        head.PendingOwn += bytes;
        long delta = bytes;
        QueuePending(head.Dir);
        for (var d = head.Dir; d is not null && delta != 0; d = d.Parent)
        {
            QueuePending(d);
            long before = d.ChargedWithPending;
            d.Pending += delta;
            delta = d.ChargedWithPending - before;
        }
        return StorageResult.Success;
    }

    /// <summary>Whether bytes more do not fit in head now but room is held by reservations of the open
    /// txg in head or an ancestor (dsl_dir_tempreserve_impl's ERESTART: the caller commits and asks
    /// again, rather than fail with EDQUOT/ENOSPC while a sync would free the room).</summary>
    internal bool RoomIsInFlight(DslDataset head, long bytes)
    {
        if (bytes <= Available(head, out _)) return false;
        if (head.PendingOwn > 0) return true;
        for (var d = head.Dir; d is not null; d = d.Parent)
            if (d.Pending > 0) return true;
        return false;
    }

    /// <summary>Room left in dir (dsl_dir_space_available): the parent's room plus dir's unused reservation, capped by its quota.</summary>
    private long DirAvailable(DslDir dir, out bool byQuota)
    {
        long used = dir.Used + dir.Pending;
        long avail;
        if (dir.Parent is null)
        {
            byQuota = false;
            avail = _pool.Size - SlopSpace - MetaAllocated - used;
        }
        else
        {
            avail = DirAvailable(dir.Parent, out byQuota);
            if (dir.Reservation > used) avail += dir.Reservation - used;
        }
        if (dir.Quota > 0 && dir.Quota - used < avail)
        {
            avail = dir.Quota - used;
            byQuota = true;
        }
        return Math.Max(0, avail);
    }

    /// <summary>The `available` property of a head (dsl_dataset_space): with its unused refreservation, capped by refquota.</summary>
    private long Available(DslDataset head, out bool byQuota)
    {
        var dir = head.Dir;
        long avail = DirAvailable(dir, out byQuota);
        if (dir.RefReservation > head.Unique) avail += dir.RefReservation - head.Unique;
        if (dir.RefQuota > 0)
        {
            long left = Math.Max(0, dir.RefQuota - head.Referenced - head.PendingOwn);
            if (left < avail) { avail = left; byQuota = true; }
        }
        return avail;
    }

    // ---- lookups ----

    private static string Cannot(string verb, string name) => $"cannot {verb} '{name}'";

    /// <summary>Finds a filesystem, volume or snapshot by its full name.</summary>
    private StorageStatus Find(string name, out DslDataset ds)
    {
        ds = null!;
        int at = name.IndexOf('@');
        string path = at >= 0 ? name[..at] : name;
        if (!_byName.TryGetValue(path, out var dir)) return StorageStatus.NoSuchDataset;
        if (at < 0) { ds = dir.Head; return StorageStatus.Ok; }
        string snap = name[(at + 1)..];
        foreach (var s in dir.Snapshots)
            if (s.SnapName == snap) { ds = s; return StorageStatus.Ok; }
        return StorageStatus.NoSuchDataset;
    }

    public bool Exists(string name) => Find(name, out _) == StorageStatus.Ok;

    /// <summary>
    /// The object set of a filesystem or volume (live: writes land in its next commit) or of a
    /// snapshot (read-only: writes fail with EROFS).
    /// </summary>
    public StorageResult Open(string name, out ObjectSet objects)
    {
        objects = null!;
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        var result = ObjectsOf(ds, out var os);
        if (result.IsOk) objects = os;
        return result;
    }

    /// <summary>Marks a dataset in use (mounted, open): destroy and rollback refuse it with "dataset is busy".</summary>
    public StorageResult Hold(string name)
    {
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        ds.Holds++;
        return StorageResult.Success;
    }

    public StorageResult Release(string name)
    {
        if (Find(name, out var ds) != StorageStatus.Ok || ds.Holds == 0) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("release", name));
        ds.Holds--;
        return StorageResult.Success;
    }

    /// <summary>
    /// Names under root (the whole pool when null) to depth levels below it (-1: all), as `zfs list`
    /// orders them: by name, a dataset's snapshots after it in the order they were taken.
    /// </summary>
    public StorageResult List(string? root, int depth, DatasetKinds kinds, out IReadOnlyList<string> names)
    {
        var list = new List<string>();
        names = list;
        DslDataset? start = null;
        if (root is not null)
        {
            if (Find(root, out start) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", root));
            if (start.IsSnapshot) { list.Add(root); return StorageResult.Success; }
        }
        var dirs = new List<DslDir>();
        foreach (var dir in _dirs)
        {
            if (IsHidden(dir)) continue;   // Dsl.SendResume.cs rule 5: fs/%recv is never listed
            if (start is null) { dirs.Add(dir); continue; }
            if (dir != start.Dir && !start.Dir.IsAncestorOf(dir)) continue;
            if (depth >= 0 && Depth(dir) - Depth(start.Dir) > depth) continue;
            dirs.Add(dir);
        }
        dirs.Sort((a, b) => string.CompareOrdinal(a.FullName, b.FullName));
        foreach (var dir in dirs)
        {
            var kind = dir.Type == DatasetType.Volume ? DatasetKinds.Volume : DatasetKinds.Filesystem;
            if ((kinds & kind) != 0) list.Add(dir.FullName);
            bool snapsInDepth = start is null || depth < 0 || Depth(dir) - Depth(start.Dir) < depth;
            if ((kinds & DatasetKinds.Snapshot) != 0 && snapsInDepth)
                foreach (var s in dir.Snapshots) list.Add(s.Name);
        }
        return StorageResult.Success;
    }

    private static int Depth(DslDir dir)
    {
        int n = 0;
        for (var d = dir.Parent; d is not null; d = d.Parent) n++;
        return n;
    }

    /// <summary>
    /// Every block a dataset or snapshot references as committed (what `zdb -b` counts): its root
    /// block, its meta object's blocks and each object's. Uncommitted writes are not included.
    /// </summary>
    public StorageResult Walk(string name, List<BlockPointer> blocks)
    {
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        return WalkDataset(ds, 0, bp => { blocks.Add(bp); return true; });
    }

    private StorageResult WalkDataset(DslDataset ds, long minBirth, Func<BlockPointer, bool> visit)
    {
        if (!ds.Root.IsHole && ds.Root.BirthTxg > minBirth && !visit(ds.Root))
            return new StorageResult(StorageStatus.MetadataCorrupted, ds.Name);
        var result = CommittedObjects(ds, out var os);
        if (!result.IsOk) return result;
        return os.Walk(minBirth, visit);
    }

    /// <summary>The object set as last committed: a head's live set when clean, else one read from its root.</summary>
    private StorageResult CommittedObjects(DslDataset ds, out ObjectSet os)
    {
        if (ds.Objects is not null && !ds.Objects.IsDirty && !ds.RootDirty) { os = ds.Objects; return StorageResult.Success; }
        if (!ds.IsSnapshot && ds.Objects is not null)
        {
            // A dirty head: read the committed root into a throwaway set (nothing is written through it).
            os = new ObjectSet(_pool, ds);
            return ReadRoot(ds, os);
        }
        return ObjectsOf(ds, out os);
    }

    private StorageResult ObjectsOf(DslDataset ds, out ObjectSet os)
    {
        if (ds.Objects is not null) { os = ds.Objects; return StorageResult.Success; }
        os = new ObjectSet(_pool, ds);
        var result = ReadRoot(ds, os);
        if (result.IsOk) ds.Objects = os;
        return result;
    }

    private StorageResult ReadRoot(DslDataset ds, ObjectSet os)
    {
        if (ds.Root.IsHole) return StorageResult.Success;
        if (ds.Root.Type != BlockType.ObjectSetRoot) return new StorageResult(StorageStatus.MetadataCorrupted, ds.Name);
        byte[] buffer = _pool.RentBuffer();
        try
        {
            var status = _pool.ReadBlock(ds.Root, buffer);
            if (status != StorageStatus.Ok) return new StorageResult(status, ds.Name);
            if (!Dnode.TryRead(buffer, out var meta)) return new StorageResult(StorageStatus.MetadataCorrupted, ds.Name);
            // The intent log's header follows the meta dnode (IntentLog.cs); roots written before it have zeros there: a hole.
            if (!ds.IsSnapshot && BlockPointer.TryRead(buffer.AsSpan(Dnode.Size), out var header)) ds.LogHeader = header;
            os.Adopt(meta);
            return StorageResult.Success;
        }
        finally
        {
            _pool.ReturnBuffer(buffer);
        }
    }

    /// <summary>`zpool clear`: forgets the damaged objects every dataset's object set recorded.</summary>
    internal void ClearDamaged()
    {
        foreach (var dir in _dirs)
            foreach (var ds in Lineage(dir)) ds.Objects?.ClearDamaged();
    }

    internal ScrubResult Scrub()
    {
        long blocks = 0, bytes = 0, errors = 0;
        foreach (var dir in _dirs)
        {
            foreach (var ds in Lineage(dir))
            {
                if (!ds.Root.IsHole && ds.Root.BirthTxg > ds.PrevTxg)
                {
                    byte[] good = _pool.RentBuffer(), scratch = _pool.RentBuffer();
                    if (_pool.ScrubBlock(ds.Root, good, scratch) != StorageStatus.Ok) errors++;
                    _pool.ReturnBuffer(good); _pool.ReturnBuffer(scratch);
                    blocks++; bytes += ds.Root.PhysicalSize;
                }
                if (!CommittedObjects(ds, out var os).IsOk) { errors++; continue; }
                var r = os.Scrub(ds.PrevTxg);
                blocks += r.BlocksExamined; bytes += r.BytesExamined; errors += r.Errors;
            }
        }
        return new ScrubResult(blocks, bytes, errors);
    }

    private static IEnumerable<DslDataset> Lineage(DslDir dir)
    {
        foreach (var s in dir.Snapshots) yield return s;
        yield return dir.Head;
    }

    internal bool IsReadOnly(DslDir dir) => Effective(dir, "readonly", out _, out _) == "on";

    /// <summary>The dataset's `compression` (a value Set refused could not be stored, so it always parses).</summary>
    internal CompressionSetting CompressionOf(DslDir dir) =>
        CompressionSetting.TryParse(Effective(dir, "compression", out _, out _), out var setting) ? setting : CompressionSetting.Off;

    internal ChecksumKind? ChecksumOf(DslDir dir) => Effective(dir, "checksum", out _, out _) switch
    {
        "fletcher4" => ChecksumKind.Fletcher4,
        "sha256" => ChecksumKind.Sha256,
        "blake3" => ChecksumKind.Blake3,
        _ => null,
    };
}
