namespace SmartOS.Storage;

/// <summary>
/// A clone's changes against its origin as an incremental stream, and such a stream received as a new
/// clone (ZFS's DRR_FLAG_CLONE path): `zfs send -i pool/image@final pool/vm@snap` of a clone of
/// image@final (its BEGIN flagged DRR_FLAG_CLONE, as dmu_send flags a send from the origin), and
/// `zfs receive pool/new` of that stream where no pool/new exists but a snapshot with the stream's
/// fromguid does, which is how an incremental image (imgadm create -i) is made and
/// installed over its origin image. Rule 1 of Dsl.Send.cs holds: the clone is made only after the
/// whole stream was read, applied to the origin's image and decoded, and destroyed again if writing
/// it fails.
/// </summary>
public sealed partial class DatasetTree
{
    /// <summary>Whether <paramref name="from"/> is the origin of the filesystem <paramref name="to"/> is a snapshot of.</summary>
    private static bool IsCloneOrigin(DslDataset from, DslDataset to) => to.Dir.Origin == from;

    /// <summary>The snapshot anywhere in the pool whose guid an incremental stream names as its base.</summary>
    private DslDataset? SnapshotByGuid(ulong guid)
    {
        foreach (var dir in _byName.Values)
            foreach (var snap in dir.Snapshots)
                if (snap.Guid == guid) return snap;
        return null;
    }

    /// <summary>An incremental stream for a filesystem that does not exist: its base must be a snapshot
    /// elsewhere in the pool, which the new filesystem is cloned from (and a parent to hold it).</summary>
    private StorageResult CheckCloneTarget(string fsName, ulong fromGuid, out DslDataset? origin)
    {
        origin = SnapshotByGuid(fromGuid);
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
}
