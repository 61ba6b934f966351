using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace SmartOS.Storage;

/// <summary>What the last scan of a pool was (the "scan:" line of `zpool status`).</summary>
public enum ScanKind : byte
{
    Scrub,
    Resilver,
}

/// <summary>
/// A finished scan: when it started and ended (the caller's clock), the bytes it rewrote (repaired by
/// a scrub, copied by a resilver) and the blocks it could not read.
/// </summary>
public sealed record ScanRecord(ScanKind Kind, long Start, long End, long Bytes, long Errors);

/// <summary>One entry of a pool's command history: the caller's time, whether it is an internal event (-i).</summary>
public readonly record struct HistoryEntry(long Time, bool Internal, string Text);

/// <summary>
/// Pool administration: leaf states, attach, detach, replace and resilver, the label rewrite they
/// need, and the pool's history (see Pool.cs for the terms).
///
/// Rules
///   A1. Only an Online leaf is read or written; an Offline or Unavail one is left alone, and the
///       blocks written meanwhile are found by the resilver that brings it back. A top vdev stays
///       usable while it has every block: a mirror with one leaf online, a raidz1 with one leaf down
///       (DEGRADED). An offline or detach that would leave it without is refused ("no valid replicas").
///   A2. A resilver is a scrub pass that treats one leaf's copies as bad without counting errors on
///       it: each live block is read from the other leaves (a raidz1 column rebuilt from parity) and
///       written to it (ResilveredBytes). Until the pass ends that leaf is written to but never read.
///       Unlike OpenZFS, which resilvers only the txgs a leaf missed (its DTL), the pass copies every
///       live block, and it runs to completion inside the call.
///   A3. A change to the vdev tree (attach, detach, replace, a persistent offline or online) writes
///       the new tree into the config block of label L0 of every writable leaf, with the txg that will
///       commit it; commits that txg, whose uberblock carries the new guid sum; and only then writes
///       it into L1. Import considers every label's tree and takes the newest that a valid uberblock
///       vouches for (its guid sum), so a crash before the commit opens the old tree from L1, and one
///       after it the new tree from L0. A leaf that leaves the pool (detach, replace) has its config
///       blocks cleared afterwards.
///   A4. The history is an object in the meta object set (PoolConfig.HistoryObject, made by the first
///       entry): records of time u64, internal u8, length u16, then the UTF-8 text, appended and
///       committed with the txg.
/// </summary>
public sealed partial class Pool
{
    /// <summary>The last scrub or resilver, or null when none has run since the pool was opened.</summary>
    public ScanRecord? LastScan { get; private set; }

    /// <summary>ONLINE, DEGRADED (a top vdev runs without a leaf), UNAVAIL, or SUSPENDED (rule 8).</summary>
    public string Health
    {
        get
        {
            if (!_suspended.IsOk) return "SUSPENDED";
            string health = "ONLINE";
            foreach (var top in _tops)
            {
                string h = top.Health;
                if (h == "UNAVAIL") return "UNAVAIL";
                if (h == "DEGRADED") health = "DEGRADED";
            }
            return health;
        }
    }

    /// <summary>The leaf named by its path, its file name or its guid (as `zpool status` prints it).</summary>
    public LeafVdev? FindLeaf(string device, out TopVdev? top)
    {
        foreach (var t in _tops)
            foreach (var leaf in t.Leaves)
                if (leaf.Path == device || System.IO.Path.GetFileName(leaf.Path) == device
                    || leaf.Guid.ToString(CultureInfo.InvariantCulture) == device)
                {
                    top = t;
                    return leaf;
                }
        top = null;
        return null;
    }

    /// <summary>Whether the leaves of top other than except hold every block (rule A1).</summary>
    private static bool HasReplicasWithout(TopVdev top, LeafVdev except)
    {
        int usable = 0, down = 0;
        foreach (var leaf in top.Leaves)
        {
            if (leaf == except || leaf.State != LeafState.Online || leaf.Resilvering) down++;
            else usable++;
        }
        return top.Kind switch
        {
            VdevKind.Mirror => usable > 0,
            VdevKind.Raidz1 => down <= 1,
            _ => false,
        };
    }

