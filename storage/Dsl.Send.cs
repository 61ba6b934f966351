/*
 * zfs send, zfs receive and zfs diff over datasets: the dataset layer (Dsl.cs), the file layer
 * (ZplFileSystem.Streams.cs) and the stream codec (Send/) joined.
 *
 * Data path
 *   send     snapshot --ZplFileSystem.ReadTree--> FileTreeImage --ZplCodec.Encode--> ObjectSetImage
 *            --SendStream.SendObjects / SendIncremental--> stream (zfs-fuse's pool-version-23 format).
 *   receive  stream --SendStreamReader + ObjectSetImage.Apply (onto the base's image)--> image
 *            --ZplCodec.TryDecode--> FileTreeImage --ZplFileSystem.Restore--> dataset, then snapshot.
 *   diff     two trees (snapshots or the live head, read-only) --FileTreeDiff--> zfs diff lines.
 *
 * Rules
 *   1. Nothing half-received (ZFS receives into a hidden %recv clone and swaps it in at the end):
 *      here the whole stream is read, its checksum checked, its objects applied to an in-memory
 *      image of the base and decoded to a tree before the pool is touched. Only then is the target
 *      created, rolled back (-F) or written, and a failure after that (out of space) destroys the
 *      new dataset or rolls the target back to its base. A stream cut short, altered or for another
 *      base changes nothing.
 *   2. A snapshot's guid is the stream's identity of it: a snapshot taken here has a guid derived
 *      from the pool's and its id; a received one keeps the stream's toguid (and creation time, as
 *      dmu_recv_end does), so an incremental stream's fromguid finds its base on either side
 *      (zfs-fuse keeps ours as we keep its).
 *   3. Object numbers follow the fixed map of ZplFileSystem.Streams.cs (inode i is object i + 1),
 *      so the image of a base rebuilt here names every file as the sender's did. The base image is
 *      re-encoded (ZplCodec), not stored: a file's blocks and a micro-ZAP directory (rewritten whole
 *      when it changes) match the sender's. A fat-ZAP directory (over ~2000 entries, or long names)
 *      that a foreign sender changed in place does not: its rewritten header and leaves are merged
 *      with the base's names by hash (Zap.TryMergeIncremental); a ZAP that still does not add up
 *      (Zap.TryDecode checks pointers, prefixes, hashes and the entry count) is an invalid stream.
 *   4. Errors are zfs's words: "cannot receive new filesystem stream: destination 'tank/x' exists\n
 *      must specify -F to overwrite it", "cannot receive incremental stream: most recent snapshot of
 *      tank/x does not\nmatch incremental source", "... invalid stream (checksum mismatch)",
 *      "cannot receive: invalid stream (bad magic number)", "cannot receive: failed to read from
 *      stream", "... invalid backup stream".
 *
 * -I (intermediates) travels as the compound stream libzfs writes for it without -R: an outer
 * BEGIN with no nvlist, then one incremental substream per snapshot; each substream received is
 * whole (rule 1), as zfs receive commits each snapshot of a package in turn.
 *
 * A clone's changes against its origin travel as an incremental stream flagged DRR_FLAG_CLONE,
 * received where no target exists as a new clone of the snapshot whose guid is the stream's
 * fromguid (Dsl.SendClone.cs). Volumes travel as Send/ZvolStream.cs writes them, full or
 * incremental, through the checks of Dsl.SendClone.cs.
 *
 -R replication packages (a compound stream whose BEGIN carries a packed XDR nvlist of the
 * filesystems) are written and received by Dsl.SendReplicate.cs, the source's renames, promotes and
 * destroys between two of them replayed by Dsl.SendReplicateChanges.cs; -s resumable receive, send
 * -t and receive -A by Dsl.SendResume.cs (OpenZFS's design over these records: a cut full stream's
 * records kept in the new filesystem, a cut incremental one's in a hidden clone fs/%recv of its
 * base, with OpenZFS's receive_resume_token).
 *
 * Not done: streams held in memory whole (a few hundred MiB is fine).
 */
using System.Text;
using SmartOS.Storage.Send;

namespace SmartOS.Storage;

