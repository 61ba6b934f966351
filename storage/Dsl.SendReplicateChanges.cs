/*
 * What an incremental -R package (zfs send -R -i/-I) does to the copy's tree besides its
 * substreams: the source's renames, promotions and destroys between the two sends replayed, as
 * libzfs's recv_incremental_replication does, matching filesystems by the guids of their snapshots
 * and never by name.
 *
 * Rules
 *   1. The copy's tree under the received top (tofs) is walked parent first. Each filesystem is
 *      matched to the stream's "fss" entry that holds one of its snapshots' guids (fsavl_find).
 *      Then, in libzfs's order:
 *        a. promote: its origin's guid differs from the stream's; when the stream's has none, or
 *           was created after ours (created_before), "promoting <fs>" and zfs promote; either way
 *           its snapshots are looked at again on the next pass.
 *        b. a snapshot whose guid the stream does not list is destroyed with -F ("attempting
 *           destroy"); one the stream names otherwise is renamed ("attempting rename").
 *        c. a filesystem that matches nothing in the stream is destroyed with -F.
 *        d. a filesystem without the stream's fromsnap is left alone ("local fs ... must have been
 *           deleted locally; ignoring").
 *        e. a filesystem whose parent's fromsnap guid differs from the stream's, or whose last
 *           name element does, is renamed under the local filesystem holding that parent guid.
 *      A rename into a name that is taken goes to a temporary name, <tofs>/recv-<txg>-<n> (libzfs
 *      puts its pid where the txg is: here the name must be the same on every run), and is tried
 *      again on the next pass; passes repeat while one made progress and one still needs another,
 *      at most 16 of them.
 *   2. The pass runs twice: before the substreams (so each lands on the filesystem that holds its
 *      base, under the name the stream gives it) and after them (zfs_receive_package does the same,
 *      for filesystems the stream created). The first pass destroys nothing: a filesystem to be
 *      destroyed is renamed out of the way instead and destroyed by the second, as are snapshots;
 *      so every change of the first is a rename or a promote, and a package that then fails
 *      (a substream's base missing, out of space) has them undone in reverse order along with its
 *      substreams (Dsl.SendReplicate.cs rule 2). -n runs neither, as libzfs's dry run.
 *   3. A filesystem is held by reference while the pass runs, so a parent's rename earlier in the
 *      same pass does not leave a stale name behind (libzfs gathers names and relies on the next
 *      pass for that).
 */
using System.Globalization;
using SmartOS.Storage.Send;

namespace SmartOS.Storage;

public sealed partial class DatasetTree
{
    private const int MaxReplicationPasses = 16;

    /// <summary>A change of the first pass (rule 2) and how to undo it.</summary>
    private abstract record ReplicationChange;
    private sealed record RenamedDataset(DslDataset Dataset, string OldName) : ReplicationChange;
    private sealed record PromotedClone(DslDir FormerOrigin) : ReplicationChange;

    /// <summary>Rule 2: the first pass's changes, undone newest first.</summary>
    private void UndoReplicationChanges(List<ReplicationChange> changes)
    {
        for (int i = changes.Count - 1; i >= 0; i--)
        {
            switch (changes[i])
            {
                case RenamedDataset r: Rename(r.Dataset.Name, r.OldName); break;
                case PromotedClone p: Promote(p.FormerOrigin.FullName); break;
            }
        }
        changes.Clear();
    }