    /// <summary>`zpool clear`: resets the error counters of one leaf, or of every leaf and the pool's data errors.</summary>
    public void ClearErrors(LeafVdev? only)
    {
        foreach (var top in _tops)
            foreach (var leaf in top.Leaves)
                if (only is null || leaf == only) { leaf.ReadErrors = 0; leaf.WriteErrors = 0; leaf.ChecksumErrors = 0; }
        if (only is null) { DataErrors = 0; Objects.ClearDamaged(); Datasets.ClearDamaged(); }
    }

    /// <summary>`zpool offline [-t]`: stops all I/O to a leaf; kept in the labels unless temporary.</summary>
    public StorageResult Offline(string device, bool temporary)
    {
        string what = $"cannot offline {device}";
        var leaf = FindLeaf(device, out var top);
        if (leaf is null) return new StorageResult(StorageStatus.NoSuchDevice, what);
        if (leaf.State == LeafState.Offline) return StorageResult.Success;
        if (!HasReplicasWithout(top!, leaf)) return new StorageResult(StorageStatus.NoValidReplicas, what);
        var commit = Commit();
        if (!commit.IsOk) return commit;
        leaf.State = LeafState.Offline;
        leaf.TemporarilyOffline = temporary;
        return temporary ? StorageResult.Success : RewriteTree();
    }

    /// <summary>`zpool online`: reopens a leaf that was offline or missing and resilvers it (rule A2).</summary>
    public StorageResult Online(string device, VdevOpener opener)
    {
        string what = $"cannot online {device}";
        var leaf = FindLeaf(device, out var top);
        if (leaf is null) return new StorageResult(StorageStatus.NoSuchDevice, what);
        if (leaf.State == LeafState.Online) return StorageResult.Success;
        if (leaf.State == LeafState.Unavail)
        {
            if (!File.Exists(leaf.Path)) return new StorageResult(StorageStatus.DeviceUnavailable, what);
            long length = new FileInfo(leaf.Path).Length;
            if (length < top!.DataSize + 2L * VdevLabel.LabelSize) return new StorageResult(StorageStatus.DeviceTooSmall, what);
            try { leaf.Io = opener(leaf.Path, writable: true); }
            catch (IOException) { return new StorageResult(StorageStatus.DeviceUnavailable, what); }
            catch (UnauthorizedAccessException) { return new StorageResult(StorageStatus.DeviceUnavailable, what); }
            leaf.Length = length;
        }
        leaf.State = LeafState.Online;
        leaf.TemporarilyOffline = false;
        Resilver(leaf);
        return RewriteTree();
    }

    /// <summary>
    /// `zpool attach`: adds a leaf (an existing file of at least the leaf size) beside existing, making
    /// a disk a mirror, and resilvers it. Only disks and mirrors take an attach.
    /// </summary>
    public StorageResult Attach(string existing, string newPath, ulong newGuid, VdevOpener opener)
    {
        string what = $"cannot attach {newPath} to {existing}";
        var leaf = FindLeaf(existing, out var top);
        if (leaf is null) return new StorageResult(StorageStatus.NoSuchDevice, what);
        if (top!.Kind == VdevKind.Raidz1) return new StorageResult(StorageStatus.AttachUnsupported, what);
        if (top.Leaves.Count >= 16) return new StorageResult(StorageStatus.InvalidConfig, what);
        var added = OpenNewLeaf(top, newPath, newGuid, opener, what, out var result);
        if (added is null) return result;
        var commit = Commit();
        if (!commit.IsOk) { added.Io.Dispose(); return commit; }
        top.LeafList.Add(added);
        top.Kind = VdevKind.Mirror;
        Resilver(added);
        return RewriteTree();
    }

    /// <summary>`zpool detach`: removes a leaf from a mirror (a mirror of two becomes a disk) and clears its labels.</summary>
    public StorageResult Detach(string device)
    {
        string what = $"cannot detach {device}";
        var leaf = FindLeaf(device, out var top);
        if (leaf is null) return new StorageResult(StorageStatus.NoSuchDevice, what);
        if (top!.Kind != VdevKind.Mirror) return new StorageResult(StorageStatus.NotMirror, what);
        if (!HasReplicasWithout(top, leaf)) return new StorageResult(StorageStatus.NoValidReplicas, what);
        var commit = Commit();
        if (!commit.IsOk) return commit;
        top.LeafList.Remove(leaf);
        if (top.LeafList.Count == 1) top.Kind = VdevKind.Disk;
        var rewrite = RewriteTree();
        Retire(leaf);
        return rewrite;
    }