/// <summary>`zfs send` options: -i (From, an earlier snapshot, "@snap" or "fs@snap"), -I (Intermediates), -R (Replicate, Dsl.SendReplicate.cs).</summary>
public sealed record SendOptions
{
    public string? From { get; init; }
    public bool Intermediates { get; init; }
    public bool Replicate { get; init; }
}

/// <summary>`zfs receive` options: -F, -d, -e, -n, -v, -s (Resumable, Dsl.SendResume.cs).</summary>
public sealed record ReceiveOptions
{
    public bool Force { get; init; }
    public bool DiscardFirst { get; init; }
    public bool KeepLast { get; init; }
    public bool DryRun { get; init; }
    public bool Resumable { get; init; }
}

/// <summary>What a receive did: the snapshot made (or that -n would make) and zfs receive -v's lines.</summary>
public sealed record ReceiveSummary(string Snapshot, bool Incremental, long Bytes, IReadOnlyList<string> Verbose)
{
    /// <summary>Every filesystem the stream wrote (a -R package's whole tree; else the one).</summary>
    public IReadOnlyList<string> Filesystems { get; init; } = [];
    /// <summary>Properties of a -R package that were not set, in zfs receive's words (Dsl.SendReplicate.cs rule 4).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

public sealed partial class DatasetTree
{
    private const string CannotReceive = "cannot receive";
    private const string CannotReceiveFull = "cannot receive new filesystem stream";
    private const string CannotReceiveIncremental = "cannot receive incremental stream";

    /// <summary>A snapshot's guid (rule 2; ZFS's `guid` property of a snapshot).</summary>
    public StorageResult SnapshotGuid(string snapshot, out ulong guid)
    {
        guid = 0;
        if (!snapshot.Contains('@') || Find(snapshot, out var ds) != StorageStatus.Ok)
            return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        guid = ds.Guid;
        return StorageResult.Success;
    }

    // ---- send ----

