namespace SmartOS.Storage;

/// <summary>
/// A clone's changes against its origin as an incremental stream, and such a stream received as a new
/// clone (ZFS's DRR_FLAG_CLONE path): `zfs send -i pool/image@final pool/vm@snap` of a clone of
/// image@final (its BEGIN flagged DRR_FLAG_CLONE, as dmu_send flags a send from the origin), and
/// `zfs receive pool/new` of that stream where no pool/new exists but a snapshot with the stream's
/// fromguid does, which is how an incremental image (imgadm create -i) is made and
/// installed over its origin image. Rule 1 of Dsl.Send.cs holds: the clone is made only after the
/// whole stream was read, applied to the origin's image and decoded, and destroyed again if writing
/// it fails. Volumes take the same paths through Send/ZvolStream.cs, with the checks below: the
/// incremental source of a send, the base of a receive (the target's newest snapshot, or where no
/// target exists the snapshot of another volume the stream's fromguid names, cloned), and the
/// received snapshot keeping the stream's guid and creation time (Dsl.Send.cs rule 2).
/// </summary>
public sealed partial class DatasetTree
{
    /// <summary>Whether <paramref name="from"/> is the origin of the filesystem <paramref name="to"/> is a snapshot of.</summary>
    private static bool IsCloneOrigin(DslDataset from, DslDataset to) => to.Dir.Origin == from;

    /// <summary>
    /// The snapshot in the pool whose guid an incremental stream names as its base: where several
    /// have it (a copy received into the same pool keeps the sender's guids), the one nearest the
    /// target <paramref name="near"/>, as libzfs's guid_to_name searches from the target's parent
    /// outwards; among equally near ones the first by name.
    /// </summary>
    private DslDataset? SnapshotByGuid(ulong guid, string near)
    {
        DslDataset? best = null;
        int bestShared = -1;
        foreach (var dir in _dirs)
        {
            if (IsHidden(dir)) continue;
            foreach (var snap in dir.Snapshots)
            {
                if (snap.Guid != guid) continue;
                int shared = SharedComponents(dir.FullName, near);
                if (shared > bestShared || shared == bestShared && string.CompareOrdinal(dir.FullName, best!.Dir.FullName) < 0)
                    (best, bestShared) = (snap, shared);
            }
        }
        return best;
    }

    private static int SharedComponents(string a, string b)
    {
        string[] x = a.Split('/'), y = b.Split('/');
        int n = 0;
        while (n < x.Length && n < y.Length && x[n] == y[n]) n++;
        return n;
    }