    /// <summary>
    /// `zpool replace`: a new leaf takes an old one's place and is resilvered from the others; the old
    /// one leaves the pool. A single disk is replaced through a mirror of the two (attach, resilver,
    /// detach), as OpenZFS's replacing vdev does.
    /// </summary>
    public StorageResult Replace(string oldDevice, string newPath, ulong newGuid, VdevOpener opener)
    {
        string what = $"cannot replace {oldDevice} with {newPath}";
        var old = FindLeaf(oldDevice, out var top);
        if (old is null) return new StorageResult(StorageStatus.NoSuchDevice, what);
        bool fromOthers = top!.Kind != VdevKind.Disk;
        if (fromOthers && !HasReplicasWithout(top, old)) return new StorageResult(StorageStatus.NoValidReplicas, what);
        if (!fromOthers && old.State != LeafState.Online) return new StorageResult(StorageStatus.NoValidReplicas, what);
        var added = OpenNewLeaf(top, newPath, newGuid, opener, what, out var result);
        if (added is null) return result;
        var commit = Commit();
        if (!commit.IsOk) { added.Io.Dispose(); return commit; }
        if (fromOthers)
        {
            top.LeafList[top.LeafList.IndexOf(old)] = added;
            Resilver(added);
        }
        else
        {
            top.LeafList.Add(added);
            top.Kind = VdevKind.Mirror;
            Resilver(added);
            top.LeafList.Remove(old);
            top.Kind = VdevKind.Disk;
        }
        var rewrite = RewriteTree();
        Retire(old);
        return rewrite;
    }

    private LeafVdev? OpenNewLeaf(TopVdev top, string path, ulong guid, VdevOpener opener, string what, out StorageResult result)
    {
        result = StorageResult.Success;
        if (FindLeaf(path, out _) is not null) { result = new StorageResult(StorageStatus.DeviceInUse, what); return null; }
        var info = new FileInfo(path);
        if (!info.Exists) { result = new StorageResult(StorageStatus.NoSuchObject, what); return null; }
        if (info.Length < top.DataSize + 2L * VdevLabel.LabelSize) { result = new StorageResult(StorageStatus.DeviceTooSmall, what); return null; }
        try { return new LeafVdev(guid, path, opener(path, writable: true), info.Length); }
        catch (IOException e) { result = new StorageResult(StorageStatus.IoError, $"{what}: {e.Message}"); return null; }
    }

    /// <summary>Rebuilds one leaf from the rest of its top vdev (rule A2) and records the scan.</summary>
    private void Resilver(LeafVdev leaf)
    {
        long start = _clock(), before = leaf.ResilveredBytes;
        leaf.Resilvering = true;
        ScrubResult walk;
        try { walk = ScrubAll(); }
        finally { leaf.Resilvering = false; }
        LastScan = new ScanRecord(ScanKind.Resilver, start, _clock(), leaf.ResilveredBytes - before, walk.Errors);
    }

