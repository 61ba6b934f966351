using System.Globalization;
using System.Text;

namespace SmartOS.Storage;

/// <summary>The operations a `zfs` command calls: create, snapshot, clone, destroy, rollback, promote, rename, volume I/O.</summary>
public sealed partial class DatasetTree
{
    private const long DefaultVolBlockSize = 8192;

    private static string TypeWord(DslDir dir) => dir.Type == DatasetType.Volume ? "volume" : "filesystem";

    /// <summary>Checks that name can be made: its pool is this one, it is new, its parent exists and is a filesystem.</summary>
    private StorageResult CheckNewName(string name, string what, out DslDir parent)
    {
        parent = null!;
        int slash = name.IndexOf('/');
        string poolName = slash < 0 ? name : name[..slash];
        if (poolName != _root.Name) return new StorageResult(StorageStatus.NoSuchPool, what, $"no such pool '{poolName}'");
        if (_byName.ContainsKey(name)) return new StorageResult(StorageStatus.DatasetExists, what);
        string parentName = name[..name.LastIndexOf('/')];
        if (!_byName.TryGetValue(parentName, out parent!)) return new StorageResult(StorageStatus.NoSuchDataset, what, "parent does not exist");
        if (parent.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, what, "parent is not a filesystem");
        return StorageResult.Success;
    }

    /// <summary>Validates `-o` properties for a new dataset of kind (as `zfs set` would) into their stored forms.</summary>
    private static StorageResult ParseCreateProperties(IReadOnlyDictionary<string, string>? properties, DatasetKinds kind, string what,
                                                       SortedDictionary<string, string> stored, out long volBlockSize)
    {
        volBlockSize = DefaultVolBlockSize;
        if (properties is null) return StorageResult.Success;
        foreach (var (key, value) in properties)
        {
            if (key == "volblocksize")
            {
                if (kind != DatasetKinds.Volume) return new StorageResult(StorageStatus.BadProperty, what, "'volblocksize' does not apply to datasets of this type");
                var size = ParseSize(value, out volBlockSize);
                if (!size.IsOk) return size with { Detail = what };
                if (volBlockSize < 512 || volBlockSize > Pool.MaxBlockSize || (volBlockSize & (volBlockSize - 1)) != 0)
                    return new StorageResult(StorageStatus.BadProperty, what, $"'volblocksize' must be power of 2 from 512B to {Pool.MaxBlockSize / 1024}KB");
                continue;
            }
            var def = Lookup(key);
            if (def is null) return new StorageResult(StorageStatus.BadProperty, what, $"invalid property '{key}'");
            if (!def.Settable) return new StorageResult(StorageStatus.BadProperty, what, $"'{key}' is readonly");
            if ((def.Applies & kind) == 0) return new StorageResult(StorageStatus.BadProperty, what, $"'{key}' does not apply to datasets of this type");
            var parsed = Parse(def, value, out string canonical);
            if (!parsed.IsOk) return parsed with { Detail = what };
            stored[key] = canonical;
        }
        return StorageResult.Success;
    }