    /// <summary>`zfs send [-i from] snapshot`: writes the stream of a filesystem snapshot to output.</summary>
    public StorageResult Send(string snapshot, SendOptions options, Stream output)
    {
        string what = $"cannot send '{snapshot}'";
        if (options.Intermediates && options.From is null) return new StorageResult(StorageStatus.InvalidArgument, what, "-I needs an incremental source");
        if (!snapshot.Contains('@')) return new StorageResult(StorageStatus.NotSupported, what, "operation only applies to snapshots");
        if (Find(snapshot, out var to) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", snapshot));
        if (to.Dir.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, what, "only filesystems can be sent");
        DslDataset? from = null;
        if (options.From is string fromName)
        {
            if (fromName.StartsWith('@')) fromName = to.Dir.FullName + fromName;
            if (Find(fromName, out from) != StorageStatus.Ok || !from.IsSnapshot)
                return new StorageResult(StorageStatus.NoSuchDataset, what, $"incremental source ({fromName}) does not exist");
            if (from.Dir != to.Dir && (options.Intermediates || !IsCloneOrigin(from, to)))
                return new StorageResult(StorageStatus.InvalidArgument, what, "incremental source must be in same filesystem");
            if (from.Txg >= to.Txg) return new StorageResult(StorageStatus.InvalidArgument, what, "incremental source must be an earlier snapshot");
        }
        if (options.Replicate) return SendReplicated(to, from, options.Intermediates, output, what);
        ulong creation = (ulong)(to.Creation / 1_000_000_000);
        if (from is null)
        {
            var read = ReadImage(to, out var toImage);
            if (!read.IsOk) return read with { Detail = what };
            SendStream.SendObjects(toImage!, to.Name, to.Guid, creation, output);
            return StorageResult.Success;
        }
        if (!options.Intermediates)
        {
            var read = ReadImages(from, to, out var fromImage, out var toImage);
            if (!read.IsOk) return read with { Detail = what };
            SendStream.SendIncremental(fromImage!, toImage!, from.Guid, to.Name, to.Guid, creation, output,
                IsCloneOrigin(from, to) ? SendFormat.FlagClone : 0);
            return StorageResult.Success;
        }
        return SendIntermediates(from, to, output, what);
    }

    /// <summary>
    /// -I: what libzfs writes (seen in zfs-fuse's streams): a compound BEGIN with no nvlist, its END,
    /// one incremental substream per snapshot after from up to to, then a bare END (zero checksum).
    /// Every snapshot is read before anything is written, so a failure writes nothing.
    /// </summary>
    private StorageResult SendIntermediates(DslDataset from, DslDataset to, Stream output, string what)
    {
        var dir = to.Dir;
        var chain = new List<(DslDataset From, DslDataset To, ObjectSetImage FromImage, ObjectSetImage ToImage)>();
        for (int i = dir.Snapshots.IndexOf(from) + 1; i <= dir.Snapshots.IndexOf(to); i++)
        {
            var read = ReadImages(dir.Snapshots[i - 1], dir.Snapshots[i], out var fromImage, out var toImage);
            if (!read.IsOk) return read with { Detail = what };
            chain.Add((dir.Snapshots[i - 1], dir.Snapshots[i], fromImage!, toImage!));
        }
        var header = new SendStreamWriter(output);
        header.Write(new BeginRecord(SendFormat.HeaderTypeCompound, 0, 0, 0, 0, 0, to.Name, []));
        header.WriteEnd(0);
        foreach (var (prev, snap, fromImage, toImage) in chain)
            SendStream.SendIncremental(fromImage, toImage, prev.Guid, snap.Name, snap.Guid, (ulong)(snap.Creation / 1_000_000_000), output);
        new SendStreamWriter(output).WriteEnd(0);
        return StorageResult.Success;
    }

    /// <summary>A snapshot's files as the ZPL objects a stream carries (rule 3).</summary>
    private StorageResult ReadImage(DslDataset ds, out ObjectSetImage? image)
    {
        image = null;
        var read = ReadTree(ds, out var tree);
        if (!read.IsOk) return read;
        return Encode(tree!, out image);
    }

    private StorageResult ReadTree(DslDataset ds, out FileTreeImage? tree, Func<ulong, bool>? loadData = null)
    {
        tree = null;
        var opened = ObjectsOf(ds, out var set);
        if (!opened.IsOk) return opened;
        opened = ZplFileSystem.Open(set, new FileSystemOptions { Clock = _pool.Now, ReadOnly = true, Atime = false }, out var fs);
        return opened.IsOk ? fs!.ReadTree(out tree, loadData) : opened;
    }

    /// <summary>
    /// The images of two snapshots for an incremental stream, reading the bytes only of the files
    /// whose znode differs (any write changes mtime and ctime): the others encode alike in both
    /// and send nothing, so an incremental send costs the metadata and what changed.
    /// </summary>
    private StorageResult ReadImages(DslDataset from, DslDataset to, out ObjectSetImage? fromImage, out ObjectSetImage? toImage)
    {
        fromImage = toImage = null;
        FileTreeImage? toMeta = null, toTree = null;
        var read = ReadTree(from, out var fromMeta, _ => false);
        if (read.IsOk) read = ReadTree(to, out toMeta, _ => false);
        if (!read.IsOk) return read;
        var before = new Dictionary<ulong, FileNode>();
        foreach (var (_, n) in fromMeta!.Walk()) before.TryAdd(n.Id, n);
        var changed = new HashSet<ulong>();
        foreach (var (_, n) in toMeta!.Walk())
            if (!before.TryGetValue(n.Id, out var was) || !SameZnode(was, n)) changed.Add(n.Id);
        read = ReadTree(from, out var fromTree, changed.Contains);
        if (read.IsOk) read = ReadTree(to, out toTree, changed.Contains);
        if (!read.IsOk) return read;
        var encoded = Encode(fromTree!, out fromImage);
        return encoded.IsOk ? Encode(toTree!, out toImage) : encoded;
    }

    /// <summary>ZplCodec.Encode, whose one refusal (a directory too large for a fat ZAP with an
    /// embedded pointer table, over some 100,000 entries) becomes a result.</summary>
    private static StorageResult Encode(FileTreeImage tree, out ObjectSetImage? image)
    {
        image = null;
        try
        {
            image = ZplCodec.Encode(tree);
            return StorageResult.Success;
        }
        catch (ArgumentException e)
        {
            return new StorageResult(StorageStatus.NotSupported, "", e.Message);
        }
    }

    private static bool SameZnode(FileNode a, FileNode b) =>
        a.Kind == b.Kind && a.Generation == b.Generation && a.Size == b.Size && a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid
        && a.ModifyTime == b.ModifyTime && a.ChangeTime == b.ChangeTime && a.AccessTime == b.AccessTime && a.CreateTime == b.CreateTime;

    // ---- receive ----

    /// <summary>
    /// `zfs receive [-F] [-n] [-v] [-d|-e] target`: reads one full or incremental stream from input into
    /// target (a filesystem, or filesystem@snapshot to name the snapshot). Rule 1: a refusal changes nothing.
    /// </summary>
    public StorageResult Receive(Stream input, string target, ReceiveOptions options, out ReceiveSummary? summary)
    {
        summary = null;
        if ((options.DiscardFirst || options.KeepLast) && target.Contains('@'))
            return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "cannot specify snapshot name with -d or -e");
        if ((options.DiscardFirst || options.KeepLast) && !Exists(target))
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceive, $"specified fs ({target}) does not exist");
        var reader = new SendStreamReader(input);
        if (!reader.TryRead(out var first)) return StreamError(reader);
        var begin = (BeginRecord)first;
        var verbose = new List<string>();
        if ((begin.FeatureFlags & SendFormat.FeatureResuming) != 0)
        {
            // A stream made by zfs send -t (Dsl.SendResume.cs).
            var resumed = ReceiveResumed(reader, begin, target, options, verbose, out string? made);
            if (resumed.IsOk) summary = new ReceiveSummary(made!, false, reader.Position, verbose) { Filesystems = [made![..made!.IndexOf('@')]] };
            return resumed;
        }
        if (begin.HeaderType == SendFormat.HeaderTypeSubstream)
        {
            var one = ReceiveOne(reader, begin, target, options, verbose, out string? received);
            if (one.IsOk) summary = new ReceiveSummary(received!, begin.IsIncremental, reader.Position, verbose) { Filesystems = [received![..received!.IndexOf('@')]] };
            return one;
        }
        // A compound stream (zfs_receive_package): -R's carries the datasets' nvlist (Dsl.SendReplicate.cs);
        // -I's has none, and is its BEGIN, END, an incremental substream per snapshot and a bare END.
        if (begin.Payload.Length > 0) return ReceivePackage(reader, begin, target, options, verbose, out summary);
        if (target.Contains('@'))
            return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "cannot specify snapshot name for multi-snapshot stream");
        if (!reader.TryRead(out var end) || end is not EndRecord) return StreamError(reader);
        string? last = null;
        bool incremental = true;
        for (int i = 0; ; i++)
        {
            if (!reader.TryRead(out var next)) return StreamError(reader);
            if (next is EndRecord) break;
            if (next is not BeginRecord sub) return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid backup stream");
            // -n: only the first substream can be held against the target; the rest are read and checked.
            var one = options.DryRun && i > 0 ? SkipSubstream(reader, sub, verbose) : ReceiveOne(reader, sub, target, options, verbose, out last);
            if (!one.IsOk) return one;
            incremental &= sub.IsIncremental;
        }
        summary = new ReceiveSummary(last ?? begin.ToName, incremental, reader.Position, verbose)
        {
            Filesystems = last is null ? [] : [last[..last.IndexOf('@')]],
        };
        return StorageResult.Success;
    }

    /// <summary>
    /// Rule 3: a directory whose fat ZAP the stream rewrote in part, over a base laid out here
    /// differently (its blocks are not the sender's), is rebuilt from the stream's header and leaves
    /// and the base's names (Zap.TryMergeIncremental). A ZAP laid out as the sender's (sent from here,
    /// or received whole) is left as the records made it.
    /// </summary>
    private static StorageResult MergeForeignZaps(ObjectSetImage baseImage, ObjectSetImage image, Dictionary<ulong, HashSet<ulong>> written, string action)
    {
        foreach (var (id, blocks) in written)
        {
            if (!baseImage.Objects.TryGetValue(id, out var was) || !image.Objects.TryGetValue(id, out var now)) continue;
            if (now.Type != DmuObjectType.DirectoryContents || was.Type != now.Type || was.BlockSize != now.BlockSize) continue;
            if (now.BlockSize != Zap.FatBlockSize || Zap.TryDecode(now, out _, out _)) continue;
            if (!Zap.TryMergeIncremental(now, was, blocks, new ZplCodec.EncodeOptions().ZapSalt, out string? problem))
                return new StorageResult(StorageStatus.InvalidArgument, action, $"invalid backup stream (directory {id}: {problem})");
        }
        return StorageResult.Success;
    }

    private static StorageResult SkipSubstream(SendStreamReader reader, BeginRecord begin, List<string> verbose)
    {
        verbose.Add($"would receive {(begin.IsIncremental ? "incremental" : "full")} stream of {begin.ToName}");
        while (true)
        {
            if (!reader.TryRead(out var record)) return StreamError(reader);
            if (record is EndRecord) return StorageResult.Success;
        }
    }

    /// <summary>One substream (BEGIN already read) into the target; rule 1 holds for it.</summary>
    private StorageResult ReceiveOne(SendStreamReader reader, BeginRecord begin, string target, ReceiveOptions options, List<string> verbose, out string? snapshot,
        List<SendRecord>? preread = null)
    {
        snapshot = null;
        string action = begin.IsIncremental ? CannotReceiveIncremental : CannotReceiveFull;
        if (begin.ObjsetType != SendFormat.ObjsetTypeZfs)
            return new StorageResult(StorageStatus.NotSupported, action, "only filesystem streams are supported");
        int at = begin.ToName.IndexOf('@');
        if (at <= 0) return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid stream (bad snapshot name)");
        var named = TargetName(target, begin.ToName, options, out string fsName, out string snapName);
        if (!named.IsOk) return named;
        string name = fsName + "@" + snapName;
        bool asClone = begin.IsIncremental && (begin.Flags & SendFormat.FlagClone) != 0 && !_byName.ContainsKey(fsName);   // Dsl.SendClone.cs
        var checkedTarget = asClone ? CheckCloneTarget(fsName, begin.FromGuid, out var baseSnap)
            : begin.IsIncremental ? CheckIncrementalTarget(fsName, name, begin.FromGuid, options.Force, out baseSnap)
            : CheckFullTarget(fsName, name, options.Force, out baseSnap);
        if (!checkedTarget.IsOk) return checkedTarget;

        // Rule 1: the whole stream, applied to the base's image and decoded, before any change. The
        // base's bytes are read only for the objects the stream names (ZplFileSystem.Restore).
        var records = preread ?? [];
        var touched = new HashSet<ulong>();
        for (int i = 0; ; i++)
        {
            SendRecord? record;
            if (preread is not null)
            {
                if (i == preread.Count) break;
                record = preread[i];
            }
            else
            {
                if (!reader.TryRead(out record))
                    return options.Resumable ? KeepPartial(reader, begin, fsName, records, existing: baseSnap is not null, baseSnap) : StreamError(reader);
                if (record is EndRecord) break;
                records.Add(record);
            }
            switch (record)
            {
                case ObjectRecord o: touched.Add(o.Object); break;
                case WriteRecord w: touched.Add(w.Object); break;
                case FreeRecord f: touched.Add(f.Object); break;
            }
        }
        FileTreeImage? baseTree = null;
        ObjectSetImage? baseEncoded = null;
        if (begin.IsIncremental)
        {
            var read = ReadTree(baseSnap!, out baseTree, touched.Contains);
            if (read.IsOk) read = Encode(baseTree!, out baseEncoded);
            if (!read.IsOk) return read with { Detail = action };
        }
        ObjectSetImage image = baseEncoded ?? new ObjectSetImage();
        var baseImage = begin.IsIncremental ? image.Clone() : null;
        var written = new Dictionary<ulong, HashSet<ulong>>();
        foreach (var record in records)
        {
            if (!image.Apply(record, out string? problem))
                return new StorageResult(StorageStatus.InvalidArgument, action, $"invalid backup stream ({problem})");
            if (record is WriteRecord w)
            {
                if (!written.TryGetValue(w.Object, out var blocks)) written[w.Object] = blocks = [];
                blocks.Add(w.Offset / image.Objects[w.Object].BlockSize);
            }
        }
        records.Clear();
        if (baseImage is not null)
        {
            var merged = MergeForeignZaps(baseImage, image, written, action);
            if (!merged.IsOk) return merged;
        }
        if (!ZplCodec.TryDecode(image, out var tree, out string? bad))
            return new StorageResult(StorageStatus.InvalidArgument, action, $"invalid backup stream ({bad})");
        if (ZplFileSystem.CheckRestorable(tree!) is string unsupported)
            return new StorageResult(StorageStatus.NotSupported, action, unsupported);
        verbose.Add($"{(options.DryRun ? "would receive" : "receiving")} {(begin.IsIncremental ? "incremental" : "full")} stream of {begin.ToName} into {name}");
        if (options.DryRun)
        {
            snapshot = name;
            return StorageResult.Success;
        }
        var applied = asClone ? ApplyAsClone(fsName, baseSnap!, baseTree!, tree!, id => !touched.Contains(id), snapName, begin, action)
            : begin.IsIncremental
            ? ApplyIncremental(fsName, baseSnap!, baseTree!, tree!, id => !touched.Contains(id), snapName, begin, action)
            : ApplyFull(fsName, tree!, snapName, begin, action);
        if (applied.IsOk) snapshot = name;
        return applied;
    }

    private static StorageResult StreamError(SendStreamReader reader)
    {
        var error = reader.Error ?? new ReceiveError(ReceiveErrorKind.ReadFailed, "cannot receive: failed to read from stream");
        int colon = error.Message.IndexOf(": ", StringComparison.Ordinal);
        var status = error.Kind == ReceiveErrorKind.ChecksumMismatch ? StorageStatus.ChecksumError
            : error.Kind == ReceiveErrorKind.UnsupportedFeature ? StorageStatus.NotSupported : StorageStatus.InvalidArgument;
        return new StorageResult(status, error.Message[..colon], error.Message[(colon + 2)..]);
    }

    /// <summary>The filesystem and snapshot a stream lands in (libzfs's zfs_receive_one naming, -d and -e).</summary>
    private StorageResult TargetName(string target, string toName, ReceiveOptions options, out string fsName, out string snapName)
    {
        int at = toName.IndexOf('@');
        string sentFs = toName[..at];
        snapName = toName[(at + 1)..];
        fsName = target;
        if (target.Contains('@'))
        {
            fsName = target[..target.IndexOf('@')];
            snapName = target[(target.IndexOf('@') + 1)..];
        }
        else if (options.DiscardFirst)
        {
            int slash = sentFs.IndexOf('/');
            if (slash > 0) fsName = target + sentFs[slash..];
        }
        else if (options.KeepLast) fsName = target + sentFs[sentFs.LastIndexOf('/')..];
        string? bad = DatasetName.Check(fsName + "@" + snapName, snapshot: true);
        return bad is null ? StorageResult.Success : new StorageResult(StorageStatus.InvalidArgument, Cannot("receive", fsName + "@" + snapName), bad);
    }

    private StorageResult CheckFullTarget(string fsName, string snapshot, bool force, out DslDataset? existing)
    {
        existing = null;
        if (fsName == _replacingPartial) return StorageResult.Success;
        if (HasPartialReceive(fsName))
            return new StorageResult(StorageStatus.DatasetExists, CannotReceiveFull, $"destination {fsName} contains partially-complete state from \"zfs receive -s\".");
        if (_byName.TryGetValue(fsName, out var dir))
        {
            if (!force) return new StorageResult(StorageStatus.DatasetExists, CannotReceiveFull, $"destination '{fsName}' exists\nmust specify -F to overwrite it");
            if (dir.Snapshots.Count > 0)
                return new StorageResult(StorageStatus.DatasetExists, CannotReceiveFull, $"destination has snapshots (eg. {dir.Snapshots[0].Name})\nmust destroy them to overwrite it");
            if (dir.Origin is not null)
                return new StorageResult(StorageStatus.DatasetExists, CannotReceiveFull, $"destination '{fsName}' is a clone\nmust destroy it to overwrite it");
            if (dir.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, CannotReceiveFull, $"destination '{fsName}' is not a filesystem");
            if (dir.Head.Holds > 0) return new StorageResult(StorageStatus.DatasetBusy, Cannot("receive", fsName));
            existing = dir.Head;
            return StorageResult.Success;
        }
        string parent = fsName.Contains('/') ? fsName[..fsName.LastIndexOf('/')] : fsName;
        if (!_byName.TryGetValue(parent, out var p) || !fsName.Contains('/'))
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveFull, $"destination '{parent}' does not exist");
        if (p.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, CannotReceiveFull, "parent is not a filesystem");
        return StorageResult.Success;
    }

    private StorageResult CheckIncrementalTarget(string fsName, string snapshot, ulong fromGuid, bool force, out DslDataset? baseSnap)
    {
        baseSnap = null;
        if (!_byName.TryGetValue(fsName, out var dir))
            return new StorageResult(StorageStatus.NoSuchDataset, CannotReceiveIncremental, $"destination '{fsName}' does not exist");
        if (fsName != _replacingPartial && HasPartialReceive(fsName))   // Dsl.SendResume.cs rule 5
            return new StorageResult(StorageStatus.DatasetBusy, CannotReceiveIncremental, $"destination {fsName} contains partially-complete state from \"zfs receive -s\".");
        var mismatch = new StorageResult(StorageStatus.InvalidArgument, CannotReceiveIncremental, $"most recent snapshot of {fsName} does not\nmatch incremental source");
        foreach (var s in dir.Snapshots) if (s.Guid == fromGuid) baseSnap = s;
        if (baseSnap is null) return mismatch;
        bool newest = dir.Snapshots[^1] == baseSnap;
        if (!newest && !force) return mismatch;
        if (newest && !force && !dir.Head.Root.Equals(baseSnap.Root) || newest && !force && dir.Head.Objects is { IsDirty: true })
            return new StorageResult(StorageStatus.DatasetBusy, CannotReceiveIncremental, $"destination {fsName} has been modified\nsince most recent snapshot");
        int at = snapshot.IndexOf('@');
        foreach (var s in dir.Snapshots)
            if (s.SnapName == snapshot[(at + 1)..] && (newest || dir.Snapshots.IndexOf(s) <= dir.Snapshots.IndexOf(baseSnap)))
                return new StorageResult(StorageStatus.DatasetExists, $"cannot restore to {snapshot}", "destination already exists");
        if (dir.Head.Holds > 0 && (force || !newest)) return new StorageResult(StorageStatus.DatasetBusy, Cannot("rollback", fsName));
        return StorageResult.Success;
    }

    /// <summary>Rule 1 for a full stream: a new filesystem (destroyed again if writing it fails), or with -F the existing one's contents replaced.</summary>
    private StorageResult ApplyFull(string fsName, FileTreeImage tree, string snapName, BeginRecord begin, string action)
    {
        if (fsName == _replacingPartial) Destroy(fsName, DestroyFlags.Recursive);   // Dsl.SendResume.cs rule 3
        bool created = !_byName.ContainsKey(fsName);
        FileTreeImage? before = null;
        if (created)
        {
            var made = Create(fsName, DatasetType.Filesystem);
            if (!made.IsOk) return made with { Detail = action };
        }
        else
        {
            var read = ReadTree(_byName[fsName].Head, out before);
            if (!read.IsOk) return read with { Detail = action };
        }
        var written = WriteTreeAndSnapshot(fsName, tree, before, snapName, begin);
        if (written.IsOk) return written;
        if (created) Destroy(fsName, DestroyFlags.Recursive);
        return written with { Detail = action };
    }

    /// <summary>Rule 1 for an incremental stream: -F's rollback to the base, then the changes; a failure rolls back to the base.</summary>
    private StorageResult ApplyIncremental(string fsName, DslDataset baseSnap, FileTreeImage baseTree, FileTreeImage tree, Func<ulong, bool> untouched,
        string snapName, BeginRecord begin, string action)
    {
        var dir = _byName[fsName];
        if (dir.Snapshots[^1] != baseSnap || !dir.Head.Root.Equals(baseSnap.Root) || dir.Head.Objects is { IsDirty: true })
        {
            var rolled = Rollback(baseSnap.Name, DestroyFlags.Recursive);
            if (!rolled.IsOk) return rolled;
        }
        var written = WriteTreeAndSnapshot(fsName, tree, baseTree, snapName, begin, untouched);
        if (written.IsOk) return written;
        Rollback(baseSnap.Name, DestroyFlags.Recursive);
        return written with { Detail = action };
    }

    private StorageResult WriteTreeAndSnapshot(string fsName, FileTreeImage tree, FileTreeImage? before, string snapName, BeginRecord begin,
        Func<ulong, bool>? untouched = null)
    {
        var dir = _byName[fsName];
        var opened = ObjectsOf(dir.Head, out var set);
        if (!opened.IsOk) return opened;
        opened = ZplFileSystem.Open(set, new FileSystemOptions { Clock = _pool.Now, Atime = false }, out var fs);
        if (!opened.IsOk) return opened;
        var restored = fs!.Restore(tree, before, untouched);
        if (!restored.IsOk) return restored;
        var snapped = Snapshot(fsName + "@" + snapName);
        if (!snapped.IsOk) return snapped;
        // Rule 2, and dmu_recv_end's: the snapshot is the sender's, its guid and creation time too.
        dir.Snapshots[^1].Guid = begin.ToGuid;
        dir.Snapshots[^1].Creation = (long)Math.Min(begin.CreationTime, long.MaxValue / 1_000_000_000) * 1_000_000_000;
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    // ---- diff ----

    /// <summary>
    /// `zfs diff snapshot [snapshot|filesystem]`: the changes from an earlier snapshot to a later one of
    /// the same filesystem or to its live state (later null or the filesystem's name), as zfs diff's
    /// lines: "M", "+", "-" or "R" with "->", a tab, paths under the mountpoint (the root as "mnt/").
    /// </summary>
    public StorageResult Diff(string snapshot, string? later, out IReadOnlyList<string> lines)
    {
        lines = [];
        const string what = "Unable to obtain diffs";
        if (!snapshot.Contains('@') || Find(snapshot, out var from) != StorageStatus.Ok)
            return new StorageResult(StorageStatus.NoSuchDataset, what, $"Badly formed snapshot name {snapshot}");
        DslDataset to;
        if (later is null) to = from.Dir.Head;
        else if (Find(later, out to) != StorageStatus.Ok) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", later));
        if (to.Dir != from.Dir) return new StorageResult(StorageStatus.InvalidArgument, what, "Not an earlier snapshot from the same fs");
        if (to.IsSnapshot && to.Txg < from.Txg) return new StorageResult(StorageStatus.InvalidArgument, what, "Not an earlier snapshot from the same fs");
        if (from.Dir.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, what, "only filesystems can be compared");
        FileTreeImage? now = null;
        // A write always moves mtime, so the znodes tell every change (FileTreeDiff compares bytes
        // only of files whose attributes are equal, and those are the same file).
        var read = ReadTree(from, out var before, _ => false);
        if (read.IsOk) read = ReadTree(to, out now, _ => false);
        if (!read.IsOk) return read with { Detail = what };
        var mount = Get(from.Dir.FullName, "mountpoint", out var mountpoint);
        string prefix = mount.IsOk && mountpoint.Value.StartsWith('/') ? mountpoint.Value.TrimEnd('/') : "/" + from.Dir.FullName;
        string PathOf(string p) => p.Length == 0 ? prefix + "/" : prefix + "/" + p;
        var result = new List<string>();
        foreach (var change in FileTreeDiff.Compare(before!, now!))
            result.Add(change.Kind switch
            {
                FileChangeKind.Added => "+\t" + PathOf(change.Path),
                FileChangeKind.Removed => "-\t" + PathOf(change.Path),
                FileChangeKind.Modified => "M\t" + PathOf(change.Path),
                _ => "R\t" + PathOf(change.Path) + " -> " + PathOf(change.NewPath!),
            });
        lines = result;
        return StorageResult.Success;
    }
}