    /// <summary>Writes the current vdev tree into every writable leaf's labels and commits it (rule A3).</summary>
    private StorageResult RewriteTree()
    {
        var tops = new List<TopConfig>();
        foreach (var top in _tops)
        {
            var leaves = new List<LeafConfig>();
            foreach (var leaf in top.Leaves)
                leaves.Add(new LeafConfig(leaf.Guid, System.IO.Path.GetFileName(leaf.Path), leaf.State == LeafState.Offline && !leaf.TemporarilyOffline));
            tops.Add(new TopConfig(top.Kind, top.Guid, top.DataSize, leaves));
        }
        _config = _config with { Txg = Txg + 1, Tops = tops };
        try { WriteLabels(_config, 0); }
        catch (IOException e) { return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': label rewrite failed: {e.Message}")); }
        if (!FlushAll()) return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': flush failed on every vdev"));
        var commit = CommitTxg(force: true);
        if (!commit.IsOk) return commit;
        // L1 keeps the old tree until the txg that vouches for the new one is durable (rule A3).
        try { WriteLabels(_config, 1); }
        catch (IOException e) { return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': label rewrite failed: {e.Message}")); }
        return FlushAll() ? StorageResult.Success : Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': flush failed on every vdev"));
    }

    /// <summary>Writes config (with each leaf's own guid) into both labels of every writable leaf.</summary>
    private void WriteLabels(PoolConfig config)
    {
        WriteLabels(config, 0);
        WriteLabels(config, 1);
    }

    /// <summary>Writes config (with each leaf's own guid) into label L0 or L1 of every writable leaf.</summary>
    private void WriteLabels(PoolConfig config, int label)
    {
        var block = new byte[VdevLabel.ConfigSize];
        foreach (var top in _tops)
            foreach (var leaf in top.Leaves)
            {
                if (!leaf.Writable) continue;
                VdevLabel.EncodeConfig(config with { LeafGuid = leaf.Guid }, block);
                LeafWrite(leaf, VdevLabel.LabelOffset(label, leaf.Length), block);
            }
    }

    /// <summary>Clears the config blocks of every leaf (a create that failed on files the user gave).</summary>
    private void ClearLabels()
    {
        foreach (var top in _tops) foreach (var leaf in top.Leaves) ClearLabels(leaf);
    }

    private static void ClearLabels(LeafVdev leaf)
    {
        if (!leaf.Writable) return;
        var zeros = new byte[VdevLabel.ConfigSize];
        try
        {
            leaf.Io.Write(VdevLabel.LabelOffset(0, leaf.Length), zeros);
            leaf.Io.Write(VdevLabel.LabelOffset(1, leaf.Length), zeros);
            leaf.Io.Flush();
        }
        catch (IOException)
        {
            leaf.WriteErrors++;
        }
    }

    /// <summary>A leaf that left the pool: its labels cleared (so no import finds it), its file closed.</summary>
    private static void Retire(LeafVdev leaf)
    {
        ClearLabels(leaf);
        leaf.Io.Dispose();
    }

    // ---- history (rule A4) ----

    /// <summary>
    /// Appends one entry to the history; it is durable with the next commit. The first entry creates
    /// the history object and names it in the labels (a pool made by the engine alone has none).
    /// </summary>
    public StorageResult AppendHistory(long time, bool isInternal, string text)
    {
        if (_config.HistoryObject == 0)
        {
            var created = Objects.Create(out long id);
            if (!created.IsOk) return created;
            _config = _config with { HistoryObject = id };
            var rewrite = RewriteTree();
            if (!rewrite.IsOk) return rewrite;
        }
        var result = Objects.GetLength(_config.HistoryObject, out long length);
        if (!result.IsOk) return result;
        int bytes = Encoding.UTF8.GetByteCount(text);
        if (bytes > ushort.MaxValue) return new StorageResult(StorageStatus.InvalidArgument, $"pool '{Name}': history entry too long");
        var record = new byte[11 + bytes];
        BinaryPrimitives.WriteInt64LittleEndian(record, time);
        record[8] = isInternal ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(9), (ushort)bytes);
        Encoding.UTF8.GetBytes(text, record.AsSpan(11));
        return Objects.Write(_config.HistoryObject, length, record);
    }

    /// <summary>Every history entry, oldest first; a torn last record (it cannot be, rule 5) ends the list.</summary>
    public StorageResult ReadHistory(out List<HistoryEntry> entries)
    {
        entries = [];
        if (_config.HistoryObject == 0) return StorageResult.Success;
        var result = Objects.GetLength(_config.HistoryObject, out long length);
        if (!result.IsOk) return result;
        var all = new byte[length];
        result = Objects.Read(_config.HistoryObject, 0, all, out int read);
        if (!result.IsOk) return result;
        int at = 0;
        while (at + 11 <= read)
        {
            long time = BinaryPrimitives.ReadInt64LittleEndian(all.AsSpan(at));
            bool isInternal = all[at + 8] == 1;
            int n = BinaryPrimitives.ReadUInt16LittleEndian(all.AsSpan(at + 9));
            if (at + 11 + n > read) break;
            entries.Add(new HistoryEntry(time, isInternal, Encoding.UTF8.GetString(all, at + 11, n)));
            at += 11 + n;
        }
        return StorageResult.Success;
    }
}