    /// <summary>An incremental stream for a filesystem that does not exist: its base must be a snapshot
    /// elsewhere in the pool, which the new filesystem is cloned from (and a parent to hold it).</summary>
    private StorageResult CheckCloneTarget(string fsName, ulong fromGuid, out DslDataset? origin)
    {
        origin = SnapshotByGuid(fromGuid, fsName);
        if (origin is null)
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveIncremental, $"destination '{fsName}' does not exist");
        if (origin.Dir.Type != DatasetType.Filesystem)
            return new StorageResult(StorageStatus.NotSupported, CannotReceiveIncremental, "only filesystem streams are supported");
        string parent = fsName.Contains('/') ? fsName[..fsName.LastIndexOf('/')] : fsName;
        if (!fsName.Contains('/') || !_byName.ContainsKey(parent))
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveIncremental, $"destination '{parent}' does not exist");
        return StorageResult.Success;
    }

    /// <summary>Rule 1 for a stream received as a clone: the clone, then the changes; a failure destroys the clone.</summary>
    private StorageResult ApplyAsClone(string fsName, DslDataset origin, Send.FileTreeImage baseTree, Send.FileTreeImage tree, Func<ulong, bool> untouched,
        string snapName, Send.BeginRecord begin, string action)
    {
        var cloned = Clone(origin.Name, fsName);
        if (!cloned.IsOk) return cloned with { Detail = action };
        var written = WriteTreeAndSnapshot(fsName, tree, baseTree, snapName, begin, untouched);
        if (written.IsOk) return written;
        Destroy(fsName, DestroyFlags.Recursive);
        return written with { Detail = action };
    }

    /// <summary>zfs send -i's checks of an incremental source (fromName: "@snap" or "vol@snap") for the
    /// volume snapshot <paramref name="snapshot"/>: an earlier snapshot of the same volume, or its origin
    /// (clone: the stream is flagged DRR_FLAG_CLONE).</summary>
    internal StorageResult CheckVolumeSource(string snapshot, string fromName, out string from, out ulong fromGuid, out bool clone)
    {
        string what = $"cannot send '{snapshot}'";
        from = fromName; fromGuid = 0; clone = false;
        if (Find(snapshot, out var to) != StorageStatus.Ok || !to.IsSnapshot) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        if (fromName.StartsWith('@')) from = to.Dir.FullName + fromName;
        if (Find(from, out var source) != StorageStatus.Ok || !source.IsSnapshot)
            return new StorageResult(StorageStatus.NoSuchDataset, what, $"incremental source ({from}) does not exist");
        clone = IsCloneOrigin(source, to);
        if (source.Dir != to.Dir && !clone) return new StorageResult(StorageStatus.InvalidArgument, what, "incremental source must be in same filesystem");
        if (!clone && source.Txg >= to.Txg) return new StorageResult(StorageStatus.InvalidArgument, what, "incremental source must be an earlier snapshot");
        fromGuid = source.Guid;
        return StorageResult.Success;
    }

    /// <summary>
    /// The base an incremental volume stream lands on: the existing volume's newest snapshot (which
    /// must be the stream's fromguid, with no change since), or where no such volume exists the
    /// snapshot of another volume whose guid is the fromguid, which the new volume is cloned from (a
    /// stream flagged DRR_FLAG_CLONE only, as for filesystems).
    /// </summary>
    internal StorageResult FindVolumeBase(string volume, string snapshot, ulong fromGuid, bool cloneStream, out string baseSnapshot, out bool asClone)
    {
        baseSnapshot = ""; asClone = false;
        if (_byName.TryGetValue(volume, out var dir))
        {
            if (dir.Type != DatasetType.Volume)
                return new StorageResult(StorageStatus.NotSupported, CannotReceiveIncremental, $"destination '{volume}' is not a volume");
            var checkedTarget = CheckIncrementalTarget(volume, snapshot, fromGuid, force: false, out var baseSnap);
            if (!checkedTarget.IsOk) return checkedTarget;
            baseSnapshot = baseSnap!.Name;
            return StorageResult.Success;
        }
        var origin = cloneStream ? SnapshotByGuid(fromGuid, volume) : null;   // only a stream flagged DRR_FLAG_CLONE makes a clone
        if (origin is null)
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveIncremental, $"destination '{volume}' does not exist");
        if (origin.Dir.Type != DatasetType.Volume)
            return new StorageResult(StorageStatus.NotSupported, CannotReceiveIncremental, $"incremental source {origin.Name} is not a volume");
        string parent = volume.Contains('/') ? volume[..volume.LastIndexOf('/')] : volume;
        if (!volume.Contains('/') || !_byName.TryGetValue(parent, out var p))
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveIncremental, $"destination '{parent}' does not exist");
        if (p.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, CannotReceiveIncremental, "parent is not a filesystem");
        baseSnapshot = origin.Name;
        asClone = true;
        return StorageResult.Success;
    }

    /// <summary>A received snapshot keeps the stream's guid and creation time (Dsl.Send.cs rule 2, dmu_recv_end).</summary>
    internal StorageResult KeepStreamIdentity(string snapshot, ulong guid, ulong creationSeconds)
    {
        if (Find(snapshot, out var snap) != StorageStatus.Ok || !snap.IsSnapshot) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        snap.Guid = guid;
        snap.Creation = (long)Math.Min(creationSeconds, long.MaxValue / 1_000_000_000) * 1_000_000_000;
        Touch(snap.Dir);
        return _pool.CommitTxg(force: true);
    }
}