    /// <summary>
    /// Rule 1 over the tree at <paramref name="tofs"/>. <paramref name="changes"/> is the first
    /// pass's undo log (null for the second, which may destroy). Returns whether a pass still
    /// needed another when they stopped (libzfs's softerr): receive goes on, as zfs does.
    /// </summary>
    private bool ReplicateChanges(string tofs, string fromsnap, Dictionary<ulong, (NvList Fs, string Snap)> stream, bool force,
        List<ReplicationChange>? changes, List<string> verbose)
    {
        int seq = 0;
        bool needAgain = false;
        for (int pass = 0; pass < MaxReplicationPasses; pass++)
        {
            if (!_byName.TryGetValue(tofs, out var top)) return false;
            needAgain = false;
            bool progress = false;
            var tree = new List<DslDir>();
            var pending = new Stack<DslDir>();
            pending.Push(top);
            while (pending.Count > 0)
            {
                var d = pending.Pop();
                tree.Add(d);
                foreach (var c in d.Children.OrderByDescending(c => c.Name, StringComparer.Ordinal))
                    if (!IsHidden(c)) pending.Push(c);
            }
            var local = new Dictionary<ulong, DslDir>();
            foreach (var d in tree)
                foreach (var s in d.Snapshots) local.TryAdd(s.Guid, d);
            var deleted = new HashSet<ulong>();

            // A rename, or where the name is taken (or none is known) one to a temporary name (recv_rename).
            bool RecvRename(DslDataset ds, string? tryName, int baseLength)
            {
                string name = ds.Name;
                var renamed = new StorageResult(StorageStatus.NoSuchDataset, "", null);
                if (tryName is not null)
                {
                    verbose.Add($"attempting rename {name} to {tryName}");
                    renamed = Rename(name, tryName);
                    if (renamed.IsOk) changes?.Add(new RenamedDataset(ds, name));
                }
                if (!renamed.IsOk && !name[baseLength..].StartsWith("recv-", StringComparison.Ordinal))
                {
                    seq++;
                    string temporary = name[..baseLength] + string.Create(CultureInfo.InvariantCulture, $"recv-{_pool.Txg}-{seq}");
                    verbose.Add($"failed - trying rename {name} to {temporary}");
                    var aside = Rename(name, temporary);
                    if (aside.IsOk) changes?.Add(new RenamedDataset(ds, name));
                    else verbose.Add("failed - will try again on next pass");
                    return false;
                }
                verbose.Add(renamed.IsOk ? "success" : "failed");
                return renamed.IsOk;
            }

            foreach (var dir in tree)
            {
                if (!_byName.TryGetValue(dir.FullName, out var still) || still != dir) continue;   // destroyed in this pass
                string fsName = dir.FullName;
                ulong parentFrom = dir == top ? 0 : dir.Parent!.Snapshots.Find(s => s.SnapName == fromsnap)?.Guid ?? 0;
                ulong origin = dir.Origin?.Guid ?? 0;
                NvList? streamFs = null;
                foreach (var s in dir.Snapshots)
                    if (stream.TryGetValue(s.Guid, out var found))
                    {
                        streamFs = found.Fs;
                        break;
                    }

                // a. promote
                ulong streamOrigin = 0;
                streamFs?.TryGetUInt64("origin", out streamOrigin);
                if (streamFs is not null && origin != streamOrigin)
                {
                    // Only an origin inside the tree (libzfs finds it in the tree's own list): a promote never reaches outside tofs.
                    if (CreatedBefore(streamOrigin, origin, local) == 1 && local.TryGetValue(origin, out var originDir) && originDir == dir.Origin!.Dir)
                    {
                        verbose.Add($"promoting {fsName}");
                        var formerOrigin = dir.Origin!.Dir;
                        if (Promote(fsName).IsOk)
                        {
                            changes?.Add(new PromotedClone(formerOrigin));
                            progress = true;
                        }
                    }
                    needAgain = true;
                    continue;
                }

                // b. snapshots destroyed or renamed
                ulong fromGuid = 0;
                foreach (var snap in dir.Snapshots.ToList())
                {
                    if (!stream.TryGetValue(snap.Guid, out var found))
                    {
                        if (!force || changes is not null) continue;   // rule 2: the second pass destroys
                        verbose.Add($"attempting destroy {snap.Name}");
                        if (Destroy(snap.Name).IsOk) progress = true;
                        else needAgain = true;
                        deleted.Add(snap.Guid);
                        continue;
                    }
                    streamFs = found.Fs;
                    if (snap.SnapName != found.Snap)
                    {
                        if (RecvRename(snap, fsName + "@" + found.Snap, fsName.Length + 1)) progress = true;
                        else needAgain = true;
                    }
                    if (found.Snap == fromsnap) fromGuid = snap.Guid;
                }

                // c. the filesystem destroyed on the source
                if (streamFs is null)
                {
                    if (!force) continue;
                    if (changes is not null)
                    {
                        // Rule 2: out of the way until the second pass.
                        if (!fsName[(tofs.Length + 1)..].StartsWith("recv-", StringComparison.Ordinal))
                        {
                            verbose.Add($"will destroy {fsName} after the substreams");
                            if (RecvRename(dir.Head, null, tofs.Length + 1)) progress = true;
                            else progress |= !_byName.ContainsKey(fsName);
                        }
                    }
                    else if (dir.Children.Count == 0)
                    {
                        verbose.Add($"attempting destroy {fsName}");
                        if (Destroy(fsName, DestroyFlags.Recursive).IsOk) progress = true;
                        else needAgain = true;
                    }
                    else needAgain = true;   // its children first
                    deleted.Add(parentFrom);
                    continue;
                }

                // d. no fromsnap here
                if (fromGuid == 0)
                {
                    verbose.Add($"local fs {fsName} does not have fromsnap ({fromsnap} in stream); must have been deleted locally; ignoring");
                    continue;
                }

                // e. renamed on the source
                if (!streamFs.TryGet<string>("name", out var streamName) || !streamFs.TryGetUInt64("parentfromsnap", out ulong streamParentFrom)) continue;
                bool parentMoved = streamParentFrom != 0 && parentFrom != 0 && streamParentFrom != parentFrom;
                if (parentMoved && deleted.Contains(parentFrom))
                {
                    progress = needAgain = true;
                    break;
                }
                int s1 = fsName.LastIndexOf('/'), s2 = streamName.LastIndexOf('/');
                if (parentMoved || fsName != tofs && s1 >= 0 && s2 >= 0 && fsName[s1..] != streamName[s2..])
                {
                    string? tryName = null;
                    if (local.TryGetValue(streamParentFrom, out var newParent) && s2 >= 0) tryName = newParent.FullName + streamName[s2..];
                    else verbose.Add($"local fs {fsName} new parent not found");
                    if (RecvRename(dir.Head, tryName, tofs.Length + 1)) progress = true;
                    else needAgain = true;
                }
            }
            if (!needAgain || !progress) break;
            verbose.Add("another pass:");
        }
        return needAgain;
    }

    /// <summary>libzfs's created_before: 1 when guid1 is none or was created after guid2, 0 when guid2 is none or they are alike, -1 otherwise.</summary>
    private static int CreatedBefore(ulong guid1, ulong guid2, Dictionary<ulong, DslDir> local)
    {
        if (guid2 == 0) return 0;
        if (guid1 == 0) return 1;
        var first = local.TryGetValue(guid1, out var d1) ? d1.Snapshots.Find(s => s.Guid == guid1) : null;
        var second = local.TryGetValue(guid2, out var d2) ? d2.Snapshots.Find(s => s.Guid == guid2) : null;
        if (first is null || second is null) return -1;
        return first.Txg > second.Txg ? 1 : first.Txg < second.Txg ? -1 : 0;
    }
}