    /// <summary>
    /// `zfs create [-s] [-o prop=value]... name` for a filesystem, or with type Volume (`-V`) a volume,
    /// whose "volsize" property is required and "volblocksize" optional (8K), both fixed here; a volume
    /// reserves its whole size (refreservation=volsize) unless sparse (`-s`).
    /// </summary>
    public StorageResult Create(string name, DatasetType type, IReadOnlyDictionary<string, string>? properties = null, bool sparse = false)
    {
        string what = Cannot("create", name);
        if (type == DatasetType.Snapshot) return Snapshot(name);
        string? bad = DatasetName.Check(name, snapshot: false);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        var check = CheckNewName(name, what, out var parent);
        if (!check.IsOk) return check;
        var kind = type == DatasetType.Volume ? DatasetKinds.Volume : DatasetKinds.Filesystem;
        var stored = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var parsed = ParseCreateProperties(properties, kind, what, stored, out long volBlockSize);
        if (!parsed.IsOk) return parsed;
        if (type == DatasetType.Volume)
        {
            if (!stored.TryGetValue("volsize", out var volsize)) return new StorageResult(StorageStatus.BadProperty, what, "missing volume size");
            if (long.Parse(volsize, CultureInfo.InvariantCulture) % volBlockSize != 0)
                return new StorageResult(StorageStatus.BadProperty, what, "volume size must be a multiple of volume block size");
            if (!sparse && !stored.ContainsKey("refreservation")) stored["refreservation"] = volsize;
        }
        long reserve = Math.Max(Size(stored, "reservation"), Size(stored, "refreservation"));
        if (reserve > DirAvailable(parent, out bool byQuota))
            return new StorageResult(byQuota ? StorageStatus.QuotaExceeded : StorageStatus.NoSpace, what);
        if (Size(stored, "quota") is long q && q != 0 && q < reserve)
            return new StorageResult(StorageStatus.PropertySpace, what, "size is less than current used or reserved space");
        var dir = NewDir(parent, name[(name.LastIndexOf('/') + 1)..], type, _pool.Txg + 1);
        if (type == DatasetType.Volume)
        {
            dir.VolBlockSize = volBlockSize;
            dir.Head.Objects!.Create(out _);   // the volume's data is object 1 (ZVOL_OBJ)
        }
        else
        {
            // A filesystem is born with its file system, as zfs_create_fs makes it in ZFS.
            var formatted = ZplFileSystem.Format(dir.Head.Objects!, _pool.Now());
            if (!formatted.IsOk)
            {
                dir.Parent!.Children.Remove(dir);
                _dirs.Remove(dir);
                _byName.Remove(dir.FullName);
                Forget(dir);   // never placed: only marks it gone, so the commit skips its queued head
                return new StorageResult(formatted.Status, what, formatted.Message);
            }
        }
        foreach (var (key, value) in stored) SetLocal(dir, key, value);
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    private static long Size(SortedDictionary<string, string> stored, string key) =>
        stored.TryGetValue(key, out var v) ? long.Parse(v, CultureInfo.InvariantCulture) : 0;

    /// <summary>
    /// `zfs snapshot [-r] fs@snap`: taken in the next txg, after that txg's writes to the dataset, in
    /// constant time whatever the dataset holds (Dsl.cs rule 1).
    /// </summary>
    public StorageResult Snapshot(string name, bool recursive = false)
    {
        string what = $"cannot create snapshot '{name}'";
        string? bad = DatasetName.Check(name, snapshot: true);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        int at = name.IndexOf('@');
        string path = name[..at], snap = name[(at + 1)..];
        if (!_byName.TryGetValue(path, out var dir)) return new StorageResult(StorageStatus.NoSuchDataset, what);
        var targets = new List<DslDir> { dir };
        if (recursive) Descendants(dir, targets);
        targets.RemoveAll(IsHidden);   // Dsl.SendResume.cs rule 5: not fs/%recv
        foreach (var t in targets)
        {
            foreach (var s in t.Snapshots)
                if (s.SnapName == snap) return new StorageResult(StorageStatus.DatasetExists, $"cannot create snapshot '{t.FullName}@{snap}'");
        }
        foreach (var t in targets) _pendingSnapshots.Add((t.Head, snap));
        return _pool.CommitTxg(force: true);
    }

    private static void Descendants(DslDir dir, List<DslDir> into)
    {
        foreach (var child in dir.Children)
        {
            into.Add(child);
            Descendants(child, into);
        }
    }

    /// <summary>`zfs clone [-o prop=value]... fs@snap target`: a new head sharing the snapshot's blocks (constant time).</summary>
    public StorageResult Clone(string snapshot, string target, IReadOnlyDictionary<string, string>? properties = null)
    {
        string? badSnap = DatasetName.Check(snapshot, snapshot: true);
        if (badSnap is not null) return new StorageResult(StorageStatus.InvalidArgument, Cannot("open", snapshot), badSnap);
        if (Find(snapshot, out var origin) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        string what = Cannot("create", target);
        string? bad = DatasetName.Check(target, snapshot: false);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        var check = CheckNewName(target, what, out var parent);
        if (!check.IsOk) return check;
        var type = origin.Dir.Type;
        var kind = type == DatasetType.Volume ? DatasetKinds.Volume : DatasetKinds.Filesystem;
        var stored = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var parsed = ParseCreateProperties(properties, kind, what, stored, out _);
        if (!parsed.IsOk) return parsed;
        if (stored.ContainsKey("volsize")) return new StorageResult(StorageStatus.BadProperty, what, "'volsize' cannot be set at clone time");
        long reserve = Math.Max(Size(stored, "reservation"), Size(stored, "refreservation"));
        if (reserve > DirAvailable(parent, out bool byQuota))
            return new StorageResult(byQuota ? StorageStatus.QuotaExceeded : StorageStatus.NoSpace, what);
        var dir = NewClone(origin, parent, target[(target.LastIndexOf('/') + 1)..]);
        if (type == DatasetType.Volume) SetLocal(dir, "volsize", Num(origin.Dir.VolSize));
        foreach (var (key, value) in stored) SetLocal(dir, key, value);
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>
    /// `zfs destroy [-r|-R] name`: a filesystem or volume (with -r its descendants and snapshots, with
    /// -R also every clone of those), or a snapshot (with -r the same-named snapshot of each
    /// descendant). Refused, as zfs refuses, when it has children, dependent clones or is busy.
    /// </summary>
    public StorageResult Destroy(string name, DestroyFlags flags = DestroyFlags.None)
    {
        string what = Cannot("destroy", name);
        bool recursive = (flags & (DestroyFlags.Recursive | DestroyFlags.Dependents)) != 0;
        if (name.Contains('@')) return DestroySnapshot(name, flags, what);
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, what);
        var dir = ds.Dir;
        if (dir == _root && !recursive)
            return new StorageResult(StorageStatus.NotSupported, what,
                $"operation does not apply to pools\nuse 'zfs destroy -r {name}' to destroy all datasets in the pool\nuse 'zpool destroy {name}' to destroy the pool itself");
        if (!recursive && (dir.Children.Count > 0 || dir.Snapshots.Count > 0))
        {
            List(name, -1, DatasetKinds.All, out var below);
            return new StorageResult(StorageStatus.HasDependents, what,
                $"{TypeWord(dir)} has children\nuse '-r' to destroy the following datasets:" + Lines(below, skip: name));
        }
        var doomed = new List<DslDir> { dir };
        Descendants(dir, doomed);
        var clones = DependentClones(doomed, origins: null);
        if (clones.Count > 0 && (flags & DestroyFlags.Dependents) == 0)
            return new StorageResult(StorageStatus.HasDependents, what,
                $"{TypeWord(dir)} has dependent clones\nuse '-R' to destroy the following datasets:" + Lines(Names(clones), skip: null));
        doomed.AddRange(clones);
        var busy = FindBusy(doomed, includeHeads: true);
        if (busy is not null) return new StorageResult(StorageStatus.DatasetBusy, Cannot("destroy", busy));
        if ((flags & DestroyFlags.DryRun) != 0) return StorageResult.Success;
        var flushed = _pool.CommitTxg(force: false);
        if (!flushed.IsOk) return flushed;
        var result = DestroyDirs(doomed, keep: dir == _root ? _root : null);
        if (!result.IsOk) return result;
        return _pool.CommitTxg(force: true);
    }

    private StorageResult DestroySnapshot(string name, DestroyFlags flags, string what)
    {
        string? bad = DatasetName.Check(name, snapshot: true);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        int at = name.IndexOf('@');
        string path = name[..at], snap = name[(at + 1)..];
        const string none = "could not find any snapshots to destroy; check snapshot names.";
        if (!_byName.TryGetValue(path, out var dir)) return new StorageResult(StorageStatus.NoSuchDataset, what, none);
        var dirs = new List<DslDir> { dir };
        if ((flags & (DestroyFlags.Recursive | DestroyFlags.Dependents)) != 0) Descendants(dir, dirs);
        var snaps = new List<DslDataset>();
        foreach (var d in dirs)
            foreach (var s in d.Snapshots)
                if (s.SnapName == snap) snaps.Add(s);
        if (snaps.Count == 0) return new StorageResult(StorageStatus.NoSuchDataset, what, none);
        var clones = DependentClones([], snaps);
        if (clones.Count > 0 && (flags & DestroyFlags.Dependents) == 0)
            return new StorageResult(StorageStatus.HasDependents, what,
                "snapshot has dependent clones\nuse '-R' to destroy the following datasets:" + Lines(Names(clones), skip: null));
        foreach (var s in snaps)
            if (s.Holds > 0) return new StorageResult(StorageStatus.DatasetBusy, Cannot("destroy", s.Name));
        var busy = FindBusy(clones, includeHeads: true);
        if (busy is not null) return new StorageResult(StorageStatus.DatasetBusy, Cannot("destroy", busy));
        if ((flags & DestroyFlags.DryRun) != 0) return StorageResult.Success;
        var flushed = _pool.CommitTxg(force: false);
        if (!flushed.IsOk) return flushed;
        var result = DestroyDirs(clones, keep: null);
        if (!result.IsOk) return result;
        // A dependent clone below dir took its own snapshot of that name with it (DestroyDirs).
        foreach (var s in snaps)
            if (s.Dir.Snapshots.Contains(s)) DestroySnapshotCore(s);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>
    /// Every filesystem or volume outside doomed that depends on a snapshot about to go: clones of
    /// doomed's snapshots or of origins, with their descendants, and (as -R does) clones of theirs.
    /// </summary>
    private List<DslDir> DependentClones(List<DslDir> doomed, List<DslDataset>? origins)
    {
        var set = new HashSet<DslDir>(doomed);
        var found = new List<DslDir>();
        bool grew = true;
        while (grew)
        {
            grew = false;
            foreach (var d in _dirs)
            {
                if (set.Contains(d) || d.Origin is null) continue;
                bool depends = set.Contains(d.Origin.Dir) || (origins is not null && origins.Contains(d.Origin));
                if (!depends) continue;
                var subtree = new List<DslDir> { d };
                Descendants(d, subtree);
                foreach (var s in subtree)
                    if (set.Add(s)) found.Add(s);
                grew = true;
            }
        }
        return found;
    }

    private static string? FindBusy(List<DslDir> dirs, bool includeHeads)
    {
        foreach (var d in dirs)
        {
            if (includeHeads && d.Head.Holds > 0) return d.Head.Name;
            foreach (var s in d.Snapshots)
                if (s.Holds > 0) return s.Name;
        }
        return null;
    }

    private static List<string> Names(List<DslDir> dirs)
    {
        var names = new List<string>();
        foreach (var d in dirs)
        {
            names.Add(d.FullName);
            foreach (var s in d.Snapshots) names.Add(s.Name);
        }
        names.Sort(string.CompareOrdinal);
        return names;
    }

    private static string Lines(IReadOnlyList<string> names, string? skip)
    {
        var text = new StringBuilder();
        foreach (var n in names)
            if (n != skip) text.Append('\n').Append(n);
        return text.ToString();
    }

    /// <summary>Destroys whole filesystems and volumes, each after its children and the clones of its snapshots (keep's head stays).</summary>
    private StorageResult DestroyDirs(List<DslDir> dirs, DslDir? keep)
    {
        var left = new List<DslDir>(dirs);
        while (left.Count > 0)
        {
            int before = left.Count;
            for (int i = 0; i < left.Count; i++)
            {
                var d = left[i];
                if (d.Children.Count > 0) continue;
                if (HasLiveClones(d)) continue;
                for (int s = d.Snapshots.Count - 1; s >= 0; s--) DestroySnapshotCore(d.Snapshots[s]);
                if (d != keep)
                {
                    var result = DestroyHead(d);
                    if (!result.IsOk) return result;
                }
                left.RemoveAt(i);
                i--;
            }
            if (left.Count == before) return new StorageResult(StorageStatus.HasDependents, Cannot("destroy", left[0].FullName));
        }
        return StorageResult.Success;
    }

    private bool HasLiveClones(DslDir d)
    {
        foreach (var other in _dirs)
            if (other.Origin is not null && other.Origin.Dir == d) return true;
        return false;
    }

    /// <summary>Dsl.cs rule 2: frees what only this snapshot held and hands the rest of the next dead list down.</summary>
    private void DestroySnapshotCore(DslDataset snap)
    {
        var dir = snap.Dir;
        var next = dir.Next(snap);
        long prevTxg = snap.PrevTxg;
        long before = dir.Charged;
        long freed = 0;
        var kept = snap.Deadlist;
        foreach (var bp in next.Deadlist.Entries)
        {
            if (bp.BirthTxg > prevTxg)
            {
                freed += _pool.AllocatedSize(bp);
                _pool.FreeBlock(bp);
            }
            else
            {
                kept.Entries.Add(bp);
            }
        }
        DropDeadlist(next.Deadlist);
        next.Deadlist = kept;
        dir.SnapUsed -= freed;
        if (next.IsSnapshot) next.Written += snap.Written - freed;
        else next.Unique += snap.Written - freed;
        next.Prev = snap.Prev;
        dir.Snapshots.Remove(snap);
        snap.Objects = null;
        Propagate(dir, dir.Charged - before);
        Touch(dir);
    }

    /// <summary>Frees a head's own blocks (born after its prev: the origin's are the origin's) and removes the dataset.</summary>
    private StorageResult DestroyHead(DslDir dir)
    {
        var head = dir.Head;
        System.Diagnostics.Debug.Assert(dir.Snapshots.Count == 0 && dir.Children.Count == 0 && dir != _root);
        var blocks = new List<BlockPointer>();
        var walked = WalkDataset(head, head.PrevTxg, bp => { blocks.Add(bp); return true; });
        if (!walked.IsOk) return walked;
        long charged = dir.Charged;
        foreach (var bp in blocks)
        {
            dir.HeadUsed -= _pool.AllocatedSize(bp);
            _pool.FreeBlock(bp);
        }
        System.Diagnostics.Debug.Assert(dir.HeadUsed == 0 && dir.SnapUsed == 0, "a destroyed dataset held exactly what it was charged");
        DropDeadlist(head.Deadlist);
        head.Log?.Close();   // its log's blocks go with it (IntentLog.cs)
        Propagate(dir, -charged);
        dir.Parent!.Children.Remove(dir);
        _dirs.Remove(dir);
        _byName.Remove(dir.FullName);
        head.Objects = null;
        Forget(dir);
        return StorageResult.Success;
    }

    /// <summary>
    /// `zfs rollback [-r|-R] fs@snap`: the head returns to the snapshot. Later snapshots are refused
    /// unless -r destroys them, clones of them unless -R does.
    /// </summary>
    public StorageResult Rollback(string snapshot, DestroyFlags flags = DestroyFlags.None)
    {
        string what = $"cannot rollback to '{snapshot}'";
        string? bad = DatasetName.Check(snapshot, snapshot: true);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        if (Find(snapshot, out var snap) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        var dir = snap.Dir;
        var later = dir.Snapshots.GetRange(dir.Snapshots.IndexOf(snap) + 1, dir.Snapshots.Count - dir.Snapshots.IndexOf(snap) - 1);
        if (later.Count > 0 && (flags & (DestroyFlags.Recursive | DestroyFlags.Dependents)) == 0)
        {
            var names = new List<string>();
            foreach (var s in later) names.Add(s.Name);
            return new StorageResult(StorageStatus.HasDependents, what,
                "more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:" + Lines(names, skip: null));
        }
        var clones = DependentClones([], later);
        if (clones.Count > 0 && (flags & DestroyFlags.Dependents) == 0)
            return new StorageResult(StorageStatus.HasDependents, what,
                "clones of previous snapshots exist\nuse '-R' to force deletion of the following clones and dependents:" + Lines(Names(clones), skip: null));
        var busy = dir.Head.Holds > 0 ? dir.Head.Name : FindBusy(clones, includeHeads: true);
        if (busy is null) foreach (var s in later) if (s.Holds > 0) busy = s.Name;
        if (busy is not null) return new StorageResult(StorageStatus.DatasetBusy, Cannot("rollback", busy));
        var flushed = _pool.CommitTxg(force: false);
        if (!flushed.IsOk) return flushed;
        var result = DestroyDirs(clones, keep: null);
        if (!result.IsOk) return result;
        for (int i = later.Count - 1; i >= 0; i--) DestroySnapshotCore(later[i]);
        var head = dir.Head;
        var blocks = new List<BlockPointer>();
        var walked = WalkDataset(head, snap.Txg, bp => { blocks.Add(bp); return true; });
        if (!walked.IsOk) return walked;
        long before = dir.Charged;
        foreach (var bp in blocks)
        {
            dir.HeadUsed -= _pool.AllocatedSize(bp);
            _pool.FreeBlock(bp);
        }
        foreach (var bp in head.Deadlist.Entries)
        {
            if (bp.BirthTxg <= dir.OriginTxg) continue;
            long size = _pool.AllocatedSize(bp);
            dir.SnapUsed -= size;
            dir.HeadUsed += size;
        }
        DropDeadlist(head.Deadlist);
        head.Root = snap.Root;
        head.Referenced = snap.Referenced;
        head.Unique = 0;
        head.Objects = null;
        head.RootDirty = false;
        Propagate(dir, dir.Charged - before);
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>
    /// `zfs promote clone`: the origin's snapshots up to and including the origin move to the clone,
    /// and the former origin filesystem becomes a clone of the moved origin snapshot.
    /// </summary>
    public StorageResult Promote(string name)
    {
        string what = Cannot("promote", name);
        if (name.Contains('@') || Find(name, out var ds) != StorageStatus.Ok)
            return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        var clone = ds.Dir;
        if (clone.Origin is null) return new StorageResult(StorageStatus.InvalidArgument, what, "not a cloned filesystem");
        var origin = clone.Origin;
        var from = origin.Dir;
        int k = from.Snapshots.IndexOf(origin);
        var moved = from.Snapshots.GetRange(0, k + 1);
        foreach (var m in moved)
            foreach (var s in clone.Snapshots)
                if (s.SnapName == m.SnapName)
                    return new StorageResult(StorageStatus.DatasetExists, what,
                        $"snapshot name '{m.Name}' from origin conflicts with '{s.Name}' from target");
        var flushed = _pool.CommitTxg(force: false);
        if (!flushed.IsOk) return flushed;
        long cloneBefore = clone.Charged, fromBefore = from.Charged;
        from.Snapshots.RemoveRange(0, k + 1);
        clone.Snapshots.InsertRange(0, moved);
        foreach (var m in moved) m.Dir = clone;
        clone.Origin = from.Origin;
        from.Origin = origin;
        var recomputed = Recompute(clone);
        if (recomputed.IsOk) recomputed = Recompute(from);
        if (!recomputed.IsOk) return recomputed;
        Propagate(clone, clone.Charged - cloneBefore);
        Propagate(from, from.Charged - fromBefore);
        TouchAll();
        return _pool.CommitTxg(force: true);
    }

    /// <summary>Rule 4's definitions, evaluated: the head's blocks born after the origin, and the lineage's dead lists.</summary>
    private StorageResult Recompute(DslDir dir)
    {
        long headUsed = 0;
        var walked = WalkDataset(dir.Head, dir.OriginTxg, bp => { headUsed += _pool.AllocatedSize(bp); return true; });
        if (!walked.IsOk) return walked;
        long snapUsed = 0;
        foreach (var d in Lineage(dir)) snapUsed += d.Deadlist.SpaceBornAfter(_pool, dir.OriginTxg);
        dir.HeadUsed = headUsed;
        dir.SnapUsed = snapUsed;
        return StorageResult.Success;
    }

    /// <summary>`zfs rename from to`: a filesystem or volume anywhere in the pool, or a snapshot within its dataset.</summary>
    public StorageResult Rename(string from, string to)
    {
        string what = Cannot("rename", from);
        string target = $"cannot rename to '{to}'";
        if (Find(from, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", from));
        if (ds.IsSnapshot)
        {
            string? badSnap = DatasetName.Check(to, snapshot: true);
            if (badSnap is not null) return new StorageResult(StorageStatus.InvalidArgument, what, badSnap);
            if (to[..to.IndexOf('@')] != ds.Dir.FullName) return new StorageResult(StorageStatus.InvalidArgument, what, "snapshots must be part of same dataset");
            if (Find(to, out _) == StorageStatus.Ok) return new StorageResult(StorageStatus.DatasetExists, target);
            ds.SnapName = to[(to.IndexOf('@') + 1)..];
            Touch(ds.Dir);
            return _pool.CommitTxg(force: true);
        }
        var dir = ds.Dir;
        if (dir == _root) return new StorageResult(StorageStatus.NotSupported, what);
        string? bad = DatasetName.Check(to, snapshot: false);
        if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, what, bad);
        int slash = to.IndexOf('/');
        if ((slash < 0 ? to : to[..slash]) != _root.Name) return new StorageResult(StorageStatus.InvalidArgument, what, "datasets must be within same pool");
        if (to.StartsWith(from + "/", StringComparison.Ordinal))
            return new StorageResult(StorageStatus.InvalidArgument, what, "New dataset name cannot be a descendant of current dataset name");
        var check = CheckNewName(to, target, out var parent);
        if (!check.IsOk) return check;
        long charged = dir.Charged;
        for (var x = parent; x is not null && x != dir.Parent && !x.IsAncestorOf(dir); x = x.Parent)
            if (x.Quota > 0 && x.Used + x.Pending + charged > x.Quota) return new StorageResult(StorageStatus.QuotaExceeded, target);
        var moving = new List<DslDir> { dir };
        Descendants(dir, moving);
        foreach (var d in moving) _byName.Remove(d.FullName);
        Propagate(dir, -charged);
        dir.Parent!.Children.Remove(dir);
        dir.Parent = parent;
        dir.Name = to[(to.LastIndexOf('/') + 1)..];
        parent.Children.Add(dir);
        Propagate(dir, charged);
        foreach (var d in moving) _byName[d.FullName] = d;
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>Writes a volume's blocks (object 1 of its object set); refused beyond volsize, as a disk refuses.</summary>
    public StorageResult WriteVolume(string name, long offset, ReadOnlySpan<byte> data)
    {
        var opened = OpenVolume(name, offset, data.Length, out var os);
        return opened.IsOk ? os.Write(1, offset, data) : opened;
    }

    /// <summary>Punches a hole in a volume (a received stream's FREE): the range reads as zeros and its whole blocks are freed.</summary>
    public StorageResult FreeVolume(string name, long offset, long length)
    {
        if (Find(name, out var ds) == StorageStatus.Ok && ds.Dir.Type == DatasetType.Volume)
            length = Math.Clamp(ds.Dir.VolSize - offset, 0, length);
        var opened = OpenVolume(name, offset, 0, out var os);
        return opened.IsOk ? os.FreeRange(1, offset, length) : opened;
    }

    /// <summary>Reads a volume's blocks; never-written ones read as zeros, up to volsize.</summary>
    public StorageResult ReadVolume(string name, long offset, Span<byte> destination, out int read)
    {
        read = 0;
        if (Find(name, out var ds) == StorageStatus.Ok && ds.Dir.Type == DatasetType.Volume)
            destination = destination[..(int)Math.Clamp(ds.Dir.VolSize - offset, 0, destination.Length)];
        var opened = OpenVolume(name, offset, destination.Length, out var os);
        if (!opened.IsOk) return opened;
        var result = os.Read(1, offset, destination, out int got);
        if (!result.IsOk) return result;
        destination[got..].Clear();
        read = destination.Length;
        return StorageResult.Success;
    }

    private StorageResult OpenVolume(string name, long offset, int length, out ObjectSet os)
    {
        os = null!;
        if (Find(name, out var ds) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", name));
        if (ds.Dir.Type != DatasetType.Volume) return new StorageResult(StorageStatus.NotSupported, Cannot("open", name));
        if (offset < 0 || offset + length > ds.Dir.VolSize) return new StorageResult(StorageStatus.InvalidArgument, name, "beyond the end of the volume");
        return ObjectsOf(ds, out os);
    }

    /// <summary>A new directory under parent whose head shares origin's blocks (constant time, whatever
    /// origin holds): what Clone makes, and the hidden clone of a resumable incremental receive.</summary>
    private DslDir NewClone(DslDataset origin, DslDir parent, string name)
    {
        var dir = NewDir(parent, name, origin.Dir.Type, _pool.Txg + 1);
        var head = dir.Head;
        head.Objects = null;
        head.RootDirty = false;
        head.Root = origin.Root;
        head.Prev = origin;
        head.Referenced = origin.Referenced;
        dir.Origin = origin;
        dir.VolBlockSize = origin.Dir.VolBlockSize;
        return dir;
    }
}
